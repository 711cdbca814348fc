#!/usr/bin/env python3
"""Seed compatibility: ``python scripts/generate_prod_data.py`` runs ``churnops generate``.

Arguments are passed through (e.g. ``--intensity 0.3``, the seed's DRIFT_INTENSITY).
"""

import sys

from churnops.cli import app

if __name__ == "__main__":
    app(["generate", *sys.argv[1:]], prog_name="generate_prod_data.py")
