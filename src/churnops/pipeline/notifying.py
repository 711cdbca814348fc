"""``churnops notify`` and the pipeline's notification stage (seed: "Email/Slack Alert")."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from churnops.config import FALLBACK_NOTIFICATION_FILE, METRICS_FILE, REPORT_FILE, STANDALONE_FILE, Config
from churnops.data.files import atomic_write_text
from churnops.errors import ConfigError, InputDataError
from churnops.escape import one_line
from churnops.integrations.notifications.message import Notification, build_notification
from churnops.integrations.notifications.send import Delivery, send_all
from churnops.pipeline.workspace import read_metrics, workspace

logger = logging.getLogger(__name__)
FALLBACK_FILE = FALLBACK_NOTIFICATION_FILE


@dataclass(frozen=True)
class NotifyOutcome:
    status: str
    notification: Notification
    deliveries: list[Delivery]

    @property
    def failures(self) -> list[str]:
        return [f"{d.channel}: {d.error}" for d in self.deliveries if d.status == "failed"]


def status_of(metrics: Mapping[str, Any]) -> str:
    """The notification status of a run's verdict: ``drift`` when the run raised the trigger (an
    alert), ``warning`` when it found something below an alert, else ``ok``."""
    verdict = metrics.get("verdict")
    if isinstance(verdict, Mapping):
        if verdict.get("trigger"):
            return "drift"
        return "warning" if verdict.get("status") == "warning" else "ok"
    return "drift" if metrics["dataset_drift"]["detected"] else "ok"  # a 1.0 document: the seed's rule


def notify(
    config: Config,
    status: str = "auto",
    dry_run: bool = False,
    errors: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    metrics: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> NotifyOutcome:
    """Build the notification from a run's metrics and send it on every configured channel.

    ``metrics`` is the run's document (the pipeline passes its own); without it the latest
    committed metrics are read, holding the workspace so that no run changes them meanwhile.
    ``status="auto"`` is the run's verdict: "drift" (an alert), "warning" or "ok". A verdict given
    (``drift``, ``warning``, ``ok``) must be the run's own, or nothing is sent (:class:`ConfigError`);
    ``error`` (a pipeline stage failed) is not a verdict and is always sent. ``run_id``: the run
    to report on - when the latest metrics are another run's, nothing is sent, except an error,
    sent without the other run's facts. With no channel configured, the notification goes to
    ``monitoring/notification.txt`` and the log.
    """
    if metrics is None:
        with workspace(config, shared=True, purpose="notify"):
            metrics = read_metrics(config)
            if metrics is not None and status != "error":
                _check_against_history(config, metrics)
            status, metrics = checked_status(config, status, metrics, run_id)
            return _notify(config, status, dry_run, errors, env, metrics)
    status, metrics = checked_status(config, status, metrics, run_id)
    return _notify(config, status, dry_run, errors, env, metrics)


VERDICT_WORDS = {"drift": "raised an alert", "warning": "ended with a warning", "ok": "found nothing"}


def _check_against_history(config: Config, metrics: dict[str, Any]) -> None:
    """Refuse to send what the metrics file says of a run when the history recorded another
    verdict for the same run: one of the two was changed since (an alert edited into 'ok' would
    otherwise go out as 'No alert'). Without a history to compare with, nothing is checked."""
    from churnops.errors import ChurnopsError
    from churnops.pipeline.history import history_url, open_store

    run_id = metrics.get("run_id")
    if not config.history.enabled or not isinstance(run_id, str):
        return
    try:  # what the notification would say: the verdict's trigger, or the 1.0 document's drift flag
        written = {"drift": "alert", "warning": "warning", "ok": "ok"}[status_of(metrics)]
    except (KeyError, TypeError):
        return  # (not a metrics document: said by the checks that follow)
    database = config.sqlite_path(history_url(config))
    if database is not None and not database.is_file():
        return  # (no history made yet: none is made here)
    try:
        with open_store(config) as store:
            recorded = store.verdict_of(run_id)
    except (ChurnopsError, OSError) as exc:
        logger.debug("the metrics were not compared with the history: %s", exc)
        return
    if recorded is not None and recorded != written:
        raise InputDataError(
            f"the metrics of run {one_line(run_id)} say '{one_line(written)}', but the history recorded "
            f"'{one_line(recorded)}' for that run: one of them was changed since; not sent (run 'churnops monitor' "
            "again)"
        )


def checked_status(
    config: Config, status: str, metrics: dict[str, Any] | None, run_id: str | None
) -> tuple[str, dict[str, Any] | None]:
    """The status to send and the metrics it describes; refuses a notification that would
    contradict the run it reports on (one line, exit 2)."""
    if run_id is not None and (metrics is None or metrics.get("run_id") != run_id):
        if status == "error":
            return status, None  # the failure is told; another run's facts are not
        latest = f"are of run {one_line(metrics.get('run_id'))}" if metrics is not None else "are missing"
        raise InputDataError(
            f"--run-id {run_id}: the latest metrics in {config.monitoring_dir} {latest} - another run wrote them "
            "since; not sent"
        )
    if status == "error":
        return status, metrics
    if metrics is None:
        raise InputDataError(f"no metrics in {config.monitoring_dir}: run 'churnops monitor' first")
    actual = status_of(metrics)
    if status not in ("auto", actual):
        batch = one_line((metrics.get("current") or {}).get("path") or "the batch")
        run = f"{one_line(metrics.get('run_id'))}, {batch}"
        raise ConfigError(
            f"--status {status}: the run it reports on ({run}) {VERDICT_WORDS[actual]}; "
            f"sending '{status}' would contradict it: not sent (leave --status out to send the run's own status)"
        )
    return actual, metrics


def _notify(
    config: Config,
    status: str,
    dry_run: bool,
    errors: list[str] | None,
    env: Mapping[str, str] | None,
    metrics: dict[str, Any] | None,
    published: str | None = None,
    publish_failed: bool = False,
) -> NotifyOutcome:
    report_url = config.notify.report_url
    if publish_failed and report_url and "{run_id}" in report_url:
        report_url = None  # it would open a report that was never uploaded
    note = build_notification(status, metrics, errors, config.notify.top_columns, report_url, env, published=published)
    if not config.notify.channels:
        path = config.monitoring_dir / FALLBACK_FILE
        if not dry_run:
            atomic_write_text(path, note.text())
            (logger.info if status == "ok" else logger.warning)("notification: %s", note.title)
        delivery = Delivery(FALLBACK_FILE, "dry-run" if dry_run else "sent", 0 if dry_run else 1, preview=note.text())
        return NotifyOutcome(status, note, [delivery])
    attachments = [config.monitoring_dir / STANDALONE_FILE, config.monitoring_dir / METRICS_FILE]
    return NotifyOutcome(status, note, send_all(config, note, attachments, dry_run, env))


def pipeline_notifier(config: Config, status: str, monitoring: Any, stages: list[Any]) -> dict[str, Any]:
    """The pipeline's stage 4: notify with the stages' errors; report every channel's fate."""
    errors = [f"{s.name}: {s.error}" for s in stages if s.status == "failed" and s.error]
    if monitoring is None and errors and stages[0].status == "failed" and stages[0].detail:
        errors[0] += f"; {stages[0].detail}"  # whose outputs (and trigger.txt) still stand
    if stages and (stages[0].outputs or {}).get("publish_error"):
        errors.append(f"publishing: {stages[0].outputs['publish_error']}")
    document = monitoring.document if monitoring is not None else None
    first = (stages[0].outputs or {}) if stages else {}
    uploaded = [url for url in first.get("published") or [] if url.endswith("/" + REPORT_FILE)]
    published = uploaded[0] if uploaded else None  # the report [publish] uploaded in stage 1
    failed = bool(config.publish.url) and published is None
    outcome = _notify(
        config, status, False, errors, None, document, published, failed
    )  # the pipeline holds the workspace
    failures = list(outcome.failures)
    exported: list[str] = []
    if monitoring is not None and (config.metrics.textfile_dir or config.metrics.pushgateway_url):
        from churnops.errors import ChurnopsError
        from churnops.pipeline.exporting import export_metrics

        try:
            exported = export_metrics(config, metrics=document)
        except ChurnopsError as exc:
            failures.append(f"prometheus: {exc}")
    return {
        "status": outcome.status,
        "title": outcome.notification.title,
        "deliveries": [d.to_dict() for d in outcome.deliveries],
        "metrics_export": exported,
        "failures": failures,
    }


def describe(delivery: Delivery) -> str:
    text = f"{delivery.channel}: {delivery.status}"
    if delivery.attempts > 1:
        text += f" after {delivery.attempts} attempts"
    if delivery.error:
        text += f" - {delivery.error}"
    return text
