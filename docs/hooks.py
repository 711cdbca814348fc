"""MkDocs hooks.

* The command reference (docs/cli.md) is written from the commands' own ``--help`` before every
  build, so the site never describes options the command does not have. ``python docs/hooks.py``
  rewrites it by hand; the test suite checks that the committed file is what the commands say.
* The getting-started notebook is executed at every build (in a scratch folder, its kernel
  reached over local sockets rather than TCP) and the site shows that run's outputs; the
  committed notebook keeps none.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

CLI_PAGE = Path(__file__).with_name("cli.md")
NOTEBOOK = Path(__file__).with_name("getting-started.ipynb")
WIDTH = 100
_executed: dict[str, Path] = {}


def cli_reference() -> str:
    """Markdown of every command's help, in the order ``churnops --help`` lists them."""
    import typer

    from churnops.cli import app

    sections = [
        "# Command reference",
        "",
        "Every command's `--help`, as the installed `churnops` prints it (this page is generated from",
        "it). Global options (`-q`, `-v`, `-C DIR`) go before or after the command; every command takes",
        "`--config FILE` and `--set KEY=VALUE`.",
    ]

    def walk(command: Any, parent: Any, name: str) -> None:
        # typer carries its own copy of click: its classes, not an installed click's
        context = command.context_class(
            command,
            info_name=name,
            parent=parent,
            terminal_width=WIDTH,
            max_content_width=WIDTH,
            help_option_names=["-h", "--help"],
        )
        if parent is not None:
            title = context.command_path
            sections.extend(["", f"## {title}", "", "```text", command.get_help(context).rstrip(), "```"])
        else:
            sections.extend(["", "## churnops", "", "```text", command.get_help(context).rstrip(), "```"])
        if hasattr(command, "list_commands"):
            for child in command.list_commands(context):
                sub = command.get_command(context, child)
                if sub is not None and not sub.hidden:
                    walk(sub, context, child)

    walk(typer.main.get_command(app), None, "churnops")
    return "\n".join(sections) + "\n"


def write_cli_page() -> bool:
    """Rewrite docs/cli.md when the commands' help changed; whether it changed."""
    text = cli_reference()
    if CLI_PAGE.is_file() and CLI_PAGE.read_text(encoding="utf-8") == text:
        return False
    CLI_PAGE.write_text(text, encoding="utf-8")
    return True


def execute_notebook(source: Path, destination: Path, timeout: int = 600) -> Any:
    """Run every cell of ``source`` in a fresh kernel of this Python, in ``destination``'s folder,
    and write the notebook with its outputs to ``destination``; the executed notebook. A cell
    that raises stops the run with nbclient's ``CellExecutionError``."""
    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    notebook = nbformat.read(source, as_version=4)
    destination.parent.mkdir(parents=True, exist_ok=True)
    # local (IPC) sockets: the kernel's traffic never crosses a TCP port, even on 127.0.0.1
    # its connection file (which holds the kernel's key) beside them too, removed with the folder
    manager = KernelManager(
        kernel_name="python3",
        transport="ipc",
        ip=str(destination.parent / "kernel"),
        connection_file=str(destination.parent / "kernel.json"),
    )
    client = NotebookClient(
        notebook, km=manager, timeout=timeout, resources={"metadata": {"path": str(destination.parent)}}
    )
    client.execute()
    nbformat.write(notebook, destination)
    return notebook


def on_pre_build(config: Any, **kwargs: Any) -> None:  # MkDocs hook
    import tempfile

    write_cli_page()
    folder = Path(tempfile.mkdtemp(prefix="churnops-docs-"))
    _executed["getting-started.ipynb"] = folder / NOTEBOOK.name
    execute_notebook(NOTEBOOK, folder / NOTEBOOK.name)


def on_files(files: Any, config: Any, **kwargs: Any) -> Any:  # MkDocs hook: the site shows the executed copy
    for file in files:
        if file.src_uri in _executed:
            file.abs_src_path = str(_executed[file.src_uri])
    return files


def on_post_build(config: Any, **kwargs: Any) -> None:  # MkDocs hook
    import shutil

    for path in _executed.values():
        shutil.rmtree(path.parent, ignore_errors=True)
    _executed.clear()


if __name__ == "__main__":
    print("docs/cli.md", "rewritten" if write_cli_page() else "unchanged")
    sys.exit(0)
