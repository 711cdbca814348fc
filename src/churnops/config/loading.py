"""Reading ``churnops.toml`` and ``--set`` overrides into one validated :class:`Config`.

Whatever is wrong - a missing or unreadable file, TOML that does not parse or nests without end,
a key that does not exist, a value out of range, a path that leaves the project or lands on
another file - becomes one :class:`ConfigError` line naming the file and the key.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from churnops.config.models import CONFIG_FILENAME, Config, EmailChannel, FileChannel, WebhookChannel
from churnops.data.formats import DATA_SUFFIXES
from churnops.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

MAX_CONFIG_BYTES = 1 << 20


def _format_validation_error(exc: ValidationError, source: str, given: set[str] | None = None) -> str:
    """One line for the first problem, naming where the value came from: the file, or the
    command line when a ``--set`` or an option gave that key."""
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if given and any(key == name or key.startswith(name + ".") or name.startswith(key + ".") for name in given):
        source = "command line"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key" + _known_keys(first["loc"])
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{source}: {key}: {message}{suffix}"


EVIDENTLY_NAMES = {
    "stattest": "method",
    "num_stattest": "num_method",
    "cat_stattest": "cat_method",
    "per_column_stattest": "per_column_method",
    "stattest_threshold": "threshold",
    "num_stattest_threshold": "num_threshold",
    "cat_stattest_threshold": "cat_threshold",
    "per_column_stattest_threshold": "per_column_threshold",
    "drift_share": "dataset_drift",
}
"""Evidently's names for settings churnops names otherwise."""


def _known_keys(location: tuple[Any, ...]) -> str:
    """For an unknown key at ``location``: the key meant (Evidently's name, or one spelled
    closely), else the keys its section takes."""
    import difflib

    from churnops.config.models import Config

    model: Any = Config
    for part in location[:-1]:
        field = getattr(model, "model_fields", {}).get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and hasattr(annotation, "model_fields")):
            return ""
        model = annotation
    keys = list(getattr(model, "model_fields", {}))
    given = str(location[-1])
    section = ".".join(str(part) for part in location[:-1])
    prefix = f"{section}." if section else ""
    meant = EVIDENTLY_NAMES.get(given)
    if meant in keys:
        return f" ({given} is Evidently's name: churnops's is {prefix}{meant})"
    close = difflib.get_close_matches(given, keys, n=1, cutoff=0.7)
    if close:
        return f" (did you mean {prefix}{close[0]}?)"
    if not keys:
        return ""
    shown = ", ".join(keys[:12]) + (f" and {len(keys) - 12} more" if len(keys) > 12 else "")
    return f"; [{section}] takes {shown}" if section else f"; the sections are {shown}"


def find_config(start: Path | None = None) -> Path | None:
    """The ``churnops.toml`` in ``start`` (default: the current directory), if there is one."""
    candidate = (start or Path.cwd()) / CONFIG_FILENAME
    return candidate if candidate.exists() else None


NOT_A_CONFIG = (
    "{source}: --config (-c) takes a churnops.toml, and this looks like {what} "
    "(churnops monitor takes the batch as --current or -p, the reference as --reference or -r)"
)
TABLE_SEPARATORS = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "bars"}


def table_separator(text: str) -> str | None:
    """The separator of ``text`` when its first lines read as a table rather than TOML: a header
    and rows that split into the same number (two or more) of cells, and no ``key = value`` or
    ``[section]`` line among them.

    >>> table_separator("id,tenure\\n1,12\\n2,5\\n"), table_separator("a;b;c\\n1;2;3\\n")
    (',', ';')
    >>> table_separator("[data]\\nseparator = ','\\n"), table_separator("a,b\\n")
    (None, None)
    >>> table_separator("x = [1, 2]\\ny = 3\\n")
    """
    lines = [line for line in text.splitlines()[:6] if line.strip() and not line.lstrip().startswith("#")][:5]
    if len(lines) < 2 or any(line.lstrip().startswith("[") or "=" in line for line in lines):
        return None
    for separator in TABLE_SEPARATORS:
        cells = {line.count(separator) for line in lines}
        if len(cells) == 1 and cells.pop() >= 1:
            return separator
    return None


def _read(source: Path) -> dict[str, Any]:
    if source.suffix.lower() in DATA_SUFFIXES:
        raise ConfigError(NOT_A_CONFIG.format(source=source, what="a data file"))
    if source.is_dir():
        raise ConfigError(f"{source}: is a folder, not a configuration file")
    if not source.is_file():
        raise ConfigError(f"{source}: not a regular file")
    try:
        with source.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read it: {(exc.strerror or str(exc)).lower()}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: larger than {MAX_CONFIG_BYTES // 1024} KiB; this is not a churnops.toml")
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        if b"\x00" in raw[:4096]:  # an SPSS, Stata or SAS file, a database...: no text at all
            raise ConfigError(NOT_A_CONFIG.format(source=source, what="a binary file, not text")) from None
        raise ConfigError(f"{source}: not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        separator = table_separator(text)
        if separator is not None:
            what = f"a table of data (cells separated by {TABLE_SEPARATORS[separator]})"
            raise ConfigError(NOT_A_CONFIG.format(source=source, what=what)) from None
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid TOML: nested too deeply") from None


def _apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> None:
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        if not leaf or any(not part for part in parents):
            raise ConfigError(f"--set: '{dotted}' is not a configuration key (e.g. thresholds.dataset_drift)")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {dotted}: '{part}' is a value, not a section")
            node = child
        node[leaf] = value


def remember_secrets(config: Config) -> None:
    """Tell the redaction the values of every secret the configuration points at."""
    from churnops.redact import remember, remember_environment, remember_url

    remember_environment(os.environ)  # the object stores' and services' own credential variables
    names: list[str | None] = [config.history.password_env]
    for channel in config.notify.channels:
        if isinstance(channel, WebhookChannel):
            names.append(channel.url_env)
        elif isinstance(channel, EmailChannel):
            names.append(channel.password_env)
    remember(os.environ.get(name) for name in names if name)
    urls = (config.metrics.pushgateway_url, config.history.url, config.model_tracking_uri(), config.dvc.remote_url)
    for url in urls:
        remember_url(url)  # its user, password, tokens: the address itself stays readable


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read, validate and return the effective configuration.

    Parameters
    ----------
    path
        A configuration file, or a project folder (its ``churnops.toml`` if it has one, else the
        defaults, with paths relative to that folder); None: the current folder.
    overrides
        Dotted keys (``"paths.reference"``) set on top of the file, as CLI flags do.

    Raises
    ------
    ConfigError
        With one line naming the file, the key and the problem.
    """
    data: dict[str, Any] = {}
    source: Path | None = None
    folder = Path.cwd()
    if path is not None and path.is_dir():
        folder, source = path, find_config(path)
    elif path is not None:
        from churnops.config.paths import refuse_credentials

        refuse_credentials(path, "--config")
        if not path.exists():
            raise ConfigError(f"configuration file not found: {path}")
        source = path
    else:
        source = find_config()
    if source is not None:
        data = _read(source)
    _apply_overrides(data, overrides or {})
    for reserved in ("root", "source"):
        if reserved in data:
            raise ConfigError(f"{source or 'configuration'}: {reserved}: unknown key")
    root = (source.parent if source is not None else folder).resolve()
    given = {key for key, value in (overrides or {}).items() if value is not None}
    return _validated(data, root, source, given)


def config_with(config: Config, overrides: dict[str, Any]) -> Config:
    """``config`` with dotted ``overrides`` on top, validated again as :func:`load_config` does
    (what was set stays what the user set; the rest keeps its defaults)."""
    data = config.model_dump(exclude_unset=True, exclude={"root", "source"})
    _apply_overrides(data, overrides)
    validated = _validated(data, config.root, config.source, set(overrides))
    validated.columns._inferred = config.columns._inferred  # not a setting: kept as it was
    return validated


def _validated(data: dict[str, Any], root: Path, source: Path | None, given: set[str] | None = None) -> Config:
    label = str(source) if source is not None else "configuration"
    try:
        config = Config.model_validate({**data, "root": root, "source": source})
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, label, given or set())) from None
    except RecursionError:
        raise ConfigError(f"{label}: values nested too deeply") from None
    _check_paths(config, label)
    remember_secrets(config)
    return config


def _check_paths(config: Config, label: str) -> None:
    for key, value in config.paths.model_dump().items():
        if key.endswith("_url"):
            continue  # object-storage URLs, checked by their own rule
        try:
            if key in ("monitoring_dir", "profile_cache"):
                config.resolve_dir(value)
            else:
                config.resolve(value)
        except ConfigError as exc:
            raise ConfigError(f"{label}: paths.{key}: {exc}") from None
    checks: list[tuple[str, Any, str]] = (
        [] if "://" in config.model.artifact_dir else [("model.artifact_dir", config.model.artifact_dir, "dir")]
    )
    for index, channel in enumerate(config.notify.channels):
        if isinstance(channel, FileChannel):
            checks.append((f"notify.channels[{index}].path", channel.path, "file"))
    if config.metrics.textfile_dir:
        checks.append(("metrics.textfile_dir", config.metrics.textfile_dir, "dir"))
    checks += [("paths.monitoring_dir", config.paths.monitoring_dir, "dir")]
    checks += [("paths.profile_cache", config.paths.profile_cache, "dir")]
    checks += [
        ("serve.event_log", config.serve.event_log, "file"),
        ("serve.windows_dir", config.serve.windows_dir, "dir"),
        ("serve.ab.report_dir", config.serve.ab.report_dir, "dir"),
    ]
    for key, value, kind in checks:
        try:
            path = config.resolve_dir(value) if kind == "dir" else config.resolve(value)
        except ConfigError as exc:
            raise ConfigError(f"{label}: {key}: {exc}") from None
        if kind == "dir" and path.exists() and not path.is_dir():
            raise ConfigError(f"{label}: {key}: {path} is a file, where churnops keeps a folder")
    try:
        if config.history.url:
            config.sqlite_url(config.history.url, "history.url")
        config.sqlite_url(config.model.tracking_uri, "model.tracking_uri")
        config.check_paths()
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from None
