"""Chunked reading and accumulation give exactly the in-memory results."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from churnops.data.io import TableReader
from churnops.errors import InputDataError
from churnops.monitor.accumulate import CategoryAccumulator, NumericAccumulator, infer_column_type
from churnops.monitor.batch import BatchBuilder
from churnops.monitor.binning import binned_shares, sturges_edges
from churnops.monitor.engine import compare, evaluate
from churnops.monitor.prepare import NumericalSample, coerce_categorical, coerce_numerical
from churnops.monitor.profile import ProfileBuilder, ReferenceProfile, build_profile
from churnops.monitor.settings import MonitorSettings
from churnops.monitor.stattests import get_stattest, wasserstein_1d
from churnops.pipeline.profile_cache import load_profile, save_profile

SETTINGS = MonitorSettings(
    declared_types={
        "CustomerId": "id",
        "Surname": "ignored",
        "First Name": "ignored",
        "Date of Birth": "datetime",
        "Churn Flag": "target",
    },
    id_columns=("CustomerId",),
    domains={"Credit Score": (300.0, 850.0)},
)


def chunks_of(frame: pl.DataFrame, size: int) -> list[pl.DataFrame]:
    return [frame.slice(i, size) for i in range(0, frame.height, size)]


def result_numbers(result):
    return {
        c.name: (c.test, c.statistic, c.p_value, c.drift_detected, c.current.count, c.current.missing)
        for c in result.columns
    }


def test_chunked_profile_and_batch_equal_the_whole_table(bank):
    reference, current = bank[:20_000], bank[20_000:30_000]
    whole = compare(build_profile(reference, SETTINGS), current, SETTINGS)
    builder = ProfileBuilder(reference.columns, SETTINGS)
    for chunk in chunks_of(reference, 1_237):
        builder.update(chunk)
    profile = builder.finish()
    batch = BatchBuilder(profile, current.columns, SETTINGS)
    for chunk in chunks_of(current, 777):
        batch.update(chunk)
    chunked = evaluate(profile, batch.finish(), SETTINGS)
    assert result_numbers(chunked) == result_numbers(whole)
    assert chunked.target_drift == whole.target_drift
    assert chunked.data_quality.score == whole.data_quality.score


def test_merged_builders_equal_one_builder(bank):
    reference, current = bank[:20_000], bank[20_000:30_000]
    parts = chunks_of(reference, 5_000)
    builders = []
    for part in parts:
        builder = ProfileBuilder(reference.columns, SETTINGS)
        builder.update(part)
        builders.append(builder)
    first = builders[0]
    for other in builders[1:]:
        first.merge(other)
    merged = first.finish()
    batches = []
    for part in chunks_of(current, 3_000):
        batch = BatchBuilder(merged, current.columns, SETTINGS)
        batch.update(part)
        batches.append(batch)
    for other in batches[1:]:
        batches[0].merge(other)
    result = evaluate(merged, batches[0].finish(), SETTINGS)
    expected = compare(build_profile(reference, SETTINGS), current, SETTINGS)
    assert result_numbers(result) == result_numbers(expected)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])), min_size=1, max_size=80),
    st.integers(1, 10),
)
def test_category_accumulator_is_chunk_invariant(values, size):
    series = pl.Series(values, dtype=pl.String)
    whole = CategoryAccumulator()
    whole.update(coerce_categorical(series))
    chunked = CategoryAccumulator()
    for i in range(0, len(values), size):
        chunked.update(coerce_categorical(series.slice(i, size)))
    a, b = whole.finish(), chunked.finish()
    assert a.labels == b.labels and np.array_equal(a.counts, b.counts) and a.missing == b.missing
    present = [v for v in values if v is not None]
    assert dict(zip(a.labels, a.counts.tolist(), strict=True)) == {v: present.count(v) for v in set(present)}
    assert a.missing == len(values) - len(present)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(0, 3).map(float)),
        min_size=1,
        max_size=80,
    ),
    st.integers(1, 10),
)
def test_numeric_accumulator_is_chunk_invariant(values, size):
    series = pl.Series(values, dtype=pl.Float64)
    whole = NumericAccumulator()
    whole.update(coerce_numerical(series))
    chunked = NumericAccumulator()
    for i in range(0, len(values), size):
        chunked.update(coerce_numerical(series.slice(i, size)))
    a, b = whole.finish(), chunked.finish()
    assert np.array_equal(a.expanded(), b.expanded())
    assert (a.missing, a.infinite, a.rows) == (b.missing, b.infinite, b.rows)
    finite = np.array([v for v in values if v is not None and np.isfinite(v)])
    assert np.array_equal(a.expanded(), np.sort(finite))


def test_low_cardinality_numbers_are_kept_as_counts():
    accumulator = NumericAccumulator()
    accumulator.update_values(np.tile(np.arange(5.0), 1_000))
    sample = accumulator.finish()
    assert sample.weights is not None and sample.values.tolist() == [0, 1, 2, 3, 4]
    assert sample.count == 5_000


@pytest.mark.parametrize("n, m", [(7, 11), (5_000, 3_000), (400_000, 250_000)])
def test_weighted_forms_give_the_same_statistics(n, m):
    rng = np.random.default_rng(n)
    u = np.sort(rng.integers(0, 40, n).astype(float))
    v = np.sort(rng.integers(3, 45, m).astype(float))
    uu, uw = np.unique(u, return_counts=True)
    vv, vw = np.unique(v, return_counts=True)
    assert wasserstein_1d(uu, vv, uw, vw) == pytest.approx(stats.wasserstein_distance(u, v), rel=1e-12)
    assert wasserstein_1d(uu, vv, uw, vw) == pytest.approx(stats.wasserstein_distance(uu, vv, uw, vw), rel=1e-12)
    for binning in ("evidently", "quantile"):
        raw = binned_shares(u, v, "numerical", binning, 10)
        weighted = binned_shares(uu, vv, "numerical", binning, 10, True, uw, vw)
        assert np.allclose(raw[0], weighted[0]) and np.allclose(raw[1], weighted[1])
    for name in ("psi", "jensenshannon", "hellinger", "kl_div", "wasserstein"):
        spec = get_stattest(name)
        extra = {"column_type": "numerical"} if "column_type" in spec.params else {}
        raw = spec.func(u, v, **extra).statistic
        weighted = spec.func(uu, vv, reference_weights=uw, current_weights=vw, **extra).statistic
        assert weighted == pytest.approx(raw, rel=1e-12), name


@pytest.mark.parametrize("low, high, n", [(0.0, 7.25, 5), (3.0, 3.0, 10), (-1e6, 1e9, 1_234_567), (0.1, 0.3, 2)])
def test_sturges_edges_equal_numpy(low, high, n):
    data = np.concatenate([[low, high], np.full(n - 2, (low + high) / 2)]) if n > 2 else np.array([low, high])
    assert np.array_equal(sturges_edges(low, high, n), np.histogram_bin_edges(data, "sturges"))


def test_profile_cache_round_trip(bank, tmp_path):
    profile = build_profile(bank[:5_000], SETTINGS)
    save_profile(profile, tmp_path / "p.npz")
    loaded, _ = load_profile(tmp_path / "p.npz")
    assert isinstance(loaded, ReferenceProfile) and loaded.rows == profile.rows
    current = bank[5_000:8_000]
    assert result_numbers(compare(loaded, current, SETTINGS)) == result_numbers(compare(profile, current, SETTINGS))


def test_infer_column_type_follows_evidently():
    assert infer_column_type(pl.Series(list(range(10)))) == "categorical"
    assert infer_column_type(pl.Series(list(range(11)))) == "numerical"
    assert infer_column_type(pl.Series(["a", "b"] * 10)) == "categorical"
    assert infer_column_type(pl.Series([True, False])) == "categorical"
    assert infer_column_type(pl.Series([None, None], dtype=pl.String)) == "unknown"


# --- the chunked reader -------------------------------------------------------------------------


def test_reader_chunks_never_split_quoted_newlines(tmp_path):
    rows = [f'{i},"line one\nline two, with comma {i}",{i * 0.5}' for i in range(3_000)]
    path = tmp_path / "quoted.csv"
    path.write_text("id,text,x\n" + "\n".join(rows) + "\n")
    reader = TableReader(path, chunk_bytes=1_000)
    frames = list(reader)
    assert len(frames) > 10
    whole = pl.concat(frames)
    assert whole.height == 3_000 and whole["text"][7] == "line one\nline two, with comma 7"
    assert whole.equals(pl.read_csv(path))
    assert reader.sha256 == __import__("hashlib").sha256(path.read_bytes()).hexdigest()


QUOTED_CELLS = st.text(alphabet='ab,"\n ', max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(QUOTED_CELLS, st.integers(0, 99)), min_size=1, max_size=40), st.integers(1, 48))
def test_pieces_cut_anywhere_read_the_same_rows_as_the_whole_file(tmp_path_factory, rows, chunk_bytes):
    # cells full of quotes, commas and line ends, in pieces of a few bytes: a piece often starts
    # inside a quoted cell, and must never end there
    path = tmp_path_factory.mktemp("pieces") / "quoted.csv"
    cell = lambda text: '"' + text.replace('"', '""') + '"'  # noqa: E731
    path.write_text("text,n\n" + "".join(f"{cell(text)},{n}\n" for text, n in rows))
    reader = TableReader(path, chunk_bytes=chunk_bytes)
    read = pl.concat(list(reader), how="vertical_relaxed")
    assert read["text"].cast(pl.String).fill_null("").to_list() == [text for text, _ in rows]
    assert read["n"].cast(pl.Int64).to_list() == [n for _, n in rows]
    assert reader.sha256 == __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    start = len(rows) // 3
    middle = pl.concat(list(TableReader(path, row_range=(start, len(rows)), chunk_bytes=chunk_bytes)))
    assert middle["n"].cast(pl.Int64).to_list() == [n for _, n in rows[start:]]


@pytest.mark.parametrize("chunk_bytes", [*range(1, 41), None])
def test_rows_after_a_row_window_never_change_how_its_rows_are_read(tmp_path, chunk_bytes):
    # the window's rows are parsed apart from the rows around it, whatever the pieces: a text cell
    # after it (the last line, without a line end) turned its numbers into text; a line with more
    # fields after it made the read fail
    (tmp_path / "text.csv").write_bytes(b"a,b\n1,x\n2,y\nzzz,w")
    (tmp_path / "fields.csv").write_bytes(b"a,b\n1,x\n2,y\n3,z,extra,fields\n4,w")
    for name in ("text.csv", "fields.csv"):
        frames = list(TableReader(tmp_path / name, row_range=(1, 2), chunk_bytes=chunk_bytes))
        assert [frame.rows() for frame in frames] == [[(2, "y")]] and frames[0].schema["a"] == pl.Int64, name


def test_reader_row_range_across_chunks_and_late_type_change(tmp_path):
    lines = [str(i) for i in range(20_000)] + ["1.5", "abc"]
    path = tmp_path / "late.csv"
    path.write_text("x\n" + "\n".join(lines) + "\n")
    frames = list(TableReader(path, chunk_bytes=4_096))
    values = pl.concat([coerce_numerical(f["x"]).series for f in frames])
    assert values.len() == 20_002 and values[20_000] == 1.5 and values[20_001] is None
    middle = pl.concat(list(TableReader(path, row_range=(9_990, 10_010), chunk_bytes=4_096)))
    assert middle["x"].cast(pl.Int64).to_list() == list(range(9_990, 10_010))
    with pytest.raises(InputDataError, match=r"rows \[0, 30000\) requested but the file has only 20002"):
        list(TableReader(path, row_range=(0, 30_000), chunk_bytes=4_096))


def test_reader_parquet_and_projection(tmp_path, bank):
    path = tmp_path / "b.parquet"
    bank.write_parquet(path)
    reader = TableReader(path, columns=["Balance", "Gender"])
    frame = pl.concat(list(reader))
    assert frame.columns == ["Balance", "Gender"] and frame.height == bank.height
    with pytest.raises(InputDataError, match="no column named Nope"):
        TableReader(path, columns=["Nope"])


def test_reader_rejects_nested_parquet(tmp_path):
    path = tmp_path / "nested.parquet"
    pl.DataFrame({"a": [[1, 2], [3]], "b": [1, 2]}).write_parquet(path)
    with pytest.raises(InputDataError, match="nested columns are not supported: a"):
        TableReader(path)


def test_numerical_sample_quantiles_do_not_depend_on_the_form():
    from churnops.monitor.summaries import numerical_summary

    values = np.sort(np.random.default_rng(0).integers(0, 10, 1_000).astype(float))
    raw = NumericalSample(values, 1_000, 0, 0)
    distinct, counts = np.unique(values, return_counts=True)
    weighted = NumericalSample(distinct, 1_000, 0, 0, 0, counts.astype(np.int64))
    a, b = numerical_summary(raw), numerical_summary(weighted)
    assert a.quantiles == b.quantiles and a.mean == pytest.approx(b.mean) and a.std == pytest.approx(b.std)
    assert a.quantiles["p25"] == float(np.quantile(values, 0.25))


# --- category coding: cost in the chunk, never in the labels known or the values' range ---------


def long_labels(n: int, start: int = 0, length: int = 10_000) -> pl.Series:
    return pl.select((pl.lit("y" * length) + pl.format("-{}", pl.int_range(start, start + n))).alias("v")).to_series()


def test_long_labels_are_kept_at_a_fixed_size_and_shown_as_before():
    from churnops.monitor.summaries import label_text

    accumulator = CategoryAccumulator()
    for start in range(0, 3_000, 1_000):
        accumulator.update(coerce_categorical(long_labels(1_000, start)))
    accumulator.update(coerce_categorical(pl.Series(["short", None, "y" * 10_000 + "-7"])))
    sample = accumulator.finish()
    assert len(sample.labels) == 3_001 and sample.count == 3_002 and sample.missing == 1
    assert max(len(label) for label in sample.labels) < 150  # not 10 kB per category
    originals = {label_text(text): text for text in [*long_labels(3_000).to_list(), "short"]}
    shown = [label_text(label) for label in sample.labels]
    assert sorted(shown) == sorted(originals)  # the outputs' text is what the labels themselves give
    assert dict(zip(shown, sample.counts.tolist(), strict=True))[label_text("y" * 10_000 + "-7")] == 2


def categorical_settings() -> MonitorSettings:
    return MonitorSettings(declared_types={"c": "categorical"}, target=None)


def both_engines(reference: pl.DataFrame, current: pl.DataFrame, settings: MonitorSettings):
    """The exact engine on polars chunks, the streaming engine on Arrow batches (as it reads Parquet)."""
    profile = build_profile(reference, settings)
    results = []
    for streaming in (False, True):
        builder = BatchBuilder(profile, current.columns, settings, streaming=streaming)
        for chunk in chunks_of(current, 700):
            builder.update(chunk.to_arrow().to_batches()[0] if streaming else chunk)
        results.append(evaluate(profile, builder.finish(), settings))
    return results


@pytest.mark.parametrize("dtype", [pl.Int64, pl.UInt64, pl.Int32])
def test_integer_categories_spread_over_a_huge_range_are_counted_without_a_table_of_the_range(dtype):
    """0 and 2**40 (or 2**31 - 1) once made the streaming engine allocate the span (8 TiB)."""
    rng = np.random.default_rng(3)
    high = 2**40 if dtype != pl.Int32 else 2**31 - 1
    values = [0, high, 17]
    reference = pl.DataFrame({"c": pl.Series(rng.choice(values, 3_000), dtype=dtype)})
    current = pl.DataFrame({"c": pl.Series(rng.choice(values, 2_000, p=[0.2, 0.5, 0.3]), dtype=dtype)})
    exact, streaming = both_engines(reference, current, categorical_settings())
    assert result_numbers(exact) == result_numbers(streaming)
    assert exact.column("c").current.n_categories == 3 and exact.column("c").drift_detected
    with_nulls = current.with_columns(pl.when(pl.int_range(pl.len()) % 7 == 0).then(None).otherwise(pl.col("c")))
    exact, streaming = both_engines(reference, with_nulls, categorical_settings())
    assert result_numbers(exact) == result_numbers(streaming)


def test_reading_parquet_never_grows_a_dictionary_over_a_row_group(tmp_path):
    """Arrow reads a column of mostly distinct text that it was asked to read as a dictionary into one
    dictionary per row group, every batch carrying all values so far (quadratic)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 40_000
    table = pa.table({"id": [f"customer-{i}" for i in range(n)], "kind": ["a", "b", "c", "d"] * (n // 4)})
    pq.write_table(table, tmp_path / "t.parquet")  # pyarrow falls back to plain pages for "id"
    reader = TableReader(tmp_path / "t.parquet", arrow=True, batch_rows=5_000)
    batches = list(reader)
    assert len(batches) == 8
    for batch in batches:
        ids = batch.column("id")
        assert not isinstance(ids, pa.DictionaryArray) or len(ids.dictionary) <= batch.num_rows
        assert isinstance(batch.column("kind"), pa.DictionaryArray)  # few values: still a dictionary


def test_chunks_of_long_text_are_bounded_by_bytes_not_rows(tmp_path):
    frame = pl.DataFrame({"x": np.arange(3_000.0), "c": long_labels(3_000)})
    frame.write_csv(tmp_path / "t.csv")
    frame.write_parquet(tmp_path / "t.parquet")
    for path in (tmp_path / "t.csv", tmp_path / "t.parquet"):
        for arrow in (False, True):
            heights = [c.height if isinstance(c, pl.DataFrame) else c.num_rows for c in TableReader(path, arrow=arrow)]
            assert sum(heights) == 3_000 and max(heights) <= 2_000, (path.name, arrow, heights)


# --- TVD: the exact engine keeps numeric categories in row order --------------------------------

TVD_SETTINGS = MonitorSettings(declared_types={"n": "categorical", "t": "categorical"}, target=None, cat_method="TVD")


def tvd_frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(8)

    def make(n, p):
        ints = pl.Series(rng.choice([3, 1, 7, 12], n, p=p))
        return pl.DataFrame({"n": ints, "t": ints.cast(pl.String) + "x"}).with_columns(
            pl.when(pl.int_range(pl.len()) % 11 == 0).then(None).otherwise(pl.col("n")).alias("n")
        )

    return make(3_000, [0.4, 0.3, 0.2, 0.1]), make(2_000, [0.38, 0.31, 0.2, 0.11])


def test_tvd_columns_keep_their_row_order_through_chunks_merges_and_the_cache(tmp_path):
    from churnops.monitor.drift import TVD_ESTIMATE
    from churnops.pipeline.profile_cache import profile_key

    reference, current = tvd_frames()
    whole = compare(build_profile(reference, TVD_SETTINGS), current, TVD_SETTINGS)
    profile = build_profile(reference, TVD_SETTINGS)
    assert profile.columns["n"].sample.codes is not None and profile.columns["t"].sample.codes is None
    parts = []
    for part in (reference[:1_000], reference[1_000:]):
        builder = ProfileBuilder(reference.columns, TVD_SETTINGS)
        for chunk in chunks_of(part, 333):
            builder.update(chunk)
        parts.append(builder)
    parts[0].merge(parts[1])
    save_profile(parts[0].finish(), tmp_path / "p.npz")
    cached, _ = load_profile(tmp_path / "p.npz")
    batch = BatchBuilder(cached, current.columns, TVD_SETTINGS)
    for chunk in chunks_of(current, 450):
        batch.update(chunk)
    chunked = evaluate(cached, batch.finish(), TVD_SETTINGS)
    assert result_numbers(chunked) == result_numbers(whole)
    assert whole.column("n").note is None  # exact: row order kept
    assert whole.column("t").note == TVD_ESTIMATE  # text labels: counts only, and said so
    # the cache key says whether TVD columns keep their rows; without TVD no codes are kept
    assert profile_key("sha", None, TVD_SETTINGS) != profile_key("sha", None, SETTINGS)
    plain = MonitorSettings(declared_types=TVD_SETTINGS.declared_types, target=None)
    assert build_profile(reference, plain).columns["n"].sample.codes is None


def test_the_streaming_engine_estimates_tvd_from_counts_and_says_so():
    from churnops.monitor.drift import TVD_ESTIMATE

    reference, current = tvd_frames()
    exact = compare(build_profile(reference, TVD_SETTINGS), current, TVD_SETTINGS)
    builder = ProfileBuilder(reference.columns, TVD_SETTINGS, streaming=True)
    builder.update(reference)
    profile = builder.finish()
    batch = BatchBuilder(profile, current.columns, TVD_SETTINGS, streaming=True)
    batch.update(current.to_arrow().to_batches()[0])
    streaming = evaluate(profile, batch.finish(), TVD_SETTINGS)
    column = streaming.column("n")
    assert column.note == TVD_ESTIMATE and column.statistic == exact.column("n").statistic
    assert abs(column.p_value - exact.column("n").p_value) < 0.1


def test_tampered_row_codes_make_the_cached_profile_unusable(tmp_path):
    reference, _ = tvd_frames()
    save_profile(build_profile(reference, TVD_SETTINGS), tmp_path / "p.npz")
    with np.load(tmp_path / "p.npz", allow_pickle=False) as archive:
        arrays = dict(archive)
    name = next(k for k in arrays if k.startswith("codes_"))
    arrays[name] = arrays[name].copy()
    arrays[name][:2] = arrays[name][:2][::-1] + 1  # counts no longer match
    np.savez(tmp_path / "bad.npz", **arrays)
    assert load_profile(tmp_path / "bad.npz") is None


@pytest.mark.parametrize("streaming", [False, True])
def test_merged_builders_keep_examples_of_unparsable_cells_of_both_parts(streaming):
    """Builders of parts of a batch (Dask's partitions) merge their examples of unparsable cells,
    distinct and at most three, as one builder of the whole batch keeps them."""
    settings = MonitorSettings(declared_types={"amount": "numerical"}, target="churned")
    reference = pl.DataFrame({"amount": [str(v) for v in range(100)], "churned": [0, 1] * 50})
    profile = build_profile(reference, settings)
    parts = [
        pl.DataFrame({"amount": ["1", "a", "a", "2"], "churned": [0, 1, 0, 1]}),
        pl.DataFrame({"amount": ["b", "3", "a", "c", "d"], "churned": [0, 1, 0, 1, 1]}),
    ]
    builders = []
    for part in parts:
        builder = BatchBuilder(profile, part.columns, settings, streaming=streaming)
        builder.update(part.to_arrow() if streaming else part)
        builders.append(builder)
    builders[0].merge(builders[1])
    whole = BatchBuilder(profile, parts[0].columns, settings, streaming=streaming)
    for part in parts:
        whole.update(part.to_arrow() if streaming else part)
    for builder in (builders[0], whole):
        tally = builder.finish().columns["amount"]
        assert tally.sample.unparsable == 6
        assert tally.unparsable_examples == ["a", "b", "c"]


def _tally_of(chunks: list, streaming: bool, row_sample: int = 1, intended: dict | None = None):
    settings = MonitorSettings(
        declared_types={"cid": "id", "n": "numerical", "code": "categorical"}, target="churned", id_columns=("cid",)
    )
    reference = pl.DataFrame({"cid": range(100), "n": [float(i % 7) for i in range(100)], "code": ["a", "b"] * 50})
    profile = build_profile(reference.with_columns(churned=pl.lit(0)), settings)
    builder = BatchBuilder(
        profile, [*reference.columns, "churned"], settings, streaming=streaming, row_sample=row_sample
    )
    builder.intended = intended or {}
    for chunk in chunks:
        builder.update(chunk.to_arrow() if streaming else chunk)
    return builder.finish()


def _rows(ids: list, numbers: list, codes: list, **types) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "cid": pl.Series(ids, dtype=types.get("cid", pl.Int64)),
            "n": pl.Series(numbers, dtype=types.get("n", pl.Float64)),
            "code": codes,
            "churned": [0] * len(ids),
        }
    )


@pytest.mark.parametrize("streaming", [False, True])
def test_identifiers_and_rows_repeat_across_pieces_that_hold_them_as_other_types(streaming):
    """A piece of a batch may hold a column as another type than the rest: integers with a
    null (a Parquet row group), text (a CSV piece read as text for a stray ``' NA '`` cell),
    whole floats. Identifiers and rows repeated across such pieces were missed - 50 repeated
    identifiers reported as none; they are keyed by value now."""
    first = _rows([1, 2, 3], [5, 6, 7], ["a", "b", "a"], n=pl.Int64)
    nulls = _rows([None, 1, 2], [None, 5, 6], ["a", "a", "b"], n=pl.Int64)  # row 2: 1, 5, a again
    text = _rows([" NA ", "3", "1"], ["7", "x", "5"], ["b", "a", "a"], cid=pl.String, n=pl.String)
    whole = _rows([3.0, 9.0], [7.0, 1.5], ["a", "b"], cid=pl.Float64)
    tally = _tally_of([first, nulls, text, whole], streaming, intended={"cid": pl.Int64(), "n": pl.Int64()})
    # ids 1 (x3), 2 (x2), 3 (x3): 5 repeats; None and ' NA ' are no identifiers
    assert tally.duplicated_ids == {"cid": 5} and tally.missing_ids == {"cid": 2}
    assert tally.missing_id_text == {"cid": {" NA ": 1}}
    # (1, 5, a) three times, (2, 6, b) twice, (3, 7, a) twice
    assert tally.duplicated_rows == 4


@pytest.mark.parametrize("streaming", [False, True])
def test_cells_that_do_not_parse_keep_their_text_in_repeated_rows(streaming):
    """Two rows alike but for a column of numbers holding ``foo`` in one and ``bar`` in the
    other are not repeats (the streaming engine counted every unparsable cell as one value);
    rows alike but for how their missing value is written (``''``, ``NA``, a null) are."""
    rows = _rows([None] * 6, ["foo", "bar", "", "NA", None, " null "], ["a"] * 6, cid=pl.Int64, n=pl.String)
    tally = _tally_of([rows], streaming)
    assert tally.columns["n"].sample.unparsable == 2 and tally.columns["n"].sample.missing == 4
    assert tally.duplicated_rows == 3


def test_rows_without_an_identifier_are_all_counted_when_identifiers_are_sampled():
    """With repeated rows counted on a sample of identifiers, the rows without one were in or
    out of the sample all together (they share the empty identifier's key): 3,000 repeated rows
    reported as none. They are counted apart, every one."""
    rng = np.random.default_rng(3)
    keyed = _rows(list(range(20_000)), rng.normal(size=20_000).tolist(), ["a"] * 20_000)
    unkeyed = _rows([None] * 3_001, [0.5] * 3_001, ["b"] * 3_001)
    for sample in (1, 16):
        tally = _tally_of([keyed, unkeyed], True, row_sample=sample)
        assert tally.duplicated_rows == 3_000, sample
        assert tally.missing_ids == {"cid": 3_001} and tally.duplicated_ids == {"cid": 0}


@pytest.mark.parametrize("streaming", [False, True])
def test_codes_repeat_across_pieces_of_other_widths_and_big_identifiers_stay_apart(streaming):
    """Whole-number codes held as Int64, as Int32 with a null, as whole floats in another piece
    are one value in repeated rows; identifiers above 2**53 that differ by one are two rows, not
    one number rounded alike."""
    settings = MonitorSettings(
        declared_types={"cid": "id", "code": "categorical"}, target="churned", id_columns=("cid",)
    )
    reference = pl.DataFrame({"cid": range(100), "code": [i % 3 for i in range(100)], "churned": [0] * 100})
    profile = build_profile(reference, settings)

    def piece(ids: list, codes: list, dtype) -> pl.DataFrame:
        return pl.DataFrame(
            {"cid": pl.Series(ids, dtype=pl.Int64), "code": pl.Series(codes, dtype=dtype), "churned": [0] * len(ids)}
        )

    big = 2**53
    pieces = [
        piece([1, 2, big], [0, 1, 2], pl.Int64),
        piece([1, 2, None], [0, None, 2], pl.Int32),  # (1, 0) again
        piece([2, big + 1], [1.0, 2.0], pl.Float64),  # (2, 1) again; big + 1 is another identifier
    ]
    builder = BatchBuilder(profile, reference.columns, settings, streaming=streaming)
    for chunk in pieces:
        builder.update(chunk.to_arrow() if streaming else chunk)
    tally = builder.finish()
    assert tally.duplicated_rows == 2
    assert tally.duplicated_ids == {"cid": 3} and tally.missing_ids == {"cid": 1}  # 1, 2, 2 again
    assert tally.columns["code"].sample.unparsable == 0


@pytest.mark.parametrize("streaming", [False, True])
def test_repeated_rows_agree_between_engines_on_signed_zeros_bad_codes_blank_ids_and_typed_extras(streaming):
    """What an outside review found the two engines to count differently: -0.0 and 0.0 (one
    value); 'foo' and 'bar' in a column of whole-number codes (two values, not one missing);
    identifiers written '', 'NA', ' N/A ' or null (one missing identifier); a column only the
    batch has, typed as numbers by the reader but held as text by one piece (one value)."""
    settings = MonitorSettings(
        declared_types={"cid": "id", "n": "numerical", "code": "categorical"}, target="churned", id_columns=("cid",)
    )
    reference = pl.DataFrame(
        {"cid": [f"C{i}" for i in range(100)], "n": [float(i) for i in range(100)], "code": [i % 3 for i in range(100)]}
    ).with_columns(churned=pl.lit(0))
    profile = build_profile(reference, settings)

    def piece(ids, numbers, codes, extra) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "cid": ids,
                "n": pl.Series(numbers, dtype=pl.Float64),
                "code": codes,
                "churned": [0] * len(ids),
                "extra": extra,
            }
        )

    pieces = [
        piece(
            ["A", "B", "C", "F"], [1.0, 1.0, 2.0, 0.0], ["foo", "1", "2", "0"], pl.Series([7, 8, 9, 1], dtype=pl.Int64)
        ),
        piece(["A", "B", "C", "F"], [1.0, 1.0, 2.0, -0.0], ["bar", "1", "2", "0"], pl.Series(["7", "8", "x", "1"])),
        piece(["", "NA", " N/A ", None], [5.0] * 4, ["1"] * 4, pl.Series(["3", "3", "3", "3"])),
    ]
    builder = BatchBuilder(profile, pieces[0].columns, settings, streaming=streaming)
    builder.intended = {"extra": pl.Int64()}
    for chunk in pieces:
        builder.update(chunk.to_arrow() if streaming else chunk)
    tally = builder.finish()
    # A: codes foo / bar differ; B: one row twice (8 and "8"); C: extras 9 / "x" differ; F: 0.0 and
    # -0.0 are one value; the four rows without an identifier are one row four times
    assert tally.duplicated_rows == 1 + 1 + 3, tally.duplicated_rows
    assert tally.columns["code"].sample.unparsable == 2


@pytest.mark.parametrize("streaming", [False, True])
def test_numbers_held_as_text_repeat_by_their_value(streaming):
    """A Parquet file's column of numbers held as text: '5', '5.0' and '$5' are the number 5, as
    the monitoring reads them, so rows alike but for how it is written repeat (the exact engine
    compared the text as written, the streaming engine the numbers: 0 repeats against 2)."""
    rows = _rows([None] * 5, ["5", "5.0", "$5", "foo", "bar"], ["a"] * 5, cid=pl.Int64, n=pl.String)
    tally = _tally_of([rows], streaming)
    assert tally.columns["n"].sample.unparsable == 2
    assert tally.duplicated_rows == 2
