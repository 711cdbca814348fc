"""``python -m churnops`` runs the CLI."""

import sys

from churnops.cli import main

sys.exit(main())
