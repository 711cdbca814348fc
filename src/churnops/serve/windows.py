"""Closed windows compared with the reference, off the request path.

A window closes inside the request that fills it (in the event log's transaction); its
evaluation - the same engine, stat-test registry, settings and verdict as ``churnops monitor``
on the same rows - is queued on one worker thread and runs in a process of its own (see
:mod:`churnops.serve.evaluation`; on that thread with ``serve.evaluation = "thread"``); it
writes the window's metrics JSON (the same document and JSON Schema as
``monitoring_metrics.json``) and its standalone report under
``serve.windows_dir/<window>/``. Windows closed before a stop and never evaluated are evaluated
when the service starts again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from churnops.data.files import FOLDER_FLAGS, LinkedPath, open_folder, open_folder_at, read_file_at, write_file_at
from churnops.errors import NOTICE, OutputWriteError
from churnops.monitor.profile import ReferenceProfile
from churnops.monitor.results import DatasetInfo
from churnops.monitor.settings import MonitorSettings
from churnops.serve.eventlog import EventLog, NotWritten

logger = logging.getLogger(__name__)

KEEP_WINDOWS = 100_000
"""Finished windows remembered by number (beyond, the oldest half is forgotten: a window's
state then comes from the event log alone)."""
METRICS_FILE = "monitoring_metrics.json"
REPORT_FILE = "monitoring_report.html"
TRIGGER_FILE = "trigger.txt"


@contextlib.contextmanager
def window_folder(folder: Path, window: int) -> Iterator[int]:
    """The folder of window ``window``'s files, ``folder/<window>``, a real folder held open: its
    descriptor, which the files are written relative to (:func:`write_window_file`).

    ``folder`` (``serve.windows_dir``) was resolved when the service started: it is opened one
    component at a time from the root without following links, and a symbolic link on its path
    since then is refused (the window fails, and is tried again once another window is evaluated,
    and at the next start). A
    symbolic link at ``folder/<window>`` - churnops only ever makes real folders there - is
    removed, its target untouched, with a warning, and a new folder is made in its place. Once
    open, a link swapped in for the folder or any folder above it redirects nothing: the files
    go into the folder that was opened, never through a link.
    """
    try:
        windows = open_folder(folder, create=True)
    except LinkedPath as exc:
        raise OutputWriteError(
            f"{folder}: serve.windows_dir now leads through a symbolic link ({exc.path}); churnops does not write "
            f"through links - remove it (window {window} is tried again once another window is evaluated, and at the "
            "next start)"
        ) from None
    try:
        target = _open_window(windows, folder, window)
    finally:
        os.close(windows)
    try:
        yield target
    finally:
        os.close(target)


def _open_window(windows: int, folder: Path, window: int) -> int:
    """``<window>`` in the windows folder open as ``windows``, made when missing; a link there is
    removed (a link made again each time it is removed fails the window)."""
    name = str(window)
    for _ in range(3):
        try:
            return open_folder_at(windows, name, folder / name, create=True)
        except LinkedPath:
            logger.warning(
                "%s was a symbolic link: removed (what it pointed to is untouched); window %s is written into a new "
                "folder there",
                folder / name,
                window,
            )
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):  # replaced meanwhile: opened again
                os.unlink(name, dir_fd=windows)
    raise OutputWriteError(
        f"{folder / name}: a symbolic link is made there again each time it is removed; churnops does not write "
        f"through links (window {window} is tried again once another window is evaluated, and at the next start)"
    )


def write_window_file(target: int, folder: Path, window: int, name: str, text: str) -> None:
    """Write ``name`` (UTF-8 ``text``) atomically in the window folder open as ``target``
    (:func:`window_folder`; ``folder``: ``serve.windows_dir``, for messages)."""
    write_file_at(target, name, text.encode("utf-8"), folder / str(window) / name)


def read_window_file(folder: Path, window: int, name: str) -> bytes | None:
    """The content of ``folder/<window>/<name>`` when it is a regular file reached through no
    symbolic link (what the service serves and attaches), read from the file it opened - no
    path is checked and then opened again; None otherwise."""
    try:
        windows = open_folder(folder)
    except (OSError, OutputWriteError):
        return None
    try:
        target = open_folder_at(windows, str(window), folder / str(window))
    except (OSError, OutputWriteError):
        return None
    finally:
        os.close(windows)
    try:
        return read_file_at(target, name)
    finally:
        os.close(target)


@contextlib.contextmanager
def attachable(folder: Path, window: int, names: tuple[str, ...]) -> Iterator[list[Path]]:
    """Copies of the window's files ``names`` (those :func:`read_window_file` reads) in a private
    temporary folder, removed afterwards: what a notification attaches is read by path, and the
    window's own folder could have a link swapped in by then."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="churnops-window-") as private:
        copies = []
        held = os.open(private, FOLDER_FLAGS)
        try:
            for name in names:
                data = read_window_file(folder, window, name)
                if data is not None:
                    write_file_at(held, name, data, Path(private) / name)
                    copies.append(Path(private) / name)
        finally:
            os.close(held)
        yield copies


def window_frame(records: list[dict[str, Any]], dtypes: dict[str, str]) -> Any:
    """The events of a window as a table with the reference's columns and types (a column no
    event holds is all missing)."""
    import polars as pl

    columns = {}
    for name, dtype in dtypes.items():
        values = [record.get(name) for record in records]
        kind = getattr(pl, dtype, None) if dtype.isidentifier() else None
        if isinstance(kind, type) and issubclass(kind, pl.DataType) and kind not in (pl.Date, pl.Datetime):
            columns[name] = pl.Series(name, values, dtype=kind(), strict=False)
        else:
            columns[name] = pl.Series(name, [None if v is None else str(v) for v in values], dtype=pl.String)
    return pl.DataFrame(columns)


class EvaluatorGone(RuntimeError):
    """The window evaluator process is not there (it could not start, died or took too long):
    the window is evaluated in the service's process."""


class WindowFailed(RuntimeError):
    """The window evaluator process could not evaluate a window (said in one line)."""


@dataclass(frozen=True)
class WindowOutcome:
    """A window's evaluation: its metrics document and its verdict."""

    document: dict[str, Any]
    status: str
    headline: str
    score: float
    trigger: bool


def reason_of(exc: BaseException) -> str:
    """Why something failed, on one line of at most 500 characters, secrets redacted."""
    from churnops.redact import redact

    return redact(" ".join(str(exc).split())[:500]) or type(exc).__name__


@dataclass(frozen=True)
class WindowContext:
    """What every window of a service is compared with, and where its files go."""

    profile: ReferenceProfile
    settings: MonitorSettings
    reference_info: DatasetInfo
    folder: Path
    """``serve.windows_dir``: each window's files in a folder named by its number."""
    trigger_on: list[str]
    dtypes: dict[str, str]
    """The reference's column types, which the window's table is given."""

    def evaluate(self, records: list[dict[str, Any]], window: int) -> WindowOutcome:
        """Compare a window's events with the reference (the engine, stat-test registry, settings
        and verdict of ``churnops monitor``) and write its report, its trigger when it alerts, and
        its metrics JSON last (a window with its metrics file has everything) under
        ``folder/<window>/``."""
        import json

        from churnops.monitor.drift import with_any_finding_rate
        from churnops.monitor.engine import compare
        from churnops.monitor.verdict import decide
        from churnops.report.html import ReportContext, render_reports
        from churnops.report.metrics import metrics_document

        frame = window_frame(records, self.dtypes)
        label = self.settings.target
        if label in frame.columns and frame[label].null_count() == frame.height:
            # no event of the window carries its outcome (scored traffic: the labels come later):
            # a window without labels, as a batch without its target column - not missing values
            frame = frame.drop(label)
        info = DatasetInfo(f"window {window}", frame.height, None, None, frame.width)
        result = compare(self.profile, frame, self.settings, self.reference_info, info)
        result = with_any_finding_rate(result, self.settings)
        result = replace(result, verdict=decide(result, self.trigger_on))
        verdict = result.verdict
        assert verdict is not None
        document = metrics_document(result)
        context = ReportContext(METRICS_FILE, "", bool(verdict.trigger), f"window {window}")
        files = {REPORT_FILE: render_reports(result, context)[1]}
        if verdict.trigger:  # as trigger.txt for a batch, per window
            from churnops.report.metrics import render_trigger

            files[TRIGGER_FILE] = render_trigger(result, REPORT_FILE, METRICS_FILE)
        files[METRICS_FILE] = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False)  # last
        with window_folder(self.folder, window) as target:
            for name, text in files.items():
                write_window_file(target, self.folder, window, name, text)
        return WindowOutcome(
            document, verdict.status, verdict.headline, result.dataset_drift.score, bool(verdict.trigger)
        )


RETRIES = 3
"""Times a window that could not be evaluated is tried again in one run of the service (then at
its next start)."""
RETRIED_AT_ONCE = 4
"""Failed windows tried again after one window evaluated, at most: the oldest first."""


SAID_EVERY_WINDOWS = 100
"""A pass of :meth:`WindowEvaluator.prune` says what it deleted at least every this many windows."""
BEHIND_WINDOWS = 10
"""Closed windows waiting for their evaluation from which the service says so (then once that
it has caught up); ``churnops_serve_windows_waiting`` counts them all along."""
WIPE_EVERY = 60.0
"""Seconds: after events were deleted, the write-ahead log (which still holds their former
pages) is emptied at most this often; it holds the writes up while it runs (116 ms after 100,000
events deleted in one go, measured)."""
PRUNE_RETRY = 60.0
"""Seconds: a pass of ``serve.keep_events`` that failed (a full disk, a lock held elsewhere) is
tried again this much later by itself, twice as late at each failure in a row, at most
:data:`PRUNE_RETRY_LONGEST` (and after every window evaluated)."""
PRUNE_RETRY_LONGEST = 3600.0
PRUNE_SLACK = 1.0
"""Seconds: a pass due when a window's events come of age runs this much later (the timer's
clock and the log's dates are not the same clock)."""
SAY_BEHIND_EVERY = 600.0
"""Seconds: windows waiting are said at most this often (bursts that are caught up within
seconds said once, not at each burst)."""


RETAINED = {
    "keep_events": {
        "done": "events older than serve.keep_events ({period}) deleted",
        "failed": "the events older than serve.keep_events could not be deleted",
        "what": "events",
    },
    "keep_inputs": {
        "done": "inputs of events older than serve.keep_inputs ({period}) dropped",
        "failed": "the inputs of the events older than serve.keep_inputs could not be dropped",
        "what": "inputs",
    },
}
"""What a pass of each setting does and what a failed one did not, as said in the service's log
(:func:`_say_retained`), and what of a window's events it takes."""


def _shown_windows(done: dict[int, int]) -> str:
    """``windows 0 (10,000), 1 (10,000)`` - or, past five windows, their range and total."""
    windows = sorted(done)
    if len(windows) <= 5:
        return "windows " + ", ".join(f"{window} ({done[window]:,})" for window in windows)
    return f"{len(windows):,} windows from {windows[0]} to {windows[-1]} ({sum(done.values()):,} events)"


def _say_retained(setting: str, period: str, done: dict[int, int]) -> None:
    """One line for the events of ``done`` (window: events) deleted or slimmed past ``setting``."""
    if done:
        logger.log(NOTICE, "%s, of %s", RETAINED[setting]["done"].format(period=period), _shown_windows(done))


def _say_unsaid(unsaid: dict[int, tuple[int, int]], first: bool) -> None:
    """The deletions and slimmings the log records and no line said (a service killed in the
    middle of a pass, before it could say it; ``first``: said at this service's first pass)."""
    when = "before the service last stopped" if first else "earlier"
    for index, what in enumerate(("events of", "inputs of the events of")):
        done = {window: counts[index] for window, counts in unsaid.items() if counts[index]}
        if done:
            action = "deleted" if index == 0 else "dropped"
            logger.log(NOTICE, "%s %s, %s and not said then", what, _shown_windows(done), action + " " + when)


def slim_keys(config: Any) -> tuple[frozenset[str], str | None]:
    """What a record keeps once ``serve.keep_inputs`` drops its inputs: the scores churnops wrote
    (probability, arm, model version), the prediction and target columns (a model's output and the
    outcome, not its inputs); and the customer column of ``serve.ab.key`` (default: the first
    identifier), which an event scored by an A/B arm keeps (the comparison counts each customer
    once - also after the arms were paused, ``serve.ab.share = 0``)."""
    from churnops.serve.eventlog import ARM, MODEL_VERSION, PROBABILITY

    kept = {PROBABILITY, ARM, MODEL_VERSION}
    columns = getattr(config, "columns", None)
    for name in (getattr(columns, "target", None), getattr(columns, "prediction", None)):
        if name:
            kept.add(name)
    ab = getattr(getattr(config, "serve", None), "ab", None)
    key = getattr(ab, "key", None) or next(iter(getattr(columns, "id", None) or []), None)
    return frozenset(kept), key


class WindowEvaluator:
    """Evaluates closed windows one at a time on its own thread; remembers the last result."""

    def __init__(self, log: EventLog, context: WindowContext, config: Any = None, process: Any = None) -> None:
        self.process = process
        """The :class:`~churnops.serve.evaluation.EvaluatorProcess` that evaluates the windows
        (``serve.evaluation = "process"``); None: this thread does."""
        self.config = config
        """The service's configuration: [notify] channels, the history, serve.remind_every."""
        self.log = log
        self.context = context
        self.last: dict[str, Any] | None = None
        self.failures = 0
        self.done: set[int] = set()
        """Windows evaluated (or failed) since the start."""
        self.submitted: set[int] = set()
        """Windows given to this evaluator since the start."""
        self.failed: set[int] = set()
        """Windows that could not be evaluated since the start (tried again once another window is,
        :data:`RETRIES` times at most, and at the next start)."""
        self.after: Any = None
        """Called after each window (the service checks its models then); errors are logged."""
        self._tries: dict[int, int] = {}  # a failed window's evaluations tried again
        self._held: set[tuple[str, int]] = set()  # (setting, window): said to hold back serve.keep_events/keep_inputs
        self._passed = False  # a pass of serve.keep_events or keep_inputs ran in this service
        self._unwiped = False  # events deleted whose former pages may still be in the write-ahead log
        self._wiped_at: float | None = None
        self._timers: dict[str, tuple[Any, float]] = {}  # work set for later (_later): its timer, when due
        self._prune_failures = 0  # passes failed in a row
        self._stopped = False
        self.later: Any = threading.Timer
        """What calls :meth:`_wipe` and :meth:`prune` again later (a timer the tests can drive)."""
        self._lock = threading.Condition()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="churnops-window")
        self._pending: list[Future[None]] = []
        self._behind = 0  # the most windows waiting since that was said (0: not said, or caught up)
        self._said_behind: float | None = None
        self.clock = time.monotonic
        """The clock of the once-every-while rules - saying windows wait, emptying the write-ahead
        log - which the tests can drive."""

    def waiting(self) -> tuple[int, float]:
        """Closed windows not evaluated yet (waiting for this evaluator, or failed and to be tried
        again), and the seconds since the oldest of them closed (0 when none waits)."""
        count, oldest = self.log.waiting()
        return count, 0.0 if oldest is None else max(0.0, time.time() - oldest)

    def submit(self, windows: list[int]) -> None:
        if windows and self.process is not None and self.process.pid is None:
            self._pool.submit(self.process.start)  # on the window thread: it loads meanwhile
        with self._lock:
            self.submitted.update(windows)
        for window in windows:
            self._pending.append(self._pool.submit(self._evaluate, window))
        self._pending = [f for f in self._pending if not f.done()]
        self._say_behind()

    def _say_behind(self) -> None:
        """Say when closed windows pile up waiting for their evaluation (at most every
        :data:`SAY_BEHIND_EVERY` seconds), and then once that it has caught up."""
        try:
            count, age = self.waiting()
        except Exception:  # noqa: BLE001 - the log unreadable now: said at the next window
            return
        with self._lock:
            now = self.clock()
            if count >= BEHIND_WINDOWS and not self._behind:
                if self._said_behind is not None and now - self._said_behind < SAY_BEHIND_EVERY:
                    return
                self._behind, self._said_behind = count, now
                logger.warning(
                    "%s closed windows wait for their evaluation, the oldest closed %.0f s ago; they are evaluated "
                    "in order. If this lasts, windows close faster than they are evaluated (a larger "
                    "serve.window_size closes fewer) or their evaluation fails (said above)",
                    count,
                    age,
                )
            elif self._behind and count == 0:
                logger.log(NOTICE, "the window evaluation has caught up (up to %s windows waited)", self._behind)
                self._behind = 0
            elif self._behind:
                self._behind = max(self._behind, count)

    def wait(self) -> None:
        """Block until every submitted window is evaluated (tests, shutdown), the failed windows
        tried again meanwhile included."""
        while pending := [future for future in list(self._pending) if not future.done()]:
            for future in pending:
                future.result()

    def _evaluate(self, window: int) -> None:
        try:
            document = self._in_process(window) if self.process is not None else None
            if document is None:
                document = self.evaluate(window)
        except Exception as exc:  # a window that cannot be evaluated must not stop the service
            self.failures += 1
            logger.error("window %s could not be evaluated: %s", window, reason_of(exc))
            if not isinstance(exc, WindowFailed):  # (the evaluator process says why itself, with -v)
                logger.debug("window %s", window, exc_info=True)
            with self._lock:
                self.failed.add(window)
            document = None
        if document is not None:
            self._retry_failed()
        self.prune()  # (after a failure too: a window that holds deletions back is said once of age)
        if self.after is not None:
            try:
                self.after()
            except Exception:  # the models are checked again after the next window
                logger.exception("after window %s: the models could not be checked", window)
        with self._lock:
            if document is not None and (self.last is None or window >= self.last["window"]):
                self.last = {"window": window, "metrics": document}
            self.done.add(window)
            if len(self.done) > KEEP_WINDOWS:  # a long-running service: forget the oldest finished
                old = sorted(self.done)[: len(self.done) - KEEP_WINDOWS // 2]
                self.done.difference_update(old)
                self.submitted.difference_update(old)
                self.failed.difference_update(old)
            self._lock.notify_all()
        self._say_behind()

    def prune(self) -> None:
        """With ``serve.keep_events``: delete the events of the windows evaluated and closed
        longer ago, oldest first, a few thousand per transaction (the writer waits for one at
        most); with ``serve.keep_inputs``: likewise drop the inputs of the events of such windows,
        keeping their scores and outcomes (:func:`slim_keys`). Then set the next pass for when the
        oldest window left comes of age. A failure is said and tried again after the next window,
        or by itself later (:data:`PRUNE_RETRY`, doubling each time it fails again)."""
        from churnops.config.models import KEEP_EVENTS_LONGEST_DAYS, period_seconds

        serve = getattr(self.config, "serve", None)
        due: list[tuple[str, str, float]] = []
        for setting in RETAINED:
            period = getattr(serve, setting, None)
            seconds = period_seconds(period, KEEP_EVENTS_LONGEST_DAYS) if period else None
            if seconds is not None:
                due.append((setting, period, seconds))
        unsaid: dict[int, tuple[int, int]] = {}
        try:
            unsaid = self.log.unsaid()
            if unsaid:
                _say_unsaid(unsaid, not self._passed)
                self.log.said()
        except Exception as exc:  # noqa: BLE001 - said at the next pass
            logger.debug("what was deleted earlier could not be read: %s", reason_of(exc))
        self._passed = True
        if not due:
            if unsaid:  # a pass cut short before the service stopped: its former pages go too
                self._wipe()
            return
        failed = False
        for setting, period, seconds in due:
            if setting == "keep_events":
                step = self.log.prune
            else:
                keep, customer = slim_keys(self.config)

                def step(
                    before: float, keep: frozenset[str] = keep, customer: str | None = customer
                ) -> tuple[int, int]:
                    return self.log.slim(before, keep, customer)

            failed = not self._pass(setting, period, time.time() - seconds, step) or failed
        self._prune_failures = self._prune_failures + 1 if failed else 0
        self._wipe()
        self._prune_later(due)

    def _pass(self, setting: str, period: str, before: float, step: Any) -> bool:
        """One pass of ``setting`` over the windows closed before ``before``: ``step(before)``
        until it has nothing left to do; False when it failed (said once until a pass succeeds)."""
        done: dict[int, int] = {}
        ok = True
        while True:
            try:
                window, count = step(before)
            except Exception as exc:  # noqa: BLE001 - the service goes on; tried again later
                ok = False
                if not self._prune_failures:  # said once until a pass succeeds
                    logger.warning("%s: %s; tried again later", RETAINED[setting]["failed"], reason_of(exc))
                break
            if count == 0:
                with self._lock:
                    stuck = window in self.failed
                if window >= 0 and stuck and (setting, window) not in self._held:
                    self._held.add((setting, window))
                    logger.warning(
                        "window %s could not be evaluated: its %s and those of the later windows are kept "
                        "past serve.%s (%s) until it is",
                        window,
                        RETAINED[setting]["what"],
                        setting,
                        period,
                    )
                break
            done[window] = done.get(window, 0) + count
            self._unwiped = True
            if len(done) >= SAID_EVERY_WINDOWS:  # a long pass (a first start with keep_events) says its way
                self._said(setting, period, done)
                done = {}
        self._said(setting, period, done)
        return ok

    def _said(self, setting: str, period: str, done: dict[int, int]) -> None:
        """Say what a pass did (:func:`_say_retained`), and record in the log that it was said."""
        if not done:
            return
        _say_retained(setting, period, done)
        try:
            self.log.said()
        except Exception as exc:  # noqa: BLE001 - said again at the next pass: better twice than never
            logger.debug("what was deleted could not be marked as said: %s", reason_of(exc))

    def _prune_later(self, due: list[tuple[str, str, float]]) -> None:
        """:meth:`prune` again when the oldest window left comes of age (for each setting of
        ``due``: its name, period and seconds), whether or not a window closes meanwhile: a
        service without traffic deletes on time too. Not for a window waiting for its evaluation
        (which prunes), nor for one that could not be evaluated once it is of age (said; its
        evaluation prunes); after a failed pass, not before :data:`PRUNE_RETRY` seconds, doubled
        at each failure in a row. One such call waits at a time - the sooner due (a retry set
        after a failure gives way to a window that comes of age first) - and none once the
        service stops."""
        soonest: float | None = None
        for setting, _, keep in due:
            try:
                oldest = self.log.oldest_closed() if setting == "keep_events" else self.log.oldest_unslimmed()
            except Exception:  # noqa: BLE001 - the log unreadable now: the next window's pass sees to it
                continue
            if oldest is None:  # no closed window has events (or inputs) left
                continue
            window, closed, evaluated = oldest
            seconds = closed + keep - time.time()
            if not evaluated:
                with self._lock:
                    failed = window in self.failed
                if not failed or seconds <= 0:
                    continue
            soonest = seconds if soonest is None else min(soonest, seconds)
        if soonest is None:
            return
        if self._prune_failures:
            soonest = max(soonest, min(PRUNE_RETRY * 2 ** (self._prune_failures - 1), PRUNE_RETRY_LONGEST))
        self._later("prune", max(soonest, 0.0) + PRUNE_SLACK, self.prune, sooner=True)

    def _later(self, slot: str, seconds: float, work: Any, sooner: bool = False) -> None:
        """``work`` on the windows' thread in ``seconds``, one call per ``slot`` waiting at a
        time: the one set first or, with ``sooner``, the one due first (by more than
        :data:`PRUNE_SLACK`: a retry set after a failure gives way to a window that comes of
        age first); none once the service stops."""
        at = self.clock() + seconds

        def due() -> None:
            with self._lock:
                if self._timers.get(slot, (None,))[0] is timer:  # (not one set since, in its place)
                    del self._timers[slot]
            with contextlib.suppress(RuntimeError):  # the service is stopping: its log closes cleanly
                self._pending.append(self._pool.submit(work))

        with self._lock:
            waiting = self._timers.get(slot)
            if self._stopped or (waiting is not None and (not sooner or waiting[1] <= at + PRUNE_SLACK)):
                return
            if waiting is not None:
                waiting[0].cancel()
            timer = self.later(seconds, due)
            self._timers[slot] = (timer, at)
            timer.daemon, timer.name = True, f"churnops-{slot}"
            timer.start()

    def _wipe(self) -> None:
        """No copy of the deleted events left in the write-ahead log (:meth:`EventLog.wipe_deleted`),
        at most every :data:`WIPE_EVERY` seconds - emptying it holds the writes up for a moment -
        and again that much later by itself when it had to wait, whether or not a window closes."""
        if not self._unwiped:
            return
        now = self.clock()
        if self._wiped_at is not None and now - self._wiped_at < WIPE_EVERY:
            self._wipe_later(WIPE_EVERY - (now - self._wiped_at))
            return
        self._wiped_at = now
        try:
            self._unwiped = not self.log.wipe_deleted()
        except Exception as exc:  # noqa: BLE001 - tried again below
            logger.debug("the write-ahead log could not be emptied: %s", reason_of(exc))
        if self._unwiped:  # a reader was in the middle of a read: later
            self._wipe_later(WIPE_EVERY)

    def _wipe_later(self, seconds: float) -> None:
        """:meth:`_wipe` on the windows' thread in ``seconds`` (one such call waiting at a time)."""
        self._later("wipe", seconds, self._wipe)

    def prune_soon(self) -> None:
        """:meth:`prune` on the windows' thread (at start: what got old while the service was
        stopped), the write-ahead log emptied then too: a service killed before it could empty it
        left the former pages of deleted events there."""
        self._unwiped = True
        self._pending.append(self._pool.submit(self.prune))

    def retried(self, window: int) -> bool:
        """Whether a window that could not be evaluated will be tried again in this run (else at
        the next start)."""
        return self._tries.get(window, 0) < RETRIES

    def _retry_failed(self) -> None:
        """After a window evaluated, the windows that could not be (a full disk, an evaluator
        that failed) are tried again, once each time another window succeeds; one whose verdict
        was recorded before its failure (its history row or notification failed) is left as it is."""
        with self._lock:
            failed = sorted(self.failed)
        again = []
        for window in failed:
            try:
                state = self.log.window_state(window)
            except Exception:  # the log unreadable now: tried after the next window
                return
            if state == "closed" and self._tries.get(window, 0) < RETRIES and len(again) < RETRIED_AT_ONCE:
                again.append(window)
                self._tries[window] = self._tries.get(window, 0) + 1
            elif state == "evaluated":
                with self._lock:
                    self.failed.discard(window)
        if not again:
            return
        logger.log(
            NOTICE,
            "%s %s, which could not be evaluated, %s evaluated again",
            "window" if len(again) == 1 else "windows",
            ", ".join(map(str, again)),
            "is" if len(again) == 1 else "are",
        )
        with self._lock:
            self.failed.difference_update(again)
            self.done.difference_update(again)
        for window in again:
            self._pending.append(self._pool.submit(self._evaluate, window))

    def _in_process(self, window: int) -> dict[str, Any] | None:
        """The window evaluated by :attr:`process`, then recorded here; None when that process
        is not there (the window is then evaluated on this thread)."""
        assert self.process is not None
        try:
            answer = self.process.evaluate(window)
        except EvaluatorGone:
            return None
        outcome = WindowOutcome(
            answer["document"], str(answer["status"]), str(answer["headline"]), float(answer["score"]),
            bool(answer["trigger"]),
        )  # fmt: skip
        return self._record(window, outcome)

    def wait_for(self, window: int, timeout: float) -> bool:
        """Wait until ``window`` is evaluated, at most ``timeout`` seconds; whether it is."""
        with self._lock:
            return self._lock.wait_for(lambda: window in self.done, timeout=timeout)

    def evaluate(self, window: int) -> dict[str, Any]:
        """Compare the window's events with the reference; write its metrics and report."""
        return self._record(window, self.context.evaluate(self.log.records(window), window))

    def _record(self, window: int, outcome: WindowOutcome) -> dict[str, Any]:
        """What follows a window's evaluation in the service: its verdict in the event log, its
        history row, its gauges and (de-duplicated) its notification."""
        self.log.evaluated(window, outcome.status, outcome.headline, outcome.score)
        logger.log(NOTICE, "window %s: %s - %s", window, outcome.status, outcome.headline)
        if self.config is not None:
            self._history(outcome.document)
            self._export(outcome.document)
            self._notify(window, outcome.document, outcome.trigger, self.context.folder)
        return outcome.document

    def _history(self, document: dict[str, Any]) -> None:
        """The window as a run of the history (``churnops history``, the report's trends)."""
        if not self.config.history.enabled:
            return
        from churnops.errors import ChurnopsError
        from churnops.pipeline.history import record

        try:
            record(self.config, document)
        except (ChurnopsError, OSError, sqlite3.Error) as exc:  # the history never stops the monitoring
            logger.warning("window history not recorded: %s", exc)

    def _export(self, document: dict[str, Any]) -> None:
        """The window's gauges to the node_exporter textfile or the Pushgateway of ``[metrics]``."""
        if not (self.config.metrics.textfile_dir or self.config.metrics.pushgateway_url):
            return
        from churnops.errors import ChurnopsError
        from churnops.pipeline.exporting import export_metrics

        try:
            export_metrics(self.config, metrics=document)
        except (ChurnopsError, OSError) as exc:  # an exporter down never stops the monitoring
            logger.warning("window metrics not exported: %s", exc)

    def _notify(self, window: int, document: dict[str, Any], alert: bool, folder: Path) -> None:
        """Tell the team once when windows start to alert, again every ``serve.remind_every``
        alerting windows, and once when they stop - not at every window of one drift (``folder``:
        ``serve.windows_dir``; a window file reached through a link is not attached)."""
        import json

        state = json.loads(self.log.get_meta("notify") or "{}")
        alerting, last = bool(state.get("alerting")), state.get("last_sent")
        remind = self.config.serve.remind_every
        if alert and alerting and isinstance(last, int) and window - last < remind:
            return
        if not alert and not alerting:
            return
        status = "drift" if alert else "ok"
        if self.config.notify.channels:
            from churnops.integrations.notifications.message import build_notification
            from churnops.integrations.notifications.send import send_all

            settings = self.config.notify
            note = build_notification(status, document, None, settings.top_columns, settings.report_url)
            with attachable(folder, window, (REPORT_FILE, METRICS_FILE)) as files:
                for delivery in send_all(self.config, note, files):
                    if delivery.status == "failed":
                        logger.warning("window %s notification %s: %s", window, delivery.channel, delivery.error)
        try:
            self.log.set_meta("notify", json.dumps({"alerting": alert, "last_sent": window}))
        except NotWritten as exc:  # the next window's notification decides again from the last state kept
            logger.warning("window %s: whether the team was told could not be kept: %s", window, exc)

    def shutdown(self) -> None:
        """Evaluate the windows queued (a window in the evaluator process gets a grace period),
        then stop the evaluator process."""
        with self._lock:
            self._stopped = True  # (a pass running now sets no timer after this)
            for timer, _ in self._timers.values():
                timer.cancel()
            self._timers.clear()
        if self.process is not None:
            self.process.stopping()
        self._pool.shutdown(wait=True)
        if self.process is not None:
            self.process.close()
