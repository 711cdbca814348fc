"""What an event may hold: the check of whole columns at C speed (``RecordSchema._fast``, vectorized
for the service's throughput) accepts exactly what the same rules written value by value accept,
gives the same records, and leaves every refusal to the event-by-event check (which names each
problem). The body decoded and checked in one pass (``RecordSchema.logged``) accepts only what
the check accepts, with the same values of the same types."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnops.serve.records import _ACCEPTED, _WHOLE, EVENT_ID, MAX_EVENT_ID, MAX_TEXT, RecordError, RecordSchema

SCHEMA = RecordSchema({"n": "Int64", "f": "Float64", "s": "String", "b": "Boolean", "d": "Date", "u": "unread"})
EDGE_VALUES = [
    2**63 - 1, 2**63, -(2**63), -(2**63) + 1, 7.0, 2.0**63, 1e19, -1e19, 0.5, float("inf"), float("-inf"),
    float("nan"), True, None, "", "x" * MAX_TEXT, "x" * (MAX_TEXT + 1), [1], {"a": 1}, "e-9", 7,
]  # fmt: skip
"""Values at the edges of what a column accepts."""
EDGES = st.sampled_from(EDGE_VALUES)
USUAL = {
    "n": st.integers(min_value=-(2**40), max_value=2**40),
    "f": st.floats(min_value=-1e9, max_value=1e9),
    "s": st.text(max_size=5),
    "b": st.booleans(),
    "d": st.just("2026-01-31"),
    "u": st.one_of(st.integers(min_value=-9, max_value=9), st.text(max_size=3)),
}
"""Values each column accepts: most events are valid, so that the fast check is reached."""
EVENT = st.fixed_dictionaries({}, optional=USUAL)
EDGE = st.tuples(st.integers(min_value=0, max_value=5), st.sampled_from([*USUAL, "other"]), EDGES)
"""One value at an edge, at an event and a column (``other``: one the reference does not have)."""
IDS = st.one_of(st.none(), st.none(), st.text(min_size=1, max_size=3), st.sampled_from(["", "a\x00", "x" * 129, 7]))


def value_by_value(events: list) -> list | None:
    """The fast check's rules, one value at a time (as they were written before they worked on
    whole columns)."""
    ids = []
    for event in events:
        if type(event) is not dict or not event.keys() <= {*SCHEMA.dtypes, EVENT_ID}:
            return None
        if not event.keys() - {EVENT_ID}:  # an empty event: refused by the full check
            return None
        event_id = event.get(EVENT_ID)
        if event_id is not None and (
            type(event_id) is not str or not 0 < len(event_id) <= MAX_EVENT_ID or not event_id.isprintable()
        ):
            return None
        ids.append(event_id)
    given = [i for i in ids if i is not None]
    if len(set(given)) != len(given):
        return None
    for column in SCHEMA.dtypes:
        accepted = _ACCEPTED[SCHEMA.kind(column)]
        for value in (event.get(column) for event in events):
            kind = type(value)
            if kind not in accepted:
                return None
            if kind is float and not math.isfinite(value):
                return None
            if kind is float and (abs(value) >= 2**63 or (accepted is _WHOLE and value != int(value))):
                return None
            if kind is str and len(value) > MAX_TEXT:
                return None
            if kind is int and abs(value) >= 2**63:
                return None
    return [(i, {k: v for k, v in e.items() if k != EVENT_ID}) for i, e in zip(ids, events, strict=True)]


class _Slow(RecordSchema):
    def _fast(self, events):  # noqa: ANN001 - the check without its fast paths
        return None

    def _uniform(self, events):  # noqa: ANN001
        return None


def expected(events: list) -> list | RecordError:
    found = value_by_value(events)
    if found is not None:
        return found
    try:
        return _Slow(SCHEMA.dtypes).check(events, 100)
    except RecordError as exc:
        return exc


def either(events: object) -> list | RecordError:
    try:
        return SCHEMA.check(events, 100)
    except RecordError as exc:
        return exc


def drawn_events(pairs: list, edges: list) -> list:
    """The events of drawn ``(event, id)`` pairs, an id added where one was drawn, with the
    drawn edge values set in them."""
    events = []
    for event, event_id in pairs:
        event = dict(event)
        if event_id is not None:
            event["event_id"] = event_id
        events.append(event)
    for index, column, value in edges:
        events[index % len(events)][column] = value
    return events


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(EVENT, IDS), min_size=1, max_size=6), st.lists(EDGE, max_size=2))
def test_the_fast_check_accepts_what_the_full_check_accepts(pairs, edges):
    events = drawn_events(pairs, edges)
    got, wanted = either(events), expected(events)
    if isinstance(wanted, RecordError):
        assert isinstance(got, RecordError) and got.problems == wanted.problems
    else:
        assert got == wanted


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.sampled_from(list(USUAL)), min_size=1, max_size=6, unique=True),
    st.sampled_from(["id", "id", "no id", "other"]),
    st.data(),
    st.integers(min_value=1, max_value=6),
    st.lists(EDGE, max_size=2),
)
def test_events_holding_the_same_keys_are_judged_as_value_by_value(keys, extra, data, count, edges):
    """The usual request - every event with the same keys, taken out as whole columns at once
    (``RecordSchema._uniform``) - accepted, refused and given back exactly as value by value."""
    keys = keys + {"id": [EVENT_ID], "no id": [], "other": ["other"]}[extra]
    few_ids = st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "h"])  # repeated ids too
    values = {**USUAL, "other": st.integers(), EVENT_ID: st.one_of(few_ids, few_ids, IDS)}
    events = [{key: data.draw(values[key]) for key in keys} for _ in range(count)]
    for index, column, value in edges:
        if column in keys:
            events[index % len(events)][column] = value
    sent = [dict(event) for event in events]
    got, wanted = either(events), expected(events)
    if isinstance(wanted, RecordError):
        assert isinstance(got, RecordError) and got.problems == wanted.problems
    else:
        assert got == wanted
    assert events == sent  # the request is left as it came (the ids are taken out of copies)


def test_a_number_out_of_range_is_refused_alone_as_beside_other_errors():
    """Whether an event is accepted never depends on the other events of its request."""
    for value in (1e308, -1e19, 2.0**63):
        with pytest.raises(RecordError, match="out of range"):
            SCHEMA.check([{"f": value}], 10)
        with pytest.raises(RecordError, match="out of range"):
            SCHEMA.check([{"f": value}, {"n": 0.5}], 10)
    assert SCHEMA.check([{"f": 2.0**62}], 10) == [(None, {"f": 2.0**62})]


def test_an_event_with_none_of_the_columns_is_refused():
    for events in ([{}], [{"event_id": "e-1"}], [{"n": 1}, {"event_id": None}]):
        with pytest.raises(RecordError, match="none of the reference's columns"):
            SCHEMA.check(events, 10)
    assert SCHEMA.check([{"n": None}], 10) == [(None, {"n": None})]  # a column, missing: counted as missing


def test_column_names_the_fast_decoder_cannot_take_fall_back_to_the_full_check():
    """A reference column named with '"', '\\' or a control character (which monitor accepts) made
    the one-pass decoder raise at its first use: every POST /v1/events was a 500 with a traceback.
    Such a schema is checked value by value, with the same answers."""
    odd = RecordSchema({'say "hi"': "Int64", "back\\slash": "String", "tab\tname": "Float64"})
    assert odd.logged(b'[{"say \\"hi\\"": 1}]', 10, ('say "hi"',)) is None  # no fast path: no error
    assert odd.check([{'say "hi"': 1, "back\\slash": "x", "tab\tname": 2.5}], 10) == [
        (None, {'say "hi"': 1, "back\\slash": "x", "tab\tname": 2.5})
    ]
    with pytest.raises(RecordError, match="not a number|whole number"):
        odd.check([{'say "hi"': "x"}], 10)


def test_events_without_an_id_leave_it_to_the_event_log():
    checked = SCHEMA.check([{"n": 1}, {"event_id": "e-1", "f": 2}], 10)
    assert checked == [(None, {"n": 1}), ("e-1", {"f": 2})]
    with pytest.raises(RecordError, match="appears twice"):
        SCHEMA.check([{"event_id": "e-1"}, {"event_id": "e-1"}], 10)


BASE = [
    {"n": 1, "f": 2.5, "s": "x", "b": True, "d": "2026-01-31", "u": 3},
    {"n": -4, "f": 7, "s": "", "b": False, "d": None, "u": "t", "event_id": "e-1"},
    {"event_id": "e-9", "n": None, "f": -0.25},
]


@pytest.mark.parametrize("column", [*USUAL, "other", "event_id"])
@pytest.mark.parametrize("value", EDGE_VALUES, ids=lambda value: repr(value)[:16])
def test_each_edge_value_in_each_column_is_judged_as_before(column, value):
    events = [dict(event) for event in BASE]
    events[1][column] = value
    got, wanted = either(events), expected(events)
    if isinstance(wanted, RecordError):
        assert isinstance(got, RecordError) and got.problems == wanted.problems
    else:
        assert got == wanted


def test_of_several_unreadable_dates_the_first_sent_is_named():
    import polars as pl

    from churnops.errors import InputDataError
    from churnops.serve.scoring import _dates_one_by_one

    values = ["1990-01-31", *[f"never {i}" for i in range(40)], None, "31/01/1990"]
    frame = pl.DataFrame({"Date of Birth": values})
    for _ in range(5):
        with pytest.raises(InputDataError, match="'never 0' is not a date"):
            _dates_one_by_one(frame, ["Date of Birth"])
    readable = frame.filter(~pl.col("Date of Birth").str.starts_with("never").fill_null(False))
    read = _dates_one_by_one(readable, ["Date of Birth"])
    assert read["Date of Birth"].cast(pl.String).to_list() == ["1990-01-31", None, "1990-01-31"]


@pytest.mark.parametrize(
    "events",
    [
        [{"n": 1, "f": 2.5}, {"n": 2, "s": "x"}],  # as many keys as the first, not the same ones
        [{"n": 1, "f": 2.5}, {"f": 2.5, "n": 1}, {"n": 1, "other": 3}],
        [{"n": 1}, [1]],  # not an object
        [{"n": 1}, {"n": 1, "f": 2.0}],
        [{"n": 1, "f": 2.0}, {"n": 1}],
    ],
)
def test_events_whose_keys_differ_only_past_the_first_are_judged_as_value_by_value(events):
    got, wanted = either(events), expected(events)
    if isinstance(wanted, RecordError):
        assert isinstance(got, RecordError) and got.problems == wanted.problems
    else:
        assert got == wanted


KEYS = ("f", "n", "u", "not a column")
"""Watched keys of the one-pass decoding (one the reference lacks: None for every event)."""


def typed(value: object) -> object:
    """``value`` with the type of each number kept in comparisons (``5 == 5.0`` in Python)."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


def one_pass_agrees(events: object) -> bool:
    """Whether ``RecordSchema.logged`` of ``events`` sent as JSON gives what the check of the
    parsed body gives (True), or leaves the body to it (False)."""
    import orjson

    from churnops.serve.eventlog import as_logged

    raw = json.dumps(events).encode()  # NaN and Infinity written as JS does: not JSON, refused by both
    logged = SCHEMA.logged(raw, 100, KEYS)
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        assert logged is None
        return False
    if logged is None:
        return False
    checked = either(parsed)
    assert not isinstance(checked, RecordError), (events, checked)
    texts, columns = as_logged([record for _, record in checked], KEYS)
    assert logged.ids == [event_id for event_id, _ in checked]
    assert typed([orjson.loads(text) for text in logged.texts]) == typed([orjson.loads(text) for text in texts])
    assert typed(logged.columns) == typed(columns)
    return True


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(EVENT, IDS), min_size=1, max_size=6), st.lists(EDGE, max_size=2), st.booleans())
def test_the_one_pass_decoding_accepts_only_what_the_check_accepts_with_the_same_values(pairs, edges, alone):
    events = drawn_events(pairs, edges)
    one_pass_agrees(events[0] if alone else events)


@pytest.mark.parametrize("column", [*USUAL, "other", "event_id"])
@pytest.mark.parametrize("value", EDGE_VALUES, ids=lambda value: repr(value)[:16])
def test_each_edge_value_is_decoded_in_one_pass_as_the_check_reads_it(column, value):
    events = [dict(event) for event in BASE]
    events[1][column] = value
    one_pass_agrees(events)


def test_the_usual_request_is_decoded_in_one_pass():
    """Valid events - with ids and without, numbers whole or not in a column of numbers, columns
    left out, nulls - are taken in one pass: the fast way is the way of the usual request."""
    assert one_pass_agrees(BASE)
    assert one_pass_agrees(BASE[0])
    assert one_pass_agrees([{"u": True, "s": False}, {"u": 2.5, "s": None}, {"u": "x" * MAX_TEXT}])
    logged = SCHEMA.logged(json.dumps(BASE).encode(), 100, ("f",))
    assert logged is not None and logged.ids == [None, "e-1", "e-9"] and logged.columns == {"f": [2.5, 7, -0.25]}
    assert all("event_id" not in text for text in logged.texts)
    for refused in (
        [],  # no event: named by the check
        [{}],
        [{"event_id": "e-1"}],
        [{"n": 1, "event_id": "e-1"}, {"n": 2, "event_id": "e-1"}],  # an id twice
        [{"n": 1, "event_id": "e\x01"}],
        [{"n": 7.0}],  # a whole number written as a fraction: the check accepts it
        [{"n": 1}] * 101,  # more than the batch allows
        {"n": [1]},
    ):
        assert SCHEMA.logged(json.dumps(refused).encode(), 100, KEYS) is None, refused


def test_a_nested_value_in_a_column_of_any_value_is_named_plainly():
    """An identifier's column takes any plain value; a nested one was refused as "expected a any"."""
    with pytest.raises(RecordError) as refused:
        SCHEMA.check([{"u": [1]}], 10)
    assert refused.value.problems == [
        "event 0: u: expected a plain value (text, a number, true/false or null), got a nested value"
    ]
