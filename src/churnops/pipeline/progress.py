"""Progress callbacks of the model commands, and a heartbeat for steps that cannot report.

The library never draws: it calls ``progress(what, done, total)`` and the CLI decides what to
show (a bar that appears once a command has run for a second). Importing scikit-learn, fitting
a booster or logging to MLflow gives no chance to call back for seconds, so such a step runs
inside :func:`heartbeat`, which repeats its description from a helper thread meanwhile.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

Progress = Callable[[str, int, int], None]
"""``progress(what, done, total)``; total 0 when the amount of work is unknown."""
BEAT_SECONDS = 0.25


@contextlib.contextmanager
def heartbeat(progress: Progress | None, what: str) -> Iterator[None]:
    """Call ``progress(what, 0, 0)`` now and every :data:`BEAT_SECONDS` until the block ends.

    The helper thread is the only caller while the block runs and is joined before it
    returns, so the callback is never called from two threads at once.

    >>> calls = []
    >>> with heartbeat(lambda what, done, total: calls.append(what), "working"):
    ...     pass
    >>> calls
    ['working']
    """
    if progress is None:
        yield
        return
    progress(what, 0, 0)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(BEAT_SECONDS):
            progress(what, 0, 0)

    thread = threading.Thread(target=beat, name="churnops-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def process_age() -> float | None:
    """Seconds since this process started (Linux: from ``/proc``, to the clock tick), else None:
    what starting Python, importing and reading the configuration cost before a command's work.

    >>> age = process_age()
    >>> age is None or 0 <= age < 86_400 * 365
    True
    """
    import os
    import time

    try:
        with open("/proc/self/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of proc(5): ticks after boot
        now = time.clock_gettime(time.CLOCK_BOOTTIME)
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return max(now - started, 0.0)
