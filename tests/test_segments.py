"""Segments (``drift.segments``): a drift confined to one kind of customer is found and located,
segments add no false alarms under the calibrated verdict, every engine gives the same
segments, the cache keeps them, and bad or hostile segment columns are refused or escaped."""

from __future__ import annotations

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
from cache_files import resign

from churnops.config import Config
from churnops.data.generator import generate_reference
from churnops.monitor.calibrated import false_alarm_rate
from churnops.monitor.engine import monitor_frames
from churnops.monitor.segments import MAX_SEGMENT_VALUES
from churnops.monitor.settings import settings_from_config
from churnops.monitor.verdict import decide
from churnops.report.metrics import metrics_schema

SETTINGS = replace(
    settings_from_config(Config()), verdict="calibrated", segments=("Customer Segment",), dataset_drift_threshold=0.0
)


def churnops(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "churnops", *args], cwd=root, capture_output=True, text=True, timeout=300, env=env
    )


@pytest.fixture(scope="module")
def pool() -> pl.DataFrame:
    return generate_reference(20_000, 3)


def _split(pool: pl.DataFrame, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    order = np.random.default_rng(seed).permutation(pool.height)
    return pool[order[:10_000]], pool[order[10_000:]]


def _inside(frame: pl.DataFrame, segment: str, column: str, factor: float) -> pl.DataFrame:
    inside = frame["Customer Segment"] == segment
    return frame.with_columns(pl.when(inside).then(pl.col(column) * factor).otherwise(pl.col(column)).alias(column))


def test_a_drift_inside_one_segment_is_found_and_located(pool):
    reference, current = _split(pool, 1)
    assert 0.05 < (current["Customer Segment"] == "Corporate").mean() < 0.12  # about 9% of rows
    current = _inside(current, "Corporate", "Balance", 1.35)
    result = monitor_frames(reference, current, SETTINGS)
    groups = {g.value: g for g in result.segments.groups}
    assert set(groups) == {"Retail", "SME", "Corporate"} and all(g.tested for g in groups.values())
    assert groups["Corporate"].drifted_columns == ["Balance"] and groups["Corporate"].detected
    assert groups["Retail"].drifted_columns == [] and groups["SME"].drifted_columns == []
    assert "Customer Segment" not in {c.name for c in groups["Corporate"].columns}  # constant inside
    verdict = decide(result)
    assert verdict.trigger
    assert any(r.kind == "segment" and "Customer Segment = Corporate" in r.message for r in verdict.reasons)
    document = result.to_dict()
    jsonschema.validate(document, metrics_schema())
    assert document["segments"]["detected"] == [{"column": "Customer Segment", "value": "Corporate"}]
    # without segments the same batch shows nothing: the change is diluted in the whole batch
    plain = monitor_frames(reference, current, replace(SETTINGS, segments=()))
    assert plain.dataset_drift.drifted_columns == [] and plain.segments is None


def test_segments_add_no_false_alarms_under_the_calibrated_verdict(pool):
    """40 random splits of the same rows (no drift): any drifted column, whole batch or segment,
    is a false alarm; the rate stays near 5% although 16 + 3 x 15 columns are tested."""
    alarms = evidently_cells = 0
    for seed in range(40):
        result = monitor_frames(*_split(pool, 100 + seed), SETTINGS)
        cells = [c for g in result.segments.groups for c in g.columns]
        alarms += result.dataset_drift.detected or bool(result.segments.detected)
        evidently_cells += any(c.calibration.evidently_drift_detected for c in cells)
    assert result.dataset_drift.expected_false_alarm_rate == 0.05
    assert alarms <= 6  # P(7 or more of 40 | rate 5%) < 1%
    assert evidently_cells >= 20  # Evidently's per-cell rule, 61 chances per run


def test_small_absent_and_new_segments_are_listed_not_tested():
    rng = np.random.default_rng(0)

    def frame(values: list[str], weights: list[float], n: int) -> pl.DataFrame:
        return pl.DataFrame({"x": rng.normal(size=n), "seg": rng.choice(values, size=n, p=weights)})

    reference = frame(["big", "tiny", "gone"], [0.83, 0.02, 0.15], 4000)
    current = frame(["big", "tiny", "new"], [0.83, 0.02, 0.15], 4000)
    settings = replace(SETTINGS, segments=("seg",), declared_types={}, target=None)
    result = monitor_frames(reference, current, settings)
    reasons = {g.value: g.reason for g in result.segments.groups}
    assert reasons["big"] is None
    assert "fewer than 200 rows" in reasons["tiny"]
    assert reasons["gone"] == "not in this batch" and reasons["new"] == "not in the reference"
    assert [g.value for g in result.segments.groups][:1] == ["big"]  # the largest first


def test_false_alarm_rate_with_segments_matches_a_direct_simulation():
    """Independent check: Benjamini-Hochberg by scipy on simulated no-drift p-values, an alarm
    when some group has more than 10% of its columns discovered."""
    from scipy import stats

    sizes = [16, 15, 15, 15]
    rng = np.random.default_rng(99)
    alarms = 0
    draws = 4000
    for _ in range(draws):
        p = rng.random(sum(sizes))
        found = stats.false_discovery_control(p) <= 0.05
        groups = np.split(found, np.cumsum(sizes)[:-1])
        alarms += any(g.sum() / g.size > 0.1 for g in groups)
    expected = alarms / draws
    estimate = false_alarm_rate(sizes, 0.1, 0.05)
    assert abs(estimate - expected) < 4 * np.sqrt(max(expected, 1e-3) / draws) + 0.002
    assert false_alarm_rate(sizes, 0.0, 0.05) == 0.05  # any discovery: exactly the fdr
    assert false_alarm_rate([0, 0], 0.1, 0.05) == 0.0


@pytest.fixture()
def files(tmp_path, pool) -> Path:
    reference, current = _split(pool, 7)
    reference.write_csv(tmp_path / "ref.csv")
    _inside(current, "SME", "Income", 1.3).write_csv(tmp_path / "cur.csv")
    return tmp_path


def _monitor(root: Path, *args: str) -> dict:
    done = churnops(root, "monitor", "-r", "ref.csv", "-p", "cur.csv", "--verdict", "calibrated", *args)
    assert done.returncode == 0, done.stderr
    document = json.loads((root / "monitoring" / "monitoring_metrics.json").read_text())
    jsonschema.validate(document, metrics_schema())
    return document


def test_cli_segments_exact_streaming_and_cache_agree(files):
    exact = _monitor(files, "--segment", "Customer Segment", "--mode", "exact")
    assert exact["outputs"]["profile_cache"] == "miss"
    groups = {g["value"]: g for g in exact["segments"]["groups"]}
    assert groups["SME"]["drifted_columns"] == ["Income"]
    cached = _monitor(files, "--segment", "Customer Segment", "--mode", "exact")
    assert cached["outputs"]["profile_cache"] == "hit"
    assert cached["segments"] == exact["segments"]
    plain = _monitor(files, "--mode", "exact")  # another cache entry: the segments are part of the key
    assert "segments" not in plain and plain["outputs"]["profile_cache"] == "miss"
    streaming = _monitor(files, "--segment", "Customer Segment", "--mode", "streaming", "--no-cache")
    for mine, theirs in zip(exact["segments"]["groups"], streaming["segments"]["groups"], strict=True):
        assert (mine["value"], mine["reference_rows"], mine["current_rows"]) == (
            theirs["value"],
            theirs["reference_rows"],
            theirs["current_rows"],
        )
        for name, column in mine["columns"].items():
            other = theirs["columns"][name]["calibration"]
            assert other["p_value"] == pytest.approx(column["calibration"]["p_value"], rel=1e-9, abs=1e-15), name
            assert other["effect"] == pytest.approx(column["calibration"]["effect"], rel=1e-9), name
    page = (files / "monitoring" / "monitoring_report.html").read_text()
    assert "Where it drifted" in page and "Customer Segment = SME" in page


def test_dask_gives_the_local_streaming_segments(files):
    pytest.importorskip("dask.distributed", reason="needs: dask (pip install 'churnops[dask]')")
    local = _monitor(files, "--segment", "Customer Segment", "--mode", "streaming", "--no-cache")
    remote = _monitor(files, "--segment", "Customer Segment", "--engine", "dask", "--jobs", "2", "--no-cache")
    assert remote["engine"] == "dask"
    for mine, theirs in zip(local["segments"]["groups"], remote["segments"]["groups"], strict=True):
        assert {k: v for k, v in mine.items() if k != "columns"} == {k: v for k, v in theirs.items() if k != "columns"}
        for name, column in mine["columns"].items():
            other = theirs["columns"][name]
            # the same verdicts and p-values; distances to the last bit or so (sums in another order)
            assert other["drift_detected"] == column["drift_detected"], name
            assert other["calibration"]["p_value"] == column["calibration"]["p_value"], name
            assert other["statistic"] == pytest.approx(column["statistic"], rel=1e-12), name


def test_a_tampered_segment_in_the_profile_cache_is_ignored_and_rebuilt(files):
    first = _monitor(files, "--segment", "Customer Segment")
    (cache,) = sorted((files / ".churnops" / "profiles").glob("*.npz"))
    with np.load(cache, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    manifest = json.loads(bytes(arrays["__manifest__"]).decode())
    manifest["segments"][0]["manifest"]["columns"][0]["role"] = "admin"
    arrays["__manifest__"] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    arrays["s99.values_0"] = np.zeros(3)
    with cache.open("wb") as handle:
        np.savez(handle, **arrays)
    resign(cache)  # (its content is what is tried)
    done = churnops(
        files, "monitor", "-r", "ref.csv", "-p", "cur.csv", "--verdict", "calibrated", "--segment", "Customer Segment"
    )
    assert done.returncode == 0 and "ignoring unusable profile cache" in done.stderr
    again = json.loads((files / "monitoring" / "monitoring_metrics.json").read_text())
    assert again["segments"] == first["segments"] and again["outputs"]["profile_cache"] == "miss"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--segment", "Region"), "drift.segments: 'Region' is not a column of"),
        (("--segment", "CustomerId"), f"has more than {MAX_SEGMENT_VALUES} values in the reference"),
        (
            ("--segment", "Customer Segment", "--engine", "evidently"),
            "drift.segments needs the native, dask or spark engine",
        ),
        (("--segment", "Customer Segment", "--set", "drift.min_segment_rows=1"), "drift.min_segment_rows"),
        (("--segment", ""), "segment column name cannot be empty"),
    ],
)
def test_bad_segment_settings_are_one_line_exit_2(files, args, message):
    done = churnops(files, "monitor", "-r", "ref.csv", "-p", "cur.csv", *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (files / "monitoring" / "monitoring_metrics.json").exists()


def test_a_segment_column_missing_from_the_batch_is_one_line(files):
    # a segment column that is not monitored itself (declared ignored): only the segments need it
    reference = pl.read_csv(files / "ref.csv")
    reference.with_columns(region=pl.col("Customer Segment") + "-r").write_csv(files / "ref.csv")
    done = churnops(
        files, "monitor", "-r", "ref.csv", "-p", "cur.csv", "--segment", "region", "--set", "columns.ignored=['region']"
    )
    assert done.returncode == 2
    assert "drift.segments: 'region' is not a column of the batch" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_hostile_segment_values_are_escaped_in_the_report_and_the_terminal(tmp_path):
    rng = np.random.default_rng(3)
    values = ["<img src=x onerror=alert(1)>", "\x1b[2Jcleared\u202e", "=cmd|' /C calc'!A0"]
    for name, shift in (("ref.csv", 0.0), ("cur.csv", 1.0)):
        seg = rng.choice(values, size=3000)
        x = rng.normal(size=3000) + np.where(seg == values[0], shift, 0.0)
        pl.DataFrame({"x": x, "seg": seg}).write_csv(tmp_path / name)
    done = churnops(
        tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.csv", "--segment", "seg", "--verdict", "calibrated",
        "--set", "thresholds.dataset_drift=0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout + done.stderr and "\u202e" not in done.stdout + done.stderr
    assert "segment seg = <img src=x onerror=alert(1)>" in done.stdout
    for page in ("monitoring_report.html", "monitoring_report.standalone.html"):
        html = (tmp_path / "monitoring" / page).read_text()
        assert "<img" not in html and "\x1b" not in html and "\u202e" not in html, page
        assert "&lt;img src=x onerror=alert(1)&gt;" in html.replace("<wbr>", ""), page
    metrics = json.loads((tmp_path / "monitoring" / "monitoring_metrics.json").read_text())
    assert {g["value"] for g in metrics["segments"]["groups"]} == set(values)


def test_a_segment_value_is_the_same_segment_whatever_type_each_file_gives_it(tmp_path):
    # the reference in CSV (whole numbers: integers), the batch in Parquet with the same values
    # as floats, a date column typed as a date in one and as text in the other
    rng = np.random.default_rng(5)
    n = 3000
    grade = rng.integers(1, 4, size=n)
    day = rng.choice(["2024-01-31", "2024-02-29"], size=n)
    pl.DataFrame({"x": rng.normal(size=n), "grade": grade, "day": day}).write_csv(tmp_path / "ref.csv")
    current = pl.DataFrame({"x": rng.normal(size=n), "grade": grade.astype(float), "day": pl.Series(day).str.to_date()})
    current.write_parquet(tmp_path / "cur.parquet")
    done = churnops(
        tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.parquet", "--verdict", "calibrated",
        "--segment", "grade", "--segment", "day", "--set", "columns.ignored=['grade', 'day']",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    groups = json.loads((tmp_path / "monitoring" / "monitoring_metrics.json").read_text())["segments"]["groups"]
    assert {(g["column"], g["value"]) for g in groups} == {
        ("grade", "1"), ("grade", "2"), ("grade", "3"), ("day", "2024-01-31"), ("day", "2024-02-29")
    }  # fmt: skip
    assert all(g["tested"] for g in groups), groups


def test_parquet_decimal_segments_work_and_binary_ones_are_refused(tmp_path):
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(6)
    n = 2000
    for name in ("ref.parquet", "cur.parquet"):
        tier = rng.choice([1, 2], size=n)
        pq.write_table(
            pa.table(
                {
                    "x": rng.normal(size=n),
                    "tier": pa.array([decimal.Decimal(f"{t}.00") for t in tier], pa.decimal128(5, 2)),
                    "blob": pa.array([bytes([t, 0xFF]) for t in tier], pa.binary()),
                }
            ),
            tmp_path / name,
        )
    common = ("monitor", "-r", "ref.parquet", "-p", "cur.parquet", "--set", "columns.ignored=['tier', 'blob']")
    done = churnops(tmp_path, *common, "--segment", "tier")
    assert done.returncode == 0, done.stderr
    groups = json.loads((tmp_path / "monitoring" / "monitoring_metrics.json").read_text())["segments"]["groups"]
    assert sorted(g["value"] for g in groups) == ["1", "2"]
    done = churnops(tmp_path, *common, "--segment", "blob", "--no-cache")
    assert done.returncode == 2, done.stderr
    assert "drift.segments: 'blob' holds Binary values" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_cached_segment_whose_columns_do_not_match_the_profile_is_ignored(files):
    first = _monitor(files, "--segment", "Customer Segment")
    (cache,) = sorted((files / ".churnops" / "profiles").glob("*.npz"))
    with np.load(cache, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    manifest = json.loads(bytes(arrays["__manifest__"]).decode())
    entry = next(c for c in manifest["segments"][0]["manifest"]["columns"] if c["column_type"] == "numerical")
    entry["column_type"] = "datetime"
    arrays["__manifest__"] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    with cache.open("wb") as handle:
        np.savez(handle, **arrays)
    resign(cache)  # (its content is what is tried)
    done = churnops(
        files, "monitor", "-r", "ref.csv", "-p", "cur.csv", "--verdict", "calibrated", "--segment", "Customer Segment"
    )
    assert done.returncode == 0 and "ignoring unusable profile cache" in done.stderr, done.stderr
    again = json.loads((files / "monitoring" / "monitoring_metrics.json").read_text())
    assert again["segments"] == first["segments"] and again["outputs"]["profile_cache"] == "miss"


def test_a_long_or_multiline_segment_value_stays_one_short_line_in_the_terminal(tmp_path):
    rng = np.random.default_rng(8)
    values = ["first line\nsecond line " + "x" * 200, "plain"]
    for name, shift in (("ref.csv", 0.0), ("cur.csv", 1.0)):
        seg = rng.choice(values, size=3000)
        x = rng.normal(size=3000) + np.where(seg == values[0], shift, 0.0)
        pl.DataFrame({"x": x, "seg": seg}).write_csv(tmp_path / name)
    done = churnops(
        tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.csv", "--segment", "seg", "--verdict", "calibrated",
        "--set", "thresholds.dataset_drift=0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if "data drift in segment" in line]
    assert "seg = first line\\x0asecond line xxx" in line and "x" * 100 not in line
    metrics = json.loads((tmp_path / "monitoring" / "monitoring_metrics.json").read_text())
    assert values[0] in {g["value"] for g in metrics["segments"]["groups"]}  # the data itself is kept whole


def test_segments_imply_the_calibrated_verdict_and_refuse_evidentlys_rule(files):
    done = churnops(files, "monitor", "-r", "ref.csv", "-p", "cur.csv", "--segment", "Customer Segment")
    assert done.returncode == 0, done.stderr
    implied = json.loads((files / "monitoring" / "monitoring_metrics.json").read_text())
    assert implied["dataset_drift"]["verdict"] == "calibrated" and implied["segments"]["groups"]
    (files / "evidently.toml").write_text('[drift]\nsegments = ["Customer Segment"]\nverdict = "evidently"\n')
    for args in (("--segment", "Customer Segment", "--verdict", "evidently"), ("-c", "evidently.toml")):
        done = churnops(files, "monitor", "-r", "ref.csv", "-p", "cur.csv", *args)
        assert done.returncode == 2, done.stderr
        assert 'drift.segments needs drift.verdict = "calibrated"' in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_dates_and_midnight_date_times_are_one_segment_and_unmatched_codings_are_warned(tmp_path):
    rng = np.random.default_rng(12)
    n = 3000
    day = rng.choice(["2024-01-01", "2024-01-02"], size=n)
    active = rng.choice([True, False], size=n)
    pl.DataFrame({"x": rng.normal(size=n), "d": day, "active": active}).write_csv(tmp_path / "ref.csv")
    current = pl.DataFrame(
        {
            "x": rng.normal(size=n),
            "d": pl.Series(day).str.to_datetime().dt.replace_time_zone("UTC"),  # midnight UTC date-times
            "active": active.astype(np.int64),  # 0/1 where the reference says true/false
        }
    )
    current.write_parquet(tmp_path / "cur.parquet")
    done = churnops(
        tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.parquet", "--segment", "d", "--segment", "active",
        "--set", "columns.ignored=['d', 'active']",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "monitoring" / "monitoring_metrics.json").read_text())
    tested = {(g["column"], g["value"]) for g in metrics["segments"]["groups"] if g["tested"]}
    assert tested == {("d", "2024-01-01"), ("d", "2024-01-02")}
    (warning,) = [r for r in metrics["verdict"]["reasons"] if r["kind"] == "segment values"]
    assert warning["severity"] == "warning" and "segment column active: no value of the batch (" in warning["message"]
    assert "coded or typed differently in each file" in done.stdout


def _sample_facts(sample):
    """Every field of a finished sample, comparable with ``==``."""
    facts = {}
    for name, value in vars(sample).items():
        facts[name] = value.tolist() if isinstance(value, np.ndarray) else value
    return facts


def test_segment_tallies_from_the_batch_reading_equal_each_segments_rows_read_alone():
    """The exact engine reads the batch's columns once and gives each segment its rows of them:
    the same samples as reading each segment's rows on its own, chunk by chunk - with numbers
    written as text (some unparsable), missing and infinite values, labels longer than the
    key length, booleans written as words, and dates in a format inferred from the values (read
    again from the segment's rows)."""
    from churnops.monitor.batch import BatchBuilder
    from churnops.monitor.profile import build_profile
    from churnops.monitor.segments import batch_builder, profile_segments, segment_settings, split

    rng = np.random.default_rng(33)
    n = 6_000

    def frame(shift: float, odd_dates: bool) -> pl.DataFrame:
        amount = np.round(rng.normal(100 + shift, 20, n), 2).astype(str).astype(object)
        amount[rng.random(n) < 0.02] = "1,5"  # not a number
        amount[rng.random(n) < 0.02] = None
        amount[rng.random(n) < 0.01] = "inf"
        long = "x" * 130
        days = rng.integers(0, 400, n)
        dates = [f"{2023 + d // 365}-{(d % 12) + 1:02d}-{(d % 28) + 1:02d}" for d in days]
        if odd_dates:  # some rows day first: a format inferred from the values
            dates = [
                f"{(d % 28) + 1:02d}/{(d % 12) + 1:02d}/2023" if d % 7 == 0 else t
                for d, t in zip(days, dates, strict=True)
            ]
        return pl.DataFrame(
            {
                "segment": pl.Series(
                    rng.choice(["A", "B", "C", None], n, p=[0.5, 0.3, 0.15, 0.05]).tolist(), dtype=pl.String
                ),
                "amount": pl.Series(amount.tolist(), dtype=pl.String),
                "count": rng.integers(0, 6, n),
                "label": pl.Series(
                    rng.choice(["red", "green", long + "1", long + "2", None], n).tolist(), dtype=pl.String
                ),
                "flag": rng.choice(["yes", "no", "TRUE", "false", ""], n),
                "when": dates,
                "ratio": np.where(rng.random(n) < 0.01, np.inf, rng.normal(0, 1, n)),
            },
            strict=False,
        )

    reference, current = frame(0.0, False), frame(5.0, True)
    declared = {"amount": "numerical", "when": "datetime", "ratio": "numerical"}
    settings = replace(SETTINGS, segments=("segment",), min_segment_rows=10, target=None, declared_types=declared)
    profile = build_profile(reference, settings)
    profile = replace(profile, segments=profile_segments([reference], profile, settings))
    types = {c.plan.name: c.plan.column_type for c in profile.tested}
    assert types == {
        "amount": "numerical", "count": "categorical", "label": "categorical", "flag": "categorical",
        "when": "datetime", "ratio": "numerical", "segment": "categorical",
    }, types  # fmt: skip
    chunks = [current.slice(start, 1_000) for start in range(0, n, 1_000)]

    builder = batch_builder(profile, current.columns, settings)
    for chunk in chunks:
        builder.update(chunk)
    tally = builder.finish()

    inner = segment_settings(settings, profile)
    alone = {
        key: BatchBuilder(segment, current.columns, inner, count_rows=False)
        for key, segment in profile.segments.items()
    }
    for chunk in chunks:
        for value, part in split(chunk, "segment"):
            alone[("segment", value)].update(part)
    assert set(tally.segments) == set(alone) == {("segment", v) for v in "ABC"}
    for key, segment_builder in alone.items():
        expected = segment_builder.finish()
        got = tally.segments[key]
        assert list(got.columns) == list(expected.columns)
        for name, column in expected.columns.items():
            assert _sample_facts(got.columns[name].sample) == _sample_facts(column.sample), (key, name)
            assert got.columns[name].out_of_range == column.out_of_range
        assert (got.rows, got.failed_cells) == (expected.rows, expected.failed_cells)


def test_the_terminal_names_segments_whose_columns_drifted_below_the_dataset_rule(files):
    """One column of 15 drifted in SME: too few for the dataset rule, so the line said "segments:
    0 of 3 tested drifted" while the JSON and the report marked SME's Income as drifted."""
    done = churnops(files, "monitor", "-r", "ref.csv", "-p", "cur.csv", "--segment", "Customer Segment")
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("segments:"))
    document = json.loads((files / "monitoring" / "monitoring_metrics.json").read_text())
    sme = next(g for g in document["segments"]["groups"] if g["value"] == "SME")
    assert sme["drifted_columns"] == ["Income"] and not sme["detected"], sme
    assert line.startswith("segments: 0 of ")
    assert "columns drifted, too few for the dataset rule, in Customer Segment = SME (Income)" in line, line
    # --segment switches the whole run to the calibrated verdict: the terminal says so, and its rate
    assert "  decided by the calibrated verdict (segments are decided with it): " in done.stdout, done.stdout
    assert "unchanged data raises data drift in at most " in done.stdout and " 0% " not in done.stdout
