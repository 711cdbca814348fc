"""Reading and writing tables (CSV or Parquet, chosen by file extension), atomically.

Every writer goes through a temporary file in the destination folder and an atomic rename,
so a run killed half-way never leaves a half-written file behind, and a reader never sees one.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from churnops.errors import InputDataError

CSV_SUFFIXES = {".csv", ".txt"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
NULL_VALUES = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]


def table_format(path: Path) -> str:
    """``"csv"`` or ``"parquet"`` from the file extension.

    >>> table_format(Path("batch.parquet"))
    'parquet'
    """
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise InputDataError(f"{path}: unsupported file type '{suffix}' (use .csv or .parquet)")


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def check_readable(path: Path) -> None:
    if not path.exists():
        raise InputDataError(f"{path}: file not found")
    if path.is_dir():
        raise InputDataError(f"{path}: is a folder, not a file")
    if path.stat().st_size == 0:
        raise InputDataError(f"{path}: file is empty")


def _duplicate_header_names(path: Path) -> list[str]:
    with path.open("rb") as handle:
        header = handle.readline().decode("utf-8", errors="replace")
    names = next(csv.reader([header]), [])
    counts = Counter(name.strip() for name in names)
    return sorted(name for name, count in counts.items() if count > 1)


def _read_csv(path: Path, skip: int, n_rows: int | None, infer_all: bool) -> pl.DataFrame:
    return pl.read_csv(
        path,
        skip_rows_after_header=skip,
        n_rows=n_rows,
        infer_schema_length=None if infer_all else 10_000,
        null_values=NULL_VALUES,
        try_parse_dates=False,
        encoding="utf8",
    )


def read_table(path: Path, row_range: tuple[int, int] | None = None) -> pl.DataFrame:
    """Read a CSV or Parquet file into a polars DataFrame.

    Parameters
    ----------
    path
        The file; its extension chooses the format.
    row_range
        Rows ``[start, end)`` to keep (0-based, header excluded), or None for every row.

    Raises
    ------
    InputDataError
        One line naming the file and the problem: missing, empty, not UTF-8, header only,
        duplicate column names, or a row range beyond the end of the file.
    """
    check_readable(path)
    fmt = table_format(path)
    start, end = row_range if row_range is not None else (0, None)
    n_rows = None if end is None else end - start
    try:
        if fmt == "csv":
            duplicates = _duplicate_header_names(path)
            if duplicates:
                raise InputDataError(f"{path}: duplicate column names: {', '.join(duplicates)}")
            try:
                frame = _read_csv(path, start, n_rows, infer_all=False)
            except pl.exceptions.ComputeError as exc:
                if "utf-8" in str(exc).lower() or "utf8" in str(exc).lower():
                    raise
                # A type guess from the first rows was contradicted later: infer from all rows.
                frame = _read_csv(path, start, n_rows, infer_all=True)
        else:
            lazy = pl.scan_parquet(path)
            if row_range is not None:
                lazy = lazy.slice(start, n_rows)
            frame = lazy.collect()
    except InputDataError:
        raise
    except pl.exceptions.DuplicateError as exc:
        raise InputDataError(f"{path}: duplicate column names ({_first_line(exc)})") from None
    except (pl.exceptions.PolarsError, OSError) as exc:
        text = str(exc).lower()
        if "utf-8" in text or "utf8" in text:
            raise InputDataError(f"{path}: not valid UTF-8 text (save the file as UTF-8)") from None
        raise InputDataError(f"{path}: cannot read {fmt.upper()}: {_first_line(exc)}") from None
    if frame.width == 0:
        raise InputDataError(f"{path}: no columns found")
    if row_range is not None and frame.height < n_rows:  # type: ignore[operator]
        total = start + frame.height
        raise InputDataError(f"{path}: rows [{start}, {end}) requested but the file has only {total} data rows")
    if frame.height == 0:
        raise InputDataError(f"{path}: has a header but no data rows")
    return frame


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    On any error the temporary file is removed and ``path`` keeps its previous content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes owner-only files; give the result the mode a plain open() would.
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_frame(frame: pl.DataFrame, path: Path, fmt: str) -> None:
    """Write a DataFrame in ``fmt`` (``csv`` or ``parquet``) - not atomic; see :func:`write_table`."""
    if fmt == "csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path, statistics=True)


def write_table(frame: pl.DataFrame, path: Path) -> None:
    """Write a DataFrame as CSV or Parquet (by extension), atomically."""
    fmt = table_format(path)
    with atomic_path(path) as tmp:
        write_frame(frame, tmp, fmt)
