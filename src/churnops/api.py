"""churnops from Python: tables in, a typed result out (see :func:`monitor`).

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
    from churnops.monitor.results import MonitoringResult, Verdict

__all__ = ["DriftDetected", "MonitorResult", "config_from_evidently", "load_config", "monitor"]


class DriftDetected(ChurnopsError):
    """Raised by :meth:`MonitorResult.raise_for_drift` when the run raises an alert.

    ``result`` is the :class:`MonitorResult`; ``str(error)`` names every alert, one per line.
    """

    def __init__(self, result: MonitorResult) -> None:
        self.result = result
        reasons = [r.message for r in result.verdict.alerts] or [result.verdict.headline]
        super().__init__("drift alert: " + "; ".join(reasons))

    def __reduce__(self) -> tuple[Any, ...]:  # picklable: process pools send it back
        return (DriftDetected, (self.result,))


@dataclass(frozen=True)
class MonitorResult:
    """What :func:`monitor` found. Its attributes cannot be reassigned and no method changes it;
    ``result`` is plain data (lists, dataclasses): read it, do not edit it."""

    result: MonitoringResult
    """The full comparison (the object the metrics JSON is written from)."""
    config: Config = field(repr=False)

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
        """The metrics document ``churnops monitor`` writes (same keys, same JSON Schema)."""
        from churnops.report.metrics import metrics_document

        return metrics_document(self.result)

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON text (what ``monitoring_metrics.json`` holds)."""
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
        """:meth:`to_polars` as a pandas DataFrame (needs pandas)."""
        return self.to_polars().to_pandas()

    def html(self) -> str:
        """The report as one standalone HTML page (its stylesheet inline, no JavaScript)."""
        from churnops.report.html import ReportContext, render_reports

        return render_reports(self.result, ReportContext("", "", False))[1]

    def save_html(self, path: str | Path) -> Path:
        """Write :meth:`html` to ``path`` (replaced, never followed if it is a link); the path."""
        from churnops.data.files import atomic_write_text, refuse_folder
        from churnops.errors import OutputWriteError

        target = Path(path).expanduser()
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

    def raise_for_drift(self) -> MonitorResult:
        """Raise :class:`DriftDetected` when the run raises an alert; else return the result."""
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
    """The configuration ``churnops`` commands use: ``path`` (a churnops.toml; default: the one in
    the current folder, else the built-in defaults) with ``overrides`` on top, by dotted key
    written with ``__`` (``thresholds__dataset_drift=0.2``) - the same as ``--set``."""
    from churnops.config import load_config as read

    return read(Path(path) if path is not None else None, _dotted(overrides))


def _dotted(overrides: dict[str, Any]) -> dict[str, Any]:
    return {key.replace("__", "."): value for key, value in overrides.items()}


UNSUPPORTED = ("Duration", "Time", "List", "Array", "Struct", "Object", "Binary", "Decimal", "Null")
"""Column types churnops does not monitor (as in files: nested columns are refused)."""


def _frame(data: Any, what: str, config: Config) -> pl.DataFrame:
    """A polars DataFrame from a polars, pandas or pyarrow table, or a CSV/Parquet path read
    with the configuration's separator, decimal mark and encoding (no copy where the table is
    already in Arrow memory); unusable input is one :class:`InputDataError`."""
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
        known = isinstance(exc, pl.exceptions.PolarsError | ValueError | TypeError | OSError)
        if not known and not type(exc).__module__.startswith(("pyarrow", "polars")):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputDataError(f"{what}: cannot be read as a table: {first[:300]}") from None
    if not isinstance(data, pl.DataFrame):
        raise InputDataError(
            f"{what}: expected a polars, pandas or pyarrow table or a CSV/Parquet path, got {type(data).__name__}"
        )
    odd = [f"{name} ({dtype})" for name, dtype in data.schema.items() if type(dtype).__name__ in UNSUPPORTED]
    if odd:
        raise InputDataError(
            f"{what}: column types churnops does not monitor: {', '.join(odd[:5])}"
            f"{', ...' if len(odd) > 5 else ''} - drop or convert them (numbers, text, dates, true/false)"
        )
    return data


def _from_pandas(frame: Any, what: str) -> pl.DataFrame:
    import polars as pl

    names = [str(c) for c in frame.columns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputDataError(f"{what}: repeated column names: {', '.join(repeated[:5])}")
    return pl.from_pandas(frame)


def monitor(
    reference: Any,
    current: Any,
    config: Config | str | Path | None = None,
    *,
    target: str | None = None,
    verdict: str | None = None,
    segments: list[str] | None = None,
    **overrides: Any,
) -> MonitorResult:
    """Compare ``current`` with ``reference`` as ``churnops monitor`` does, in memory.

    Parameters
    ----------
    reference, current
        polars, pandas or pyarrow tables, or paths of CSV/Parquet files (read whole).
    config
        A :class:`~churnops.config.Config` (:func:`load_config`), a churnops.toml path, or None
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
    """
    from churnops.config import Config
    from churnops.config import load_config as read
    from churnops.monitor.engine import monitor_frames
    from churnops.monitor.results import DatasetInfo
    from churnops.monitor.settings import settings_from_config
    from churnops.monitor.verdict import decide
    from churnops.pipeline.starter import INFER_ROWS, with_inferred_columns

    extra = _dotted(overrides)
    if target is not None:
        extra["columns.target"] = target
    if verdict is not None:
        extra["drift.verdict"] = verdict
    if segments is not None:
        extra["drift.segments"] = [segments] if isinstance(segments, str) else list(segments)
    if isinstance(config, Config):
        from churnops.config.loading import config_with

        chosen = config_with(config, extra) if extra else config
    elif config is None or isinstance(config, str | Path):
        chosen = read(Path(config) if config is not None else None, extra)
    else:
        raise ConfigError(f"config: expected a Config (churnops.load_config) or a path, got {type(config).__name__}")
    if chosen.monitor.engine != "native":
        raise ConfigError(
            f"monitor.engine = {chosen.monitor.engine!r}: the Python interface compares tables in this process "
            "(the native engine); use the churnops command for the dask or evidently engines"
        )
    ref, cur = _frame(reference, "reference", chosen), _frame(current, "current", chosen)
    for table, name in ((ref, "reference"), (cur, "current")):
        if table.height == 0:
            raise InputDataError(f"{name}: the table has no rows")
    named = chosen.columns.target and "target" in chosen.columns.model_fields_set
    if named and chosen.columns.target not in ref.columns:
        shown = ", ".join(ref.columns[:12]) + (", ..." if len(ref.columns) > 12 else "")
        raise InputDataError(f"columns.target: '{chosen.columns.target}' is not a column of the reference ({shown})")
    chosen, _, _ = with_inferred_columns(chosen, ref.head(INFER_ROWS))
    settings = settings_from_config(chosen)
    result = monitor_frames(
        ref,
        cur,
        settings,
        DatasetInfo(None, ref.height, None, None, ref.width),
        DatasetInfo(None, cur.height, None, None, cur.width),
    )
    result = replace(result, verdict=decide(result, chosen.thresholds.trigger_on))
    return MonitorResult(result, chosen)


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
    over: a :class:`~churnops.errors.ConfigError` names them.
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
    if keep is not None:
        target = overrides.get("columns.target", base.columns.target)
        keep |= {target or "", overrides.get("columns.prediction", base.columns.prediction) or ""}
        left_out = [c for c in names if c not in keep]
        overrides["columns.ignored"] = sorted({*overrides.get("columns.ignored", []), *left_out})
    from churnops.config.loading import config_with

    return config_with(base, overrides)
