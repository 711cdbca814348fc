"""Closed windows evaluated in a process of their own (``serve.evaluation = "process"``).

A window's evaluation - reading its 10,000 events back, the tests, the report - is about 0.07 s
of Python work. On the service's own interpreter it takes turns with the requests under one
lock; in a second process it runs beside them, on another core, at a lower priority (niceness
:data:`NICENESS`): when requests keep every core busy, windows wait in line. The service's window thread
starts that process when the first window closes, sends it the configuration it runs with and,
for each closed window, the window's number; the process reads the window's events from the
event log (read-only: the service keeps writing it), writes the window's report, trigger and
metrics, and answers with the metrics document and the verdict. Everything the window changes
elsewhere - its state in the event log, the history, the exported gauges, the notification - the
service still does, so the event log keeps one writer. Nothing here ever runs on the event loop.

The two talk over the child's standard input and output, one JSON object per line; nothing but
JSON crosses (no pickle). The child runs the very churnops the service runs (the service's
import path without the working folder, in Python's isolated mode: nothing from ``PYTHON*``
variables either), without the service's token in its environment, and logs through the same
one-line, redacted format. It follows the service: it ends when its input closes, is killed by
Linux when the service dies (even frozen), and ignores Ctrl-C, which the service handles.

When the child cannot start (the reference changed since the service loaded it, churnops was
upgraded meanwhile), dies, or takes longer than ``serve.evaluation_timeout`` over a window, it is
said in the log and the window is evaluated in the main process, as with
``serve.evaluation = "thread"``; a new child is started for the next window, and after three
failures in a row the service keeps evaluating windows itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from churnops.serve.eventlog import LogReader
from churnops.serve.windows import EvaluatorGone, WindowContext, WindowFailed, reason_of

logger = logging.getLogger(__name__)

MAX_DEATHS = 3
"""Children that failed in a row before the service evaluates its windows itself."""
SHUTDOWN_GRACE = 20.0
"""Seconds a window already sent may still take once the service is stopping."""
MAX_ANSWER_BYTES = 1 << 30
"""Longest answer line read from the child (a window's metrics document)."""
NICENESS = 10
"""The child's scheduling niceness: when the cores are busy, the service's requests go first
and windows are evaluated with what is left (they queue, never the answers)."""


def boot_script(module: str, function: str) -> str:
    """What a child process of the service runs: the service's import path (its first argument,
    JSON), then ``function`` of ``module`` called with its other arguments as whole numbers; a
    failed import is one JSON line, ``{"fatal": ...}``, never a traceback."""
    return f"""import json, sys
try:
    sys.path[:] = json.loads(sys.argv[1])
    from {module} import {function}
except Exception as exc:
    print(json.dumps({{"fatal": "cannot start: " + " ".join(f"{{type(exc).__name__}}: {{exc}}".split())[:300]}}))
    sys.exit(2)
sys.exit({function}(*map(int, sys.argv[2:])))
"""


BOOT = boot_script("churnops.serve.evaluation", "child")
"""What the child runs: the service's import path, then :func:`child` with the service's pid."""


def child_path() -> list[str]:
    """The service's import path for the child, without the working folder (which ``python -m``
    puts first), the folder holding the churnops the service runs first."""
    import churnops

    home = str(Path(churnops.__file__).resolve().parent.parent)
    here = {"", ".", os.getcwd()}
    return [home, *(entry for entry in sys.path if entry not in here and entry != home)]


def exit_status(code: int) -> str:
    import signal

    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class _Stopping(TimeoutError):
    """The service is stopping and the grace period for a window in progress is over."""


class EvaluatorProcess:
    """The service's side: starts the child, sends windows, reads the answers - one window at a
    time, always from the window thread (never from the event loop)."""

    def __init__(self, setup: dict[str, Any], timeout: float = 600.0, hidden: tuple[str, ...] = ()) -> None:
        self._setup = setup
        self.timeout = timeout
        """Seconds the child may take to start, and over one window."""
        self._hidden = hidden
        """Environment variables the child does not get (the service's token, the Redis URL)."""
        self._child: subprocess.Popen[bytes] | None = None
        self._ready = False
        self._pending = b""
        self._lock = threading.Lock()
        self._closing_at: float | None = None
        self.deaths = 0
        """Children that failed since the last window one evaluated."""
        self.disabled: str | None = None
        """Why windows are evaluated in the service's process from now on (None: they are not)."""

    @property
    def grace(self) -> float:
        """Seconds a window already sent may still take once the service is stopping."""
        return min(SHUTDOWN_GRACE, self.timeout)

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def start(self) -> None:
        """Start the child ahead of its first window (it loads what it needs meanwhile)."""
        with self._lock:
            if self._child is None and self.disabled is None and self._closing_at is None:
                self._spawn()

    def _spawn(self) -> None:
        """Start a child; when it cannot be (no such program, no memory), windows are evaluated in
        the main process from now on."""
        environment = {k: v for k, v in os.environ.items() if k not in self._hidden}
        try:
            child = subprocess.Popen(
                [sys.executable, "-I", "-c", BOOT, json.dumps(child_path()), str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=environment,
                start_new_session=True,  # a terminal's Ctrl-C goes to the service, which stops it
            )
        except OSError as exc:
            self._disable(f"the window evaluator cannot start: {exc.strerror or exc}")
            return
        self._child, self._ready, self._pending = child, False, b""
        # reaped as soon as it ends, even while no window comes (no zombie for hours)
        threading.Thread(target=self._reap, args=(child,), name="churnops-evaluator-reaper", daemon=True).start()
        stdin = child.stdin
        assert stdin is not None
        try:
            stdin.write(json_line(self._setup))
            stdin.flush()
        except OSError:  # died at once: found when its first answer is read
            pass

    @staticmethod
    def _reap(child: subprocess.Popen[bytes]) -> None:
        child.wait()  # sets child.returncode

    def evaluate(self, window: int) -> dict[str, Any]:
        """The child's answer for ``window`` (``document``, ``status``, ``headline``, ``score``,
        ``trigger``); :class:`WindowFailed` when it could not evaluate it, :class:`EvaluatorGone`
        when there is no child to ask (the window is then evaluated by the caller)."""
        with self._lock:
            if self.disabled is not None:
                raise EvaluatorGone(self.disabled)
            child = self._child
            if child is not None and child.returncode is not None:
                why = f"the window evaluator had stopped ({exit_status(child.returncode)})"
                self._failed(why, spawn=True)
                if self.disabled is not None:
                    raise EvaluatorGone(self.disabled)
            if self._child is None:
                if self._closing_at is not None:
                    raise EvaluatorGone("the service is stopping")
                self._spawn()
            child = self._child
            if child is None:
                raise EvaluatorGone(self.disabled or "")
            assert child.stdin is not None
            try:
                if not self._ready:
                    try:
                        answer = self._answer(child, time.monotonic() + self.timeout)
                    except _Stopping:
                        raise
                    except TimeoutError:
                        self._failed(f"the window evaluator did not start within {self.timeout:g} s")
                        raise EvaluatorGone("too slow to start") from None
                    if "fatal" in answer:
                        self._disable(str(answer["fatal"]))
                        raise EvaluatorGone(str(answer["fatal"]))
                    self._ready = True
                    logger.info("windows are evaluated in process %s", child.pid)
                child.stdin.write(json_line({"window": window}))
                child.stdin.flush()
                answer = self._answer(child, time.monotonic() + self.timeout)
            except _Stopping:
                self._stop(kill=True)
                logger.warning(
                    "stopping: the window evaluator did not finish window %s within %g s; it is stopped and the "
                    "windows left are evaluated in the main process", window, self.grace,
                )  # fmt: skip
                raise EvaluatorGone("stopping") from None
            except TimeoutError:
                self._failed(f"the window evaluator took more than {self.timeout:g} s over window {window}")
                raise EvaluatorGone("too slow") from None
            except (OSError, ValueError, RecursionError) as exc:
                code = child.returncode if child.returncode is not None else child.poll()
                how = exit_status(code) if code is not None else str(exc)
                self._failed(f"the window evaluator stopped while evaluating window {window} ({how})")
                raise EvaluatorGone(str(exc)) from None
            if answer.get("window") != window:
                self._failed(f"the window evaluator answered for window {answer.get('window')!r}, not {window}")
                raise EvaluatorGone("unexpected answer")
            self.deaths = 0
            if "error" in answer:
                raise WindowFailed(str(answer["error"]))
            return answer

    def _answer(self, child: subprocess.Popen[bytes], deadline: float) -> dict[str, Any]:
        """The child's next answer line, read until ``deadline`` (earlier once stopping)."""
        stream = child.stdout
        assert stream is not None
        descriptor = stream.fileno()
        while b"\n" not in self._pending:
            limit = deadline if self._closing_at is None else min(deadline, self._closing_at + self.grace)
            left = limit - time.monotonic()
            if left <= 0:
                raise _Stopping if limit < deadline else TimeoutError
            readable, _, _ = select.select([descriptor], [], [], min(left, 1.0))
            if not readable:
                continue
            block = os.read(descriptor, 1 << 20)
            if not block:
                raise OSError("its output closed")
            self._pending += block
            if len(self._pending) > MAX_ANSWER_BYTES:
                raise ValueError("an answer longer than 1 GiB")
        line, _, self._pending = self._pending.partition(b"\n")
        answer = json.loads(line)
        if not isinstance(answer, dict):
            raise ValueError("an answer that is not a JSON object")
        return answer

    def _failed(self, why: str, spawn: bool = False) -> None:
        """A child that failed: stopped, counted; the service evaluates windows itself after
        :data:`MAX_DEATHS` in a row. ``spawn``: found dead before a window was sent (a new child
        takes the window), else the window is evaluated in the service's process."""
        self.deaths += 1
        self._stop(kill=True)
        if self.deaths >= MAX_DEATHS:
            self._disable(f"{why}; {MAX_DEATHS} times in a row")
            return
        here = "" if spawn else "; the window is evaluated in the main process"
        later = (
            ""
            if self._closing_at is not None
            else ("; a new window evaluator is started" if spawn else ", and a new evaluator started")
        )
        logger.warning("%s%s%s", why, here, later)
        if self._closing_at is None:
            self._spawn()  # it loads while the window is evaluated here

    def _disable(self, why: str) -> None:
        self.disabled = why
        self._stop(kill=True)
        logger.warning("windows are evaluated in the main process from now on: %s", why)

    def _stop(self, kill: bool = False) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        if kill:
            child.kill()  # a stopped (SIGSTOP) or busy child too
        try:
            if child.stdin is not None:
                child.stdin.close()  # the child ends when its input closes
        except OSError:
            pass
        try:
            child.wait(timeout=self.grace)  # while its reaper waits on it too
        except subprocess.TimeoutExpired:
            child.kill()
        if child.stdout is not None:
            child.stdout.close()

    def stopping(self) -> None:
        """The service is stopping: a window in progress gets :attr:`grace` seconds more at
        most, and no new child is started (the windows left are evaluated in the
        service's process)."""
        self._closing_at = time.monotonic()

    def close(self) -> None:
        """Stop the child (after :meth:`stopping` and the queued windows: it is idle, nothing of
        it is lost - a frozen one is not waited for)."""
        self.stopping()
        with self._lock:
            self._stop(kill=True)


def json_line(message: dict[str, Any]) -> bytes:
    # NaN passes (a window's score can be one); the configuration holds none (allow_inf_nan=False)
    return json.dumps(message, ensure_ascii=True).encode() + b"\n"


def setup_message(config: Any, context: WindowContext, event_log: Path) -> dict[str, Any]:
    """What the child needs to evaluate windows as the service would: the configuration the
    service runs with (its columns inferred), the service's window context (its reference by its
    sha256), the event log, the churnops it runs and how much it logs."""
    import churnops

    return {
        "config": config.model_dump(mode="json", exclude_unset=True),  # what the user chose, no more
        "resolved": config.model_dump(mode="json"),
        "root": str(config.root),
        "source": None if config.source is None else str(config.source),
        "reference_sha256": context.reference_info.sha256,
        "event_log": str(event_log),
        "folder": str(context.folder),
        "trigger_on": list(context.trigger_on),
        "dtypes": dict(context.dtypes),
        "churnops": str(Path(churnops.__file__).resolve()),
        "log_level": logging.getLogger("churnops").getEffectiveLevel(),
    }


# --- the child -------------------------------------------------------------------------------


def _prepare(setup: dict[str, Any]) -> tuple[LogReader, WindowContext]:
    """The event log and everything a window's evaluation needs, from the service's setup message."""
    import churnops
    from churnops.config.loading import remember_secrets
    from churnops.config.models import Config
    from churnops.errors import ChurnopsError
    from churnops.monitor.settings import settings_from_config
    from churnops.pipeline.monitoring import MonitorRequest, inferred_configuration, reference_source
    from churnops.pipeline.reference import get_reference_profile

    if setup.get("churnops") != str(Path(churnops.__file__).resolve()):
        raise ValueError("churnops was installed again since the service started; restart the service")
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
    remember_secrets(config)
    source = reference_source(config, MonitorRequest())
    config = inferred_configuration(config, source.path)
    if config.model_dump(mode="json") != setup.get("resolved"):
        raise ValueError("the configuration read here differs from the service's; restart the service")
    settings = settings_from_config(config)
    try:
        profile, reference_info, _, _ = get_reference_profile(config, source, settings, use_cache=True)
    except ChurnopsError as exc:
        raise ValueError(
            f"the reference {source.path} is no longer the one the service loaded ({exc}); restart the service"
        ) from None
    if reference_info.sha256 != setup.get("reference_sha256"):
        raise ValueError(f"the reference {source.path} changed since the service loaded it; restart the service")
    context = WindowContext(profile, settings, reference_info, Path(texts[2]), trigger_on, dtypes)
    return LogReader(Path(texts[1])), context


def follow_parent(parent: int) -> None:
    """End with the service even when frozen (``kill -STOP``) and it is killed: Linux sends this
    process SIGKILL when the thread that started it ends; elsewhere its input closing ends it."""
    import signal

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the service ended before this line
        os._exit(0)


def child(parent: int | None = None) -> int:
    """The child's loop: the setup line, then one window per line until the input closes."""
    import signal

    from churnops.logs import log_to_stderr

    if parent is not None:
        follow_parent(parent)
    with contextlib.suppress(OSError):
        os.nice(NICENESS)  # requests first: on a busy machine, windows wait, answers do not
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answers = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # whatever prints goes to the service's standard error, never into the answers
    log_to_stderr(logging.WARNING, "window evaluator")
    setup_line = sys.stdin.buffer.readline()
    if not setup_line:
        return 0
    try:
        setup = json.loads(setup_line)
        level = setup.get("log_level") if isinstance(setup, dict) else None
        if isinstance(level, int) and level <= logging.DEBUG:  # -v: the details here too; else no notice twice
            log_to_stderr(logging.DEBUG, "window evaluator")
        reader, context = _prepare(setup)
    except Exception as exc:  # said to the service in one line; it evaluates windows itself then
        logger.debug("the window evaluator cannot start", exc_info=True)
        answers.write(json_line({"fatal": reason_of(exc)}))
        return 2
    try:
        answers.write(json_line({"ready": True}))
        _serve(answers, reader, context)
    except BrokenPipeError:  # the service is gone: nobody to answer
        pass
    finally:
        reader.close()
    return 0


def _serve(answers: IO[bytes], reader: LogReader, context: WindowContext) -> None:
    for line in sys.stdin.buffer:
        try:
            window = json.loads(line)["window"]
            if type(window) is not int or window < 0:
                raise ValueError("no window number")
        except (ValueError, KeyError, TypeError, RecursionError):
            answers.write(json_line({"window": None, "error": "a request that is not a window number"}))
            continue
        try:
            if not reader.is_closed(window):
                raise ValueError(f"window {window} is not closed")
            outcome = context.evaluate(reader.records(window), window)
        except Exception as exc:  # a window that cannot be evaluated must not stop the next ones
            logger.debug("window %s could not be evaluated", window, exc_info=True)  # the service says it (-v: why)
            answers.write(json_line({"window": window, "error": reason_of(exc)}))
            continue
        answers.write(
            json_line(
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
