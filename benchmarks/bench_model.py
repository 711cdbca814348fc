"""The model commands, cold: ``train``, ``predict`` on 10k rows, ``monitor`` without and with a champion.

Every measurement is one ``churnops`` process started from scratch (Python, imports, work);
its wall time, CPU time (user + system) and peak RSS come from ``os.wait4`` - the kernel's
rusage of exactly that child. All commands run in one invocation, round after round, so that
the ratios compare runs made under the same machine load; the load average is printed beside
each figure because the development machine is shared.

Two workspaces hold the same data (``churnops data init``: the embedded 30,000 customers,
reference = rows [0, 20000); ``churnops generate``: a 10,000-row production batch with the seed
drift): ``plain`` never gets a model, ``model`` gets one from ``train`` in every round.

* ``monitor, no champion``: ``churnops monitor`` in ``plain`` (reference profile cached);
* ``train``: ``churnops train`` in ``model`` - a new version becomes the champion;
* ``predict 10k``: ``churnops predict`` of the production batch, written as CSV;
* ``monitor, champion (cold cache)``: the first monitor after training: the champion also
  scores the 20,000 reference rows and caches them;
* ``monitor, champion``: the nightly case - the reference scores come from the cache;
* ``import floor``: ``python -c "import skops.io"`` - what any process that loads a skops model
  pays before doing anything (skops lists every scikit-learn estimator when imported).

Usage::

    python benchmarks/bench_model.py                    # 3 rounds, the churnops on PYTHONPATH
    python benchmarks/bench_model.py --rounds 5 --src before=/tmp/old/src --src after=src

With several ``--src LABEL=FOLDER``, each round runs every command for every source in turn
(each source in its own workspaces), so before/after figures share the machine's moods.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = [
    ("monitor, no champion", "plain", ["monitor"]),
    ("train", "model", ["train"]),
    ("predict 10k", "model", ["predict", "-i", "data/production/bank_churn_prod.csv", "-o", "scored.csv"]),
    ("monitor, champion (cold cache)", "model", ["monitor"]),
    ("monitor, champion", "model", ["monitor"]),
]
FLOOR = ("import floor (skops.io)", "plain", None)


def measure(command: list[str], cwd: Path, env: dict[str, str]) -> dict[str, float]:
    """Run ``command`` in ``cwd``; wall and CPU seconds, peak RSS (MiB), load average before."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command[2:5])} failed: {stderr[-2000:]}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "load": load,
    }


def churnops(*args: str) -> list[str]:
    return [sys.executable, "-m", "churnops", *args]


def prepare(root: Path, env: dict[str, str]) -> None:
    for name in ("plain", "model"):
        folder = root / name
        folder.mkdir()
        for args in (["data", "init"], ["generate"], ["profile", "build"]):
            subprocess.run(churnops(*args), cwd=folder, env=env, check=True, capture_output=True)


def run(rounds: int, sources: dict[str, dict[str, str]]) -> dict[str, dict[str, list[dict[str, float]]]]:
    results = {name: {label: [] for label, _, _ in [*COMMANDS, FLOOR]} for name in sources}
    with tempfile.TemporaryDirectory(prefix="bench-model-") as scratch:
        for name, env in sources.items():
            (Path(scratch) / name).mkdir()
            prepare(Path(scratch) / name, env)
        for round_number in range(1, rounds + 1):
            for name, env in sources.items():
                root = Path(scratch) / name
                for label, workspace, args in [*COMMANDS, FLOOR]:
                    command = churnops(*args) if args else [sys.executable, "-c", "import skops.io"]
                    figures = measure(command, root / workspace, env)
                    results[name][label].append(figures)
                    print(
                        f"round {round_number} {name:8s} {label:32s} {figures['wall_s']:6.2f} s wall "
                        f"{figures['cpu_s']:6.2f} s CPU {figures['peak_rss_mib']:5.0f} MiB "
                        f"(load {figures['load']:.1f})",
                        file=sys.stderr,
                        flush=True,
                    )
    return results


def table(results: dict[str, list[dict[str, float]]]) -> str:
    """Medians per command, and the monitor ratios computed round by round."""
    lines = [
        "| command | wall s (median) | CPU s (median) | peak RSS MiB (max) | load average (median) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, runs in results.items():
        lines.append(
            f"| {label} | {statistics.median(r['wall_s'] for r in runs):.2f} "
            f"| {statistics.median(r['cpu_s'] for r in runs):.2f} "
            f"| {max(r['peak_rss_mib'] for r in runs):.0f} "
            f"| {statistics.median(r['load'] for r in runs):.1f} |"
        )
    plain = results["monitor, no champion"]
    for label in ("monitor, champion", "monitor, champion (cold cache)"):
        wall = statistics.median(a["wall_s"] / b["wall_s"] for a, b in zip(results[label], plain, strict=True))
        cpu = statistics.median(a["cpu_s"] / b["cpu_s"] for a, b in zip(results[label], plain, strict=True))
        lines.append(f"\n{label} / monitor, no champion: {wall:.2f}x wall, {cpu:.2f}x CPU (median of rounds)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--src", action="append", default=[], help="LABEL=FOLDER: a churnops source folder to benchmark (repeatable)"
    )
    options = parser.parse_args()
    base = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    sources: dict[str, dict[str, str]] = {}
    for item in options.src or ["current="]:
        name, _, folder = item.partition("=")
        env = dict(base)
        if folder:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(folder).resolve()), base.get("PYTHONPATH")]))
        sources[name] = env
    for name, results in run(options.rounds, sources).items():
        print(f"\n### {name}\n\n{table(results)}")


if __name__ == "__main__":
    main()
