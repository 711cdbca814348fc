"""The workspace a run works in: its lock, its committed outputs, and reading them back.

Every command that writes or reads the monitoring outputs enters :func:`workspace` first. It
holds the workspace lock (exclusive for runs, shared for readers), finishes or undoes an output
commit that a killed process left behind, and records that run's history row if it was lost.
What is read back - the metrics JSON - is validated against the schema shipped with churnops
before anything uses it: a file on disk is untrusted input, even one churnops wrote.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from churnops.config import METRICS_FILE, Config
from churnops.errors import ChurnopsError, InputDataError
from churnops.pipeline.lock import held, workspace_lock
from churnops.pipeline.outputs import JOURNAL, recover, sweep_orphans

logger = logging.getLogger(__name__)
MAX_METRICS_BYTES = 512 << 20


@contextlib.contextmanager
def workspace(
    config: Config,
    shared: bool = False,
    wait: bool = True,
    waiting: Callable[[str], None] | None = None,
    purpose: str = "churnops",
) -> Iterator[None]:
    """Hold the workspace for the block, with any interrupted output commit settled first."""
    lock = config.lock_path
    outermost = not held(lock)
    trigger_lock = config.trigger_lock_path
    with (
        workspace_lock(lock, wait, config.pipeline.lock_timeout_s, waiting, shared=shared, purpose=purpose),
        workspace_lock(trigger_lock, wait, config.pipeline.lock_timeout_s, waiting, shared=shared, purpose=purpose),
    ):
        if not outermost:
            yield  # this process already settled the workspace when it first took the lock
            return
        if os.path.lexists(config.monitoring_dir / JOURNAL):
            with workspace_lock(lock, wait, config.pipeline.lock_timeout_s, waiting, shared=False, purpose=purpose):
                recover(config.monitoring_dir, config.run_outputs().values(), lambda _: record_committed(config))
        else:
            # temporary files and backups of a run killed before its journal was written: no run
            # is committing now (that needs the lock exclusively), so they belong to nobody
            sweep_orphans(list(config.run_outputs().values()))
        yield


def record_history(config: Config, document: dict[str, Any]) -> None:
    """Record a committed run in the history; an unavailable history never stops a run."""
    if not config.history.enabled:
        return
    from churnops.pipeline.history import record

    try:
        record(config, document)
    except ChurnopsError as exc:
        logger.warning("run not recorded in the monitoring history: %s", exc)


def record_committed(config: Config) -> None:
    """Record the run whose outputs were just finished by a recovery (its history row was lost)."""
    try:
        document = read_metrics(config)
    except InputDataError as exc:
        logger.warning("the recovered run is not recorded in the history: %s", exc)
        return
    if document is not None:
        record_history(config, document)


def read_metrics(config: Config) -> dict[str, Any] | None:
    """The latest metrics document, validated; None when no run has written one yet.

    Call inside :func:`workspace`. Raises :class:`InputDataError` (one line) for a file that is
    not a churnops metrics document.
    """
    path = config.monitoring_dir / METRICS_FILE
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputDataError(f"{path}: cannot read it: {(exc.strerror or str(exc)).lower()}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputDataError(f"{path}: not a regular file; run 'churnops monitor' to write it again")
    if info.st_size > MAX_METRICS_BYTES:
        raise InputDataError(f"{path}: {info.st_size} bytes is not a churnops metrics file")
    return load_metrics_document(path)


def outputs_stamp(config: Config) -> tuple[int, int, int] | None:
    """Which metrics file stands now (inode, size, modification time), for :func:`standing_outputs`."""
    try:
        info = os.lstat(config.monitoring_dir / METRICS_FILE)
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def standing_outputs(config: Config, stamp: tuple[int, int, int] | None) -> str | None:
    """After a failed run: what the monitoring outputs still say - the last complete run's id,
    time and verdict - when they are the ones that stood before it (``stamp``, taken by
    :func:`outputs_stamp` as it started); None when the run wrote them after all, or none exist.

    A job or a person reading only ``trigger.txt`` or the report would otherwise take that run's
    verdict for tonight's.
    """
    if stamp is None or outputs_stamp(config) != stamp:
        return None
    try:
        with workspace(config, shared=True, wait=False):
            document = read_metrics(config)
    except (ChurnopsError, OSError):  # busy, unreadable, a lock it cannot take: nothing said with confidence
        return None
    if document is None:
        return None
    verdict = document.get("verdict") if isinstance(document.get("verdict"), dict) else {}
    status = verdict.get("status") or ("alert" if document["dataset_drift"].get("detected") else "ok")
    try:
        when = datetime.fromisoformat(document["created_at"]).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError):
        when = "an unknown time"
    trigger = config.resolve(config.paths.trigger)
    try:
        stands = f"; its {trigger.name} stands" if stat.S_ISREG(os.lstat(trigger).st_mode) else ""
    except OSError:
        stands = ""
    return (
        f"the outputs ({config.monitoring_dir.name}/, {trigger.name}) are still those of the last complete run, "
        f"{document['run_id']} of {when} ({status}{stands}): this run changed none of them"
    )


def load_metrics_document(path: Path) -> dict[str, Any]:
    """Parse and validate a metrics JSON file (see ``monitoring_metrics.schema.json``)."""
    try:
        document = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise InputDataError(f"{path}: unreadable metrics ({reason}); run 'churnops monitor' again") from None
    problem = metrics_problem(document)
    if problem is not None:
        raise InputDataError(f"{path}: not a churnops metrics file ({problem}); run 'churnops monitor' again")
    return document


def metrics_problem(document: Any) -> str | None:
    """Why ``document`` is not a valid metrics document, or None when it is."""
    import jsonschema

    from churnops.report.metrics import metrics_schema

    validator = jsonschema.Draft202012Validator(metrics_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "top level"
    return f"{where}: {error.message[:200]}"
