"""Whether a champion model is expected where none is found - decided without loading MLflow's
client or the model registry (a run without a registry starts as fast as one without a model)."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass

from churnops.config import METRICS_FILE, Config
from churnops.config.models import CHECKED_FILE

MAX_PREVIOUS_BYTES = 64 << 20
"""A previous metrics document larger than this is not read for its model (none is that large)."""


@dataclass(frozen=True)
class ModelUnavailable:
    """A champion that should be checked and cannot be found or read: the run says so as a
    finding ("model unchecked"), never as a run without a model."""

    error: str


def expected(config: Config, why: str) -> ModelUnavailable | None:
    """``why`` no champion is checked - as a finding when one is expected: ``model.monitor =
    "required"``, or an earlier run checked (or tried to check) one (:func:`previous_model`)."""
    if config.model.monitor == "required":
        return ModelUnavailable(f'{why} (model.monitor = "required")')
    previous = previous_model(config)
    if previous is None:
        return None
    return ModelUnavailable(
        f"{why}, yet an earlier run checked {previous}: train one (churnops train) or point model.tracking_uri "
        'at its registry; model.monitor = "off" monitors the data alone'
    )


def previous_model(config: Config) -> str | None:
    """The model the latest metrics document names - or, when it names none (a run with
    ``model.monitor = "off"``), the last one a run checked (:data:`CHECKED_FILE`) - as
    ``name vN``; None when neither names a version found in a registry or is a regular file of JSON. Only the ``model``
    entry is read, and only a name and a version that are text are used: at worst a forged
    document makes this run say its model is unchecked."""
    latest = _named_model(read_document(config.monitoring_dir / METRICS_FILE))
    if latest is not None and latest[1] is not None:
        return f"{latest[0]} v{latest[1]}"
    checked = _named_model(read_document(config.monitoring_dir / CHECKED_FILE))
    if checked is not None and checked[1] is not None and (latest is None or latest[0] == checked[0]):
        return f"{checked[0]} v{checked[1]}"  # the version of the one the latest run could not find
    # a run that found no champion (an unreachable registry) names the model it looked for: that
    # is no champion checked, and expects none of the next run
    return None


def checked_record(model: object) -> str | None:
    """What :data:`CHECKED_FILE` holds after a run whose ``model`` section is ``model``: its name
    and version, when it names both; None (the file is left as it is) otherwise."""
    if (
        not isinstance(model, dict)
        or not isinstance(model.get("name"), str)
        or not isinstance(model.get("version"), str)
    ):
        return None
    return json.dumps({"model": {"name": model["name"], "version": model["version"]}}) + "\n"


def read_document(path: os.PathLike[str]) -> object:
    """The JSON of ``path`` when it is a regular file (never through a link) of at most
    :data:`MAX_PREVIOUS_BYTES`; None otherwise."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_PREVIOUS_BYTES:
            return None
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            return json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    finally:
        os.close(descriptor)


def _named_model(document: object) -> tuple[str, str | None] | None:
    """The name and version (None when not text) of the ``model`` a document names."""
    model = document.get("model") if isinstance(document, dict) else None
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        return None
    version = model.get("version")
    return model["name"][:100], version[:20] if isinstance(version, str) else None


def without_registry(config: Config) -> ModelUnavailable | None:
    """A model registry that does not exist yet (a local SQLite file never created): a finding
    when a champion is expected (:func:`expected`), else None - no champion, none to check."""
    from churnops.redact import redact

    return expected(config, f"there is no model registry at {redact(config.model_tracking_uri())}")
