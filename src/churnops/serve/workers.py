"""``churnops serve --workers N``: worker processes that check and score requests beside the service.

The service's process (the "main" one) keeps everything that must have one owner: the event log
and its single writer, the windows and their evaluation, the detectors, the A/B measures, the
Prometheus counters. It starts ``N`` worker processes that accept the connections on its
listening socket (one queue of connections; whichever worker is free takes the next one); the
main process takes none itself - it answers the workers alone, so that its one core goes to
writing, not to reading requests and scoring:

* ``POST /v1/events`` and ``POST /v1/predict`` are read, checked and (predict) scored in the
  worker - the model call, the part that takes a core - and written as the JSON texts the event
  log keeps; then the texts (with the values the detectors watch) go to the main process over a
  private Unix socket, which writes them to the event log without reading them again (its core
  goes to the writing); the worker answers
  once they are committed. The requests a worker holds while its previous message is on its way
  go together in the next one, so the main process handles one message for many requests. A
  refusal (401, 413, 422 ...) is answered by the worker and counted by the main process.
* Every other request is passed to the main process as it came (method, path, token, body) and
  its answer passed back: one story, whichever process took the connection.

The private socket lives in a folder only the service's user can enter, created at start and
removed at stop; a worker proves itself with a secret made at start and given to it on its
standard input (never in its arguments or environment, which other users can read); the main
process answers worker messages on that socket only. Nothing but JSON crosses (no pickle).

A worker ends when its standard input closes (the main process stopping) and is killed by Linux
when the main process dies, even killed. A worker that dies is started again (at most
:data:`MAX_RESTARTS` times in a row; the others and the main process keep serving meanwhile).
Every worker scores with the registered versions the main process scores with - sent at start
and whenever the main process takes up a model the aliases now point at (after a window) - so
that a worker started again never scores with a newer model than the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from churnops.serve.evaluation import boot_script, child_path, exit_status, follow_parent, json_line

if TYPE_CHECKING:
    from churnops.serve.records import Logged

logger = logging.getLogger(__name__)

MAX_WORKERS = 64
MAX_RESTARTS = 5
"""A worker slot that dies this many times in a row without becoming ready is left empty."""
STOP_GRACE = 20.0
"""Seconds the workers get to finish their requests when the service stops."""
IDLE_REUSE = 2.0
"""Seconds a connection to the main process is kept for the next request (the main process
closes idle ones after 5)."""
OWNER_TIMEOUT = 120.0
"""Seconds a worker waits for the main process's answer (a /v1/drift?wait= asks for up to 60)."""
PASSED_HEADERS = ("host", "authorization", "content-type", "accept")
"""The request headers passed to the main process."""
RETURNED_HEADERS = (
    "content-type", "content-security-policy", "x-content-type-options", "retry-after", "cache-control", "location",
    "allow",
)  # fmt: skip
"""The answer headers passed back to the client."""
WORKER_BOOT = boot_script("churnops.serve.workers", "worker")
"""What a worker runs: the service's import path, then :func:`worker` with the main process's pid,
the listening socket's descriptor and the worker's number."""


# --- the main process's side ----------------------------------------------------------------


@dataclass
class _Slot:
    number: int
    child: subprocess.Popen[bytes] | None = None
    failures: int = 0
    ready: threading.Event = field(default_factory=threading.Event)


class WorkerPool:
    """The worker processes of the main one: started, watched, told, stopped."""

    def __init__(
        self,
        count: int,
        listener: socket.socket,
        setup: dict[str, Any],
        hidden: tuple[str, ...],
        announce: Any = None,
        models: dict[str, Any] | None = None,
    ) -> None:
        sweep_private_folders()
        self.folder = Path(tempfile.mkdtemp(prefix=f"churnops-serve-{os.getpid()}-"))  # mode 0700: only this user
        self.socket_path = self.folder / "main.sock"
        self.secret = secrets.token_urlsafe(32)
        self._listener = listener
        self._setup = {**setup, "socket": str(self.socket_path), "secret": self.secret}
        self._hidden = hidden
        self._slots = [_Slot(number) for number in range(1, count + 1)]
        self._lock = threading.Lock()
        self._stopping = False
        self._announce = announce
        """Called with a line for the user once every worker serves (the first time only)."""
        self.models = models or {}
        """The registered versions the main process scores with: what every worker loads, a
        worker started again included (never what an alias points at meanwhile)."""
        self.on_exit: Any = None
        """Called with a worker's number and process id when that process ends (on its watcher's thread)."""

    def private_socket(self) -> socket.socket:
        """The Unix socket the workers talk to the main process on (bound, listening)."""
        private = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        private.bind(str(self.socket_path))
        os.chmod(self.socket_path, 0o600)
        private.listen(512)
        return private

    def start(self) -> None:
        for slot in self._slots:
            self._spawn(slot)

    @property
    def ready(self) -> int:
        return sum(slot.ready.is_set() for slot in self._slots)

    def _spawn(self, slot: _Slot) -> None:
        environment = {k: v for k, v in os.environ.items() if k not in self._hidden}
        fd = self._listener.fileno()
        try:
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-c",
                    WORKER_BOOT,
                    json.dumps(child_path()),
                    str(os.getpid()),
                    str(fd),
                    str(slot.number),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=environment,
                pass_fds=(fd,),
                start_new_session=True,  # a terminal's Ctrl-C goes to the main process, which stops the workers
            )
        except OSError as exc:
            logger.warning("worker %s cannot start: %s", slot.number, exc.strerror or exc)
            return
        slot.child = child
        slot.ready.clear()
        stdin = child.stdin
        assert stdin is not None
        try:
            stdin.write(json_line({**self._setup, "models": self.models}))
            stdin.flush()
        except OSError:
            pass  # died at once: its watcher says so
        threading.Thread(
            target=self._watch, args=(slot, child), name=f"churnops-worker-{slot.number}", daemon=True
        ).start()

    def _watch(self, slot: _Slot, child: subprocess.Popen[bytes]) -> None:
        """Read the worker's lines (ready, or why it cannot start); when it ends, start it again."""
        assert child.stdout is not None
        why = ""
        for line in child.stdout:
            try:
                said = json.loads(line)
            except ValueError:
                continue
            if isinstance(said, dict) and said.get("ready"):
                slot.failures = 0
                slot.ready.set()
                logger.info("worker %s (process %s) is serving", slot.number, child.pid)
                with self._lock:
                    announce, everyone = self._announce, self.ready == len(self._slots)
                    if everyone:
                        self._announce = None
                if announce is not None and everyone:
                    announce(f"churnops serve: {len(self._slots)} worker processes take connections")
            elif isinstance(said, dict) and "fatal" in said:
                why = str(said["fatal"])[:300]
            elif isinstance(said, dict) and isinstance(said.get("loaded"), dict):
                arms = [
                    f"{arm} version {str(version)[:40]}" if version is not None else f"no {arm}"
                    for arm, version in said["loaded"].items()
                    if arm in ("champion", "challenger")
                ]
                if arms:
                    logger.info("worker %s (process %s) scores with %s", slot.number, child.pid, ", ".join(arms))
        code = child.wait()
        slot.ready.clear()
        if self.on_exit is not None:
            self.on_exit(slot.number, child.pid)
        with self._lock:
            if self._stopping or slot.child is not child:
                return
            slot.failures += 1
            reason = why or exit_status(code)
            if slot.failures >= MAX_RESTARTS:
                logger.warning(
                    "worker %s stopped (%s), %s times in a row: it is not started again", slot.number, reason,
                    slot.failures,
                )  # fmt: skip
                slot.child = None
                return
            logger.warning("worker %s stopped (%s); it is started again", slot.number, reason)
            self._spawn(slot)

    def use_models(self, models: dict[str, Any]) -> None:
        """Have every worker score with these registered versions (the main process's, after it
        took up a model the aliases now point at); a worker started later loads them too."""
        with self._lock:
            changed, self.models = models != self.models, models
        if changed:
            self.tell({"models": models})

    def tell(self, message: dict[str, Any]) -> None:
        """Send every running worker one message."""
        with self._lock:
            children = [slot.child for slot in self._slots if slot.child is not None]
        for child in children:
            try:
                assert child.stdin is not None
                child.stdin.write(json_line(message))
                child.stdin.flush()
            except (OSError, ValueError):
                pass  # stopping or dead: its watcher deals with it

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Close the workers' input: each stops taking connections, answers what it has, ends.
        Killed when one is not done after ``grace`` seconds."""
        with self._lock:
            self._stopping = True
            children = [slot.child for slot in self._slots if slot.child is not None]
        for child in children:
            try:
                assert child.stdin is not None
                child.stdin.close()
            except OSError:
                pass
        deadline = time.monotonic() + grace
        for child in children:
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                logger.warning("worker process %s did not stop within %g s: killed", child.pid, grace)
                child.kill()
                child.wait()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def sweep_private_folders() -> None:
    """Remove the private folders of services that were killed (``churnops-serve-PID-*`` in the
    temporary folder, this user's, a real folder, its process gone)."""
    import re
    import stat

    for folder in Path(tempfile.gettempdir()).glob("churnops-serve-*-*"):
        found = re.fullmatch(r"churnops-serve-([0-9]+)-[A-Za-z0-9_]+", folder.name)
        try:
            info = folder.lstat()
        except OSError:
            continue
        if found is None or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            continue
        try:
            os.kill(int(found.group(1)), 0)
            continue  # its service still runs
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue
        shutil.rmtree(folder, ignore_errors=True)


def worker_setup(config: Any, token: str | None, dtypes: dict[str, str], watched: tuple[str, ...]) -> dict[str, Any]:
    """What a worker needs to check and score requests as the main process does (``watched``: the
    keys whose values the detectors see)."""
    import churnops

    return {
        "config": config.model_dump(mode="json", exclude_unset=True),
        "resolved": config.model_dump(mode="json"),
        "root": str(config.root),
        "source": None if config.source is None else str(config.source),
        "token": token,
        "dtypes": dict(dtypes),
        "watched": list(watched),
        "churnops": str(Path(churnops.__file__).resolve()),
        "log_level": logging.getLogger("churnops").getEffectiveLevel(),
    }


def models_of(state: Any) -> dict[str, Any]:
    """The registered versions the service's champion and challenger were loaded from."""
    return {
        arm: batcher.champion.registered if batcher is not None else None
        for arm, batcher in (("champion", state.batcher), ("challenger", state.challenger))
    }


def _load_models(state: WorkerState, config: Any, models: Any) -> dict[str, str | None]:
    """Score with the registered versions ``models`` names (the main process's), loading those
    that changed; the version each changed arm now scores with (None: no such arm)."""
    from churnops.integrations import mlflow_registry as registry
    from churnops.pipeline.scoring import store_of
    from churnops.serve.scoring import Champion, MicroBatcher

    if not isinstance(models, dict):
        raise ValueError("the models are not a JSON object")
    store = store_of(config)
    changed: dict[str, str | None] = {}
    for arm in ("champion", "challenger"):
        wanted, current = models.get(arm), state.batcher if arm == "champion" else state.challenger
        if wanted is None:
            if current is None:
                continue
            replaced = None
        elif current is not None and current.champion.registered == wanted:
            continue
        else:
            fields = ("name", "alias", "version", "run_id", "location")
            if not isinstance(wanted, dict) or set(wanted) != set(fields):
                raise ValueError(f"the {arm}'s registered version is incomplete")
            version = registry.ModelVersion(*(wanted[key] for key in fields))
            replaced = MicroBatcher(Champion.of(config, registry.load_version(store, version)), state.schema.dtypes)
        if arm == "champion":
            state.batcher = replaced
        else:
            state.challenger = replaced
        changed[arm] = None if replaced is None else str(wanted["version"])[:40]
    return changed


# --- the worker's side ----------------------------------------------------------------------


class MainLink:
    """HTTP/1.1 to the main process over its private Unix socket, connections kept for reuse."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def request(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, timeout: float = OWNER_TIMEOUT
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """The main process's answer: status, headers, body. OSError when it does not answer."""
        head = [f"{method} {target} HTTP/1.1", f"content-length: {len(body)}"]
        if not any(name == "host" for name, _ in headers):  # the client's, passed on: redirects name it
            head.append("host: churnops")
        head += [f"{name}: {value}" for name, value in headers]
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        while self._idle:  # a kept connection: when the main process had closed it, nothing was read
            reader, writer, since = self._idle.pop()
            if time.monotonic() - since > IDLE_REUSE or reader.at_eof():
                writer.close()
                continue
            try:
                return await self._exchange(reader, writer, data, method, timeout)
            except _NotSent:
                writer.close()
                continue
        reader, writer = await asyncio.open_unix_connection(self.path, limit=1 << 16)
        try:
            return await self._exchange(reader, writer, data, method, timeout)
        except _NotSent:
            raise OSError("the main process closed the connection") from None

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes, method: str, timeout: float
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            writer.write(data)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        except asyncio.IncompleteReadError as exc:
            writer.close()
            if not exc.partial:
                raise _NotSent from None  # closed before answering: the request was not read
            raise OSError("the main process's answer was cut") from None
        except (ConnectionError, BrokenPipeError):
            writer.close()
            raise _NotSent from None
        except (TimeoutError, asyncio.LimitOverrunError, asyncio.TimeoutError):
            writer.close()
            raise OSError("the main process did not answer in time") from None
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.append((name.strip().lower(), value.strip()))
        found = dict(headers)
        keep = found.get("connection", "").lower() != "close"
        try:
            if method == "HEAD" or status in (204, 304):
                body = b""
            elif "content-length" in found:
                body = await asyncio.wait_for(reader.readexactly(int(found["content-length"])), timeout)
            else:
                body, keep = await asyncio.wait_for(reader.read(), timeout), False
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, asyncio.TimeoutError, ValueError):
            writer.close()
            raise OSError("the main process's answer was cut") from None
        if keep and len(self._idle) < 256:
            self._idle.append((reader, writer, time.monotonic()))
        else:
            writer.close()
        return status, headers, body


class _NotSent(Exception):
    """The connection closed before any answer: the main process did not read the request."""


@dataclass
class WorkerState:
    """What a worker checks and scores with (the names :mod:`churnops.serve.app`'s helpers read)."""

    number: int
    schema: Any
    token: str | None
    max_batch: int
    max_body_bytes: int
    ab: Any
    ab_key: str | None
    link: MainLink
    secret: str
    watched: tuple[str, ...] = ()
    batcher: Any = None
    challenger: Any = None
    stopping: bool = False
    budget: Any = None
    """The bytes of request bodies this worker works on at once (``serve.max_inflight_bytes``)."""


class Forwarder:
    """What a worker sends the main process: the requests it answered, gathered - every request
    waiting while the previous message is on its way goes in the next one, so that the main process
    handles one message for many requests."""

    def __init__(self, state: WorkerState) -> None:
        self.state = state
        self._waiting: list[tuple[Encoded, asyncio.Future[dict[str, Any]]]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._counts_changed = False

    async def send(self, entry: Encoded) -> dict[str, Any]:
        """The main process's answer for ``entry``; OSError when it could not be had."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((entry, future))
        self._start()
        return await future

    def counts_changed(self) -> None:
        """This worker's counts (the requests waiting for room) changed: the main process is told
        with the next message, sent now if none is on its way - so that ``/metrics`` is current
        even when no request is answered meanwhile."""
        self._counts_changed = True
        self._start()

    def _start(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()

    async def _run(self) -> None:
        import orjson

        from churnops.serve import app as served

        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting or self._counts_changed:
                self._counts_changed = False
                batch, events, size = [], 0, 0
                while (
                    self._waiting
                    and len(batch) < served.MAX_WORKER_REQUESTS
                    and events < FORWARD_EVENTS
                    and size < served.FORWARD_BYTES
                ):
                    item = self._waiting.pop(0)
                    batch.append(item)
                    events += item[0].events
                    size += len(item[0].body)
                champion = self.state.batcher.champion if self.state.batcher is not None else None
                from churnops.serve.connections import CLOSED

                head = {
                    "worker": self.state.number,
                    "pid": os.getpid(),
                    "calls": champion.calls if champion is not None else 0,
                    "rows": champion.rows if champion is not None else 0,
                    "closed": dict(CLOSED),
                    "bodies": {"waiting": self.state.budget.waiting, "waited": self.state.budget.waited}
                    if self.state.budget is not None
                    else {},
                }
                # the entries were written as JSON when they were made (off the event loop when large)
                message = orjson.dumps(head)[:-1] + b',"requests":[' + b",".join(e.body for e, _ in batch) + b"]}"
                try:
                    status, _, body = await self.state.link.request(
                        "POST", served.WORKER_PATH,
                        [(served.WORKER_HEADER, self.state.secret), ("content-type", "application/json")],
                        message,
                    )  # fmt: skip
                    answers = orjson.loads(body).get("answers") if status == 200 else None
                    if not isinstance(answers, list) or len(answers) != len(batch):
                        raise OSError(f"the main process answered {status}: {body[:200]!r}")
                except (OSError, ValueError) as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(OSError(str(exc)))
                    continue
                for (_, future), answer in zip(batch, answers, strict=True):
                    if not future.done():
                        future.set_result(answer if isinstance(answer, dict) else {"error": "no answer"})


FORWARD_EVENTS = 20_000
"""Events in one message to the main process at most (more wait for the next)."""


@dataclass(frozen=True)
class Encoded:
    """One request for the main process, written as JSON, and the events it carries."""

    body: bytes
    events: int = 0

    @classmethod
    def of(cls, entry: dict[str, Any]) -> Encoded:
        import orjson

        return cls(orjson.dumps(entry), len(entry.get("ids") or ()))


def worker_app(state: WorkerState) -> Any:
    """The worker's application: ``/v1/events`` and ``/v1/predict`` checked (and scored) here and
    written by the main process; every other request passed on."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from churnops.serve import app as served
    from churnops.serve.eventlog import NotWritten

    forwarder = Forwarder(state)
    if state.budget is not None:
        state.budget.on_change = forwarder.counts_changed
    not_answering = "the service's main process is not answering; try again"

    def check(payload: Any) -> Any:
        return served.check_events(state, payload)

    def fast(raw: bytes) -> Any:
        return state.schema.logged(raw, state.max_batch, state.watched)

    async def refused(endpoint: str, answer: Response, started: float) -> Response:
        """A refusal answered here, counted by the main process."""
        with contextlib.suppress(OSError):
            entry = {"endpoint": endpoint, "status": answer.status_code, "seconds": time.perf_counter() - started}
            await forwarder.send(Encoded.of(entry))
        return answer

    async def written(entry: Encoded) -> dict[str, Any] | Response:
        try:
            answer = await forwarder.send(entry)
        except OSError:
            return served._problem(503, not_answering)
        if answer.get("not_written"):  # a full disk, an I/O error: said once by the main process
            return served.not_written(NotWritten(str(answer["error"])))
        if "error" in answer:
            logger.warning("the main process refused records: %s", answer["error"])
            return served._problem(503, "the records could not be written; try again")
        return answer

    async def events(request: Request) -> Response:
        started = time.perf_counter()
        checked = await served.read_json(state, request, check, fast)
        if isinstance(checked, Response):
            return await refused("events", checked, started)
        answer = await written(await _written_entry(state, "events", started, checked))
        if isinstance(answer, Response):
            return answer
        return served.JSONAnswer(
            {
                "accepted": answer["accepted"],
                "duplicates": answer["duplicates"],
                "event_ids": answer["event_ids"],
                "window": answer["window"],
                "closed_windows": answer["closed_windows"],
            }
        )

    async def predict(request: Request) -> Response:
        started = time.perf_counter()
        checked = await served.read_json(state, request, check)
        outcome = checked if isinstance(checked, Response) else await served.score_checked(state, checked)
        if isinstance(outcome, Response):
            return await refused("predict", outcome, started)
        scored, scores, arms, batchers = outcome
        answer = await written(await _written_entry(state, "predict", started, scored))
        if isinstance(answer, Response):
            return answer
        return served.JSONAnswer(
            served.predictions_answer(answer["event_ids"], answer["duplicates"], scores, arms, batchers)
            | {"window": answer["window"], "closed_windows": answer["closed_windows"]}
        )

    async def passed_on(request: Request) -> Response:
        # no endpoint but /v1/labels reads a body: any other is left unread - never held here,
        # never sent on (the main process answers such a request as it would without one)
        return await forward(request, b"")

    async def labels(request: Request) -> Response:
        started = time.perf_counter()
        if not served.authorized(state, request):  # refused before a byte of the body is read
            return await refused("labels", served._problem(401, served.UNAUTHORIZED), started)
        body = await served.read_body(state, request)
        if isinstance(body, Response):
            return await refused("labels", body, started)
        return await forward(request, body)

    async def forward(request: Request, body: bytes) -> Response:
        """The main process's answer to ``request`` (with ``body``), as it gave it."""
        target = request.scope.get("raw_path") or request.url.path.encode()
        query = request.scope.get("query_string") or b""
        path = target.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        headers = [(name, request.headers[name]) for name in PASSED_HEADERS if name in request.headers]
        if any(c in value for _, value in headers for c in "\r\n"):
            return served._problem(400, "a header holds a line end")
        try:
            status, answer_headers, answer = await state.link.request(request.method, path, headers, body)
        except OSError:
            return served._problem(503, not_answering)
        kept = {name: value for name, value in answer_headers if name in RETURNED_HEADERS}
        if request.method == "HEAD":  # the length of what GET answers, as the main process said it
            head = Response(b"", status_code=status, headers=kept)
            length = dict(answer_headers).get("content-length")
            if length is not None and length.isdigit():
                head.headers["content-length"] = length
            return head
        return Response(answer, status_code=status, headers=kept)

    async def not_found(request: Request, exc: Exception) -> Response:
        return served._problem(404, "no such endpoint")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return served._problem(405, "method not allowed")

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]
    routes = [
        Route("/v1/events", served.budgeted(state, events, partial(refused, "events")), methods=["POST"]),
        Route("/v1/predict", served.budgeted(state, predict, partial(refused, "predict")), methods=["POST"]),
        Route("/v1/labels", served.budgeted(state, labels, partial(refused, "labels")), methods=["POST"]),
        Route("/{rest:path}", passed_on, methods=methods),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})
    # /v1/events/ is no endpoint: answered 404, never redirected to a URL built from the client's Host header
    app.router.redirect_slashes = False
    return app


async def _written_entry(
    state: WorkerState, endpoint: str, started: float, records: list[tuple[str | None, dict[str, Any]]] | Logged
) -> Encoded:
    """What the main process writes for checked (and scored) ``records``: their ids, each record
    as the JSON text the event log keeps, and the values the detectors see (``watched``). Written
    here, off the event loop when there are many, so that the main process's core goes to the
    event log alone."""
    from starlette.concurrency import run_in_threadpool

    from churnops.serve.records import Logged

    def entry() -> Encoded:
        from churnops.serve.eventlog import as_logged

        if isinstance(records, Logged):  # checked and written as the log keeps them already
            ids, texts, columns = records.ids, records.texts, records.columns
        else:
            texts, columns = as_logged([record for _, record in records], state.watched)
            ids = [event_id for event_id, _ in records]
        seconds = time.perf_counter() - started
        return Encoded.of(
            {"endpoint": endpoint, "status": 200, "seconds": seconds, "ids": ids, "texts": texts, "columns": columns}
        )

    count = len(records.ids) if isinstance(records, Logged) else len(records)
    return entry() if count <= 64 else await run_in_threadpool(entry)


def worker(parent: int, fd: int, number: int) -> int:
    """A worker's life: the setup line, the models, then serving until its input closes."""
    import signal

    from churnops.logs import log_to_stderr

    follow_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    said = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # whatever prints goes to the service's standard error, never into the lines read
    log_to_stderr(logging.WARNING, f"worker {number}")
    line = sys.stdin.buffer.readline()
    if not line:
        return 0
    try:
        setup = json.loads(line)
        level = setup.get("log_level") if isinstance(setup, dict) else None
        if isinstance(level, int) and level <= logging.DEBUG:
            log_to_stderr(logging.DEBUG, f"worker {number}")
        state, config = _prepare(setup, number)
    except Exception as exc:  # said to the main process in one line
        from churnops.serve.windows import reason_of

        logger.debug("the worker cannot start", exc_info=True)
        said.write(json_line({"fatal": reason_of(exc)}))
        return 2
    return _serve(state, config, fd, said)


def _prepare(setup: Any, number: int) -> tuple[WorkerState, Any]:
    import churnops
    from churnops.config.loading import remember_secrets
    from churnops.config.models import Config
    from churnops.pipeline.monitoring import MonitorRequest, inferred_configuration, reference_source
    from churnops.serve.records import RecordSchema

    if not isinstance(setup, dict):
        raise ValueError("the service's setup is not a JSON object")
    if setup.get("churnops") != str(Path(churnops.__file__).resolve()):
        raise ValueError("churnops was installed again since the service started; restart the service")
    texts = [setup.get(key) for key in ("root", "socket", "secret")]
    dtypes, token, watched = setup.get("dtypes"), setup.get("token"), setup.get("watched")
    if not isinstance(watched, list) or not all(isinstance(key, str) for key in watched):
        raise ValueError("the service's setup is incomplete")
    if not all(isinstance(text, str) and text for text in texts) or not (token is None or isinstance(token, str)):
        raise ValueError("the service's setup is incomplete")
    if not isinstance(dtypes, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in dtypes.items()):
        raise ValueError("the service's setup is incomplete")
    given = setup.get("source")
    config = Config.model_validate(
        {**setup["config"], "root": Path(str(texts[0])), "source": Path(given) if isinstance(given, str) else None}
    )
    remember_secrets(config)
    config = inferred_configuration(config, reference_source(config, MonitorRequest()).path)
    if config.model_dump(mode="json") != setup.get("resolved"):
        raise ValueError("the configuration read here differs from the service's; restart the service")
    from churnops.serve import app as served
    from churnops.serve.ab import customer_column

    schema = RecordSchema(dtypes)
    serve = config.serve
    state = WorkerState(
        number, schema, token, serve.max_batch, serve.max_body_bytes, serve.ab, customer_column(config),
        MainLink(str(texts[1])), str(texts[2]), tuple(watched),
        budget=served.BodyBudget.of(serve),
    )  # fmt: skip
    _load_models(state, config, setup.get("models") or {})
    return state, config


def _serve(state: WorkerState, config: Any, fd: int, said: IO[bytes]) -> int:
    import gc

    import uvicorn

    from churnops.serve.connections import MAX_CONNECTIONS, SWITCH_INTERVAL, guarded_protocol

    listener = socket.socket(fileno=fd)

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:
                said.write(json_line({"ready": True}))

    server = Server(
        uvicorn.Config(
            worker_app(state),
            http=guarded_protocol(config.serve.request_timeout, config.serve.max_body_bytes),
            log_level="warning",
            access_log=False,
            server_header=False,
            lifespan="off",
            limit_concurrency=MAX_CONNECTIONS,
            timeout_keep_alive=5,
        )
    )

    def listen() -> None:
        """The main process's messages; its input closing means stop."""
        for line in sys.stdin.buffer:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and "models" in message:
                try:
                    changed = _load_models(state, config, message["models"])
                except Exception:  # noqa: BLE001 - its requests fail loudly; tried again with the next message
                    logger.warning("the main process's models could not be loaded", exc_info=True)
                    continue
                if changed:  # the main process says so (what an operator, or a test, waits for)
                    with contextlib.suppress(OSError):
                        said.write(json_line({"loaded": changed}))
        state.stopping = True
        server.should_exit = True

    threading.Thread(target=listen, name="churnops-worker-input", daemon=True).start()
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL)
    with contextlib.suppress(BrokenPipeError):  # the main process gone: nobody to tell
        server.run(sockets=[listener])
    return 0
