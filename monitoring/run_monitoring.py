#!/usr/bin/env python3
"""Seed compatibility: ``python monitoring/run_monitoring.py`` runs ``churnops monitor``.

Writes monitoring/monitoring_report.html, monitoring/monitoring_metrics.json and trigger.txt
(when drift is detected). Arguments are passed through (e.g. ``--engine evidently``). Run by a
Python that cannot import churnops, it says in one line what to run (exit 2), not a traceback;
it is written so that any Python 3 can read it far enough to say so.
"""

# No f-strings, no version-gated syntax: an old python on PATH must get as far as the message.
# ruff: noqa: UP032, UP036

import sys

INSTALL = "run `make run` and use .venv/bin/python, or `pip install -e .` in the churnops folder"


def churnops_app():
    """churnops' command line, or one line on stderr and exit 2 when this Python cannot run it."""
    if sys.version_info < (3, 10):
        version = "{}.{}".format(*sys.version_info[:2])
        sys.stderr.write("error: churnops needs Python 3.10 or newer, this is {}: {}\n".format(version, INSTALL))
        sys.exit(2)
    try:
        from churnops.cli import app
    except ImportError as exc:
        if (getattr(exc, "name", None) or "").split(".")[0] == "churnops":
            problem = "churnops is not installed in this Python ({})".format(sys.executable)
        else:
            problem = "churnops cannot start in this Python ({}): {}".format(sys.executable, exc)
        sys.stderr.write("error: {}: {}\n".format(problem, INSTALL))
        sys.exit(2)
    return app


if __name__ == "__main__":
    churnops_app()(["monitor"] + sys.argv[1:], prog_name="run_monitoring.py")
