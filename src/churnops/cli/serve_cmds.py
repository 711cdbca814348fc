"""``churnops serve``: the real-time monitoring service."""

from __future__ import annotations

from typing import Annotated

import typer

from churnops.cli.common import handle_errors, load, say
from churnops.cli.options import ConfigOption, SetOption


@handle_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: any free port, printed).")] = 8000,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Accept writes without a token (only on a loopback address such as 127.0.0.1).",
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Processes taking the connections. 1: this one does everything. N above 1: N worker processes "
            "read, check and score the requests (each with its own copy of the model) while this one keeps the "
            "event log, the windows and the metrics, and answers the workers alone.",
        ),
    ] = 1,
    config: ConfigOption = None,
    sets: SetOption = None,
) -> None:
    """Monitor live traffic: POST events, each window of serve.window_size events (10,000) is compared with the
    reference as `churnops monitor` compares a batch.

    Endpoints: POST /v1/events (one event or a list: the reference's columns, an optional event_id),
    POST /v1/predict (records scored by the champion, or the A/B arm of the customer, then logged as events),
    POST /v1/labels (late outcomes by event id) - the three need 'Authorization: Bearer <token>', the token in
    $CHURNOPS_API_TOKEN; GET /v1/drift, GET /v1/windows/N/report, GET /metrics (Prometheus), GET /healthz,
    GET /readyz, GET / (status page). Every accepted event is in the
    event log (serve.event_log, SQLite) before the answer; after a stop the open window continues from it. Each
    closed window's metrics and report are written under serve.windows_dir. Needs the serve extra:
    pip install 'churnops[serve]'.
    """
    from churnops.serve.service import run

    cfg = load(config, None, sets)
    run(cfg, host, port, insecure_no_auth, say, workers)
