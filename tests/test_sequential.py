"""The sequential detectors: the run-at-once computation equals the textbook recursions value by
value (alarms, restarts, change estimates), feeding values in any pieces gives the same alarms,
and the thresholds calibrated on the reference hold the false alarms to what ``arl0`` allows while
a shift is found quickly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnops.monitor.sequential import StreamDetector


def textbook(detector: StreamDetector, values: list[float | None]) -> list[tuple[str, str, int, int]]:
    """CUSUM and Page-Hinkley as written in the literature, one value at a time."""
    k = detector.shift / 2
    up = down = ph_up = ph_down = ph_low = ph_high = total = 0.0
    seen = count = up_start = down_start = low_at = high_at = 0
    alarms = []
    for value in values:
        if value is None or not math.isfinite(value):
            continue
        z = (value - detector.mean) / detector.scale
        seen += 1
        up = max(0.0, up + z - k)
        up_start = seen if up == 0.0 else up_start
        down = max(0.0, down - z - k)
        down_start = seen if down == 0.0 else down_start
        total += z
        count += 1
        centre = total / count
        ph_up += z - centre - k
        ph_down += z - centre + k
        if ph_up < ph_low:
            ph_low, low_at = ph_up, seen
        if ph_down > ph_high:
            ph_high, high_at = ph_down, seen
        fired = None
        if max(up, down) > detector.cusum_threshold:
            fired = ("cusum", "up", up_start) if up >= down else ("cusum", "down", down_start)
        elif max(ph_up - ph_low, ph_high - ph_down) > detector.ph_threshold:
            rising = ph_up - ph_low >= ph_high - ph_down
            fired = ("page_hinkley", "up", low_at) if rising else ("page_hinkley", "down", high_at)
        if fired is not None:
            alarms.append((fired[0], fired[1], seen, fired[2]))
            up = down = ph_up = ph_down = ph_low = ph_high = total = 0.0
            count = 0
            up_start = down_start = low_at = high_at = seen
    return alarms


def _detector(cusum: float = 4.0, ph: float = 6.0) -> StreamDetector:
    return StreamDetector("x", mean=0.0, scale=1.0, shift=0.5, cusum_threshold=cusum, ph_threshold=ph, arl0=1000)


def _alarms(detector: StreamDetector, pieces: list[list[float | None]]) -> list[tuple[str, str, int, int]]:
    found = []
    for piece in pieces:
        found += [
            (a["detector"], a["direction"], a["at_value"], a["change_estimated_after_value"])
            for a in detector.update(piece)
        ]
    return found


def test_the_run_at_once_equals_the_recursions_value_by_value():
    rng = np.random.default_rng(3)
    values = list(np.r_[rng.normal(0, 1, 3000), rng.normal(0.8, 1, 1000), rng.normal(-0.6, 1, 1000)])
    values[10] = None
    values[20] = math.nan
    expected = textbook(_detector(), values)
    assert len(expected) > 10  # alarms, restarts, both directions
    assert {a[1] for a in expected} == {"up", "down"} and {a[0] for a in expected} == {"cusum", "page_hinkley"}
    assert _alarms(_detector(), [values]) == expected
    cut = [values[i : i + 37] for i in range(0, len(values), 37)]  # in pieces, as requests bring them
    assert _alarms(_detector(), cut) == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-4, 4), min_size=1, max_size=400), st.integers(1, 50))
def test_any_values_in_any_pieces(values, size):
    expected = textbook(_detector(2.0, 3.0), values)
    pieces = [values[i : i + size] for i in range(0, len(values), size)]
    assert _alarms(_detector(2.0, 3.0), pieces) == expected


def test_values_as_an_array_are_the_values_as_a_list():
    """The service feeds a stream as a float array, NaN where an event has no number
    (``serve.detectors._numbers``): the same alarms and state as the list with None."""
    from churnops.serve.detectors import _numbers

    rng = np.random.default_rng(5)
    values: list = [float(v) for v in rng.normal(0.4, 1, 3000)]
    values[::7] = [None] * len(values[::7])
    events = [v if i % 11 else (True if v is None else int(v * 10) / 10) for i, v in enumerate(values)]
    as_list, as_array = _detector(), _detector()
    expected = as_list.update([v if type(v) in (int, float) else None for v in events])
    array = _numbers(events)
    assert array.dtype == np.float64 and np.isnan(array[::7]).all()
    assert as_array.update(array) == expected and as_array.state() == as_list.state()
    assert np.array_equal(_numbers([1, 2.5, 3]), [1.0, 2.5, 3.0])  # the common case, at C speed


def test_the_state_continues_after_a_restart():
    rng = np.random.default_rng(4)
    values = list(rng.normal(0.3, 1, 2000))
    whole = _detector()
    expected = _alarms(whole, [values])
    first = _detector()
    found = _alarms(first, [values[:777]])
    found += _alarms(StreamDetector.from_state(first.state()), [values[777:]])
    assert found == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [("seen", math.nan), ("up", math.nan), ("up", math.inf), ("seen", -3), ("seen", 2.5), ("alarm_count", True),
     ("name", 7), ("alarms", [1, 2]), ("mean", "0.3")],
)  # fmt: skip
def test_a_saved_state_holding_what_no_detector_holds_is_refused_and_the_service_calibrates_again(field, value):
    """A NaN planted in the saved state of the service's detectors made every event carrying that
    column fail (HTTP 500), restart after restart: such a state is refused, and calibrated anew."""
    import json

    from churnops.data.generator import generate_reference
    from churnops.monitor.profile import build_profile
    from churnops.serve.detectors import Detectors

    detector = _detector()
    _alarms(detector, [list(np.random.default_rng(1).normal(size=300))])
    state = detector.state() | {field: value}
    with pytest.raises(ValueError, match="detector state"):
        StreamDetector.from_state(state)
    from churnops.config import Config
    from churnops.monitor.settings import settings_from_config

    profile = build_profile(generate_reference(3_000, 1), settings_from_config(Config()))
    made = Detectors.start(profile, ["Balance"], 1_000, 1.0, None)
    saved = json.loads(
        json.dumps({"signature": made.signature, "streams": {"Balance": made.streams["Balance"].state()}})
    )
    saved["streams"]["Balance"][field] = value
    again = Detectors.start(profile, ["Balance"], 1_000, 1.0, json.dumps(saved, allow_nan=True))
    assert again.streams["Balance"].state() == made.streams["Balance"].state()  # calibrated anew
    again.see({"Balance": [5.0, 7.5]})  # and events pass


@pytest.mark.slow
def test_calibrated_thresholds_hold_false_alarms_and_find_a_shift():
    rng = np.random.default_rng(7)
    reference = np.sort(rng.gamma(2.0, 1.0, 20_000))  # skewed, as balances and incomes are
    detector = StreamDetector.calibrated("x", reference, None, arl0=5_000, shift=0.25, seed=1)
    assert detector is not None
    calm = StreamDetector.from_state(detector.state())
    calm.update(list(rng.choice(reference, 200_000)))
    assert calm.alarm_count <= 200_000 / 5_000  # at most what arl0 allows (about 40)
    shifted = StreamDetector.from_state(detector.state())
    raised = shifted.update(list(rng.choice(reference, 50_000) + 0.5 * reference.std()))
    assert raised and raised[0]["at_value"] < 500 and raised[0]["direction"] == "up"
    assert detector.cusum_threshold > 5  # not the textbook constant: calibrated to arl0 on these data
