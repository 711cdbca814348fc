"""``churnops report open``."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from churnops.cli.common import echo, handle_errors, load, say
from churnops.cli.options import ConfigOption

report_app = typer.Typer(help="The HTML drift report.", no_args_is_help=True)


def has_display() -> bool:
    """Whether a browser window can be shown here (a desktop session, macOS or Windows)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@report_app.command("open")
@handle_errors
def open_report(
    config: ConfigOption = None,
    standalone: Annotated[
        bool, typer.Option("--standalone", help="Open the copy with the stylesheet inlined.")
    ] = False,
    print_only: Annotated[bool, typer.Option("--print", help="Only print the report's path.")] = False,
) -> None:
    """Open the latest report in the default browser, or print its path when there is no display."""
    from churnops.errors import InputDataError
    from churnops.pipeline.monitoring import REPORT_FILE, STANDALONE_FILE

    cfg = load(config)
    path = cfg.monitoring_dir / (STANDALONE_FILE if standalone else REPORT_FILE)
    if not path.is_file():
        raise InputDataError(f"{path}: no report yet - run 'churnops monitor' first")
    if print_only or not has_display():
        echo(str(path))
        return
    import webbrowser

    if not webbrowser.open(path.resolve().as_uri()):
        echo(str(path))
        return
    say(f"opened {path}")
