"""Connections that must send their requests in time.

uvicorn closes a keep-alive connection left idle after a response (``timeout_keep_alive``), but
it sets no deadline on a connection that never sends a request, or sends one a byte at a time:
each holds a slot of ``limit_concurrency`` for as long as the client likes, so a few hundred
sockets opened and left silent shut everyone else out (a "slowloris"). This protocol gives every
request a deadline - ``serve.request_timeout`` from the connection's start, or from the first
byte of the next request on a kept-alive connection (a blank line counts), until the request's
last byte - and closes the connection when it passes. Time spent answering is not counted: the
deadline covers what the client sends, not what the service does; a request pipelined behind a
response is given its deadline once that response is sent (uvicorn does not read it before).

Answers are bounded the same way: a client that does not take what is sent to it (it pipelines
requests and never reads, or reads a few bytes at a time) leaves the answer waiting in the
service's buffer, and uvicorn waits for that buffer to drain with no end. Once an answer waits, the
client has the same deadline to take at least :data:`TAKEN_BYTES` of it (or all of it, when less
waits), again and again until nothing waits; otherwise the connection is cut.

Requests pipelined on one connection (sent without waiting for the answers) are read ahead of
their turn only so far: uvicorn queues every request it parses behind the one being answered and
reads on after each answer, so a client pipelining without end had the service read and queue
without end (memory grew by the gigabyte, and each answer cost a walk of the queue). Once
:data:`MAX_PIPELINED` requests, or :data:`MAX_QUEUED_BYTES` of their bodies, wait their turn, the
rest of what was read is held unparsed and the connection is not read again until an answer
leaves room; the client's own sends then wait, as TCP makes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections import Counter
from typing import Any

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)


MAX_CONNECTIONS = 1_000
"""Connections and requests served at once; more are answered 503 (but the :data:`PROBES`)."""
PROBES = (b"/healthz", b"/readyz")
"""Answered beyond :data:`MAX_CONNECTIONS`: clients holding every connection must not make a
liveness probe fail (and the orchestrator restart a service that is alive)."""
SPARE_CONNECTIONS = 64
"""Connections kept beyond :data:`MAX_CONNECTIONS` (a probe, a request answered 503). Past them,
a new connection closes the oldest one that holds no request yet - silent, idle, or still
sending its head - so that clients that connect and wait can never take every file handle."""
SWITCH_INTERVAL = 0.001
"""Seconds a thread may hold the GIL while another waits for it (Python's default: 0.005). The
event loop, the event log's writer and a window's evaluation share one interpreter: each time the
loop waits behind the evaluation it waited up to 5 ms, several times per request. At 1 ms (bench
with windows closing, same machine, two runs each): one event per request p99 43-44 -> 22 ms,
one record per /v1/predict p99 15-25 -> 15-18 ms, batches of 1,000 about 5% fewer events/s."""
MAX_HEAD_BYTES = 64 << 10
"""A request line and headers (and, apart, a chunked body's trailers) at most: the parser keeps
them in memory until they end, so a head still arriving past this is refused (431)."""
SLICE_BYTES = 4 << 10
"""Reads are parsed this many bytes at a time while a head may be arriving, so that the bytes of
a head are known to within this much whatever else a read holds (other requests, bodies)."""
BODY_SLICE_BYTES = 256 << 10
MAX_PIPELINED = 32
"""Requests read on one connection and waiting behind the one being answered, at most."""
MAX_QUEUED_BYTES = 64 << 10
"""Bytes of the bodies of those requests, at most (the last may be read in part)."""
QUEUED_SLICE_BYTES = 512
"""Where a request may begin, and while requests queue, reads are parsed this many bytes at a
time, and the two bounds above checked between pieces: they hold to within one piece (a few
requests of a few bytes)."""
TAKEN_BYTES = 64 << 10
"""What a client must take, per deadline, of the answers waiting for it (about 2 KB/s at the
default deadline of 30 s)."""
LINGER_BYTES = 1 << 20
"""After a refusal is sent, what the client goes on sending is read and dropped, up to this much
(and for at most the request deadline), before the connection is closed: closing a socket with
bytes unread resets the connection, and on a real network the reset can overtake the refusal, so
that the client sees "connection reset" instead of the answer."""
_TOO_LARGE_BODY = b'{"error":"the request line and headers exceed 65,536 bytes"}'
HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\nconnection: close\r\n"
    + b"content-length: %d\r\n\r\n" % len(_TOO_LARGE_BODY)
    + _TOO_LARGE_BODY
)


def content_length(value: str) -> int | None:
    """The body size a ``Content-Length`` value says; None when it says none. Leading zeros are
    no digits of the size (thousands of them made ``int`` refuse the text).

    >>> content_length("0" * 5000 + "519"), content_length("12a"), content_length("9" * 30) == 1 << 62
    (519, None, True)
    """
    if not value.isdigit() or not value.isascii():
        return None
    digits = value.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else 1 << 62


class _HoldingFlow(FlowControl):
    """uvicorn's flow control, except that the connection is not read while it holds bytes it
    has not parsed: asked to read on, it parses what it holds first (and holds again what does
    not fit), and reads on only if nothing is left and nobody asked for a pause meanwhile."""

    def __init__(self, transport: Any, protocol: Any) -> None:
        super().__init__(transport)
        self._protocol = protocol
        self.asked_pause = False

    def pause_reading(self) -> None:
        self.asked_pause = True
        super().pause_reading()

    def resume_reading(self) -> None:
        if self._protocol._refusal is not None:
            return  # refused: not read again before the refusal is sent (then dropped, see LINGER_BYTES)
        if self._protocol._held:
            self._protocol._release_soon()
        else:
            super().resume_reading()

    def read_on(self) -> None:
        super().resume_reading()


CLOSED: Counter[str] = Counter()
"""Connections the service cut, by reason (``GET /metrics``): ``slow_request`` (a request not
sent in time), ``answer_not_taken`` (answers the client did not take in time), ``too_large`` (a
request over its bounds)."""


def _is_probe(url: bytes) -> bool:
    """Whether a request's target is one of the :data:`PROBES` (with or without a query)."""
    return url.split(b"?", 1)[0] in PROBES


def guarded_protocol(timeout: float, max_request_bytes: int = 16 << 20) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with a deadline of ``timeout`` seconds per request sent, and
    bounds on what a request may make the parser hold: a request line and headers of at most
    :data:`MAX_HEAD_BYTES` (431); a body of at most ``max_request_bytes`` (the application answers
    a body it reads 413 first: this catches a body nobody reads); chunk framing of at most the
    body's own size plus :data:`MAX_HEAD_BYTES`, and trailers of at most :data:`MAX_HEAD_BYTES`.
    A refused request is refused once every request in front of it on the connection is answered;
    then the connection is closed."""

    class GuardedProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _receiving = False
        """A request has begun arriving and its last byte has not."""
        _in_head = False
        """A request has begun arriving and its headers are not complete."""
        _head_bytes = 0
        _wire_bytes = 0
        """Bytes of the request after its head (reads wholly inside it): body, framing, trailers."""
        _body_bytes = 0
        _declared: int | None = None
        """The body's size as its ``Content-Length`` says (None: chunked, or said otherwise)."""
        _trailer_bytes = 0
        _begun = False
        """A request began in the piece being parsed."""
        _stalled: asyncio.TimerHandle | None = None
        """The deadline of the answers waiting for the client, while some wait."""
        _waiting = 0
        """Bytes of answers waiting for the client when :attr:`_stalled` was armed."""
        _resumed = False
        """Whether the client drained the buffer from its high mark to its low one since then."""
        _running: Any = None
        """The request being answered: uvicorn's ``cycle`` is the last one read, which with
        pipelined requests is a later one, still waiting."""
        _refusal: bytes | None = None
        """What to send (possibly nothing) once every request in front of the refused one is answered."""
        _held = b""
        """Bytes read and not parsed: the requests in them would wait behind too many others."""
        _releasing = False
        _eof = False
        """The client shut its sending side while requests were being answered."""
        _lingering: asyncio.TimerHandle | None = None
        """Refused, the refusal sent and our side shut: what the client sends is dropped until then."""
        _dropped = 0
        _holding: _HoldingFlow
        """The connection's flow control (uvicorn's ``flow``), as this protocol made it."""
        _opened = 0.0
        """When the connection was made (the event loop's clock)."""

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.flow = self._holding = _HoldingFlow(transport, self)
            self._opened = self.loop.time()
            self._arm()
            if len(self.connections) > MAX_CONNECTIONS + SPARE_CONNECTIONS:
                self._make_room()

        def _make_room(self) -> None:
            """Close the oldest connection holding no request (or this new one when every other
            holds one): the connections never pass the cap and its spare ones."""
            waiting = [
                other
                for other in self.connections
                if other is not self and isinstance(other, GuardedProtocol) and other._holds_nothing()
            ]
            oldest = min(waiting, key=lambda other: other._opened, default=self)
            CLOSED["crowded_out"] += 1
            logger.debug(
                "closed %s: the oldest of %d connections holding no request", oldest.client, len(self.connections)
            )
            oldest.transport.abort()  # its file handle back at once (connection_lost removes it from the set)

        def _holds_nothing(self) -> bool:
            """No request being answered, none queued, none past its head: silent, idle, or
            still sending a head."""
            return (
                not self._answering()
                and not self.pipeline
                and not self._held
                and self._refusal is None
                and (self._in_head or not self._receiving)
                and not self.transport.is_closing()
            )

        def data_received(self, data: bytes) -> None:
            if self._refusal is not None:  # refused: nothing more is parsed
                self._dropped += len(data)
                if self._dropped > LINGER_BYTES:
                    self.transport.abort()
                return
            # any byte between requests (even the blank lines a parser skips) starts the deadline
            # of the next request; armed before parsing, so a request whole in ``data`` disarms it
            if self._deadline is None and not self._receiving and not self._answering():
                self._arm()
            if self._held:  # read again meanwhile: it goes behind what is held
                self._hold(data)
                return
            position = 0
            while position < len(data):
                if self._queue_full():
                    self._hold(data[position:])
                    return
                in_head, receiving = self._in_head, self._receiving
                step = SLICE_BYTES if in_head or not receiving else self._body_step()
                if self.pipeline or not receiving:
                    step = min(step, QUEUED_SLICE_BYTES)  # requests may queue: bounds checked between small pieces
                piece = data[position : position + step] if position or len(data) > step else data
                position += len(piece)
                self._begun = False
                super().data_received(piece)
                if self.transport.is_closing() or self._refusal is not None:
                    return
                if self._in_head:  # a head still arriving: this piece, or the part of it after the head began
                    # (known to within a piece: the limit allows for one, so a head of MAX_HEAD_BYTES passes)
                    self._head_bytes += len(piece) if in_head else min(len(piece), SLICE_BYTES)
                    if self._head_bytes > MAX_HEAD_BYTES + SLICE_BYTES:
                        self._refuse(HEAD_TOO_LARGE, f"request headers larger than {MAX_HEAD_BYTES} bytes")
                        return
                elif receiving and not in_head and self._receiving and not self._begun:
                    # its body, framing or trailers going on (a piece in which the next request
                    # began holds the end of the previous one: it is not counted as this one's)
                    self._wire_bytes += len(piece)
                    if self._body_bytes > max_request_bytes + MAX_HEAD_BYTES:
                        self._refuse(b"", f"a request body of more than {max_request_bytes} bytes")
                        return
                    if self._wire_bytes - self._body_bytes > self._body_bytes + MAX_HEAD_BYTES:
                        self._refuse(b"", f"chunk framing or trailers over {MAX_HEAD_BYTES} bytes beside the body")
                        return

        def _body_step(self) -> int:
            """A body is parsed in pieces that end where it ends, when its size is known: the next
            request on the connection then begins a piece, and its head is measured from there."""
            if self._declared is None:
                return BODY_SLICE_BYTES
            return max(1, min(BODY_SLICE_BYTES, self._declared - self._body_bytes))

        def eof_received(self) -> bool | None:  # type: ignore[override]
            """The client shut its sending side: what it sent whole is still answered (uvicorn
            closed the connection with requests queued, and answered one of ten)."""
            if self._refusal is None and (self._answering() or self.pipeline or self._held):
                self._eof = True
                return True  # kept open to send the answers; closed once they are sent
            return None

        def _queued(self, cycle: Any) -> bool:
            """Whether ``cycle`` waits behind the request being answered."""
            return any(waiting is cycle for waiting, _ in self.pipeline)

        def _queue_full(self) -> bool:
            if not self.pipeline:
                return False
            return len(self.pipeline) >= MAX_PIPELINED or sum(len(c.body) for c, _ in self.pipeline) > MAX_QUEUED_BYTES

        def _hold(self, data: bytes) -> None:
            self._held += data
            self.flow.pause_reading()

        def _release_soon(self) -> None:
            if not self._releasing:
                self._releasing = True
                self.loop.call_soon(self._release)

        def _release(self) -> None:
            """An answer left room (or the request being answered reads its body): parse what is
            held, as if it were read now."""
            self._releasing = False
            if not self._held or self.transport.is_closing() or self._refusal is not None:
                return
            held, self._held = self._held, b""
            self._holding.asked_pause = False
            self.data_received(held)
            if not self._held and not self._holding.asked_pause and not self.transport.is_closing():
                self._holding.read_on()

        def on_message_begin(self) -> None:
            answering = self._answering()  # before the parser's callbacks replace the cycle
            super().on_message_begin()
            self._begun = True
            self._receiving = True
            self._in_head = True
            self._head_bytes = self._wire_bytes = self._body_bytes = self._trailer_bytes = 0
            self._declared = None
            if answering:  # pipelined behind a response: uvicorn stops reading until it is sent
                self._disarm()

        def on_header(self, name: bytes, value: bytes) -> None:
            if not self._in_head:  # a trailer: kept with the headers, at about 12 times its size
                self._trailer_bytes += len(name) + len(value) + 4
                if self._trailer_bytes > MAX_HEAD_BYTES:
                    self._refuse(b"", f"trailers larger than {MAX_HEAD_BYTES} bytes")
                    return
            elif name.lower() == b"content-length":
                self._declared = content_length(value.decode("latin-1").strip())
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_head = False
            limit = self.limit_concurrency
            if limit is not None and self.parser.get_method() in (b"GET", b"HEAD") and _is_probe(self.url):
                self.limit_concurrency = None  # a probe is answered whatever the connections held
            try:
                super().on_headers_complete()
            finally:
                self.limit_concurrency = limit
            cycle = self.cycle
            if cycle is not None and cycle.waiting_for_100_continue:
                answer = cycle.send

                async def send(message: Any) -> None:
                    # answered without asking for the body: the client does not send it, so the
                    # next bytes on the connection would be read as that body - close after this
                    if message["type"] == "http.response.start" and cycle.waiting_for_100_continue:
                        cycle.keep_alive = False
                    await answer(message)

                cycle.send = send  # type: ignore[method-assign]
            if self.cycle is not None and not self._queued(self.cycle):
                self._running = self.cycle  # answered at once, not queued behind another

        def on_body(self, body: bytes) -> None:
            self._body_bytes += len(body)
            super().on_body(body)

        def on_message_complete(self) -> None:
            self._receiving = False
            self._disarm()
            super().on_message_complete()
            if self.cycle is not None and self.cycle.response_complete and not self.pipeline:
                # answered before its body ended (a 401, a 413): uvicorn's idle timer was cancelled
                # by that body and nothing would close a connection that stays silent from here
                self._arm()

        def shutdown(self) -> None:
            """A stop closes at once a connection whose one request is still arriving (its body
            stopped, or waiting for room): its client has no answer, so nothing it was told is
            lost. uvicorn waited for the rest of that body, up to ``timeout`` seconds."""
            cycle = self.cycle
            if (
                self._receiving
                and not self._in_head
                and cycle is not None
                and self._running is cycle
                and not cycle.response_started
                and not self.pipeline
                and not self._held
            ):
                self.transport.close()
                return
            super().shutdown()

        def pause_writing(self) -> None:
            super().pause_writing()  # the answer being sent waits for the client to take what is buffered
            self._watch_writes()

        def on_response_complete(self) -> None:
            self._watch_writes()  # an answer still in the buffer: the client must take it in time
            following = self.pipeline[-1][0] if self.pipeline else None
            super().on_response_complete()  # starts the next request waiting in the pipeline, if any
            if following is not None and not self._queued(following):
                self._running = following
            if self._refusal is not None and not self.transport.is_closing():
                if not self._answering() and not self.pipeline:
                    self._send_refusal()  # every response in front of the refused request is out
                return
            if (
                self._receiving
                and self._deadline is None
                and not self.transport.is_closing()
                and not self._queued(self.cycle)
            ):
                self._arm()  # the request arriving is now the one answered: it is read again from now
            if self._eof and not self.pipeline and not self._held and not self._answering():
                self.transport.close()  # the client sent its last request and has every answer

        def _refuse(self, answer: bytes, why: str) -> None:
            """Stop reading; send ``answer`` (nothing: b"") and close once every request in front is
            answered. A request cut in its body is given what came of it, as if it ended there, so
            that it is answered too (the application refuses it) and nothing waits on it."""
            CLOSED["too_large"] += 1
            logger.debug("closed %s: %s", self.client, why)
            self._disarm()
            self._refusal = answer
            self.flow.pause_reading()
            if not self._in_head and self.cycle is not None and not self.cycle.response_complete:
                self.cycle.more_body = False
                self.cycle.message_event.set()
            if not self._answering() and not self.pipeline:
                self._send_refusal()

        def _send_refusal(self) -> None:
            assert self._refusal is not None
            self._held = b""
            if not self._refusal or not self.transport.can_write_eof():
                self.transport.close()
                return
            # a lingering close: the answer, then our side shut, then what the client still sends
            # dropped until it hangs up (``eof_received``), LINGER_BYTES or the deadline
            self.transport.write(self._refusal)
            self.transport.write_eof()
            self._lingering = self.loop.call_later(timeout, self._stop_lingering)
            self._holding.read_on()

        def _stop_lingering(self) -> None:
            self._lingering = None
            if self.transport.get_write_buffer_size():
                self.transport.abort()  # the client took neither the answer nor its end
            else:
                self.transport.close()

        def _drop_answer(self) -> None:
            """The answer being sent stops there (uvicorn flags only the last request read)."""
            running = self._running
            if running is not None and not running.response_complete:
                running.disconnected = True
                running.message_event.set()

        def connection_lost(self, exc: Exception | None) -> None:
            self._held = b""
            self._drop_answer()  # before uvicorn lets it write on: the client is gone
            self._disarm()
            for timer in (self._stalled, self._lingering):
                if timer is not None:
                    timer.cancel()
            self._stalled = self._lingering = None
            super().connection_lost(exc)

        def resume_writing(self) -> None:
            self._resumed = True  # the buffer fell from its high mark to its low one: the client takes
            super().resume_writing()

        def _watch_writes(self) -> None:
            if self._stalled is None:
                waiting = self.transport.get_write_buffer_size()
                if waiting:
                    self._waiting, self._resumed = waiting, False
                    self._stalled = self.loop.call_later(timeout, self._check_writes)

        def _check_writes(self) -> None:
            """The deadline of the answers waiting: cut the connection unless the client took
            :data:`TAKEN_BYTES` of them, or all of them, since the deadline was armed (or drained
            the buffer from its high mark, 64 KiB, to its low one, 16 KiB)."""
            self._stalled = None
            waiting = self.transport.get_write_buffer_size()
            if not waiting:
                return
            if self._resumed or self._waiting - waiting >= min(self._waiting, TAKEN_BYTES):
                self._watch_writes()  # taken in time: a new deadline for what waits now
                return
            CLOSED["answer_not_taken"] += 1
            logger.debug("closed %s: %s bytes of answers not taken within %.0f s", self.client, waiting, timeout)
            # reset, rather than closed after what waits (which the client does not take): the
            # buffered answers are dropped at once, here and in the kernel
            handle = self.transport.get_extra_info("socket")
            with contextlib.suppress(AttributeError, OSError):
                handle.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._drop_answer()
            self.transport.abort()

        def _answering(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(timeout, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                CLOSED["slow_request"] += 1
                logger.debug("closed %s: no whole request within %.0f s", self.client, timeout)
                self.transport.close()

    return GuardedProtocol
