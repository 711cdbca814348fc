"""`churnops monitor` on a batch in S3 against the same batch on local disk.

Starts moto's S3 server on 127.0.0.1 (a real S3 HTTP API, objects kept in its memory), uploads a
Parquet batch of --rows rows (the bank data with the seed drift), and runs, each in a new process
under /usr/bin/time -v and interleaved round by round: the local file; the s3:// URL of the
object (read in place: byte ranges of its row groups, nothing written to disk); and the URL of a
prefix holding it (copied into the workspace in blocks, then read as a local file). Prints wall
time, CPU time and peak RSS (median of --rounds), the object's size and the bytes fetched.

    python benchmarks/bench_storage.py --rows 10000000 --rounds 3

--clients compares the two S3 clients churnops could use on the same object, in this process:
pyarrow's (pyarrow.fs.S3FileSystem, what churnops uses) and fsspec's (s3fs): the whole object read
in 8 MiB blocks, and the Parquet batch read column-chunk by column-chunk with pre-buffering.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path
from typing import Any

AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}


def timed(command: list[str], cwd: Path) -> dict[str, float]:
    done = subprocess.run(
        ["/usr/bin/time", "-v", *command], cwd=cwd, capture_output=True, text=True, env={**os.environ, **AWS}
    )
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stderr[-2000:]}")

    def field(name: str) -> str:
        match = re.search(rf"{re.escape(name)}: (.+)", done.stderr)
        assert match, name
        return match.group(1).strip()

    clock = field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")
    wall = sum(float(part) * 60**i for i, part in enumerate(reversed(clock)))
    cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
    fetched = re.search(r"([\d,]+) (?:of [\d,]+ )?bytes fetched", done.stderr)
    return {
        "wall": wall,
        "cpu": cpu,
        "rss": int(field("Maximum resident set size (kbytes)")) / 1024,
        "fetched": float(fetched.group(1).replace(",", "")) if fetched else 0.0,
    }


def compare_clients(port: int, rounds: int, size: int) -> None:
    """Whole-object and Parquet reads of bench/batch.parquet through pyarrow's and fsspec's clients."""
    import time

    import pyarrow.fs as pafs
    import pyarrow.parquet as pq
    import s3fs

    endpoint = f"http://127.0.0.1:{port}"
    arrow = pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", region="us-east-1")
    fsspec = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint, "region_name": "us-east-1"})
    wrapped = pafs.PyFileSystem(pafs.FSSpecHandler(fsspec))

    def whole(fs: Any) -> None:
        with fs.open_input_stream("bench/batch.parquet") as source:
            while source.read(8 << 20):
                pass

    def parquet(fs: Any) -> None:
        handle = pq.ParquetFile(fs.open_input_file("bench/batch.parquet"), pre_buffer=True)
        for _ in handle.iter_batches(batch_size=262_144):
            pass

    timings: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for client, fs in (("pyarrow.fs", arrow), ("fsspec (s3fs)", wrapped)):
            for what, read in (("whole object, 8 MiB blocks", whole), ("Parquet, all row groups", parquet)):
                started = time.perf_counter()
                read(fs)
                timings.setdefault((client, what), []).append(time.perf_counter() - started)
    print(f"object of {size / 2**20:.1f} MiB; median of {rounds} rounds")
    print("| client | read | seconds | MiB/s |")
    print("|---|---|---:|---:|")
    for (client, what), seconds in timings.items():
        median = statistics.median(seconds)
        print(f"| {client} | {what} | {median:.2f} | {size / 2**20 / median:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", action="store_true", help="compare pyarrow's and fsspec's S3 clients only")
    args = parser.parse_args()
    import pyarrow.fs as pafs

    import churnops

    with tempfile.TemporaryDirectory(prefix="churnops-bench-storage-") as scratch:
        root = Path(scratch)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for _ in range(600):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).close()
                    break
                except OSError:
                    threading.Event().wait(0.05)
            subprocess.run([sys.executable, "-m", "churnops", "-q", "data", "init"], cwd=root, check=True)
            (root / "churnops.toml").write_text(f'[storage]\nendpoint_url = "http://127.0.0.1:{port}"\n')
            batch = root / "batch.parquet"
            churnops.generate(args.rows, start=1_000_000, scenario="seed").write_parquet(batch)
            os.environ.update(AWS)
            s3 = pafs.S3FileSystem(
                endpoint_override=f"127.0.0.1:{port}", scheme="http", region="us-east-1", allow_bucket_creation=True
            )
            s3.create_dir("bench")
            for key in ("bench/batch.parquet", "bench/prefix/batch.parquet"):
                with batch.open("rb") as source, s3.open_output_stream(key) as out:
                    while block := source.read(8 << 20):
                        out.write(block)
            size = batch.stat().st_size
            if args.clients:
                compare_clients(port, args.rounds, size)
                return
            subprocess.run(
                [sys.executable, "-m", "churnops", "-q", "profile", "build"], cwd=root, check=True
            )  # both runs use the cached reference profile: the batch is what is measured
            inputs = {
                "local file": str(batch),
                "s3:// object, read in place": "s3://bench/batch.parquet",
                "s3:// prefix, copied": "s3://bench/prefix/",
            }
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in inputs}
            for _ in range(args.rounds):
                for name, current in inputs.items():
                    command = [sys.executable, "-m", "churnops", "-v", "monitor", "--current", current]
                    runs[name].append(timed(command, root))
        finally:
            server.terminate()
            server.wait()
    print(f"batch: {args.rows:,} rows, Parquet object of {size / 2**20:.1f} MiB; median of {args.rounds} rounds")
    print("| input | wall s | CPU s | peak RSS MiB | bytes fetched / object |")
    print("|---|---:|---:|---:|---:|")
    for name, measured in runs.items():
        wall = statistics.median(m["wall"] for m in measured)
        cpu = statistics.median(m["cpu"] for m in measured)
        rss = statistics.median(m["rss"] for m in measured)
        fetched = statistics.median(m["fetched"] for m in measured) / size if name != "local file" else 0
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | {fetched:.2f} |")


if __name__ == "__main__":
    main()
