"""``churnops serve``: the ASGI application (Starlette on uvicorn).

Starlette rather than FastAPI: what an event may hold comes from the reference profile at start
(its columns and their types), not from classes written ahead, so FastAPI's model validation and
generated schema would not describe it; Starlette is FastAPI's own core without that layer -
fewer imports at start and less work per request.

Endpoints (write endpoints need ``Authorization: Bearer <token>``):

* ``POST /v1/events`` - one event or a list (at most ``serve.max_batch``), each an object of the
  reference's columns and an optional ``event_id``; written to the event log before the answer.
* ``GET /v1/drift`` - the open window (its number and events so far) and the last evaluated one
  (the same document as ``monitoring_metrics.json``).
* ``GET /v1/windows/{n}/report`` - a closed window's report.
* ``GET /metrics`` - Prometheus: the last window's gauges (the names ``churnops metrics export``
  uses), events, windows, requests and their latency.
* ``GET /healthz``, ``GET /readyz`` and ``GET /`` (a status page: no script, renders under a
  strict Content-Security-Policy).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import json
import logging
import math
import re
import threading
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from churnops.config.models import ABConfig
from churnops.errors import ChurnopsError
from churnops.escape import names_line, one_line_short
from churnops.serve.connections import content_length
from churnops.serve.detectors import Detectors
from churnops.serve.eventlog import ARM, MODEL_VERSION, PROBABILITY, Appended, EventLog, NotWritten
from churnops.serve.records import MAX_ERRORS, MAX_EVENT_ID, RecordError, RecordSchema, all_finite
from churnops.serve.scoring import MicroBatcher, arm_of
from churnops.serve.windows import METRICS_FILE, REPORT_FILE, WindowEvaluator, read_window_file

logger = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
"""The status page needs nothing else: no script, no external resource, no framing."""
HTML_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"}
WINDOW_NUMBER = re.compile(r"[0-9]{1,12}", re.ASCII)
SECONDS = re.compile(r"[0-9]{1,3}(\.[0-9]{1,6})?", re.ASCII)
SLOW_MEASURE = 0.1
"""Seconds a measure of the arms takes beyond which its result is reused for as long again."""
MAX_WAITERS = 64
"""Requests that may wait for a window at once (more: 429)."""
INLINE_BODY = 16_384
"""Bodies up to this size are parsed and checked on the event loop (tens of microseconds);
larger ones on a worker thread, so that they never hold up the loop."""


@dataclass
class ServiceState:
    log: EventLog
    schema: RecordSchema
    evaluator: WindowEvaluator
    detectors: Detectors
    token: str | None
    max_batch: int
    max_body_bytes: int
    window_size: int
    folder: Path
    window_period: float | None = None
    stopping: bool = False
    """Set when the service is asked to stop (SIGTERM, Ctrl-C): requests waiting for a window
    are answered at once, so that the stop does not wait for them."""
    """Seconds after its first event that a window closes, full or not (``serve.window_period``)."""
    batcher: MicroBatcher | None = None
    """Scores ``/v1/predict`` with the champion; None when there is no champion."""
    challenger: MicroBatcher | None = None
    """Scores the challenger's share of the customers (``[serve.ab]``), when there is one."""
    ab: ABConfig = field(default_factory=ABConfig)
    """``[serve.ab]``: the challenger's share and alias, and what a promotion needs."""
    ab_key: str | None = None
    budget: BodyBudget | None = None
    """The bytes of request bodies worked on at once (``serve.max_inflight_bytes``)."""
    worker_secret: str | None = None
    """With ``--workers``: what the worker processes prove themselves with on the private socket."""
    worker_counts: WorkerCounts = field(default_factory=lambda: WorkerCounts())
    """What the worker processes told of their counts (model calls, connections cut, waits)."""
    workers: Any = None
    """The worker processes (:class:`churnops.serve.workers.WorkerPool`), with ``--workers``."""
    config: Any = None
    """The configuration the service runs with (its columns inferred)."""
    model_health: dict[str, Any] | None = None
    """The champion's ROC-AUC on the labelled traffic against ``model.min_auc`` and
    ``model.max_auc_drop`` (:func:`churnops.serve.service.champion_health`), after each window."""
    health_key: Any = None
    """What :attr:`model_health` was measured on (the outcomes recorded, the champion's version)."""

    _arms_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _arms_cache: tuple[Any, float, float, dict[str, Any]] | None = field(default=None, repr=False)
    """(what it was measured on, when it ended, how long it took, the document)."""

    def measured_arms(self) -> dict[str, Any] | None:
        """The A/B document (:func:`churnops.serve.ab.ab_document`) of the models scoring now,
        from the event log; None without a champion. It reads up to 400,000 rows, and anyone may
        ask (``GET /v1/drift``): one measure at a time, shared by the requests waiting for it,
        reused while the log and the models are unchanged, and - while they change, when a measure
        takes more than :data:`SLOW_MEASURE` - at most one measure's time old, so that a flood of
        requests costs at most half a core."""
        from churnops.serve import ab

        champion, challenger = self.batcher, self.challenger
        if champion is None:
            return None
        arms = [ab.Arm("champion", "champion", champion.champion.version)]
        if challenger is not None:
            arms.append(ab.Arm("challenger", self.ab.challenger, challenger.champion.version))
        with self._arms_lock:
            key = (self.log.version(), tuple(arms))
            cached = self._arms_cache
            if cached is not None and cached[0][1] == key[1]:
                _, ended, took, kept = cached
                if cached[0] == key or (took > SLOW_MEASURE and time.monotonic() - ended < took):
                    return kept
            started = time.monotonic()
            document = ab.ab_document(
                self.log.scored(ab.MAX_EVENTS, self.ab_key),
                arms,
                champion.champion.name,
                self.ab.level,
                self.ab.min_labels,
                self.ab.min_each_outcome,
                self.ab_key is not None,
            )
            ended = time.monotonic()
            self._arms_cache = (key, ended, ended - started, document)
            return document


def _health_lines(health: dict[str, Any] | None) -> list[str]:
    """The champion's measured ROC-AUC and its alert, for ``/metrics`` (none before enough labels)."""
    if health is None:
        return []
    return [
        "# HELP churnops_serve_champion_roc_auc The champion's ROC-AUC on the labelled live traffic",
        "# TYPE churnops_serve_champion_roc_auc gauge",
        f'churnops_serve_champion_roc_auc{{version="{_label(str(health["version"]))}"}} {health["roc_auc"]}',
        "# HELP churnops_serve_model_alert 1 when the champion's ROC-AUC on the labelled live traffic is below "
        "model.min_auc or fell from the reference's by more than model.max_auc_drop",
        "# TYPE churnops_serve_model_alert gauge",
        f"churnops_serve_model_alert {1 if health['decayed'] else 0}",
    ]


class BodyTooLarge(Exception):
    pass


class JSONAnswer(Response):
    """A JSON answer written by orjson (several times faster than the standard library's; NaN,
    which JSON has no word for, is written null)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        import orjson

        return orjson.dumps(content, default=_plain, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def _plain(value: Any) -> Any:
    """What orjson does not write itself: NumPy scalars as Python numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


async def _body(request: Request, limit: int) -> bytes:
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class BodyBudget:
    """The bytes of request bodies one process works on at once (``serve.max_inflight_bytes``).

    A body grows to about ten times its size in Python objects while it is read and checked, so
    many large requests at once could take the machine's memory. Each write request reserves its
    declared size (``Content-Length``, else ``serve.max_body_bytes``) before its body is read and
    gives it back once answered; beyond the budget, requests wait for room for at most
    ``patience`` seconds - then 503, before the connection's own deadline
    (``serve.request_timeout``) would cut it with no answer. A request larger than the whole
    budget goes alone.

    >>> async def two():
    ...     budget = BodyBudget(100, patience=0.01)
    ...     async with budget.reserved(80) as first:
    ...         async with budget.reserved(30) as second:
    ...             return first, second, budget.in_use, budget.waiting
    >>> asyncio.run(two())
    (True, False, 80, 0)
    """

    @classmethod
    def of(cls, serve: Any) -> BodyBudget:
        """The room ``[serve]`` gives: ``max_inflight_bytes``, waited for up to half of ``request_timeout``."""
        return cls(serve.max_inflight_bytes, serve.request_timeout / 2)

    def __init__(self, total: int, patience: float, on_change: Any = None) -> None:
        self.total = total
        self.patience = patience
        self.on_change = on_change
        """Called (no arguments) each time requests start or stop waiting."""
        self.in_use = 0
        self.waited = 0
        """Requests that had to wait for room, since the start."""
        self._queue: deque[tuple[asyncio.Future[None], int]] = deque()  # waiting, in order of arrival

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    @property
    def waiting(self) -> int:
        """Requests waiting for room now (the ``churnops_serve_bodies_waiting`` gauge)."""
        return len(self._queue)

    def _grant(self) -> None:
        """Give room to the waiting requests that fit, first come first served: only the first
        in line is looked at (a wake-up of every waiter at each change cost a second of CPU
        when a thousand waiting clients left)."""
        granted = False
        while self._queue:
            waiter, size = self._queue[0]
            if not waiter.done() and self.in_use + size > self.total:
                break
            self._queue.popleft()
            granted = True
            if not waiter.done():  # done: it gave up (its wait ran out, or it was cancelled)
                self.in_use += size
                waiter.set_result(None)
        if granted:
            self._changed()

    @contextlib.asynccontextmanager
    async def reserved(self, size: int) -> AsyncIterator[bool]:
        """Hold ``size`` bytes of the budget; yields False (nothing held) when no room came in time.

        Waiting requests are served in order of arrival: a request that would fit does not pass
        one that waits already (a steady flow of small bodies would starve a large one)."""
        size = max(0, min(size, self.total))
        if self._queue or self.in_use + size > self.total:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry = (waiter, size)
            self._queue.append(entry)
            self.waited += 1
            self._changed()
            try:
                await asyncio.wait_for(asyncio.shield(waiter), self.patience)
            except asyncio.TimeoutError:  # noqa: UP041 - Python 3.10's is not the built-in one
                pass
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._give_back(size)  # granted as it was cancelled: the room goes on
                else:
                    waiter.cancel()
                    self._left(entry)
                raise
            if not waiter.done() or waiter.cancelled():
                waiter.cancel()
                self._left(entry)
                yield False
                return
        else:
            self.in_use += size
        try:
            yield True
        finally:
            self._give_back(size)

    def _left(self, entry: tuple[asyncio.Future[None], int]) -> None:
        """A waiting request that gave up leaves the line (and may unblock the ones behind it)."""
        with contextlib.suppress(ValueError):
            self._queue.remove(entry)
            self._changed()
        self._grant()

    def _give_back(self, size: int) -> None:
        self.in_use -= size
        self._grant()


def declared_length(request: Request) -> int | None:
    """The body size a request declares (``Content-Length``, see :func:`content_length`); None
    when it declares none.

    >>> from starlette.requests import Request
    >>> declared_length(Request({"type": "http", "headers": [(b"content-length", b"0" * 5000 + b"519")]}))
    519
    """
    return content_length(request.headers.get("content-length", ""))


def declared_size(request: Request, limit: int) -> int:
    """The body size a request declares, at most ``limit``; ``limit`` when it declares none."""
    declared = declared_length(request)
    return limit if declared is None else min(declared, limit)


def budgeted(state: Any, handler: Any, busy: Any = None) -> Any:
    """``handler`` run with its request's body size held in ``state.budget`` (see :class:`BodyBudget`);
    a request without the token holds nothing: ``handler`` refuses it before reading its body (and
    counts the refusal where its endpoint's answers are counted). A request that got no room in
    time is answered 503, passed through ``busy(answer, started)`` when given (to be counted)."""

    async def held(request: Request) -> Response:
        budget: BodyBudget | None = state.budget
        if budget is None or not authorized(state, request):
            return await handler(request)  # type: ignore[no-any-return]
        started = time.perf_counter()
        async with budget.reserved(declared_size(request, state.max_body_bytes)) as room:
            if not room:
                answer = _problem(503, "the service is busy with other large requests; try again", retry=True)
                return answer if busy is None else await busy(answer, started)
            return await handler(request)  # type: ignore[no-any-return]

    return held


def _label(value: str) -> str:
    """A Prometheus label value: backslash, quote and line ends escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


LABEL_KEYS = ("event_id", "label")
"""What one item of ``POST /v1/labels`` holds."""


def not_written(exc: NotWritten, what: str = "events") -> JSONAnswer:
    """The answer (503) to a request whose events (or ``what`` else) the event log could not write."""
    message = f"the event log could not write the {what} ({exc}); none was kept: send them again"
    return _problem(503, message, retry=True)


def _problem(status: int, message: str, problems: list[str] | None = None, retry: bool = False) -> JSONAnswer:
    body: dict[str, Any] = {"error": message}
    if problems:
        body["problems"] = problems
    return JSONAnswer(body, status_code=status, headers={"Retry-After": "1"} if retry else None)


UNAUTHORIZED = "the service's bearer token is required (Authorization: Bearer ...); none or another was given"
"""The answer (401) to a write request without the service's token."""
WORKER_PATH = "/internal/v1/worker"
"""Where worker processes (``--workers``) send what they scored; answered on the private socket only."""
WORKER_HEADER = "x-churnops-worker"
MAX_WORKER_REQUESTS = 1_024
"""Requests a worker sends in one message at most."""
FORWARD_BYTES = 32 << 20
"""Bytes of requests a worker gathers in one message at most (more wait for the next message;
one larger request goes alone)."""


def worker_message_bytes(max_body_bytes: int, max_batch: int) -> int:
    """The longest message a worker may send the main process: :data:`FORWARD_BYTES` of requests
    and one more request. A request's records written as JSON may be longer than the body they
    came in - a number written in full (``1e15`` is ``1000000000000000.0``), a probability, arm
    and version added, every quote escaped again inside the message, the detectors' values
    beside - at most about 14.5 times the body and a few hundred bytes per record."""
    return FORWARD_BYTES + 16 * max_body_bytes + 1_024 * max_batch + (1 << 20)


CLOSED_REASONS = ("slow_request", "answer_not_taken", "too_large", "crowded_out")
"""Why the service cuts a connection (``churnops_serve_closed_connections_total``)."""


@dataclass(frozen=True)
class Written:
    """Records a worker checked (and scored), as the event log takes them."""

    ids: list[str | None]
    texts: list[str]
    """Each record as the JSON text the event log keeps."""
    columns: dict[str, list[Any]]
    """The values the detectors see, by key, in the order of ``ids``."""


@dataclass(frozen=True)
class WorkerEntry:
    """One request a worker answered: written (``written``), or refused and only to be counted."""

    endpoint: str
    """``events`` or ``predict``."""
    status: int
    seconds: float
    """The worker's time on the request before sending it."""
    written: Written | None = None
    """The records to write (with probability, arm and model version for ``predict``)."""
    error: str | None = None
    """Why this entry cannot be written (the others of the message still are)."""


class WorkerCounts:
    """The counts the worker processes tell the main process with each message, summed for
    ``/metrics``. A worker's counters start from 0 with each of its processes: when one ends,
    what it told is kept (a counter never goes back), its gauge (requests waiting for room) is
    dropped, and a message still on its way from it counts for nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # a worker's end is heard on a thread of its own
        self._told: dict[int, WorkerMessage] = {}
        self._ended: set[int] = set()  # the processes that ended
        self._kept: Counter[str] = Counter()  # what the ended processes told, by counter

    def told(self, message: WorkerMessage) -> None:
        with self._lock:
            if message.pid not in self._ended:
                self._told[message.worker] = message

    def ended(self, worker: int, pid: int) -> None:
        """Worker ``worker``'s process ``pid`` ended (killed, crashed or stopped)."""
        with self._lock:
            self._ended.add(pid)
            last = self._told.get(worker)
            if last is not None and last.pid == pid:
                del self._told[worker]
                self._kept.update(self._counters(last))

    def total(self, key: str) -> int:
        """A counter summed over the workers: ``closed REASON``, ``waited``, ``calls``, ``rows``,
        or ``rows N`` (worker N's)."""
        with self._lock:
            return self._kept[key] + sum(self._counters(message)[key] for message in self._told.values())

    def waiting(self) -> int:
        with self._lock:
            return sum(message.bodies.get("waiting", 0) for message in self._told.values())

    def workers(self) -> list[int]:
        """The workers that told anything, ended processes included."""
        with self._lock:
            kept = {int(key.split()[1]) for key in self._kept if key.startswith("rows ")}
            return sorted(kept | set(self._told))

    @staticmethod
    def _counters(message: WorkerMessage) -> Counter[str]:
        """What one message counts, by the keys of :meth:`total`."""
        counters = Counter({f"closed {reason}": count for reason, count in message.closed.items()})
        counters.update({"waited": message.bodies.get("waited", 0), "calls": message.calls, "rows": message.rows})
        counters[f"rows {message.worker}"] = message.rows
        return counters


@dataclass(frozen=True)
class WorkerMessage:
    worker: int
    calls: int
    rows: int
    entries: list[WorkerEntry]
    pid: int = 0
    """The worker's process: its counts start from 0 with each process."""
    closed: dict[str, int] = field(default_factory=dict)
    """The connections the worker cut so far, by reason (``churnops_serve_closed_connections_total``)."""
    bodies: dict[str, int] = field(default_factory=dict)
    """The worker's requests waiting for room to read their body now, and that waited since it started."""


_ID_TYPES = frozenset({type(None), str})
_VALUE_TYPES = frozenset({type(None), int, float, bool})


WORKER_ENDPOINTS = ("events", "predict", "labels")
"""The endpoints whose answers a worker reports (``/v1/labels``: only its refusals)."""


def worker_message(message: Any, watched: tuple[str, ...], max_batch: int) -> WorkerMessage:
    """A worker's message checked for its form: the requests it answered (none: a message that
    only brings its counts up to date), each written one with an id (or none), a JSON object's
    text and a plain value of each ``watched`` key for each record; ValueError when the message
    itself is malformed (an entry that is gets its ``error``).

    The records themselves were checked by the worker, with the same code as a request here: a
    worker proved itself with the secret given to it alone, and what it checked is not read
    again (reading and checking them a second time took the main process's core, the one that
    writes the event log - workers could then not raise the service's throughput)."""
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    worker, calls, rows, pid = (message.get(k) for k in ("worker", "calls", "rows", "pid"))
    if not all(type(n) is int and 0 <= n < 2**62 for n in (worker, calls, rows, pid)):
        raise ValueError("worker, calls, rows and pid must be whole numbers")
    closed = _counts(message, "closed", CLOSED_REASONS, "the connections cut by reason")
    bodies = _counts(message, "bodies", ("waiting", "waited"), "the requests waiting for room and that waited")
    requests = message.get("requests")
    if not isinstance(requests, list) or not 0 <= len(requests) <= MAX_WORKER_REQUESTS:
        raise ValueError(f"requests must be a list of at most {MAX_WORKER_REQUESTS} entries")
    entries = []
    for entry in requests:
        if not isinstance(entry, dict):
            raise ValueError("each request must be a JSON object")
        endpoint, status, seconds = entry.get("endpoint"), entry.get("status"), entry.get("seconds")
        if endpoint not in WORKER_ENDPOINTS or type(status) is not int or not 200 <= status < 600:
            raise ValueError("each request needs its endpoint (events, predict or labels) and its status")
        if endpoint == "labels" and status < 400:
            raise ValueError("a worker answers /v1/labels only to refuse it")
        if type(seconds) is not float or not 0 <= seconds < 86_400:
            raise ValueError("seconds must be a number of seconds")
        try:
            entries.append(WorkerEntry(endpoint, status, seconds, _written(entry, watched, max_batch)))
        except ValueError as exc:
            entries.append(WorkerEntry(endpoint, status, seconds, None, str(exc)[:300]))
    return WorkerMessage(worker, calls, rows, entries, pid, closed, bodies)  # type: ignore[arg-type]


def _counts(message: dict[str, Any], name: str, keys: Any, what: str) -> dict[str, int]:
    """A worker's counts ``message[name]`` (none: empty): whole numbers under ``keys`` only."""
    counts = message.get(name, {})
    if not isinstance(counts, dict) or not all(
        key in keys and type(count) is int and 0 <= count < 2**62 for key, count in counts.items()
    ):
        raise ValueError(f"{name} must count {what}")
    return dict(counts)


def _written(entry: dict[str, Any], watched: tuple[str, ...], max_batch: int) -> Written | None:
    ids, texts, columns, status = entry.get("ids"), entry.get("texts"), entry.get("columns"), entry["status"]
    if ids is None and texts is None and columns is None:
        if status < 400:
            raise ValueError("a refusal's status must be from 400 to 599")
        return None
    if status != 200:
        raise ValueError("records come with status 200")
    if not isinstance(ids, list) or not 0 < len(ids) <= max_batch:
        raise ValueError(f"ids must be a list of 1 to {max_batch:,} event ids")
    if not set(map(type, ids)) <= _ID_TYPES or not all(
        0 < len(event_id) <= MAX_EVENT_ID and event_id.isprintable() for event_id in ids if event_id is not None
    ):
        raise ValueError(f"each event id must be text of 1 to {MAX_EVENT_ID} printable characters, or null")
    if not isinstance(texts, list) or len(texts) != len(ids) or set(map(type, texts)) != {str}:
        raise ValueError("one record (a JSON object's text) for each event id")
    if not all(len(text) >= 2 and text[0] == "{" and text[-1] == "}" for text in texts):
        raise ValueError("each record must be a JSON object's text")
    if not isinstance(columns, dict) or set(columns) != set(watched):
        raise ValueError(f"columns must give the values of {list(watched)}")
    for values in columns.values():
        if not isinstance(values, list) or len(values) != len(ids) or not set(map(type, values)) <= _VALUE_TYPES:
            raise ValueError("one number (or null) of each watched column for each event id")
        if not all_finite([value for value in values if type(value) is float]):
            raise ValueError("one number (or null) of each watched column for each event id")
    return Written(ids, texts, columns)


def authorized(state: Any, request: Request) -> bool:
    """Whether ``request`` carries the service's bearer token (compared in constant time)."""
    if state.token is None:
        return True
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), state.token.encode())


async def read_body(state: Any, request: Request) -> bytes | Response:
    """The request's body, or the 413 or 400 answer saying why there is none (``state`` gives
    ``max_body_bytes``)."""
    try:
        return await _body(request, state.max_body_bytes)
    except BodyTooLarge:
        return _problem(413, f"the body is larger than {state.max_body_bytes:,} bytes (serve.max_body_bytes)")
    except ClientDisconnect:
        return _problem(400, "the client went away before sending the whole body")


async def read_json(state: Any, request: Request, check: Any, fast: Any = None) -> Any:
    """``check(payload)`` of the request's authorized JSON body (off the event loop), or the 4xx
    answer saying why there is none. ``state`` gives ``token`` and ``max_body_bytes``. ``fast``,
    when given, is tried on the raw body first: what it returns unless None (then the body is
    parsed and checked)."""
    if not authorized(state, request):
        return _problem(401, UNAUTHORIZED)
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        return _problem(415, "send the body as application/json")
    raw = await read_body(state, request)
    if isinstance(raw, Response):
        return raw
    from starlette.concurrency import run_in_threadpool

    def parse() -> Any:
        import orjson

        if fast is not None:
            done = fast(raw)
            if done is not None:
                return done
        try:
            payload = orjson.loads(raw)  # NaN and Infinity are not JSON: refused here
        except orjson.JSONDecodeError as exc:
            return _problem(400, f"the body is not valid JSON: {str(exc)[:120]}")
        return check(payload)

    if len(raw) <= INLINE_BODY:
        return parse()
    return await run_in_threadpool(parse)  # a large body never holds up the event loop


def check_events(state: Any, payload: Any) -> list[tuple[str | None, dict[str, Any]]] | Response:
    """The events of ``payload`` as :meth:`RecordSchema.check` accepts them, or the 422 answer."""
    try:
        return state.schema.check(payload, state.max_batch)  # type: ignore[no-any-return]
    except RecordError as exc:
        return _problem(422, "some events cannot be accepted; none was written", exc.problems)


Scored = tuple[list[tuple[str | None, dict[str, Any]]], np.ndarray, list[str], dict[str, MicroBatcher]]
"""The records with their probability, arm and model version; the probabilities; each record's
arm; the batcher of each arm."""


async def score_checked(state: Any, checked: list[tuple[str | None, dict[str, Any]]]) -> Scored | Response:
    """Score checked records with the champion, or the A/B arm of each customer (``state`` gives
    ``batcher``, ``challenger``, ``ab`` and ``ab_key``); a 503 or 422 answer when they cannot be."""
    if state.batcher is None:
        return _problem(
            503,
            "no champion model to score with: run 'churnops train' - the service takes a new champion up when its "
            "next window closes (events sent to /v1/events close windows), or when it is restarted",
        )
    batchers = {"champion": state.batcher}
    if state.challenger is not None:
        batchers["challenger"] = state.challenger
    ab = state.challenger is not None and state.ab_key is not None
    arms = [arm_of(record.get(state.ab_key), state.ab.share) if ab else "champion" for _, record in checked]
    lacking = _lacking_inputs(checked, arms, batchers)
    if lacking:
        return _problem(422, "some records lack the model's inputs; none was scored or written", lacking)
    scores = np.zeros(len(checked))
    try:
        for arm, batcher in batchers.items():
            rows = [i for i, chosen in enumerate(arms) if chosen == arm]
            if rows:
                scores[rows] = await batcher.score([checked[i][1] for i in rows])
    except (ValueError, ChurnopsError) as exc:
        return _problem(422, f"the model cannot score these events: {str(exc).splitlines()[0][:200]}")
    scored = [
        (event_id, {**record, PROBABILITY: float(p), ARM: arm, MODEL_VERSION: batchers[arm].champion.version})
        for (event_id, record), p, arm in zip(checked, scores, arms, strict=True)
    ]
    return scored, scores, arms, batchers


def _lacking_inputs(
    checked: list[tuple[str | None, dict[str, Any]]], arms: list[str], batchers: dict[str, MicroBatcher]
) -> list[str]:
    """The records without a key for each input of the model that scores them, each named with
    what it lacks (at most :data:`MAX_ERRORS`): the model would score them with those inputs
    missing, where ``churnops predict`` refuses a file without them. A key sent as null is a
    missing value, scored as ``churnops predict`` scores an empty cell."""
    problems: list[str] = []
    for index, ((_, record), arm) in enumerate(zip(checked, arms, strict=True)):
        missing = [name for name in batchers[arm].champion.columns if name not in record]
        if missing:
            problems.append(f"record {index}: no {names_line(missing)} (send null for a missing value)")
            if len(problems) >= MAX_ERRORS:
                break
    return problems


def predictions_answer(
    event_ids: list[str], duplicates: list[str], scores: np.ndarray, arms: list[str], batchers: dict[str, MicroBatcher]
) -> dict[str, Any]:
    """What ``POST /v1/predict`` answers for each record (the window fields added by the caller)."""
    repeated = set(duplicates)
    return {
        "predictions": [
            {
                "event_id": event_id,
                "probability": float(p),
                "label": int(p >= batchers[arm].champion.threshold),
                "model": batchers[arm].champion.name,
                "version": batchers[arm].champion.version,
                "arm": arm,
                **({"duplicate": True} if event_id in repeated else {}),
            }
            for event_id, p, arm in zip(event_ids, scores, arms, strict=True)
        ]
    }


def create_app(state: ServiceState) -> Starlette:
    """The application over a started service state (see :func:`churnops.serve.service.start`)."""
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    registry = CollectorRegistry()
    requests = Counter(
        "churnops_serve_requests", "HTTP requests by endpoint and status", ["endpoint", "status"], registry=registry
    )
    latency = Histogram(
        "churnops_serve_request_seconds",
        "Time to answer a request, by endpoint",
        ["endpoint"],
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        registry=registry,
    )
    accepted = Counter("churnops_serve_events", "Events written to the event log", registry=registry)
    duplicates = Counter(
        "churnops_serve_duplicate_events", "Events already in the log, not counted again", registry=registry
    )

    def timed(endpoint: str, handler: Any) -> Any:
        seconds = latency.labels(endpoint)
        counted: dict[int, Any] = {}  # the counter of each status (prometheus_client looks labels up under a lock)

        async def wrapped(request: Request) -> Response:
            started = time.perf_counter()
            response: Response = await handler(request)
            seconds.observe(time.perf_counter() - started)
            status = response.status_code
            counter = counted.get(status)
            if counter is None:
                counter = counted[status] = requests.labels(endpoint, str(status))
            counter.inc()
            return response

        return wrapped

    async def events(request: Request) -> Response:
        submitted = await read_json(state, request, logged_events, fast_events)
        if isinstance(submitted, Response):
            return submitted
        try:
            appended = await committed(submitted)
        except NotWritten as exc:
            return not_written(exc)
        return JSONAnswer(
            {
                "accepted": len(appended.accepted),
                "duplicates": appended.duplicates,
                "event_ids": appended.event_ids,
                "window": appended.window,
                "closed_windows": appended.closed,
            },
            status_code=200,
        )

    def checked_events(payload: Any) -> list[tuple[str | None, dict[str, Any]]] | Response:
        return check_events(state, payload)

    def logged_events(payload: Any) -> Future[Appended] | Response:
        """The events of ``payload`` checked and handed to the event log's writer (their records
        written as JSON in this thread), or the 4xx answer saying why not."""
        checked = checked_events(payload)
        if isinstance(checked, Response):
            return checked
        return state.log.submit(checked, state.detectors.watch)

    def fast_events(raw: bytes) -> Future[Appended] | None:
        """The events of the body ``raw`` handed to the event log's writer when they are checked
        in one pass (:meth:`RecordSchema.logged`); None when they need a closer look."""
        watch = state.detectors.watch
        logged = state.schema.logged(raw, state.max_batch, watch.keys)
        if logged is None:
            return None
        return state.log.submit_texts(logged.ids, logged.texts, logged.columns, watch)  # type: ignore[no-any-return]

    async def committed(submitted: Future[Appended]) -> Appended:
        """Wait, on the event loop, for the transaction that holds the events (the detectors fed
        in log order); count them; queue the windows they closed."""
        appended = await asyncio.wrap_future(submitted)
        accepted.inc(len(appended.accepted))
        duplicates.inc(len(appended.duplicates))
        if appended.closed:
            state.evaluator.submit(appended.closed)
        return appended

    async def predict(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        checked = await read_json(state, request, checked_events)
        if isinstance(checked, Response):
            return checked
        outcome = await score_checked(state, checked)
        if isinstance(outcome, Response):
            return outcome
        scored, scores, arms, batchers = outcome
        if len(scored) <= 64:
            submitted = state.log.submit(scored, state.detectors.watch)
        else:  # many records: written as JSON off the event loop
            submitted = await run_in_threadpool(state.log.submit, scored, state.detectors.watch)
        try:
            appended = await committed(submitted)
        except NotWritten as exc:
            return not_written(exc)
        return JSONAnswer(
            predictions_answer(appended.event_ids, appended.duplicates, scores, arms, batchers)
            | {"window": appended.window, "closed_windows": appended.closed}
        )

    async def from_worker(request: Request) -> Response:
        """The requests a worker process (``--workers``) answered, sent together: records it
        checked (and scored) written to the event log as ``/v1/events`` and ``/v1/predict`` write
        them, refusals counted. Answered only on the private socket, to a worker that gives the
        secret it was started with."""
        from starlette.concurrency import run_in_threadpool

        secret = request.headers.get(WORKER_HEADER, "")
        server = request.scope.get("server")
        if (
            state.worker_secret is None
            or not isinstance(server, tuple | list)
            or server[1] is not None  # a Unix socket has no port: never a TCP client
            or not hmac.compare_digest(secret.encode(), state.worker_secret.encode())
        ):
            return _problem(404, "no such endpoint")
        started = time.perf_counter()
        watch = state.detectors.watch
        try:
            import orjson

            body = await _body(request, worker_message_bytes(state.max_body_bytes, state.max_batch))

            def read() -> WorkerMessage:
                return worker_message(orjson.loads(body), watch.keys, state.max_batch)

            told = read() if len(body) <= INLINE_BODY else await run_in_threadpool(read)
        except (BodyTooLarge, ClientDisconnect, ValueError, RecursionError) as exc:
            return _problem(400, f"a worker's message that cannot be read: {str(exc)[:200]}")
        state.worker_counts.told(told)
        submitted = iter(
            [
                state.log.submit_texts(entry.written.ids, entry.written.texts, entry.written.columns, watch)
                for entry in told.entries
                if entry.written is not None and entry.error is None
            ]
        )
        answers: list[dict[str, Any]] = []
        for entry in told.entries:
            if entry.error is not None:
                answers.append({"error": entry.error})
                continue
            if entry.written is None:
                latency.labels(entry.endpoint).observe(entry.seconds)
                requests.labels(entry.endpoint, str(entry.status)).inc()
                answers.append({"counted": True})
                continue
            try:
                appended = await committed(next(submitted))
            except NotWritten as exc:
                answers.append({"error": str(exc), "not_written": True})  # said by the event log
                continue
            latency.labels(entry.endpoint).observe(entry.seconds + time.perf_counter() - started)
            requests.labels(entry.endpoint, "200").inc()
            answers.append(
                {
                    "accepted": len(appended.accepted),
                    "event_ids": appended.event_ids,
                    "duplicates": appended.duplicates,
                    "window": appended.window,
                    "closed_windows": appended.closed,
                }
            )
        return JSONAnswer({"answers": answers})

    waiters = {"now": 0}

    def evaluated(number: int) -> bool:
        """Whether window ``number`` of this event log is evaluated, all of its work done (its
        files from an older log never count)."""
        if state.log.window_state(number) != "evaluated":
            return False
        return number not in state.evaluator.submitted or number in state.evaluator.done

    def settled(number: int) -> bool:
        """Whether waiting for window ``number`` is over: evaluated, or its evaluation failed."""
        return number in state.evaluator.failed or evaluated(number)

    def checked_labels(payload: Any) -> list[tuple[str, int]] | Response:
        items = [payload] if isinstance(payload, dict) else payload
        if not isinstance(items, list) or not items or len(items) > state.max_batch:
            return _problem(
                422, f'send one label or a list of 1 to {state.max_batch:,}: {{"event_id": ..., "label": 0 or 1}}'
            )
        pairs, problems = [], []
        for index, item in enumerate(items):
            event_id = item.get("event_id") if isinstance(item, dict) else None
            label = item.get("label") if isinstance(item, dict) else None
            others = sorted(str(key) for key in item if key not in LABEL_KEYS) if isinstance(item, dict) else []
            if others:
                shown = ", ".join(repr(one_line_short(key, 40)) for key in others[:3])
                problems.append(
                    f"label {index}: unknown {'key' if len(others) == 1 else 'keys'} {shown}; "
                    "a label holds event_id and label only"
                )
            elif not isinstance(event_id, str) or not 0 < len(event_id) <= 128 or not event_id.isprintable():
                problems.append(f"label {index}: event_id must be the text id of an event")
            elif label not in (0, 1) or isinstance(label, float):
                problems.append(f"label {index}: label must be 0 or 1 (true and false too)")
            else:
                pairs.append((event_id, int(label)))
        if problems:
            return _problem(422, "some labels cannot be accepted; none was written", problems[:20])
        return pairs

    async def labels(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        pairs = await read_json(state, request, checked_labels)
        if isinstance(pairs, Response):
            return pairs
        try:
            recorded, unknown, unscored = await run_in_threadpool(state.log.label, pairs)
        except NotWritten as exc:
            return not_written(exc, "labels")
        # unscored: logged by /v1/events, not scored by /v1/predict - kept, but no arm's numbers use it
        answer = {"labelled": recorded, "unknown_event_ids": unknown[:100], "unscored_event_ids": unscored[:100]}
        return JSONAnswer(answer)

    def model_state() -> dict[str, Any] | None:
        """Each arm's measured performance, as ``churnops ab report`` measures it."""
        try:
            document = state.measured_arms()
        except ChurnopsError as exc:  # a damaged log: said, not a 500
            return {"model": state.batcher.champion.name if state.batcher else None, "error": str(exc)}
        if document is None:
            return None
        measured = document["arms"]
        health = {"health": state.model_health} if state.model_health is not None else {}
        if "challenger" not in measured:
            return {"model": document["model"], **measured["champion"], **health}
        return {
            **health,
            "model": document["model"],
            "champion": measured["champion"],
            "challenger": measured["challenger"],
            "challenger_share": state.ab.share,
            "comparison": {**document["decision"], "test": document["test"], "level": document["level"]},
        }

    async def drift(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        wanted = request.query_params.get("window")
        if wanted is not None:  # ?window=N&wait=S: answer once window N is evaluated (at most S seconds)
            wait_text = request.query_params.get("wait", "0")
            if not WINDOW_NUMBER.fullmatch(wanted) or not SECONDS.fullmatch(wait_text):
                return _problem(400, "window must be a whole number (up to 12 digits) and wait a number of seconds")
            number, wait = int(wanted), float(wait_text)
            if not 0 <= wait <= 60:
                return _problem(400, "wait must be from 0 to 60 seconds")
            if not settled(number) and wait > 0:
                if waiters["now"] >= MAX_WAITERS:
                    return _problem(429, f"{MAX_WAITERS} requests are already waiting for windows; ask again later")
                waiters["now"] += 1
                try:  # waits on the event loop, holding no thread that writes need
                    deadline = time.monotonic() + wait
                    while not settled(number) and time.monotonic() < deadline and not state.stopping:
                        await asyncio.sleep(0.05)
                finally:
                    waiters["now"] -= 1
                if state.stopping and not settled(number):
                    return _problem(503, "the service is stopping; ask again once it is back")
            if not evaluated(number) and number in state.evaluator.failed:
                # the service's own trouble (a full disk, say), not the request's; the window is
                # evaluated again: unavailable for now, which clients retry - never a 500
                again = "once another window is, and at restart" if state.evaluator.retried(number) else "at restart"
                return _problem(
                    503, f"window {number} could not be evaluated (see the service's log); it is tried again {again}"
                )
            if not evaluated(number):
                return _problem(404, f"window {number} is not evaluated yet")
            text = read_window_file(state.folder, number, METRICS_FILE)
            if text is None:
                return _problem(404, f"window {number} could not be evaluated (see the service's log)")
            return JSONAnswer({"window": number, "metrics": json.loads(text.decode("utf-8"))})
        last = state.evaluator.last
        waiting_windows, waited_seconds = await run_in_threadpool(state.evaluator.waiting)
        return JSONAnswer(
            {
                "open_window": {
                    "window": state.log.open_window,
                    "events": state.log.open_count,
                    "window_size": state.window_size,
                },
                "last_closed_window": last,
                "windows_waiting": waiting_windows,
                "oldest_waiting_seconds": round(waited_seconds, 3),
                "detectors": state.detectors.summary(),
                "model": await run_in_threadpool(model_state),
            }
        )

    async def window_report(request: Request) -> Response:
        wanted = request.path_params["window"]
        if not WINDOW_NUMBER.fullmatch(wanted) or not evaluated(int(wanted)):
            return _problem(404, f"no report for window {wanted[:20]} (not closed or not evaluated yet)")
        page = read_window_file(state.folder, int(wanted), REPORT_FILE)
        if page is None:  # not written, or reached through a symbolic link planted since
            return _problem(404, f"no report for window {int(wanted)}")
        return HTMLResponse(page.decode("utf-8"), headers=HTML_HEADERS)

    async def metrics(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        text = generate_latest(registry).decode()
        last = state.evaluator.last
        if last is not None:
            from churnops.integrations.prometheus import exposition

            text += exposition(last["metrics"], {"window": str(last["window"])})
        from churnops.serve.connections import CLOSED

        workers = state.worker_counts
        waiting, waited = (state.budget.waiting, state.budget.waited) if state.budget else (0, 0)
        waiting_windows, waited_seconds = await run_in_threadpool(state.evaluator.waiting)
        deleted, slimmed = await run_in_threadpool(state.log.retained)

        lines = [
            "# HELP churnops_serve_closed_connections_total Connections the service cut: a request not sent "
            "in time, answers not taken in time, a request too large, the oldest connection holding no request "
            "when the connections passed the cap",
            "# TYPE churnops_serve_closed_connections_total counter",
            *(
                f'churnops_serve_closed_connections_total{{reason="{reason}"}} '
                f"{CLOSED[reason] + workers.total(f'closed {reason}')}"
                for reason in CLOSED_REASONS
            ),
            "# HELP churnops_serve_bodies_waiting Requests waiting for room to read their body "
            "(serve.max_inflight_bytes)",
            "# TYPE churnops_serve_bodies_waiting gauge",
            f"churnops_serve_bodies_waiting {waiting + workers.waiting()}",
            "# HELP churnops_serve_body_waits_total Requests that waited for room to read their body",
            "# TYPE churnops_serve_body_waits_total counter",
            f"churnops_serve_body_waits_total {waited + workers.total('waited')}",
            *_health_lines(state.model_health),
            "# HELP churnops_serve_detector_statistic A stream detector's statistic (alarm above its threshold)",
            "# TYPE churnops_serve_detector_statistic gauge",
        ]
        summaries = state.detectors.summary()
        for item in summaries:
            stream = _label(item["stream"])
            for name in ("cusum", "page_hinkley"):
                value = item[name]["statistic"]
                lines.append(f'churnops_serve_detector_statistic{{stream="{stream}",detector="{name}"}} {value}')
        lines += [
            "# HELP churnops_serve_detector_alarms_total Alarms of a stream's detectors since the log began",
            "# TYPE churnops_serve_detector_alarms_total counter",
            *(
                f'churnops_serve_detector_alarms_total{{stream="{_label(i["stream"])}"}} {i["alarms"]}'
                for i in summaries
            ),
        ]
        text += "\n".join(lines) + "\n"
        if state.batcher is not None:
            champion = state.batcher.champion
            calls = champion.calls + workers.total("calls")
            rows = champion.rows + workers.total("rows")
            text += (
                "# HELP churnops_serve_model_calls_total Model calls for /v1/predict (requests scored together: one)\n"
                "# TYPE churnops_serve_model_calls_total counter\n"
                f"churnops_serve_model_calls_total {calls}\n"
                "# HELP churnops_serve_scored_rows_total Events scored by the champion\n"
                "# TYPE churnops_serve_scored_rows_total counter\n"
                f"churnops_serve_scored_rows_total {rows}\n"
            )
        text += (
            "# HELP churnops_serve_open_window_events Events in the open window\n"
            "# TYPE churnops_serve_open_window_events gauge\n"
            f"churnops_serve_open_window_events {state.log.open_count}\n"
            "# HELP churnops_serve_windows_closed Windows closed since the log began\n"
            "# TYPE churnops_serve_windows_closed gauge\n"
            f"churnops_serve_windows_closed {state.log.open_window}\n"
            "# HELP churnops_serve_windows_waiting Closed windows not evaluated yet (waiting, or failed and to be "
            "tried again)\n"
            "# TYPE churnops_serve_windows_waiting gauge\n"
            f"churnops_serve_windows_waiting {waiting_windows}\n"
            "# HELP churnops_serve_oldest_waiting_window_seconds Seconds since the oldest window not evaluated yet "
            "closed (0: none)\n"
            "# TYPE churnops_serve_oldest_waiting_window_seconds gauge\n"
            f"churnops_serve_oldest_waiting_window_seconds {waited_seconds:.3f}\n"
            "# HELP churnops_serve_event_log_bytes The event log's size on disk, its write-ahead log included "
            "(serve.keep_events bounds it)\n"
            "# TYPE churnops_serve_event_log_bytes gauge\n"
            f"churnops_serve_event_log_bytes {state.log.size_on_disk()}\n"
            "# HELP churnops_serve_events_deleted_total Events the event log deleted past serve.keep_events\n"
            "# TYPE churnops_serve_events_deleted_total counter\n"
            f"churnops_serve_events_deleted_total {deleted}\n"
            "# HELP churnops_serve_inputs_dropped_total Events whose inputs the event log dropped past "
            "serve.keep_inputs\n"
            "# TYPE churnops_serve_inputs_dropped_total counter\n"
            f"churnops_serve_inputs_dropped_total {slimmed}\n"
        )
        if state.workers is not None:
            text += (
                "# HELP churnops_serve_workers_ready Worker processes taking connections (--workers)\n"
                "# TYPE churnops_serve_workers_ready gauge\n"
                f"churnops_serve_workers_ready {state.workers.ready}\n"
                "# HELP churnops_serve_worker_scored_rows_total Events scored by each worker process (--workers)\n"
                "# TYPE churnops_serve_worker_scored_rows_total counter\n"
                + "".join(
                    f'churnops_serve_worker_scored_rows_total{{worker="{number}"}} {workers.total(f"rows {number}")}\n'
                    for number in workers.workers()
                )
            )
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    async def healthz(request: Request) -> Response:
        return JSONAnswer({"status": "ok"})

    async def readyz(request: Request) -> Response:
        answer: dict[str, Any] = {"status": "ready"}
        if state.config is not None and state.config.serve.protect_reads and not authorized(state, request):
            return JSONAnswer(answer)  # open to probes: what the model is stays behind the token
        model = None
        if state.batcher is not None:
            model = f"{state.batcher.champion.name} v{state.batcher.champion.version}"
        return JSONAnswer(answer | {"reference_columns": len(state.schema.dtypes), "model": model})

    async def status_page(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        rows = []
        for window in state.log.recent(20):
            number = int(window["window"])
            waiting = "failed" if number in state.evaluator.failed and not window["evaluated_at"] else "evaluating"
            status = html.escape(str(window["status"] or waiting))
            headline = html.escape(str(window["headline"] or ""))
            score = window["score"]
            shown = f"{score:.3f}" if isinstance(score, float) and math.isfinite(score) else "-"
            link = f'<a href="/v1/windows/{number}/report">report</a>' if window["evaluated_at"] else ""
            rows.append(
                f"<tr><td>{number}</td><td>{int(window['events']):,}</td><td class='{status}'>{status}</td>"
                f"<td>{shown}</td><td>{headline}</td><td>{link}</td></tr>"
            )
        table = "".join(rows) or "<tr><td colspan='6'>no window closed yet</td></tr>"
        count, age = await run_in_threadpool(state.evaluator.waiting)
        behind = (
            f" <span class='warning'>Closed windows waiting for their evaluation: {count:,} "
            f"(the oldest for {age:,.0f} s).</span>"
            if count
            else ""
        )
        page = (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>churnops serve</title>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<style>body{font:15px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222}table{border-collapse:collapse}"
            "td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left}.alert,.failed{color:#b00}"
            ".warning{color:#a60}.ok{color:#060}</style></head><body>"
            "<h1>churnops serve</h1>"
            f"<p>Open window {state.log.open_window}: {state.log.open_count:,} of {state.window_size:,} events. "
            f"Events in the log: {state.log.total():,}.{behind}</p>"
            "<h2>Recent windows</h2><table><tr><th>window</th><th>events</th><th>verdict</th><th>score</th>"
            f"<th>why</th><th></th></tr>{table}</table></body></html>"
        )
        return HTMLResponse(page, headers=HTML_HEADERS)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _problem(404, "no such endpoint")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _problem(405, "method not allowed")

    def read(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        """``endpoint``, behind the token when ``serve.protect_reads`` asks for it."""
        if state.config is None or not state.config.serve.protect_reads:
            return endpoint

        async def guarded(request: Request) -> Response:
            if not authorized(state, request):
                return _problem(401, UNAUTHORIZED)
            return await endpoint(request)

        return guarded

    routes = [
        Route("/v1/events", timed("events", budgeted(state, events)), methods=["POST"]),
        Route("/v1/predict", timed("predict", budgeted(state, predict)), methods=["POST"]),
        Route("/v1/labels", timed("labels", budgeted(state, labels)), methods=["POST"]),
        Route("/v1/drift", timed("drift", read(drift)), methods=["GET"]),
        Route("/v1/windows/{window}/report", timed("report", read(window_report)), methods=["GET"]),
        Route("/metrics", timed("metrics", read(metrics)), methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/", timed("status", read(status_page)), methods=["GET"]),
        Route(WORKER_PATH, from_worker, methods=["POST"]),
    ]
    import contextlib

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        """With ``serve.window_period``, a clock closes windows that got old before getting full."""
        from starlette.concurrency import run_in_threadpool

        async def clock(period: float) -> None:
            failing = False
            while True:
                await asyncio.sleep(min(period / 4, 1.0))
                try:
                    closed = await run_in_threadpool(state.log.close_open, time.time() - period)
                except NotWritten as exc:  # tried again at the next tick; said once
                    if not failing:
                        logger.error("the open window could not be closed by time (%s); tried again", exc)
                    failing = True
                    continue
                if failing:
                    logger.warning("windows close by time again")
                    failing = False
                if closed is not None:
                    state.evaluator.submit([closed])

        task = asyncio.create_task(clock(state.window_period)) if state.window_period else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed}, lifespan=lifespan)
    # /v1/events/ is no endpoint: answered 404, never redirected to a URL built from the client's Host header
    app.router.redirect_slashes = False
    return app
