"""NannyML's univariate drift, with its default thresholds, on the detection benchmark's splits.

The same pools, splits and shifts as ``detection_quality.py`` (same seeds), the same feature
columns (as churnops types them); NannyML 0.13.1 runs in its own virtual environment (the one
``bench_peers.py`` creates: ``$TMPDIR/churnops-peers/venvs/nannyml``; give another with
``--python``) with everything at its defaults: Jensen-Shannon distance for every column, the
reference and the batch each cut into NannyML's default 10 chunks, a column alerting when any
chunk of the batch leaves the reference chunks' mean +- 3 standard deviations. A run "raises data
drift" as in the main benchmark: more than 10% of the columns alerted (share), or any (any).

Usage::

    python benchmarks/detection_nannyml.py --sizes 1000 10000 --reps 50
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import detection_quality as dq  # noqa: E402
import numpy as np  # noqa: E402

from churnops.data.scenarios import apply_scenario  # noqa: E402
from churnops.monitor.calibrated import needed_columns  # noqa: E402
from churnops.monitor.profile import build_profile  # noqa: E402

SCENARIOS = ["none", "shift 0.1 sd, 1 column", "shift 0.2 sd, 1 column", "remix 5 points", "remix 10 points", "seed"]
CHILD = r"""
import json, sys, warnings
import pandas as pd
import nannyml as nml
warnings.filterwarnings("ignore")
jobs = json.load(open(sys.argv[1]))
out = []
for job in jobs:
    ref, cur = pd.read_parquet(job["reference"]), pd.read_parquet(job["current"])
    calculator = nml.UnivariateDriftCalculator(
        column_names=job["numerical"] + job["categorical"], treat_as_categorical=job["categorical"])
    calculator.fit(ref[job["numerical"] + job["categorical"]])
    table = calculator.calculate(cur[job["numerical"] + job["categorical"]]).filter(period="analysis").to_df()
    alerted = sorted({column for column, method, field in table.columns
                      if field == "alert" and bool(table[(column, method, field)].any())})
    out.append({"key": job["key"], "alerted": alerted})
json.dump(out, open(sys.argv[2], "w"))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--scenarios", nargs="+", default=SCENARIOS)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    default_python = Path(tempfile.gettempdir()) / "churnops-peers" / "venvs" / "nannyml" / "bin" / "python"
    parser.add_argument("--python", default=str(default_python), help="NannyML's interpreter")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/detection_nannyml.json"))
    args = parser.parse_args(argv)
    if not Path(args.python).exists():
        print(f"NannyML's environment is missing ({args.python}): run benchmarks/bench_peers.py once", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="churnops-nannyml-") as scratch:
        for size in args.sizes:
            started = time.perf_counter()
            dq._init([size])
            pool = dq._POOL[size]
            profile = build_profile(pool, dq._SETTINGS)
            features = [c for c in profile.tested if c.plan.role == "feature"]
            numerical = [c.plan.name for c in features if c.plan.column_type == "numerical"]
            categorical = [c.plan.name for c in features if c.plan.column_type == "categorical"]
            jobs, shifted = [], {}
            for scenario in args.scenarios:
                for rep in range(args.reps):
                    rng = np.random.default_rng([dq.POOL_SEED, size, rep])
                    order = rng.permutation(pool.height)
                    reference, current = pool[order[:size]], pool[order[size : 2 * size]]
                    operations = dq._SCENARIOS[size][scenario]
                    if operations:
                        current, _ = apply_scenario(current, operations, 1.0, seed=rep)
                    key = f"{len(jobs)}"
                    paths = [Path(scratch) / f"{size}-{key}-{side}.parquet" for side in ("ref", "cur")]
                    reference.write_parquet(paths[0])
                    current.write_parquet(paths[1])
                    shifted[key] = (scenario, {op.column for op in operations})
                    jobs.append(
                        {"key": key, "reference": str(paths[0]), "current": str(paths[1]),
                         "numerical": numerical, "categorical": categorical}
                    )  # fmt: skip
            results = _run_children(args.python, jobs, args.jobs, Path(scratch) / str(size))
            counts: dict[str, dict[str, int]] = {s: {} for s in args.scenarios}
            needed = needed_columns(len(features), dq._SETTINGS.dataset_drift_threshold)
            for result in results:
                scenario, moved = shifted[result["key"]]
                alerted = set(result["alerted"])
                outcome = {
                    "share": len(alerted) >= needed,
                    "any": bool(alerted),
                    "found": bool(alerted & moved),
                    "other": bool(alerted - moved),
                }
                for name, value in outcome.items():
                    counts[scenario][name] = counts[scenario].get(name, 0) + int(value)
            for scenario in args.scenarios:
                rows.append({"size": size, "scenario": scenario, "reps": args.reps, **counts[scenario]})
            elapsed = time.perf_counter() - started
            print(f"n={size:,}: {len(jobs)} NannyML runs in {elapsed:.0f} s", file=sys.stderr, flush=True)
    print(f"\nNannyML 0.13.1 univariate drift, default thresholds, {args.reps} repetitions per row\n")
    print("| n (each side) | shift | share | any | found | other |")
    print("|---:|---|---:|---:|---:|---:|")
    for row in rows:
        cells = [f"{row.get(k, 0) / row['reps']:.0%}" for k in ("share", "any", "found", "other")]
        if row["scenario"] == "none":
            cells[2] = "-"
        print(f"| {row['size']:,} | {row['scenario']} | " + " | ".join(cells) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    return 0


def _run_children(python: str, jobs: list[dict[str, Any]], workers: int, stem: Path) -> list[dict[str, Any]]:
    """NannyML over ``jobs`` in ``workers`` child processes of its own environment."""
    parts = [jobs[i::workers] for i in range(workers)]
    environment = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1", "DO_NOT_TRACK": "1", "OPENBLAS_NUM_THREADS": "1"}
    children = []
    for index, part in enumerate(parts):
        todo, done = stem.with_name(f"{stem.name}-{index}-in.json"), stem.with_name(f"{stem.name}-{index}-out.json")
        todo.write_text(json.dumps(part))
        children.append((subprocess.Popen([python, "-c", CHILD, str(todo), str(done)], env=environment), done))
    results: list[dict[str, Any]] = []
    for child, done in children:
        if child.wait() != 0:
            raise SystemExit(f"NannyML failed (exit {child.returncode})")
        results += json.loads(done.read_text())
    return results


if __name__ == "__main__":
    sys.exit(main())
