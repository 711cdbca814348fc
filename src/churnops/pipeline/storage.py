"""Object storage for a run: tables given as URLs, and the outputs published after it."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnops.config import Config
from churnops.data.remote import StorageOptions, is_url, publish, shown, stage, staging_folder
from churnops.errors import InputDataError

logger = logging.getLogger(__name__)


def storage_options(config: Config) -> StorageOptions:
    storage = config.storage
    return StorageOptions(storage.endpoint_url, storage.region, storage.retries, storage.timeout)


@contextlib.contextmanager
def local_tables(config: Config, *given: str | Path | None) -> Iterator[list[tuple[Path | None, str | None]]]:
    """Each table given on the command line as a local path and the name the outputs give it:
    a path as it is (no name), a ``file://`` URL as its path, an object-storage URL (one object,
    or a prefix of parts) as a private copy in the workspace named by its URL - removed when the
    block ends."""
    found: list[tuple[Path | None, str | None]] = []
    with contextlib.ExitStack() as stack:
        folder: Path | None = None
        for value in given:
            if value is None or not is_url(value):
                found.append((Path(value) if value is not None else None, None))
                continue
            text = str(value)
            if text.lower().startswith("file://"):
                from urllib.parse import unquote, urlsplit

                found.append((Path(unquote(urlsplit(text).path)), None))
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
        yield found


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
    """Copy ``paths.<which>_url`` (when set) into ``paths.<which>``: the object, or a prefix's
    parts joined, is written next to the local file and then renamed over it (a link there is
    replaced, never followed), so a reader sees the old table or the new one, never half of one.
    The local file's format must be the object's (a ``.csv`` path for CSV parts, ``.parquet``
    for Parquet). The caller holds the workspace."""
    import tempfile

    from churnops.data.io import table_format

    done = []
    for key in which:
        url = getattr(config.paths, f"{key}_url")
        if not url:
            continue
        target = config.resolve(getattr(config.paths, key))
        if target.exists() and target.is_dir():
            raise InputDataError(f"paths.{key}: {target} is a folder, where the fetched table goes")
        target.parent.mkdir(parents=True, exist_ok=True)
        wanted = table_format(target)
        folder = Path(tempfile.mkdtemp(prefix=".churnops-fetch-", dir=target.parent))
        try:
            staged = stage(url, folder, storage_options(config))
            try:
                got = table_format(staged.path)
            except InputDataError:
                raise InputDataError(f"paths.{key}_url: {shown(url)} is not a .csv or .parquet object") from None
            if got != wanted:
                names = {"csv": "CSV", "parquet": "Parquet"}
                raise InputDataError(
                    f"paths.{key}_url: {shown(url)} holds {names[got]} but paths.{key} ({target.name}) is a "
                    f"{names[wanted]} file; give paths.{key} the .{got} suffix"
                )
            os.replace(staged.path, target)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        logger.info(
            "fetched %s into %s: %s part(s), %s bytes in %.1f s",
            shown(url),
            target,
            staged.parts,
            f"{staged.bytes_fetched:,}",
            staged.seconds,
        )
        done.append(Fetched(key, shown(url), target, staged.parts, staged.bytes_fetched, staged.seconds))
    return done


def publish_outputs(config: Config, outcome: Any) -> list[str]:
    """Upload the run's metrics, report, stylesheet and standalone report under ``publish.url``
    (``{run_id}`` filled in). Raises :class:`~churnops.errors.IntegrationError` on failure; the
    local outputs are kept either way."""
    url = str(config.publish.url).replace("{run_id}", outcome.result.run_id)
    outputs = config.run_outputs()
    files = [outputs[name] for name in ("metrics", "report", "report stylesheet", "standalone report")]
    return publish([f for f in files if f.is_file() and not f.is_symlink()], url, storage_options(config))
