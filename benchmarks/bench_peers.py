"""churnops against its peers - Evidently, NannyML, whylogs, frouros, popmon - on the same CSV files.

Every measurement is one process started from scratch (Python, imports, reading both CSV files,
the drift computation, outputs) under ``/usr/bin/time -v``: its wall seconds, CPU seconds (user +
system) and peak RSS ("Maximum resident set size") come from GNU time. The tools run round after
round (round 1 runs every tool once on a size, then round 2 ...), so that every tool meets the
same machine moods; the table gives the median and the min of each figure over the rounds.

Usage::

    python benchmarks/bench_peers.py --setup-only        # install the peers, generate the data
    python benchmarks/bench_peers.py                     # 20k:10k, 100k:100k, 1M:1M rows, 3 rounds
    python benchmarks/bench_peers.py --sizes 20000:10000 --rounds 1 --tools churnops,evidently

Run it with churnops's own interpreter (``.venv/bin/python``, the default ``--churnops-python``
when the repository has one). Results: a Markdown table on stdout and in ``--out`` (default
$TMPDIR/churnops-peers/results.md), every measurement as JSON beside it (``results.json``).

Data (``--data``, default $TMPDIR/churnops-peers/data, generated once and reused): for each
``REF:BATCH`` of ``--sizes``, the embedded bank generator makes REF + BATCH customers (seed 42);
the first REF rows are the reference, the others the batch, which gets the seed's drift
(``apply_scenario(..., resolve_scenario("seed"), 1.0, seed=1)``). 20000:10000 is the seed's own
case. Every tool reads both CSV files itself; reading is part of what is measured.

Columns: churnops's defaults monitor 16 features - every column but ``CustomerId`` (identifier),
``Surname`` and ``First Name`` (names) and the target ``Churn Flag``. The peers are given the same
16 columns, ``Date of Birth`` as days since 1970 (a float, converted after reading), and the same
numerical/categorical split, computed once per size by churnops's ``infer_column_type`` (Evidently
0.7's inference): 7 numerical, 9 categorical (among them the small-integer columns
``NumOfProducts``, ``NumComplaints`` and ``Number of Dependents``). The peers read with pandas
(``usecols``: only the monitored columns) and get categorical columns as labels where their API
decides the type from the dtype.

The tools (``--tools``, comma list; default every one):

* ``churnops``: ``python -m churnops -q monitor -r REF -p BATCH --no-cache``, in a new empty folder
  for each run, so it reads both files, profiles the reference and writes every output (metrics
  JSON, HTML report, trigger, history). Flagged: ``dataset_drift.drifted_columns``.
* ``floor``: the read floor - a process that imports polars and ``polars.read_csv``-s both files,
  nothing else (churnops's interpreter).
* ``evidently`` (``evidently==0.7.23``, ``pandas<3``): ``Report([DataDriftPreset()],
  include_tests=True).run(...)`` on ``Dataset.from_pandas`` with a ``DataDefinition`` of the split;
  no HTML saved. Its defaults above 1,000 reference rows: Wasserstein distance normed by the
  reference's standard deviation for numerical columns, Jensen-Shannon distance of the category
  frequencies for categorical ones, both flagged at >= 0.1. Flagged: the columns whose drift test
  fails.
* ``nannyml`` (``nannyml==0.13.1``, ``pandas<3``, ``statsmodels`` - imported, not declared):
  ``UnivariateDriftCalculator`` with its default methods (Jensen-Shannon for continuous and
  categorical columns), ``chunk_number=1`` (the whole batch is one chunk), fit on the reference,
  calculate on the batch. Its default threshold is the mean + 3 standard deviations of the
  reference's own chunks; with one chunk that is 0 and every column alerts. So the threshold is
  ``ConstantThreshold(upper=0.1)`` - Evidently's Jensen-Shannon threshold. Flagged: the alerts.
* ``whylogs`` (``whylogs[viz]==1.6.4``, ``pandas<3``): ``why.log`` of both frames, then
  ``whylogs.viz.drift.column_drift_algorithms.calculate_drift_scores`` between the two profile
  views, no HTML. Its drift algorithms need scipy and import IPython, hence the ``viz`` extra;
  1.6.4 has no ``NotebookProfileVisualizer.calculate_drift_scores``. Default algorithms: a KS test
  on the KLL sketches for numerical columns, chi-square on the frequent items for the others
  (categorical columns are logged as strings, so that integers are counted as labels). Flagged:
  drift category ``DRIFT`` (p < 0.05).
* ``frouros`` (``frouros==0.9.0``, the newest, ``pandas<3``): one detector per column, fit on the
  reference, compared with the batch. Numerical: ``EMD`` (scipy's ``wasserstein_distance``, the
  function Evidently calls), divided by the reference's standard deviation and flagged at >= 0.1 -
  Evidently's default test to the digit. Categorical: ``ChiSquareTest`` (chi-square test of the
  label counts), flagged at p < 0.05: frouros's ``JS``, ``HellingerDistance``, ``PSI`` and ``KL``
  bin a numeric array into a histogram and cannot compare label frequencies, which is what
  Evidently's Jensen-Shannon does; chi-square is the frouros test that counts labels, and
  Evidently's own default for categorical columns up to 1,000 reference rows.
* ``popmon`` (``popmon==1.4.12``, the newest, ``pandas<3``; histogrammar fails on pandas 3's
  string columns): ``pm_stability_report`` of the batch with ``reference_type="external"`` and the
  reference frame, features ``batch:<column>``, which builds its HTML report in memory (not
  saved). The time axis: popmon needs one and the files have none (``Date of Birth`` is a feature),
  so each frame gets a constant ``batch`` timestamp (the reference 2024-01-01, the batch
  2024-01-02) and ``time_width="1d"``: the batch is one time bin, compared with the whole
  reference. Categorical columns are given as strings (popmon bins numbers). Flagged: the columns
  with a red traffic light in the batch's bin (``ref_ks_zscore``, ``ref_chi2_zscore`` ... beyond
  popmon's default bounds).

The pandas peers are all pinned to ``pandas<3`` (Evidently, NannyML and popmon need it), so every
peer reads with the same pandas. Each peer is installed by this script, with pip, into its own
virtual environment under ``--venvs`` (default $TMPDIR/churnops-peers/venvs/<name>), created from
churnops's interpreter and reused once complete; a peer that does not install is reported in the
table with pip's last line, and the others still run. Usage telemetry is off in every child
(``NML_DISABLE_USAGE_LOGGING``, ``WHYLOGS_NO_ANALYTICS``, ``DO_NOT_TRACK``). A run that fails
(non-zero exit, killed, over ``--timeout``) is reported as failed with its reason; after a kill
or a timeout the tool skips the larger sizes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CACHE = Path(tempfile.gettempdir()) / "churnops-peers"
REPO = Path(__file__).resolve().parents[1]
GNU_TIME = "/usr/bin/time"
QUIET = {"NML_DISABLE_USAGE_LOGGING": "1", "WHYLOGS_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1"}
TOOLS = ["churnops", "floor", "evidently", "nannyml", "whylogs", "frouros", "popmon"]
LABELS = {"floor": "read floor (polars)"}

CHILD_PREPARE = r"""
import json, sys
from pathlib import Path
from churnops.data.generator import generate_reference
from churnops.data.scenarios import apply_scenario, resolve_scenario
from churnops.monitor.accumulate import infer_column_type
reference_rows, batch_rows, folder = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
population = generate_reference(reference_rows + batch_rows, seed=42)
reference, current = population[:reference_rows], population[reference_rows:]
current, _ = apply_scenario(current, resolve_scenario("seed"), 1.0, seed=1)
reference.write_csv(folder / "reference.csv.part")
current.write_csv(folder / "current.csv.part")
(folder / "reference.csv.part").rename(folder / "reference.csv")
(folder / "current.csv.part").rename(folder / "current.csv")
# churnops's default monitored features; Date of Birth (text to Evidently) is tested as day numbers
skip = {"CustomerId", "Surname", "First Name", "Churn Flag"}
kinds = {c: "numerical" if c == "Date of Birth" else infer_column_type(reference[c])
         for c in reference.columns if c not in skip}
split = {kind: [c for c, k in kinds.items() if k == kind] for kind in ("numerical", "categorical")}
assert sum(map(len, split.values())) == len(kinds), kinds
(folder / "columns.json").write_text(json.dumps(split))
"""

CHILD_FLOOR = r"""
import json, sys
import polars as pl
rows = [pl.read_csv(path).height for path in sys.argv[1:3]]
with open(sys.argv[3], "w") as handle:
    json.dump({"rows": rows}, handle)
"""

# Every peer child: argv = reference CSV, batch CSV, result JSON, numerical JSON, categorical JSON.
PRELUDE = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import pandas as pd
reference_path, current_path, result_path = sys.argv[1:4]
numerical, categorical = json.loads(sys.argv[4]), json.loads(sys.argv[5])
def load(path):
    frame = pd.read_csv(path, usecols=numerical + categorical)
    # churnops monitors Date of Birth as days since 1970; give the peer the same numbers
    dates = pd.to_datetime(frame["Date of Birth"]) - pd.Timestamp("1970-01-01")
    frame["Date of Birth"] = dates.dt.days.astype(float)
    return frame[numerical + categorical]
def done(drifted, scores):
    with open(result_path, "w") as handle:
        json.dump({"drifted": sorted(drifted), "scores": scores}, handle, default=str)
ref, cur = load(reference_path), load(current_path)
"""

CHILD_EVIDENTLY = r"""
from evidently import Dataset, DataDefinition, Report
from evidently.presets import DataDriftPreset
definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
snapshot = Report([DataDriftPreset()], include_tests=True).run(
    current_data=Dataset.from_pandas(cur, data_definition=definition),
    reference_data=Dataset.from_pandas(ref, data_definition=definition))
doc = snapshot.dict()
value_drift = [m for m in doc["metrics"] if m["config"]["type"].endswith("ValueDrift")]
scores = {m["config"]["column"]: m["value"] for m in value_drift}
done([t["metric_config"]["params"]["column"] for t in doc["tests"]
      if t["metric_config"]["params"]["type"].endswith("ValueDrift") and t["status"] == "FAIL"], scores)
"""

CHILD_NANNYML = r"""
import nannyml as nml
from nannyml.thresholds import ConstantThreshold
calculator = nml.UnivariateDriftCalculator(
    column_names=numerical + categorical, treat_as_categorical=categorical, chunk_number=1,
    # the default (reference chunks' mean + 3 std) is 0 with one chunk: Evidently's JS threshold
    thresholds={"jensen_shannon": ConstantThreshold(upper=0.1)})
calculator.fit(ref)
table = calculator.calculate(cur).filter(period="analysis").to_df()
drifted, scores = set(), {}
for column, method, field in table.columns:
    if method == "chunk":
        continue
    if field == "value":
        scores[column] = float(table[(column, method, field)].iloc[0])
    if field == "alert" and bool(table[(column, method, field)].any()):
        drifted.add(column)
done(drifted, scores)
"""

CHILD_WHYLOGS = r"""
import whylogs as why
from whylogs.viz.drift.column_drift_algorithms import calculate_drift_scores
for frame in (ref, cur):
    frame[categorical] = frame[categorical].astype(str)
reference_view, current_view = why.log(pandas=ref).view(), why.log(pandas=cur).view()
drift = calculate_drift_scores(target_view=current_view, reference_view=reference_view, with_thresholds=True)
scores = {c: s and {k: s[k] for k in ("algorithm", "pvalue", "statistic", "drift_category")} for c, s in drift.items()}
done([c for c, s in drift.items() if s and s["drift_category"] == "DRIFT"], scores)
"""

CHILD_FROUROS = r"""
import numpy as np
from frouros.detectors.data_drift import EMD, ChiSquareTest
drifted, scores = [], {}
for column in numerical:
    reference = ref[column].to_numpy(dtype=float)
    detector = EMD()
    detector.fit(X=reference)
    result, _ = detector.compare(X=cur[column].to_numpy(dtype=float))
    score = result.distance / max(float(np.std(reference)), 0.001)  # Evidently's normed Wasserstein
    scores[column] = score
    if score >= 0.1:
        drifted.append(column)
for column in categorical:
    detector = ChiSquareTest()
    detector.fit(X=ref[column].to_numpy())
    result, _ = detector.compare(X=cur[column].to_numpy())
    scores[column] = float(result.p_value)
    if result.p_value < 0.05:
        drifted.append(column)
done(drifted, scores)
"""

CHILD_POPMON = r"""
import logging
logging.disable(logging.INFO)
import popmon  # noqa: registers DataFrame.pm_stability_report
for frame, day in ((ref, "2024-01-01"), (cur, "2024-01-02")):
    frame[categorical] = frame[categorical].astype(str)
    frame["batch"] = pd.Timestamp(day)  # the files have no time axis: one bin per side
report = cur.pm_stability_report(
    time_axis="batch", time_width="1d", reference_type="external", reference=ref,
    features=[f"batch:{c}" for c in numerical + categorical])
lights = report.datastore["traffic_lights"]
drifted, scores = [], {}
for column in numerical + categorical:
    red = sorted(str(m) for m in lights[column].columns if (lights[column][m] == 2).any())
    scores[column] = red
    if red:
        drifted.append(column)
done(drifted, scores)
"""

PEERS: dict[str, dict] = {
    "evidently": {"requirements": ["evidently==0.7.23", "pandas<3"], "module": "evidently", "code": CHILD_EVIDENTLY},
    "nannyml": {
        "requirements": ["nannyml==0.13.1", "pandas<3", "statsmodels"],
        "module": "nannyml",
        "code": CHILD_NANNYML,
    },
    "whylogs": {"requirements": ["whylogs[viz]==1.6.4", "pandas<3"], "module": "whylogs", "code": CHILD_WHYLOGS},
    "frouros": {"requirements": ["frouros==0.9.0", "pandas<3"], "module": "frouros", "code": CHILD_FROUROS},
    "popmon": {"requirements": ["popmon==1.4.12", "pandas<3"], "module": "popmon", "code": CHILD_POPMON},
}


def child_environment() -> dict[str, str]:
    """The environment of every child: telemetry off, no MLflow server for churnops to log to."""
    base = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    return {**base, **QUIET}


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


def ensure_venv(name: str, root: Path, python: str) -> dict:
    """The peer's virtual environment under ``root``: reused when complete, else installed anew.

    Returns the requirements, the interpreter and the installed versions (``pip freeze``), or
    ``error`` (pip's last line) when it does not install or import."""
    spec = PEERS[name]
    folder = root / name
    marker = folder / "churnops-peer.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("requirements") == spec["requirements"]:
            return info
    shutil.rmtree(folder, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    log = root / f"{name}-install.log"
    print(f"installing {name} ({' '.join(spec['requirements'])}) into {folder}; log: {log}", file=sys.stderr)
    started = time.perf_counter()
    venv_python = str(folder / "bin" / "python")
    steps = [
        [python, "-m", "venv", str(folder)],
        [venv_python, "-m", "pip", "install", "--disable-pip-version-check", *spec["requirements"]],
    ]
    with log.open("w") as handle:
        for step in steps:
            done = subprocess.run(step, stdout=handle, stderr=subprocess.PIPE, text=True, env=child_environment())
            handle.write(done.stderr)
            if done.returncode != 0:
                return {"requirements": spec["requirements"], "error": last_line(done.stderr)}
    check = subprocess.run(
        [venv_python, "-c", f"import {spec['module']}"], capture_output=True, text=True, env=child_environment()
    )
    if check.returncode != 0:
        return {"requirements": spec["requirements"], "error": "import failed: " + last_line(check.stderr)}
    freeze = subprocess.run([venv_python, "-m", "pip", "freeze"], capture_output=True, text=True, check=True)
    packages = dict(line.split("==", 1) for line in freeze.stdout.splitlines() if "==" in line)
    info = {
        "requirements": spec["requirements"],
        "python": venv_python,
        "packages": packages,
        "install_s": round(time.perf_counter() - started, 1),
    }
    marker.write_text(json.dumps(info, indent=1))
    return info


def prepare(folder: Path, reference_rows: int, batch_rows: int, python: str) -> tuple[Path, Path, dict]:
    """The size's reference and batch CSV files and the column split, generated once."""
    target = folder / f"bank_{reference_rows}_{batch_rows}"
    split = target / "columns.json"
    if not all(path.exists() for path in (split, target / "reference.csv", target / "current.csv")):
        target.mkdir(parents=True, exist_ok=True)
        print(f"generating {reference_rows:,} + {batch_rows:,} rows into {target}", file=sys.stderr)
        command = [python, "-c", CHILD_PREPARE, str(reference_rows), str(batch_rows), str(target)]
        subprocess.run(command, check=True, env=child_environment())
    return target / "reference.csv", target / "current.csv", json.loads(split.read_text())


def gnu_time_figures(report: str) -> dict:
    """Wall, user and system seconds and peak RSS from ``/usr/bin/time -v``'s report."""

    def field(label: str) -> str | None:
        found = re.search(rf"^\s*{re.escape(label)}: (\S+)\s*$", report, re.MULTILINE)
        return found.group(1) if found else None

    wall, user, system, rss = (
        field("Elapsed (wall clock) time (h:mm:ss or m:ss)"),
        field("User time (seconds)"),
        field("System time (seconds)"),
        field("Maximum resident set size (kbytes)"),
    )
    if not (wall and user and system and rss):
        return {}
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(v * 60 ** (len(parts) - 1 - i) for i, v in enumerate(parts))
    return {
        "wall_s": seconds,
        "cpu_s": round(float(user) + float(system), 2),
        "user_s": float(user),
        "system_s": float(system),
        "peak_rss_mib": int(rss) / 1024,
    }


def measure(command: list[str], cwd: Path, result: Path | None, timeout: float) -> dict:
    """Run ``command`` under /usr/bin/time -v in ``cwd``; its figures, the ``result`` JSON it wrote
    (if one is expected), and ``error`` if it failed."""
    load = os.getloadavg()[0]
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [GNU_TIME, "-v", "-o", report.name, *command],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=child_environment(),
            start_new_session=True,
        )
        try:
            process.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            timed_out = True
        except BaseException:  # Ctrl-C: the child is in its own session and would not see it
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
        parent_wall = time.perf_counter() - started
        err.seek(0)
        stderr = err.read().decode(errors="replace")
        text = report.read()
    figures = {"load": load, "parent_wall_s": parent_wall, **gnu_time_figures(text)}
    if timed_out:
        figures.update(error=f"timed out after {timeout:.0f} s", resource=True, wall_s=parent_wall)
    elif killed := re.search(r"Command terminated by signal (\d+)", text):
        number = int(killed.group(1))
        name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
        hint = " (the OOM killer?)" if number == signal.SIGKILL else ""
        figures.update(error=f"killed by {name}{hint}", resource=True)
    elif process.returncode != 0:
        figures["error"] = f"exit {process.returncode}: {last_line(stderr)}"
    elif result is not None and not result.exists():
        figures["error"] = "no result file: " + last_line(stderr)
    elif result is not None:
        figures.update(json.loads(result.read_text()))
    if "error" in figures:
        figures["stderr_tail"] = stderr[-3000:]
    return figures


def churnops_drift(workspace: Path, result: Path) -> None:
    """churnops's flagged columns and scores, from its metrics JSON, in the peers' result format."""
    metrics = workspace / "monitoring" / "monitoring_metrics.json"
    if metrics.exists():
        data = json.loads(metrics.read_text())
        scores = {name: c.get("drift_score") for name, c in data["columns"].items() if c.get("role") == "feature"}
        doc = {"drifted": sorted(data["dataset_drift"]["drifted_columns"]), "scores": scores}
        result.write_text(json.dumps(doc))


def run_one(tool: str, files: tuple[Path, Path, dict], python: str, venvs: dict, scratch: Path, timeout: float):
    reference, current, split = files
    workspace = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=scratch))
    result = scratch / f"{workspace.name}.json"
    try:
        if tool == "churnops":
            command = [python, "-m", "churnops", "-q", "monitor", "-r", str(reference), "-p", str(current)]
            figures = measure([*command, "--no-cache"], workspace, None, timeout)
            if "error" not in figures:
                churnops_drift(workspace, result)
                figures.update(json.loads(result.read_text()) if result.exists() else {"error": "no metrics JSON"})
            figures["outputs"] = sorted(str(p.relative_to(workspace)) for p in workspace.rglob("*") if p.is_file())
        elif tool == "floor":
            figures = measure(
                [python, "-c", CHILD_FLOOR, str(reference), str(current), str(result)], workspace, result, timeout
            )
        else:
            arguments = [str(reference), str(current), str(result)]
            arguments += [json.dumps(split["numerical"]), json.dumps(split["categorical"])]
            code = PRELUDE + PEERS[tool]["code"]
            figures = measure([venvs[tool]["python"], "-c", code, *arguments], workspace, result, timeout)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
        result.unlink(missing_ok=True)
    return figures


def run_rounds(
    tools: list[str], sizes: list[tuple[int, int]], rounds: int, files: dict, python: str, venvs: dict, timeout: float
) -> tuple[dict, dict]:
    """Every tool once per round, round after round, size after size: the measurements per (tool,
    size), and the (tool, size) pairs skipped because the tool was killed or timed out on a smaller size."""
    runs: dict[tuple[str, tuple[int, int]], list[dict]] = {}
    skipped: dict[tuple[str, tuple[int, int]], str] = {}
    broken: dict[str, tuple[tuple[int, int], str]] = {}  # tool -> the size and the kill or time-out
    CACHE.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="runs-", dir=CACHE))  # one working folder per measurement in it
    try:
        for size in sizes:
            for round_number in range(1, rounds + 1):
                for tool in tools:
                    key = (tool, size)
                    if tool in broken and size != broken[tool][0]:
                        skipped[key] = f"{broken[tool][1]} at {size_label(broken[tool][0])}"
                        continue
                    if any(r.get("resource") for r in runs.get(key, [])):
                        continue  # killed or timed out at this size: no more rounds of it
                    figures = run_one(tool, files[size], python, venvs, scratch, timeout)
                    figures.update(tool=tool, size=list(size), round=round_number)
                    runs.setdefault(key, []).append(figures)
                    if figures.get("resource"):
                        broken.setdefault(tool, (size, figures["error"]))
                    status = figures.get("error") or (
                        f"{figures['wall_s']:7.2f} s wall {figures['cpu_s']:7.2f} s CPU "
                        f"{figures['peak_rss_mib']:6.0f} MiB"
                    )
                    print(
                        f"{size_label(size):>21} round {round_number} {LABELS.get(tool, tool):20s} {status} "
                        f"(load {figures['load']:.1f})",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return runs, skipped


def churnops_versions(python: str) -> dict:
    code = (
        "import json, platform, importlib.metadata as m, churnops;"
        "print(json.dumps({'churnops': m.version('churnops'), 'polars': m.version('polars'),"
        "'python': platform.python_version(), 'file': churnops.__file__}))"
    )
    versions = json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout)
    source = Path(versions.pop("file")).resolve()
    if REPO / "src" in source.parents:  # read-only git look-ups: the commit, and whether src/ differs from it
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(REPO), "diff", "--quiet", "HEAD", "--", "src"]).returncode != 0
        if head.returncode == 0:
            versions["commit"] = head.stdout.strip() + ("+uncommitted src changes" if dirty else "")
    return versions


def machine() -> dict:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "?",
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cores": os.cpu_count(), "cpu": model, "ram_gib": round(memory, 1), "kernel": platform.release()}


def version_of(tool: str, versions: dict, venvs: dict) -> str:
    if tool == "churnops":
        return versions["churnops"] + (f" ({versions['commit']})" if "commit" in versions else "")
    if tool == "floor":
        return f"polars {versions['polars']}"
    info = venvs.get(tool, {})
    return info["packages"].get(tool, "?") if "packages" in info else "not installed"


def size_label(size: tuple[int, int]) -> str:
    return f"{size[0]:,}:{size[1]:,}"


def summarize(runs: list[dict], rounds: int) -> dict:
    good = [r for r in runs if "error" not in r]
    summary: dict = {"ok": len(good), "runs": len(runs), "rounds": rounds}
    failed: dict[str, list[str]] = {}
    for r in runs:
        if "error" in r:
            failed.setdefault(r["error"], []).append(str(r["round"]))
    summary["errors"] = [f"round{'s' * (len(n) > 1)} {', '.join(n)}: {error}" for error, n in failed.items()]
    for key in ("wall_s", "cpu_s", "peak_rss_mib"):
        values = [r[key] for r in good]
        summary[key] = {"median": statistics.median(values), "min": min(values)} if values else None
    return summary


def markdown(header: str, tools: list[str], sizes: list, results: dict, versions: dict, venvs: dict) -> str:
    lines = [
        header,
        "",
        "| tool | version | reference:batch rows | ok runs | wall s median | wall s min | CPU s median | CPU s min "
        "| peak RSS MiB median | peak RSS MiB min | CPU vs churnops |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        base = results.get(("churnops", size))
        base_cpu = base["summary"]["cpu_s"]["median"] if base and base["summary"]["cpu_s"] else None
        for tool in tools:
            label, version = LABELS.get(tool, tool), version_of(tool, versions, venvs)
            entry = results.get((tool, size))
            if entry is None:
                error = venvs.get(tool, {}).get("error")
                reason = f"not installed: {error}" if error else "not run"
                lines.append(f"| {label} | {version} | {size_label(size)} | - | **{reason}** | | | | | | |")
                continue
            s = entry["summary"]
            if entry.get("skipped"):
                lines.append(
                    f"| {label} | {version} | {size_label(size)} | 0/0 | **skipped: {entry['skipped']}** | | | | | | |"
                )
                continue
            if not s["ok"]:
                reason = "; ".join(s["errors"])
                lines.append(
                    f"| {label} | {version} | {size_label(size)} | 0/{s['runs']} | **failed: {reason}** | | | | | | |"
                )
                continue
            ok = f"{s['ok']}/{s['runs']}" + (f" ({'; '.join(s['errors'])})" if s["errors"] else "")
            ratio = f"{s['cpu_s']['median'] / base_cpu:.1f}x" if base_cpu else "-"
            lines.append(
                f"| {label} | {version} | {size_label(size)} | {ok} "
                f"| {s['wall_s']['median']:.2f} | {s['wall_s']['min']:.2f} "
                f"| {s['cpu_s']['median']:.2f} | {s['cpu_s']['min']:.2f} "
                f"| {s['peak_rss_mib']['median']:.0f} | {s['peak_rss_mib']['min']:.0f} | {ratio} |"
            )
    first = sizes[0]
    reference = results.get(("churnops", first))
    expected = reference["drifted"] if reference and reference.get("drifted") is not None else None
    lines += [
        "",
        f"Columns flagged as drifted at {size_label(first)} rows (of the 16 monitored features):",
        "",
        "| tool | flagged columns | same as churnops |",
        "|---|---|:---:|",
    ]
    for tool in tools:
        if tool == "floor":
            continue
        entry = results.get((tool, first))
        if entry is None or entry.get("drifted") is None:
            reason = "not installed" if "error" in venvs.get(tool, {}) else "no successful run"
            lines.append(f"| {LABELS.get(tool, tool)} | ({reason}) | - |")
            continue
        flagged = entry["drifted"]
        text = ", ".join(flagged) or "(none)"
        if entry.get("drifted_differ"):
            text += " (the rounds disagree: see the JSON)"
        same = "-" if expected is None else ("yes" if flagged == expected else "no")
        lines.append(f"| {LABELS.get(tool, tool)} | {text} | {same} |")
    return "\n".join(lines) + "\n"


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for item in text.split(","):
        reference, _, batch = item.partition(":")
        sizes.append((int(reference), int(batch or reference)))
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes",
        default="20000:10000,100000:100000,1000000:1000000",
        help="REF:BATCH rows, comma-separated; the first is the one whose flagged columns are listed",
    )
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"comma list, of: {','.join(TOOLS)}")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each tool on each size, interleaved")
    parser.add_argument("--data", type=Path, default=CACHE / "data", help="generated CSV files (reused)")
    parser.add_argument("--venvs", type=Path, default=CACHE / "venvs", help="the peers' virtual environments")
    parser.add_argument("--out", type=Path, default=CACHE / "results.md", help="Markdown table; raw JSON beside it")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed to one measurement")
    default_python = REPO / ".venv" / "bin" / "python"
    parser.add_argument(
        "--churnops-python",
        default=str(default_python) if default_python.exists() else sys.executable,
        help="interpreter that runs churnops, the data generator and the read floor; "
        "the peers' venvs are created from it",
    )
    parser.add_argument("--setup-only", action="store_true", help="install the peers and generate the data, then stop")
    args = parser.parse_args()
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    if unknown := sorted(set(tools) - set(TOOLS)):
        parser.error(f"unknown tools: {', '.join(unknown)} (known: {', '.join(TOOLS)})")
    if not Path(GNU_TIME).exists():
        raise SystemExit(f"{GNU_TIME} is missing (Debian package 'time')")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    try:
        sizes = parse_sizes(args.sizes)
    except ValueError:
        parser.error(f"--sizes: REF:BATCH row counts, comma-separated, not {args.sizes!r}")
    python = args.churnops_python

    venvs = {tool: ensure_venv(tool, args.venvs, python) for tool in tools if tool in PEERS}
    for tool, info in venvs.items():
        state = f"not installed: {info['error']}" if "error" in info else f"{info['packages'].get(tool)} ready"
        print(f"{tool}: {state}", file=sys.stderr)
    files = {size: prepare(args.data, *size, python) for size in sizes}
    if args.setup_only:
        return
    versions = churnops_versions(python)
    runnable = [t for t in tools if t not in PEERS or "error" not in venvs[t]]
    started = datetime.datetime.now(datetime.timezone.utc)
    runs, skipped = run_rounds(runnable, sizes, args.rounds, files, python, venvs, args.timeout)

    results: dict = {}
    for key, found in runs.items():
        good = [r for r in found if "error" not in r]
        sets = {tuple(r.get("drifted", [])) for r in good}
        results[key] = {
            "summary": summarize(found, args.rounds),
            "drifted": list(good[-1].get("drifted", [])) if good and key[0] != "floor" else None,
            "drifted_differ": len(sets) > 1,
        }
    for key, reason in skipped.items():
        results[key] = {"summary": summarize([], args.rounds), "skipped": reason, "drifted": None}

    host = machine()
    tool_versions = ", ".join(f"{LABELS.get(t, t)} {version_of(t, versions, venvs)}" for t in tools)
    pandas = sorted({info["packages"].get("pandas", "?") for info in venvs.values() if "packages" in info})
    header = (
        f"{started:%Y-%m-%d %H:%M} UTC; {host['cores']} cores ({host['cpu']}), {host['ram_gib']:.0f} GiB RAM; "
        f"Python {versions['python']}; {tool_versions}"
        + (f"; pandas {', '.join(pandas)} in the peers' venvs" if pandas else "")
        + f"; {args.rounds} round(s), interleaved; /usr/bin/time -v per process"
    )
    text = markdown(header, tools, sizes, results, versions, venvs)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    raw = {
        "header": header,
        "started": started.isoformat(),
        "machine": host,
        "churnops": versions,
        "sizes": [list(s) for s in sizes],
        "rounds": args.rounds,
        "tools": tools,
        "peers": venvs,
        "columns": {size_label(s): files[s][2] for s in sizes},
        "summaries": [{"tool": t, "size": list(s), **r} for (t, s), r in results.items()],
        "measurements": [r for found in runs.values() for r in found],
    }
    args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1, default=str))
    print(f"written: {args.out} and {args.out.with_suffix('.json')}", file=sys.stderr)


if __name__ == "__main__":
    main()
