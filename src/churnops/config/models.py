"""``churnops.toml`` as validated pydantic models: every rule a value must follow lives here.

Every key has a default, so churnops runs with no file at all. Numbers must be finite and in
range, strings that reach a header or a file name cannot hold control characters, and paths are
resolved by :mod:`churnops.config.paths`. Secrets never live here: a channel names the
environment variable that holds its secret.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from churnops.config.paths import check_distinct, resolve_in
from churnops.errors import ConfigError

CONFIG_FILENAME = "churnops.toml"
DEFAULT_REFERENCE = "data/churn.csv"
EMBEDDED_REFERENCE_ROWS = (0, 20_000)
"""The embedded dataset's reference window: its rows [20000, 30000) become the production batch."""

METRICS_FILE = "monitoring_metrics.json"
REPORT_FILE = "monitoring_report.html"
STANDALONE_FILE = "monitoring_report.standalone.html"
CSS_FILE = "report.css"
SUMMARY_FILE = "pipeline_summary.json"
FALLBACK_NOTIFICATION_FILE = "notification.txt"
HISTORY_FILE = "history.db"
LOCK_FILE = ".workspace.lock"
MODEL_LOCK_FILE = ".model.lock"
TEXTFILE_NAME = "churnops.prom"
CHECKED_FILE = ".model_checked.json"
"""In the monitoring folder: the last champion a run checked (or tried to), kept by runs with
``model.monitor = "off"`` - so that a run without a model in between does not make the next one
forget that a champion is expected."""
OUTPUTS_JOURNAL = ".outputs-commit.json"
"""In the monitoring folder, while a run's outputs are committed: what it renames and removes."""
REPLACED_TRIGGER = ".replaced_trigger.txt"
"""In a monitoring folder: the trigger of another configuration this configuration's alert
replaced (a ``paths.trigger`` shared by two configurations), put back when this configuration's
alert ends while that one still stands."""

MAX_SEED = 2**32 - 1
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
"""Seeds feed NumPy and scikit-learn, which take 0 .. 2**32 - 1."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (line breaks, tabs, escapes)")
    return value


PlainText = Annotated[str, AfterValidator(_no_control)]

ColumnTypeName = Literal[
    "numerical", "categorical", "binary", "datetime", "text", "id", "target", "prediction", "ignored"
]


class _Section(BaseModel):
    # allow_inf_nan=False: every float in the configuration must be a finite number
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


_FETCH_URL = re.compile(r"(s3|gs|gcs|az|abfs)://[^/\s?#@]+(/[^\s?#]*)?", re.IGNORECASE)


def _dot_segments(url: str) -> bool:
    """Whether an object-storage URL's key holds a ``.``, ``..`` or empty segment or a backslash
    (``s3://bank/x/../../other/y`` can reach another bucket)."""
    key = url.split("://", 1)[-1].partition("/")[2].rstrip("/").replace("{run_id}", "run")
    return bool(key) and ("\\" in key or any(piece in ("", ".", "..") for piece in key.split("/")))


class PathsConfig(_Section):
    reference: str = DEFAULT_REFERENCE
    production: str = "data/production/bank_churn_prod.csv"
    monitoring_dir: str = "monitoring"
    trigger: str = "trigger.txt"
    profile_cache: str = ".churnops/profiles"
    reference_url: str | None = None
    """An object or prefix in object storage (``s3://bank/reference/``) fetched into ``reference``
    before each run of ``monitor`` and ``pipeline`` (and by ``churnops data fetch``)."""
    production_url: str | None = None
    """The same for the batch: fetched into ``production``, which is what DVC versions."""

    @field_validator("reference_url", "production_url")
    @classmethod
    def _storage_url(cls, value: str | None) -> str | None:
        if value is not None and not _FETCH_URL.fullmatch(value):
            raise ValueError(
                "not an object-storage URL like s3://bucket/batches/latest/ (s3, gs or az; no credentials, no query)"
            )
        if value is not None and _dot_segments(value):
            raise ValueError("'.', '..' and empty names are refused in object-storage URLs")
        return value


MAX_ROWS = 10**12
RowRange = tuple[Annotated[int, Field(ge=0, le=MAX_ROWS)], Annotated[int, Field(ge=0, le=MAX_ROWS)]]


def _check_range(value: RowRange) -> RowRange:
    if value[1] <= value[0]:
        raise ValueError(f"row range [{value[0]}, {value[1]}) is empty: the end must be > start")
    return value


def _one_character(value: str) -> str:
    if len(value) != 1 or value in '"\r\n\x00':
        raise ValueError("must be one character other than a quote, a line end or NUL")
    return value


def _known_encoding(value: str) -> str:
    import codecs

    try:
        name = codecs.lookup(value).name
        sample = 'x,"y"\n'.encode(name, errors="replace")
    except (LookupError, TypeError, ValueError):
        raise ValueError(f"unknown text encoding '{value}' (e.g. utf-8, cp1252, latin-1)") from None
    except Exception:  # noqa: BLE001 - a codec that is not a text encoding can fail in any way
        raise ValueError(f"'{value}' is not a text encoding (e.g. utf-8, cp1252, latin-1)") from None
    if name == "utf-8-sig":
        return "utf-8"  # a byte-order mark is skipped when files are read as UTF-8
    if sample != b'x,"y"\n':
        raise ValueError(f"'{value}' is not ASCII-compatible; save the files as UTF-8")
    return name


Separator = Annotated[str, AfterValidator(_one_character)]
Encoding = Annotated[str, AfterValidator(_known_encoding)]


class InputDialect(_Section):
    """How one input's CSV is written, where it differs from ``[data]``."""

    separator: Separator | None = None
    decimal: Literal[".", ","] | None = None
    encoding: Encoding | None = None


class DataConfig(_Section):
    rows: Annotated[int, Field(gt=0, le=10_000_000)] = 30_000
    """Customers `churnops data init` generates (built in memory: up to 10 million, about 2 GB)."""
    seed: Seed = 42
    reference_rows: RowRange | None = EMBEDDED_REFERENCE_ROWS
    """Rows [start, end) of the reference file used as the reference window; "all" = whole file.
    Default: rows [0, 20000) of the embedded dataset, and the whole file when paths.reference
    names your own data."""
    production_rows: RowRange = (20_000, 30_000)
    """Rows [start, end) of the reference file that become the production batch."""
    separator: Separator = ","
    """CSV field separator of input files, e.g. ";" or "\\t"."""
    decimal: Literal[".", ","] = "."
    """Decimal mark of numbers in input CSV files ("," needs a separator other than ",")."""
    encoding: Encoding = "utf-8"
    """Text encoding of input CSV files, e.g. "cp1252" or "latin-1" for some spreadsheet exports."""
    reference: InputDialect = InputDialect()
    """[data.reference]: separator, decimal or encoding of the reference file only."""
    current: InputDialect = InputDialect()
    """[data.current]: separator, decimal or encoding of the current batch only."""

    def dialect_of(self, which: str) -> tuple[str, str, str]:
        """(separator, decimal, encoding) of the ``reference`` or ``current`` input."""
        own: InputDialect = getattr(self, which)
        return (own.separator or self.separator, own.decimal or self.decimal, own.encoding or self.encoding)

    @model_validator(mode="after")
    def _decimal_needs_another_separator(self) -> DataConfig:
        for which in ("reference", "current"):
            separator, decimal, _ = self.dialect_of(which)
            if decimal == "," and separator == ",":
                where = "" if (separator, decimal) == (self.separator, self.decimal) else f" (for the {which} data)"
                raise ValueError(f"decimal = ',' needs another separator, e.g. separator = ';'{where}")
        return self

    @field_validator("reference_rows", mode="before")
    @classmethod
    def _all_rows(cls, value: Any) -> Any:
        # TOML has no null: "all" means the whole reference file.
        return None if value == "all" else value

    @field_validator("reference_rows", "production_rows")
    @classmethod
    def _non_empty(cls, value: RowRange | None) -> RowRange | None:
        return None if value is None else _check_range(value)


class ColumnsConfig(_Section):
    _inferred: frozenset[str] = PrivateAttr(default_factory=frozenset)
    """Columns of the lists below that churnops added itself from the reference (dates, identifiers,
    codes), not the configuration: their type is reported as inferred."""
    target: str | None = "Churn Flag"
    """The label column; "" (TOML has no null) means the data have none."""
    target_positive: str | None = None
    """The label's value whose rate is watched - the churners ("Yes", "churned", "1"). Empty:
    1 or true, or the value that reads as the event (yes, churned, left, exited, attrited...)
    against its opposite (no, retained, stayed, existing...); failing both, the value that sorts
    last, with a notice."""
    prediction: str | None = None
    id: list[str] = ["CustomerId"]
    ignored: list[str] = ["Surname", "First Name"]
    datetime: list[str] = ["Date of Birth"]
    numerical: list[str] = []
    categorical: list[str] = []
    binary: list[str] = []
    text: list[str] = []
    domains: dict[str, tuple[float, float]] = {"Credit Score": (300.0, 850.0)}
    """Allowed [min, max] per numerical column, checked by data quality."""
    date_formats: dict[str, str] = {}
    """How a date column's text is written: "iso", "day-first", "month-first", "month-names" or a
    strftime format ("%d/%m/%Y"); a column not listed is decided from the reference's first rows."""
    detect_ids: bool = True
    """Leave out of drift, with a notice, columns that look like row numbers or identifiers
    (unique whole numbers that only grow) and are not declared otherwise."""
    infer: bool = True
    """Columns not listed in [columns]: text that reads as dates is monitored as dates, and a unique
    value per row under an identifier's name (``customer_id``) is an identifier - as ``churnops
    init`` infers them, from the reference's first rows, with a notice."""

    @field_validator("target", "target_positive", "prediction", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("target_positive", mode="before")
    @classmethod
    def _label_as_text(cls, value: Any) -> Any:
        """``target_positive = 1`` (a number in TOML) names the label 1, as ``"1"`` does."""
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value) if isinstance(value, int | float) else value

    @field_validator("date_formats")
    @classmethod
    def _known_date_formats(cls, value: dict[str, str]) -> dict[str, str]:
        families = ("iso", "day-first", "month-first", "month-names")
        for column, fmt in value.items():
            if fmt not in families and ("%" not in fmt or len(fmt) > 64):
                raise ValueError(
                    f"'{column}': {fmt!r} is not a way of writing dates; use one of {', '.join(families)} "
                    'or a format such as "%d/%m/%Y"'
                )
        return value

    @field_validator("id", "ignored", "datetime", "numerical", "categorical", "binary", "text", mode="before")
    @classmethod
    def _one_name_is_a_list(cls, value: Any) -> Any:
        """``id = "customer_id"`` means ``id = ["customer_id"]``."""
        return [value] if isinstance(value, str) and value else value

    @model_validator(mode="after")
    def _one_role_per_column(self) -> ColumnsConfig:
        roles: dict[str, str] = {}
        for kind in ("target", "prediction"):
            name = getattr(self, kind)
            if name is not None:
                roles.setdefault(name, kind)
        if self.target is not None and self.target == self.prediction:
            raise ValueError(f"'{self.target}' is both the target and the prediction")
        for kind in ("id", "ignored", "datetime", "numerical", "categorical", "binary", "text"):
            for name in getattr(self, kind):
                other = roles.setdefault(name, kind)
                if other != kind:
                    raise ValueError(f"'{name}' is listed both as {other} and as {kind}; keep one")
        return self

    @field_validator("domains")
    @classmethod
    def _domain_order(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for name, (low, high) in value.items():
            if high < low:
                raise ValueError(f"domain of '{name}' has max {high} < min {low}")
        return value

    def declared_type(self, column: str) -> ColumnTypeName | None:
        """The role or type the configuration gives ``column``, or None to infer it."""
        if column == self.target:
            return "target"
        if column == self.prediction:
            return "prediction"
        for kind in ("id", "ignored", "datetime", "numerical", "categorical", "binary", "text"):
            if column in getattr(self, kind):
                return kind  # type: ignore[return-value]
        return None


Binning = Literal["evidently", "quantile"]
NonNegative = Annotated[float, Field(ge=0)]
Signal = Literal["data", "target", "model", "quality"]


class DriftConfig(_Section):
    method: str | None = None
    """Stat test for every column; None = Evidently's default selection."""
    num_method: str | None = None
    cat_method: str | None = None
    per_column_method: dict[str, str] = {}
    threshold: NonNegative | None = None
    """Threshold of every column's test: a p-value (drift below it) or a distance (drift at or above it)."""
    num_threshold: NonNegative | None = None
    cat_threshold: NonNegative | None = None
    per_column_threshold: dict[str, NonNegative] = {}
    binning: Binning = "evidently"
    n_bins: Annotated[int, Field(ge=2, le=10_000)] = 10
    """Bin count of the ``quantile`` binning (Evidently's mode ignores it, as Evidently does)."""
    verdict: Literal["evidently", "calibrated"] = "evidently"
    """How a column is decided: ``evidently`` (its test against its threshold, Evidently's rule)
    or ``calibrated`` (a test with a known false-alarm rate, adjusted across columns at ``fdr``,
    and a change of at least ``min_effect``)."""
    fdr: Annotated[float, Field(gt=0, lt=1)] = 0.05
    """Calibrated verdict: false discovery rate across columns (with no drift, the chance of a
    false alarm)."""
    min_effect: Annotated[float, Field(ge=0)] = 0.02
    """Calibrated verdict: smallest change that can alarm - Wasserstein distance in reference
    standard deviations (numbers), share of rows changing category (categories)."""
    segments: list[str] = []
    """Columns whose values split the data into segments (e.g. ``["Customer Segment"]``): every
    column is also tested inside each segment, so that a drift confined to one segment is found.
    Segments are decided with the calibrated verdict (the default once segments are set)."""
    min_segment_rows: Annotated[int, Field(ge=2)] = 200
    """A segment is tested when it has at least this many rows in the reference and in the batch."""
    multivariate: bool = False
    """Also look for changes in how the columns go together: a domain classifier and a PCA
    reconstruction error on a sample of whole rows (needs scikit-learn)."""
    multivariate_rows: Annotated[int, Field(ge=100, le=1_000_000)] = 5_000
    """Rows sampled from each dataset for the multivariate detectors."""
    chunk_by: str = ""
    """Also cut the batch into chunks, each compared with the whole reference: ``period:1w`` (one
    chunk per week of ``time_column``; also ``h``, ``d``, ``mo``, ``q``, ``y``) or ``size:5000``
    (runs of 5,000 rows in file order). Empty: no chunks."""
    time_column: str = ""
    """The column whose dates place each row in a period (``chunk_by = "period:..."``)."""
    time_format: PlainText = ""
    """How the time column's text is written, e.g. ``"%m/%d/%Y"`` (strftime codes), for dates that
    read both day first and month first. Empty: ISO 8601 and the common formats are recognised."""
    min_chunk_rows: Annotated[int, Field(ge=2)] = 200
    """A chunk is tested when it has at least this many rows."""

    @model_validator(mode="before")
    @classmethod
    def _segments_are_calibrated(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not data.get("segments"):
            return data
        if "verdict" not in data:
            return {**data, "verdict": "calibrated"}
        if data["verdict"] == "evidently":
            raise ValueError(
                'drift.segments needs drift.verdict = "calibrated": Evidently\'s fixed thresholds, applied '
                "again to each segment's fewer rows, raise a segment finding in most runs without any drift"
            )
        return data

    @field_validator("chunk_by")
    @classmethod
    def _chunk_by_form(cls, value: str) -> str:
        if value and not re.fullmatch(r"size:[1-9][0-9]{0,9}|period:[1-9][0-9]{0,3}(h|d|w|mo|q|y)", value):
            raise ValueError(
                f"{value[:40]!r} is neither period:<n><unit> (units h, d, w, mo, q, y: period:1w, period:1mo) "
                "nor size:<rows> (size:5000)"
            )
        return value

    @model_validator(mode="after")
    def _chunks_need_what_they_cut_by(self) -> DriftConfig:
        if self.chunk_by.startswith("period:") and not self.time_column:
            raise ValueError(f'drift.chunk_by = "{self.chunk_by}" needs drift.time_column (the column of dates)')
        if (self.time_column or self.time_format) and not self.chunk_by.startswith("period:"):
            raise ValueError('drift.time_column and drift.time_format are used by drift.chunk_by = "period:..." only')
        if self.chunk_by.startswith("size:") and int(self.chunk_by[5:]) < self.min_chunk_rows:
            raise ValueError(
                f"drift.chunk_by = {self.chunk_by!r}: chunks smaller than drift.min_chunk_rows "
                f"({self.min_chunk_rows}) would never be tested"
            )
        return self

    @field_validator("segments")
    @classmethod
    def _distinct_segments(cls, value: list[str]) -> list[str]:
        if any(not name for name in value):
            raise ValueError("a segment column name cannot be empty")
        return list(dict.fromkeys(value))


class ThresholdsConfig(_Section):
    dataset_drift: Annotated[float, Field(ge=0, le=1)] = 0.1
    """Trigger when the share of drifted feature columns exceeds this (the original project's 0.1)."""
    column_drift: Annotated[float, Field(gt=0)] = 0.1
    """Default threshold of distance tests (drift when distance >= it). p-value tests keep 0.05."""
    data_quality: Annotated[float, Field(ge=0, le=1)] = 0.95
    """Warn when the data quality score is below this."""
    target: Annotated[float, Field(gt=0, lt=1)] = 0.01
    """The target's rate drifted when its two-proportion z-test gives a p-value below this. 0.01
    rather than the usual 0.05: a nightly job tests it every night, and at 0.05 one unchanged
    batch in twenty would alert on chance alone."""
    evidently_drift_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    """Evidently's own dataset rule (share >= drift_share), reported for comparison."""
    trigger_on: list[Signal] = ["data", "target", "model"]
    """Which findings write trigger.txt and alert: data drift, target (churn rate) drift, the
    model (prediction drift or decay), data quality. ["data"] is the original project's rule exactly."""

    @field_validator("trigger_on")
    @classmethod
    def _distinct_signals(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


ScenarioOpName = Literal[
    "scale", "shift", "clip", "remix", "missing", "new_category", "target_rate", "resample", "concept", "decouple"
]


class ScenarioOp(_Section):
    """One drift operation of a custom scenario. Intensity scales every shift."""

    op: ScenarioOpName
    column: str
    factor: float | None = None
    amount: float | None = None
    min: float | None = None
    max: float | None = None
    share: Annotated[float, Field(ge=0, le=1)] | None = None
    to: str | None = None
    value: str | None = None

    @model_validator(mode="after")
    def _required(self) -> ScenarioOp:
        needs = {
            "scale": ("factor",),
            "shift": ("amount",),
            "clip": (),
            "remix": ("share", "to"),
            "missing": ("share",),
            "new_category": ("share", "value"),
            "target_rate": ("amount",),
            "resample": ("factor",),
            "concept": (),
            "decouple": (),
        }[self.op]
        missing = [k for k in needs if getattr(self, k) is None]
        if missing:
            raise ValueError(f"operation '{self.op}' needs {', '.join(missing)}")
        for key in ("factor", "amount", "min", "max"):
            value = getattr(self, key)
            if value is not None and abs(value) > 1e12:
                raise ValueError(f"{key} {value:g} is beyond any plausible value (at most 1e12 in size)")
        if self.op == "resample" and self.factor is not None and abs(self.factor) > 100:
            raise ValueError("operation 'resample' tilts rows by exp(factor x z): a factor in [-100, 100]")
        if self.min is not None and self.max is not None and self.max < self.min:
            raise ValueError(f"max {self.max} < min {self.min}")
        if self.op == "clip" and self.min is None and self.max is None:
            raise ValueError("operation 'clip' needs min and/or max")
        return self


class ScenarioConfig(_Section):
    name: str = "seed"
    intensity: Annotated[float, Field(ge=0, le=100)] = 1.0
    seed: Seed = 2024
    custom: dict[str, list[ScenarioOp]] = {}
    """Named custom scenarios: lists of operations."""


Engine = Literal["native", "dask", "spark", "evidently"]


ENGINE_CODE_VARIABLE = "CHURNOPS_ALLOW_ENGINE_CODE"
"""Set to 1 in a job's environment, it trusts the engine settings of a configuration that can run
code: [spark.conf] beyond sizes and switches, a Dask scheduler, a Spark master other than local."""


def _engine_code_allowed() -> bool:
    """Whether the job's environment trusts engine settings that can run code (:data:`ENGINE_CODE_VARIABLE`)."""
    import os

    return os.environ.get(ENGINE_CODE_VARIABLE) == "1"


class MonitorConfig(_Section):
    engine: Engine = "native"
    """native (this machine), dask (partitions on a Dask cluster), spark (partitions on Spark) or
    evidently (Evidently itself)."""
    use_profile_cache: bool = True
    mode: Literal["auto", "exact", "streaming"] = "auto"
    """exact keeps every value (Evidently's numbers); streaming keeps bounded summaries; auto picks
    exact for datasets up to exact_max_rows rows."""
    exact_max_rows: Annotated[int, Field(ge=0)] = 5_000_000
    jobs: Annotated[int, Field(ge=0, le=256)] = 0
    """Threads working on the columns of a chunk (streaming); 0 = one per CPU core."""
    scheduler: str | None = None
    """Dask scheduler address (tcp://host:8786) for engine = "dask"; none = a local cluster."""
    evidently_html: bool = False
    """With engine = "evidently", also save Evidently's own HTML page as
    monitoring/evidently_report.html, its embedded data escaped. Off by default: that page runs
    Evidently's JavaScript (which Jenkins' Content-Security-Policy blocks) and embeds the data
    unescaped; churnops' own report is the one meant to be read."""

    @field_validator("scheduler")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z][a-z0-9+]*://[^\s/]+:\d{1,5}", value):
            raise ValueError(f"'{value}' is not a scheduler address like tcp://host:8786")
        if value is not None and not _engine_code_allowed():
            raise ValueError(
                "a Dask cluster runs churnops' work and sends back Python objects that are unpickled here: a "
                f"configuration or command line does not choose one alone - set {ENGINE_CODE_VARIABLE}=1 in the "
                "job's environment if you trust this cluster"
            )
        return value

    spark_master: PlainText | None = None
    """Spark master for engine = "spark" (spark://host:7077, yarn, k8s://...); none = local[jobs]
    on this machine. A Spark session already running in the process is used as it is."""

    @field_validator("spark_master")
    @classmethod
    def _master(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"local(\[(\d+|\*)(,\d+)?\])?|yarn|(spark|k8s)://\S+", value):
            raise ValueError(f"'{value}' is not a Spark master like local[2], spark://host:7077, yarn or k8s://...")
        if value is not None and not value.startswith("local") and not _engine_code_allowed():
            raise ValueError(
                "a Spark cluster receives the data and talks to churnops' driver in Java serialization: a "
                f"configuration or command line does not choose one alone - set {ENGINE_CODE_VARIABLE}=1 in the "
                "job's environment if you trust this cluster"
            )
        return value

    sample_duplicates_above: Annotated[int, Field(ge=0)] = 20_000_000
    """Streaming batches with more rows than this, and an identifier column, count repeated rows
    and identifiers on the identifiers of a 1/16 hash sample, scaled (reported as estimates);
    0 = always count exactly (16-17 s became 19-25 s on a 100M-row benchmark batch)."""


class DvcConfig(_Section):
    remote_name: Annotated[PlainText, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")] = "local_storage"
    remote_url: Annotated[PlainText, Field(min_length=1)] = "./dvc_storage"
    """Any DVC remote URL (s3://, gs://, ssh://...) or a path, relative to the project root."""
    push: bool = True


class PipelineConfig(_Section):
    lock_timeout_s: Annotated[float, Field(ge=0, le=7 * 86_400)] = 3600.0
    """How long a second run (monitor or pipeline) waits for the one holding the workspace."""


NotifyStatus = Literal["drift", "warning", "ok", "error"]
"""A notification's status: the run's verdict (alert = ``drift``, ``warning``, ``ok``) or ``error``
(a pipeline stage failed)."""


def _address(value: str) -> str:
    if _CONTROL.search(value) or "," in value or not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", value):
        raise ValueError(f"'{value}' is not an e-mail address like name@bank.example")
    return value


Address = Annotated[str, AfterValidator(_address)]


class _Channel(_Section):
    name: PlainText | None = None
    on: list[NotifyStatus] = ["drift", "error"]
    """When the channel speaks: on an alert (drift), a warning, a clean run (ok), a failed stage (error).
    A channel with ``ok`` and without ``warning`` also hears warnings: one told all is well is told
    when it is not quite."""
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    """Extra attempts after a connection error, a timeout or an HTTP 5xx (with backoff)."""
    backoff_s: Annotated[float, Field(ge=0, le=60)] = 0.5


class EmailChannel(_Channel):
    type: Literal["email"] = "email"
    host: PlainText = "localhost"
    port: Annotated[int, Field(gt=0, lt=65536)] = 587
    security: Literal["starttls", "ssl", "plain"] = "starttls"
    sender: Address = "churnops@localhost"
    recipients: Annotated[list[Address], Field(min_length=1)] = ["mlops@localhost"]
    username_env: str | None = None
    """Environment variable holding the SMTP user (no login when unset)."""
    password_env: str | None = None
    """Environment variable holding the SMTP password."""
    ca_file: str | None = None
    """Certificate authority bundle to verify the server with (default: the system's)."""
    attach_report: bool = True
    attach_metrics: bool = True


class WebhookChannel(_Channel):
    type: Literal["slack", "teams", "webhook"]
    url_env: str
    """Environment variable holding the webhook URL (it contains a secret token)."""


class FileChannel(_Channel):
    type: Literal["file"] = "file"
    path: str = "monitoring/notifications.log"
    on: list[NotifyStatus] = ["drift", "warning", "ok", "error"]


Channel = Annotated[EmailChannel | WebhookChannel | FileChannel, Field(discriminator="type")]


class NotifyConfig(_Section):
    channels: list[Channel] = []
    """No channel configured: the pipeline writes monitoring/notification.txt and a log line."""
    subject_prefix: PlainText = "[churnops]"
    report_url: str | None = None
    """Where people open the report (e.g. a Jenkins job page); BUILD_URL is used when set."""
    top_columns: Annotated[int, Field(ge=1, le=50)] = 5

    @field_validator("report_url")
    @classmethod
    def _report_url(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit

        from churnops.redact import url_credential

        if value is None:
            return value
        try:
            parts = urlsplit(value)
        except ValueError:
            raise ValueError("not an http(s) address like https://reports.example/churn/") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise ValueError("not an http(s) address like https://reports.example/churn/")
        secret = url_credential(value)
        if secret == "user:password@":
            raise ValueError(
                "holds user:password@: every message would carry it in clear text; give the address without it "
                "(people open the report with their own login)"
            )
        if secret is not None:
            raise ValueError(
                f"holds a credential in its query ({secret}): every message would carry it in clear text; give "
                "the address without it"
            )
        return value


class HistoryConfig(_Section):
    enabled: bool = True
    url: PlainText | None = None
    """A SQLAlchemy URL (e.g. postgresql://user@host/db, password from CHURNOPS_HISTORY_PASSWORD);
    default: sqlite at <monitoring_dir>/history.db."""

    @field_validator("url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z][a-z0-9+_]*://.*", value):
            raise ValueError(f"'{value}' is not a database URL like sqlite:///history.db or postgresql://user@host/db")
        return value

    password_env: str | None = None
    """Environment variable holding the database password, inserted into the URL."""
    trend_runs: Annotated[int, Field(ge=2, le=1000)] = 30
    """How many past runs the report's trend charts show."""


class MetricsConfig(_Section):
    textfile_dir: str | None = None
    """Write churnops.prom here after each pipeline run (node_exporter's textfile collector)."""
    pushgateway_url: str | None = None
    """Push to this Prometheus Pushgateway after each pipeline run."""
    job: str = "churnops"


def period_seconds(text: str, longest_days: int = 30) -> float | None:
    """Seconds in a period written ``<number><s|m|h|d>``, or None when it is not one (or is
    outside 1 second to ``longest_days`` days).

    >>> period_seconds("15m"), period_seconds("1d"), period_seconds("2w"), period_seconds("90d")
    (900.0, 86400.0, None, None)
    >>> period_seconds("90d", longest_days=3650)
    7776000.0
    """
    match = re.fullmatch(r"([1-9][0-9]{0,6})(s|m|h|d)", text.strip())
    if match is None:
        return None
    seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return float(seconds) if seconds <= longest_days * 86400 else None


KEEP_EVENTS_LONGEST_DAYS = 3650
"""The longest ``serve.keep_events``: ten years."""


AB_REPORT_FILES = ("ab_report.json", "ab_report.html", "report.css")
"""What ``churnops ab report`` writes in ``serve.ab.report_dir``."""


class ABConfig(_Section):
    """``[serve.ab]``: a challenger model taking a share of ``/v1/predict``'s traffic."""

    challenger: PlainText = "challenger"
    """The MLflow alias of the challenger (``model.name@challenger``)."""
    share: Annotated[float, Field(ge=0, le=1)] = 0.0
    """The share of customers the challenger scores (0: none; the arms off)."""
    key: str | None = None
    """The column whose value assigns a customer to an arm, for good (default: the first of
    ``columns.id``)."""
    level: Annotated[float, Field(gt=0, lt=0.5)] = 0.05
    """The challenger is promoted when its ROC-AUC is higher with a one-sided p-value (DeLong) at
    most this."""
    min_labels: Annotated[int, Field(ge=20, le=100_000_000)] = 1_000
    """Labelled customers each arm needs before a promotion is decided (a customer scored many
    times counts once)."""
    min_each_outcome: Annotated[int, Field(ge=10, le=1_000_000)] = 50
    """Churned and stayed customers each arm needs among them: DeLong's test leans on a normal
    approximation that promotes too often when one outcome is rare."""
    auto_promote: bool = False
    """Promote a better challenger unattended: the service checks after every closed window."""
    report_dir: str = "monitoring/ab"
    """Where ``churnops ab report`` writes ``ab_report.json``, ``ab_report.html`` and its stylesheet."""

    @field_validator("challenger")
    @classmethod
    def _challenger_alias(cls, value: str) -> str:
        if value.strip().lower() in ("champion", "previous-champion"):
            raise ValueError(
                f"{value!r} is an alias churnops moves itself on a promotion; name the challenger's own alias "
                "(default 'challenger')"
            )
        if not value.strip():
            raise ValueError("the challenger's alias cannot be empty")
        return value


class ServeConfig(_Section):
    """``churnops serve``: the real-time monitoring service."""

    ab: ABConfig = ABConfig()

    window_size: Annotated[int, Field(ge=10, le=10_000_000)] = 10_000
    """Events per tumbling window; each closed window is compared with the reference."""
    window_period: str | None = None
    """Also close a window this long after its first event, full or not: "30s", "15m", "1h", "1d"."""
    max_batch: Annotated[int, Field(ge=1, le=100_000)] = 1_000
    """Most events one POST /v1/events may carry."""
    max_body_bytes: Annotated[int, Field(ge=1_024, le=1 << 30)] = 16 << 20
    """Largest request body accepted (larger: 413)."""
    max_inflight_bytes: Annotated[int, Field(ge=1_024, le=1 << 40)] = 64 << 20
    """Bytes of request bodies one process works on at once (a body takes about ten times its
    size in memory while it is checked); more requests wait for room, up to half of
    ``request_timeout``, then get 503. One body larger than this goes alone."""
    request_timeout: Annotated[float, Field(ge=0.1, le=3_600)] = 30.0
    """Seconds a client has, from connecting (or from the first byte of its next request), to send
    a whole request - head and body; a connection that stays silent or trickles is closed."""
    token_env: str = "CHURNOPS_API_TOKEN"
    """Environment variable holding the bearer token that write endpoints require."""
    protect_reads: bool = False
    """Require the token to read too: ``/v1/drift``, the status page, the windows' reports and
    ``/metrics`` show summaries of the records sent (quantiles, category values). ``/healthz`` and
    ``/readyz`` stay open (probes)."""
    event_log: str = "monitoring/events.db"
    """The append-only event log (SQLite, write-ahead log)."""
    windows_dir: str = "monitoring/windows"
    """Each closed window's metrics and report, in a folder named by its number."""
    keep_events: str | None = None
    """How long the event log keeps an evaluated window's events: "90d", "12h" (up to 3650d).
    After that they are deleted with their outcomes (traffic or not), oldest window first, and
    the space is reused by new events, so that the log stops growing (about 1.3 KB per event);
    the windows' metrics, reports and history stay. None: kept for ever. Keep them longer than outcomes take to arrive:
    an outcome for a deleted event is refused as unknown, and an event id sent again after its
    event was deleted is counted again."""
    keep_inputs: str | None = None
    """How long the event log keeps the inputs of an evaluated window's events: "30d", "12h" (up to
    3650d). After that each record keeps only its scores (probability, arm, model version), its
    prediction and target columns and, when an A/B arm scored it, its ``serve.ab.key`` column -
    enough for the A/B comparison and late outcomes - and the rest is overwritten on disk; shorter than
    ``keep_events``. None: inputs are kept as long as their events."""
    detectors: list[str] | None = None
    """Streams watched event by event (CUSUM and Page-Hinkley): numerical columns, or the
    prediction; default: the prediction if there is one, else every numerical feature."""
    arl0: Annotated[int, Field(ge=1_000, le=1_000_000)] = 20_000
    """Expected events between two false alarms of a stream's detectors when nothing changed."""
    detector_shift: Annotated[float, Field(gt=0, le=5)] = 0.25
    """The change worth finding fastest, in the reference's standard deviations."""
    remind_every: Annotated[int, Field(ge=1, le=1_000_000)] = 10
    """While windows keep alerting, the [notify] channels hear again every this many windows."""
    evaluation: Literal["process", "thread"] = "process"
    """Where closed windows are evaluated: "process", a second process beside the service (it
    runs on another core, so requests do not wait behind an evaluation; 120-150 MiB more
    memory), or "thread", inside the service's own process."""
    evaluation_timeout: Annotated[float, Field(ge=1, le=86_400)] = 600.0
    """Seconds the evaluator process may take to start, or over one window, before it is stopped
    and the window evaluated in the service's own process."""

    @field_validator("window_period")
    @classmethod
    def _period(cls, value: str | None) -> str | None:
        if value is not None and period_seconds(value) is None:
            raise ValueError(f"'{value}' is not a period like 30s, 15m, 1h or 1d (from 1 second to 30 days)")
        return value

    @field_validator("keep_events", "keep_inputs", mode="before")
    @classmethod
    def _kept_for(cls, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a period like 12h or 90d (written as text, in quotes)")
        value = value.strip()
        if period_seconds(value, KEEP_EVENTS_LONGEST_DAYS) is None:
            raise ValueError(
                f"'{value}' is not a period like 12h or 90d (from 1 second to {KEEP_EVENTS_LONGEST_DAYS} days)"
            )
        return value

    @model_validator(mode="after")
    def _inputs_before_events(self) -> ServeConfig:
        if self.keep_inputs and self.keep_events:
            inputs = period_seconds(self.keep_inputs, KEEP_EVENTS_LONGEST_DAYS) or 0.0
            if inputs >= (period_seconds(self.keep_events, KEEP_EVENTS_LONGEST_DAYS) or 0.0):
                raise ValueError(
                    f"serve.keep_inputs ({self.keep_inputs}) must be shorter than serve.keep_events "
                    f"({self.keep_events}): the events are deleted, inputs and all, first"
                )
        return self

    @field_validator("token_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"'{value}' is not an environment variable name")
        return value


StreamKey = Annotated[PlainText, Field(min_length=1, max_length=256)]
"""A Redis key or name (stream, consumer group, consumer): 1 to 256 characters, no control character."""


class ConsumeConfig(_Section):
    """``churnops consume``: events read from a Redis Stream into the service's event log."""

    redis_url_env: str = "CHURNOPS_REDIS_URL"
    """Environment variable holding the Redis URL (``redis://:password@host:6379/0``); ``--redis``
    gives it on the command line instead."""
    stream: StreamKey | None = None
    """The stream to read (``--stream``)."""
    group: StreamKey = "churnops"
    """The consumer group; created at the stream's first entry (with the stream) when missing."""
    consumer: StreamKey | None = None
    """This consumer's name in the group (default: ``churnops-<host name>``, the same after a restart)."""
    dead_letter: StreamKey | None = None
    """The stream rejected entries go to, with the reason (default: ``<stream>:rejected``)."""
    dead_letter_maxlen: Annotated[int, Field(ge=100, le=100_000_000)] = 1_000_000
    """The dead-letter stream is trimmed to about this many entries (oldest first)."""
    batch: Annotated[int, Field(ge=1, le=10_000)] = 500
    """Entries read (and written to the event log in one transaction) at a time."""
    claim_idle: Annotated[float, Field(ge=0, le=7 * 86_400)] = 60.0
    """Seconds an entry stays unacknowledged by another consumer before it is claimed (a crashed
    consumer's entries); claimed at start and then every ``claim_idle`` seconds (at least 1)."""

    @field_validator("redis_url_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"'{value}' is not an environment variable name")
        return value


class ModelConfig(_Section):
    name: PlainText = "bank-churn"
    tracking_uri: PlainText = "sqlite:///mlflow.db"
    """MLflow tracking URI; a relative sqlite path is inside the project. MLFLOW_TRACKING_URI wins."""
    artifact_dir: str = "mlartifacts"
    """Where MLflow keeps the models of a new experiment: a folder of the project, or an S3 prefix
    (``s3://bucket/mlflow``; ``[storage]`` gives the endpoint and region, the AWS chain the
    credentials)."""
    experiment: PlainText = "bank-churn"
    seed: Seed = 42
    validation_share: Annotated[float, Field(gt=0, lt=0.5)] = 0.2
    max_auc_drop: Annotated[float, Field(ge=0, le=1)] = 0.05
    """Decay alert when the ROC-AUC falls by more than this from the reference."""
    min_auc: Annotated[float, Field(ge=0, le=1)] = 0.6
    """A trained model becomes the champion only when its validation ROC-AUC reaches this, and a
    champion whose ROC-AUC on a batch is below it is an alert: near 0.5 a model ranks customers no
    better than chance."""
    monitor: Literal["auto", "required", "off"] = "auto"
    """auto: when a champion exists, monitor scores the batch (prediction drift, performance); and
    when an earlier run checked one that is gone, or the registry cannot be read, the run says
    the model is not checked (an alert). required: also when there never was a champion. off: the
    data alone."""
    important_top_k: Annotated[int, Field(ge=1)] = 5
    as_of: str | None = None
    """Date that ages are computed at (YYYY-MM-DD); default: the training day."""

    @field_validator("artifact_dir")
    @classmethod
    def _artifact_dir(cls, value: str) -> str:
        _no_control(value)
        if "://" not in value:
            return value
        scheme, _, rest = value.partition("://")
        if scheme.lower() != "s3":
            raise ValueError(f"'{scheme}://' artifact stores are not supported: a folder or s3://bucket/prefix")
        value = "s3://" + rest
        if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.\-]{1,62}(/[^?#@\s]*)?", value):
            raise ValueError("not an S3 prefix like s3://bucket/mlflow (no credentials, no query)")
        if _dot_segments(value):
            raise ValueError("'.', '..' and empty names are refused in object-storage URLs")
        return value.rstrip("/")

    @field_validator("as_of")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        from datetime import date

        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"'{value}' is not a date like 2026-12-31") from None
        return value


class RetrainConfig(_Section):
    enabled: bool = False
    """Run the pipeline's stage 5 (retraining) when drift is detected."""
    min_improvement: Annotated[float, Field(ge=0, le=1)] = 0.02
    """Promote the challenger only when its ROC-AUC beats the champion's by this much."""
    holdout_share: Annotated[float, Field(gt=0, lt=1)] = 0.3
    """Share of the production rows held out to compare champion and challenger: the last in file
    order (the newest, in a batch written in time order)."""


class StorageConfig(_Section):
    """``[storage]``: how to reach object storage for ``s3://``, ``gs://`` and ``az://`` URLs.
    Credentials never go here: the provider's standard chain gives them (environment variables,
    profiles, instance or pod roles)."""

    endpoint_url: PlainText | None = None
    """An S3-compatible server (MinIO, Ceph): ``http://minio.internal:9000``."""
    region: PlainText | None = None
    retries: Annotated[int, Field(ge=1, le=20)] = 5
    """Attempts per request: throttling, 5xx answers and dropped connections are retried with backoff."""
    timeout: Annotated[float, Field(gt=0, le=600)] = 30.0
    """Seconds to connect, and to wait for an answer."""
    profile_cache_url: str | None = None
    """A prefix (``s3://bucket/churnops/profiles/``) shared by every runner: a reference profile
    missing from ``paths.profile_cache`` is looked for there, and each profile built is uploaded."""

    @field_validator("profile_cache_url")
    @classmethod
    def _shared_cache(cls, value: str | None) -> str | None:
        if value is not None and not _FETCH_URL.fullmatch(value):
            raise ValueError("not an object-storage prefix like s3://bucket/churnops/profiles/ (no credentials)")
        if value is not None and _dot_segments(value):
            raise ValueError("'.', '..' and empty names are refused in object-storage URLs")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^/\s?#@]+/?", value):
            raise ValueError(f"'{value}' is not a server URL like http://minio.internal:9000 (no user, no path)")
        return value


SparkValue = Annotated[str, AfterValidator(_no_control)] | int | float | bool


SPARK_PLAIN_SETTINGS = frozenset(
    key.lower()
    for key in (
        "spark.driver.memory", "spark.driver.cores", "spark.driver.maxResultSize", "spark.driver.memoryOverhead",
        "spark.executor.memory", "spark.executor.cores", "spark.executor.instances",
        "spark.executor.memoryOverhead", "spark.executor.heartbeatInterval", "spark.cores.max", "spark.task.cpus",
        "spark.default.parallelism", "spark.memory.fraction", "spark.memory.storageFraction",
        "spark.memory.offHeap.enabled", "spark.memory.offHeap.size", "spark.network.timeout", "spark.locality.wait",
        "spark.ui.enabled", "spark.ui.showConsoleProgress", "spark.sql.shuffle.partitions",
        "spark.sql.session.timeZone", "spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes",
        "spark.sql.adaptive.enabled", "spark.sql.adaptive.coalescePartitions.enabled",
        "spark.sql.adaptive.advisoryPartitionSizeInBytes", "spark.sql.autoBroadcastJoinThreshold",
        "spark.sql.ansi.enabled", "spark.sql.caseSensitive", "spark.sql.execution.arrow.maxRecordsPerBatch",
        "spark.sql.legacy.timeParserPolicy", "spark.sql.csv.parser.columnPruning.enabled",
    )
)  # fmt: skip
"""Spark settings of sizes, counts, switches and time: taken from a configuration file as they are.
Any other may name a program, a class, code to fetch, an environment, a folder or a server (JVM
options such as ``-XX:OnOutOfMemoryError=prog``, ``spark.sql.execution.pyspark.python``,
``spark.jars.packages``, ``spark.hadoop.*``...): a configuration file that came with a project is
not a program, so those are taken only when the job's environment sets :data:`ENGINE_CODE_VARIABLE`."""


class SparkConfig(_Section):
    """``[spark]``: the session churnops starts for engine = "spark" (a running session is used as is)."""

    conf: dict[Annotated[str, Field(pattern=r"^spark\.[A-Za-z0-9_.-]+$")], SparkValue] = {}
    """Spark settings, e.g. ``"spark.executor.memory" = "4g"``; churnops' own defaults (no web
    UI, UTC session time zone, on one machine: bound to 127.0.0.1) give way to yours. Only
    :data:`SPARK_PLAIN_SETTINGS` unless the environment sets ``CHURNOPS_ALLOW_ENGINE_CODE=1``: a
    configuration file that came with a project is not a program."""

    @field_validator("conf")
    @classmethod
    def _no_code(cls, value: dict[str, Any]) -> dict[str, Any]:
        import os

        other = sorted(key for key in value if key.lower() not in SPARK_PLAIN_SETTINGS)
        if other and os.environ.get(ENGINE_CODE_VARIABLE) != "1":
            raise ValueError(
                f"{', '.join(other[:3])}: churnops takes only Spark's sizes, counts and switches from a "
                "configuration file (spark.executor.memory, spark.sql.shuffle.partitions...) - other settings can make "
                "Spark run or load code (JVM options, jars, Python executables, classes) or write elsewhere; if you "
                f"wrote this configuration yourself, set {ENGINE_CODE_VARIABLE}=1 in the job's environment"
            )
        return value


class PublishConfig(_Section):
    """``[publish]``: after a run, upload its report and metrics to object storage."""

    url: PlainText | None = None
    """A prefix such as ``s3://bucket/churnops/{run_id}/`` (``{run_id}`` is the run's id)."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(s3|gs|gcs|az|abfs)://[^/\s?#@]+(/[^\s?#]*)?", value):
            raise ValueError(f"'{value}' is not an object-storage prefix like s3://bucket/churnops/{{run_id}}/")
        if value is not None and re.search(r"[{}]", value.replace("{run_id}", "")):
            raise ValueError("the only placeholder is {run_id}")
        if value is not None and _dot_segments(value):
            raise ValueError("'.', '..' and empty names are refused in object-storage URLs")
        return value


class Config(_Section):
    paths: PathsConfig = PathsConfig()
    data: DataConfig = DataConfig()
    columns: ColumnsConfig = ColumnsConfig()
    drift: DriftConfig = DriftConfig()
    thresholds: ThresholdsConfig = ThresholdsConfig()
    scenario: ScenarioConfig = ScenarioConfig()
    monitor: MonitorConfig = MonitorConfig()
    dvc: DvcConfig = DvcConfig()
    pipeline: PipelineConfig = PipelineConfig()
    notify: NotifyConfig = NotifyConfig()
    history: HistoryConfig = HistoryConfig()
    metrics: MetricsConfig = MetricsConfig()
    model: ModelConfig = ModelConfig()
    retrain: RetrainConfig = RetrainConfig()
    serve: ServeConfig = ServeConfig()
    consume: ConsumeConfig = ConsumeConfig()
    storage: StorageConfig = StorageConfig()
    spark: SparkConfig = SparkConfig()
    publish: PublishConfig = PublishConfig()

    root: Path = Field(default_factory=Path.cwd, exclude=True)
    """Project root: relative paths are resolved against it."""
    source: Path | None = Field(default=None, exclude=True)
    """The file this configuration was read from, if any."""

    @model_validator(mode="before")
    @classmethod
    def _reference_window(cls, data: Any) -> Any:
        """Rows [0, 20000) of the embedded dataset by default; your own reference file whole."""
        if not isinstance(data, dict):
            return data
        section = data.get("data", {})
        paths = data.get("paths", {})
        if not isinstance(section, dict) or "reference_rows" in section or not isinstance(paths, dict):
            return data
        if paths.get("reference", DEFAULT_REFERENCE) == DEFAULT_REFERENCE:
            return data
        return {**data, "data": {**section, "reference_rows": "all"}}

    def resolve(self, path: str | Path) -> Path:
        """A configured file path, resolved inside the project root (see :mod:`churnops.config.paths`).

        Absolute paths are taken as given; relative paths must not leave the root.
        """
        return resolve_in(self.root, path, "file")

    def resolve_dir(self, path: str | Path) -> Path:
        """A configured folder, resolved inside the project root (links followed)."""
        return resolve_in(self.root, path, "dir")

    @property
    def dialect(self) -> Any:
        """The :class:`churnops.data.io.CsvDialect` of the current batch (``[data]``, ``[data.current]``)."""
        return self.dialect_for("current")

    def dialect_for(self, which: str) -> Any:
        """The CSV dialect of the ``reference`` or ``current`` input."""
        from churnops.data.io import CsvDialect

        return CsvDialect(*self.data.dialect_of(which))

    @property
    def monitoring_dir(self) -> Path:
        return self.resolve_dir(self.paths.monitoring_dir)

    @property
    def lock_path(self) -> Path:
        """The workspace lock every run holds (in the monitoring folder, beside the outputs)."""
        return self.monitoring_dir / LOCK_FILE

    @property
    def model_lock_path(self) -> Path:
        """The lock every change of the model registry's aliases holds (train, retrain, ab promote):
        two retrains at once both promoted, the worse last. Beside a SQLite registry
        (``.mlflow.db.lock``), which configurations with monitoring folders of their own share; in
        the monitoring folder for a registry on a server (processes of other projects or machines
        are not held back then)."""
        database = self.sqlite_path(self.model_tracking_uri())
        return (
            database.with_name(f".{database.name}.lock")
            if database is not None
            else self.monitoring_dir / MODEL_LOCK_FILE
        )

    @property
    def trigger_lock_path(self) -> Path:
        """The lock beside the trigger (``.trigger.txt.lock``), held after :attr:`lock_path`: two
        configurations with monitoring folders of their own but one trigger - wherever it is, the
        other's monitoring folder included - take turns with it, as runs of one folder do."""
        trigger = self.resolve(self.paths.trigger)
        return trigger.with_name(f".{trigger.name}.lock")

    def run_outputs(self) -> dict[str, Path]:
        """The files one monitoring run commits together (and may remove: the trigger)."""
        folder = self.monitoring_dir
        return {
            "metrics": folder / METRICS_FILE,
            "report": folder / REPORT_FILE,
            "standalone report": folder / STANDALONE_FILE,
            "report stylesheet": folder / CSS_FILE,
            "paths.trigger": self.resolve(self.paths.trigger),
            "model checked": folder / CHECKED_FILE,
            "replaced trigger": folder / REPLACED_TRIGGER,
        }

    def output_files(self) -> dict[str, Path]:
        """Every file churnops writes in this workspace, by a name the user recognises."""
        folder = self.monitoring_dir
        outputs = {
            **self.run_outputs(),
            "pipeline summary": folder / SUMMARY_FILE,
            "notification file": folder / FALLBACK_NOTIFICATION_FILE,
            "workspace lock": folder / LOCK_FILE,
            "trigger lock": self.trigger_lock_path,
            "model registry lock": self.model_lock_path,
            "outputs journal": folder / OUTPUTS_JOURNAL,
        }
        if self.history.enabled and self.history.url is None:
            outputs["history database"] = folder / HISTORY_FILE
        for index, channel in enumerate(self.notify.channels):
            if isinstance(channel, FileChannel):
                outputs[f"notify.channels[{index}].path"] = self.resolve(channel.path)
        if self.metrics.textfile_dir:
            outputs["metrics.textfile_dir"] = self.resolve_dir(self.metrics.textfile_dir) / TEXTFILE_NAME
        outputs["serve.event_log"] = self.resolve(self.serve.event_log)
        ab_folder = self.resolve_dir(self.serve.ab.report_dir)
        for name in AB_REPORT_FILES:
            outputs[f"serve.ab.report_dir ({name})"] = ab_folder / name
        import os

        # the store MLflow writes: MLFLOW_TRACKING_URI when set (it wins over model.tracking_uri)
        tracking = "model.tracking_uri" + (" (MLFLOW_TRACKING_URI)" if os.environ.get("MLFLOW_TRACKING_URI") else "")
        for key, url in (("history.url", self.history.url), (tracking, self.model_tracking_uri())):
            database = self.sqlite_path(url) if url else None
            if database is not None:
                outputs[key] = database
        # SQLite keeps part of a database beside it (write-ahead log, shared memory, journal), and
        # the event log its lock: writing over one of them loses data or lets two writers in
        databases = ["history database", "serve.event_log", "history.url", tracking]
        for key in [name for name in databases if name in outputs]:
            for suffix in ("-wal", "-shm", "-journal"):
                outputs[f"{key} ({suffix[1:]} file)"] = outputs[key].with_name(outputs[key].name + suffix)
        event_log = outputs["serve.event_log"]
        outputs["serve.event_log (lock)"] = event_log.with_name(event_log.name + ".lock")
        return outputs

    def model_tracking_uri(self) -> str:
        """The MLflow tracking URI runs use: ``MLFLOW_TRACKING_URI`` when set, else
        ``model.tracking_uri``; a relative ``sqlite:///`` file is resolved in the project."""
        import os

        uri = os.environ.get("MLFLOW_TRACKING_URI") or self.model.tracking_uri
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            uri = f"sqlite:///{self.resolve(uri.removeprefix('sqlite:///'))}"
        return uri

    def model_registry_missing(self) -> bool:
        """Whether the model registry is a local SQLite file not created yet - no model was ever
        registered, so there is no champion to look up (nor a reason to load MLflow's client)."""
        path = self.sqlite_path(self.model_tracking_uri())  # the file itself: no ?query, %XX decoded
        return path is not None and not path.exists()

    def sqlite_path(self, url: str) -> Path | None:
        """The file of a ``sqlite:///`` URL (resolved in the project when relative), else None."""
        import re

        if re.match(r"sqlite(\+\w+)?:///", url) is None:
            return None
        resolved = self.sqlite_url(url, "database")
        path = re.sub(r"^sqlite(\+\w+)?:///", "", resolved).split("?", 1)[0]
        from urllib.parse import unquote

        path = unquote(path)  # the file SQLite opens: SQLAlchemy decodes %XX, and so does churnops
        return Path(path) if path and not path.startswith(":memory:") else None

    def check_paths(self, inputs: dict[str, Path] | None = None, outputs: dict[str, Path] | None = None) -> None:
        """Refuse outputs that are inputs or each other (:func:`churnops.config.paths.check_distinct`).

        ``inputs`` and ``outputs`` add files given on the command line to the configured ones.
        """
        configured_inputs = {
            "paths.reference": self.resolve(self.paths.reference),
            "paths.production": self.resolve(self.paths.production),
        }
        own_outputs = self.output_files()
        written = {**own_outputs, **(outputs or {})}
        read = {k: v for k, v in {**configured_inputs, **(inputs or {})}.items() if k not in written}
        # files churnops reads beside its inputs: the configuration and each batch's .meta.json
        read[CONFIG_FILENAME] = self.root / CONFIG_FILENAME
        for name, path in list(read.items()):
            if name != CONFIG_FILENAME:
                read.setdefault(f"{name} (its .meta.json)", path.with_name(path.stem + ".meta.json"))
        for name, path in written.items():
            credentials = re.search(r"(?:^|/)[^/@:]+:[^@]*@", str(path)) is not None  # a password holding '/' too
            if credentials or any(re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]+:", part) for part in path.parts):
                from churnops.redact import redact

                shown = re.sub(r"[^/@:]+:[^@]*@", "***@", redact(path))  # user:password@, wherever it stands
                raise ConfigError(
                    f"{name} ({shown}) reads like a URL, not a file churnops can write: give a local path "
                    "(object storage: [publish] url)"
                )
        for name, path in read.items():  # a URL (https:/...) is said as such where the table is read
            parts = path.parts
            # user:password@host, the password holding '/' or '@' too
            if re.search(r"(?:^|/)[^/@:]+:[^@]*@", str(path)) and not any(
                re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]+:", part) for part in parts
            ):
                from churnops.redact import redact

                shown = re.sub(r"[^/@:]+:[^@]*@", "***@", redact(path))  # user:password@, the password anyhow
                raise ConfigError(
                    f"{name} ({shown}) reads like a location with a password (user:password@host), not a local "
                    "file: copy the file here first (object storage: paths.*_url)"
                )
        check_distinct(written, read)
        self._check_kept(written)
        profiles = self.resolve_dir(self.paths.profile_cache)
        monitoring = self.monitoring_dir
        for name, path in {**configured_inputs, **own_outputs}.items():
            if path == profiles or profiles in path.parents:
                raise ConfigError(f"{name} ({path}) is inside paths.profile_cache, which churnops clears and rewrites")
            if path == monitoring:
                raise ConfigError(f"{name} ({path}) is the monitoring folder itself")

    def _check_kept(self, written: dict[str, Path]) -> None:
        """Refuse an output inside the folders where MLflow keeps the models and DVC the batches'
        versions (the registry's database is an output of its own): a file channel appending to a
        model's ``MLmodel`` made every later run refuse the champion."""
        import contextlib
        import os

        kept: dict[str, tuple[Path, str]] = {}
        if "://" not in self.model.artifact_dir:
            with contextlib.suppress(ConfigError):  # said where the models are written
                kept["model.artifact_dir"] = (self.resolve_dir(self.model.artifact_dir), "MLflow keeps the models")
        if "://" not in self.dvc.remote_url:
            remote = Path(self.dvc.remote_url).expanduser()
            kept["dvc.remote_url"] = (remote if remote.is_absolute() else self.root / remote, "DVC keeps the versions")
        for name, folder in self._dvc_local_remotes():  # set with dvc remote add, or by dvc-setup --remote
            kept.setdefault(name, (folder, "DVC keeps the versions"))
        folders = {"paths.profile_cache": self.resolve_dir(self.paths.profile_cache)}  # what it writes into
        for name, path in {**written, **folders}.items():
            real = Path(os.path.realpath(path))
            for key, (folder, what) in kept.items():
                top = Path(os.path.realpath(folder))
                if real == top or top in real.parents:
                    raise ConfigError(f"{name} ({path}) is inside {key} ({folder}), where {what}: choose another path")

    def _dvc_local_remotes(self) -> list[tuple[str, Path]]:
        """The local folders that the project's DVC configuration (``.dvc/config``, ``.dvc/config.local``)
        names as remotes: ``('the DVC remote "name" of .dvc/config', folder)``. A relative ``url`` is
        relative to the ``.dvc`` folder, as DVC reads it; remotes on a server are left out."""
        import os
        import re

        found: list[tuple[str, Path]] = []
        dvc = self.root / ".dvc"
        for file in ("config", "config.local"):
            try:
                with open(dvc / file, encoding="utf-8", errors="replace") as handle:
                    text = handle.read(1 << 20)
            except OSError:
                continue
            remote = None
            for line in text.splitlines():
                header = re.fullmatch(r"\s*\[\s*'?\s*remote\s+\"([^\"]*)\"\s*'?\s*\]\s*", line)
                if header or re.fullmatch(r"\s*\[.*\]\s*", line):
                    remote = header.group(1) if header else None
                    continue
                url = re.fullmatch(r"\s*url\s*=\s*(.*?)\s*", line, flags=re.IGNORECASE)
                if remote is None or url is None:
                    continue
                value = url.group(1).strip("\"'")
                if not value or re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", value) or value.startswith("remote:"):
                    continue
                folder = Path(value).expanduser()
                folder = Path(os.path.normpath(folder if folder.is_absolute() else dvc / folder))
                found.append((f'the DVC remote "{remote}" of .dvc/{file}', folder))
        return found

    def sqlite_url(self, url: str, key: str) -> str:
        """A ``sqlite:///relative.db`` URL made absolute inside the project (other URLs unchanged)."""
        import re

        match = re.match(r"sqlite(\+\w+)?:///", url)
        if match is None or url[match.end() :].startswith("/"):
            return url
        prefix = match.group(0)
        relative = url[match.end() :]
        if not relative or relative.startswith(":memory:"):
            return url
        database, query = (relative.split("?", 1) + [""])[:2]
        from urllib.parse import quote, unquote

        try:  # the database is percent-decoded by SQLAlchemy: confine the name it will open
            path = self.resolve(unquote(database))
        except ConfigError as exc:
            raise ConfigError(f"{key}: {exc}") from None
        return f"{prefix}{quote(str(path))}" + (f"?{query}" if query else "")

    def to_toml_dict(self) -> dict[str, Any]:
        """The effective configuration as TOML-ready data (None values left out: they mean auto)."""
        data = self.model_dump(mode="json")
        if data["data"]["reference_rows"] is None:
            data["data"]["reference_rows"] = "all"
        return _drop_none(data)


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
