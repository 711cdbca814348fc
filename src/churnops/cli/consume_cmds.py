"""``churnops consume``: events from a Redis Stream into the real-time service's event log."""

from __future__ import annotations

from typing import Annotated

import typer

from churnops.cli.common import handle_errors, load, say
from churnops.cli.options import ConfigOption, SetOption


@handle_errors
def consume(
    stream: Annotated[
        str | None,
        typer.Option(
            "--stream", metavar="NAME", help="The stream to read [config: consume.stream].", show_default=False
        ),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(
            "--group",
            metavar="NAME",
            help="Consumer group, created when missing [config: consume.group, default churnops].",
        ),
    ] = None,
    consumer: Annotated[
        str | None,
        typer.Option(
            "--consumer",
            metavar="NAME",
            help="This consumer's name in the group [config: consume.consumer, default churnops-<host name>].",
        ),
    ] = None,
    redis: Annotated[
        str | None,
        typer.Option(
            "--redis",
            metavar="URL",
            help="Redis URL, e.g. redis://:password@127.0.0.1:6379/0 (default: the variable of --redis-env; "
            "prefer it: a command line is visible to other users).",
        ),
    ] = None,
    redis_env: Annotated[
        str | None,
        typer.Option(
            "--redis-env",
            metavar="NAME",
            help="Environment variable holding the Redis URL [config: consume.redis_url_env, "
            "default CHURNOPS_REDIS_URL].",
        ),
    ] = None,
    batch: Annotated[
        int | None,
        typer.Option(
            "--batch",
            min=1,
            max=10_000,
            metavar="N",
            help="Entries per read and per transaction [config: consume.batch, 500].",
        ),
    ] = None,
    claim_idle: Annotated[
        float | None,
        typer.Option(
            "--claim-idle",
            min=0,
            metavar="SECONDS",
            help="Claim entries another consumer left unacknowledged this long, at start and then every SECONDS "
            "[config: consume.claim_idle, 60].",
        ),
    ] = None,
    max_entries: Annotated[
        int | None, typer.Option("--max-entries", min=1, metavar="N", help="Stop after this many entries.")
    ] = None,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Stop once no entry is left to read (batch jobs, tests).")
    ] = False,
    config: ConfigOption = None,
    sets: SetOption = None,
) -> None:
    """Monitor live traffic from a Redis Stream: the same windows, detectors, event log and alerts as
    `churnops serve`, fed by a consumer group instead of HTTP (run one or the other on an event log).

    Each entry holds one event as a JSON object in its field 'event': the reference's columns and an optional
    event_id (without one, the entry's id is the event's id), e.g. XADD events * event '{"Balance": 1200.5, ...}'.
    A batch of entries is checked, its valid events written to the event log (serve.event_log) in one
    transaction, and only then acknowledged (XACK): an entry delivered again after a crash - to this consumer
    after a restart, or to another that claims it - is an event id the log already holds, counted once. Invalid
    entries (not JSON, an unknown column, a value of the wrong kind) go to the dead-letter stream
    <stream>:rejected (consume.dead_letter) with the reason, and are acknowledged. SIGTERM or Ctrl-C stops after
    the batch in hand. Needs Redis 6.2 or later and the redis extra: pip install 'churnops[redis]'.
    """
    from churnops.serve.consume import consume as run

    overrides = {
        "consume.stream": stream,
        "consume.group": group,
        "consume.consumer": consumer,
        "consume.redis_url_env": redis_env,
        "consume.batch": batch,
        "consume.claim_idle": claim_idle,
    }
    cfg = load(config, overrides, sets)
    import logging

    # redis-py's own warnings: through churnops' handler (one line, secrets redacted), not Python's default
    library = logging.getLogger("redis")
    library.handlers[:] = logging.getLogger("churnops").handlers
    library.propagate = False
    run(cfg, redis, max_entries, until_idle, say)
