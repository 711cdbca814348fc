"""MLflow: tracking runs, the model registry and its aliases. The only module that imports mlflow.

Models are registered under one name (``bank-churn``) and addressed by alias - ``champion``
for the model in service, ``challenger`` for a retrained candidate that did not win - never by
the deprecated stages.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnops.errors import IntegrationError, MissingDependencyError

logger = logging.getLogger(__name__)


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise MissingDependencyError("mlflow", "mlflow") from None
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    return mlflow


@dataclass(frozen=True)
class Store:
    """Where MLflow keeps runs (tracking URI) and artifacts."""

    tracking_uri: str
    artifact_root: Path
    experiment: str

    @property
    def local_database(self) -> Path | None:
        if self.tracking_uri.startswith("sqlite:///"):
            return Path(self.tracking_uri.removeprefix("sqlite:///"))
        return None


@contextlib.contextmanager
def session(store: Store) -> Iterator[Any]:
    """mlflow configured for ``store``, with the experiment created when missing."""
    mlflow = _mlflow()
    # set_tracking_uri also exports MLFLOW_TRACKING_URI: put both back afterwards, so that one
    # store never leaks into the next (tests, library use, several projects in one process)
    previous_env = os.environ.get("MLFLOW_TRACKING_URI")
    previous_uri = mlflow.get_tracking_uri()
    try:
        mlflow.set_tracking_uri(store.tracking_uri)
        experiment = mlflow.get_experiment_by_name(store.experiment)
        if experiment is None:
            store.artifact_root.mkdir(parents=True, exist_ok=True)
            mlflow.create_experiment(store.experiment, artifact_location=store.artifact_root.resolve().as_uri())
        mlflow.set_experiment(store.experiment)
        yield mlflow
    except mlflow.exceptions.MlflowException as exc:
        raise IntegrationError(f"MLflow ({store.tracking_uri}): {exc.message.splitlines()[0]}") from None
    finally:
        mlflow.set_tracking_uri(previous_uri)
        if previous_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous_env


def champion_available(store: Store, name: str) -> bool:
    """Cheap check before importing MLflow: a local store must at least exist."""
    database = store.local_database
    if database is not None and not database.exists():
        return False
    try:
        with session(store) as mlflow:
            client = mlflow.MlflowClient()
            client.get_model_version_by_alias(name, "champion")
            return True
    except IntegrationError:
        return False
    except Exception:  # noqa: BLE001 - "no such alias" comes in several exception types
        return False


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
) -> LoggedModel:
    """Log a fitted pipeline with its signature, input example and metadata; register a new version."""
    with session(store) as mlflow:
        from mlflow.models import infer_signature

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
            version = str(info.registered_model_version)
            logger.debug("mlflow: %s", chatter.getvalue().strip())
        return LoggedModel(run.info.run_id, version, name)


def set_alias(store: Store, name: str, alias: str, version: str) -> None:
    with session(store) as mlflow:
        mlflow.MlflowClient().set_registered_model_alias(name, alias, version)


def load_alias(store: Store, name: str, alias: str) -> tuple[Any, dict[str, Any]]:
    """The model behind ``models:/NAME@ALIAS`` and its facts (version, run, metadata)."""
    with session(store) as mlflow:
        client = mlflow.MlflowClient()
        try:
            version = client.get_model_version_by_alias(name, alias)
        except mlflow.exceptions.MlflowException:
            raise IntegrationError(
                f"no model '{name}@{alias}' in {store.tracking_uri}: run 'churnops train' first"
            ) from None
        uri = f"models:/{name}@{alias}"
        model = mlflow.sklearn.load_model(uri)
        info = mlflow.models.get_model_info(uri)
        facts = {
            "name": name,
            "alias": alias,
            "version": str(version.version),
            "run_id": version.run_id,
            "uri": uri,
            "metadata": dict(info.metadata or {}),
        }
        return model, facts


def log_comparison(store: Store, run_name: str, metrics: dict[str, float], tags: dict[str, str]) -> str:
    with session(store) as mlflow, mlflow.start_run(run_name=run_name) as run:
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})
        mlflow.set_tags(tags)
        return str(run.info.run_id)


def aliases(store: Store, name: str) -> dict[str, str]:
    with session(store) as mlflow:
        model = mlflow.MlflowClient().get_registered_model(name)
        return {alias: str(version) for alias, version in model.aliases.items()}
