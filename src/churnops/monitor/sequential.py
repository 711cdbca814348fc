"""Sequential change detectors on a stream of values, calibrated on the reference.

Two detectors watch each stream (a numerical column's values in event order, or a model's
scores), both two-sided, on values standardized by the reference's mean and standard deviation:

* **CUSUM** (Page 1954): ``S = max(0, S + z - k)`` upwards and ``max(0, S - z - k)`` downwards,
  with ``k`` half the shift worth finding (``shift``, in standard deviations);
* **Page-Hinkley** (Page 1954, Hinkley 1971): the cumulative deviation of each value from the
  mean of the stream so far, beyond a tolerance of ``shift / 2``, compared with its running
  minimum (upwards) and maximum (downwards). Where CUSUM measures the stream against the
  reference, Page-Hinkley measures it against its own past: it also sees a change in a stream
  that never matched the reference.

Textbook thresholds (``h = 5`` for CUSUM) assume normal, independent values and raise false
alarms on real streams far more often than said (river#1914). Here each detector's threshold is
chosen by simulation on the reference itself: streams of ``arl0`` values are drawn from the
reference's values (with replacement), and the threshold is the value their highest statistic
stays under in ``1 - 1/e`` of them - for a run length that is close to geometric, the
threshold at which the expected number of values between false alarms is ``arl0``.

When a detector fires, the change is estimated to have begun after the last time its statistic
was at zero (CUSUM) or at its extreme (Page-Hinkley), which gives a detection delay; the
statistic then starts again from zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

CALIBRATION_STREAMS = 200
"""Simulated streams per detector."""
KEPT_ALARMS = 20
QUANTILE = 1 - math.exp(-1)
"""Share of simulated streams of ``arl0`` values that must not reach the threshold."""


def _cusum_max(z: NDArray[np.float64], k: float) -> NDArray[np.float64]:
    """The highest two-sided CUSUM statistic of each row of ``z`` (streams x values)."""
    up = np.zeros(z.shape[0])
    down = np.zeros(z.shape[0])
    high = np.zeros(z.shape[0])
    for step in range(z.shape[1]):
        column = z[:, step]
        np.maximum(up + column - k, 0.0, out=up)
        np.maximum(down - column - k, 0.0, out=down)
        np.maximum(high, np.maximum(up, down), out=high)
    return high


def _page_hinkley_max(z: NDArray[np.float64], delta: float) -> NDArray[np.float64]:
    """The highest two-sided Page-Hinkley statistic of each row of ``z``."""
    steps = np.arange(1, z.shape[1] + 1)
    running = np.cumsum(z, axis=1) / steps
    up = np.cumsum(z - running - delta, axis=1)
    down = np.cumsum(z - running + delta, axis=1)
    rise = up - np.minimum.accumulate(np.minimum(up, 0.0), axis=1)
    fall = np.maximum.accumulate(np.maximum(down, 0.0), axis=1) - down
    highest: NDArray[np.float64] = np.maximum(rise.max(axis=1), fall.max(axis=1))
    return highest


def _accumulate(start: float, steps: NDArray[np.float64]) -> NDArray[np.float64]:
    """``start`` plus each running sum of ``steps``, added in the order a loop would add them."""
    total: NDArray[np.float64] = np.cumsum(np.concatenate(([start], steps)))[1:]
    return total


def _lindley(
    start: float, steps: NDArray[np.float64], since: int, positions: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """``S = max(0, S + step)`` from ``start`` over ``steps`` at once, and after each step the
    position where ``S`` was last 0 (``since`` before the first)."""
    total = np.cumsum(steps)
    floor = np.minimum.accumulate(np.minimum(total, -start))
    statistic = total - floor
    zero = np.where(statistic == 0.0, positions, since)
    return statistic, np.maximum.accumulate(zero)


def _running_extreme(
    values: NDArray[np.float64], start: float, start_at: int, positions: NDArray[np.int64], lowest: bool
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The running minimum (or maximum) of ``values`` from ``start``, and where it was reached
    (a new extreme only when strictly beyond the last)."""
    sign = 1.0 if lowest else -1.0
    signed = sign * values
    before = np.minimum.accumulate(np.concatenate(([sign * start], signed)))
    extreme = before[1:]
    new = signed < before[:-1]
    at = np.maximum.accumulate(np.where(new, positions, start_at))
    return sign * extreme, at


@dataclass
class StreamDetector:
    """CUSUM and Page-Hinkley on one stream, with thresholds for an expected run length."""

    name: str
    mean: float
    scale: float
    shift: float
    cusum_threshold: float
    ph_threshold: float
    arl0: int
    seen: int = 0
    up: float = 0.0
    down: float = 0.0
    up_start: int = 0
    down_start: int = 0
    ph_up: float = 0.0
    ph_down: float = 0.0
    ph_low: float = 0.0
    ph_high: float = 0.0
    ph_low_at: int = 0
    ph_high_at: int = 0
    ph_total: float = 0.0
    """The sum of the values since the last restart (their running mean is Page-Hinkley's centre)."""
    ph_seen: int = 0
    alarm_count: int = 0
    alarms: list[dict[str, Any]] = field(default_factory=list)
    """The last :data:`KEPT_ALARMS` alarms."""

    @classmethod
    def calibrated(
        cls,
        name: str,
        values: NDArray[np.float64],
        weights: NDArray[np.int64] | None,
        arl0: int,
        shift: float,
        seed: int = 0,
    ) -> StreamDetector | None:
        """Thresholds from ``CALIBRATION_STREAMS`` streams of ``arl0`` values drawn from the
        reference's ``values`` (each ``weights`` times); None without two distinct values."""
        values = np.asarray(values, dtype=np.float64)
        p = None if weights is None else np.asarray(weights, np.float64) / float(np.sum(weights))
        if values.size < 2:
            return None
        mean = float(np.average(values, weights=p))
        scale = float(np.sqrt(np.average((values - mean) ** 2, weights=p)))
        if not math.isfinite(scale) or scale == 0.0:
            return None
        rng = np.random.default_rng(seed)
        highs_cusum: list[NDArray[np.float64]] = []
        highs_ph: list[NDArray[np.float64]] = []
        per_block = max(1, min(CALIBRATION_STREAMS, 2_000_000 // max(arl0, 1)))  # bounded memory
        for start in range(0, CALIBRATION_STREAMS, per_block):
            count = min(per_block, CALIBRATION_STREAMS - start)
            z = (rng.choice(values, size=(count, arl0), p=p) - mean) / scale
            highs_cusum.append(_cusum_max(z, shift / 2))
            highs_ph.append(_page_hinkley_max(z, shift / 2))
        cusum = float(np.quantile(np.concatenate(highs_cusum), QUANTILE))
        ph = float(np.quantile(np.concatenate(highs_ph), QUANTILE))
        return cls(name, mean, scale, shift, cusum, ph, arl0)

    def update(self, values: list[float | None] | NDArray[np.float64]) -> list[dict[str, Any]]:
        """Feed values in arrival order (missing and non-finite ones are skipped, NaN included);
        the alarms raised. A run of values is computed at once (the recursions in closed form: a
        CUSUM is its cumulative sum less the running minimum of that sum), up to the first alarm;
        the detectors restart there and the rest of the run follows."""
        if isinstance(values, np.ndarray):
            array = values.astype(np.float64, copy=False)
        else:
            array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        z = (array[np.isfinite(array)] - self.mean) / self.scale
        raised = []
        while z.size:
            fired = self._advance(z)
            if fired is None:
                break
            used, alarm = fired
            self.alarm_count += 1
            self.alarms = [*self.alarms[-(KEPT_ALARMS - 1) :], alarm]
            raised.append(alarm)
            self._restart()
            z = z[used:]
        return raised

    def _advance(self, z: NDArray[np.float64]) -> tuple[int, dict[str, Any]] | None:
        """Move the state over ``z``, or up to its first alarm: (values used, the alarm)."""
        k = self.shift / 2
        positions = self.seen + np.arange(1, z.size + 1)
        up, up_start = _lindley(self.up, z - k, self.up_start, positions)
        down, down_start = _lindley(self.down, -z - k, self.down_start, positions)
        total = _accumulate(self.ph_total, z)
        centre = total / (self.ph_seen + np.arange(1, z.size + 1))
        ph_up = _accumulate(self.ph_up, z - centre - k)
        ph_down = _accumulate(self.ph_down, z - centre + k)
        low, low_at = _running_extreme(ph_up, self.ph_low, self.ph_low_at, positions, lowest=True)
        high, high_at = _running_extreme(ph_down, self.ph_high, self.ph_high_at, positions, lowest=False)
        cusum = np.maximum(up, down)
        ph = np.maximum(ph_up - low, high - ph_down)
        alarms = np.flatnonzero((cusum > self.cusum_threshold) | (ph > self.ph_threshold))
        last = int(alarms[0]) if alarms.size else z.size - 1
        self.seen = int(positions[last])
        self.up, self.down = float(up[last]), float(down[last])
        self.up_start, self.down_start = int(up_start[last]), int(down_start[last])
        self.ph_total, self.ph_seen = float(total[last]), self.ph_seen + last + 1
        self.ph_up, self.ph_down = float(ph_up[last]), float(ph_down[last])
        self.ph_low, self.ph_low_at = float(low[last]), int(low_at[last])
        self.ph_high, self.ph_high_at = float(high[last]), int(high_at[last])
        if not alarms.size:
            return None
        if cusum[last] > self.cusum_threshold:
            rising = up[last] >= down[last]
            detector, began = "cusum", self.up_start if rising else self.down_start
        else:
            rising = ph_up[last] - low[last] >= high[last] - ph_down[last]
            detector, began = "page_hinkley", self.ph_low_at if rising else self.ph_high_at
        alarm = {
            "stream": self.name,
            "detector": detector,
            "direction": "up" if rising else "down",
            "at_value": self.seen,
            "change_estimated_after_value": began,
            "delay_values": self.seen - began,
        }
        return last + 1, alarm

    def _restart(self) -> None:
        self.up = self.down = self.ph_up = self.ph_down = self.ph_low = self.ph_high = self.ph_total = 0.0
        self.ph_seen = 0
        self.up_start = self.down_start = self.ph_low_at = self.ph_high_at = self.seen

    def state(self) -> dict[str, Any]:
        """Everything needed to continue after a restart (JSON)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> StreamDetector:
        """The detector saved by :meth:`state`; ``ValueError`` when a value is not of its field's
        type - a whole number, a finite number, a name, a list of alarms (a NaN in the saved
        state made every event of that column fail)."""
        fields = cls.__dataclass_fields__
        kept = {name: state[name] for name in fields if name in state}
        for name, value in kept.items():
            kind = fields[name].type
            whole = isinstance(value, int) and not isinstance(value, bool)
            if kind == "int" and not (whole and value >= 0):
                raise ValueError(f"detector state: {name} is not a count")
            if kind == "float" and not ((whole or isinstance(value, float)) and math.isfinite(value)):
                raise ValueError(f"detector state: {name} is not a finite number")
            if kind == "str" and not isinstance(value, str):
                raise ValueError(f"detector state: {name} is not text")
            if name == "alarms" and not (isinstance(value, list) and all(isinstance(a, dict) for a in value)):
                raise ValueError("detector state: alarms is not a list of alarms")
        return cls(**kept)

    def summary(self) -> dict[str, Any]:
        """What ``GET /v1/drift`` shows of the detector."""
        return {
            "stream": self.name,
            "values_seen": self.seen,
            "expected_values_between_false_alarms": self.arl0,
            "shift_sd": self.shift,
            "cusum": {"statistic": max(self.up, self.down), "threshold": self.cusum_threshold},
            "page_hinkley": {
                "statistic": max(self.ph_up - self.ph_low, self.ph_high - self.ph_down),
                "threshold": self.ph_threshold,
            },
            "alarms": self.alarm_count,
            "last_alarm": self.alarms[-1] if self.alarms else None,
        }
