"""``churnops metrics export`` and the pipeline's Prometheus export."""

from __future__ import annotations

from pathlib import Path

from churnops.config import Config
from churnops.errors import InputDataError
from churnops.pipeline.notifying import read_metrics


def export_metrics(
    config: Config, textfile_dir: Path | None = None, pushgateway: str | None = None, print_only: bool = False
) -> list[str]:
    """Export the latest metrics; returns what was done (one line each) or the exposition text."""
    from churnops.integrations import prometheus

    metrics = read_metrics(config)
    if metrics is None:
        raise InputDataError(f"no metrics in {config.monitoring_dir}: run 'churnops monitor' first")
    labels = {"job_name": config.metrics.job}
    if print_only:
        return [prometheus.exposition(metrics, labels)]
    done = []
    folder = textfile_dir or (config.resolve(config.metrics.textfile_dir) if config.metrics.textfile_dir else None)
    url = pushgateway or config.metrics.pushgateway_url
    if folder is None and url is None:
        raise InputDataError(
            "nowhere to export: give --textfile DIR or --pushgateway URL (or [metrics] in churnops.toml)"
        )
    if folder is not None:
        done.append(f"wrote {prometheus.write_textfile(metrics, folder, labels)}")
    if url is not None:
        prometheus.push(metrics, url, config.metrics.job, labels)
        done.append(f"pushed to {url} (job {config.metrics.job})")
    return done
