"""Seed phase 2 as one function: read the data, compare, write metrics, report and trigger."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from churnops.config import CSS_FILE, METRICS_FILE, REPORT_FILE, STANDALONE_FILE, Config
from churnops.config.models import REPLACED_TRIGGER
from churnops.errors import NOTICE, ChurnopsError, ConfigError, OutputWriteError
from churnops.monitor.drift import with_any_finding_rate
from churnops.monitor.profile import ReferenceProfile
from churnops.monitor.results import MonitoringResult
from churnops.monitor.settings import settings_from_config
from churnops.monitor.verdict import decide
from churnops.pipeline.engines import choose_engine
from churnops.pipeline.inference import inferred_configuration
from churnops.pipeline.outputs import OutputTransaction
from churnops.pipeline.progress import Progress
from churnops.pipeline.reference import ReferenceSource, get_reference_profile
from churnops.pipeline.workspace import record_history, workspace
from churnops.redact import redact
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
    reference_label: str | None = None
    """How the reference is named in the outputs when ``reference`` is a local copy (its URL)."""
    current_label: str | None = None
    """How the batch is named in the outputs when ``current`` is a local copy (its URL)."""
    options: tuple[str, ...] = ()
    """The command-line options beside the files that decided this run (``--config``, ``--set``,
    ``--target``...), as the report's command that repeats it names them."""


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


def build_reference_profile(
    config: Config, request: MonitorRequest, progress: Progress | None = None
) -> tuple[Path, ReferenceProfile]:
    """``churnops profile build``: compute the reference profile and store it in the cache."""
    source = reference_source(config, request)
    # the columns classified as monitor classifies them (dates, identifiers): the same profile, the same key
    config = inferred_configuration(config, source.path, use_cache=True)
    settings = settings_from_config(config)
    if (request.engine or config.monitor.engine) == "spark":
        from churnops.integrations.spark_engine import spark_input, spark_session
        from churnops.pipeline.engines import spark_reference_profile

        if spark_input(source.path).local_file is None:
            raise ConfigError(
                f"{source.path}: a profile is cached for one reference file (by its sha256); a folder or a table "
                "is profiled by each run"
            )
        with spark_session(config) as spark:
            profile, _, _, spark_cache = spark_reference_profile(
                spark, config, source, settings, True, rebuild=True, progress=progress
            )
        assert spark_cache is not None
        return spark_cache, profile
    profile, _, _, cache_file = get_reference_profile(
        config, source, settings, use_cache=True, rebuild=True, progress=progress
    )
    return cache_file, profile


def run_monitoring(
    config: Config,
    request: MonitorRequest | None = None,
    progress: Progress | None = None,
    wait: bool = True,
    waiting: Callable[[str], None] | None = None,
    startup: float | None = None,
) -> MonitorOutcome:
    """Compare the current batch with the reference and write every output, as one story.

    Outputs (committed together): ``<monitoring_dir>/monitoring_metrics.json``,
    ``monitoring_report.html``, its standalone copy and ``report.css``; ``trigger.txt`` is written
    when the run's verdict raises the trigger and removed otherwise; the run's history row. The
    whole run holds the workspace lock (``wait``: wait for another run to finish, telling
    ``waiting`` once). Nothing is written when reading or comparing fails. ``startup``: seconds
    spent before this call (starting Python, importing, the configuration), counted in the run's
    timings (the CLI gives :func:`~churnops.pipeline.progress.process_age`).
    """
    request = request or MonitorRequest()
    source = reference_source(config, request)
    if (
        request.reference is not None
        and request.reference_rows is None
        and not request.whole_reference
        and "reference_rows" in config.data.model_fields_set
        and config.data.reference_rows is not None
    ):
        start, end = config.data.reference_rows
        logger.log(
            NOTICE,
            "data.reference_rows is for the configured reference (paths.reference); the file given with --reference "
            "is read whole - give --reference-rows %d:%d for that window of it",
            start,
            end,
        )
    current_path = request.current or config.resolve(config.paths.production)
    inputs = {"--reference" if request.reference else "paths.reference": source.path}
    if isinstance(current_path, Path):  # not an object read in place from object storage
        inputs["--current" if request.current else "paths.production"] = current_path
    config.check_paths(inputs=inputs)
    engine = choose_engine(request.engine or config.monitor.engine)
    fetch = tuple(
        key
        for key, given in (("reference", request.reference), ("production", request.current))
        if given is None and getattr(config.paths, f"{key}_url")
    )
    for path, key in ((source.path, "reference"), (current_path, "production")):
        if key not in fetch and isinstance(path, Path):  # before any work: a missing batch is said at once
            engine.check_input(path)
    with workspace(config, wait=wait, waiting=waiting, purpose="monitor"), _under_way():
        started = time.perf_counter()
        if fetch:  # paths.*_url: fetched into the local paths while the workspace is held
            from churnops.pipeline.storage import fetch_configured

            fetched = {f.key: f.url for f in fetch_configured(config, fetch)}
            request = replace(
                request,
                reference_label=request.reference_label or fetched.get("reference"),
                current_label=request.current_label or fetched.get("production"),
            )
            before_fetch = time.perf_counter() - started
            started = time.perf_counter()
            for path in (source.path, current_path):
                engine.check_input(path)
        use_cache = request.use_cache and config.monitor.use_profile_cache
        config = inferred_configuration(config, source.path, use_cache=use_cache)
        before = {"startup_s": startup} if startup is not None else {}
        if fetch:
            before["fetch_s"] = before_fetch
        before["infer_columns_s"] = time.perf_counter() - started
        return _run_monitoring(config, request, source, current_path, progress, before)


@contextlib.contextmanager
def _under_way() -> Iterator[None]:
    """Mark the errors of a run under way (:attr:`~churnops.errors.ChurnopsError.during_run`)."""
    try:
        yield
    except ChurnopsError as exc:
        exc.during_run = True
        raise


def _run_monitoring(
    config: Config,
    request: MonitorRequest,
    source: ReferenceSource,
    current_path: Path,
    progress: Progress | None,
    before: dict[str, float],
) -> MonitorOutcome:
    started = time.perf_counter()
    settings = settings_from_config(config)
    engine = choose_engine(request.engine or config.monitor.engine)
    champion: Any = None
    if config.model.monitor != "off" and config.model_registry_missing():  # no registry: nothing to load
        from churnops.pipeline.champion import without_registry

        champion = without_registry(config)
    elif config.model.monitor != "off":
        from churnops.pipeline.scoring import prepare_model_imports

        champion = prepare_model_imports(config)

    use_cache = request.use_cache and config.monitor.use_profile_cache
    if not use_cache and config.monitor.use_profile_cache:  # --no-cache: the model's cache too
        config = config.model_copy(update={"monitor": config.monitor.model_copy(update={"use_profile_cache": False})})
    from churnops.monitor.prepare import AmbiguousDates

    decided: set[str] = set()
    while True:
        try:
            run = engine.compare(config, source, current_path, settings, use_cache, progress)
            break
        except AmbiguousDates as exc:  # a piece of the batch reads both ways: the whole column decides
            from churnops.pipeline.inference import batch_date_format
            from churnops.pipeline.starter import with_formats_added

            way = None if exc.column in decided else batch_date_format(config, current_path, exc.column)
            if way is None:
                raise
            decided.add(exc.column)
            logger.info("dates of %s in the batch read as %s (decided from the whole column)", exc.column, way)
            config = with_formats_added(config, {exc.column: way})
            settings = settings_from_config(config)
    result, cache_status, extra_files, timings = run.result, run.cache_status, run.extra_files, run.timings
    result = with_any_finding_rate(result, settings)
    result = _with_model(config, result, source, current_path, champion, progress)
    result = replace(result, verdict=decide(result, config.thresholds.trigger_on))
    if request.reference_label or request.current_label:  # copies of remote tables: name them by their URLs
        result = replace(
            result,
            reference=replace(result.reference, path=request.reference_label or result.reference.path),
            current=replace(result.current, path=request.current_label or result.current.path),
        )
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
        timings={**before, **timings, **result.timings, "total_s": sum(before.values()) + computed - started},
    )
    context = ReportContext("", "", False, reproduce_command(request, source, current_path, engine.name))
    return write_outputs(config, result, cache_status, extra_files, context)


def _named(champion: Any) -> dict[str, Any]:
    """The name, version and alias of the champion a section is about."""
    return {"name": champion.name, "version": champion.version, "alias": champion.alias, "run_id": champion.run_id}


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
    from churnops.pipeline.champion import ModelUnavailable
    from churnops.pipeline.scoring import unavailable_section

    if isinstance(champion, ModelUnavailable):
        logger.warning("model not checked: %s", champion.error)
        return replace(result, model=unavailable_section(config, champion.error))

    if not current.is_file():
        why = (
            f"the model scores a batch given as one file ({current.name} is not); "
            'model.monitor = "off" monitors such batches without it'
        )
        logger.warning("model not checked: %s", why)
        return replace(result, model=unavailable_section(config, why) | _named(champion))
    from churnops.pipeline.modeling import model_section

    try:
        found = model_section(config, result, source.path, source.row_range, current, champion, progress)
    except ChurnopsError as exc:
        why = f"the batch could not be scored: {exc}"
        logger.warning("model not checked: %s", why)
        return replace(result, model=unavailable_section(config, why) | _named(champion))
    if found is None:
        return result
    section, prediction = found
    timings = {name: float(value) for name, value in (section.get("timings") or {}).items()}
    return replace(result, model=section, prediction_drift=prediction, timings={**result.timings, **timings})


def reproduce_command(request: MonitorRequest, source: ReferenceSource, current: Path, engine: str) -> str:
    """The command line that repeats this comparison."""
    reference = request.reference_label or str(source.path)
    parts = ["churnops", "monitor", "--reference", reference, "--current", request.current_label or str(current)]
    if source.row_range is not None:
        parts += ["--reference-rows", f"{source.row_range[0]}:{source.row_range[1]}"]
    if engine != "native":
        parts += ["--engine", engine]
    parts += [redact(option) for option in request.options]
    return " ".join(shell_quote(part) for part in parts)


def shell_quote(text: str) -> str:
    r"""``text`` quoted for a POSIX shell; with characters the report shows escaped (control and
    invisible ones), as ``$'...'`` with the same escapes, which bash and zsh read back as written.

    >>> shell_quote("batch 1.csv"), shell_quote("batch\u200b.csv"), shell_quote("it's\x1b.csv")
    ("'batch 1.csv'", "$'batch\\u200b.csv'", "$'it\\'s\\x1b.csv'")
    """
    import shlex

    from churnops.escape import has_controls, terminal

    if not has_controls(text):
        return shlex.quote(text)
    return "$'" + terminal(text.replace("\\", "\\\\").replace("'", "\\'"), keep_newlines=False) + "'"


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


def other_alert(config: Config, trigger: Path, metrics: Path, text: str | None = None) -> str | None:
    """The metrics file of another configuration of this workspace whose alert the trigger at
    ``trigger`` (or the trigger text ``text``) still is - its own monitoring folder, the same
    ``paths.trigger`` - or None.

    The trigger's ``metrics:`` line must name a metrics file other than ``metrics`` whose run id is
    the trigger's and which says it raised the trigger. In a workspace copied or moved elsewhere
    the line names the old place: the same file is looked for at the same place inside this
    workspace first (the run id tells it is the one); only when none is there is the file named
    outside it taken (another configuration's monitoring folder outside the workspace)."""
    from churnops.escape import one_line

    if text is None:
        text = trigger_text(trigger)
        if text is None:
            return None
    fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    named, run_id = fields.get("metrics"), fields.get("run_id")
    if not named or not run_id or named == one_line(str(metrics)) or not Path(named).is_absolute():
        return None
    root = Path(os.path.realpath(config.root))
    own = Path(os.path.realpath(metrics))
    parts = Path(named).parts[1:]
    # the file named, else the same relative place in this workspace (a copy or a move)
    candidates = [Path(named), *(root.joinpath(*parts[i:]) for i in range(len(parts) - 1))]
    for path in candidates:
        try:
            real = Path(os.path.realpath(path))
            if not real.is_relative_to(root) or not real.is_file():
                continue
        except OSError:
            continue
        raised = _raised_by(path, run_id)
        if raised is None:
            continue
        if real == own:
            return None  # this configuration's own run, in a copied or moved workspace
        return str(path) if raised else None
    # nothing of that run in this workspace: a configuration whose monitoring folder is elsewhere
    # (an absolute paths.monitoring_dir), its metrics where the trigger says
    try:
        if Path(os.path.realpath(named)) == own:
            return None
    except OSError:
        return None
    return named if _raised_by(Path(named), run_id) else None


def _raised_by(metrics: Path, run_id: str) -> bool | None:
    """Whether the run ``run_id`` whose metrics are at ``metrics`` raised the trigger; None when
    that file is not that run's metrics."""
    from churnops.pipeline.champion import read_document

    document = read_document(metrics)
    if not isinstance(document, dict) or document.get("run_id") != run_id:
        return None
    verdict = document.get("verdict")
    return isinstance(verdict, dict) and verdict.get("trigger") is True


def trigger_text(path: Path) -> str | None:
    """The beginning (64 KiB) of a trigger file as text, read without following a link; None when
    it cannot be read."""
    try:
        with open_no_follow(path) as handle:
            return handle.read(65_536).decode("utf-8", errors="replace")
    except OSError:
        return None


def _replaced_trigger(config: Config, trigger: Path, metrics: Path) -> tuple[str, str] | None:
    """The trigger text this configuration's alert replaced, and its metrics file, when that
    alert still stands."""
    text = trigger_text(config.monitoring_dir / REPLACED_TRIGGER)
    if text is None:
        return None
    owner = other_alert(config, trigger, metrics, text)
    return (text, owner) if owner is not None else None


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
    from churnops.pipeline.champion import CHECKED_FILE, checked_record

    document = metrics_document(result, outputs)
    began = time.perf_counter()
    if config.history.enabled:
        context = replace(context, **_trends(config, document))
    linked, standalone = render_reports(result, context)
    # the report cannot show its own rendering time; the metrics can
    document["timings"] = {**document.get("timings", {}), "report_s": time.perf_counter() - began}
    stale_removed = False
    try:
        with OutputTransaction(out_dir, result.run_id, history=config.history.enabled) as transaction:
            transaction.write(metrics_path, render_metrics_json(document))
            transaction.write(out_dir / CSS_FILE, report_stylesheet())
            transaction.write(report_path, linked)
            transaction.write(out_dir / STANDALONE_FILE, standalone)
            checked = checked_record(document.get("model"))
            if checked is not None:  # a later run without a model does not forget it is expected
                transaction.write(out_dir / CHECKED_FILE, checked)
            standing = trigger_text(trigger_path)
            owner = None if standing is None else other_alert(config, trigger_path, metrics_path, standing)
            if owner is not None:
                logger.warning(
                    "%s holds the alert of another configuration (its metrics: %s): %s - give each configuration "
                    "its own paths.trigger",
                    trigger_path,
                    owner,
                    "replaced by this run's, and put back when this configuration's alert ends"
                    if raised
                    else "left in place",
                )
            replaced = None if owner is not None else _replaced_trigger(config, trigger_path, metrics_path)
            if raised:
                if owner is not None and standing is not None:  # kept, to be put back while it stands
                    transaction.write(out_dir / REPLACED_TRIGGER, standing)
                transaction.write(trigger_path, render_trigger(result, str(report_path), str(metrics_path)))
            elif owner is not None:
                pass  # another configuration's standing alert: not this run's to remove
            elif replaced is not None:
                logger.warning(
                    "%s: this configuration's alert ended; the alert of another configuration it had replaced "
                    "still stands (its metrics: %s) and is put back - give each configuration its own paths.trigger",
                    trigger_path,
                    replaced[1],
                )
                transaction.write(trigger_path, replaced[0])
                transaction.remove(out_dir / REPLACED_TRIGGER)
            else:
                stale_removed = os.path.lexists(trigger_path)
                transaction.remove(trigger_path)
                transaction.remove(out_dir / REPLACED_TRIGGER)
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
