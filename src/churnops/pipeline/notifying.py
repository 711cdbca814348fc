"""``churnops notify`` and the pipeline's notification stage (seed: "Email/Slack Alert")."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from churnops.config import Config
from churnops.data.io import atomic_write_text
from churnops.errors import InputDataError
from churnops.integrations.notifications.message import Notification, build_notification
from churnops.integrations.notifications.send import Delivery, send_all
from churnops.pipeline.monitoring import METRICS_FILE, STANDALONE_FILE
from churnops.pipeline.outputs import recover

logger = logging.getLogger(__name__)
FALLBACK_FILE = "notification.txt"


@dataclass(frozen=True)
class NotifyOutcome:
    status: str
    notification: Notification
    deliveries: list[Delivery]

    @property
    def failures(self) -> list[str]:
        return [f"{d.channel}: {d.error}" for d in self.deliveries if d.status == "failed"]


def read_metrics(config: Config) -> dict[str, Any] | None:
    path = config.monitoring_dir / METRICS_FILE
    recover(config.monitoring_dir)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputDataError(f"{path}: unreadable metrics ({exc})") from None


def notify(
    config: Config,
    status: str = "auto",
    dry_run: bool = False,
    errors: list[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> NotifyOutcome:
    """Build the notification from the latest metrics and send it on every configured channel.

    ``status="auto"`` says "drift" or "ok" from the metrics. With no channel configured, the
    notification goes to ``monitoring/notification.txt`` and the log.
    """
    metrics = read_metrics(config)
    if status == "auto":
        if metrics is None:
            raise InputDataError(f"no metrics in {config.monitoring_dir}: run 'churnops monitor' first")
        status = "drift" if metrics["dataset_drift"]["detected"] else "ok"
    note = build_notification(status, metrics, errors, config.notify.top_columns, config.notify.report_url, env)
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
    outcome = notify(config, status, errors=errors)
    failures = list(outcome.failures)
    exported: list[str] = []
    if monitoring is not None and (config.metrics.textfile_dir or config.metrics.pushgateway_url):
        from churnops.errors import ChurnopsError
        from churnops.pipeline.exporting import export_metrics

        try:
            exported = export_metrics(config)
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
