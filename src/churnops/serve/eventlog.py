"""The service's append-only event log: SQLite in write-ahead-log mode.

Every accepted event is in the log, in its window, before the request is answered: one
transaction per request, committed with ``synchronous = FULL`` (the commit is on disk when the
answer leaves; a killed process or a lost machine loses no acknowledged event). An event id is
stored once: a retried request is counted once (``duplicates`` in the answer).

Why SQLite rather than Parquet files rolled per window: an acknowledged event must be durable
one request at a time, and Parquet cannot append to a file (one small file per request, or
events held in memory until the window closes - lost on a kill). SQLite's write-ahead log
appends each transaction to one file, reads the open window back after a restart with one
indexed query, and keeps event ids unique by a constraint. Records are stored as JSON text that
churnops wrote itself after validating it; nothing in the file is executed or unpickled.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnops.errors import InputDataError

SCHEMA_VERSION = "2"
PROBABILITY = "churn_probability"
"""The key under which a scored event keeps its probability in the event log."""
ARM = "churnops_arm"
"""The key under which a scored event keeps the arm that scored it."""
MODEL_VERSION = "churnops_model_version"
"""The key under which a scored event keeps the registered version of the model that scored it."""


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


class EventLog:
    """Events by window; one open window at a time, closed when it holds ``window_size`` events."""

    def __init__(self, path: Path, window_size: int) -> None:
        if path.is_symlink():
            raise InputDataError(f"{path}: is a symbolic link; the event log is never opened through one")
        if path.exists() and not path.is_file():
            raise InputDataError(f"{path}: is not a file")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.window_size = window_size
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        self._hold = _exclusive(path)  # one service per event log: a second one would mix windows
        existing = path.exists() and path.stat().st_size > 0
        self._db = self._connect()
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

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
        except sqlite3.DatabaseError as exc:
            raise InputDataError(f"{self.path}: not an event log churnops can use ({exc})") from None
        return db

    def append(
        self, events: Iterable[tuple[str, dict[str, Any]]], observe: Callable[[list[dict[str, Any]]], str] | None = None
    ) -> Appended:
        """Write ``(event_id, record)`` pairs in one transaction, filling windows in order.
        ``observe`` sees the accepted records in log order and returns the state to keep with
        them (the sequential detectors'), saved in the same transaction."""
        import orjson

        pairs = list(events)
        now = time.time()
        with self._lock:
            window, count = self.open_window, self.open_count
            self._db.execute("BEGIN IMMEDIATE")
            try:
                known = self._known([event_id for event_id, _ in pairs])
                accepted: list[str] = []
                duplicates: list[str] = []
                closed: list[int] = []
                rows = []
                for event_id, record in pairs:
                    if event_id in known:
                        duplicates.append(event_id)
                        continue
                    known.add(event_id)
                    accepted.append(event_id)
                    rows.append((event_id, window, now, orjson.dumps(record).decode()))
                    count += 1
                    if count >= self.window_size:
                        closed.append((window, count))
                        window, count = window + 1, 0
                self._db.executemany(
                    "INSERT INTO events (event_id, window, received, record) VALUES (?, ?, ?, ?)", rows
                )
                self._db.executemany(
                    "INSERT INTO windows (window, events, closed_at) VALUES (?, ?, ?)",
                    [(number, events, now) for number, events in closed],
                )
                if observe is not None and accepted:
                    fresh = set(accepted)
                    state = observe([record for event_id, record in pairs if event_id in fresh])
                    self._db.execute("INSERT OR REPLACE INTO meta VALUES ('detectors', ?)", (state,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self.open_window, self.open_count = window, count
        return Appended(accepted, duplicates, [number for number, _ in closed], window)

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
            window = self.open_window
            self._db.execute(
                "INSERT INTO windows (window, events, closed_at) VALUES (?, ?, ?)",
                (window, self.open_count, time.time()),
            )
            self.open_window, self.open_count = window + 1, 0
            return window

    def _known(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` the log holds (the caller holds the lock)."""
        known: set[str] = set()
        for start in range(0, len(ids), 900):  # under SQLite's limit of bound values
            part = ids[start : start + 900]
            marks = ",".join("?" * len(part))
            query = f"SELECT event_id FROM events WHERE event_id IN ({marks})"  # noqa: S608 - marks only
            known.update(row[0] for row in self._db.execute(query, part))
        return known

    def label(self, labels: list[tuple[str, int]]) -> tuple[int, list[str]]:
        """Record late outcomes by event id (a later one replaces an earlier one); how many were
        recorded, and the ids of events the log does not hold."""
        now = time.time()
        with self._lock:
            ids = [event_id for event_id, _ in labels]
            known = self._known(ids)
            rows = [(event_id, label, now) for event_id, label in labels if event_id in known]
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO labels VALUES (?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(rows), [event_id for event_id in ids if event_id not in known]

    def scored(self, limit: int) -> list[tuple[Any, Any, Any, Any]]:
        """The latest ``limit`` scored events (:func:`read_scored`)."""
        with self._read_lock:  # its own connection: a long read never holds up appends (WAL)
            if self._reader is None:
                self._reader = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
                self._reader.execute("PRAGMA query_only = ON")
            return read_scored(self._reader, limit)

    def window_state(self, window: int) -> str:
        """``open`` (not closed yet), ``closed`` (not evaluated yet) or ``evaluated``."""
        with self._lock:
            row = self._db.execute("SELECT evaluated_at FROM windows WHERE window = ?", (window,)).fetchone()
        if row is None:
            return "open"
        return "closed" if row[0] is None else "evaluated"

    def last_evaluated(self) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT MAX(window) FROM windows WHERE evaluated_at IS NOT NULL").fetchone()
        return None if row[0] is None else int(row[0])

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def detector_state(self) -> str | None:
        """The detectors' state saved with the last accepted events, if any."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'detectors'").fetchone()
        return None if row is None else str(row[0])

    def records(self, window: int) -> list[dict[str, Any]]:
        """The events of ``window``, in the order they were accepted."""
        with self._lock:
            rows = self._db.execute("SELECT record FROM events WHERE window = ? ORDER BY seq", (window,)).fetchall()
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
        with self._lock:
            self._db.execute(
                "UPDATE windows SET evaluated_at = ?, status = ?, headline = ?, score = ? WHERE window = ?",
                (time.time(), status, headline, score, window),
            )

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The last closed windows, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT window, events, closed_at, evaluated_at, status, headline, score FROM windows "
                "ORDER BY window DESC LIMIT ?",
                (limit,),
            ).fetchall()
        keys = ("window", "events", "closed_at", "evaluated_at", "status", "headline", "score")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def total(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def close(self) -> None:
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
        with self._lock:
            self._db.close()
        self._hold.close()


def read_scored(db: sqlite3.Connection, limit: int) -> list[tuple[Any, Any, Any, Any]]:
    """``(arm, version, probability, label or None)`` of the latest ``limit`` events
    ``POST /v1/predict`` scored, newest first."""
    try:
        return db.execute(
            "SELECT json_extract(events.record, ?), json_extract(events.record, ?), json_extract(events.record, ?), "
            "labels.label FROM events LEFT JOIN labels USING (event_id) WHERE json_valid(events.record) AND "
            "json_extract(events.record, ?) IS NOT NULL ORDER BY events.seq DESC LIMIT ?",
            (f'$."{ARM}"', f'$."{MODEL_VERSION}"', f'$."{PROBABILITY}"', f'$."{ARM}"', limit),
        ).fetchall()
    except sqlite3.DatabaseError as exc:  # a damaged or tampered log
        raise InputDataError(f"the event log cannot be read: {str(exc).splitlines()[0][:200]}") from None


EXPECTED_TABLES = {
    "meta": ["key", "value"],
    "events": ["seq", "event_id", "window", "received", "record"],
    "windows": ["window", "events", "closed_at", "evaluated_at", "status", "headline", "score"],
    "labels": ["event_id", "label", "received"],
}


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
    if tables != set(EXPECTED_TABLES) or any(columns[t] != EXPECTED_TABLES[t] for t in EXPECTED_TABLES):
        raise InputDataError(
            f"{path}: a database that is not churnops' event log (tables: "
            f"{', '.join(sorted(tables)) or 'none'}); set serve.event_log to a new file"
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
