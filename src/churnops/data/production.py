"""Seed phase 1: cut a production batch out of the reference file and apply a drift scenario.

Next to the batch, a ``<name>.meta.json`` sidecar records everything needed to make the
same batch again: scenario and its operations, intensity, seed, row range, and the sha256 of
the input and of the output. It holds no timestamp: the same batch always has the same sidecar,
so versioning an unchanged batch changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnops._version import __version__
from churnops.data.io import DEFAULT_DIALECT, CsvDialect, atomic_path, read_table, sha256_file, write_table
from churnops.data.scenarios import Operation, apply_scenario


@dataclass(frozen=True)
class BatchInfo:
    """What :func:`make_production_batch` wrote."""

    path: Path
    meta_path: Path
    rows: int
    metadata: dict[str, Any]


def meta_path_for(batch: Path) -> Path:
    """The sidecar path of a batch file.

    >>> meta_path_for(Path("data/production/bank_churn_prod.csv")).name
    'bank_churn_prod.meta.json'
    """
    return batch.with_name(batch.stem + ".meta.json")


def make_production_batch(
    source: Path,
    output: Path,
    row_range: tuple[int, int],
    operations: tuple[Operation, ...],
    scenario_name: str,
    intensity: float,
    seed: int,
    dialect: CsvDialect = DEFAULT_DIALECT,
    output_label: str | None = None,
) -> BatchInfo:
    """Read rows ``[start, end)`` of ``source``, apply the scenario, write ``output`` and its sidecar
    (which names the output ``output_label`` when given: the URL a staged copy is uploaded to).

    Nothing is written when reading or applying the scenario fails; both files are replaced
    atomically, the batch before its sidecar.
    """
    frame = read_table(source, row_range, dialect)
    drifted, outcome = apply_scenario(frame, operations, intensity, seed)
    metadata: dict[str, Any] = {
        "schema_version": 1,
        "churnops_version": __version__,
        "scenario": scenario_name,
        "operations": outcome.operations,
        "effects": outcome.effects,
        "intensity": intensity,
        "seed": seed,
        "row_range": list(row_range),
        "rows": drifted.height,
        "input": {"path": str(source), "sha256": sha256_file(source)},
    }
    write_table(drifted, output, dialect)
    metadata["output"] = {"path": output_label or str(output), "sha256": sha256_file(output)}
    meta = meta_path_for(output)
    with atomic_path(meta) as tmp:
        tmp.write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return BatchInfo(output, meta, drifted.height, metadata)
