"""Closed windows evaluated in a process of their own (``serve.evaluation = "process"``).

A window's evaluation - reading its 10,000 events back, the tests, the report - is about 0.1 s of
Python work. On the service's own interpreter it takes turns with the requests under one lock;
in a second process it runs beside them, on another core. The service starts that process once,
sends it the configuration it runs with and, for each closed window, the window's number; the
process reads the window's events from the event log (read-only: the service keeps writing it),
writes the window's report, trigger and metrics, and answers with the metrics document and the
verdict. Everything the window changes elsewhere - its state in the event log, the history, the
exported gauges, the notification - the service still does, so the event log keeps one writer.

The two talk over the child's standard input and output, one JSON object per line; nothing but
JSON crosses (no pickle). The child follows the service: it ends when its input closes (the
service stopped or was killed) and ignores Ctrl-C, which the service handles. A child that
cannot start (the reference changed since the service loaded it, a missing module) or that dies
is said in the log; the window is then evaluated in the service's process, as with
``serve.evaluation = "thread"``, and a new child is started for the next one (after three deaths
in a row, the service keeps evaluating windows itself).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)

MAX_DEATHS = 3
"""Children that died in a row before the service evaluates its windows itself."""


class EvaluatorGone(RuntimeError):
    """The evaluating process is not there (it could not start, or it died)."""


class WindowFailed(RuntimeError):
    """The evaluating process could not evaluate a window (said in one line)."""


class EvaluatorProcess:
    """The service's side: starts the child, sends windows, reads the answers (one at a time)."""

    def __init__(self, setup: dict[str, Any]) -> None:
        self._setup = setup
        self._child: subprocess.Popen[bytes] | None = None
        self._ready = False
        self._lock = threading.Lock()
        self.deaths = 0
        """Children that died (or could not start) since the last window one evaluated."""
        self.disabled: str | None = None
        """Why windows are evaluated in the service's process from now on (None: they are not)."""

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def start(self) -> None:
        """Start the child (it loads what it needs while the service starts serving)."""
        with self._lock:
            if self._child is None and self.disabled is None:
                self._spawn()

    def _spawn(self) -> None:
        environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._child = subprocess.Popen(
            [sys.executable, "-m", "churnops.serve.evaluation"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=environment,
            start_new_session=True,  # a terminal's Ctrl-C goes to the service, which stops it
        )
        self._ready = False
        stdin = self._child.stdin
        assert stdin is not None
        try:
            stdin.write(_line(self._setup))
            stdin.flush()
        except OSError:  # died at once: said when the first window asks for it
            pass

    def evaluate(self, window: int) -> dict[str, Any]:
        """The child's answer for ``window`` (``document``, ``status``, ``headline``, ``score``,
        ``trigger``); :class:`WindowFailed` when it could not evaluate it, :class:`EvaluatorGone`
        when there is no child to ask."""
        with self._lock:
            if self.disabled is not None:
                raise EvaluatorGone(self.disabled)
            if self._child is None or self._child.poll() is not None:
                if self._child is not None:
                    self._died(f"the window evaluator stopped (exit status {self._child.returncode})")
                    if self.disabled is not None:
                        raise EvaluatorGone(self.disabled)
                try:
                    self._spawn()
                except OSError as exc:
                    self._disable(f"the window evaluator cannot start: {exc.strerror or exc}")
                    raise EvaluatorGone(str(exc)) from None
            child = self._child
            assert child is not None and child.stdin is not None and child.stdout is not None
            try:
                if not self._ready:
                    answer = _read(child.stdout)
                    if "fatal" in answer:
                        self._disable(str(answer["fatal"]))
                        raise EvaluatorGone(str(answer["fatal"]))
                    self._ready = True
                    logger.info("windows are evaluated in process %s", child.pid)
                child.stdin.write(_line({"window": window}))
                child.stdin.flush()
                answer = _read(child.stdout)
            except (OSError, ValueError) as exc:
                self._died(f"the window evaluator stopped ({exc})")
                raise EvaluatorGone(str(exc)) from None
            self.deaths = 0
            if answer.get("window") != window:
                self._died(f"the window evaluator answered for window {answer.get('window')!r}, not {window}")
                raise EvaluatorGone("unexpected answer")
            if "error" in answer:
                raise WindowFailed(str(answer["error"]))
            return answer

    def _died(self, why: str) -> None:
        self.deaths += 1
        self._stop()
        if self.deaths >= MAX_DEATHS:
            self._disable(f"{why}; {MAX_DEATHS} times in a row")
        else:
            logger.warning("%s; the window is evaluated in the service's process, and a new evaluator started", why)

    def _disable(self, why: str) -> None:
        self.disabled = why
        self._stop()
        logger.warning("windows are evaluated in the service's process from now on: %s", why)

    def _stop(self, timeout: float = 60) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        try:
            if child.stdin is not None:
                child.stdin.close()  # the child ends when its input closes
        except OSError:
            pass
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()

    def close(self) -> None:
        """Stop the child after the window it is on (the service is stopping)."""
        with self._lock:
            self._stop()


def _line(message: dict[str, Any]) -> bytes:
    # NaN passes (a window's score can be one); the configuration holds none (allow_inf_nan=False)
    return json.dumps(message, ensure_ascii=True).encode() + b"\n"


def _one_line(exc: BaseException) -> str:
    from churnops.redact import redact

    return redact(" ".join(str(exc).split())[:500]) or type(exc).__name__


def _read(stream: IO[bytes]) -> dict[str, Any]:
    line = stream.readline()
    if not line:
        raise OSError("its output closed")
    answer = json.loads(line)
    if not isinstance(answer, dict):
        raise ValueError("an answer that is not a JSON object")
    return answer


def setup_message(
    config: Any, reference_sha256: str | None, event_log: Path, folder: Path, trigger_on: list[str], dtypes: dict
) -> dict[str, Any]:
    """What the child needs to evaluate windows as the service would: the configuration the
    service runs with (its columns inferred), the reference it loaded (by its sha256), the event
    log, the windows' folder, what raises an alert and the events' column types."""
    return {
        "config": config.model_dump(mode="json", exclude_unset=True),  # what the user chose, no more
        "resolved": config.model_dump(mode="json"),
        "root": str(config.root),
        "source": None if config.source is None else str(config.source),
        "reference_sha256": reference_sha256,
        "event_log": str(event_log),
        "folder": str(folder),
        "trigger_on": list(trigger_on),
        "dtypes": dict(dtypes),
    }


# --- the child -------------------------------------------------------------------------------


def _prepare(setup: dict[str, Any]) -> Any:
    """Everything a window's evaluation needs, from the service's setup message."""
    from churnops.config.models import Config
    from churnops.monitor.settings import settings_from_config
    from churnops.pipeline.monitoring import MonitorRequest, inferred_configuration, reference_source
    from churnops.pipeline.reference import get_reference_profile
    from churnops.serve.eventlog import LogReader

    texts = [setup.get(key) for key in ("root", "event_log", "folder")]
    if not all(isinstance(text, str) and text for text in texts):
        raise ValueError("the service's setup is incomplete")
    trigger_on, dtypes = setup.get("trigger_on"), setup.get("dtypes")
    if not isinstance(trigger_on, list) or not all(isinstance(x, str) for x in trigger_on):
        raise ValueError("the service's setup is incomplete")
    if not isinstance(dtypes, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in dtypes.items()):
        raise ValueError("the service's setup is incomplete")
    given = setup.get("source")
    source_file = Path(given) if isinstance(given, str) else None
    config = Config.model_validate({**setup["config"], "root": Path(texts[0]), "source": source_file})
    source = reference_source(config, MonitorRequest())
    config = inferred_configuration(config, source.path)
    if config.model_dump(mode="json") != setup.get("resolved"):
        raise ValueError("the configuration read here differs from the service's; restart the service")
    settings = settings_from_config(config)
    profile, reference_info, _, _ = get_reference_profile(config, source, settings, use_cache=True)
    if reference_info.sha256 != setup.get("reference_sha256"):
        raise ValueError(f"the reference {source.path} changed since the service loaded it; restart the service")
    reader = LogReader(Path(texts[1]))
    return reader, profile, settings, reference_info, Path(texts[2]), trigger_on, dtypes


def child() -> int:
    """The child's loop: the setup line, then one window per line until the input closes."""
    import signal

    from churnops.errors import ChurnopsError

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answers = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # whatever prints goes to the service's standard error, never into the answers
    # warnings only: the service has said its notices about the columns already
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s window evaluator: %(message)s", stream=sys.stderr)
    setup_line = sys.stdin.buffer.readline()
    if not setup_line:
        return 0
    try:
        reader, profile, settings, reference_info, folder, trigger_on, dtypes = _prepare(json.loads(setup_line))
    except (ChurnopsError, OSError, ValueError, TypeError, KeyError) as exc:
        answers.write(_line({"fatal": _one_line(exc)}))
        return 2
    try:
        answers.write(_line({"ready": True}))
        _serve(answers, reader, profile, settings, reference_info, folder, trigger_on, dtypes)
    except BrokenPipeError:  # the service is gone: nobody to answer
        pass
    finally:
        reader.close()
    return 0


def _serve(answers: IO[bytes], reader: Any, profile: Any, settings: Any, reference_info: Any, folder: Path,
           trigger_on: list[str], dtypes: dict[str, str]) -> None:  # fmt: skip
    from churnops.serve.windows import evaluate_window

    for line in sys.stdin.buffer:
        try:
            window = json.loads(line)["window"]
            if type(window) is not int:
                raise ValueError("no window number")
        except (ValueError, KeyError, TypeError):
            answers.write(_line({"window": None, "error": "a request that is not a window number"}))
            continue
        try:
            outcome = evaluate_window(
                reader.records(window), window, profile, settings, reference_info, folder, trigger_on, dtypes
            )
        except Exception as exc:  # a window that cannot be evaluated must not stop the next ones
            logger.exception("window %s could not be evaluated", window)
            answers.write(_line({"window": window, "error": _one_line(exc)}))
            continue
        answers.write(
            _line(
                {
                    "window": window,
                    "document": outcome.document,
                    "status": outcome.status,
                    "headline": outcome.headline,
                    "score": outcome.score,
                    "trigger": outcome.trigger,
                }
            )
        )


if __name__ == "__main__":
    sys.exit(child())
