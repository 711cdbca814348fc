"""``churnops config ...``"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from churnops.cli.common import echo, handle_errors, load
from churnops.cli.options import ConfigOption, SetOption

config_app = typer.Typer(help="Inspect the configuration (churnops.toml).", no_args_is_help=True)


@config_app.command("show")
@handle_errors
def show(
    config: ConfigOption = None,
    sets: SetOption = None,
    output_format: Annotated[str, typer.Option("--format", help="toml or json.")] = "toml",
) -> None:
    """Print the effective configuration: the file (if any) over the built-in defaults."""
    cfg = load(config, sets=sets)
    data = cfg.to_toml_dict()
    source = str(cfg.source) if cfg.source else "built-in defaults (no churnops.toml found)"
    if output_format == "json":
        echo(json.dumps({"source": source, **data}, indent=2))
        return
    if output_format != "toml":
        from churnops.errors import ConfigError

        raise ConfigError(f"--format: expected toml or json, got '{output_format}'")
    import tomli_w

    echo(f"# effective configuration - source: {source}")
    echo(tomli_w.dumps(data).rstrip())
