"""The few git operations DVC versioning needs, through the git command line."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from churnops.errors import IntegrationError


def _git() -> str:
    git = shutil.which("git")
    if git is None:
        raise IntegrationError("git is not installed: install git to version batches")
    return git


def run_git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run git in ``root``; a failure becomes an :class:`IntegrationError` with git's first line."""
    done = subprocess.run(
        [_git(), *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    if check and done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise IntegrationError(f"git {args[0]} failed: {message[-1] if message else done.returncode}")
    return done


def repository_root(path: Path) -> Path | None:
    """The top folder of the git repository holding ``path``, or None outside one."""
    done = run_git(path, "rev-parse", "--show-toplevel", check=False)
    return Path(done.stdout.strip()) if done.returncode == 0 else None


def require_repository(path: Path) -> Path:
    root = repository_root(path)
    if root is None:
        done = run_git(path, "rev-parse", "--show-toplevel", check=False)
        if "dubious ownership" in done.stderr:
            raise IntegrationError(
                f"git refuses the repository in {path}: it belongs to another user than this process; add it to "
                f"git's safe directories ('git config --global --add safe.directory {path}') or change its owner"
            )
        raise IntegrationError(
            f"{path} is not inside a git repository: run 'git init' there first (DVC versions data through git commits)"
        )
    return root


def require_identity(root: Path) -> None:
    """git commits need a name and an e-mail; say how to set them when they are missing."""
    for key in ("user.name", "user.email"):
        if not run_git(root, "config", key, check=False).stdout.strip():
            raise IntegrationError(
                f"git has no {key}: run 'git config {key} \"...\"' in {root} (or --global) before versioning"
            )


def head(root: Path) -> str | None:
    done = run_git(root, "rev-parse", "--verify", "--quiet", "HEAD", check=False)
    return done.stdout.strip() or None


def staged_changes(root: Path) -> bool:
    return run_git(root, "diff", "--cached", "--quiet", check=False).returncode != 0


def ignored(root: Path, *paths: str) -> set[str]:
    """Those of ``paths`` (relative to ``root``) that git ignores and does not track."""
    if not paths:
        return set()
    done = run_git(root, "check-ignore", "--", *paths, check=False)
    return {line for line in done.stdout.splitlines() if line}


def read_blobs(root: Path, objects: list[str]) -> list[str | None]:
    """The text of each ``REV:PATH`` in ``objects`` (None where it does not exist), in one git call."""
    if not objects:
        return []
    done = subprocess.run(
        [_git(), "cat-file", "--batch"],
        cwd=root,
        input="".join(name + "\n" for name in objects).encode(),
        capture_output=True,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    if done.returncode != 0:
        raise IntegrationError(f"git cat-file failed: {done.stderr.decode(errors='replace').strip()}")
    out, position, texts = done.stdout, 0, []
    for _ in objects:
        end = out.find(b"\n", position)
        line, position = out[position:end], end + 1
        if end < 0:
            raise IntegrationError("git cat-file gave a truncated answer")
        if line.endswith((b" missing", b" ambiguous")):
            texts.append(None)
            continue
        try:
            _, kind, size_text = line.split()
            size = int(size_text)
        except ValueError:
            raise IntegrationError(f"git cat-file gave an unexpected answer: {line[:200]!r}") from None
        texts.append(out[position : position + size].decode("utf-8", errors="replace") if kind == b"blob" else None)
        position += size + 1
    return texts


def ensure_ignored(root: Path, pattern: str) -> bool:
    """Add ``pattern`` to the repository's .gitignore unless it is there; True when added."""
    from churnops.data.files import append_text

    gitignore = root / ".gitignore"
    if gitignore.is_symlink():
        raise IntegrationError(f"{gitignore}: is a symbolic link; churnops does not write through links - remove it")
    lines = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.exists() else []
    if pattern in lines:
        return False
    text = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    append_text(gitignore, ("\n" if text and not text.endswith("\n") else "") + pattern + "\n")
    return True
