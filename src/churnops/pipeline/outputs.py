"""A run's outputs appear together or not at all.

The metrics JSON, the report, its stylesheet, the standalone report and ``trigger.txt`` are
several files, and a rename only replaces one at a time. So the outputs of a run are committed
through a small write-ahead journal:

1. every new file is written in full to a temporary file beside its target (and fsynced);
2. ``.outputs-commit.json`` lists the renames and removals, and is itself written atomically -
   from this instant the run counts as committed;
3. the renames and removals are done, then the journal is deleted.

A process killed before step 2 leaves the previous outputs untouched (its temporary files are
swept by the next run); killed during step 3, the next churnops command that reads the outputs
finishes the journal first (:func:`recover`). Either way the metrics, report and trigger that
anyone reads after :func:`recover` come from one run: ``trigger.txt`` exists exactly when the
metrics say drift.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path

from churnops.data.io import atomic_write_text
from churnops.errors import ChurnopsError
from churnops.pipeline.lock import workspace_lock

logger = logging.getLogger(__name__)

JOURNAL = ".outputs-commit.json"
LOCK = ".outputs.lock"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    if os.name == "nt":  # pragma: no cover - directories cannot be opened on Windows
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sweep_orphans(targets: list[Path]) -> int:
    """Remove temporary files (``.<name>.*.tmp``) that a killed run left beside ``targets``."""
    removed = 0
    for target in targets:
        if not target.parent.is_dir():
            continue
        for orphan in target.parent.glob(f".{target.name}.*.tmp"):
            with contextlib.suppress(OSError):
                orphan.unlink()
                removed += 1
    return removed


def _apply(entries: list[dict[str, str]]) -> None:
    for entry in entries:
        target = Path(entry["path"])
        if entry["action"] == "write":
            staged = Path(entry["staged"])
            if staged.exists():
                os.replace(staged, target)
            elif not target.exists():
                raise ChurnopsError(f"output commit: {staged} is gone and {target} was never written")
        else:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
    for directory in {Path(e["path"]).parent for e in entries}:
        _fsync_dir(directory)


def _recover_locked(directory: Path) -> bool:
    journal = directory / JOURNAL
    if not journal.exists():
        return False
    try:
        entries = json.loads(journal.read_text(encoding="utf-8"))["entries"]
    except (OSError, ValueError, KeyError) as exc:
        raise ChurnopsError(f"cannot read the output journal {journal}: {exc}") from None
    _apply(entries)
    journal.unlink()
    logger.warning("finished the outputs of an interrupted run (%s)", journal)
    return True


def recover(directory: Path) -> bool:
    """Finish an output commit that a killed process left half done. True if there was one."""
    if not (directory / JOURNAL).exists():
        return False
    with workspace_lock(directory / LOCK, timeout=600):
        return _recover_locked(directory)


class OutputTransaction:
    """Stage files and removals, then make them all visible at once with :meth:`commit`.

    Use as a context manager: leaving the block without a commit deletes what was staged.

    Examples
    --------
    >>> folder = Path(tempfile.mkdtemp())
    >>> with OutputTransaction(folder) as outputs:
    ...     outputs.write(folder / "a.json", "{}")
    ...     outputs.write(folder / "b.txt", "b")
    ...     outputs.commit()
    >>> sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    ['a.json', 'b.txt']
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.entries: list[dict[str, str]] = []
        self.committed = False

    def __enter__(self) -> OutputTransaction:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = workspace_lock(self.directory / LOCK, timeout=600)
        self._lock.__enter__()
        try:
            _recover_locked(self.directory)
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        return self

    def write(self, path: Path, text: str) -> None:
        """Stage ``text`` (UTF-8) as the next content of ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_orphans([path])
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        staged = Path(name)
        self.entries.append({"action": "write", "path": str(path), "staged": str(staged)})
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(staged, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())

    def remove(self, path: Path) -> None:
        """Stage the removal of ``path`` (nothing happens if it does not exist)."""
        self.entries.append({"action": "remove", "path": str(path)})

    def commit(self) -> None:
        journal = self.directory / JOURNAL
        atomic_write_text(journal, json.dumps({"entries": self.entries}, indent=1))
        _fsync_dir(self.directory)
        _apply(self.entries)
        journal.unlink()
        self.committed = True

    def __exit__(self, *exc: object) -> None:
        try:
            if not self.committed:
                for entry in self.entries:
                    if entry["action"] == "write":
                        with contextlib.suppress(OSError):
                            Path(entry["staged"]).unlink()
        finally:
            self._lock.__exit__(None, None, None)
