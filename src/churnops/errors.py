"""Domain errors. The CLI maps each family to an exit code; the library only raises them.

Exit codes (documented in ``churnops --help`` and the README):

* 0 - the command ran (drift or not);
* 1 - internal error (a bug: please report it);
* 2 - bad usage, configuration or input data, or an output that cannot be written;
* 3 - drift detected and ``--fail-on-drift`` was given.
"""

from __future__ import annotations

NOTICE = 25
"""Log level of notices: facts a user should see once (e.g. a configured column the data does not
have), between INFO and WARNING; shown unless ``--quiet``."""

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_DRIFT = 3


class ChurnopsError(Exception):
    """Base class of every error churnops reports to a user in one line."""

    exit_code = EXIT_USAGE
    during_run = False
    """True when a monitoring run raised it once under way (its inputs and settings checked, the
    workspace held): the command then says whose outputs still stand."""


class ConfigError(ChurnopsError):
    """The configuration file or an override is invalid."""


class InputDataError(ChurnopsError):
    """An input file is missing, unreadable or does not have the expected shape."""


class IntegrationError(ChurnopsError):
    """An external component (DVC, git, MLflow, SMTP, a webhook) failed or is not set up."""


class MissingDependencyError(ChurnopsError):
    """An optional extra is needed for this command but is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"this needs the optional package '{package}': pip install 'churnops[{extra}]' (or 'churnops[all]')"
        )


class OutputWriteError(ChurnopsError):
    """An output could not be written (disk full, read-only or missing folder, permissions).

    The previous outputs are kept: every output is staged and committed at once.
    """
