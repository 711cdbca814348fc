#!/usr/bin/env python3
"""Seed compatibility: ``python monitoring/run_monitoring.py`` runs ``churnops monitor``.

Writes monitoring/monitoring_report.html, monitoring/monitoring_metrics.json and trigger.txt
(when drift is detected). Arguments are passed through (e.g. ``--engine evidently``).
"""

import sys

from churnops.cli import app

if __name__ == "__main__":
    app(["monitor", *sys.argv[1:]], prog_name="run_monitoring.py")
