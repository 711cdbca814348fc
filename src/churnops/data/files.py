"""Writing files without trusting what is already on disk.

Everything churnops writes goes through here: a new file is written in full to a temporary file
created exclusively beside its target (``O_EXCL``: a planted name is never reused), then renamed
onto the target, which replaces a symbolic link planted there instead of writing through it. Files
that are appended to or locked in place (a notification log, a lock file) are opened with
``O_NOFOLLOW``, and refused when something other than a regular file sits at their path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from churnops.errors import OutputWriteError

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def umask() -> int:
    """The process's file-creation mask (read without changing it for long)."""
    current = os.umask(0)
    os.umask(current)
    return current


def new_file_mode(path: Path) -> int:
    """The permission bits a replacement of ``path`` gets: those of the regular file it replaces,
    else what a plain ``open()`` would give (mkstemp makes owner-only files)."""
    try:
        return replacement_mode(os.lstat(path))
    except FileNotFoundError:
        return replacement_mode(None)


def replacement_mode(info: os.stat_result | None) -> int:
    """The permission bits of a file written where ``info`` (not followed; None: nothing) is:
    those of a regular file there, else what a plain ``open()`` would give."""
    if info is not None and stat.S_ISREG(info.st_mode):
        return stat.S_IMODE(info.st_mode)
    return 0o666 & ~umask()


def linked_folder(path: Path, root: Path) -> Path | None:
    """The first folder between ``root`` (excluded) and ``path`` (excluded) that is a symbolic
    link, if any: writing there would land outside ``root``."""
    try:
        relative = path.parent.relative_to(root)
    except ValueError:
        return None
    current = root
    for part in relative.parts:
        current = current / part
        if current.is_symlink():
            return current
    return None


def refuse_folder(path: Path) -> None:
    """Raise :class:`OutputWriteError` when ``path`` is a folder (a file is to be written there)."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISDIR(os.lstat(path).st_mode):
            raise OutputWriteError(
                f"{path}: is a folder where churnops writes a file; remove it or choose another path"
            )


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    On any error the temporary file is removed and ``path`` keeps its previous content. A
    symbolic link at ``path`` is replaced, never written through.

    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_path(folder / "a.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (folder / "a.txt").read_text(), sorted(p.name for p in folder.iterdir())
    ('hello', ['a.txt'])
    >>> import shutil
    >>> shutil.rmtree(folder)
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    refuse_folder(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, new_file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (fsynced before the rename)."""
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC | NOFOLLOW | CLOEXEC)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def open_regular(path: Path, flags: int, mode: int = 0o666) -> int:
    """Open ``path`` without following a symbolic link; refuse anything but a regular file.

    Returns the file descriptor. Raises :class:`OutputWriteError` for a link, a folder, a device
    or a pipe at ``path``.
    """
    try:
        fd = os.open(path, flags | NOFOLLOW | CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OutputWriteError(
                f"{path}: is a symbolic link; churnops does not write through links - remove it"
            ) from None
        if os.path.isdir(path):
            raise OutputWriteError(f"{path}: is a folder, where churnops keeps a file; remove it") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise OutputWriteError(f"{path}: is not a regular file; remove it")
    if info.st_nlink > 1:
        os.close(fd)
        raise _hard_link(path, info.st_nlink)
    return fd


def _hard_link(path: Path, names: int) -> OutputWriteError:
    return OutputWriteError(
        f"{path}: is a hard link to another file ({names} names); churnops does not write through links - remove it"
    )


def refuse_hard_link(path: Path) -> None:
    """Raise :class:`OutputWriteError` when ``path`` exists as a link (hard or symbolic) or is not
    a regular file: for files opened by a library (SQLite) rather than by churnops."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise OutputWriteError(f"{path}: is a symbolic link; churnops does not write through links - remove it")
    if not stat.S_ISREG(info.st_mode):
        raise OutputWriteError(f"{path}: is not a regular file; remove it")
    if info.st_nlink > 1:
        raise _hard_link(path, info.st_nlink)


def append_text(path: Path, text: str) -> None:
    """Append ``text`` (UTF-8) to the regular file ``path``, creating it if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(fd, "ab") as handle:
        handle.write(text.encode("utf-8"))


def is_link(path: Path) -> bool:
    """Whether ``path`` itself is a symbolic link (not followed)."""
    return path.is_symlink()


# Folders held open: a file written or read relative to a folder's descriptor lands in that folder
# whatever is renamed or linked on its path meanwhile - checking a path and then writing by it
# leaves a moment in which a link swapped in redirects the write.
FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | NOFOLLOW | CLOEXEC


class LinkedPath(OutputWriteError):
    """A symbolic link where churnops opens a folder or a file without following links."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path}: is a symbolic link; churnops does not write through links - remove it")
        self.path = path


def open_folder_at(folder: int, name: str, shown: Path, create: bool = False) -> int:
    """A descriptor of the folder ``name`` inside the folder open as ``folder``, never reached
    through a symbolic link (made first when ``create`` and missing; ``shown``: its path, for
    messages).

    Raises :class:`LinkedPath` for a link at ``name``, :class:`NotADirectoryError` for anything
    else but a folder there, :class:`FileNotFoundError` when it is missing and not made.
    """
    if not name or name in (".", "..") or "/" in name:
        raise OutputWriteError(f"{shown}: not a plain folder name")
    for _ in range(2):  # made here when missing; opened again when it vanished in between
        try:
            return os.open(name, FOLDER_FLAGS, dir_fd=folder)
        except FileNotFoundError:
            if not create:
                raise
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=folder)
        except OSError as exc:
            if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
            info = os.stat(name, dir_fd=folder, follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                raise LinkedPath(shown) from None
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(shown)) from None
    return os.open(name, FOLDER_FLAGS, dir_fd=folder)


def open_folder(path: Path, create: bool = False) -> int:
    """A descriptor of the folder at the absolute path ``path``, opened one component at a time
    from the root without following any symbolic link (missing folders made when ``create``).

    Raises :class:`LinkedPath` naming the first link on the path.
    """
    if not path.is_absolute():
        raise OutputWriteError(f"{path}: not an absolute path")
    current = os.open(path.anchor, FOLDER_FLAGS)
    reached = Path(path.anchor)
    try:
        for part in path.parts[1:]:
            reached = reached / part
            inner = open_folder_at(current, part, reached, create)
            os.close(current)
            current = inner
    except BaseException:
        os.close(current)
        raise
    return current


def write_file_at(folder: int, name: str, data: bytes, shown: Path) -> None:
    """Write ``data`` as ``name`` in the folder open as ``folder``, atomically: a temporary file
    made there exclusively without following links, fsynced, then renamed onto ``name`` (a link
    planted at ``name`` is replaced, never written through; ``shown``: the path, for messages).
    """
    try:
        info: os.stat_result | None = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        info = None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise OutputWriteError(f"{shown}: is a folder where churnops writes a file; remove it")
    mode = replacement_mode(info)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | CLOEXEC
    for _ in range(100):
        temporary = f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(temporary, flags, 0o600, dir_fd=folder)
            break
        except FileExistsError:
            continue
    else:
        raise OutputWriteError(f"{shown}: no free temporary name beside it")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=folder)
        raise
    os.fsync(folder)  # the rename itself on disk


def read_own_file(path: Path | str, limit: int | None = None, folder: int | None = None) -> bytes | None:
    """The content of ``path`` (relative to the folder open as ``folder`` when given) when it is a
    regular file with one name, opened without following a link (a file churnops wrote, never what
    a link put in its place), of at most ``limit`` bytes; None for anything else (missing, a link,
    a hard link, a folder, a pipe)."""
    try:
        fd = os.open(path, os.O_RDONLY | NOFOLLOW | CLOEXEC | getattr(os, "O_NONBLOCK", 0), dir_fd=folder)
    except OSError:
        return None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:  # (a folder opens too)
        os.close(fd)
        return None
    with os.fdopen(fd, "rb") as handle:
        if limit is None:
            return handle.read()
        data = handle.read(limit + 1)
        return data if len(data) <= limit else None


def read_file_at(folder: int, name: str) -> bytes | None:
    """:func:`read_own_file` of ``name`` in the folder open as ``folder``."""
    return read_own_file(name, folder=folder)


def head_and_tail(path: Path, size: int = 1 << 16) -> tuple[bytes, bytes]:
    """The first and last ``size`` bytes of the regular file ``path``, opened without following a
    link (nothing when it cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | NOFOLLOW | CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return b"", b""
    with os.fdopen(fd, "rb") as handle:
        head = handle.read(size)
        handle.seek(max(0, os.fstat(fd).st_size - size))
        return head, handle.read(size)


def refuse_unowned(path: Path, owned: Callable[[Path], bool], refusal: str) -> None:
    """Raise :class:`OutputWriteError` (``refusal``) when writing at ``path`` could lose someone's
    data: only nothing there, a link (replaced, never followed), a folder (which the writer
    refuses, naming it), an empty file, or a regular file ``owned(path)`` says the command may
    replace (its own output, a batch it generated...) are left to the writer."""
    try:
        info = os.lstat(path)
    except OSError:
        return
    if stat.S_ISLNK(info.st_mode) or stat.S_ISDIR(info.st_mode):
        return
    if stat.S_ISREG(info.st_mode) and (info.st_size == 0 or owned(path)):
        return
    raise OutputWriteError(refusal)


def refuse_foreign(path: Path, flag: str, reads_like: Callable[[bytes, bytes], bool], what: str) -> None:
    """:func:`refuse_unowned` of a file whose first and last 64 kB ``reads_like`` says are
    ``what`` this command writes - never a note, a record or a table of someone's that a
    mistyped ``-o`` names. ``--force`` is the way out."""
    refuse_unowned(
        path,
        lambda own: reads_like(*head_and_tail(own)),
        f"{flag} {path}: a file is there that does not read like {what}, which churnops writes there: "
        "choose another path, or add --force to replace it",
    )
