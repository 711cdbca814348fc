"""The ``churnops`` command line. Each command parses options and calls one library function."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

# polars allocates through its own jemalloc, which by default keeps freed pages for 10 s; a
# command reads its tables in chunks and frees each one, so give pages back after 100 ms. This
# must be set before polars is loaded (it is loaded lazily, never at start-up); a value the user
# set wins. 1M-row exact comparison: 285 -> 264 MiB peak, same speed (README, Speed).
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:100,muzzy_decay_ms:0")
# churnops does no linear algebra large enough for BLAS threads, and starting OpenBLAS's thread
# pool costs about 80 ms of CPU at numpy's import - a tenth of a nightly run. A value set wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# pydantic looks for plugins among every installed package's entry points (importlib.metadata,
# about 25 ms) when the configuration is first validated; churnops uses none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
# scikit-learn's OpenMP threads (the multivariate detectors, the model) spin while they wait by
# default, which starves every other process on a shared machine; let them sleep instead.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from typing import Any  # noqa: E402

import typer  # noqa: E402

from churnops._version import __version__
from churnops.cli.common import EXIT_CODES_HELP, STATE, err, pause_collector, resume_collector, setup_logging

app = typer.Typer(
    # plain help (no boxes): flags show as flags, and errors can be one line (see main())
    rich_markup_mode=None,
    name="churnops",
    help=(
        "Drift monitoring and MLOps pipeline for tabular models, starting with a bank's churn model.\n\n"
        "Demo on the embedded data: churnops demo demo (a workspace ./demo with git and DVC, the whole "
        "pipeline run); or, in this folder: churnops data init && churnops generate && churnops monitor\n\n"
        "Your own data: churnops monitor --reference reference.csv --current batch.csv --target churned\n"
        "(churnops init --reference reference.csv writes a churnops.toml for it)\n\n"
        "Global options (-q, -v, -C DIR) may also follow the command.\n\n" + EXIT_CODES_HELP
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"churnops {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    project_dir: Annotated[
        Path | None,
        typer.Option("-C", "--project-dir", help="Run as if churnops was started in this folder.", file_okay=False),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show debug messages (what is read, cached, timed).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors; no progress bars.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Set up logging and the working folder for every command."""
    STATE.quiet = quiet
    STATE.verbose = verbose
    setup_logging(verbose, quiet)
    STATE.project_dir = None
    if project_dir is not None:
        try:
            project_dir.mkdir(parents=True, exist_ok=True)
            os.chdir(project_dir)
            STATE.project_dir = os.getcwd()
        except OSError as exc:
            err(f"error: cannot use project folder {project_dir}: {exc.strerror}")
            raise typer.Exit(2) from None


from churnops.cli import (  # noqa: E402
    ab_cmds,
    config_cmds,
    consume_cmds,
    data_cmds,
    history_cmds,
    model_cmds,
    monitor_cmds,
    notify_cmds,
    pipeline_cmds,
    report_cmds,
    serve_cmds,
)

app.command("init")(config_cmds.init)
app.add_typer(config_cmds.config_app, name="config")
app.add_typer(data_cmds.data_app, name="data")
app.command("generate")(data_cmds.generate)
app.command("monitor", epilog=EXIT_CODES_HELP)(monitor_cmds.monitor)
app.add_typer(monitor_cmds.profile_app, name="profile")
app.add_typer(report_cmds.report_app, name="report")
app.command("pipeline", epilog=EXIT_CODES_HELP)(pipeline_cmds.pipeline)
app.command("demo")(pipeline_cmds.demo)
app.command("dvc-setup")(pipeline_cmds.dvc_setup)
app.command("version")(pipeline_cmds.version)
app.add_typer(pipeline_cmds.versions_app, name="versions")
app.command("notify")(notify_cmds.notify)
app.command("history")(history_cmds.history)
app.add_typer(history_cmds.metrics_app, name="metrics")
app.command("train")(model_cmds.train)
app.command("predict")(model_cmds.predict)
app.command("retrain")(model_cmds.retrain)
app.command("serve")(serve_cmds.serve)
app.command("consume")(consume_cmds.consume)
app.add_typer(ab_cmds.ab_app, name="ab")


GLOBAL_FLAGS = {"-q", "--quiet", "-v", "--verbose"}
GLOBAL_VALUE_OPTIONS = {"-C", "--project-dir"}
"""Global options that take a value (the folder), moved with it."""


def _value_options(command: Any) -> set[str]:
    """The option names of ``command`` that take a value (the token after them is that value)."""
    return {
        name
        for param in getattr(command, "params", [])
        if getattr(param, "param_type_name", "") == "option" and not getattr(param, "is_flag", False)
        for name in getattr(param, "opts", [])
    }


def hoist_global_flags(args: list[str], command: Any) -> list[str]:
    """Move ``-q``/``-v`` and ``-C DIR`` written after the subcommand to before it
    (``churnops monitor -q``, ``churnops monitor -C demo``).

    A token is moved only where it cannot be the value of the option before it.

    >>> hoist_global_flags(["monitor", "--current", "b.csv", "-q", "-C", "demo"], typer.main.get_command(app))
    ['-q', '-C', 'demo', 'monitor', '--current', 'b.csv']
    >>> hoist_global_flags(["monitor", "--project-dir=demo"], typer.main.get_command(app))
    ['--project-dir=demo', 'monitor']
    >>> hoist_global_flags(["history", "--column", "-v"], typer.main.get_command(app))
    ['history', '--column', '-v']
    """
    hoisted: list[str] = []
    kept: list[str] = []
    group = command
    takes_value = _value_options(command)
    tokens = iter(enumerate(args))
    for index, token in tokens:
        if token == "--":
            kept += args[index:]
            break
        previous = kept[-1] if kept else None
        if group is not command and previous not in takes_value:
            if token in GLOBAL_FLAGS or token.startswith("--project-dir="):
                hoisted.append(token)
                continue
            if token in GLOBAL_VALUE_OPTIONS and index + 1 < len(args):
                hoisted += [token, next(tokens)[1]]
                continue
        kept.append(token)
        if not token.startswith("-") and previous not in takes_value and hasattr(group, "get_command"):
            sub = group.get_command(None, token)
            if sub is not None:
                group = sub
                takes_value = _value_options(sub)
    return hoisted + kept


def main(argv: list[str] | None = None) -> int:
    """The ``churnops`` command: runs the app and turns usage errors into one line (exit 2).

    Without ``argv`` it is the process's own command (``python -m churnops``, the ``churnops``
    script), which ends when it returns: what is left is then frozen (``gc.freeze``), so that
    the interpreter's shutdown does not walk every object to collect it (about 70 ms of CPU
    after a nightly monitor; the outputs are written, flushed and closed before).
    """
    import gc

    pause_collector()
    try:
        return _main(argv)
    finally:
        resume_collector()  # commands that load no configuration
        if argv is None:
            gc.freeze()


def app_for(args: list[str]) -> typer.Typer:
    """The app with only the command that ``args`` name, when they start with it (after ``-q`` /
    ``-v``); else the whole app. Typer builds every command's options from its signature
    before parsing (about 15 ms for the 21 commands), and a run uses one.

    >>> [c.name for c in app_for(["-q", "monitor", "--no-cache"]).registered_commands]
    ['monitor']
    >>> [g.name for g in app_for(["profile", "build"]).registered_groups]
    ['profile']
    >>> app_for(["--help"]) is app, app_for(["-C", "x", "monitor"]) is app, app_for(["monitr"]) is app
    (True, True, True)
    """
    import copy

    name = next((token for token in args if token not in GLOBAL_FLAGS), None)
    if name is None or name.startswith("-"):
        return app
    commands = [info for info in app.registered_commands if info.name == name]
    groups = [info for info in app.registered_groups if info.name == name]
    if len(commands) + len(groups) != 1:
        return app
    trimmed = copy.copy(app)
    trimmed.registered_commands = commands
    trimmed.registered_groups = groups
    return trimmed


def _main(argv: list[str] | None) -> int:
    from churnops.escape import one_line

    given = list(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app_for(given))
    args = hoist_global_flags(given, command)
    try:
        # without standalone mode the command's exit code is returned instead of raised
        returned = command.main(args=args, prog_name="churnops", standalone_mode=False)
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0))
    except (typer.Abort, KeyboardInterrupt):
        err("interrupted")
        return 130
    except Exception as exc:
        # usage errors (unknown option, bad value, a folder given as a file) have these two
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
            raise
        context = getattr(exc, "ctx", None)
        where = " ".join(context.command_path.split()[1:]) if context is not None else ""
        hint = f" (see 'churnops {where} --help')".replace("  ", " ") if exc.exit_code == 2 else ""
        err(f"error: {one_line(exc.format_message())}{hint}")
        return int(exc.exit_code)
    return returned if isinstance(returned, int) and not isinstance(returned, bool) else 0


__all__ = ["app", "main"]
