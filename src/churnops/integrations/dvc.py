"""DVC versioning of production batches (seed phase 4), through DVC.

Setting DVC up runs ``python -m dvc`` of this environment with ``DVC_NO_ANALYTICS=1``, in the
git repository that holds the batch; versioning a batch - the nightly step - calls DVC's Python
API in this process (``Repo.add``, ``Repo.commit``, ``Repo.push``): starting DVC's command line
three times cost two seconds, more than the whole monitoring. DVC knows the batch in one of two ways, and a version is a
git commit of the file where DVC records its hash:

* its own ``.dvc`` file (``dvc add``, the seed's phase 4) - the commit holds that file;
* an output of a ``dvc.yaml`` stage (this repository's ``generate`` stage) - DVC refuses to
  ``dvc add`` a stage's output, so the stage records it: ``dvc commit`` writes the hash into
  ``dvc.lock``, and the commit holds ``dvc.lock`` with ``dvc.yaml`` and the stage's params file.

The commit (with the batch's metadata sidecar, unless git ignores it) carries the run's facts as
trailers::

    churnops-run-id: 20261127T063222Z-9090f205
    churnops-drift-score: 0.1875
    churnops-rows: 10000
    churnops-sha256: 1b5753cd...

so ``churnops versions list`` reads the history back from git alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from churnops.data.io import atomic_path
from churnops.errors import IntegrationError, MissingDependencyError
from churnops.escape import one_line, prose_line
from churnops.integrations.git import (
    add,
    ensure_ignored,
    head,
    ignored,
    read_blobs,
    refuse_repository_filters,
    require_identity,
    require_repository,
    run_git,
)
from churnops.redact import redact

TRAILER = "churnops-"
# DVC's own git library (dulwich) runs the filter programs of .gitattributes when it stages a
# file, which .dvc/config's core.autostage asks of every dvc add and dvc commit: churnops stages
# the version's files itself, through git with its programs switched off (integrations/git.py)
_NO_AUTOSTAGE = {"core": {"autostage": False}}
logger = logging.getLogger(__name__)

RUNS_PROGRAMS = {
    "configpath": "an AWS configuration file, whose credential_process is a program the S3 library runs",
    "credentialpath": "a credentials file, which can name a program to run for credentials",
    "bearer_token_command": "a command DVC runs for a WebDAV token",
    "plugins_path": "Python plugins DVC imports",
    "config_module": "a Python module DVC imports",
    "config_dir": "Hydra configuration DVC composes, whose plugins it imports",
    "startup_script": "a script a DVC machine runs",
    "setup_script": "a script a DVC machine runs",
}
"""Settings of a DVC configuration that make DVC, or a library it calls, run a program or import
code named by a file: refused in the repository's own configuration (``.dvc/config``, committed,
and ``.dvc/config.local``), which whoever can commit to the repository writes. Set them in the
job's environment (``AWS_CONFIG_FILE``...) or the user's own DVC configuration instead."""

CONFIG_FILES = (".dvc/config", ".dvc/config.local")


def check_config(texts: dict[str, str | None]) -> None:
    """Refuse a repository DVC configuration (``texts``: each file's name and text, None when
    absent) that names a program or code to run (:data:`RUNS_PROGRAMS`), in any section.

    >>> check_config({".dvc/config": "[s3]\\n    url = s3://b/x\\n    endpointurl = http://h\\n"})
    >>> try:
    ...     check_config({".dvc/config": "[s3]\\n    url = s3://b/x\\n    ConfigPath = ../aws\\n"})
    ... except IntegrationError as exc:
    ...     print(str(exc)[:41])
    .dvc/config: s3 sets configpath (an AWS c
    """
    from configobj import ConfigObj, ConfigObjError

    for name, text in texts.items():
        if text is None:
            continue
        try:
            parsed = ConfigObj(text.splitlines(), interpolation=False).dict()
        except (ConfigObjError, SyntaxError, ValueError) as exc:
            raise IntegrationError(f"{name}: DVC cannot read it: {redact(one_line(exc))[:200]}") from None
        pending: list[tuple[str, Any]] = [("", parsed)]
        while pending:
            where, section = pending.pop()
            for key, value in section.items():
                if isinstance(value, dict):
                    pending.append((f"{where} {key}".strip(), value))
                elif str(key).strip().lower() in RUNS_PROGRAMS:
                    option = str(key).strip().lower()
                    raise IntegrationError(
                        f"{name}: {one_line(where) or 'the top level'} sets {option} ({RUNS_PROGRAMS[option]}): "
                        "churnops runs no program a repository's files name - set it in the job's environment "
                        "(AWS_CONFIG_FILE, ...) or your own DVC configuration (dvc config --global), not in the "
                        "repository"
                    )


def _config_names(listing: str) -> list[str]:
    """The DVC configuration files of a NUL-separated list of repository paths: the project's own
    (:data:`CONFIG_FILES`, listed or not) and every sub-repository's (``data/.dvc/config``), which
    DVC opens when it reads a path inside one."""
    found = [n for n in listing.split("\0") if n.rsplit("/", 2)[-2:] in ([".dvc", "config"], [".dvc", "config.local"])]
    return list(dict.fromkeys([*CONFIG_FILES, *found]))


def _working_config(root: Path) -> dict[str, str | None]:
    """The repository's DVC configuration files as they are on disk (None where absent): the
    project's own, and every sub-repository's that git tracks."""
    tracked = run_git(root, "ls-files", "-z", "--", "*.dvc/config", "*.dvc/config.local", check=False).stdout
    texts: dict[str, str | None] = {}
    for name in _config_names(tracked):
        path = root / name
        try:
            texts[name] = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
        except OSError as exc:
            raise IntegrationError(f"{name}: cannot read it: {exc.strerror}") from None
    return texts


def _config_at(root: Path, commit: str, revision: str) -> dict[str, str | None]:
    """Every DVC configuration file of ``commit`` (the project's and its sub-repositories'), named
    with the ``revision`` the user gave."""
    names = _config_names(run_git(root, "ls-tree", "-r", "-z", "--name-only", commit, check=False).stdout)
    texts = read_blobs(root, [f"{commit}:{name}" for name in names])
    return {f"{name} (at {revision})": text for name, text in zip(names, texts, strict=True)}


def _open_repo(root: Path) -> Any:
    """DVC's repository at ``root``, once its configuration is checked (:func:`check_config`)."""
    from dvc.repo import Repo

    check_config(_working_config(root))
    return Repo(str(root), config=_NO_AUTOSTAGE)


class _Keep(logging.Handler):
    """Keeps the log records of DVC and its libraries (``dvc_data``, ``dvc_objects``...)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.said: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.said.append(record.getMessage())


class _NoStatus:
    """Stands in for DVC's spinner (``ui.status``), which draws on a terminal's stderr."""

    def __enter__(self) -> _NoStatus:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None


@contextlib.contextmanager
def _quiet_dvc(what: str) -> Iterator[None]:
    """Nothing of DVC's own on the terminal while it runs in this process - no log line, no
    spinner, no progress bar (its messages, redacted, are shown with -v) - and no password
    prompt."""
    from dvc.ui import ui

    keep = _Keep()
    # DVC and its libraries log to "dvc", "dvc_data", "dvc_objects"... and to the root logger:
    # every logger but churnops' own gets only the keeping handler while DVC runs
    names = ["", *(name for name in logging.root.manager.loggerDict if not name.startswith("churnops"))]
    saved = {}
    for name in names:
        log = logging.getLogger(name)
        saved[name] = (log.level, log.handlers[:], log.propagate)
        log.handlers = [keep] if name in ("", "dvc") else []
        log.propagate = name not in ("", "dvc")
    logging.getLogger("dvc").setLevel(logging.WARNING)  # above INFO: DVC draws no progress bar
    logging.root.setLevel(logging.WARNING)
    prompt = os.environ.get("GIT_TERMINAL_PROMPT")
    os.environ["GIT_TERMINAL_PROMPT"] = "0"  # never wait for a password nobody will type
    ui.status = lambda *args, **kwargs: _NoStatus()  # type: ignore[method-assign]
    try:
        yield
    finally:
        with contextlib.suppress(AttributeError):
            del ui.status
        for name, (level, handlers, propagate) in saved.items():
            log = logging.getLogger(name)
            log.setLevel(level)
            log.handlers, log.propagate = handlers, propagate
        if prompt is None:
            os.environ.pop("GIT_TERMINAL_PROMPT", None)
        else:
            os.environ["GIT_TERMINAL_PROMPT"] = prompt
        for message in keep.said:
            logger.debug("dvc %s: %s", what, redact(one_line(message.strip())))


@contextlib.contextmanager
def _dvc_in_process(root: Path, what: str) -> Iterator[Any]:
    """DVC's repository at ``root``, quiet (:func:`_quiet_dvc`); any failure becomes one line,
    ``dvc WHAT failed: ...``, with secrets redacted."""
    _check_installed()
    from dvc.exceptions import DvcException

    started_in = os.getcwd()
    try:
        # DVC places a stage's working folder at the current one: work from the repository's
        # root, as the command does, whatever folder a Python caller is in
        os.chdir(root)
        with _quiet_dvc(what), _open_repo(root) as repo:
            yield repo
    except IntegrationError:
        raise
    except DvcException as exc:
        cause = f" ({exc.__cause__})" if exc.__cause__ and str(exc.__cause__) not in str(exc) else ""
        raise IntegrationError(f"dvc {what} failed: {redact(prose_line(exc))}{redact(prose_line(cause))}") from None
    except OSError as exc:  # a remote or cache DVC cannot write: the system's words
        raise IntegrationError(f"dvc {what} failed: {redact(prose_line(exc))}") from None
    except Exception as exc:  # DVC's command line says the same of anything else: unexpected error
        detail = f"{type(exc).__name__}: {redact(prose_line(exc))}"
        raise IntegrationError(f"dvc {what} failed: unexpected error - {detail}") from None
    finally:
        os.chdir(started_in)


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


def gitignore_literal(path: str) -> str:
    r"""``path`` as a .gitignore pattern that matches it alone: git reads ``[1]``, ``*`` and ``?``
    as wildcards, and drops a trailing blank.

    >>> print(gitignore_literal("mon[1]/.model.lock"), gitignore_literal("ci out/a*b? "), sep=" | ")
    mon\[1\]/.model.lock | ci out/a\*b\?\ 
    """
    escaped = re.sub(r"([\\*?\[\]])", r"\\\1", path)
    return escaped[:-1] + "\\ " if escaped.endswith(" ") else escaped


def setup(
    project: Path,
    remote_name: str,
    remote_url: str,
    commit: bool = True,
    options: dict[str, str] | None = None,
    lock_files: Sequence[Path] = (),
) -> SetupOutcome:
    """``dvc init`` (once) and a default remote; idempotent.

    A remote given as a relative path is relative to ``project`` and kept out of git. ``options``
    are the remote's settings written beside its URL (an S3-compatible server's ``endpointurl``,
    ``region``): never credentials, which DVC takes from the provider's standard chain. The runs'
    ``lock_files`` are kept out of git too, when inside the repository.
    """
    root = require_repository(project)
    initialized = False
    if not is_initialized(root):
        # dvc init stages what it writes with its own git library, which runs the filter
        # programs .gitattributes names: refuse those the repository defines for itself first
        refuse_repository_filters(root, [".dvc/config", ".dvc/.gitignore", ".dvcignore"])
        run_dvc(root, "init")
        initialized = True
    url = remote_url
    if "://" not in remote_url and not Path(remote_url).is_absolute():
        local = (project / remote_url).resolve()
        local.mkdir(parents=True, exist_ok=True)
        url = os.path.relpath(local, root)
        if root in local.parents:
            ensure_ignored(root, "/" + gitignore_literal(local.relative_to(root).as_posix()) + "/")
            add(root, ".gitignore")
    top = root.resolve()
    inside = [path.resolve().relative_to(top).as_posix() for path in lock_files if top in path.resolve().parents]
    kept_out = ignored(root, *inside)  # a line such as /monitoring/* may cover them already
    if any([ensure_ignored(root, "/" + gitignore_literal(path)) for path in inside if path not in kept_out]):
        add(root, ".gitignore")
    existing = run_dvc(root, "remote", "list").stdout
    names = [line.split()[0] for line in existing.splitlines() if line.strip()]
    if remote_name in names:
        run_dvc(root, "remote", "modify", remote_name, "url", url)
        run_dvc(root, "remote", "default", remote_name)
    else:
        run_dvc(root, "remote", "add", "--default", remote_name, url)
    for key, value in (options or {}).items():
        run_dvc(root, "remote", "modify", remote_name, key, value)
    own = [".dvc", ".dvcignore", ".gitignore"]  # what dvc init and this setup write
    add(root, ".dvc/config", ".dvcignore", check=False)
    staged = run_git(root, "diff", "--cached", "--name-only", "--", *own).stdout.split()
    committed = None
    if commit and staged:
        require_identity(root)
        # only these files: whatever else the user has staged stays staged
        run_git(root, "commit", "--quiet", "-m", f"churnops: DVC setup (default remote {remote_name})", "--", *staged)
        committed = head(root)
    return SetupOutcome(root, initialized, remote_name, remote_url, committed)


def _relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base``, POSIX-style, as git and DVC files write it."""
    return Path(os.path.relpath(path, base)).as_posix()


@dataclass(frozen=True)
class BatchOwner:
    """What declares the batch to DVC: its own ``.dvc`` file, or an output of a ``dvc.yaml`` stage."""

    record: Path
    """The file where DVC writes the batch's hash: the ``.dvc`` file, or the stage's ``dvc.lock``."""
    stage: str | None = None
    """The stage's name in its ``dvc.yaml``; None for a ``.dvc`` file."""
    definition: tuple[Path, ...] = ()
    """``dvc.yaml`` and the stage's params files, committed with ``dvc.lock`` so a version is whole."""


def find_owner(root: Path, batch: Path) -> BatchOwner:
    """Ask DVC which file declares ``batch``; a batch DVC does not know yet gets its own ``.dvc`` file."""
    own_file = BatchOwner(batch.with_name(batch.name + ".dvc"))
    if not is_initialized(root):
        return own_file
    _check_installed()
    from dvc.dependency.param import ParamsDependency
    from dvc.exceptions import DvcException, OutputNotFoundError

    try:
        with _quiet_dvc("status"), _open_repo(root) as repo:
            out = repo.find_outs_by_path(str(batch))[0]
            stage = out.stage
            if stage.is_data_source:
                return BatchOwner(Path(stage.path))
            if not out.use_cache:
                raise IntegrationError(
                    f"{_relative(Path(stage.path), root)} declares {_relative(batch, root)} with 'cache: false', "
                    "so DVC keeps no copy of it to version: remove 'cache: false' from that output"
                )
            params = tuple(Path(dep.fs_path) for dep in stage.deps if isinstance(dep, ParamsDependency))
            return BatchOwner(Path(stage.path).with_suffix(".lock"), stage.name, (Path(stage.path), *params))
    except OutputNotFoundError:
        return own_file
    except DvcException as exc:
        raise IntegrationError(f"DVC cannot read the project's DVC files: {redact(one_line(exc))}") from None
    except (RecursionError, ValueError, TypeError, KeyError, OSError) as exc:  # a hostile or broken file
        detail = f"{type(exc).__name__}: {redact(one_line(exc))}"[:300]
        raise IntegrationError(f"DVC cannot read the project's DVC files: {detail}") from None


def _load_yaml(text: str) -> Any:
    from ruamel.yaml import YAML  # DVC's own YAML library, installed with it

    try:
        return YAML(typ="safe", pure=True).load(text)
    except Exception:  # untrusted text from any commit: any parse failure means "no record"
        return None


def _stage_entry(owner: BatchOwner, text: str | None) -> dict[str, Any] | None:
    """The part of a ``.dvc`` file or ``dvc.lock`` text that describes the owner."""
    data = _load_yaml(text) if text is not None else None
    if owner.stage is not None:
        stages = data.get("stages") if isinstance(data, dict) else None
        data = stages.get(owner.stage) if isinstance(stages, dict) else None
    return data if isinstance(data, dict) else None


def recorded_hash(owner: BatchOwner, batch: Path, text: str | None) -> dict[str, Any] | None:
    """The batch's entry (path, hash, size) in the text of the owner's record; None when absent."""
    entry = _stage_entry(owner, text)
    outs = entry.get("outs") if entry else None
    path = _relative(batch, owner.record.parent)
    for out in outs if isinstance(outs, list) else []:
        if isinstance(out, dict) and out.get("path") == path:
            return {str(k): v for k, v in out.items() if isinstance(v, str | int | float | bool)}
    return None


def recorded_params(owner: BatchOwner, text: str | None) -> dict[str, Any]:
    """The stage's params as ``dvc.lock`` records them, ``{"scenario.name": "seed", ...}``."""
    entry = _stage_entry(owner, text) if owner.stage is not None else None
    files = entry.get("params") if entry else None
    params: dict[str, Any] = {}
    for values in files.values() if isinstance(files, dict) else []:
        if isinstance(values, dict):
            params.update({str(k): v for k, v in values.items()})
    return params


def require_versioning(project: Path) -> Path:
    """The git repository of ``project``, where DVC is set up and git can commit; else the
    error :func:`version_batch` would raise (checked before anything is written)."""
    root = require_repository(project)
    require_identity(root)
    if not is_initialized(root):
        raise IntegrationError(f"DVC is not set up in {root}: run 'churnops dvc-setup' first")
    return root


def keeps(project: Path, batch: Path) -> bool:
    """Whether DVC keeps the bytes ``batch`` holds now: its record (its ``.dvc`` file, or the
    ``dvc.lock`` of the stage that makes it) holds their md5, so replacing the file loses nothing
    (``churnops versions restore`` brings them back)."""
    root = require_versioning(project)
    batch = batch.resolve()
    owner = find_owner(root, batch)
    text = owner.record.read_text(encoding="utf-8") if owner.record.is_file() else None
    entry = recorded_hash(owner, batch, text)
    if entry is None or entry.get("hash") != "md5" or not isinstance(entry.get("md5"), str):
        return False
    digest = hashlib.md5(usedforsecurity=False)
    with batch.open("rb") as reader:
        while block := reader.read(1 << 20):
            digest.update(block)
    if digest.hexdigest() != entry["md5"]:
        return False
    # recorded is not kept: 'dvc add --no-commit' records the md5 and never stores the bytes

    try:
        with _quiet_dvc("status"), _open_repo(root) as repo:
            return bool(repo.cache.local.exists(entry["md5"]))
    except Exception:  # noqa: BLE001 - a DVC that cannot tell keeps nothing we can count on
        return False


@dataclass(frozen=True)
class VersionOutcome:
    changed: bool
    commit: str | None
    pushed: bool
    dvc_file: Path
    """The file that records the version: the batch's ``.dvc`` file or the stage's ``dvc.lock``."""
    message: str
    stage: str | None = None
    """The ``dvc.yaml`` stage that owns the batch, if one does."""
    params: dict[str, Any] = field(default_factory=dict)
    """That stage's params as ``dvc.lock`` now records them."""
    remote: str | None = None
    """Where the batch was pushed, as DVC's configuration names it (``'local_storage' (/p/dvc_storage)``,
    secrets redacted): the repository's configuration decides, so every push says where it went."""


def version_batch(
    project: Path,
    batch: Path,
    facts: dict[str, Any],
    sidecar: Path | None = None,
    push: bool = True,
) -> VersionOutcome:
    """Record the batch in DVC, commit the record with the facts as trailers, ``dvc push``.

    A batch with its own ``.dvc`` file is recorded by ``dvc add``; the output of a ``dvc.yaml``
    stage by ``dvc commit`` of that stage (``dvc add`` refuses it). A batch whose recorded hash
    is the one already committed at HEAD makes no new commit. Only the version's files are
    committed (all of ``dvc.lock``, other stages' entries included): anything else the user has
    staged stays staged.
    """
    root = require_versioning(project)
    if not batch.is_file():
        raise IntegrationError(f"{batch}: no batch to version")
    batch = batch.resolve()
    if root not in batch.parents:
        raise IntegrationError(f"{batch} is outside the git repository {root}: DVC can only version files inside it")
    owner = find_owner(root, batch)
    target, record = _relative(batch, root), _relative(owner.record, root)
    wanted = [owner.record, *owner.definition, batch.parent / ".gitignore"]
    if sidecar is not None:
        wanted.append(sidecar.resolve())
    refuse_repository_filters(root, [_relative(p, root) for p in wanted if root in p.parents])  # before DVC writes
    (committed_text,) = read_blobs(root, [f"HEAD:{record}"])
    if owner.stage is None:
        with _dvc_in_process(root, "add") as repo:
            repo.add(target)
    else:
        with _dvc_in_process(root, "commit") as repo:
            repo.commit(target, force=True)
    current_text = owner.record.read_text(encoding="utf-8") if owner.record.is_file() else None
    current = recorded_hash(owner, batch, current_text)
    params = recorded_params(owner, current_text)
    if current is None:
        raise IntegrationError(f"DVC did not record {target} in {record}")
    if current == recorded_hash(owner, batch, committed_text):
        remote, unchanged = _push(root, target, push), "batch unchanged: no new version"
        return VersionOutcome(
            False, head(root), remote is not None, owner.record, unchanged, owner.stage, params, remote
        )
    paths = [_relative(p, root) for p in wanted if p.is_file() and root in p.parents]
    skipped = ignored(root, *paths)
    if record in skipped:
        raise IntegrationError(f"git ignores {record}, which holds the batch's version: remove it from .gitignore")
    paths = [p for p in dict.fromkeys(paths) if p not in skipped]
    add(root, *paths)
    for gone in (p for p in wanted if not p.is_file() and root in p.parents):  # a sidecar removed with its batch
        relative = _relative(gone, root)
        if run_git(root, "ls-files", "--error-unmatch", "--", relative, check=False).returncode == 0:
            run_git(root, "rm", "--cached", "--quiet", "--", relative)
            paths.append(relative)
    score = facts.get("drift_score")
    summary = f"churnops: version production batch {batch.name}"
    if isinstance(score, float):
        summary += f" (drift score {score:.3f})"
    # one line per fact, whatever a fact holds: a value cannot add trailers of its own
    trailers = "\n".join(f"{TRAILER}{key.replace('_', '-')}: {one_line(value)}" for key, value in facts.items())
    run_git(root, "commit", "--quiet", "-m", summary, "-m", trailers, "--", *paths)
    commit = head(root)
    where = f" (stage '{owner.stage}' in {record})" if owner.stage else ""
    remote = _push(root, target, push)
    return VersionOutcome(
        True,
        commit,
        remote is not None,
        owner.record,
        f"committed {commit[:10] if commit else ''}{where}",
        owner.stage,
        params,
        remote,
    )


def _push(root: Path, target: str, push: bool) -> str | None:
    """``dvc push`` of ``target`` to the default remote; which remote it was (None: not pushed)."""
    if not push:
        return None
    with _dvc_in_process(root, "push") as repo:
        repo.push(targets=[target])
        config = repo.config
        name = str(config.get("core", {}).get("remote") or "")
        url = str(config.get("remote", {}).get(name, {}).get("url") or "")
    return f"{one_line(name)!r} ({one_line(redact(url))})" if name else "the default remote"


@dataclass(frozen=True)
class BatchVersion:
    commit: str
    date: str
    facts: dict[str, str]
    subject: str

    def to_dict(self) -> dict[str, Any]:
        return {"commit": self.commit, "date": self.date, "subject": self.subject, **self.facts}


def list_versions(project: Path, batch: Path) -> list[BatchVersion]:
    """Every commit that changed the batch's recorded hash, newest first, with its trailers.

    Both records count: the batch's own ``.dvc`` file and the ``dvc.lock`` of the stage that owns
    it now, so the history survives a move from one to the other. A commit that touched
    ``dvc.lock`` without changing the batch's entry (another stage, a dependency) is not a version.
    """
    root = require_repository(project)
    batch = batch.resolve()
    owner = find_owner(root, batch)
    owners = {_relative(owner.record, root): owner}
    own_file = BatchOwner(batch.with_name(batch.name + ".dvc"))
    owners.setdefault(_relative(own_file.record, root), own_file)
    log_format = "--format=%x1e%H%x1f%cI%x1f%s%x1f%b%x1d"
    done = run_git(root, "-c", "core.quotePath=false", "log", log_format, "--name-only", "--", *owners, check=False)
    commits = []
    for record in done.stdout.split("\x1e"):
        if "\x1d" not in record:
            continue
        header, names = record.split("\x1d", 1)
        commit, when, subject, body = (header.split("\x1f") + ["", "", "", ""])[:4]
        touched = [name for name in names.splitlines() if name in owners]
        commits.append((commit.strip(), when, subject, body, touched))
    specs = [f"{c[0]}{rev}:{name}" for c in commits for name in c[4] for rev in ("", "^")]
    texts = dict(zip(specs, read_blobs(root, specs), strict=True))
    versions = []
    for commit, when, subject, body, touched in commits:
        changed = False
        for name in touched:
            after = recorded_hash(owners[name], batch, texts[f"{commit}:{name}"])
            changed |= after is not None and after != recorded_hash(owners[name], batch, texts[f"{commit}^:{name}"])
        if not changed:
            continue
        facts = {}
        for line in body.splitlines():
            if line.startswith(TRAILER) and ":" in line:
                key, value = line[len(TRAILER) :].split(":", 1)
                facts[key.replace("-", "_")] = value.strip()
        versions.append(BatchVersion(commit, when, facts, subject))
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
    # DVC reads the configuration of that revision, its sub-repositories' too: checked as the
    # working tree's are
    check_config(_config_at(root, resolved.stdout.strip(), revision))
    check_config(_working_config(root))
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
