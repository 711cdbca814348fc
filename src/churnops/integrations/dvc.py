"""DVC versioning of production batches (seed phase 4), through DVC's command line.

Every DVC call runs ``python -m dvc`` of this environment with ``DVC_NO_ANALYTICS=1``, in the
git repository that holds the batch. A version is a git commit of the batch's ``.dvc`` file (and
its metadata sidecar) whose message carries the run's facts as trailers::

    churnops-run-id: 20261127T063222Z-9090f205
    churnops-drift-score: 0.1875
    churnops-rows: 10000
    churnops-sha256: 1b5753cd...

so ``churnops versions list`` reads the history back from git alone.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnops.data.io import atomic_path
from churnops.errors import IntegrationError, MissingDependencyError
from churnops.integrations.git import (
    ensure_ignored,
    head,
    require_identity,
    require_repository,
    run_git,
    staged_changes,
)

TRAILER = "churnops-"


def _check_installed() -> None:
    try:
        import dvc  # noqa: F401
    except ImportError:
        raise MissingDependencyError("dvc", "dvc") from None


def run_dvc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``dvc ARGS`` in ``root``; a failure raises :class:`IntegrationError` with DVC's message."""
    _check_installed()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_TERMINAL_PROMPT": "0"}
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines
        detail = errors[0].removeprefix("ERROR:").strip() if errors else f"exit code {done.returncode}"
        raise IntegrationError(f"dvc {args[0]} failed: {detail}")
    return done


@dataclass(frozen=True)
class SetupOutcome:
    root: Path
    initialized: bool
    remote_name: str
    remote_url: str
    committed: str | None


def is_initialized(root: Path) -> bool:
    return (root / ".dvc" / "config").is_file()


def setup(project: Path, remote_name: str, remote_url: str, commit: bool = True) -> SetupOutcome:
    """``dvc init`` (once) and a default remote; idempotent.

    A remote given as a relative path is relative to ``project`` and kept out of git.
    """
    root = require_repository(project)
    initialized = False
    if not is_initialized(root):
        run_dvc(root, "init")
        initialized = True
    url = remote_url
    if "://" not in remote_url and not Path(remote_url).is_absolute():
        local = (project / remote_url).resolve()
        local.mkdir(parents=True, exist_ok=True)
        url = os.path.relpath(local, root)
        if root in local.parents:
            ensure_ignored(root, "/" + local.relative_to(root).as_posix() + "/")
            run_git(root, "add", ".gitignore")
    existing = run_dvc(root, "remote", "list").stdout
    names = [line.split()[0] for line in existing.splitlines() if line.strip()]
    if remote_name in names:
        run_dvc(root, "remote", "modify", remote_name, "url", url)
        run_dvc(root, "remote", "default", remote_name)
    else:
        run_dvc(root, "remote", "add", "--default", remote_name, url)
    run_git(root, "add", ".dvc/config", ".dvcignore", check=False)
    committed = None
    if commit and staged_changes(root):
        require_identity(root)
        run_git(root, "commit", "--quiet", "-m", f"churnops: DVC setup (default remote {remote_name})")
        committed = head(root)
    return SetupOutcome(root, initialized, remote_name, remote_url, committed)


@dataclass(frozen=True)
class VersionOutcome:
    changed: bool
    commit: str | None
    pushed: bool
    dvc_file: Path
    message: str


def version_batch(
    project: Path,
    batch: Path,
    facts: dict[str, Any],
    sidecar: Path | None = None,
    push: bool = True,
) -> VersionOutcome:
    """``dvc add`` the batch, commit its ``.dvc`` file with the facts as trailers, ``dvc push``.

    An unchanged batch (same content as the last version) makes no new commit.
    """
    root = require_repository(project)
    require_identity(root)
    if not is_initialized(root):
        raise IntegrationError(f"DVC is not set up in {root}: run 'churnops dvc-setup' first")
    if not batch.is_file():
        raise IntegrationError(f"{batch}: no batch to version")
    batch = batch.resolve()
    if root not in batch.parents:
        raise IntegrationError(f"{batch} is outside the git repository {root}: DVC can only version files inside it")
    run_dvc(root, "add", str(batch.relative_to(root)))
    dvc_file = batch.with_name(batch.name + ".dvc")
    paths = [dvc_file, batch.parent / ".gitignore"]
    run_git(root, "add", "--", *(str(p.relative_to(root)) for p in paths if p.exists()))
    if not staged_changes(root):
        return VersionOutcome(False, head(root), _push(root, push), dvc_file, "batch unchanged: no new version")
    if sidecar is not None and sidecar.is_file():
        run_git(root, "add", "--", str(sidecar.resolve().relative_to(root)))
    score = facts.get("drift_score")
    summary = f"churnops: version production batch {batch.name}"
    if isinstance(score, float):
        summary += f" (drift score {score:.3f})"
    trailers = "\n".join(f"{TRAILER}{key.replace('_', '-')}: {value}" for key, value in facts.items())
    run_git(root, "commit", "--quiet", "-m", summary, "-m", trailers)
    commit = head(root)
    return VersionOutcome(True, commit, _push(root, push), dvc_file, f"committed {commit[:10] if commit else ''}")


def _push(root: Path, push: bool) -> bool:
    if not push:
        return False
    run_dvc(root, "push")  # not --quiet: it hides the error message too
    return True


@dataclass(frozen=True)
class BatchVersion:
    commit: str
    date: str
    facts: dict[str, str]
    subject: str

    def to_dict(self) -> dict[str, Any]:
        return {"commit": self.commit, "date": self.date, "subject": self.subject, **self.facts}


def list_versions(project: Path, batch: Path) -> list[BatchVersion]:
    """Every commit that changed the batch's ``.dvc`` file, newest first, with its trailers."""
    root = require_repository(project)
    dvc_file = batch.resolve().with_name(batch.name + ".dvc")
    done = run_git(
        root, "log", "--format=%H%x1f%cI%x1f%s%x1f%b%x1e", "--", str(dvc_file.relative_to(root)), check=False
    )
    versions = []
    for record in done.stdout.split("\x1e"):
        if not record.strip():
            continue
        commit, when, subject, body = (record.strip("\n").split("\x1f") + ["", "", "", ""])[:4]
        facts = {}
        for line in body.splitlines():
            if line.startswith(TRAILER) and ":" in line:
                key, value = line[len(TRAILER) :].split(":", 1)
                facts[key.replace("-", "_")] = value.strip()
        versions.append(BatchVersion(commit.strip(), when, facts, subject))
    return versions


def restore_version(project: Path, batch: Path, revision: str, output: Path | None = None) -> tuple[Path, str]:
    """Bring the batch as of ``revision`` back (from the DVC cache, else the remote).

    Git's working tree is not touched: the bytes are written to ``output`` (default: the batch
    path itself), atomically. Returns the path and the sha256 of what was written.
    """
    _check_installed()
    root = require_repository(project)
    resolved = run_git(root, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}", check=False)
    if resolved.returncode != 0:
        raise IntegrationError(f"unknown revision '{revision}' (see 'churnops versions list')")
    relative = batch.resolve().relative_to(root)
    import dvc.api

    target = output or batch
    digest = hashlib.sha256()
    try:
        source = dvc.api.open(str(relative), repo=str(root), rev=resolved.stdout.strip(), mode="rb")
        with source as reader, atomic_path(target) as tmp, tmp.open("wb") as handle:
            while block := reader.read(1 << 20):
                digest.update(block)
                handle.write(block)
    except IntegrationError:
        raise
    except Exception as exc:  # DVC raises many types: path missing at that revision, remote down...
        raise IntegrationError(f"cannot restore {relative} at {revision}: {type(exc).__name__}: {exc}") from None
    return target, digest.hexdigest()
