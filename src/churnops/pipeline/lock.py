"""One story per workspace: a lock file held for the whole of a run.

``churnops monitor`` and every stage of ``churnops pipeline`` hold the workspace lock
exclusively from the moment they start reading until their outputs, history row and
notification are done, so the report, metrics, trigger, history row and notification of one run
always describe that run. Commands that only read the outputs (``notify`` alone, ``metrics
export``, ``version``) hold it shared: they never see a run half-way.

The lock is an ``flock`` on a regular file opened without following symbolic links (a link
planted at its path is refused, never written through). It is re-entrant within a process: the
pipeline holds it and the monitoring it runs takes it again without waiting for itself.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from churnops.data.files import open_regular
from churnops.errors import ChurnopsError
from churnops.escape import one_line

POLL_S = 0.2
"""How often a waiting run tries the lock again."""


class LockBusyError(ChurnopsError):
    """Another run holds the lock."""


@dataclass
class _Held:
    fd: int
    shared: bool
    depth: int


_held: dict[str, _Held] = {}
_held_guard = threading.Lock()


def held(path: Path) -> bool:
    """Whether this process already holds the lock at ``path``."""
    with _held_guard:
        return os.path.abspath(path) in _held


def _holder(fd: int) -> str:
    """Who holds the lock, as its file says (untrusted text: one short, escaped line)."""
    try:
        data = os.pread(fd, 300, 0)
    except OSError:
        return "another process"
    text = one_line(data.decode("utf-8", errors="replace").strip())[:200]
    return text or "another process"


def _try(fd: int, shared: bool) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: one byte locked, shared or not
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextlib.contextmanager
def workspace_lock(
    path: Path,
    wait: bool = True,
    timeout: float = 3600.0,
    waiting: Callable[[str], None] | None = None,
    shared: bool = False,
    purpose: str = "churnops",
) -> Iterator[None]:
    """Hold ``path`` for the duration of the block (exclusively unless ``shared``).

    With ``wait``, a busy lock is tried again every :data:`POLL_S` seconds until ``timeout``
    (``waiting`` is told once who holds it); without, a busy lock raises
    :class:`LockBusyError` at once. The operating system releases the lock if the process dies.
    """
    key = os.path.abspath(path)
    with _held_guard:
        held = _held.get(key)
        if held is not None and (not held.shared or shared):
            held.depth += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _held_guard:
                _held[key].depth -= 1
        return
    if held is not None:  # held shared by this process and wanted exclusive: upgrade in place
        _acquire(held.fd, path, wait, timeout, waiting, shared=False)
        held.shared, held.depth = False, held.depth + 1
        try:
            yield
        finally:
            with _held_guard:
                held.depth -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = open_regular(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, wait, timeout, waiting, shared)
        if not shared:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} ({purpose}) since {time.strftime('%Y-%m-%dT%H:%M:%S')}".encode(), 0)
        with _held_guard:
            _held[key] = _Held(fd, shared, 1)
        try:
            yield
        finally:
            with _held_guard:
                _held.pop(key, None)
    finally:
        os.close(fd)


def _acquire(
    fd: int, path: Path, wait: bool, timeout: float, waiting: Callable[[str], None] | None, shared: bool
) -> None:
    started = time.monotonic()
    told = False
    while not _try(fd, shared):
        holder = _holder(fd)
        if not wait:
            raise LockBusyError(f"another churnops run holds {path} ({holder}); try again later or drop --no-wait")
        if time.monotonic() - started > timeout:
            raise LockBusyError(f"gave up after {timeout:.0f} s waiting for {path} ({holder})")
        if waiting is not None and not told:
            waiting(f"another churnops run holds {path} ({holder}); waiting for it to finish")
            told = True
        time.sleep(POLL_S)
