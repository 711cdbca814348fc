"""Tables in object storage: ``s3://``, ``gs://``, ``az://`` and ``file://`` URLs.

Through pyarrow's own filesystems (``pyarrow.fs``): pyarrow is already what churnops reads
Parquet with, so object storage needs no other package, and its S3 client takes credentials from
the standard AWS chain (environment, shared profiles, instance and pod roles) - never from
churnops' configuration. An S3-compatible server (MinIO, Ceph) is named by an endpoint URL.

A URL names one object or a prefix (``s3://bank/batches/2026-12-03/``): a prefix's CSV or Parquet
parts, in name order, are one table. Before a run the object (or the parts, joined) is copied into
a private folder of the workspace in blocks - memory stays flat whatever the size - and the run
reads that copy as it reads a local file; the copy is removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from churnops.errors import InputDataError, IntegrationError
from churnops.redact import redact

PART_SUFFIXES = (".csv", ".parquet", ".pq")
BLOCK = 8 << 20
"""Bytes copied at a time."""
_FILESYSTEMS: dict[str, Any] = {}
"""Filesystems registered for a scheme (:func:`register_filesystem`)."""


@dataclass(frozen=True)
class StorageOptions:
    """How to reach object storage (``[storage]``); credentials are never among them."""

    endpoint_url: str | None = None
    """An S3-compatible server, e.g. ``http://minio.internal:9000``."""
    region: str | None = None
    retries: int = 5
    """Attempts per request: throttling, 5xx and dropped connections are retried with backoff."""
    timeout: float = 30.0
    """Seconds to connect, and to wait for an answer."""


def safe_key(key: str) -> bool:
    """Whether an object key (below its bucket) has no ``.``, ``..`` or empty segment and no
    backslash: a key such as ``batches/../../other-bucket/x`` is read by some clients as another
    bucket's object.

    >>> safe_key("batches/2026/part-1.csv"), safe_key("a/../../b/x.csv"), safe_key("a//b"), safe_key("")
    (True, False, False, True)
    """
    if not key:
        return True
    return "\\" not in key and all(piece not in ("", ".", "..") for piece in key.split("/"))


def register_filesystem(scheme: str, filesystem: Any) -> None:
    """Use ``filesystem`` (a ``pyarrow.fs.FileSystem``) for URLs of ``scheme`` - e.g. an fsspec
    filesystem wrapped in ``pyarrow.fs.PyFileSystem(FSSpecHandler(...))``."""
    _FILESYSTEMS[scheme.lower()] = filesystem


def shown(url: str) -> str:
    """The URL as it may be printed: user information, query and fragment removed."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:  # a malformed host or port: only the scheme is safe to show
        return redact(f"{url.split('://', 1)[0]}://...")
    return redact(f"{parts.scheme}://{host}{parts.path}")


BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
"""What a bucket or container name may hold (no port, no user, no brackets)."""


def filesystem(url: str, options: StorageOptions) -> tuple[Any, str]:
    """The pyarrow filesystem for ``url`` and the path in it (``bucket/key``)."""
    import pyarrow.fs as pafs

    try:
        parts = urlsplit(url)
        credentials = parts.username or parts.password
    except ValueError:
        raise InputDataError(f"{shown(url)}: not a URL like s3://bucket/key") from None
    scheme = parts.scheme.lower()
    if credentials or parts.query:
        raise InputDataError(
            f"{shown(url)}: credentials and parameters do not go in the URL - the provider's standard "
            "chain gives them (environment, profile, instance role)"
        )
    if parts.fragment or "#" in url:
        raise InputDataError(f"{shown(url)}: a '#' fragment is not part of an object's name; remove it")
    if scheme != "file" and parts.netloc and not BUCKET.fullmatch(parts.netloc):
        raise InputDataError(f"{shown(url)}: '{parts.netloc}' is not a bucket name (no port, user or brackets)")
    path = f"{parts.netloc}{parts.path}" if scheme != "file" else parts.path
    if scheme != "file" and not safe_key(parts.path.lstrip("/").rstrip("/")):
        raise InputDataError(f"{shown(url)}: '.', '..' and empty names are refused in object-storage URLs")
    if scheme in _FILESYSTEMS:
        return _FILESYSTEMS[scheme], path
    if scheme == "file":
        return pafs.LocalFileSystem(), path
    if not parts.netloc:
        raise InputDataError(f"{shown(url)}: no bucket in the URL (s3://BUCKET/key)")
    if scheme == "s3":
        endpoint, named = options.endpoint_url, "storage.endpoint_url"
        for variable in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
            if not endpoint and os.environ.get(variable):
                endpoint, named = os.environ[variable], variable
        settings: dict[str, Any] = {
            "connect_timeout": options.timeout,
            "request_timeout": options.timeout,
            "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=options.retries),
        }
        if endpoint:
            target = urlsplit(endpoint)
            if target.scheme not in ("http", "https") or not target.netloc:
                raise InputDataError(f"{named}: '{shown(endpoint)}' is not an http(s) URL")
            settings |= {"endpoint_override": target.netloc, "scheme": target.scheme}
        region = options.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region:
            settings["region"] = region
        return pafs.S3FileSystem(**settings), path
    if scheme in ("gs", "gcs"):
        from datetime import timedelta

        return pafs.GcsFileSystem(retry_time_limit=timedelta(seconds=options.timeout * options.retries)), path
    return pafs.AzureFileSystem(account_name=os.environ.get("AZURE_STORAGE_ACCOUNT_NAME", "")), path


def _reason(exc: BaseException) -> str:
    text = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    if "HTTP status 416" in text or "InvalidRange" in text:
        return CHANGED
    if "NO_SUCH_BUCKET" in text or "NoSuchBucket" in text:
        return "the bucket does not exist"
    if "ACCESS_DENIED" in text or "AccessDenied" in text or "HTTP status 403" in text:
        return "access denied (check the credentials the provider's chain gives, and the bucket policy)"
    if "NETWORK_CONNECTION" in text or "Could not connect" in text or "Couldn't connect" in text:
        return "cannot reach the storage server (check storage.endpoint_url and the network)"
    if "region" in text.lower() and "301" in text:
        return "the bucket is in another region (set storage.region)"
    text = re.sub(r"\s*\(Request ID: [^)]*\)", "", text)
    # the server's own words may quote the request (its token, its signature): its error code and
    # HTTP status say what happened
    return re.sub(r"(?s)\s*Message:.*", " (the server's message is not shown)", text)[:300]


@contextlib.contextmanager
def _errors(url: str, action: str) -> Iterator[None]:
    try:
        yield
    except (InputDataError, IntegrationError):
        raise
    except FileNotFoundError:
        raise InputDataError(f"{shown(url)}: not found") from None
    except (OSError, ValueError) as exc:
        raise InputDataError(f"{shown(url)}: cannot {action}: {_reason(exc)}") from None


CHANGED = "the object changed while it was read; run again once it is written"
_GONE = ("RESOURCE_NOT_FOUND", "NO_SUCH_KEY", "NoSuchKey", "HTTP status 404")


@contextlib.contextmanager
def _reading_part(url: str, part: Any) -> Iterator[None]:
    """A listed object that is gone by the time it is read is named, not reported as a bare 404."""
    try:
        yield
    except FileNotFoundError:
        raise InputDataError(
            f"{shown(url)}: {part.base_name} was listed but is gone (removed during the read?)"
        ) from None
    except OSError as exc:
        if any(mark in str(exc) for mark in _GONE):
            raise InputDataError(
                f"{shown(url)}: {part.base_name} was listed but is gone (removed during the read?)"
            ) from None
        raise


def parts_of(url: str, options: StorageOptions) -> tuple[Any, list[Any]]:
    """The filesystem and the objects ``url`` names: itself, or the table parts under a prefix."""
    import pyarrow.fs as pafs

    fs, path = filesystem(url, options)
    with _errors(url, "read it"):
        info = fs.get_file_info(path.rstrip("/") or path)
        if info.type == pafs.FileType.File and not url.endswith("/"):
            return fs, [info]
        if info.type == pafs.FileType.NotFound:
            bucket = path.split("/", 1)[0]
            if "/" in path.strip("/") and fs.get_file_info(bucket).type == pafs.FileType.NotFound:
                raise InputDataError(f"{shown(url)}: no bucket '{bucket}'")
            raise InputDataError(f"{shown(url)}: not found")
        found = fs.get_file_info(pafs.FileSelector(path.rstrip("/"), recursive=True))
    parts = sorted(
        (i for i in found if i.type == pafs.FileType.File and i.base_name.lower().endswith(PART_SUFFIXES)),
        key=lambda i: i.path,
    )
    for part in parts:
        if not safe_key(part.path.split("/", 1)[1] if "/" in part.path else ""):
            raise InputDataError(f"{shown(url)}: refused object name {part.path!r} ('.', '..' or empty names)")
        if not part.size:
            raise InputDataError(f"{shown(url)}: {part.base_name} is empty")
    if not parts:
        raise InputDataError(f"{shown(url)}: no .csv or .parquet object under this prefix")
    kinds = {_kind(i.base_name) for i in parts}
    if len(kinds) > 1:
        raise InputDataError(f"{shown(url)}: mixes CSV and Parquet parts; keep one format under a prefix")
    return fs, parts


def _kind(name: str) -> str:
    return "csv" if name.lower().endswith(".csv") else "parquet"


class RemoteFile:
    """One Parquet object read in place: pyarrow asks for the byte ranges it needs (the footer,
    then each row group's column chunks), so only the columns read are fetched and nothing is
    written to disk. Stands where a local ``Path`` goes for :class:`churnops.data.io.TableReader`
    (``name``, ``suffix``, ``is_file()``; ``str()`` is the URL as it may be printed)."""

    def __init__(self, url: str, options: StorageOptions) -> None:
        import pyarrow.fs as pafs

        self.url = shown(url)
        self._fs, self.key = filesystem(url, options)
        with _errors(url, "read it"):
            info = self._fs.get_file_info(self.key)
            if info.type == pafs.FileType.NotFound:
                bucket = self.key.split("/", 1)[0]
                if self._fs.get_file_info(bucket).type == pafs.FileType.NotFound:
                    raise InputDataError(f"{self.url}: no bucket '{bucket}'")
                raise InputDataError(f"{self.url}: not found")
        if info.type != pafs.FileType.File:
            raise InputDataError(f"{self.url}: not an object")
        if not info.size:
            raise InputDataError(f"{self.url}: file is empty")
        self.size = int(info.size)
        self._stamp = (info.size, info.mtime_ns, self._etag())
        self.name = info.base_name
        self.suffix = Path(self.name).suffix
        self.bytes_fetched = 0
        """Bytes read from the object so far, every opening together."""
        self.footer: Any = None
        """The Parquet footer once a reader has read it (``pyarrow.parquet.FileMetaData``)."""

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"RemoteFile({self.url!r})"

    def is_file(self) -> bool:
        return True

    def exists(self) -> bool:
        return True

    def is_dir(self) -> bool:
        return False

    def _etag(self, native: Any = None) -> bytes | None:
        """The object's entity tag (S3's ``ETag``: a new one for every write), when the store gives one."""
        with _errors(self.url, "read it"):
            handle = native if native is not None else self._fs.open_input_file(self.key)
            try:
                tag = dict(handle.metadata()).get("ETag")
            finally:
                if native is None:
                    handle.close()
        return bytes(tag) if tag else None

    def check_unchanged(self) -> None:
        """Refuse a result read from an object that was replaced or removed while it was read
        (its parts could come from two versions): its size, modification time and entity tag
        must be those it had when the run began."""
        import pyarrow.fs as pafs

        with _errors(self.url, "read it"):
            info = self._fs.get_file_info(self.key)
        if info.type != pafs.FileType.File or (info.size, info.mtime_ns, self._etag()) != self._stamp:
            raise InputDataError(f"{self.url}: {CHANGED}")

    def open(self) -> Any:
        """A random-access file on the object (for ``pyarrow.parquet``), counting what it fetches."""
        import pyarrow as pa

        with _errors(self.url, "read it"):
            native = self._fs.open_input_file(self.key)
        if self._etag(native) != self._stamp[2]:
            native.close()
            raise InputDataError(f"{self.url}: {CHANGED}")
        return pa.PythonFile(_Counted(native, self), mode="r")


class _Counted:
    """A pyarrow file whose reads are added to its :class:`RemoteFile`'s ``bytes_fetched``."""

    def __init__(self, native: Any, owner: RemoteFile) -> None:
        self._native, self._owner = native, owner
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._native.read(size) if size is not None and size >= 0 else self._native.read()
        except OSError as exc:  # said in words, whatever reader reports it
            if any(mark in str(exc) for mark in _GONE):
                raise OSError("the object is gone (removed during the read?)") from None
            raise OSError(_reason(exc)) from None
        self._owner.bytes_fetched += len(data)
        return bytes(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self._native.seek(offset, whence))

    def tell(self) -> int:
        return int(self._native.tell())

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def size(self) -> int:
        return self._owner.size

    def close(self) -> None:
        if not self.closed:
            self._native.close()
            self.closed = True


@dataclass(frozen=True)
class Staged:
    """A table copied from object storage, and what it cost."""

    path: Path
    url: str
    parts: int
    bytes_fetched: int
    seconds: float


def stage(url: str, folder: Path, options: StorageOptions) -> Staged:
    """Copy the table ``url`` names into ``folder`` (created private, or an existing one): one
    object as it is, a prefix's parts joined into one file of their format."""
    started = time.perf_counter()
    fs, parts = parts_of(url, options)
    kind = _kind(parts[0].base_name)
    name = parts[0].base_name if len(parts) == 1 else f"{_stem(url)}.{kind}"
    target = folder / name
    fetched = 0
    with _errors(url, "read it"):
        if len(parts) == 1 or kind == "csv":
            fetched = _copy_bytes(fs, parts, target, url)
        else:
            fetched = _join_parquet(fs, parts, target, url)
    return Staged(target, url, len(parts), fetched, time.perf_counter() - started)


def _stem(url: str) -> str:
    name = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] or "table"
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or "table"


def _pump(source: Any, out: Any) -> int:
    """Copy ``source`` to ``out`` in :data:`BLOCK` pieces (memory stays flat); the bytes copied."""
    copied = 0
    while block := source.read(BLOCK):
        copied += len(block)
        out.write(block)
    return copied


def _put_whole(fs: Any, file: Path, key: str) -> None:
    """Upload ``file`` to ``key`` of ``fs`` under a temporary key first, then copied to ``key``:
    a reader never sees half an object."""
    folder, _, name = key.rpartition("/")
    partial = f"{folder}/.{name}.uploading-{os.getpid()}"
    with file.open("rb") as source, fs.open_output_stream(partial) as out:
        _pump(source, out)
    fs.copy_file(partial, key)
    fs.delete_file(partial)


def _create(target: Path) -> Any:
    from churnops.data.files import open_regular

    return os.fdopen(open_regular(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def _header(source: Any, url: str) -> tuple[bytes, bytes, int]:
    """A CSV part's header line (without its line end), the bytes read after it, and how many
    bytes were read."""
    block = b""
    while b"\n" not in block:
        more = source.read(1 << 16)
        if not more:
            break
        block += more
        if len(block) > (1 << 20):
            raise InputDataError(f"{shown(url)}: a part's first line is longer than 1 MiB: not a CSV header")
    line, _, rest = block.partition(b"\n")
    return line.rstrip(b"\r"), rest, len(block)


def _copy_bytes(fs: Any, parts: list[Any], target: Path, url: str) -> int:
    """One object copied as it is, or CSV parts joined: the first part's header kept, the same
    header dropped from the others (a part with another header is refused)."""
    fetched = 0
    header: bytes | None = None
    with _create(target) as out:
        for part in parts:
            last = b"\n"
            with _reading_part(url, part), fs.open_input_stream(part.path) as source:
                if len(parts) > 1:
                    line, rest, read = _header(source, url)
                    fetched += read
                    if header is None:
                        header = line
                        out.write(line + b"\n")
                    elif line != header:
                        raise InputDataError(
                            f"{shown(url)}: part {part.base_name} has another header than "
                            f"{parts[0].base_name}; the parts of a prefix must have the same columns"
                        )
                    out.write(rest)
                    last = rest[-1:] or last
                while block := source.read(BLOCK):
                    fetched += len(block)
                    out.write(block)
                    last = block[-1:]
            if len(parts) > 1 and last != b"\n":
                out.write(b"\n")
    return fetched


def _join_parquet(fs: Any, parts: list[Any], target: Path, url: str) -> int:
    """Parquet parts joined row group by row group (memory: one row group at a time)."""
    import pyarrow.parquet as pq

    fetched = 0
    writer = None
    schema = None
    with _create(target) as out:
        try:
            for part in parts:
                with _reading_part(url, part), fs.open_input_file(part.path) as source:
                    handle = pq.ParquetFile(source)
                    if schema is None:
                        schema = handle.schema_arrow
                        writer = pq.ParquetWriter(out, schema)
                    elif not handle.schema_arrow.equals(schema):
                        raise InputDataError(
                            f"{shown(url)}: part {part.base_name} has other columns or types than "
                            f"{parts[0].base_name}; the parts of a prefix must have the same schema"
                        )
                    for group in range(handle.num_row_groups):
                        assert writer is not None
                        writer.write_table(handle.read_row_group(group))
                    fetched += part.size or 0
        finally:
            if writer is not None:
                writer.close()
    return fetched


MAX_FOLDER_FILES = 1_000
"""Files a downloaded folder (a model's artifacts) may hold: a model is a handful of files."""


def download_folder(url: str, folder: Path, options: StorageOptions) -> int:
    """Copy every object under the prefix ``url`` into ``folder`` (an existing, private folder),
    keeping the names below the prefix; returns the bytes fetched. Names that would leave the
    folder, and more than :data:`MAX_FOLDER_FILES` objects, are refused."""
    import pyarrow.fs as pafs

    fs, path = filesystem(url, options)
    base = path.rstrip("/")
    fetched = 0
    with _errors(url, "read it"):
        found = [i for i in fs.get_file_info(pafs.FileSelector(base, recursive=True)) if i.type == pafs.FileType.File]
        if not found:
            raise InputDataError(f"{shown(url)}: not found")
        if len(found) > MAX_FOLDER_FILES:
            raise InputDataError(f"{shown(url)}: more than {MAX_FOLDER_FILES} objects; not a model folder")
        for info in found:
            relative = info.path[len(base) :].lstrip("/")
            pieces = relative.split("/")
            if not relative or any(piece in ("", ".", "..") or "\\" in piece for piece in pieces):
                raise InputDataError(f"{shown(url)}: refused object name {relative!r}")
            target = folder.joinpath(*pieces)
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with _reading_part(url, info), fs.open_input_stream(info.path) as source, _create(target) as out:
                fetched += _pump(source, out)
    return fetched


@contextlib.contextmanager
def staging_folder(workspace: Path) -> Iterator[Path]:
    """A private folder in ``workspace/.churnops`` for copies of remote tables, removed after."""
    base = workspace / ".churnops"
    base.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="staging-", dir=base))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def download(url: str, target: Path, options: StorageOptions, limit: int) -> bool:
    """Copy the object ``url`` into ``target`` (written beside it, then renamed over it; at most
    ``limit`` bytes); False when there is no such object."""
    import pyarrow.fs as pafs

    fs, key = filesystem(url, options)
    with _errors(url, "read it"):
        info = fs.get_file_info(key)
        if info.type != pafs.FileType.File:
            return False
        if (info.size or 0) > limit:
            raise InputDataError(f"{shown(url)}: larger than {limit:,} bytes")
        partial = target.with_name(f".{target.name}.fetching-{os.getpid()}")
        try:
            with fs.open_input_stream(key) as source, _create(partial) as out:
                _pump(source, out)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return True


def upload(file: Path, url: str, options: StorageOptions) -> str:
    """Upload ``file`` as the object ``url`` (a temporary key first, then copied: a reader never
    sees half an object). Returns the URL as it may be printed."""
    if url.endswith("/"):
        raise InputDataError(f"{shown(url)}: name the object (s3://bucket/batches/batch.csv), not a prefix")
    fs, key = filesystem(url, options)
    folder, _, name = key.rpartition("/")
    if not folder or not name:
        raise InputDataError(f"{shown(url)}: name the object inside a bucket (s3://bucket/batch.csv)")
    try:
        _put_whole(fs, file, key)
    except (OSError, ValueError) as exc:
        raise IntegrationError(f"uploading to {shown(url)} failed: {_reason(exc)}") from None
    return shown(url)


def publish(files: list[Path], url: str, options: StorageOptions) -> list[str]:
    """Upload ``files`` under the prefix ``url``: each to a temporary key, then copied to its
    final key (a reader never sees half an object) and the temporary one removed. Returns the
    URLs written; a failure raises :class:`IntegrationError` (the local files are untouched)."""
    fs, prefix = filesystem(url if url.endswith("/") else url + "/", options)
    written = []
    try:
        for file in files:
            final = f"{prefix.rstrip('/')}/{file.name}"
            _put_whole(fs, file, final)
            written.append(f"{urlsplit(url).scheme}://{final}")
    except (OSError, ValueError) as exc:
        raise IntegrationError(f"publishing to {shown(url)} failed: {_reason(exc)}") from None
    return written
