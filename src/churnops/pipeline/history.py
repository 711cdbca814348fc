"""The monitoring history for the CLI, the report's trends and the pipeline."""

from __future__ import annotations

import math
import os
from datetime import datetime
from typing import Any

from churnops.config import HISTORY_FILE, Config
from churnops.data.files import refuse_hard_link
from churnops.errors import ConfigError, IntegrationError, OutputWriteError
from churnops.report.html import Trend

TREND_COLUMNS = 3
LARGEST = 1e300


def history_url(config: Config) -> str:
    """The configured SQLAlchemy URL, with the password from its environment variable."""
    url = config.history.url
    if url is None:
        return f"sqlite:///{config.monitoring_dir / HISTORY_FILE}"
    url = config.sqlite_url(url, "history.url")
    if config.history.password_env:
        password = os.environ.get(config.history.password_env)
        if not password:
            raise ConfigError(f"history.password_env: environment variable {config.history.password_env} is not set")
        from urllib.parse import quote

        scheme, rest = url.split("://", 1)
        if "@" not in rest:
            raise ConfigError("history.url: no user@host in the URL to attach the password to")
        user, host = rest.split("@", 1)
        url = f"{scheme}://{user}:{quote(password, safe='')}@{host}"
    return url


def open_store(config: Config) -> Any:
    from churnops.integrations.history import HistoryStore

    url = history_url(config)
    if config.history.url is None:
        config.monitoring_dir.mkdir(parents=True, exist_ok=True)
    database = config.sqlite_path(url)
    if database is not None:  # SQLite opens the file itself: no link, no other kind of file
        try:
            refuse_hard_link(database)
        except OutputWriteError as exc:
            raise IntegrationError(str(exc)) from None
    return HistoryStore(url)


def _finite(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and abs(value) < LARGEST
    )


def _label(created_at: str | None) -> str:
    try:
        return datetime.fromisoformat(created_at or "").strftime("%m-%d %H:%M")
    except ValueError:
        return created_at or "?"


def record(config: Config, metrics: dict[str, Any]) -> None:
    """Store this run (after its outputs are committed: the history never holds a run without them)."""
    with open_store(config) as store:
        store.record(metrics)


def trends(config: Config, metrics: dict[str, Any]) -> list[Trend]:
    """The trends of the last recorded runs plus this one (not recorded yet), for the report."""
    from churnops.integrations.history import run_rows

    current_run, current_columns = run_rows(metrics)
    statistics = {row["column_name"]: row for row in current_columns}
    keep = config.history.trend_runs - 1
    with open_store(config) as store:
        runs = [r for r in store.runs(limit=keep + 1) if r["run_id"] != current_run["run_id"]][-keep:]
        runs.append(current_run)
        drifted = sorted(
            ((name, c) for name, c in metrics.get("columns", {}).items() if c.get("statistic") is not None),
            key=lambda item: (not item[1]["drift_detected"], -(item[1].get("drift_score") or 0)),
        )
        column_trends = []
        for name, column in drifted[:TREND_COLUMNS]:
            series = [r for r in store.column_series(name, limit=keep + 1) if r["run_id"] != current_run["run_id"]]
            series = series[-keep:] + [{**statistics[name], "created_at": current_run["created_at"]}]
            points = [(_label(row["created_at"]), row["statistic"]) for row in series if _finite(row["statistic"])]
            threshold = column["threshold"] if column.get("kind") == "distance" else None
            column_trends.append(Trend(f"{name} ({column['test']})", points, threshold))
    result = [
        Trend(
            "dataset drift score",
            [(_label(r["created_at"]), r["dataset_score"]) for r in runs if _finite(r["dataset_score"])],
            metrics["dataset_drift"]["threshold"],
        ),
        Trend(
            "data quality score",
            [(_label(r["created_at"]), r["quality_score"]) for r in runs if _finite(r["quality_score"])],
            metrics.get("data_quality", {}).get("threshold"),
        ),
    ]
    if any(r["current_rate"] is not None for r in runs):
        result.append(
            Trend(
                "churn rate (current batch)",
                [(_label(r["created_at"]), r["current_rate"]) for r in runs if _finite(r["current_rate"])],
            )
        )
    return result + column_trends


def query(
    config: Config, since: str | None, column: str | None, limit: int | None, chunks: bool = False
) -> list[dict[str, Any]]:
    """Rows for ``churnops history``: runs, one column's results, or the time chunks (none before
    the first run: reading never creates the database)."""
    if config.history.url is None and not (config.monitoring_dir / HISTORY_FILE).exists():
        return []
    with open_store(config) as store:
        if chunks:
            return store.chunk_series(since, limit)
        if column:
            return store.column_series(column, since, limit)
        return store.runs(since, limit)
