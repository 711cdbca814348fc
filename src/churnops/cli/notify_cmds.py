"""``churnops notify``."""

from __future__ import annotations

from typing import Annotated

import typer

from churnops.cli.common import echo, handle_errors, load, say
from churnops.cli.options import ConfigOption, SetOption


@handle_errors
def notify(
    status: Annotated[
        str,
        typer.Option(
            "--status",
            "-s",
            help="auto: the last run's verdict (drift = an alert, warning or ok). A verdict given must be that "
            "run's, or nothing is sent (exit 2); error (a pipeline stage failed) is always sent.",
        ),
    ] = "auto",
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run-id",
            help="Report on this run only: when the latest metrics are another run's, nothing is sent (exit 2), "
            "except --status error, sent without that run's facts.",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print each message instead of sending it.")] = False,
    config: ConfigOption = None,
    sets: SetOption = None,
) -> None:
    """Send the drift notification on every channel configured in [notify] (e-mail, Slack, Teams, webhook, file).

    Each channel speaks only for the statuses in its 'on' list. Exit 4 when a channel failed
    (the others are still tried); secrets come from environment variables and are never shown.
    """
    from churnops.errors import ConfigError
    from churnops.pipeline.notifying import describe
    from churnops.pipeline.notifying import notify as send
    from churnops.pipeline.runner import EXIT_STAGE_FAILED

    if status not in ("auto", "drift", "warning", "ok", "error"):
        raise ConfigError(f"--status: expected auto, drift, warning, ok or error, got '{status}'")
    cfg = load(config, sets=sets)
    outcome = send(cfg, status, dry_run=dry_run, run_id=run_id)
    for delivery in outcome.deliveries:
        if dry_run and delivery.preview is not None:
            echo(f"--- {delivery.channel} ({outcome.status}) ---\n{delivery.preview}")
        else:
            say(describe(delivery))
    if outcome.failures:
        raise typer.Exit(EXIT_STAGE_FAILED)
