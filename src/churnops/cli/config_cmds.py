"""``churnops config ...``"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from churnops.cli.common import echo, handle_errors, load, say
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


@handle_errors
def init(
    reference: Annotated[
        Path, typer.Option("--reference", "-r", help="Your reference data (.csv or .parquet).", dir_okay=False)
    ],
    current: Annotated[
        Path | None,
        typer.Option(
            "--current", "-p", help="A batch to compare with it (written as paths.production).", dir_okay=False
        ),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", "-t", help="The label column, if the guess is wrong.")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write.", dir_okay=False)] = Path(
        "churnops.toml"
    ),
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    separator: Annotated[
        str | None, typer.Option("--separator", help="CSV field separator of your files, e.g. ';'.")
    ] = None,
    decimal: Annotated[
        str | None, typer.Option("--decimal", help="Decimal mark of the numbers in your CSV files: '.' or ','.")
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option("--encoding", help="Text encoding of your CSV files, e.g. cp1252 or latin-1 [default: utf-8]."),
    ] = None,
) -> None:
    """Write a commented churnops.toml for your own data: its columns, their types, the target and identifiers.

    Read the file, correct any guess, then run `churnops monitor`. Nothing is overwritten without --force.
    """
    from churnops.config import load_config
    from churnops.config.paths import refuse_credentials
    from churnops.data.files import atomic_write_text
    from churnops.data.io import CsvDialect, check_readable, table_format
    from churnops.errors import ConfigError
    from churnops.escape import one_line_short
    from churnops.pipeline.starter import starter_config

    refuse_credentials(output, "--output")
    if output.exists() and not force:
        raise ConfigError(f"{output} already exists: edit it, or add --force to replace it")
    check_readable(reference)
    if current is not None:
        check_readable(current)
    if decimal is not None and decimal not in (".", ","):
        raise ConfigError(f"--decimal: {decimal!r} is not a decimal mark; give '.' or ','")
    if decimal == "," and (separator or ",") == ",":
        raise ConfigError(
            "--decimal ',' needs another --separator than ',' (e.g. --separator ';'): export a file whose numbers "
            "have decimal commas with ';' between its fields"
        )
    if encoding is not None:
        import codecs

        try:
            if not codecs.lookup(encoding)._is_text_encoding:
                raise LookupError
        except LookupError:
            raise ConfigError(
                f"--encoding: {encoding!r} is not a text encoding (e.g. utf-8, cp1252, latin-1)"
            ) from None
    csv = table_format(reference) == "csv"
    separator_given = separator if separator is not None else decimal
    if separator is None and csv:
        separator = _header_separator(reference)
        if separator != ",":
            shown = "\\t" if separator == "\t" else separator
            say(
                f"NOTICE: {reference.name} is '{shown}'-separated: read so (separator in {output}; --separator decides)"
            )
    dialect = CsvDialect(separator=separator or ",", decimal=decimal or ".", encoding=encoding or "utf-8")
    commas: list[tuple[str, str]] = []  # the reference's numbers written with a decimal comma, read as given
    pointed: list[str] = []  # and, beside them, numbers written with a decimal point
    if csv:
        from churnops.pipeline.starter import SAMPLE_ROWS, decimal_comma_columns, sample_frame

        _, sample = sample_frame(reference, dialect, SAMPLE_ROWS)
        if sample is not None:
            commas = decimal_comma_columns(sample, dialect)
            pointed = _point_decimals(sample) if commas else []
    # a file of decimal commas (a French or German export) is read so without --decimal: its
    # amounts were categories, and an unchanged batch drifted (both marks in one file: said below)
    commas_read = decimal is None and dialect.separator != "," and bool(commas) and not pointed
    if commas_read:
        dialect = CsvDialect(separator=dialect.separator, decimal=",", encoding=dialect.encoding)
    text, guesses, chosen = starter_config(reference, current, output.absolute().parent, target, dialect)
    batch_dialect = _batch_dialect(current, dialect) if current is not None and separator_given is None else None
    if batch_dialect is not None:  # the batch is written otherwise than the reference: [data.current]
        lines = ["", "[data.current]    # the batch's own CSV format, which differs from the reference's"]
        if batch_dialect.separator != dialect.separator:
            lines.append(f"separator = {json.dumps(batch_dialect.separator)}")
        if batch_dialect.decimal != dialect.decimal:
            lines.append(f"decimal = {json.dumps(batch_dialect.decimal)}")
        text = text.rstrip("\n") + "\n" + "\n".join(lines) + "\n"
        dialect_for_batch = batch_dialect
    else:
        dialect_for_batch = dialect
    # what we write must load: tried from a new file of our own beside it (relative paths resolve
    # alike), never through a name planted there (a link to another file, which would be written)
    fd, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".check", dir=output.absolute().parent)
    staged = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        load_config(staged)
    finally:
        staged.unlink(missing_ok=True)
    atomic_write_text(output, text)
    kinds = {}
    for guess in guesses:
        kinds.setdefault(guess.kind, []).append(guess.name)
    say(f"{output}: {len(guesses)} columns - " + "; ".join(f"{k} {', '.join(v)}" for k, v in kinds.items()))
    say(f"target: {chosen}" if chosen else "target: none guessed (set columns.target, or --target)")
    if commas_read:
        shown = ", ".join(
            f"{one_line_short(name, 40)} (e.g. {one_line_short(example, 20)!r})" for name, example in commas[:3]
        )
        say(
            f"NOTICE: numbers written with a decimal comma: {shown}; read as numbers (decimal = ',' in {output}; "
            "--decimal '.' decides otherwise)"
        )
    if batch_dialect is not None:
        shown = "\\t" if batch_dialect.separator == "\t" else batch_dialect.separator
        say(
            f"NOTICE: {current.name} is written otherwise than {reference.name}: '{shown}'-separated, decimal mark "
            f"'{batch_dialect.decimal}'; read so ([data.current] in {output})"
        )
    if current is not None:
        _say_batch_columns(reference, current, dialect_for_batch, guesses, chosen)
    if commas and not commas_read:
        from churnops.pipeline.inference import AS_TEXT
        from churnops.pipeline.starter import NOT_NUMBERS_BESIDE

        shown = ", ".join(
            f"{one_line_short(name, 40)} (e.g. {one_line_short(example, 20)!r})" for name, example in commas[:5]
        )
        if dialect.decimal != ".":
            advice = NOT_NUMBERS_BESIDE
        elif dialect.separator == ",":  # polars reads no decimal comma beside a comma separator
            advice = "export the file with ';' between fields, then run init again with --separator ';' --decimal ','"
        elif pointed:
            names = ", ".join(one_line_short(n, 40) for n in pointed[:3])
            advice = f"beside numbers written with decimal points ({names}): export the file with one decimal mark"
        else:
            advice = "run init again with --decimal ','"
        say(f"NOTICE: numbers written with a decimal comma are not read as numbers: {shown}{AS_TEXT}; {advice}")
    if table_format(reference) == "parquet":
        _say_text_measures(reference, guesses, output)
    import shlex

    command = "churnops monitor"
    if output != Path("churnops.toml"):  # found in the current folder only by that name
        command += f" -c {shlex.quote(str(output))}"
    say(f"next: check {output}, then run '{command}{'' if current else ' --current YOUR_BATCH.csv'}'")


def _point_decimals(sample: Any) -> list[str]:
    """The columns of a sample read with a decimal point that hold numbers with decimals
    (``57.153``): a file whose other columns have decimal commas cannot be read with one mark."""
    return [
        name
        for name, dtype in sample.schema.items()
        if dtype.is_float() and bool((sample[name].drop_nans().drop_nulls() % 1 != 0).any())
    ]


def _batch_dialect(current: Path, dialect: Any) -> Any:
    """The batch's CSV format when it differs from the reference's ``dialect`` (its separator, or
    numbers written with a decimal comma where the reference's have a point), else None."""
    from churnops.data.io import CsvDialect, table_format
    from churnops.errors import ChurnopsError
    from churnops.pipeline.starter import SAMPLE_ROWS, decimal_comma_columns, sample_frame

    if table_format(current) != "csv":
        return None
    separator = _header_separator(current)
    decimal = dialect.decimal
    if separator != ",":
        read = CsvDialect(separator=separator, decimal=".", encoding=dialect.encoding)
        try:
            _, sample = sample_frame(current, read, SAMPLE_ROWS)
        except ChurnopsError:
            sample = None
        commas = decimal_comma_columns(sample, read) if sample is not None else []
        decimal = "," if commas and not _point_decimals(sample) else "."
    if separator == dialect.separator and decimal == dialect.decimal:
        return None
    return CsvDialect(separator=separator, decimal=decimal, encoding=dialect.encoding)


def _header_separator(path: Path) -> str:
    """The separator the header line of a CSV file shows: ',' unless a comma makes it one column
    and another usual separator (';', a tab, '|') makes it several."""
    import csv

    from churnops.data.io import SEPARATOR_GUESSES

    with path.open("rb") as handle:
        first = handle.readline(1 << 20).decode("latin-1").lstrip("\ufeff\u00ef\u00bb\u00bf").rstrip("\r\n")
    try:
        if len(next(csv.reader([first]), [])) > 1:
            return ","
        for guess in SEPARATOR_GUESSES:
            if guess != "," and len(next(csv.reader([first], delimiter=guess), [])) > 1:
                return guess
    except csv.Error:  # a line break inside a name: the file's reader says what is wrong, in one line
        pass
    return ","


def _say_text_measures(reference: Path, guesses: list[Any], output: Path) -> None:
    """The numbers a Parquet reference holds as text, written as numerical: said, with the undo."""
    from churnops.escape import names_line
    from churnops.pipeline.starter import HELD_AS_TEXT

    held = [guess.name for guess in guesses if guess.kind == "numerical" and guess.detail.startswith(HELD_AS_TEXT)]
    if held:
        say(
            f"NOTICE: numbers {reference.name} holds as text are written as numerical (tested as numbers, as from a "
            f"CSV file): {names_line(held)}; to test them as categories, move them to categorical = [...] under "
            f"[columns] in {output}"
        )


def _say_batch_columns(reference: Path, current: Path, dialect: Any, guesses: list[Any], target: str | None) -> None:
    """A NOTICE for the reference's columns that the batch lacks - monitor would stop on them -
    and for the batch's columns that the reference lacks (never tested)."""
    from churnops.data.io import TableReader
    from churnops.errors import ChurnopsError
    from churnops.escape import names_line

    try:
        header = TableReader(current, dialect=dialect).header
    except ChurnopsError:
        return  # monitor says what is wrong with the batch
    left_out = {"id", "row number", "text"}
    needed = [g.name for g in guesses if g.kind not in left_out and g.name != target]
    missing = [name for name in needed if name not in header]
    extra = [name for name in header if name not in {g.name for g in guesses}]
    if missing:
        say(
            f"NOTICE: {current} lacks {'the column' if len(missing) == 1 else 'the columns'} {names_line(missing)} of "
            f"{reference}: monitor stops on a batch without {'it' if len(missing) == 1 else 'them'} - give one "
            f"with {'it' if len(missing) == 1 else 'them'}, or list {'it' if len(missing) == 1 else 'them'} in "
            "columns.ignored"
        )
    if extra:
        say(f"NOTICE: {current} has {'a column' if len(extra) == 1 else 'columns'} {reference} lacks, never "
            f"tested: {names_line(extra)}")  # fmt: skip
