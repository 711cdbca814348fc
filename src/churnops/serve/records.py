"""What an event may hold: the reference's columns, each with the kind of value its file has.

A request's events are checked whole before anything is written: an unknown column, a value of
the wrong kind (text where the reference has numbers, a fraction where it has whole numbers), a
nested value, a number that is not finite - each is named, with the event's position, in one
422 answer. A column an event leaves out is missing for that event (data quality counts it).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from operator import attrgetter, itemgetter, methodcaller
from typing import Any

from churnops.escape import one_line_short
from churnops.monitor.profile import ReferenceProfile

EVENT_ID = "event_id"
"""The key of an event's own id (optional: the event log makes one when it is absent)."""
MAX_EVENT_ID = 128
MAX_TEXT = 10_000
"""Longest text value accepted, in characters."""
MAX_ERRORS = 20
_ID_FIELD = "event_id_"


class RecordError(ValueError):
    """Events that cannot be accepted; ``problems`` names each (at most :data:`MAX_ERRORS`)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def all_finite(floats: Any) -> bool:
    """Whether every float of ``floats`` is finite (no NaN, no infinity), at C speed: a sum is
    finite only when every term is - or, rarely, when it overflows, then each is looked at."""
    return math.isfinite(sum(floats)) or all(map(math.isfinite, floats))


def _kind(dtype: str) -> str:
    if dtype == "unread":  # identifiers and ignored columns: never tested, any plain value
        return "any"
    if dtype.startswith(("Int", "UInt")):
        return "whole number"
    if dtype.startswith(("Float", "Decimal")):
        return "number"
    if dtype == "Boolean":
        return "true/false"
    if dtype.startswith(("Date", "Datetime")):
        return "date"
    return "text"


_WHOLE = frozenset({type(None), int, float})
_ACCEPTED = {
    "whole number": _WHOLE,
    "number": frozenset({type(None), int, float}),
    "true/false": frozenset({type(None), bool}),
    "date": frozenset({type(None), str}),
    "text": frozenset({type(None), str, bool}),
    "any": frozenset({type(None), str, int, float, bool}),
}
"""The Python types (as JSON gives them) each kind of column accepts; the identity check of
whole numbers is separate (``_WHOLE`` is a distinct object from the ``number`` set)."""


@dataclass(frozen=True)
class Logged:
    """Checked events as the event log takes them (:meth:`EventLog.submit_texts`): their ids
    (``None`` where the log makes one), each record as JSON text, and the values of the watched
    keys (one list per key, ``None`` where an event has no value)."""

    ids: list[str | None]
    texts: list[str]
    columns: dict[str, list[Any]]


@dataclass(frozen=True)
class RecordSchema:
    """The columns an event may hold, each with its polars type in the reference."""

    dtypes: dict[str, str]

    @classmethod
    def from_profile(cls, profile: ReferenceProfile) -> RecordSchema:
        return cls({name: column.dtype for name, column in profile.columns.items()})

    def kind(self, column: str) -> str:
        return _kind(self.dtypes[column])

    def check(self, events: Any, max_batch: int) -> list[tuple[str | None, dict[str, Any]]]:
        """``(event_id, record)`` for every event (``None`` for an event without an id: the event
        log makes one when it writes it), or :class:`RecordError` naming what is wrong."""
        if isinstance(events, dict):
            events = [events]
        if not isinstance(events, list):
            raise RecordError(["the body must be one event (a JSON object) or a list of events"])
        if not events:
            raise RecordError(["no event in the request"])
        if len(events) > max_batch:
            raise RecordError([f"{len(events):,} events in one request; at most {max_batch:,} (serve.max_batch)"])
        fast = self._uniform(events)
        if fast is None:
            fast = self._fast(events)
        if fast is not None:
            return fast
        problems: list[str] = []
        checked: list[tuple[str | None, dict[str, Any]]] = []
        seen: set[str] = set()
        for index, event in enumerate(events):
            where = f"event {index}"
            if not isinstance(event, dict):
                problems.append(f"{where}: not a JSON object")
                continue
            event_id = event.get(EVENT_ID)
            if event_id is None:
                pass
            elif not isinstance(event_id, str) or not event_id or len(event_id) > MAX_EVENT_ID:
                problems.append(f"{where}: {EVENT_ID} must be text of 1 to {MAX_EVENT_ID} characters")
                continue
            elif not event_id.isprintable():
                problems.append(f"{where}: {EVENT_ID} holds control characters")
                continue
            elif event_id in seen:
                problems.append(f"{where}: {EVENT_ID} {one_line_short(event_id, 40)!r} appears twice in the request")
                continue
            if event_id is not None:
                seen.add(event_id)
            record: dict[str, Any] = {}
            if not any(column != EVENT_ID for column in event):
                problems.append(f"{where}: none of the reference's columns (an empty event)")
                continue
            for column, value in event.items():
                if column == EVENT_ID:
                    continue
                problem = self._problem(column, value)
                if problem is not None:
                    problems.append(f"{where}: {problem}")
                else:
                    record[column] = value
            checked.append((event_id, record))
            if len(problems) >= MAX_ERRORS:
                break
        if problems:
            raise RecordError(problems[:MAX_ERRORS])
        return checked

    def _uniform(self, events: list[Any]) -> list[tuple[str | None, dict[str, Any]]] | None:
        """:meth:`_fast` for events that all hold the same keys (the usual request, written by one
        program): the columns taken out of them in one pass at C speed; None when they do not."""
        first = events[0]
        if type(first) is not dict or not 0 < len(first) < 4_096:
            return None
        if set(map(type, events)) != {dict} or set(map(len, events)) != {len(first)}:
            return None
        names = tuple(first)
        if not first.keys() <= self._allowed or names == (EVENT_ID,):
            return None
        try:  # every event holds as many keys as the first, and each of the first's: the same keys
            if len(names) == 1:
                columns: dict[str, Any] = {names[0]: list(map(itemgetter(names[0]), events))}
            else:
                columns = dict(zip(names, zip(*map(itemgetter(*names), events), strict=True), strict=True))
        except KeyError:
            return None
        ids = columns.pop(EVENT_ID, None)
        if ids is not None:
            if set(map(type, ids)) != {str} or len(set(ids)) != len(ids):
                return None
            if not all(0 < len(event_id) <= MAX_EVENT_ID and event_id.isprintable() for event_id in ids):
                return None
        if not self._columns_fit(columns):
            return None
        if ids is None:
            return [(None, event) for event in events]
        records = list(map(dict.copy, events))  # the id taken out of copies: the request is left as it came
        for _ in map(methodcaller("pop", EVENT_ID), records):
            pass
        return list(zip(ids, records, strict=True))

    def _fast(self, events: list[Any]) -> list[tuple[str | None, dict[str, Any]]] | None:
        """The events as accepted, checked column by column at C speed; None when anything needs
        a closer look (then :meth:`check` names each problem, or accepts what this refused)."""
        allowed = self._allowed
        ids: list[str | None] = []
        given = 0
        for event in events:
            if type(event) is not dict or not event.keys() <= allowed:
                return None
            event_id = event.get(EVENT_ID)
            if len(event) == (event_id is not None or EVENT_ID in event):  # no column at all
                return None
            if event_id is not None:
                if type(event_id) is not str or not 0 < len(event_id) <= MAX_EVENT_ID or not event_id.isprintable():
                    return None
                given += 1
            ids.append(event_id)
        if given and len(set(ids) - {None}) != given:
            return None
        if not self._columns_fit({column: [event.get(column) for event in events] for column in self._types}):
            return None
        return [
            (event_id, {k: v for k, v in event.items() if k != EVENT_ID} if EVENT_ID in event else event)
            for event_id, event in zip(ids, events, strict=True)
        ]

    def _columns_fit(self, columns: dict[str, Any]) -> bool:
        """Whether every value of each column (a sequence of the events' values) is of a kind its
        column takes: finite numbers, whole where whole numbers are, text not too long."""
        types = self._types
        for column, values in columns.items():
            accepted = types[column]
            present = set(map(type, values))
            if not present <= accepted:
                return False
            if float in present:
                floats = values if len(present) == 1 else [v for v in values if type(v) is float]
                if not all_finite(floats):
                    return False
                if max(map(abs, floats)) >= 2**63:  # out of range, as for whole numbers
                    return False
                if accepted is _WHOLE and not all(map(float.is_integer, floats)):
                    return False
            if str in present:
                texts = values if len(present) == 1 else [v for v in values if type(v) is str]
                if max(map(len, texts)) > MAX_TEXT:
                    return False
            if int in present:
                whole = values if len(present) == 1 else [v for v in values if type(v) is int]
                if not (min(whole) > -(2**63) and max(whole) < 2**63):
                    return False
        return True

    def logged(self, raw: bytes, max_batch: int, keys: tuple[str, ...]) -> Logged | None:
        """The events of the JSON body ``raw`` checked and written as the event log keeps them,
        in one pass at C speed (the body decoded and checked together, with no dictionary
        built); None when anything needs a closer look - then :meth:`check` of the parsed body
        names each problem, or accepts what this refused. What this accepts, :meth:`check`
        accepts with the same values (the texts may list the columns in another order)."""
        decoder = self._decoder
        if decoder is None:
            return None
        import msgspec

        try:
            decoded = decoder.decode(raw)
        except msgspec.MsgspecError:
            return None
        events = decoded if isinstance(decoded, list) else [decoded]
        if not 0 < len(events) <= max_batch:
            return None
        unset = msgspec.UNSET
        ids: list[Any] = list(map(attrgetter(_ID_FIELD), events))
        if any(event_id is not unset for event_id in ids):
            given = [event_id for event_id in ids if event_id is not unset and event_id is not None]
            if len(set(given)) != len(given) or not all(map(str.isprintable, given)):
                return None
            ids = [None if event_id is unset else event_id for event_id in ids]
            for event in events:  # the texts hold the record alone
                setattr(event, _ID_FIELD, unset)
        else:
            ids = [None] * len(events)
        texts = self._encoder.encode_lines(events).decode().split("\n")  # JSON escapes a line end in text
        texts.pop()  # after the last line end
        if "{}" in texts:  # an event without any column: named by check()
            return None
        columns: dict[str, list[Any]] = {}
        for key in keys:
            field = self._fields.get(key)
            values = [None] * len(events) if field is None else list(map(attrgetter(field), events))
            if unset in values:  # an event without the key: None, as for null
                values = [None if value is unset else value for value in values]
            columns[key] = values
        return Logged(ids, texts, columns)

    @functools.cached_property
    def _fields(self) -> dict[str, str]:
        """The field of each column in the decoded events (a column's name need not be an identifier)."""
        return {name: f"c{number}" for number, name in enumerate(name for name in self.dtypes if name != EVENT_ID)}

    @functools.cached_property
    def _decoder(self) -> Any:
        """The decoder of :meth:`logged` (msgspec), checking what :meth:`check` does; None
        without msgspec (then every body is parsed and checked as Python values)."""
        try:
            import msgspec
        except ImportError:
            return None
        from typing import Annotated, Union

        whole = Annotated[int, msgspec.Meta(ge=-(2**63) + 1, le=2**63 - 1)]
        fraction = Annotated[float, msgspec.Meta(gt=-(2.0**63), lt=2.0**63)]
        text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
        kinds: dict[str, tuple[Any, ...]] = {
            "whole number": (whole,),  # a float of whole value (3.0) is left to check()
            "number": (whole, fraction),
            "true/false": (bool,),
            "date": (text,),
            "text": (text, bool),
            "any": (text, whole, fraction, bool),
        }
        unset = msgspec.UnsetType
        event_id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_EVENT_ID)]
        fields: list[tuple[str, Any, Any]] = [(_ID_FIELD, Union[event_id, None, unset], msgspec.UNSET)]  # noqa: UP007
        for name, field in self._fields.items():
            fields.append((field, Union[(*kinds[self.kind(name)], None, unset)], msgspec.UNSET))  # noqa: UP007
        names = {field: name for name, field in self._fields.items()} | {_ID_FIELD: EVENT_ID}
        try:
            event = msgspec.defstruct(
                "Event", fields, rename=names, forbid_unknown_fields=True, omit_defaults=True, gc=False
            )
        except ValueError:  # a column name msgspec cannot rename to ('"', '\\', control characters)
            return None  # every body parsed and checked as Python values: slower, the same answers
        return msgspec.json.Decoder(Union[list[event], event])  # type: ignore[valid-type]  # noqa: UP007

    @functools.cached_property
    def _encoder(self) -> Any:
        import msgspec

        return msgspec.json.Encoder()

    @functools.cached_property
    def _allowed(self) -> frozenset[str]:
        return frozenset(self.dtypes) | {EVENT_ID}

    @functools.cached_property
    def _types(self) -> dict[str, frozenset[type]]:
        return {name: _ACCEPTED[self.kind(name)] for name in self.dtypes}

    def _problem(self, column: str, value: Any) -> str | None:
        shown = one_line_short(column, 40)
        if column not in self.dtypes:
            known = ", ".join(list(self.dtypes)[:8]) + (", ..." if len(self.dtypes) > 8 else "")
            return f"unknown column {shown!r} (the reference's columns: {known})"
        if value is None:
            return None
        kind = self.kind(column)
        if isinstance(value, dict | list):
            expected = "a plain value (text, a number, true/false or null)" if kind == "any" else f"a {kind}"
            return f"{shown}: expected {expected}, got a nested value"
        if kind == "any":
            if isinstance(value, float) and not math.isfinite(value):
                return f"{shown}: not a finite number"
            return f"{shown}: text longer than {MAX_TEXT:,} characters" if len(str(value)) > MAX_TEXT else None
        if isinstance(value, bool):
            return None if kind in ("true/false", "text") else f"{shown}: expected a {kind}, got {value}"
        if isinstance(value, int | float):
            if not math.isfinite(value):
                return f"{shown}: not a finite number"
            if kind == "whole number" and (abs(value) >= 2**63 or value != int(value)):
                return (
                    f"{shown}: expected a whole number, got {value!r}"
                    if abs(value) < 2**63
                    else (f"{shown}: {value!r} is out of range")
                )
            if kind in ("whole number", "number"):
                if abs(value) >= 2**63:
                    return f"{shown}: {value!r} is out of range"
                return None
            if kind == "text":
                return f"{shown}: expected text, got the number {value!r}"
            return f"{shown}: expected a {kind}, got the number {value!r}"
        if isinstance(value, str):
            if len(value) > MAX_TEXT:
                return f"{shown}: text longer than {MAX_TEXT:,} characters"
            if kind in ("text", "date"):
                return None
            return f"{shown}: expected a {kind}, got text {one_line_short(value, 30)!r}"
        return f"{shown}: unsupported value"
