"""``churnops monitor`` and ``churnops profile build`` (seed phase 2)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from churnops.cli.common import STATE, err, handle_errors, load, parse_rows, say, staged_progress
from churnops.cli.inputs import require_made
from churnops.cli.options import (
    ConfigOption,
    IdOption,
    NoWaitOption,
    SetOption,
    TargetOption,
    column_overrides,
)
from churnops.errors import EXIT_DRIFT, ConfigError

EngineOption = Annotated[
    str | None,
    typer.Option(
        "--engine",
        "-e",
        metavar="<name>",
        help="native (default), dask (partitions on a Dask cluster; churnops[dask]), spark (tables read and "
        "summarized by Spark: files, folders of parts, table:NAME; churnops[spark] and Java 17) "
        "or evidently (churnops[evidently]) [config: monitor.engine].",
    ),
]
ModeOption = Annotated[
    str | None,
    typer.Option(
        "--mode",
        metavar="<mode>",
        help="exact (every value: Evidently's numbers), streaming (bounded summaries) or auto: exact up to "
        "monitor.exact_max_rows rows (5,000,000) per dataset [default: auto].",
    ),
]
VerdictOption = Annotated[
    str | None,
    typer.Option(
        "--verdict",
        metavar="<name>",
        help="How a column is decided: evidently (its test against its threshold, Evidently's rule) or "
        "calibrated (a test whose false-alarm rate is known at any size, adjusted across columns at "
        "drift.fdr 0.05; changes smaller than drift.min_effect 0.02 are reported, not alarmed) "
        "[config: drift.verdict; default: evidently].",
    ),
]
SegmentOption = Annotated[
    list[str] | None,
    typer.Option(
        "--segment",
        metavar="<column>",
        help="Also test every column inside each value of this column (repeatable), e.g. --segment "
        "'Customer Segment'. A segment is tested when it has drift.min_segment_rows rows (200) on both sides "
        "and flagged when its share of drifted columns exceeds thresholds.dataset_drift (0.1). Implies "
        "--verdict calibrated; native, dask and spark engines [config: drift.segments].",
    ),
]
MultivariateOption = Annotated[
    bool,
    typer.Option(
        "--multivariate",
        help="Also look for changes in how the columns go together (a classifier that tells the batch from "
        "the reference, and a PCA reconstruction error) on drift.multivariate_rows sampled rows of each "
        "(5,000; needs scikit-learn) [config: drift.multivariate].",
    ),
]
ChunkByOption = Annotated[
    str | None,
    typer.Option(
        "--chunk-by",
        metavar="<period:N|size:N>",
        help="Also cut the batch into chunks, each compared with the whole reference: period:1w (one per week "
        "of --time-column; h, d, w, mo, q, y) or size:5000 (runs of rows in file order). A chunk is tested "
        "with drift.min_chunk_rows rows (200); native and dask engines, and spark for a batch file "
        "[config: drift.chunk_by].",
    ),
]
TimeColumnOption = Annotated[
    str | None,
    typer.Option(
        "--time-column",
        metavar="<column>",
        help="The column of dates that places each row in a period [config: drift.time_column].",
    ),
]
TimeFormatOption = Annotated[
    str | None,
    typer.Option(
        "--time-format",
        metavar="<format>",
        help="How --time-column's dates are written, e.g. '%m/%d/%Y', when they read both day first and month "
        "first (default: ISO 8601 and the common formats) [config: drift.time_format].",
    ),
]
JobsOption = Annotated[
    int | None,
    typer.Option("--jobs", "-j", min=0, metavar="<n>", help="Threads for the columns of a chunk; 0 = one per core."),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        metavar="<address>",
        help="Dask scheduler address (tcp://host:8786) for --engine dask; default: a local cluster. A cluster "
        "needs CHURNOPS_ALLOW_ENGINE_CODE=1 in the environment (its results are unpickled here).",
    ),
]
SparkMasterOption = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        metavar="<url>",
        help="Spark master for --engine spark: local[4], spark://host:7077, yarn, k8s://...; default: "
        "local[--jobs] on this machine; other than local needs CHURNOPS_ALLOW_ENGINE_CODE=1 "
        "[config: monitor.spark_master; other settings: [spark.conf]].",
    ),
]
ReferenceOption = Annotated[
    str | None,
    typer.Option(
        "--reference",
        "-r",
        metavar="<file|url>",
        help="Reference table: a CSV or Parquet file, or an s3://, gs://, az:// URL of one object or of a prefix "
        "of parts; used whole unless --reference-rows is given.",
    ),
]
ReferenceRowsOption = Annotated[
    str | None,
    typer.Option(
        "--reference-rows",
        metavar="<start:end>",
        help=(
            "Row window START:END of the reference (default: data.reference_rows; a file given with --reference "
            "is read whole; the embedded data's reference is its rows 0:20000)."
        ),
    ),
]

profile_app = typer.Typer(help="Reference profiles (cached statistics of the reference).", no_args_is_help=True)


@handle_errors
def monitor(
    reference: ReferenceOption = None,
    current: Annotated[
        str | None,
        typer.Option(
            "--current",
            "-p",
            metavar="<file|url>",
            help="Batch to check: a file, or an object-storage URL like --reference (one Parquet object is read "
            "in place, by byte ranges) [default: paths.production, fetched first from paths.production_url when "
            "that is set].",
        ),
    ] = None,
    target: TargetOption = None,
    ids: IdOption = None,
    reference_rows: ReferenceRowsOption = None,
    config: ConfigOption = None,
    sets: SetOption = None,
    engine: EngineOption = None,
    fail_on_drift: Annotated[
        bool, typer.Option("--fail-on-drift", help="Exit with code 3 when the run raises an alert (trigger.txt).")
    ] = False,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Do not read or write the caches of the reference (its profile, the model's predictions on it).",
        ),
    ] = False,
    no_wait: NoWaitOption = False,
    run_id_file: Annotated[
        Path | None,
        typer.Option(
            "--run-id-file",
            metavar="<file>",
            help=(
                "Also write this run's id to FILE, for a CI job whose later steps name this run (churnops "
                "version --run-id, notify --run-id) - read from the file, never from the latest metrics, "
                "which another run may have written since."
            ),
        ),
    ] = None,
    mode: ModeOption = None,
    verdict: VerdictOption = None,
    segment: SegmentOption = None,
    multivariate: MultivariateOption = False,
    chunk_by: ChunkByOption = None,
    time_column: TimeColumnOption = None,
    time_format: TimeFormatOption = None,
    jobs: JobsOption = None,
    scheduler: SchedulerOption = None,
    spark_master: SparkMasterOption = None,
    evidently_html: Annotated[
        bool,
        typer.Option(
            "--evidently-html",
            help="With --engine evidently, also save Evidently's own HTML page (data escaped; its JavaScript "
            "does not run under Jenkins' CSP) [config: monitor.evidently_html].",
        ),
    ] = False,
) -> None:
    """Compare the current batch with the reference: data drift, target drift, the model, data quality.

    Writes monitoring/monitoring_metrics.json and monitoring/monitoring_report.html (+ report.css),
    and trigger.txt when the run raises an alert: by default data drift (share of drifted columns
    above thresholds.dataset_drift, 0.1), a significant change of the target's rate, or model decay
    or prediction drift when a champion model exists (thresholds.trigger_on; ["data"] is the original project's
    rule). A stale trigger.txt is removed otherwise. A run started while another holds the
    workspace waits for it (--no-wait: exit at once).
    """
    from churnops.pipeline.monitoring import MonitorRequest, run_monitoring

    cfg = load(
        config,
        {
            "monitor.engine": engine,
            "monitor.mode": mode,
            "drift.verdict": verdict,
            "drift.segments": segment or None,
            "drift.multivariate": multivariate or None,
            "drift.chunk_by": chunk_by,
            "drift.time_column": time_column,
            "drift.time_format": time_format,
            "monitor.jobs": jobs,
            "monitor.scheduler": scheduler,
            "monitor.spark_master": spark_master,
            **column_overrides(target, ids),
            "monitor.evidently_html": evidently_html or None,
        },
        sets,
    )
    if reference is None and not cfg.paths.reference_url:
        require_made(cfg.resolve(cfg.paths.reference), "reference dataset", "churnops data init", "--reference")
    if current is None and not cfg.paths.production_url and reference is not None:  # your own data
        batch = cfg.resolve(cfg.paths.production)
        if not batch.exists():
            raise ConfigError(
                f"no batch to check: give it with --current FILE (or -p FILE; paths.production, {batch}, "
                "does not exist)"
            )
    if current is None and not cfg.paths.production_url:
        require_made(cfg.resolve(cfg.paths.production), "production batch", "churnops generate", "--current")
    if run_id_file is not None:
        _check_run_id_file(cfg, run_id_file, [p for p in (reference, current) if p and "://" not in p])
    from churnops.pipeline.progress import process_age
    from churnops.pipeline.storage import local_tables

    startup = process_age()  # starting Python, imports and the configuration: part of the run's timings
    with (
        _standing_outputs_said(cfg),
        local_tables(cfg, reference, current, in_place=(False, True)) as (
            (reference_path, reference_label),
            (current_path, current_label),
        ),
    ):
        request = MonitorRequest(
            reference=reference_path,
            reference_rows=parse_rows(reference_rows, "--reference-rows"),
            current=current_path,
            engine=cfg.monitor.engine,
            use_cache=not no_cache,
            reference_label=reference_label,
            current_label=current_label,
            options=_options_again(
                cfg,
                config,
                sets,
                [
                    ("--target", target),
                    *(("--id", name) for name in ids or ()),
                    ("--mode", mode),
                    ("--verdict", verdict),
                    *(("--segment", name) for name in segment or ()),
                    ("--multivariate", multivariate),
                    ("--chunk-by", chunk_by),
                    ("--time-column", time_column),
                    ("--time-format", time_format),
                    ("--spark-master", spark_master),
                    ("--scheduler", scheduler),
                ],
            ),
        )
        with staged_progress() as progress:
            outcome = run_monitoring(
                cfg, request, progress, wait=not no_wait, waiting=lambda m: err(f"waiting: {m}"), startup=startup
            )
    for line in summary_lines(outcome):
        say(line)
    if cfg.source is not None:  # a churnops.toml found in the folder decides too: never silently
        say(f"config:  {_shown_path(Path(cfg.source))}")
    if run_id_file is not None:
        from churnops.data.files import atomic_write_bytes
        from churnops.errors import OutputWriteError

        try:
            atomic_write_bytes(run_id_file, f"{outcome.result.run_id}\n".encode())
        except (OSError, OutputWriteError) as exc:
            raise OutputWriteError(f"--run-id-file {run_id_file}: cannot write it ({exc})") from None
    if cfg.publish.url:
        from churnops.errors import ChurnopsError
        from churnops.pipeline.runner import EXIT_STAGE_FAILED
        from churnops.pipeline.storage import publish_outputs

        try:
            published = publish_outputs(cfg, outcome)
            names = ", ".join(url.rsplit("/", 1)[-1] for url in published)
            prefix = published[0].rsplit("/", 1)[0] + "/" if published else str(cfg.publish.url)
            say(f"published to {prefix}: {names}")
        except ChurnopsError as exc:
            err(f"error: {exc} (the local outputs are written)")
            raise typer.Exit(EXIT_STAGE_FAILED) from None
    if fail_on_drift and outcome.drift_detected:
        raise typer.Exit(EXIT_DRIFT)


@contextlib.contextmanager
def _standing_outputs_said(cfg: Any) -> Iterator[None]:
    """A failed run changes no output: after the error of a run under way (not of a mistyped flag
    or a missing file), say whose outputs still stand (the last complete run's id, time and
    verdict), so that its trigger.txt is not taken for this run's."""
    from churnops.errors import ChurnopsError
    from churnops.pipeline.workspace import outputs_stamp, standing_outputs

    stamp = outputs_stamp(cfg)
    try:
        yield
    except ChurnopsError as exc:
        note = standing_outputs(cfg, stamp) if exc.during_run else None  # not for a mistyped flag
        if note is None:
            raise
        logging.getLogger("churnops").debug("error details", exc_info=True)
        err(f"error: {exc}")
        say(f"note: {note}")  # on stdout, with the run's summary: the error stays one line
        raise typer.Exit(exc.exit_code) from None


def score_text(score: float) -> str:
    """A score with four decimals, more when four would round a flaw away.

    >>> score_text(1.0), score_text(0.95), score_text(0.99995294)
    ('1.0000', '0.9500', '0.99995')
    """
    for digits in range(4, 9):
        text = f"{score:.{digits}f}"
        if score == 1.0 or float(text) < 1.0:
            return text
    return f"{score:.9f}"


def _check_run_id_file(cfg: Any, path: Path, given: list[str]) -> None:
    """Refuse a --run-id-file that is a file churnops reads or writes (the metrics, trigger.txt,
    the history, the data) or lies in a folder it manages - the run's id would replace it."""
    from churnops.errors import ConfigError

    target = path.absolute()
    inputs = {f"input {name}": Path(name).absolute() for name in given}
    cfg.check_paths(inputs=inputs, outputs={"--run-id-file": target})
    managed = {
        "the monitoring folder": cfg.monitoring_dir,
        "paths.profile_cache": cfg.resolve_dir(cfg.paths.profile_cache),
        "the git repository's own folder": cfg.root / ".git",
        "DVC's folder": cfg.root / ".dvc",
    }
    for name, folder in managed.items():
        if folder.absolute() in target.parents:
            raise ConfigError(
                f"--run-id-file {path}: inside {name}, which churnops or its tools manage; choose another"
            )


def summary_lines(outcome: Any) -> list[str]:
    """What ``churnops monitor`` prints: the verdict first, then the evidence and the files."""
    from churnops.monitor.verdict import drifted_apart
    from churnops.report.metrics import p_value_text

    result = outcome.result
    verdict = result.verdict
    drift = result.dataset_drift
    quality = result.data_quality
    lines = []
    if verdict and len(verdict.reasons) > 1:
        lines.append(f"{verdict.status.upper()}: {len(verdict.reasons)} findings")
        lines += [f"  - {r.message}" + ("" if r.severity == "alert" else " (warning)") for r in verdict.reasons]
    elif verdict:
        lines.append(f"{verdict.status.upper()}: {verdict.headline}")
    few = next((c.message for c in quality.checks if c.check == "few_rows"), None)
    if drift.n_columns == 0:
        lines.append("data drift: no feature column tested (see the NOTICE above)")
    else:
        columns = "column" if drift.n_columns == 1 else "columns"
        changed, unread = drifted_apart(result)
        lines.append(
            f"data drift: {len(drift.drifted_columns)}/{drift.n_columns} {columns} drifted, "
            f"score {drift.score:.3f} (threshold {drift.threshold:g})"
            + (f" - {', '.join(changed)}" if changed else "")
            + (f" - no usable value in the batch: {', '.join(unread)}" if unread else "")
            + (f" - WARNING: {few}" if few else "")
        )
    if drift.verdict == "calibrated":  # another rule than Evidently's decided: say which, and why
        from churnops.report.charts import chance

        because = " (segments are decided with it)" if result.segments is not None else ""
        rate = drift.expected_false_alarm_rate
        lines.append(
            f"  decided by the calibrated verdict{because}: each column's test at its known false-alarm rate, "
            f"adjusted across columns at fdr {drift.fdr:g}"
            + (f"; unchanged data raises data drift in at most {chance(rate)} of runs" if rate is not None else "")
        )
    lines += _format_lines(result)
    lines += _filled_lines(result)
    lines += _section_lines(result)
    target = result.target_drift
    from churnops.monitor.engine import UNLABELLED_REASON

    unlabelled = next((s.name for s in result.skipped if s.reason == UNLABELLED_REASON), None)
    if target is None and unlabelled:
        lines.append(f"target {unlabelled}: not in this batch (no labels yet): its rate is not compared")
    elif target is None:
        lines.append("target: none named (--target COLUMN names the label, whose rate is then compared)")
    elif target.reference_rate is not None and target.current_rate is not None:
        lines.append(
            f"target {target.rate_name}: {target.reference_rate:.2%} -> {target.current_rate:.2%} "
            f"({'drift' if target.drift_detected else 'no drift'}, p={p_value_text(target.p_value)})"
            + (f" - {target.note}" if target.note else "")
        )
    elif target.test == "none" or target.statistic != target.statistic:  # not compared (NaN statistic)
        lines.append(f"target {target.column}: not compared" + (f" - {target.note}" if target.note else ""))
    else:
        value = f"p={p_value_text(target.p_value)}" if target.p_value is not None else f"{target.statistic:.4g}"
        lines.append(
            f"target {target.column}: {target.test} {value} ({'drift' if target.drift_detected else 'no drift'})"
            + (f" - {target.note}" if target.note else "")
        )
    model = result.model or {}
    if model.get("error"):
        version = f" v{model['version']}" if model.get("version") else ""
        lines.append(f"model {model.get('name')}{version}: NOT CHECKED - {model['error']}")
    elif model.get("decay"):
        decay = model["decay"]
        drop = decay.get("roc_auc_drop")
        lines.append(
            f"model {model.get('name')} v{model.get('version')}: ROC-AUC "
            + (f"change {-drop:+.3f} ({decay.get('basis')})" if drop is not None else "not measurable")
            + (" - DECAY" if decay.get("detected") else "")
        )
    cells = "failed cell" if quality.failed_cells == 1 else "failed cells"
    failed = f"; {quality.failed_cells:,} {cells}" if quality.failed_cells else ""
    # "ok; 2 failed cells" beside "8,000 values outside the reference range" read as a contradiction
    warned = sum(1 for c in quality.checks if c.severity == "warning" and c.check not in OWN_LINES)
    if warned:
        failed += f"; {warned:,} {'warning' if warned == 1 else 'warnings'}, which lower no score"
    lines.append(
        f"data quality {score_text(quality.score)} "
        + (f"(ok{failed})" if quality.passed else f"(WARNING: {quality.failure}{failed})")
    )
    lines += _quality_lines(result)
    lines.append(f"metrics: {outcome.metrics_path}")
    lines.append(f"report:  {outcome.report_path}")
    if outcome.trigger_written:
        lines.append(f"trigger: {outcome.trigger_path} written")
    elif outcome.stale_trigger_removed:
        lines.append(f"trigger: stale {outcome.trigger_path} removed")
    for name, path in outcome.extra_files.items():
        if path.exists():  # Evidently's page is only written on request
            lines.append(f"{name}: {path}")
    return lines


def _options_again(
    cfg: Any, config: Path | None, sets: list[str] | None, given: list[tuple[str, Any]]
) -> tuple[str, ...]:
    """The options of this run that decide its result, for the report's command that repeats it:
    the folder ``-C`` named (the files' relative paths are relative to it), the configuration file
    it read (named even when found in the current folder, which the command may not be run from),
    each ``--set`` and each option given."""
    options: list[str] = ["-C", STATE.project_dir] if STATE.project_dir is not None else []
    source = cfg.source if cfg.source is not None else config
    if source is not None:
        options += ["--config", _shown_path(Path(source))]
    for text in sets or ():
        options += ["--set", text]
    for flag, value in given:
        if value is True:
            options.append(flag)
        elif value not in (None, False, ""):
            options += [flag, str(value)]
    return tuple(options)


def _shown_path(path: Path) -> str:
    """``path`` relative to the current folder when it is inside it, else absolute."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (OSError, ValueError):
        return str(path.resolve())


QUALITY_SHOWN = 3
"""Quality checks the terminal shows under the quality line (the report and the metrics have all)."""


OWN_LINES = frozenset({"missing_in_csv", "empty_in_reference", "few_rows"})
"""Quality checks said on lines of their own, not in the list of checks."""


def _quality_lines(result: Any) -> list[str]:
    """The quality checks found, those counted in the score first, then by cells, one per column:
    a repeated identifier or a cell that is not a number was only a count of failed cells here,
    its column and cells in the report alone. Those said on lines of their own (and the batch's
    size, in the verdict) are left out."""
    from churnops.escape import examples_cut, one_line_short

    found = sorted(
        (c for c in result.data_quality.checks if c.check not in OWN_LINES),
        key=lambda c: (c.severity != "error", -c.count),
    )
    checks, columns = [], set()
    for check in found:
        if check.column is None or check.column not in columns:
            checks.append(check)
            columns.add(check.column)
    if not checks:
        return []
    shown = [
        (f"{one_line_short(c.column, 40)}: " if c.column else "")
        + examples_cut(c.message, 200 if c.check == "mostly_unusable" else 120)
        for c in checks[:QUALITY_SHOWN]
    ]
    rest = len(found) - min(len(checks), QUALITY_SHOWN)  # every finding not shown, a column's second one too
    more = f" (and {rest:,} more in the report)" if rest else ""
    return ["  " + "; ".join(shown) + more]


def _format_lines(result: Any) -> list[str]:
    """One warning for the category columns compared across a CSV and a Parquet file whose
    Parquet side holds as text cells a CSV reads as missing (``missing_in_csv`` checks)."""
    from churnops.data.io import NULL_VALUES
    from churnops.escape import one_line_short
    from churnops.monitor.quality import file_format

    checks = [c for c in result.data_quality.checks if c.check == "missing_in_csv" and c.column]
    if not checks:
        return []
    names = [one_line_short(c.column, 40) for c in checks]
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    cells = ", ".join(repr(v) for v in NULL_VALUES if any(repr(v) in c.message for c in checks))
    batch_parquet = file_format(result.current) == "parquet"
    parquet, csv = ("batch", "reference") if batch_parquet else ("reference", "batch")
    return [
        f"WARNING: the {parquet} (Parquet) holds {cells} as text in {shown}, where the {csv} (CSV) has missing "
        "values: the same data drifts between the two formats; write both in one format, or these cells as nulls"
    ]


def _filled_lines(result: Any) -> list[str]:
    """One notice for the columns without a value in the reference that hold values in this
    batch (``empty_in_reference`` checks): untested, which the reference's notice alone hides."""
    from churnops.escape import one_line_short

    checks = [c for c in result.data_quality.checks if c.check == "empty_in_reference" and c.column]
    if not checks:
        return []
    shown = ", ".join(f"{one_line_short(c.column, 40)} ({c.count:,} values)" for c in checks[:3])
    more = f" and {len(checks) - 3} more" if len(checks) > 3 else ""
    return [
        f"NOTICE: not tested, empty in the reference but not in this batch: {shown}{more}; "
        "a reference that holds their values is needed to test them"
    ]


def _section_lines(result: Any) -> list[str]:
    """One line each for the segments, the time chunks and the multivariate detectors, when on."""
    from churnops.escape import one_line_short

    def shown(value: str) -> str:
        return one_line_short(value, 40)

    def listed(names: list[str]) -> str:
        return ", ".join(shown(n) for n in names[:3]) + (", ..." if len(names) > 3 else "")

    def below_rule(groups: list[Any], detected: list[Any], label: Any) -> str:
        """The groups with drifted columns that the dataset rule does not count as drifted."""
        quiet = [g for g in groups if g.tested and g.drifted_columns and g not in detected]
        if not quiet:
            return ""
        named = [f"{shown(label(g))} ({listed(g.drifted_columns)})" for g in quiet[:3]]
        more = f" and {len(quiet) - 3} more" if len(quiet) > 3 else ""
        return f"; columns drifted, too few for the dataset rule, in {'; '.join(named)}{more}"

    lines = []
    segments = result.segments
    if segments is not None:
        tested = [g for g in segments.groups if g.tested]
        drifted = [f"{g.column} = {g.value}" for g in segments.detected]
        lines.append(
            f"segments: {len(drifted)} of {len(tested)} tested drifted"
            + (f" - {listed(drifted)}" if drifted else "")
            + (
                f" ({len(segments.groups) - len(tested)} too small or absent)"
                if len(tested) < len(segments.groups)
                else ""
            )
            + below_rule(segments.groups, segments.detected, lambda g: f"{g.column} = {g.value}")
        )
    chunks = result.chunks
    if chunks is not None:
        tested_chunks = [g for g in chunks.groups if g.tested]
        drifted = [g.label for g in chunks.detected]
        line = (
            f"chunks ({chunks.by}{' of ' + shown(chunks.time_column) if chunks.time_column else ''}): "
            f"{len(drifted)} of {len(tested_chunks)} tested drifted" + (f" - {listed(drifted)}" if drifted else "")
        )
        if len(tested_chunks) < len(chunks.groups):
            line += f"; {len(chunks.groups) - len(tested_chunks)} with fewer than {chunks.min_rows:,} rows"
        lines.append(line + below_rule(chunks.groups, chunks.detected, lambda g: g.label))
        if chunks.unplaced_rows:
            lines.append(
                f"  {chunks.unplaced_rows:,} rows have no readable date in {shown(chunks.time_column or '')} "
                "and are in no chunk (--time-format says how the dates are written)"
            )
    found = result.multivariate
    if found is not None:
        parts = []
        if found.domain_classifier is not None:
            parts.append(f"classifier ROC-AUC {found.domain_classifier.statistic:.3f}")
        if found.pca_reconstruction is not None:
            parts.append(f"PCA error x{found.pca_reconstruction.statistic:.3f}")
        detail = ", ".join(parts) or (found.reason or "")
        lines.append(f"multivariate: {'drift' if found.detected else 'no drift'}" + (f" ({detail})" if detail else ""))
    return lines


@profile_app.command("build")
@handle_errors
def profile_build(
    reference: ReferenceOption = None,
    reference_rows: ReferenceRowsOption = None,
    target: TargetOption = None,
    ids: IdOption = None,
    config: ConfigOption = None,
    sets: SetOption = None,
    mode: ModeOption = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            "-e",
            help="native (default) or spark (built by Spark: a streaming profile, which monitor reuses with "
            "--engine spark or --mode streaming).",
        ),
    ] = None,
    spark_master: SparkMasterOption = None,
) -> None:
    """Compute the reference profile and store it in the cache, so monitor skips the reference."""
    from churnops.pipeline.monitoring import MonitorRequest, build_reference_profile

    if engine not in (None, "native", "spark"):
        raise ConfigError(f"--engine {engine}: a profile is built by the native or the spark engine")
    cfg = load(
        config,
        {"monitor.mode": mode, "monitor.spark_master": spark_master, **column_overrides(target, ids)},
        sets,
    )
    from churnops.pipeline.storage import local_tables

    with local_tables(cfg, reference) as [(reference_path, _)]:
        request = MonitorRequest(
            reference=reference_path, reference_rows=parse_rows(reference_rows, "--reference-rows"), engine=engine
        )
        with staged_progress() as progress:
            path, profile = build_reference_profile(cfg, request, progress)
    tested = sum(1 for c in profile.columns.values() if c.skip_reason is None)
    say(f"{path}: profile of {profile.rows:,} rows, {tested} monitored columns")
