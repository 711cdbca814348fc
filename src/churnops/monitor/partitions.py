"""The engine-neutral partition interface of the streaming engine.

Any engine that can run a Python function on parts of a table - a Dask ``map_partitions``, a
Spark ``mapInArrow``, a process pool - computes one :class:`~churnops.monitor.batch.BatchBuilder`
per part with :func:`partition_builder`, ships it back its own way (the Spark engine seals what its
executors send, see :mod:`churnops.integrations.spark_engine`), and the driver merges them with
:func:`merge_builders`. The streaming summaries
do not depend on how the rows were split or in which order the parts are merged, so every
engine gives the same result as one pass over the whole table.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import polars as pl

from churnops.monitor.batch import BatchBuilder
from churnops.monitor.profile import ReferenceProfile
from churnops.monitor.segments import batch_builder
from churnops.monitor.settings import MonitorSettings


def partition_builder(
    frame: Any,
    profile: ReferenceProfile,
    columns: list[str],
    settings: MonitorSettings,
    row_sample: int = 1,
) -> BatchBuilder:
    """Accumulate one part of a batch (a pandas or polars DataFrame, or an Arrow table/batch).

    ``columns`` is the batch's full header (for the schema check); the part may hold only the
    needed columns.
    """
    builder = batch_builder(profile, columns, settings, streaming=True, jobs=1, row_sample=row_sample)
    builder.update(as_chunk(frame, builder.read_columns, getattr(builder, "main", builder).id_columns))
    builder._wait_pending()
    return builder


def as_chunk(frame: Any, needed: list[str], ids: Collection[str] = ()) -> Any:
    """A polars DataFrame or an Arrow RecordBatch of the needed columns. A pandas frame of Arrow
    columns (Dask's Parquet partitions) becomes the Arrow batch the local reader would give -
    its integers with nulls kept as integers, decimals and unsigned 64-bit integers cast as it
    casts them, those of identifier columns (``ids``) as text."""
    import pyarrow as pa

    if isinstance(frame, pl.DataFrame):
        return frame.select(needed)
    if isinstance(frame, pa.RecordBatch):
        return frame.select(needed)
    if isinstance(frame, pa.Table):
        return frame.select(needed).combine_chunks().to_batches()[0] if frame.num_rows else pl.DataFrame()
    import pandas as pd

    if any(isinstance(dtype, pd.ArrowDtype) for dtype in frame[needed].dtypes):
        from churnops.data.io import as_read

        table = pa.Table.from_pandas(frame[needed], preserve_index=False)
        if not table.num_rows:
            return pl.DataFrame()
        return as_read(table.combine_chunks().to_batches()[0], ids)
    converted = pl.from_pandas(frame[needed])
    assert isinstance(converted, pl.DataFrame)
    return converted


def merge_builders(builders: Iterable[BatchBuilder]) -> BatchBuilder:
    """One builder holding every part (merged in the order given; any order gives the same)."""
    merged: BatchBuilder | None = None
    for builder in builders:
        if merged is None:
            merged = builder
        else:
            merged.merge(builder)
    if merged is None:
        raise ValueError("no partition to merge")
    return merged
