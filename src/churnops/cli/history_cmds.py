"""``churnops history`` and ``churnops metrics export``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from churnops.cli.common import aligned, echo, handle_errors, load, say
from churnops.cli.options import ConfigOption, SetOption

metrics_app = typer.Typer(help="Prometheus metrics of the latest run.", no_args_is_help=True)

RUN_COLUMNS = [
    "created_at",
    "run_id",
    "verdict",
    "alerts",
    "dataset_score",
    "dataset_threshold",
    "drift_detected",
    "n_drifted",
    "n_columns",
    "quality_score",
    "current_rate",
    "realized_auc",
    "estimated_auc",
    "current_rows",
    "current_path",
]
TABLE_WIDTH = 100
"""The table fits a 100-column terminal; --format json or csv gives every field in full."""
CHUNK_COLUMNS = [
    "created_at", "run_id", "chunk_label", "n_rows", "tested", "share", "drift_detected", "drifted_columns",
]  # fmt: skip
COLUMN_COLUMNS = ["created_at", "run_id", "column_name", "test", "statistic", "p_value", "threshold", "drift_detected"]


def safe_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in text cells (:func:`churnops.escape.csv_cell`)."""
    from churnops.escape import csv_cell

    return csv_cell(value)


def _column_table(rows: list[dict[str, Any]]) -> str:
    """One column's results, one line per run (the column's name is the command's argument)."""

    def number(value: Any, p_value: bool = False) -> str:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return "-"
        return "<1e-16" if value == 0 and p_value else f"{value:.4g}"  # a p-value of 0 underflowed

    header = ["when", "run", "test", "statistic", "p-value", "threshold", "drift"]
    table = [
        [
            str(row.get("created_at") or "")[:16].replace("T", " "),
            str(row.get("run_id") or "")[-8:],
            str(row.get("test") or ""),
            number(row.get("statistic")),
            number(row.get("p_value"), p_value=True),
            number(row.get("threshold")),
            "yes" if row.get("drift_detected") else "no",
        ]
        for row in rows
    ]
    return aligned(header, table)


def _runs_table(rows: list[dict[str, Any]]) -> str:
    """One line per run, at most :data:`TABLE_WIDTH` characters."""
    import os

    def when(row: dict[str, Any]) -> str:
        return str(row.get("created_at") or "")[:16].replace("T", " ")

    def verdict(row: dict[str, Any]) -> str:
        status = row.get("verdict") or ("alert" if row.get("drift_detected") else "ok")
        return str(status)

    def number(value: Any, pattern: str) -> str:
        return pattern.format(value) if isinstance(value, int | float) and not isinstance(value, bool) else "-"

    # the dataset rule's threshold beside its score: runs made with other thresholds read apart
    header = ["when", "run", "verdict", "drifted", "score", "limit", "quality", "target", "AUC", "rows", "batch"]
    table = []
    for row in rows:
        # measured on the labels, or (~) estimated without them: the two read apart
        realized = row.get("realized_auc")
        auc = number(realized, "{:.3f}") if realized is not None else number(row.get("estimated_auc"), "~{:.3f}")
        drifted = f"{row.get('n_drifted', '-')}/{row.get('n_columns', '-')}"
        table.append(
            [
                when(row),
                str(row.get("run_id") or "")[-8:],
                verdict(row),
                drifted,
                number(row.get("dataset_score"), "{:.3f}"),
                number(row.get("dataset_threshold"), "{:g}"),
                number(row.get("quality_score"), "{:.4f}"),
                number(row.get("current_rate"), "{:.1%}"),
                auc,
                number(row.get("current_rows"), "{:,}"),
                os.path.basename(str(row.get("current_path") or "")),
            ]
        )
    widths = [max(len(header[i]), *(len(r[i]) for r in table)) for i in range(len(header) - 1)]
    room = max(TABLE_WIDTH - sum(widths) - 2 * (len(header) - 1), 8)
    lines = []
    for cells in [header, *table]:
        batch = cells[-1] if len(cells[-1]) <= room else cells[-1][: room - 1] + "…"
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells[:-1], widths, strict=True)) + "  " + batch)
    return "\n".join(line.rstrip() for line in lines)


def _render(rows: list[dict[str, Any]], columns: list[str], output_format: str) -> str:
    if output_format == "json":
        return json.dumps(rows, indent=2, default=str, allow_nan=False)  # strict JSON: no NaN, no Infinity
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")  # the terminal (and a redirect) add no \r
        writer.writerow(columns)
        for row in rows:
            writer.writerow([safe_cell(row.get(c)) for c in columns])
        return buffer.getvalue().rstrip("\n")
    if not rows:
        return "no runs recorded yet"
    if columns is RUN_COLUMNS:
        return _runs_table(rows)
    if columns is COLUMN_COLUMNS:
        return _column_table(rows)

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
    chunks: Annotated[
        bool, typer.Option("--chunks", help="The time chunks of the runs made with drift.chunk_by, one line each.")
    ] = False,
    output_format: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", help="Only the most recent N runs.", min=1, max=1_000_000)
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Write it to this file, or upload it to an s3://, gs:// or az:// URL, instead of printing it.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a file at --output that does not read like a history export.")
    ] = False,
    config: ConfigOption = None,
    sets: SetOption = None,
) -> None:
    """The monitoring history: one line per run (or per run for one --column, or per time chunk with
    --chunks), oldest first. With --output, written to a file or an object-storage URL (e.g.
    --format csv -o s3://bank-reports/churnops/history.csv)."""
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
    if chunks and column:
        raise ConfigError("--chunks and --column: choose one")
    cfg = load(config, sets=sets)
    rows = query(cfg, since, column, limit, chunks)
    if column and not rows:
        runs = query(cfg, since, None, limit, False)
        if any(run.get("target_column") == column for run in runs):  # the label's rate is a run's own
            raise ConfigError(
                f"--column: '{column}' is the target: its rate is each run's current_rate in 'churnops history' "
                "(--format json gives the reference_rate beside it)"
            )
        raise ConfigError(f"--column: no result recorded for a column named '{column}'")
    if chunks and not rows:
        echo("no time chunks recorded yet (monitor with --chunk-by)")
        return
    text = _render(rows, CHUNK_COLUMNS if chunks else COLUMN_COLUMNS if column else RUN_COLUMNS, output_format)
    if output is None:
        echo(text)
        return
    lines = "line" if len(rows) == 1 else "lines"
    say(f"history: {len(rows):,} {lines} written to {_written(cfg, text + chr(10), output, force)}")


def _history_export(head: bytes, tail: bytes) -> bool:
    """Whether a file reads like what ``churnops history`` writes: a table (``when  run ...``) or
    CSV (``created_at,run_id,...``), JSON rows (``[{"run_id": ...``), or the word that none was
    recorded.

    >>> _history_export(b'[\\n  {\\n    "run_id": "2026"', b""), _history_export(b"when  run  verdict", b"")
    (True, True)
    >>> _history_export(b"notes", b""), _history_export(b'[{"id": 1}]', b"")
    (False, False)
    """
    text = head.lstrip()
    if text.startswith((b"created_at,run_id,", b"no runs recorded yet")) or text.split()[:2] == [b"when", b"run"]:
        return True
    rows = text[1:].lstrip()
    return text.startswith(b"[") and (
        rows.startswith(b"]") or rows.startswith(b"{") and rows[1:].lstrip().startswith(b'"run_id"')
    )


def _written(cfg: Any, text: str, output: str, force: bool = False) -> str:
    """``text`` written to the file ``output`` (atomically, never through a link) or uploaded to
    the object ``output``; where it went, as it may be printed."""
    from churnops.data.files import atomic_write_text, refuse_foreign
    from churnops.data.urls import in_object_storage, local_path

    if in_object_storage(output):
        from churnops.data.remote import staging_folder, upload
        from churnops.pipeline.storage import storage_options

        with staging_folder(cfg.root) as folder:
            local = folder / (output.rstrip("/").rsplit("/", 1)[-1] or "history")
            atomic_write_text(local, text)
            return upload(local, output, storage_options(cfg))
    path = Path(local_path(output))
    cfg.check_paths(outputs={"--output": path})
    if not force:
        refuse_foreign(path, "--output", _history_export, "a history export")
    atomic_write_text(path, text)
    return str(path)


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
