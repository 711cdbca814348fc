"""``churnops.toml``: the one configuration file, as validated pydantic models.

Every key has a default, so churnops runs with no file at all. Relative paths are
resolved against the project root (the folder holding the configuration file, or the
current directory when there is none) and must stay inside it; absolute paths are taken
as given. Secrets never live here: a channel names the environment variable that holds
its secret.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from churnops.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

CONFIG_FILENAME = "churnops.toml"

ColumnTypeName = Literal[
    "numerical", "categorical", "binary", "datetime", "text", "id", "target", "prediction", "ignored"
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsConfig(_Section):
    reference: str = "data/churn.csv"
    production: str = "data/production/bank_churn_prod.csv"
    monitoring_dir: str = "monitoring"
    trigger: str = "trigger.txt"
    profile_cache: str = ".churnops/profiles"


RowRange = tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]]


def _check_range(value: RowRange) -> RowRange:
    if value[1] <= value[0]:
        raise ValueError(f"row range [{value[0]}, {value[1]}) is empty: the end must be > start")
    return value


class DataConfig(_Section):
    rows: Annotated[int, Field(gt=0)] = 30_000
    seed: int = 42
    reference_rows: RowRange | None = (0, 20_000)
    """Rows [start, end) of the reference file used as the reference window; "all" = whole file."""
    production_rows: RowRange = (20_000, 30_000)
    """Rows [start, end) of the reference file that become the production batch."""
    separator: str = ","
    """CSV field separator of input files, e.g. ";" or "\\t"."""
    decimal: Literal[".", ","] = "."
    """Decimal mark of numbers in input CSV files ("," needs a separator other than ",")."""
    encoding: str = "utf-8"
    """Text encoding of input CSV files, e.g. "cp1252" or "latin-1" for some spreadsheet exports."""

    @field_validator("separator")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1 or value in '"\r\n':
            raise ValueError("must be one character other than a quote or a line end")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            name = codecs.lookup(value).name
        except LookupError:
            raise ValueError(f"unknown text encoding '{value}'") from None
        if 'x,"y"\n'.encode(name, errors="replace") != b'x,"y"\n':
            raise ValueError(f"'{value}' is not ASCII-compatible; save the files as UTF-8")
        return name

    @model_validator(mode="after")
    def _decimal_needs_another_separator(self) -> DataConfig:
        if self.decimal == "," and self.separator == ",":
            raise ValueError("decimal = ',' needs another separator, e.g. separator = ';'")
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
    target: str | None = "Churn Flag"
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


class DriftConfig(_Section):
    method: str | None = None
    """Stat test for every column; None = Evidently's default selection."""
    num_method: str | None = None
    cat_method: str | None = None
    per_column_method: dict[str, str] = {}
    threshold: float | None = None
    num_threshold: float | None = None
    cat_threshold: float | None = None
    per_column_threshold: dict[str, float] = {}
    binning: Binning = "evidently"
    n_bins: Annotated[int, Field(ge=2, le=10_000)] = 10
    """Bin count of the ``quantile`` binning (Evidently's mode ignores it, as Evidently does)."""


class ThresholdsConfig(_Section):
    dataset_drift: Annotated[float, Field(ge=0, le=1)] = 0.1
    """Trigger when the share of drifted feature columns exceeds this (the seed's 0.1)."""
    column_drift: Annotated[float, Field(gt=0)] = 0.1
    """Default threshold of distance tests (drift when distance >= it). p-value tests keep 0.05."""
    data_quality: Annotated[float, Field(ge=0, le=1)] = 0.95
    """Warn when the data quality score is below this."""
    evidently_drift_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    """Evidently's own dataset rule (share >= drift_share), reported for comparison."""


ScenarioOpName = Literal[
    "scale", "shift", "clip", "remix", "missing", "new_category", "target_rate", "resample", "concept"
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
        }[self.op]
        missing = [k for k in needs if getattr(self, k) is None]
        if missing:
            raise ValueError(f"operation '{self.op}' needs {', '.join(missing)}")
        if self.op == "clip" and self.min is None and self.max is None:
            raise ValueError("operation 'clip' needs min and/or max")
        return self


class ScenarioConfig(_Section):
    name: str = "seed"
    intensity: Annotated[float, Field(ge=0)] = 1.0
    seed: int = 2024
    custom: dict[str, list[ScenarioOp]] = {}
    """Named custom scenarios: lists of operations."""


Engine = Literal["native", "dask", "evidently"]


class MonitorConfig(_Section):
    engine: Engine = "native"
    """native (this machine), dask (partitions on a Dask cluster) or evidently (Evidently itself)."""
    use_profile_cache: bool = True
    mode: Literal["auto", "exact", "streaming"] = "auto"
    """exact keeps every value (Evidently's numbers); streaming keeps bounded summaries; auto picks
    exact for datasets up to exact_max_rows rows."""
    exact_max_rows: Annotated[int, Field(ge=0)] = 5_000_000
    jobs: Annotated[int, Field(ge=0)] = 0
    """Threads working on the columns of a chunk (streaming); 0 = one per CPU core."""
    scheduler: str | None = None
    """Dask scheduler address (tcp://host:8786) for engine = "dask"; none = a local cluster."""
    evidently_html: bool = False
    """With engine = "evidently", also save Evidently's own HTML page as
    monitoring/evidently_report.html, its embedded data escaped. Off by default: that page runs
    Evidently's JavaScript (which Jenkins' Content-Security-Policy blocks) and embeds the data
    unescaped; churnops' own report is the one meant to be read."""
    sample_duplicates_above: Annotated[int, Field(ge=0)] = 20_000_000
    """Streaming batches with more rows than this, and an identifier column, count repeated rows
    and identifiers on the identifiers of a 1/16 hash sample, scaled (reported as estimates);
    0 = always count exactly (16-17 s became 19-25 s on a 100M-row benchmark batch)."""


class DvcConfig(_Section):
    remote_name: str = "local_storage"
    remote_url: str = "./dvc_storage"
    """Any DVC remote URL (s3://, gs://, ssh://...) or a path, relative to the project root."""
    push: bool = True


class PipelineConfig(_Section):
    lock_timeout_s: Annotated[float, Field(ge=0)] = 3600.0
    """How long a second pipeline run waits for the first one before giving up."""


NotifyStatus = Literal["drift", "ok", "error"]


class _Channel(_Section):
    name: str | None = None
    on: list[NotifyStatus] = ["drift", "error"]
    """When the channel speaks: on drift, on a clean run (ok), when a stage failed (error)."""
    timeout_s: Annotated[float, Field(gt=0)] = 10.0
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    """Extra attempts after a connection error, a timeout or an HTTP 5xx (with backoff)."""
    backoff_s: Annotated[float, Field(ge=0)] = 0.5


class EmailChannel(_Channel):
    type: Literal["email"] = "email"
    host: str = "localhost"
    port: Annotated[int, Field(gt=0, lt=65536)] = 587
    security: Literal["starttls", "ssl", "plain"] = "starttls"
    sender: str = "churnops@localhost"
    recipients: Annotated[list[str], Field(min_length=1)] = ["mlops@localhost"]
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
    on: list[NotifyStatus] = ["drift", "ok", "error"]


Channel = Annotated[EmailChannel | WebhookChannel | FileChannel, Field(discriminator="type")]


class NotifyConfig(_Section):
    channels: list[Channel] = []
    """No channel configured: the pipeline writes monitoring/notification.txt and a log line."""
    subject_prefix: str = "[churnops]"
    report_url: str | None = None
    """Where people open the report (e.g. a Jenkins job page); BUILD_URL is used when set."""
    top_columns: Annotated[int, Field(ge=1, le=50)] = 5


class HistoryConfig(_Section):
    enabled: bool = True
    url: str | None = None
    """A SQLAlchemy URL (e.g. postgresql://user@host/db, password from CHURNOPS_HISTORY_PASSWORD);
    default: sqlite at <monitoring_dir>/history.db."""
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


class ModelConfig(_Section):
    name: str = "bank-churn"
    tracking_uri: str = "sqlite:///mlflow.db"
    """MLflow tracking URI; a relative sqlite path is inside the project. MLFLOW_TRACKING_URI wins."""
    artifact_dir: str = "mlartifacts"
    experiment: str = "bank-churn"
    seed: int = 42
    validation_share: Annotated[float, Field(gt=0, lt=0.5)] = 0.2
    max_auc_drop: Annotated[float, Field(ge=0, le=1)] = 0.05
    """Decay alert when the ROC-AUC falls by more than this from the reference."""
    monitor: Literal["auto", "off"] = "auto"
    """auto: when a champion exists, monitor scores the batch (prediction drift, performance)."""
    important_top_k: Annotated[int, Field(ge=1)] = 5
    as_of: str | None = None
    """Date that ages are computed at (YYYY-MM-DD); default: the training day."""


class RetrainConfig(_Section):
    enabled: bool = False
    """Run the pipeline's stage 5 (retraining) when drift is detected."""
    min_improvement: Annotated[float, Field(ge=0, le=1)] = 0.02
    """Promote the challenger only when its ROC-AUC beats the champion's by this much."""
    holdout_share: Annotated[float, Field(gt=0, lt=1)] = 0.3
    """Share of the newest production rows held out to compare champion and challenger."""


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

    root: Path = Field(default_factory=Path.cwd, exclude=True)
    """Project root: relative paths are resolved against it."""
    source: Path | None = Field(default=None, exclude=True)
    """The file this configuration was read from, if any."""

    def resolve(self, path: str | Path) -> Path:
        """Resolve a configured path inside the project root.

        Absolute paths are returned as given; relative paths must not escape the root.
        """
        p = Path(path).expanduser()
        if p.is_absolute():
            return p
        resolved = (self.root / p).resolve()
        root = self.root.resolve()
        if resolved != root and root not in resolved.parents:
            raise ConfigError(f"path '{path}' leaves the project folder {root}; give an absolute path to allow it")
        return resolved

    @property
    def dialect(self) -> Any:
        """The :class:`churnops.data.io.CsvDialect` of input CSV files (``[data]``)."""
        from churnops.data.io import CsvDialect

        return CsvDialect(self.data.separator, self.data.decimal, self.data.encoding)

    @property
    def monitoring_dir(self) -> Path:
        return self.resolve(self.paths.monitoring_dir)

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


def _format_validation_error(exc: ValidationError, source: str) -> str:
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{source}: {key}: {message}{suffix}"


def find_config(start: Path | None = None) -> Path | None:
    """The ``churnops.toml`` in ``start`` (default: the current directory), if there is one."""
    candidate = (start or Path.cwd()) / CONFIG_FILENAME
    return candidate if candidate.is_file() else None


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read, validate and return the effective configuration.

    Parameters
    ----------
    path
        A configuration file; None looks for ``churnops.toml`` in the current directory and
        falls back to the defaults when there is none.
    overrides
        Dotted keys (``"paths.reference"``) set on top of the file, as CLI flags do.

    Raises
    ------
    ConfigError
        With one line naming the file, the key and the problem.
    """
    data: dict[str, Any] = {}
    source: Path | None = None
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"configuration file not found: {path}")
        source = path
    else:
        source = find_config()
    if source is not None:
        try:
            data = tomllib.loads(source.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{source}: not UTF-8 text") from None
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    for reserved in ("root", "source"):
        if reserved in data:
            raise ConfigError(f"{source}: {reserved}: unknown key")
    root = (source.parent if source is not None else Path.cwd()).resolve()
    label = str(source) if source is not None else "configuration"
    try:
        config = Config.model_validate({**data, "root": root, "source": source})
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, label)) from None
    for key, value in config.paths.model_dump().items():
        try:
            config.resolve(value)
        except ConfigError as exc:
            raise ConfigError(f"{label}: paths.{key}: {exc}") from None
    return config
