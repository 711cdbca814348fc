"""The seed's own case, cold: what one nightly ``churnops monitor`` and ``churnops pipeline`` cost.

Every measurement is one process started from scratch (Python, imports, work, every output
written); its wall time, CPU time (user + system) and peak RSS come from ``os.wait4``, the
kernel's rusage of exactly that child. Rounds are interleaved so every figure of a round shares
the machine's load (printed beside the table).

* ``monitor, no profile cache``: ``churnops monitor --no-cache`` on the demo data (reference =
  the embedded rows [0, 20000), batch = 10,000 rows with the seed drift, 16 monitored columns,
  CSV): reads and profiles the reference, reads the batch, tests, writes the metrics, both
  reports, the stylesheet, the trigger and the history row;
* ``monitor, cached profile``: the same with the reference profile from the cache (the nightly
  case once ``churnops profile build`` or a first run has made it);
* ``pipeline (demo)``: ``churnops pipeline`` in a ``churnops demo`` workspace after its setup:
  monitoring, check, DVC versioning of a new batch (``dvc add``, a git commit, ``dvc push``
  to the local remote), the notification (a file: no server);
* ``read floor``: ``python -c "import polars; polars.read_csv(...)"`` of both files.

It then runs one ``python -X importtime`` of the cached monitor and prints the import cost of
each top-level package, and the per-stage timings the run wrote in its metrics.

Usage::

    python benchmarks/bench_seed.py               # 5 rounds
    python benchmarks/bench_seed.py --rounds 9
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

CHURNOPS = [sys.executable, "-m", "churnops"]


def measure(command: list[str], cwd: Path) -> dict[str, float]:
    """Run ``command`` in ``cwd``; wall and CPU seconds, peak RSS (MiB)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(command)} failed in {cwd}:\n{err.read().decode(errors='replace')}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024}


def prepare(root: Path) -> tuple[Path, Path]:
    """A monitoring workspace and a demo workspace, set up once."""
    plain, demo = root / "monitor", root / "demo"
    plain.mkdir()
    for args in (["data", "init"], ["generate"], ["monitor"]):  # the last one caches the profile
        subprocess.run([*CHURNOPS, "-q", *args], cwd=plain, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*CHURNOPS, "-q", "demo", str(demo)], check=True, stdout=subprocess.DEVNULL)
    return plain, demo


def imports(plain: Path) -> list[tuple[str, float]]:
    """Milliseconds of import per top-level package in one cached ``churnops monitor``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "churnops", "-q", "monitor"],
        cwd=plain,
        capture_output=True,
        text=True,
        check=True,
    )
    own: Counter[str] = Counter()
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \| \s*(\S+)", line)
        if match:
            own[match.group(2).split(".")[0]] += int(match.group(1))
    return [(name, micros / 1000) for name, micros in own.most_common(12)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    env_note = (
        "" if os.environ.get("PYTHONDONTWRITEBYTECODE") is None else " (PYTHONDONTWRITEBYTECODE is set: unset it)"
    )
    with tempfile.TemporaryDirectory() as scratch:
        plain, demo = prepare(Path(scratch))
        data = plain / "data"
        reading = "import polars as pl, sys; pl.read_csv(sys.argv[1]); pl.read_csv(sys.argv[2])"
        cases = {
            "monitor, no profile cache": (plain, [*CHURNOPS, "-q", "monitor", "--no-cache"]),
            "monitor, cached profile": (plain, [*CHURNOPS, "-q", "monitor"]),
            "pipeline (demo)": (demo, [*CHURNOPS, "-q", "pipeline"]),
            "read floor (polars, both files)": (
                plain,
                [sys.executable, "-c", reading, str(data / "churn.csv"), str(data / "production/bank_churn_prod.csv")],
            ),
        }
        results: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
        loads = []
        for round_number in range(options.rounds):
            loads.append(os.getloadavg()[0])
            for name, (cwd, command) in cases.items():
                if name.startswith("pipeline"):  # a new batch each round: the DVC stage makes a version
                    subprocess.run(
                        [*CHURNOPS, "-q", "generate", "--seed", str(100 + round_number)],
                        cwd=demo,
                        check=True,
                        stdout=subprocess.DEVNULL,
                    )
                results[name].append(measure(command, cwd))
        print(f"{options.rounds} rounds, load average {min(loads):.1f}-{max(loads):.1f}{env_note}\n")
        print("| case | CPU s median | CPU s min | wall s median | wall s min | peak RSS MiB |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, runs in results.items():
            cpu, wall = [r["cpu"] for r in runs], [r["wall"] for r in runs]
            rss = statistics.median(r["rss"] for r in runs)
            print(
                f"| {name} | {statistics.median(cpu):.2f} | {min(cpu):.2f} | "
                f"{statistics.median(wall):.2f} | {min(wall):.2f} | {rss:.0f} |"
            )
        print("\nImport time per top-level package (ms, one cached monitor, `python -X importtime`):\n")
        print(", ".join(f"{name} {ms:.0f}" for name, ms in imports(plain)))
        subprocess.run([*CHURNOPS, "-q", "monitor", "--no-cache"], cwd=plain, check=True, stdout=subprocess.DEVNULL)
        metrics = json.loads((plain / "monitoring" / "monitoring_metrics.json").read_text())
        stages = ", ".join(f"{key.removesuffix('_s')} {value:.3f}" for key, value in metrics["timings"].items())
        print(f"\nStages of one cold monitor (s, from its metrics): {stages}")


if __name__ == "__main__":
    main()
