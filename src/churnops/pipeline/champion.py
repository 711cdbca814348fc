"""Whether a champion model is expected where none is found - decided without loading MLflow's
client or the model registry (a run without a registry starts as fast as one without a model)."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass

from churnops.config import METRICS_FILE, Config

MAX_PREVIOUS_BYTES = 64 << 20
"""A previous metrics document larger than this is not read for its model (none is that large)."""


@dataclass(frozen=True)
class ModelUnavailable:
    """A champion that should be checked and cannot be found or read: the run says so as a
    finding ("model unchecked"), never as a run without a model."""

    error: str


def expected(config: Config, why: str) -> ModelUnavailable | None:
    """``why`` no champion is checked - as a finding when one is expected: ``model.monitor =
    "required"``, or the previous run checked (or tried to check) one."""
    if config.model.monitor == "required":
        return ModelUnavailable(f'{why} (model.monitor = "required")')
    previous = previous_model(config)
    if previous is None:
        return None
    return ModelUnavailable(
        f"{why}, yet the previous run checked {previous}: train one (churnops train) or point model.tracking_uri "
        'at its registry; model.monitor = "off" monitors the data alone'
    )


def previous_model(config: Config) -> str | None:
    """The model the latest metrics document names, as ``name vN``; None when it names none or is
    not a regular file of JSON. Only the ``model`` entry is read, and only a name and a version
    that are text are used: at worst a forged document makes this run say its model is unchecked."""
    path = config.monitoring_dir / METRICS_FILE
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_PREVIOUS_BYTES:
            return None
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            document = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    finally:
        os.close(descriptor)
    model = document.get("model") if isinstance(document, dict) else None
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        return None
    name, version = model["name"][:100], model.get("version")
    return f"{name} v{version[:20]}" if isinstance(version, str) else name


def without_registry(config: Config) -> ModelUnavailable | None:
    """A model registry that does not exist yet (a local SQLite file never created): a finding
    when a champion is expected (:func:`expected`), else None - no champion, none to check."""
    from churnops.redact import redact

    return expected(config, f"there is no model registry at {redact(config.model_tracking_uri())}")
