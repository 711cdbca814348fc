"""``churnops demo``: a self-contained workspace that runs the whole pipeline end to end.

The workspace gets its own git repository (with a local identity if git has none) and its own
DVC remote (``./dvc_storage``), so the demo never commits into the repository it was started
from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from churnops.config import Config
from churnops.data.files import atomic_write_text
from churnops.data.generator import write_reference
from churnops.data.production import BatchInfo, make_production_batch
from churnops.data.scenarios import resolve_scenario
from churnops.integrations.git import add, ensure_ignored, repository_root, run_git
from churnops.pipeline.versioning import setup_dvc

DEMO_NAME = "churnops demo"
DEMO_EMAIL = "demo@churnops.invalid"
DEMO_MARKER = ".churnops-demo"
"""Written in a demo workspace: ``churnops demo`` reuses only folders that hold it (or are empty)."""


@dataclass(frozen=True)
class DemoWorkspace:
    root: Path
    created_repository: bool
    reference_status: str
    batch: BatchInfo


def model_store_patterns(config: Config, root: Path) -> list[str]:
    """.gitignore patterns for what ``churnops train`` creates in the workspace: MLflow's SQLite
    registry (with the files SQLite keeps beside it) and its local artifact folder."""
    patterns = []
    database = config.sqlite_path(config.model.tracking_uri)
    folder = None if "://" in config.model.artifact_dir else config.resolve_dir(config.model.artifact_dir)
    for path, pattern in ((database, "/{}"), (database, "/{}-*"), (folder, "/{}/")):
        if path is not None and root.resolve() in path.resolve().parents:
            patterns.append(pattern.format(path.resolve().relative_to(root.resolve()).as_posix()))
    return patterns


def prepare_demo(config: Config) -> DemoWorkspace:
    """Make ``config.root`` a git + DVC workspace with the embedded data and a drifted batch."""
    root = config.root
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / DEMO_MARKER, "A churnops demo workspace: `churnops demo` may rewrite its data.\n")
    created = False
    existing = repository_root(root)
    if existing is None or existing.resolve() != root.resolve():
        run_git(root, "init", "--quiet")
        created = True
    for key, value in (("user.name", DEMO_NAME), ("user.email", DEMO_EMAIL)):
        if not run_git(root, "config", key, check=False).stdout.strip():
            run_git(root, "config", "--local", key, value)
    status = write_reference(
        config.resolve(config.paths.reference),
        config.data.rows,
        config.data.seed,
        force=True,
        dialect=config.dialect_for("reference"),
    )
    setup_dvc(config)
    batch = make_production_batch(
        source=config.resolve(config.paths.reference),
        output=config.resolve(config.paths.production),
        row_range=config.data.production_rows,
        operations=resolve_scenario(config.scenario.name, config.scenario.custom),
        scenario_name=config.scenario.name,
        intensity=config.scenario.intensity,
        seed=config.scenario.seed,
        dialect=config.dialect,
    )
    wanted = ["/data/churn.csv", "/monitoring/", "/trigger.txt", "/.trigger.txt.lock", "/.churnops/", f"/{DEMO_MARKER}"]
    wanted += model_store_patterns(config, root)
    missing = [pattern for pattern in wanted if ensure_ignored(root, pattern)]
    if missing:
        add(root, ".gitignore")
        run_git(root, "commit", "--quiet", "-m", "churnops demo: ignore generated files")
    return DemoWorkspace(root, created, status, batch)
