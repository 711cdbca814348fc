"""What the calibrated verdict, segments and time chunks add to ``churnops monitor``'s time.

The nightly case: the reference profile is cached (a first, unmeasured run of each variant
builds it), ``churnops monitor`` reads the batch and writes every output. Each run is its own
process under ``/usr/bin/time -v`` (wall time, user + system CPU, peak RSS); the variants are
interleaved round after round so that a noisy neighbour hits them all alike, and each is
reported as the median of the rounds and as a ratio to the plain run of the same round.

Variants:

* ``plain``: ``--verdict evidently`` (the default rule);
* ``calibrated``: ``--verdict calibrated``;
* ``segments``: ``--segment "Customer Segment"`` (implies calibrated);
* ``segments + chunks``: the same with ``--chunk-by size:N`` (10 chunks).

Usage::

    python benchmarks/bench_verdict_cost.py                    # 1M rows a side, 3 rounds
    python benchmarks/bench_verdict_cost.py --rows 100000 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PREPARE = r"""
import sys
from pathlib import Path
from churnops.data.generator import generate_reference
from churnops.data.scenarios import apply_scenario, resolve_scenario
rows, folder = int(sys.argv[1]), Path(sys.argv[2])
population = generate_reference(2 * rows, seed=42)
reference, current = population[:rows], population[rows:]
current, _ = apply_scenario(current, resolve_scenario("seed"), 1.0, seed=1)
reference.write_csv(folder / "reference.csv")
current.write_csv(folder / "current.csv")
"""


def variants(rows: int) -> dict[str, list[str]]:
    chunk = max(rows // 10, 1)
    return {
        "plain": ["--verdict", "evidently"],
        "calibrated": ["--verdict", "calibrated"],
        "segments": ["--segment", "Customer Segment"],
        "segments + chunks": ["--segment", "Customer Segment", "--chunk-by", f"size:{chunk}"],
    }


def measure(command: list[str], cwd: Path) -> dict[str, float]:
    """One process under /usr/bin/time -v: wall s, CPU s, peak RSS MiB."""
    done = subprocess.run(["/usr/bin/time", "-v", *command], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-2000:]}")
    text = done.stderr

    def field(name: str) -> str:
        found = re.search(rf"^\s*{re.escape(name)}: (.+)$", text, re.MULTILINE)
        if not found:
            sys.exit(f"/usr/bin/time gave no '{name}'")
        return found.group(1).strip()

    wall = 0.0
    for part in field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"):
        wall = wall * 60 + float(part)
    cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
    rss = int(field("Maximum resident set size (kbytes)")) / 1024
    return {"wall_s": wall, "cpu_s": cpu, "rss_mib": rss}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in each file (default 1,000,000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/verdict_cost.json"))
    args = parser.parse_args(argv)
    if not Path("/usr/bin/time").exists():
        parser.error("/usr/bin/time is needed (Debian package 'time')")
    churnops = shutil.which("churnops", path=str(Path(sys.executable).parent)) or shutil.which("churnops")
    if churnops is None:
        parser.error("the churnops command is not installed in this environment")

    with tempfile.TemporaryDirectory(prefix="churnops-cost-") as tmp:
        folder = Path(tmp)
        print(f"generating {args.rows:,} + {args.rows:,} rows ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-c", PREPARE, str(args.rows), str(folder)], check=True)
        table = variants(args.rows)
        commands: dict[str, tuple[list[str], Path]] = {}
        for name, extra in table.items():
            workspace = folder / re.sub(r"\W+", "-", name)
            workspace.mkdir()
            command = [
                churnops, "-q", "monitor", "--reference", str(folder / "reference.csv"),
                "--current", str(folder / "current.csv"), *extra,
            ]  # fmt: skip
            commands[name] = (command, workspace)
            measure(command, workspace)  # builds this variant's cached reference profile
        results: dict[str, list[dict[str, float]]] = {name: [] for name in table}
        for round_ in range(args.rounds):
            for name, (command, workspace) in commands.items():
                results[name].append(measure(command, workspace))
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    rows = []
    for name, runs in results.items():
        ratios = [run["cpu_s"] / base["cpu_s"] for run, base in zip(runs, results["plain"], strict=True)]
        walls = [run["wall_s"] / base["wall_s"] for run, base in zip(runs, results["plain"], strict=True)]
        rows.append({
            "variant": name,
            "wall_s": statistics.median(r["wall_s"] for r in runs),
            "cpu_s": statistics.median(r["cpu_s"] for r in runs),
            "rss_mib": statistics.median(r["rss_mib"] for r in runs),
            "cpu_vs_plain": statistics.median(ratios),
            "wall_vs_plain": statistics.median(walls),
            "runs": runs,
        })  # fmt: skip
    print(
        f"\n`churnops monitor`, {args.rows:,} rows a side, cached reference profile, median of {args.rounds} rounds\n"
    )
    print("| Variant | Wall s | CPU s | Peak RSS MiB | Wall vs plain | CPU vs plain |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['variant']} | {row['wall_s']:.2f} | {row['cpu_s']:.2f} | {row['rss_mib']:.0f} "
            f"| {row['wall_vs_plain']:.2f}x | {row['cpu_vs_plain']:.2f}x |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"rows_each": args.rows, "cores": os.cpu_count(), "variants": rows}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
