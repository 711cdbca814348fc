"""The documentation: the getting-started notebook runs, the command reference is what the
commands say, the site builds with ``mkdocs build --strict`` (no broken link, page or API
reference), and the README and docs link only to files that exist."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _hooks():
    spec = importlib.util.spec_from_file_location("churnops_docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_command_reference_is_what_the_commands_say():
    expected = _hooks().cli_reference()
    assert (DOCS / "cli.md").read_text(encoding="utf-8") == expected, (
        "docs/cli.md is out of date: run `python docs/hooks.py`"
    )
    for command in ("churnops monitor", "churnops pipeline", "churnops profile build", "churnops versions restore"):
        assert f"## {command}\n" in expected


def _text_outputs(notebook) -> list[str]:
    """Each output's text; a cell's printed lines as one text - the kernel may send one print in
    several stream messages (it did under load: "task failed:" then " drift alert: ...")."""
    texts = []
    for cell in notebook.cells:
        printed: dict[str, str] = {}
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            text = "".join(text) if isinstance(text, list) else str(text)
            if output.get("output_type") == "stream":
                printed[output.get("name", "stdout")] = printed.get(output.get("name", "stdout"), "") + text
            else:
                texts.append(text)
        texts += printed.values()
    return texts


def test_the_getting_started_notebook_runs(tmp_path):
    pytest.importorskip("nbclient", reason="needs: nbclient (pip install 'churnops[docs]')")
    pytest.importorskip("ipykernel", reason="needs: ipykernel (pip install 'churnops[docs]')")
    committed = __import__("nbformat").read(DOCS / "getting-started.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in committed.cells), "commit the notebook without outputs"
    notebook = _hooks().execute_notebook(DOCS / "getting-started.ipynb", tmp_path / "run" / "getting-started.ipynb")
    outputs = _text_outputs(notebook)
    assert not [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert any(o.startswith("alert - ") for o in outputs)  # the drifted batch
    assert any("Balance, Credit Score, Income" in o for o in outputs)
    assert "'ok'" in outputs  # the calm batch against the saved profile
    assert any(o.startswith("task failed: drift alert") for o in outputs)
    inline = [
        o["data"]["text/html"]
        for c in notebook.cells
        for o in c.get("outputs", [])
        if "text/html" in o.get("data", {}) and "churnops report" in o["data"]["text/html"]
    ]
    assert len(inline) == 1 and inline[0].startswith("<iframe") and 'sandbox=""' in inline[0]
    assert not any("without encryption" in o for o in outputs)  # the kernel ran over local sockets


def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="needs: mkdocs (pip install 'churnops[docs]')")
    pytest.importorskip("mkdocstrings", reason="needs: mkdocstrings (pip install 'churnops[docs]')")
    before = (DOCS / "cli.md").read_bytes()
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert (DOCS / "cli.md").read_bytes() == before  # the build regenerates it identically
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("monitor", "profile", "MonitorResult.raise_for_drift", "generate", "version_batch"):
        assert f'id="churnops.api.{name}"' in api, name
    heading = r"churnops\.api\.monitor\" class=\"doc doc-heading\">\s*churnops\.monitor\s"
    assert re.search(heading, api)  # shown under the name users call
    assert "Compare <code>current</code> with <code>reference</code>" in api  # docstrings, not only names
    assert ":func:" not in api and ":class:" not in api
    notebook = (site / "getting-started" / "index.html").read_text(encoding="utf-8")
    assert "Balance, Credit Score, Income" in notebook  # the outputs of this build's own run
    assert "Usage: churnops monitor" in (site / "cli" / "index.html").read_text(encoding="utf-8")
    for page in ("python", "verdicts", "pipeline", "reliability", "streaming", "migrating-from-evidently"):
        assert (site / page / "index.html").is_file(), page


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in DOCS.glob("*.md"))])
def test_links_point_at_files_that_exist(page):
    source = ROOT / page
    missing = [
        target
        for target in LINK.findall(source.read_text(encoding="utf-8"))
        if "://" not in target and not target.startswith("mailto:") and not (source.parent / target).exists()
    ]
    assert not missing, f"{page} links to missing files: {missing}"
