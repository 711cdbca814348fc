"""Shared fixtures. Every test works in its own temporary folder; nothing leaks between tests."""

from __future__ import annotations

import os
from pathlib import Path

# Busy-waiting OpenMP threads (scikit-learn) slow to a crawl beside the other test worker.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The key that signs the caches is made in the user's configuration folder: the tests' own, not
# the machine's (one per run of the suite, shared by its workers and the processes they start).
if "CHURNOPS_TEST_CONFIG_HOME" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["CHURNOPS_TEST_CONFIG_HOME"] = tempfile.mkdtemp(prefix="churnops-config-")
    # removed by the process that made it (the workers inherit it and end first)
    atexit.register(shutil.rmtree, os.environ["CHURNOPS_TEST_CONFIG_HOME"], ignore_errors=True)
os.environ["XDG_CONFIG_HOME"] = os.environ["CHURNOPS_TEST_CONFIG_HOME"]
os.environ.pop("CHURNOPS_CACHE_KEY", None)

import polars as pl
import pytest

from churnops.data.generator import generate_reference


@pytest.fixture(scope="session")
def bank() -> pl.DataFrame:
    """The default embedded dataset (30,000 rows, seed 42), generated once per session."""
    return generate_reference(30_000, 42)


@pytest.fixture()
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder, made the current directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture()
def bank_workspace(workspace: Path, bank: pl.DataFrame) -> Path:
    """A project folder holding data/churn.csv, as `churnops data init` writes it."""
    (workspace / "data").mkdir()
    bank.write_csv(workspace / "data" / "churn.csv")
    return workspace


@pytest.fixture()
def cli():
    """Invoke the churnops CLI in-process; returns the click Result."""
    from typer.testing import CliRunner

    from churnops.cli import app

    runner = CliRunner()

    def invoke(*args: str, **kwargs):
        return runner.invoke(app, list(args), catch_exceptions=False, **kwargs)

    return invoke


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if (
        os.environ.get("CHURNOPS_REQUIRE_ALL") == "1"
        and report.skipped
        and call.excinfo is not None
        and "needs:" in str(call.excinfo.value)
    ):
        report.outcome = "failed"
        report.longrepr = f"required component missing in CI: {call.excinfo.value}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """The same rule for a whole module skipped at import (``pytest.importorskip`` at top level)."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CHURNOPS_REQUIRE_ALL") == "1" and report.skipped and "needs:" in str(report.longrepr):
        report.outcome = "failed"
