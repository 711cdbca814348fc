"""The report's templates compiled to Python ahead of time.

Compiling the two Jinja templates costs about 0.1 s of CPU at every run - a tenth of a nightly
monitoring run on the seed's batch. ``compiled/`` holds them compiled once, with a fingerprint
of the templates, the Jinja version and the environment's options; a run uses them only when the
fingerprint matches, and compiles from the templates otherwise (so the report never depends on
stale code). After editing a template: ``python -m churnops.report`` (a test fails until then).
"""

from __future__ import annotations

import hashlib
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

TEMPLATES = ("report.html.j2", "_svg.html.j2", "ab_report.html.j2")
COMPILED = Path(__file__).parent / "compiled"
FINGERPRINT_FILE = "FINGERPRINT"


def fingerprint(options: dict[str, Any]) -> str:
    """sha256 of the Jinja version, the environment's options and every template's source."""
    import jinja2

    digest = hashlib.sha256(f"jinja2 {jinja2.__version__}\n{sorted(options.items())!r}\n".encode())
    folder = resources.files("churnops.report").joinpath("templates")
    for name in TEMPLATES:
        digest.update(name.encode() + b"\0" + folder.joinpath(name).read_bytes() + b"\0")
    return digest.hexdigest()


def is_current(options: dict[str, Any]) -> bool:
    """Whether ``compiled/`` was made from these templates, this Jinja and these options."""
    try:
        return (COMPILED / FINGERPRINT_FILE).read_text("ascii").strip() == fingerprint(options)
    except OSError:
        return False


def compile_into(environment: Any, options: dict[str, Any], target: Path) -> None:
    """Write the compiled templates and their fingerprint into ``target`` (emptied first)."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    environment.compile_templates(target, zip=None, filter_func=lambda name: name in TEMPLATES, ignore_errors=False)
    (target / FINGERPRINT_FILE).write_text(fingerprint(options) + "\n", "ascii")
