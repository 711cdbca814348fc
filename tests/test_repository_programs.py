"""A workspace's git repository may come from someone else: the programs its hooks, its
``.git/config`` and its ``.gitattributes`` name never run when churnops versions a batch.

Real git, a real DVC local remote, the real ``churnops`` command (``churnops demo`` builds the
workspace, as in the review's reproduction). Each planted program only appends its name to a
file: the tests look for that file, they never wait on a clock.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dvc", reason="needs: dvc (pip install 'churnops[dvc]')")

CHECKOUT = Path(__file__).resolve().parents[1]
BATCH = "data/production/bank_churn_prod.csv"
HOOKS = ("pre-commit", "prepare-commit-msg", "commit-msg", "post-commit", "post-index-change", "reference-transaction")


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


@pytest.fixture()
def env(tmp_path) -> dict[str, str]:
    """No global or system git configuration of the machine running the tests: only this one."""
    pythonpath = os.pathsep.join(filter(None, [str(CHECKOUT / "src"), os.environ.get("PYTHONPATH")]))
    return {
        **os.environ,
        "PYTHONPATH": pythonpath,
        "GIT_CONFIG_GLOBAL": str(tmp_path / "global.gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "DVC_NO_ANALYTICS": "1",
    }


def churnops(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "churnops", *args], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )


def program(tmp_path: Path, name: str) -> str:
    """A program that says it ran (in ``ran.txt``) and passes its input through, as a filter would."""
    script = tmp_path / "programs" / name
    script.parent.mkdir(exist_ok=True)
    script.write_text(f'#!/bin/sh\necho "{name}" >> "{tmp_path / "ran.txt"}"\ncat\nexit 0\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def ran(tmp_path: Path) -> list[str]:
    record = tmp_path / "ran.txt"
    return record.read_text().split() if record.exists() else []


@pytest.fixture()
def demo(tmp_path, env) -> Path:
    done = churnops(tmp_path, env, "demo", "demo")
    assert done.returncode == 0, done.stderr
    return tmp_path / "demo"


def plant_programs(tmp_path: Path, root: Path) -> None:
    """Every way a repository's own files name a program for the git commands churnops runs."""
    # a filter on a tracked file churnops does not stage: git's index refresh would clean it
    (root / ".gitattributes").write_text("dvc_setup.notes filter=planted\n")
    (root / "dvc_setup.notes").write_text("tracked\n")
    git(root, "add", ".gitattributes", "dvc_setup.notes")
    git(root, "commit", "-q", "-m", "attributes")
    os.utime(root / "dvc_setup.notes", (1, 1))  # stat-dirty: git would read it through the filter again
    hooks = root / ".git" / "hooks"
    for hook in HOOKS:
        (hooks / hook).write_text(f"#!/bin/sh\n{program(tmp_path, 'hook-' + hook)} </dev/null >/dev/null\n")
        (hooks / hook).chmod(0o755)
    settings = {
        "core.fsmonitor": program(tmp_path, "fsmonitor"),
        "commit.gpgSign": "true",
        "gpg.program": program(tmp_path, "gpg"),
        "log.showSignature": "true",
        "diff.external": program(tmp_path, "external-diff"),
        "core.pager": program(tmp_path, "pager"),
        "core.editor": program(tmp_path, "editor"),
        "core.sshCommand": program(tmp_path, "ssh"),
        "filter.planted.clean": program(tmp_path, "filter-clean"),
        "filter.planted.smudge": program(tmp_path, "filter-smudge"),
    }
    for key, value in settings.items():
        git(root, "config", key, value)


def test_a_planted_hook_or_configured_program_never_runs_when_a_batch_is_versioned(tmp_path, env, demo):
    plant_programs(tmp_path, demo)
    before = git(demo, "-c", "log.showSignature=false", "rev-parse", "HEAD").strip()
    assert churnops(demo, env, "generate", "--set", "scenario.intensity=2").returncode == 0
    done = churnops(demo, env, "pipeline")
    assert ran(tmp_path) == []
    assert done.returncode == 0, done.stdout + done.stderr
    for command in (["version"], ["versions", "list"], ["dvc-setup"]):
        done = churnops(demo, env, *command)
        assert done.returncode == 0, done.stderr
    assert ran(tmp_path) == []
    # the batch was versioned all the same, unsigned, with the version's files only
    log = git(demo, "-c", "log.showSignature=false", "log", "--format=%H %s", f"{before}..HEAD").splitlines()
    assert len(log) == 1 and "version production batch" in log[0], log
    assert "churnops-sha256:" in git(demo, "-c", "log.showSignature=false", "log", "-1", "--format=%B")


def test_a_filter_the_repository_defines_is_refused_and_your_own_still_runs(tmp_path, env, demo):
    """git-lfs and the like, set up by `git lfs install` in your global configuration, keep
    working on the files churnops commits; a driver that only the repository's .git/config
    defines is refused before DVC or git touch anything (switched off, it would commit the file
    unfiltered without a word)."""
    global_filter = tmp_path / "mark.sh"
    global_filter.write_text('#!/bin/sh\ncat\necho "cleaned by your own filter"\n')
    global_filter.chmod(0o755)
    subprocess.run(["git", "config", "--global", "filter.yours.clean", str(global_filter)], env=env, check=True)
    (demo / ".gitattributes").write_text("*.meta.json filter=yours\n")
    git(demo, "add", ".gitattributes")
    git(demo, "commit", "-q", "-m", "attributes")
    assert churnops(demo, env, "generate", "--set", "scenario.intensity=2").returncode == 0
    done = churnops(demo, env, "version")
    assert done.returncode == 0, done.stderr
    sidecar = git(demo, "show", "HEAD:data/production/bank_churn_prod.meta.json")
    assert sidecar.endswith("cleaned by your own filter\n")

    # the same kind of driver in the repository's own configuration, with DVC asked to stage too
    git(demo, "config", "filter.planted.clean", program(tmp_path, "filter-clean"))
    git(demo, "config", "filter.planted.process", program(tmp_path, "filter-process"))
    (demo / ".gitattributes").write_text("*.meta.json filter=yours\n*.dvc filter=planted\n")
    git(demo, "-c", "filter.planted.clean=cat", "-c", "filter.planted.process=", "add", ".gitattributes")
    git(demo, "-c", "filter.planted.clean=cat", "-c", "filter.planted.process=", "commit", "-q", "-m", "attributes")
    subprocess.run([sys.executable, "-m", "dvc", "config", "core.autostage", "true"], cwd=demo, env=env, check=True)
    head = git(demo, "rev-parse", "HEAD")
    record = (demo / f"{BATCH}.dvc").read_bytes()
    assert churnops(demo, env, "generate", "--set", "scenario.intensity=3").returncode == 0
    done = churnops(demo, env, "version")
    assert ran(tmp_path) == []
    assert done.returncode == 2, done.stdout + done.stderr
    message = done.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert f"{BATCH}.dvc: .gitattributes gives this file to the git filter 'planted'" in message, message
    assert "repository's own configuration" in message and "filter.planted" in message
    assert ran(tmp_path) == []
    assert git(demo, "rev-parse", "HEAD") == head and (demo / f"{BATCH}.dvc").read_bytes() == record


def test_dvc_setup_refuses_a_repository_filter_on_the_files_dvc_init_stages(tmp_path, env):
    """`dvc init` stages .dvc/config, .dvc/.gitignore and .dvcignore with DVC's own git library,
    which runs .gitattributes' filter programs: churnops refuses such a driver before it runs."""
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "filter.planted.clean", program(tmp_path, "filter-clean"))
    (root / ".gitattributes").write_text(".dvcignore filter=planted\n")
    done = churnops(root, env, "dvc-setup")
    assert ran(tmp_path) == []
    assert done.returncode == 2, done.stdout + done.stderr
    assert ".dvcignore: .gitattributes gives this file to the git filter 'planted'" in done.stderr, done.stderr
    assert ran(tmp_path) == [] and not (root / ".dvc").exists()


def test_a_repository_that_moves_its_working_folder_elsewhere_is_refused(tmp_path, env, demo):
    """``core.worktree`` in ``.git/config`` would make churnops' git calls stage, commit and
    remove files of another folder: versioning stops with one line saying what to remove, and
    neither folder changes. ``GIT_DIR`` / ``GIT_WORK_TREE`` in the environment do not redirect
    it either."""
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "keep.txt").write_text("someone else's file\n")
    assert churnops(demo, env, "generate", "--set", "scenario.intensity=2").returncode == 0
    head = git(demo, "rev-parse", "HEAD")
    git(demo, "config", "core.worktree", str(other))
    done = churnops(demo, env, "version")
    assert done.returncode == 2, done.stdout + done.stderr
    message = done.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert f"names {other} as its working folder (core.worktree" in message, message
    assert git(demo, "--work-tree", str(demo), "rev-parse", "HEAD") == head
    assert sorted(path.name for path in other.iterdir()) == ["keep.txt"]

    # without it, versioning works - and a GIT_DIR pointing at another repository is ignored
    git(demo, "config", "--unset", "core.worktree")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    git(foreign, "init", "-q")
    done = churnops(demo, {**env, "GIT_DIR": str(foreign / ".git"), "GIT_WORK_TREE": str(foreign)}, "version")
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(demo, "rev-parse", "HEAD") != head
    assert subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=foreign, capture_output=True).returncode


def test_a_git_file_pointing_at_another_repository_is_refused_and_worktrees_and_submodules_work(tmp_path, env):
    """A workspace whose .git is a file 'gitdir: /other/repo/.git' made churnops commit the
    version's files onto the other repository's branch. A linked worktree and a submodule - whose
    repositories name the folder back - still work."""
    from churnops.integrations.git import repository_root

    victim = tmp_path / "victim"
    victim.mkdir()
    git(victim, "init", "-q")
    git(victim, "-c", "user.name=V", "-c", "user.email=v@example.com", "commit", "-q", "--allow-empty", "-m", "mine")
    head = git(victim, "rev-parse", "HEAD")
    demo = tmp_path / "ws"
    assert churnops(tmp_path, env, "demo", "ws").returncode == 0
    subprocess.run(["rm", "-rf", str(demo / ".git")], check=True)
    (demo / ".git").write_text(f"gitdir: {victim / '.git'}\n")
    assert churnops(demo, env, "generate", "--set", "scenario.intensity=2").returncode == 0
    done = churnops(demo, env, "version")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{demo / '.git'} points to the git repository {victim / '.git'}, which does not name" in done.stderr
    assert git(victim, "rev-parse", "HEAD") == head and git(victim, "status", "--porcelain") == ""

    main, other = tmp_path / "main", tmp_path / "sub"
    for repository in (main, other):
        repository.mkdir()
        git(repository, "init", "-q")
        git(
            repository,
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "i",
        )
    # a .git folder sharing another repository's branches and objects (a commondir file) is refused too
    (demo / ".git").unlink()
    git(demo, "init", "-q")
    (demo / ".git" / "commondir").write_text(f"{victim / '.git'}\n")
    done = churnops(demo, env, "version")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"keeps its branches and objects in another repository, {victim / '.git'}" in done.stderr, done.stderr
    assert git(victim, "rev-parse", "HEAD") == head and git(victim, "status", "--porcelain") == ""

    git(main, "worktree", "add", "-q", str(tmp_path / "linked"))
    git(main, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(other), "mod")
    assert repository_root(tmp_path / "linked") == tmp_path / "linked"
    assert repository_root(main / "mod") == main / "mod"
