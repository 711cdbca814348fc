"""Accuracy of the streaming engine against the exact engine, statistic by statistic.

Generates the bank data (reference and a drifted batch of ``--rows`` rows each), runs
``churnops monitor`` in exact and streaming mode for each numerical test, and prints, for the
columns the streaming engine summarizes by a sketch (Balance, Income, Outstanding Loans), the
exact value, the streaming value, their relative difference and both verdicts.

    python benchmarks/streaming_accuracy.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

TESTS = ["wasserstein", "ks", "psi", "jensenshannon", "kl_div", "hellinger", "energy_distance", "t_test"]
SKETCHED = ["Balance", "Income", "Outstanding Loans"]


def make_data(folder: Path, rows: int) -> None:
    from churnops.data.generator import generate_reference
    from churnops.data.scenarios import apply_scenario, resolve_scenario

    data = generate_reference(2 * rows, 42)
    data[:rows].write_parquet(folder / "ref.parquet")
    drifted, _ = apply_scenario(data[rows:], resolve_scenario("seed"), 1.0, 1)
    drifted.write_parquet(folder / "cur.parquet")


def run(folder: Path, mode: str, test: str, binning: str) -> dict:
    command = [
        sys.executable, "-m", "churnops", "-q", "monitor", "-r", "ref.parquet", "-p", "cur.parquet",
        "--mode", mode, "--no-cache", "--set", f"drift.num_method='{test}'", "--set", f"drift.binning='{binning}'",
        "--set", "history.enabled=false", "--set", "model.monitor='off'",
    ]  # fmt: skip
    subprocess.run(command, cwd=folder, check=True)
    return json.loads((folder / "monitoring" / "monitoring_metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        make_data(folder, args.rows)
        print("| test | binning | column | exact | streaming | relative difference | verdicts |")
        print("|---|---|---|---:|---:|---:|:---:|")
        worst: dict[str, float] = {}
        for test in TESTS:
            for binning in (
                ["evidently", "quantile"] if test in ("psi", "jensenshannon", "kl_div", "hellinger") else ["evidently"]
            ):
                exact, streaming = run(folder, "exact", test, binning), run(folder, "streaming", test, binning)
                assert streaming["mode"]["approximate_columns"] == sorted(SKETCHED), streaming["mode"]
                for column in SKETCHED:
                    a, b = exact["columns"][column], streaming["columns"][column]
                    for value in ("statistic", "p_value") if a["p_value"] is not None else ("statistic",):
                        x, y = a[value], b[value]
                        relative = abs(x - y) / abs(x) if x else abs(y)
                        key = f"{test} {value} ({binning})"
                        worst[key] = max(worst.get(key, 0.0), relative)
                        same = "same" if a["drift_detected"] == b["drift_detected"] else "DIFFERENT"
                        print(
                            f"| {test} {value} | {binning} | {column} | {x:.6g} | {y:.6g} | {relative:.1e} | {same} |"
                        )
        print()
        for test, value in worst.items():
            print(f"worst relative difference, {test}: {value:.1e}")


if __name__ == "__main__":
    main()
