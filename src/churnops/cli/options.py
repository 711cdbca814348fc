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
