"""``churnops metrics export`` and the pipeline's Prometheus export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from churnops.config import Config
from churnops.errors import InputDataError
from churnops.pipeline.workspace import read_metrics, workspace
from churnops.redact import redact, remember_url


def export_metrics(
    config: Config,
    textfile_dir: Path | None = None,
    pushgateway: str | None = None,
    print_only: bool = False,
    metrics: dict[str, Any] | None = None,
) -> list[str]:
    """Export a run's metrics (default: the latest committed); returns what was done (one line
    each) or the exposition text."""
    if metrics is None:
        with workspace(config, shared=True, purpose="metrics export"):
            return _export(config, read_metrics(config), textfile_dir, pushgateway, print_only)
    return _export(config, metrics, textfile_dir, pushgateway, print_only)


def _export(
    config: Config, metrics: dict[str, Any] | None, textfile_dir: Path | None, pushgateway: str | None, print_only: bool
) -> list[str]:
    from churnops.integrations import prometheus

    if metrics is None:
        raise InputDataError(f"no metrics in {config.monitoring_dir}: run 'churnops monitor' first")
    labels = {"job_name": config.metrics.job}
    if print_only:
        return [prometheus.exposition(metrics, labels)]
    done = []
    folder = textfile_dir or (config.resolve_dir(config.metrics.textfile_dir) if config.metrics.textfile_dir else None)
    url = pushgateway or config.metrics.pushgateway_url
    if folder is None and url is None:
        raise InputDataError(
            "nowhere to export: give --textfile DIR or --pushgateway URL (or [metrics] in churnops.toml)"
        )
    if folder is not None:
        done.append(f"wrote {prometheus.write_textfile(metrics, folder, labels)}")
    if url is not None:
        remember_url(url)  # a --pushgateway URL's token or password: hidden wherever it turns up
        prometheus.push(metrics, url, config.metrics.job, labels)
        done.append(f"pushed to {redact(url)} (job {config.metrics.job})")
    return done
