"""Starting the service: the configuration, the reference profile, the event log, the windows."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnops.config import Config
from churnops.config.models import period_seconds
from churnops.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    from churnops.serve.app import ServiceState
    from churnops.serve.detectors import Detectors
    from churnops.serve.eventlog import EventLog
    from churnops.serve.records import RecordSchema
    from churnops.serve.windows import WindowEvaluator

SERVE_PACKAGES = ("starlette", "uvicorn", "httptools", "orjson")
"""What ``churnops serve`` needs beyond churnops itself (the ``serve`` extra)."""


def require_serve_packages() -> None:
    """One line naming the extra to install when a package of the service is missing."""
    import importlib

    for package in SERVE_PACKAGES:
        try:
            importlib.import_module(package)
        except ImportError:
            raise MissingDependencyError(package, "serve") from None


logger = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def service_token(config: Config, host: str, insecure_no_auth: bool) -> str | None:
    """The bearer token write endpoints require, from ``serve.token_env``; None only when
    ``insecure_no_auth`` is given for a loopback address."""
    token = os.environ.get(config.serve.token_env, "")
    if token:
        if len(token) < 16:
            raise ConfigError(f"{config.serve.token_env}: the token is shorter than 16 characters; use a random one")
        if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
            raise ConfigError(
                f"{config.serve.token_env}: use printable ASCII without spaces (a client sends it in an HTTP header)"
            )
        return token
    if insecure_no_auth:
        if not is_loopback(host):
            raise ConfigError(f"--insecure-no-auth is only allowed on 127.0.0.1 (not on {host})")
        logger.warning("write endpoints accept requests without a token (--insecure-no-auth, %s only)", host)
        return None
    raise ConfigError(
        f"no token: set the environment variable {config.serve.token_env} (serve.token_env) to a random secret of "
        "16 characters or more; clients send it as 'Authorization: Bearer <token>'"
    )


@dataclass
class Monitoring:
    """What ``churnops serve`` and ``churnops consume`` share: the event log, what an event may
    hold, the detectors fed event by event and the evaluation of closed windows."""

    config: Config
    """The configuration with the reference's columns inferred (as ``churnops monitor`` infers them)."""
    log: EventLog
    schema: RecordSchema
    detectors: Detectors
    evaluator: WindowEvaluator
    folder: Path
    """Where each closed window's metrics and report are written (``serve.windows_dir``)."""
    window_period: float | None
    """Seconds after its first event that a window closes, full or not (``serve.window_period``)."""

    def close(self) -> None:
        """Finish the windows queued for evaluation, then release the event log."""
        try:
            self.evaluator.shutdown()
        finally:
            self.log.close()


def start_monitoring(config: Config) -> Monitoring:
    """The reference profile (from the cache when it is valid), the event log (its open window
    rebuilt from it, held exclusively), the detectors continued from the log, and windows left
    unevaluated by a previous run queued again."""
    from churnops.monitor.settings import settings_from_config
    from churnops.pipeline.monitoring import MonitorRequest, inferred_configuration, reference_source
    from churnops.pipeline.reference import get_reference_profile
    from churnops.serve.detectors import Detectors
    from churnops.serve.eventlog import EventLog
    from churnops.serve.records import RecordSchema
    from churnops.serve.windows import METRICS_FILE, WindowContext, WindowEvaluator, read_window_file

    source = reference_source(config, MonitorRequest())
    config = inferred_configuration(config, source.path)
    settings = settings_from_config(config)
    if settings.chunk_by or settings.multivariate:
        logger.warning("time chunks and multivariate detectors are not run on windows")
    profile, reference_info, cache_status, _ = get_reference_profile(config, source, settings, use_cache=True)
    logger.info("reference %s: %s rows (profile cache %s)", source.path, f"{profile.rows:,}", cache_status)
    log = EventLog(config.resolve(config.serve.event_log), config.serve.window_size)
    serve = config.serve
    detectors = Detectors.start(profile, serve.detectors, serve.arl0, serve.detector_shift, log.detector_state())
    folder: Path = config.resolve_dir(config.serve.windows_dir)
    schema = RecordSchema.from_profile(profile)
    context = WindowContext(
        profile, settings, reference_info, folder, list(config.thresholds.trigger_on), schema.dtypes
    )
    process = None
    if serve.evaluation == "process":
        from churnops.serve.evaluation import EvaluatorProcess, setup_message

        hidden = (serve.token_env, config.consume.redis_url_env)  # secrets the evaluator has no use for
        process = EvaluatorProcess(  # started when a first window closes
            setup_message(config, context, log.path), serve.evaluation_timeout, hidden
        )
    evaluator = WindowEvaluator(log, context, config, process=process)
    last = log.last_evaluated()
    if last is not None:  # /metrics and /v1/drift show the last window again after a restart
        import json

        text = read_window_file(folder, last, METRICS_FILE)  # opened without following a link
        if text is not None:
            try:
                import jsonschema

                from churnops.report.metrics import metrics_schema

                document = json.loads(text.decode("utf-8"))
                jsonschema.validate(document, metrics_schema())  # read back only what churnops writes
                evaluator.last = {"window": last, "metrics": document}
            except (OSError, ValueError, RecursionError, jsonschema.ValidationError):
                logger.warning("window %s: its metrics could not be read back", last)
    pending = log.pending()
    if pending:
        windows = f"{len(pending):,} window" + ("" if len(pending) == 1 else "s")
        logger.info("evaluating %s closed before the last stop", windows)
        evaluator.submit(pending)
    evaluator.prune_soon()  # serve.keep_events, serve.keep_inputs; and what a killed service left unsaid
    period = period_seconds(serve.window_period) if serve.window_period else None
    return Monitoring(config, log, schema, detectors, evaluator, folder, period)


def start(config: Config, token: str | None) -> ServiceState:
    """Everything the application needs: the shared monitoring state (:func:`start_monitoring`)
    and the champion (and challenger) that score ``/v1/predict``."""
    from churnops.serve.app import BodyBudget, ServiceState
    from churnops.serve.scoring import Champion, MicroBatcher

    monitoring = start_monitoring(config)
    config, schema = monitoring.config, monitoring.schema
    champion = Champion.load(config)
    challenger = None
    ab = config.serve.ab
    from churnops.serve.ab import customer_column

    key = customer_column(config)
    if champion is not None:
        logger.info("scoring with %s v%s", champion.name, champion.version)
        if ab.share > 0:
            if key is None or key not in schema.dtypes:
                raise ConfigError(
                    f"serve.ab.key: {key!r} is not a column of the reference; name the customer column that "
                    "assigns the arms"
                )
            challenger = Champion.load(config, ab.challenger)
    state = ServiceState(
        batcher=MicroBatcher(champion, schema.dtypes) if champion is not None else None,
        challenger=MicroBatcher(challenger, schema.dtypes) if challenger is not None else None,
        ab=ab,
        ab_key=key,
        log=monitoring.log,
        schema=schema,
        evaluator=monitoring.evaluator,
        detectors=monitoring.detectors,
        token=token,
        max_batch=config.serve.max_batch,
        max_body_bytes=config.serve.max_body_bytes,
        window_size=config.serve.window_size,
        folder=monitoring.folder,
        window_period=monitoring.window_period,
        budget=BodyBudget.of(config.serve),
    )
    state.config = config
    monitoring.evaluator.after = lambda: check_models(state, config)
    return state


def check_models(state: ServiceState, config: Config) -> None:
    """After a closed window: score with whatever the aliases point at now - a promotion by
    ``churnops ab promote``, another replica, ``churnops retrain`` or ``churnops train`` is taken
    up without a restart - then promote a better challenger (``serve.ab.auto_promote``)."""
    from churnops.errors import ChurnopsError
    from churnops.serve import ab

    follow_aliases(state, config)
    check_champion(state, config)
    if not (config.serve.ab.auto_promote and state.batcher is not None and state.challenger is not None):
        return
    document = state.measured_arms()
    if document is None or not document["decision"]["promote"]:
        return
    try:
        said = ab.promote(config, document, "churnops serve (serve.ab.auto_promote)")
    except ChurnopsError as exc:  # e.g. the aliases moved meanwhile: measured again after the next window
        logger.warning("no promotion: %s", exc)
    else:
        logger.warning("%s", said)
        _tell(config, said)
    follow_aliases(state, config)


def champion_health(state: Any, config: Config) -> dict[str, Any] | None:
    """The champion's ROC-AUC on the labelled live traffic (the log's latest scored events, as
    ``churnops ab report`` measures them) held to ``churnops monitor``'s rule: below
    ``model.min_auc``, or fallen from the reference's by more than ``model.max_auc_drop``, the model
    decayed. None before :data:`~churnops.pipeline.scoring.MIN_LABELLED_ROWS` labelled events."""
    from churnops.pipeline.scoring import MIN_LABELLED_ROWS, decay

    batcher = state.batcher
    document = state.measured_arms() if batcher is not None else None
    arm = ((document or {}).get("arms") or {}).get("champion") or {}
    auc, labelled = arm.get("roc_auc"), int(arm.get("labelled") or 0)
    if auc is None or labelled < MIN_LABELLED_ROWS:
        return None
    champion = batcher.champion
    reference = (champion.loaded.metadata.reference_metrics or {}).get("roc_auc")
    rule = decay(config, reference, auc)  # monitor's
    drop, below = rule["roc_auc_drop"], rule["below_min_auc"]
    on = f"{labelled:,} labelled events"
    if drop is not None and drop > config.model.max_auc_drop:  # its message, as the verdict's
        message = (
            f"model decay on live traffic: {champion.name} v{champion.version} ROC-AUC {auc:.3f} on {on}, "
            f"{drop:.3f} below the reference's {reference:.3f} "
            f"(more than model.max_auc_drop {config.model.max_auc_drop:g})"
        )
    elif below:
        message = (
            f"model near chance on live traffic: {champion.name} v{champion.version} ROC-AUC {auc:.3f} on {on}, "
            f"below model.min_auc {config.model.min_auc:g}"
        )
    else:
        message = f"{champion.name} v{champion.version} ROC-AUC {auc:.3f} on {on}"
    return {
        "version": champion.version,
        "roc_auc": auc,
        "labelled": labelled,
        "reference_roc_auc": reference,
        "roc_auc_drop": drop,
        "min_auc": config.model.min_auc,
        "max_auc_drop": config.model.max_auc_drop,
        "decayed": rule["detected"],
        "message": message,
    }


def check_champion(state: Any, config: Config) -> None:
    """Measure the champion on the labelled traffic after each window; say (and tell the [notify]
    channels, as an alert) when it turns decayed - a dead model served under windows that said
    only "column drift", with ``churnops_alert 0``."""
    before = state.model_health
    key = (state.log.labels_mark(), state.batcher.champion.version if state.batcher is not None else None)
    if key == state.health_key:
        return  # no outcome recorded since, and the same champion: measured already
    state.model_health = health = champion_health(state, config)
    state.health_key = key
    if health is None or not health["decayed"]:
        return
    if before is not None and before["decayed"] and before["version"] == health["version"]:
        return  # said when it turned so
    logger.warning("%s", health["message"])
    _tell(config, health["message"], "churnops: the champion model decayed on live traffic", "drift")


def follow_aliases(state: Any, config: Config) -> None:
    """Load the models the champion and challenger aliases point at, when they moved (``state``:
    the service's, or a worker's)."""
    from churnops.integrations import mlflow_registry as registry
    from churnops.pipeline.scoring import store_of
    from churnops.serve.scoring import Champion, MicroBatcher

    ab_config = config.serve.ab
    store = store_of(config)
    champion = state.batcher
    found = registry.find_alias(store, config.model.name, "champion")
    if found is not None and (champion is None or found.version != champion.champion.version):
        loaded = Champion.load(config)
        if loaded is not None:
            logger.warning("now scoring with %s v%s (the champion alias moved)", loaded.name, loaded.version)
            state.batcher = MicroBatcher(loaded, state.schema.dtypes)
    if ab_config.share <= 0 or state.ab_key is None:
        return
    found = registry.find_alias(store, config.model.name, ab_config.challenger)
    current = state.challenger
    if found is None:
        if current is not None:
            logger.warning("no challenger any more: every customer is scored by the champion")
            state.challenger = None
    elif current is None or found.version != current.champion.version:
        loaded = Champion.load(config, ab_config.challenger)
        if loaded is not None:
            logger.warning("challenger now %s v%s", loaded.name, loaded.version)
            state.challenger = MicroBatcher(loaded, state.schema.dtypes)


def _tell(config: Config, said: str, title: str = "churnops: challenger promoted", status: str = "ok") -> None:
    """The [notify] channels hear of an unattended promotion, or (``status`` drift) a decayed champion."""
    if not config.notify.channels:
        return
    from churnops.integrations.notifications.message import Notification
    from churnops.integrations.notifications.send import send_all

    note = Notification(status=status, title=title, verdict=said)
    for delivery in send_all(config, note, []):
        if delivery.status == "failed":
            logger.warning("notification %s: %s", delivery.channel, delivery.error)


def run(config: Config, host: str, port: int, insecure_no_auth: bool, say: Any, workers: int = 1) -> None:
    """Start the service and serve until stopped (Ctrl-C, SIGTERM); with ``workers`` above 1, that
    many worker processes take the connections (:mod:`churnops.serve.workers`)."""
    require_serve_packages()
    import uvicorn

    from churnops.serve.app import create_app

    if not host.strip():
        raise ConfigError("--host: give an address, e.g. 127.0.0.1 (or 0.0.0.0 for every interface)")
    token = service_token(config, host, insecure_no_auth)
    state = start(config, token)
    app = create_app(state)
    import gc

    from churnops.serve.connections import MAX_CONNECTIONS, SWITCH_INTERVAL, guarded_protocol

    # What start-up made (modules, the reference profile, the model: about a million objects)
    # lives as long as the service: frozen, the collector never scans it again, and its full
    # collections stop pausing requests for 30-75 ms.
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL)
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    listener.listen(2048)  # connections wait in the backlog from now on, before the loop starts
    bound = listener.getsockname()[1]
    sockets = [listener]
    pool = None
    if workers > 1:
        from churnops.serve.workers import WorkerPool, models_of, worker_setup

        hidden = (config.serve.token_env, config.consume.redis_url_env)  # the token goes on their input
        setup = worker_setup(state.config, token, state.schema.dtypes, state.detectors.watch.keys)
        pool = WorkerPool(workers, listener, setup, hidden, announce=say, models=models_of(state))
        state.worker_secret = pool.secret
        state.workers = pool
        pool.on_exit = state.worker_counts.ended
        # the workers take the connections; this process answers them alone, on its private socket
        sockets = [pool.private_socket()]
        checked = state.evaluator.after

        def check_and_tell() -> None:
            if checked is not None:
                checked()
            pool.use_models(models_of(state))

        state.evaluator.after = check_and_tell
    import signal

    asked: list[int] = []

    def stop_asked(number: int, frame: Any) -> None:
        """SIGTERM before the server listens for it: it stops as soon as it has started. After
        uvicorn's graceful stop, which raises SIGTERM again for the handler it found (with the
        default one the process would end there, before the queued windows are evaluated and the
        event log is closed): nothing more to do than finish the shutdown below."""
        asked.append(number)

    # from now on, before the line below says the service listens
    previous = signal.signal(signal.SIGTERM, stop_asked)

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[Any] | None = None) -> None:
            await super().startup(sockets=sockets)
            if asked:
                self.handle_exit(signal.SIGTERM, None)

        def handle_exit(self, sig: int, frame: Any) -> None:
            state.stopping = True  # the requests waiting for a window answer now, not at their deadline
            if pool is not None and not getattr(self, "workers_stopping", False):
                # the workers first: what they are answering still needs this process
                self.workers_stopping = True
                stop = super().handle_exit

                def workers_then_this() -> None:
                    pool.stop()
                    stop(sig, frame)

                threading.Thread(target=workers_then_this, name="churnops-stop-workers", daemon=True).start()
                return
            super().handle_exit(sig, frame)

    request_bytes = config.serve.max_body_bytes
    if pool is not None:  # this process answers its workers alone: their messages hold many requests
        from churnops.serve.app import worker_message_bytes

        request_bytes = worker_message_bytes(config.serve.max_body_bytes, config.serve.max_batch)
    server = Server(
        uvicorn.Config(
            app,
            # a slow or silent client is closed, and a request too large is refused as it arrives
            http=guarded_protocol(config.serve.request_timeout, request_bytes),
            log_level="warning",
            access_log=False,
            server_header=False,
            lifespan="on",
            limit_concurrency=MAX_CONNECTIONS,  # beyond: 503 at once, never a service out of file handles
            timeout_keep_alive=5,
        )
    )
    shown = f"[{host}]" if ":" in host else host
    processes = f"{workers} worker processes, " if workers > 1 else ""
    size = config.serve.window_size
    say(
        f"churnops serve: listening on http://{shown}:{bound} ({processes}window of {size:,} events, "
        f"open window {state.log.open_window} with {state.log.open_count:,} "
        f"{'event' if state.log.open_count == 1 else 'events'})"
    )
    try:
        if pool is not None:
            pool.start()  # after the line above: the workers' own line comes after it
        server.run(sockets=sockets)
    finally:
        try:
            if pool is not None:
                pool.close()  # already stopped after a signal; at once after an error
            state.evaluator.shutdown()
            state.log.close()
            for bound_socket in {listener, *sockets}:
                bound_socket.close()
        finally:
            signal.signal(signal.SIGTERM, previous)
