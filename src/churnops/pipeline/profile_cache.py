"""On-disk cache of reference profiles, keyed by the reference's sha256 and the settings.

A profile file is a NumPy ``.npz`` archive holding plain arrays and a JSON manifest. It is
untrusted input when read back: it is opened with ``allow_pickle=False`` (no code can run), its
members must be stored uncompressed (no decompression bomb), and manifest and arrays are
validated against what a profile is (:func:`payload_problem`) before they are used. Anything else
is ignored with a warning, and the profile is rebuilt from the reference.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from churnops.data.files import atomic_write_text
from churnops.data.io import READING_RULES, atomic_path
from churnops.monitor.profile import PROFILE_FORMAT, ReferenceProfile, checked_codes
from churnops.monitor.settings import MonitorSettings

logger = logging.getLogger(__name__)
MANIFEST_KEY = "__manifest__"


def profile_key(
    reference_sha256: str,
    row_range: tuple[int, int] | None,
    settings: MonitorSettings,
    dialect: tuple[str, ...] = (",", ".", "utf-8"),
) -> str:
    """Cache key: what the profile depends on - the reference bytes and how they are read, the row
    window and the column roles."""
    material = json.dumps(
        {
            "format": PROFILE_FORMAT,
            "reading": READING_RULES,  # what the same bytes read as: a profile built by older rules is not used
            "sha256": reference_sha256,
            "rows": list(row_range) if row_range else None,
            "declared": sorted(settings.declared_types.items()),
            "detect_ids": settings.detect_ids,
            "dialect": list(dialect),
            "row_order": settings.row_order_key(),  # which columns keep their rows' order (TVD)
            **({"date_formats": sorted(settings.date_formats.items())} if settings.date_formats else {}),
            **({"inferred": sorted(settings.inferred)} if settings.inferred else {}),  # reported as such
            **({"segments": list(settings.segments), "segment_keys": 2} if settings.segments else {}),
            **({"joint_rows": settings.multivariate_rows, "joint_sample": 2} if settings.multivariate else {}),
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def save_profile(profile: ReferenceProfile, path: Path, meta: dict[str, Any] | None = None) -> None:
    """Write a profile atomically."""
    manifest, arrays = profile.to_payload()
    manifest["meta"] = meta or {}
    encoded = np.frombuffer(json.dumps(manifest).encode("utf-8"), dtype=np.uint8)
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        np.savez(handle, **{MANIFEST_KEY: encoded}, **arrays)


ROLES = {"feature", "target", "prediction", "id", "ignored"}
COLUMN_TYPES = {"numerical", "categorical", "datetime", "text", "unknown"}
LABEL_TYPES = (str, int, float, bool)


class UnusableCache(ValueError):
    """A cache file that is not a profile churnops wrote."""


def _counts(info: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        value = info.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise UnusableCache(f"{key} is not a count")


NUMERIC_TYPES = {"numerical", "datetime"}
"""Column types sampled as numbers (the others as categories)."""
LARGEST = 1e300
"""Numbers beyond this in a profile are refused: differences of them would overflow."""
MAX_LABEL = 1 << 20
"""The longest category label a profile may hold (characters)."""


def _numeric_array(array: Any, what: str, integer: bool = False) -> np.ndarray:
    if not isinstance(array, np.ndarray) or array.ndim != 1:
        raise UnusableCache(f"{what} is not a 1-D array")
    if integer:
        if array.dtype != np.int64 or (array.size and array.min() < 1):
            raise UnusableCache(f"{what} are not positive counts")
    elif array.dtype != np.float64 or not np.isfinite(array).all() or (array.size and np.abs(array).max() > LARGEST):
        raise UnusableCache(f"{what} are not finite numbers")
    return array


def payload_problem(manifest: Any, arrays: dict[str, Any]) -> str | None:
    """Why ``manifest`` and ``arrays`` are not a profile this churnops wrote, or None."""
    try:
        _check_payload(manifest, arrays)
    except UnusableCache as exc:
        return str(exc)
    return None


def _check_payload(manifest: Any, arrays: dict[str, Any], nested: bool = False) -> None:
    if not isinstance(manifest, dict) or not isinstance(manifest.get("columns"), list):
        raise UnusableCache("the manifest is not a profile's")
    segments = manifest.get("segments")
    if segments is not None:
        if nested or not isinstance(segments, list) or len(segments) > MAX_CACHED_SEGMENTS:
            raise UnusableCache("the segments are malformed")
        keys = set()
        for number, entry in enumerate(segments):
            if not (
                isinstance(entry, dict)
                and isinstance(entry.get("column"), str)
                and isinstance(entry.get("value"), str)
                and (entry["column"], entry["value"]) not in keys
            ):
                raise UnusableCache(f"segment entry {number} is malformed")
            keys.add((entry["column"], entry["value"]))
            prefix = f"s{number}."
            _check_payload(
                entry.get("manifest"),
                {name[len(prefix) :]: array for name, array in arrays.items() if name.startswith(prefix)},
                nested=True,
            )
        arrays = {name: array for name, array in arrays.items() if not _segment_array(name, len(segments))}
    if manifest.get("format") != PROFILE_FORMAT:
        raise UnusableCache(f"format {manifest.get('format')!r} is not {PROFILE_FORMAT}")
    _counts(manifest, ("rows",))
    expected: set[str] = _check_joint(manifest.get("joint"), arrays)
    names: set[str] = set()
    for index, entry in enumerate(manifest["columns"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or entry["name"] in names:
            raise UnusableCache(f"column entry {index} is not a column")
        names.add(entry["name"])
        if entry.get("role") not in ROLES or entry.get("column_type") not in COLUMN_TYPES:
            raise UnusableCache(f"column {entry['name']!r} has an unknown role or type")
        if not isinstance(entry.get("declared"), bool) or not isinstance(entry.get("dtype"), str):
            raise UnusableCache(f"column {entry['name']!r} is malformed")
        if entry.get("skip_reason") is not None and not isinstance(entry["skip_reason"], str):
            raise UnusableCache(f"column {entry['name']!r} is malformed")
        info = entry.get("sample")
        if info is None:
            continue
        if not isinstance(info, dict):
            raise UnusableCache(f"column {entry['name']!r} has a malformed sample")
        numeric_type = entry["column_type"] in NUMERIC_TYPES
        if (info.get("kind") == "numerical") != numeric_type:
            raise UnusableCache(f"column {entry['name']!r}: its sample's kind does not fit its type")
        if info.get("kind") == "numerical":
            _counts(info, ("rows", "missing", "infinite", "unparsable"))
            values = _numeric_array(arrays.get(f"values_{index}"), f"values of {entry['name']!r}")
            expected.add(f"values_{index}")
            if values.size > 1 and bool((np.diff(values) < 0).any()):
                raise UnusableCache(f"values of {entry['name']!r} are not sorted")
            count = values.size
            if f"weights_{index}" in arrays:
                weights = _numeric_array(arrays[f"weights_{index}"], f"weights of {entry['name']!r}", integer=True)
                if weights.size != values.size:
                    raise UnusableCache(f"weights of {entry['name']!r} do not match its values")
                expected.add(f"weights_{index}")
                count = int(weights.sum())
            if (
                info["rows"] != manifest["rows"]
                or count + info["missing"] + info["infinite"] + info["unparsable"] != info["rows"]
            ):
                raise UnusableCache(f"the counts of {entry['name']!r} do not add up to the profile's rows")
            bounds = info.get("bounds")
            if bounds is not None and not (
                isinstance(bounds, list)
                and len(bounds) == 2
                and all(
                    isinstance(b, int | float) and not isinstance(b, bool) and math.isfinite(b) and abs(b) <= LARGEST
                    for b in bounds
                )
                and bounds[0] <= bounds[1]
                and (not values.size or bounds[0] <= values[0] <= values[-1] <= bounds[1])
            ):
                raise UnusableCache(f"bounds of {entry['name']!r} are malformed")
            error = info.get("relative_error", 0.0)
            if not isinstance(error, int | float) or isinstance(error, bool) or not 0 <= error < 0.5:
                raise UnusableCache(f"relative error of {entry['name']!r} is malformed")
        elif info.get("kind") == "categorical":
            _counts(info, ("rows", "missing", "unparsable"))
            labels = info.get("labels")
            if not isinstance(labels, list) or not all(isinstance(x, LABEL_TYPES) for x in labels):
                raise UnusableCache(f"labels of {entry['name']!r} are malformed")
            if len({type(x) for x in labels}) > 1 or any(
                (isinstance(x, float) and not math.isfinite(x)) or (isinstance(x, str) and len(x) > MAX_LABEL)
                for x in labels
            ):
                raise UnusableCache(f"labels of {entry['name']!r} mix types, or are not finite or too long")
            if len(set(map(repr, labels))) != len(labels):
                raise UnusableCache(f"labels of {entry['name']!r} repeat")
            counts = arrays.get(f"counts_{index}")
            if not isinstance(counts, np.ndarray) or counts.ndim != 1 or counts.dtype.kind not in "iu":
                raise UnusableCache(f"counts of {entry['name']!r} are malformed")
            if counts.size != len(labels) or (counts.size and counts.min() < 0):
                raise UnusableCache(f"counts of {entry['name']!r} do not match its labels")
            total = int(counts.sum()) + info["missing"] + info["unparsable"]
            if info["rows"] != manifest["rows"] or total != info["rows"]:
                raise UnusableCache(f"the counts of {entry['name']!r} do not add up to the profile's rows")
            expected.add(f"counts_{index}")
            if f"codes_{index}" in arrays:  # row order of a TVD column: one code per counted row
                try:
                    checked_codes(arrays[f"codes_{index}"], counts)
                except (ValueError, AttributeError) as exc:
                    raise UnusableCache(f"row codes of {entry['name']!r}: {exc}") from None
                expected.add(f"codes_{index}")
        else:
            raise UnusableCache(f"column {entry['name']!r} has an unknown sample kind")
    unexpected = set(arrays) - expected
    if unexpected:
        raise UnusableCache(f"unexpected arrays {sorted(unexpected)[:3]}")


MAX_CACHED_SEGMENTS = 10_000


def _check_joint(joint: Any, arrays: dict[str, Any]) -> set[str]:
    """The names of a valid sample of rows' arrays (none when there is no sample)."""
    if joint is None:
        return set()
    if not isinstance(joint, dict):
        raise UnusableCache("the row sample is malformed")
    _counts(joint, ("rows",))
    rows = joint["rows"]
    numbers, categories = joint.get("numbers"), joint.get("categories")
    if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
        raise UnusableCache("the row sample's numbers are malformed")
    if not isinstance(categories, list) or not all(
        isinstance(c, dict)
        and isinstance(c.get("name"), str)
        and isinstance(c.get("labels"), list)
        and all(isinstance(label, str) for label in c["labels"])
        and len(set(c["labels"])) == len(c["labels"])
        for c in categories
    ):
        raise UnusableCache("the row sample's categories are malformed")
    names = numbers + [c["name"] for c in categories]
    if len(set(names)) != len(names):
        raise UnusableCache("the row sample repeats a column")
    expected = set()
    for i in range(len(numbers)):
        values = arrays.get(f"joint_numbers_{i}")
        if not isinstance(values, np.ndarray) or values.ndim != 1 or values.dtype.kind != "f" or values.size != rows:
            raise UnusableCache("the row sample's numbers are malformed")
        if bool(np.isinf(values).any()):
            raise UnusableCache("the row sample's numbers are not finite")
        expected.add(f"joint_numbers_{i}")
    for i, entry in enumerate(categories):
        codes = arrays.get(f"joint_codes_{i}")
        if not isinstance(codes, np.ndarray) or codes.ndim != 1 or codes.dtype.kind != "i" or codes.size != rows:
            raise UnusableCache("the row sample's codes are malformed")
        if codes.size and (int(codes.min()) < -1 or int(codes.max()) >= len(entry["labels"])):
            raise UnusableCache("the row sample's codes are out of range")
        expected.add(f"joint_codes_{i}")
    return expected


def _segment_array(name: str, count: int) -> bool:
    """Whether ``name`` is an array of one of the ``count`` segments (``s<number>.<array>``)."""
    head, dot, _ = name.partition(".")
    return (
        bool(dot) and head[:1] == "s" and head[1:].isdigit() and int(head[1:]) < count and head == f"s{int(head[1:])}"
    )


def _stored_only(path: Path | io.BytesIO) -> None:
    """Refuse archives whose members are compressed (reading them could inflate without bound),
    and arrays whose header claims more (or other) data than the member holds - NumPy would
    allocate what the header says before reading a byte - or objects."""
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            if member.compress_type != zipfile.ZIP_STORED:
                raise UnusableCache(f"member {member.filename!r} is compressed")
            with archive.open(member) as stream:
                version = np.lib.format.read_magic(stream)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
                else:
                    raise UnusableCache(f"member {member.filename!r} has an unknown array format")
                header = stream.tell()
            if dtype.hasobject:
                raise UnusableCache(f"member {member.filename!r} holds objects")
            size = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if size != member.file_size - header:
                raise UnusableCache(f"member {member.filename!r} does not hold what its header says")


def _segments_problem(profile: ReferenceProfile) -> str | None:
    """Why the segments' profiles cannot belong to this profile, if they cannot: a segment's
    columns and their types are the whole reference's, and its rows are some of its rows."""
    rows: dict[str, int] = {}
    for (column, value), segment in profile.segments.items():
        rows[column] = rows.get(column, 0) + segment.rows
        for name, part in segment.columns.items():
            whole = profile.columns.get(name)
            tested = whole is not None and whole.skip_reason is None and whole.plan.role == "feature"
            typed_apart = tested and whole is not None and part.plan.column_type != whole.plan.column_type
            if whole is None or (part.plan.role == "feature") != tested or typed_apart:
                return f"segment {column} = {value[:40]!r} does not match the profile (column {name[:40]!r})"
    over = [column for column, count in rows.items() if count > profile.rows]
    return f"the segments of {over[0][:40]!r} hold more rows than the reference" if over else None


def read_profile(path: Path, data: bytes | None = None) -> tuple[ReferenceProfile, dict[str, Any]]:
    """Read a profile this code wrote (``path``, or its bytes ``data`` already read), checked
    whole; :class:`UnusableCache` says why it cannot be used (not a profile, damaged, or made of
    arrays no profile has)."""
    try:
        _stored_only(path if data is None else io.BytesIO(data))
        with np.load(path if data is None else io.BytesIO(data), allow_pickle=False) as archive:
            manifest = json.loads(bytes(archive[MANIFEST_KEY]).decode("utf-8"))
            arrays = {name: archive[name] for name in archive.files if name != MANIFEST_KEY}
        problem = payload_problem(manifest, arrays)
        if problem is not None:
            raise UnusableCache(problem)
        meta = manifest.get("meta", {})
        profile = ReferenceProfile.from_payload(manifest, arrays)
        problem = _segments_problem(profile)
        if problem is not None:
            raise UnusableCache(problem)
        return profile, meta if isinstance(meta, dict) else {}
    except UnusableCache:
        raise
    except (ValueError, KeyError, TypeError, IndexError, RecursionError, MemoryError, zipfile.BadZipFile) as exc:
        raise UnusableCache(str(exc)[:200] or type(exc).__name__) from None


def write_signed(path: Path, key: bytes, write: Callable[[], None]) -> None:
    """Write the cache file ``path`` (``write()``), then its signature beside it
    (:mod:`churnops.signing`); the old signature is removed first, so that it never signs the new
    file - a write that fails leaves a file without one, which is not used."""
    from churnops.data.files import read_own_file
    from churnops.signing import signature, signature_file

    signature_file(path).unlink(missing_ok=True)
    write()
    data = read_own_file(path)
    if data is None:
        raise OSError(f"{path} is not the regular file just written")
    atomic_write_text(signature_file(path), signature(data, key, path.name) + "\n")


def signed_bytes(path: Path, key: bytes, what: str, limit: int | None = None) -> bytes | None:
    """The bytes of the cache file ``path`` when its signature beside it signs them under ``key``;
    None otherwise (missing: said in the debug log; not matching: a warning - the file was
    rewritten, or signed with another key)."""
    from churnops.data.files import read_own_file
    from churnops.signing import KEY_ENV, signature_file, verify

    data = read_own_file(path, limit)
    if data is None:
        if path.is_symlink() or path.exists():
            logger.warning("ignoring unusable %s %s: not a regular file churnops wrote (a link, a folder, too large)",
                           what, path)  # fmt: skip
        return None
    sig = read_own_file(signature_file(path), 1024)
    if sig is None:
        logger.debug("%s %s has no signature: not used", what, path)
        return None
    if not verify(data, sig, key, path.name):
        logger.warning(
            "ignoring %s %s: its signature does not match (the file was changed since churnops wrote it, or it "
            "was written with another key: set %s to one value on every machine that shares it)",
            what, path, KEY_ENV,
        )  # fmt: skip
        return None
    return data


def load_signed_profile(path: Path, key: bytes) -> tuple[ReferenceProfile, dict[str, Any]] | None:
    """:func:`load_profile` of a cache file whose signature matches; None otherwise."""
    data = signed_bytes(path, key, "profile cache")
    if data is None:
        return None
    try:
        return read_profile(path, data)
    except UnusableCache as exc:
        logger.warning("ignoring unusable profile cache %s: %s", path, str(exc)[:200])
        return None


def load_profile(path: Path) -> tuple[ReferenceProfile, dict[str, Any]] | None:
    """Read a profile; None (and a log line) when the file is missing or unusable."""
    if not path.is_file():
        return None
    try:
        return read_profile(path)
    except (OSError, UnusableCache) as exc:
        logger.warning("ignoring unusable profile cache %s: %s", path, str(exc)[:200])
        return None
