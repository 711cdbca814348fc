"""One pipeline run at a time per workspace: an exclusive lock on a file."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from churnops.errors import ChurnopsError


class LockBusyError(ChurnopsError):
    """Another run holds the lock."""


def _try_lock(handle: IO[str]) -> bool:
    if os.name == "nt":  # pragma: no cover - Windows
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextlib.contextmanager
def workspace_lock(
    path: Path, wait: bool = True, timeout: float = 3600.0, waiting: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold ``path`` exclusively for the duration of the block.

    With ``wait``, a busy lock is retried every half second (``waiting`` is told once who holds
    it) until ``timeout``; without, a busy lock raises :class:`LockBusyError` at once. The lock
    is released by the operating system if the process dies.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    try:
        started = time.monotonic()
        told = False
        while not _try_lock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            if not wait:
                raise LockBusyError(f"another pipeline run holds {path} ({holder}); try again later or drop --no-wait")
            if time.monotonic() - started > timeout:
                raise LockBusyError(f"gave up after {timeout:.0f} s waiting for {path} ({holder})")
            if waiting is not None and not told:
                waiting(f"another pipeline run holds {path} ({holder}); waiting for it to finish")
                told = True
            time.sleep(0.5)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%S')}")
        handle.flush()
        yield
    finally:
        handle.close()
