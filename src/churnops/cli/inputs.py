"""Default inputs that churnops makes itself: when one is missing, say which command makes it."""

from __future__ import annotations

from pathlib import Path

from churnops.errors import InputDataError


def require_made(path: Path, what: str, command: str, option: str) -> None:
    """Refuse a missing default input in one line that names the command making it.

    Only for paths taken from the configuration: a file given on the command line that does
    not exist is the reader's usual "file not found".
    """
    if not path.exists():
        raise InputDataError(f"{path}: file not found - no {what} yet: run '{command}' first (or give {option})")
