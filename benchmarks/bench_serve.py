"""Throughput, latency and memory of ``churnops serve`` under load, driven by ``wrk``; and
``mlflow models serve`` on the same model beside it.

A fresh workspace with the embedded data and a champion trained in it (``churnops train``: the
MLflow registry of the workspace, ``sqlite:///<workspace>/mlflow.db``); the service runs as its
own process on 127.0.0.1 (windows of ``--window`` events, each compared with the reference while
the load goes on); ``wrk`` (Debian's package) posts the same body again and again - events
without ids, so every one is accepted and written to the event log:

* ``/v1/events`` with batches of 1,000 events: events per second;
* ``/v1/events`` with one event per request: requests per second, p50 / p99 latency;
* ``/v1/predict`` with one record per request: requests per second, p50 / p99 latency (each
  record scored by the champion, then logged like an event);
* the service's resident memory after each phase (``VmRSS``) and its peak (``VmHWM``), and
  during the batches its memory as the events pile up: once 100,000 events are written and at
  the phase's end (about 1,000,000 events in 10 s at 100,000 a second), with the growth between.

Then, with the service stopped, ``mlflow models serve -m models:/<name>@champion --env-manager
local`` serves the same registered version (MLflow's scoring server: uvicorn, one worker by
default) and ``wrk`` posts one record per request to its ``/invocations`` in MLflow's
``dataframe_split`` format, with the same connections and duration as ``/v1/predict``. The
table at the end puts the two side by side. What each does per request is not the same:
churnops also validates the record against the reference, commits it to its SQLite event log
(``synchronous = FULL``) and feeds the sequential detectors; MLflow checks it against the
model's signature, builds a pandas frame and calls the pipeline's ``predict`` (labels at 0.5;
churnops answers probabilities and labels at the model's threshold).

Usage::

    python benchmarks/bench_serve.py                 # 10 s per phase
    python benchmarks/bench_serve.py --seconds 30 --connections 32
    python benchmarks/bench_serve.py --no-mlflow     # churnops only (no MLflow serving)
    python benchmarks/bench_serve.py --no-predict    # events only (no model: no MLflow needed)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

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


def service_memory(pid: int) -> dict[str, float]:
    """The service's own memory, and with its window evaluator (a child process) beside it."""
    fields = memory(pid)
    fields["with_evaluator_VmRSS"] = fields["VmRSS"]
    for child in descendants(pid):
        with contextlib.suppress(OSError, KeyError):
            fields["with_evaluator_VmRSS"] += memory(child)["VmRSS"]
    return fields


def events_written(url: str) -> float | None:
    """``churnops_serve_events_total`` of the service's ``/metrics``."""
    with urllib.request.urlopen(url + "/metrics") as answer:
        text = answer.read().decode()
    total = re.search(r"^churnops_serve_events_total ([\d.e+]+)$", text, re.MULTILINE)
    return float(total.group(1)) if total else None


class MemoryWatch:
    """The service's resident memory against the events written, sampled every half second in a
    thread while a phase runs (two ``/metrics`` requests a second: nothing beside the load)."""

    def __init__(self, url: str, pid: int) -> None:
        import threading

        self.url, self.pid = url, pid
        self.samples: list[tuple[float, float]] = []  # (events written, VmRSS MiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(OSError, ValueError, KeyError):
                written = events_written(self.url)
                if written is not None:
                    self.samples.append((written, memory(self.pid)["VmRSS"]))

    def stop(self) -> dict[str, float]:
        """RSS once 100,000 events were written and at the end, and the growth between."""
        self._stop.set()
        self._thread.join()
        first = next(((n, rss) for n, rss in self.samples if n >= 100_000), None)
        if first is None or not self.samples:
            return {}
        last = self.samples[-1]
        return {
            "rss_at_events": first[0],
            "rss_at_MiB": first[1],
            "rss_end_events": last[0],
            "rss_end_MiB": last[1],
            "rss_growth_pct": round(100 * (last[1] - first[1]) / first[1], 1),
        }


def descendants(pid: int) -> list[int]:
    """``pid``'s child processes, their children and so on (from ``/proc``)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        parent = int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, script: Path, seconds: int, connections: int, pid: int | None = None) -> dict[str, float]:
    started = load()
    cpu_before = cpu_seconds(pid) if pid is not None else 0.0
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
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
    socket_errors = re.search(r"Socket errors: (.*)$", out, re.MULTILINE)
    found = {
        "requests_per_s": rate,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "load_average_before": started,
    }
    if socket_errors:
        found["socket_errors"] = socket_errors.group(1).strip()
    if pid is not None:  # the main process's share: what --workers takes off it
        requests_done = rate * seconds
        found["main_cpu_ms_per_request"] = (cpu_seconds(pid) - cpu_before) * 1000 / max(requests_done, 1)
    return found


def wait_for_workers(url: str, count: int, attempts: int = 600) -> None:
    """Until the service says its ``count`` worker processes serve (each loads its own model)."""
    for _ in range(attempts if count > 0 else 0):  # bounded: about 0.1 s apart
        with urllib.request.urlopen(url + "/metrics") as answer:
            found = re.search(r"^churnops_serve_workers_ready (\d+)$", answer.read().decode(), re.MULTILINE)
        if found and int(found.group(1)) >= count:
            return
        time.sleep(0.1)
    if count > 0:
        raise SystemExit(f"the service's {count} worker process(es) did not start")


def backlog(url: str) -> int:
    """Windows closed but not evaluated yet (they are evaluated during the load)."""
    with urllib.request.urlopen(url + "/v1/drift") as answer:
        drift = json.loads(answer.read())
    last = drift["last_closed_window"]
    return drift["open_window"]["window"] - (0 if last is None else last["window"] + 1)


def post(url: str, body: bytes, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=60) as answer:
        return json.loads(answer.read())


def tracking_uri(folder: Path) -> str:
    """The workspace's MLflow store, by churnops' rule (``pipeline.scoring.store_of``): a relative
    ``sqlite:///`` path is inside the project."""
    from churnops.config import Config

    uri = Config().model.tracking_uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{folder / uri.removeprefix('sqlite:///')}"
    return uri


def mlflow_phase(
    folder: Path, env: dict[str, str], name: str, row: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """``mlflow models serve`` on ``models:/<name>@champion``, driven like ``/v1/predict``."""
    import mlflow

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    info = mlflow.models.get_model_info(f"models:/{name}@champion")
    version = mlflow.MlflowClient().get_model_version_by_alias(name, "champion").version
    columns = info.signature.inputs.input_names()
    body = json.dumps({"dataframe_split": {"columns": columns, "data": [[row[c] for c in columns]]}})
    (folder / "mlflow.json").write_text(body)
    (folder / "mlflow.lua").write_text(LUA.format(token=TOKEN, body=folder / "mlflow.json"))
    port = args.mlflow_port or free_port()
    command = [
        sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{name}@champion", "--env-manager", "local",
        "-p", str(port), "--host", "127.0.0.1", "--workers", str(args.mlflow_workers),
    ]  # fmt: skip
    found: dict[str, Any] = {"command": " ".join(command), "version": str(version)}
    output = open(folder / "mlflow-serve.log", "w")  # noqa: SIM115 - closed below
    # the scoring server is started by MLflow as 'bash -c "exec uvicorn ..."': uvicorn must be on PATH
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    started = time.perf_counter()
    server = subprocess.Popen(
        command, cwd=folder, env={**env, "PATH": path}, stdout=output, stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: MLflow's CLI and the uvicorn it starts stop together
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        ready = False
        for _ in range(args.ready_attempts):  # bounded: about 0.25 s apart
            if server.poll() is not None:
                break
            if _ping(base):
                ready = True
                break
            time.sleep(0.25)
        if not ready:
            output.flush()
            tail = (folder / "mlflow-serve.log").read_text(errors="replace").splitlines()[-15:]
            state = f"exited with code {server.returncode}" if server.returncode is not None else "not ready"
            raise RuntimeError(
                f"mlflow models serve {state} after {time.perf_counter() - started:.1f} s "
                f"({args.ready_attempts} polls of /ping); last lines:\n" + "\n".join(tail)
            )
        found["ready_after_s"] = round(time.perf_counter() - started, 1)
        found["answer"] = post(base + "/invocations", body.encode())  # warm-up, and what it answers
        workers = descendants(server.pid)
        found["started"] = _tree_memory(server.pid, workers)
        found |= run_wrk(base + "/invocations", folder / "mlflow.lua", args.seconds, args.connections)
        found |= _tree_memory(server.pid, descendants(server.pid))
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        output.close()
    return found


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ping(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/ping", timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _tree_memory(pid: int, children: list[int]) -> dict[str, float]:
    """The scoring server's memory (the last descendant: uvicorn, or its last worker), and the
    whole tree's RSS (MLflow's CLI process waits beside it)."""
    tree = [pid, *children]
    total = 0.0
    for process in tree:
        with contextlib.suppress(OSError, KeyError):
            total += memory(process)["VmRSS"]
    server = memory(children[-1]) if children else memory(pid)
    return {**server, "tree_VmRSS": total}


def _row(label: str, phase: dict[str, Any]) -> str:
    return (
        f"| {label} | {phase['requests_per_s']:,.0f} | {phase['p50_ms']:.1f} | {phase['p99_ms']:.1f} "
        f"| {phase['non_2xx']} | {phase.get('VmRSS', float('nan')):.0f} "
        f"| {phase.get('with_evaluator_VmRSS', phase.get('tree_VmRSS', float('nan'))):.0f} "
        f"| {phase.get('load_average_before', 0):.1f} "
        f"| {phase.get('windows_to_evaluate_before', '-')} "
        f"| {phase.get('main_cpu_ms_per_request', float('nan')):.2f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--window", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1, help="churnops serve --workers")
    parser.add_argument(
        "--evaluation", choices=("process", "thread"), default="process",
        help="serve.evaluation: closed windows evaluated in a second process (default) or in the service's",
    )  # fmt: skip
    parser.add_argument("--no-predict", action="store_true", help="no model: the /v1/events phases only")
    parser.add_argument("--no-mlflow", action="store_true", help="no 'mlflow models serve' comparison")
    parser.add_argument("--mlflow-port", type=int, default=0, help="default: a free port")
    parser.add_argument("--mlflow-workers", type=int, default=1, help="uvicorn workers of MLflow (its default: 1)")
    parser.add_argument("--ready-attempts", type=int, default=480, help="/ping polls, 0.25 s apart (MLflow)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    predict = not args.no_predict
    if predict:
        try:
            import mlflow  # noqa: F401 - the champion is trained and registered with it
        except ImportError:
            print("mlflow is not installed (pip install -e '.[mlflow]'); or give --no-predict", file=sys.stderr)
            return 2
    import churnops
    from churnops.config import Config

    folder = Path(tempfile.mkdtemp(prefix="churnops-bench-serve-"))
    env = {**os.environ, "CHURNOPS_API_TOKEN": TOKEN, "MLFLOW_TRACKING_URI": tracking_uri(folder)}
    subprocess.run([sys.executable, "-m", "churnops", "-q", "data", "init"], cwd=folder, env=env, check=True)
    if predict:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "churnops", "-q", "train"], cwd=folder, env=env, check=True)
        trained = time.perf_counter() - started
    rows = churnops.generate(1_000, start=20_000).to_dicts()
    (folder / "batch.json").write_text(json.dumps(rows))
    (folder / "single.json").write_text(json.dumps(rows[0]))
    for name in ("batch", "single"):
        (folder / f"{name}.lua").write_text(LUA.format(token=TOKEN, body=folder / f"{name}.json"))
    service = subprocess.Popen(
        [sys.executable, "-m", "churnops", "serve", "--port", "0", "--set", f"serve.window_size={args.window}",
         "--set", f"serve.evaluation={args.evaluation}", "--workers", str(args.workers)],
        cwd=folder, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = service.stdout.readline()
    url = line.split("listening on ")[1].split()[0]
    wait_for_workers(url, args.workers if args.workers > 1 else 0)
    results: dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores, load average {Path('/proc/loadavg').read_text().split()[:3]}",
        "evaluation": args.evaluation,
        "started": memory(service.pid),
    }
    if predict:
        results["train_s"] = round(trained, 1)
    try:
        batch = {"windows_to_evaluate_before": backlog(url)}
        watch = MemoryWatch(url, service.pid)
        batch |= run_wrk(url + "/v1/events", folder / "batch.lua", args.seconds, args.connections, service.pid)
        batch |= watch.stop()
        batch["events_per_s"] = batch["requests_per_s"] * 1_000
        results["batches of 1,000"] = {**batch, **service_memory(service.pid)}
        with urllib.request.urlopen(url + "/v1/drift") as answer:
            results["events after the batch phase"] = json.loads(answer.read())["open_window"]
        single = {"windows_to_evaluate_before": backlog(url)}
        single |= run_wrk(url + "/v1/events", folder / "single.lua", args.seconds, args.connections, service.pid)
        results["one event per request"] = {**single, **service_memory(service.pid)}
        if predict:
            answer = post(url + "/v1/predict", (folder / "single.json").read_bytes(), TOKEN)  # warm-up
            results["churnops answer"] = answer["predictions"][0]
            scored = {"windows_to_evaluate_before": backlog(url)}
            scored |= run_wrk(url + "/v1/predict", folder / "single.lua", args.seconds, args.connections, service.pid)
            results["one record per /v1/predict"] = {**scored, **service_memory(service.pid)}
        results["events written"] = events_written(url)
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=120)
    try:
        if predict and not args.no_mlflow:
            try:
                results["mlflow models serve, one record per /invocations"] = mlflow_phase(
                    folder, env, Config().model.name, rows[0], args
                )
            except Exception as exc:  # said, not hidden: the churnops figures stand without it
                results["mlflow models serve, one record per /invocations"] = {"failed": f"{type(exc).__name__}: {exc}"}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(results, indent=2))
    print()
    print(
        f"{args.connections} connections, {args.seconds} s per phase, --workers {args.workers}, "
        "wrk -t2 on the same machine, "
        f"windows evaluated in {'a second process' if args.evaluation == 'process' else 'the service process'}"
    )
    print()
    print(
        "| load | requests/s | p50 ms | p99 ms | non-2xx | server RSS MiB | with its children MiB | load avg before "
        "| windows queued before | main process CPU ms per request |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    batch = results["batches of 1,000"]
    print(_row(f"churnops /v1/events, batches of 1,000 ({batch['events_per_s']:,.0f} events/s)", batch))
    growth = (
        f"service memory during the batches: {batch['rss_at_MiB']:.0f} MiB after {batch['rss_at_events']:,.0f} events, "
        f"{batch['rss_end_MiB']:.0f} MiB after {batch['rss_end_events']:,.0f} ({batch['rss_growth_pct']:+.1f}%)"
        if "rss_growth_pct" in batch
        else "service memory during the batches: fewer than 100,000 events written"
    )
    print(_row("churnops /v1/events, 1 event", results["one event per request"]))
    scored = results.get("one record per /v1/predict")
    other = results.get("mlflow models serve, one record per /invocations")
    if scored:
        print(_row("churnops /v1/predict, 1 record", scored))
    if other and "failed" not in other:
        print(_row("mlflow models serve /invocations, 1 record", other))
        print()
        print(
            f"churnops / mlflow: {scored['requests_per_s'] / other['requests_per_s']:.2f}x requests/s; "
            f"p99 {scored['p99_ms']:.1f} ms vs {other['p99_ms']:.1f} ms; "
            f"memory {scored['VmRSS']:.0f} MiB vs {other['VmRSS']:.0f} MiB (MLflow's tree: {other['tree_VmRSS']:.0f})"
        )
    print()
    print(growth)
    if other and "failed" in other:
        print()
        print(f"mlflow models serve: FAILED - {other['failed']}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
