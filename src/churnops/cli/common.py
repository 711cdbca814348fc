"""Shared CLI plumbing: error mapping, configuration loading, console and progress bars.

Only the CLI configures logging handlers and draws progress bars; the library just logs and
calls progress callbacks.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import typer

from churnops.errors import EXIT_INTERNAL, EXIT_USAGE, ChurnopsError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = (
    "Exit codes: 0 = ran (drift or not); 1 = internal error; 2 = bad usage, configuration, "
    "input, or a full/read-only disk; 3 = an alert (see the verdict) with --fail-on-drift; 4 = a later pipeline "
    "stage failed (DVC, notification, retraining), earlier outputs kept."
)


class State:
    """Options of the root command, shared with subcommands."""

    quiet: bool = False
    verbose: bool = False
    debug: bool = bool(os.environ.get("CHURNOPS_DEBUG"))
    collector_paused: bool = False
    project_dir: str | None = None
    """The folder ``-C`` named, absolute: the command runs there (and repeats there)."""


STATE = State()


def pause_collector() -> None:
    """No cyclic garbage collection while a command starts (see :func:`resume_collector`).

    Starting means importing: polars, numpy, pydantic and churnops make some 65,000 long-lived
    objects (classes, functions, tables) and hardly any garbage, and the collector would walk
    them over and over - about 40 ms of CPU in a nightly ``churnops monitor`` of 0.55 s.
    """
    import gc

    if gc.isenabled():
        gc.disable()
        STATE.collector_paused = True


def resume_collector() -> None:
    """Start-up is over: what it made is moved out of the collector's sight (``gc.freeze``: it
    lives as long as the process) and collection resumes for the command's work."""
    import gc

    if STATE.collector_paused:
        STATE.collector_paused = False
        gc.freeze()
        gc.enable()


def err(message: str) -> None:
    """One line on stderr: secrets redacted, control characters made visible."""
    from churnops.escape import one_line
    from churnops.redact import redact

    typer.echo(one_line(redact(message)), err=True)


def handle_errors(func: F) -> F:
    """Turn domain errors into one line and an exit code; never show a traceback by default."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except ChurnopsError as exc:
            logging.getLogger("churnops").debug("error details", exc_info=True)
            err(f"error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err("interrupted")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # the reader went away (e.g. `churnops history | head`): stop quietly, as Unix tools do
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141) from None
        except OSError as exc:
            if exc.errno not in ENVIRONMENT_ERRNOS and exc.errno not in PATH_ERRNOS:
                raise _internal(exc) from None
            where = f": {exc.filename}" if exc.filename else ""
            err(f"error: {(exc.strerror or str(exc)).lower()}{where} (files already written are kept)")
            raise typer.Exit(EXIT_USAGE) from None
        except Exception as exc:  # a bug: say so, keep the details for --debug
            raise _internal(exc) from None

    return wrapper  # type: ignore[return-value]


ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}
"""OS errors that are the machine's state, not a churnops bug: full disk, read-only, permissions."""
PATH_ERRNOS = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.ENAMETOOLONG, errno.EEXIST, errno.EXDEV}
"""OS errors about a path the user gave (a file where a folder should be, a name too long...)."""


def _internal(exc: BaseException) -> typer.Exit:
    if STATE.debug:
        traceback.print_exception(exc)
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())[:300]  # one line, readable
    err(f"internal error: {type(exc).__name__}: {text} (set CHURNOPS_DEBUG=1 for the traceback; please report it)")
    return typer.Exit(EXIT_INTERNAL)


def setup_logging(verbose: bool, quiet: bool) -> None:
    from churnops.errors import NOTICE
    from churnops.logs import log_to_stderr

    log_to_stderr(logging.DEBUG if verbose else (logging.ERROR if quiet else NOTICE))


def load(config_file: Path | None, overrides: dict[str, Any] | None = None, sets: list[str] | None = None) -> Any:
    """The effective configuration, with monitoring settings checked (unknown tests, keys).

    ``sets`` are ``KEY=VALUE`` strings (``--set thresholds.dataset_drift=0.2``); the value is
    read as TOML (numbers, booleans, "strings", [lists]) and else taken as text.
    """
    from churnops.config import load_config
    from churnops.monitor.settings import settings_from_config

    resume_collector()  # every command loads its configuration once its imports are done
    flags = {key: value for key, value in (overrides or {}).items() if value is not None}
    config = load_config(config_file, {**parse_sets(sets or []), **flags})
    settings_from_config(config)
    return config


def parse_sets(sets: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": 1, "c": "x"}``.

    >>> parse_sets(["thresholds.dataset_drift=0.2", "scenario.name=strong", "drift.binning='quantile'"])
    {'thresholds.dataset_drift': 0.2, 'scenario.name': 'strong', 'drift.binning': 'quantile'}
    """
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    from churnops.errors import ConfigError

    parsed: dict[str, Any] = {}
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set: expected KEY=VALUE, got '{item}'")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        parsed[key.strip()] = value
    return parsed


def parse_rows(value: str | None, option: str) -> tuple[int, int] | None:
    """``START:END`` -> (start, end)."""
    if value is None:
        return None
    from churnops.errors import ConfigError

    try:
        start_text, end_text = value.split(":")
        start, end = int(start_text or 0), int(end_text)
    except ValueError:
        raise ConfigError(f"{option}: expected START:END (e.g. 0:20000), got '{value}'") from None
    if start < 0 or end <= start:
        raise ConfigError(f"{option}: the range {value} is empty or negative")
    return start, end


def show_progress() -> bool:
    return not STATE.quiet and sys.stderr.isatty()


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr, or None when quiet or not a terminal."""
    if not show_progress():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


class StagedProgress:
    """One progress bar for a multi-stage job (reading files, testing columns).

    It appears only once the job has run for ``delay`` seconds, so quick runs print nothing;
    each stage shows what it does (rows read so far), its bar and its time remaining.
    """

    def __init__(self, delay: float = 1.0) -> None:
        import time

        self._clock = time.monotonic
        self.started = self._clock()
        self.delay = delay
        self.progress: Any = None
        self.task: Any = None
        self.stage: str | None = None
        self.console_factory = _stderr_console

    def __call__(self, what: str, done: int, total: int) -> None:
        if self.progress is None:
            if self._clock() - self.started < self.delay:
                return
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeRemainingColumn(),
                transient=True,
                console=self.console_factory(),
            )
            self.progress.start()
        from rich.markup import escape as markup_escape

        from churnops.escape import one_line

        what = markup_escape(one_line(what))  # file names are data: no markup, no control characters
        stage = what.split(":")[0]
        if stage != self.stage:
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.task = self.progress.add_task(what, total=total or None)
            self.stage = stage
        self.progress.update(self.task, description=what, completed=done, total=total or None)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


@contextlib.contextmanager
def staged_progress() -> Iterator[StagedProgress | None]:
    """A :class:`StagedProgress`, or None when quiet or stderr is not a terminal."""
    if not show_progress():
        yield None
        return
    bar = StagedProgress()
    try:
        yield bar
    finally:
        bar.close()


def aligned(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table: columns padded to their widest cell, two spaces apart; each cell on one
    line (a tab or line break in a file name shown as ``\x09``, never breaking the table).

    >>> print(aligned(["a", "bb"], [["xyz", "1"]]))
    a    bb
    xyz  1
    >>> aligned(["file"], [["a\\tb.csv"]]).splitlines()[1]
    'a\\\\x09b.csv'
    """
    from churnops.escape import one_line

    header = [one_line(cell) for cell in header]
    rows = [[one_line(cell) for cell in row] for row in rows]
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip() for cells in [header, *rows]
    )


def say(message: str) -> None:
    """Normal output on stdout, unless --quiet (secrets redacted, control characters made visible)."""
    if not STATE.quiet:
        echo(message)


def echo(message: str) -> None:
    """Output on stdout whatever --quiet says (the answer of a command): redacted and escaped."""
    from churnops.escape import terminal
    from churnops.redact import redact

    typer.echo(terminal(redact(message)))
