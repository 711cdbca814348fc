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
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)


def guarded_protocol(timeout: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with a deadline of ``timeout`` seconds per request sent."""

    class GuardedProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _receiving = False
        """A request has begun arriving and its last byte has not."""
        closed_slow = 0
        """Connections closed because a request did not arrive in time (all protocols together)."""

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            # any byte between requests (even the blank lines a parser skips) starts the deadline
            # of the next request; armed before parsing, so a request whole in ``data`` disarms it
            if self._deadline is None and not self._receiving and not self._answering():
                self._arm()
            super().data_received(data)

        def on_message_begin(self) -> None:
            answering = self._answering()  # before the parser's callbacks replace the cycle
            super().on_message_begin()
            self._receiving = True
            if answering:  # pipelined behind a response: uvicorn stops reading until it is sent
                self._disarm()

        def on_message_complete(self) -> None:
            self._receiving = False
            self._disarm()
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._receiving and self._deadline is None and not self.transport.is_closing():
                self._arm()  # the request waiting its turn is read again from now

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

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
                type(self).closed_slow += 1
                logger.debug("closed %s: no whole request within %.0f s", self.client, timeout)
                self.transport.close()

    return GuardedProtocol
