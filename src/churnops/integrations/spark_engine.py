"""``--engine spark``: the streaming engine run on Spark, where the bank's tables live.

Spark reads the table (a CSV or Parquet file, a folder of parts as Spark, Hive or Delta write
them, or a catalog table ``table:db.name``); every partition is summarized on the executors by
the streaming engine's own builders inside ``mapInArrow``; only those summaries travel to the
driver, where they are merged in file order. The result is the local streaming engine's, to the
last digit: the summaries do not depend on how the rows are split.

The reference profile is built the same way (and cached under the same key as the local
streaming engine's, so either engine reuses it). The session is the one already active in the
process (a notebook's, a job's), else one started for the run at ``monitor.spark_master``
(default ``local[N]``) with ``[spark.conf]``, and stopped after it.

Reading CSV, Spark hands over text; each column is then given the type churnops' own reader
would give it (decided from the first :data:`~churnops.data.io.INFER_ROWS` rows, as that reader
does), so the same cells become the same values.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
import shutil
import socket
import sys
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from churnops.config import Config
from churnops.data.io import INFER_ROWS, NULL_VALUES, CsvDialect, check_readable, sha256_file, table_format
from churnops.errors import ChurnopsError, ConfigError, InputDataError, IntegrationError, MissingDependencyError
from churnops.redact import redact

logger = logging.getLogger(__name__)

TABLE_PREFIX = "table:"
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")
_LOCAL_MASTER = re.compile(r"^local(\[(\d+|\*)(,\d+)?\])?$")
_STANDALONE = re.compile(r"^spark://([^/\s]+)$")
_PART_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
CONNECT_TIMEOUT_S = 5.0
"""How long a ``spark://`` master gets to answer before the run stops (Spark itself retries for a minute)."""

LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} spark %p %c{1}: %m%n
"""
"""Spark's own logging for a session churnops starts: errors only, one line each, into the
workspace's ``.churnops/spark.log`` (with the JVM's other output), not onto the terminal."""


@dataclass(frozen=True)
class SparkInput:
    """A table as Spark reads it: ``kind`` is csv, parquet, delta or table; ``location`` the path
    or the table's name; ``local_file`` the file when it is one regular local file (hashed like
    the other engines' inputs; read by the stages that need a file, such as scoring)."""

    given: str
    kind: str
    location: str
    local_file: Path | None


def spark_input(value: str | Path) -> SparkInput:
    """What ``--reference`` / ``--current`` names, for Spark: ``table:NAME``, a file, or a folder
    of CSV or Parquet parts (a Delta table when it has a ``_delta_log``). One line on anything else."""
    text = os.fspath(value)
    if text.startswith(TABLE_PREFIX):
        name = text[len(TABLE_PREFIX) :]
        if not _TABLE_NAME.match(name):
            raise InputDataError(f"{text!r}: not a table name like table:churn or table:bank.churn_batches")
        return SparkInput(text, "table", name, None)
    path = Path(text)
    if not path.exists():
        raise InputDataError(f"{path}: file or folder not found")
    if path.is_file():
        check_readable(path)
        return SparkInput(text, table_format(path), str(path.resolve()), path)
    if not path.is_dir():
        check_readable(path)
    if (path / "_delta_log").is_dir():
        return SparkInput(text, "delta", str(path.resolve()), None)
    kinds: set[str] = set()
    for part in _parts(path):
        suffixes = [s.lower() for s in part.suffixes]
        kind = next((_PART_SUFFIXES[s] for s in suffixes if s in _PART_SUFFIXES), None)
        if kind is None:
            raise InputDataError(f"{part}: not a .csv or .parquet part; a folder holds parts of one format")
        kinds.add(kind)
    if not kinds:
        raise InputDataError(f"{path}: a folder without CSV or Parquet parts")
    if len(kinds) > 1:
        raise InputDataError(f"{path}: holds both CSV and Parquet parts; a folder holds parts of one format")
    return SparkInput(text, kinds.pop(), str(path.resolve()), None)


def _pyspark() -> Any:
    try:
        import pyspark
        from pyspark.sql import SparkSession  # noqa: F401 - the session API is what is needed
    except ImportError:
        raise MissingDependencyError("pyspark", "spark") from None
    return pyspark


def java_command() -> str:
    """The ``java`` Spark will start (``JAVA_HOME/bin/java``, else the one on PATH)."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
        raise IntegrationError(f"JAVA_HOME={home} has no bin/java: Spark needs Java 17 or later (set JAVA_HOME)")
    found = shutil.which("java")
    if found is None:
        raise IntegrationError(
            "Spark needs Java 17 or later and none is installed: install one (Debian: apt-get install "
            "openjdk-17-jre-headless) or set JAVA_HOME"
        )
    return found


def check_master(master: str) -> None:
    """Refuse a master that is not one, and say at once when a ``spark://`` master does not answer."""
    if _LOCAL_MASTER.match(master) or master == "yarn" or master.startswith("k8s://"):
        return
    match = _STANDALONE.match(master)
    if match is None:
        raise ConfigError(
            f"monitor.spark_master: '{redact(master)}' is not a Spark master (local[2], spark://host:7077, yarn, "
            "k8s://...)"
        )
    for address in match.group(1).split(","):  # spark://a:7077,b:7077: masters with standby
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"monitor.spark_master: '{redact(address)}' is not host:port (a port from 1 to 65535)")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
                return
        except OSError as exc:
            last = exc
    raise IntegrationError(f"cannot reach the Spark master {redact(master)}: {last.strerror or last}")


def master_of(config: Config) -> str:
    return config.monitor.spark_master or f"local[{config.monitor.jobs or os.cpu_count() or 1}]"


@contextlib.contextmanager
def spark_session(config: Config) -> Iterator[Any]:
    """The active Spark session, else one started for this block (and stopped after it)."""
    _pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        previous = active.conf.get(CSV_PRUNING, None)
        active.conf.set(CSV_PRUNING, "false")
        try:
            yield active
        finally:
            if previous is None:
                active.conf.unset(CSV_PRUNING)
            else:
                active.conf.set(CSV_PRUNING, previous)
        return
    master = master_of(config)
    check_master(master)
    java_command()
    session = _start(config, master)
    try:
        yield session
    finally:
        session.stop()


def _start(config: Config, master: str) -> Any:
    from pyspark.sql import SparkSession

    from churnops.data.files import open_regular

    folder = config.root / ".churnops"
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise ConfigError(f"{folder}: churnops keeps its own files there; it is a link or not a folder: remove it")
    folder.mkdir(mode=0o700, exist_ok=True)
    log4j = folder / "spark-log4j2.properties"
    log = folder / "spark.log"
    with os.fdopen(open_regular(log4j, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(LOG4J)
    builder = SparkSession.builder.master(master).appName("churnops")
    local = master.startswith("local")
    defaults = {
        CSV_PRUNING: "false",
        "spark.sql.warehouse.dir": str((folder / "spark-warehouse").resolve()),  # not in the current folder
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={log4j.resolve().as_uri()}",
    }
    if local:  # one machine: nothing listens beyond it, and the workers run this Python
        defaults |= {
            "spark.driver.memory": "2g",  # the executors live in the driver here; summaries come back to it
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.pyspark.python": sys.executable,
        }
    for key, value in {**defaults, **{k: _text(v) for k, v in config.spark.conf.items()}}.items():
        builder = builder.config(key, value)
    # the Python workers of a local session run this interpreter (where churnops is installed)
    environment = {"SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable} if local else {}
    with _stderr_to(log), _environment(environment):
        try:
            return builder.getOrCreate()
        except Exception as exc:  # py4j and pyspark raise plain exceptions here
            said = _log_error(log)
            raise IntegrationError(
                f"Spark did not start at {redact(master)}: {_first_line(exc)}"
                + (f"; its log says: {said}" if said else "")
                + f" ({log})"
            ) from None


def _log_error(log: Path) -> str | None:
    """The last line of Spark's log that says what went wrong (the JVM's own refusal, say
    ``Invalid maximum heap size: -Xmxlots``)."""
    try:
        with log.open("rb") as handle:
            handle.seek(max(0, log.stat().st_size - 65536))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    said = [
        line.strip()
        for line in lines
        if re.search(r"(Error|Exception|Invalid|Could not|cannot|failed)", line) and not line.strip().startswith("at ")
    ]
    return " / ".join(said[-3:])[:400] or None


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update({k: v for k, v in values.items() if k not in os.environ or saved[k] is None})
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)


@contextlib.contextmanager
def _stderr_to(log: Path) -> Iterator[None]:
    """The JVM Spark starts inherits this process's stderr: it gets the log file instead (its
    start-up warnings and its own log lines would otherwise fill the terminal)."""
    from churnops.data.files import open_regular

    sys.stderr.flush()
    target = open_regular(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    saved = os.dup(2)
    try:
        os.dup2(target, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(target)


def _first_line(exc: BaseException) -> str:
    # py4j's "An error occurred while calling o115.load." / pyspark's captured exceptions: the Java one
    java = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    text = (_java_message(java) if java is not None else str(exc)).strip() or type(exc).__name__
    text = re.sub(r"^(?:[a-z]+\.)+[A-Za-z]+(?:Exception|Error): ", "", text)  # org.apache.spark...Exception:
    line = text.splitlines()[0]
    return line[:300]


@dataclass(frozen=True)
class SparkTable:
    """A table read by Spark: ``frame`` has plain column names (``c0``, ``c1``...) in the order of
    ``header``, the table's real names (Spark would read a dot as a struct field, fold names that
    differ in case, and trip on backticks); ``raw`` is the frame as read (for file positions)."""

    source: SparkInput
    raw: Any
    frame: Any
    header: list[str]

    def placeholder(self, name: str) -> str:
        return f"c{self.header.index(name)}"

    @classmethod
    def of_frame(cls, frame: Any, source: SparkInput) -> SparkTable:
        """A DataFrame of the caller's (its own column names checked)."""
        header = _checked_names([str(name) for name in frame.columns], source)
        nested = [f.name for f in frame.schema.fields if f.dataType.typeName() in ("struct", "array", "map")]
        if nested:
            raise InputDataError(f"{source.given}: nested columns are not supported: {', '.join(nested)}")
        return cls(source, frame, frame.toDF(*[f"c{i}" for i in range(len(header))]), header)


def _checked_names(names: list[str], source: SparkInput) -> list[str]:
    from collections import Counter

    if not names:
        raise InputDataError(f"{source.given}: no columns found")
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise InputDataError(f"{source.given}: duplicate column names: {', '.join(repeated)}")
    return names


def csv_header(source: SparkInput, dialect: CsvDialect) -> list[str]:
    """The header of a CSV file, or of a folder's parts - which must all have the same one (Spark
    would take every part's columns by position from the first)."""
    from churnops.data.io import header_names

    if source.local_file is not None:
        return header_names(source.local_file, dialect)
    parts = _parts(source.location)
    first = header_names(parts[0], dialect)
    for part in parts[1:]:
        names = header_names(part, dialect)
        if names != first:
            raise InputDataError(
                f"{part}: its header differs from {parts[0].name}'s ({', '.join(names[:6])} against "
                f"{', '.join(first[:6])}); the parts of one table have the same columns in the same order"
            )
    return first


CSV_PRUNING = "spark.sql.csv.parser.columnPruning.enabled"
"""Off while churnops reads: with it on, Spark parses only the columns asked for and no longer
sees a CSV row that is wider or narrower than the header."""
MALFORMED = "malformed_row"
"""The column where Spark keeps, as it is, a CSV row that does not have the header's width."""


def quoted_line_breaks(source: SparkInput, dialect: CsvDialect) -> bool:
    """Whether a quoted cell of the CSV (or of a part) holds a line break. Spark then has to read
    each file whole (its ``multiLine``); else it splits files between tasks at line ends, which
    would cut such a record in two. One pass over the bytes, in blocks, nothing kept."""
    import numpy as np

    paths = [source.local_file] if source.local_file is not None else _parts(source.location)
    quote = ord('"')
    for path in paths:
        inside = 0
        with path.open("rb") as handle:
            while block := handle.read(16 << 20):
                if quote not in block and not inside:
                    continue
                codes = np.frombuffer(block, dtype=np.uint8)
                parity = (np.cumsum(codes == quote) + inside) % 2
                if bool(np.any((codes == ord("\n")) & (parity == 1))):
                    return True
                inside = int(parity[-1])
    return False


def _parts(folder: str | Path) -> list[Path]:
    """A folder's part files, as Spark lists them: hidden and ``_`` files and folders (``_SUCCESS``,
    ``.crc``, ``_delta_log``) left out."""
    found = []
    for parent, subfolders, files in os.walk(folder):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(("_", ".")))
        found += [Path(parent) / name for name in files if not name.startswith(("_", "."))]
    return sorted(found)


def _quiet_header_check(spark: Any) -> None:
    """Spark warns once per file that a CSV header is not the schema's names: churnops reads the
    header itself and gives Spark plain names, on purpose."""
    try:
        jvm = spark.sparkContext._jvm
        level = jvm.org.apache.logging.log4j.Level.ERROR
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
            "org.apache.spark.sql.catalyst.csv.CSVHeaderChecker", level
        )
    except Exception:  # noqa: BLE001 - Spark Connect has no JVM here, and a warning is harmless
        pass


def read_table(spark: Any, source: SparkInput, dialect: CsvDialect) -> SparkTable:
    """The table as Spark reads it (CSV cells as text with churnops' own header; see :func:`csv_types`)."""
    try:
        if source.kind == "csv":
            from pyspark.sql.types import StringType, StructField, StructType

            header = _checked_names(csv_header(source, dialect), source)
            fields = [StructField(f"c{i}", StringType()) for i in range(len(header))]
            schema = StructType([*fields, StructField(MALFORMED, StringType())])
            reader = (
                spark.read.schema(schema)
                .option("header", "true")
                .option("enforceSchema", "true")  # the names are churnops' (above); Spark takes columns by position
                .option("sep", dialect.separator)
                .option("encoding", dialect.encoding)
                .option("quote", '"')
                .option("escape", '"')
                .option("mode", "PERMISSIVE")  # a row of another width is kept whole in MALFORMED, then judged
                .option("columnNameOfCorruptRecord", MALFORMED)
            )
            if quoted_line_breaks(source, dialect):  # kept whole: each file then read by one task
                reader = reader.option("multiLine", "true")
            _quiet_header_check(spark)
            if not source.local_file:
                reader = reader.option("recursiveFileLookup", "true").option("pathGlobFilter", "*.csv")
            raw = reader.csv(source.location)
            return SparkTable(source, raw, raw, header)
        raw = (
            spark.table(source.location)
            if source.kind == "table"
            else spark.read.format(source.kind).load(source.location)
        )
        return SparkTable.of_frame(raw, source)
    except ChurnopsError:
        raise
    except Exception as exc:
        raise _spark_error(source, exc) from None


def _java_message(java: Any) -> str:
    """A Java exception's message, with its causes' when it only says it failed (``Error while
    instantiating ...:`` over ``Illegal value for spark.sql.shuffle.partitions``)."""
    parts: list[str] = []
    try:
        while java is not None and len(parts) < 5:
            message = str(java.toString()).strip()
            if message and message not in parts:
                parts.append(message)
            java = java.getCause()
    except Exception:  # noqa: BLE001 - a dead gateway: what was read is what there is
        pass
    lines = [re.sub(r"^(?:[a-z]+\.)+[A-Za-z]+(?:Exception|Error): ", "", p.splitlines()[0]) for p in parts if p]
    kept = [lines[0]] + [line for line in lines[1:] if not lines[0].rstrip().endswith(line.rstrip())]
    return " - ".join(kept) if kept else ""


def _spark_error(source: SparkInput, exc: BaseException) -> Exception:
    text = _first_line(exc)
    if "TABLE_OR_VIEW_NOT_FOUND" in text or "PATH_NOT_FOUND" in text:
        what = "no such table" if source.kind == "table" else "not found"
        return InputDataError(f"{source.given}: {what} ({text})")
    if "DATA_SOURCE_NOT_FOUND" in text and source.kind == "delta":
        return IntegrationError(
            f"{source.given}: a Delta table, and this Spark session cannot read Delta: add the delta-spark "
            "package and its settings to [spark.conf], or register the table and give table:NAME"
        )
    if "INVALID_CONF_VALUE" in text or "Invalid value for" in text:
        return ConfigError(f"[spark.conf]: {text.split(' - ')[-1]}")
    if "PARQUET_TYPE_ILLEGAL" in text or "UNSUPPORTED_TIME_TYPE" in text:
        return InputDataError(
            f"{source.given}: Spark cannot read a column type of this Parquet file ({text}); nanosecond "
            "timestamps and times of day are read by the native engine, or write them as microsecond timestamps"
        )
    return InputDataError(f"{source.given}: Spark cannot read it: {text}")


def csv_types(table: SparkTable, columns: list[str], dialect: CsvDialect) -> dict[str, Any]:
    """The type churnops' reader gives each text column of a CSV (Int64, Float64, Boolean or
    String), from the table's first :data:`INFER_ROWS` rows written back as CSV and guessed by
    the same parser the local engines use (integers too wide for 64 bits are floats there)."""
    import polars as pl

    from churnops.data.io import WIDE_INTEGERS

    if not columns:
        return {}
    placeholders = [table.placeholder(c) for c in columns]
    head = table.frame.select(placeholders).limit(INFER_ROWS).toArrow()
    sample = pl.from_arrow(head)
    assert isinstance(sample, pl.DataFrame)
    text = sample.write_csv(separator=dialect.separator, quote_style="non_numeric", null_value="")
    guessed = pl.read_csv(
        text.encode(),
        infer_schema_length=INFER_ROWS,
        null_values=NULL_VALUES,
        try_parse_dates=False,
        separator=dialect.separator,
        decimal_comma=dialect.decimal == ",",
    ).schema
    types: dict[str, Any] = {}
    for placeholder, column in zip(placeholders, columns, strict=True):
        dtype = guessed.get(placeholder, pl.String())
        if dtype in WIDE_INTEGERS or dtype.is_float():
            types[column] = pl.Float64()
        elif dtype.is_integer():
            types[column] = pl.Int64()
        else:
            types[column] = pl.Boolean() if dtype == pl.Boolean else pl.String()
    return types


REPLACEMENT = "\ufffd"
"""What Spark puts for bytes that are not text in the CSV's encoding (churnops' reader refuses them)."""
INPUT_ERROR = "churnops-input: "
"""How a task says the data are at fault (the driver turns it into one line, exit code 2)."""


def typed_batch(
    batch: Any, types: dict[str, Any], decimal_comma: bool, utf8: bool = False, text: Collection[str] = ()
) -> Any:
    """A CSV batch's text as churnops' reader types it: null spellings made null, then each
    column given its type where its text has it (:func:`churnops.data.io.typed_where_possible`,
    as for a local CSV piece read as text). ``utf8``: refuse text Spark could not decode (it
    would be compared as garbled categories); ``text``: columns kept as text (as the local reader's)."""
    import polars as pl

    from churnops.data.io import typed_where_possible

    frame = pl.from_arrow(batch)
    assert isinstance(frame, pl.DataFrame)
    nulls = pl.Series(NULL_VALUES, dtype=pl.String)
    columns = []
    for name in frame.columns:
        column = frame[name]
        if column.dtype == pl.String:
            if utf8 and column.str.contains(REPLACEMENT, literal=True).any():
                raise ValueError(
                    f"{INPUT_ERROR}column {name!r} holds bytes that are not UTF-8 text: set data.encoding to the "
                    "file's encoding (e.g. --set \"data.encoding='cp1252'\")"
                )
            column = column.set(column.is_in(nulls), None)  # type: ignore[arg-type]
        columns.append(column)
    frame = pl.DataFrame(columns)
    if decimal_comma:  # as churnops' own CSV reader reads such text (15.992 with a decimal comma: 15992)
        from churnops.data.io import decimal_comma_text

        frame = decimal_comma_text(frame, keep=text)
    return typed_where_possible(frame, types, decimal_comma)


def _refuse_long_rows(malformed: Any, width: int, separator: str) -> None:
    """Refuse a CSV row with more fields than the header (churnops' reader refuses it; Spark
    would drop the extra fields). A shorter row is read with empty cells, as that reader does."""
    import csv

    if malformed.null_count == len(malformed):
        return
    for line in malformed.drop_null().to_pylist():
        fields = next(csv.reader([line], delimiter=separator), [])
        if len(fields) > width:
            raise ValueError(f"{INPUT_ERROR}a row has {len(fields)} fields where the header has {width}: {line[:80]!r}")


# -- moving summaries between the executors and the driver ---------------------------------------


def sealed(payload: bytes, key: bytes) -> bytes:
    """``payload`` with an HMAC-SHA256 tag made with this run's key."""
    return hmac.new(key, payload, hashlib.sha256).digest() + payload


def opened(data: bytes, key: bytes) -> bytes:
    """The payload of :func:`sealed` bytes, refused unless this run's executors sealed it: the
    driver unpickles nothing that did not come from its own job."""
    tag, payload = data[:32], data[32:]
    if len(data) < 32 or not hmac.compare_digest(tag, hmac.new(key, payload, hashlib.sha256).digest()):
        raise IntegrationError("a Spark task returned a summary this run did not make: refused")
    return payload


@dataclass(frozen=True)
class PartPlan:
    """What every partition needs: the columns it reads (real names, and the plain names they
    travel under), how CSV text is typed, the rows it keeps."""

    columns: list[str]
    placeholders: list[str]
    csv_types: dict[str, Any] | None
    decimal_comma: bool
    utf8: bool = False
    width: int = 0
    """CSV: the header's width (a longer row is refused, as churnops' reader refuses it)."""
    separator: str = ","
    offsets: dict[int, int] | None = None
    """Row window: each partition's first row number in the table (None: every row)."""
    window: tuple[int, int] | None = None
    text: list[str] = field(default_factory=list)
    """CSV: columns kept as text whatever their cells look like (codes with leading zeros)."""
    ids: list[str] = field(default_factory=list)
    """Identifier columns: Parquet's unsigned 64-bit integers and decimals (Spark's
    ``decimal(20, 0)`` for the former) read as their text, as the local reader reads them."""


PIECE_BYTES = 8 << 20
"""A partition's sealed summary travels in pieces of this size (Arrow rows, not one huge value)."""


def summarize(
    table: SparkTable,
    plan: PartPlan,
    make: Callable[[], Any],
    feed: Callable[[Any, Any], None],
    key: bytes,
) -> tuple[Any, int]:
    """Run ``make`` / ``feed`` over each partition of ``frame`` on the executors; the partitions'
    builders merged on the driver in partition order (each unpickled after its seal is checked,
    one at a time), and how many partitions there were."""
    import pickle

    def part(batches: Iterable[Any]) -> Iterator[Any]:
        import pyarrow as pa
        from pyspark import TaskContext

        from churnops.data.io import as_read

        context = TaskContext.get()
        assert context is not None
        index = context.partitionId()
        builder = make()
        position = plan.offsets.get(index, 0) if plan.offsets is not None else 0
        for batch in batches:
            height = batch.num_rows
            if plan.window is not None:
                low = max(plan.window[0] - position, 0)
                high = min(plan.window[1] - position, height)
                position += height
                if high <= low:
                    continue
                batch = batch.slice(low, high - low)
            if batch.num_rows == 0:
                continue
            if plan.width:
                _refuse_long_rows(batch.column(len(plan.columns)), plan.width, plan.separator)
                batch = pa.RecordBatch.from_arrays(batch.columns[: len(plan.columns)], names=plan.columns)
            else:
                batch = pa.RecordBatch.from_arrays(batch.columns, names=plan.columns)
            chunk = (
                typed_batch(batch, plan.csv_types, plan.decimal_comma, plan.utf8, plan.text)
                if plan.csv_types is not None
                else as_read(batch, plan.ids)
            )
            feed(builder, chunk)
        data = sealed(pickle.dumps(builder, protocol=pickle.HIGHEST_PROTOCOL), key)
        del builder
        pieces = [data[start : start + PIECE_BYTES] for start in range(0, max(len(data), 1), PIECE_BYTES)]
        for number, piece in enumerate(pieces):
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array([index], pa.int64()),
                    pa.array([number], pa.int64()),
                    pa.array([len(pieces)], pa.int64()),
                    pa.array([piece], pa.binary()),
                ],
                names=["part", "piece", "pieces", "data"],
            )

    selected = table.frame.select([*plan.placeholders, *([MALFORMED] if plan.width else [])])
    try:
        expected = selected.rdd.getNumPartitions() if hasattr(selected, "rdd") else None
        answer = selected.mapInArrow(part, "part long, piece long, pieces long, data binary").toArrow()
    except Exception as exc:
        raise _job_error(table.source, exc) from None
    order = sorted(range(answer.num_rows), key=lambda i: (answer["part"][i].as_py(), answer["piece"][i].as_py()))
    found: dict[int, list[int]] = {}
    for row in order:
        found.setdefault(answer["part"][row].as_py(), []).append(row)
    complete = all(
        [answer["piece"][r].as_py() for r in rows] == list(range(answer["pieces"][rows[0]].as_py()))
        for rows in found.values()
    )
    if not complete or not found or (expected is not None and len(found) != expected):
        raise IntegrationError(
            f"Spark returned the summaries of {len(found)} of {expected or '?'} partitions: the driver may be out of "
            "memory (raise spark.driver.memory in [spark.conf]; Spark's log says more)"
        )
    merged = None
    for rows in found.values():
        data = b"".join(answer["data"][r].as_py() for r in rows)
        builder = pickle.loads(opened(data, key))  # noqa: S301 - sealed by this run's own tasks
        del data
        if merged is None:
            merged = builder
        else:
            merged.merge(builder)
    return merged, len(found)


def _job_error(source: SparkInput, exc: BaseException) -> Exception:
    """One line for a failed Spark job: the data's fault (exit code 2 with the input named), or
    the job's (a Python worker's last traceback line)."""
    text = str(exc)
    if INPUT_ERROR in text:
        said = text.split(INPUT_ERROR, 1)[1].splitlines()[0]
        return InputDataError(f"{source.given}: {said[:300]}")
    if "MALFORMED_RECORD_IN_PARSING" in text or "Malformed records are detected" in text:
        return InputDataError(
            f"{source.given}: a row does not have as many fields as the header (or a quote is not closed)"
        )
    for line in reversed(text.splitlines()):
        line = line.strip()
        if re.match(r"^[A-Za-z_.]*(Error|Exception): ", line) and "py4j" not in line:
            return IntegrationError(f"the Spark job failed: {line[:300]}")
    return IntegrationError(f"the Spark job failed: {_first_line(exc)}")


def partition_offsets(table: SparkTable) -> dict[int, int]:
    """Each partition's first row number, the partitions of one file in file order (from the
    position of their first block): one pass that counts rows without moving them."""
    from pyspark.sql import functions as F

    counted = (
        table.raw.select(F.spark_partition_id().alias("part"), F.col("_metadata.file_block_start").alias("start"))
        .groupBy("part")
        .agg(F.count(F.lit(1)).alias("rows"), F.min("start").alias("start"))
        .collect()
    )
    offsets: dict[int, int] = {}
    position = 0
    for row in sorted(counted, key=lambda r: (r.start, r.part)):
        offsets[int(row.part)] = position
        position += int(row.rows)
    offsets[-1] = position  # the table's row count
    return offsets


def new_key() -> bytes:
    return secrets.token_bytes(32)


# -- the reference profile and the batch ---------------------------------------------------------


def _plan(
    table: SparkTable,
    columns: list[str],
    dialect: CsvDialect,
    window: tuple[int, int] | None,
    text: Collection[str] = (),
    ids: Collection[str] = (),
) -> PartPlan:
    """How the parts are read; ``text``: columns of a CSV kept as text (codes with leading zeros
    that the reference holds as text); ``ids``: identifier columns (:attr:`PartPlan.ids`)."""
    source = table.source
    types = csv_types(table, columns, dialect) if source.kind == "csv" else None
    kept = [name for name in text if types is not None and name in types]
    if types is not None and kept:
        import polars as pl

        types.update({name: pl.String() for name in kept})
    offsets = None
    if window is not None:
        if source.local_file is None:
            raise ConfigError(
                f"{source.given}: a row window (data.reference_rows, --reference-rows) needs one file: the rows of "
                'a folder or a table have no order; set data.reference_rows = "all" or give one file'
            )
        offsets = partition_offsets(table)
        if offsets[-1] < window[1]:
            raise InputDataError(
                f"{source.given}: rows [{window[0]}, {window[1]}) requested but the file has only {offsets[-1]} data "
                "rows; the reference window is data.reference_rows (or --reference-rows): set data.reference_rows = "
                '"all" to use the whole file'
            )
    utf8 = source.kind == "csv" and dialect.encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig")
    placeholders = [table.placeholder(c) for c in columns]
    width = len(table.header) if source.kind == "csv" else 0
    decimal_comma = dialect.decimal == ","
    return PartPlan(
        list(columns),
        placeholders,
        types,
        decimal_comma,
        utf8,
        width,
        dialect.separator,
        offsets,
        window,
        text=kept,
        ids=[name for name in ids if name in columns],
    )


def _empty_typed(types: dict[str, Any] | None, columns: list[str]) -> Any:
    """An empty frame of the CSV columns' types: every partition's builders start from the
    types the whole table is read with, whatever its own first rows hold."""
    import polars as pl

    if types is None:
        return None
    return pl.DataFrame(schema={name: types.get(name, pl.String()) for name in columns})


def _primed(make: Callable[[], Any], primer: Any) -> Callable[[], Any]:
    """``make``, whose builder is first fed ``primer`` (see :func:`_empty_typed`) when there is one."""

    def primed() -> Any:
        builder = make()
        if primer is not None:
            builder.update(primer)
        return builder

    return primed


def profile_of(
    table: SparkTable, settings: Any, dialect: CsvDialect, window: tuple[int, int] | None = None, progress: Any = None
) -> Any:
    """The streaming profile of a table read by Spark (and its segments' when configured)."""
    from dataclasses import replace

    from churnops.monitor.profile import DECLARED_REASONS, ProfileBuilder, nothing_to_test
    from churnops.monitor.segments import SegmentProfiles, check_segment_columns, profile_columns

    source, header = table.source, table.header
    check_segment_columns(settings, header, source.given)
    needed = ProfileBuilder(header, settings, streaming=True).needed
    if not needed:
        reasons = {c: DECLARED_REASONS.get(settings.declared(c) or "", "not tested") for c in header}
        raise nothing_to_test(source.given, reasons)
    plan = _plan(table, needed, dialect, window)
    key = new_key()
    if progress:
        progress(f"reference {source.given} on Spark", 0, 1)
    make = _primed(lambda: ProfileBuilder(header, settings, streaming=True), _empty_typed(plan.csv_types, needed))
    merged, _ = summarize(table, plan, make, _update, key)
    if merged.rows == 0:
        raise InputDataError(f"{source.given}: has a header but no data rows")
    profile = merged.finish()
    if settings.segments:
        columns = profile_columns(profile, settings)
        segment_plan = _plan(table, columns, dialect, window) if columns != needed else plan
        make_segments = _primed(
            lambda: SegmentProfiles(profile, settings, streaming=True), _empty_typed(segment_plan.csv_types, columns)
        )
        segments, _ = summarize(table, segment_plan, make_segments, _update, key)
        profile = replace(profile, segments=segments.finish())
    if progress:
        progress(f"reference {source.given} on Spark", 1, 1)
    return profile


def _update(builder: Any, chunk: Any) -> None:
    builder.update(chunk)


def estimated_rows(table: SparkTable, dialect: CsvDialect) -> int:
    """The batch's rows: estimated from the file like the local engine does, else counted by Spark
    (from the Parquet footers for Parquet and tables of Parquet)."""
    from churnops.data.io import TableReader

    if table.source.local_file is not None:
        return TableReader(table.source.local_file, dialect=dialect).estimated_rows
    try:
        return int(table.frame.count())
    except Exception as exc:
        raise _spark_error(table.source, exc) from None


def accumulate_batch(
    spark: Any,
    config: Config,
    profile: Any,
    table: SparkTable,
    settings: Any,
    row_sample_above: int,
    row_sample: int,
    progress: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """The batch's streaming summaries, built on Spark and merged in partition order, and facts
    for the metrics' ``mode`` section."""
    sampling = (row_sample_above, row_sample)
    return batch_of(table, profile, settings, config.dialect, sampling, progress, master_shown(spark))


def master_shown(spark: Any) -> str | None:
    """The session's master as it may be written down (user information and tokens removed)."""
    context = getattr(spark, "sparkContext", None)
    master = getattr(context, "master", None) if context is not None else None
    return redact(master) if master else None


def batch_of(
    table: SparkTable,
    profile: Any,
    settings: Any,
    dialect: CsvDialect,
    sampling: tuple[int, int] = (0, 1),
    progress: Any = None,
    master: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The merged batch builder of a table read by Spark, and facts for the ``mode`` section.
    ``sampling``: (rows above which repeated rows are counted on a sample of identifiers, 1 in how many)."""
    from churnops.monitor.batch import text_columns
    from churnops.monitor.segments import batch_builder

    source, header = table.source, table.header
    try:
        probe = batch_builder(profile, header, settings, streaming=True, jobs=1, row_sample=1)
    except InputDataError as exc:
        raise InputDataError(f"{source.given}: {exc}") from None
    above, one_in = sampling
    sample = one_in if above and estimated_rows(table, dialect) > above else 1
    ids = getattr(probe, "main", probe).id_columns
    plan = _plan(table, list(probe.read_columns), dialect, None, text_columns(profile), ids)
    key = new_key()

    def make() -> Any:
        return batch_builder(profile, header, settings, streaming=True, jobs=1, row_sample=sample)

    if progress:
        progress(f"current {source.given} on Spark", 0, 1)
    merged, partitions = summarize(table, plan, make, _update, key)
    if merged.rows == 0:
        raise InputDataError(f"{source.given}: has a header but no data rows")
    if progress:
        progress(f"current {source.given} on Spark", 1, 1)
    return merged, {"partitions": partitions, "spark_master": master}


def input_sha256(source: SparkInput) -> str | None:
    """sha256 of the input when it is one local file (what the other engines record), else None:
    a folder or a table is not read on the driver."""
    return sha256_file(source.local_file) if source.local_file is not None else None
