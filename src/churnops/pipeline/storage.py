"""Object storage for a run: tables given as URLs, and the outputs published after it."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnops.config import Config
from churnops.data.urls import in_object_storage, is_url, local_path
from churnops.errors import ChurnopsError, InputDataError

if TYPE_CHECKING:
    from churnops.data.remote import StorageOptions

logger = logging.getLogger(__name__)


def storage_options(config: Config) -> StorageOptions:
    from churnops.data.remote import StorageOptions

    storage = config.storage
    return StorageOptions(storage.endpoint_url, storage.region, storage.retries, storage.timeout)


IN_PLACE_ENGINES = ("native",)
"""Engines that read a Parquet object in object storage in place (the others get a local copy)."""


@contextlib.contextmanager
def local_tables(
    config: Config, *given: str | Path | None, in_place: tuple[bool, ...] = ()
) -> Iterator[list[tuple[Any, str | None]]]:
    """Each table given on the command line as something to read and the name the outputs give
    it: a path as it is (no name), a ``file://`` URL as its path, an object-storage URL (one
    object, or a prefix of parts) as a private copy in the workspace named by its URL - removed
    when the block ends. Where ``in_place`` is true for a position, one Parquet object read by the
    local engine is not copied: it is read in place (:class:`~churnops.data.remote.RemoteFile`,
    byte ranges of the columns read)."""
    found: list[tuple[Any, str | None]] = []
    with contextlib.ExitStack() as stack:
        folder: Path | None = None
        for index, value in enumerate(given):
            if value is None or not is_url(value):
                found.append((Path(value) if value is not None else None, None))
                continue
            text = str(value)
            if not in_object_storage(text):
                found.append((Path(local_path(text)), None))
                continue
            from churnops.data.remote import shown, stage, staging_folder  # not loaded for local files

            wanted = index < len(in_place) and in_place[index] and config.monitor.engine in IN_PLACE_ENGINES
            remote = _in_place(config, text) if wanted else None
            if remote is not None:
                stack.callback(_fetched, remote)
                found.append((remote, shown(text)))
                continue
            if folder is None:
                folder = stack.enter_context(staging_folder(config.root))
            part = folder / str(len(found))
            part.mkdir(mode=0o700)
            staged = stage(text, part, storage_options(config))
            logger.info(
                "%s: %s part(s), %s bytes fetched in %.1f s",
                shown(text),
                staged.parts,
                f"{staged.bytes_fetched:,}",
                staged.seconds,
            )
            found.append((staged.path, shown(text)))
        try:
            yield found
        except ChurnopsError as exc:  # a copy's problem is the object's: named by its URL, not the copy
            copies = [(str(path), label) for path, label in found if label and isinstance(path, Path)]
            message = str(exc)
            for path, label in copies:
                message = message.replace(path, label)
            if message != str(exc):
                exc.args = (message,)
            raise


@dataclass(frozen=True)
class Fetched:
    """A table fetched from object storage into its local path."""

    key: str
    url: str
    path: Path
    parts: int
    bytes_fetched: int
    seconds: float


def fetch_configured(config: Config, which: tuple[str, ...] = ("reference", "production")) -> list[Fetched]:
    """Copy ``paths.<which>_url`` (when set) into ``paths.<which>``, all or nothing: every table
    is first fetched next to its local file (one object as it is, a prefix's parts joined) and
    checked - the format its local name says, a header and data rows, at least one column shared
    with the file it replaces - and only then renamed over it (a link there is replaced, never
    followed), so a reader sees the old tables or the new ones, never half of one. A batch's
    ``.meta.json`` left by ``churnops generate`` no longer describes it and is removed. The
    caller holds the workspace."""
    import tempfile

    from churnops.config.paths import check_distinct
    from churnops.data.remote import shown, stage

    planned = [(key, getattr(config.paths, f"{key}_url")) for key in which]
    planned = [(key, url) for key, url in planned if url]
    targets = {key: config.resolve(getattr(config.paths, key)) for key in ("reference", "production")}
    for key, _ in planned:
        other = "production" if key == "reference" else "reference"
        check_distinct({f"paths.{key}": targets[key]}, {f"paths.{other}": targets[other]})
        if targets[key].is_dir():
            raise InputDataError(f"paths.{key}: {targets[key]} is a folder, where the fetched table goes")
    done: list[Fetched] = []
    folders: list[Path] = []
    try:
        ready = []
        for key, url in planned:
            target = targets[key]
            target.parent.mkdir(parents=True, exist_ok=True)
            folder = Path(tempfile.mkdtemp(prefix=".churnops-fetch-", dir=target.parent))
            folders.append(folder)
            staged = stage(url, folder, storage_options(config))
            _check_fetched(config, key, url, staged.path, target)
            ready.append((key, url, staged, target))
        for key, url, staged, target in ready:
            os.replace(staged.path, target)
            if key == "production":
                drop_stale_sidecar(target)
            logger.info(
                "fetched %s into %s: %s part(s), %s bytes in %.1f s",
                shown(url),
                target,
                staged.parts,
                f"{staged.bytes_fetched:,}",
                staged.seconds,
            )
            done.append(Fetched(key, shown(url), target, staged.parts, staged.bytes_fetched, staged.seconds))
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
    return done


def _check_fetched(config: Config, key: str, url: str, staged: Path, target: Path) -> None:
    """Refuse a fetched table before it replaces ``target``: another format than the local name
    says, no header or no data rows, a row that does not parse (it is read whole), or no column
    in common with the table it would replace (or, on a first fetch, the other input)."""
    from churnops.data.io import TableReader, table_format
    from churnops.data.remote import shown

    names = {"csv": "CSV", "parquet": "Parquet"}
    wanted = table_format(target)
    try:
        got = table_format(staged)
    except InputDataError:
        raise InputDataError(f"paths.{key}_url: {shown(url)} is not a .csv or .parquet object") from None
    if got != wanted:
        raise InputDataError(
            f"paths.{key}_url: {shown(url)} holds {names[got]} but paths.{key} ({target.name}) is a "
            f"{names[wanted]} file; give paths.{key} the .{got} suffix"
        )
    dialect = config.dialect_for("reference" if key == "reference" else "current")
    try:
        reader = TableReader(staged, dialect=dialect)
        for _ in reader:  # every row parses: a table broken half-way is refused, not discovered later
            pass
    except InputDataError as exc:
        said = str(exc).replace(str(staged), shown(url))
        raise InputDataError(f"paths.{key}_url: not a {names[got]} table, nothing replaced: {said}") from None
    other = config.resolve(config.paths.reference if key == "production" else config.paths.production)
    for known in (target, other):  # the table it replaces, else the other input (a first fetch)
        try:
            before = TableReader(known, dialect=dialect).header if known.is_file() and not known.is_symlink() else []
        except InputDataError:
            before = []
        if before:
            break
    if before and not set(before) & set(reader.header):
        raise InputDataError(
            f"paths.{key}_url: {shown(url)} shares no column with {known} ({', '.join(before[:5])}, ...), "
            "nothing replaced; remove that file first if the table really changed"
        )


def drop_stale_sidecar(batch: Path) -> None:
    """Remove the ``.meta.json`` ``churnops generate`` wrote beside a batch now replaced by a
    fetched or copied one (a regular file holding churnops' own keys; anything else is left alone)."""
    import json
    import stat

    from churnops.data.production import meta_path_for

    sidecar = meta_path_for(batch)
    try:
        if not stat.S_ISREG(os.lstat(sidecar).st_mode):
            return
        document = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(document, dict) and {"churnops_version", "scenario", "operations"} <= document.keys():
        sidecar.unlink()
        logger.info("removed %s: it described a generated batch, not the one now there", sidecar.name)


def _in_place(config: Config, url: str) -> Any:
    """A :class:`RemoteFile` when ``url`` names one Parquet object, else None (it is copied)."""
    from churnops.data.remote import RemoteFile, parts_of

    if url.endswith("/") or not url.lower().endswith((".parquet", ".pq")):
        return None
    options = storage_options(config)
    _, parts = parts_of(url, options)
    if len(parts) != 1:
        return None
    return RemoteFile(url, options)


def _fetched(remote: Any) -> None:
    share = remote.bytes_fetched / remote.size if remote.size else 0.0
    logger.info(
        "%s read in place: %s of %s bytes fetched (%.2fx the object)",
        remote.url,
        f"{remote.bytes_fetched:,}",
        f"{remote.size:,}",
        share,
    )


def publish_outputs(config: Config, outcome: Any) -> list[str]:
    """Upload the run's metrics, report, stylesheet and standalone report under ``publish.url``
    (``{run_id}`` filled in). Raises :class:`~churnops.errors.IntegrationError` on failure; the
    local outputs are kept either way."""
    from churnops.data.remote import publish

    url = str(config.publish.url).replace("{run_id}", outcome.result.run_id)
    outputs = config.run_outputs()
    files = [outputs[name] for name in ("metrics", "report", "report stylesheet", "standalone report")]
    return publish([f for f in files if f.is_file() and not f.is_symlink()], url, storage_options(config))
