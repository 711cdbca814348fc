"""The reference side of a monitoring run: its profile (from the cache or built), the notices
about its columns, and the facts every engine shares (exact or streaming, jobs, progress)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from churnops.config import Config
from churnops.data.io import RowsBeyondEnd, TableReader, check_readable, sha256_file, table_format
from churnops.errors import NOTICE, ChurnopsError, ConfigError, InputDataError
from churnops.escape import names_line, plural
from churnops.monitor.batch import BatchTally
from churnops.monitor.prepare import CategoricalSample, NumericalSample, only_empty_rows
from churnops.monitor.profile import (
    DECLARED_REASONS,
    IDENTIFIER_REASON,
    TEXT_REASON,
    UNKNOWN_REASON,
    ProfileBuilder,
    ReferenceProfile,
    nothing_to_test,
    require_tested,
)
from churnops.monitor.results import DatasetInfo
from churnops.monitor.segments import check_segment_columns, profile_columns, profile_segments
from churnops.monitor.settings import MonitorSettings
from churnops.monitor.sketch import RELATIVE_ERROR
from churnops.pipeline.profile_cache import load_signed_profile, profile_key, save_profile, write_signed
from churnops.pipeline.progress import Progress

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReferenceSource:
    path: Path
    row_range: tuple[int, int] | None


ROW_SAMPLE = 16
"""Streaming batches above ``monitor.sample_duplicates_above`` rows, with an identifier column,
count repeated rows and identifiers on one identifier in ``ROW_SAMPLE``."""


def is_streaming(config: Config, reader: TableReader, row_range: tuple[int, int] | None = None) -> bool:
    """Whether a dataset is summarized by the streaming engine (``monitor.mode``)."""
    mode = config.monitor.mode
    if mode != "auto":
        return mode == "streaming"
    rows = row_range[1] - row_range[0] if row_range is not None else reader.estimated_rows
    return rows > config.monitor.exact_max_rows


def jobs_of(config: Config) -> int:
    return config.monitor.jobs or os.cpu_count() or 1


def reading_progress(progress: Progress | None, label: str, reader: TableReader) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(f"{label} {reader.path.name}: {reader.rows:,} rows", done, total)


def get_reference_profile(
    config: Config,
    source: ReferenceSource,
    settings: MonitorSettings,
    use_cache: bool,
    rebuild: bool = False,
    progress: Progress | None = None,
) -> tuple[ReferenceProfile, DatasetInfo, str, Path]:
    """The reference profile, from the cache when valid, else built (and cached).

    Returns the profile, the reference's description, the cache status (``hit``, ``miss``,
    ``rebuilt`` or ``off``) and the cache file.
    """
    check_readable(source.path)
    dialect = config.dialect_for("reference")
    probe = TableReader(source.path, source.row_range, dialect=dialect)
    check_target_present(config, source.path, probe.header)
    check_segment_columns(settings, probe.header, str(source.path))
    streaming = is_streaming(config, probe, source.row_range)
    mode = "streaming" if streaming else "exact"
    status = "off"
    profile = None
    sha: str | None = None  # without a cache to look in, the hash of the bytes as they are read
    if use_cache and not rebuild:
        sha = sha256_file(source.path)
        cache_file = profile_cache_file(config, sha, source.row_range, settings, mode)
        cached = cached_profile(config, cache_file, sha, probe.header)
        status = "miss"
        if cached is not None:
            profile, _ = cached
            status = "hit"
    if profile is None:
        text_numbers = table_format(source.path) == "csv"  # a Parquet file's text columns are text
        builder = ProfileBuilder(probe.columns, settings, streaming=streaming, text_numbers=text_numbers)
        if not builder.needed:
            reasons = {c: DECLARED_REASONS.get(settings.declared(c) or "", "not tested") for c in probe.columns}
            raise nothing_to_test(str(source.path), reasons)
        reader = TableReader(source.path, source.row_range, columns=builder.needed, dialect=dialect)
        builder.intended = reader.intended  # filled as the first piece is read
        reader.progress = reading_progress(progress, "reference", reader)
        try:
            for chunk in reader:
                builder.update(chunk)
        except RowsBeyondEnd as exc:
            raise InputDataError(
                f"{exc}; the reference window is data.reference_rows (or --reference-rows): set "
                'data.reference_rows = "all" to use the whole file'
            ) from None
        if builder.empty_rows:
            n = builder.empty_rows
            if not builder.rows:
                raise only_empty_rows(source.path, n)
            rows = f"{n:,} empty {plural(n, 'row', 'rows')}"
            logger.log(NOTICE, "%s: %s (no value in any column) left out", source.path, rows)
        profile = builder.finish()
        if sha is None:
            sha = reader.sha256 or sha256_file(source.path)
            cache_file = profile_cache_file(config, sha, source.row_range, settings, mode)
        if settings.segments:
            profile = _with_segments(profile, source, settings, dialect, streaming, progress)
        if use_cache or rebuild:
            status = "rebuilt" if rebuild else status
            store_profile(profile, cache_file, str(source.path), sha, rebuild, config)
    info = DatasetInfo(str(source.path), profile.rows, sha, source.row_range, len(profile.columns))
    say_column_notices(config, source.path, probe.header, profile)
    require_tested(profile, str(source.path))
    logger.debug("reference %s: %s rows, profile cache %s (%s)", source.path, profile.rows, status, cache_file)
    return profile, info, status, cache_file


def profile_cache_file(
    config: Config, sha: str, row_range: tuple[int, int] | None, settings: MonitorSettings, mode: str
) -> Path:
    """Where the profile of the reference with this sha256 is cached: a key of what it depends on
    (the bytes, how they are read, the row window, the column roles) and ``mode`` (exact or
    streaming) - the same for every engine that builds it."""
    dialect = config.dialect_for("reference")
    key = profile_key(sha, row_range, settings, (dialect.separator, dialect.decimal, dialect.encoding, mode))
    return config.resolve(config.paths.profile_cache) / f"{key}.npz"


MAX_SHARED_PROFILE_BYTES = 1 << 30
"""A profile fetched from ``storage.profile_cache_url`` larger than this is refused."""


def cached_profile(
    config: Config, cache_file: Path, sha: str | None = None, header: list[str] | None = None
) -> tuple[ReferenceProfile, dict[str, Any]] | None:
    """The cached profile: from ``paths.profile_cache``, else from ``storage.profile_cache_url``
    (copied into the local cache first, then read with the same checks). A profile that names
    another reference (its recorded ``sha``) or other columns than the reference's ``header`` is
    ignored with a warning, as is a shared cache that cannot be read: the profile is then built."""
    from churnops.signing import SUFFIX, cache_key, signature_file

    key = cache_key()
    if key is None:  # (said when the profile is not stored)
        return None
    found = _matching(load_signed_profile(cache_file, key), cache_file, sha, header)
    url = config.storage.profile_cache_url
    if found is not None or not url:
        return found
    from churnops.data.remote import download, shown
    from churnops.pipeline.storage import storage_options

    remote = f"{url.rstrip('/')}/{cache_file.name}"
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        options = storage_options(config)
        if not download(remote + SUFFIX, signature_file(cache_file), options, 1024):
            logger.debug("no shared profile %s (or no signature of it)", shown(remote))
            return None
        if not download(remote, cache_file, options, MAX_SHARED_PROFILE_BYTES):
            logger.debug("no shared profile %s", shown(remote))
            return None
    except (ChurnopsError, OSError) as exc:
        logger.warning("shared profile cache not read: %s", exc)
        return None
    logger.info("reference profile fetched from %s", shown(remote))
    return _matching(load_signed_profile(cache_file, key), cache_file, sha, header)


NO_KEY = (
    "the profile cache is off: no key to sign it (set CHURNOPS_CACHE_KEY, or give this user a writable "
    "~/.config or XDG_CONFIG_HOME)"
)


def _matching(
    found: tuple[ReferenceProfile, dict[str, Any]] | None, cache_file: Path, sha: str | None, header: list[str] | None
) -> tuple[ReferenceProfile, dict[str, Any]] | None:
    """``found`` when it describes this reference: its recorded sha256 and its columns."""
    if found is None:
        return None
    profile, meta = found
    if sha is not None and meta.get("sha256") != sha:
        logger.warning("ignoring profile cache %s: it was built from another reference", cache_file)
        return None
    if header is not None and list(profile.columns) != list(header):
        logger.warning("ignoring profile cache %s: its columns are not the reference's", cache_file)
        return None
    return found


def store_profile(
    profile: ReferenceProfile,
    cache_file: Path,
    reference: str,
    sha: str,
    rebuild: bool,
    config: Config | None = None,
) -> None:
    """Cache ``profile`` (and upload it to ``storage.profile_cache_url``); a failure is an error
    when the cache was asked for (``profile build``), else a warning (the run goes on without it)."""
    from churnops.errors import OutputWriteError
    from churnops.signing import SUFFIX, cache_key, signature_file

    key = cache_key()
    try:
        if key is None:
            raise OSError(NO_KEY)
        write_signed(
            cache_file, key, lambda: save_profile(profile, cache_file, {"reference": reference, "sha256": sha})
        )
    except (OSError, OutputWriteError) as exc:
        if rebuild:
            raise ChurnopsError(f"cannot write the profile cache {cache_file}: {exc}") from None
        logger.warning("could not write the profile cache %s: %s", cache_file, exc)
        return
    url = config.storage.profile_cache_url if config is not None else None
    if not url:
        return
    from churnops.data.remote import upload
    from churnops.pipeline.storage import storage_options

    try:
        remote = f"{url.rstrip('/')}/{cache_file.name}"
        upload(signature_file(cache_file), remote + SUFFIX, storage_options(config))  # type: ignore[arg-type]
        where = upload(cache_file, remote, storage_options(config))  # type: ignore[arg-type]
    except ChurnopsError as exc:
        if rebuild:
            raise
        logger.warning("the profile was not shared: %s", exc)
    else:
        logger.info("reference profile shared at %s", where)


def _with_segments(
    profile: ReferenceProfile,
    source: ReferenceSource,
    settings: MonitorSettings,
    dialect: Any,
    streaming: bool,
    progress: Progress | None,
) -> ReferenceProfile:
    """The profile with one profile per segment, from a second pass over the reference (each
    column's type must first be known from the whole reference)."""
    reader = TableReader(source.path, source.row_range, columns=profile_columns(profile, settings), dialect=dialect)
    reader.progress = reading_progress(progress, "reference segments", reader)
    return replace(profile, segments=profile_segments(reader, profile, settings, streaming=streaming))


def check_target_present(config: Config, path: Path, header: list[str]) -> None:
    """A target and identifiers you named (in churnops.toml, --set, --target or --id) must be in
    the reference."""
    target = config.columns.target
    by_case = {name.casefold(): name for name in header}
    if target and target not in header and "target" in config.columns.model_fields_set:
        shown = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
        raise ConfigError(
            f"columns.target: {_named(target, by_case, True)} is not a column of {path} (its columns: {shown})"
        )
    missing = [name for name in config.columns.id if name not in header]
    if missing and "id" in config.columns.model_fields_set:
        shown = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
        verb = "is not a column" if len(missing) == 1 else "are not columns"
        named = ", ".join(_named(n, by_case, True) for n in missing)
        raise ConfigError(f"columns.id: {named} {verb} of {path} (its columns: {shown})")


def guess_target(profile: ReferenceProfile) -> str | None:
    """A two-valued column whose name says it is the label (``churned``, ``port_out``), if there is one."""
    from churnops.pipeline.starter import label_like

    for column in profile.tested:
        sample = column.sample
        if label_like(column.plan.name) and isinstance(sample, CategoricalSample) and len(sample.labels) == 2:
            return column.plan.name
    return None


def looks_like_dates(sample: Any) -> bool:
    """Whether a categorical sample's labels are (almost all) dates, like ``2024-03-01``."""
    import polars as pl

    from churnops.monitor.prepare import mostly_dates

    if not isinstance(sample, CategoricalSample) or len(sample.labels) < 3:
        return False
    labels = [label for label in sample.labels[:500] if isinstance(label, str)]
    return len(labels) >= 3 and mostly_dates(pl.Series(labels, dtype=pl.String))


def say_column_notices(config: Config, path: Path, header: list[str], profile: ReferenceProfile) -> None:
    """One notice line each: configured columns the data lacks, and columns left out as identifiers."""
    from churnops.errors import NOTICE

    for line in column_notices(config, path.name, header, profile):
        logger.log(NOTICE, "%s", line)


def column_notices(
    config: Config,
    name: str,
    header: list[str],
    profile: ReferenceProfile,
    target_flag: str = "--target '{}'",
    naming: str | None = None,
) -> list[str]:
    """What churnops assumed about the reference's columns, one sentence each (``name``: how the
    reference is called; ``target_flag``: how to name a target, ``{}`` for the column;
    ``naming``: how to name one's columns, default ``churnops init``)."""
    columns = config.columns
    chosen = columns.model_fields_set
    configured: list[str] = []
    defaults: list[str] = []
    lines: list[str] = []

    def note(key: str, text: str) -> None:
        (configured if key in chosen else defaults).append(text)

    if columns.target and columns.target not in header:
        note("target", f"target '{columns.target}'")
    by_case = {column.casefold(): column for column in header}
    for kind in ("id", "ignored", "datetime", "numerical", "categorical", "binary", "text"):
        missing = [n for n in getattr(columns, kind) if n not in header]
        if missing:
            note(kind, f"{kind} " + ", ".join(_named(n, by_case) for n in missing))
    missing_domains = [n for n in columns.domains if n not in header]
    if missing_domains:
        note("domains", "domain " + ", ".join(f"'{n}'" for n in missing_domains))
    for key in ("per_column_method", "per_column_threshold"):
        missing = [n for n in getattr(config.drift, key) if n not in header]
        if missing:
            configured.append(f"drift.{key} " + ", ".join(f"'{n}'" for n in missing))
    parts = []
    if configured:
        parts.append(f"columns named in the configuration but not in {name}: " + "; ".join(configured))
    if defaults:
        lines.append(
            f"the bank example's column settings are unused: {name} has none of their columns "
            f"({'; '.join(defaults)}); nothing to do unless you want to name yours "
            f"({naming or f'churnops init --reference {name} writes a churnops.toml'})"
        )
    guess = guess_target(profile) if columns.target not in header else None
    if guess:
        parts.append(f"'{guess}' looks like the target: {target_flag.format(guess)}")
    if parts:
        lines.append("; ".join(parts))
    unusable = [c.plan.name for c in profile.columns.values() if (c.skip_reason or "").startswith("no usable value")]
    if unusable:
        lines.append(
            "not tested: no usable value in the reference (all missing, or not of the declared type): "
            + ", ".join(unusable)
        )
    missing = [c.plan.name for c in profile.columns.values() if c.skip_reason == UNKNOWN_REASON and not c.plan.declared]
    said = set(columns.text) & set(getattr(columns, "_inferred", ()))  # the classification's notice named them
    text = [
        c.plan.name
        for c in profile.columns.values()
        if c.skip_reason == TEXT_REASON and not c.plan.declared and c.plan.name not in said
    ]
    if missing:
        lines.append("not tested, every value missing in the reference: " + names_line(missing))
    if text:
        lines.append(
            "not tested, free text (most values distinct): " + names_line(text) + " (list a column in "
            "columns.numerical when it holds numbers, in columns.categorical to test its values as categories)"
        )
    if profile.tested and not any(c.plan.role == "feature" for c in profile.tested):
        lines.append("no feature column is tested: only the target's rate is compared")
    dates = [c.plan.name for c in profile.tested if c.plan.role == "feature" and looks_like_dates(c.sample)]
    if dates:
        lines.append(
            "these columns hold dates but are tested as categories: " + ", ".join(dates) + " (list them in "
            "columns.datetime)"
        )
    detected = [c.plan.name for c in profile.columns.values() if c.skip_reason == IDENTIFIER_REASON]
    if detected:
        lines.append(
            "not tested for drift, as they look like row numbers or identifiers: " + ", ".join(detected) + " "
            "(declare them in [columns] to test them, or set columns.detect_ids = false)"
        )
    return lines


def profile_mode(profile: ReferenceProfile) -> str:
    """``streaming`` when the profile keeps summaries rather than every value (categories are
    counted exactly by both engines)."""
    for column in profile.tested:
        sample = column.sample
        if isinstance(sample, NumericalSample) and (sample.relative_error or sample.bounds is not None):
            return "streaming"
    return "exact"


def mode_facts(profile: ReferenceProfile, tally: BatchTally, jobs: int, config: Config) -> dict[str, Any]:
    """The ``mode`` section of the metrics: exact or streaming, and what is approximate."""
    approximate = sorted(
        name
        for name, column in tally.columns.items()
        if any(isinstance(s, NumericalSample) and s.relative_error for s in (column.sample, column.profile.sample))
    )
    return {
        "reference": profile_mode(profile),
        "current": "streaming" if tally.streaming else "exact",
        "approximate_columns": approximate,
        "relative_error": RELATIVE_ERROR if approximate else None,
        "jobs": jobs,
        "exact_max_rows": config.monitor.exact_max_rows,
    }


def _named(name: str, by_case: dict[str, str], close: bool = False) -> str:
    """A configured column the data lacks, with the column it likely meant (``by_case``: the
    data's columns by their case-folded names): the same letters in another case, else (``close``)
    a close spelling.

    >>> _named("Churn", {"churn": "churn"}), _named("chruned", {"churned": "churned"}, True), _named("x", {"age": "a"})
    ("'Churn' (did you mean 'churn'?)", "'chruned' (did you mean 'churned'?)", "'x'")
    """
    import difflib

    meant = by_case.get(name.casefold())
    if meant is None and close:
        found = difflib.get_close_matches(name.casefold(), list(by_case), n=1, cutoff=0.8)
        meant = by_case[found[0]] if found else None
    return f"{name!r} (did you mean {meant!r}?)" if meant is not None else repr(name)
