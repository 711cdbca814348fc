"""What the monitoring computation needs from the configuration, resolved and checked."""

from __future__ import annotations

from dataclasses import dataclass, field

from churnops.config import Config
from churnops.errors import ConfigError
from churnops.monitor.binning import Binning
from churnops.monitor.stattests import ALIASES, REGISTRY, StatTestSpec, get_stattest


@dataclass(frozen=True)
class MonitorSettings:
    """Resolved monitoring options (see ``[drift]``, ``[thresholds]`` and ``[columns]``)."""

    declared_types: dict[str, str] = field(default_factory=dict)
    target: str | None = "Churn Flag"
    target_positive: str | None = None
    """The label's value whose rate is watched (``columns.target_positive``); None: decided from the labels."""
    prediction: str | None = None
    id_columns: tuple[str, ...] = ()
    inferred: frozenset[str] = frozenset()
    """Columns of ``declared_types`` whose type churnops decided from the reference, not the
    configuration (reported with ``type_source: inferred``)."""
    domains: dict[str, tuple[float, float]] = field(default_factory=dict)
    date_formats: dict[str, str] = field(default_factory=dict)
    """How each date column's text is written (``columns.date_formats``, decided from the reference)."""
    method: str | None = None
    num_method: str | None = None
    cat_method: str | None = None
    per_column_method: dict[str, str] = field(default_factory=dict)
    threshold: float | None = None
    num_threshold: float | None = None
    cat_threshold: float | None = None
    per_column_threshold: dict[str, float] = field(default_factory=dict)
    distance_threshold: float = 0.1
    binning: Binning = "evidently"
    n_bins: int = 10
    dataset_drift_threshold: float = 0.1
    evidently_drift_share: float = 0.5
    quality_threshold: float = 0.95
    target_significance: float = 0.01
    detect_ids: bool = True
    """Leave undeclared columns of strictly monotonic whole numbers (row numbers, ids) untested."""
    verdict: str = "evidently"
    """``evidently`` (each column's test against its threshold) or ``calibrated`` (see
    :mod:`churnops.monitor.calibrated`)."""
    fdr: float = 0.05
    min_effect: float = 0.02
    segments: tuple[str, ...] = ()
    """Columns whose values split the data into segments tested on their own (``drift.segments``)."""
    min_segment_rows: int = 200
    multivariate: bool = False
    """Multivariate drift detectors on a sample of rows (``drift.multivariate``)."""
    multivariate_rows: int = 5_000
    chunk_by: str = ""
    """``period:1w`` or ``size:5000``: the batch is also cut into chunks, each compared with the
    reference (``drift.chunk_by``); empty: no chunks."""
    time_column: str | None = None
    """The column whose dates place a row in a period (``drift.time_column``)."""
    time_format: str | None = None
    """How the time column's text is written (strftime), when its dates are ambiguous."""
    min_chunk_rows: int = 200
    current_separator: str = ","
    """What separates the current batch's values in a CSV file (``data.current.separator``): the
    advice that reads its decimal commas depends on it."""
    evidently_html: bool = False
    """With the Evidently engine, also save Evidently's own HTML page (``monitor.evidently_html``)."""

    def declared(self, column: str) -> str | None:
        return self.declared_types.get(column)

    def date_format(self, column: str) -> str | None:
        """How ``column``'s text dates are written, when decided (see :func:`coerce_datetime`)."""
        return self.date_formats.get(column)

    def method_for(self, column: str, column_type: str) -> str | None:
        """The configured test name for a column, or None for Evidently's default choice."""
        if column in self.per_column_method:
            return self.per_column_method[column]
        by_type = self.num_method if column_type == "numerical" else self.cat_method
        return by_type or self.method

    def keeps_row_order(self, column: str) -> bool:
        """Whether the column, if categorical, is tested with TVD: the exact engine then keeps its
        values' codes in row order when they are numbers, as Evidently's permutation p-value needs.

        >>> MonitorSettings(cat_method="TVD", per_column_method={"b": "chisquare"}).keeps_row_order("b")
        False
        """
        return _is_tvd(self.method_for(column, "categorical"))

    def row_order_key(self) -> dict[str, object] | None:
        """What decides which reference columns keep their row order, for the profile cache key
        (None when no column does).

        >>> MonitorSettings(method="TVD", per_column_method={"b": "psi"}).row_order_key()
        {'tvd': True, 'except': ['b']}
        """
        default = _is_tvd(self.cat_method or self.method)
        exceptions = sorted(name for name, method in self.per_column_method.items() if _is_tvd(method) != default)
        if not default and not exceptions:
            return None
        return {"tvd": default, "except": exceptions}

    def threshold_for(self, column: str, column_type: str, spec: StatTestSpec) -> float:
        """Per-column, then per-type, then global threshold; else the test's default.

        A distance test's default is ``thresholds.column_drift`` (the seed's 0.1); a
        p-value test keeps its own default significance.
        """
        if column in self.per_column_threshold:
            return self.per_column_threshold[column]
        by_type = self.num_threshold if column_type == "numerical" else self.cat_threshold
        if by_type is not None:
            return by_type
        if self.threshold is not None:
            return self.threshold
        return self.distance_threshold if spec.kind == "distance" else spec.default_threshold

    def to_dict(self) -> dict[str, object]:
        return {
            "binning": self.binning,
            "n_bins": self.n_bins,
            "method": self.method,
            "num_method": self.num_method,
            "cat_method": self.cat_method,
            "per_column_method": dict(self.per_column_method),
            "distance_threshold": self.distance_threshold,
            "verdict": self.verdict,
            **({"fdr": self.fdr, "min_effect": self.min_effect} if self.verdict == "calibrated" else {}),
            **({"segments": list(self.segments), "min_segment_rows": self.min_segment_rows} if self.segments else {}),
            **({"multivariate": True, "multivariate_rows": self.multivariate_rows} if self.multivariate else {}),
            **(
                {
                    "chunk_by": self.chunk_by,
                    "time_column": self.time_column,
                    "time_format": self.time_format,
                    "min_chunk_rows": self.min_chunk_rows,
                }
                if self.chunk_by
                else {}
            ),
        }


def _is_tvd(method: str | None) -> bool:
    return method is not None and ALIASES.get(method, method) == "TVD"


def _check_method(key: str, name: str | None) -> str | None:
    if name is None:
        return None
    if ALIASES.get(name, name) not in REGISTRY:
        raise ConfigError(f"{key}: unknown stat test '{name}'; known: {', '.join(sorted(REGISTRY))}")
    return get_stattest(name).name


def settings_from_config(config: Config) -> MonitorSettings:
    """Build :class:`MonitorSettings`; unknown test names raise :class:`ConfigError`."""
    columns = config.columns
    declared: dict[str, str] = {}
    for kind in ("numerical", "categorical", "binary", "datetime", "text", "id", "ignored"):
        for name in getattr(columns, kind):
            declared[name] = kind
    if columns.target:
        declared[columns.target] = "target"
    if columns.prediction:
        declared[columns.prediction] = "prediction"
    drift = config.drift
    if drift.time_column and declared.get(drift.time_column) is None:
        # the dates that place rows in periods (drift.time_column goes with period chunks only): a
        # batch of other dates than the reference's is the point, not a drift (only a column
        # declared for itself is tested)
        declared[drift.time_column] = "ignored"
    per_column = {
        name: _check_method(f"drift.per_column_method.{name}", method)
        for name, method in drift.per_column_method.items()
    }
    return MonitorSettings(
        declared_types=declared,
        target=columns.target,
        target_positive=columns.target_positive,
        prediction=columns.prediction,
        id_columns=tuple(columns.id),
        inferred=frozenset(columns._inferred),
        domains=dict(columns.domains),
        date_formats=dict(columns.date_formats),
        method=_check_method("drift.method", drift.method),
        num_method=_check_method("drift.num_method", drift.num_method),
        cat_method=_check_method("drift.cat_method", drift.cat_method),
        per_column_method={k: v for k, v in per_column.items() if v is not None},
        threshold=drift.threshold,
        num_threshold=drift.num_threshold,
        cat_threshold=drift.cat_threshold,
        per_column_threshold=dict(drift.per_column_threshold),
        distance_threshold=config.thresholds.column_drift,
        binning=drift.binning,
        n_bins=drift.n_bins,
        dataset_drift_threshold=config.thresholds.dataset_drift,
        evidently_drift_share=config.thresholds.evidently_drift_share,
        quality_threshold=config.thresholds.data_quality,
        target_significance=config.thresholds.target,
        detect_ids=config.columns.detect_ids,
        evidently_html=config.monitor.evidently_html,
        verdict=drift.verdict,
        fdr=drift.fdr,
        min_effect=drift.min_effect,
        segments=tuple(drift.segments),
        min_segment_rows=drift.min_segment_rows,
        multivariate=drift.multivariate,
        multivariate_rows=drift.multivariate_rows,
        chunk_by=drift.chunk_by,
        time_column=drift.time_column or None,
        time_format=drift.time_format or None,
        min_chunk_rows=drift.min_chunk_rows,
        current_separator=config.data.dialect_of("current")[0],
    )
