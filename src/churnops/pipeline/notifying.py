"""``churnops notify`` and the pipeline's notification stage (seed: "Email/Slack Alert")."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from churnops.config import FALLBACK_NOTIFICATION_FILE, METRICS_FILE, REPORT_FILE, STANDALONE_FILE, Config
from churnops.data.files import atomic_write_text
from churnops.errors import InputDataError
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
) -> NotifyOutcome:
    """Build the notification from a run's metrics and send it on every configured channel.

    ``metrics`` is the run's document (the pipeline passes its own); without it the latest
    committed metrics are read, holding the workspace so that no run changes them meanwhile.
    ``status="auto"`` says "drift" (the run raised the trigger) or "ok". With no channel
    configured, the notification goes to ``monitoring/notification.txt`` and the log.
    """
    if metrics is None:
        with workspace(config, shared=True, purpose="notify"):
            return _notify(config, status, dry_run, errors, env, read_metrics(config))
    return _notify(config, status, dry_run, errors, env, metrics)


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
    if status == "auto":
        if metrics is None:
            raise InputDataError(f"no metrics in {config.monitoring_dir}: run 'churnops monitor' first")
        status = status_of(metrics)
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
