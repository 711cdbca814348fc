"""Counting repeated rows (or identifiers) in bounded memory.

Each row is reduced to a 64-bit hash, with the number of its cells that failed a quality check.
A row *repeats an earlier row* when another row has the same hash; identical rows have identical
cells, hence the same failure count, so which copy counts as "the first" does not matter.

Hashes are kept in memory up to :data:`SPILL_ROWS`; beyond that they are spilled to temporary
files partitioned by their top bits, and each partition is counted on its own at the end - so
a 100-million-row batch needs a few hundred megabytes of temporary disk, not of memory. The
count is exact up to 64-bit hash collisions (for n rows, a false repeat has a probability near
``n**2 / 2**65``: about 3e-4 at 100 million rows).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from churnops.monitor.prepare import sorted_copy

SPILL_ROWS = 2_000_000
"""Rows kept in memory before hashes go to temporary files."""
PARTITION_BITS = 5
RECORD = np.dtype([("hash", "<u8"), ("failures", "<u2")])


def count_repeats(hashes: NDArray[np.uint64], failures: NDArray[np.uint16] | None = None) -> tuple[int, int]:
    """How many elements repeat an earlier one, and the sum of their failure counts.

    >>> count_repeats(np.array([5, 3, 5, 5, 3], dtype=np.uint64), np.array([1, 0, 1, 1, 0], dtype=np.uint16))
    (3, 2)
    """
    if hashes.size < 2:
        return 0, 0
    ordered = sorted_copy(hashes)
    repeat = ordered[1:] == ordered[:-1]
    n = int(np.count_nonzero(repeat))
    if not n or failures is None:
        return n, 0
    repeated, extra_copies = np.unique(ordered[1:][repeat], return_counts=True)
    involved = np.isin(hashes, repeated)
    _, first = np.unique(hashes[involved], return_index=True)
    per_value = failures[involved][first].astype(np.int64)  # identical rows fail identically
    return n, int((extra_copies * per_value).sum())


class DuplicateCounter:
    """Accumulates (hash, failures) per row; :meth:`finish` counts the repeats.

    Hashes go to one store, the (hash, failures) pairs of rows with a failed cell to another
    (both spilled by partition when large): the repeats are found by sorting hashes alone, and
    their failures looked up afterwards, since identical rows fail identically.
    """

    def __init__(self, spill_rows: int = SPILL_ROWS) -> None:
        self.spill_rows = spill_rows
        self.hashes: list[NDArray[np.uint64]] = []
        self.failing: list[NDArray[np.void]] = []
        self.in_memory = 0
        self.folder: Path | None = None

    def add(self, hashes: NDArray[np.uint64], failures: NDArray[np.uint16] | None = None) -> None:
        self.hashes.append(hashes)
        self.in_memory += hashes.size
        if failures is not None:
            failed = np.flatnonzero(failures)
            if failed.size:
                records = np.empty(failed.size, dtype=RECORD)
                records["hash"] = hashes[failed]
                records["failures"] = failures[failed]
                self.failing.append(records)
                self.in_memory += failed.size
        if self.in_memory > self.spill_rows:
            self._spill()

    def _spill(self) -> None:
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="churnops-duplicates-"))
        parts = 1 << PARTITION_BITS
        if self.hashes:
            ordered = sorted_copy(np.concatenate(self.hashes))  # sorted spills: cheap partitioning
            top = ordered >> np.uint64(64 - PARTITION_BITS)
            bounds = np.searchsorted(top, np.arange(parts + 1, dtype=np.uint64))
            for p in range(parts):
                if bounds[p + 1] > bounds[p]:
                    with (self.folder / f"h{p:02d}.bin").open("ab") as handle:
                        ordered[bounds[p] : bounds[p + 1]].tofile(handle)
        if self.failing:
            records = np.concatenate(self.failing)
            top = (records["hash"] >> np.uint64(64 - PARTITION_BITS)).astype(np.uint8)
            order = np.argsort(top, kind="stable")
            records, top = records[order], top[order]
            bounds = np.searchsorted(top, np.arange(parts + 1))
            for p in range(parts):
                if bounds[p + 1] > bounds[p]:
                    with (self.folder / f"f{p:02d}.bin").open("ab") as handle:
                        records[bounds[p] : bounds[p + 1]].tofile(handle)
        self.hashes, self.failing, self.in_memory = [], [], 0

    def merge(self, other: DuplicateCounter) -> None:
        """Absorb another counter (its spilled files are read back here)."""
        self._absorb(other.hashes, other.failing)
        if other.folder is not None:
            for part in sorted(other.folder.glob("h*.bin")):
                self._absorb([np.fromfile(part, dtype=np.uint64)], [])
            for part in sorted(other.folder.glob("f*.bin")):
                self._absorb([], [np.fromfile(part, dtype=RECORD)])
            other.close()

    def _absorb(self, hashes: list[NDArray[np.uint64]], failing: list[NDArray[np.void]]) -> None:
        self.hashes.extend(hashes)
        self.failing.extend(failing)
        self.in_memory += sum(h.size for h in hashes) + sum(f.size for f in failing)
        if self.in_memory > self.spill_rows:
            self._spill()

    def finish(self) -> tuple[int, int]:
        """Repeated rows and the sum of their failure counts; temporary files are removed."""
        try:
            if self.folder is None:
                return _repeats(self.hashes, self.failing)
            if self.in_memory:
                self._spill()
            folder = self.folder

            def count(p: int) -> tuple[int, int]:
                hashes = folder / f"h{p:02d}.bin"
                if not hashes.exists():
                    return 0, 0
                failing = folder / f"f{p:02d}.bin"
                return _repeats(
                    [np.fromfile(hashes, dtype=np.uint64)],
                    [np.fromfile(failing, dtype=RECORD)] if failing.exists() else [],
                )

            # partitions are independent, and NumPy sorts without the GIL: one thread per core
            with ThreadPoolExecutor(min(os.cpu_count() or 1, 4)) as pool:
                counted = list(pool.map(count, range(1 << PARTITION_BITS)))
            return sum(n for n, _ in counted), sum(f for _, f in counted)
        finally:
            self.close()

    def close(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __getstate__(self) -> dict[str, object]:
        """Pickling (Dask) carries the hashes themselves, never a path to local files."""
        if self.folder is not None:
            for part in sorted(self.folder.glob("h*.bin")):
                self.hashes.append(np.fromfile(part, dtype=np.uint64))
            for part in sorted(self.folder.glob("f*.bin")):
                self.failing.append(np.fromfile(part, dtype=RECORD))
            self.close()
        return dict(self.__dict__)


def _repeats(hashes: list[NDArray[np.uint64]], failing: list[NDArray[np.void]]) -> tuple[int, int]:
    """Repeats among ``hashes`` and the failures of the repeated copies."""
    if not hashes:
        return 0, 0
    ordered = sorted_copy(np.concatenate(hashes))  # not a merge of the sorted runs: 4x slower
    repeat = ordered[1:] == ordered[:-1]
    n = int(np.count_nonzero(repeat))
    if not n or not failing:
        return n, 0
    repeated, extra_copies = np.unique(ordered[1:][repeat], return_counts=True)
    records = np.concatenate(failing)
    involved = records[np.isin(records["hash"], repeated)]
    if not involved.size:
        return n, 0
    keys, first = np.unique(involved["hash"], return_index=True)
    per_value = involved["failures"][first].astype(np.int64)  # identical rows fail identically
    copies = extra_copies[np.searchsorted(repeated, keys)]
    return n, int((copies * per_value).sum())
