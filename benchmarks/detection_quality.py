"""How often each verdict raises data drift: with no drift at all, and for graded shifts.

Protocol (after Rabanser et al., "Failing Loudly", NeurIPS 2019: a fixed significance level,
many repetitions, graded shift intensities): for each sample size ``n``, one pool of ``2 n``
rows is made by the embedded generator (the bank data churnops ships); each repetition splits
it at random into a reference and a current batch of ``n`` rows each, applies a shift to the
current batch (none for the false-alarm rate), and runs the monitoring in process with the
project's default columns and thresholds. One run gives both verdicts: the calibrated one, and
Evidently's rule (each column's own test against its threshold), since a calibrated run also
records what Evidently's rule said for every column. The dataset rule is the same for both:
data drift when the share of drifted feature columns exceeds ``thresholds.dataset_drift`` (0.1,
the seed's rule: 2 of 16 columns), and - what ``thresholds.dataset_drift = 0`` gives - when any
column drifts. Per column: how often a shifted column is flagged, and how often a column that was
not shifted is.

The table (with the binomial error of the repetitions) and a JSON file are written.

Usage::

    python benchmarks/detection_quality.py                       # 1k, 10k, 100k; 200 repetitions
    python benchmarks/detection_quality.py --sizes 1000 --reps 50 --scenarios none seed
    python benchmarks/detection_quality.py --sizes 1000000 --reps 100 --scenarios none
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("POLARS_MAX_THREADS", "1")  # one process per core instead

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from churnops.config import Config  # noqa: E402
from churnops.data.generator import generate_reference  # noqa: E402
from churnops.data.scenarios import SEED_SCENARIO, Operation, apply_scenario, resolve_scenario  # noqa: E402
from churnops.monitor.calibrated import needed_columns  # noqa: E402
from churnops.monitor.chunks import chunks_of  # noqa: E402
from churnops.monitor.engine import monitor_frames  # noqa: E402
from churnops.monitor.profile import build_profile  # noqa: E402
from churnops.monitor.settings import settings_from_config  # noqa: E402

POOL_SEED = 20261204


def scenarios(pool: pl.DataFrame) -> dict[str, tuple[Operation, ...]]:
    """Shifts by name; a mean shift is in standard deviations of the pool's column."""

    def sd(column: str) -> float:
        return float(pool[column].std() or 0.0)

    out: dict[str, tuple[Operation, ...]] = {"none": ()}
    for delta in (0.05, 0.1, 0.2, 0.5):
        out[f"shift {delta} sd, 1 column"] = (Operation("shift", "Credit Score", amount=delta * sd("Credit Score")),)
    for delta in (0.1, 0.2):
        out[f"shift {delta} sd, 3 columns"] = tuple(
            Operation("shift", c, amount=delta * sd(c)) for c in ("Credit Score", "Balance", "Income")
        )
    eight = (
        "Credit Score", "Balance", "Income", "Outstanding Loans",
        "Customer Tenure", "Credit History Length", "Number of Dependents", "NumComplaints",
    )  # fmt: skip
    out["shift 0.1 sd, 8 columns"] = tuple(Operation("shift", c, amount=0.1 * sd(c)) for c in eight)
    out["scale x1.1, 1 column"] = (Operation("scale", "Income", factor=1.1),)
    for points in (1, 5, 10):
        out[f"remix {points} points"] = (Operation("remix", "Customer Segment", share=points / 100, to="SME"),)
    out["missing 5%"] = (Operation("missing", "Outstanding Loans", share=0.05),)
    out["seed"] = SEED_SCENARIO
    out[LABEL_SHIFT] = ()
    out[NULL_SEGMENTS] = ()
    out[INSIDE] = ()
    out[NULL_CHUNKS] = ()
    return out


MULTIVARIATE = ("none (multivariate on)", "correlation (multivariate on)")
"""Run only when named (``--scenarios``): the detectors cost a few seconds a run."""
SEGMENT = "Customer Segment"
INSIDE = "Balance x1.3 inside SME only (segments on)"
LABEL_SHIFT = "label shift: churn rate +10 points"
"""Prior shift: non-churners dropped from the batch until its churn rate is 10 points higher;
each class keeps its own feature distribution, so only the columns related to churn move."""
TARGET = "Churn Flag"
NULL_SEGMENTS = "none (segments on)"
NULL_CHUNKS = "none (5 chunks of rows on)"
"""The batch also cut into 5 runs of rows (``--chunk-by size:n/5``): every chunk's columns count."""


def _run(task: tuple[int, str, int]) -> tuple[str, dict[str, bool]]:
    """One repetition: which rules raise data drift, and whether a shifted column was found."""
    size, scenario, rep = task
    pool = _POOL[size]
    rng = np.random.default_rng([POOL_SEED, size, rep])
    order = rng.permutation(pool.height)
    reference = pool[order[:size]]
    current = pool[order[size : 2 * size]]
    settings = _SETTINGS
    shifted: set[tuple[str, str]] = set()
    also_changed: set[tuple[str, str]] = set()
    if scenario in (INSIDE, NULL_SEGMENTS):
        settings = replace(settings, segments=(SEGMENT,))
    if scenario in MULTIVARIATE:
        settings = replace(settings, multivariate=True)
    if scenario == NULL_CHUNKS:
        settings = replace(settings, chunk_by=f"size:{size // 5}")
    if scenario == INSIDE:
        inside = current[SEGMENT] == "SME"
        current = current.with_columns(
            pl.when(inside).then(pl.col("Balance") * 1.3).otherwise(pl.col("Balance")).alias("Balance")
        )
        shifted = {("SME", "Balance")}
        # the whole batch's Balance changes too (less): flagging it is right, if not the point
        also_changed = {("", "Balance")}
    if scenario == LABEL_SHIFT:
        churned = current[TARGET] == 1
        rate = float(churned.mean() or 0.0)
        keep = int(round(churned.sum() * (1 - rate - 0.1) / (rate + 0.1)))
        stayed = current.filter(~churned)
        current = pl.concat([current.filter(churned), stayed[rng.permutation(stayed.height)[:keep]]])
    operations = _SCENARIOS[size].get(scenario, ())
    if scenario == MULTIVARIATE[1]:
        operations = resolve_scenario("correlation")
    if operations:
        current, _ = apply_scenario(current, operations, 1.0, seed=rep)
        shifted = {("", op.column) for op in operations}
    result = monitor_frames(reference, current, settings)
    if scenario == LABEL_SHIFT:  # any column related to churn may move: all count as found
        shifted = {("", c.name) for c in result.columns if c.role == "feature"}
    # groups of columns: the whole batch's ("") and each tested segment's
    groups: list[tuple[str, list[Any]]] = [("", [c for c in result.columns if c.role == "feature"])]
    if result.segments is not None:
        groups += [(g.value, g.columns) for g in result.segments.groups if g.tested]
    if settings.chunk_by:
        chunks = chunks_of(build_profile(reference, settings), current, settings)
        groups += [(f"chunk {g.label}", g.columns) for g in chunks.groups if g.tested]
    out: dict[str, bool] = {}
    for verdict in ("evidently", "calibrated"):

        def drifted(c: Any, verdict: str = verdict) -> bool:
            if verdict == "calibrated" or c.calibration is None:
                return bool(c.drift_detected)
            return bool(c.calibration.evidently_drift_detected)

        flagged = {(name, c.name) for name, columns in groups for c in columns if drifted(c)}
        out[f"{verdict} share"] = any(
            sum(1 for c in columns if drifted(c)) >= needed_columns(len(columns), _SETTINGS.dataset_drift_threshold)
            for _, columns in groups
            if columns
        )
        out[f"{verdict} any"] = bool(flagged)
        out[f"{verdict} found"] = bool(shifted & flagged)
        out[f"{verdict} other"] = bool(flagged - shifted - also_changed)
    if result.multivariate is not None:
        found = result.multivariate
        out["classifier"] = bool(found.domain_classifier and found.domain_classifier.drift_detected)
        out["pca"] = bool(found.pca_reconstruction and found.pca_reconstruction.drift_detected)
        out["multivariate"] = bool(found.detected)
    return scenario, out


_POOL: dict[int, pl.DataFrame] = {}
_SCENARIOS: dict[int, dict[str, tuple[Operation, ...]]] = {}
_SETTINGS = replace(settings_from_config(Config()), verdict="calibrated")


def _init(sizes: list[int]) -> None:
    for size in sizes:
        pool = generate_reference(rows=2 * size, seed=POOL_SEED)
        _POOL[size] = pool
        _SCENARIOS[size] = scenarios(pool)


def wilson(successes: int, trials: int) -> tuple[float, float]:
    """95% Wilson score interval of a rate."""
    if trials == 0:
        return (0.0, 1.0)
    z = 1.959963984540054
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return (max(0.0, centre - half), min(1.0, centre + half))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--scenarios", nargs="+", default=None, help="names (default: all)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/detection_quality.json"))
    args = parser.parse_args(argv)

    rows: list[dict[str, Any]] = []
    for size in args.sizes:
        started = time.perf_counter()
        _init([size])
        names = args.scenarios or list(_SCENARIOS[size])
        unknown = [n for n in names if n not in _SCENARIOS[size] and n not in MULTIVARIATE]
        if unknown:
            parser.error(f"unknown scenario(s) {unknown}; known: {list(_SCENARIOS[size]) + list(MULTIVARIATE)}")
        tasks = [(size, name, rep) for name in names for rep in range(args.reps)]
        counts: dict[str, dict[str, int]] = {name: {} for name in names}
        # spawned, not forked: a fork of a process that ran polars' thread pool can hang
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=context, initializer=_init, initargs=([size],)) as pool:
            for name, outcome in pool.map(_run, tasks, chunksize=4):
                for key, value in outcome.items():
                    counts[name][key] = counts[name].get(key, 0) + int(value)
        for name in names:
            rows.append({"size": size, "scenario": name, "reps": args.reps, **counts[name]})
        print(f"n={size:,}: {len(tasks)} runs in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    print(
        f"\nRuns raising data drift, {args.reps} repetitions per row. share: more than 10% of the feature "
        "columns drifted (the seed's rule), in the whole batch or (segments on) in one segment; any: at least "
        "one column drifted; found: a shifted column was flagged (segments on: in the shifted segment); "
        "other: a column that was not shifted was flagged (a false alarm on a column). "
        "Figures: Evidently's rule / calibrated.\n"
    )
    print("| n (each side) | shift | share | any | found | other |")
    print("|---:|---|---:|---:|---:|---:|")
    for row in rows:

        def cell(what: str, row: dict[str, Any] = row) -> str:
            ev, cal = row.get(f"evidently {what}", 0), row.get(f"calibrated {what}", 0)
            return f"{ev / row['reps']:.0%} / {cal / row['reps']:.0%}"

        found = "-" if row["scenario"].startswith("none") else cell("found")
        other = "-" if row["scenario"] == LABEL_SHIFT else cell("other")
        print(f"| {row['size']:,} | {row['scenario']} | {cell('share')} | {cell('any')} | {found} | {other} |")
    detectors = [row for row in rows if row["scenario"] in MULTIVARIATE]
    if detectors:
        print("\nMultivariate detectors (each at p <= fdr/2 with its effect floor): runs in which they alarmed\n")
        print("| n (each side) | shift | domain classifier | PCA reconstruction | either |")
        print("|---:|---|---:|---:|---:|")
        for row in detectors:
            cells = [f"{row.get(k, 0) / row['reps']:.1%}" for k in ("classifier", "pca", "multivariate")]
            print(f"| {row['size']:,} | {row['scenario']} | " + " | ".join(cells) + " |")
    lo, hi = wilson(0, args.reps)[1], wilson(round(0.05 * args.reps), args.reps)
    print(f"\n95% interval of a rate with {args.reps} repetitions: 0% -> 0-{lo:.1%}; 5% -> {hi[0]:.1%}-{hi[1]:.1%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
