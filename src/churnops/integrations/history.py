"""Monitoring history: every run appended to a database (SQLite by default, any SQLAlchemy URL).

The schema is versioned: ``churnops_schema`` holds the version, and :data:`MIGRATIONS` are
applied in order, each in its own transaction, when a store is opened - an old database is
upgraded in place and keeps its rows.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from churnops.errors import ConfigError, IntegrationError
from churnops.escape import one_line_short

logger = logging.getLogger(__name__)

MIGRATIONS: list[list[str]] = [
    [  # 1: runs and their column results
        """CREATE TABLE runs (
            run_id VARCHAR(64) PRIMARY KEY,
            created_at VARCHAR(40) NOT NULL,
            engine VARCHAR(20) NOT NULL,
            reference_path TEXT,
            reference_sha256 VARCHAR(64),
            current_path TEXT,
            current_sha256 VARCHAR(64),
            current_rows INTEGER,
            dataset_score FLOAT NOT NULL,
            dataset_threshold FLOAT NOT NULL,
            drift_detected BOOLEAN NOT NULL,
            n_drifted INTEGER NOT NULL,
            n_columns INTEGER NOT NULL,
            quality_score FLOAT,
            quality_passed BOOLEAN,
            target_column VARCHAR(200),
            reference_rate FLOAT,
            current_rate FLOAT,
            report_path TEXT
        )""",
        """CREATE TABLE column_results (
            run_id VARCHAR(64) NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
            column_name VARCHAR(500) NOT NULL,
            column_type VARCHAR(20) NOT NULL,
            test VARCHAR(40) NOT NULL,
            statistic FLOAT,
            p_value FLOAT,
            threshold FLOAT NOT NULL,
            drift_detected BOOLEAN NOT NULL,
            PRIMARY KEY (run_id, column_name)
        )""",
        "CREATE INDEX ix_runs_created_at ON runs (created_at)",
    ],
    [  # 2: model performance, when a model is monitored
        "ALTER TABLE runs ADD COLUMN realized_auc FLOAT",
        "ALTER TABLE runs ADD COLUMN estimated_auc FLOAT",
    ],
    [  # 3: the run's verdict (alert, warning or ok) and whether it raised the trigger
        "ALTER TABLE runs ADD COLUMN verdict VARCHAR(10)",
        "ALTER TABLE runs ADD COLUMN alerts TEXT",
    ],
    [  # 4: how the run decided, where it drifted (segments, multivariate) and its time chunks
        "ALTER TABLE runs ADD COLUMN verdict_mode VARCHAR(12)",
        "ALTER TABLE runs ADD COLUMN segments_detected TEXT",
        "ALTER TABLE runs ADD COLUMN multivariate_detected BOOLEAN",
        "ALTER TABLE runs ADD COLUMN multivariate_auc FLOAT",
        "ALTER TABLE runs ADD COLUMN chunks_detected INTEGER",
        """CREATE TABLE chunk_results (
            run_id VARCHAR(64) NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
            chunk_label VARCHAR(40) NOT NULL,
            start_at VARCHAR(40) NOT NULL,
            end_at VARCHAR(40) NOT NULL,
            n_rows INTEGER NOT NULL,
            tested BOOLEAN NOT NULL,
            share FLOAT NOT NULL,
            drift_detected BOOLEAN NOT NULL,
            drifted_columns TEXT,
            PRIMARY KEY (run_id, chunk_label)
        )""",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)


class _Database:
    """The few operations the store needs, on SQLAlchemy or - for a plain ``sqlite:///`` file, the
    default - on Python's own ``sqlite3`` (the same SQL text and ``:name`` parameters; importing
    SQLAlchemy costs more than the whole history write)."""

    errors: tuple[type[BaseException], ...]
    insertion_order: str | None = None
    """A column that keeps the order rows were written in (SQLite's ``rowid``), which no edit of
    a row's text moves; None: the runs are ordered by their recorded time."""

    def transaction(self) -> Any:
        raise NotImplementedError

    def table_names(self, connection: Any) -> set[str]:
        raise NotImplementedError

    def triggers(self, connection: Any) -> list[str]:
        """The triggers on churnops' tables (churnops creates none: one that rewrites what a run
        records - a verdict turned 'ok' - is refused). Databases whose catalogue is not known here
        give none."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @staticmethod
    def detail(exc: BaseException) -> str:
        return str(getattr(exc, "orig", None) or exc or exc.__class__.__name__)


class _SqliteConnection:
    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        if isinstance(params, list):
            self._connection.executemany(sql, params)
            return []
        cursor = self._connection.execute(sql, params or {})
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


SQLITE_SCHEMA = "SELECT type, name, sql FROM sqlite_master"
_CREATE_TRIGGER = re.compile(r"\s*CREATE\s+(?:TEMP\s+|TEMPORARY\s+)?TRIGGER\b", re.IGNORECASE)


def _sqlite_triggers(rows: list[dict[str, Any]]) -> list[str]:
    """Triggers among the schema's entries - and any entry that is no table or index: the schema
    table itself can be edited (``PRAGMA writable_schema``), and SQLite runs a trigger whose entry
    is typed otherwise, as it reads the ``sql`` text.

    >>> _sqlite_triggers([{"type": "table", "name": "runs", "sql": "CREATE TABLE runs (trigger_x INT)"},
    ...                   {"type": "TRIGGER", "name": "t1", "sql": "create  trigger t1 AFTER INSERT ON runs ..."},
    ...                   {"type": "table", "name": "t2", "sql": "\\n CREATE TEMP TRIGGER t2 ..."}])
    ['t1', 't2']
    """
    return [
        str(row["name"])
        for row in rows
        if str(row["type"]).lower() not in ("table", "index") or _CREATE_TRIGGER.match(str(row["sql"] or ""))
    ]


class _Sqlite(_Database):
    insertion_order = "rowid"

    def __init__(self, path: str) -> None:
        import sqlite3

        self.errors = (sqlite3.Error,)
        try:
            # isolation_level=None: transactions are the explicit BEGIN/COMMIT below, DDL included
            self._connection = sqlite3.connect(path, isolation_level=None, timeout=5.0)
            self._connection.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise IntegrationError(f"history database {path}: {exc}") from None

    @contextmanager
    def transaction(self) -> Iterator[_SqliteConnection]:
        self._connection.execute("BEGIN")
        try:
            yield _SqliteConnection(self._connection)
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")

    def table_names(self, connection: _SqliteConnection) -> set[str]:
        return {row["name"] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def triggers(self, connection: _SqliteConnection) -> list[str]:
        return _sqlite_triggers(connection.execute(SQLITE_SCHEMA))

    def close(self) -> None:
        self._connection.close()


class _SqlAlchemyConnection:
    def __init__(self, connection: Any, sa: Any) -> None:
        self._connection, self._sa = connection, sa

    def execute(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        result = self._connection.execute(self._sa.text(sql), params or {})
        return [dict(row._mapping) for row in result] if result.returns_rows else []


class _SqlAlchemy(_Database):
    def __init__(self, url: str) -> None:
        try:
            import sqlalchemy
        except ImportError:  # pragma: no cover - sqlalchemy is a core dependency
            raise IntegrationError("the history store needs SQLAlchemy: pip install sqlalchemy") from None
        self._sa = sqlalchemy
        self.errors = (sqlalchemy.exc.SQLAlchemyError,)
        try:
            self.engine = sqlalchemy.create_engine(url, future=True)
        except (sqlalchemy.exc.ArgumentError, ImportError, ValueError) as exc:
            raise ConfigError(f"history.url: cannot use '{_hide_password(url)}': {exc}") from None
        if self.engine.dialect.name == "sqlite":

            @sqlalchemy.event.listens_for(self.engine, "connect")
            def _foreign_keys(connection: Any, _: Any) -> None:
                connection.execute("PRAGMA foreign_keys=ON")

    @contextmanager
    def transaction(self) -> Iterator[_SqlAlchemyConnection]:
        with self.engine.begin() as connection:
            yield _SqlAlchemyConnection(connection, self._sa)

    def table_names(self, connection: _SqlAlchemyConnection) -> set[str]:
        return set(self._sa.inspect(connection._connection).get_table_names())

    def triggers(self, connection: _SqlAlchemyConnection) -> list[str]:
        dialect = self.engine.dialect.name
        if dialect == "sqlite":
            return _sqlite_triggers(connection.execute(SQLITE_SCHEMA))
        if dialect in ("postgresql", "mysql", "mariadb"):
            rows = connection.execute(
                "SELECT trigger_name AS name FROM information_schema.triggers WHERE event_object_table IN "
                "('runs', 'column_results', 'chunk_results', 'churnops_schema')"
            )
            return [str(row["name"]) for row in rows]
        return []

    def close(self) -> None:
        self.engine.dispose()


def _database(url: str) -> _Database:
    """Python's sqlite3 for a plain ``sqlite:///file`` URL, SQLAlchemy for any other."""
    match = re.fullmatch(r"sqlite:///([^?]+)", url)
    if match is not None and not match.group(1).startswith(":memory:"):
        from urllib.parse import unquote

        return _Sqlite(unquote(match.group(1)))  # %XX decoded, as SQLAlchemy does
    return _SqlAlchemy(url)


def _hide_password(url: str) -> str:
    """
    >>> _hide_password("postgresql://user:secret@db/churn")
    'postgresql://user:***@db/churn'
    """
    if "://" in url and "@" in url.split("://", 1)[1]:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


LARGEST = 1e300
"""Statistics beyond this are infinities written as the largest float (JSON has no infinity)."""


def _clean(value: Any) -> Any:
    """A number the history can store and chart: non-finite and overflowing values become None."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float) and (not math.isfinite(value) or abs(value) >= LARGEST):
        return None
    return value


BOOLEAN_COLUMNS = ("drift_detected", "quality_passed", "multivariate_detected", "tested")
TEXT_COLUMNS = (
    "run_id", "created_at", "engine", "reference_path", "reference_sha256", "current_path", "current_sha256",
    "target_column", "report_path", "verdict", "alerts", "verdict_mode", "segments_detected", "column_name",
    "column_type", "test", "chunk_label", "start_at", "end_at", "drifted_columns",
)  # fmt: skip
INTEGER_COLUMNS = ("current_rows", "n_drifted", "n_columns", "chunks_detected", "n_rows")
FLOAT_COLUMNS = (
    "dataset_score", "dataset_threshold", "quality_score", "reference_rate", "current_rate", "realized_auc",
    "estimated_auc", "multivariate_auc", "statistic", "p_value", "threshold", "share",
)  # fmt: skip
SHOWN_PROBLEMS = 5
"""Runs named one by one in the warnings of one read; the others are counted."""


def _read_back(key: str, value: Any) -> tuple[Any, bool]:
    """A value read from the history as the type churnops writes in that column, and whether it
    was one (None for a value of another type: text where a number goes, bytes, an infinity).

    >>> _read_back("drift_detected", 1), _read_back("dataset_score", "abc"), _read_back("n_columns", 7.0)
    ((True, True), (None, False), (None, False))
    """
    if value is None:
        return None, True
    if key in TEXT_COLUMNS:
        return (value, True) if isinstance(value, str) else (None, False)
    if key in BOOLEAN_COLUMNS:  # SQLite gives booleans back as 0/1
        return (bool(value), True) if isinstance(value, int) and value in (0, 1) else (None, False)
    if key in INTEGER_COLUMNS:
        return (value, True) if isinstance(value, int) and not isinstance(value, bool) else (None, False)
    if key in FLOAT_COLUMNS:
        usable = isinstance(value, int | float) and not isinstance(value, bool) and _clean(value) is not None
        return (float(value), True) if usable else (None, False)
    return value, True


def _timestamp(value: Any) -> bool:
    """Whether ``value`` is a time as churnops records it (ISO 8601 with its offset)."""
    from datetime import datetime

    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d", value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _checked(rows: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """``rows`` with every value of a type churnops does not write in its column made None, with
    one warning per run naming the run and those columns; a row without a usable run id is left
    out. The history is a file anyone with access may have edited: it is read as untrusted."""
    from churnops.escape import one_line_short

    kept, problems, unnamed = [], [], 0
    for row in rows:
        bad = []
        for key, value in row.items():
            row[key], usable = _read_back(key, value)
            if not usable or (key == "created_at" and value is not None and not _timestamp(value)):
                row[key] = None
                bad.append(key)
        if not isinstance(row.get("run_id"), str) or not row["run_id"]:
            unnamed += 1
            continue
        if bad:
            problems.append((row["run_id"], bad))
        kept.append(row)
    for run_id, bad in problems[:SHOWN_PROBLEMS]:
        logger.warning(
            "history %s: run %s holds values churnops does not write in %s; shown as empty",
            where,
            one_line_short(run_id),
            ", ".join(bad),
        )
    if len(problems) > SHOWN_PROBLEMS:
        logger.warning(
            "history %s: %d more runs hold such values; shown as empty", where, len(problems) - SHOWN_PROBLEMS
        )
    if unnamed:
        logger.warning("history %s: %d rows without a usable run id left out", where, unnamed)
    return kept


def run_rows(metrics: dict[str, Any], version: int = SCHEMA_VERSION) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``runs`` row and the ``column_results`` rows of one metrics document."""
    drift = metrics["dataset_drift"]
    target = metrics.get("target_drift") or {}
    quality = metrics.get("data_quality") or {}
    performance = metrics.get("model") or {}
    run = {
        "run_id": metrics["run_id"],
        "created_at": metrics["created_at"],
        "engine": metrics["engine"],
        "reference_path": metrics["reference"].get("path"),
        "reference_sha256": metrics["reference"].get("sha256"),
        "current_path": metrics["current"].get("path"),
        "current_sha256": metrics["current"].get("sha256"),
        "current_rows": metrics["current"].get("rows"),
        "dataset_score": _clean(drift["score"]) or 0.0,
        "dataset_threshold": drift["threshold"],
        "drift_detected": bool(drift["detected"]),
        "n_drifted": len(drift["drifted_columns"]),
        "n_columns": drift["n_columns"],
        "quality_score": _clean(quality.get("score")),
        "quality_passed": quality.get("passed"),
        "target_column": target.get("column"),
        "reference_rate": _clean(target.get("reference_rate")),
        "current_rate": _clean(target.get("current_rate")),
        "report_path": (metrics.get("outputs") or {}).get("report"),
    }
    if version >= 2:
        run["realized_auc"] = _clean((performance.get("realized") or {}).get("roc_auc"))
        run["estimated_auc"] = _clean((performance.get("estimated") or {}).get("roc_auc"))
    if version >= 3:
        verdict = metrics.get("verdict") or {}
        run["verdict"] = verdict.get("status")
        run["alerts"] = ", ".join(r["kind"] for r in verdict.get("reasons", []) if r.get("severity") == "alert") or None
    if version >= 4:
        run["verdict_mode"] = drift.get("verdict", "evidently")
        segments = metrics.get("segments") or {}
        found = [f"{d['column']} = {d['value']}" for d in segments.get("detected", [])]
        run["segments_detected"] = "; ".join(found) if found else None
        classifier = (metrics.get("multivariate") or {}).get("domain_classifier") or {}
        detectors = [d for d in (metrics.get("multivariate") or {}).values() if isinstance(d, dict)]
        run["multivariate_detected"] = any(d.get("drift_detected") for d in detectors) if detectors else None
        run["multivariate_auc"] = _clean(classifier.get("statistic"))
        chunks = metrics.get("chunks")
        run["chunks_detected"] = len(chunks["detected"]) if chunks else None
    columns = [
        {
            "run_id": metrics["run_id"],
            "column_name": name,
            "column_type": column["type"],
            "test": column["test"],
            "statistic": _clean(column.get("statistic")),
            "p_value": _clean(column.get("p_value")),
            "threshold": column["threshold"],
            "drift_detected": bool(column["drift_detected"]),
        }
        for name, column in metrics.get("columns", {}).items()
    ]
    return run, columns


def chunk_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``chunk_results`` rows of one metrics document (none without ``drift.chunk_by``)."""
    return [
        {
            "run_id": metrics["run_id"],
            "chunk_label": group["label"],
            "start_at": group["start"],
            "end_at": group["end"],
            "n_rows": group["rows"],
            "tested": bool(group["tested"]),
            "share": _clean(group["share"]) or 0.0,
            "drift_detected": bool(group["detected"]),
            "drifted_columns": ", ".join(group["drifted_columns"]) or None,
        }
        for group in (metrics.get("chunks") or {}).get("groups", [])
    ]


def _start_order(start: str) -> tuple[int, str]:
    """A chunk's place: row numbers by value (``501`` before ``2501``), instants as ISO text.

    >>> sorted(["2501", "501", "1"], key=_start_order)
    ['1', '501', '2501']
    """
    return (len(start), start) if start.isdigit() else (0, start)


class HistoryStore:
    """An opened history database, migrated to the current schema."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.database = _database(url)
        try:
            self.version = self._migrate()
        except self.database.errors as exc:
            self.database.close()
            raise IntegrationError(f"history database {_hide_password(url)}: {_Database.detail(exc)}") from None
        except BaseException:
            self.database.close()
            raise

    def _migrate(self, target: int = SCHEMA_VERSION) -> int:
        with self.database.transaction() as connection:
            tables = self.database.table_names(connection)
            if "churnops_schema" not in tables and tables & {"runs", "column_results"}:
                raise IntegrationError(
                    f"history database {_hide_password(self.url)} holds tables churnops did not create "
                    f"({', '.join(sorted(tables & {'runs', 'column_results'}))}): give churnops its own database "
                    "(history.url) or move this one away"
                )
            planted = self.database.triggers(connection)
            if planted:
                raise IntegrationError(
                    f"history database {_hide_password(self.url)} holds triggers churnops did not create "
                    f"({', '.join(one_line_short(name, 40) for name in planted[:5])}): they could rewrite what a run "
                    "records; drop them (DROP TRIGGER) or give churnops its own database (history.url)"
                )
            connection.execute("CREATE TABLE IF NOT EXISTS churnops_schema (version INTEGER NOT NULL)")
            rows = connection.execute("SELECT version FROM churnops_schema")
            if not rows:
                connection.execute("INSERT INTO churnops_schema (version) VALUES (0)")
                current = 0
            else:
                current = int(rows[0]["version"])
        if current > SCHEMA_VERSION:
            raise IntegrationError(
                f"history database {_hide_password(self.url)} has schema {current}, newer than this churnops "
                f"({SCHEMA_VERSION}): upgrade churnops"
            )
        for version in range(current + 1, target + 1):
            with self.database.transaction() as connection:
                for statement in MIGRATIONS[version - 1]:
                    connection.execute(statement)
                connection.execute("UPDATE churnops_schema SET version = :v", {"v": version})
        return max(current, target)

    def record(self, metrics: dict[str, Any]) -> None:
        """Append one run (a metrics document); recording the same run twice replaces it."""
        run, columns = run_rows(metrics, self.version)
        chunks = chunk_rows(metrics) if self.version >= 4 else []
        keys = ", ".join(run)
        placeholders = ", ".join(f":{k}" for k in run)
        try:
            with self.database.transaction() as connection:
                connection.execute("DELETE FROM column_results WHERE run_id = :r", {"r": run["run_id"]})
                if self.version >= 4:
                    connection.execute("DELETE FROM chunk_results WHERE run_id = :r", {"r": run["run_id"]})
                connection.execute("DELETE FROM runs WHERE run_id = :r", {"r": run["run_id"]})
                connection.execute(f"INSERT INTO runs ({keys}) VALUES ({placeholders})", run)
                if columns:
                    column_keys = ", ".join(columns[0])
                    column_values = ", ".join(f":{k}" for k in columns[0])
                    connection.execute(f"INSERT INTO column_results ({column_keys}) VALUES ({column_values})", columns)
                if chunks:
                    chunk_keys = ", ".join(chunks[0])
                    chunk_values = ", ".join(f":{k}" for k in chunks[0])
                    connection.execute(f"INSERT INTO chunk_results ({chunk_keys}) VALUES ({chunk_values})", chunks)
        except self.database.errors as exc:
            detail = _Database.detail(exc).splitlines()[0][:200]
            raise IntegrationError(
                f"cannot record run {run['run_id']} in the history {_hide_password(self.url)} ({detail}): move the "
                "database away (a new one is created) or set history.url"
            ) from None

    def verdict_of(self, run_id: str) -> str | None:
        """The verdict (alert, warning or ok) recorded for ``run_id``; None when the run, or its
        verdict, is not recorded."""
        if self.version < 3:
            return None
        try:
            with self.database.transaction() as connection:
                rows = connection.execute("SELECT verdict FROM runs WHERE run_id = :r", {"r": run_id})
        except self.database.errors as exc:
            raise IntegrationError(f"history database {_hide_password(self.url)}: {_Database.detail(exc)}") from None
        verdict = rows[0]["verdict"] if rows else None
        return verdict if isinstance(verdict, str) else None

    def runs(self, since: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Runs, oldest first (the most recent ``limit`` when given)."""
        return self._oldest_first("SELECT * FROM runs", [], {}, "", since, limit)

    def column_series(self, column: str, since: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """One column's results over runs, oldest first."""
        select = (
            "SELECT r.run_id, r.created_at, c.column_name, c.column_type, c.test, c.statistic, c.p_value, "
            "c.threshold, c.drift_detected FROM column_results c JOIN runs r ON r.run_id = c.run_id"
        )
        return self._oldest_first(select, ["c.column_name = :column"], {"column": column}, "r.", since, limit)

    def chunk_series(self, since: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Every recorded time chunk of the runs (the most recent ``limit`` runs when given),
        oldest run first, each run's chunks in time order."""
        runs = {row["run_id"]: place for place, row in enumerate(self.runs(since, limit))}
        select = (
            "SELECT r.run_id, r.created_at, c.chunk_label, c.start_at, c.end_at, c.n_rows, c.tested, c.share, "
            "c.drift_detected, c.drifted_columns FROM chunk_results c JOIN runs r ON r.run_id = c.run_id"
        )
        rows = [row for row in self._oldest_first(select, [], {}, "r.", since, None) if row["run_id"] in runs]
        start = [row for row in rows if isinstance(row["start_at"], str)]
        return sorted(start, key=lambda row: (runs[row["run_id"]], *_start_order(row["start_at"])))

    def _oldest_first(
        self, select: str, where: list[str], params: dict[str, Any], runs: str, since: str | None, limit: int | None
    ) -> list[dict[str, Any]]:
        """Rows of ``select`` from ``since`` on - the most recent ``limit`` when given - oldest
        first; ``runs`` is the prefix of the runs table's columns in ``select``."""
        if since:
            where = [*where, f"{runs}created_at >= :since"]
            params = {**params, "since": since}
        query = select + (" WHERE " + " AND ".join(where) if where else "")
        order = self.database.insertion_order
        if order is not None:  # the order churnops recorded the runs in: no edit of created_at moves a run
            query += f" ORDER BY {runs}{order} DESC"
        else:
            query += f" ORDER BY {runs}created_at DESC, {runs}run_id DESC"
        if limit:
            query += " LIMIT :limit"
            params = {**params, "limit": limit}
        try:
            with self.database.transaction() as connection:
                rows = connection.execute(query, params)
        except self.database.errors as exc:
            detail = _Database.detail(exc).splitlines()[0][:200]
            raise IntegrationError(
                f"history database {_hide_password(self.url)} cannot be read ({detail}): it is not the history "
                "churnops wrote - move it away (a new one is created) or set history.url"
            ) from None
        return list(reversed(_checked(rows, _hide_password(self.url))))

    def close(self) -> None:
        self.database.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
