"""``python -m churnops`` runs the CLI."""

from churnops.cli import app

app(prog_name="churnops")
