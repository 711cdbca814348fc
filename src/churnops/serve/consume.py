"""``churnops consume``: events read from a Redis Stream into the service's event log.

Each stream entry carries one event, as a JSON object in its field ``event`` (the reference's
columns and an optional ``event_id``; without one, ``stream:entry id`` is the event's id, so an
entry delivered again keeps its id, and another stream's entries with the same ids are not
repeats). Entries are read through a consumer group, a batch at a time:

1. each entry is checked as ``POST /v1/events`` checks an event (:class:`RecordSchema`);
2. the valid ones are written to the event log in one transaction (committed to disk), the
   detectors fed and the windows they fill closed - the same state ``churnops serve`` builds;
3. only then is the batch acknowledged (XACK), the rejected entries added to the dead-letter
   stream with their reason in the same MULTI/EXEC.

So an entry is acknowledged only once it is on disk, and one that was written but not
acknowledged (a kill in between) comes back - to this consumer after a restart, or to another one
that claims it (XAUTOCLAIM) - and is then a duplicate of an event id the log holds: counted once.
Delivery is at least once; counting, in one event log, exactly once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from churnops.config import Config
from churnops.errors import ConfigError
from churnops.escape import one_line_short
from churnops.serve.records import EVENT_ID, RecordError, RecordSchema
from churnops.serve.streams import Entry, Rejection, StreamGroup, require_consume_packages, shown_url

logger = logging.getLogger(__name__)

EVENT_FIELD = b"event"
"""The field of a stream entry that holds the event (a JSON object)."""
BLOCK_SECONDS = 1.0
"""Longest wait for new entries in one read: how soon a stop request or a window's period is seen."""


@dataclass
class ConsumeTotals:
    """What one run of the consumer did."""

    entries: int = 0
    """Entries read and settled (written or rejected, then acknowledged)."""
    written: int = 0
    """Events written to the event log."""
    duplicates: int = 0
    """Entries whose event id the log already held (delivered again): acknowledged, not counted again."""
    rejected: int = 0
    """Entries sent to the dead-letter stream."""
    claimed: int = 0
    """Entries claimed from other consumers (pending longer than ``consume.claim_idle``)."""
    redelivered: int = 0
    """This consumer's own entries delivered before a restart and never acknowledged."""
    gone: int = 0
    """Pending entries deleted from the stream before they could be read: acknowledged."""
    closed_windows: list[int] = field(default_factory=list)
    stopped_by: str = ""


def redis_url(config: Config, given: str | None) -> str:
    """The Redis URL: ``given`` (``--redis``), else the environment variable ``consume.redis_url_env``.
    Its user name, password and tokens are remembered as secrets: hidden from every line churnops
    prints or logs."""
    url = (given if given is not None else os.environ.get(config.consume.redis_url_env, "")).strip()
    if not url:
        raise ConfigError(
            f"no Redis URL: set the environment variable {config.consume.redis_url_env} (consume.redis_url_env) "
            "or give --redis, e.g. redis://127.0.0.1:6379/0 (a password goes in the URL's user info)"
        )
    from churnops.redact import remember_url

    # every part that can be secret - user and password of any length, ?password= and
    # ?username=, token-like values - before anything can print
    remember_url(url)
    return url


def entry_event(entry_id: str, fields: dict[bytes, bytes], max_bytes: int, stream: str = "") -> dict[str, Any] | str:
    """The entry's event (its id set: its own ``event_id``, else ``stream:entry id``), or why there
    is none. An entry id is unique in its stream only: two streams written in one millisecond give
    the same ids, and a log fed by both took the second's events for repeats of the first's.

    >>> entry_event("1-0", {b"event": b'{"Balance": 10.5}'}, 1000, "events")
    {'Balance': 10.5, 'event_id': 'events:1-0'}
    >>> entry_event("1-1", {b"event": b'{"Balance": NaN}'}, 1000)[:14]
    'not valid JSON'
    """
    import orjson

    raw = fields.get(EVENT_FIELD)
    if raw is None:
        names = ", ".join(repr(one_line_short(k.decode(errors="replace"), 30)) for k in list(fields)[:5])
        return f"no field 'event' (the event goes in the field 'event', as a JSON object); fields: {names or 'none'}"
    if len(raw) > max_bytes:
        return f"the event is larger than {max_bytes:,} bytes (serve.max_body_bytes)"
    try:
        event = orjson.loads(raw)  # NaN and Infinity are not JSON: refused here
    except orjson.JSONDecodeError as exc:
        return f"not valid JSON: {str(exc)[:120]}"
    if not isinstance(event, dict):
        return f"not a JSON object: a JSON {type(event).__name__} (one event per entry)"
    if event.get(EVENT_ID) is None:
        event[EVENT_ID] = f"{stream}:{entry_id}" if stream else entry_id
    return event


def checked_entries(
    schema: RecordSchema, entries: list[Entry], max_bytes: int, stream: str = ""
) -> tuple[list[tuple[str | None, dict[str, Any]]], list[Rejection], list[str]]:
    """``(event_id, record)`` of the valid entries in order, the rejected ones with their reason,
    and the ids of entries deleted while pending."""
    parsed: list[tuple[str, dict[str, Any]]] = []
    rejected: list[Rejection] = []
    gone: list[str] = []
    for entry_id, fields in entries:
        if fields is None:
            gone.append(entry_id)
            continue
        event = entry_event(entry_id, fields, max_bytes, stream)
        if isinstance(event, str):
            rejected.append(Rejection(entry_id, event, fields.get(EVENT_FIELD)))
        else:
            parsed.append((entry_id, event))
    if not parsed:
        return [], rejected, gone
    try:  # the whole batch at once (the common case), else entry by entry to name each problem
        return schema.check([event for _, event in parsed], len(parsed)), rejected, gone
    except RecordError:
        pass
    valid = []
    raw = {entry_id: fields for entry_id, fields in entries}
    for entry_id, event in parsed:
        try:
            valid.extend(schema.check(event, 1))
        except RecordError as exc:
            reason = "; ".join(problem.removeprefix("event 0: ") for problem in exc.problems)
            rejected.append(Rejection(entry_id, reason, (raw[entry_id] or {}).get(EVENT_FIELD)))
    order = {entry_id: index for index, (entry_id, _) in enumerate(entries)}
    return valid, sorted(rejected, key=lambda rejection: order[rejection.entry_id]), gone


def without_conflicts(
    entries: list[Entry], valid: list[tuple[str, dict[str, Any]]], rejected: list[Rejection]
) -> list[tuple[str, dict[str, Any]]]:
    """The valid events with a repeated event id kept once: the same event again is a duplicate
    (counted once, like a redelivery); other values under an id already used in the batch are
    rejected, never silently dropped."""
    first: dict[str, dict[str, Any]] = {}
    kept = []
    ids = [entry_id for entry_id, fields in entries if fields is not None]
    raw = {entry_id: fields for entry_id, fields in entries}
    rejected_ids = {rejection.entry_id for rejection in rejected}
    sources = iter(entry_id for entry_id in ids if entry_id not in rejected_ids)
    for (event_id, record), entry_id in zip(valid, sources, strict=False):
        if event_id in first and first[event_id] != record:
            rejected.append(
                Rejection(
                    entry_id,
                    f"repeats the event_id {event_id!r} of an earlier entry of this batch with other values",
                    (raw[entry_id] or {}).get(EVENT_FIELD),
                )
            )
            continue
        first.setdefault(event_id, record)
        kept.append((event_id, record))
    return kept


class StopRequest:
    """Set by SIGTERM or Ctrl-C: the loop stops after the batch it holds."""

    def __init__(self) -> None:
        self.by = ""

    def __bool__(self) -> bool:
        return bool(self.by)


@contextlib.contextmanager
def _stop_on_signals(stop: StopRequest) -> Iterator[None]:
    """SIGTERM and Ctrl-C ask the loop to stop after the batch it holds (handlers restored after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ask(number: int, frame: Any) -> None:
        stop.by = signal.Signals(number).name

    previous = {number: signal.signal(number, ask) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


CLAIM_MARGIN = 10
"""``serve.keep_events`` must be this many times ``consume.claim_idle`` at least: an entry written
but not acknowledged is claimed after that, and its event must still be in the log to be known."""


def consume(
    config: Config, url: str | None, max_entries: int | None, until_idle: bool, say: Callable[[str], None]
) -> ConsumeTotals:
    """Read ``consume.stream`` into the event log until stopped (SIGTERM, Ctrl-C), until
    ``max_entries`` entries are settled, or - with ``until_idle`` - until no entry is left."""
    require_consume_packages()
    from churnops.serve.service import start_monitoring

    settings = config.consume
    if settings.stream is None:
        raise ConfigError("no stream: give --stream NAME (or consume.stream)")
    dead_letter = settings.dead_letter or f"{settings.stream}:rejected"
    if dead_letter == settings.stream:
        raise ConfigError("consume.dead_letter: the dead-letter stream must not be the stream read")
    keep = config.serve.keep_events
    if keep is not None:
        from churnops.config.models import KEEP_EVENTS_LONGEST_DAYS, period_seconds

        kept_for = period_seconds(keep, KEEP_EVENTS_LONGEST_DAYS) or 0.0
        if kept_for <= CLAIM_MARGIN * max(settings.claim_idle, 1.0):
            raise ConfigError(
                f"serve.keep_events ({keep}) would delete events before the entries of a stopped consumer are claimed "
                f"(consume.claim_idle, {settings.claim_idle:g} s): an entry written but not acknowledged would be "
                f"counted again; keep events at least {CLAIM_MARGIN} times longer, and longer than entries may stay "
                "pending"
            )
    consumer = settings.consumer or f"churnops-{socket.gethostname()}"
    group = StreamGroup(
        redis_url(config, url), settings.stream, settings.group, consumer, dead_letter, settings.dead_letter_maxlen
    )
    try:
        group.connect()  # before the reference is read: a wrong URL is said at once
        monitoring = start_monitoring(config)
    except BaseException:
        group.close()
        raise
    totals = ConsumeTotals()
    stop = StopRequest()
    try:
        log = monitoring.log
        say(
            f"churnops consume: reading {settings.stream!r} on {shown_url(group.url)} as {consumer!r} of group "
            f"{settings.group!r} (window of {config.serve.window_size:,} events, open window {log.open_window} with "
            f"{log.open_count:,} events)"
        )
        with _stop_on_signals(stop):
            _loop(group, monitoring, totals, stop, max_entries, until_idle)
        totals.stopped_by = stop.by or totals.stopped_by
    finally:
        try:
            monitoring.close()  # windows closed by this run are evaluated before the exit
        finally:
            group.close()
    say(
        f"churnops consume: stopped ({totals.stopped_by}); entries: {totals.entries:,} read, {totals.written:,} "
        f"written to the event log, {totals.duplicates:,} already in it, {totals.rejected:,} rejected to "
        f"{dead_letter!r}{_recovered(totals)}; {_windows(totals.closed_windows)}"
    )
    return totals


def _recovered(totals: ConsumeTotals) -> str:
    """The entries that came back after a crash, when any did."""
    parts = [
        f"{totals.redelivered:,} delivered to this consumer before a restart" if totals.redelivered else "",
        f"{totals.claimed:,} claimed from other consumers" if totals.claimed else "",
        f"{totals.gone:,} deleted from the stream while pending" if totals.gone else "",
    ]
    found = [part for part in parts if part]
    return f" ({', '.join(found)})" if found else ""


def _windows(closed: list[int]) -> str:
    """
    >>> _windows([]), _windows([4]), _windows([4, 5, 6])
    ('no window closed', 'window 4 closed', '3 windows closed (4 to 6)')
    """
    if not closed:
        return "no window closed"
    if len(closed) == 1:
        return f"window {closed[0]} closed"
    return f"{len(closed):,} windows closed ({min(closed)} to {max(closed)})"


def _loop(
    group: StreamGroup,
    monitoring: Any,
    totals: ConsumeTotals,
    stop: StopRequest,
    max_entries: int | None,
    until_idle: bool,
) -> None:
    config = monitoring.config
    settings = config.consume
    max_bytes = config.serve.max_body_bytes
    period = monitoring.window_period
    block = None if until_idle else int(1000 * (min(period / 4, BLOCK_SECONDS) if period else BLOCK_SECONDS))

    def room() -> int:
        return settings.batch if max_entries is None else min(settings.batch, max_entries - totals.entries)

    def settle(entries: list[Entry]) -> None:
        valid, rejected, gone = checked_entries(monitoring.schema, entries, max_bytes, str(settings.stream))
        valid = without_conflicts(entries, valid, rejected)
        appended = monitoring.log.append(valid, monitoring.detectors.watch) if valid else None
        group.settle([entry_id for entry_id, _ in entries], rejected)  # only now: the events are on disk
        totals.entries += len(entries)
        totals.rejected += len(rejected)
        totals.gone += len(gone)
        if rejected:
            first = rejected[0]
            logger.warning(
                "%s entr%s rejected to %r (entry %s: %s)", len(rejected), "y" if len(rejected) == 1 else "ies",
                group.dead_letter, first.entry_id, one_line_short(first.reason, 300),
            )  # fmt: skip
        if gone:
            logger.warning("%s pending entries were deleted from the stream before they were read", len(gone))
        if appended is not None:
            totals.written += len(appended.accepted)
            totals.duplicates += len(appended.duplicates)
            if appended.closed:
                totals.closed_windows.extend(appended.closed)
                monitoring.evaluator.submit(appended.closed)

    after = "0"  # first this consumer's own entries, delivered before a restart and never acknowledged
    while not stop and room() > 0:
        entries = group.read(room(), None, pending=after)
        if not entries:
            break
        totals.redelivered += len(entries)
        settle(entries)
        after = entries[-1][0]
    next_claim = 0.0
    while not stop:
        if room() <= 0:
            totals.stopped_by = f"--max-entries {max_entries:,} reached"
            return
        if time.monotonic() >= next_claim:  # entries a crashed consumer read and never acknowledged
            cursor = "0-0"
            while not stop and room() > 0:
                cursor, entries = group.claim(int(settings.claim_idle * 1000), room(), cursor)
                if entries:
                    totals.claimed += len(entries)
                    settle(entries)
                if cursor == "0-0":
                    break
            next_claim = time.monotonic() + max(settings.claim_idle, 1.0)
            continue
        entries = group.read(room(), block)
        if entries:
            settle(entries)
        elif until_idle:
            totals.stopped_by = "no entry left"
            return
        if period is not None:
            closed = monitoring.log.close_open(time.time() - period)
            if closed is not None:
                totals.closed_windows.append(closed)
                monitoring.evaluator.submit([closed])
