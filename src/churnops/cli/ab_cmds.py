"""``churnops ab report`` and ``churnops ab promote``: champion and challenger on live traffic."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from churnops.cli.common import aligned, echo, handle_errors, load, say
from churnops.cli.options import ConfigOption, SetOption

ab_app = typer.Typer(
    help="Champion and challenger measured on live traffic (churnops serve with [serve.ab]).", no_args_is_help=True
)


def _number(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(document: dict[str, Any]) -> str:
    header = [
        "arm",
        "alias",
        "version",
        "scored",
        "customers",
        "labelled",
        "ROC-AUC",
        "Brier",
        "log-loss",
        "mean score",
    ]
    rows = [
        [
            name,
            arm["alias"],
            f"v{arm['version']}",
            f"{arm['scored']:,}",
            f"{arm['customers']:,}",
            f"{arm['labelled']:,}",
            _number(arm["roc_auc"]),
            _number(arm["brier"]),
            _number(arm["log_loss"]),
            _number(arm["score"]["mean"]),
        ]
        for name, arm in document["arms"].items()
    ]
    return aligned(header, rows)


def _write(cfg: Any, document: dict[str, Any]) -> Any:
    from churnops.config.models import AB_REPORT_FILES
    from churnops.data.files import atomic_write_text
    from churnops.report.html import render_ab_report, report_stylesheet

    folder = cfg.resolve_dir(cfg.serve.ab.report_dir)
    contents = dict(
        zip(
            AB_REPORT_FILES,
            (
                json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False),
                render_ab_report(document),
                report_stylesheet(),
            ),
            strict=True,
        )
    )
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in contents.items():
        atomic_write_text(folder / name, text)
    return folder


@ab_app.command("report")
@handle_errors
def report(
    output_format: Annotated[
        str,
        typer.Option("--format", help="text: a table and the decision; json: the whole report on stdout."),
    ] = "text",
    config: ConfigOption = None,
    sets: SetOption = None,
) -> None:
    """Measure the champion and the challenger on the traffic churnops serve scored.

    Reads the service's event log (serve.event_log; a running service keeps writing), takes the events each
    arm's current model version scored through POST /v1/predict and the outcomes sent to POST /v1/labels, and
    gives each arm's score distribution, ROC-AUC, Brier score and log-loss, and DeLong's one-sided test that the
    challenger's ROC-AUC is higher. Each customer (serve.ab.key) counts once, on their latest labelled event;
    events without the customer column are left out of the comparison. Writes ab_report.json and ab_report.html
    (with report.css; no script, renders
    under Jenkins' Content-Security-Policy) in serve.ab.report_dir (monitoring/ab).
    """
    from churnops.errors import ConfigError
    from churnops.serve import ab

    if output_format not in ("text", "json"):
        raise ConfigError(f"--format: '{output_format}' is not one of text, json")
    cfg = load(config, sets=sets)
    document = ab.report(cfg)
    folder = _write(cfg, document)
    if output_format == "json":
        echo(json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False))
        return
    say(_table(document))
    decision = document["decision"]
    say(("promote: " if decision["promote"] else "keep the champion: ") + decision["reason"])
    say(f"report: {folder / 'ab_report.html'}")


@ab_app.command("promote")
@handle_errors
def promote(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Measure and say what would be done; move no alias.")
    ] = False,
    config: ConfigOption = None,
    sets: SetOption = None,
) -> None:
    """Make the challenger the champion when it is better on live traffic.

    Measures as `churnops ab report` does. When both arms have serve.ab.min_labels labelled customers and the
    challenger's ROC-AUC is higher at serve.ab.level (one-sided DeLong test): its version gets the 'champion'
    alias, the current champion 'previous-champion', the challenger alias is removed, and the reason is written
    on the promoted version in the MLflow registry (tag churnops.promotion) and as a run 'ab-promotion'. A running
    churnops serve scores with the new champion from its next closed window. Otherwise nothing moves and the
    reason is printed (exit 0 either way; --format json of `ab report` gives the decision to scripts).
    """
    from churnops.serve import ab

    cfg = load(config, sets=sets)
    document = ab.report(cfg)
    _write(cfg, document)
    decision = document["decision"]
    if not decision["promote"]:
        say("nothing promoted: " + decision["reason"])
        return
    if dry_run:
        say("would promote (--dry-run, nothing moved): " + decision["reason"])
        return
    say(ab.promote(cfg, document, "churnops ab promote"))
