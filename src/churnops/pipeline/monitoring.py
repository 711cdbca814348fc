"""Seed phase 2 as one function: read the data, compare, write metrics, report and trigger."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from churnops.config import CSS_FILE, METRICS_FILE, REPORT_FILE, STANDALONE_FILE, Config
from churnops.data.io import TableReader, check_readable, read_table, sha256_file, table_format
from churnops.errors import ChurnopsError, ConfigError, InputDataError, OutputWriteError
from churnops.monitor.batch import BatchBuilder, BatchTally
from churnops.monitor.engine import evaluate
from churnops.monitor.prepare import CategoricalSample, NumericalSample
from churnops.monitor.profile import IDENTIFIER_REASON, ProfileBuilder, ReferenceProfile
from churnops.monitor.results import DatasetInfo, MonitoringResult
from churnops.monitor.settings import MonitorSettings, settings_from_config
from churnops.monitor.sketch import RELATIVE_ERROR
from churnops.monitor.verdict import decide
from churnops.pipeline.outputs import OutputTransaction
from churnops.pipeline.profile_cache import load_profile, profile_key, save_profile
from churnops.pipeline.workspace import record_history, workspace
from churnops.report.html import ReportContext, render_reports, report_stylesheet
from churnops.report.metrics import metrics_document, render_metrics_json, render_trigger

logger = logging.getLogger(__name__)

__all__ = ["CSS_FILE", "METRICS_FILE", "REPORT_FILE", "STANDALONE_FILE", "MonitorOutcome", "MonitorRequest"]


@dataclass(frozen=True)
class MonitorRequest:
    """What to compare; None fields fall back to the configuration."""

    reference: Path | None = None
    reference_rows: tuple[int, int] | None = None
    whole_reference: bool = False
    current: Path | None = None
    engine: str | None = None
    use_cache: bool = True


@dataclass(frozen=True)
class MonitorOutcome:
    """What a monitoring run produced."""

    result: MonitoringResult
    metrics_path: Path
    report_path: Path
    trigger_path: Path
    trigger_written: bool
    stale_trigger_removed: bool
    profile_cache: str
    """``hit``, ``miss`` (built and saved) or ``off``."""
    extra_files: dict[str, Path]
    context: ReportContext
    document: dict[str, Any]
    """The metrics document exactly as committed (what notifications and exports describe)."""

    @property
    def drift_detected(self) -> bool:
        """Whether the run raised the trigger (its verdict is an alert)."""
        return self.result.verdict.trigger if self.result.verdict else self.result.dataset_drift.detected


@dataclass(frozen=True)
class ReferenceSource:
    path: Path
    row_range: tuple[int, int] | None


def reference_source(config: Config, request: MonitorRequest) -> ReferenceSource:
    """The reference file and its row window.

    A reference given on the command line is used whole unless a window is given with it;
    the configured reference uses ``data.reference_rows`` (rows [0, 20000) by default).
    """
    if request.reference is not None:
        rows = request.reference_rows
        return ReferenceSource(request.reference, None if request.whole_reference else rows)
    rows = None if request.whole_reference else (request.reference_rows or config.data.reference_rows)
    return ReferenceSource(config.resolve(config.paths.reference), rows)


ROW_SAMPLE = 16
"""Streaming batches above ``monitor.sample_duplicates_above`` rows, with an identifier column,
count repeated rows and identifiers on one identifier in ``ROW_SAMPLE``."""
Progress = Callable[[str, int, int], None]
"""``progress(what, done, total)``: rows (or bytes) read of a file, or columns tested."""


def is_streaming(config: Config, reader: TableReader, row_range: tuple[int, int] | None = None) -> bool:
    """Whether a dataset is summarized by the streaming engine (``monitor.mode``)."""
    mode = config.monitor.mode
    if mode != "auto":
        return mode == "streaming"
    rows = row_range[1] - row_range[0] if row_range is not None else reader.estimated_rows
    return rows > config.monitor.exact_max_rows


def jobs_of(config: Config) -> int:
    return config.monitor.jobs or os.cpu_count() or 1


def _reading(progress: Progress | None, label: str, reader: TableReader) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(f"{label} {reader.path.name}: {reader.rows:,} rows", done, total)


def get_reference_profile(
    config: Config,
    source: ReferenceSource,
    settings: MonitorSettings,
    use_cache: bool,
    rebuild: bool = False,
    progress: Progress | None = None,
) -> tuple[ReferenceProfile, DatasetInfo, str, Path]:
    """The reference profile, from the cache when valid, else built (and cached).

    Returns the profile, the reference's description, the cache status (``hit``, ``miss``,
    ``rebuilt`` or ``off``) and the cache file.
    """
    check_readable(source.path)
    sha = sha256_file(source.path)
    dialect = config.dialect_for("reference")
    probe = TableReader(source.path, source.row_range, dialect=dialect)
    check_target_present(config, source.path, probe.header)
    streaming = is_streaming(config, probe, source.row_range)
    key = profile_key(
        sha,
        source.row_range,
        settings,
        (dialect.separator, dialect.decimal, dialect.encoding, "streaming" if streaming else "exact"),
    )
    cache_file = config.resolve(config.paths.profile_cache) / f"{key}.npz"
    status = "off"
    profile = None
    if use_cache and not rebuild:
        cached = load_profile(cache_file)
        status = "miss"
        if cached is not None:
            profile, _ = cached
            status = "hit"
    if profile is None:
        builder = ProfileBuilder(probe.columns, settings, streaming=streaming)
        reader = TableReader(source.path, source.row_range, columns=builder.needed, dialect=dialect)
        reader.progress = _reading(progress, "reference", reader)
        try:
            for chunk in reader:
                builder.update(chunk)
        except InputDataError as exc:
            if "requested but the file has only" not in str(exc):
                raise
            raise InputDataError(
                f"{exc}; the reference window is data.reference_rows (or --reference-rows): set "
                'data.reference_rows = "all" to use the whole file'
            ) from None
        profile = builder.finish()
        if use_cache or rebuild:
            status = "rebuilt" if rebuild else status
            try:
                save_profile(profile, cache_file, {"reference": str(source.path), "sha256": sha})
            except OSError as exc:
                if rebuild:
                    raise ChurnopsError(f"cannot write the profile cache {cache_file}: {exc}") from None
                logger.warning("could not write the profile cache %s: %s", cache_file, exc)
    info = DatasetInfo(str(source.path), profile.rows, sha, source.row_range, len(profile.columns))
    say_column_notices(config, source.path, probe.header, profile)
    logger.debug("reference %s: %s rows, profile cache %s (%s)", source.path, profile.rows, status, cache_file)
    return profile, info, status, cache_file


def check_target_present(config: Config, path: Path, header: list[str]) -> None:
    """A target you named (in churnops.toml, --set or --target) must be in the reference."""
    target = config.columns.target
    if target and target not in header and "target" in config.columns.model_fields_set:
        shown = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
        raise ConfigError(f"columns.target: '{target}' is not a column of {path} (its columns: {shown})")


TARGET_NAMES = ("churn", "churned", "exited", "attrition", "target", "label", "y", "churn_flag", "is_churn")


def guess_target(profile: ReferenceProfile) -> str | None:
    """A two-valued column whose name says it is the label (e.g. ``churned``), if there is one."""
    for column in profile.tested:
        sample = column.sample
        words = column.plan.name.lower().replace(" ", "_").replace("-", "_")
        named = words in TARGET_NAMES or any(w in words.split("_") for w in ("churn", "churned", "exited", "target"))
        if named and isinstance(sample, CategoricalSample) and len(sample.labels) == 2:
            return column.plan.name
    return None


def looks_like_dates(sample: Any) -> bool:
    """Whether a categorical sample's labels are (almost all) dates, like ``2024-03-01``."""
    import polars as pl

    from churnops.monitor.prepare import coerce_datetime

    if not isinstance(sample, CategoricalSample) or len(sample.labels) < 3:
        return False
    labels = [label for label in sample.labels[:500] if isinstance(label, str)]
    if len(labels) < 3:
        return False
    parsed = coerce_datetime(pl.Series(labels))
    return parsed.series.null_count() <= 0.05 * len(labels)


def say_column_notices(config: Config, path: Path, header: list[str], profile: ReferenceProfile) -> None:
    """One notice line each: configured columns the data lacks, and columns left out as identifiers."""
    from churnops.errors import NOTICE

    columns = config.columns
    chosen = columns.model_fields_set
    configured: list[str] = []
    defaults: list[str] = []

    def note(key: str, text: str) -> None:
        (configured if key in chosen else defaults).append(text)

    if columns.target and columns.target not in header:
        note("target", f"target '{columns.target}'")
    for kind in ("id", "ignored", "datetime", "numerical", "categorical", "binary", "text"):
        missing = [name for name in getattr(columns, kind) if name not in header]
        if missing:
            note(kind, f"{kind} " + ", ".join(f"'{name}'" for name in missing))
    missing_domains = [name for name in columns.domains if name not in header]
    if missing_domains:
        note("domains", "domain " + ", ".join(f"'{name}'" for name in missing_domains))
    for key in ("per_column_method", "per_column_threshold"):
        missing = [name for name in getattr(config.drift, key) if name not in header]
        if missing:
            configured.append(f"drift.{key} " + ", ".join(f"'{name}'" for name in missing))
    parts = []
    if configured:
        parts.append(f"columns named in the configuration but not in {path.name}: " + "; ".join(configured))
    if defaults:
        logger.log(
            NOTICE,
            "the bank example's column settings are unused: %s has none of their columns (%s); nothing to do "
            "unless you want to name yours (churnops init --reference %s writes a churnops.toml)",
            path.name,
            "; ".join(defaults),
            path.name,
        )
    guess = guess_target(profile) if columns.target not in header else None
    if guess:
        parts.append(f"'{guess}' looks like the target: --target '{guess}'")
    if parts:
        logger.log(NOTICE, "%s", "; ".join(parts))
    unusable = [c.plan.name for c in profile.columns.values() if (c.skip_reason or "").startswith("no usable value")]
    if unusable:
        logger.log(
            NOTICE,
            "not tested: no usable value in the reference (all missing, or not of the declared type): %s",
            ", ".join(unusable),
        )
    dates = [c.plan.name for c in profile.tested if c.plan.role == "feature" and looks_like_dates(c.sample)]
    if dates:
        logger.log(
            NOTICE,
            "these columns hold dates but are tested as categories: %s (list them in columns.datetime)",
            ", ".join(dates),
        )
    detected = [c.plan.name for c in profile.columns.values() if c.skip_reason == IDENTIFIER_REASON]
    if detected:
        logger.log(
            NOTICE,
            "not tested for drift, as they look like row numbers or identifiers: %s (declare them in [columns] "
            "to test them, or set columns.detect_ids = false)",
            ", ".join(detected),
        )


def profile_mode(profile: ReferenceProfile) -> str:
    """``streaming`` when the profile keeps summaries rather than every value (categories are
    counted exactly by both engines)."""
    for column in profile.tested:
        sample = column.sample
        if isinstance(sample, NumericalSample) and (sample.relative_error or sample.bounds is not None):
            return "streaming"
    return "exact"


def mode_facts(profile: ReferenceProfile, tally: BatchTally, jobs: int, config: Config) -> dict[str, Any]:
    """The ``mode`` section of the metrics: exact or streaming, and what is approximate."""
    approximate = sorted(
        name
        for name, column in tally.columns.items()
        if any(isinstance(s, NumericalSample) and s.relative_error for s in (column.sample, column.profile.sample))
    )
    return {
        "reference": profile_mode(profile),
        "current": "streaming" if tally.streaming else "exact",
        "approximate_columns": approximate,
        "relative_error": RELATIVE_ERROR if approximate else None,
        "jobs": jobs,
        "exact_max_rows": config.monitor.exact_max_rows,
    }


def build_reference_profile(
    config: Config, request: MonitorRequest, progress: Progress | None = None
) -> tuple[Path, ReferenceProfile]:
    """``churnops profile build``: compute the reference profile and store it in the cache."""
    settings = settings_from_config(config)
    profile, _, _, cache_file = get_reference_profile(
        config, reference_source(config, request), settings, use_cache=True, rebuild=True, progress=progress
    )
    return cache_file, profile


def run_monitoring(
    config: Config,
    request: MonitorRequest | None = None,
    progress: Progress | None = None,
    wait: bool = True,
    waiting: Callable[[str], None] | None = None,
) -> MonitorOutcome:
    """Compare the current batch with the reference and write every output, as one story.

    Outputs (committed together): ``<monitoring_dir>/monitoring_metrics.json``,
    ``monitoring_report.html``, its standalone copy and ``report.css``; ``trigger.txt`` is written
    when the run's verdict raises the trigger and removed otherwise; the run's history row. The
    whole run holds the workspace lock (``wait``: wait for another run to finish, telling
    ``waiting`` once). Nothing is written when reading or comparing fails.
    """
    request = request or MonitorRequest()
    source = reference_source(config, request)
    current_path = request.current or config.resolve(config.paths.production)
    inputs = {"--reference" if request.reference else "paths.reference": source.path}
    inputs["--current" if request.current else "paths.production"] = current_path
    config.check_paths(inputs=inputs)
    with workspace(config, wait=wait, waiting=waiting, purpose="monitor"):
        config = _inferred(config, source.path)
        return _run_monitoring(config, request, source, current_path, progress)


def _inferred(config: Config, reference: Path) -> Config:
    """The configuration with the reference's unlisted date and identifier columns classified
    (``columns.infer``), said in one notice; unchanged when the reference cannot be read yet (the
    run then stops on that with its own message)."""
    from churnops.errors import NOTICE
    from churnops.pipeline.starter import INFER_ROWS, decimal_comma_columns, sample_frame, with_inferred_columns

    if not config.columns.infer:
        return config
    dialect = config.dialect_for("reference")
    try:
        header, sample = sample_frame(reference, dialect, INFER_ROWS)  # one read for every guess below
    except (InputDataError, OSError):
        return config
    check_target_present(config, reference, header)  # a wrong target is the first thing to hear
    if sample is None:
        return config
    config, dates, ids = with_inferred_columns(config, sample)
    commas = [] if table_format(reference) == "parquet" else decimal_comma_columns(sample, dialect)
    if commas:
        shown = ", ".join(f"{name} (e.g. {example!r})" for name, example in commas[:5])
        logger.log(
            NOTICE,
            "numbers written with a decimal comma are read as text and not tested: %s; set data.decimal = ',' "
            "(--set \"data.decimal=','\"; data.reference.decimal / data.current.decimal when only one file has them)"
            " - numbers grouped with thousands dots (1.234,56) are never read: export them without grouping",
            shown,
        )
    parts = []
    if dates:
        parts.append(f"monitored as dates: {', '.join(dates)}")
    if ids:
        parts.append(f"identifiers, not tested for drift: {', '.join(ids)}")
    if parts:
        logger.log(
            NOTICE,
            "from the data: %s (list them in [columns] to decide yourself, or set columns.infer = false)",
            "; ".join(parts),
        )
    return config


def _run_monitoring(
    config: Config, request: MonitorRequest, source: ReferenceSource, current_path: Path, progress: Progress | None
) -> MonitorOutcome:
    started = time.perf_counter()
    settings = settings_from_config(config)
    engine = request.engine or config.monitor.engine
    champion = None
    if config.model.monitor != "off":
        from churnops.pipeline.scoring import prepare_model_imports

        champion = prepare_model_imports(config)

    extra_files: dict[str, Path] = {}
    if engine in ("native", "dask"):
        profile, reference_info, cache_status, _ = get_reference_profile(
            config, source, settings, request.use_cache and config.monitor.use_profile_cache, progress=progress
        )
        loaded = time.perf_counter()
        probe = TableReader(current_path, dialect=config.dialect)
        jobs = jobs_of(config)
        try:
            streaming = engine == "dask" or is_streaming(config, probe)
            above = config.monitor.sample_duplicates_above
            sample = ROW_SAMPLE if streaming and above and probe.estimated_rows > above else 1
            builder = BatchBuilder(profile, probe.header, settings, streaming=streaming, jobs=jobs, row_sample=sample)
        except InputDataError as exc:
            raise InputDataError(f"{current_path}: {exc}") from None
        extra_mode: dict[str, Any] = {}
        if engine == "dask":
            from churnops.integrations.dask_engine import accumulate_on_dask

            builder, sha, extra_mode = accumulate_on_dask(config, profile, current_path, builder, settings)
        else:
            reader = TableReader(current_path, columns=builder.needed, dialect=config.dialect, arrow=builder.streaming)
            reader.progress = _reading(progress, "current", reader)
            for chunk in reader:
                builder.update(chunk)
            sha = reader.sha256
        tally = builder.finish()
        current_info = DatasetInfo(str(current_path), tally.rows, sha, None, len(probe.header))
        read_done = time.perf_counter()
        tested = progress and (lambda done, total: progress("testing columns", done, total))
        result = evaluate(profile, tally, settings, reference_info, current_info, engine=engine, on_column=tested)
        result = replace(result, mode={**mode_facts(profile, tally, jobs, config), **extra_mode})
        timings = {"reference_profile_s": loaded - started, "read_and_accumulate_current_s": read_done - loaded}
    elif engine == "evidently":
        from churnops.integrations.evidently_engine import run_evidently

        reference_frame = read_table(source.path, source.row_range, config.dialect_for("reference"))
        current = read_table(current_path, dialect=config.dialect)
        reference_info = DatasetInfo(
            str(source.path),
            reference_frame.height,
            sha256_file(source.path),
            source.row_range,
            reference_frame.width,
        )
        current_info = DatasetInfo(str(current_path), current.height, sha256_file(current_path), None, current.width)
        evidently_html = config.monitoring_dir / "evidently_report.html"
        result = run_evidently(reference_frame, current, settings, reference_info, current_info, evidently_html)
        if config.monitor.evidently_html:
            extra_files["evidently_report"] = evidently_html
        cache_status = "off"
        timings = {"read_s": time.perf_counter() - started}
    else:
        raise ConfigError(f"monitor.engine: unknown engine '{engine}' (use native, dask or evidently)")

    result = _with_model(config, result, source, current_path, champion, progress)
    result = replace(result, verdict=decide(result, config.thresholds.trigger_on))
    for column in result.columns:
        if column.drift_detected:
            logger.debug(
                "column drift: %s %s=%.4g (threshold %g)",
                column.name,
                column.test,
                column.p_value if column.kind == "p_value" else column.statistic,
                column.threshold,
            )
    computed = time.perf_counter()
    result = replace(
        result,
        timings={**timings, **result.timings, "total_s": computed - started},
    )
    context = ReportContext("", "", False, reproduce_command(request, source, current_path, engine))
    return write_outputs(config, result, cache_status, extra_files, context)


def _with_model(
    config: Config,
    result: MonitoringResult,
    source: ReferenceSource,
    current: Path,
    champion: Any,
    progress: Progress | None = None,
) -> MonitoringResult:
    """Add the view of the ``champion`` model (prediction drift, performance, decay) when there is
    one; its stages' times join the run's timings."""
    if config.model.monitor == "off" or champion is None:
        return result
    from churnops.pipeline.modeling import model_section

    try:
        found = model_section(config, result, source.path, source.row_range, current, champion, progress)
    except ChurnopsError as exc:
        logger.warning("model monitoring skipped: %s", exc)
        return replace(result, model=None)
    if found is None:
        return result
    section, prediction = found
    timings = {name: float(value) for name, value in (section.get("timings") or {}).items()}
    return replace(result, model=section, prediction_drift=prediction, timings={**result.timings, **timings})


def reproduce_command(request: MonitorRequest, source: ReferenceSource, current: Path, engine: str) -> str:
    """The command line that repeats this comparison."""
    parts = ["churnops", "monitor", "--reference", str(source.path), "--current", str(current)]
    if source.row_range is not None:
        parts += ["--reference-rows", f"{source.row_range[0]}:{source.row_range[1]}"]
    if engine != "native":
        parts += ["--engine", engine]
    return " ".join(_shell_quote(part) for part in parts)


def _shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


TRIGGER_SIGNS = ("alert", "drift", "trigger")


@contextlib.contextmanager
def open_no_follow(path: Path) -> Any:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        yield handle


def check_trigger_is_ours(path: Path) -> None:
    """Refuse to replace or remove a file at ``paths.trigger`` that churnops did not write.

    A trigger is replaced on an alert and removed otherwise: a configured path naming someone's
    file (notes, a model, a report) would lose it. What is there must be a link (replaced, never
    followed), empty, or read like a trigger - a first line that speaks of an alert or drift (ours,
    the seed's), or a ``run_id:`` line.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode) or stat.S_ISDIR(info.st_mode):
        return  # a link is replaced, never followed; a folder is refused by the commit itself
    head = b""
    if stat.S_ISREG(info.st_mode):
        with contextlib.suppress(OSError), open_no_follow(path) as handle:
            head = handle.read(65_536)
    text = head.decode("utf-8", errors="replace")
    first = text.split("\n", 1)[0].lower()
    if stat.S_ISREG(info.st_mode) and (
        not text.strip() or any(sign in first for sign in TRIGGER_SIGNS) or "\nrun_id: " in text
    ):
        return
    raise OutputWriteError(
        f"paths.trigger ({path}) is a file churnops did not write (it does not read like a trigger); churnops "
        "writes and removes the trigger there: move that file away or choose another path"
    )


def write_outputs(
    config: Config,
    result: MonitoringResult,
    cache_status: str,
    extra_files: dict[str, Path],
    context: ReportContext | None = None,
) -> MonitorOutcome:
    """Commit metrics, report (linked and standalone), stylesheet and trigger together, then the
    history row; call with the workspace held (:func:`run_monitoring` does)."""
    out_dir = config.monitoring_dir
    metrics_path = out_dir / METRICS_FILE
    report_path = out_dir / REPORT_FILE
    trigger_path = config.resolve(config.paths.trigger)
    verdict = result.verdict or decide(result, config.thresholds.trigger_on)
    result = replace(result, verdict=verdict)
    raised = verdict.trigger
    outputs: dict[str, Any] = {
        "metrics": str(metrics_path),
        "report": str(report_path),
        "standalone_report": str(out_dir / STANDALONE_FILE),
        "trigger": str(trigger_path) if raised else None,
        "profile_cache": cache_status,
        **{name: str(path) for name, path in extra_files.items()},
    }
    context = replace(
        context or ReportContext("", "", False),
        metrics_path=str(metrics_path),
        trigger_path=str(trigger_path),
        trigger_written=raised,
    )
    check_trigger_is_ours(trigger_path)
    document = metrics_document(result, outputs)
    if config.history.enabled:
        context = replace(context, **_trends(config, document))
    stale_removed = False
    try:
        with OutputTransaction(out_dir, result.run_id, history=config.history.enabled) as transaction:
            transaction.write(metrics_path, render_metrics_json(document))
            transaction.write(out_dir / CSS_FILE, report_stylesheet())
            linked, standalone = render_reports(result, context)
            transaction.write(report_path, linked)
            transaction.write(out_dir / STANDALONE_FILE, standalone)
            if raised:
                transaction.write(trigger_path, render_trigger(result, str(report_path), str(metrics_path)))
            else:
                stale_removed = os.path.lexists(trigger_path)
                transaction.remove(trigger_path)
            transaction.commit(on_committed=lambda: record_history(config, document))
    except OSError as exc:
        raise OutputWriteError(
            f"cannot write the monitoring outputs in {out_dir}: {_os_reason(exc)} (the previous outputs are kept)"
        ) from None
    return MonitorOutcome(
        result=result,
        metrics_path=metrics_path,
        report_path=report_path,
        trigger_path=trigger_path,
        trigger_written=raised,
        stale_trigger_removed=stale_removed,
        profile_cache=cache_status,
        extra_files=extra_files,
        context=context,
        document=document,
    )


def _trends(config: Config, document: dict[str, Any]) -> dict[str, Any]:
    """The report's trends from the history; an unavailable history never stops the monitoring."""
    from churnops.pipeline.history import trends

    try:
        found = trends(config, document)
    except ChurnopsError as exc:
        logger.warning("monitoring history unavailable: %s", exc)
        return {"trends": [], "history_note": f"History unavailable: {exc}"}
    runs = len(found[0].points) if found else 0
    if runs < 2:
        return {"trends": [], "history_note": None}
    return {"trends": found, "history_note": f"The last {runs} runs recorded in the monitoring history."}


def _os_reason(exc: OSError) -> str:
    """An OSError in words, e.g. 'no space left on device' or 'permission denied: /x'."""
    reason = (exc.strerror or str(exc)).lower()
    return f"{reason}: {exc.filename}" if exc.filename else reason


def rewrite_report(config: Config, outcome: MonitorOutcome, **changes: Any) -> None:
    """Render the report again with more context (e.g. the batch's DVC version), atomically."""
    context = replace(outcome.context, **changes)
    try:
        with (
            workspace(config, purpose="report"),
            OutputTransaction(config.monitoring_dir, outcome.result.run_id) as transaction,
        ):
            linked, standalone = render_reports(outcome.result, context)
            transaction.write(outcome.report_path, linked)
            transaction.write(config.monitoring_dir / STANDALONE_FILE, standalone)
            transaction.commit()
    except OSError as exc:
        raise OutputWriteError(f"cannot rewrite the report in {config.monitoring_dir}: {_os_reason(exc)}") from None
