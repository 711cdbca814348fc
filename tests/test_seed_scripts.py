"""The seed's scripts, run as real processes where churnops cannot run yet: one line, exit 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[1]
PYTHON_SCRIPTS = ["scripts/generate_prod_data.py", "monitoring/run_monitoring.py"]


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env)


def with_churnops() -> dict[str, str]:
    """This Python with this checkout's churnops first on its path."""
    pythonpath = os.pathsep.join(filter(None, [str(CHECKOUT / "src"), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": pythonpath}


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return lines[0]


@pytest.mark.parametrize("script", PYTHON_SCRIPTS)
def test_a_python_without_churnops_is_told_how_to_get_it(script, tmp_path):
    """-I -S: no PYTHONPATH, no site-packages - the system Python of a fresh machine."""
    line = one_error_line(run([sys.executable, "-I", "-S", str(CHECKOUT / script)], tmp_path))
    assert "churnops is not installed in this Python" in line
    assert "`make run`" in line and "`pip install -e .`" in line


@pytest.mark.parametrize("script", PYTHON_SCRIPTS)
def test_churnops_without_its_dependencies_says_so(script, tmp_path):
    """churnops importable (PYTHONPATH) but no site-packages (-S): its dependencies are missing."""
    env = {**os.environ, "PYTHONPATH": str(CHECKOUT / "src")}
    line = one_error_line(run([sys.executable, "-S", str(CHECKOUT / script)], tmp_path, env))
    assert "churnops cannot start in this Python" in line and "No module named" in line
    assert "`pip install -e .`" in line


@pytest.mark.parametrize("script", PYTHON_SCRIPTS)
def test_before_data_init_the_scripts_say_to_run_it(script, tmp_path):
    env = with_churnops()
    line = one_error_line(run([sys.executable, str(CHECKOUT / script)], tmp_path, env))
    assert "no reference dataset yet: run 'churnops data init' first" in line
    assert not (tmp_path / "data").exists() and not (tmp_path / "monitoring").exists()


def test_monitoring_before_generate_says_to_generate(bank_workspace):
    env = with_churnops()
    line = one_error_line(run([sys.executable, str(CHECKOUT / "monitoring/run_monitoring.py")], bank_workspace, env))
    assert "bank_churn_prod.csv: file not found - no production batch yet: run 'churnops generate' first" in line


def test_dvc_setup_sh_without_churnops_on_path(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    shell = shutil.which("sh")
    assert shell is not None
    line = one_error_line(run([shell, str(CHECKOUT / "dvc_setup.sh")], tmp_path, {"PATH": str(empty)}))
    assert "churnops is not on PATH" in line and "`make run`" in line and "`pip install -e .`" in line
    assert not (tmp_path / ".dvc").exists()


def test_the_commands_name_the_command_that_makes_a_missing_default_input(workspace, cli):
    result = cli("generate")
    assert result.exit_code == 2
    assert "no reference dataset yet: run 'churnops data init' first (or give --input)" in result.output
    result = cli("generate", "--input", "mine.csv")  # a file the user named: the plain message
    assert result.exit_code == 2 and "mine.csv: file not found" in result.output and "data init" not in result.output
    result = cli("monitor")
    assert result.exit_code == 2 and "run 'churnops data init' first (or give --reference)" in result.output
