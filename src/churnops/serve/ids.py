"""The ids the event log gives events that come without one: time-ordered, so that a new id lands
at the end of the log's unique index on event ids (random ids, ``uuid4``, land on a random page
of it: a thousand events cost four times as long to write into a log of 300,000).

The layout of a UUID version 7 (RFC 9562, section 5.7) written as 32 hex digits: 48 bits of Unix
time in milliseconds, the version, a 12-bit counter of the ids made in the same millisecond (the
RFC's method 1, so the ids of one process only increase), the variant and 62 random bits.
"""

from __future__ import annotations

import os
import time

import numpy as np

COUNTER_BITS = 12


class EventIds:
    """Makes ids in increasing order; one thread (the event log's writer) uses it.

    >>> ids = EventIds().take(3)
    >>> ids == sorted(ids) and len(set(ids)) == 3 and all(len(i) == 32 and i[12] == "7" for i in ids)
    True
    """

    def __init__(self) -> None:
        self._next = 0  # milliseconds and counter as one number: ms << 12 | counter

    def take(self, count: int) -> list[str]:
        """``count`` new ids, each greater than every id made before by this object (more than
        4,096 in a millisecond borrow the next millisecond's)."""
        start = max(self._next, (time.time_ns() // 1_000_000) << COUNTER_BITS)
        self._next = start + count
        ticks = np.arange(start, start + count, dtype=np.uint64)
        words = np.empty((count, 2), dtype=">u8")  # big-endian: the hex digits read in order
        words[:, 0] = (
            ((ticks >> np.uint64(COUNTER_BITS)) << np.uint64(16)) | np.uint64(0x7000) | (ticks & np.uint64(0xFFF))
        )
        words[:, 1] = (np.frombuffer(os.urandom(8 * count), dtype=">u8") >> np.uint64(2)) | np.uint64(1 << 63)
        text = words.tobytes().hex()
        return [text[i : i + 32] for i in range(0, 32 * count, 32)]
