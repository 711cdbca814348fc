"""The few git operations DVC versioning needs, through the git command line.

A workspace's ``.git`` folder may come from someone else (a copied project, an unpacked archive):
its hooks, its ``.git/config`` and the ``.gitattributes`` beside the files can each name a program
for git to run. churnops' own git calls never run one: the settings below are given on git's
command line, which outranks every configuration file, and the filter drivers a repository
defines for itself are switched off (see :func:`refuse_repository_filters` for the files churnops
stages). Drivers from your own global or system configuration (``git lfs install``) still run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from churnops.errors import IntegrationError

# Each names a program git would otherwise take from the repository's configuration, or
# (gc.auto, maintenance.auto) starts work nobody asked for in the middle of a nightly run
SAFE_SETTINGS = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.pager=cat",
    "core.editor=:",
    "core.sshCommand=false",
    "core.askPass=",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "log.showSignature=false",
    "gc.auto=0",
    "maintenance.auto=false",
)
# Commands that compare contents: never through an external diff program or a textconv filter
_NO_DIFF_PROGRAMS = {"diff": ("--no-ext-diff", "--no-textconv"), "log": ("--no-ext-diff", "--no-textconv")}
# What the repository itself may configure; global, system and command-line settings are yours
_REPOSITORY_SCOPES = ("local", "worktree")
# The environment git would read a program or another repository from instead of its config
_DROPPED_ENVIRONMENT = ("GIT_EXTERNAL_DIFF", "GIT_PAGER", "GIT_EDITOR", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS")
# ... or another repository, working folder or index than the workspace's own
_REDIRECTING_ENVIRONMENT = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY")


def _git() -> str:
    git = shutil.which("git")
    if git is None:
        raise IntegrationError("git is not installed: install git to version batches")
    return git


def _environment() -> dict[str, str]:
    dropped = (*_DROPPED_ENVIRONMENT, *_REDIRECTING_ENVIRONMENT)
    environment = {key: value for key, value in os.environ.items() if key not in dropped}
    return {**environment, "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "GIT_EDITOR": ":"}


def _settings(options: Iterable[str]) -> list[str]:
    return [argument for option in options for argument in ("-c", option)]


def repository_filters(root: Path) -> set[str]:
    """The names of the filter drivers (clean, smudge, process) defined by the repository's own
    configuration (``.git/config``, its worktree configuration or a file either includes)."""
    done = subprocess.run(
        [
            _git(),
            *_settings(SAFE_SETTINGS),
            "config",
            "--show-scope",
            "--get-regexp",
            r"^filter\..*\.(clean|smudge|process)$",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        env=_environment(),
    )
    names = set()
    for line in done.stdout.splitlines():
        scope, _, rest = line.partition("\t")
        key = rest.split(" ", 1)[0]
        if scope in _REPOSITORY_SCOPES and key.startswith("filter."):
            names.add(key[len("filter.") :].rsplit(".", 1)[0])
    return names


def _safe_command(root: Path, args: tuple[str, ...]) -> list[str]:
    """git's command line for ``args`` with :data:`SAFE_SETTINGS`, the repository's own filter
    drivers switched off, and no external diff or textconv program for diff and log."""
    neutral = [
        f"filter.{name}.{key}={value}"
        for name in sorted(repository_filters(root))
        for key, value in (("clean", ""), ("smudge", ""), ("process", ""), ("required", "false"))
    ]
    arguments = list(args)
    position = 0
    while position < len(arguments) - 1 and arguments[position] == "-c":
        position += 2
    if position < len(arguments) and arguments[position] in _NO_DIFF_PROGRAMS:
        arguments[position + 1 : position + 1] = _NO_DIFF_PROGRAMS[arguments[position]]
    return [_git(), *_settings((*SAFE_SETTINGS, *neutral)), *arguments]


def run_git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run git in ``root`` (never a program the repository configures: :data:`SAFE_SETTINGS`);
    a failure becomes an :class:`IntegrationError` with git's first line."""
    done = subprocess.run(_safe_command(root, args), cwd=root, capture_output=True, text=True, env=_environment())
    if check and done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise IntegrationError(f"git {args[0]} failed: {message[-1] if message else done.returncode}")
    return done


def refuse_repository_filters(root: Path, paths: Iterable[str]) -> None:
    """Refuse, before git or DVC stages ``paths`` (relative to ``root``), any of them that
    ``.gitattributes`` hands to a filter driver the repository defines for itself.

    git would run that driver's program to store the file; switched off, the file would be
    committed unfiltered (an LFS pointer file stored whole) without a word - so churnops stops
    and says what to change. A driver from your own configuration (``git lfs install``) is fine.
    """
    paths = list(paths)
    own = repository_filters(root)
    if not paths or not own:
        return
    done = run_git(root, "check-attr", "filter", "--", *paths, check=False)
    for line in done.stdout.splitlines():
        path, _, rest = line.rpartition(": filter: ")
        if rest in own:
            raise IntegrationError(
                f"{path}: .gitattributes gives this file to the git filter '{rest}', whose program is set in "
                f"the repository's own configuration ({root / '.git' / 'config'}); churnops does not run programs "
                f"a repository names for itself - remove the filter.{rest} settings from it (set them in your "
                f"global git configuration if you use that filter, as 'git lfs install' does) or the file's "
                "line in .gitattributes"
            )


def add(root: Path, *paths: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``git add -- PATHS``, after :func:`refuse_repository_filters`."""
    refuse_repository_filters(root, paths)
    return run_git(root, "add", "--", *paths, check=check)


def repository_root(path: Path) -> Path | None:
    """The top folder of the git repository holding ``path``, or None outside one.

    That folder is the one holding ``.git``: a repository whose own configuration moves its
    working folder elsewhere (``core.worktree``) is refused, since churnops would otherwise
    stage, commit and remove files of another folder than the workspace.
    """
    done = run_git(
        path, "rev-parse", "--absolute-git-dir", "--show-toplevel", "--path-format=absolute", "--git-common-dir",
        check=False,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    if done.returncode != 0 or len(lines) < 3:
        return None
    git_dir, top, common = Path(lines[0]), Path(lines[1]), Path(lines[2])
    marker = top / ".git"
    if not _same(common, git_dir) and not (marker.is_file() and _linked_worktree(git_dir, common, top)):
        raise IntegrationError(
            f"the git repository of {top} ({git_dir}) keeps its branches and objects in another repository, "
            f"{common} (a 'commondir' file): churnops does not commit into another repository - remove "
            f"{git_dir / 'commondir'}, or use 'git worktree add' for a second working folder"
        )
    if marker.is_file() and not marker.is_symlink() and _holds(top, git_dir) and not _claims(git_dir, top):
        raise IntegrationError(
            f"{marker} points to the git repository {git_dir}, which does not name {top} as one of its working "
            "folders (a linked worktree or a submodule would): churnops does not commit into another repository - "
            "replace the .git file by the repository's own folder ('git init')"
        )
    if not _holds(top, git_dir) or not _inside(path, top):
        raise IntegrationError(
            f"the git repository of {path} ({git_dir}) names {top} as its working folder (core.worktree in its "
            "config): churnops only versions files of the folder that holds .git - remove core.worktree "
            f"('git --git-dir {git_dir} config --unset core.worktree')"
        )
    return top


def _same(one: Path, other: Path) -> bool:
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False


def _linked_worktree(git_dir: Path, common: Path, top: Path) -> bool:
    """Whether ``git_dir`` is a linked worktree's folder of the repository at ``common``: inside
    its ``worktrees`` folder, and naming ``top/.git`` back."""
    return _same(git_dir.parent, common / "worktrees") and _claims(git_dir, top)


def _holds(top: Path, git_dir: Path) -> bool:
    """Whether ``top/.git`` is ``git_dir``: the folder itself, or a file pointing to it (a linked
    worktree or a submodule)."""
    marker = top / ".git"
    try:
        if marker.is_dir() and not marker.is_symlink():
            return os.path.samefile(marker, git_dir)
        if marker.is_file() and not marker.is_symlink():
            first = marker.read_text(encoding="utf-8", errors="replace").splitlines()[:1]
            if first and first[0].startswith("gitdir:"):
                pointed = Path(first[0][len("gitdir:") :].strip())
                return os.path.samefile(pointed if pointed.is_absolute() else top / pointed, git_dir)
    except OSError:
        return False
    return False


def _claims(git_dir: Path, top: Path) -> bool:
    """Whether the repository at ``git_dir``, reached through ``top/.git`` (a file), names ``top``
    as a working folder of its own: a linked worktree (its ``gitdir`` file names ``top/.git``) or a
    submodule (its ``core.worktree`` is ``top``)."""
    try:
        back = git_dir / "gitdir"
        if back.is_file() and not back.is_symlink():
            named = Path(back.read_text(encoding="utf-8", errors="replace").strip())
            if os.path.samefile(named if named.is_absolute() else git_dir / named, top / ".git"):
                return True
        config = git_dir / "config"
        if config.is_file() and not config.is_symlink():
            done = subprocess.run(
                [_git(), "config", "--file", str(config), "--get", "core.worktree"],
                capture_output=True,
                text=True,
                env=_environment(),
            )
            named = Path(done.stdout.strip())
            if done.returncode == 0 and done.stdout.strip():
                return os.path.samefile(named if named.is_absolute() else git_dir / named, top)
    except OSError:
        return False
    return False


def _inside(path: Path, top: Path) -> bool:
    try:
        return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(top))
    except OSError:
        return False


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
        _safe_command(root, ("cat-file", "--batch")),
        cwd=root,
        input="".join(name + "\n" for name in objects).encode(),
        capture_output=True,
        env=_environment(),
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
