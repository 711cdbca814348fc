"""MLflow: tracking runs, the model registry and its aliases. The only module that imports mlflow.

Models are registered under one name (``bank-churn``) and addressed by alias - ``champion``
for the model in service, ``challenger`` for a retrained candidate that did not win - never by
the deprecated stages.

Loading never goes through ``mlflow.sklearn.load_model``, which takes the serializer and the
trusted types from the artifact itself: the registry says which folder holds the version, and
:mod:`churnops.integrations.model_artifact` reads it with churnops' own rules. Finding that
folder in a local SQLite store is a read-only query of MLflow's registry tables (a known schema
revision only), which spares ``predict`` and ``monitor`` importing MLflow (about 2 s); any
other store, or an unknown schema, goes through the MLflow client.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shutil
import sqlite3
import tempfile
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnops.errors import IntegrationError, MissingDependencyError
from churnops.integrations.model_artifact import ModelMetadata, ModelRefusedError, load_folder
from churnops.redact import redact

logger = logging.getLogger(__name__)


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise MissingDependencyError("mlflow", "mlflow") from None
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    # it logs the traceback of a database error (a locked registry) that churnops says in one line
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    return mlflow


@dataclass(frozen=True)
class Store:
    """Where MLflow keeps runs (tracking URI) and artifacts."""

    tracking_uri: str
    artifact_root: Path | str
    """A local folder, or an ``s3://bucket/prefix`` URL."""
    experiment: str
    s3_endpoint: str | None = None
    """An S3-compatible server for S3 artifacts (``[storage] endpoint_url``); AWS's own otherwise."""
    s3_region: str | None = None

    @property
    def local_database(self) -> Path | None:
        """The SQLite file of a ``sqlite:///`` tracking URI: without its ``?query``, ``%XX``
        decoded - the file SQLAlchemy opens (``sqlite:///mlflow.db?timeout=20`` is ``mlflow.db``)."""
        if self.tracking_uri.startswith("sqlite:///"):
            return Path(urllib.parse.unquote(self.tracking_uri.removeprefix("sqlite:///").split("?", 1)[0]))
        return None


@contextlib.contextmanager
def session(store: Store) -> Iterator[Any]:
    """mlflow configured for ``store``, with the experiment created when missing."""
    # an unreachable tracking server fails in seconds, not after MLflow's minutes of retries
    # and MLflow's own progress bars stay off the terminal (a download is one step of churnops')
    for key, value in (
        ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"),
        ("MLFLOW_HTTP_REQUEST_TIMEOUT", "20"),
        ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"),
    ):
        os.environ.setdefault(key, value)
    with _s3_environment(store):
        mlflow = _mlflow()
        with _configured(mlflow, store):
            yield mlflow


@contextlib.contextmanager
def _s3_environment(store: Store) -> Iterator[None]:
    """MLflow's S3 client (boto3) pointed at ``[storage]``'s endpoint and region for the session,
    unless the environment already names them; the environment is put back afterwards. Credentials
    come from the AWS chain, as for every other S3 access."""
    wanted = {"MLFLOW_S3_ENDPOINT_URL": store.s3_endpoint, "AWS_DEFAULT_REGION": store.s3_region}
    if store.s3_region and os.environ.get("AWS_REGION"):
        wanted.pop("AWS_DEFAULT_REGION")
    added = [key for key, value in wanted.items() if value and key not in os.environ]
    for key in added:
        os.environ[key] = str(wanted[key])
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


@contextlib.contextmanager
def _configured(mlflow: Any, store: Store) -> Iterator[None]:
    # set_tracking_uri also exports MLFLOW_TRACKING_URI: put both back afterwards, so that one
    # store never leaks into the next (tests, library use, several projects in one process)
    previous_env = os.environ.get("MLFLOW_TRACKING_URI")
    previous_uri = mlflow.get_tracking_uri()
    try:
        mlflow.set_tracking_uri(store.tracking_uri)
        experiment = mlflow.get_experiment_by_name(store.experiment)
        if experiment is None:
            if isinstance(store.artifact_root, str):
                location = store.artifact_root
            else:
                store.artifact_root.mkdir(parents=True, exist_ok=True)
                location = store.artifact_root.resolve().as_uri()
            mlflow.create_experiment(store.experiment, artifact_location=location)
        else:
            _check_location(store, str(experiment.artifact_location or ""))
        mlflow.set_experiment(store.experiment)
        yield
    except mlflow.exceptions.MlflowException as exc:
        raise IntegrationError(f"MLflow ({redact(store.tracking_uri)}): {failure(exc, store.tracking_uri)}") from None
    except _database_errors() as exc:  # a locked or unreachable tracking database, outside MLflow's own errors
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
        raise IntegrationError(f"MLflow ({redact(store.tracking_uri)}): {redact(reason)}") from None
    except ModuleNotFoundError as exc:  # the tracking database's driver (psycopg, pymysql...)
        driver = (exc.name or "").split(".")[0]
        if driver not in DATABASE_DRIVERS:
            raise
        raise IntegrationError(
            f"MLflow ({redact(store.tracking_uri)}): its database driver is not installed: {driver} "
            f"(pip install {DATABASE_DRIVERS[driver]})"
        ) from None
    except _storage_errors() as exc:
        raise IntegrationError(f"MLflow artifacts ({_shown(store.artifact_root)}): {_storage_reason(exc)}") from None
    finally:
        mlflow.set_tracking_uri(previous_uri)
        if previous_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous_env


REMOTE_SCHEMES = ("http://", "https://", "databricks")
"""Tracking URIs that name a server: its answers are never quoted."""


def failure(exc: BaseException, tracking_uri: str) -> str:
    """What an MLflow failure was, in churnops' words - never the tracking server's, whose error
    text can repeat the request and its ``Authorization`` header (base64 of the user info).

    A server's answer is named by its HTTP status, or by MLflow's error code when MLflow parsed an
    error document; a server not reached, by the failure's type. Only a local store's message
    (SQLite, a folder) is quoted, first line, redacted.

    >>> failure(Exception("API request to endpoint /api/2.0/x failed with error code 401 != 200. "
    ...                   "Response body: 'Basic bWx1c2Vy'"), "http://gw")
    'the tracking server answered HTTP 401'
    >>> failure(Exception("API request to http://h/api failed with exception HTTPConnectionPool(host='h', "
    ...                   "port=80): Max retries exceeded (Caused by NewConnectionError('refused'))"), "http://h")
    'cannot reach the tracking server (NewConnectionError)'
    """
    message = str(getattr(exc, "message", None) or exc)
    if type(exc).__name__ == "RestException":  # MLflow read an error document the server sent
        document = getattr(exc, "json", None)
        if isinstance(document, dict) and "error_code" in document:
            return f"the tracking server answered the error {getattr(exc, 'error_code', 'INTERNAL_ERROR')}"
        return "the tracking server answered an error that is not MLflow's (a proxy, or another server?)"
    status = re.search(r"failed with error code (\d{3})|too many (\d{3}) error responses", message)
    if status:
        return f"the tracking server answered HTTP {status.group(1) or status.group(2)}"
    if "Response body:" in message:
        return "the tracking server answered something that is not MLflow's (a proxy, or another server?)"
    if re.match(r"API request to \S+ failed with timeout exception", message):
        return "the tracking server did not answer in time (MLFLOW_HTTP_REQUEST_TIMEOUT)"
    if re.match(r"API request to \S+ failed with exception", message):
        cause = re.search(r"Caused by (\w+)\(", message)
        return f"cannot reach the tracking server ({cause.group(1) if cause else 'the request failed'})"
    if tracking_uri.startswith(REMOTE_SCHEMES):
        code = getattr(exc, "error_code", None)
        return f"{type(exc).__name__}" + (f" ({code})" if isinstance(code, str) else "")
    return redact(message.splitlines()[0] if message.strip() else type(exc).__name__)[:200]


_WARNED: set[tuple[str, str]] = set()


def _check_location(store: Store, location: str) -> None:
    """Warn (once) when the experiment keeps its artifacts elsewhere than ``model.artifact_dir``
    says: MLflow fixes an experiment's artifact location when it is created."""
    root = store.artifact_root
    wanted = root.rstrip("/") if isinstance(root, str) else root.resolve().as_uri()
    if not location or location.rstrip("/") == wanted or (store.experiment, location) in _WARNED:
        return
    _WARNED.add((store.experiment, location))
    logger.warning(
        "MLflow experiment '%s' keeps its models in %s (fixed when it was created), not in model.artifact_dir "
        "%s; to use the new place, set model.experiment to a new name",
        store.experiment,
        redact(location),
        redact(str(root)),
    )


def _refuse_elsewhere(store: Store, location: str) -> None:
    """Refuse to write a model anywhere but ``model.artifact_dir``: an experiment whose artifact
    location is another, or an artifact folder holding a link (MLflow writes through it)."""
    root = store.artifact_root
    wanted = root.rstrip("/") if isinstance(root, str) else root.resolve().as_uri()
    if location.rstrip("/") != wanted:
        raise IntegrationError(
            f"MLflow experiment '{store.experiment}' keeps its models in {redact(location)}, not in model.artifact_dir "
            f"{redact(str(root))}: churnops writes a model only where model.artifact_dir says - set model.experiment "
            "to a new name (or model.artifact_dir to that place, if it is yours)"
        )
    if isinstance(root, Path) and root.is_dir():
        linked = sorted(child.name for child in root.iterdir() if child.is_symlink())
        if linked:
            raise IntegrationError(
                f"{root / linked[0]}: is a symbolic link in the model artifact folder; churnops does not write models "
                "through links - remove it"
            )


def _storage_errors() -> tuple[type[BaseException], ...]:
    """What boto3 raises when the S3 artifact store fails (none when boto3 is not installed)."""
    try:
        import boto3.exceptions as uploads
        import botocore.exceptions as failures
    except ImportError:
        return ()
    return (failures.BotoCoreError, failures.ClientError, uploads.Boto3Error)


def _shown(root: Path | str) -> str:
    return redact(str(root))


def _storage_reason(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
    if not code:  # an upload failure carries the S3 error in its text: "An error occurred (AccessDenied) ..."
        found = re.search(r"An error occurred \((\w+)\)", str(exc))
        code = found.group(1) if found else ""
    if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return "access denied (check the credentials the AWS chain gives, and the bucket policy)"
    if code == "NoSuchBucket":
        return "the bucket does not exist"
    if type(exc).__name__ in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
        return "cannot reach the storage server (check storage.endpoint_url and the network)"
    if type(exc).__name__ == "NoCredentialsError":
        return "no AWS credentials found (environment, profile or instance role)"
    return redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:300]


KNOWN_SCHEMA_REVISIONS = frozenset({"dc11669786a5"})
"""Alembic revisions of MLflow's SQL schema whose alias and version tables churnops reads itself
(the head of MLflow 3.17.2). Another revision - an upgraded MLflow - goes through the client."""
_ASK_MLFLOW = object()


@dataclass(frozen=True)
class ModelVersion:
    """A registered version found by alias, and where its artifact folder is."""

    name: str
    alias: str
    version: str
    run_id: str | None
    location: str

    @property
    def label(self) -> str:
        return f"{self.name}@{self.alias} (v{self.version})"


@dataclass(frozen=True)
class LoadedModel:
    """A model that passed every check, with its validated metadata."""

    model: Any
    metadata: ModelMetadata
    version: ModelVersion


def find_alias(store: Store, name: str, alias: str) -> ModelVersion | None:
    """The version ``NAME@ALIAS`` points at, or None when there is none (or no store yet)."""
    database = store.local_database
    if database is not None:
        if not database.exists():
            return None
        found = _find_in_sqlite(database, name, alias)
        if found is not _ASK_MLFLOW:
            return found  # type: ignore[return-value]
    with session(store) as mlflow:
        client = mlflow.MlflowClient()
        try:
            version = client.get_model_version_by_alias(name, alias)
        except mlflow.exceptions.MlflowException as exc:
            if getattr(exc, "error_code", None) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None  # no such model or alias; a refused login or a failing server is an error
            raise
        location = client.get_model_version_download_uri(name, version.version)
        return ModelVersion(name, alias, str(version.version), version.run_id, str(location))


DATABASE_DRIVERS = {
    "psycopg": "psycopg",
    "psycopg2": "psycopg2-binary",
    "pg8000": "pg8000",
    "pymysql": "pymysql",
    "MySQLdb": "mysqlclient",
    "mysql": "mysql-connector-python",
    "pymssql": "pymssql",
    "pyodbc": "pyodbc",
    "oracledb": "oracledb",
    "cx_Oracle": "cx_Oracle",
}
"""Database drivers SQLAlchemy imports for a tracking URI (``postgresql://``, ``mysql://``...),
and the package each comes in."""


def _database_errors() -> tuple[type[BaseException], ...]:
    """Errors of the tracking database itself: SQLite's, and SQLAlchemy's around any driver's."""
    try:
        from sqlalchemy.exc import DBAPIError
    except ImportError:
        return (sqlite3.Error,)
    return (sqlite3.Error, DBAPIError)


def _find_in_sqlite(database: Path, name: str, alias: str) -> ModelVersion | None | object:
    if os.environ.get("MLFLOW_WORKSPACE") or os.environ.get("MLFLOW_ENABLE_WORKSPACES", "").lower() in ("1", "true"):
        return _ASK_MLFLOW
    uri = f"file:{urllib.parse.quote(str(database.resolve()))}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as connection:
            revision = connection.execute("SELECT version_num FROM alembic_version").fetchall()
            if len(revision) != 1 or revision[0][0] not in KNOWN_SCHEMA_REVISIONS:
                return _ASK_MLFLOW
            rows = connection.execute(
                "SELECT v.version, v.run_id, v.storage_location FROM registered_model_aliases AS a "
                "JOIN model_versions AS v ON v.name = a.name AND v.version = a.version AND v.workspace = a.workspace "
                "WHERE a.name = ? AND a.alias = ? AND a.workspace = 'default' "
                "AND v.current_stage != 'Deleted_Internal'",
                (name, alias),
            ).fetchall()
    except sqlite3.Error as exc:
        logger.debug("reading the MLflow registry directly failed (%s); asking MLflow", exc)
        return _ASK_MLFLOW
    if not rows:
        return None
    if len(rows) > 1 or not isinstance(rows[0][2], str) or not rows[0][2]:
        return _ASK_MLFLOW
    version, run_id, location = rows[0]
    return ModelVersion(name, alias, str(version), run_id if isinstance(run_id, str) else None, location)


def find_version(store: Store, name: str, version: str) -> ModelVersion:
    """Registered version ``version`` of ``name`` (just logged), and where its artifact folder is."""
    with session(store) as mlflow:
        client = mlflow.MlflowClient()
        found = client.get_model_version(name, version)
        location = client.get_model_version_download_uri(name, found.version)
        return ModelVersion(name, "", str(found.version), found.run_id, str(location))


def find_champion(store: Store, name: str) -> ModelVersion | None:
    """The version ``NAME@champion`` points at; None when there is none - and, with a warning,
    when the registry cannot be read: the model is then not checked."""
    try:
        return find_alias(store, name, "champion")
    except Exception as exc:  # noqa: BLE001 - a broken store fails in many ways; "no alias" is None above
        detail = str(exc) if isinstance(exc, IntegrationError) else failure(exc, store.tracking_uri)
        uri = redact(store.tracking_uri)
        logger.warning("model not checked: the model registry %s cannot be read (%s)", uri, detail)
        return None


def champion_available(store: Store, name: str) -> bool:
    return find_champion(store, name) is not None


@dataclass(frozen=True)
class LoggedModel:
    run_id: str
    version: str
    name: str


def log_model(
    store: Store,
    name: str,
    pipeline: Any,
    example: Any,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    metadata: dict[str, Any],
    artifacts: dict[str, Any],
    pip_requirements: list[str],
    run_name: str,
    trusted_types: list[str] | None = None,
    model_files: dict[str, bytes] | None = None,
) -> LoggedModel:
    """Log a fitted pipeline with its signature, input example and metadata; register a new version.

    Only where ``model.artifact_dir`` says: the experiment's artifact location is read from the
    registry's database, which whoever can write it may point anywhere (the model's files hold
    rows of customers), and a link in the artifact folder would lead the files elsewhere too.
    """
    with session(store) as mlflow:
        from mlflow.models import infer_signature

        _refuse_elsewhere(store, str(mlflow.get_experiment_by_name(store.experiment).artifact_location or ""))

        with mlflow.start_run(run_name=run_name) as run:
            mlflow.log_params(params)
            mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})  # NaN-free
            mlflow.set_tags(tags)
            for filename, content in artifacts.items():
                mlflow.log_dict(content, filename)
            chatter = io.StringIO()  # MLflow prints registration notices straight to stderr
            with warnings.catch_warnings(), contextlib.redirect_stderr(chatter):
                warnings.simplefilter("ignore", UserWarning)  # integer columns in the example: noted in docs
                signature = infer_signature(example, pipeline.predict_proba(example)[:, 1])
                info = mlflow.sklearn.log_model(
                    pipeline,
                    name="model",
                    signature=signature,
                    input_example=example,
                    pip_requirements=pip_requirements,
                    metadata=metadata,
                    registered_model_name=name,
                    skops_trusted_types=trusted_types,
                )
            if model_files:  # beside MLmodel and model.skops, in the model's own artifacts
                with tempfile.TemporaryDirectory(prefix="churnops-model-files-") as scratch:
                    for filename, content in model_files.items():
                        (Path(scratch) / filename).write_bytes(content)
                        mlflow.MlflowClient().log_model_artifact(info.model_id, str(Path(scratch) / filename))
            version = str(info.registered_model_version)
            logger.debug("mlflow: %s", chatter.getvalue().strip())
        return LoggedModel(run.info.run_id, version, name)


def set_alias(store: Store, name: str, alias: str, version: str) -> None:
    with session(store) as mlflow:
        mlflow.MlflowClient().set_registered_model_alias(name, alias, version)


def delete_alias(store: Store, name: str, alias: str) -> None:
    with session(store) as mlflow:
        mlflow.MlflowClient().delete_registered_model_alias(name, alias)


def set_version_tags(store: Store, name: str, version: str, tags: dict[str, str]) -> None:
    """Tags on a registered version (why it was promoted, by what)."""
    with session(store) as mlflow:
        client = mlflow.MlflowClient()
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)


def version_tags(store: Store, name: str, version: str) -> dict[str, str]:
    with session(store) as mlflow:
        return dict(mlflow.MlflowClient().get_model_version(name, version).tags)


def load_alias(store: Store, name: str, alias: str) -> LoadedModel:
    """The model behind ``models:/NAME@ALIAS``, checked by churnops' rules (never MLflow's loader).

    Raises :class:`ModelRefusedError` when the artifact fails a check: nothing from it has run.
    """
    version = find_alias(store, name, alias)
    if version is None:
        raise IntegrationError(f"no model '{name}@{alias}' in {redact(store.tracking_uri)}: run 'churnops train' first")
    return load_version(store, version)


def has_array_form(version: ModelVersion) -> bool:
    """Whether a local model folder holds the model's array form (scoring it needs no scikit-learn)."""
    from churnops.integrations.model_scorer import SCORER_FILE

    folder = _local_path(version.location)
    return folder is not None and (folder / SCORER_FILE).is_file()


def _local_path(location: str) -> Path | None:
    from urllib.request import url2pathname

    parsed = urllib.parse.urlparse(location)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(url2pathname(parsed.path))
    if not parsed.scheme and os.path.isabs(location):
        return Path(location)
    return None


def load_version(store: Store, version: ModelVersion, arrays: bool = True) -> LoadedModel:
    """The model of a registered version, checked by churnops' rules; see :func:`load_alias`."""
    try:
        with _local_folder(store, version.location) as folder:
            model, metadata = load_folder(folder, arrays=arrays)
    except ModelRefusedError as exc:
        raise ModelRefusedError(f"the model artifact {version.label} was refused: {exc}") from None
    return LoadedModel(model, metadata, version)


@contextlib.contextmanager
def _local_folder(store: Store, location: str) -> Iterator[Path]:
    """The model folder on this machine: read in place when local, else downloaded to a temporary folder."""
    local = _local_path(location)
    if local is not None:
        yield local
        return
    scratch = Path(tempfile.mkdtemp(prefix="churnops-model-"))
    try:
        if location.lower().startswith("s3://"):
            _download_s3(store, location, scratch)
        else:
            with session(store) as mlflow:
                mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=str(scratch))
        folders = [path for path in scratch.iterdir() if path.is_dir()] if not (scratch / "MLmodel").exists() else []
        yield folders[0] if len(folders) == 1 else scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _download_s3(store: Store, location: str, folder: Path) -> None:
    """A model folder in S3, fetched by churnops' own client (pyarrow's, with [storage]'s endpoint
    and region and the AWS credential chain): no MLflow import, and the same errors as any S3 read."""
    from churnops.data.remote import StorageOptions, download_folder
    from churnops.errors import InputDataError

    try:
        download_folder(location, folder, StorageOptions(store.s3_endpoint, store.s3_region))
    except InputDataError as exc:
        raise IntegrationError(f"MLflow model artifacts: {exc}") from None


def log_comparison(store: Store, run_name: str, metrics: dict[str, float], tags: dict[str, str]) -> str:
    with session(store) as mlflow, mlflow.start_run(run_name=run_name) as run:
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})
        mlflow.set_tags(tags)
        return str(run.info.run_id)


def aliases(store: Store, name: str) -> dict[str, str]:
    with session(store) as mlflow:
        model = mlflow.MlflowClient().get_registered_model(name)
        return {alias: str(version) for alias, version in model.aliases.items()}
