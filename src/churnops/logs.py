"""The log lines churnops prints: one line each, secrets redacted, control characters visible.

The command line and the service's window evaluator (a process of its own) both log through
:func:`log_to_stderr`, so a line reads the same wherever it comes from.
"""

from __future__ import annotations

import logging
import sys

from churnops.errors import NOTICE


class SafeFormatter(logging.Formatter):
    """Log lines on one line, with secrets redacted and control characters made visible."""

    def format(self, record: logging.LogRecord) -> str:
        from churnops.escape import one_line
        from churnops.redact import redact

        return one_line(redact(super().format(record)))


def log_to_stderr(level: int, label: str = "") -> None:
    """churnops' messages at ``level`` and above to standard error, each line as
    ``LEVEL: label: message`` (without ``label: `` when ``label`` is empty)."""
    logging.addLevelName(NOTICE, "NOTICE")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter(f"%(levelname)s: {label + ': ' if label else ''}%(message)s"))
    root = logging.getLogger("churnops")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
