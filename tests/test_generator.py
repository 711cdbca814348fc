import hashlib
from datetime import date

import numpy as np
import polars as pl
import pytest

from churnops.data.generator import AS_OF, COLUMNS, generate_reference, write_reference
from churnops.errors import InputDataError


def test_schema_matches_the_seed_dataset(bank):
    assert bank.columns == COLUMNS
    assert bank.height == 30_000
    assert bank["CustomerId"].is_unique().all()
    assert bank.null_count().sum_horizontal().item() == 0


def test_same_seed_gives_byte_identical_files(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert write_reference(a, 3_000, seed=7) == "created"
    assert write_reference(b, 3_000, seed=7) == "created"
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    write_reference(b, 3_000, seed=8, force=True)
    assert a.read_bytes() != b.read_bytes()


def test_a_bigger_file_starts_with_the_rows_of_a_smaller_one():
    small = generate_reference(1_000, seed=3)
    big = generate_reference(60_000, seed=3)
    assert big.head(1_000).equals(small)


def test_existing_file_with_other_content_is_kept_without_force(tmp_path):
    path = tmp_path / "churn.csv"
    path.write_text("mine\n1\n")
    with pytest.raises(InputDataError, match="use --force"):
        write_reference(path, 100, seed=1)
    assert path.read_text() == "mine\n1\n"
    assert not list(tmp_path.glob(".*tmp"))
    assert write_reference(path, 100, seed=1, force=True) == "replaced"
    assert write_reference(path, 100, seed=1) == "unchanged"


def test_marginal_ranges(bank):
    credit = bank["Credit Score"]
    assert credit.min() >= 300 and credit.max() <= 850
    assert 550 < credit.mean() < 700
    income = bank["Income"].to_numpy()
    assert income.min() > 0
    assert np.mean(income) > np.median(income)  # right-skewed
    balance = bank["Balance"].to_numpy()
    assert 0.15 < np.mean(balance == 0) < 0.40  # a mass of zero balances
    assert np.mean(balance[balance > 0]) > np.median(balance[balance > 0])
    complaints = bank["NumComplaints"]
    assert complaints.min() == 0 and complaints.max() <= 9
    assert abs(complaints.mean() - complaints.var()) < 0.3  # Poisson-like
    assert set(bank["NumOfProducts"].unique()) == {1, 2, 3, 4}
    dob = bank["Date of Birth"].str.to_date()
    ages = (pl.lit(AS_OF) - dob).dt.total_days() / 365.25
    ages = bank.select(ages.alias("age"))["age"]
    assert ages.min() >= 18 and ages.max() <= 93
    assert set(bank["Customer Segment"].unique()) == {"Retail", "SME", "Corporate"}
    assert bank["Gender"].n_unique() == 2
    assert date.fromisoformat(bank["Date of Birth"][0])


def test_dependencies_are_realistic(bank):
    by_education = bank.group_by("Education Level").agg(pl.col("Income").median()).sort("Income")
    assert by_education["Education Level"][0] in ("High School", "Associate's")
    assert by_education["Education Level"][-1] in ("PhD", "Master's")
    loans = bank["Outstanding Loans"].to_numpy()
    income = bank["Income"].to_numpy()
    with_loans = loans > 0
    assert np.corrcoef(np.log(income[with_loans]), np.log(loans[with_loans]))[0, 1] > 0.3
    retired = bank.filter(pl.col("Occupation") == "Retired")
    assert retired.height > 0
    assert (retired["Date of Birth"].str.to_date() < date(1965, 1, 1)).mean() > 0.9


def test_churn_rate_near_twenty_percent(bank):
    assert 0.18 < bank["Churn Flag"].mean() < 0.22
    assert set(bank["Churn Flag"].unique()) == {0, 1}


def test_churn_depends_on_the_documented_drivers(bank):
    rate = bank.group_by("NumOfProducts").agg(pl.col("Churn Flag").mean()).sort("NumOfProducts")
    rates = dict(zip(rate["NumOfProducts"], rate["Churn Flag"], strict=True))
    assert rates[2] < rates[1] < rates[3]
    complaints = bank.group_by(pl.col("NumComplaints") >= 2).agg(pl.col("Churn Flag").mean())
    by = dict(zip(complaints["NumComplaints"], complaints["Churn Flag"], strict=True))
    assert by[True] > by[False] + 0.05


def test_gradient_boosting_auc_is_realistic(bank):
    """A later issue trains on this data: a GBM must reach a ROC-AUC around 0.75-0.85."""
    sklearn = pytest.importorskip("sklearn", reason="needs: scikit-learn (churnops[mlflow])")
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    frame = bank.with_columns(
        ((pl.lit(AS_OF) - pl.col("Date of Birth").str.to_date()).dt.total_days() / 365.25).alias("age")
    ).drop("CustomerId", "Surname", "First Name", "Date of Birth")
    features = frame.drop("Churn Flag").to_pandas()
    for name in features.columns:
        if features[name].dtype == object:
            features[name] = features[name].astype("category")
    target = frame["Churn Flag"].to_numpy()
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    model.fit(features[:20_000], target[:20_000])
    auc = roc_auc_score(target[20_000:], model.predict_proba(features[20_000:])[:, 1])
    assert sklearn is not None
    assert 0.75 <= auc <= 0.88


def test_rows_must_be_positive():
    with pytest.raises(ValueError):
        generate_reference(0)
