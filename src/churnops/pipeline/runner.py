"""``churnops pipeline``: the seed's Jenkins stages, runnable anywhere, in order.

1. Data Drift Monitoring - metrics, report, trigger;
2. Check Data Drift - the run wrote ``trigger.txt``: it is UNSTABLE (reported, not failed);
3. DVC Versioning - only on drift: version and push the batch stage 1 checked (copied to
   ``paths.production`` first when it was elsewhere);
4. Notification - the run's verdict (alert, warning or OK), or error when a stage failed;
5. Retraining - only when configured and drifted.

A failed stage never removes what earlier stages wrote; the summary records every stage's
status, duration, outputs and error in ``monitoring/pipeline_summary.json``.
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from churnops._version import __version__
from churnops.config import SUMMARY_FILE, Config
from churnops.data.files import atomic_write_text
from churnops.errors import ChurnopsError
from churnops.pipeline.monitoring import MonitorOutcome, MonitorRequest, rewrite_report, run_monitoring
from churnops.pipeline.workspace import outputs_stamp, standing_outputs, workspace
from churnops.redact import redact

logger = logging.getLogger(__name__)

EXIT_STAGE_FAILED = 4

STAGES = {
    1: "Data Drift Monitoring",
    2: "Check Data Drift",
    3: "DVC Versioning",
    4: "Notification",
    5: "Retraining",
}


@dataclass
class StageResult:
    number: int
    name: str
    status: str = "pending"
    """``success``, ``unstable``, ``skipped`` or ``failed``."""
    duration_s: float = 0.0
    outputs: dict[str, Any] = field(default_factory=dict)
    detail: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "name": self.name,
            "status": self.status,
            "duration_s": round(self.duration_s, 3),
            "detail": self.detail,
            "outputs": self.outputs,
            "error": self.error,
        }


@dataclass
class PipelineOutcome:
    status: str
    """``SUCCESS``, ``UNSTABLE`` or ``FAILURE`` - Jenkins' words."""
    stages: list[StageResult]
    summary_path: Path
    exit_code: int
    monitoring: MonitorOutcome | None = None

    @property
    def drift_detected(self) -> bool:
        return self.monitoring is not None and self.monitoring.drift_detected


StageEvent = Callable[[str, StageResult], None]
"""Called as ``events("start", stage)`` and ``events("end", stage)``."""

Notifier = Callable[[Config, str, MonitorOutcome | None, list[StageResult]], dict[str, Any]]
"""Sends the notification for a status (drift/warning/ok/error); returns the stage's outputs."""

Retrainer = Callable[[Config, MonitorOutcome], dict[str, Any]]


def run_pipeline(
    config: Config,
    request: MonitorRequest | None = None,
    events: StageEvent | None = None,
    wait: bool = True,
    waiting: Callable[[str], None] | None = None,
    notifier: Notifier | None = None,
    retrainer: Retrainer | None = None,
    retrain: bool = False,
    startup: float | None = None,
) -> PipelineOutcome:
    """Run the five stages under the workspace lock and write the summary (``startup``: seconds
    spent before this call, counted in the monitoring's timings - see :func:`run_monitoring`).

    The lock is held from the first stage to the summary, so a ``churnops monitor`` started
    meanwhile waits: the monitoring outputs, the versioned batch, the notification and the
    history row of this run all describe this run.
    """
    request = request or MonitorRequest()
    with workspace(config, wait=wait, waiting=waiting, purpose="pipeline"):
        if notifier is None:
            from churnops.pipeline.notifying import pipeline_notifier

            notifier = pipeline_notifier
        return _run(config, request, events, notifier, retrainer, retrain, startup)


def _run(
    config: Config,
    request: MonitorRequest,
    events: StageEvent | None,
    notifier: Notifier,
    retrainer: Retrainer | None,
    retrain: bool,
    startup: float | None,
) -> PipelineOutcome:
    started_at = datetime.now(timezone.utc)
    stages = [StageResult(number, name) for number, name in STAGES.items()]
    monitoring: MonitorOutcome | None = None

    def run_stage(stage: StageResult, body: Callable[[], None]) -> None:
        if events:
            events("start", stage)
        began = time.perf_counter()
        try:
            body()
        except ChurnopsError as exc:
            stage.status, stage.error = "failed", redact(exc)
        except Exception as exc:  # a bug in a stage must not lose the stages before it
            logger.debug("stage %s crashed", stage.name, exc_info=True)
            stage.status, stage.error = "failed", redact(f"internal error: {type(exc).__name__}: {exc}")
            stage.outputs["traceback"] = redact(traceback.format_exc(limit=5))
        stage.duration_s = time.perf_counter() - began
        if events:
            events("end", stage)

    def skip(stage: StageResult, why: str) -> None:
        stage.status, stage.detail = "skipped", why
        if events:
            events("start", stage)
            events("end", stage)

    first_error: ChurnopsError | None = None

    # 1. monitoring
    stamp = outputs_stamp(config)

    def monitor() -> None:
        nonlocal monitoring, first_error
        try:
            monitoring = run_monitoring(config, request, startup=startup)
        except Exception as exc:
            if isinstance(exc, ChurnopsError):
                first_error = exc
            if not isinstance(exc, ChurnopsError) or exc.during_run:  # what a reader of trigger.txt still sees
                stages[0].detail = standing_outputs(config, stamp) or ""
            raise
        result = monitoring.result
        stages[0].status = "success"
        stages[0].detail = (
            f"{result.verdict.headline if result.verdict else 'done'}; dataset drift score "
            f"{result.dataset_drift.score:.3f}; quality {result.data_quality.score:.4f}"
        )
        stages[0].outputs = {
            "metrics": str(monitoring.metrics_path),
            "report": str(monitoring.report_path),
            "trigger": str(monitoring.trigger_path) if monitoring.trigger_written else None,
            "run_id": result.run_id,
        }

    run_stage(stages[0], monitor)
    drifted = False

    # 2. check drift: this run's trigger decides, as trigger.txt does in the seed's Jenkinsfile
    if monitoring is None:
        skip(stages[1], "monitoring failed")
    else:

        def check() -> None:
            nonlocal drifted
            assert monitoring is not None
            trigger = config.resolve(config.paths.trigger)
            drifted = monitoring.trigger_written
            stages[1].status = "unstable" if drifted else "success"
            if drifted:
                stages[1].detail = "trigger.txt written: the run raised an alert"
            elif os.path.lexists(trigger):  # a paths.trigger shared with another configuration
                stages[1].detail = "no alert from this run (trigger.txt holds another configuration's alert)"
            else:
                stages[1].detail = "no trigger: no alert"
            stages[1].outputs = {"drift_detected": drifted, "trigger": str(trigger) if drifted else None}

        run_stage(stages[1], check)

    # 3. DVC versioning, only on drift
    if not drifted:
        skip(stages[2], "no drift" if monitoring is not None else "monitoring failed")
    else:

        def version() -> None:
            from churnops.pipeline.versioning import version_checked_batch

            assert monitoring is not None
            # exactly the batch stage 1 checked: --current FILE, else paths.production (where a
            # paths.production_url batch was fetched)
            checked = (request.current or config.resolve(config.paths.production)).absolute()
            versioned = version_checked_batch(config, checked, monitoring.document)
            outcome = versioned.outcome
            stages[2].status = "success"
            stages[2].detail = versioned.describe(config.root) + (
                f"; pushed to DVC remote {outcome.remote}" if outcome.pushed else "; not pushed"
            )
            stages[2].outputs = {
                "batch": str(versioned.batch),
                "copied_from": str(versioned.copied_from) if versioned.copied_from is not None else None,
                "commit": outcome.commit,
                "new_version": outcome.changed,
                "pushed": outcome.pushed,
                "remote": outcome.remote,
                "dvc_file": str(outcome.dvc_file),
            }
            if monitoring is not None and outcome.commit:
                rewrite_report(config, monitoring, dvc_version=outcome.commit[:12], next_steps=next_steps(stages))

        run_stage(stages[2], version)

    # 4. notification: the run's verdict (alert, warning, OK), or error
    if any(s.status == "failed" for s in stages) or monitoring is None:
        status = "error"
    else:
        from churnops.pipeline.notifying import status_of

        status = "drift" if drifted else status_of(monitoring.document)

    def notify() -> None:
        publish_error = None
        if config.publish.url and monitoring is not None:
            # after versioning, so the report uploaded is the final one (it names the DVC version);
            # a failed upload fails this stage, the local outputs stay and the team is still told
            from churnops.pipeline.storage import publish_outputs

            try:
                stages[0].outputs["published"] = publish_outputs(config, monitoring)
            except ChurnopsError as exc:
                publish_error = stages[0].outputs["publish_error"] = redact(exc)
        outputs = notifier(config, status, monitoring, stages)
        channel_failures = outputs.get("failures") or []
        failures = channel_failures + ([publish_error] if publish_error else [])
        stages[3].outputs = outputs
        # "SUCCESS - error notification" after a failed stage read as a contradiction: it was sent
        stages[3].detail = f"{status} notification sent" + (
            f"; {len(channel_failures)} {'channel' if len(channel_failures) == 1 else 'channels'} failed"
            if channel_failures
            else ""
        )
        if not config.notify.channels:  # "sent" to a file in the workspace: nobody hears of it
            from churnops.pipeline.notifying import FALLBACK_FILE

            stages[3].detail = (
                f"{status} notification written to {config.monitoring_dir.name}/{FALLBACK_FILE} only: no channel is "
                "set up ([notify] channels: e-mail, Slack, Teams, webhooks)"
            )
        published = stages[0].outputs.get("published")
        if published:
            stages[3].detail += f"; report published to {published[0].rsplit('/', 1)[0]}/"
        elif publish_error:
            stages[3].detail += "; publishing failed"
        if failures:
            stages[3].status = "failed"
            stages[3].error = "; ".join(failures)
        else:
            stages[3].status = "success"

    run_stage(stages[3], notify)

    # 5. retraining, only when configured and drifted
    if not retrain or retrainer is None:
        skip(stages[4], "retraining not enabled")
    elif monitoring is None:
        skip(stages[4], "the monitoring did not complete")
    elif not drifted:
        skip(stages[4], "no drift")
    else:

        def retrain_stage() -> None:
            assert monitoring is not None and retrainer is not None
            stages[4].outputs = retrainer(config, monitoring)
            if stages[4].outputs.get("skipped"):
                stages[4].status, stages[4].detail = "skipped", str(stages[4].outputs["skipped"])
                return
            stages[4].status = "success"
            # the versions and ROC-AUCs that decided, not just "promoted"
            stages[4].detail = str(stages[4].outputs.get("reason") or stages[4].outputs.get("decision", "retrained"))

        run_stage(stages[4], retrain_stage)

    failed = [s for s in stages if s.status == "failed"]
    status_word = "FAILURE" if failed else ("UNSTABLE" if drifted else "SUCCESS")
    if failed and failed[0].number == 1 and first_error is not None:
        exit_code = first_error.exit_code
    elif failed:
        exit_code = EXIT_STAGE_FAILED
    else:
        exit_code = 0
    summary_path = config.monitoring_dir / SUMMARY_FILE  # written under the workspace lock
    finished_at = datetime.now(timezone.utc)
    summary = {
        "schema_version": "1.0",
        "churnops_version": __version__,
        "run_id": monitoring.result.run_id if monitoring else None,
        "status": status_word,
        "exit_code": exit_code,
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": finished_at.isoformat(timespec="seconds"),
        "duration_s": round((finished_at - started_at).total_seconds(), 3),
        "drift_detected": drifted,
        "verdict": monitoring.result.verdict.to_dict() if monitoring and monitoring.result.verdict else None,
        "stages": [s.to_dict() for s in stages],
    }
    try:
        atomic_write_text(summary_path, json.dumps(summary, indent=2) + "\n")
    except OSError as exc:
        logger.error("cannot write %s: %s", summary_path, exc)
        exit_code = exit_code or EXIT_STAGE_FAILED
    return PipelineOutcome(status_word, stages, summary_path, exit_code, monitoring)


def next_steps(stages: list[StageResult]) -> list[str]:
    """The report's "what next" once the batch is versioned."""
    version = stages[2].outputs.get("commit")
    steps = [
        f"The batch is versioned with DVC in commit {version[:12]}; restore it any time with "
        f"'churnops versions restore {version[:12]}'."
        if version
        else "The batch could not be versioned.",
        "The notification stage alerts the configured channels about this drift.",
        "Review the drifted columns above; if the change is real and lasting, retrain: 'churnops retrain'.",
    ]
    return steps
