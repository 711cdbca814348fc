import json

import numpy as np
import polars as pl
import pytest

from churnops.data.production import make_production_batch
from churnops.data.scenarios import Operation, apply_scenario, resolve_scenario
from churnops.errors import ConfigError, InputDataError


@pytest.fixture()
def source(tmp_path, bank):
    path = tmp_path / "churn.csv"
    bank.write_csv(path)
    return path


def make(source, tmp_path, scenario="seed", intensity=1.0, seed=11, rows=(20_000, 30_000)):
    out = tmp_path / "production" / "batch.csv"
    info = make_production_batch(source, out, rows, resolve_scenario(scenario), scenario, intensity, seed)
    return info, pl.read_csv(out)


def test_seed_drift_is_applied_exactly(source, tmp_path, bank):
    info, batch = make(source, tmp_path)
    original = bank[20_000:30_000]
    assert batch.height == 10_000 and info.rows == 10_000
    assert batch["CustomerId"].equals(original["CustomerId"])
    assert batch["Balance"].sum() / original["Balance"].sum() == pytest.approx(1.20, rel=1e-9)
    assert batch["Income"].sum() / original["Income"].sum() == pytest.approx(1.10, rel=1e-9)
    shifted = original["Credit Score"].to_numpy() - 15
    expected = np.clip(shifted, 300, 850)
    assert np.array_equal(batch["Credit Score"].to_numpy(), expected)
    not_clipped = shifted >= 300
    assert np.all(batch["Credit Score"].to_numpy()[not_clipped] == shifted[not_clipped])
    before, after = original["Churn Flag"].mean(), batch["Churn Flag"].mean()
    assert after - before == pytest.approx(0.045, abs=1e-4)
    flipped = (batch["Churn Flag"] != original["Churn Flag"]).to_numpy()
    assert np.all(original["Churn Flag"].to_numpy()[flipped] == 0)
    untouched = [c for c in bank.columns if c not in ("Balance", "Income", "Credit Score", "Churn Flag")]
    assert batch.select(untouched).equals(original.select(untouched))


def test_intensity_zero_gives_the_unchanged_rows(source, tmp_path, bank):
    _, batch = make(source, tmp_path, intensity=0.0)
    assert batch.equals(bank[20_000:30_000])


def test_intensity_scales_every_shift(source, tmp_path, bank):
    _, batch = make(source, tmp_path, intensity=0.5)
    original = bank[20_000:30_000]
    assert batch["Balance"].sum() / original["Balance"].sum() == pytest.approx(1.10, rel=1e-9)
    assert batch["Churn Flag"].mean() - original["Churn Flag"].mean() == pytest.approx(0.0225, abs=1e-4)


def test_sidecar_records_how_to_reproduce(source, tmp_path):
    info, _ = make(source, tmp_path, seed=5)
    meta = json.loads(info.meta_path.read_text())
    assert info.meta_path.name == "batch.meta.json"
    assert meta["scenario"] == "seed" and meta["intensity"] == 1.0 and meta["seed"] == 5
    assert meta["row_range"] == [20_000, 30_000]
    assert len(meta["input"]["sha256"]) == 64 and len(meta["output"]["sha256"]) == 64
    target = next(e for e in meta["effects"].values() if e["op"] == "target_rate")
    assert target["achieved_change"] == pytest.approx(0.045, abs=1e-4)
    # same inputs, same batch
    info2, _ = make(source, tmp_path, seed=5)
    assert json.loads(info2.meta_path.read_text())["output"]["sha256"] == meta["output"]["sha256"]


def test_strong_scenario_remixes_and_injects(source, tmp_path, bank):
    _, batch = make(source, tmp_path, scenario="strong")
    assert batch["Outstanding Loans"].null_count() == 500
    assert (batch["Preferred Communication Channel"] == "Chatbot").sum() == 1_000
    sme_before = (bank[20_000:30_000]["Customer Segment"] == "SME").mean()
    assert (batch["Customer Segment"] == "SME").mean() > sme_before + 0.25


def test_parquet_in_and_out(tmp_path, bank):
    source = tmp_path / "churn.parquet"
    bank.write_parquet(source)
    out = tmp_path / "batch.parquet"
    info = make_production_batch(source, out, (0, 1_000), resolve_scenario("seed"), "seed", 1.0, 1)
    assert pl.read_parquet(out).height == 1_000 == info.rows


def test_custom_operations():
    frame = pl.DataFrame({"segment": ["A"] * 80 + ["B"] * 20, "x": list(range(100))})
    ops = (
        Operation("remix", "segment", share=0.3, to="B"),
        Operation("new_category", "segment", share=0.1, value="Z"),
        Operation("missing", "x", share=0.05),
        Operation("shift", "x", amount=2.4),
    )
    out, outcome = apply_scenario(frame, ops, 1.0, seed=0)
    assert out["x"].null_count() == 5
    assert out["x"].dtype == pl.Int64  # integers stay integers
    assert (out["segment"] == "Z").sum() == 10
    assert outcome.effects["0:remix:segment"]["moved_rows"] == 30


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"rows": (25_000, 35_000)}, InputDataError, "file has only 30000 data rows"),
        (
            {"scenario": "tsunami"},
            ConfigError,
            "unknown scenario 'tsunami'; known: concept, correlation, covariate, none, seed, strong",
        ),
    ],
)
def test_bad_input_is_one_clear_error_and_no_output(source, tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        scenario = kwargs.pop("scenario", "seed")
        out = tmp_path / "production" / "batch.csv"
        make_production_batch(
            source, out, kwargs.get("rows", (20_000, 30_000)), resolve_scenario(scenario), scenario, 1.0, 0
        )
    assert not (tmp_path / "production").exists() or not any((tmp_path / "production").iterdir())


def test_missing_column_for_the_scenario(tmp_path):
    source = tmp_path / "other.csv"
    pl.DataFrame({"a": [1, 2, 3]}).write_csv(source)
    out = tmp_path / "out.csv"
    with pytest.raises(InputDataError, match="scenario needs column 'Balance'"):
        make_production_batch(source, out, (0, 3), resolve_scenario("seed"), "seed", 1.0, 0)
    assert not out.exists()
