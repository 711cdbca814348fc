"""The service's append-only event log: SQLite in write-ahead-log mode.

Every accepted event is in the log, in its window, before the request is answered. Appends go to
one writer thread, which takes every append waiting and writes them in one transaction - group
commit: one ``COMMIT`` with ``synchronous = FULL`` (the WAL fsynced: on disk when the answers
leave; a killed process or a lost machine loses no acknowledged event), one call of the
detectors and one save of their state for all of them. Each request is answered once the
transaction that holds its events is committed; a failed transaction answers each of its
requests with the error, and none of their events is written. An event id is stored once: a
retried request is counted once (``duplicates`` in the answer), also when two requests carrying
the same id are written in the same transaction.

Events without an id get one from the writer (:mod:`churnops.serve.ids`: time-ordered, so they
land at the end of the unique index); those need no lookup, only ids a client sent are looked up.
The unique constraint still guards: should a made id collide with one a client chose, the
transaction is written again with every id looked up and the made one replaced.

Why SQLite rather than Parquet files rolled per window: an acknowledged event must be durable
one request at a time, and Parquet cannot append to a file (one small file per request, or
events held in memory until the window closes - lost on a kill). SQLite's write-ahead log
appends each transaction to one file, reads the open window back after a restart with one
indexed query, and keeps event ids unique by a constraint. Records are stored as JSON text that
churnops wrote itself after validating it; nothing in the file is executed or unpickled.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

from churnops.errors import ChurnopsError, InputDataError
from churnops.escape import one_line_short
from churnops.serve.ids import EventIds

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "2"
PROBABILITY = "churn_probability"
"""The key under which a scored event keeps its probability in the event log."""
ARM = "churnops_arm"
"""The key under which a scored event keeps the arm that scored it."""
MODEL_VERSION = "churnops_model_version"
"""The key under which a scored event keeps the registered version of the model that scored it."""


@dataclass(frozen=True, eq=False)
class Watch:
    """What sees the accepted events in log order (the sequential detectors): the values of
    ``keys`` in each record, one list per key, given to ``see``, which returns the state to save
    with them. The values are taken from the records when they are submitted, in the caller's
    thread; the writer only gathers the lists of the events it accepts."""

    keys: tuple[str, ...]
    see: Callable[[dict[str, list[Any]]], str]
    kept: Callable[[], None] | None = None
    """Called once the events last seen are committed."""
    undo: Callable[[], None] | None = None
    """Called when the transaction of the events last seen failed: forget them."""


def as_logged(records: list[dict[str, Any]], keys: tuple[str, ...]) -> tuple[list[str], dict[str, list[Any]]]:
    """``records`` as the event log keeps them - each as JSON text - and the values of ``keys``
    in them (None where a record has none), one list per key: what :meth:`EventLog.submit_texts`
    takes."""
    import orjson

    texts = [orjson.dumps(record).decode() for record in records]
    return texts, {key: list(map(dict.get, records, repeat(key))) for key in keys}


ROWS_PER_INSERT = 512
"""Events inserted by one statement (a power of two; fewer when SQLite allows fewer bound values)."""
GROUP_EVENTS = 20_000
"""At most this many events in one transaction (the appends waiting beyond go in the next one)."""
PRUNE_EVENTS = 5_000
"""Events deleted per transaction by :meth:`EventLog.prune` (the writer waits for each: 18 ms
for 5,000 events of the embedded data, measured)."""
SLIM_EVENTS = 2_000
"""Events slimmed per transaction by :meth:`EventLog.slim`: each record is read and written
again, about 10 ms per 1,000 events of the embedded data (measured), so fewer than are deleted."""
BUSY_SECONDS = 30
"""How long a write waits for a lock another program holds on the log before it fails."""
PRUNE_BUSY_SECONDS = 2
"""How long a deletion pass waits for such a lock: it is tried again later, and must not hold
up the writes, or a stopping service, for longer."""
CHECKPOINT_BYTES = 4 << 20
"""Bytes of records written between two checkpoints (the write-ahead log's pages copied into the
database file), made by a thread of their own: left to SQLite, the writer made them itself, at
the commit that passed 1,000 pages - a third of the time it took to write events."""
WAL_LIMIT = 64 << 20
"""The write-ahead log's size beyond which the writer makes a checkpoint itself: under a steady
load, the checkpoints of the other thread never end between two transactions, and the
write-ahead log starts again from its beginning only when one does."""
CACHE_KIB = 16 << 10
"""SQLite's page cache of the writing connection (KiB): a transaction of many events fits in it."""


@dataclass(frozen=True)
class Appended:
    """What one append did."""

    accepted: list[str]
    """The event ids written now, in order."""
    duplicates: list[str]
    """Event ids already in the log (a retried request): not written again."""
    closed: list[int]
    """Windows this append filled and closed."""
    window: int
    """The window open after the append."""
    event_ids: list[str] = field(default_factory=list)
    """Every event's id, in the order given (those the log made included)."""


@dataclass
class _Append:
    """One append waiting for the writer."""

    ids: list[str | None]  # None: the writer makes the id
    texts: list[str]  # the records as JSON text
    columns: dict[str, list[Any]]  # the values the watch sees, one list per key, in the order of ids
    made_only: bool  # no id given: nothing to look up, every event accepted
    future: Future[Appended]
    watch: Watch | None = None
    size: int = 0  # characters of the texts


@dataclass
class _Rows:
    """The events' rows of one transaction, column by column: a statement's values are made of
    them by slices, at C speed."""

    ids: list[str] = field(default_factory=list)
    windows: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


class _Windows:
    """Events given their window in log order: a window closes at exactly ``size`` events."""

    def __init__(self, open_window: int, count: int, size: int) -> None:
        self.open, self.count, self.size = open_window, count, size
        self.closed: list[int] = []

    def fill(self, ids: list[str], texts: list[str], rows: _Rows) -> list[int]:
        """Add the rows of ``ids`` to ``rows``; the windows they closed."""
        closed, start = [], 0
        while start < len(ids):
            take = min(len(ids) - start, self.size - self.count)
            end = start + take
            rows.ids += ids[start:end]
            rows.windows += [self.open] * take
            rows.texts += texts[start:end]
            self.count += take
            start = end
            if self.count >= self.size:
                closed.append(self.open)
                self.open, self.count = self.open + 1, 0
        self.closed += closed
        return closed


class NotWritten(ChurnopsError):
    """Events the event log could not write (a full disk, an I/O error): none of them was kept."""


@contextlib.contextmanager
def _not_written() -> Iterator[None]:
    """SQLite's failure to write (a full disk, an I/O error, a lock held too long) as :class:`NotWritten`."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise _refusal(exc) from None


def _refusal(exc: BaseException) -> NotWritten:
    """SQLite's (or the system's) error as :class:`NotWritten`, its reason on one short line."""
    return NotWritten(one_line_short(" ".join(str(exc).split()) or type(exc).__name__, 200))


class _MadeIdTaken(Exception):
    """An id the writer made is in the log already (a client chose it): write with lookups."""


_STOP = object()


class EventLog:
    """Events by window; one open window at a time, closed when it holds ``window_size`` events."""

    def __init__(self, path: Path, window_size: int) -> None:
        if path.is_symlink():
            raise InputDataError(f"{path}: is a symbolic link; the event log is never opened through one")
        if path.exists() and not path.is_file():
            raise InputDataError(f"{path}: is not a file")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._wal = path.with_name(path.name + "-wal")
        self.window_size = window_size
        self._lock = threading.Lock()  # the writing connection: the writer thread, labels, window states
        self._read_lock = threading.Lock()  # long reads (a window's events, scored events)
        self._peek_lock = threading.Lock()  # short reads, e.g. from the event loop
        self._reader: sqlite3.Connection | None = None
        self._peeker: sqlite3.Connection | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._ids = EventIds()
        self._rows_per_insert = ROWS_PER_INSERT
        self._inserts: dict[int, str] = {}  # INSERT statements by their number of rows
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()  # starting and stopping the writer thread
        self._closed = False
        self._failing = False  # the last transaction failed (said once)
        self._checkpointer: threading.Thread | None = None
        self._checkpoint_due = threading.Event()
        self._checkpointing = threading.Lock()  # one checkpoint at a time: a second one is refused as busy
        self._unchecked = 0  # bytes of records written since the last checkpoint was asked for
        _no_links(path)
        existing = path.exists() and path.stat().st_size > 0
        _private(path)
        if existing:  # another program's database is refused before anything of it changes
            _probe(path)
        self._hold = _exclusive(path)  # one service per event log: a second one would mix windows
        self._db = self._connect()
        self._db.execute("PRAGMA wal_autocheckpoint = 0")  # made by the checkpoint thread
        self._db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        self._db.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
        getlimit = getattr(self._db, "getlimit", None)  # Python 3.11 and later
        which = getattr(sqlite3, "SQLITE_LIMIT_VARIABLE_NUMBER", None)
        if getlimit is not None and which is not None:  # SQLite's limit of bound values (999 before SQLite 3.32)
            limit = getlimit(which)
            while self._rows_per_insert > 1 and 4 * self._rows_per_insert > limit:
                self._rows_per_insert //= 2
        else:
            self._rows_per_insert = 128
        if existing:
            try:
                check_event_log(self._db, path)
            except InputDataError:
                self._db.close()
                self._hold.close()
                raise
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS events (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                event_id TEXT NOT NULL UNIQUE,
                window INTEGER NOT NULL,
                received REAL NOT NULL,
                record TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS events_window ON events (window, seq);
            CREATE TABLE IF NOT EXISTS labels (
                event_id TEXT PRIMARY KEY,
                label INTEGER NOT NULL,
                received REAL NOT NULL
            );
            CREATE TABLE IF NOT EXISTS windows (
                window INTEGER PRIMARY KEY,
                events INTEGER NOT NULL,
                closed_at REAL NOT NULL,
                evaluated_at REAL,
                status TEXT,
                headline TEXT,
                score REAL
            );
            CREATE INDEX IF NOT EXISTS windows_waiting ON windows (closed_at) WHERE evaluated_at IS NULL;
            CREATE TABLE IF NOT EXISTS retention (
                window INTEGER PRIMARY KEY,
                deleted INTEGER NOT NULL DEFAULT 0,
                slimmed INTEGER NOT NULL DEFAULT 0,
                at REAL NOT NULL,
                unsaid_deleted INTEGER NOT NULL DEFAULT 0,
                unsaid_slimmed INTEGER NOT NULL DEFAULT 0
            );
            """
        )
        version = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if version is None:
            with self._db:
                self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif version[0] != SCHEMA_VERSION:
            raise InputDataError(f"{path}: an event log of another churnops version (schema {version[0]})")
        last_closed = self._db.execute("SELECT MAX(window) FROM windows").fetchone()[0]
        self.open_window = 0 if last_closed is None else int(last_closed) + 1
        self.open_count = int(
            self._db.execute("SELECT COUNT(*) FROM events WHERE window = ?", (self.open_window,)).fetchone()[0]
        )
        if self.open_count >= window_size:  # serve.window_size made smaller since the window opened
            logger.warning(
                "window %d holds %d events, serve.window_size is now %d: it is closed as it is, and the next "
                "windows take %d events",
                self.open_window,
                self.open_count,
                window_size,
                window_size,
            )
            self._close_open_window()

    def _close_open_window(self) -> int:
        """Record the open window as closed with the events it holds, and open the next; the window
        closed (the caller holds the lock)."""
        window = self.open_window
        with _not_written():
            self._db.execute(
                "INSERT INTO windows (window, events, closed_at) VALUES (?, ?, ?)",
                (window, self.open_count, time.time()),
            )
        self.open_window, self.open_count = window + 1, 0
        return window

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=BUSY_SECONDS)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA secure_delete = ON")  # what is deleted is overwritten: see wipe_deleted
        except sqlite3.DatabaseError as exc:
            raise InputDataError(f"{self.path}: not an event log churnops can use ({exc})") from None
        return db

    def append(self, events: Iterable[tuple[str | None, dict[str, Any]]], watch: Watch | None = None) -> Appended:
        """Write ``(event_id, record)`` pairs (``None``: the log makes the id), filling windows in
        order; returns once they are committed. ``watch`` sees the accepted events in log order
        and returns the state to keep with them (the sequential detectors'), saved in the same
        transaction."""
        return self.submit(events, watch).result()

    def submit(
        self, events: Iterable[tuple[str | None, dict[str, Any]]], watch: Watch | None = None
    ) -> Future[Appended]:
        """:meth:`append` without waiting: the future is done once the events are committed (or
        the transaction failed). The records are written as JSON here, in the caller's thread."""
        pairs = list(events)
        texts, columns = as_logged([record for _, record in pairs], watch.keys if watch is not None else ())
        return self.submit_texts([event_id for event_id, _ in pairs], texts, columns, watch)

    def submit_texts(
        self, ids: list[str | None], texts: list[str], columns: dict[str, list[Any]], watch: Watch | None = None
    ) -> Future[Appended]:
        """:meth:`submit` of records already written as JSON objects (``texts``, each from a
        checked record) with the values ``watch`` sees (``columns``: one list per key of the
        watch, in the order of ``ids``): what a worker process sends."""
        if len(texts) != len(ids) or (watch is not None and (
            set(columns) != set(watch.keys) or any(len(values) != len(ids) for values in columns.values())
        )):  # fmt: skip
            raise ValueError("one record and one value of each watched key for each event id")
        item = _Append(ids, texts, columns, ids.count(None) == len(ids), Future(), watch, sum(map(len, texts)))
        with self._writer_lock:
            if self._closed:
                raise InputDataError(f"{self.path}: the event log is closed")
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_appends, name="churnops-event-log", daemon=True)
                self._writer.start()
                self._checkpointer = threading.Thread(
                    target=self._checkpoints, name="churnops-event-log-checkpoints", daemon=True
                )
                self._checkpointer.start()
            self._queue.put(item)
        return item.future

    def _write_appends(self) -> None:
        """The writer thread: every append waiting (up to :data:`GROUP_EVENTS` events, with the
        same ``watch``) goes into one transaction."""
        held: Any = None
        while True:
            first = held if held is not None else self._queue.get()
            held = None
            if first is _STOP:
                return
            group, events = [first], len(first.ids)
            while events < GROUP_EVENTS:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP or item.watch is not first.watch:
                    held = item
                    break
                group.append(item)
                events += len(item.ids)
            group = [item for item in group if item.future.set_running_or_notify_cancel()]
            if group:
                self._write_group(group)

    def _write_group(self, group: list[_Append]) -> None:
        now = time.time()
        try:
            with self._lock:
                try:
                    answers = self._transaction(group, now, look_up_made=False)
                except _MadeIdTaken:
                    logger.warning("an event id made by the event log was taken by a client's; writing again")
                    answers = self._transaction(group, now, look_up_made=True)
        except BaseException as exc:  # every request of the transaction hears of it; the writer goes on
            failure: BaseException = exc
            if isinstance(exc, sqlite3.Error | OSError):
                failure = _refusal(exc)
                if not self._failing:
                    logger.error(
                        "%s: events could not be written (%s); each request is answered 503 until a write succeeds",
                        self.path, failure,
                    )  # fmt: skip
                    self._failing = True
            for item in group:
                item.future.set_exception(failure)
            return
        if self._failing:
            logger.warning("%s: events are written again", self.path)
            self._failing = False
        for item, answer in zip(group, answers, strict=True):
            item.future.set_result(answer)
        self._unchecked += sum(item.size for item in group)
        if self._unchecked >= CHECKPOINT_BYTES:
            self._unchecked = 0
            self._checkpoint_due.set()
            try:
                too_long = self._wal.stat().st_size > WAL_LIMIT
            except OSError:
                too_long = False
            if too_long:  # copied into the database file by now, but for the last pages
                with self._checkpointing, self._lock:  # after the other thread's checkpoint, not beside it
                    _checkpoint(self._db, self.path)

    def _checkpoints(self) -> None:
        """The checkpoint thread: on a connection of its own, copies the pages of the write-ahead
        log into the database file while the writer goes on (SQLite's passive checkpoint never
        waits for the writer nor holds it up), each time :data:`CHECKPOINT_BYTES` were written."""
        db: sqlite3.Connection | None = None
        try:
            while True:
                self._checkpoint_due.wait()
                self._checkpoint_due.clear()
                if self._closed:
                    return
                if db is None:
                    try:
                        db = sqlite3.connect(
                            self.path, check_same_thread=False, isolation_level=None, timeout=BUSY_SECONDS
                        )
                    except sqlite3.Error as exc:  # tried again at the next one
                        logger.warning("%s: cannot open the event log to copy its write-ahead log (%s)", self.path, exc)
                        continue
                with self._checkpointing:
                    _checkpoint(db, self.path)
        finally:
            if db is not None:
                db.close()

    def _transaction(self, group: list[_Append], now: float, look_up_made: bool) -> list[Appended]:
        """Write ``group`` in one transaction (the caller holds the lock); each append's answer."""
        self._db.execute("BEGIN IMMEDIATE")
        saw = False  # whether the watch saw the events
        try:
            known = self._known([event_id for item in group for event_id in item.ids if event_id is not None])
            made = self._ids.take(sum(item.ids.count(None) for item in group))
            used = 0  # of the made ids
            rows = _Rows()
            watch = group[0].watch
            fresh: dict[str, list[Any]] = {key: [] for key in watch.keys} if watch is not None else {}
            seen = 0  # events the watch is given
            windows = _Windows(self.open_window, self.open_count, self.window_size)
            answers = []
            for item in group:
                if item.made_only and not look_up_made:  # the common case, a slice at a time
                    ids = made[used : used + len(item.ids)]
                    used += len(ids)
                    closed = windows.fill(ids, item.texts, rows)
                    for key, values in fresh.items():
                        values += item.columns[key]
                    seen += len(ids)
                    answers.append(Appended(ids, [], closed, windows.open, ids))
                    continue
                ids, accepted, duplicates, texts, positions = [], [], [], [], []
                for position, (given, text) in enumerate(zip(item.ids, item.texts, strict=True)):
                    if given is None:
                        event_id = made[used]
                        used += 1
                        while look_up_made and (event_id in known or self._known([event_id])):
                            event_id = self._ids.take(1)[0]  # a client took it: another one
                    elif given in known:
                        ids.append(given)
                        duplicates.append(given)
                        continue
                    else:
                        event_id = given
                    known.add(event_id)
                    ids.append(event_id)
                    accepted.append(event_id)
                    texts.append(text)
                    positions.append(position)
                for key, values in fresh.items():
                    given_values = item.columns[key]
                    values += [given_values[position] for position in positions]
                seen += len(positions)
                closed = windows.fill(accepted, texts, rows)
                answers.append(Appended(accepted, duplicates, closed, windows.open, ids))
            try:
                self._insert(rows, now)
            except sqlite3.IntegrityError:
                if look_up_made:
                    raise
                raise _MadeIdTaken from None
            self._db.executemany(
                "INSERT INTO windows (window, events, closed_at) VALUES (?, ?, ?)",
                [(number, self.window_size, now) for number in windows.closed],
            )
            if watch is not None and seen:
                saw = True
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('detectors', ?)", (watch.see(fresh),))
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # SQLite may have rolled back itself (a full disk, an I/O error)
                self._db.execute("ROLLBACK")
            if saw and watch is not None and watch.undo is not None:
                watch.undo()
            raise
        if saw and watch is not None and watch.kept is not None:
            watch.kept()
        self.open_window, self.open_count = windows.open, windows.count
        return answers

    def _insert(self, rows: _Rows, now: float) -> None:
        """The events' rows, many per statement: a statement runs without the GIL, and row by row
        (``executemany``) the writer took the GIL back after every row - waiting for it each time
        while requests were being parsed. In chunks of :attr:`_rows_per_insert` (a power of two),
        the rest in halves of it, so that every statement's text is one SQLite has prepared."""
        size, start, count = self._rows_per_insert, 0, len(rows.ids)
        while start < count:
            while size > count - start:
                size //= 2
            statement = self._inserts.get(size)
            if statement is None:
                marks = ", ".join(["(?, ?, ?, ?)"] * size)
                statement = self._inserts[size] = (
                    f"INSERT INTO events (event_id, window, received, record) VALUES {marks}"
                )
            end = start + size
            values: list[Any] = [now] * (4 * size)  # event id, window, time received, record: row by row
            values[0::4] = rows.ids[start:end]
            values[1::4] = rows.windows[start:end]
            values[3::4] = rows.texts[start:end]
            self._db.execute(statement, values)
            start = end

    def close_open(self, older_than: float) -> int | None:
        """Close the open window when its first event arrived before ``older_than`` (a time) and
        it holds any event; the window closed, if one was."""
        with self._lock:
            if self.open_count == 0:
                return None
            first = self._db.execute("SELECT MIN(received) FROM events WHERE window = ?", (self.open_window,))
            started = first.fetchone()[0]
            if started is None or started > older_than:
                return None
            return self._close_open_window()

    def _known(self, ids: list[str], scored: bool | None = None) -> set[str]:
        """Which of ``ids`` the log holds (the caller holds the lock); ``scored`` False: only
        those ``/v1/predict`` did not score."""
        known: set[str] = set()
        only = f" AND json_extract(record, '$.\"{ARM}\"') IS NULL" if scored is False else ""
        for start in range(0, len(ids), 900):  # under SQLite's limit of bound values
            part = ids[start : start + 900]
            marks = ",".join("?" * len(part))
            query = f"SELECT event_id FROM events WHERE event_id IN ({marks}){only}"  # noqa: S608 - marks only
            known.update(row[0] for row in self._db.execute(query, part))
        return known

    def label(self, labels: list[tuple[str, int]]) -> tuple[int, list[str], list[str]]:
        """Record late outcomes by event id (a later one replaces an earlier one); how many were
        recorded, the ids of events the log does not hold, and those of recorded events that
        ``/v1/predict`` did not score (their outcome is kept, but no arm's numbers use it)."""
        now = time.time()
        latest = dict(labels)  # an event labelled twice in one request: its last label, counted once
        with self._lock:
            ids = list(latest)
            known = self._known(ids)
            unscored = self._known(list(known), scored=False)
            rows = [(event_id, label, now) for event_id, label in latest.items() if event_id in known]
            with _not_written(), self._immediate():
                self._db.executemany("INSERT OR REPLACE INTO labels VALUES (?, ?, ?)", rows)
        return (
            len(rows),
            [event_id for event_id in ids if event_id not in known],
            [event_id for event_id in ids if event_id in unscored],
        )

    def _read(self, query: str, parameters: tuple[Any, ...] = (), long: bool = False) -> list[Any]:
        """Rows of a read on a connection of its own: reads never wait for the writer (WAL), and
        a long one (``long``) never holds up a short one (the event loop's)."""
        with self._read_lock if long else self._peek_lock:
            return self._reading(long).execute(query, parameters).fetchall()

    def _reading(self, long: bool) -> sqlite3.Connection:
        """The read-only connection for long or short reads (the caller holds its lock)."""
        db = self._reader if long else self._peeker
        if db is None:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=BUSY_SECONDS)
            db.execute("PRAGMA query_only = ON")
            if long:
                self._reader = db
            else:
                self._peeker = db
        return db

    def labels_mark(self) -> tuple[int, int]:
        """A pair that changes whenever an outcome is recorded (their count, the newest row's id)."""
        rows = self._read("SELECT COUNT(*), COALESCE(MAX(rowid), 0) FROM labels")
        return int(rows[0][0]), int(rows[0][1])

    def version(self) -> int:
        """A number that changes whenever the log changes (SQLite's ``data_version`` seen from the
        reading connection): what was read from it before still holds while it is the same."""
        with self._read_lock:
            return int(self._reading(long=True).execute("PRAGMA data_version").fetchone()[0])

    def scored(self, limit: int, key: str | None = None) -> list[tuple[Any, Any, Any, Any, Any]]:
        """The latest ``limit`` scored events (:func:`read_scored`)."""
        with self._read_lock:
            return read_scored(self._reading(long=True), limit, key)

    def window_state(self, window: int) -> str:
        """``open`` (not closed yet), ``closed`` (not evaluated yet) or ``evaluated``."""
        rows = self._read("SELECT evaluated_at FROM windows WHERE window = ?", (window,))
        if not rows:
            return "open"
        return "closed" if rows[0][0] is None else "evaluated"

    def waiting(self) -> tuple[int, float | None]:
        """Closed windows not evaluated yet - waiting for the evaluator, or failed and to be tried
        again - and when the oldest of them closed (a Unix time; None when there is none). A
        partial index holds only those windows: this costs the same after millions of windows."""
        rows = self._read("SELECT COUNT(*), MIN(closed_at) FROM windows WHERE evaluated_at IS NULL")
        return int(rows[0][0]), None if rows[0][1] is None else float(rows[0][1])

    def last_evaluated(self) -> int | None:
        rows = self._read("SELECT MAX(window) FROM windows WHERE evaluated_at IS NOT NULL")
        return None if rows[0][0] is None else int(rows[0][0])

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock, _not_written():
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def detector_state(self) -> str | None:
        """The detectors' state saved with the last accepted events, if any."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'detectors'").fetchone()
        return None if row is None else str(row[0])

    def records(self, window: int) -> list[dict[str, Any]]:
        """The events of ``window``, in the order they were accepted."""
        rows = self._read(WINDOW_RECORDS, (window,), long=True)
        import orjson

        return [orjson.loads(text) for (text,) in rows]

    def event_ids(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT event_id FROM events ORDER BY seq")]

    def pending(self) -> list[int]:
        """Closed windows not evaluated yet (the service stopped before it could)."""
        with self._lock:
            rows = self._db.execute("SELECT window FROM windows WHERE evaluated_at IS NULL ORDER BY window")
            return [int(window) for (window,) in rows]

    def evaluated(self, window: int, status: str, headline: str, score: float) -> None:
        with self._lock, _not_written():
            self._db.execute(
                "UPDATE windows SET evaluated_at = ?, status = ?, headline = ?, score = ? WHERE window = ?",
                (time.time(), status, headline, score, window),
            )

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The last closed windows, newest first."""
        rows = self._read(
            "SELECT window, events, closed_at, evaluated_at, status, headline, score FROM windows "
            "ORDER BY window DESC LIMIT ?",
            (limit,),
        )
        keys = ("window", "events", "closed_at", "evaluated_at", "status", "headline", "score")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    @contextlib.contextmanager
    def _immediate(self) -> Iterator[None]:
        """One write transaction on the writer's connection (the caller holds the lock): committed
        when the block ends, rolled back when it raises - unless SQLite rolled back itself."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def size_on_disk(self) -> int:
        """Bytes of the log's file and of its write-ahead log (0 for one that cannot be read)."""
        size = 0
        for path in (self.path, self._wal):
            with contextlib.suppress(OSError):
                size += path.stat().st_size
        return size

    def total(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM events", long=True)[0][0])

    def prune(self, before: float, limit: int = PRUNE_EVENTS) -> tuple[int, int]:
        """Delete at most ``limit`` events of the oldest window that still has some, with their
        outcomes, when that window was evaluated and closed before ``before`` (Unix time):
        ``(window, events deleted)``; ``(-1, 0)`` when none is due, and ``(window, 0)`` when
        that window closed before ``before`` but is not evaluated yet: it holds back the later
        ones, as its events are evaluated again. The pages freed are reused by the next events,
        so that the file stops growing."""
        with self._lock, _not_written():
            oldest, row = self._oldest_closed()
            if row is None or row[1] >= before:
                return -1, 0
            if row[0] is None:
                return int(oldest), 0
            with self._busy(PRUNE_BUSY_SECONDS), self._immediate():
                last, count = self._db.execute(
                    "SELECT MAX(seq), COUNT(*) FROM (SELECT seq FROM events WHERE window = ? ORDER BY seq LIMIT ?)",
                    (oldest, limit),
                ).fetchone()
                due = "SELECT event_id FROM events WHERE window = ? AND seq <= ?"
                self._db.execute(f"DELETE FROM labels WHERE event_id IN ({due})", (oldest, last))  # noqa: S608
                self._db.execute("DELETE FROM events WHERE window = ? AND seq <= ?", (oldest, last))
                self._retained(oldest, "deleted", int(count))
        return int(oldest), int(count)

    def slim(
        self, before: float, keep: Iterable[str], customer: str | None = None, limit: int = SLIM_EVENTS
    ) -> tuple[int, int]:
        """Drop the inputs of at most ``limit`` events of the oldest window that still has some,
        when that window was evaluated and closed before ``before`` (``serve.keep_inputs``): each
        record keeps only the keys of ``keep`` it holds (the scores, the outcome) and, when an
        A/B arm scored it, its ``customer`` column (the arms count each customer once, whether
        or not they are on now); its id and window stay. ``(window, events slimmed)`` as
        :meth:`prune` gives them; events are slimmed in log order, so the last one slimmed marks
        where the next pass starts."""
        import orjson

        kept = frozenset(keep)
        scored = kept | {customer} if customer is not None else kept
        with self._lock, _not_written():
            through, row, oldest = self._oldest_unslimmed()
            if row is None or row[1] >= before:
                return -1, 0
            if row[0] is None:
                return oldest, 0
            with self._busy(PRUNE_BUSY_SECONDS), self._immediate():
                rows = self._db.execute(
                    "SELECT seq, record FROM events WHERE seq > ? AND window = ? ORDER BY seq LIMIT ?",
                    (through, oldest, limit),
                ).fetchall()
                slimmed = []
                for seq, text in rows:
                    try:
                        record = orjson.loads(text)
                    except orjson.JSONDecodeError:  # (the log's own writes are JSON objects)
                        record = {}
                    if not isinstance(record, dict):
                        record = {}
                    keys = scored if ARM in record else kept
                    slimmed.append((orjson.dumps({k: v for k, v in record.items() if k in keys}).decode(), seq))
                self._db.executemany("UPDATE events SET record = ? WHERE seq = ?", slimmed)
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('slimmed_through', ?)", (str(rows[-1][0]),))
                self._retained(oldest, "slimmed", len(rows))
        return oldest, len(rows)

    def _oldest_unslimmed(self) -> tuple[int, tuple[float | None, float] | None, int]:
        """Where the inputs left begin: the last event slimmed (its ``seq``; 0: none), the
        evaluation and closing times of the window of the next event (no such pair when that
        window is the open one, or no event is left to slim) and that window's number."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'slimmed_through'").fetchone()
        through = int(row[0]) if row is not None and str(row[0]).isdigit() else 0
        first = self._db.execute("SELECT window FROM events WHERE seq > ? ORDER BY seq LIMIT 1", (through,)).fetchone()
        if first is None or first[0] >= self.open_window:
            return through, None, -1
        times = self._db.execute("SELECT evaluated_at, closed_at FROM windows WHERE window = ?", (first[0],)).fetchone()
        return through, times, int(first[0])

    def oldest_unslimmed(self) -> tuple[int, float, bool] | None:
        """The oldest closed window whose events still hold their inputs, as :meth:`oldest_closed`."""
        with self._lock:
            _, row, window = self._oldest_unslimmed()
        return None if row is None else (window, float(row[1]), row[0] is not None)

    def _retained(self, window: int, what: str, count: int) -> None:
        """Record in the transaction under way that ``count`` events of ``window`` were deleted
        or slimmed (``what``), and that they are not said yet: a service killed before it could
        say so says it at its next start (:meth:`unsaid`) - those events, not the window's
        earlier ones, which were said."""
        self._db.execute(
            f"INSERT INTO retention (window, {what}, unsaid_{what}, at) VALUES (?, ?, ?, ?) "  # noqa: S608 - a column
            f"ON CONFLICT (window) DO UPDATE SET {what} = {what} + excluded.{what}, "
            f"unsaid_{what} = unsaid_{what} + excluded.{what}, at = excluded.at",
            (window, count, count, time.time()),
        )

    def unsaid(self) -> dict[int, tuple[int, int]]:
        """The events deleted or slimmed and not said since, by window: ``{window: (deleted,
        slimmed)}``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT window, unsaid_deleted, unsaid_slimmed FROM retention "
                "WHERE unsaid_deleted > 0 OR unsaid_slimmed > 0 ORDER BY window"
            )
            return {int(window): (int(deleted), int(slimmed)) for window, deleted, slimmed in rows}

    def said(self) -> None:
        """What :meth:`unsaid` gave is said now."""
        with self._lock, _not_written():
            self._db.execute(
                "UPDATE retention SET unsaid_deleted = 0, unsaid_slimmed = 0 "
                "WHERE unsaid_deleted > 0 OR unsaid_slimmed > 0"
            )

    def retained(self) -> tuple[int, int]:
        """Events deleted (``serve.keep_events``) and events whose inputs were dropped
        (``serve.keep_inputs``) in the log's whole life."""
        rows = self._read("SELECT COALESCE(SUM(deleted), 0), COALESCE(SUM(slimmed), 0) FROM retention")
        return int(rows[0][0]), int(rows[0][1])

    def _oldest_closed(self) -> tuple[int, tuple[float | None, float] | None]:
        """The oldest window that still has events, with when it was evaluated (None: not yet)
        and closed; no such pair when that window is the open one (or there are no events)."""
        oldest = self._db.execute("SELECT MIN(window) FROM events").fetchone()[0]
        if oldest is None or oldest >= self.open_window:
            return -1, None
        row = self._db.execute("SELECT evaluated_at, closed_at FROM windows WHERE window = ?", (oldest,)).fetchone()
        return int(oldest), row

    def oldest_closed(self) -> tuple[int, float, bool] | None:
        """The oldest closed window that still has events: its number, when it closed (Unix time;
        its events are deleted that long after, :meth:`prune`) and whether it is evaluated. None
        when no closed window has events."""
        with self._lock:
            window, row = self._oldest_closed()
        return None if row is None else (window, float(row[1]), row[0] is not None)

    def wipe_deleted(self) -> bool:
        """After events were deleted (:meth:`prune`): copy the write-ahead log into the database
        file and empty it, so that no copy of the deleted records stays on disk - the database's
        pages are overwritten with zeros as rows are deleted (``secure_delete``), while the
        write-ahead log still holds the pages as they were. Never waits: a reader in the middle
        of a read (the window evaluator) keeps the write-ahead log until the next call; False then."""
        with self._lock, self._checkpointing, self._busy(0):
            try:
                busy = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.Error as exc:
                logger.debug("%s: the write-ahead log could not be emptied (%s)", self.path, exc)
                busy = 1
        return not busy

    @contextlib.contextmanager
    def _busy(self, seconds: float) -> Iterator[None]:
        """The writer's connection waiting at most ``seconds`` for a lock held elsewhere, for the
        block (the caller holds the lock), then :data:`BUSY_SECONDS` again."""
        self._db.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
        try:
            yield
        finally:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_SECONDS * 1000}")

    def close(self) -> None:
        """Write what is waiting, stop the writer, close the connections and let the log go."""
        with self._writer_lock:
            self._closed = True
            writer = self._writer
        if writer is not None:
            self._queue.put(_STOP)
            writer.join()
        if self._checkpointer is not None:
            self._checkpoint_due.set()
            self._checkpointer.join()
        for lock, name in ((self._read_lock, "_reader"), (self._peek_lock, "_peeker")):
            with lock:
                reader = getattr(self, name)
                if reader is not None:
                    reader.close()
        with self._lock:
            self._db.close()
        self._hold.close()


WINDOW_RECORDS = "SELECT record FROM events WHERE window = ? ORDER BY seq"


class LogReader:
    """A read-only view of an event log another process holds (the process that evaluates the
    service's windows): it reads closed windows' events and never writes, nor takes the log's lock."""

    def __init__(self, path: Path) -> None:
        if path.is_symlink() or not path.is_file():
            raise InputDataError(f"{path}: not the event log's file")
        from urllib.parse import quote

        self.path = path
        self._db = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA query_only = ON")
        try:
            check_event_log(self._db, path)
        except InputDataError:
            self._db.close()
            raise

    def _rows(self, query: str, parameters: tuple[Any, ...]) -> list[Any]:
        try:
            return self._db.execute(query, parameters).fetchall()
        except sqlite3.DatabaseError as exc:  # a damaged or tampered log
            raise _unreadable(exc) from None

    def is_closed(self, window: int) -> bool:
        """Whether ``window`` is closed (only a closed window is evaluated)."""
        return bool(self._rows("SELECT 1 FROM windows WHERE window = ?", (window,)))

    def records(self, window: int) -> list[dict[str, Any]]:
        """The events of ``window``, in the order they were accepted."""
        import orjson

        return [orjson.loads(text) for (text,) in self._rows(WINDOW_RECORDS, (window,))]

    def close(self) -> None:
        self._db.close()


def read_scored(db: sqlite3.Connection, limit: int, key: str | None = None) -> list[tuple[Any, Any, Any, Any, Any]]:
    """``(arm, version, probability, label or None, customer or None)`` of the latest ``limit``
    events ``POST /v1/predict`` scored and of the latest ``limit`` of them labelled (an outcome
    arrives weeks after its scoring, when many newer events were scored), newest first; ``key``:
    the column that names the customer (``serve.ab.key``)."""
    customer = '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"' if key is not None else None
    columns = (
        "json_extract(events.record, :arm) AS arm, json_extract(events.record, :version) AS version, "
        "json_extract(events.record, :probability) AS probability, labels.label AS label, "
        "CASE WHEN :customer IS NULL OR json_type(events.record, :customer) IN ('true', 'false') THEN NULL "
        "ELSE json_extract(events.record, :customer) END AS customer, "
        "events.seq AS seq"
    )
    scored = "json_valid(events.record) AND json_extract(events.record, :arm) IS NOT NULL"
    query = (
        f"SELECT arm, version, probability, label, customer FROM ("
        f"SELECT * FROM (SELECT {columns} FROM events LEFT JOIN labels USING (event_id) WHERE {scored} "
        f"ORDER BY events.seq DESC LIMIT :limit) UNION "
        f"SELECT * FROM (SELECT {columns} FROM labels JOIN events USING (event_id) WHERE {scored} "
        f"ORDER BY events.seq DESC LIMIT :limit)) ORDER BY seq DESC"
    )
    parameters = {
        "arm": f'$."{ARM}"',
        "version": f'$."{MODEL_VERSION}"',
        "probability": f'$."{PROBABILITY}"',
        "customer": customer,
        "limit": limit,
    }
    try:
        return db.execute(query, parameters).fetchall()
    except sqlite3.DatabaseError as exc:  # a damaged or tampered log
        raise _unreadable(exc) from None


def _unreadable(exc: sqlite3.DatabaseError) -> InputDataError:
    return InputDataError(f"the event log cannot be read: {str(exc).splitlines()[0][:200]}")


EXPECTED_TABLES = {
    "meta": ["key", "value"],
    "events": ["seq", "event_id", "window", "received", "record"],
    "windows": ["window", "events", "closed_at", "evaluated_at", "status", "headline", "score"],
    "labels": ["event_id", "label", "received"],
    "retention": ["window", "deleted", "slimmed", "at", "unsaid_deleted", "unsaid_slimmed"],
}
ADDED_TABLES = frozenset({"retention"})
"""Tables a log of the same schema made by an earlier churnops lacks: created when it is opened."""


def _checkpoint(db: sqlite3.Connection, path: Path) -> None:
    """A passive checkpoint of the event log at ``path`` on ``db``; a failure is said and left to
    the next one (the events are safe in the write-ahead log)."""
    try:
        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error as exc:
        logger.warning(
            "%s: the write-ahead log could not be copied into the event log (%s); tried again later", path, exc
        )


def check_event_log(db: sqlite3.Connection, path: Path) -> None:
    """Refuse a database that is not an event log this code wrote (its tables, its columns)."""
    try:
        tables = {
            name
            for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name != "sqlite_sequence"
        }
        columns = {t: [row[1] for row in db.execute(f"PRAGMA table_info({t})")] for t in tables & set(EXPECTED_TABLES)}
    except sqlite3.DatabaseError as exc:
        raise InputDataError(f"{path}: not an event log churnops can use ({exc})") from None
    if not set(EXPECTED_TABLES) - ADDED_TABLES <= tables <= set(EXPECTED_TABLES) or any(
        columns[t] != EXPECTED_TABLES[t] for t in tables
    ):
        raise InputDataError(
            f"{path}: a database that is not churnops' event log (tables: "
            f"{', '.join(sorted(tables)) or 'none'}); set serve.event_log to a new file"
        )


def _no_links(path: Path) -> None:
    """Refuse an event log, or one of its write-ahead files, that is a symbolic link: SQLite
    would write through it (or fail with an internal error)."""
    import stat

    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = each.lstat().st_mode
        except OSError:
            continue
        if stat.S_ISLNK(mode):
            raise InputDataError(
                f"{each}: a symbolic link where churnops keeps the event log's files, which are never links; remove it"
            )


def _probe(path: Path) -> None:
    """Check that ``path`` is an event log before it is opened for writing: the writing
    connection switches a database to write-ahead logging, which changed another program's
    database that was then refused. Read through a connection that changes nothing."""
    try:
        probe = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise InputDataError(f"{path}: not an event log churnops can use ({exc})") from None
    try:
        check_event_log(probe, path)
    finally:
        probe.close()


def _private(path: Path) -> None:
    """Create the event log readable by its owner alone (it keeps every record sent: customers'
    data); SQLite gives its write-ahead files the same mode. A log made readable by others
    before is said once, and left as it is."""
    import os
    import stat

    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        os.close(os.open(path, flags, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise InputDataError(f"{path}: cannot create the event log: {exc.strerror or exc}") from None
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = each.lstat().st_mode
        except OSError:
            continue  # no write-ahead file yet: SQLite makes it with the log's mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            logger.warning(
                "%s can be read by other users of this machine (mode %s) and holds events' records; "
                "chmod 600 it (and the log's -wal and -shm files) unless that is wanted",
                each,
                stat.filemode(mode),
            )


def _exclusive(path: Path) -> Any:
    """An exclusive lock on ``<log>.lock`` for as long as the returned file stays open; a second
    service (or consumer) on the same log is refused."""
    import fcntl
    import os

    lock = path.with_name(path.name + ".lock")
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(lock, flags, 0o600)
    except OSError as exc:
        raise InputDataError(f"{lock}: cannot open the event log's lock: {exc.strerror or exc}") from None
    handle = os.fdopen(descriptor, "r+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise InputDataError(
            f"{path}: the event log is in use by another churnops serve or consume; stop it, or set serve.event_log "
            "to another file"
        ) from None
    return handle
