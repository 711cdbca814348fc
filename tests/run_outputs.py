"""The files one ``churnops monitor`` run writes, and a fingerprint of them for before/after checks."""

from __future__ import annotations

import hashlib
from pathlib import Path

OUTPUTS = [
    "monitoring/monitoring_metrics.json",
    "monitoring/monitoring_report.html",
    "monitoring/monitoring_report.standalone.html",
    "monitoring/report.css",
    "trigger.txt",
]


def snapshot(root: Path) -> dict[str, str | None]:
    """sha256 of every output (None when absent)."""
    return {
        name: hashlib.sha256((root / name).read_bytes()).hexdigest() if (root / name).exists() else None
        for name in OUTPUTS
    }
