"""churnops from Python: tables in, a typed result out (see `monitor`).

Everything a notebook or a pipeline task needs is exported by the package itself::

    import churnops

    result = churnops.monitor(reference_df, batch_df, target="churned")
    result.verdict.status           # "ok", "warning" or "alert"
    result.to_pandas()              # one row per column: test, score, p-value, drifted
    result.save_html("report.html") # the same report as `churnops monitor`
    result.raise_for_drift()        # DriftDetected when the run raises an alert

The comparison is the one ``churnops monitor`` makes (the same statistics, verdict rules and
configuration), in memory: nothing is written unless you ask for it.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnops.errors import ChurnopsError, ConfigError, InputDataError

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

    from churnops.config import Config
    from churnops.monitor.profile import ReferenceProfile
    from churnops.monitor.results import MonitoringResult, Verdict

__all__ = [
    "ChurnopsNotice",
    "DriftDetected",
    "MonitorResult",
    "Profile",
    "config_from_evidently",
    "generate",
    "load_config",
    "load_profile",
    "monitor",
    "profile",
    "version_batch",
]


class ChurnopsNotice(UserWarning):
    """What churnops assumed about your columns (the command's NOTICE lines), issued as a Python
    warning by `monitor` and `profile` and kept in ``result.notices``; silence it with
    ``warnings.simplefilter("ignore", churnops.ChurnopsNotice)``."""


def _say(notices: list[str]) -> None:
    import warnings

    for notice in notices:
        warnings.warn(notice, ChurnopsNotice, stacklevel=3)


class DriftDetected(ChurnopsError):
    """Raised by `MonitorResult.raise_for_drift` when the run raises an alert.

    ``result`` is the `MonitorResult`; ``str(error)`` names every alert, joined with "; ".
    """

    def __init__(self, result: MonitorResult) -> None:
        self.result = result
        reasons = [r.message for r in result.verdict.alerts] or [result.verdict.headline]
        super().__init__("drift alert: " + "; ".join(reasons))

    def __reduce__(self) -> tuple[Any, ...]:  # picklable: process pools send it back
        return (DriftDetected, (self.result,))


@dataclass(frozen=True)
class MonitorResult:
    """What `monitor` found. Its attributes cannot be reassigned and no method changes it; the
    lists inside ``result`` and ``verdict`` are plain data: read them, do not edit them."""

    result: MonitoringResult
    """The full comparison (the object the metrics JSON is written from)."""
    config: Config = field(repr=False)
    notices: tuple[str, ...] = ()
    """What churnops assumed about your columns, in words (the command prints these as NOTICE
    lines): dates and identifiers it recognised, a column that looks like the label, settings
    that name no column of your data."""

    @property
    def verdict(self) -> Verdict:
        """``status`` (ok / warning / alert), ``headline``, ``reasons``, ``alerts``, ``trigger``."""
        assert self.result.verdict is not None
        return self.result.verdict

    @property
    def drift_detected(self) -> bool:
        """Whether the run raises an alert (what writes ``trigger.txt`` in the command)."""
        return bool(self.verdict.trigger)

    @property
    def drifted_columns(self) -> list[str]:
        """The feature columns that drifted in the whole batch (a copy)."""
        return list(self.result.dataset_drift.drifted_columns)

    def to_dict(self) -> dict[str, Any]:
        """The metrics document ``churnops monitor`` writes (the same sections and JSON Schema; the
        command adds where it wrote its files, ``outputs``, and how it read them, in ``mode``)."""
        from churnops.report.metrics import metrics_document

        return metrics_document(self.result)

    def to_json(self, indent: int | None = 2) -> str:
        """`to_dict` as JSON text (what ``monitoring_metrics.json`` holds)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    def to_polars(self) -> pl.DataFrame:
        """One row per tested column: role, type, test, statistic, p-value, threshold, drifted."""
        import polars as pl

        rows = [
            {
                "column": c.name,
                "role": c.role,
                "type": c.column_type,
                "test": c.test,
                "statistic": c.statistic,
                "p_value": c.p_value,
                "threshold": c.threshold,
                "drift_score": c.drift_score,
                "drift_detected": bool(c.drift_detected),
            }
            for c in self.result.columns
        ]
        schema = {
            "column": pl.String, "role": pl.String, "type": pl.String, "test": pl.String,
            "statistic": pl.Float64, "p_value": pl.Float64, "threshold": pl.Float64,
            "drift_score": pl.Float64, "drift_detected": pl.Boolean,
        }  # fmt: skip
        return pl.DataFrame(rows, schema=schema)

    def to_pandas(self) -> pd.DataFrame:
        """`to_polars` as a pandas DataFrame (needs pandas)."""
        return self.to_polars().to_pandas()

    def html(self) -> str:
        """The report as one standalone HTML page (its stylesheet inline, no JavaScript)."""
        from churnops.report.html import ReportContext, render_reports

        return render_reports(self.result, ReportContext("", "", False))[1]

    def save_html(self, path: str | Path) -> Path:
        """Write `html` to ``path`` (replaced, never followed if it is a link); the path."""
        from churnops.data.files import atomic_write_text, refuse_folder
        from churnops.errors import OutputWriteError

        target = _path(path, "save_html")
        refuse_folder(target)
        try:
            atomic_write_text(target, self.html())  # a link at the path is replaced, not followed
        except OSError as exc:
            raise OutputWriteError(f"{target}: cannot write the report: {exc.strerror or exc}") from None
        return target

    def _repr_html_(self) -> str:
        """The report inline in Jupyter and VS Code: inside a sandboxed frame, so that its styles
        never reach the notebook and nothing in it can run."""
        page = html.escape(self.html(), quote=True)
        return (
            f'<iframe title="churnops report" sandbox="" srcdoc="{page}" '
            'style="width:100%;height:900px;border:1px solid #ddd"></iframe>'
        )

    def notify(
        self, config: Config | str | Path | None = None, *, dry_run: bool = False, errors: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Send the run's notification on the ``[notify]`` channels of ``config`` (default: the
        configuration the run used), as ``churnops notify`` does: the same messages, retries,
        escaping and redaction; e-mails attach the standalone report and the metrics. ``errors``:
        failures of later steps (a versioning that failed), listed in the message, which is then
        sent as an error. Returns one ``{"channel", "status", "attempts", "error"}`` per channel
        ("sent", "failed", "skipped", "dry-run", or "not sent" with the message as ``preview``
        when no channel is configured); a failed channel is reported there, never raised."""
        import tempfile

        from churnops.integrations.notifications.message import build_notification
        from churnops.integrations.notifications.send import send_all
        from churnops.pipeline.notifying import status_of

        chosen = self.config if config is None else _chosen(config, {})
        document = self.to_dict()
        problems = [str(e) for e in errors or []]
        status = "error" if problems else status_of(document)
        settings = chosen.notify
        note = build_notification(status, document, problems, settings.top_columns, settings.report_url)
        if not settings.channels:
            return [{"channel": "none", "status": "not sent", "attempts": 0, "error": None, "preview": note.text()}]
        with tempfile.TemporaryDirectory(prefix="churnops-notify-") as folder:
            report = Path(folder) / "monitoring_report.standalone.html"
            metrics = Path(folder) / "monitoring_metrics.json"
            report.write_text(self.html(), encoding="utf-8")
            metrics.write_text(self.to_json(), encoding="utf-8")
            deliveries = send_all(chosen, note, [report, metrics], dry_run)
        return [d.to_dict() | ({"preview": d.preview} if d.preview else {}) for d in deliveries]

    def raise_for_drift(self) -> MonitorResult:
        """Raise `DriftDetected` when the run raises an alert; else return the result."""
        if self.drift_detected:
            raise DriftDetected(self)
        return self

    def __repr__(self) -> str:
        drift = self.result.dataset_drift
        return (
            f"<MonitorResult {self.verdict.status}: {len(drift.drifted_columns)} of {drift.n_columns} columns "
            f"drifted (score {drift.score:.3f}, threshold {drift.threshold:g})>"
        )


def load_config(path: str | Path | None = None, **overrides: Any) -> Config:
    """The configuration ``churnops`` commands use: ``path`` (a churnops.toml, or a project folder
    and its churnops.toml if it has one; default: the current folder), else the built-in defaults,
    with ``overrides`` on top, by dotted key written with ``__`` (``thresholds__dataset_drift=0.2``)
    - the same as ``--set``. Relative paths in it are relative to the file's folder.

    >>> churnops_config = load_config(thresholds__dataset_drift=0.2)
    >>> churnops_config.thresholds.dataset_drift
    0.2
    """
    from churnops.config import load_config as read

    return read(_path(path, "load_config") if path is not None else None, _dotted(overrides))


def _dotted(overrides: dict[str, Any]) -> dict[str, Any]:
    unknown = [key for key in overrides if "__" not in key]
    if unknown:
        raise ConfigError(
            f"{unknown[0]}: not a keyword of this function; configuration keys are written section__key "
            "(e.g. thresholds__dataset_drift=0.2, drift__verdict='calibrated')"
        )
    return {key.replace("__", "."): value for key, value in overrides.items()}


def _path(value: Any, what: str) -> Path:
    """``value`` as a path, or a :class:`ConfigError` naming ``what`` expected one."""
    if isinstance(value, str | Path) and str(value):
        return Path(value).expanduser()
    raise ConfigError(f"{what}: expected a file path, got {type(value).__name__}")


UNSUPPORTED = ("Duration", "Time", "List", "Array", "Struct", "Object", "Binary", "Null")
"""Column types churnops does not monitor (as in files: nested columns are refused)."""


def _frame(data: Any, what: str, config: Config) -> pl.DataFrame:
    """A polars DataFrame from a polars, pandas or pyarrow table, or a CSV/Parquet path read
    with the configuration's separator, decimal mark and encoding (no copy where the table is
    already in Arrow memory); unusable input is one `InputDataError`."""
    import polars as pl

    try:
        if isinstance(data, pl.LazyFrame):
            data = data.collect()
        if isinstance(data, str | Path):
            from churnops.data.io import read_table

            data = read_table(Path(data).expanduser(), dialect=config.dialect_for(what))
        module = type(data).__module__.split(".")[0]
        if not isinstance(data, pl.DataFrame) and module == "pandas" and hasattr(data, "columns"):
            data = _from_pandas(data, what)
        elif not isinstance(data, pl.DataFrame) and module == "pyarrow" and hasattr(data, "schema"):
            data = pl.from_arrow(data)
    except ChurnopsError:
        raise
    except Exception as exc:
        # pyarrow's own errors (ArrowInvalid...) have no common base: recognised by their module
        known = isinstance(exc, pl.exceptions.PolarsError | ValueError | TypeError | OSError | OverflowError)
        if not known and not type(exc).__module__.startswith(("pyarrow", "polars")):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputDataError(f"{what}: cannot be read as a table: {first[:300]}") from None
    if not isinstance(data, pl.DataFrame):
        raise InputDataError(
            f"{what}: expected a polars, pandas or pyarrow table or a CSV/Parquet path, got {type(data).__name__}"
        )
    wide = [name for name, dtype in data.schema.items() if type(dtype).__name__ in ("Decimal", "Int128", "UInt128")]
    if wide:  # as the command reads them: numbers too wide for 64 bits, and decimals, as floats
        data = data.with_columns(pl.col(wide).cast(pl.Float64))
    assert isinstance(data, pl.DataFrame)
    odd = [f"{name} ({dtype})" for name, dtype in data.schema.items() if type(dtype).__name__ in UNSUPPORTED]
    if odd:
        raise InputDataError(
            f"{what}: column types churnops does not monitor: {', '.join(odd[:5])}"
            f"{', ...' if len(odd) > 5 else ''} - drop or convert them (numbers, text, dates, true/false)"
        )
    return data


def _from_pandas(frame: Any, what: str) -> pl.DataFrame:
    import polars as pl

    if type(frame.columns).__name__ == "MultiIndex":
        raise InputDataError(f"{what}: the columns have several levels (a MultiIndex); flatten the names first")
    names = [str(c) for c in frame.columns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputDataError(f"{what}: repeated column names: {', '.join(repeated[:5])}")
    odd = [f"{c} ({t})" for c, t in frame.dtypes.items() if str(t).startswith(("period", "interval", "complex"))]
    if odd:
        raise InputDataError(
            f"{what}: column types churnops does not monitor: {', '.join(odd[:5])} - drop or convert them "
            "(numbers, text, dates, true/false)"
        )
    return pl.from_pandas(frame)


def _chosen(config: Config | str | Path | None, extra: dict[str, Any], spark: bool = False) -> Config:
    """The configuration a call works with: ``config`` (an object, a path or None) and ``extra``
    (``spark``: for Spark DataFrames, which are summarized whatever the engine and mode say)."""
    from churnops.config import Config
    from churnops.config import load_config as read

    if isinstance(config, Config):
        from churnops.config.loading import config_with

        chosen = config_with(config, extra) if extra else config
    elif config is None or isinstance(config, str | Path):
        chosen = read(Path(config) if config is not None else None, extra)
    else:
        raise ConfigError(f"config: expected a Config (churnops.load_config) or a path, got {type(config).__name__}")
    if spark:
        return chosen
    if chosen.monitor.engine != "native":
        raise ConfigError(
            f"monitor.engine = {chosen.monitor.engine!r}: the Python interface compares tables in this process "
            "(the native engine); use the churnops command for the dask or evidently engines"
        )
    if chosen.monitor.mode == "streaming":
        raise ConfigError(
            "monitor.mode = 'streaming': the Python interface compares tables in memory, exactly; use the churnops "
            "command for files larger than memory"
        )
    return chosen


def _overrides(
    overrides: dict[str, Any], target: str | None, verdict: str | None, segments: str | list[str] | None
) -> dict[str, Any]:
    extra = _dotted(overrides)
    if target is not None:
        extra["columns.target"] = target
    if verdict is not None:
        extra["drift.verdict"] = verdict
    if segments is not None:
        if isinstance(segments, str):
            segments = [segments]
        if not isinstance(segments, list | tuple) or not all(isinstance(s, str) for s in segments):
            raise ConfigError("segments: expected a column name or a list of column names")
        extra["drift.segments"] = list(segments)
    return extra


def _as_the_command_reads(chosen: Config, reference: Any) -> Config:
    """For a reference given as a CSV or Parquet path: ``chosen`` with what ``churnops monitor``
    decides from the file's cells as written - numbers written as text (``6,433.24``) tested as
    numbers, codes with leading zeros (``03514``) as text - which a table read into memory has
    lost; the numbers are then those of the command."""
    if not isinstance(reference, str | Path) or "://" in str(reference):
        return chosen
    from churnops.pipeline.inference import inferred_configuration

    return inferred_configuration(chosen, Path(reference).expanduser())


def _reference_config(chosen: Config, ref: pl.DataFrame) -> tuple[Config, list[str]]:
    """``chosen`` checked against the reference, with its unlisted columns classified as the
    command does (dates, identifiers, how dates are written), and what was assumed, in words."""
    from churnops.pipeline.starter import (
        INFER_ROWS,
        SAMPLE_ROWS,
        as_written,
        with_date_formats,
        with_inferred_columns,
    )

    if ref.height == 0:
        raise InputDataError("reference: the table has no rows")
    from churnops.pipeline.reference import check_target_present

    try:  # a target or identifiers you named must be in the reference, as the command says
        check_target_present(chosen, Path("the reference"), ref.columns)
    except ConfigError as exc:
        raise InputDataError(str(exc)) from None
    sample = ref.head(INFER_ROWS)
    inferred, dates, ids = with_inferred_columns(chosen, sample, lambda names: ref.head(SAMPLE_ROWS).select(names))
    decided, formats = with_date_formats(inferred, sample)
    notices = []
    if dates:
        shown = [as_written(d, formats) for d in dates]
        notices.append(f"monitored as dates: {', '.join(shown)} (name them in columns__datetime to decide yourself)")
    if ids:
        notices.append(f"identifiers, not tested for drift: {', '.join(ids)} (columns__id decides)")
    return decided, notices


def _build(ref: pl.DataFrame, chosen: Config) -> ReferenceProfile:
    """The reference's profile (with its segments' when configured) under ``chosen``."""
    from dataclasses import replace as copy

    from churnops.monitor.profile import build_profile, require_tested
    from churnops.monitor.segments import check_segment_columns, profile_segments
    from churnops.monitor.settings import settings_from_config

    settings = settings_from_config(chosen)
    built = build_profile(ref, settings)
    require_tested(built, "reference")
    if settings.segments:
        check_segment_columns(settings, ref.columns, "the reference")
        built = copy(built, segments=profile_segments([ref], built, settings))
    return built


def _notices(chosen: Config, header: list[str], built: ReferenceProfile) -> list[str]:
    from churnops.pipeline.reference import column_notices

    naming = "target='...', columns__id=[...], or a churnops.toml"
    return column_notices(chosen, "the reference", header, built, "target='{}'", naming)


def monitor(
    reference: Any,
    current: Any,
    config: Config | str | Path | None = None,
    *,
    target: str | None = None,
    verdict: str | None = None,
    segments: str | list[str] | None = None,
    **overrides: Any,
) -> MonitorResult:
    """Compare ``current`` with ``reference`` as ``churnops monitor`` does, in memory.

    Parameters
    ----------
    reference
        A polars, pandas or pyarrow table, a path of a CSV/Parquet file (read whole), a Spark
        DataFrame, or a `Profile` of the reference (`profile`), which skips the reference's work.
    current
        The batch to check: a table or a path, as ``reference``. With Spark DataFrames (both, or
        a `Profile` and a Spark batch) each partition is summarized on the executors and only the
        summaries reach this process: the streaming engine's numbers (``monitor.mode``
        "streaming"), not the in-memory exact ones.
    config
        A `churnops.config.Config` (`load_config`), a churnops.toml path, or None
        for the one in the current folder (else the built-in defaults).
    target
        The label column (``columns.target``); ``""`` for none.
    verdict
        ``"evidently"`` or ``"calibrated"`` (``drift.verdict``).
    segments
        Columns whose values are each tested too (``drift.segments``; implies calibrated).
    overrides
        Any configuration key, dotted with ``__``: ``thresholds__dataset_drift=0.2``.

    Raises
    ------
    churnops.errors.ChurnopsError
        Bad input or configuration (``ConfigError``, ``InputDataError``), one readable line.

    Examples
    --------
    >>> import churnops
    >>> reference = churnops.generate(2_000, seed=1)
    >>> batch = churnops.generate(1_000, seed=2, scenario="strong")
    >>> result = churnops.monitor(reference, batch, target="Churn Flag")
    >>> result.verdict.status, "Balance" in result.drifted_columns
    ('alert', True)
    """
    import time

    from churnops.monitor.drift import with_any_finding_rate
    from churnops.monitor.engine import compare
    from churnops.monitor.results import DatasetInfo
    from churnops.monitor.settings import settings_from_config
    from churnops.monitor.verdict import decide

    extra = _overrides(overrides, target, verdict, segments)
    if _is_spark(current) or _is_spark(reference):
        return _monitor_on_spark(reference, current, config, extra)
    timings = {}
    if isinstance(reference, Profile):
        chosen = reference._config_for(config, extra)
        cur = _frame(current, "current", chosen)
        _has_rows(cur, "current")
        settings = settings_from_config(chosen)
        reference._check_settings(settings)
        built, notices = reference._profile, list(reference._notices)
        reference_info = DatasetInfo(None, reference.rows, None, None, len(built.columns))
    else:
        chosen = _as_the_command_reads(_chosen(config, extra), reference)
        ref, cur = _frame(reference, "reference", chosen), _frame(current, "current", chosen)
        _has_rows(cur, "current")
        chosen, notices = _reference_config(chosen, ref)
        started = time.perf_counter()
        built = _build(ref, chosen)
        timings["profile_reference_s"] = time.perf_counter() - started
        notices += _notices(chosen, ref.columns, built)
        settings = settings_from_config(chosen)
        reference_info = _info(reference, ref)
    if chosen.model.monitor == "required":
        from churnops.errors import ConfigError

        raise ConfigError(
            'model.monitor = "required": this compares two tables and does not check a model - run churnops monitor '
            'on files for the champion, or set model.monitor = "auto" here'
        )
    result = compare(built, cur, settings, reference_info, _info(current, cur))
    timings.update(result.timings)
    if settings.chunk_by:
        from churnops.monitor.chunks import chunks_of

        started = time.perf_counter()
        result = replace(result, chunks=chunks_of(built, cur, settings))
        timings["chunks_s"] = time.perf_counter() - started
    result = replace(with_any_finding_rate(result, settings), timings=timings)
    result = replace(result, verdict=decide(result, chosen.thresholds.trigger_on))
    _say(notices)
    return MonitorResult(result, chosen, tuple(notices))


def _kind(data: Any) -> str:
    """What a value is, for a message: ``a pandas DataFrame``, ``a str``..."""
    module = type(data).__module__.split(".")[0]
    known = module in ("pandas", "polars", "pyarrow", "pyspark")
    return f"a {module} {type(data).__name__}" if known else f"a {type(data).__name__}"


def _is_spark(data: Any) -> bool:
    """Whether ``data`` is a Spark DataFrame (classic or Spark Connect)."""
    return type(data).__module__.startswith("pyspark.sql") and hasattr(data, "mapInArrow")


def _monitor_on_spark(reference: Any, current: Any, config: Any, extra: dict[str, Any]) -> MonitorResult:
    """`monitor` with Spark DataFrames: the streaming engine run on the executors."""
    import time

    import polars as pl

    from churnops.integrations.spark_engine import SparkInput, SparkTable, batch_of, master_shown, profile_of
    from churnops.monitor.drift import with_any_finding_rate
    from churnops.monitor.engine import evaluate
    from churnops.monitor.results import DatasetInfo
    from churnops.monitor.settings import settings_from_config
    from churnops.monitor.verdict import decide
    from churnops.pipeline.reference import ROW_SAMPLE
    from churnops.pipeline.starter import INFER_ROWS

    if not _is_spark(current):
        raise InputDataError(
            f"current: with a Spark DataFrame as reference the batch is a Spark DataFrame too, got {_kind(current)}"
        )
    if not (_is_spark(reference) or isinstance(reference, Profile)):
        raise InputDataError(
            "reference: with a Spark DataFrame as batch the reference is a Spark DataFrame or a Profile, got "
            f"{_kind(reference)}"
        )
    batch = SparkTable.of_frame(current, SparkInput("current", "frame", "", None))
    timings: dict[str, float] = {}
    if isinstance(reference, Profile):
        chosen = reference._config_for(config, extra)
        settings = settings_from_config(chosen)
        reference._check_settings(settings)
        built, notices = reference._profile, list(reference._notices)
        reference_info = DatasetInfo(None, reference.rows, None, None, len(built.columns))
    else:
        chosen = _chosen(config, extra, spark=True)
        ref_table = SparkTable.of_frame(reference, SparkInput("reference", "frame", "", None))
        ref_header = ref_table.header
        sample = pl.from_arrow(ref_table.frame.limit(INFER_ROWS).toArrow())  # a few rows decide the column types
        assert isinstance(sample, pl.DataFrame)
        sample = sample.rename(dict(zip(sample.columns, ref_header, strict=True)))
        assert isinstance(sample, pl.DataFrame)
        chosen, notices = _reference_config(chosen, sample)
        settings = settings_from_config(chosen)
        started = time.perf_counter()
        built = profile_of(ref_table, settings, chosen.dialect_for("reference"))
        timings["profile_reference_s"] = time.perf_counter() - started
        from churnops.monitor.profile import require_tested

        require_tested(built, "reference")
        notices += _notices(chosen, ref_header, built)
        reference_info = DatasetInfo(None, built.rows, None, None, len(ref_header))
    if settings.chunk_by:
        raise ConfigError("drift.chunk_by: a Spark DataFrame is not cut into chunks; give a table in memory or a file")
    started = time.perf_counter()
    above = chosen.monitor.sample_duplicates_above
    master = master_shown(current.sparkSession) if hasattr(current, "sparkSession") else None
    builder, facts = batch_of(batch, built, settings, chosen.dialect, (above, ROW_SAMPLE), master=master)
    tally = builder.finish()
    timings["accumulate_current_s"] = time.perf_counter() - started
    current_info = DatasetInfo(None, tally.rows, None, None, len(batch.header))
    result = evaluate(built, tally, settings, reference_info, current_info, engine="spark")
    result = replace(result, mode={"reference": "streaming", "current": "streaming", **facts})
    timings.update(result.timings)
    result = replace(with_any_finding_rate(result, settings), timings=timings)
    result = replace(result, verdict=decide(result, chosen.thresholds.trigger_on))
    _say(notices)
    return MonitorResult(result, chosen, tuple(notices))


def _info(data: Any, table: pl.DataFrame) -> Any:
    """Where a table came from: a file's path and sha256 (what ``churnops version`` records), or
    only its size for a table in memory."""
    from churnops.monitor.results import DatasetInfo

    if isinstance(data, str | Path):
        from churnops.data.io import sha256_file

        path = Path(data).expanduser()
        return DatasetInfo(str(path), table.height, sha256_file(path), None, table.width)
    return DatasetInfo(None, table.height, None, None, table.width)


def _has_rows(table: pl.DataFrame, name: str) -> None:
    if table.height == 0:
        raise InputDataError(f"{name}: the table has no rows")


PROFILE_META = "churnops.Profile"
"""The key under which a saved `Profile` keeps what it was built with."""

COLUMN_KEYS = ("target", "prediction", "id", "ignored", "numerical", "categorical", "binary", "datetime", "text")
FIXED_COLUMNS = {*COLUMN_KEYS, "detect_ids", "date_formats"}
INFERRED = "inferred"
"""The key, among a profile's column settings, of the columns churnops typed itself."""
"""The ``[columns]`` keys a profile is built with and keeps."""
FIXED_DRIFT = {"segments", "multivariate", "multivariate_rows"}
"""The ``[drift]`` keys a profile is built with and keeps."""


@dataclass(frozen=True)
class Profile:
    """A reference's statistics, computed once by `profile` and reused by every
    `monitor` call (pass it as ``reference``); `save` and `load_profile` keep it
    between processes. It remembers the column roles it was built with, so that a batch is always
    read the same way."""

    _profile: ReferenceProfile = field(repr=False)
    _columns: dict[str, Any] = field(repr=False)
    _drift: dict[str, Any] = field(repr=False)
    _key: str = field(repr=False)
    _notices: tuple[str, ...] = field(default=(), repr=False)

    @property
    def rows(self) -> int:
        """Rows of the reference."""
        return self._profile.rows

    @property
    def columns(self) -> list[str]:
        """The reference's columns that are tested (features, target, prediction), in file order."""
        return [c.plan.name for c in self._profile.tested]

    @property
    def skipped(self) -> dict[str, str]:
        """The columns that are not tested, each with the reason."""
        return {c.plan.name: c.skip_reason for c in self._profile.columns.values() if c.skip_reason}

    @property
    def target(self) -> str | None:
        """The label column the profile was built with, if any."""
        value = self._columns.get("target")
        return value if isinstance(value, str) and value else None

    def to_polars(self) -> pl.DataFrame:
        """One row per reference column: role, type, and why it is not tested (if it is not)."""
        import polars as pl

        rows = [
            {"column": c.plan.name, "role": c.plan.role, "type": c.plan.column_type, "skipped": c.skip_reason}
            for c in self._profile.columns.values()
        ]
        schema = {"column": pl.String, "role": pl.String, "type": pl.String, "skipped": pl.String}
        return pl.DataFrame(rows, schema=schema)

    def save(self, path: str | Path) -> Path:
        """Write the profile to ``path`` (an ``.npz`` archive of arrays and JSON: no code, no
        pickle; replaced atomically, a link at the path is replaced and never followed)."""
        from churnops.errors import OutputWriteError
        from churnops.pipeline.profile_cache import save_profile

        target = _path(path, "Profile.save")
        meta = {PROFILE_META: {"columns": self._columns, "drift": self._drift, "key": self._key}}
        try:
            save_profile(self._profile, target, meta)
        except IsADirectoryError:
            raise OutputWriteError(f"{target}: is a folder; give the profile a file name") from None
        except OSError as exc:
            raise OutputWriteError(f"{target}: cannot write the profile: {exc.strerror or exc}") from None
        return target

    def _config_for(self, config: Config | str | Path | None, extra: dict[str, Any]) -> Config:
        """The call's configuration with this profile's column roles, segments and multivariate
        sample; one the call (or its configuration file) sets otherwise is an error, not a silent
        choice."""
        from churnops.config.loading import config_with

        chosen = _chosen(config, extra)
        fixed: dict[str, Any] = {"columns.infer": False}  # the roles were decided when the profile was built
        for section, built_with in (("columns", self._columns), ("drift", self._drift)):
            settings = getattr(chosen, section)
            for name, value in built_with.items():
                if section == "columns" and name == INFERRED:
                    continue  # no setting: the columns churnops typed itself, reported as inferred
                if name in settings.model_fields_set and getattr(settings, name) != value:
                    raise ConfigError(
                        f"{section}.{name}: the profile was built with {value!r}; build a profile with the new value "
                        "(churnops.profile) or leave it out"
                    )
                fixed[f"{section}.{name}"] = value
        result = config_with(chosen, fixed)
        result.columns._inferred = frozenset(self._columns.get(INFERRED, ()))
        return result

    def _check_settings(self, settings: Any) -> None:
        from churnops.pipeline.profile_cache import profile_key

        if profile_key("", None, settings) != self._key:
            raise ConfigError(
                "the profile was built with other column roles, tests or segments than this call uses; build it "
                "again with churnops.profile(reference, ...) and the same settings"
            )

    def __repr__(self) -> str:
        return f"<Profile of {self.rows:,} rows: {len(self.columns)} tested columns, {len(self.skipped)} not tested>"


def profile(
    reference: Any,
    config: Config | str | Path | None = None,
    *,
    target: str | None = None,
    segments: str | list[str] | None = None,
    **overrides: Any,
) -> Profile:
    """The reference's statistics, once: pass the result to `monitor` as ``reference`` for
    every batch, or `Profile.save` it for another process (`load_profile`).

    ``reference``, ``config``, ``target``, ``segments`` and ``overrides`` are those of
    `monitor`. The column roles (target, identifiers, declared types), the segments and the
    multivariate sample are fixed by the profile; thresholds and the verdict rule are chosen at
    each `monitor` call.

    Examples
    --------
    >>> import churnops
    >>> reference = churnops.profile(churnops.generate(2_000, seed=1), target="Churn Flag")
    >>> reference.rows, reference.target
    (2000, 'Churn Flag')
    >>> churnops.monitor(reference, churnops.generate(1_000, seed=2)).verdict.status
    'ok'
    """
    from churnops.monitor.settings import settings_from_config
    from churnops.pipeline.profile_cache import profile_key

    chosen = _as_the_command_reads(_chosen(config, _overrides(overrides, target, None, segments)), reference)
    ref = _frame(reference, "reference", chosen)
    chosen, notices = _reference_config(chosen, ref)
    built = _build(ref, chosen)
    notices += _notices(chosen, ref.columns, built)
    columns = {**chosen.columns.model_dump(include=FIXED_COLUMNS), INFERRED: sorted(chosen.columns._inferred)}
    drift = chosen.drift.model_dump(include=FIXED_DRIFT)
    _say(notices)
    return Profile(built, columns, drift, profile_key("", None, settings_from_config(chosen)), tuple(notices))


def load_profile(path: str | Path) -> Profile:
    """A `Profile` written by `Profile.save`, checked whole (types and shapes come
    from churnops, not from the file): anything else is one `churnops.errors.InputDataError`."""
    from churnops.pipeline.profile_cache import UnusableCache, read_profile

    source = _path(path, "load_profile")
    if source.is_dir():
        raise InputDataError(f"{source}: is a folder; give the profile's file")
    if not source.is_file():
        raise InputDataError(f"{source}: no such profile file")
    try:
        built, meta = read_profile(source)
    except OSError as exc:
        raise InputDataError(f"{source}: cannot read it: {exc.strerror or exc}") from None
    except UnusableCache as exc:
        raise InputDataError(f"{source}: not a profile churnops can use ({exc})") from None
    saved = meta.get(PROFILE_META)
    if not isinstance(saved, dict) or not isinstance(saved.get("key"), str):
        raise InputDataError(
            f"{source}: a profile cache of the churnops command, not one saved by Profile.save; build it with "
            "churnops.profile(reference, ...)"
        )
    columns, drift = saved.get("columns"), saved.get("drift")
    if not isinstance(columns, dict) or not isinstance(drift, dict):
        raise InputDataError(f"{source}: not a profile churnops can use (its settings are missing)")
    from churnops.config import Config
    from churnops.config.loading import config_with

    try:  # the saved roles are validated as any configuration is
        checked = config_with(
            Config(),
            {
                **{f"columns.{k}": v for k, v in columns.items() if k in FIXED_COLUMNS},
                **{f"drift.{k}": v for k, v in drift.items() if k in FIXED_DRIFT},
            },
        )
    except ConfigError as exc:
        raise InputDataError(f"{source}: the profile's settings are not valid: {exc}") from None
    inferred = columns.get(INFERRED, [])
    if not isinstance(inferred, list) or not all(isinstance(name, str) for name in inferred):
        raise InputDataError(f"{source}: not a profile churnops can use (its inferred columns)")
    checked.columns._inferred = frozenset(inferred)
    from churnops.monitor.settings import settings_from_config
    from churnops.pipeline.profile_cache import profile_key

    settings = settings_from_config(checked)
    for column in built.columns.values():  # each column's role is the one its saved settings give it
        declared = settings.declared(column.plan.name)
        if (declared in ("target", "prediction") or column.plan.role in ("target", "prediction")) and (
            declared != column.plan.role
        ):
            raise InputDataError(f"{source}: not a profile churnops can use (the role of {column.plan.name!r})")
    if profile_key("", None, settings) != saved["key"]:
        raise InputDataError(f"{source}: not a profile churnops can use (its settings do not match its key)")
    return Profile(
        built,
        {**checked.columns.model_dump(include=FIXED_COLUMNS), INFERRED: sorted(inferred)},
        checked.drift.model_dump(include=FIXED_DRIFT),
        saved["key"],
    )


MAX_GENERATED_ROWS = 100_000_000
"""Most rows :func:`generate` makes in one call (about 20 GB of memory at that size)."""


def generate(
    rows: int = 30_000,
    *,
    seed: int = 42,
    start: int = 0,
    scenario: str | None = None,
    intensity: float = 1.0,
    scenario_seed: int = 2024,
) -> pl.DataFrame:
    """Synthetic bank-churn customers (the embedded data of ``churnops data init``), optionally
    with a drift scenario applied (as ``churnops generate`` does).

    Row ``i`` depends only on ``seed`` and ``i``: ``generate(10_000, start=20_000)`` is rows
    20,000 to 29,999 of any larger table of the same seed. ``scenario``: ``"seed"`` (the seed
    project's drift), ``"none"``, ``"strong"``, ``"covariate"``, ``"concept"`` or
    ``"correlation"``; ``intensity`` scales its shifts (0 = no change).

    Examples
    --------
    >>> import churnops
    >>> table = churnops.generate(1_000)
    >>> table.shape
    (1000, 20)
    >>> drifted = churnops.generate(1_000, scenario="seed")
    >>> bool(drifted["Balance"].mean() > table["Balance"].mean())
    True
    """
    from churnops.data.generator import generate_reference
    from churnops.data.scenarios import apply_scenario, resolve_scenario

    for name, value in (("rows", rows), ("start", start), ("seed", seed), ("scenario_seed", scenario_seed)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}: expected a whole number, got {value!r}")
    if not 1 <= rows <= MAX_GENERATED_ROWS or not 0 <= start < 2**53 or seed < 0 or scenario_seed < 0:
        raise ConfigError(
            f"rows must be from 1 to {MAX_GENERATED_ROWS:,}; start from 0 to 2**53; seed and scenario_seed 0 or more"
        )
    if not isinstance(intensity, int | float) or isinstance(intensity, bool) or not 0 <= intensity <= 100:
        raise ConfigError(f"intensity: expected a number from 0 to 100, got {intensity!r}")
    table = generate_reference(rows, seed=seed, start=start)
    if scenario is not None:
        table, _ = apply_scenario(table, resolve_scenario(scenario), float(intensity), seed=scenario_seed)
    return table


def version_batch(
    batch: str | Path, result: MonitorResult | None = None, config: Config | str | Path | None = None
) -> dict[str, Any]:
    """Version ``batch`` with DVC as ``churnops version`` does: ``dvc add`` (or ``dvc commit`` of
    the ``dvc.yaml`` stage that makes it), a git commit whose message records the run (its id and
    drift score, from ``result`` when it was computed from this very file) and ``dvc push`` to the
    configured remote. The project is the configuration's folder: a git repository set up with
    ``churnops dvc-setup``. An unchanged batch makes no new commit.

    Returns ``{"changed", "commit", "pushed", "remote", "record", "message"}`` (``remote``: the DVC
    remote it was pushed to, ``'name' (url)``, secrets redacted); DVC or git failing is one
    `churnops.errors.ChurnopsError`.
    """
    from churnops.pipeline.versioning import version_current_batch

    chosen = (result.config if result is not None else None) if config is None else _chosen(config, {})
    if chosen is None:
        chosen = _chosen(None, {})
    path = _path(batch, "batch").absolute()  # relative to the current folder, as monitor() reads it
    if not path.is_file():
        raise InputDataError(f"{path}: no such batch file")
    outcome = version_current_batch(chosen, path, result.to_dict() if result is not None else {})
    return {
        "changed": outcome.changed,
        "commit": outcome.commit,
        "pushed": outcome.pushed,
        "remote": outcome.remote,
        "record": str(outcome.dvc_file),
        "message": outcome.message,
    }


def config_from_evidently(
    preset: Any,
    definition: Any = None,
    *,
    columns: Any = None,
    config: Config | str | Path | None = None,
) -> Config:
    """A churnops configuration that decides as an Evidently 0.7 ``DataDriftPreset`` does.

    ``preset``: the ``DataDriftPreset`` (its ``method``, ``num_method``, ``cat_method``,
    ``per_column_method``, ``threshold``, ``num_threshold``, ``cat_threshold``,
    ``per_column_threshold``, ``drift_share`` and ``columns``). ``definition``: the
    ``DataDefinition`` given to ``Dataset.from_pandas`` (numerical, categorical, datetime and text
    columns, ``id_column``, ``timestamp``, the classification or regression target and
    prediction). ``columns``: the reference's column names (or the table itself), needed when the
    preset names the columns to test - the others are then not tested. ``config``: the
    configuration to start from (default: ``load_config()``).

    Evidently's dataset rule is "at least ``drift_share`` of the columns drifted"; churnops alerts
    when the share is above ``thresholds.dataset_drift``, which is set just below ``drift_share``
    so that both decide alike. Custom test functions, text and embedding drift cannot be carried
    over: a `churnops.errors.ConfigError` names them.
    """
    from churnops.config import Config

    overrides: dict[str, Any] = {}

    def method(value: Any, key: str) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            return value
        name = getattr(value, "name", None)  # an Evidently StatTest object
        if isinstance(name, str) and not callable(value):
            return name
        raise ConfigError(f"{key}: a custom test function cannot be carried over; name a registered test instead")

    def option(name: str) -> Any:
        return getattr(preset, name, None)

    if type(preset).__name__ != "DataDriftPreset":
        raise ConfigError(f"expected Evidently's DataDriftPreset, got {type(preset).__name__}")
    for name in ("method", "num_method", "cat_method"):
        found = method(option(name), f"DataDriftPreset.{name}")
        if found is not None:
            overrides[f"drift.{name}"] = found
    per_column = {
        c: method(m, f"DataDriftPreset.per_column_method[{c!r}]")
        for c, m in (option("per_column_method") or {}).items()
    }
    if per_column:
        overrides["drift.per_column_method"] = per_column
    for name in ("threshold", "num_threshold", "cat_threshold"):
        if option(name) is not None:
            overrides[f"drift.{name}"] = float(option(name))
    if option("per_column_threshold"):
        overrides["drift.per_column_threshold"] = {c: float(v) for c, v in option("per_column_threshold").items()}
    unsupported = [n for n in ("text_method", "text_threshold", "embeddings", "embeddings_drift_method") if option(n)]
    if unsupported:
        raise ConfigError(
            f"DataDriftPreset: {', '.join(unsupported)}: text and embedding drift are not monitored by churnops"
        )
    share = float(option("drift_share") if option("drift_share") is not None else 0.5)
    overrides["thresholds.evidently_drift_share"] = share
    overrides["thresholds.dataset_drift"] = math.nextafter(share, 0.0)  # "above" just below = "at least"
    if definition is not None:
        kinds = {
            "numerical_columns": "numerical", "categorical_columns": "categorical",
            "datetime_columns": "datetime", "text_columns": "text",
        }  # fmt: skip
        for attribute, kind in kinds.items():
            listed = getattr(definition, attribute, None)
            if listed:
                overrides[f"columns.{kind}"] = list(listed)
        if getattr(definition, "id_column", None):
            overrides["columns.id"] = [definition.id_column]
        tasks = [*(getattr(definition, "classification", None) or []), *(getattr(definition, "regression", None) or [])]
        if len(tasks) > 1:
            raise ConfigError(
                "DataDefinition: more than one classification or regression task; churnops has one target"
            )
        target = getattr(tasks[0], "target", None) if tasks else None
        overrides["columns.target"] = target or ""
        prediction = None
        if tasks:
            prediction = getattr(tasks[0], "prediction_probas", None) or getattr(tasks[0], "prediction_labels", None)
            prediction = prediction or getattr(tasks[0], "prediction", None)
        if isinstance(prediction, str):
            overrides["columns.prediction"] = prediction
        timestamp = getattr(definition, "timestamp", None)
        if timestamp:
            overrides["columns.ignored"] = [timestamp]  # Evidently's time index is not tested
    tested = option("columns")
    if tested and columns is None:
        raise ConfigError(
            "DataDriftPreset(columns=[...]) tests only those columns: pass columns= (the reference's column "
            "names, or the table) so that the others can be left out"
        )
    names = (
        [str(c) for c in (columns.columns if hasattr(columns, "columns") else columns)] if columns is not None else []
    )
    keep: set[str] | None = set(tested) if tested else None
    if keep is None and definition is not None and names:
        # a DataDefinition lists the columns Evidently looks at: the others are left out
        keep = {
            c
            for kind in ("numerical", "categorical", "datetime", "text", "id")
            for c in overrides.get(f"columns.{kind}", [])
        }
    base = config if isinstance(config, Config) else load_config(config)
    roles = ("id", "ignored", "datetime", "numerical", "categorical", "binary", "text")
    if definition is not None or keep is not None:
        # the definition and the preset decide every column's role: the configuration's own lists
        # (the bank example's identifiers, ignored and date columns) give way to them
        for kind in roles:
            overrides.setdefault(f"columns.{kind}", [])
    if keep is not None:
        target = overrides.get("columns.target", base.columns.target)
        keep |= {target or "", overrides.get("columns.prediction", base.columns.prediction) or ""}
        left_out = {c for c in names if c not in keep}
        for kind in roles:  # a column left out is only ignored, whatever type the definition gave it
            overrides[f"columns.{kind}"] = [c for c in overrides[f"columns.{kind}"] if c not in left_out]
        overrides["columns.ignored"] = sorted({*overrides["columns.ignored"], *left_out})
    from churnops.config.loading import config_with

    return config_with(base, overrides)
