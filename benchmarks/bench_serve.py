"""Throughput, latency and memory of ``churnops serve`` under load, driven by ``wrk``.

A fresh workspace with the embedded data; the service runs as its own process on 127.0.0.1
(windows of ``--window`` events, each compared with the reference while the load goes on);
``wrk`` (Debian's package) posts the same body again and again - events without ids, so every
one is accepted and written to the event log:

* ``/v1/events`` with batches of 1,000 events: events per second;
* ``/v1/events`` with one event per request: requests per second, p50 / p99 latency;
* the service's resident memory after each phase (``VmRSS``) and its peak (``VmHWM``).

Usage::

    python benchmarks/bench_serve.py                 # 10 s per phase
    python benchmarks/bench_serve.py --seconds 30 --connections 32
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

TOKEN = "bench-token-0123456789abcdef"

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
local f = io.open("{body}", "rb")
wrk.body = f:read("*all")
f:close()
"""


def memory(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def run_wrk(url: str, script: Path, seconds: int, connections: int) -> dict[str, float]:
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url + "/v1/events"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    out = done.stdout

    def latency(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if match is None:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_s": rate,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--window", type=int, default=10_000)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    import churnops

    folder = Path(tempfile.mkdtemp(prefix="churnops-bench-serve-"))
    subprocess.run([sys.executable, "-m", "churnops", "-q", "data", "init"], cwd=folder, check=True)
    rows = churnops.generate(1_000, start=20_000).to_dicts()
    (folder / "batch.json").write_text(json.dumps(rows))
    (folder / "single.json").write_text(json.dumps(rows[0]))
    for name in ("batch", "single"):
        (folder / f"{name}.lua").write_text(LUA.format(token=TOKEN, body=folder / f"{name}.json"))
    service = subprocess.Popen(
        [sys.executable, "-m", "churnops", "serve", "--port", "0", "--set", f"serve.window_size={args.window}"],
        cwd=folder, env={**os.environ, "CHURNOPS_API_TOKEN": TOKEN}, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = service.stdout.readline()
    url = line.split("listening on ")[1].split()[0]
    results = {"started": memory(service.pid)}
    try:
        batch = run_wrk(url, folder / "batch.lua", args.seconds, args.connections)
        batch["events_per_s"] = batch["requests_per_s"] * 1_000
        results["batches of 1,000"] = {**batch, **memory(service.pid)}
        with urllib.request.urlopen(url + "/v1/drift") as answer:
            results["events after the batch phase"] = json.loads(answer.read())["open_window"]
        single = run_wrk(url, folder / "single.lua", args.seconds, args.connections)
        results["one event per request"] = {**single, **memory(service.pid)}
        with urllib.request.urlopen(url + "/metrics") as answer:
            text = answer.read().decode()
        total = re.search(r"^churnops_serve_events_total ([\d.e+]+)$", text, re.MULTILINE)
        results["events written"] = float(total.group(1)) if total else None
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=120)
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
