"""The model's array form gives scikit-learn's probabilities exactly, and refuses files it did not write."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import polars as pl
import pytest

pytest.importorskip("sklearn")

from churnops.data.generator import generate_reference  # noqa: E402
from churnops.integrations.model import FeatureSpec, fit_calibrated, predict_probabilities  # noqa: E402
from churnops.integrations.model_scorer import (  # noqa: E402
    MANIFEST_KEY,
    CompiledScorer,
    ScorerError,
    compile_pipeline,
)

TARGET = "Churn Flag"


@pytest.fixture(scope="module")
def fitted():
    """A pipeline fitted as ``churnops train`` fits it, on generated customers with some gaps."""
    frame = generate_reference(9_000, seed=3)
    rng = np.random.default_rng(0)
    holes = rng.random(frame.height) < 0.05
    frame = frame.with_columns(
        pl.when(pl.Series(holes)).then(None).otherwise(pl.col("Balance")).alias("Balance"),
        pl.when(pl.Series(np.roll(holes, 7))).then(None).otherwise(pl.col("Occupation")).alias("Occupation"),
    )
    numerical = [c for c, t in frame.schema.items() if t.is_numeric() and c not in (TARGET, "CustomerId", "RowNumber")]
    categorical = [c for c, t in frame.schema.items() if t == pl.String and c not in ("Date of Birth", "Surname")]
    categorical = [c for c in categorical if frame.get_column(c).n_unique() < 50]
    spec = FeatureSpec(numerical, categorical, ["Date of Birth"])
    data = frame.to_pandas()
    labels = data[TARGET].astype(int).to_numpy()
    fit, calibration = (data.iloc[:6_000], labels[:6_000]), (data.iloc[6_000:7_000], labels[6_000:7_000])
    pipeline = fit_calibrated(spec, fit, calibration, 0, "2026-06-30")
    return pipeline, spec, frame[7_000:]


def scorer_of(pipeline, spec) -> CompiledScorer:
    return CompiledScorer.from_bytes(compile_pipeline(pipeline, spec, "2026-06-30").to_bytes())


def test_the_array_form_gives_the_pipelines_probabilities_bit_for_bit(fitted):
    pipeline, spec, rows = fitted
    scorer = scorer_of(pipeline, spec)
    expected = predict_probabilities(pipeline, rows.select(spec.columns).to_pandas())
    got = scorer.predict(rows.select(spec.columns))
    assert np.array_equal(got, expected)
    assert np.array_equal(scorer.predict(rows.select(spec.columns).to_pandas()), expected)  # pandas too


def test_odd_values_take_the_same_path_as_in_scikit_learn(fitted):
    """Missing and infinite numbers, unknown and missing categories, dates that are not ISO, empty
    dates, a single row, an empty table, dates typed as dates."""
    pipeline, spec, rows = fitted
    scorer = scorer_of(pipeline, spec)
    odd = rows.head(400).select(spec.columns)
    n = odd.height
    pick = np.arange(n) % 5
    number = spec.numerical[0]
    category = spec.categorical[0]
    other_number, other_category, born = spec.numerical[1], spec.categorical[1], "Date of Birth"

    def where(k: int) -> pl.Expr:
        return pl.lit(pl.Series(pick == k))

    odd = odd.with_columns(
        pl.when(where(0)).then(None).otherwise(pl.col(number)).alias(number),
        pl.when(where(1)).then(float("inf")).otherwise(pl.col(other_number).cast(pl.Float64)).alias(other_number),
        pl.when(where(2)).then(pl.lit("never-seen")).otherwise(pl.col(category)).alias(category),
        pl.when(where(3)).then(None).otherwise(pl.col(other_category)).alias(other_category),
        pl.when(where(4)).then(pl.lit("not a date")).otherwise(pl.col(born)).alias(born),
    )
    for frame in (odd, odd.head(1)):
        expected = predict_probabilities(pipeline, frame.to_pandas())
        assert np.array_equal(scorer.predict(frame), expected), frame.height
    assert scorer.predict(odd.head(0)).shape == (0,)  # scikit-learn refuses an empty table
    us_dates = odd.with_columns(
        pl.col("Date of Birth").str.strptime(pl.Date, "%Y-%m-%d", strict=False).dt.strftime("%m/%d/%Y")
    )
    assert np.array_equal(scorer.predict(us_dates), predict_probabilities(pipeline, us_dates.to_pandas()))
    plain = rows.head(300).select(spec.columns)
    typed = plain.with_columns(pl.col("Date of Birth").str.to_date())
    assert np.array_equal(scorer.predict(typed), predict_probabilities(pipeline, plain.to_pandas()))


def test_more_rows_than_one_chunk_are_scored_the_same(fitted):
    pipeline, spec, rows = fitted
    scorer = scorer_of(pipeline, spec)
    many = pl.concat([rows.select(spec.columns)] * 3)  # 6,000 rows: three chunks
    assert np.array_equal(scorer.predict(many), np.tile(scorer.predict(rows.select(spec.columns)), 3))


def test_records_encoded_without_a_table_give_the_tables_numbers(fitted):
    """``churnops serve``'s way for a few records (:class:`RecordEncoder`): the same input matrix,
    value for value, as the table of the same records; odd values too; and no answer (the table
    decides) for anything whose conversion is not plain."""
    from churnops.integrations.scorer_records import RecordEncoder
    from churnops.serve.windows import window_frame

    pipeline, spec, rows = fitted
    numeric_category = "NumOfProducts"  # categories that are numbers, as `churnops train` makes them
    spec = FeatureSpec(
        [c for c in spec.numerical if c != numeric_category], [*spec.categorical, numeric_category], spec.dates
    )
    frame = generate_reference(3_000, seed=5)
    holes = pl.Series(np.arange(frame.height) % 20 == 3)
    frame = frame.with_columns(pl.when(holes).then(None).otherwise(pl.col("Occupation")).alias("Occupation"))
    data = frame.to_pandas()
    labels = data[TARGET].astype(int).to_numpy()
    pipeline = fit_calibrated(
        spec, (data.iloc[:2_000], labels[:2_000]), (data.iloc[2_000:], labels[2_000:]), 0, "2026-06-30"
    )
    scorer = scorer_of(pipeline, spec)
    assert None in scorer.categories[spec.categorical.index("Occupation")]  # an empty cell is a category
    assert all(isinstance(c, int) for c in scorer.categories[spec.categorical.index(numeric_category)])
    dtypes = {name: str(dtype) for name, dtype in rows.schema.items()}
    encoder = RecordEncoder(scorer, dtypes)
    assert encoder.usable
    records = rows.head(500).to_dicts()
    number, other_number = spec.numerical[0], next(c for c in spec.numerical if dtypes[c] == "Float64")
    category, other_category = spec.categorical[0], "Occupation"  # Occupation had gaps in training
    whole = next(c for c in spec.numerical if dtypes[c] == "Int64")
    for i, record in enumerate(records):
        change = i % 9
        if change == 0:
            record[number] = None
        elif change == 1:
            record[category] = "never-seen"
        elif change == 2:
            record[other_category] = None
        elif change == 3:
            record["Date of Birth"] = None
        elif change == 4:
            record[numeric_category] = 97  # a number the encoder never saw
        elif change == 5:
            record[whole] = float(record[whole] or 0)  # a whole number sent as 7.0
        elif change == 6:
            record[other_number] = int(record[other_number] or 0)  # a whole number in a column of reals
        elif change == 7:
            record["Date of Birth"] = "2000-02-29"
    table = scorer.features(window_frame(records, {c: dtypes.get(c, "unread") for c in scorer.columns}))
    encoded = encoder.features(records)
    assert encoded is not None and np.array_equal(encoded, table, equal_nan=True)
    assert np.array_equal(scorer.probabilities(encoded), scorer.probabilities(table))
    assert encoder.features(records[:1]).shape == (1, table.shape[1])
    for odd in ({"Date of Birth": "14/08/1990"}, {"Date of Birth": "1990-02-30"}, {category: True}, {number: "7"}):
        assert encoder.features([records[0], {**records[1], **odd}]) is None, odd  # the table decides
    assert not RecordEncoder(scorer, {**dtypes, number: "Float32"}).usable  # a type the table casts its own way


def _members(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    manifest = json.loads(bytes(arrays.pop(MANIFEST_KEY)).decode())
    return manifest, arrays


def _packed(manifest: dict, arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    encoded = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    np.savez(buffer, **{MANIFEST_KEY: encoded}, **arrays)
    return buffer.getvalue()


def _loop(manifest, arrays):
    arrays["node_left"] = arrays["node_left"].copy()
    inner = np.flatnonzero(arrays["node_is_leaf"] == 0)
    arrays["node_left"][inner[3]] = 0  # back to the root: a walk that never ends
    return manifest, arrays


def _shared(manifest, arrays):
    arrays["node_right"] = arrays["node_right"].copy()
    arrays["node_right"][0] = arrays["node_left"][0]  # two parents for one subtree
    return manifest, arrays


def _out_of_tree(manifest, arrays):
    arrays["node_right"] = arrays["node_right"].copy()
    arrays["node_right"][0] = 10**6
    return manifest, arrays


def _bad_feature(manifest, arrays):
    arrays["node_feature_idx"] = arrays["node_feature_idx"].copy()
    arrays["node_feature_idx"][0] = 10_000
    return manifest, arrays


def _nan_leaf(manifest, arrays):
    arrays["node_value"] = arrays["node_value"].copy()
    arrays["node_value"][np.flatnonzero(arrays["node_is_leaf"])[0]] = np.nan
    return manifest, arrays


def _other_format(manifest, arrays):
    return {**manifest, "format": "pickle"}, arrays


def _extra_array(manifest, arrays):
    return manifest, {**arrays, "payload": np.zeros(3)}


def _calibration_above_one(manifest, arrays):
    return manifest, {**arrays, "calibration_y": arrays["calibration_y"] * 3}


def _category_list_mixed(manifest, arrays):
    categories = [list(values) for values in manifest["categories"]]
    categories[0] = [*categories[0], 5]
    return {**manifest, "categories": categories}, arrays


def _recode_out_of_range(manifest, arrays):
    return manifest, {**arrays, "recode_0": arrays["recode_0"] + 1_000}


FORGERIES = {
    "a loop": (_loop, "child"),
    "a shared subtree": (_shared, "shared"),
    "a child outside its tree": (_out_of_tree, "child"),
    "a split on a missing feature": (_bad_feature, "feature"),
    "a NaN leaf": (_nan_leaf, "leaf"),
    "another format": (_other_format, "format"),
    "an extra array": (_extra_array, "unexpected"),
    "probabilities above 1": (_calibration_above_one, "calibration"),
    "a category list of mixed types": (_category_list_mixed, "category"),
    "codes out of range": (_recode_out_of_range, "recode"),
}


@pytest.mark.parametrize("case", list(FORGERIES))
def test_a_forged_array_file_is_refused_before_it_is_used(fitted, case):
    pipeline, spec, rows = fitted
    edit, word = FORGERIES[case]
    data = _packed(*edit(*_members(compile_pipeline(pipeline, spec, "2026-06-30").to_bytes())))
    with pytest.raises(ScorerError, match=word):
        scorer = CompiledScorer.from_bytes(data)
        scorer.predict(rows.head(50).select(spec.columns))  # a structure problem found when walking


def test_pickled_or_compressed_members_are_refused(fitted):
    pipeline, spec, _ = fitted
    manifest, arrays = _members(compile_pipeline(pipeline, spec, "2026-06-30").to_bytes())
    pickled = {**arrays, "node_value": np.array([object()] * arrays["node_value"].size, dtype=object)}
    with pytest.raises(ScorerError):
        CompiledScorer.from_bytes(_packed(manifest, pickled))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{MANIFEST_KEY: np.frombuffer(json.dumps(manifest).encode(), np.uint8)}, **arrays)
    with pytest.raises(ScorerError, match="compressed"):
        CompiledScorer.from_bytes(buffer.getvalue())
    for junk in (b"", b"PK\x03\x04 not really", b"\x93NUMPY"):
        with pytest.raises(ScorerError):
            CompiledScorer.from_bytes(junk)
    with zipfile.ZipFile(io.BytesIO(_packed(manifest, arrays))) as archive:
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())


def test_an_array_header_that_promises_more_than_its_member_holds_is_refused(fitted):
    """An uncompressed member whose header claims 4 billion values: numpy would try to allocate 30 GiB."""
    pipeline, spec, _ = fitted
    data = compile_pipeline(pipeline, spec, "2026-06-30").to_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {info.filename: archive.read(info) for info in archive.infolist()}
    from numpy.lib import format as npy

    member = files["node_value.npy"]
    header = io.BytesIO()
    npy.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (4_000_000_000,)})
    files["node_value.npy"] = header.getvalue() + member[member.index(b"\n") + 1 :]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    with pytest.raises(ScorerError, match="promises more"):
        CompiledScorer.from_bytes(out.getvalue())
