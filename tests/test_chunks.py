"""Time chunks (``drift.chunk_by``): a change that starts mid-batch is located in its period, the
chunks add no false alarms under the calibrated verdict, periods and row runs are cut right
whatever the time column's type, and bad or hostile settings and data get one clear line."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import jsonschema
import numpy as np
import polars as pl
import pytest

from churnops.config import Config
from churnops.data.generator import generate_reference
from churnops.errors import InputDataError
from churnops.monitor.chunks import MAX_CHUNKS, as_datetime, chunk_drift, cut, needed_columns
from churnops.monitor.profile import build_profile
from churnops.monitor.settings import settings_from_config
from churnops.report.metrics import metrics_schema

WEEKLY = replace(
    settings_from_config(Config()), verdict="calibrated", chunk_by="period:1w", time_column="day", target=None
)


def churnops(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "churnops", *args], cwd=root, capture_output=True, text=True, timeout=300, env=env
    )


@pytest.fixture(scope="module")
def pool() -> pl.DataFrame:
    return generate_reference(12_000, 5)


def _days(n: int, first: dt.date, days: int) -> pl.Series:
    """n dates spread evenly over ``days`` days from ``first``, in order."""
    return pl.Series("day", [first + dt.timedelta(days=i * days // n) for i in range(n)])


def _batch(pool: pl.DataFrame, factor_from: dt.date | None = None) -> pl.DataFrame:
    """The pool's last 4,000 rows over four weeks from Monday 2024-01-01; Balance x1.5 from
    ``factor_from`` on."""
    current = pool[8_000:].with_columns(_days(4_000, dt.date(2024, 1, 1), 28))
    if factor_from is not None:
        late = pl.col("day") >= factor_from
        current = current.with_columns(pl.when(late).then(pl.col("Balance") * 1.5).otherwise(pl.col("Balance")))
    return current


def _reference(pool: pl.DataFrame) -> pl.DataFrame:
    return pool[:8_000].with_columns(_days(8_000, dt.date(2023, 1, 2), 28))


def test_a_change_that_starts_in_the_last_week_is_located_there(pool):
    reference, current = _reference(pool), _batch(pool, dt.date(2024, 1, 22))
    profile = build_profile(reference, WEEKLY)
    chunks = chunk_drift(profile, *_cut(current, profile))
    assert [g.label for g in chunks.groups] == ["2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22"]
    assert [g.rows for g in chunks.groups] == [1_000] * 4
    assert [g.start for g in chunks.groups][:2] == ["2024-01-01T00:00:00Z", "2024-01-08T00:00:00Z"]
    assert chunks.groups[-1].end == "2024-01-29T00:00:00Z"
    assert [g.drifted_columns for g in chunks.groups] == [[], [], [], ["Balance"]]
    assert "day" not in {c.name for g in chunks.groups for c in g.columns}  # the time column itself is not tested


def _cut(frame: pl.DataFrame, profile, settings=WEEKLY):
    pieces, unplaced = cut(frame.select(needed_columns(profile, settings)), settings)
    return pieces, settings, unplaced


def test_chunks_add_no_false_alarms_under_the_calibrated_verdict(pool):
    # 40 batches with nothing changed, 4 weekly chunks each: the chunks' tests are adjusted
    # together, so a chunk flags a column in about fdr (5%) of the batches; 40 draws: at most 6
    rng = np.random.default_rng(9)
    profile = None
    flagged = 0
    for _ in range(40):
        order = rng.permutation(pool.height)
        reference = pool[order[:8_000]].with_columns(_days(8_000, dt.date(2023, 1, 2), 28))
        current = pool[order[8_000:]].with_columns(_days(4_000, dt.date(2024, 1, 1), 28))
        profile = build_profile(reference, WEEKLY)
        chunks = chunk_drift(profile, *_cut(current, profile))
        flagged += any(g.drifted_columns for g in chunks.groups)
    assert flagged <= 6, flagged


def test_runs_of_rows_the_last_one_short_and_untested(pool):
    settings = replace(WEEKLY, chunk_by="size:1500", time_column=None)
    reference, current = _reference(pool), _batch(pool)
    profile = build_profile(reference, settings)
    chunks = chunk_drift(profile, *_cut(current.head(3_100), profile, settings))
    assert [(g.label, g.rows, g.tested) for g in chunks.groups] == [
        ("rows 1-1,500", 1_500, True),
        ("rows 1,501-3,000", 1_500, True),
        ("rows 3,001-3,100", 100, False),
    ]
    assert chunks.groups[-1].reason == "fewer than 200 rows (drift.min_chunk_rows)"


@pytest.mark.parametrize(
    ("values", "labels"),
    [
        # text dates, date-times with a time zone, plain dates: the same weeks
        (["2024-01-03", "2024-01-09", None, "not a date"], ["2024-01-01", "2024-01-08"]),
        (
            [dt.datetime(2024, 1, 3, 23, tzinfo=dt.timezone.utc), dt.datetime(2024, 1, 9, tzinfo=dt.timezone.utc)],
            ["2024-01-01", "2024-01-08"],
        ),
        ([dt.date(2024, 1, 3), dt.date(2024, 1, 9)], ["2024-01-01", "2024-01-08"]),
    ],
)
def test_periods_whatever_the_time_columns_type(values, labels):
    frame = pl.DataFrame({"x": np.arange(len(values), dtype=float), "day": values})
    pieces, unplaced = cut(frame, WEEKLY)
    assert [label for label, *_ in pieces] == labels
    assert unplaced == sum(1 for v in values if v is None or v == "not a date")


@pytest.mark.parametrize(
    "written",
    [
        ["01/03/2024", "01/09/2024", "01/31/2024"],  # month first (a day above 12 tells)
        ["03/01/2024", "09/01/2024", "31/01/2024"],  # day first
        ["Jan 03, 2024", "Jan 09, 2024", "Jan 31, 2024"],
        ["01/03/2024 11:43 PM", "01/09/2024 08:00 AM", "01/31/2024 12:00 PM"],
        ["2024-01-03T10:00:00Z", "2024-01-09T00:00:00", "2024-01-31T23:00:00+00:00"],  # zones mixed per row
        ["2024-01-03 10:00:00 UTC", "2024-01-09 00:00:00.250", "2024/01/31"],
    ],
)
def test_text_dates_are_read_whatever_the_first_row_looks_like(written):
    times = as_datetime(pl.Series(written), "day")
    assert times.dt.date().to_list() == [dt.date(2024, 1, 3), dt.date(2024, 1, 9), dt.date(2024, 1, 31)]


def test_offsets_and_time_zones_are_placed_in_utc():
    text = as_datetime(pl.Series(["2024-01-07T23:30:00-02:00"]), "day")
    zoned = as_datetime(pl.Series([dt.datetime(2024, 1, 7, 23, 30)]).dt.replace_time_zone("Etc/GMT+2"), "day")
    assert text.to_list() == zoned.to_list() == [dt.datetime(2024, 1, 8, 1, 30)]


@pytest.mark.parametrize(
    ("written", "local", "offset_minutes"),
    [
        ("2024-01-07T23:30:00-02:00", dt.datetime(2024, 1, 7, 23, 30), -120),
        ("2024-01-07 23:30:00 -0200", dt.datetime(2024, 1, 7, 23, 30), -120),  # a space before the offset
        ("2024-01-08T00:30:00+05:30", dt.datetime(2024, 1, 8, 0, 30), 330),
        ("2024-01-07T23:30:00-05", dt.datetime(2024, 1, 7, 23, 30), -300),  # hours only
        ("2024-01-08T00:30:00.250+01:00", dt.datetime(2024, 1, 8, 0, 30, 0, 250_000), 60),
        ("2024-01-07T23:30+14:00", dt.datetime(2024, 1, 7, 23, 30), 840),
    ],
)
def test_a_time_with_its_offset_is_one_instant_for_chunks_and_its_day_as_written_for_statistics(
    written, local, offset_minutes
):
    """Time chunks place a time at its instant in UTC, the statistics take its calendar day as
    written; both read the same writings of the offset (a space before it, hours only, ``%:z``)."""
    from churnops.monitor.prepare import coerce_datetime

    instant = local - dt.timedelta(minutes=offset_minutes)
    assert as_datetime(pl.Series([written]), "day").to_list() == [instant]
    days = coerce_datetime(pl.Series([written])).series.to_list()
    assert days == [float((local.date() - dt.date(1970, 1, 1)).days)]
    if "T" in written and written[19:20] in "+-" and written[22:23] == ":":
        told = coerce_datetime(pl.Series([written]), "%Y-%m-%dT%H:%M:%S%:z").series.to_list()
        assert told == days  # a format of the user's with %:z reads it the same way


@pytest.mark.parametrize("written", ["2024-01-07T23:30:00+25:00", "2024-01-07T23:30:00+99:99", "2024-01-07T23:30-0260"])
def test_a_time_with_an_offset_that_is_none_is_no_time(written):
    from churnops.monitor.prepare import coerce_datetime

    read = coerce_datetime(pl.Series([written]))
    assert read.series.to_list() == [None] and read.unparsable == 1
    with pytest.raises(InputDataError, match="holds no dates"):
        as_datetime(pl.Series([written]), "day")


@pytest.mark.parametrize(
    ("written", "time_format", "message"),
    [
        (["01/05/2024", "02/06/2024"], None, "read as day/month and as month/day: set drift.time_format"),
        (["Female", "Male"], None, "'day' holds no dates (e.g. 'Female')"),
        ([None, None], None, "'day' holds no dates (only missing values)"),
        (["2024-01-05"], "%d/%m/%Y", "drift.time_format '%d/%m/%Y' reads no value of 'day'"),
    ],
)
def test_unreadable_or_ambiguous_dates_are_one_clear_error(written, time_format, message):
    with pytest.raises(InputDataError) as caught:
        as_datetime(pl.Series(written, dtype=pl.String), "day", time_format)
    assert message in str(caught.value)
    assert as_datetime(pl.Series(["01/05/2024"]), "day", "%m/%d/%Y").to_list() == [dt.datetime(2024, 1, 5)]


def test_a_placeholder_date_far_away_is_refused_with_the_span_and_empty_periods_are_listed():
    frame = pl.DataFrame({"x": [1.0, 2.0, 3.0], "day": ["2024-01-03", "2024-01-24", "9999-12-31"]})
    with pytest.raises(InputDataError, match="run from 2024-01-01 to 9999-12-27; choose a longer period"):
        cut(frame, WEEKLY)
    pieces, _ = cut(frame.head(2), WEEKLY)  # the two weeks in between had no rows: listed, empty
    assert [(label, rows.height) for label, _, _, rows in pieces] == [
        ("2024-01-01", 1), ("2024-01-08", 0), ("2024-01-15", 0), ("2024-01-22", 1)
    ]  # fmt: skip
    profile = build_profile(pl.DataFrame({"x": np.arange(300.0), "day": ["2023-01-02"] * 300}), WEEKLY)
    chunks = chunk_drift(profile, pieces, WEEKLY)
    assert [g.reason for g in chunks.groups][1] == "no rows in this period"


@pytest.mark.parametrize(
    ("chunk_by", "unit_labels"),
    [("period:1mo", ["2024-01", "2024-02"]), ("period:1q", ["2024-Q1"]), ("period:1d", ["2024-01-31", "2024-02-01"])],
)
def test_period_units_and_labels(chunk_by, unit_labels):
    frame = pl.DataFrame({"x": [1.0, 2.0], "day": [dt.date(2024, 1, 31), dt.date(2024, 2, 1)]})
    pieces, _ = cut(frame, replace(WEEKLY, chunk_by=chunk_by))
    assert [label for label, *_ in pieces] == unit_labels


@pytest.fixture()
def files(tmp_path, pool) -> Path:
    _reference(pool).write_csv(tmp_path / "ref.csv")
    _batch(pool, dt.date(2024, 1, 22)).write_parquet(tmp_path / "cur.parquet")
    return tmp_path


def test_cli_chunks_json_report_and_finding(files):
    done = churnops(
        files, "monitor", "-r", "ref.csv", "-p", "cur.parquet", "--verdict", "calibrated",
        "--chunk-by", "period:1w", "--time-column", "day", "--set", "thresholds.dataset_drift=0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "data drift in chunk 2024-01-22 (1,000 rows): 1 of" in done.stdout
    document = json.loads((files / "monitoring" / "monitoring_metrics.json").read_text())
    jsonschema.validate(document, metrics_schema())
    assert document["chunks"]["detected"] == ["2024-01-22"]
    assert document["chunks"]["time_column"] == "day" and document["timings"]["chunks_s"] > 0
    assert [g["detected"] for g in document["chunks"]["groups"]] == [False, False, False, True]
    assert {r["kind"] for r in document["verdict"]["reasons"]} >= {"chunk"}
    page = (files / "monitoring" / "monitoring_report.html").read_text()
    assert 'id="chunks"' in page and "Over time" in page and "2024-01-22: 1 of" in page
    assert "day" not in document["columns"]  # the time column places rows; it is not tested
    reasons = {s["name"]: s["reason"] for s in document["skipped_columns"]}
    assert reasons["day"].startswith("the time column (drift.time_column, --time-column)"), reasons  # not 'ignored'
    # without chunks, nothing about them (and the whole batch's verdict is the same, the time
    # column left out as the chunks leave it)
    plain = churnops(
        files, "monitor", "-r", "ref.csv", "-p", "cur.parquet", "--verdict", "calibrated",
        "--set", 'columns.ignored=["day"]',
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    again = json.loads((files / "monitoring" / "monitoring_metrics.json").read_text())
    assert "chunks" not in again
    assert {s["name"]: s["reason"] for s in again["skipped_columns"]}["day"] == "ignored by configuration"
    assert again["dataset_drift"]["drifted_columns"] == document["dataset_drift"]["drifted_columns"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--chunk-by", "period:1w"), 'drift.chunk_by = "period:1w" needs drift.time_column'),
        (("--chunk-by", "weekly"), "drift.chunk_by"),
        (("--chunk-by", "size:0"), "drift.chunk_by"),
        (("--chunk-by", "size:50"), "chunks smaller than drift.min_chunk_rows (200) would never be tested"),
        (
            ("--time-column", "day"),
            'drift.time_column and drift.time_format are used by drift.chunk_by = "period:..." only',
        ),
        (("--chunk-by", "period:1w", "--time-column", "when"), "drift.time_column: 'when' is not a column of"),
        (("--chunk-by", "period:1w", "--time-column", "Balance"), "drift.time_column: 'Balance' holds no dates"),
        (("--chunk-by", "period:1w", "--time-column", "Gender"), "drift.time_column: 'Gender' holds no dates"),
        (("--chunk-by", "weekly"), "neither period:<n><unit>"),
        (("--chunk-by", "period:1h", "--time-column", "day"), f"(at most {MAX_CHUNKS:,})"),
        (("--chunk-by", "size:1000", "--engine", "evidently"), "drift.chunk_by needs the native, dask or spark engine"),
    ],
)
def test_bad_chunk_settings_are_one_line(files, args, message):
    # period:1h over four weeks of dates: 672 hourly chunks would fit; shrink the limit's room
    if "period:1h" in args:
        frame = pl.read_parquet(files / "cur.parquet")
        frame.with_columns(_days(frame.height, dt.date(2020, 1, 1), 1_500)).write_parquet(files / "cur.parquet")
    done = churnops(files, "monitor", "-r", "ref.csv", "-p", "cur.parquet", *args)
    assert done.returncode != 0 and done.returncode != 1, done.stderr  # a usage or data error, not a crash
    assert message in done.stderr, done.stderr
    lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("NOTICE: from the data")]
    assert len(lines) == 1, done.stderr
    assert not (files / "monitoring" / "monitoring_metrics.json").exists()


def test_dask_gives_the_same_chunks(files):
    pytest.importorskip("dask.distributed", reason="needs: dask (pip install 'churnops[dask]')")
    common = ("monitor", "-r", "ref.csv", "-p", "cur.parquet", "--chunk-by", "size:1000", "--no-cache")
    assert churnops(files, *common).returncode == 0
    local = json.loads((files / "monitoring" / "monitoring_metrics.json").read_text())["chunks"]
    done = churnops(files, *common, "--engine", "dask", "--jobs", "2")
    assert done.returncode == 0, done.stderr
    assert json.loads((files / "monitoring" / "monitoring_metrics.json").read_text())["chunks"] == local


def test_blank_lines_are_in_no_chunk_and_not_rows_without_a_date(files, pool):
    """Blank lines at the end of an export are left out of the run: the chunk pass counted them as
    rows with no readable date (and in the row runs of size:N). A row with other values but no
    date still is one."""
    batch = _batch(pool)
    batch.write_csv(files / "cur.csv")
    with (files / "cur.csv").open("a") as handle:
        handle.write("," * (batch.width - 1) + "\n" * 1)
        handle.write(("," * (batch.width - 1) + "\n") * 299)
    done = churnops(
        files, "monitor", "-r", "ref.csv", "-p", "cur.csv", "--chunk-by", "period:1w", "--time-column", "day"
    )
    assert done.returncode == 0, done.stderr
    assert "300 empty rows (no value in any column) left out" in done.stdout + done.stderr, done.stdout
    document = json.loads((files / "monitoring" / "monitoring_metrics.json").read_text())
    assert document["chunks"]["unplaced_rows"] == 0 and "no readable date" not in done.stdout
    assert sum(g["rows"] for g in document["chunks"]["groups"]) == 4_000
    undated = batch.head(1).with_columns(pl.lit(None, dtype=pl.Date).alias("day"))
    pl.concat([batch, undated]).write_csv(files / "cur.csv")
    done = churnops(
        files, "monitor", "-r", "ref.csv", "-p", "cur.csv", "--chunk-by", "period:1w", "--time-column", "day"
    )
    assert "1 rows have no readable date in day" in done.stdout or "1 row has no readable date" in done.stdout, (
        done.stdout
    )
    done = churnops(files, "monitor", "-r", "ref.csv", "-p", "cur.parquet", "--chunk-by", "size:1000")
    assert done.returncode == 0, done.stderr
