"""The engines a monitoring run compares with, chosen once per run behind one small interface.

* ``native`` (:class:`LocalEngine`): this process reads both files in chunks - exact (every
  value kept: Evidently's numbers) up to ``monitor.exact_max_rows`` rows per dataset, bounded
  streaming summaries above, or as ``monitor.mode`` says;
* ``dask`` (:class:`DaskEngine`): the same reference profile, the batch summarized partition by
  partition on a Dask cluster, the summaries merged here;
* ``spark`` (:class:`SparkEngine`): both tables read by Spark (files, folders of parts, catalog
  tables), every partition summarized on the executors, the summaries merged here;
* ``evidently`` (:class:`EvidentlyEngine`): Evidently itself, on both tables in memory.

An engine turns (reference, batch) into a :class:`~churnops.monitor.results.MonitoringResult`
and says how its reference profile was found; everything after - the model, the verdict, the
outputs - is the same for all. A new engine is one class here, or one module it imports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from churnops.config import Config
from churnops.data.io import TableReader, check_readable, read_table, sha256_file
from churnops.errors import ConfigError, InputDataError
from churnops.monitor.batch import BatchBuilder, read_as_numbers_alters, text_columns
from churnops.monitor.engine import evaluate
from churnops.monitor.prepare import only_empty_rows
from churnops.monitor.profile import ReferenceProfile
from churnops.monitor.results import Chunks, DatasetInfo, MonitoringResult
from churnops.monitor.segments import batch_builder
from churnops.monitor.settings import MonitorSettings
from churnops.pipeline.progress import Progress
from churnops.pipeline.reference import (
    ROW_SAMPLE,
    ReferenceSource,
    get_reference_profile,
    is_streaming,
    jobs_of,
    mode_facts,
    reading_progress,
)


@dataclass(frozen=True)
class EngineRun:
    """What an engine computed: the comparison, how the reference profile was found (``hit``,
    ``miss``, ``off``), files it wrote beside the outputs, and its stages' seconds."""

    result: MonitoringResult
    cache_status: str
    extra_files: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


class Engine:
    """Compares a batch with a reference."""

    name = ""

    def check_input(self, path: Path) -> None:
        """Refuse at once an input this engine cannot read (before the workspace is locked)."""
        check_readable(path)

    def compare(
        self,
        config: Config,
        source: ReferenceSource,
        current: Path,
        settings: MonitorSettings,
        use_cache: bool,
        progress: Progress | None = None,
    ) -> EngineRun:
        raise NotImplementedError


class LocalEngine(Engine):
    """Exact or streaming summaries of both files, in this process."""

    name = "native"

    def streaming(self, config: Config, probe: TableReader) -> bool:
        return is_streaming(config, probe)

    def accumulate(
        self,
        config: Config,
        profile: ReferenceProfile,
        current: Path,
        builder: BatchBuilder,
        settings: MonitorSettings,
        progress: Progress | None,
    ) -> tuple[BatchBuilder, str, dict[str, Any]]:
        """Feed the batch to ``builder``; the builder, the batch's sha256 and facts for ``mode``."""
        reader = TableReader(
            current,
            columns=builder.read_columns,
            dialect=config.dialect,
            arrow=builder.streaming,
            text=builder.text_columns,
            ids=getattr(builder, "main", builder).id_columns,
        )
        reader.progress = reading_progress(progress, "current", reader)
        main = getattr(builder, "main", builder)  # a segmented builder counts rows in its main one
        main.intended, main.decimal_comma = reader.intended, config.dialect.decimal == ","
        for chunk in reader:
            builder.update(chunk)
        return builder, reader.sha256, {}

    def compare(
        self,
        config: Config,
        source: ReferenceSource,
        current: Path,
        settings: MonitorSettings,
        use_cache: bool,
        progress: Progress | None = None,
    ) -> EngineRun:
        started = time.perf_counter()
        profile, reference_info, cache_status, _ = get_reference_profile(
            config, source, settings, use_cache, progress=progress
        )
        loaded = time.perf_counter()
        probe = TableReader(current, dialect=config.dialect)
        jobs = jobs_of(config)
        try:
            streaming = self.streaming(config, probe)
            above = config.monitor.sample_duplicates_above
            sample = ROW_SAMPLE if streaming and above and probe.estimated_rows > above else 1
            builder = batch_builder(profile, probe.header, settings, streaming=streaming, jobs=jobs, row_sample=sample)
        except InputDataError as exc:
            raise InputDataError(f"{current}: {exc}") from None
        builder, sha, extra_mode = self.accumulate(config, profile, current, builder, settings, progress)
        tally = builder.finish()
        if not tally.rows and tally.empty_rows:
            raise only_empty_rows(current, tally.empty_rows)
        current_info = DatasetInfo(str(current), tally.rows, sha, None, len(probe.header))
        timings = {
            "reference_profile_s": loaded - started,
            "read_and_accumulate_current_s": time.perf_counter() - loaded,
        }
        result = self.evaluated(config, profile, tally, settings, (reference_info, current_info), extra_mode, progress)
        if settings.chunk_by:
            chunked = time.perf_counter()
            result = replace(result, chunks=batch_chunks(config, profile, current, probe.header, settings, progress))
            timings["chunks_s"] = time.perf_counter() - chunked
        return EngineRun(result, cache_status, {}, timings)

    def evaluated(
        self,
        config: Config,
        profile: ReferenceProfile,
        tally: Any,
        settings: MonitorSettings,
        infos: tuple[DatasetInfo, DatasetInfo],
        extra_mode: dict[str, Any],
        progress: Progress | None,
    ) -> MonitoringResult:
        """Every test of the batch's tally against the profile, with the ``mode`` facts."""
        tested = progress and (lambda done, total: progress("testing columns", done, total))
        result = evaluate(profile, tally, settings, infos[0], infos[1], engine=self.name, on_column=tested)
        return replace(result, mode={**mode_facts(profile, tally, jobs_of(config), config), **extra_mode})


def batch_chunks(
    config: Config,
    profile: ReferenceProfile,
    current: Path,
    header: list[str],
    settings: MonitorSettings,
    progress: Progress | None = None,
) -> Chunks:
    """The batch read again (its tested columns and time column, in memory) and cut into chunks,
    each compared with the reference (``drift.chunk_by``)."""
    import polars as pl

    from churnops.monitor.chunks import chunks_of, needed_columns
    from churnops.monitor.prepare import drop_empty_rows

    if settings.time_column and settings.time_column not in header:
        shown = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
        raise InputDataError(f"drift.time_column: '{settings.time_column}' is not a column of {current} ({shown})")
    needed = needed_columns(profile, settings)
    # every column the run reads (all but columns.ignored), to leave out the rows with no value in
    # any - blank lines, left out of the run itself - and not count them as rows without a time
    read = [name for name in dict.fromkeys(header) if name in needed or settings.declared(name) != "ignored"]
    reader = TableReader(current, columns=read, dialect=config.dialect, text=text_columns(profile))
    reader.progress = reading_progress(progress, "chunks", reader)
    parts = [drop_empty_rows(part, read)[0].select([n for n in needed if n in part.columns]) for part in reader]
    frame = pl.concat(parts, how="vertical_relaxed") if parts else pl.DataFrame()
    return chunks_of(profile, frame, settings)


class DaskEngine(LocalEngine):
    """The batch summarized on a Dask cluster (always streaming summaries, merged here)."""

    name = "dask"

    def streaming(self, config: Config, probe: TableReader) -> bool:
        return True

    def accumulate(
        self,
        config: Config,
        profile: ReferenceProfile,
        current: Path,
        builder: BatchBuilder,
        settings: MonitorSettings,
        progress: Progress | None,
    ) -> tuple[BatchBuilder, str, dict[str, Any]]:
        from churnops.integrations.dask_engine import accumulate_on_dask

        return accumulate_on_dask(config, profile, current, builder, settings)  # type: ignore[no-any-return]


class SparkEngine(LocalEngine):
    """Both tables read by Spark and summarized on its executors (always streaming summaries)."""

    name = "spark"

    def check_input(self, path: Path) -> None:
        from churnops.integrations.spark_engine import spark_input

        spark_input(path)

    def compare(
        self,
        config: Config,
        source: ReferenceSource,
        current: Path,
        settings: MonitorSettings,
        use_cache: bool,
        progress: Progress | None = None,
    ) -> EngineRun:
        from churnops.integrations.spark_engine import (
            accumulate_batch,
            input_sha256,
            read_table,
            spark_input,
            spark_session,
        )

        batch_input = spark_input(current)
        if settings.chunk_by and batch_input.local_file is None:
            raise ConfigError(
                "drift.chunk_by with the spark engine needs the batch as one file (its chunks are cut on this "
                "machine); a folder or a table is not cut into chunks yet"
            )
        started = time.perf_counter()
        with spark_session(config) as spark:
            batch = read_table(spark, batch_input, config.dialect)  # a missing batch is said first
            profile, reference_info, cache_status, _ = spark_reference_profile(
                spark, config, source, settings, use_cache, progress=progress
            )
            loaded = time.perf_counter()
            above = config.monitor.sample_duplicates_above
            builder, facts = accumulate_batch(spark, config, profile, batch, settings, above, ROW_SAMPLE, progress)
        table, header = batch.source, batch.header
        tally = builder.finish()
        current_info = DatasetInfo(table.given, tally.rows, input_sha256(table), None, len(header))
        timings = {
            "reference_profile_s": loaded - started,
            "read_and_accumulate_current_s": time.perf_counter() - loaded,
        }
        result = self.evaluated(config, profile, tally, settings, (reference_info, current_info), facts, progress)
        if settings.chunk_by:
            chunked = time.perf_counter()
            assert table.local_file is not None
            result = replace(result, chunks=batch_chunks(config, profile, table.local_file, header, settings, progress))
            timings["chunks_s"] = time.perf_counter() - chunked
        return EngineRun(result, cache_status, {}, timings)


def spark_reference_profile(
    spark: Any,
    config: Config,
    source: ReferenceSource,
    settings: MonitorSettings,
    use_cache: bool,
    rebuild: bool = False,
    progress: Progress | None = None,
) -> tuple[ReferenceProfile, DatasetInfo, str, Path | None]:
    """The reference's streaming profile built on Spark - or the cached one, which the local
    streaming engine shares (same key) - its description, the cache status and the cache file
    (None for a folder or a table: only a file has a sha256 to key it)."""
    from churnops.integrations.spark_engine import input_sha256, profile_of, read_table, spark_input
    from churnops.monitor.profile import require_tested
    from churnops.pipeline.reference import (
        cached_profile,
        check_target_present,
        profile_cache_file,
        say_column_notices,
        store_profile,
    )

    table = spark_input(source.path)
    sha = input_sha256(table)
    dialect = config.dialect_for("reference")
    cache_file = None if sha is None else profile_cache_file(config, sha, source.row_range, settings, "streaming")
    status = "off"
    profile = None
    header: list[str] | None = None
    if use_cache and not rebuild and cache_file is not None:
        status = "miss"
        cached = cached_profile(config, cache_file, sha)
        if cached is not None:
            profile, status = cached[0], "hit"
    if profile is None:
        read = read_table(spark, table, dialect)
        header = read.header
        check_target_present(config, Path(table.given), header)
        profile = profile_of(read, settings, dialect, source.row_range, progress)
        if cache_file is not None and sha is not None and (use_cache or rebuild):
            status = "rebuilt" if rebuild else status
            store_profile(profile, cache_file, table.given, sha, rebuild, config)
    info = DatasetInfo(table.given, profile.rows, sha, source.row_range, len(profile.columns))
    say_column_notices(config, Path(table.given), header or list(profile.columns), profile)
    require_tested(profile, table.given)
    return profile, info, status, cache_file


class EvidentlyEngine(Engine):
    """Evidently's DataDriftPreset on both tables in memory (``churnops[evidently]``)."""

    name = "evidently"

    def compare(
        self,
        config: Config,
        source: ReferenceSource,
        current: Path,
        settings: MonitorSettings,
        use_cache: bool,
        progress: Progress | None = None,
    ) -> EngineRun:
        import polars as pl

        from churnops.integrations.evidently_engine import run_evidently

        if settings.segments:
            raise ConfigError("drift.segments needs the native, dask or spark engine (Evidently has no segments)")
        if settings.verdict != "evidently":
            raise ConfigError(
                f'drift.verdict = "{settings.verdict}" needs the native, dask or spark engine: '
                "the evidently engine decides with Evidently's own rule"
            )
        if settings.multivariate:
            raise ConfigError("drift.multivariate needs the native, dask or spark engine")
        if settings.chunk_by:
            raise ConfigError("drift.chunk_by needs the native, dask or spark engine")
        started = time.perf_counter()
        reference_frame = read_table(source.path, source.row_range, config.dialect_for("reference"))
        # codes the reference writes with leading zeros keep them in a CSV batch
        padded = [
            name
            for name in reference_frame.columns
            if reference_frame[name].dtype == pl.String
            and any(map(read_as_numbers_alters, reference_frame[name].head(10_000).unique().to_list()))
        ]
        current_frame = read_table(current, dialect=config.dialect, text=padded)
        reference_info = DatasetInfo(
            str(source.path), reference_frame.height, sha256_file(source.path), source.row_range, reference_frame.width
        )
        current_info = DatasetInfo(str(current), current_frame.height, sha256_file(current), None, current_frame.width)
        evidently_html = config.monitoring_dir / "evidently_report.html"
        result = run_evidently(reference_frame, current_frame, settings, reference_info, current_info, evidently_html)
        extra = {"evidently_report": evidently_html} if config.monitor.evidently_html else {}
        return EngineRun(result, "off", extra, {"read_s": time.perf_counter() - started})


ENGINES: dict[str, Engine] = {
    engine.name: engine for engine in (LocalEngine(), DaskEngine(), SparkEngine(), EvidentlyEngine())
}


def choose_engine(name: str) -> Engine:
    """The engine called ``name`` (``monitor.engine`` / ``--engine``)."""
    try:
        return ENGINES[name]
    except KeyError:
        raise ConfigError(f"monitor.engine: unknown engine '{name}' (use {', '.join(ENGINES)})") from None
