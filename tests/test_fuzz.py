"""Property-based fuzzing: random schemas and values for the engine, random bytes for the CSV
reader, random documents for the configuration loader. Each gives a result or one clean error,
never a crash, a NaN verdict or output that JSON cannot hold."""

from __future__ import annotations

import json
import math
import string
import tempfile
from pathlib import Path

import polars as pl
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnops.config import load_config
from churnops.data.io import TableReader, read_table
from churnops.errors import ChurnopsError, ConfigError, InputDataError
from churnops.monitor.engine import monitor_frames
from churnops.monitor.settings import MonitorSettings
from churnops.report.html import ReportContext, render_report
from churnops.report.metrics import metrics_document, render_metrics_json

FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(-1e6, 1e6),
    st.sampled_from([0.0, 1.0, -1.0]),
    st.none(),
)
TEXT = st.one_of(
    st.sampled_from(["a", "b", "c", "", "NA", "<b>x</b>", "é", "1,234.5", "=1+1"]),
    st.text(max_size=12),
    st.none(),
)
INTS = st.one_of(st.integers(-5, 5), st.integers(-(2**40), 2**40), st.none())
KINDS = {"float": (FLOATS, pl.Float64), "text": (TEXT, pl.String), "int": (INTS, pl.Int64)}


@st.composite
def frames(draw):
    """A reference and a current frame with a random schema; the current may miss or add columns
    and may hold a column's values in another type."""
    n_columns = draw(st.integers(1, 5))
    names = draw(
        st.lists(
            st.text(string.ascii_letters + " <>&\"'é", min_size=1, max_size=8),
            min_size=n_columns,
            max_size=n_columns,
            unique=True,
        )
    )
    kinds = [draw(st.sampled_from(sorted(KINDS))) for _ in names]
    n_ref = draw(st.integers(1, 60))
    n_cur = draw(st.integers(1, 60))

    def column(kind: str, n: int) -> pl.Series:
        values, dtype = KINDS[kind]
        return pl.Series(draw(st.lists(values, min_size=n, max_size=n)), dtype=dtype)

    reference = pl.DataFrame({name: column(kind, n_ref) for name, kind in zip(names, kinds, strict=True)})
    current_kinds = [draw(st.sampled_from([kind, kind, "text"])) for kind in kinds]
    current = pl.DataFrame({name: column(kind, n_cur) for name, kind in zip(names, current_kinds, strict=True)})
    if draw(st.booleans()) and current.width > 1:
        current = current.drop(names[0])
    if draw(st.booleans()):
        current = current.with_columns(pl.lit(1).alias("extra column"))
    return reference, current


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames(), st.sampled_from([None, "psi", "ks", "jensenshannon", "wasserstein", "chisquare"]))
def test_engine_gives_a_result_or_a_clean_error(pair, method):
    reference, current = pair
    monitor = MonitorSettings(target=None, method=method)
    try:
        result = monitor_frames(reference, current, monitor)
    except ChurnopsError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    score = result.dataset_drift.score
    assert isinstance(result.dataset_drift.detected, bool) and not math.isnan(score) and 0 <= score <= 1
    for column in result.columns:
        assert isinstance(column.drift_detected, bool)
        assert column.test == "none" or not math.isnan(column.drift_score), column
    assert 0 <= result.data_quality.score <= 1
    document = metrics_document(result)
    json.loads(render_metrics_json(document))  # no NaN, no infinity: valid JSON
    html = render_report(result, ReportContext("m.json", "t.txt", result.dataset_drift.detected))
    assert "<script" not in html.lower()


CSV_PIECES = st.sampled_from(
    [
        b"a,b\n",
        b"1,2\n",
        b'"x,y",3\n',
        b'"unterminated\n',
        b"\xff\xfe",
        b"\n",
        b",,,\n",
        b"a;b;c\n",
        b"\r\n",
        b"\x00",
        b"1e400,-inf\n",
        b"\xc3\xa9,1\n",
        b'"a""b",2\n',
        b"a,a\n",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(CSV_PIECES, st.binary(max_size=20)), max_size=12), st.integers(1, 64))
def test_csv_reader_gives_rows_or_a_clean_error(pieces, chunk_bytes):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.csv"
        path.write_bytes(b"".join(pieces))
        for read in (lambda: list(TableReader(path, chunk_bytes=chunk_bytes)), lambda: read_table(path)):
            try:
                read()
            except InputDataError as exc:
                assert str(path) in str(exc) and "\n" not in str(exc)


SECTIONS = ["paths", "data", "columns", "drift", "thresholds", "scenario", "monitor", "notify", "history", "model"]
KEYS = [
    "reference",
    "dataset_drift",
    "column_drift",
    "method",
    "target",
    "rows",
    "seed",
    "intensity",
    "name",
    "engine",
    "separator",
    "encoding",
    "reference_rows",
    "binning",
    "n_bins",
    "unknown",
    "enabled",
    "channels",
]
VALUES = st.recursive(
    st.one_of(
        st.integers(-10, 10**6),
        st.floats(allow_nan=False),
        st.text(max_size=10),
        st.booleans(),
        st.sampled_from(["all", "ks", "../x", "/abs", "utf-16", ";", "quantile"]),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(SECTIONS + KEYS),
        st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=4) | VALUES,
        max_size=4,
    )
)
def test_config_loader_gives_a_config_or_one_line(document):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "churnops.toml"
        path.write_text(tomli_w.dumps(document))
        try:
            load_config(path)
        except ConfigError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_config_loader_on_random_bytes(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "churnops.toml"
        path.write_bytes(data)
        try:
            load_config(path)
        except ConfigError as exc:
            assert "\n" not in str(exc)
