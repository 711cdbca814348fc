"""The service's sequential detectors: CUSUM and Page-Hinkley on chosen streams, event by event
(see :mod:`churnops.monitor.sequential`), their state saved with the events it has seen."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import numpy as np

from churnops.errors import ConfigError
from churnops.escape import one_line_short
from churnops.monitor.prepare import NumericalSample
from churnops.monitor.profile import ReferenceProfile
from churnops.monitor.sequential import StreamDetector
from churnops.serve.eventlog import Watch

logger = logging.getLogger(__name__)


class Detectors:
    """One :class:`StreamDetector` per watched stream."""

    def __init__(self, streams: dict[str, StreamDetector], signature: str) -> None:
        self.streams = streams
        self.signature = signature
        self.watch = Watch(tuple(streams), self.see, self.kept, self.undo)
        """What the event log gives the accepted events to: each stream's values, in log order."""
        self._kept = self._state()  # the state the event log holds
        self._seen = self._kept
        self._said: list[tuple[Any, ...]] = []  # alarms of the events last seen, said once they are written

    @classmethod
    def start(
        cls, profile: ReferenceProfile, chosen: list[str] | None, arl0: int, shift: float, saved: str | None
    ) -> Detectors:
        """The detectors of ``chosen`` streams (default: the prediction, else every numerical
        feature), continued from ``saved`` when it was made for the same streams and reference,
        else calibrated now."""
        numerical = {  # numbers the events carry as numbers (dates arrive as text: not a stream)
            c.plan.name: c
            for c in profile.tested
            if c.plan.role in ("feature", "prediction")
            and c.plan.column_type == "numerical"
            and isinstance(c.sample, NumericalSample)
        }
        if chosen is None:
            predictions = [name for name, c in numerical.items() if c.plan.role == "prediction"]
            chosen = predictions or list(numerical)
        unknown = [name for name in chosen if name not in numerical]
        if unknown:
            raise ConfigError(
                f"serve.detectors: {', '.join(repr(one_line_short(n, 40)) for n in unknown)}: not a tested numerical "
                f"column of the reference (those are: {', '.join(numerical) or 'none'})"
            )
        summary = [
            (name, numerical[name].sample.rows, float(numerical[name].sample.values.sum()))  # type: ignore[union-attr]
            for name in chosen
        ]
        signature = json.dumps({"streams": summary, "arl0": arl0, "shift": shift, "rows": profile.rows})
        if saved is not None:
            try:
                state = json.loads(saved)
                if state.get("signature") == signature:
                    streams = {name: StreamDetector.from_state(s) for name, s in state["streams"].items()}
                    return cls(streams, signature)
            except (ValueError, TypeError, KeyError, AttributeError):
                logger.warning("the detectors' saved state is unusable; calibrating them again")
        streams = {}
        for number, name in enumerate(chosen):
            sample = numerical[name].sample
            assert isinstance(sample, NumericalSample)
            detector = StreamDetector.calibrated(name, sample.values, sample.weights, arl0, shift, seed=number)
            if detector is not None:
                streams[name] = detector
        return cls(streams, signature)

    def see(self, columns: dict[str, list[Any]]) -> str:
        """Feed each stream's values (``columns``, by stream) in order; the state to save with
        them (JSON)."""
        for name, detector in self.streams.items():
            values = _numbers(columns[name])
            previous = detector.alarms[-1]["at_value"] if detector.alarms else None
            for alarm in detector.update(values):
                episode = previous is None or alarm["at_value"] - previous > detector.arl0 // 4
                previous = alarm["at_value"]
                if not episode:
                    continue  # the same change still going on: counted, said once
                self._said.append(
                    (one_line_short(name, 40), alarm["detector"], alarm["direction"], alarm["at_value"],
                     alarm["change_estimated_after_value"])
                )  # fmt: skip
        self._seen = self._state()
        return self._seen

    def _state(self) -> str:
        return json.dumps({"signature": self.signature, "streams": {n: d.state() for n, d in self.streams.items()}})

    def kept(self) -> None:
        """The events last seen are in the event log: their state is the one to go back to, and
        their alarms are said."""
        self._kept = self._seen
        for alarm in self._said:
            logger.warning(
                "detector alarm: %s (%s, %s) at the stream's value number %s; the change likely began after "
                "value number %s", *alarm,
            )  # fmt: skip
        self._said.clear()

    def undo(self) -> None:
        """The events last seen were not written (the transaction failed): back to the state
        before them, so that the detectors see each event of the log once, as after a restart."""
        self.streams = {name: StreamDetector.from_state(s) for name, s in json.loads(self._kept)["streams"].items()}
        self._seen = self._kept
        self._said.clear()  # alarms on events never written: not said

    def summary(self) -> list[dict[str, Any]]:
        return [detector.summary() for detector in self.streams.values()]


_NUMBERS = frozenset({int, float, type(None)})


def _numbers(values: list[Any]) -> np.ndarray:
    """A stream's values as floats, NaN (skipped by the detectors) for what is not a number:
    missing, true/false, text."""
    if set(map(type, values)) <= _NUMBERS:  # the common case, converted at C speed (None to NaN)
        return np.array(values, dtype=np.float64)
    return np.array([_number(value) for value in values], dtype=np.float64)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)
