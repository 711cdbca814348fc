"""A run's outputs appear together or not at all, and a failed commit changes nothing.

The metrics JSON, the report, its stylesheet, the standalone report and ``trigger.txt`` are
several files, and a rename only replaces one at a time. So the outputs of a run are committed
through a small write-ahead journal, under the workspace lock:

1. every new file is written in full to a temporary file beside its target (and fsynced);
2. every target that is about to be replaced or removed keeps a backup (a hard link beside it,
   a copy where links are not possible); a folder where a file should go stops the commit here,
   before anything changed;
3. ``.outputs-commit.json`` lists the renames, removals and backups, written atomically - from
   this instant the run counts as committed;
4. the renames and removals are done; if one fails, the ones already done are undone from the
   backups, and the command reports the failure with the previous outputs back in place;
5. what belongs to the same story (the history row) is recorded, then backups and journal are
   deleted.

A process killed before step 3 leaves the previous outputs untouched (its temporary files are
swept by the next run); killed after it, the next churnops command finishes the commit
(:func:`recover`), or puts the backups back if it cannot. The journal is untrusted input like any
file: :func:`recover` applies only entries that name the outputs this workspace's run could have
written, with temporary files and backups named as this module names them, beside their target.
Anything else is set aside untouched, with a warning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from churnops.config.models import OUTPUTS_JOURNAL
from churnops.data.files import atomic_write_text, new_file_mode, refuse_folder
from churnops.errors import OutputWriteError

logger = logging.getLogger(__name__)

JOURNAL = OUTPUTS_JOURNAL
JOURNAL_FORMAT = "churnops-outputs-commit"
JOURNAL_VERSION = 2
MAX_JOURNAL_BYTES = 1 << 20


class JournalRejected(ValueError):
    """The journal on disk is not one this workspace's run could have written."""


def _fsync_dir(directory: Path) -> None:
    if os.name == "nt":  # pragma: no cover - directories cannot be opened on Windows
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _staged_pattern(target: Path) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(target.name)}\.[A-Za-z0-9_]+\.tmp")


def _backup_pattern(target: Path) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(target.name)}\.[0-9a-f]+\.bak")


def sweep_orphans(targets: Collection[Path]) -> int:
    """Remove temporary files and backups (``.<name>.*.tmp``, ``.<name>.*.bak``) that a killed run
    left beside ``targets``; links and folders with such names are left alone."""
    removed = 0
    for target in targets:
        if not target.parent.is_dir():
            continue
        staged, backup = _staged_pattern(target), _backup_pattern(target)
        for orphan in target.parent.glob(f".{glob_escape(target.name)}.*"):
            if not (staged.fullmatch(orphan.name) or backup.fullmatch(orphan.name)):
                continue
            with contextlib.suppress(OSError):
                if stat.S_ISREG(os.lstat(orphan).st_mode):
                    orphan.unlink()
                    removed += 1
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob wildcards escaped."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def _lexists(path: Path) -> bool:
    return os.path.lexists(path)


def _make_backup(target: Path) -> str:
    """A backup of ``target`` beside it (a hard link to the file - or to the link - itself)."""
    backup = target.with_name(f".{target.name}.{secrets.token_hex(6)}.bak")
    try:
        os.link(target, backup, follow_symlinks=False)
    except OSError:
        shutil.copy2(target, backup, follow_symlinks=False)
    return str(backup)


def _apply(entry: dict[str, Any]) -> None:
    target = Path(entry["path"])
    if entry["action"] == "write":
        staged = Path(entry["staged"])
        if _lexists(staged):
            os.replace(staged, target)
        elif not _lexists(target):
            raise OutputWriteError(f"output commit: {staged.name} is gone and {target} was never written")
    else:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()


def _undo(entry: dict[str, Any]) -> None:
    """Put ``entry``'s target back as it was before the commit."""
    target = Path(entry["path"])
    backup = entry.get("backup")
    if backup and _lexists(Path(backup)):
        os.replace(backup, target)
    elif entry["action"] == "write" and not (entry.get("staged") and _lexists(Path(entry["staged"]))):
        with contextlib.suppress(FileNotFoundError):
            target.unlink()  # a file this commit created, where there was none


def _cleanup(entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        for key in ("staged", "backup"):
            if entry.get(key):
                with contextlib.suppress(OSError):
                    Path(entry[key]).unlink()


def _read_journal(journal: Path, allowed: Collection[Path]) -> dict[str, Any]:
    """The journal, validated against what this workspace's run could have written."""
    info = os.lstat(journal)
    if not stat.S_ISREG(info.st_mode):
        raise JournalRejected("it is not a regular file")
    if info.st_size > MAX_JOURNAL_BYTES:
        raise JournalRejected(f"it is {info.st_size} bytes, far more than a journal")
    try:
        document = json.loads(journal.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise JournalRejected(f"it is not valid JSON ({exc})") from None
    if not isinstance(document, dict) or set(document) != {"format", "version", "run_id", "entries", "history"}:
        raise JournalRejected("its fields are not a journal's")
    if document["format"] != JOURNAL_FORMAT or document["version"] != JOURNAL_VERSION:
        raise JournalRejected(f"format {document.get('format')!r} {document.get('version')!r} is not this churnops'")
    if not isinstance(document["run_id"], str) or not isinstance(document["history"], bool):
        raise JournalRejected("run id or history flag of the wrong type")
    entries = document["entries"]
    if not isinstance(entries, list) or not entries:
        raise JournalRejected("no entries")
    known = {os.path.normpath(str(p)): Path(p) for p in allowed}
    seen: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != {"action", "path", "staged", "backup"}:
            raise JournalRejected("an entry has unexpected fields")
        if entry["action"] not in ("write", "remove") or not isinstance(entry["path"], str):
            raise JournalRejected("an entry has an unknown action")
        path = os.path.normpath(entry["path"])
        if path not in known or path != entry["path"]:
            raise JournalRejected(f"it names {entry['path']!r}, which is not an output of this workspace")
        if path in seen:
            raise JournalRejected(f"it names {entry['path']!r} twice")
        seen.add(path)
        target = known[path]
        checks = [("staged", _staged_pattern(target))] if entry["action"] == "write" else []
        checks.append(("backup", _backup_pattern(target)))
        for key, pattern in checks:
            value = entry[key]
            if value is None and key == "backup":
                continue
            if not isinstance(value, str) or os.path.dirname(value) != os.path.dirname(path):
                raise JournalRejected(f"its {key} file for {target.name} is not beside it")
            if not pattern.fullmatch(os.path.basename(value)):
                raise JournalRejected(f"its {key} file {os.path.basename(value)!r} is not named as churnops names it")
            if _lexists(Path(value)) and not stat.S_ISREG(os.lstat(value).st_mode):
                raise JournalRejected(f"its {key} file {os.path.basename(value)!r} is not a regular file")
        if entry["action"] == "remove" and entry["staged"] is not None:
            raise JournalRejected("a removal names a staged file")
    return document


def _set_aside(journal: Path) -> Path:
    aside = journal.with_name(f"{journal.name}.rejected-{secrets.token_hex(4)}")
    os.replace(journal, aside)
    return aside


def recover(
    directory: Path, allowed: Collection[Path], on_committed: Callable[[dict[str, Any]], None] | None = None
) -> str | None:
    """Finish (or undo) an output commit that a killed process left half done.

    Call with the workspace lock held exclusively. ``allowed`` are the outputs this workspace's
    run writes; ``on_committed(journal)`` records what belongs to the run (its history row) once
    its outputs are in place. Returns ``"finished"``, ``"undone"``, ``"rejected"`` or None when
    there was nothing to do.
    """
    journal = directory / JOURNAL
    if not _lexists(journal):
        return None
    try:
        document = _read_journal(journal, allowed)
    except (JournalRejected, OSError) as exc:
        try:
            aside = _set_aside(journal)
            logger.warning("ignored %s: %s; nothing in it was applied (kept as %s)", journal, exc, aside.name)
        except OSError as move_error:
            logger.warning("ignored %s: %s; it could not be moved aside: %s", journal, exc, move_error)
        return "rejected"
    entries = document["entries"]
    outcome = "finished"
    try:
        for entry in entries:
            _apply(entry)
    except (OSError, OutputWriteError) as exc:
        outcome = "undone"
        for entry in reversed(entries):
            with contextlib.suppress(OSError):
                _undo(entry)
        logger.warning("could not finish the outputs of an interrupted run (%s); the previous ones are back", exc)
    for folder in {Path(e["path"]).parent for e in entries}:
        _fsync_dir(folder)
    if outcome == "finished":
        logger.warning("finished the outputs of an interrupted run (%s)", document["run_id"])
        if document["history"] and on_committed is not None:
            on_committed(document)
    _cleanup(entries)
    with contextlib.suppress(FileNotFoundError):
        journal.unlink()
    _fsync_dir(directory)
    return outcome


class OutputTransaction:
    """Stage files and removals, then make them all visible at once with :meth:`commit`.

    Use as a context manager with the workspace lock held: leaving the block without a commit
    deletes what was staged.

    Examples
    --------
    >>> folder = Path(tempfile.mkdtemp())
    >>> with OutputTransaction(folder, "run-1") as outputs:
    ...     outputs.write(folder / "a.json", "{}")
    ...     outputs.write(folder / "b.txt", "b")
    ...     outputs.commit()
    >>> sorted(p.name for p in folder.iterdir())
    ['a.json', 'b.txt']
    >>> shutil.rmtree(folder)
    """

    def __init__(self, directory: Path, run_id: str, history: bool = False) -> None:
        self.directory = directory
        self.run_id = run_id
        self.history = history
        self.entries: list[dict[str, Any]] = []
        self.committed = False

    def __enter__(self) -> OutputTransaction:
        self.directory.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, path: Path, text: str) -> None:
        """Stage ``text`` (UTF-8) as the next content of ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        refuse_folder(path)
        sweep_orphans([path])
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self.entries.append({"action": "write", "path": str(path), "staged": name, "backup": None})
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(name, new_file_mode(path))

    def remove(self, path: Path) -> None:
        """Stage the removal of ``path`` (nothing happens if it does not exist)."""
        refuse_folder(path)
        self.entries.append({"action": "remove", "path": str(path), "staged": None, "backup": None})

    def commit(self, on_committed: Callable[[], None] | None = None) -> None:
        """Make every staged change visible; on failure put the previous outputs back and raise.

        ``on_committed`` runs once the outputs are in place and before the journal is deleted,
        so a process killed in it has it run again by :func:`recover`.
        """
        for entry in self.entries:
            refuse_folder(Path(entry["path"]))
        try:
            for entry in self.entries:
                if _lexists(Path(entry["path"])):
                    entry["backup"] = _make_backup(Path(entry["path"]))
            journal = self.directory / JOURNAL
            document = {
                "format": JOURNAL_FORMAT,
                "version": JOURNAL_VERSION,
                "run_id": self.run_id,
                "history": self.history,
                "entries": self.entries,
            }
            atomic_write_text(journal, json.dumps(document, indent=1))
            _fsync_dir(self.directory)
        except BaseException:
            _cleanup(self.entries)
            raise
        applied: list[dict[str, Any]] = []
        try:
            for entry in self.entries:
                _apply(entry)
                applied.append(entry)
            for folder in {Path(e["path"]).parent for e in self.entries}:
                _fsync_dir(folder)
        except BaseException:
            try:
                for entry in reversed(applied):
                    _undo(entry)
            finally:
                _cleanup(self.entries)
                with contextlib.suppress(OSError):
                    journal.unlink()
            raise
        self.committed = True
        try:
            if on_committed is not None:
                on_committed()
        finally:
            _cleanup(self.entries)
            journal.unlink()
            _fsync_dir(self.directory)

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            for entry in self.entries:
                if entry["action"] == "write":
                    with contextlib.suppress(OSError):
                        Path(entry["staged"]).unlink()
