"""A nightly drift check as a Prefect flow, through churnops' Python interface.

monitor the batch -> branch on the verdict -> version the batch with DVC (on an alert) -> notify

Each step is a Prefect task, so the Prefect UI shows which one failed and its logs. The project
is a git repository set up for DVC (``churnops demo DIR`` makes one with the embedded data, or
``git init && churnops dvc-setup`` in your own); its ``churnops.toml``, if any, gives the
columns, thresholds and ``[notify]`` channels.

Run it (Prefect 3 starts a temporary local server when none is configured)::

    pip install "churnops[dvc,prefect]"
    churnops demo demo
    python examples/prefect_flow.py --project demo --reference demo/data/churn.csv --reference-rows 20000 \\
        --batch demo/data/production/bank_churn_prod.csv

or deploy it with ``nightly_drift_check.serve(name="churn", cron="0 2 * * *")``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

import churnops

# Tasks pass churnops objects to each other in this process; nothing is cached or pickled.


@task(cache_policy=NO_CACHE)
def check_batch(project: str, reference: str, batch: str, reference_rows: int | None) -> churnops.MonitorResult:
    """Compare the batch with the reference; save the report and the metrics in the project."""
    import polars as pl

    config = churnops.load_config(project)
    reference_table: Any = reference
    if reference_rows is not None:  # a window of a longer file (the embedded data's first 20,000 rows)
        reader = pl.read_parquet if reference.endswith(".parquet") else pl.read_csv
        reference_table = reader(reference, n_rows=reference_rows)
    result = churnops.monitor(reference_table, batch, config)
    outputs = Path(project) / "monitoring" / "prefect"
    outputs.mkdir(parents=True, exist_ok=True)
    result.save_html(outputs / "report.html")
    (outputs / "metrics.json").write_text(result.to_json(), encoding="utf-8")
    get_run_logger().info("%s: %s", result.verdict.status, result.verdict.headline)
    return result


@task(cache_policy=NO_CACHE)
def version(batch: str, result: churnops.MonitorResult) -> dict[str, Any]:
    """dvc add (or commit) + git commit + dvc push of the drifted batch."""
    outcome = churnops.version_batch(batch, result)
    get_run_logger().info("%s: %s", outcome["record"], outcome["message"])
    return outcome


@task(cache_policy=NO_CACHE)
def notify(result: churnops.MonitorResult, errors: list[str]) -> list[dict[str, Any]]:
    """The team hears about every run on the channels of [notify] - a failed versioning too; a
    failed channel fails the task."""
    deliveries = result.notify(errors=errors)
    failed = [d for d in deliveries if d["status"] == "failed"]
    if failed:
        raise RuntimeError("notification failed: " + "; ".join(f"{d['channel']}: {d['error']}" for d in failed))
    return deliveries


@flow(name="churn-drift-check")
def nightly_drift_check(project: str, reference: str, batch: str, reference_rows: int | None = None) -> dict[str, Any]:
    """Monitor, branch on the verdict, version on an alert, notify (also when versioning failed)."""
    result = check_batch(project, reference, batch, reference_rows)
    versioned, errors = None, []
    if result.drift_detected:
        state = version(batch, result, return_state=True)
        if state.is_completed():
            versioned = state.result()
        else:
            errors.append(f"versioning: {state.message or 'failed'}")
    deliveries = notify(result, errors)
    if errors:  # told the team first; the flow still fails on it
        raise RuntimeError("; ".join(errors))
    return {
        "status": result.verdict.status,
        "headline": result.verdict.headline,
        "drifted_columns": result.drifted_columns,
        "versioned": versioned,
        "notified": [d["channel"] for d in deliveries if d["status"] in ("sent", "not sent")],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", required=True, help="the git + DVC project folder")
    parser.add_argument("--reference", required=True, help="the reference table (CSV or Parquet)")
    parser.add_argument("--reference-rows", type=int, help="use only the reference's first N rows")
    parser.add_argument("--batch", required=True, help="the batch to check (inside the project, to be versioned)")
    args = parser.parse_args(argv)
    summary = nightly_drift_check(args.project, args.reference, args.batch, args.reference_rows)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
