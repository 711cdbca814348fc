"""The reference's unlisted columns classified for a monitoring run (``columns.infer``), and the
cache of that classification.

Reading a sample of the reference and classifying its columns costs about 40 ms of CPU - a tenth
of a nightly ``churnops monitor`` whose reference profile is cached. What it decides depends only
on the reference's bytes, how they are read and the ``[columns]`` settings, so it is kept beside
the profiles (``paths.profile_cache``, ``<key>.columns.json``) under a key made of those. The file
is untrusted input when read back: it must be small JSON of the expected shape naming columns of
the reference that the configuration leaves unlisted, else it is ignored (with a warning) and the
classification made again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from churnops._version import __version__
from churnops.config import Config
from churnops.data.io import READING_RULES, CsvDialect, TableReader, sha256_file, table_format
from churnops.errors import NOTICE, InputDataError
from churnops.escape import one_line_short

logger = logging.getLogger(__name__)

INFERENCE_FORMAT = 8
"""Version of the cached classification's layout (and of how it is decided, with churnops's)."""
MAX_CACHE_BYTES = 1 << 20


@dataclass(frozen=True)
class Inference:
    """What the sample of the reference decided."""

    dates: list[str]
    """Unlisted columns monitored as dates (added to ``columns.datetime``)."""
    ids: list[str]
    """Unlisted columns taken for identifiers (added to ``columns.id``)."""
    formats: dict[str, str]
    """How the text of each undecided date column is written (added to ``columns.date_formats``)."""
    commas: list[tuple[str, str]]
    """Text columns of numbers written with a decimal comma, with an example each."""
    strays: list[tuple[str, int, int, str]] = field(default_factory=list)
    """Text columns of numbers but for a few cells: (column, such cells, cells, an example)."""
    points: list[tuple[str, str]] = field(default_factory=list)
    """Number columns whose points look like thousands separators (``3.283``), with an example each."""
    comma_read: bool = False
    """Whether the reference is read with a decimal comma already (``commas`` are then grouped
    numbers left as text because of other cells)."""
    scales: list[tuple[str, str, str]] = field(default_factory=list)
    """With a decimal comma, number columns written with decimal points and read at two scales:
    (column, a cell read as thousands such as ``2.500``, a cell read as a decimal such as ``0.625``)."""
    codes: list[tuple[str, str]] = field(default_factory=list)
    """Unlisted whole-number columns of a CSV written as codes with leading zeros (``01040``),
    with an example each (added to ``columns.categorical``)."""
    free_codes: list[str] = field(default_factory=list)
    """Those of :attr:`codes` with more than half of their values distinct: free text, as in a
    Parquet file (added to ``columns.text``, not tested)."""
    near: list[tuple[str, int, int, str]] = field(default_factory=list)
    """Text columns of whole numbers but for a few cells with digits, left categories (said):
    (column, such cells, cells, an example)."""
    measures: list[tuple[str, int, int, str]] = field(default_factory=list)
    """Text columns of numbers with decimals but for a few cells with digits (``12,5`` among
    ``65.23``): a measure with a typo, tested as numbers (added to ``columns.numerical``, said)."""
    held: list[tuple[str, int, int, str]] = field(default_factory=list)
    """A Parquet file's text columns of measures (all numbers, or but for a few cells): left text
    as their writer typed them, and said with the setting that tests them as numbers."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": INFERENCE_FORMAT,
            "dates": self.dates,
            "ids": self.ids,
            "formats": self.formats,
            "commas": [list(pair) for pair in self.commas],
            "strays": [list(item) for item in self.strays],
            "points": [list(pair) for pair in self.points],
            "scales": [list(item) for item in self.scales],
            "codes": [list(pair) for pair in self.codes],
            "free_codes": self.free_codes,
            "near": [list(item) for item in self.near],
            "measures": [list(item) for item in self.measures],
            "held": [list(item) for item in self.held],
        }


def inferred_configuration(config: Config, reference: Path, use_cache: bool = False) -> Config:
    """The configuration with the reference's unlisted date and identifier columns classified
    (``columns.infer``), said in one notice; unchanged when the reference cannot be read yet (the
    run then stops on that with its own message). ``use_cache``: read and keep the classification
    in the profile cache."""
    from churnops.pipeline.reference import check_target_present
    from churnops.pipeline.starter import INFER_ROWS, sample_frame

    undecided = [c for c in config.columns.datetime if c not in config.columns.date_formats]
    if not config.columns.infer and not undecided:
        return config
    dialect = config.dialect_for("reference")
    cache_file: Path | None = None
    found: Inference | None = None
    header: list[str] = []
    sample = None
    try:
        if use_cache:
            cache_file = _cache_file(config, reference, dialect)
            found, header = _cached(cache_file, config, reference, dialect)
            if found is not None:  # how the reference is read is part of the cache's key
                found = replace(found, comma_read=dialect.decimal == ",")
        if found is None:
            header, sample = sample_frame(reference, dialect, INFER_ROWS)  # one read for every guess
    except (InputDataError, OSError):
        return config
    check_target_present(config, reference, header)  # a wrong target is the first thing to hear
    if found is None:
        if sample is None:
            return config
        found = _decided(config, reference, dialect, sample)
        if cache_file is not None:
            _save(found, cache_file)
    return _applied(config, found)


def _decided(config: Config, reference: Path, dialect: CsvDialect, sample: Any) -> Inference:
    """What the reference's first rows, ``sample``, decide under ``config`` (raises
    :class:`~churnops.errors.ConfigError` on dates that read both day first and month first)."""
    from churnops.pipeline.starter import (
        SAMPLE_ROWS,
        almost_number_columns,
        as_free_text,
        decided_date_formats,
        decimal_comma_columns,
        inferred_columns,
        listed_columns,
        numbers_as_text_columns,
        padded_code_columns,
        sample_frame,
        text_measure_columns,
        thousands_point_columns,
        two_scale_columns,
        with_columns_added,
        written_cells,
    )

    wider = lambda names: sample_frame(reference, dialect, SAMPLE_ROWS, names)[1]  # noqa: E731
    dates, ids = inferred_columns(config, sample, wider)
    formats = decided_date_formats(with_columns_added(config, dates, ids), sample)
    infer = config.columns.infer and table_format(reference) != "parquet"
    commas = decimal_comma_columns(sample, dialect) if infer else []
    strays, near, measures, held = [], [], [], []
    listed = listed_columns(config) | {*dates, *ids}
    if infer:
        said = listed | {name for name, _ in commas}  # (decimal commas have their own notice)
        strays = numbers_as_text_columns(sample, said)
        if dialect.decimal == ".":  # (a decimal comma's own notices say its columns)
            near, measures = almost_number_columns(sample, said)
    elif config.columns.infer:  # a Parquet file's text is text, but for measures held as text
        held = text_measure_columns(sample, listed)
    cells = lambda names, rows=None: written_cells(reference, dialect, names, rows or sample.height)  # noqa: E731
    codes = padded_code_columns(sample, cells, listed) if infer else []
    points, scales = [], []
    if infer and dialect.decimal == ".":
        points = thousands_point_columns(sample, cells)
    elif infer:
        scales = two_scale_columns(sample, cells)
    free = [name for name, _ in codes if as_free_text(sample, name)]
    return Inference(
        dates, ids, formats, commas, strays, points, dialect.decimal == ",", scales, codes, free, near, measures, held
    )


AS_TEXT = " (tested as categories, or not at all when most of their values differ)"
"""What becomes of numbers read as text (they were said to be untested, and a column of few
values was tested as categories all the same)."""


def _applied(config: Config, found: Inference) -> Config:
    """``config`` with what ``found`` decided, and the notices that say so."""
    from churnops.pipeline.starter import NOT_NUMBERS_BESIDE, as_written, with_columns_added, with_formats_added

    free = set(found.free_codes) if config.columns.infer else set()
    codes = [name for name, _ in found.codes if name not in free] if config.columns.infer else []
    measures = [name for name, *_ in found.measures] if config.columns.infer else []
    # numbers written as text, said to be read as numbers: so for every chunk, a later typo
    # ('4+' at row 25,000) counted as a cell that is not a number, not making them text
    strays = [name for name, *_ in found.strays] if config.columns.infer else []
    # a Parquet file's amounts held as text (pandas saves a column with one typo so): as from CSV
    held = [name for name, *_ in found.held] if config.columns.infer else []
    config = with_columns_added(config, found.dates, found.ids, codes, sorted(free), [*measures, *strays, *held])
    config = with_formats_added(config, found.formats)
    if codes:
        named = [(name, example) for name, example in found.codes if name not in free]
        logger.log(
            NOTICE,
            "codes written with leading zeros are tested as categories: %s - as the same column is in a Parquet "
            "file (their labels are shown without the zeros); list them in columns.numerical to test them as numbers",
            ", ".join(f"{name} (e.g. {example!r})" for name, example in named[:5])
            + (f" and {len(named) - 5} more" if len(named) > 5 else ""),
        )
    if free:
        logger.log(
            NOTICE,
            "codes written with leading zeros, more than half of them distinct, are free text, not tested - as the "
            "same column is in a Parquet file: %s; list them in columns.categorical to test them",
            ", ".join(f"{name} (e.g. {example!r})" for name, example in found.codes if name in free),
        )
    formats = found.formats
    declared = [as_written(n, formats) for n, way in formats.items() if way != "iso" and n not in found.dates]
    if declared:
        logger.log(
            NOTICE,
            "dates read as the reference writes them: %s (columns.date_formats decides)",
            ", ".join(declared),
        )
    if not config.columns.infer:
        return config
    shown = ", ".join(f"{name} (e.g. {example!r})" for name, example in found.commas[:5])
    if found.commas and found.comma_read:
        logger.log(NOTICE, "numbers read as text, not as numbers%s: %s - %s", AS_TEXT, shown, NOT_NUMBERS_BESIDE)
    elif found.commas:
        logger.log(
            NOTICE,
            "numbers written with a decimal comma are read as text, not as numbers%s: %s; set data.decimal = ',' "
            "(--set \"data.decimal=','\"; data.reference.decimal / data.current.decimal when only one file has them)"
            " - numbers grouped by dots or spaces (1.234,56 or 1 234,56) are then read too",
            AS_TEXT,
            shown,
        )
    if found.points:
        shown = ", ".join(f"{name} (e.g. {example})" for name, example in found.points[:5]) + (
            f" and {len(found.points) - 5} more: {', '.join(name for name, _ in found.points[5:])}"
            if len(found.points) > 5
            else ""
        )
        logger.log(
            NOTICE,
            "numbers whose point may group thousands: %s - every number with a point has three digits after it "
            "and none starts with 0.; if 3.283 means 3283, export them without grouping (they are read as "
            "decimals: 3.283)",
            shown,
        )
    if found.scales:
        shown = ", ".join(
            f"{name} ({one_line_short(grouped, 20)!r} read as thousands, {one_line_short(decimal, 20)!r} as a decimal)"
            for name, grouped, decimal in found.scales[:5]
        ) + (f" and {len(found.scales) - 5} more" if len(found.scales) > 5 else "")
        logger.log(
            NOTICE,
            "numbers written with a decimal point in a file read with a decimal comma, read at two scales: %s - "
            "a point between groups of three digits is read as grouping them; export these columns with a decimal "
            "comma, or the whole file with decimal points (data.decimal = '.')",
            shown,
        )
    if found.strays:
        logger.log(
            NOTICE,
            "numbers written as text are read as numbers: %s; to test them as categories instead: %s",
            cells_shown(found.strays),
            _declared_advice(config, "categorical", [name for name, *_ in found.strays]),
        )
    if found.near:
        shown = cells_shown(found.near)
        logger.log(
            NOTICE,
            "numbers but for a few cells are tested as categories: %s; to test them as numbers (those cells then "
            "count as not numbers): %s",
            shown,
            _declared_advice(config, "numerical", [name for name, *_ in found.near]),
        )
    if found.measures:
        logger.log(
            NOTICE,
            "numbers but for a few cells are tested as numbers (those cells count as not numbers): %s; to test them "
            "as categories instead: %s",
            cells_shown(found.measures),
            _declared_advice(config, "categorical", measures),
        )
    if found.held:
        logger.log(
            NOTICE,
            "numbers a Parquet file holds as text are tested as numbers, as from a CSV file (cells that are not "
            "numbers count as such): %s; to test them as categories instead: %s",
            cells_shown(found.held),
            _declared_advice(config, "categorical", [name for name, *_ in found.held]),
        )
    parts = []
    if found.dates:
        parts.append(f"monitored as dates: {', '.join(as_written(name, formats) for name in found.dates)}")
    if found.ids:
        parts.append(f"identifiers, not tested for drift: {', '.join(found.ids)}")
    if parts:
        logger.log(
            NOTICE,
            "from the data: %s (list them in [columns] to decide yourself, or set columns.infer = false)",
            "; ".join(parts),
        )
    return config


def cells_shown(found: list[tuple[str, int, int, str]]) -> str:
    """Columns of numbers (but for a few cells), for a notice: each with its cells that are not
    numbers and an example, or how its numbers are written (five columns at most, then how many
    more)."""
    return ", ".join(
        f"{name} ({others:,} of {cells:,} cells in the first rows {'is' if others == 1 else 'are'} not "
        f"{'a number' if others == 1 else 'numbers'}, e.g. {example!r})"
        if others
        else f"{name} (written like {example!r})"
        for name, others, cells, example in found[:5]
    ) + (f" and {len(found) - 5} more" if len(found) > 5 else "")


def _declared_advice(config: Config, kind: str, names: list[str]) -> str:
    """How to declare ``names`` of ``kind`` (``columns.<kind>``) beside the columns already
    declared: a ``--set`` to paste when every name is plain, else the churnops.toml line (TOML
    strings, escaped)."""
    declared = list(getattr(config.columns, kind))
    wanted = [*declared, *(n for n in names if n not in declared)]
    if all(re.fullmatch(r"[A-Za-z0-9_ .-]+", name) for name in wanted):
        listed = ", ".join(f"'{name}'" for name in wanted)
        return f'--set "columns.{kind}=[{listed}]"'
    return (
        f"in churnops.toml, [columns] {kind} = [" + ", ".join(json.dumps(n, ensure_ascii=False) for n in wanted) + "]"
    )


def _cache_file(config: Config, reference: Path, dialect: CsvDialect) -> Path:
    """Where the classification of ``reference`` under ``config`` is kept: a key of everything it
    depends on - the reference's bytes, how they are read (the dialect and the reading rules), the
    ``[columns]`` settings, the time column (never classified) and the version of churnops that
    decides."""
    from churnops.pipeline.starter import INFER_ROWS

    material = json.dumps(
        {
            "format": INFERENCE_FORMAT,
            "churnops": __version__,
            "reading": READING_RULES,  # the same bytes read as something else: classified again
            "rows": INFER_ROWS,
            "sha256": sha256_file(reference),
            "table": table_format(reference),
            "dialect": [dialect.separator, dialect.decimal, dialect.encoding],
            "columns": config.columns.model_dump(mode="json"),
            "time_column": config.drift.time_column,
        },
        sort_keys=True,
    )
    key = hashlib.sha256(material.encode()).hexdigest()[:32]
    return config.resolve(config.paths.profile_cache) / f"{key}.columns.json"


def _cached(path: Path, config: Config, reference: Path, dialect: CsvDialect) -> tuple[Inference | None, list[str]]:
    """The classification kept at ``path`` and the reference's header; None when there is none
    or it is not one this churnops could have written for this reference and configuration."""
    from churnops.pipeline.profile_cache import signed_bytes
    from churnops.signing import cache_key

    if not os.path.lexists(path):
        return None, []
    header = TableReader(reference, dialect=dialect).header
    key = cache_key()
    data = signed_bytes(path, key, "column cache", MAX_CACHE_BYTES) if key is not None else None
    if data is None:  # (said there) not written by churnops with this key: classified again
        return None, header
    try:
        found = checked(json.loads(data.decode("utf-8")), config, header)
    except (OSError, ValueError, RecursionError) as exc:
        logger.warning("ignoring unusable column cache %s: %s", path, str(exc)[:200])
        return None, header
    return found, header


def checked(document: Any, config: Config, header: list[str]) -> Inference:
    """``document`` as an :class:`Inference` for a reference with columns ``header`` under
    ``config``; ValueError when it cannot be one.

    >>> from churnops.config import Config
    >>> config = Config()
    >>> doc = {"format": 8, "dates": [], "ids": ["key"], "formats": {}, "commas": [], "strays": [], "points": [],
    ...        "scales": [], "codes": [], "free_codes": [], "near": [], "measures": [], "held": []}
    >>> checked(doc, config, ["key", "age"]).ids
    ['key']
    >>> checked({**doc, "ids": ["CustomerId"]}, config, ["CustomerId"])
    Traceback (most recent call last):
    ...
    ValueError: a column that is not an unlisted column of the reference
    """
    from churnops.monitor.prepare import DATE_FAMILIES

    keys = {"format", "dates", "ids", "formats", "commas", "strays", "points", "scales", "codes", "free_codes"}
    keys |= {"near", "measures", "held"}
    if not isinstance(document, dict) or set(document) != keys:
        raise ValueError("not a column classification")
    if document["format"] != INFERENCE_FORMAT:
        raise ValueError(f"format {document['format']!r} is not {INFERENCE_FORMAT}")
    columns = config.columns
    listed = {columns.target, columns.prediction, *columns.id, *columns.ignored, *columns.datetime}
    listed |= {*columns.numerical, *columns.categorical, *columns.binary, *columns.text, config.drift.time_column}
    unlisted = set(header) - listed
    dates, ids, formats, commas = (document[key] for key in ("dates", "ids", "formats", "commas"))
    for names in (dates, ids):
        if not isinstance(names, list) or not all(isinstance(n, str) and n in unlisted for n in names):
            raise ValueError("a column that is not an unlisted column of the reference")
    if len(set(dates + ids)) != len(dates) + len(ids):
        raise ValueError("a column classified twice")
    undecided = {n for n in [*columns.datetime, *dates] if n not in columns.date_formats}
    if not isinstance(formats, dict) or not all(n in undecided and w in DATE_FAMILIES for n, w in formats.items()):
        raise ValueError("a date format that is not for an undecided date column")
    if not isinstance(commas, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and pair[0] in header and isinstance(pair[1], str) for pair in commas
    ):
        raise ValueError("a decimal comma column that is not a column of the reference")
    points = document["points"]
    if not isinstance(points, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and pair[0] in header and isinstance(pair[1], str)
        and len(pair[1]) <= 40
        for pair in points
    ):  # fmt: skip
        raise ValueError("a column of numbers with thousands points that is not a column of the reference")
    scales = document["scales"]
    if not isinstance(scales, list) or not all(
        isinstance(item, list) and len(item) == 3 and item[0] in header
        and all(isinstance(text, str) and len(text) <= 40 for text in item[1:])
        for item in scales
    ):  # fmt: skip
        raise ValueError("a column of numbers at two scales that is not a column of the reference")
    codes = document["codes"]
    if not isinstance(codes, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and pair[0] in unlisted and isinstance(pair[1], str)
        and len(pair[1]) <= 40 and pair[0] not in dates + ids
        for pair in codes
    ):  # fmt: skip
        raise ValueError("a column of codes that is not an unlisted column of the reference")
    free = document["free_codes"]
    if not isinstance(free, list) or not set(free) <= {pair[0] for pair in codes}:
        raise ValueError("a column of free-text codes that is not a column of codes")
    strays, near, measures, held = document["strays"], document["near"], document["measures"], document["held"]
    for items in (strays, near, measures, held):
        if not isinstance(items, list) or not all(
            isinstance(item, list)
            and len(item) == 4
            and item[0] in unlisted
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in item[1:3])
            and isinstance(item[3], str)
            and len(item[3]) <= 40
            for item in items
        ):
            raise ValueError("a column of numbers with stray text that is not an unlisted column of the reference")
    return Inference(
        list(dates),
        list(ids),
        dict(formats),
        [(str(n), str(e)) for n, e in commas],
        [(str(n), int(o), int(c), str(e)) for n, o, c, e in strays],
        [(str(n), str(e)) for n, e in points],
        scales=[(str(n), str(g), str(d)) for n, g, d in scales],
        codes=[(str(n), str(e)) for n, e in codes],
        free_codes=[str(n) for n in free],
        near=[(str(n), int(o), int(c), str(e)) for n, o, c, e in near],
        measures=[(str(n), int(o), int(c), str(e)) for n, o, c, e in measures],
        held=[(str(n), int(o), int(c), str(e)) for n, o, c, e in held],
    )


def _save(found: Inference, path: Path) -> None:
    from churnops.data.files import atomic_write_bytes
    from churnops.errors import OutputWriteError
    from churnops.pipeline.profile_cache import write_signed
    from churnops.signing import cache_key

    key = cache_key()
    if key is None:
        return  # (the profile cache says it is off)
    try:
        data = json.dumps(found.to_dict(), ensure_ascii=False).encode("utf-8")
        write_signed(path, key, lambda: atomic_write_bytes(path, data))
    except (OSError, OutputWriteError) as exc:
        logger.warning("could not write the column cache %s: %s", path, exc)


def batch_date_format(config: Config, batch: Path, column: str) -> str | None:
    """How the batch writes the dates of ``column``, decided from all its values (a batch sorted
    by date may begin with days that read both ways, 03/01 ... 03/12, and go on to 03/13): the
    family of :data:`~churnops.monitor.prepare.DATE_FAMILIES` that reads them, or None when they
    still read both ways, or the batch is not one file."""
    import polars as pl

    from churnops.monitor.prepare import date_family

    if not batch.is_file():
        return None
    try:
        reader = TableReader(batch, columns=[column], dialect=config.dialect_for("current"))
        values = [chunk.get_column(column).cast(pl.String).unique() for chunk in reader]  # each piece's own
    except (InputDataError, OSError, pl.exceptions.PolarsError):
        return None
    if not values:
        return None
    distinct = pl.concat(values).drop_nulls().str.strip_chars().unique()
    distinct = distinct.filter(distinct.str.to_date("%Y-%m-%d", strict=False).is_null() & (distinct != ""))
    family = date_family(distinct)
    return None if family.name is None or family.ambiguous else family.name
