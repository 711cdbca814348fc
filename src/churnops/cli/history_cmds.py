"""``churnops history`` and ``churnops metrics export``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from churnops.cli.common import echo, handle_errors, load, say
from churnops.cli.options import ConfigOption, SetOption

metrics_app = typer.Typer(help="Prometheus metrics of the latest run.", no_args_is_help=True)

RUN_COLUMNS = [
    "created_at",
    "run_id",
    "dataset_score",
    "drift_detected",
    "n_drifted",
    "n_columns",
    "quality_score",
    "current_rate",
    "current_rows",
    "current_path",
]
COLUMN_COLUMNS = ["created_at", "run_id", "column_name", "test", "statistic", "p_value", "threshold", "drift_detected"]


def safe_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in text cells (OWASP CSV injection).

    >>> safe_cell("=HYPERLINK(1)"), safe_cell("-5 cheap"), safe_cell(-5.0), safe_cell("Balance")
    ("'=HYPERLINK(1)", "'-5 cheap", -5.0, 'Balance')
    """
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _render(rows: list[dict[str, Any]], columns: list[str], output_format: str) -> str:
    if output_format == "json":
        return json.dumps(rows, indent=2, default=str)
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([safe_cell(row.get(c)) for c in columns])
        return buffer.getvalue().rstrip("\n")
    if not rows:
        return "no runs recorded yet"

    def text(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4f}"
        if isinstance(value, bool):
            return "yes" if value else "no"
        return "" if value is None else str(value)

    table = [[text(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in table]
    return "\n".join(lines)


@handle_errors
def history(
    since: Annotated[str | None, typer.Option("--since", help="Only runs at or after this date (YYYY-MM-DD).")] = None,
    column: Annotated[str | None, typer.Option("--column", help="One column's results over the runs.")] = None,
    output_format: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="Only the most recent N runs.", min=1)] = None,
    config: ConfigOption = None,
    sets: SetOption = None,
) -> None:
    """The monitoring history: one line per run (or per run for one --column), oldest first."""
    from datetime import date

    from churnops.errors import ConfigError
    from churnops.pipeline.history import query

    if output_format not in ("table", "json", "csv"):
        raise ConfigError(f"--format: expected table, json or csv, got '{output_format}'")
    if since is not None:
        try:
            date.fromisoformat(since[:10])
        except ValueError:
            raise ConfigError(f"--since: expected a date like 2026-11-01, got '{since}'") from None
    cfg = load(config, sets=sets)
    rows = query(cfg, since, column, limit)
    if column and not rows:
        raise ConfigError(f"--column: no result recorded for a column named '{column}'")
    echo(_render(rows, COLUMN_COLUMNS if column else RUN_COLUMNS, output_format))


@metrics_app.command("export")
@handle_errors
def export(
    textfile: Annotated[
        Path | None, typer.Option("--textfile", help="Folder of node_exporter's textfile collector.", file_okay=False)
    ] = None,
    pushgateway: Annotated[
        str | None, typer.Option("--pushgateway", help="Pushgateway URL, e.g. http://host:9091.")
    ] = None,
    print_only: Annotated[bool, typer.Option("--print", help="Print the metrics instead.")] = False,
    config: ConfigOption = None,
    sets: SetOption = None,
) -> None:
    """Export the latest run's metrics for Prometheus (churnops_dataset_drift_score, ...)."""
    from churnops.pipeline.exporting import export_metrics

    cfg = load(config, sets=sets)
    for line in export_metrics(cfg, textfile, pushgateway, print_only):
        echo(line) if print_only else say(line)
