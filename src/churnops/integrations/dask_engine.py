"""``--engine dask``: the streaming engine on the partitions of a Dask DataFrame.

The batch is read with ``dask.dataframe`` (Parquet row groups or CSV blocks), every partition
is accumulated by :func:`churnops.monitor.partitions.partition_builder` inside
``map_partitions`` on the cluster's workers, and the partition builders are merged on the
client as they complete (so the client never holds every partition at once). The result is the
local streaming engine's, to the last digit: the summaries do not depend on the partitioning.

The cluster is the one at ``monitor.scheduler`` (``--scheduler tcp://host:8786``), else a
``LocalCluster`` of ``monitor.jobs`` worker processes started for the run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from churnops.config import Config
from churnops.data.io import NULL_VALUES, TableReader, sha256_file
from churnops.errors import InputDataError, IntegrationError, MissingDependencyError
from churnops.monitor.batch import BatchBuilder
from churnops.monitor.partitions import partition_builder
from churnops.monitor.profile import ReferenceProfile
from churnops.monitor.settings import MonitorSettings

logger = logging.getLogger(__name__)
CSV_BLOCK = "64MB"


def _dask() -> tuple[Any, Any]:
    try:
        import dask.dataframe as dd
        from dask import distributed
    except ImportError:
        raise MissingDependencyError("dask", "dask") from None
    return dd, distributed


def read_partitions(config: Config, path: Path, columns: list[str]) -> Any:
    """The batch as a Dask DataFrame of the needed columns (CSV cells kept as text, Parquet's as
    Arrow columns)."""
    dd, _ = _dask()
    reader = TableReader(path, dialect=config.dialect)
    if reader.format == "parquet":
        # Arrow columns: integers with nulls stay integers (numpy's would become floats, and two
        # identifiers from 2**53 on one value), read as the local engine reads them (as_chunk)
        return dd.read_parquet(str(path), columns=columns, split_row_groups=True, dtype_backend="pyarrow")
    dialect = config.dialect
    return dd.read_csv(
        str(path),
        usecols=columns,
        dtype=str,
        sep=dialect.separator,
        decimal=dialect.decimal,
        encoding=dialect.encoding,
        na_values=NULL_VALUES,
        keep_default_na=False,
        blocksize=CSV_BLOCK,
    )


def client_for(config: Config, jobs: int) -> tuple[Any, Any]:
    """A client of the configured scheduler, or of a new local cluster (returned to be closed)."""
    _, distributed = _dask()
    address = config.monitor.scheduler
    try:
        if address:
            return distributed.Client(address, timeout="10s"), None
        cluster = distributed.LocalCluster(
            n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
        )
        return distributed.Client(cluster), cluster
    except (OSError, TimeoutError) as exc:
        raise IntegrationError(f"cannot reach the Dask scheduler {address or '(local)'}: {exc}") from None


def accumulate_on_dask(
    config: Config, profile: ReferenceProfile, path: Path, builder: BatchBuilder, settings: MonitorSettings
) -> tuple[BatchBuilder, str, dict[str, Any]]:
    """Accumulate the batch on Dask; returns the merged builder, the file's sha256 and facts
    for the metrics' ``mode`` section (partitions, scheduler)."""
    _, distributed = _dask()
    header = TableReader(path, dialect=config.dialect).header
    frame = read_partitions(config, path, builder.read_columns)
    jobs = builder.jobs
    client, cluster = client_for(config, jobs)
    row_sample = builder.row_sample
    try:
        import pandas as pd

        parts = frame.map_partitions(
            _partition, profile, header, settings, row_sample, meta=pd.Series(dtype=object), align_dataframes=False
        )
        futures = client.compute(parts.to_delayed())
        merged: BatchBuilder | None = None
        done = 0
        for future in distributed.as_completed(futures):
            for partial in future.result():
                if merged is None:
                    merged = partial
                else:
                    merged.merge(partial)
            future.release()
            done += 1
        if merged is None or merged.rows == 0:
            raise InputDataError(f"{path}: has a header but no data rows")
        facts = {"partitions": done, "scheduler": config.monitor.scheduler or "local"}
    except (OSError, distributed.comm.CommClosedError) as exc:
        raise IntegrationError(f"the Dask cluster failed: {exc}") from None
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    merged.jobs = jobs
    return merged, sha256_file(path), facts


def _partition(
    frame: Any, profile: ReferenceProfile, header: list[str], settings: MonitorSettings, row_sample: int
) -> Any:
    import pandas as pd

    if len(frame) == 0:
        return pd.Series([], dtype=object)
    return pd.Series([partition_builder(frame, profile, header, settings, row_sample)], dtype=object)
