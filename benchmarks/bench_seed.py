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
* ``monitor, new folder (peers' case)``: what ``bench_peers.py`` measures - ``churnops monitor
  -r reference.csv -p batch.csv --no-cache`` in a new empty folder (no configuration, no
  history yet), on the same two files;
* ``pipeline (demo)``: ``churnops pipeline`` in a ``churnops demo`` workspace after its setup:
  monitoring, check, DVC versioning of a new batch (``dvc add``, a git commit, ``dvc push``
  to the local remote), the notification (a file: no server);
* ``read floor``: ``python -c "import polars; polars.read_csv(...)"`` of both files.

It then runs one ``python -X importtime`` of the cached monitor and prints the import cost of
each top-level package, and the per-stage timings the run wrote in its metrics.

The children run with Python's bytecode cache on (``PYTHONDONTWRITEBYTECODE`` is removed from
their environment), as an installed churnops does: without it every run compiles churnops's
sources again (about 0.1 s of CPU).

Usage::

    python benchmarks/bench_seed.py               # 5 rounds, the churnops on PYTHONPATH
    python benchmarks/bench_seed.py --rounds 9
    python benchmarks/bench_seed.py --rounds 7 --src before=/tmp/old/src --src after=src

With several ``--src LABEL=FOLDER``, each round runs every case for every source in turn (each
source in its own workspaces), so before/after figures share the machine's moods; the table
then also gives each source's CPU time over the first's, median of the rounds' ratios.
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
import time
from collections import Counter
from pathlib import Path

CHURNOPS = [sys.executable, "-m", "churnops"]


def measure(command: list[str], cwd: Path, env: dict[str, str]) -> dict[str, float]:
    """Run ``command`` in ``cwd``; wall and CPU seconds, peak RSS (MiB)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(command)} failed in {cwd}:\n{err.read().decode(errors='replace')}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024}


def prepare(root: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """A monitoring workspace and a demo workspace, set up once."""
    plain, demo = root / "monitor", root / "demo"
    plain.mkdir(parents=True)
    for args in (["data", "init"], ["generate"], ["monitor"]):  # the last one caches the profile
        subprocess.run([*CHURNOPS, "-q", *args], cwd=plain, check=True, stdout=subprocess.DEVNULL, env=env)
    subprocess.run([*CHURNOPS, "-q", "demo", str(demo)], check=True, stdout=subprocess.DEVNULL, env=env)
    return plain, demo


def imports(plain: Path, env: dict[str, str]) -> list[tuple[str, float]]:
    """Milliseconds of import per top-level package in one cached ``churnops monitor``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "churnops", "-q", "monitor"],
        cwd=plain,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    own: Counter[str] = Counter()
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \| \s*(\S+)", line)
        if match:
            own[match.group(2).split(".")[0]] += int(match.group(1))
    return [(name, micros / 1000) for name, micros in own.most_common(12)]


def sources_of(items: list[str]) -> dict[str, dict[str, str]]:
    """``LABEL=FOLDER`` items as the environment of each source's children."""
    base = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PYTHONDONTWRITEBYTECODE")}
    sources = {}
    for item in items or ["current="]:
        name, _, folder = item.partition("=")
        env = dict(base)
        if folder:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(folder).resolve()), base.get("PYTHONPATH")]))
        sources[name] = env
    return sources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--src", action="append", default=[], help="LABEL=FOLDER: a churnops source folder to benchmark (repeatable)"
    )
    options = parser.parse_args()
    sources = sources_of(options.src)
    with tempfile.TemporaryDirectory() as scratch:
        workspaces = {name: prepare(Path(scratch) / name, env) for name, env in sources.items()}
        data = next(iter(workspaces.values()))[0] / "data"
        files = [str(data / "churn.csv"), str(data / "production/bank_churn_prod.csv")]
        reading = "import polars as pl, sys; pl.read_csv(sys.argv[1]); pl.read_csv(sys.argv[2])"
        fresh = Path(scratch) / "fresh"
        cases = {
            "monitor, no profile cache": ("plain", [*CHURNOPS, "-q", "monitor", "--no-cache"]),
            "monitor, cached profile": ("plain", [*CHURNOPS, "-q", "monitor"]),
            "monitor, new folder (peers' case)": (
                "fresh",
                [*CHURNOPS, "-q", "monitor", "-r", files[0], "-p", files[1], "--no-cache"],
            ),
            "pipeline (demo)": ("demo", [*CHURNOPS, "-q", "pipeline"]),
        }
        results: dict[tuple[str, str], list[dict[str, float]]] = {}
        loads = []
        for round_number in range(options.rounds):
            loads.append(os.getloadavg()[0])
            for name, env in sources.items():
                plain, demo = workspaces[name]
                for case, (where, command) in cases.items():
                    if where == "demo":  # a new batch each round: the DVC stage makes a version
                        subprocess.run(
                            [*CHURNOPS, "-q", "generate", "--seed", str(100 + round_number)],
                            cwd=demo,
                            check=True,
                            stdout=subprocess.DEVNULL,
                            env=env,
                        )
                    if where == "fresh":
                        shutil.rmtree(fresh, ignore_errors=True)
                        fresh.mkdir()
                    cwd = {"plain": plain, "demo": demo, "fresh": fresh}[where]
                    results.setdefault((case, name), []).append(measure(command, cwd, env))
            floor = [sys.executable, "-c", reading, *files]
            results.setdefault(("read floor (polars, both files)", ""), []).append(
                measure(floor, Path(scratch), next(iter(sources.values())))
            )
        print(f"{options.rounds} rounds, load average {min(loads):.1f}-{max(loads):.1f}\n")
        several = len(sources) > 1
        first = next(iter(sources))
        print(
            f"| case |{' source |' if several else ''} CPU s median | CPU s min | wall s median | wall s min "
            f"| peak RSS MiB |{' CPU vs ' + first + ' |' if several else ''}"
        )
        print(f"|---|{'---|' if several else ''}---:|---:|---:|---:|---:|{'---:|' if several else ''}")
        for (case, name), runs in results.items():
            cpu, wall = [r["cpu"] for r in runs], [r["wall"] for r in runs]
            rss = statistics.median(r["rss"] for r in runs)
            row = f"| {case} |{f' {name} |' if several else ''} {statistics.median(cpu):.2f} | {min(cpu):.2f} | "
            row += f"{statistics.median(wall):.2f} | {min(wall):.2f} | {rss:.0f} |"
            if several:
                base = results.get((case, first))
                ratio = (
                    statistics.median(r["cpu"] / b["cpu"] for r, b in zip(runs, base, strict=True))
                    if base and name
                    else None
                )
                row += f" {ratio:.2f}x |" if ratio is not None else " |"
            print(row)
        for name, env in sources.items():
            plain, _ = workspaces[name]
            label = f" ({name})" if several else ""
            print(f"\nImport time per top-level package{label} (ms, one cached monitor, `python -X importtime`):\n")
            print(", ".join(f"{package} {ms:.0f}" for package, ms in imports(plain, env)))
            subprocess.run(
                [*CHURNOPS, "-q", "monitor", "--no-cache"], cwd=plain, check=True, stdout=subprocess.DEVNULL, env=env
            )
            metrics = json.loads((plain / "monitoring" / "monitoring_metrics.json").read_text())
            stages = ", ".join(f"{key.removesuffix('_s')} {value:.3f}" for key, value in metrics["timings"].items())
            print(f"\nStages of one cold monitor{label} (s, from its metrics): {stages}")


if __name__ == "__main__":
    main()
