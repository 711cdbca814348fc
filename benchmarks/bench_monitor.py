"""Native engine vs Evidently 0.7.23 on the same generated bank data: time, peak RSS, verdicts.

Each measurement runs in its own process; wall time and the peak RSS of that process come from
``os.wait4`` (the kernel's rusage of exactly that child). Two timings per engine:

* ``end-to-end``: start the process, import, read both CSV files, compute, write outputs;
* ``compute``: inside the process, from data in memory to the drift result (Evidently: its
  ``Report.run`` with ``DataDriftPreset``; churnops: profile + compare).

Usage::

    python benchmarks/bench_monitor.py                 # 10k, 100k, 1M rows
    python benchmarks/bench_monitor.py --rows 10000 100000 --repeat 3

Reference and current have the same number of rows; the current batch carries the seed drift.
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

CHILD_NATIVE = r"""
import json, sys, time
t0 = time.perf_counter()
from churnops.config import load_config
from churnops.data.io import read_table
from churnops.monitor.engine import compare
from churnops.monitor.profile import build_profile
from churnops.monitor.settings import settings_from_config
settings = settings_from_config(load_config())
ref = read_table(__import__("pathlib").Path(sys.argv[1]))
cur = read_table(__import__("pathlib").Path(sys.argv[2]))
t1 = time.perf_counter()
result = compare(build_profile(ref, settings), cur, settings)
t2 = time.perf_counter()
print(json.dumps({"compute_s": t2 - t1, "read_s": t1 - t0,
                  "drifted": sorted(c.name for c in result.columns if c.drift_detected),
                  "scores": {c.name: c.drift_score for c in result.columns}}))
"""

CHILD_EVIDENTLY = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
import pandas as pd
from evidently import Dataset, DataDefinition, Report
from evidently.presets import DataDriftPreset
numerical, categorical = json.loads(sys.argv[3]), json.loads(sys.argv[4])
def load(path):
    frame = pd.read_csv(path)
    # the native engine monitors Date of Birth as days since 1970; give Evidently the same numbers
    frame["Date of Birth"] = (pd.to_datetime(frame["Date of Birth"]) - pd.Timestamp("1970-01-01")).dt.days.astype(float)
    return frame[numerical + categorical]
ref, cur = load(sys.argv[1]), load(sys.argv[2])
t1 = time.perf_counter()
definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
snapshot = Report([DataDriftPreset()], include_tests=True).run(
    current_data=Dataset.from_pandas(cur, data_definition=definition),
    reference_data=Dataset.from_pandas(ref, data_definition=definition))
t2 = time.perf_counter()
doc = snapshot.dict()
scores = {m["config"]["column"]: m["value"] for m in doc["metrics"] if m["config"]["type"].endswith("ValueDrift")}
drifted = sorted(t["metric_config"]["params"]["column"] for t in doc["tests"]
                 if t["metric_config"]["params"]["type"].endswith("ValueDrift") and t["status"] == "FAIL")
print(json.dumps({"compute_s": t2 - t1, "read_s": t1 - t0, "drifted": drifted, "scores": scores}))
"""


def measure(command: list[str], cwd: Path) -> dict:
    """Run a command; return wall seconds, peak RSS (MiB) and its JSON stdout, if any."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if os.waitstatus_to_exitcode(status) not in (0,):
        raise RuntimeError(f"{command[:3]} failed: {stderr[-2000:]}")
    payload = {}
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if lines:
        payload = json.loads(lines[-1])
    return {"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024, **payload}


def prepare(rows: int, folder: Path) -> tuple[Path, Path, list[str], list[str]]:
    from churnops.data.generator import generate_reference
    from churnops.data.scenarios import apply_scenario, resolve_scenario
    from churnops.monitor.accumulate import infer_column_type

    population = generate_reference(2 * rows, seed=42)
    reference, current = population[:rows], population[rows:]
    current, _ = apply_scenario(current, resolve_scenario("seed"), 1.0, seed=1)
    ref_path, cur_path = folder / f"ref_{rows}.csv", folder / f"cur_{rows}.csv"
    reference.write_csv(ref_path)
    current.write_csv(cur_path)
    skip = {"CustomerId", "Surname", "First Name", "Churn Flag", "Date of Birth"}
    features = [c for c in reference.columns if c not in skip]
    numerical = ["Date of Birth"] + [c for c in features if infer_column_type(reference[c]) == "numerical"]
    categorical = [c for c in features if infer_column_type(reference[c]) == "categorical"]
    return ref_path, cur_path, numerical, categorical


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per engine")
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the table as JSON here")
    args = parser.parse_args()
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for rows in args.rows:
            ref, cur, numerical, categorical = prepare(rows, folder)
            runs = {}
            cli = [
                sys.executable,
                "-m",
                "churnops",
                "-q",
                "monitor",
                "--reference",
                str(ref),
                "--current",
                str(cur),
                "--no-cache",
            ]
            engines = {
                "native_cli": cli,
                "native": [sys.executable, "-c", CHILD_NATIVE, str(ref), str(cur)],
            }
            if not args.skip_evidently:
                engines["evidently"] = [
                    sys.executable,
                    "-c",
                    CHILD_EVIDENTLY,
                    str(ref),
                    str(cur),
                    json.dumps(numerical),
                    json.dumps(categorical),
                ]
            for name, command in engines.items():
                best = None
                for _ in range(args.repeat):
                    run = measure(command, folder)
                    if best is None or run["wall_s"] < best["wall_s"]:
                        best = run
                runs[name] = best
            row = {
                "rows": rows,
                "columns": len(numerical) + len(categorical),
                **{f"{k}_{m}": v[m] for k, v in runs.items() for m in ("wall_s", "peak_rss_mib") if m in v},
            }
            row["native_compute_s"] = runs["native"]["compute_s"]
            if "evidently" in runs:
                ev, nat = runs["evidently"], runs["native"]
                row["evidently_compute_s"] = ev["compute_s"]
                row["speedup_end_to_end"] = ev["wall_s"] / runs["native_cli"]["wall_s"]
                row["speedup_compute"] = ev["compute_s"] / nat["compute_s"]
                row["memory_ratio"] = ev["peak_rss_mib"] / runs["native_cli"]["peak_rss_mib"]
                row["same_verdicts"] = ev["drifted"] == nat["drifted"]
                row["max_rel_diff"] = max(
                    abs(nat["scores"][c] - ev["scores"][c]) / max(abs(ev["scores"][c]), 1e-300) for c in ev["scores"]
                )
            table.append(row)
            print(json.dumps(row), flush=True)
    print()
    print(
        "| rows | cols | churnops CLI s | churnops RSS MiB | Evidently s | Evidently RSS MiB | "
        "speed-up (end to end) | speed-up (compute) | memory ratio | same verdicts |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
    for r in table:
        print(
            f"| {r['rows']:,} | {r['columns']} | {r['native_cli_wall_s']:.2f} | {r['native_cli_peak_rss_mib']:.0f} | "
            + (
                f"{r['evidently_wall_s']:.2f} | {r['evidently_peak_rss_mib']:.0f} | {r['speedup_end_to_end']:.1f}x | "
                f"{r['speedup_compute']:.1f}x | {r['memory_ratio']:.1f}x | {'yes' if r['same_verdicts'] else 'NO'} |"
                if "evidently_wall_s" in r
                else "- | - | - | - | - | - |"
            )
        )
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
