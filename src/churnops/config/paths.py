"""Where configured paths point: inside the project, and never onto each other.

A relative path is resolved against the project root and must stay inside it; an absolute path
is taken as given (it is the user's explicit choice). ``~`` is not expanded: in a configuration
file it looks relative while pointing elsewhere, so it is refused with a hint. For a file, the
folder is resolved (symbolic links followed) and the file name kept as written, so a link planted
at the file's own path is replaced or removed as a link, never followed to what it points at.

:func:`check_distinct` is the one check that no output collides with an input or another output.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from churnops.errors import ConfigError


def resolve_in(root: Path, path: str | Path, kind: str = "file") -> Path:
    """``path`` resolved against ``root``; relative paths must stay inside ``root``.

    ``kind`` is ``"file"`` (the last component is kept as written) or ``"dir"`` (resolved too).

    >>> resolve_in(Path("/project"), "data/churn.csv")
    PosixPath('/project/data/churn.csv')
    >>> resolve_in(Path("/project"), "/srv/batches/b.csv")
    PosixPath('/srv/batches/b.csv')
    """
    text = str(path)
    if not text.strip():
        raise ConfigError("an empty path")
    if "\x00" in text:
        raise ConfigError(f"path {text!r} holds a NUL character")
    if text.startswith("~"):
        raise ConfigError(f"path '{text}' starts with '~', which churnops does not expand; give the absolute path")
    candidate = Path(text)
    absolute = candidate.is_absolute()
    base = candidate if absolute else root / candidate
    if kind == "file":
        if base.name in ("", ".", ".."):
            raise ConfigError(f"path '{text}' does not name a file")
        resolved = base.parent.resolve() / base.name
    else:
        resolved = base.resolve()
    if absolute:
        return Path(os.path.normpath(resolved))
    real_root = root.resolve()
    if resolved != real_root and real_root not in resolved.parents:
        raise ConfigError(f"path '{text}' leaves the project folder {real_root}; give an absolute path to allow it")
    return resolved


def check_distinct(outputs: Mapping[str, Path], inputs: Mapping[str, Path] | None = None) -> None:
    """Raise :class:`ConfigError` when two outputs are the same file, or an output is an input.

    ``outputs`` and ``inputs`` map a name the user recognises (a configuration key or a flag) to
    a resolved path.

    >>> check_distinct({"paths.trigger": Path("/p/data/churn.csv")}, {"paths.reference": Path("/p/data/churn.csv")})
    Traceback (most recent call last):
    ...
    churnops.errors.ConfigError: paths.trigger is the same file as paths.reference (/p/data/churn.csv): ...
    """
    seen: dict[str, str] = {}
    for name, path in (inputs or {}).items():
        for key in _identities(path, follow=True):
            seen.setdefault(key, name)
    for name, path in outputs.items():
        parts = Path(os.path.abspath(path)).parts
        # the folders as written and where their links lead (dd -> .dvc: dd/config.local is in .dvc)
        folders = [*parts[:-1], *Path(os.path.realpath(os.path.dirname(os.path.abspath(path)))).parts]
        guarded = next((part for part in folders if part.lower() in GUARDED_FOLDERS), None)
        if guarded is not None:
            raise ConfigError(f"{name} ({path}) is inside a {guarded} folder, which churnops never writes to")
        if parts and (parts[-1].lower() in KEPT_FILES or parts[-1].lower().endswith(".dvc")):  # (any case: macOS)
            raise ConfigError(
                f"{name} ({path}) names a file git, DVC or your configuration keep ({parts[-1]}), which churnops "
                "never writes as an output: choose another path"
            )
        keys = _identities(path, follow=False)
        other = next((seen[key] for key in keys if key in seen and seen[key] != name), None)
        if other is not None:
            kind = "an input" if other in (inputs or {}) else "another output"
            raise ConfigError(
                f"{name} is the same file as {other} ({path}): churnops would overwrite or remove {kind}; "
                "choose another path"
            )
        for key in keys:
            seen[key] = name


GUARDED_FOLDERS = (".git", ".dvc", ".hg", ".svn")
"""Version-control folders: no output may be written inside them."""

KEPT_FILES = frozenset(
    {
        "dvc.lock",
        "dvc.yaml",
        "params.yaml",
        ".gitignore",
        ".dvcignore",
        ".gitattributes",
        ".gitmodules",
        "churnops.toml",
        ".git",
    }
)
"""Files of the project's own that no output may be (a batch's ``.dvc`` record too): an export
written over ``bank_churn_prod.csv.dvc`` erased the batch's version."""


def _identities(path: Path, follow: bool) -> set[str]:
    """Every name under which ``path`` is one file: as written, its inode (a hard link to an input
    is the input), and - for an input (``follow``) - the file its symbolic links lead to. An
    output that is itself a symbolic link is replaced, never followed, so its target is not it."""
    keys = {os.path.abspath(path)}
    if follow:
        keys.add(os.path.realpath(path))
    else:  # the folders on the way are followed; the last name is what gets replaced
        keys.add(os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(path))), os.path.basename(path)))
    try:
        info = os.stat(path) if follow else os.lstat(path)
    except OSError:
        return keys
    if follow or not os.path.islink(path):
        keys.add(f"inode:{info.st_dev}:{info.st_ino}")
    return keys


CREDENTIALS_IN_PATH = r"(?:^|/)[^/@:]+:[^@]*@"
"""``user:password@`` in a path (the password may hold ``/`` or ``@``): a location with a
password, never a local file churnops reads or writes."""


def refuse_credentials(path: Path | str, what: str) -> None:
    """Refuse a path that holds ``user:password@``, the password hidden."""
    import re

    from churnops.errors import ConfigError

    text = str(path)
    if re.search(CREDENTIALS_IN_PATH, text):
        from churnops.redact import redact

        shown = re.sub(r"[^/@:]+:[^@]*@", "***@", redact(text))
        raise ConfigError(
            f"{what} ({shown}) reads like a location with a password (user:password@host), not a local file: "
            "give a local path"
        )
