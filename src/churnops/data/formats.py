"""Which files are tables, by their extension: what the reader takes, what it names with advice,
and what else is data - without importing the reader (the configuration's loader reads these)."""

from __future__ import annotations

CSV_SUFFIXES = {".csv", ".txt"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
SHEET_ADVICE = ": save the sheet from your spreadsheet as CSV UTF-8 or Parquet, and give that file"
PACKED_ADVICE = ": unpack it first, and give the CSV or Parquet file inside"
SUFFIX_ADVICE = {
    **dict.fromkeys((".xlsx", ".xlsm", ".xls", ".ods"), SHEET_ADVICE),
    **dict.fromkeys((".gz", ".zip", ".bz2", ".xz", ".zst"), PACKED_ADVICE),
}
"""What to do with a file of a kind churnops does not read, by its extension."""
DATA_SUFFIXES = frozenset(
    {*(CSV_SUFFIXES - {".txt"}), *PARQUET_SUFFIXES, *SUFFIX_ADVICE}
    | {".tsv", ".parq", ".json", ".jsonl", ".ndjson", ".feather", ".arrow", ".ipc", ".avro", ".orc"}
)
"""Endings of data files, taken for data wherever they are given (``-c batch.csv`` is named as a
data file, not parsed as TOML); ``.txt`` may be either."""
