#!/usr/bin/env python3
"""Seed compatibility: ``python scripts/generate_prod_data.py`` runs ``churnops generate``.

Arguments are passed through (e.g. ``--intensity 0.3``, the seed's DRIFT_INTENSITY). Run by a
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
    churnops_app()(["generate"] + sys.argv[1:], prog_name="generate_prod_data.py")
