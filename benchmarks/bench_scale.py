"""Scale benchmark: exact vs streaming vs Dask vs Spark vs Evidently, wide tables, a 100M-row batch.

Every measurement is one ``churnops monitor`` process (or one Evidently process) started under
``/usr/bin/time -v``: the wall time and "Maximum resident set size" come from GNU time.
For Dask and Spark, whose workers are separate processes (Spark's JVM and its Python workers),
the peak of the *sum* of the RSS of the whole process tree is sampled every 50 ms as well
(``tree MiB``); GNU time's figure is then the driver's (this Python process).

    python benchmarks/bench_scale.py rows --sizes 10000,100000,1000000,10000000
    python benchmarks/bench_scale.py wide --rows 100000 --columns 1000
    python benchmarks/bench_scale.py big --rows 100000000        # ~3 GB of Parquet in --data
    python benchmarks/bench_scale.py big --rows 10000000 --engines streaming,dask,spark
    python benchmarks/bench_scale.py labels --rows 1000000        # ~20 GB of CSV in --data

Data are generated once into ``--data`` (default: $TMPDIR/churnops-bench) and reused:
the embedded bank generator (reference and a batch with the seed drift, each of the given
size; for ``big``, 10M generated rows written 10 times with distinct customer ids, against a
cached profile of the 20,000-row reference window); for ``wide``, synthetic columns (60%
numerical, 20% small integers, 20% text categories) with a shift in one column in ten; for
``labels``, a reference and a batch of ``--rows`` rows each whose categorical column holds a
distinct label of ``--length`` characters on every row (CSV and Parquet).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

GNU_TIME = "/usr/bin/time"
COMMON = ["--no-cache", "--set", "history.enabled=false", "--set", "model.monitor='off'"]

EVIDENTLY = r"""
import sys, warnings
warnings.simplefilter("ignore")
import pandas as pd
from evidently import Dataset, DataDefinition, Report
from evidently.presets import DataDriftPreset
def load(path):
    frame = pd.read_parquet(path).drop(columns=["CustomerId", "Surname", "First Name", "Churn Flag"])
    # churnops monitors Date of Birth as days since 1970; give Evidently the same numbers
    frame["Date of Birth"] = (pd.to_datetime(frame["Date of Birth"]) - pd.Timestamp("1970-01-01")).dt.days.astype(float)
    return frame
ref, cur = load(sys.argv[1]), load(sys.argv[2])
numerical = [c for c in ref.columns if ref[c].dtype.kind == "f" or (ref[c].dtype.kind == "i" and ref[c].nunique() > 10)]
categorical = [c for c in ref.columns if c not in numerical]
definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
Report([DataDriftPreset()]).run(current_data=Dataset.from_pandas(cur, data_definition=definition),
                                reference_data=Dataset.from_pandas(ref, data_definition=definition))
"""


def measure(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``command`` under /usr/bin/time -v; wall seconds, GNU time's max RSS and the process tree's peak RSS."""
    process = subprocess.Popen(
        [GNU_TIME, "-v", *command], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(process.pid)
        while not stop.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    assert wall and rss, stderr
    parts = [float(p) for p in wall.group(1).split(":")]
    seconds = sum(v * 60 ** (len(parts) - 1 - i) for i, v in enumerate(parts))
    return {"s": seconds, "rss_mib": int(rss.group(1)) / 1024, "tree_mib": peak / 2**20}


def churnops(*args: str) -> list[str]:
    return [sys.executable, "-m", "churnops", "-q", "monitor", *args]


def bank_data(folder: Path, rows: int) -> tuple[Path, Path]:
    ref, cur = folder / f"ref_{rows}.parquet", folder / f"cur_{rows}.parquet"
    if not cur.exists():
        code = (
            "import sys; from churnops.data.generator import generate_reference;"
            "from churnops.data.scenarios import apply_scenario, resolve_scenario;"
            f"d = generate_reference({2 * rows}, 42); d[:{rows}].write_parquet(sys.argv[1]);"
            f"c, _ = apply_scenario(d[{rows}:], resolve_scenario('seed'), 1.0, 1); c.write_parquet(sys.argv[2])"
        )
        subprocess.run([sys.executable, "-c", code, str(ref), str(cur)], check=True)
    return ref, cur


def rows_table(folder: Path, sizes: list[int], engines: list[str]) -> None:
    print("| rows (ref = cur) | engine | s | peak RSS MiB (GNU time) | tree MiB | rows/s | vs Evidently |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for rows in sizes:
        ref, cur = bank_data(folder, rows)
        results: dict[str, dict[str, float]] = {}
        for engine in engines:
            if engine == "evidently":
                command = [sys.executable, "-c", EVIDENTLY, str(ref), str(cur)]
            elif engine in ("dask", "spark"):
                command = churnops("-r", str(ref), "-p", str(cur), "--engine", engine, "--mode", "streaming", *COMMON)
            else:
                command = churnops("-r", str(ref), "-p", str(cur), "--mode", engine, *COMMON)
            results[engine] = measure(command, folder)
        base = results.get("evidently")
        for engine, r in results.items():
            ratio = f"{base['s'] / r['s']:.1f}x faster" if base and engine != "evidently" else "-"
            print(
                f"| {rows:,} | {engine} | {r['s']:.2f} | {r['rss_mib']:.0f} | {r['tree_mib']:.0f} | "
                f"{rows / r['s']:,.0f} | {ratio} |",
                flush=True,
            )


def wide_data(folder: Path, rows: int, columns: int) -> tuple[Path, Path]:
    ref, cur = folder / f"wide_ref_{rows}x{columns}.parquet", folder / f"wide_cur_{rows}x{columns}.parquet"
    if cur.exists():
        return ref, cur
    import numpy as np
    import polars as pl

    def make(seed: int, shift: float) -> pl.DataFrame:
        rng = np.random.default_rng(seed)
        data: dict[str, object] = {}
        labels = np.array([f"c{j}" for j in range(12)])
        for i in range(columns):
            kind = i % 10
            moved = shift if i % 10 == 0 else 0.0
            if kind < 6:
                data[f"x{i}"] = rng.normal(moved, 1, rows) if kind % 2 else rng.lognormal(3 + moved, 1, rows)
            elif kind < 8:
                data[f"n{i}"] = rng.integers(0, 5, rows)
            else:
                data[f"c{i}"] = labels[rng.integers(0, 12, rows)]
        return pl.DataFrame(data)

    make(1, 0.0).write_parquet(ref)
    make(2, 0.3).write_parquet(cur)
    make(1, 0.0).write_csv(ref.with_suffix(".csv"))
    make(2, 0.3).write_csv(cur.with_suffix(".csv"))
    return ref, cur


def wide_table(folder: Path, rows: int, columns: int) -> None:
    ref, cur = wide_data(folder, rows, columns)
    print(f"| {rows:,} rows x {columns:,} columns | format | mode | s | peak RSS MiB |")
    print("|---|---|---|---:|---:|")
    for fmt in ("parquet", "csv"):
        for mode in ("auto", "streaming"):
            r, c = ref.with_suffix(f".{fmt}"), cur.with_suffix(f".{fmt}")
            result = measure(
                churnops("-r", str(r), "-p", str(c), "--mode", mode, "--set", "columns.target=''", *COMMON), folder
            )
            label = "auto (exact)" if mode == "auto" else mode
            print(
                f"| cold (profile + batch) | {fmt} | {label} | {result['s']:.1f} | {result['rss_mib']:.0f} |",
                flush=True,
            )


def big_run(folder: Path, rows: int, distinct: int, engines: list[str]) -> None:
    batch = folder / f"batch_{rows}.parquet"
    reference = folder / "reference_30k.csv"
    if not reference.exists():
        subprocess.run(
            [sys.executable, "-m", "churnops", "-q", "data", "init", "-o", str(reference)], cwd=folder, check=True
        )
    if not batch.exists():
        code = (
            "import sys, polars as pl, pyarrow.parquet as pq\n"
            "from churnops.data.generator import generate_reference\n"
            "from churnops.data.scenarios import apply_scenario, resolve_scenario\n"
            f"rows, distinct = {rows}, {distinct}\n"
            "base, _ = apply_scenario(generate_reference(distinct, 7), resolve_scenario('seed'), 1.0, 1)\n"
            "writer = None\n"
            "for k in range(rows // distinct):\n"
            "    part = base.with_columns(pl.col('CustomerId') + k * distinct * 10).to_arrow()\n"
            "    writer = writer or pq.ParquetWriter(sys.argv[1], part.schema, compression='zstd')\n"
            "    writer.write_table(part, row_group_size=1_000_000)\n"
            "writer.close()\n"
        )
        subprocess.run([sys.executable, "-c", code, str(batch)], check=True)
    window = ["-r", str(reference), "--reference-rows", "0:20000", "--set", "history.enabled=false"]
    build = [sys.executable, "-m", "churnops", "-q", "profile", "build", *window[:4], "--mode", "streaming"]
    subprocess.run(build, cwd=folder, check=True)  # the streaming profile every engine here reads
    size = batch.stat().st_size / 2**30
    print("| batch | rows | file GiB | engine | s | peak RSS MiB (GNU time) | tree MiB | rows/s | drifted |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---|")
    for engine in engines:
        mode = "native" if engine == "streaming" else engine
        options = ["--engine", mode, "--mode", "streaming", "--jobs", str(os.cpu_count() or 1)]
        result = measure(churnops(*window, "-p", str(batch), "--set", "model.monitor='off'", *options), folder)
        metrics = json.loads((folder / "monitoring" / "monitoring_metrics.json").read_text())
        drifted = ", ".join(metrics["dataset_drift"]["drifted_columns"])
        print(f"| Parquet, 20 columns, cached reference profile | {rows:,} | {size:.1f} | {engine} | "
              f"{result['s']:.1f} | {result['rss_mib']:.0f} | {result['tree_mib']:.0f} | {rows / result['s']:,.0f} | "
              f"{drifted} |", flush=True)  # fmt: skip


def labels_data(folder: Path, rows: int, length: int) -> dict[str, tuple[Path, Path]]:
    """Reference and batch with a distinct ``length``-character label on every row, written in
    pieces (the CSV files are ``rows * length`` bytes each)."""
    files = {fmt: (folder / f"labels_ref_{rows}x{length}.{fmt}", folder / f"labels_cur_{rows}x{length}.{fmt}")
             for fmt in ("csv", "parquet")}  # fmt: skip
    if all(path.exists() for pair in files.values() for path in pair):
        return files
    import numpy as np
    import polars as pl
    import pyarrow.parquet as pq

    piece = max(1, min(rows, (256 << 20) // length))
    for side, (csv, parquet) in zip(("ref", "cur"), zip(*files.values(), strict=True), strict=True):
        rng = np.random.default_rng(1 if side == "ref" else 2)
        writer = None
        with csv.open("wb") as handle:
            for start in range(0, rows, piece):
                n = min(piece, rows - start)
                frame = pl.DataFrame({"x": rng.normal(0.0 if side == "ref" else 0.1, 1.0, n)}).with_columns(
                    (pl.lit("y" * length) + pl.format(f"-{side}-{{}}", pl.int_range(start, start + n))).alias("label")
                )
                frame.write_csv(handle, include_header=start == 0)
                table = frame.to_arrow()
                writer = writer or pq.ParquetWriter(parquet, table.schema, compression="zstd")
                writer.write_table(table)
        assert writer is not None
        writer.close()
    return files


def labels_table(folder: Path, rows: int, length: int, modes: list[str]) -> None:
    files = labels_data(folder, rows, length)
    print(f"| {rows:,} rows, distinct {length:,}-character labels (ref = batch) | format | file GiB | mode | s | "
          "peak RSS MiB (GNU time) | rows/s |")  # fmt: skip
    print("|---|---|---:|---|---:|---:|---:|")
    for fmt, (ref, cur) in files.items():
        for mode in modes:
            options = ["--set", 'columns.categorical=["label"]', "--set", "columns.target=''"]
            result = measure(churnops("-r", str(ref), "-p", str(cur), "--mode", mode, *options, *COMMON), folder)
            size = cur.stat().st_size / 2**30
            print(
                f"| cold (profile + batch) | {fmt} | {size:.2f} | {mode} | {result['s']:.1f} | "
                f"{result['rss_mib']:.0f} | {rows / result['s']:,.0f} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["rows", "wide", "big", "labels"])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "churnops-bench")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--engines", help="rows: exact,streaming,dask,spark,evidently; big: streaming,dask,spark")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--columns", type=int, default=1000)
    parser.add_argument("--distinct", type=int, default=10_000_000)
    parser.add_argument("--length", type=int, default=10_000, help="label length for 'labels'")
    parser.add_argument("--modes", default="exact,streaming", help="modes for 'labels'")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM")
    if args.what == "rows":
        rows_table(
            args.data,
            [int(s) for s in args.sizes.split(",")],
            (args.engines or "exact,streaming,dask,evidently").split(","),
        )
    elif args.what == "wide":
        wide_table(args.data, args.rows or 100_000, args.columns)
    elif args.what == "labels":
        labels_table(args.data, args.rows or 1_000_000, args.length, args.modes.split(","))
    else:
        big_run(
            args.data,
            args.rows or 100_000_000,
            min(args.distinct, args.rows or 100_000_000),
            (args.engines or "streaming").split(","),
        )


if __name__ == "__main__":
    main()
