"""A Redis Stream read through a consumer group (redis-py): connect, create the group, read new
and pending entries, claim a crashed consumer's entries, and settle a batch - its rejected
entries added to the dead-letter stream, then every entry acknowledged.

Every Redis error becomes one line naming what failed, with the URL shown without its user
info (``redis://host:6379/0``): an unreachable server, refused credentials, a missing
permission, a key that holds something else than a stream. A server's answer is named by its
error code only, never quoted.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from churnops.errors import ConfigError, InputDataError, IntegrationError, MissingDependencyError

CONSUME_PACKAGES = ("redis", "orjson")
"""What ``churnops consume`` needs beyond churnops itself (the ``redis`` extra)."""

Entry = tuple[str, dict[bytes, bytes] | None]
"""A stream entry: its id and its fields (None when the entry was deleted while pending)."""


def require_consume_packages() -> None:
    """One line naming the extra to install when a package of the consumer is missing."""
    import importlib

    for package in CONSUME_PACKAGES:
        try:
            importlib.import_module(package)
        except ImportError:
            raise MissingDependencyError(package, "redis") from None


def shown_url(url: str) -> str:
    """The URL without its user info, query or fragment: what may be printed.

    >>> shown_url("redis://:s3cret@cache.internal:6380/2?protocol=3")
    'redis://cache.internal:6380/2'
    >>> shown_url("rediss://user:pw@[::1]/0"), shown_url("not a url")
    ('rediss://[::1]/0', 'the Redis URL')
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "the Redis URL"
    if not parts.scheme or (parts.scheme != "unix" and not host):
        return "the Redis URL"
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    where = f"[{host}]" if host and ":" in host else host
    return f"{parts.scheme}://{where}{f':{port}' if port else ''}{parts.path}"


def error_code(error: BaseException) -> str:
    """The code a Redis error answer starts with (``ERR``, ``WRONGTYPE``, ``NOGROUP``...), without
    the server's words after it; empty when the answer has no code.

    >>> error_code(Exception("Command # 1 (XADD s * event {...}) of pipeline caused error: WRONGTYPE Operation"))
    'WRONGTYPE'
    >>> error_code(Exception("unknown AUTH s3cret b64=QVVUSA==")), error_code(Exception("ERR unknown command"))
    ('', 'ERR')
    """
    answer = str(error).rsplit("caused error: ", 1)[-1]  # a pipeline's error quotes the whole command
    code = answer.split(" ", 1)[0]
    return code if re.fullmatch(r"[A-Z][A-Z_]{1,31}", code) else ""


@dataclass(frozen=True)
class Rejection:
    """An entry that cannot be accepted, and why; it goes to the dead-letter stream."""

    entry_id: str
    reason: str
    event: bytes | None
    """The entry's ``event`` field as it came, when it had one."""


SOCKET_TIMEOUT = 5.0
"""Seconds a Redis command waits for an answer (reads block at most a second): a Redis that hangs
is given up after about 20 s (four tries), well inside a 30 s termination grace period - with 30 s
a hung Redis held the consumer two minutes, past SIGTERM."""


class StreamGroup:
    """One consumer of one consumer group of one stream."""

    def __init__(
        self, url: str, stream: str, group: str, consumer: str, dead_letter: str, dead_letter_maxlen: int
    ) -> None:
        self.url = url
        self.shown = shown_url(url)
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.dead_letter = dead_letter
        self.dead_letter_maxlen = dead_letter_maxlen
        self._client: Any = None

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Redis errors as one line each (the URL shown without credentials). What the server
        answered is named by its error code only (``ERR``, ``NOPERM``...): its words can repeat
        the command sent, and a command can carry the password (``AUTH``) or event data."""
        from redis import exceptions as ex

        try:
            yield
        except ex.AuthenticationError:  # before ConnectionError: it is one
            raise IntegrationError(
                f"redis at {self.shown} refused the credentials; check the user name and password in the URL"
            ) from None
        except (ex.ConnectionError, ex.TimeoutError) as exc:  # said by redis-py, not by the server
            raise IntegrationError(f"cannot reach redis at {self.shown} while {doing}: {exc}") from None
        except ex.NoPermissionError:
            raise IntegrationError(f"redis at {self.shown}: the user may not do this ({doing})") from None
        except ex.ResponseError as error:
            code = error_code(error)
            if code == "WRONGTYPE":
                raise InputDataError(
                    f"a redis key of {self.stream!r} or {self.dead_letter!r} is not a stream any more ({doing})"
                ) from None
            answered = f"the error {code}" if code else "an error"
            raise IntegrationError(f"redis at {self.shown} answered {answered} while {doing}") from None
        except ex.RedisError as exc:
            raise IntegrationError(f"redis at {self.shown}, {doing}: {type(exc).__name__}") from None

    def connect(self) -> None:
        """Connect, check both keys are streams (or absent), create the group when missing."""
        import redis
        from redis.backoff import ExponentialBackoff, NoBackoff
        from redis.retry import Retry

        try:
            client = redis.Redis.from_url(
                self.url,
                socket_timeout=SOCKET_TIMEOUT,
                socket_connect_timeout=SOCKET_TIMEOUT,
                protocol=2,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError:
            raise ConfigError(
                "the Redis URL is not one redis-py reads: redis://host[:port][/db] (a password in its user info), "
                "rediss://... (TLS) or unix:///path/to/socket"
            ) from None
        self._client = client
        try:
            with self._errors("connecting"):
                client.ping()
        except TypeError:  # a query parameter the connection does not take (ssl_* on redis://)
            raise ConfigError(
                "the Redis URL has a parameter its scheme does not take (ssl_... parameters need rediss://); remove it"
            ) from None
        for key in (self.stream, self.dead_letter):
            with self._errors(f"checking the key {key!r}"):
                kind = client.type(key)
            kind = kind.decode() if isinstance(kind, bytes) else str(kind)
            if kind not in ("stream", "none"):
                raise InputDataError(f"redis key {key!r} holds a {kind}, not a stream; name another stream")
        with self._errors(f"creating the consumer group {self.group!r}"):
            try:
                client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if not str(exc).startswith("BUSYGROUP"):
                    raise
        # from now on a connection lost for a moment is retried (about 1.5 s in all); at start, a
        # wrong URL or password is said at once
        client.set_retry(Retry(ExponentialBackoff(cap=1.0, base=0.1), 3))

    def read(self, count: int, block_ms: int | None, pending: str | None = None) -> list[Entry]:
        """New entries (or, with ``pending``, this consumer's own entries delivered but never
        acknowledged, after that id): at most ``count``, waiting at most ``block_ms`` for new ones."""
        start, block = (">", block_ms) if pending is None else (pending, None)
        with self._errors("reading the stream"):
            answer = self._client.xreadgroup(self.group, self.consumer, {self.stream: start}, count=count, block=block)
        return _entries(answer)

    def claim(self, min_idle_ms: int, count: int, cursor: str) -> tuple[str, list[Entry]]:
        """Entries pending for at least ``min_idle_ms`` with any consumer of the group, now this
        consumer's; and the cursor to continue from (``0-0`` when the whole list was seen)."""
        with self._errors("claiming pending entries"):
            answer = self._client.xautoclaim(self.stream, self.group, self.consumer, min_idle_ms, cursor, count=count)
        following = _text(answer[0])
        return following, [(_text(entry_id), fields) for entry_id, fields in answer[1] or []]

    def settle(self, entry_ids: list[str], rejected: list[Rejection]) -> None:
        """Add ``rejected`` to the dead-letter stream, then - only once every one of them is
        there - acknowledge ``entry_ids``: an entry is never acknowledged without its rejection
        recorded. (A stop between the two leaves the entries pending: delivered again, their
        rejections may be recorded twice, never lost.)"""
        if not entry_ids:
            return
        with self._errors("recording rejected entries"):
            if rejected:
                pipe = self._client.pipeline(transaction=False)
                for rejection in rejected:
                    fields: dict[str, str | bytes] = {
                        "stream": self.stream,
                        "entry_id": rejection.entry_id,
                        "reason": rejection.reason[:2_000],
                        "consumer": self.consumer,
                    }
                    if rejection.event is not None:  # enough to recognise it, not a copy of a huge entry
                        fields["event"] = rejection.event[:DEAD_LETTER_EVENT_BYTES]
                        fields["event_bytes"] = str(len(rejection.event))
                    pipe.xadd(self.dead_letter, fields, maxlen=self.dead_letter_maxlen, approximate=True)
                pipe.execute(raise_on_error=True)
        with self._errors("acknowledging entries"):
            self._client.xack(self.stream, self.group, *entry_ids)

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()


DEAD_LETTER_EVENT_BYTES = 4_096
"""How much of a rejected event the dead-letter entry keeps (its full size is given beside)."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(answer: Any) -> list[Entry]:
    """The entries of an XREADGROUP answer for one stream: RESP2 gives a list of ``[stream,
    entries]``, RESP3 (``?protocol=3`` in the URL) a map of stream to ``[entries]``."""
    if not answer:
        return []
    if isinstance(answer, dict):
        groups = [value[0] if len(value) == 1 and isinstance(value[0], list) else value for value in answer.values()]
    else:
        groups = [item[1] for item in answer]
    return [(_text(entry_id), fields) for entries in groups for entry_id, fields in entries or []]
