"""Option types shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        metavar="<file>",
        help="Configuration file (default: ./churnops.toml if present, else built-in defaults).",
        dir_okay=False,
    ),
]

SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a configuration key, e.g. --set thresholds.dataset_drift=0.2 (repeatable).",
        metavar="KEY=VALUE",
    ),
]

TargetOption = Annotated[
    str | None,
    typer.Option(
        "--target",
        "-t",
        metavar="<column>",
        help="The label column (e.g. churned) [config: columns.target, default 'Churn Flag'].",
    ),
]

IdOption = Annotated[
    list[str] | None,
    typer.Option(
        "--id",
        metavar="<column>",
        help="An identifier column: checked for repeats, never tested for drift (repeatable).",
    ),
]

NoWaitOption = Annotated[
    bool, typer.Option("--no-wait", help="Exit at once (code 2) if another run holds this workspace.")
]


def column_overrides(target: str | None, ids: list[str] | None) -> dict[str, object]:
    """Configuration overrides from --target and --id."""
    return {"columns.target": target, "columns.id": list(ids) if ids else None}
