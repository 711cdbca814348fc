"""``churnops pipeline``, ``demo``, ``dvc-setup``, ``version`` and ``versions`` (seed phases 3-4)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer

from churnops.cli.common import STATE, echo, err, handle_errors, load, parse_rows, say
from churnops.cli.options import ConfigOption, IdOption, NoWaitOption, SetOption, TargetOption, column_overrides
from churnops.errors import EXIT_DRIFT

versions_app = typer.Typer(help="Versioned production batches (DVC).", no_args_is_help=True)

STATUS_MARK = {"success": "✓", "unstable": "▲", "skipped": "–", "failed": "✗"}


def _stage_printer(event: str, stage) -> None:  # type: ignore[no-untyped-def]
    if STATE.quiet:
        return
    if event == "start":
        echo(f"\n── Stage {stage.number}: {stage.name} " + "─" * max(4, 50 - len(stage.name)))
        return
    mark = STATUS_MARK.get(stage.status, "?")
    line = f"   {mark} {stage.status.upper()} in {stage.duration_s:.2f} s"
    if stage.detail:
        line += f" - {stage.detail}"
    echo(line)
    if stage.error:
        err(f"   error: {stage.error}")


def pipeline(
    config: ConfigOption = None,
    sets: SetOption = None,
    current: Annotated[
        Path | None,
        typer.Option(
            "--current",
            "-p",
            help="Batch to check (a local file; paths.production_url fetches one from object storage). On an "
            "alert this very file is versioned: copied to paths.production first when it is elsewhere (a file there "
            "that DVC does not keep is never replaced).",
            dir_okay=False,
        ),
    ] = None,
    reference: Annotated[
        Path | None, typer.Option("--reference", "-r", help="Reference table (a local file).", dir_okay=False)
    ] = None,
    reference_rows: Annotated[str | None, typer.Option("--reference-rows", help="Row window START:END.")] = None,
    target: TargetOption = None,
    ids: IdOption = None,
    fail_on_drift: Annotated[bool, typer.Option("--fail-on-drift", help="Exit 3 when the run is UNSTABLE.")] = False,
    no_wait: NoWaitOption = False,
    retrain: Annotated[
        bool, typer.Option("--retrain", help="Run stage 5 (retraining) on drift, as retrain.enabled does.")
    ] = False,
) -> None:
    """Run the nightly pipeline: monitoring, check drift, DVC versioning (on an alert), notification, retraining.

    The run holds the workspace from the first stage to the summary (a monitor started meanwhile
    waits), so every output, the versioned batch, the notification and the history row describe
    this run. Writes monitoring/pipeline_summary.json. Exit 0 on SUCCESS and on UNSTABLE (an alert
    is reported, not failed) unless --fail-on-drift (3); 2 when the input or configuration is bad;
    4 when a later stage failed (DVC, notification, retraining) - earlier outputs are kept.
    """
    from churnops.pipeline.monitoring import MonitorRequest
    from churnops.pipeline.progress import process_age
    from churnops.pipeline.runner import run_pipeline

    for flag, given in (("--current", current), ("--reference", reference)):
        if given is not None and re.match(r"(s3|gs|gcs|az|abfs|file):/", str(given), re.IGNORECASE):
            from churnops.errors import ConfigError

            raise ConfigError(
                f"{flag}: the pipeline versions a local file; to take the batch from object storage set "
                "paths.production_url (or paths.reference_url): it is fetched into paths.production first"
            )
    cfg = load(config, column_overrides(target, ids), sets)
    request = MonitorRequest(
        reference=reference, reference_rows=parse_rows(reference_rows, "--reference-rows"), current=current
    )
    from churnops.pipeline.modeling import pipeline_retrainer

    outcome = run_pipeline(
        cfg,
        request,
        events=_stage_printer,
        wait=not no_wait,
        waiting=lambda message: err(f"waiting: {message}"),
        retrainer=pipeline_retrainer,
        retrain=retrain or cfg.retrain.enabled,
        startup=process_age(),
    )
    say(f"\nPipeline {outcome.status} - summary: {outcome.summary_path}")
    if outcome.monitoring is not None:
        verdict = outcome.monitoring.result.verdict
        if verdict is not None:
            say(f"{verdict.status.upper()}: {verdict.headline}")
        say(f"report: {outcome.monitoring.report_path}")
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)
    if fail_on_drift and outcome.status == "UNSTABLE":
        raise typer.Exit(EXIT_DRIFT)


pipeline = handle_errors(pipeline)


@handle_errors
def demo(
    folder: Annotated[Path, typer.Argument(help="Workspace to create or reuse.", file_okay=False)] = Path("demo"),
    sets: SetOption = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Use a folder that holds other files (its data files are replaced)."),
    ] = False,
) -> None:
    """Create a self-contained demo workspace (its own git repo and DVC remote) and run the pipeline in it.

    Nothing is committed outside FOLDER. Running it again reuses the workspace: an unchanged
    batch makes no new DVC version. A folder that holds anything else (your own project) is
    refused: the demo writes its generated data there.
    """
    import os

    from churnops.errors import ConfigError
    from churnops.pipeline.demo import DEMO_MARKER, prepare_demo

    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: is a file; give a folder for the demo workspace")
    if folder.is_dir() and not force and not (folder / DEMO_MARKER).is_file():
        found = sorted(entry.name for entry in folder.iterdir())
        if found:
            shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
            raise ConfigError(
                f"{folder}: is not empty and is not a demo workspace (it holds {shown}); the demo writes generated "
                "data there and would replace files: give a new or empty folder, or --force"
            )
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    cfg = load(None, sets=sets)
    root = cfg.root.resolve()
    for key, value in (("paths.reference", cfg.paths.reference), ("paths.production", cfg.paths.production)):
        path = cfg.resolve(value)
        if root not in path.parents:
            raise ConfigError(
                f"{key} ({path}) is outside the demo folder {root}: the demo writes generated data there and "
                "never outside it; leave it relative"
            )
    workspace = prepare_demo(cfg)
    repository = "new" if workspace.created_repository else "existing"
    say(
        f"demo workspace {workspace.root}: {repository} git repository, reference {workspace.reference_status}, "
        f"batch of {workspace.batch.rows:,} rows (scenario '{cfg.scenario.name}')"
    )
    pipeline(config=None, sets=sets, target=None, ids=None, no_wait=False)


@handle_errors
def dvc_setup(
    config: ConfigOption = None,
    sets: SetOption = None,
    remote: Annotated[
        str | None,
        typer.Option(
            "--remote",
            help="Remote folder or URL [default: ./dvc_storage]. s3://bucket/prefix needs churnops[dvc-s3]; "
            "[storage] endpoint_url and region are written beside it, credentials never (DVC reads them from "
            "the environment, the AWS profiles or the instance role).",
        ),
    ] = None,
) -> None:
    """Set up DVC here (idempotent): dvc init and a default remote 'local_storage' kept out of git; the runs'
    lock files (.trigger.txt.lock, monitoring/.workspace.lock, .mlflow.db.lock) are added to .gitignore."""
    from churnops.pipeline.versioning import setup_dvc

    if remote is not None and not remote.strip():
        from churnops.errors import ConfigError

        raise ConfigError("--remote: empty; give a folder or a URL (e.g. ./dvc_storage or s3://bucket/dvc)")
    cfg = load(config, {"dvc.remote_url": remote}, sets)
    outcome = setup_dvc(cfg)
    say(
        f"DVC {'initialized' if outcome.initialized else 'already set up'} in {outcome.root}; default remote "
        f"'{outcome.remote_name}' -> {outcome.remote_url}"
        + (f"; committed {outcome.committed[:10]}" if outcome.committed else "")
    )


@handle_errors
def version(
    config: ConfigOption = None,
    sets: SetOption = None,
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run-id",
            help="Version the batch this run checked, as 'churnops pipeline' does (copied to paths.production "
            "when it was elsewhere); refused when the latest metrics are another run's.",
        ),
    ] = None,
) -> None:
    """Version the production batch: dvc add (or dvc commit of the dvc.yaml stage that makes it), git commit
    (drift score and run id in the message), dvc push."""
    cfg = load(config, sets=sets)
    if run_id is not None:
        from churnops.pipeline.versioning import version_run_batch

        versioned = version_run_batch(cfg, run_id)
        pushed = f"; pushed to DVC remote {versioned.outcome.remote}" if versioned.outcome.pushed else ""
        say(versioned.describe(cfg.root) + pushed)
        return
    from churnops.pipeline.versioning import version_current_batch

    outcome = version_current_batch(cfg)
    pushed = f"; pushed to DVC remote {outcome.remote}" if outcome.pushed else ""
    say(f"{outcome.dvc_file}: {outcome.message}{pushed}")


@versions_app.command("list")
@handle_errors
def versions_list(
    config: ConfigOption = None,
    output_format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Every versioned batch: commit, date, drift score, rows, sha256."""
    from churnops.pipeline.versioning import list_batch_versions

    if output_format not in ("table", "json"):
        from churnops.errors import ConfigError

        raise ConfigError(f"--format: expected table or json, got '{output_format}'")
    cfg = load(config)
    versions = list_batch_versions(cfg)
    if output_format == "json":
        echo(json.dumps([v.to_dict() for v in versions], indent=2))
        return
    if not versions:
        say("no versioned batch yet ('churnops version' or 'churnops pipeline' on a drifted batch)")
        return
    echo(f"{'commit':<12} {'date':<25} {'drift score':>11} {'rows':>9}  sha256")
    for v in versions:
        score = v.facts.get("drift_score", "")
        score_text = f"{float(score):.4f}" if score else "-"
        rows, digest = v.facts.get("rows", "-"), v.facts.get("sha256", "-")[:16]
        echo(f"{v.commit[:12]:<12} {v.date:<25} {score_text:>11} {rows:>9}  {digest}")


@versions_app.command("restore")
@handle_errors
def versions_restore(
    revision: Annotated[str, typer.Argument(help="A commit (or tag, branch) from 'churnops versions list'.")],
    config: ConfigOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of the production batch path.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a file already at --output.")] = False,
) -> None:
    """Bring a versioned batch back (from the DVC cache, else the remote); git is not touched."""
    from churnops.pipeline.versioning import restore_batch

    cfg = load(config)
    path, digest = restore_batch(cfg, revision, output, force)
    say(f"{path}: restored from {revision} (sha256 {digest[:16]}...)")
