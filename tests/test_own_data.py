"""A user's own data, the first hour: nothing is misread in silence.

The bank defaults (target 'Churn Flag', id 'CustomerId'...) do not apply to another schema: the
absent ones are named in one notice, a likely label is suggested, a row-number column is left out
of drift, a target you name must exist, a file named in churnops.toml is read whole like the
flag's, and ``churnops init`` writes a configuration for the data. Real processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from churnops.monitor.profile import IDENTIFIER_REASON, profile_chunks
from churnops.monitor.settings import MonitorSettings

CHURNOPS = [sys.executable, "-m", "churnops"]


def churnops(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHURNOPS_DEBUG": ""}
    return subprocess.run([*CHURNOPS, *args], cwd=root, capture_output=True, text=True, env=env, timeout=300)


def make(rng: np.random.Generator, n: int, start: int, shift: float = 0.0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "row": np.arange(start, start + n),
            "signup": [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(n)],
            "age": rng.integers(18, 80, n),
            "spend": rng.gamma(2.0, 100.0 + shift, n),
            "plan": rng.choice(["basic", "pro", "max"], n),
            "churned": (rng.random(n) < 0.2).astype(int),
        }
    )


@pytest.fixture()
def own(tmp_path) -> Path:
    rng = np.random.default_rng(11)
    make(rng, 5000, 1).write_csv(tmp_path / "mine.csv")
    make(rng, 2000, 5001, shift=40.0).write_csv(tmp_path / "batch.csv")
    return tmp_path


def metrics(root: Path) -> dict:
    return json.loads((root / "monitoring" / "monitoring_metrics.json").read_text())


def read_alike(root: Path, column: str, *options: str) -> dict[str, dict]:
    """``churnops monitor`` of ref.csv against cur.csv, then of ref.parquet against cur.parquet
    (the same tables): the metrics of ``column`` from each, by format."""
    read = {}
    for kind in ("csv", "parquet"):
        done = churnops(root, "monitor", "-r", f"ref.{kind}", "-p", f"cur.{kind}", *options)
        assert done.returncode == 0, done.stderr
        read[kind] = metrics(root)["columns"][column]
    return read


def test_shuffled_identifiers_and_text_dates_raise_no_false_alarm(tmp_path):
    """A SQL extract without ORDER BY: customer ids in any order, dates as text; an unchanged batch."""
    rng = np.random.default_rng(5)

    def extract(n: int, first: int) -> pl.DataFrame:
        ids = np.arange(first, first + n)
        rng.shuffle(ids)
        days = rng.integers(0, 2000, n)
        return pl.DataFrame(
            {
                "customer_id": ids,
                "signup_date": [str(np.datetime64("2018-01-01") + int(d)) for d in days],
                "balance": rng.gamma(2.0, 5000.0, n).round(2),
                "country": rng.choice(["FR", "DE", "ES"], n),
                "churned": (rng.random(n) < 0.1).astype(int),
            }
        )

    extract(5000, 1).write_csv(tmp_path / "reference.csv")
    extract(2000, 100_000).write_csv(tmp_path / "batch.csv")
    args = ("monitor", "--reference", "reference.csv", "--current", "batch.csv")
    done = churnops(tmp_path, *args, "--target", "churned")
    assert done.returncode == 0, done.stderr
    assert "monitored as dates: signup_date" in done.stderr and "customer_id" in done.stderr
    document = metrics(tmp_path)
    assert document["dataset_drift"]["n_drifted"] == 0, document["dataset_drift"]
    assert "customer_id" not in document["columns"] and document["columns"]["signup_date"]["type"] == "datetime"
    assert not (tmp_path / "trigger.txt").exists() or document["verdict"]["trigger"]
    off = churnops(
        tmp_path, "monitor", "--reference", "reference.csv", "--current", "batch.csv", "--set", "columns.infer=false"
    )
    assert off.returncode == 0 and "monitored as dates" not in off.stderr
    assert metrics(tmp_path)["columns"]["signup_date"]["type"] == "categorical"


def test_a_sorted_identifier_is_an_identifier_checked_for_repeats_and_said_in_the_terminal(tmp_path):
    """An export sorted by customer_id: the column was taken for a row number - untested, but not
    checked for repeats either - so five repeated customers went unsaid (shuffled, they were
    found). Named like an identifier, it is an identifier whatever its order; a row number not so
    named stays a row number. The terminal names the repeats under the quality line, where it
    said only 'ok; 15 failed cells'."""
    rng = np.random.default_rng(12)
    n = 3000
    reference = pl.DataFrame(
        {
            "customer_id": np.arange(100_000, 100_000 + n),
            "CUSTOMERID": rng.permutation(n) + 7_000_000,
            "row": np.arange(n),
            "RowNumber": np.arange(1, n + 1),
            "line_no": np.arange(1, n + 1),
            "key_ratio": rng.random(n),
            "amount": rng.gamma(2.0, 50.0, n),
            "churned": rng.integers(0, 2, n),
        }
    )
    reference.write_csv(tmp_path / "reference.csv")
    batch = pl.concat([reference, reference.head(5)])  # five customers again (each row numbered anew)
    counters = pl.concat([pl.int_range(1, 1501, eager=True), pl.int_range(1, 1506, eager=True)])  # two exports
    batch.with_columns(RowNumber=counters, line_no=counters).write_csv(tmp_path / "batch.csv")
    done = churnops(tmp_path, "monitor", "-r", "reference.csv", "-p", "batch.csv", "--target", "churned")
    assert done.returncode == 0, done.stderr
    assert "identifiers, not tested for drift: customer_id, CUSTOMERID" in done.stderr, done.stderr
    assert "look like row numbers or identifiers: row, RowNumber, line_no " in done.stderr, done.stderr
    checks = {(c["check"], c["column"]): c["count"] for c in metrics(tmp_path)["data_quality"]["checks"]}
    assert checks[("duplicated_ids", "customer_id")] == checks[("duplicated_ids", "CUSTOMERID")] == 5, checks
    assert not {name for kind, name in checks if kind == "duplicated_ids"} - {"customer_id", "CUSTOMERID"}, checks
    assert metrics(tmp_path)["columns"]["key_ratio"]["type"] == "numerical"  # a measure, unique as floats are
    lines = done.stdout.splitlines()
    quality = next(i for i, line in enumerate(lines) if line.startswith("data quality"))
    assert lines[quality + 1] == ("  CUSTOMERID: 5 repeated identifiers; customer_id: 5 repeated identifiers"), lines


def test_the_quality_line_groups_counts_and_cuts_after_a_whole_example(tmp_path):
    """The terminal's quality line said '1500 repeated identifiers' where the report's numbers are
    grouped, and a message cut at 120 characters could end inside an example, its quote open."""
    n = 3000
    plans = [f"plan with a rather long name number {i:02d}" for i in range(4)]
    reference = pl.DataFrame(
        {
            "customer_id": np.arange(100_000, 100_000 + n),
            "plan": [plans[i % 4] for i in range(n)],
            "amount": np.linspace(10.0, 500.0, n),
        }
    )
    reference.write_csv(tmp_path / "reference.csv")
    unseen = [f"brand-new offer called {word}" for word in ("aurora", "borealis", "cascade", "delta", "ember")]
    batch = pl.concat([reference, reference.head(1500)]).with_columns(
        plan=pl.Series([unseen[i % 5] if i < 40 else plans[i % 4] for i in range(n + 1500)])
    )
    batch.write_csv(tmp_path / "batch.csv")
    done = churnops(tmp_path, "monitor", "-r", "reference.csv", "-p", "batch.csv")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    line = lines[next(i for i, text in enumerate(lines) if text.startswith("data quality")) + 1]
    assert "customer_id: 1,500 repeated identifiers" in line, line
    plan = line.split("plan: ", 1)[1].split("; ")[0]
    assert plan.startswith("40 values in 5 categories the reference never had: 'brand-new offer called aurora', "), plan
    assert plan.endswith("', \u2026"), plan  # cut after a whole example, not inside one
    assert len(plan) <= 120, plan
    checks = {(c["check"], c["column"]): c for c in metrics(tmp_path)["data_quality"]["checks"]}
    assert checks[("duplicated_ids", "customer_id")]["message"] == "1,500 repeated identifiers"
    assert len(checks) == 3 and "more in the report" not in line, (line, sorted(checks))
    amount = pl.Series([None, None, 9_999.0, 9_999.0, 9_999.0, *batch["amount"][5:]])  # 2 findings of one column
    batch.with_columns(amount=amount).write_csv(tmp_path / "batch.csv")
    done = churnops(tmp_path, "monitor", "-r", "reference.csv", "-p", "batch.csv")
    lines = done.stdout.splitlines()
    line = lines[next(i for i, text in enumerate(lines) if text.startswith("data quality")) + 1]
    checks = {(c["check"], c["column"]) for c in metrics(tmp_path)["data_quality"]["checks"]}
    assert {("missing", "amount"), ("out_of_reference_range", "amount")} <= checks, checks
    # what is left counts findings, a column's second one too (it counted columns: 'and 1 more' for 2)
    assert line.endswith(f" (and {len(checks) - 3} more in the report)"), (line, sorted(checks))


def test_monitor_and_init_agree_on_a_column_unique_in_the_first_rows_only(tmp_path):
    """monitor read the first 5,000 rows for identifiers and init 50,000: a code unique in the
    first rows only was an identifier for monitor - untested, its repeats reported - and numbers
    for init. monitor now confirms an identifier on init's rows, so both say numbers."""
    rng = np.random.default_rng(23)
    n = 20_000
    first = rng.choice(10**9, 5_000, replace=False)
    reference = pl.DataFrame(
        {
            "account_no": np.concatenate([first, rng.choice(first, n - 5_000)]),
            "customer_id": rng.permutation(n) + 1_000_000,
            "spend": rng.gamma(2.0, 80.0, n),
        }
    )
    reference.write_csv(tmp_path / "reference.csv")
    reference.sample(4_000, seed=1).write_csv(tmp_path / "batch.csv")
    reference.write_parquet(tmp_path / "reference.parquet")
    done = churnops(tmp_path, "init", "--reference", "reference.csv", "-o", "init.toml")
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "init.toml").read_text()
    assert "#   account_no: numerical" in text and 'id = ["customer_id"]' in text, text
    for reference_file in ("reference.csv", "reference.csv", "reference.parquet"):  # cold, then cached
        done = churnops(tmp_path, "monitor", "-r", reference_file, "-p", "batch.csv")
        assert done.returncode == 0, done.stderr
        assert "identifiers, not tested for drift: customer_id " in done.stderr, done.stderr
        document = metrics(tmp_path)
        assert document["columns"]["account_no"]["type"] == "numerical", reference_file
        assert not [c for c in document["data_quality"]["checks"] if c["column"] == "account_no"]
    import churnops as library

    result = library.monitor(reference, reference.sample(4_000, seed=1)).result
    assert {c.name: c.column_type for c in result.columns}["account_no"] == "numerical"


def _charges(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "customer_id": [f"C{i:07d}" for i in range(n)],
            "tenure": rng.integers(0, 73, n),
            "monthly_charges": (rng.normal(65, 20, n).clip(18, 120)).round(2),
            "contract": rng.choice(["Month-to-month", "One year", "Two year"], n),
        }
    )


def test_one_typo_in_a_column_of_amounts_leaves_it_numbers(tmp_path):
    """One '12,5' among 22,000 amounts such as 65.23 made the column 8,000 categories, said
    nowhere (the sample found it free text): a batch from the same data raised an ALERT with
    'new categories'. A column of numbers with decimals but for a few cells is tested as numbers,
    its typos counted as not numbers, and a NOTICE says how to test it as categories; init
    writes it in columns.numerical."""
    table = _charges(30_000, 31)
    reference = table.head(22_000).with_columns(pl.col("monthly_charges").cast(pl.String))
    reference = reference.with_columns(
        monthly_charges=pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("12,5")).otherwise("monthly_charges")
    )
    reference.write_csv(tmp_path / "reference.csv")
    table.tail(8_000).write_csv(tmp_path / "batch.csv")
    done = churnops(tmp_path, "monitor", "-r", "reference.csv", "-p", "batch.csv")
    assert done.returncode == 0 and "ALERT" not in done.stdout, done.stdout + done.stderr
    assert (
        "NOTICE: numbers but for a few cells are tested as numbers (those cells count as not numbers): "
        "monthly_charges (1 of 10,000 cells in the first rows is not a number, e.g. '12,5'); to test them as "
        "categories instead: --set \"columns.categorical=['monthly_charges']\""
    ) in done.stderr, done.stderr
    column = metrics(tmp_path)["columns"]["monthly_charges"]
    assert column["type"] == "numerical" and not column["drift_detected"], column
    assert column["reference"]["unparsable"] == 1
    done = churnops(tmp_path, "init", "-r", "reference.csv", "-p", "batch.csv")
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "churnops.toml").read_text()
    assert "#   monthly_charges: numerical (numbers but for 1 cell that is not a number, e.g. '12,5')" in text, text
    assert 'numerical = ["monthly_charges"]' in text, text
    done = churnops(tmp_path, "monitor")
    assert done.returncode == 0 and "ALERT" not in done.stdout, done.stdout + done.stderr
    assert metrics(tmp_path)["columns"]["monthly_charges"]["type"] == "numerical"
    codes = table.head(3_000).with_columns(tenure=pl.col("tenure").cast(pl.String))  # whole numbers: maybe codes
    codes.with_columns(tenure=pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("12,5")).otherwise("tenure")).write_csv(
        tmp_path / "codes.csv"
    )
    (tmp_path / "churnops.toml").unlink()
    done = churnops(tmp_path, "monitor", "-r", "codes.csv", "-p", "batch.csv")
    assert "numbers but for a few cells are tested as categories: tenure" in done.stderr, done.stderr
    amounts = codes.with_columns(tenure=(pl.col("monthly_charges") * 3).round(0).cast(pl.Int64).cast(pl.String))
    amounts.with_columns(
        tenure=pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("12,5")).otherwise("tenure")
    ).write_csv(tmp_path / "amounts.csv")  # whole numbers, but more values than codes have: a measure
    done = churnops(tmp_path, "monitor", "-r", "amounts.csv", "-p", "batch.csv")
    assert "numbers but for a few cells are tested as numbers (those cells count as not numbers): tenure" in done.stderr


def test_a_batch_of_decimal_commas_is_told_how_to_be_read(tmp_path):
    """A batch exported with ';' and decimal commas against a reference with points: its amounts
    were '100% missing or unusable' with no word of the setting that reads them. A single typo
    ('12,5' among numbers) gets no such advice."""
    table = _charges(6_000, 35)
    table.head(4_000).write_csv(tmp_path / "reference.csv")
    batch = table.tail(2_000).with_columns(pl.col("monthly_charges").cast(pl.String).str.replace(r"\.", ","))
    batch.write_csv(tmp_path / "batch.csv", separator=";")
    args = ["monitor", "-r", "reference.csv", "-p", "batch.csv", "--set", "data.current.separator=';'"]
    done = churnops(tmp_path, *args)
    advice = "; decimal commas: set data.current.decimal = ','"
    assert f"monthly_charges: 100% of the values are missing or unusable (reference: 0%){advice}" in done.stdout
    # it counts as drifted, named as unread: not as if its amounts had changed
    assert "drifted (score 0.333 > 0.1): no usable value in the batch: monthly_charges\n" in done.stdout, done.stdout
    assert "- no usable value in the batch: monthly_charges" in done.stdout, done.stdout
    trigger = (tmp_path / "trigger.txt").read_text()
    assert "  - monthly_charges: not tested, no usable value in the batch\n" in trigger and "none nan" not in trigger
    page = (tmp_path / "monitoring" / "monitoring_report.html").read_text()
    assert ": no usable value in the batch (every cell missing or unreadable, counted as drifted): <strong>" in page
    done = churnops(tmp_path, *args, "--set", "data.current.decimal=','")  # as advised
    assert done.returncode == 0 and "monthly_charges" not in done.stdout, done.stdout
    typo = table.tail(2_000).with_columns(pl.col("monthly_charges").cast(pl.String))
    typo.with_columns(
        monthly_charges=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("12,5")).otherwise("monthly_charges")
    ).write_csv(tmp_path / "batch.csv", separator=";")
    done = churnops(tmp_path, *args)
    assert "monthly_charges: 1 value is not a number, e.g. '12,5'" in done.stdout and advice not in done.stdout


def test_decimal_commas_before_three_decimals_are_not_read_as_thousands(tmp_path):
    """A batch of decimal commas whose amounts have three decimals: its '2,738' read as 2738 (a
    comma before three digits groups thousands), only its '0,512' failed, no advice showed, and the
    amounts drifted a thousandfold. Among cells written with decimal commas, '2,738' is not read
    as thousands: the column is unusable as written, with the advice that reads it."""
    rng = np.random.default_rng(53)
    n = 6_000
    table = pl.DataFrame({"premium_k": [f"{v:.3f}" for v in rng.gamma(2.0, 3.0, n)], "plan": rng.choice(["a", "b"], n)})
    table.head(4_000).write_csv(tmp_path / "reference.csv")
    batch = table.tail(2_000).with_columns(pl.col("premium_k").str.replace(r"\.", ","))
    batch.write_csv(tmp_path / "batch.csv", separator=";")
    args = ["monitor", "-r", "reference.csv", "-p", "batch.csv", "--set", "data.current.separator=';'"]
    done = churnops(tmp_path, *args)
    advice = "; decimal commas: set data.current.decimal = ','"
    assert f"premium_k: 100% of the values are missing or unusable (reference: 0%){advice}" in done.stdout, done.stdout
    assert metrics(tmp_path)["columns"]["premium_k"]["current"]["unparsable"] == 2_000
    done = churnops(tmp_path, *args, "--set", "data.current.decimal=','")  # as advised
    assert done.returncode == 0 and "premium_k" not in done.stdout, done.stdout
    assert not metrics(tmp_path)["columns"]["premium_k"]["drift_detected"]
    # whole numbers grouped by thousands with one typo stay thousands
    whole = pl.DataFrame({"premium_k": [f"{v:,}" for v in rng.integers(500, 40_000, n)], "plan": table["plan"]})
    whole.head(4_000).write_csv(tmp_path / "reference.csv")
    whole.tail(2_000).with_columns(
        premium_k=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("12,5")).otherwise("premium_k")
    ).write_csv(tmp_path / "batch.csv", separator=";")
    done = churnops(tmp_path, *args)
    assert "premium_k: 1 value is not a number, e.g. '12,5'" in done.stdout and advice not in done.stdout, done.stdout
    column = metrics(tmp_path)["columns"]["premium_k"]
    assert column["type"] == "numerical" and column["current"]["unparsable"] == 1 and not column["drift_detected"]


def test_categories_that_differ_by_spaces_look_different_in_the_report(tmp_path):
    """'  Two year ' and 'Two year' are two categories; the page showed both as "Two year" (HTML
    folds spaces). Its tables and charts show the hidden spaces as '␣'; the metrics keep the text."""
    table = _charges(6_000, 37)
    table.head(4_000).write_csv(tmp_path / "reference.csv")
    batch = table.tail(2_000).with_columns(
        contract=pl.when(pl.int_range(pl.len()) < 30).then(pl.lit("  Two year ")).otherwise("contract")
    )
    batch.write_csv(tmp_path / "batch.csv")
    done = churnops(tmp_path, "monitor", "-r", "reference.csv", "-p", "batch.csv")
    assert done.returncode == 0, done.stderr
    labels = metrics(tmp_path)["columns"]["contract"]["distribution"]["labels"]
    assert "  Two year " in labels and "Two year" in labels, labels
    page = (tmp_path / "monitoring" / "monitoring_report.html").read_text()
    assert ">\u2423\u2423Two year\u2423 \u2605</text>" in page, "the padded label, spaces shown (new: starred)"
    assert "title>contract = \u2423\u2423Two year\u2423: reference" in page  # the chart's tooltip
    assert "td.detail { white-space: pre-wrap; }" in (tmp_path / "monitoring" / "report.css").read_text()


def test_a_batch_of_dates_written_the_other_way_round_is_said(tmp_path):
    """A reference of day-first dates and a batch written month first: 60% 'unusable', and the
    other 40% (days of 12 or less) read with day and month swapped, said nowhere."""
    rng = np.random.default_rng(39)
    days = np.datetime64("2018-01-01") + rng.integers(0, 2000, 8_000).astype("timedelta64[D]")
    table = _charges(8_000, 39)
    written = [(str(d)[8:10], str(d)[5:7], str(d)[:4]) for d in days]
    table.head(6_000).with_columns(signup=pl.Series([f"{d}/{m}/{y}" for d, m, y in written[:6_000]])).write_csv(
        tmp_path / "reference.csv"
    )
    table.tail(2_000).with_columns(signup=pl.Series([f"{m}/{d}/{y}" for d, m, y in written[6_000:]])).write_csv(
        tmp_path / "batch.csv"
    )
    done = churnops(tmp_path, "monitor", "-r", "reference.csv", "-p", "batch.csv")
    checks = metrics(tmp_path)["data_quality"]["checks"]
    said = {c["check"]: c["message"] for c in checks if c["column"] == "signup"}
    for check in ("mostly_unusable", "unparsable"):
        assert "; written month first? (" in said[check] and "; the reference: day first)" in said[check], said
    assert "signup: " in done.stdout and "written month first?" in done.stdout, done.stdout


@pytest.mark.parametrize(
    "written, at",
    [
        ("{:.2f}", 6_999),  # beyond the first 5,000 rows, within the 10,000 the reader types a column from
        ("${:.2f}", 2),
        ("{:.1f}%", 2),
        ("{:.3e}", 2),
        ("${:,.2f}", 20_000),  # after the rows the columns are classified from: read as numbers all the same
        ("{:.1f}%", 20_000),
    ],
)
def test_a_typo_among_amounts_anywhere_leaves_them_numbers(tmp_path, written, at):
    """A typo in rows 5,001-10,000 (which the reader sees, the inference did not), or among
    amounts written with a currency or percent sign or in scientific notation, left the column
    thousands of categories, said nowhere, and a batch of the same data raised an ALERT."""
    rng = np.random.default_rng(41)
    values = [written.format(x) for x in rng.gamma(2.0, 30.0, 30_000)]
    values[at] = "12,5"
    frame = pl.DataFrame({"customer_id": np.arange(30_000) + 10**6, "balance": values})
    frame.head(22_000).write_csv(tmp_path / "reference.csv")
    batch = pl.DataFrame({"customer_id": np.arange(5_000) + 2 * 10**6, "balance": values[22_000:27_000]})
    batch.with_columns(balance=pl.col("balance").str.replace("12,5", "1", literal=True)).write_csv(
        tmp_path / "batch.csv"
    )
    done = churnops(tmp_path, "monitor", "-r", "reference.csv", "-p", "batch.csv")
    assert done.returncode == 0 and "ALERT" not in done.stdout, done.stdout + done.stderr
    column = metrics(tmp_path)["columns"]["balance"]
    assert column["type"] == "numerical" and column["reference"]["unparsable"] == 1, column
    done = churnops(tmp_path, "init", "-r", "reference.csv", "-p", "batch.csv")
    assert 'numerical = ["balance"]' in (tmp_path / "churnops.toml").read_text() or at >= 5_000, done.stdout


@pytest.mark.parametrize("typo", [None, "12,5"])
def test_amounts_a_parquet_file_holds_as_text_are_tested_as_numbers(tmp_path, typo):
    """pandas saves a column of amounts with one typo as text: from Parquet it was thousands of
    categories, and a batch of the same data raised an ALERT - where the same data from CSV files
    raised none. Such a column is tested as numbers, as from CSV, with a NOTICE and the setting that
    tests it as categories; init lists it as numerical. Codes and phone numbers held as text are not."""
    rng = np.random.default_rng(45)
    values = [f"{x:.2f}" for x in rng.gamma(2.0, 30.0, 27_000)]
    if typo:
        values[2] = typo
    codes = [str(v) for v in rng.integers(1, 40, 27_000)]
    zeros = [f"{v:06d}" for v in rng.integers(0, 10**5, 27_000)]
    phones = [str(v) for v in rng.integers(2 * 10**9, 10**10, 27_000)]  # whole, most distinct: free text
    frame = pl.DataFrame(
        {"balance": values, "code": codes, "zip": zeros, "phone": phones, "spend": rng.gamma(2.0, 80.0, 27_000)}
    )
    frame.head(22_000).write_parquet(tmp_path / "reference.parquet")
    frame.tail(5_000).write_parquet(tmp_path / "batch.parquet")
    args = ["monitor", "-r", "reference.parquet", "-p", "batch.parquet"]
    done = churnops(tmp_path, *args)
    assert done.returncode == 0 and "ALERT" not in done.stdout, done.stdout + done.stderr
    said = [line for line in done.stderr.splitlines() if "numbers a Parquet file holds as text" in line]
    assert len(said) == 1 and ": balance (" in said[0] and "code" not in said[0] and "zip" not in said[0], said
    assert "phone" not in said[0] and "tested as numbers, as from a CSV file" in said[0], said
    assert "to test them as categories instead: --set \"columns.categorical=['balance']\"" in said[0], said
    column = metrics(tmp_path)["columns"]["balance"]
    assert column["type"] == "numerical" and column["reference"]["unparsable"] == (1 if typo else 0), column
    assert metrics(tmp_path)["columns"]["code"]["type"] == "categorical"
    done = churnops(tmp_path, *args, "--set", "columns.categorical=['balance']")  # as said: the choice undone
    assert metrics(tmp_path)["columns"]["balance"]["type"] == "categorical", done.stderr
    # init lists it as numerical, and says so
    done = churnops(tmp_path, "init", "-r", "reference.parquet", "-p", "batch.parquet")
    said = [line for line in done.stdout.splitlines() if "holds as text" in line]
    assert len(said) == 1 and "written as numerical" in said[0] and ": balance;" in said[0], done.stdout
    text = (tmp_path / "churnops.toml").read_text()
    assert '\nnumerical = ["balance"]' in text, text
    done = churnops(tmp_path, "monitor")
    assert done.returncode == 0 and "ALERT" not in done.stdout, done.stdout + done.stderr
    assert metrics(tmp_path)["columns"]["balance"]["type"] == "numerical"


def test_init_and_monitor_decide_numbers_with_typos_on_the_same_rows(tmp_path):
    """monitor classified a column from its first 10,000 rows and init from 50,000: whole numbers
    of 79 values there (codes, tested as categories) but 299 later were numbers for init; phone
    numbers with a few written with dashes were numbers for both (free text before)."""
    rng = np.random.default_rng(47)
    n = 30_000
    score = [str(v) for v in np.concatenate([rng.integers(1, 80, 10_000), rng.integers(1, 300, n - 10_000)])]
    score[3] = "4+"
    phones = [str(v) for v in rng.integers(2 * 10**9, 10**10, n)]
    for i in rng.choice(n, 300, replace=False):
        phones[i] = f"{phones[i][:3]}-{phones[i][3:6]}-{phones[i][6:]}"
    frame = pl.DataFrame({"score": score, "phone": phones, "spend": rng.gamma(2.0, 80.0, n)})
    frame.write_csv(tmp_path / "reference.csv")
    frame.sample(5_000, seed=1).write_csv(tmp_path / "batch.csv")
    done = churnops(tmp_path, "init", "-r", "reference.csv", "-p", "batch.csv", "-o", "init.toml")
    text = (tmp_path / "init.toml").read_text()
    assert "#   score: categorical" in text and "#   phone: text" in text and '\nnumerical = ["' not in text, text
    done = churnops(tmp_path, "monitor", "-r", "reference.csv", "-p", "batch.csv")
    assert "tested as categories: score" in done.stderr and "tested as numbers" not in done.stderr, done.stderr
    assert metrics(tmp_path)["columns"]["score"]["type"] == "categorical"
    assert "phone" not in metrics(tmp_path)["columns"]


def test_an_identifier_is_decided_on_inits_rows_either_way(tmp_path):
    """4-5% of empty cells, more of them in the first rows (over 5%): init (its 50,000 rows) said
    identifier, monitor tested the column as numbers, and a batch of new customers raised an ALERT."""
    rng = np.random.default_rng(43)
    ids = (np.arange(30_000) + 1).astype(float)
    ids[rng.choice(30_000, 1_200, replace=False)] = np.nan  # 4%, and about 200 more in the first rows
    ids[:600] = np.where(np.arange(600) % 3 == 0, np.nan, ids[:600])  # more empty cells in the first rows
    frame = pl.DataFrame({"customer_id": ids, "spend": rng.gamma(2.0, 80.0, 30_000)}).with_columns(
        pl.col("customer_id").fill_nan(None).cast(pl.Int64)
    )
    frame.write_csv(tmp_path / "reference.csv")
    pl.DataFrame({"customer_id": np.arange(3_000) + 900_000, "spend": rng.gamma(2.0, 80.0, 3_000)}).write_csv(
        tmp_path / "batch.csv"
    )
    assert frame.head(10_000)["customer_id"].null_count() > 500  # more than 5% in the first rows
    done = churnops(tmp_path, "monitor", "-r", "reference.csv", "-p", "batch.csv")
    assert done.returncode == 0 and "ALERT" not in done.stdout, done.stdout
    assert "identifiers, not tested for drift: customer_id" in done.stderr, done.stderr
    done = churnops(tmp_path, "init", "-r", "reference.csv")
    assert 'id = ["customer_id"]' in (tmp_path / "churnops.toml").read_text(), done.stdout


def test_one_repeat_in_the_reference_leaves_an_identifier_an_identifier(tmp_path):
    """A customer twice in the reference made customer_id 'free text' - untested, and its
    repeats in the batch no longer checked. A few repeats (at most 1%) leave it an identifier."""
    table = _charges(30_000, 33)
    reference = table.head(22_000).with_columns(
        customer_id=pl.when(pl.int_range(pl.len()) == 1).then(pl.lit("C0000000")).otherwise("customer_id")
    )
    reference.write_csv(tmp_path / "reference.csv")
    batch = table.tail(8_000)
    pl.concat([batch, batch.head(11).with_columns(tenure=pl.lit(5, dtype=pl.Int64))]).write_csv(tmp_path / "batch.csv")
    done = churnops(tmp_path, "monitor", "-r", "reference.csv", "-p", "batch.csv")
    assert done.returncode == 0, done.stderr
    assert "free text" not in done.stderr, done.stderr
    checks = {(c["check"], c["column"]): c["count"] for c in metrics(tmp_path)["data_quality"]["checks"]}
    assert checks[("duplicated_ids", "customer_id")] == 11, checks
    done = churnops(tmp_path, "init", "-r", "reference.csv")
    assert 'id = ["customer_id"]' in (tmp_path / "churnops.toml").read_text(), done.stderr


def test_an_identifier_with_a_few_empty_cells_is_still_an_identifier(tmp_path):
    """Two empty cells among 3,000 member ids made the column no identifier: it was tested as
    numbers, and a batch of new members raised a false alarm and wrote trigger.txt. A few empty
    cells (at most 5%) leave it an identifier; their rows are said as rows without one."""
    rng = np.random.default_rng(14)
    n = 3000

    def members(first: int) -> pl.DataFrame:
        ids = pl.Series("member_id", rng.permutation(n) + first, dtype=pl.Int64).scatter([3, 9], None)
        return pl.DataFrame({"member_id": ids, "amount": rng.gamma(2.0, 50.0, n), "churned": rng.integers(0, 2, n)})

    members(100_000).write_csv(tmp_path / "reference.csv")
    members(900_000).write_csv(tmp_path / "batch.csv")  # other members, the same amounts
    done = churnops(tmp_path, "monitor", "-r", "reference.csv", "-p", "batch.csv", "--target", "churned")
    assert done.returncode == 0, done.stderr
    assert "identifiers, not tested for drift: member_id" in done.stderr, done.stderr
    document = metrics(tmp_path)
    assert "member_id" not in document["columns"] and not document["dataset_drift"]["detected"], document["columns"]
    assert not (tmp_path / "trigger.txt").exists()
    checks = {c["check"]: c for c in document["data_quality"]["checks"]}
    assert checks["missing_ids"]["count"] == 2, checks


def test_numbers_but_for_a_cell_with_digits_are_said_to_be_tested_as_categories(tmp_path):
    """One '12,5' among 3,000 whole numbers of at most 100 values left the column text, tested as
    101 categories, with nothing said (one more column drifted on a typo). It stays categories - as
    Evidently reads it, and rightly for codes - and a NOTICE says so with the setting that tests it
    as numbers, which then counts the cell as not a number."""
    rng = np.random.default_rng(13)
    n = 3000
    tenure = [str(v) for v in rng.integers(0, 100, n)]
    tenure[17] = "12,5"
    dept = [f"{v:02d}" for v in rng.integers(1, 20, n)]  # departments, Corsica's written 2A and 2B
    dept[:11] = ["2A", "2B"] * 5 + ["2A"]
    mixed = [str(v) for v in rng.integers(0, 50, n)]
    mixed[:4] = ["?", "N/A", "12,5", "?"]
    reference = pl.DataFrame(
        {
            "tenure": tenure,
            "dept": dept,
            "mixed": mixed,
            "amount": rng.gamma(2.0, 50.0, n),
            "churned": rng.integers(0, 2, n),
        }
    )
    reference.write_csv(tmp_path / "reference.csv")
    reference.with_columns(pl.col("tenure").str.replace("12,5", "1,5")).write_csv(tmp_path / "batch.csv")
    args = ("monitor", "-r", "reference.csv", "-p", "batch.csv", "--target", "churned", "--no-cache")
    done = churnops(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    notice = (
        "NOTICE: numbers but for a few cells are tested as categories: tenure (1 of 3,000 cells in the first rows is "
        "not a number, e.g. '12,5'), mixed (3 of 2,999 cells in the first rows are not numbers, e.g. '12,5'); to "
        "test them as numbers (those cells then count as not numbers): "
        "--set \"columns.numerical=['tenure', 'mixed']\""
    )
    assert notice in done.stderr, done.stderr  # not dept: codes
    assert metrics(tmp_path)["columns"]["tenure"]["type"] == "categorical"
    done = churnops(tmp_path, *args, "--set", "columns.numerical=['tenure', 'mixed']")  # as advised
    assert done.returncode == 0 and "tested as categories" not in done.stderr, done.stderr
    column = metrics(tmp_path)["columns"]["tenure"]
    assert column["type"] == "numerical" and column["reference"]["unparsable"] == 1
    assert "tenure: 1 value is not a number, e.g. '1,5'" in done.stdout, done.stdout


def test_a_data_file_given_as_the_configuration_is_named_as_such(tmp_path):
    """``-c batch.csv`` (``-c`` taken for ``--current``) said 'not valid TOML: Expected '=' after a
    key'; it says what -c takes and where the batch goes."""
    (tmp_path / "batch.csv").write_text("a,b\n1,2\n")
    done = churnops(tmp_path, "monitor", "-r", "batch.csv", "-c", "batch.csv")
    assert done.returncode == 2, done.stderr
    assert "--config (-c) takes a churnops.toml, and this looks like a data file" in done.stderr
    assert "--current or -p" in done.stderr and "TOML" not in done.stderr.replace("churnops.toml", "")


@pytest.mark.parametrize(
    "name, content, said",
    [
        ("batch.dat", b"id;tenure\n1;12\n2;5\n", "a table of data (cells separated by semicolons)"),
        ("export", b"id\ttenure\tplan\n1\t12\ta\n", "a table of data (cells separated by tabs)"),
        ("survey.sav", b"$FL2@(#) SPSS DATA FILE\x00\x00\xff\xfe\x02", "a binary file, not text"),
    ],
)
def test_data_of_any_ending_given_as_the_configuration_is_named_as_such(tmp_path, name, content, said):
    """A table or a binary file whose ending is not a data file's: named by what it holds, not
    by the TOML parser's 'Expected '=' after a key' or 'not UTF-8 text'."""
    (tmp_path / name).write_bytes(content)
    done = churnops(tmp_path, "monitor", "-c", name)
    assert done.returncode == 2, done.stderr
    assert f"--config (-c) takes a churnops.toml, and this looks like {said}" in done.stderr, done.stderr
    assert "not valid TOML" not in done.stderr and "UTF-8" not in done.stderr


def test_a_broken_configuration_is_still_named_as_toml(tmp_path):
    (tmp_path / "churnops.toml").write_text("[thresholds]\ndataset_drift = 0.5, 0.6\n")
    done = churnops(tmp_path, "monitor", "-c", "churnops.toml")
    assert done.returncode == 2 and "not valid TOML" in done.stderr, done.stderr


def test_the_reports_command_repeats_the_run_with_its_options(own):
    """The report's 'Reproduce this run' named the two files only: run again, it dropped the
    target (tested as a feature), the --set options (a Latin-1 file failed) and the configuration
    file found in the folder. It names them, with secrets hidden, and repeats the run."""
    import html
    import re
    import shlex

    (own / "churnops.toml").write_text("[thresholds]\ndataset_drift = 0.5\n")
    args = ["monitor", "--reference", "mine.csv", "--current", "batch.csv", "-t", "churned"]
    args += ["--set", "drift.num_threshold=0.2", "--set", "model.tracking_uri=http://svc:Hunter22pw@127.0.0.1:9/x"]
    done = churnops(own, *args)
    assert done.returncode == 0, done.stderr
    assert "config:  churnops.toml" in done.stdout.splitlines(), done.stdout  # found in the folder: said
    first = metrics(own)
    page = (own / "monitoring" / "monitoring_report.html").read_text()
    shown = html.unescape(re.search(r"Reproduce this run: <code>(.*?)</code>", page).group(1).replace("<wbr>", ""))
    leaks = [page[max(0, m.start() - 200) : m.end()] for m in re.finditer("Hunter22pw", page)]
    assert not leaks and "--config churnops.toml" in shown and "-t " not in shown, (leaks, shown)
    assert "--target churned" in shown and "--set drift.num_threshold=0.2" in shown, shown
    words = shlex.split(shown)
    assert words[:2] == ["churnops", "monitor"]
    done = churnops(own, *words[1:])
    assert done.returncode == 0, done.stderr
    again = metrics(own)
    assert again["target_drift"]["column"] == first["target_drift"]["column"] == "churned"
    assert {k: v["drift_score"] for k, v in again["columns"].items()} == {
        k: v["drift_score"] for k, v in first["columns"].items()
    }
    assert again["dataset_drift"] == first["dataset_drift"]
    (own / "churnops.toml").unlink()
    assert "config:" not in churnops(own, *args).stdout


def test_the_bank_defaults_are_named_once_and_a_label_is_suggested(own):
    done = churnops(own, "monitor", "--reference", "mine.csv", "--current", "batch.csv")
    assert done.returncode == 0, done.stderr
    notices = [line for line in done.stderr.splitlines() if line.startswith("NOTICE")]
    assert len(notices) == 4, done.stderr
    assert "monitored as dates: signup" in notices[0] and "columns.infer" in notices[0]
    assert (
        "target 'Churn Flag'" in notices[1]
        and "id 'CustomerId'" in notices[1]
        and "domain 'Credit Score'" in notices[1]
    )
    assert "--target 'churned'" in notices[2]
    assert "row" in notices[3] and "row numbers or identifiers" in notices[3]
    document = metrics(own)
    assert document["columns"]["signup"]["type"] == "datetime"
    assert "row" not in document["columns"]
    assert {s["name"]: s["reason"] for s in document["skipped_columns"]}["row"] == IDENTIFIER_REASON
    assert "target: none" in done.stdout  # said, not silent


def test_target_flag_tests_the_label_and_not_as_a_feature(own):
    done = churnops(own, "monitor", "--reference", "mine.csv", "--current", "batch.csv", "--target", "churned")
    assert done.returncode == 0, done.stderr
    document = metrics(own)
    assert "churned" not in document["columns"] and document["target_drift"]["column"] == "churned"
    assert document["dataset_drift"]["n_columns"] == 4  # signup, age, spend, plan
    assert "target churned:" in done.stdout


def test_a_target_that_is_not_there_is_an_error_naming_the_columns(own):
    done = churnops(own, "monitor", "--reference", "mine.csv", "--current", "batch.csv", "--target", "chruned")
    assert done.returncode == 2
    said = done.stderr.strip()
    assert said.startswith("error: columns.target: 'chruned' (did you mean 'churned'?) is not a column of mine.csv")
    assert "(its columns: row, signup, age, spend, plan, churned)" in said, said
    done = churnops(own, "monitor", "--reference", "mine.csv", "--current", "batch.csv", "--target", "Churned")
    assert "error: columns.target: 'Churned' (did you mean 'churned'?)" in done.stderr, done.stderr


def test_your_reference_without_a_batch_asks_for_the_batch(own):
    """-r without -p said "no production batch yet: run 'churnops generate' first", the embedded
    demo's step, to a user with their own files."""
    done = churnops(own, "monitor", "--reference", "mine.csv")
    assert done.returncode == 2 and "generate" not in done.stderr, done.stderr
    assert done.stderr.startswith("error: no batch to check: give it with --current FILE (or -p FILE;"), done.stderr


def test_an_identifier_that_is_not_there_is_an_error_naming_the_columns(own):
    done = churnops(own, "monitor", "--reference", "mine.csv", "--current", "batch.csv", "--id", "custmer")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: columns.id: 'custmer' is not a column of mine.csv")
    assert "churned" in done.stderr


def test_a_file_named_in_the_configuration_is_read_whole_like_the_flag(own):
    (own / "churnops.toml").write_text('[paths]\nreference = "mine.csv"\nproduction = "batch.csv"\n')
    done = churnops(own, "monitor")
    assert done.returncode == 0, done.stderr
    assert metrics(own)["reference"]["rows"] == 5000 and metrics(own)["reference"]["row_range"] is None
    (own / "churnops.toml").write_text(
        '[paths]\nreference = "mine.csv"\nproduction = "batch.csv"\n[data]\nreference_rows = [0, 20000]\n'
    )
    done = churnops(own, "monitor")
    assert done.returncode == 2
    assert 'data.reference_rows = "all"' in done.stderr and "only 5000 data rows" in done.stderr


def test_init_writes_a_configuration_that_monitor_uses(own):
    done = churnops(own, "init", "--reference", "mine.csv", "--current", "batch.csv")
    assert done.returncode == 0, done.stderr
    text = (own / "churnops.toml").read_text()
    assert 'target = "churned"' in text and "id = []" in text and 'datetime = ["signup"]' in text
    assert 'ignored = ["row"]' in text  # a row number: not an identifier checked for repeats
    assert "# " in text  # commented for the user to edit
    monitor = churnops(own, "monitor")
    assert monitor.returncode == 0, monitor.stderr
    assert "NOTICE" not in monitor.stderr  # nothing left unexplained
    document = metrics(own)
    assert document["target_drift"]["column"] == "churned"
    assert document["columns"]["signup"]["type"] == "datetime"
    again = churnops(own, "init", "--reference", "mine.csv")
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr


def test_init_leaves_row_numbers_out_as_monitor_does_without_it(tmp_path):
    """init wrote a row number into columns.id, so with its configuration a batch joined from two
    exports (each counting from 1) had hundreds of 'repeated identifiers' that a run without the
    configuration did not have. A row number is now left out (columns.ignored); a column named
    like an identifier stays an identifier, checked for repeats either way."""
    rng = np.random.default_rng(21)
    n = 4000
    reference = pl.DataFrame(
        {"RowNumber": np.arange(1, n + 1), "customer_id": rng.permutation(n) + 50_000, "spend": rng.gamma(2.0, 80.0, n)}
    )
    reference.write_csv(tmp_path / "reference.csv")
    batch = pl.concat([reference.head(600), reference.slice(600, 700)]).with_columns(
        RowNumber=pl.concat([pl.int_range(1, 601, eager=True), pl.int_range(1, 701, eager=True)])
    )
    batch = pl.concat([batch, batch.head(3).with_columns(RowNumber=pl.Series([701, 702, 703]))])  # 3 customers again
    batch.write_csv(tmp_path / "batch.csv")
    done = churnops(tmp_path, "init", "--reference", "reference.csv", "--current", "batch.csv")
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "churnops.toml").read_text()
    assert 'id = ["customer_id"]' in text and 'ignored = ["RowNumber"]' in text, text
    found = {}
    for configured in (True, False):
        if not configured:
            (tmp_path / "churnops.toml").unlink()
        done = churnops(tmp_path, "monitor", "-r", "reference.csv", "-p", "batch.csv")
        assert done.returncode == 0, done.stderr
        checks = metrics(tmp_path)["data_quality"]["checks"]
        found[configured] = {(c["check"], c["column"]): c["count"] for c in checks if c["check"] == "duplicated_ids"}
    assert found[True] == found[False] == {("duplicated_ids", "customer_id"): 3}, found


def test_init_says_what_the_batch_lacks(own):
    """init -p took a batch without one of the reference's columns and said 'next: run churnops
    monitor', which then stopped on it."""
    pl.read_csv(own / "batch.csv").drop("plan").with_columns(promo=pl.lit(1)).write_csv(own / "less.csv")
    done = churnops(own, "init", "--reference", "mine.csv", "--current", "less.csv")
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stdout.splitlines() if line.startswith("NOTICE")]
    assert said == [
        "NOTICE: less.csv lacks the column plan of mine.csv: monitor stops on a batch without it - give one with it, "
        "or list it in columns.ignored",
        "NOTICE: less.csv has a column mine.csv lacks, never tested: promo",
    ], done.stdout
    done = churnops(own, "init", "--reference", "mine.csv", "--current", "batch.csv", "-o", "two.toml")
    assert "NOTICE" not in done.stdout, done.stdout


def test_an_encoding_set_for_a_latin1_batch_does_not_garble_a_utf8_reference(tmp_path):
    """A cp1252 batch against a UTF-8 reference: the error said 'set data.encoding', which reads
    both files so - the reference's 'café' became 'cafÃ©', a new category that drifted, said
    nowhere. The error names the setting of one file, and UTF-8 text read as cp1252 is refused."""
    rng = np.random.default_rng(59)
    table = pl.DataFrame({"spend": rng.gamma(2.0, 40.0, 4_000), "note": rng.choice(["café", "thé", "eau"], 4_000)})
    table.head(3_000).write_csv(tmp_path / "ref.csv")
    (tmp_path / "batch.csv").write_bytes(table.tail(1_000).write_csv().encode("cp1252"))
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "batch.csv")
    assert done.returncode == 2 and "data.current.encoding for one" in done.stderr, done.stderr
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "batch.csv", "--set", "data.encoding=cp1252")
    assert done.returncode == 2, done.stdout
    assert "ref.csv: this file is UTF-8 text, not cp1252: read as cp1252, its 'é' would be 'Ã©'" in done.stderr
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "batch.csv", "--set", "data.current.encoding=cp1252")
    assert done.returncode == 0 and done.stdout.startswith("OK"), done.stdout + done.stderr
    assert set(metrics(tmp_path)["columns"]["note"]["distribution"]["labels"]) == {"café", "thé", "eau"}
    # a UTF-8 file whose first MiB is ASCII: its later pieces are checked as they are read
    ascii_first = pl.DataFrame({"spend": rng.gamma(2.0, 40.0, 120_000), "note": ["eau"] * 100_000 + ["café"] * 20_000})
    ascii_first.write_csv(tmp_path / "late.csv")
    (tmp_path / "late_batch.csv").write_bytes(ascii_first.tail(1_000).write_csv().encode("cp1252"))
    done = churnops(tmp_path, "monitor", "-r", "late.csv", "-p", "late_batch.csv", "--set", "data.encoding=cp1252")
    assert done.returncode == 2 and "late.csv: this file is UTF-8 text, not cp1252" in done.stderr, done.stderr


def test_init_reads_a_spreadsheet_export_and_says_how_to_use_what_it_wrote(tmp_path):
    """A cp1252 export with ';' and decimal commas: init said to use '--set data.encoding', an
    option it does not have, and wrote the money column as free text without a word; with -o its
    next step ('churnops monitor') ignored the file it had just written."""
    rng = np.random.default_rng(5)
    table = pl.DataFrame(
        {
            "Alter": rng.integers(18, 90, 3_000),
            "Saldo": [f"{v:.2f}".replace(".", ",") for v in rng.lognormal(8, 1, 3_000)],
            "Region": rng.choice(["Nord", "Süd"], 3_000),
            "churned": rng.choice(["yes", "no"], 3_000),
        }
    )
    (tmp_path / "ref.csv").write_bytes(table.write_csv(separator=";").encode("cp1252"))
    done = churnops(tmp_path, "init", "-r", "ref.csv")  # the separator is seen, the encoding said
    assert done.returncode == 2 and "churnops init --encoding cp1252" in done.stderr, done.stderr
    assert "NOTICE: ref.csv is ';'-separated: read so (separator in churnops.toml" in done.stdout, done.stdout
    done = churnops(tmp_path, "init", "-r", "ref.csv", "--encoding", "cp1252")  # the decimal commas read so
    assert done.returncode == 0, done.stderr
    assert "NOTICE: numbers written with a decimal comma: Saldo (e.g. " in done.stdout, done.stdout
    assert "read as numbers (decimal = ',' in churnops.toml; --decimal '.' decides otherwise)" in done.stdout
    text = (tmp_path / "churnops.toml").read_text()
    assert "#   Saldo: numerical" in text and 'separator = ";"' in text and 'decimal = ","' in text, text
    done = churnops(tmp_path, "init", "-r", "ref.csv", "--encoding", "cp1252", "--decimal", ".", "--force")
    assert "numbers written with a decimal comma are not read as numbers: Saldo" in done.stdout, done.stdout
    assert "(tested as categories, or not at all when most of their values differ)" in done.stdout
    assert "run init again with --decimal ','" in done.stdout  # as decided: told, not overruled
    done = churnops(
        tmp_path, "init", "-r", "ref.csv", "--separator", ";", "--encoding", "cp1252", "--decimal", ",",
        "-o", "mine.toml",
    )  # fmt: skip
    assert done.returncode == 0 and "decimal comma" not in done.stdout, done.stdout
    assert "then run 'churnops monitor -c mine.toml --current YOUR_BATCH.csv'" in done.stdout, done.stdout
    text = (tmp_path / "mine.toml").read_text()
    assert "#   Saldo: numerical" in text and 'decimal = ","' in text and 'encoding = "cp1252"' in text, text
    done = churnops(tmp_path, "monitor", "-c", "mine.toml", "-p", "ref.csv")
    assert done.returncode == 0 and done.stdout.startswith("OK"), done.stdout + done.stderr
    table.write_csv(tmp_path / "commas.csv")  # quoted decimal commas between commas
    done = churnops(tmp_path, "init", "-r", "commas.csv", "-o", "c.toml")
    assert "export the file with ';' between fields, then run init again with --separator ';'" in done.stdout
    done = churnops(tmp_path, "init", "-r", "commas.csv", "--decimal", ",", "-o", "c.toml", "--force")
    assert done.returncode == 2 and "--decimal ',' needs another --separator than ','" in done.stderr, done.stderr
    for bad, said in (
        (["--decimal", ";"], "--decimal: ';' is not a decimal mark"),
        (["--encoding", "klingon"], "--encoding: 'klingon' is not a text encoding"),
    ):
        done = churnops(tmp_path, "init", "-r", "ref.csv", "--force", *bad)
        assert done.returncode == 2 and said in done.stderr, done.stderr
    # a UTF-8 file (with its byte order mark) given --encoding cp1252: its names were written 'ï»¿Alter'
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + table.write_csv(separator=";").encode("utf-8"))
    done = churnops(tmp_path, "init", "-r", "bom.csv", "--separator", ";", "--encoding", "cp1252", "-o", "b.toml")
    assert done.returncode == 2 and "starts with a UTF-8 byte order mark: it is UTF-8 text, not cp1252" in done.stderr
    assert not (tmp_path / "b.toml").exists()


def test_a_misspelled_per_column_setting_is_named(own):
    done = churnops(
        own,
        "monitor",
        "--reference",
        "mine.csv",
        "--current",
        "batch.csv",
        "--set",
        "drift.per_column_threshold={spnd=0.2}",
    )
    assert done.returncode == 0, done.stderr
    assert "drift.per_column_threshold 'spnd'" in done.stderr


def test_a_tiny_batch_is_monitored_with_a_warning(own):
    """A batch of a row or two is monitored, but what its tests find raises no alert: one row
    made 'ALERT: 4 of 4 columns drifted' and wrote trigger.txt (what CI and notifications act on)."""
    pl.read_csv(own / "batch.csv").head(2).write_csv(own / "two.csv")
    done = churnops(own, "monitor", "--reference", "mine.csv", "--current", "two.csv", "--target", "churned")
    assert done.returncode == 0, done.stderr
    checks = {c["check"]: c for c in metrics(own)["data_quality"]["checks"]}
    assert checks["few_rows"]["severity"] == "warning" and "only 2 rows" in checks["few_rows"]["message"]
    batch = pl.read_csv(own / "batch.csv")
    batch.head(1).with_columns(pl.col("spend") * 50, pl.col("age") + 40).write_csv(own / "one.csv")
    done = churnops(own, "monitor", "-r", "mine.csv", "-p", "one.csv", "--target", "churned", "--fail-on-drift")
    assert done.returncode == 0, done.stderr  # --fail-on-drift: 3 only on an alert
    verdict = metrics(own)["verdict"]
    assert metrics(own)["dataset_drift"]["drifted_columns"], "the one row's values are far out: tests flag them"
    assert verdict["status"] == "warning" and verdict["trigger"] is False, verdict
    assert verdict["headline"].startswith("only 1 row in the batch"), verdict["headline"]
    assert not (own / "trigger.txt").exists()
    assert "ALERT" not in done.stdout + done.stderr
    batch.head(30).write_csv(own / "thirty.csv")  # from 30 rows on, the tests decide as always
    done = churnops(own, "monitor", "-r", "mine.csv", "-p", "thirty.csv", "--target", "churned")
    assert done.returncode == 0 and "only 30 rows" not in done.stdout, done.stdout


def test_each_input_may_have_its_own_separator(own):
    pl.read_csv(own / "batch.csv").write_csv(own / "batch_semicolon.csv", separator=";")
    done = churnops(
        own,
        "monitor",
        "--reference",
        "mine.csv",
        "--current",
        "batch_semicolon.csv",
        "--set",
        "data.current.separator=';'",
        "--target",
        "churned",
    )
    assert done.returncode == 0, done.stderr
    assert metrics(own)["dataset_drift"]["n_columns"] == 4


@pytest.mark.parametrize(
    "chunks, is_id",
    [
        ([[1, 2, 3], [4, 5, 6]], True),
        ([[9, 8, 7], [6, 5]], True),
        ([[1, 2, 3], [3, 4]], False),  # a repeat across chunks
        ([[1, 2, 3], [2, 5]], False),  # back down across chunks
        ([[1, 3, 2]], False),
        ([[1, 2, None]], False),
    ],
)
def test_identifier_detection_spans_chunks(chunks, is_id):
    frames = [pl.DataFrame({"n": pl.Series(values, dtype=pl.Int64), "x": [0.5] * len(values)}) for values in chunks]
    profile = profile_chunks(["n", "x"], frames, MonitorSettings(target=None))
    assert (profile.columns["n"].skip_reason == IDENTIFIER_REASON) == is_id
    assert profile.columns["x"].skip_reason is None


@pytest.mark.parametrize("mode", ["exact", "streaming"])
def test_a_batch_without_its_labels_is_monitored(own, mode):
    """Labels arrive months later: the batch is monitored, the target is said to be absent, no penalty."""
    pl.read_csv(own / "batch.csv").drop("churned").write_csv(own / "unlabelled.csv")
    args = ("monitor", "--reference", "mine.csv", "--current", "unlabelled.csv", "--target", "churned")
    done = churnops(own, *args, "--mode", mode)
    assert done.returncode == 0, done.stderr
    assert "target churned: not in this batch (no labels yet)" in done.stdout
    document = metrics(own)
    assert document["target_drift"] is None and document["data_quality"]["passed"]
    assert "no labels yet" in {s["name"]: s["reason"] for s in document["skipped_columns"]}["churned"]
    assert document["columns"]["spend"]["drift_detected"]  # the features are still compared


def test_decimal_commas_read_as_text_are_said_with_the_fix(own):
    frame = pl.read_csv(own / "mine.csv").with_columns(pl.col("spend").round(2).cast(pl.String).str.replace(r"\.", ","))
    frame.write_csv(own / "semi.csv", separator=";")
    args = ("monitor", "--reference", "semi.csv", "--current", "semi.csv", "--target", "churned")
    done = churnops(own, *args, "--set", "data.separator=';'")
    assert done.returncode == 0, done.stderr
    notice = next(line for line in done.stderr.splitlines() if "decimal comma" in line)
    assert "spend" in notice and "data.decimal = ','" in notice
    assert "read as text, not as numbers (tested as categories, or not at all when most of their values" in notice
    fixed = churnops(own, *args, "--set", "data.separator=';'", "--set", "data.decimal=','")
    assert fixed.returncode == 0 and "decimal comma" not in fixed.stderr, fixed.stderr
    assert metrics(own)["columns"]["spend"]["type"] == "numerical"


def _french(value: float, row: int) -> str:
    """``value`` as a French export writes it: digits grouped by a space (plain, no-break or
    narrow no-break), a decimal comma; now and then in scientific notation, or 'n/a'."""
    if row % 97 == 3:
        return "n/a"
    if row % 53 == 5:
        return f"{value:.4e}".replace(".", ",")
    grouped = f"{value * 10:,.2f}".replace(",", " \u00a0\u202f"[row % 3]).replace(".", ",")
    return grouped


@pytest.mark.parametrize("mode", ["exact", "streaming"])
def test_french_exports_grouped_by_spaces_are_read_as_the_same_numbers(own, mode):
    """Numbers grouped by spaces (51 659,14), in scientific notation with a decimal comma
    (1,5e3), or beside a few 'n/a' cells were read as free text, not tested - even with
    data.decimal = ','. They read as the numbers a plain export of the same values gives: the same
    drift score, the 'n/a' cells counted as not numbers."""
    for name in ("mine", "batch"):
        frame = pl.read_csv(own / f"{name}.csv")
        spend = [_french(value, row) for row, value in enumerate(frame["spend"])]
        frame.with_columns(pl.Series("spend", spend)).write_csv(own / f"{name}_fr.csv", separator=";")
        plain = [None if text == "n/a" else text for text in spend]
        as_numbers = pl.Series("spend", plain).str.replace_all("[ \u00a0\u202f]", "").str.replace(",", ".")
        frame.with_columns(as_numbers.cast(pl.Float64)).write_csv(own / f"{name}_plain.csv")
    assert any("\u202f" in cell for cell in pl.read_csv(own / "mine_fr.csv", separator=";")["spend"])
    french = ("--reference", "mine_fr.csv", "--current", "batch_fr.csv", "--target", "churned", "--mode", mode)
    done = churnops(own, "monitor", *french, "--set", "data.separator=';'", "--set", "data.decimal=','", "--no-cache")
    assert done.returncode == 0 and "free text" not in done.stderr, done.stderr
    read = metrics(own)
    assert "numbers written as text are read as numbers: spend" in done.stderr, done.stderr
    plain = ("--reference", "mine_plain.csv", "--current", "batch_plain.csv", "--target", "churned", "--mode", mode)
    done = churnops(own, "monitor", *plain, "--no-cache")
    assert done.returncode == 0, done.stderr
    expected = metrics(own)
    assert read["columns"]["spend"]["type"] == "numerical"
    assert read["columns"]["spend"]["drift_score"] == expected["columns"]["spend"]["drift_score"]
    # read with a decimal point, the column is named with the setting that reads it
    done = churnops(own, "monitor", *french, "--set", "data.separator=';'", "--no-cache")
    notice = next(line for line in done.stderr.splitlines() if "decimal comma" in line)
    assert "spend" in notice and "data.decimal = ','" in notice, notice


def test_a_column_read_at_two_scales_in_a_decimal_comma_file_is_named_every_run(own):
    """A decimal-comma export with a rate written with decimal points: a comma reader takes
    2.500 for 2500 (a point between groups of three digits) and 0.625 for 0.625 - one column,
    two scales. That was silent; the NOTICE now names the column with an example of each, on
    every run (the classification of the reference's columns is cached after the first). A
    column left as text beside it is named with the cause that applies to a file read with a
    decimal comma - on the cached run too, where the advice to set data.decimal = ',' (set
    already) was given."""
    for name in ("mine", "batch"):
        frame = pl.read_csv(own / f"{name}.csv")
        rate = [f"{value / 100:.3f}" for value in frame["spend"]]
        ratio = ["#DIV/0!" if row % 50 == 7 else f"{row % 90},{row % 7}" for row in range(frame.height)]
        spend = [_french(value, row) for row, value in enumerate(frame["spend"])]
        frame.with_columns(pl.Series("rate", rate), pl.Series("spend", spend), pl.Series("ratio", ratio))\
            .write_csv(own / f"{name}_fr.csv", separator=";")  # fmt: skip
    french = ("-r", "mine_fr.csv", "-p", "batch_fr.csv", "--target", "churned", "--set", "data.separator=';'",
              "--set", "data.decimal=','")  # fmt: skip
    for run in ("first", "cached"):
        done = churnops(own, "monitor", *french)
        assert done.returncode == 0, done.stderr
        notice = next((line for line in done.stderr.splitlines() if "two scales" in line), "")
        assert "rate (" in notice and "read as thousands" in notice and "spend" not in notice, (run, done.stderr)
        assert "data.decimal = '.'" in notice
        text = next(line for line in done.stderr.splitlines() if "ratio" in line)
        assert "'#DIV/0!'" in text and "set data.decimal" not in text, (run, text)
        assert text.startswith("NOTICE: numbers read as text, not as numbers (tested as categories"), (run, text)
    assert list((own / ".churnops" / "profiles").glob("*.columns.json")), "the classification was not cached"
    plain = ("-r", "mine.csv", "-p", "batch.csv", "--target", "churned")
    done = churnops(own, "monitor", *plain)
    assert done.returncode == 0 and "two scales" not in done.stderr, done.stderr


@pytest.mark.parametrize(
    "dress",
    [
        lambda text: text + "\u00a0%",  # 13,8 % with a no-break space
        lambda text: text + " \u20ac",  # 9 081,84 EUR sign after
        lambda text: "\u20ac " + text,  # EUR sign before
        lambda text: "  " + text,  # padded
    ],
    ids=["percent", "euro after", "euro before", "padded"],
)
def test_numbers_with_a_decimal_comma_and_a_sign_are_read_as_with_a_decimal_point(own, dress):
    """With a decimal comma, numbers with a percent or currency sign, or spaces around them, were
    read as categories (13,8 %, no word) or as untested text - where the same numbers with a
    decimal point are read as numbers. Now they give the drift score of a plain export."""
    for name in ("mine", "batch"):
        frame = pl.read_csv(own / f"{name}.csv")
        spend = [dress(_french(value, row)) if row % 97 != 3 else "-" for row, value in enumerate(frame["spend"])]
        frame.with_columns(pl.Series("spend", spend)).write_csv(own / f"{name}_fr.csv", separator=";")
        plain = [_french(value, row) for row, value in enumerate(frame["spend"])]
        as_numbers = pl.Series("spend", plain).str.replace_all("[ \u00a0\u202f]", "").str.replace(",", ".")
        numbers = as_numbers.cast(pl.Float64, strict=False)
        frame.with_columns(pl.Series("spend", [None if row % 97 == 3 else v for row, v in enumerate(numbers)]))\
            .write_csv(own / f"{name}_plain.csv")  # fmt: skip
    french = ("--reference", "mine_fr.csv", "--current", "batch_fr.csv", "--target", "churned", "--no-cache")
    done = churnops(own, "monitor", *french, "--set", "data.separator=';'", "--set", "data.decimal=','")
    assert done.returncode == 0, done.stderr
    read = metrics(own)["columns"]["spend"]
    done = churnops(own, "monitor", "-r", "mine_plain.csv", "-p", "batch_plain.csv", "--target", "churned")
    assert done.returncode == 0, done.stderr
    assert read["type"] == "numerical", read
    assert read["drift_score"] == metrics(own)["columns"]["spend"]["drift_score"]


def test_grouped_numbers_beside_cells_that_are_no_numbers_are_said_with_the_cause(own):
    """A column of 56 911,68 with a few #DIV/0! cells stays text (as with a decimal point); the
    NOTICE told to set data.decimal = ',' - already set. It names the cause."""
    frame = pl.read_csv(own / "mine.csv")
    spend = ["#DIV/0!" if row % 50 == 1 else _french(value, 0) for row, value in enumerate(frame["spend"])]
    frame.with_columns(pl.Series("spend", spend)).write_csv(own / "div.csv", separator=";")
    args = ("monitor", "-r", "div.csv", "-p", "div.csv", "--target", "churned")
    done = churnops(own, *args, "--set", "data.separator=';'", "--set", "data.decimal=','")
    assert done.returncode == 0, done.stderr
    notice = next(line for line in done.stderr.splitlines() if "spend (e.g." in line)
    assert "#DIV/0!" in notice and "data.decimal = ','" not in notice, notice


@pytest.mark.parametrize(
    "table, said",
    [
        ({"customer_id": [f"c{i}" for i in range(300)], "Surname": [f"n{i}" for i in range(300)]}, "customer_id"),
        ({"note": [f"free text number {i} here" for i in range(300)]}, "note (text column"),
    ],
    ids=["identifiers and ignored columns", "free text"],
)
@pytest.mark.parametrize("cached", [False, True])
def test_a_table_with_no_column_to_test_is_said_not_called_no_drift(tmp_path, table, said, cached):
    pl.DataFrame(table).write_csv(tmp_path / "r.csv")
    pl.DataFrame(table).write_csv(tmp_path / "c.csv")
    runs = [churnops(tmp_path, "monitor", "-r", "r.csv", "-p", "c.csv", *([] if cached else ["--no-cache"]))]
    if cached:  # a second run reads the profile from the cache: said the same way
        runs.append(churnops(tmp_path, "monitor", "-r", "r.csv", "-p", "c.csv"))
    for done in runs:
        assert done.returncode == 2, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("error: r.csv: nothing to monitor - every column is left out") and said in last
        assert "no data rows" not in done.stderr
    assert not (tmp_path / "monitoring" / "monitoring_metrics.json").exists()
    import churnops as api

    with pytest.raises(api.errors.InputDataError, match="nothing to monitor"):
        api.monitor(tmp_path / "r.csv", tmp_path / "c.csv")
    with pytest.raises(api.errors.InputDataError, match="nothing to monitor"):
        api.profile(tmp_path / "r.csv")


def _dates(rng: np.random.Generator, n: int, fmt: str, first: str | None = None) -> list[str]:
    import datetime as dt

    days = [dt.date(2020, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 1500, n)]
    text = [d.strftime(fmt) for d in days]
    if first is not None:
        text[0] = first
    return text


@pytest.mark.parametrize("fmt", ["%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%b %d, %Y"])
def test_dates_in_any_common_writing_are_read_as_dates_and_identical_ones_do_not_drift(tmp_path, fmt):
    rng = np.random.default_rng(5)
    # each file opens on a date that reads both ways, so nothing can be guessed from a first value
    pl.DataFrame({"x": rng.normal(size=3000), "signup": _dates(rng, 3000, fmt, "01/02/2021")}).write_csv(
        tmp_path / "r.csv"
    )
    pl.DataFrame({"x": rng.normal(size=3000), "signup": _dates(rng, 3000, fmt, "02/01/2021")}).write_csv(
        tmp_path / "c.csv"
    )
    done = churnops(tmp_path, "monitor", "--no-cache", "-r", "r.csv", "-p", "c.csv", "--set", "columns.target=")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "monitoring" / "monitoring_metrics.json").read_text())
    signup = metrics["columns"]["signup"]
    assert signup["type"] == "datetime" and not signup["drift_detected"]
    unparsable = [c for c in metrics["data_quality"]["checks"] if c.get("column") == "signup"]
    assert all(c["count"] <= 1 for c in unparsable if "unparsable" in c["check"])  # only the odd first value
    import churnops as api

    result = api.monitor(tmp_path / "r.csv", tmp_path / "c.csv", target="")
    assert result.to_dict()["columns"]["signup"]["drift_score"] == signup["drift_score"]


def test_a_batch_is_read_the_way_the_reference_writes_its_dates(tmp_path):
    """A batch whose dates would read both ways on their own (days up to 12) is read as the
    reference's dates are: its scores equal those of the same dates written in ISO."""
    import datetime as dt

    rng = np.random.default_rng(9)
    reference = _dates(rng, 3000, "%m/%d/%Y")  # month first, unambiguous: some days above 12
    days = [
        dt.date(2021, int(m), int(d)) for m, d in zip(rng.integers(1, 13, 2000), rng.integers(1, 13, 2000), strict=True)
    ]
    pl.DataFrame({"signup": reference}).write_csv(tmp_path / "r.csv")
    pl.DataFrame({"signup": [d.strftime("%m/%d/%Y") for d in days]}).write_csv(tmp_path / "c.csv")
    pl.DataFrame({"signup": [d.isoformat() for d in days]}).write_csv(tmp_path / "iso.csv")
    import churnops as api

    written = api.monitor(tmp_path / "r.csv", tmp_path / "c.csv", target="").to_dict()["columns"]["signup"]
    iso = api.monitor(tmp_path / "r.csv", tmp_path / "iso.csv", target="").to_dict()["columns"]["signup"]
    assert written["drift_score"] == iso["drift_score"]


def test_dates_that_read_both_ways_are_an_error_naming_the_setting(tmp_path):
    import datetime as dt

    rng = np.random.default_rng(2)
    days = [
        dt.date(2021, int(m), int(d)) for m, d in zip(rng.integers(1, 13, 500), rng.integers(1, 13, 500), strict=True)
    ]
    table = pl.DataFrame({"x": rng.normal(size=500), "signup": [d.strftime("%d/%m/%Y") for d in days]})
    table.write_csv(tmp_path / "r.csv")
    table.write_csv(tmp_path / "c.csv")
    done = churnops(tmp_path, "monitor", "--no-cache", "-r", "r.csv", "-p", "c.csv", "--set", "columns.target=")
    assert done.returncode == 2
    assert "read as day/month and as month/day: set columns.date_formats" in done.stderr
    fixed = churnops(
        tmp_path, "monitor", "--no-cache", "-r", "r.csv", "-p", "c.csv", "--set", "columns.target=",
        "--set", "columns.date_formats.signup=day-first",
    )  # fmt: skip
    assert fixed.returncode == 0, fixed.stderr
    bad = churnops(tmp_path, "monitor", "-r", "r.csv", "-p", "c.csv", "--set", "columns.date_formats.signup=soon")
    assert bad.returncode == 2 and "is not a way of writing dates" in bad.stderr


def test_init_writes_how_the_dates_are_written(tmp_path):
    import datetime as dt

    rng = np.random.default_rng(4)
    pl.DataFrame({"x": rng.normal(size=800), "signup": _dates(rng, 800, "%m/%d/%Y")}).write_csv(tmp_path / "r.csv")
    days = [
        dt.date(2021, int(m), int(d)) for m, d in zip(rng.integers(1, 13, 300), rng.integers(1, 13, 300), strict=True)
    ]
    pl.DataFrame({"x": rng.normal(size=300), "opened": [d.strftime("%d/%m/%Y") for d in days]}).write_csv(
        tmp_path / "both.csv"
    )
    done = churnops(tmp_path, "init", "--reference", "r.csv")
    assert done.returncode == 0, done.stderr
    assert 'date_formats = { "signup" = "month-first" }' in (tmp_path / "churnops.toml").read_text()
    monitor = churnops(tmp_path, "monitor", "-p", "r.csv")
    assert monitor.returncode == 0 and "NOTICE" not in monitor.stderr, monitor.stderr
    (tmp_path / "churnops.toml").unlink()
    done = churnops(tmp_path, "init", "--reference", "both.csv")
    assert done.returncode == 0, done.stderr
    assert '# date_formats."opened" = "day-first"    # REQUIRED' in (tmp_path / "churnops.toml").read_text()


def test_init_lists_the_date_columns_of_a_parquet_file_as_dates(tmp_path):
    """A Parquet column stored as dates or timestamps (time zone or not) was written
    '# ts: unknown (no usable value)' and left out of datetime = [...], though monitor tests it."""
    import datetime as dt

    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    pl.DataFrame(
        {
            "ts": [start + dt.timedelta(days=i) for i in range(100)],
            "naive": [dt.datetime(2024, 1, 1) + dt.timedelta(hours=i) for i in range(100)],
            "day": [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(100)],
            "x": [float(i % 7) for i in range(100)],
        }
    ).write_parquet(tmp_path / "r.parquet")
    done = churnops(tmp_path, "init", "--reference", "r.parquet")
    assert done.returncode == 0, done.stderr
    written = (tmp_path / "churnops.toml").read_text()
    assert 'datetime = ["ts", "naive", "day"]' in written, written
    assert "unknown" not in written and "no usable value" not in written, written


@pytest.mark.parametrize(
    "postcodes",
    [[1040, 1200, 9100, 13001, 75001, 69002], [1040, 1200, 9100, 2300, 6000, 8510]],
    ids=["some with a leading zero", "every one with a leading zero"],
)
def test_codes_with_leading_zeros_are_tested_alike_from_csv_and_parquet(tmp_path, postcodes):
    """A postcode column written 01040 in a CSV was read as the number 1040 and tested as a
    measure (Wasserstein), where the same column in a Parquet file is text, tested as categories
    (Jensen-Shannon): two answers for one table. From a CSV it is now tested as categories too,
    with a NOTICE, and init says so - also when every code begins with 0, so that the numbers
    read all have one length (01040 to 09100)."""
    rng = np.random.default_rng(8)
    for name, n in (("ref", 3000), ("cur", 1500)):
        codes = [f"{z:05d}" for z in rng.choice(postcodes, n)]
        frame = pl.DataFrame({"zip": codes, "spend": rng.gamma(2.0, 100.0, n), "churned": rng.integers(0, 2, n)})
        frame.write_parquet(tmp_path / f"{name}.parquet")
        frame.write_csv(tmp_path / f"{name}.csv")
    read = {}
    for kind in ("csv", "parquet"):
        done = churnops(tmp_path, "monitor", "-r", f"ref.{kind}", "-p", f"cur.{kind}", "--target", "churned")
        assert done.returncode == 0, done.stderr
        read[kind] = metrics(tmp_path)["columns"]["zip"]
        if kind == "csv":
            assert "codes written with leading zeros are tested as categories: zip (e.g. '0" in done.stderr
    assert read["csv"]["type"] == read["parquet"]["type"] == "categorical"
    assert read["csv"]["drift_score"] == pytest.approx(read["parquet"]["drift_score"], abs=1e-12)
    done = churnops(tmp_path, "init", "--reference", "ref.csv")
    assert done.returncode == 0, done.stderr
    assert "zip: categorical (codes written with leading zeros" in (tmp_path / "churnops.toml").read_text()


@pytest.mark.parametrize("mode", ["exact", "streaming", "chunks", "evidently"])
def test_codes_with_leading_zeros_meet_across_parquet_and_csv(tmp_path, mode):
    """A Parquet reference holds branch codes as text (``07014``); the same codes in a CSV batch
    were read as numbers (7014), so that no label met its own in the reference: drift score
    0.59 on an unchanged batch. The batch's cells are now read as text when the reference's
    labels are codes that a number would alter; a CSV reference and a Parquet batch met already
    (the text is read as the reference's numbers)."""
    rng = np.random.default_rng(12)
    pool = [f"{rng.choice([0, 0, 1, 2])}{rng.integers(1000, 10000)}" for _ in range(30)]
    for name, n in (("ref", 4000), ("cur", 2000)):
        frame = pl.DataFrame(
            {"branch": rng.choice(pool, n), "spend": rng.gamma(2.0, 100.0, n), "churned": rng.integers(0, 2, n)}
        )
        frame.write_parquet(tmp_path / f"{name}.parquet")
        frame.write_csv(tmp_path / f"{name}.csv")
    extra = {"exact": ["--mode", "exact"], "streaming": ["--mode", "streaming"]}.get(mode, [])
    if mode == "evidently":
        pytest.importorskip("evidently")
        extra = ["--engine", "evidently"]
    if mode == "chunks":
        extra = ["--set", "drift.chunk_by=size:500"]
    scores = {}
    for ref, cur in (("parquet", "parquet"), ("parquet", "csv"), ("csv", "parquet"), ("csv", "csv")):
        args = ("-r", f"ref.{ref}", "-p", f"cur.{cur}", "--target", "churned", "--no-cache", *extra)
        done = churnops(tmp_path, "monitor", *args)
        assert done.returncode == 0, done.stderr
        found = metrics(tmp_path)
        column = found["columns"]["branch"]
        assert column["type"] == "categorical" and column["current"]["unparsable"] == 0, (ref, cur)
        scores[ref, cur] = column["drift_score"]
        if mode == "chunks":
            scores[ref, cur, "chunks"] = [c["columns"]["branch"]["statistic"] for c in found["chunks"]["groups"]]
        if ref == "parquet":
            assert set(column["current"]["shares"]) <= set(column["reference"]["shares"]), (ref, cur)
    assert scores["parquet", "csv"] == pytest.approx(scores["parquet", "parquet"], abs=1e-12)
    assert scores["csv", "parquet"] == pytest.approx(scores["csv", "csv"], abs=1e-12)
    assert scores["parquet", "csv"] < 0.1
    if mode == "chunks":
        assert scores["parquet", "csv", "chunks"] == pytest.approx(scores["parquet", "parquet", "chunks"], abs=1e-12)


@pytest.mark.parametrize("mode", ["exact", "streaming"])
def test_codes_with_leading_zeros_meet_a_csv_batch_written_with_decimal_commas(tmp_path, mode):
    """A CSV batch with decimal commas read every cell of a text column that holds numbers as a
    number: the Parquet reference's codes ``07014`` met ``7014.0`` (drift score 0.83 on an
    unchanged batch). They now stay text there too."""
    rng = np.random.default_rng(13)
    pool = [f"{rng.choice([0, 0, 1])}{rng.integers(1000, 10000)}" for _ in range(25)]
    frame = pl.DataFrame({"branch": rng.choice(pool, 3000), "spend": rng.gamma(2.0, 100.0, 3000)})
    frame.write_parquet(tmp_path / "ref.parquet")
    frame.with_columns(pl.col("spend").round(2).cast(pl.String).str.replace(".", ",", literal=True)).write_csv(
        tmp_path / "cur.csv", separator=";"
    )
    frame.select("branch").write_csv(tmp_path / "codes.csv", separator=";")
    options = ("--set", "data.decimal=','", "--set", "data.separator=';'", "--target", "", "--mode", mode)
    done = churnops(tmp_path, "monitor", "-r", "ref.parquet", "-p", "cur.csv", "--no-cache", *options)
    assert done.returncode == 0, done.stderr
    column = metrics(tmp_path)["columns"]["branch"]
    assert column["drift_score"] == pytest.approx(0.0, abs=1e-12) and set(column["current"]["shares"]) == set(pool)
    assert metrics(tmp_path)["columns"]["spend"]["drift_score"] < 0.01  # the amounts are still numbers
    from churnops.data.io import CsvDialect, TableReader, read_table

    dialect = CsvDialect(separator=";", decimal=",")
    assert (
        read_table(tmp_path / "codes.csv", dialect=dialect, text=["branch"])["branch"].to_list()[:3]
        == (frame["branch"].to_list()[:3])
    )
    read = pl.concat(list(TableReader(tmp_path / "codes.csv", dialect=dialect, text=["branch"])))
    assert read["branch"].to_list() == frame["branch"].to_list()


def test_a_csv_read_with_text_columns_keeps_their_cells_as_written(tmp_path):
    """The reader's ``text`` columns stay text in every piece, also in a piece read again as text
    because a later cell contradicts the first piece's types, and by :func:`read_table`."""
    from churnops.data.io import TableReader, read_table

    rows = ["code,n"] + [f"{i % 50:05d},{i}" for i in range(3000)] + ["00007,x"]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    reader = TableReader(tmp_path / "t.csv", text=["code", "absent"], chunk_bytes=4096)
    parts = list(reader)
    assert len(parts) > 3
    codes = pl.concat([part["code"] for part in parts])
    assert codes.dtype == pl.String and codes.head(3).to_list() == ["00000", "00001", "00002"]
    assert codes[-1] == "00007" and reader.intended["code"] == pl.String
    frame = read_table(tmp_path / "t.csv", text=["code"])
    assert frame["code"].dtype == pl.String and frame["code"][1] == "00001"
    assert read_table(tmp_path / "t.csv")["code"].dtype == pl.Int64


def test_timestamps_with_a_time_zone_are_the_days_of_their_zone(tmp_path):
    """Dates stored as midnight in Europe/Paris were taken to their UTC day - the day before: the
    report's dates and the summaries were a day early against the same dates written in a CSV."""
    import datetime as dt

    rng = np.random.default_rng(9)
    for name, n, shift in (("ref", 2000, 0), ("cur", 1000, 40)):
        days = [dt.date(2018, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(shift, 700 + shift, n)]
        frame = pl.DataFrame({"opened": days, "spend": rng.gamma(2.0, 100.0, n), "churned": rng.integers(0, 2, n)})
        frame.write_csv(tmp_path / f"{name}.csv")
        zoned = pl.Series([dt.datetime(d.year, d.month, d.day) for d in days]).dt.replace_time_zone("Europe/Paris")
        frame.with_columns(zoned.alias("opened")).write_parquet(tmp_path / f"{name}.parquet")
    read = read_alike(tmp_path, "opened", "--target", "churned", "--no-cache", "--set", "columns.datetime=['opened']")
    for side in ("reference", "current"):
        assert read["parquet"][side]["min"] == read["csv"][side]["min"], side
        assert read["parquet"][side]["mean"] == pytest.approx(read["csv"][side]["mean"], abs=1e-9), side
    assert read["parquet"]["drift_score"] == pytest.approx(read["csv"]["drift_score"], abs=1e-12)


def test_times_written_with_their_utc_offset_are_the_days_as_written(tmp_path):
    """A CSV's ``2018-03-02T00:30:00+01:00`` was taken to its UTC day (1 March), where the same
    instant in a Parquet column of zone Europe/Paris is 2 March: the days of the two files
    differed. A time written with its offset is now the day as written, as in the zone."""
    import datetime as dt

    rng = np.random.default_rng(10)
    for name, n, shift in (("ref", 2000, 0), ("cur", 1000, 40)):
        days = [dt.date(2018, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(shift, 700 + shift, n)]
        minutes = rng.integers(0, 24 * 60, n)
        local = [
            dt.datetime(d.year, d.month, d.day) + dt.timedelta(minutes=int(m))
            for d, m in zip(days, minutes, strict=True)
        ]
        zoned = pl.Series(local).dt.replace_time_zone("Europe/Paris", ambiguous="earliest", non_existent="null")
        frame = pl.DataFrame({"opened": zoned, "spend": rng.gamma(2.0, 100.0, n)}).drop_nulls()
        frame.write_parquet(tmp_path / f"{name}.parquet")
        frame.with_columns(pl.col("opened").dt.strftime("%Y-%m-%dT%H:%M:%S%:z")).write_csv(tmp_path / f"{name}.csv")
    assert "+01:00" in (tmp_path / "ref.csv").read_text() and "+02:00" in (tmp_path / "ref.csv").read_text()
    read = read_alike(tmp_path, "opened", "--target", "", "--no-cache", "--set", "columns.datetime=['opened']")
    assert read["csv"]["current"]["unparsable"] == read["parquet"]["current"]["unparsable"] == 0
    for side in ("reference", "current"):
        for key in ("min", "max", "mean"):
            assert read["parquet"][side][key] == pytest.approx(read["csv"][side][key], abs=1e-9), (side, key)
    assert read["parquet"]["drift_score"] == pytest.approx(read["csv"]["drift_score"], abs=1e-12)


def test_the_column_classification_is_kept_and_said_the_same_from_the_cache(tmp_path):
    """What a sample of the reference decides (dates and how they are written, identifiers, decimal
    commas) is kept beside the reference profile: a later run says and monitors exactly the same
    without reading the sample, and a run with other [columns] settings decides anew."""
    rng = np.random.default_rng(3)
    n = 2_000
    days = pl.date_range(pl.date(2020, 1, 13), pl.date(2023, 12, 31), eager=True)
    days = days.sample(n, with_replacement=True, seed=1)
    table = pl.DataFrame(
        {
            "account_id": rng.permutation(10 * n)[:n] + 10_000,
            "signup": days.dt.strftime("%d/%m/%Y"),
            "amount": rng.gamma(2, 40, n).round(2),
            "eu_amount": [f"{a},{b:02d}" for a, b in zip(rng.integers(1, 999, n), rng.integers(0, 99, n), strict=True)],
            "score": [f"{v:.2f}" if i % 400 else "n/a yet" for i, v in enumerate(rng.normal(600, 50, n))],
            "churned": rng.integers(0, 2, n),
        }
    )
    table.write_csv(tmp_path / "ref.csv")
    table.with_columns(pl.col("amount") * 1.5).write_csv(tmp_path / "batch.csv")
    args = ("monitor", "--reference", "ref.csv", "--current", "batch.csv", "--target", "churned")

    def notices(done: subprocess.CompletedProcess[str]) -> list[str]:
        assert done.returncode == 0, done.stderr
        return [line for line in done.stderr.splitlines() if line.startswith("NOTICE")]

    def outcome() -> dict:
        document = metrics(tmp_path)
        return {key: document[key] for key in ("columns", "dataset_drift", "skipped_columns", "target_drift")}

    first = notices(churnops(tmp_path, *args))
    assert any("monitored as dates: signup (written day first)" in n and "account_id" in n for n in first), first
    assert any("decimal comma" in n and "eu_amount" in n for n in first), first
    stray = "score (5 of 2,000 cells in the first rows are not numbers, e.g. 'n/a yet')"
    assert any("numbers written as text are read as numbers" in n and stray in n for n in first), first
    assert any("columns.categorical=['score']" in n for n in first), first
    decided = outcome()
    assert decided["columns"]["score"]["type"] == "numerical"
    assert decided["columns"]["score"]["reference"]["unparsable"] == 5
    (kept,) = (tmp_path / ".churnops" / "profiles").glob("*.columns.json")
    assert json.loads(kept.read_text()) == {
        "format": 8,
        "dates": ["signup"],
        "ids": ["account_id"],
        "formats": {"signup": "day-first"},
        "commas": [["eu_amount", json.loads(kept.read_text())["commas"][0][1]]],
        "strays": [["score", 5, 2000, "n/a yet"]],
        "points": [],
        "scales": [],
        "codes": [],
        "free_codes": [],
        "near": [],
        "measures": [],
        "held": [],
    }
    assert notices(churnops(tmp_path, *args)) == first
    assert outcome() == decided
    assert notices(churnops(tmp_path, *args, "--no-cache")) == first
    not_inferred = notices(churnops(tmp_path, *args, "--set", "columns.infer=false"))
    assert not any("from the data" in n for n in not_inferred)
    assert len(list(kept.parent.glob("*.columns.json"))) == 2  # decided anew, kept under its own key
    advised = notices(churnops(tmp_path, *args, "--set", "columns.numerical=['score']"))
    assert not any("numbers written as text" in n for n in advised)
    assert metrics(tmp_path)["columns"]["score"]["type"] == "numerical"
    assert metrics(tmp_path)["data_quality"]["failed_cells"] >= 5  # the stray cells, counted
    as_categories = notices(churnops(tmp_path, *args, "--set", "columns.categorical=['score']"))
    assert not any("numbers written as text" in n for n in as_categories)
    assert metrics(tmp_path)["columns"]["score"]["type"] == "categorical"


@pytest.mark.parametrize("row", [10, 7_000, 30_000])
def test_a_stray_word_among_numbers_leaves_the_column_numbers_wherever_it_falls(tmp_path, row):
    """One 'missing' in a column of numbers made the reader take the column for text, tested as
    categories - a false alarm on an unchanged column - when it fell in the first 10,000 rows.
    Wherever it falls, the column is tested as numbers and the cell counted as unparsable."""
    rng = np.random.default_rng(row)
    n = 40_000
    values = [f"{v:.3f}" for v in rng.normal(0, 1, n)]
    values[row] = "missing"
    churned = rng.integers(0, 2, n)
    pl.DataFrame({"v": values, "w": rng.normal(0, 1, n), "churned": churned}).write_csv(tmp_path / "ref.csv")
    batch = pl.DataFrame({"v": rng.normal(0, 1, 3_000).round(3), "w": rng.normal(0, 1, 3_000)})
    batch.with_columns(churned=pl.Series(rng.integers(0, 2, 3_000))).write_csv(tmp_path / "cur.csv")
    for mode in ("exact", "streaming"):
        args = ("monitor", "-r", "ref.csv", "-p", "cur.csv", "-t", "churned", "--mode", mode, "--no-cache")
        done = churnops(tmp_path, *args)
        assert done.returncode == 0, done.stderr
        document = metrics(tmp_path)
        assert document["columns"]["v"]["type"] == "numerical", mode
        assert document["columns"]["v"]["reference"]["unparsable"] == 1, mode
        assert not document["dataset_drift"]["drifted_columns"], (mode, document["dataset_drift"])


def test_numbers_written_with_separators_currency_or_percent_are_tested_as_numbers(tmp_path):
    """'53,455.84', '$88.66' and '54.4%' were free text (not tested, nothing said) or categories
    (a false alarm): they are numbers, said in a NOTICE; a shift is found, an unchanged one is not."""
    rng = np.random.default_rng(7)

    def table(n: int, shift: float) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "income": [f"{v:,.2f}" for v in rng.normal(50_000 + shift * 8_000, 8_000, n)],
                "fee": [f"${v:.2f}" for v in rng.gamma(3, 20, n)],
                "usage": [f"{v:.1f}%" for v in rng.normal(50, 5, n)],
                "churned": rng.integers(0, 2, n),
            }
        )

    table(4_000, 0).write_csv(tmp_path / "ref.csv")
    table(2_000, 0.8).write_csv(tmp_path / "cur.csv")
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.csv", "-t", "churned", "--no-cache")
    assert done.returncode == 0, done.stderr
    notice = next(line for line in done.stderr.splitlines() if "numbers written as text" in line)
    assert "income (written like" in notice and "fee (written like '$" in notice and "usage (written like" in notice
    document = metrics(tmp_path)
    assert {name: document["columns"][name]["type"] for name in ("income", "fee", "usage")} == dict.fromkeys(
        ("income", "fee", "usage"), "numerical"
    )
    assert document["dataset_drift"]["drifted_columns"] == ["income"]
    assert document["data_quality"]["failed_cells"] == 0


def test_repeated_rows_are_rows_equal_in_every_cell_free_text_included(tmp_path):
    """A free-text column unique per row was left out of the repeated-row count: clean data was
    scored near 0 for 'rows that repeat an earlier row'. Rows repeat when every cell does."""
    rng = np.random.default_rng(11)

    def table(n: int, seed: int) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "comment": [f"customer said thing {seed}-{i}" for i in range(n)],
                "plan": rng.choice(["basic", "pro"], n),
                "churned": rng.integers(0, 2, n),
            }
        )

    table(3_000, 1).write_csv(tmp_path / "ref.csv")
    batch = table(1_000, 2)
    batch.write_csv(tmp_path / "clean.csv")
    pl.concat([batch, batch.head(7)]).write_csv(tmp_path / "repeats.csv")
    for mode in ("exact", "streaming"):
        for name, repeated in (("clean", 0), ("repeats", 7)):
            args = ("monitor", "-r", "ref.csv", "-p", f"{name}.csv", "-t", "churned", "--mode", mode, "--no-cache")
            done = churnops(tmp_path, *args)
            assert done.returncode == 0, done.stderr
            said = "not tested, free text (most values distinct): comment (list a column in columns.numerical when"
            assert said in done.stderr
            quality = metrics(tmp_path)["data_quality"]
            assert quality["duplicated_rows"] == repeated, (mode, name)
            assert quality["score"] > 0.99, (mode, name)


def test_columns_left_out_and_odd_batches_are_said_on_the_terminal(tmp_path):
    """An all-missing column, a table whose only tested column is the target, a label written
    another way in the batch and a batch of five rows: each is said, never a silent or garbled line."""
    rng = np.random.default_rng(5)
    n = 3_000
    pl.DataFrame({"empty": [None] * n, "x": rng.normal(0, 1, n), "churned": rng.integers(0, 2, n)}).write_csv(
        tmp_path / "ref.csv"
    )
    pl.DataFrame({"empty": [None] * 5, "x": rng.normal(0, 1, 5), "churned": rng.integers(0, 2, 5)}).write_csv(
        tmp_path / "five.csv"
    )
    pl.DataFrame({"x": rng.normal(0, 1, 900), "churned": rng.choice(["yes", "no"], 900)}).write_csv(
        tmp_path / "words.csv"
    )
    pl.DataFrame({"empty": [None] * n, "churned": rng.integers(0, 2, n)}).write_csv(tmp_path / "only.csv")

    def run(reference: str, current: str) -> str:
        done = churnops(tmp_path, "monitor", "-r", reference, "-p", current, "-t", "churned", "--no-cache")
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    five = run("ref.csv", "five.csv")
    assert "NOTICE: not tested, every value missing in the reference: empty" in five
    assert "WARNING: only 5 rows: drift tests on so few values are unreliable" in five
    words = run("ref.csv", "words.csv")
    # yes/no where the reference has 0/1: the target's finding, not a quiet "not compared"
    assert "target churned: not compared - none of its 900 values in the batch reads as the reference" in words
    assert "nan" not in words.split("target churned:")[1].splitlines()[0]
    done = churnops(
        tmp_path, "monitor", "-r", "ref.csv", "-p", "ref.csv", "-t", "churned", "--set", "columns.ignored=['X']"
    )
    assert "ignored 'X' (did you mean 'x'?)" in done.stderr, done.stderr
    only = run("only.csv", "only.csv")
    assert "no feature column is tested: only the target's rate is compared" in only
    assert "data drift: no feature column tested" in only and "0/0" not in only and "0 of 0" not in only


def test_the_evidently_engine_takes_whole_number_categories_with_missing_values(tmp_path):
    """pandas turns whole numbers with a missing value into floats, which Evidently refuses as
    category labels: the run failed with an internal error."""
    pytest.importorskip("evidently")
    rng = np.random.default_rng(2)

    def table(n: int) -> pl.DataFrame:
        kids = pl.Series(rng.integers(0, 4, n)).cast(pl.Int64)
        kids = pl.when(pl.int_range(n) % 37 == 0).then(None).otherwise(kids)
        return pl.select(kids=kids, x=pl.Series(rng.normal(0, 1, n)), churned=pl.Series(rng.integers(0, 2, n)))

    table(2_000).write_csv(tmp_path / "ref.csv")
    table(1_000).write_csv(tmp_path / "cur.csv")
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.csv", "-t", "churned", "--engine", "evidently")
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr
    assert metrics(tmp_path)["columns"]["kids"]["type"] == "categorical"


def test_digits_that_are_not_numbers_stay_text_and_parquet_amounts_are_said(tmp_path):
    """Phone numbers, dates written with spaces and decimal commas (0,123) were read as numbers
    (a phone number became 33612345678, 0,123 became 123) and raised false alarms; a Parquet
    file's amounts held as text are tested as numbers, as from a CSV file, and said."""
    rng = np.random.default_rng(9)
    n = 3_000

    def phones(international: np.ndarray) -> list[str]:
        return [
            ("+33 6 " if i else "06 ") + " ".join(f"{v:02d}" for v in rng.integers(10, 99, 4)) for i in international
        ]

    def table(n: int, international: float) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "phone": phones(rng.random(n) < international),
                "rate": [f"{v:.3f}".replace(".", ",") for v in rng.uniform(0, 1, n)],
                "zip": [f"{v:05d}" for v in rng.integers(1_000, 9_999, n)],
                "y": rng.integers(0, 2, n),
            }
        )

    table(n, 0.0).write_csv(tmp_path / "ref.csv")
    table(1_000, 0.5).write_csv(tmp_path / "cur.csv")
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.csv", "-t", "y", "--no-cache")
    assert done.returncode == 0, done.stderr
    assert "numbers written as text" not in done.stderr
    columns = metrics(tmp_path)["columns"]
    assert "phone" not in columns and columns.get("rate", {}).get("type") != "numerical"
    frame = pl.DataFrame({"usd": [f"${v:.2f}" for v in rng.gamma(3, 20, n)], "y": rng.integers(0, 2, n)})
    frame.write_parquet(tmp_path / "ref.parquet")
    frame.write_parquet(tmp_path / "cur.parquet")
    done = churnops(tmp_path, "monitor", "-r", "ref.parquet", "-p", "cur.parquet", "-t", "y", "--no-cache")
    assert done.returncode == 0, done.stderr
    said = "holds as text are tested as numbers, as from a CSV file (cells that are not numbers count as such): usd"
    assert said in done.stderr, done.stderr
    assert metrics(tmp_path)["columns"]["usd"]["type"] == "numerical"


def test_repeated_rows_are_found_across_csv_pieces_read_differently(tmp_path):
    """A stray cell after the rows the types are guessed from makes its piece of the CSV text
    while the first piece is typed: the exact engine hashed 12.5 and "12.5" differently and
    found none of 1,000 rows repeated across the pieces."""
    rng = np.random.default_rng(4)

    def table(n: int) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "amount": [f"{v:.2f}" for v in rng.gamma(2, 30, n)],
                "note": ["x" * 90 + str(v) for v in rng.integers(0, 10**12, n)],
                "y": rng.integers(0, 2, n),
            }
        )

    table(3_000).write_csv(tmp_path / "ref.csv")
    batch = table(50_000).with_columns(
        amount=pl.when(pl.int_range(50_000) == 49_995).then(pl.lit("n/a")).otherwise(pl.col("amount"))
    )
    pl.concat([batch, batch.head(1_000)]).write_csv(tmp_path / "cur.csv")
    assert (tmp_path / "cur.csv").stat().st_size > 5 << 20  # more than one piece
    for mode in ("exact", "streaming"):
        args = ("monitor", "-r", "ref.csv", "-p", "cur.csv", "-t", "y", "--mode", mode, "--no-cache")
        done = churnops(tmp_path, *args)
        assert done.returncode == 0, done.stderr
        assert metrics(tmp_path)["data_quality"]["duplicated_rows"] == 1_000, mode


def _labelled(rng: np.random.Generator, n: int, rate: float, event: str, other: str) -> pl.DataFrame:
    return pl.DataFrame(
        {"age": rng.integers(18, 80, n), "status": np.where(rng.random(n) < rate, event, other).tolist()}
    )


@pytest.mark.parametrize(
    ("event", "other"),
    [("churned", "retained"), ("Attrited Customer", "Existing Customer"), ("Yes", "No"), ("left", "stayed")],
)
def test_a_label_written_in_words_has_the_rate_of_its_event(tmp_path, event, other):
    """'churned'/'retained' was read as the rate of 'retained' (the value that sorts last): a rise
    in churn was reported as "status rate fell from 80% to 70%". The event is told by its words,
    whichever sorts last, and named with the rate; the z statistic has the sign of the event's change."""
    rng = np.random.default_rng(3)
    _labelled(rng, 6_000, 0.2, event, other).write_csv(tmp_path / "ref.csv")
    _labelled(rng, 3_000, 0.3, event, other).write_csv(tmp_path / "cur.csv")
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.csv", "-t", "status", "--no-cache")
    assert done.returncode == 0, done.stderr
    target = metrics(tmp_path)["target_drift"]
    assert target["positive_label"] == event
    assert 0.17 < target["reference_rate"] < 0.23 and 0.27 < target["current_rate"] < 0.33, target
    assert target["statistic"] > 5 and target["difference"] > 0, target
    assert f"status = {event} rate rose from" in done.stdout, done.stdout
    assert "the rate watched is" not in done.stdout + done.stderr  # decided, nothing to tell


def test_a_label_whose_words_say_nothing_is_named_and_can_be_chosen(tmp_path):
    """Two values that tell nothing ('A', 'B'): the rate of the last is watched and the terminal
    says so with the setting that changes it; columns.target_positive picks the other (the z statistic
    follows it); a value that is not one of the label's is said, not compared."""
    rng = np.random.default_rng(4)
    _labelled(rng, 6_000, 0.2, "A", "B").write_csv(tmp_path / "ref.csv")
    _labelled(rng, 3_000, 0.3, "A", "B").write_csv(tmp_path / "cur.csv")
    base = ("monitor", "-r", "ref.csv", "-p", "cur.csv", "-t", "status", "--no-cache")
    done = churnops(tmp_path, *base)
    assert "status = B rate fell from" in done.stdout, done.stdout
    assert "the rate watched is the share of 'B' (the other value: 'A'); set columns.target_positive" in done.stdout
    done = churnops(tmp_path, *base, "--set", "columns.target_positive=A")
    assert done.returncode == 0, done.stderr
    target = metrics(tmp_path)["target_drift"]
    assert target["positive_label"] == "A" and target["statistic"] > 5 and target["difference"] > 0, target
    n1, n2 = 6_000, 3_000
    p1, p2 = target["reference_rate"], target["current_rate"]
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    expected = (p2 - p1) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    assert target["statistic"] == pytest.approx(expected, rel=1e-9)
    assert "status = A rate rose from" in done.stdout and "the rate watched" not in done.stdout
    done = churnops(tmp_path, *base, "--set", "columns.target_positive=Z")
    assert "target status: not compared - columns.target_positive 'Z' is not one of its values ('A', 'B')" in (
        done.stdout
    ), done.stdout


def test_the_model_reads_a_label_in_words_as_monitoring_does():
    """``churnops train`` refused Yes/No labels that monitoring accepts; it reads them the same way
    now, and refuses to guess when the words tell nothing (a model of the wrong value predicts the
    opposite of what is asked)."""
    import pandas as pd

    from churnops.errors import InputDataError
    from churnops.pipeline.modeling import labels_of

    frame = pd.DataFrame({"status": ["retained", "churned", "retained", "churned", "churned"]})
    assert labels_of(frame, "status").tolist() == [0, 1, 0, 1, 1]
    assert labels_of(pd.DataFrame({"y": ["No", "Yes", "No"]}), "y").tolist() == [0, 1, 0]
    assert labels_of(pd.DataFrame({"y": [0, 1, 1]}), "y").tolist() == [0, 1, 1]
    # target_positive names the event among 0/1 labels too (1 = stayed): train and score it, not 1
    assert labels_of(pd.DataFrame({"y": [0, 1, 1]}), "y", "0").tolist() == [1, 0, 0]
    assert labels_of(pd.DataFrame({"y": [False, True]}), "y", "false").tolist() == [1, 0]
    letters = pd.DataFrame({"y": ["A", "B", "A"]})
    with pytest.raises(InputDataError, match="set columns.target_positive to the one that marks the event"):
        labels_of(letters, "y")
    assert labels_of(letters, "y", "A").tolist() == [1, 0, 1]
    with pytest.raises(InputDataError, match="columns.target_positive 'C' is not a value of 'y'"):
        labels_of(letters, "y", "C")


def test_target_positive_may_be_written_as_a_number_in_toml(tmp_path):
    from churnops.config.loading import load_config

    (tmp_path / "churnops.toml").write_text("[columns]\ntarget = 'y'\ntarget_positive = 2\n")
    assert load_config(tmp_path / "churnops.toml").columns.target_positive == "2"


def test_batch_dates_that_read_both_ways_are_an_error_not_a_guess(tmp_path):
    """A reference of ISO dates and a batch of the same twelve days written month first
    (03/01/2024 ... 03/12/2024): each read as well day first, and the batch was silently spread over
    the year (3 January ... 3 December). It is an error naming the setting, and with the setting
    the days are read as written."""
    rng = np.random.default_rng(8)
    days = [f"2023-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(2_000)]
    pl.DataFrame({"x": rng.normal(0, 1, 2_000), "event_date": days}).write_csv(tmp_path / "ref.csv")
    us = [f"03/{1 + i % 12:02d}/2024" for i in range(600)]
    pl.DataFrame({"x": rng.normal(0, 1, 600), "event_date": us}).write_csv(tmp_path / "cur.csv")
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.csv", "--no-cache")
    assert done.returncode == 2, done.stdout
    assert "the dates of 'event_date' (e.g. '03/01/2024') read as day/month and as month/day" in done.stderr
    assert 'columns.date_formats = { "event_date" = "month-first" }' in done.stderr
    done = churnops(
        tmp_path,
        "monitor",
        "-r",
        "ref.csv",
        "-p",
        "cur.csv",
        "--set",
        'columns.date_formats={event_date="month-first"}',
    )
    assert done.returncode == 0, done.stderr
    current = metrics(tmp_path)["columns"]["event_date"]["current"]
    march = (np.datetime64("2024-03-01") - np.datetime64("1970-01-01")).astype(int)
    assert current["min"] == march and current["max"] == march + 11 and current["unparsable"] == 0, current


def test_numbers_whose_point_may_group_thousands_are_said(tmp_path):
    """A European export read with a decimal point: incomes 3.283 (3283) and 443 were read as 3.283
    and 443, with no word. The sample's numbers that look grouped by a point are named, with what to
    do; decimals that are not (0.5, 2 digits) say nothing."""
    rng = np.random.default_rng(12)
    n = 3_000
    income = rng.integers(1, 10_000, n)
    written = [f"{v // 1000}.{v % 1000:03d}" if v >= 1000 else str(v) for v in income]
    table = pl.DataFrame({"age": rng.integers(18, 80, n), "income": written, "churned": rng.integers(0, 2, n)})
    table.write_csv(tmp_path / "ref.csv", separator=";")
    table.write_csv(tmp_path / "cur.csv", separator=";")
    base = ("monitor", "-r", "ref.csv", "-p", "cur.csv", "-t", "churned", "--set", "data.separator=';'")
    done = churnops(tmp_path, *base)
    assert done.returncode == 0, done.stderr
    assert "numbers whose point may group thousands: income (e.g." in done.stderr, done.stderr
    plain = table.with_columns(pl.Series("income", rng.normal(500, 200, n).round(2)))
    plain.write_csv(tmp_path / "ref.csv", separator=";")
    done = churnops(tmp_path, *base)
    assert "group thousands" not in done.stderr, done.stderr
    # incomes that all reach 1,000 have no whole number below it to give them away: the zeros a
    # group keeps (12.340 for 12340) do - a decimal number is written without them (12.34)
    high = rng.integers(1_000, 100_000, n)
    grouped = table.with_columns(pl.Series("income", [f"{v // 1000}.{v % 1000:03d}" for v in high]))
    grouped.write_csv(tmp_path / "ref.csv", separator=";")
    done = churnops(tmp_path, *base)
    assert "numbers whose point may group thousands: income (e.g." in done.stderr, done.stderr
    decimals = table.with_columns(pl.Series("income", (high / 1000).round(3)))
    decimals.write_csv(tmp_path / "ref.csv", separator=";")
    done = churnops(tmp_path, *base)
    assert done.returncode == 0 and "group thousands" not in done.stderr, done.stderr


def test_a_target_that_is_not_a_label_is_said_not_called_absent(tmp_path):
    """--target naming a column of ids said "target: none (no target column in these data;
    --target COLUMN names it)" - though it was given. It is not compared, and the line says why."""
    rng = np.random.default_rng(13)
    table = pl.DataFrame(
        {"policy_no": [f"P{i:07d}" for i in rng.permutation(3_000)], "age": rng.integers(18, 80, 3_000)}
    )
    table.write_csv(tmp_path / "ref.csv")
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "ref.csv", "-t", "policy_no")
    assert done.returncode == 0, done.stderr
    assert "target policy_no: not compared - not a label it can compare (" in done.stdout, done.stdout
    assert "no target column in these data" not in done.stdout


def test_a_binary_file_is_said_to_be_binary(tmp_path):
    """A program's bytes named .csv were reported as "lines end with a carriage return only (old
    Mac text)" - advice that sends the user to convert line ends."""
    pl.DataFrame({"x": [5, 3, 9]}).write_csv(tmp_path / "ref.csv")
    (tmp_path / "bin.csv").write_bytes(bytes(range(256)) * 8 + b"\r\nmore")
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "bin.csv")
    assert done.returncode == 2 and "bin.csv: this is not text (it holds binary bytes)" in done.stderr, done.stderr


def test_labels_the_reference_never_took_or_spelled_otherwise_are_still_the_label(tmp_path):
    """A reference of 'No' only and a batch 20% 'Yes' compared the rate of 'No' (100% -> 100%,
    no drift); a batch writing 'yes'/' no' was not compared at all; a unique number per row named
    as --target alerted "drifted (wasserstein)"; "Won't churn" read as the event ("t" for true)."""
    rng = np.random.default_rng(21)

    def run(reference: pl.DataFrame, current: pl.DataFrame, target: str = "y") -> tuple[str, dict]:
        reference.write_csv(tmp_path / "ref.csv")
        current.write_csv(tmp_path / "cur.csv")
        done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.csv", "-t", target, "--no-cache")
        assert done.returncode == 0, done.stderr
        return done.stdout, metrics(tmp_path)["target_drift"]

    x = rng.normal(0, 1, 3_000)
    some = np.where(rng.random(1_000) < 0.2, "Yes", "No")
    out, target = run(pl.DataFrame({"x": x, "y": ["No"] * 3_000}), pl.DataFrame({"x": x[:1_000], "y": some}))
    assert target["positive_label"] == "Yes" and target["reference_rate"] == 0 and target["drift_detected"], out
    assert "target y = Yes: 0.00% -> " in out and metrics(tmp_path)["data_quality"]["score"] == 1.0
    both = np.where(rng.random(3_000) < 0.2, "Yes", "No")
    spelled = [f" {v.lower()}" for v in some]
    out, target = run(pl.DataFrame({"x": x, "y": both}), pl.DataFrame({"x": x[:1_000], "y": spelled}))
    assert target["positive_label"] == "Yes" and target["current_rate"] == pytest.approx((some == "Yes").mean())
    assert "read as the reference writes them: " in out and "' yes' as 'Yes'" in out, out
    assert metrics(tmp_path)["data_quality"]["score"] == 1.0  # nor counted as failed cells by data quality
    ids = pl.DataFrame({"x": x, "customer_id": rng.permutation(3_000) * 7 + 1_000})
    out, target = run(ids, ids, "customer_id")
    assert target["test"] == "none" and "not compared - not a label it can compare" in out, out
    words = np.where(rng.random(3_000) < 0.2, "Will churn", "Won't churn")
    out, target = run(pl.DataFrame({"x": x, "y": words}), pl.DataFrame({"x": x, "y": words}))
    assert target["positive_label"] == "Will churn" and "the rate watched is" not in out, out
    # 'No' and one stray cell in the reference: the batch's 20% 'Yes' were left out of a rate of 'N0'
    stray = ["No"] * 2_999 + ["N0"]
    out, target = run(pl.DataFrame({"x": x, "y": stray}), pl.DataFrame({"x": x[:1_000], "y": some}))
    assert target["positive_label"] == "Yes" and target["reference_rate"] == 0 and target["drift_detected"], out
    assert target["current_rate"] == pytest.approx((some == "Yes").mean())
    assert "the reference's rare value(s) 'N0' left out as data errors" in target["note"], target
    # a rare value of the batch is no label; nor is a rare event of the reference ever a stray
    rare = np.array(["No"] * 1_000, dtype=object)
    rare[:5] = "Yes"
    out, target = run(pl.DataFrame({"x": x, "y": stray}), pl.DataFrame({"x": x[:1_000], "y": rare}))
    assert target["positive_label"] == "N0" and "left out as data errors" not in (target["note"] or ""), target
    # labels the batch writes another way than the reference (Yes/No for 0/1): a quality warning
    # only, and a rise from 20% to 40% unseen - now the target's finding
    numbers = (rng.random(3_000) < 0.2).astype(int)
    words = np.where(rng.random(1_000) < 0.4, "Yes", "No")
    out, target = run(pl.DataFrame({"x": x, "y": numbers}), pl.DataFrame({"x": x[:1_000], "y": words}))
    assert out.startswith("ALERT") and target["drift_detected"] and target["test"] == "none", out
    assert "the target y cannot be compared: none of its 1,000 values in the batch reads as the reference" in out
    # the other way round (0/1 where the reference writes Yes/No), and other words of the same
    # meaning ('Yes' where a rare churner of the reference was written 'Y'), are read as its labels
    both_words = np.where(numbers == 1, "Yes", "No")
    digits = np.where(words == "Yes", "1", "0")
    out, target = run(pl.DataFrame({"x": x, "y": both_words}), pl.DataFrame({"x": x[:1_000], "y": digits}))
    assert target["positive_label"] == "Yes" and target["current_rate"] == pytest.approx((words == "Yes").mean())
    assert "'1' as 'Yes'" in target["note"] and target["drift_detected"], target
    one_y = ["No"] * 2_999 + ["Y"]
    out, target = run(pl.DataFrame({"x": x, "y": one_y}), pl.DataFrame({"x": x[:1_000], "y": some}))
    assert target["positive_label"] == "Y" and target["drift_detected"] and "'Yes' as 'Y'" in target["note"], target
    # labels of no known meaning, none the reference's: the target's finding
    other = np.where(words == "Yes", "maybe", "perhaps")
    out, target = run(pl.DataFrame({"x": x, "y": both_words}), pl.DataFrame({"x": x[:1_000], "y": other}))
    assert out.startswith("ALERT") and "the target y cannot be compared: none of its 1,000 values" in out, out
    # negated words keep their meaning turned round, and a partial reading is no reading
    stayed = np.where(numbers == 1, "Churned", "Retained")
    negated = np.where(words == "Yes", "Not Retained", "Retained")
    out, target = run(pl.DataFrame({"x": x, "y": stayed}), pl.DataFrame({"x": x[:1_000], "y": negated}))
    assert target["positive_label"] == "Churned" and "'Not Retained' as 'Churned'" in target["note"], target
    assert target["current_rate"] == pytest.approx((words == "Yes").mean())
    risk = np.where(words == "Yes", "churn risk high", "churn risk low")
    out, target = run(pl.DataFrame({"x": x, "y": stayed}), pl.DataFrame({"x": x[:1_000], "y": risk}))
    assert "the target y cannot be compared" in out and target["current_rate"] is None, out
    # outcomes not known yet, written '?': no finding
    out, target = run(pl.DataFrame({"x": x, "y": stayed}), pl.DataFrame({"x": x[:1_000], "y": ["?"] * 1_000}))
    assert "cannot be compared" not in out and "not known yet" in target["note"], out
    # a batch whose labels are not known yet (an empty column) is no finding
    empty = pl.DataFrame({"x": x[:1_000], "y": [None] * 1_000}, schema={"x": pl.Float64, "y": pl.Int64})
    out, target = run(pl.DataFrame({"x": x, "y": numbers}), empty)
    assert not out.startswith("ALERT") and not (target or {}).get("drift_detected"), out
    fraud = ["No"] * 2_999 + ["Yes"]
    out, target = run(pl.DataFrame({"x": x, "y": fraud}), pl.DataFrame({"x": x[:1_000], "y": some}))
    assert target["positive_label"] == "Yes" and target["reference_rate"] == pytest.approx(1 / 3_000), target


def test_three_decimal_measures_are_not_taken_for_thousands_and_binary_files_are_said(tmp_path):
    """Coordinates, 3-decimal prices and rates were named "numbers whose point may group
    thousands"; a PDF or random bytes named .csv got advice about encodings or column names."""
    rng = np.random.default_rng(22)
    n = 3_000
    table = pl.DataFrame(
        {
            "lat": rng.uniform(47, 55, n).round(3),
            "price_kwd": rng.uniform(100, 900, n).round(3),
            "fx_rate": rng.uniform(1, 1.2, n).round(3),
            "churned": rng.integers(0, 2, n),
        }
    )
    table.write_csv(tmp_path / "ref.csv")
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "ref.csv", "-t", "churned")
    assert done.returncode == 0 and "group thousands" not in done.stderr, done.stderr
    for name, data in (("doc.csv", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj"), ("rand.csv", rng.bytes(20_000))):
        (tmp_path / name).write_bytes(data)
        done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", name)
        assert done.returncode == 2 and f"{name}: this is not text (it holds binary bytes)" in done.stderr, done.stderr


def test_a_workbook_an_archive_or_a_parquet_file_named_csv_is_named_with_what_to_do(tmp_path):
    """A file named .csv that is an Excel workbook, an older .xls, a Parquet file or a gzip of a
    CSV was refused as "binary bytes" with no word of what it is; each is named now, with the
    step that makes it readable."""
    import gzip
    import io
    import zipfile

    import churnops as package

    table = package.generate(300)
    table.write_csv(tmp_path / "ref.csv")
    book = io.BytesIO()
    with zipfile.ZipFile(book, "w") as archive:  # the layout Excel writes: [Content_Types].xml, then xl/
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("_rels/.rels", "<Relationships/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")
    parquet = io.BytesIO()
    table.write_parquet(parquet)
    files = {
        "book.csv": (book.getvalue(), "an Excel workbook (.xlsx): save it from Excel as CSV UTF-8 or Parquet"),
        "old.csv": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "an older Excel workbook (.xls)"),
        "table.csv": (parquet.getvalue(), "a Parquet file: give it a name ending in .parquet"),
        "packed.csv": (gzip.compress((tmp_path / "ref.csv").read_bytes()), "compressed with gzip"),
    }
    for name, (data, said) in files.items():
        (tmp_path / name).write_bytes(data)
        done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", name)
        assert done.returncode == 2 and f"{name}: this is not text (it holds binary bytes): it is {said}" in (
            done.stderr
        ), done.stderr
        assert "Traceback" not in done.stderr


def test_a_batch_sorted_by_date_is_read_as_its_whole_column_writes_it(tmp_path):
    """600,000 rows of March written month first and sorted: the first piece read holds only
    03/01 ... 03/08 (both ways), the rest up to 03/31 (month first only) - the run stopped on
    "read as day/month and as month/day". The whole column decides; both modes agree."""
    rng = np.random.default_rng(23)
    days = [f"2023-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(5_000)]
    pl.DataFrame({"x": rng.normal(0, 1, 5_000), "signup": days}).write_csv(tmp_path / "ref.csv")
    n = 600_000
    march = sorted(f"03/{1 + i * 31 // n:02d}/2024" for i in range(n))
    pl.DataFrame({"x": rng.normal(0, 1, n), "signup": march}).write_csv(tmp_path / "cur.csv")
    assert (tmp_path / "cur.csv").stat().st_size > 12 << 20  # pieces of 4 MiB: the first ends before 03/13
    pl.read_csv(tmp_path / "cur.csv").write_parquet(tmp_path / "cur.parquet", row_group_size=100_000)
    march_first = (np.datetime64("2024-03-01") - np.datetime64("1970-01-01")).astype(int)
    for mode, batch in (("exact", "cur.csv"), ("streaming", "cur.csv"), ("streaming", "cur.parquet")):
        done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", batch, "--mode", mode, "--no-cache")
        assert done.returncode == 0, done.stderr
        current = metrics(tmp_path)["columns"]["signup"]["current"]
        assert current["min"] == march_first and current["max"] == march_first + 30, (mode, current)


@pytest.mark.parametrize("mode", ["exact", "streaming"])
def test_with_a_decimal_comma_points_group_digits_and_commas_before_decimals_are_not_thousands(tmp_path, mode):
    """With data.decimal = ',', amounts written 15.992 (fifteen thousand, points grouping the
    digits) were read as 15.992 - a batch of tripled amounts showed them falling fourfold. Without
    it, rates written 0,578 were read as 578 (the comma taken for a thousands separator)."""
    rng = np.random.default_rng(31)

    def amounts(n: int, scale: float) -> list[str]:
        return [f"{int(v):,}".replace(",", ".") for v in rng.lognormal(7.5, 1.0, n) * scale]

    n = 4_000
    pl.DataFrame({"id": range(n), "amount": amounts(n, 1.0), "age": rng.integers(18, 90, n)}).write_csv(
        tmp_path / "ref.csv", separator=";"
    )
    pl.DataFrame({"id": range(n), "amount": amounts(n, 3.0), "age": rng.integers(18, 90, n)}).write_csv(
        tmp_path / "cur.csv", separator=";"
    )
    dialect = ("--set", "data.separator=';'", "--set", "data.decimal=','")
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.csv", "--mode", mode, "--no-cache", *dialect)
    assert done.returncode in (0, 1), done.stderr
    column = metrics(tmp_path)["columns"]["amount"]
    assert column["type"] == "numerical" and column["current"]["unparsable"] == 0
    assert 1_000 < column["reference"]["mean"] < 5_000  # thousands, not units
    assert 2.5 < column["current"]["mean"] / column["reference"]["mean"] < 3.5  # tripled, not divided by four
    from churnops.monitor.prepare import coerce_numerical

    read = coerce_numerical(pl.Series(["0,578", "3,339", "1,234,567.5"]))
    assert read.series.to_list() == [None, 3339.0, 1234567.5] and read.unparsable == 1


def test_with_a_decimal_comma_points_grouping_digits_are_read_whatever_the_rows_before_them(tmp_path):
    """The reader typed a column from its first rows, all written '578,5' (Float64): polars then read
    the later '41.989' as 41.989, without a word - the batch's amounts 1000 times too small, a false
    drift alert. And '0.578' is no grouping: it was made 578."""
    from churnops.data.io import CsvDialect, TableReader, read_table

    rng = np.random.default_rng(41)
    small = [f"{v},{d}" for v, d in zip(rng.integers(100, 999, 1_500), rng.integers(1, 9, 1_500), strict=True)]
    big = [f"{v // 1000}.{v % 1000:03d}" for v in rng.integers(10_000, 99_999, 1_500)]
    expected = [float(v.replace(",", ".")) for v in small] + [float(v.replace(".", "")) for v in big]
    text = "id;amount;rate\n" + "".join(f"{i};{a};{'0.578' if i % 2 else '1,5'}\n" for i, a in enumerate(small + big))
    (tmp_path / "cur.csv").write_text(text)
    dialect = CsvDialect(separator=";", decimal=",")
    whole = read_table(tmp_path / "cur.csv", dialect=dialect)
    assert whole["amount"].cast(pl.Float64).to_list() == expected
    assert whole["rate"].cast(pl.Float64).to_list()[:2] == [1.5, 0.578]
    for chunk_bytes in (None, 4_096):  # one piece, and pieces typed from the first one
        pieces = list(TableReader(tmp_path / "cur.csv", dialect=dialect, chunk_bytes=chunk_bytes))
        read = pl.concat([piece.select(pl.col("amount").cast(pl.Float64)) for piece in pieces])
        assert read["amount"].to_list() == expected, chunk_bytes


def test_a_decimal_comma_column_is_a_model_input_and_written_back_readable(tmp_path):
    """'94,04' beside '22.419,01': monitor read the column as numbers, train left it out without a
    word (the model fell below min_auc); predict wrote '578.123' back into a decimal-comma file,
    which read again as 578123; and a code column '3.456' was shown as '3456'."""
    import subprocess
    import sys

    rng = np.random.default_rng(8)
    n = 3_000
    balance = np.where(rng.random(n) < 0.5, rng.uniform(0, 999, n), rng.uniform(1_000, 90_000, n))
    churned = (rng.random(n) < 0.1 + 0.5 * (balance > 50_000)).astype(int)

    def german(value: float) -> str:
        return f"{value:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")

    codes = ["3.456", "C12"] * (n // 2)
    table = pl.DataFrame({"id": range(n), "balance": [german(v) for v in balance], "code": codes, "churned": churned})
    table.write_csv(tmp_path / "ref.csv", separator=";")
    (tmp_path / "churnops.toml").write_text(
        '[paths]\nreference = "ref.csv"\n[data]\nseparator = ";"\ndecimal = ","\n'
        '[columns]\ntarget = "churned"\nid = ["id"]\n'
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "churnops", *args], cwd=tmp_path, capture_output=True, text=True)

    done = run("train")
    assert done.returncode == 0, done.stderr
    from churnops.config import load_config
    from churnops.integrations import mlflow_registry as registry
    from churnops.pipeline.scoring import store_of

    loaded = registry.load_alias(store_of(load_config(tmp_path / "churnops.toml")), "bank-churn", "champion")
    assert "balance" in loaded.metadata.features.numerical
    assert loaded.metadata.reference_metrics["roc_auc"] > 0.7
    table.head(50).drop("churned").write_csv(tmp_path / "batch.csv", separator=";")
    done = run("predict", "-i", "batch.csv", "-o", "scored.csv")
    assert done.returncode == 0, done.stderr
    from churnops.data.io import CsvDialect, read_table

    again = read_table(tmp_path / "scored.csv", dialect=CsvDialect(separator=";", decimal=","))
    assert np.allclose(again["balance"].cast(pl.Float64).to_numpy(), np.round(balance[:50], 2))
    assert again["code"].to_list()[:2] == ["3.456", "C12"]


def test_the_column_classification_is_made_again_under_other_reading_rules(tmp_path, monkeypatch):
    """The kept classification depends on how the reference's bytes are read: a churnops whose
    reading rules differ (same version number) does not reuse it."""
    from churnops.config import Config
    from churnops.data.io import CsvDialect
    from churnops.pipeline import inference

    (tmp_path / "ref.csv").write_text("a;b\n1,5;2.500\n")
    config = Config(root=tmp_path)
    dialect = CsvDialect(separator=";", decimal=",")
    kept = inference._cache_file(config, tmp_path / "ref.csv", dialect)
    assert inference._cache_file(config, tmp_path / "ref.csv", dialect) == kept
    monkeypatch.setattr(inference, "READING_RULES", inference.READING_RULES + 1)
    assert inference._cache_file(config, tmp_path / "ref.csv", dialect) != kept


def test_a_reference_window_set_for_the_configured_reference_is_said_unused_for_a_given_file(own):
    """data.reference_rows is the window of the configured reference; a file given with
    --reference is read whole. That was silent when the window was set on the same command."""
    args = ("monitor", "-r", "mine.csv", "-p", "batch.csv", "--target", "churned")
    done = churnops(own, *args, "--set", "data.reference_rows=[50, 2050]")
    assert done.returncode == 0, done.stderr
    assert "give --reference-rows 50:2050" in done.stderr, done.stderr
    assert metrics(own)["reference"]["rows"] == 5000 and metrics(own)["reference"]["row_range"] is None
    done = churnops(own, *args, "--reference-rows", "50:2050")
    assert done.returncode == 0 and "--reference-rows" not in done.stderr, done.stderr
    assert metrics(own)["reference"]["rows"] == 2000
    done = churnops(own, *args)
    assert done.returncode == 0 and "reference_rows" not in done.stderr, done.stderr


def test_columns_churnops_typed_itself_are_reported_as_inferred(tmp_path):
    """Dates and codes the tool found in the reference were reported with ``type_source: config``,
    as if the user had listed them: a reader of the metrics could not tell its guesses from their
    own choices. Now only the columns listed in churnops.toml are ``config``, also on a run that
    uses the cached profile."""
    rng = np.random.default_rng(5)
    days = pl.date_range(pl.date(2020, 1, 1), pl.date(2024, 12, 31), eager=True)
    for name, n in (("ref", 2000), ("cur", 1000)):
        pl.DataFrame(
            {
                "opened": rng.choice(days.to_numpy(), n),
                "signup": rng.choice(days.to_numpy(), n),
                "branch": [f"{z:04d}" for z in rng.choice([12, 340, 7, 905], n)],
                "amount": rng.normal(100, 10, n),
                "churned": rng.integers(0, 2, n),
            }
        ).write_csv(tmp_path / f"{name}.csv")
    (tmp_path / "churnops.toml").write_text(
        '[columns]\ntarget = "churned"\nid = []\nignored = []\ndatetime = ["signup"]\n'
    )
    for _ in range(2):  # the second run reads the cached profile
        done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.csv")
        assert done.returncode == 0, done.stderr
        columns = metrics(tmp_path)["columns"]
        sources = {name: (column["type"], column["type_source"]) for name, column in columns.items()}
        assert sources == {
            "opened": ("datetime", "inferred"),
            "signup": ("datetime", "config"),
            "branch": ("categorical", "inferred"),
            "amount": ("numerical", "inferred"),
        }, sources


@pytest.mark.parametrize(
    "written",
    [
        lambda rng, n: [f"0{z}" for z in rng.integers(1000, 9999, n)],
        lambda rng, n: [f"{z:08d}" for z in rng.integers(0, 10**7, n)],
    ],
    ids=["codes that all begin with 0", "contract numbers"],
)
def test_codes_with_as_many_values_as_free_text_are_not_tested_from_csv_as_from_parquet(tmp_path, written):
    """Codes written with leading zeros and mostly distinct (a contract number, a branch code of
    thousands of values) were tested as categories from a CSV - a false alarm on an unchanged
    batch (drift score 0.73-0.83) - where the same column in a Parquet file is free text, not
    tested. They are free text from both now."""
    rng = np.random.default_rng(12)
    for name, n in (("ref", 3000), ("cur", 2000)):
        frame = pl.DataFrame(
            {"dept": written(rng, n), "spend": rng.gamma(2.0, 100.0, n), "churned": rng.integers(0, 2, n)}
        )
        frame.write_csv(tmp_path / f"{name}.csv")
        frame.write_parquet(tmp_path / f"{name}.parquet")
    for kind in ("csv", "parquet"):
        done = churnops(tmp_path, "monitor", "-r", f"ref.{kind}", "-p", f"cur.{kind}", "--target", "churned")
        assert done.returncode == 0, done.stderr
        assert "dept" not in metrics(tmp_path)["columns"], kind
        assert any(column["name"] == "dept" for column in metrics(tmp_path)["skipped_columns"]), kind
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.csv", "--target", "churned")
    assert "are free text, not tested - as the same column is in a Parquet file: dept" in done.stderr, done.stderr
    assert done.stderr.count("dept") == 1, done.stderr  # said once, not again as 'free text (most values distinct)'


def test_one_number_written_with_a_leading_zero_is_a_stray_not_codes(tmp_path):
    """Amounts of four digits with one cell written 0500, or years with a placeholder 0000: one
    value with a leading zero among numbers made the whole column codes, tested as categories
    (drift score 1.0 on an unchanged batch), where Parquet keeps the numbers."""
    rng = np.random.default_rng(13)
    for name, n in (("ref", 3000), ("cur", 2000)):
        amounts = [str(a) for a in rng.integers(1000, 9999, n)]
        years = [str(y) for y in rng.integers(1990, 2024, n)]
        amounts[11], years[5], years[9] = "0500", "0000", "0000"
        (tmp_path / f"{name}.csv").write_text(
            "amount,year,churned\n"
            + "".join(f"{a},{y},{c}\n" for a, y, c in zip(amounts, years, rng.integers(0, 2, n), strict=True))
        )
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.csv", "--target", "churned")
    assert done.returncode == 0 and "leading zeros" not in done.stderr, done.stderr
    columns = metrics(tmp_path)["columns"]
    assert columns["amount"]["type"] == "numerical" and not columns["amount"]["drift_detected"]


def test_a_csv_whose_first_column_is_named_like_a_signature_is_read(tmp_path):
    """A CSV whose first column is PAR1_score (a bank's "portfolio at risk") was refused as a
    Parquet file named .csv: Parquet's signature is four letters, and a name may begin with them."""
    rng = np.random.default_rng(14)
    for name, n in (("ref", 1000), ("cur", 500)):
        pl.DataFrame({"PAR1_score": rng.normal(0, 1, n), "churned": rng.integers(0, 2, n)}).write_csv(
            tmp_path / f"{name}.csv"
        )
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.csv", "--target", "churned")
    assert done.returncode == 0, done.stderr
    assert metrics(tmp_path)["columns"]["PAR1_score"]["type"] == "numerical"


def test_text_a_csv_reads_as_missing_is_named_when_a_csv_meets_a_parquet_file(tmp_path):
    """The same table, one side a CSV file and the other Parquet: a CSV reads ``""`` and ``N/A``
    cells as missing values, Parquet holds them as text, so an unchanged table drifts (0.31 with
    a quarter of a column empty). The numbers stay those of each file as read (Evidently's, on
    the same frames); the terminal and the data quality section now say why, in both directions,
    and nothing is said when both files are of one format."""
    rng = np.random.default_rng(21)
    frame = make(rng, 4000, 1).with_columns(
        pl.when(pl.int_range(pl.len()) % 4 == 0).then(pl.lit("")).otherwise(pl.col("plan")).alias("plan"),
        pl.when(pl.int_range(pl.len()) % 10 == 0)
        .then(pl.lit("N/A"))
        .otherwise(pl.lit("<b>x</b>\x1b[2J"))
        .alias("tier <i>\x1b[31m"),
    )
    for name in ("ref", "cur"):
        frame.write_csv(tmp_path / f"{name}.csv")
        frame.write_parquet(tmp_path / f"{name}.parquet")
    found = {}
    for ref, cur in (("csv", "parquet"), ("parquet", "csv"), ("csv", "csv"), ("parquet", "parquet")):
        done = churnops(tmp_path, "monitor", "-r", f"ref.{ref}", "-p", f"cur.{cur}", "--target", "churned")
        assert done.returncode in (0, 3), done.stderr
        checks = [c for c in metrics(tmp_path)["data_quality"]["checks"] if c["check"] == "missing_in_csv"]
        found[ref, cur] = {c["column"]: (c["count"], c["message"]) for c in checks}
        said = [line for line in done.stdout.splitlines() if "drifts between the two formats" in line]
        assert len(said) == (1 if ref != cur else 0), done.stdout
        assert "\x1b" not in done.stdout and "\x1b" not in done.stderr
        if said:
            parquet, csv = ("batch", "reference") if cur == "parquet" else ("reference", "batch")
            assert said[0] == (
                f"WARNING: the {parquet} (Parquet) holds '', 'N/A' as text in plan, tier <i>\\x1b[31m, where the "
                f"{csv} (CSV) has missing values: the same data drifts between the two formats; write both in "
                "one format, or these cells as nulls"
            ), said
            report = (tmp_path / "monitoring" / "monitoring_report.html").read_text()
            assert "drifts between the two formats" in report and "tier &lt;i&gt;" in report
            assert "<i>" not in report and "\x1b" not in report
    assert found["csv", "csv"] == found["parquet", "parquet"] == {}
    batch = found["csv", "parquet"]
    assert batch["plan"][0] == 1000 and batch["plan"][1].startswith("1,000 cells are '' as text in this Parquet batch")
    assert batch["tier <i>\x1b[31m"][0] == 400 and "'N/A'" in batch["tier <i>\x1b[31m"][1]
    reference = found["parquet", "csv"]
    assert reference["plan"] == (
        1000,
        "the reference, a Parquet file, holds '' as text in 1,000 cells, which a CSV file such as this batch "
        "reads as missing values (1000 here); the same data drifts between the two formats: write both tables "
        "in one format, or these cells as nulls",
    )


def test_cells_a_csv_reads_as_missing_are_missing_values_in_numbers_dates_and_identifiers_in_any_format(tmp_path):
    """One table of text, some cells written ``''``, ``NA``, ``null``, `` N/A ``, saved as CSV and
    as Parquet. A CSV reads most such cells as missing; Parquet kept them as text, so its
    numbers, dates and whole-number codes were "not numbers"/"not dates" and its ``''``
    identifiers repeated identifiers. Now such a cell is a missing value of a column of
    numbers, dates or typed categories, and no identifier, whatever the format, either way
    round, in both engines; the rows without an identifier are said (no format said them)."""
    rng = np.random.default_rng(33)
    markers = ["", "NA", "null", " N/A "]

    def table(n: int, start: int) -> pl.DataFrame:
        def text(values: list[str], k: int) -> list[str]:  # one row in ten of a column, not the same rows
            return [markers[i // 10 % 4] if i % 10 == k else v for i, v in enumerate(values)]

        return pl.DataFrame(
            {
                "customer_id": text([f"C{start + i}" for i in range(n)], 0),
                "amount": text([f"{v:.2f}" for v in rng.gamma(2.0, 100.0, n)], 1),
                "opened": text([f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(n)], 2),
                "active": text([str(v) for v in rng.integers(0, 2, n)], 3),
                "plan": [str(v) for v in rng.choice(["basic", "pro", "max"], n)],
                "churned": (rng.random(n) < 0.2).astype(int),
            }
        )

    for name, n, start in (("ref", 3000, 0), ("cur", 1000, 10_000)):
        table(n, start).write_csv(tmp_path / f"{name}.csv")
        table(n, start).write_parquet(tmp_path / f"{name}.parquet")
    scores = {}
    for ref, cur in (("csv", "csv"), ("csv", "parquet"), ("parquet", "csv"), ("parquet", "parquet")):
        for mode in ("exact", "streaming"):
            done = churnops(
                tmp_path, "monitor", "-r", f"ref.{ref}", "-p", f"cur.{cur}", "--target", "churned",
                "--id", "customer_id", "--mode", mode, "--no-cache",
                # a Parquet file's text is text: its numbers and dates are named
                "--set", "columns.numerical=['amount']", "--set", "columns.datetime=['opened']",
            )  # fmt: skip
            assert done.returncode in (0, 3), done.stderr
            found = metrics(tmp_path)
            checks = {(c["check"], c["column"]): c for c in found["data_quality"]["checks"]}
            assert not [key for key in checks if key[0] in ("unparsable", "duplicated_ids")], (ref, cur, mode, checks)
            # whole-number codes are typed by a CSV reference; a Parquet one's text stays text
            for column in ("amount", "opened", "active") if ref == "csv" else ("amount", "opened"):
                assert checks["missing", column]["count"] == 100, (ref, cur, mode, column)
            missing_ids = checks["missing_ids", "customer_id"]
            assert missing_ids["count"] == 100 and missing_ids["severity"] == "warning"
            # a CSV reads '', NA and null as missing, but not ' N/A ' (blanks around it): it is said
            written = "written as '', ' N/A ', 'NA', 'null'" if cur == "parquet" else "25 of them written as ' N/A '"
            assert missing_ids["message"] == (
                f"100 rows without an identifier ({written}, text that stands for a missing value), "
                "not checked for repeats"
            )
            scores[ref, cur, mode] = (found["data_quality"]["score"], found["dataset_drift"]["score"])
    assert len({scores[key] for key in scores if key[0] == "csv"}) == 1, scores
    assert len({scores[key] for key in scores if key[:2] == ("parquet", "parquet")}) == 1, scores


def test_identifier_keys_leave_out_cells_a_csv_reads_as_missing_in_dictionary_columns():
    """A Parquet dictionary column (as the streaming engine reads text) and a plain one give the
    same rows without an identifier."""
    import pyarrow as pa

    from churnops.monitor.batch import identifier_keys

    values = ["C1", "", None, "NA", "", "C1", "C2"]
    plain = identifier_keys(pa.array(values))
    coded = identifier_keys(pa.array(values).dictionary_encode())
    for _keys, present, text in (plain, coded):
        assert present.tolist() == [True, False, False, False, False, True, True]
        assert text == {"": 2, "NA": 1}
    assert (plain[0][plain[1]] == coded[0][coded[1]]).all()
    assert identifier_keys(pa.array([1, 2, None]))[2] == {}


def test_a_column_empty_in_the_reference_that_fills_in_the_batch_is_said(tmp_path):
    """A column every value of which is missing in the reference cannot be tested: the reference's
    notice said so, and nothing said when the batch came with values in it (a field the bank
    began to fill). Now a warning counts the batch's values, in both engines and either format;
    a batch as empty (nulls, or ``''``/``NA`` text in Parquet) says nothing."""
    rng = np.random.default_rng(5)
    n = 1000
    reference = pl.DataFrame(
        {
            "segment": pl.Series([None] * 2 * n, dtype=pl.String),
            "limit": pl.Series([None] * 2 * n, dtype=pl.Int64),
            "amount": rng.gamma(2.0, 100.0, 2 * n),
            "churned": rng.integers(0, 2, 2 * n),
        }
    )
    reference.write_csv(tmp_path / "ref.csv")
    reference.write_parquet(tmp_path / "ref.parquet")
    base = {"amount": rng.gamma(2.0, 100.0, n), "churned": rng.integers(0, 2, n)}
    filled = pl.DataFrame(
        {
            "segment": [None if i % 4 == 0 else "retail <b>" if i % 2 else "NA" for i in range(n)],
            "limit": [None if i % 5 == 0 else 1000 + i for i in range(n)],
            **base,
        }
    )
    empty = pl.DataFrame({"segment": ["", "NA", " null", None] * (n // 4), "limit": [None] * n, **base})
    filled.write_parquet(tmp_path / "filled.parquet")
    filled.write_csv(tmp_path / "filled.csv")
    empty.write_parquet(tmp_path / "empty.parquet")
    for ref in ("csv", "parquet"):
        for cur, mode in (("filled.parquet", "exact"), ("filled.csv", "streaming"), ("empty.parquet", "exact")):
            done = churnops(
                tmp_path, "monitor", "-r", f"ref.{ref}", "-p", cur, "--target", "churned", "--mode", mode, "--no-cache"
            )
            assert done.returncode == 0, done.stderr
            checks = {c["column"]: c for c in metrics(tmp_path)["data_quality"]["checks"]}
            said = [line for line in done.stdout.splitlines() if "empty in the reference" in line]
            if cur == "empty.parquet":
                assert "segment" not in checks and "limit" not in checks and not said, (ref, checks)
                continue
            # 'NA' text is a missing value in a CSV, and Parquet's 'NA' stands for one too
            assert checks["segment"]["count"] == 500 and checks["limit"]["count"] == 800, (ref, cur, checks)
            assert checks["segment"]["check"] == checks["limit"]["check"] == "empty_in_reference"
            assert checks["segment"]["severity"] == "warning"
            assert said == [
                "NOTICE: not tested, empty in the reference but not in this batch: limit (800 values), segment "
                "(500 values); a reference that holds their values is needed to test them"
            ], (ref, cur, done.stdout)
            assert metrics(tmp_path)["data_quality"]["passed"]


def test_unparsable_cells_are_shown_by_example(tmp_path):
    """ "32 values are not numbers" sent the user to search the file for them; the check now
    shows up to three of them as written, the same in both engines and formats, escaped for
    the terminal and the report (a cell with an escape sequence stays text)."""
    rng = np.random.default_rng(8)

    def table(n: int, bad: bool) -> pl.DataFrame:
        def spoil(values: list[str], cells: dict[int, str]) -> list[str]:
            return [next((c for k, c in cells.items() if bad and i % k == 0), v) for i, v in enumerate(values)]

        return pl.DataFrame(
            {
                "amount": spoil([f"{v:.2f}" for v in rng.gamma(2.0, 50.0, n)], {50: "12,5", 77: "x\x1b[31m<b>"}),
                "opened": spoil([f"2024-0{1 + i % 9}-1{i % 9}" for i in range(n)], {60: "31/02/2024", 61: "soon"}),
                "active": spoil([str(v) for v in rng.choice(["true", "false"], n)], {40: "maybe"}),
                "churned": rng.integers(0, 2, n),
            }
        )

    table(3000, False).write_csv(tmp_path / "ref.csv")
    table(1000, True).write_csv(tmp_path / "cur.csv")
    pl.read_csv(tmp_path / "cur.csv", infer_schema=False).write_parquet(tmp_path / "cur.parquet")
    for cur in ("cur.csv", "cur.parquet"):
        for mode in ("exact", "streaming"):
            done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", cur, "-t", "churned", "--mode", mode)
            assert done.returncode == 0, done.stderr
            said = {c["column"]: c["message"] for c in metrics(tmp_path)["data_quality"]["checks"]}
            assert said["amount"] == "32 values are not numbers, e.g. '12,5', 'x\\x1b[31m<b>'", (cur, mode)
            assert said["opened"] == "33 values are not dates, e.g. '31/02/2024', 'soon'", (cur, mode)
            assert said["active"] == "25 values are not true/false, e.g. 'maybe'", (cur, mode)
            report = (tmp_path / "monitoring" / "monitoring_report.html").read_text().replace("<wbr>", "")
            assert "e.g. &#39;12,5&#39;, &#39;x\\x1b[31m&lt;b&gt;&#39;</td>" in report
            assert "\x1b" not in report
            assert "\x1b" not in done.stdout


def test_a_batch_holding_columns_in_other_types_reads_the_same_in_both_engines(tmp_path):
    """A Parquet batch whose writer typed columns otherwise than the reference: dates written
    as whole numbers (20240101), dates in a column of numbers, 1.5 among whole-number codes, 2
    among true/false, NaN codes. The codes were cut (1.5 counted as code 1, 2 as true), and the
    streaming engine read 20240101 as a day number and a date as its day number, where the exact
    engine said "not dates"/"not numbers". Now both say what the cells are, with examples."""
    rng = np.random.default_rng(11)
    n, m = 3000, 1000
    pl.DataFrame(
        {
            "opened": [f"2024-0{1 + i % 9}-1{i % 9}" for i in range(n)],
            "amount": rng.gamma(2.0, 50.0, n),
            "code": rng.integers(0, 5, n),
            "plan": rng.integers(0, 3, n),
            "active": rng.random(n) < 0.5,
            "churned": rng.integers(0, 2, n),
        }
    ).write_csv(tmp_path / "ref.csv")
    pl.DataFrame(
        {
            "opened": pl.Series([20240101 + i % 20 for i in range(m)]),
            "amount": pl.Series([date(2024, 1, 1)] * m),
            "code": pl.Series([1.5 if i % 10 == 0 else float(i % 5) for i in range(m)]),
            "plan": pl.Series([float("nan") if i % 10 == 0 else float(i % 3) for i in range(m)]),
            "active": pl.Series([2 if i % 10 == 0 else i % 2 for i in range(m)]),
            "churned": rng.integers(0, 2, m),
        }
    ).write_parquet(tmp_path / "cur.parquet")
    found = {}
    for mode in ("exact", "streaming"):
        done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.parquet", "-t", "churned", "--mode", mode)
        assert done.returncode in (0, 3), done.stderr
        quality = metrics(tmp_path)["data_quality"]
        found[mode] = (quality["score"], {(c["check"], c["column"]): c["message"] for c in quality["checks"]})
    assert found["exact"] == found["streaming"]
    said = found["exact"][1]
    assert said["unparsable", "opened"] == "1,000 values are not dates, e.g. '20240101', '20240102', '20240103'"
    assert said["unparsable", "amount"] == "1,000 values are not numbers, e.g. '2024-01-01'"
    assert said["unparsable", "code"] == "100 values are not whole numbers, e.g. '1.5'"
    assert said["unparsable", "active"] == "100 values are not true/false, e.g. '2'"
    assert said["missing", "plan"] == "100 missing values" and ("unparsable", "plan") not in said


def test_identifiers_stored_as_unsigned_or_decimal_numbers_keep_every_digit(tmp_path):
    """A Parquet file's unsigned 64-bit and decimal(38, 0) identifiers (hashed keys, database
    keys) were read as floats: 2**53 and 2**53 + 1 were one identifier and their rows one row.
    Identifier columns of these types are read as their text, in both engines."""
    from decimal import Decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(2)
    pl.DataFrame({"id": range(400), "x": rng.normal(size=400), "churned": rng.integers(0, 2, 400)}).write_csv(
        tmp_path / "ref.csv"
    )
    big = [2**53 + k for k in range(4)]
    for name, ids in (
        ("u64", pa.array(big, pa.uint64())),
        ("dec", pa.array([Decimal(v) for v in big], pa.decimal128(38, 0))),
        ("dup", pa.array(big[:3] + big[:1], pa.uint64())),  # one identifier really repeated
    ):
        pq.write_table(pa.table({"id": ids, "x": [0.5] * 4, "churned": [1] * 4}), tmp_path / f"{name}.parquet")
    for mode in ("exact", "streaming"):
        for name, repeats in (("u64", 0), ("dec", 0), ("dup", 1)):
            done = churnops(
                tmp_path, "monitor", "-r", "ref.csv", "-p", f"{name}.parquet", "-t", "churned", "--id", "id",
                "--mode", mode, "--no-cache",
            )  # fmt: skip
            assert done.returncode in (0, 3), done.stderr
            checks = {c["check"]: c for c in metrics(tmp_path)["data_quality"]["checks"]}
            assert checks.get("duplicated_ids", {}).get("count", 0) == repeats, (mode, name, checks)
            assert checks.get("duplicated_rows", {}).get("count", 0) == repeats, (mode, name, checks)


def test_empty_in_reference_covers_every_flat_type_but_not_a_reference_of_unparsable_cells(tmp_path):
    """Categorical, enum and binary columns empty in a Parquet reference were left unsaid when the
    batch filled them; a column declared numerical whose reference cells are all unparsable
    ('pending') was said to have "none in the reference" though it had values, just none usable."""
    rng = np.random.default_rng(6)
    n = 400
    kinds = {"cat": pl.Categorical, "enum": pl.Enum(["a", "b"]), "bin": pl.Binary}
    reference = pl.DataFrame(
        {
            **{name: pl.Series([None] * n, dtype=dtype) for name, dtype in kinds.items()},
            "score": ["pending"] * n,
            "amount": rng.gamma(2.0, 100.0, n),
            "churned": rng.integers(0, 2, n),
        }
    )
    batch = pl.DataFrame(
        {
            "cat": pl.Series(["a", None] * (n // 2), dtype=pl.Categorical),
            "enum": pl.Series(["b"] * n, dtype=pl.Enum(["a", "b"])),
            "bin": pl.Series([b"\x00\x01", None, None, None] * (n // 4), dtype=pl.Binary),
            "score": ["12.5", "pending"] * (n // 2),
            "amount": rng.gamma(2.0, 100.0, n),
            "churned": rng.integers(0, 2, n),
        }
    )
    reference.write_parquet(tmp_path / "ref.parquet")
    batch.write_parquet(tmp_path / "cur.parquet")
    for mode in ("exact", "streaming"):
        done = churnops(
            tmp_path, "monitor", "-r", "ref.parquet", "-p", "cur.parquet", "--target", "churned", "--mode", mode,
            "--no-cache", "--set", "columns.numerical=['score']",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        said = {
            c["column"]: c["count"]
            for c in metrics(tmp_path)["data_quality"]["checks"]
            if c["check"] == "empty_in_reference"
        }
        assert said == {"cat": 200, "enum": 400, "bin": 100}, (mode, said)


def test_the_reports_command_repeats_a_run_started_with_a_project_folder(own):
    """With -C, the files' relative paths are relative to that folder: the report's command named
    them without it, and run from anywhere else it read other files or none."""
    import html
    import re
    import shlex

    done = churnops(own.parent, "-C", own.name, "monitor", "-r", "mine.csv", "-p", "batch.csv", "-t", "churned")
    assert done.returncode == 0, done.stderr
    first = metrics(own)
    page = (own / "monitoring" / "monitoring_report.html").read_text()
    shown = html.unescape(re.search(r"Reproduce this run: <code>(.*?)</code>", page).group(1).replace("<wbr>", ""))
    words = shlex.split(shown)
    assert words[words.index("-C") + 1] == str(own.resolve()), shown
    elsewhere = own / "elsewhere"
    elsewhere.mkdir()
    done = churnops(elsewhere, *words[1:])
    assert done.returncode == 0, done.stderr
    assert not (elsewhere / "monitoring").exists()
    assert metrics(own)["dataset_drift"] == first["dataset_drift"]
    assert metrics(own)["run_id"] != first["run_id"]


def test_a_label_column_renamed_in_the_batch_is_an_error_not_a_batch_without_labels(own):
    """A batch whose label header was 'Churned' for the reference's 'churned' was read as a batch
    without labels: its doubled rate was never compared, 'OK: no drift' and exit 0. A feature
    renamed so stops the run; the label does too. A batch without the column still runs."""
    batch = pl.read_csv(own / "batch.csv")
    batch.rename({"churned": "Churned"}).write_csv(own / "renamed.csv")
    done = churnops(own, "monitor", "-r", "mine.csv", "-p", "renamed.csv", "-t", "churned")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "\nerror: renamed.csv: current data lacks the target churned; it has Churned, the same" in done.stderr
    batch.drop("churned").with_columns(churned_score=pl.lit(0.5)).write_csv(own / "unlabelled.csv")
    done = churnops(own, "monitor", "-r", "mine.csv", "-p", "unlabelled.csv", "-t", "churned")
    assert done.returncode == 0 and "target churned: not in this batch (no labels yet)" in done.stdout, done.stderr


def test_a_drifted_column_too_few_for_an_alarm_is_said_as_such(tmp_path):
    """'OK: no drift: 1 of 11 columns drifted' read as a contradiction (South's premiums +30%), and
    the report said 'Nothing to do': the run ends with a warning that names the column, too few
    for the dataset's alarm (no trigger, exit 0), and the report says how to be alerted by it."""
    rng = np.random.default_rng(61)

    def table(n: int, shift: float) -> pl.DataFrame:
        columns = {f"x{i}": rng.normal(0, 1, n) for i in range(10)}
        return pl.DataFrame({**columns, "premium": rng.normal(100 + shift, 10, n)})

    table(4_000, 0).write_csv(tmp_path / "reference.csv")
    table(2_000, 30).write_csv(tmp_path / "batch.csv")
    done = churnops(tmp_path, "monitor", "-r", "reference.csv", "-p", "batch.csv")
    assert done.returncode == 0, done.stderr
    headline = done.stdout.splitlines()[0]
    assert headline == (
        "WARNING: column drift: premium (1 of 11 columns: too few for the dataset alarm: score 0.091, alarm above 0.1)"
    ), headline
    verdict = metrics(tmp_path)["verdict"]
    assert verdict["status"] == "warning" and not verdict["trigger"], verdict
    assert not (tmp_path / "trigger.txt").exists()
    page = (tmp_path / "monitoring" / "monitoring_report.html").read_text()
    assert "Nothing to do" not in page and "set it to 0 to be alerted by any drifted column" in page


def test_whole_numbers_with_a_stray_cell_are_numbers_from_parquet_as_from_csv(tmp_path):
    """Whole amounts, most of them distinct, with one 'n/a': numbers from a CSV file (a drift found),
    free text from Parquet (pandas saves such a column as text) - untested, 'OK: no drift'."""
    import pandas as pd

    rng = np.random.default_rng(67)

    def table(low: int, high: int) -> pd.DataFrame:
        values = [str(v) for v in rng.integers(low, high, 3_000)]
        values[3] = "n/a"
        return pd.DataFrame({"balance": values, "plan": rng.choice(["a", "b"], 3_000)})

    reference, current = table(1_000, 5_000), table(10_000, 50_000)
    for frame, name in ((reference, "ref"), (current, "cur")):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        frame.to_parquet(tmp_path / f"{name}.parquet")
    read = read_alike(tmp_path, "balance")
    assert read["csv"]["type"] == read["parquet"]["type"] == "numerical", read
    assert read["csv"]["drift_detected"] and read["parquet"]["drift_detected"]


def test_the_reports_command_repeats_a_run_whose_file_names_hold_invisible_characters(own):
    """A batch named 'batch\u200b.csv' was shown escaped in the report's command ('batch\\u200b.csv'):
    pasted, it named another file. Such a name is written $'...', which a shell reads back as written."""
    import html
    import re
    import shlex

    (own / "batch\u200b.csv").write_bytes((own / "batch.csv").read_bytes())
    done = churnops(own.parent, "-C", own.name, "monitor", "-r", "mine.csv", "-p", "batch\u200b.csv", "-t", "churned")
    assert done.returncode == 0, done.stderr
    first = metrics(own)
    page = (own / "monitoring" / "monitoring_report.html").read_text()
    shown = html.unescape(re.search(r"Reproduce this run: <code>(.*?)</code>", page).group(1).replace("<wbr>", ""))
    assert "$'batch\\u200b.csv'" in shown, shown
    command = shown.replace("churnops ", f"{shlex.quote(sys.executable)} -m churnops ", 1)
    done = subprocess.run(["bash", "-c", command], cwd=own.parent, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert metrics(own)["current"]["sha256"] == first["current"]["sha256"]


def test_a_column_empty_by_nature_does_not_fail_the_quality_check(tmp_path):
    """A comment column empty in 90% of the reference's rows is as empty in a good batch: its
    9,000 empty cells made the quality score 0.90 and headed the quality finding, before 800
    repeated rows. The cells the reference's share predicts are not failures; more are."""
    rng = np.random.default_rng(61)

    def table(n: int, empty: float) -> pl.DataFrame:
        notes = rng.choice(["called about fees", "wants a better rate", "moving abroad"], n).tolist()
        return _charges(n, int(rng.integers(1_000))).with_columns(
            note=pl.Series([v if rng.random() >= empty else None for v in notes], dtype=pl.String)
        )

    table(20_000, 0.9).write_csv(tmp_path / "reference.csv")
    table(10_000, 0.9).write_csv(tmp_path / "batch.csv")
    done = churnops(tmp_path, "monitor", "-r", "reference.csv", "-p", "batch.csv")
    quality = metrics(tmp_path)["data_quality"]
    assert quality["passed"] and quality["score"] > 0.99, quality
    check = next(c for c in quality["checks"] if c["check"] == "missing")
    assert check["severity"] == "warning" and "(reference: 90% missing)" in check["message"], check
    # more empty cells than the reference's share predicts fail; so do repeated rows, named first
    batch = table(10_000, 0.97)
    pl.concat([batch, batch.head(800)]).write_csv(tmp_path / "batch.csv")
    done = churnops(tmp_path, "monitor", "-r", "reference.csv", "-p", "batch.csv")
    quality = metrics(tmp_path)["data_quality"]
    check = next(c for c in quality["checks"] if c["check"] == "missing")
    assert check["severity"] == "error" and not quality["passed"], quality
    assert quality["checks"][0]["check"] == "duplicated_rows", quality["checks"][:2]
    assert "worst: 800 rows repeat an earlier row" in done.stdout, done.stdout


def test_three_decimals_after_a_comma_with_a_few_below_one_are_decimal_commas(tmp_path):
    """A batch whose usage column is written '4,650' (three decimals, a decimal comma) in a
    comma-separated file: its few '0,840' (0.4% of the cells, under the 1% that decides decimal
    commas) were 'not numbers' and every other cell read as thousands - the usage x1000, 'OK',
    quality 0.9996. No cell is a number a thousands separator leaves as it is ('999'): the column
    is one of decimal commas, unusable as written, and the advice fits a comma-separated file."""
    rng = np.random.default_rng(71)
    n = 10_000
    usage = rng.gamma(2.0, 6.0, 2 * n) + 1.0
    usage[rng.random(2 * n) < 0.005] = rng.uniform(0.1, 0.99)  # now and then below one
    table = pl.DataFrame({"usage_gb": usage.round(3), "plan": rng.choice(["a", "b", "c"], 2 * n)})
    table.head(n).write_csv(tmp_path / "reference.csv")
    batch = table.tail(n).with_columns(
        usage_gb=pl.col("usage_gb").map_elements(lambda v: f"{v:.3f}".replace(".", ","), return_dtype=pl.String)
    )
    assert batch["usage_gb"].str.starts_with("0,").sum() < 0.01 * n
    batch.write_csv(tmp_path / "batch.csv")  # the commas quoted
    done = churnops(tmp_path, "monitor", "-r", "reference.csv", "-p", "batch.csv")
    column = metrics(tmp_path)["columns"]["usage_gb"]
    assert column["current"]["unparsable"] == n and column.get("current", {}).get("mean") is None, column["current"]
    assert "OK" not in done.stdout.splitlines()[0], done.stdout
    advice = "decimal commas in a comma-separated file: export it with separator ';', then set data.current.decimal"
    assert f"usage_gb: 100% of the values are missing or unusable (reference: 0%); {advice}" in done.stdout, done.stdout
    batch.write_csv(tmp_path / "batch.csv", separator=";")  # as advised: read right
    args = ["--set", "data.current.separator=';'", "--set", "data.current.decimal=','"]
    done = churnops(tmp_path, "monitor", "-r", "reference.csv", "-p", "batch.csv", *args)
    column = metrics(tmp_path)["columns"]["usage_gb"]
    assert column["current"]["unparsable"] == 0 and not column["drift_detected"], column
    assert column["current"]["mean"] == pytest.approx(float(table.tail(n)["usage_gb"].mean()), rel=1e-9)


def test_a_column_of_decimal_points_in_a_decimal_comma_file_is_read_with_points(tmp_path):
    """A French export (';', decimal commas) whose usage column came out with decimal points -
    '10.669' beside '4.85': read with data.current.decimal = ',', the points of '10.669' grouped
    thousands (10669) and those of '4.85' did not: 90% of the column x1000, 'OK', quality 1.0. A
    column with two cells at least whose point cannot group digits, and no decimal comma, is read
    with decimal points."""
    rng = np.random.default_rng(73)
    n = 10_000
    usage = rng.gamma(2.0, 6.0, 2 * n) + 0.2
    table = pl.DataFrame({"usage_gb": usage, "charge": rng.normal(40, 9, 2 * n).round(2)})
    table.head(n).write_csv(tmp_path / "reference.csv")
    written = [f"{v:.3f}" if i % 10 else f"{v:.2f}" for i, v in enumerate(table.tail(n)["usage_gb"].to_list())]
    batch = pl.DataFrame(
        {"usage_gb": written, "charge": [f"{v:.2f}".replace(".", ",") for v in table.tail(n)["charge"]]}
    )
    batch.write_csv(tmp_path / "batch.csv", separator=";")
    args = ["--set", "data.current.separator=';'", "--set", "data.current.decimal=','"]
    done = churnops(tmp_path, "monitor", "-r", "reference.csv", "-p", "batch.csv", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("usage_gb", "charge"):
        column = metrics(tmp_path)["columns"][name]
        assert column["current"]["unparsable"] == 0 and not column["drift_detected"], (name, column)
    assert metrics(tmp_path)["columns"]["usage_gb"]["current"]["max"] < 1_000


def test_a_label_left_unnamed_is_pointed_at(tmp_path):
    """Without --target, a telecom's port_out label was tested as one more feature: its rise from
    10.7% to 17.6% was a Jensen-Shannon distance of 0.07, no drift, and only 'target: none named'
    hinted at it. A notice names the two-valued column that reads like a label, and init takes it
    as the target."""
    rng = np.random.default_rng(79)

    def table(n: int, rate: float) -> pl.DataFrame:
        return pl.DataFrame({"charge": rng.normal(40, 9, n), "port_out": (rng.random(n) < rate).astype(int)})

    table(6_000, 0.107).write_csv(tmp_path / "reference.csv")
    table(3_000, 0.176).write_csv(tmp_path / "batch.csv")
    done = churnops(tmp_path, "monitor", "-r", "reference.csv", "-p", "batch.csv")
    assert "NOTICE: 'port_out' looks like the target: --target 'port_out'" in done.stderr, done.stderr
    done = churnops(tmp_path, "init", "-r", "reference.csv")
    assert "target: port_out" in done.stdout, done.stdout
    done = churnops(tmp_path, "monitor", "-p", "batch.csv")
    assert done.stdout.startswith("ALERT: port_out rate rose from 10."), done.stdout


def test_a_category_written_in_another_case_is_named_as_the_reference_s(tmp_path):
    """'Prepaid' exported as 'PREPAID' for a quarter of the rows drifted as a new category, and the
    quality line said only '2,516 values in 1 category the reference never had'."""
    rng = np.random.default_rng(83)
    plans = rng.choice(["Prepaid", "Monthly", "Annual"], 9_000)
    pl.DataFrame({"plan": plans[:6_000], "charge": rng.normal(40, 9, 6_000)}).write_csv(tmp_path / "reference.csv")
    batch = [p.upper() if p == "Prepaid" and i % 2 else p for i, p in enumerate(plans[6_000:])]
    pl.DataFrame({"plan": batch, "charge": rng.normal(40, 9, 3_000)}).write_csv(tmp_path / "batch.csv")
    done = churnops(tmp_path, "monitor", "-r", "reference.csv", "-p", "batch.csv")
    assert "'PREPAID' is the reference's 'Prepaid' written otherwise" in done.stdout, done.stdout
    checks = metrics(tmp_path)["data_quality"]["checks"]
    assert any(c["check"] == "new_category" and "written otherwise" in c["message"] for c in checks), checks


def test_init_does_not_choose_decimal_commas_for_a_file_of_decimal_points(tmp_path):
    """A ';' file of amounts written with points ('57.153') and version codes such as '1,25': init
    chose decimal = ',' from the codes, and every amount then read x1000, without a word."""
    rng = np.random.default_rng(89)
    rows = [f"{i};{rng.uniform(10, 60):.3f};{rng.choice(['1,25', '2,10', '1,5', '3,0'])};{i % 2}" for i in range(600)]
    (tmp_path / "ref.csv").write_text("id;amount;version;churned\n" + "\n".join(rows) + "\n")
    done = churnops(tmp_path, "init", "-r", "ref.csv")
    assert done.returncode == 0, done.stderr
    assert "beside numbers written with decimal points (amount): export the file with one decimal mark" in done.stdout
    text = (tmp_path / "churnops.toml").read_text()
    assert 'decimal = "."' in text and "#   amount: numerical" in text, text


def test_a_column_read_a_thousand_times_larger_is_said_so(tmp_path):
    """A batch of three-decimal amounts written with decimal commas, every one at least 1 ('6,486'):
    nothing tells them from thousands, so they read x1000 - an ALERT whose only hint was '3,000
    values outside the reference range'. A column about a thousand times the reference's (or a
    thousandth) is named in the quality checks as a decimal mark read as thousands."""
    rng = np.random.default_rng(97)
    values = rng.uniform(1, 12, 6_000)
    pl.DataFrame({"x": values[:3_000].round(3), "g": rng.choice(["a", "b"], 3_000)}).write_csv(tmp_path / "ref.csv")
    written = [f"{v:.3f}".replace(".", ",") for v in values[3_000:]]
    pl.DataFrame({"x": written, "g": rng.choice(["a", "b"], 3_000)}).write_csv(tmp_path / "cur.csv")
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.csv")
    assert "x: values about 1,0" in done.stdout and "a decimal mark read as thousands?" in done.stdout, done.stdout
    checks = [c["check"] for c in metrics(tmp_path)["data_quality"]["checks"] if c["column"] == "x"]
    assert "scale" in checks and "out_of_reference_range" not in checks, checks
    pl.DataFrame({"x": values[3_000:].round(3), "g": rng.choice(["a", "b"], 3_000)}).write_csv(tmp_path / "cur.csv")
    churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.csv")  # the same numbers with points: no word
    assert not [c for c in metrics(tmp_path)["data_quality"]["checks"] if c["check"] == "scale"]


def test_the_column_drift_warning_names_an_emptied_column_apart(tmp_path):
    """Two of 21 columns drifted, too few for the alarm - one shifted, one emptied: the warning
    said 'column drift: x0 (2 of 21 columns ...)', the emptied x1 counted but not named."""
    rng = np.random.default_rng(101)
    reference = pl.DataFrame({f"x{i}": rng.normal(0, 1, 3_000) for i in range(21)})
    reference.write_csv(tmp_path / "ref.csv")
    batch = pl.DataFrame({f"x{i}": rng.normal(1.0 if i == 0 else 0, 1, 1_500) for i in range(21)})
    batch.with_columns(x1=pl.lit(None, dtype=pl.Float64)).write_csv(tmp_path / "cur.csv")
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.csv")
    assert "  - column drift: x0; no usable value in the batch: x1 (2 of 21 columns" in done.stdout, done.stdout


def _with_blank_lines(frame: pl.DataFrame, path: Path, blanks: int) -> None:
    """``frame`` as CSV, then ``blanks`` rows of empty cells (``,,,,``: a spreadsheet's export)."""
    frame.write_csv(path)
    with path.open("a") as out:
        out.write(("," * (frame.width - 1) + "\n") * blanks)


@pytest.mark.parametrize("mode", ["exact", "streaming"])
def test_blank_lines_are_empty_rows_not_missing_values_in_every_column(tmp_path, mode):
    """Six blank lines at the end of an export were six missing values in every column and five
    repeated rows, in the quality score and its checks; they are one warning now, and the run's
    numbers are those of the file without them - in the batch and in the reference alike."""
    rng = np.random.default_rng(5)
    reference, batch = make(rng, 4000, 1), make(rng, 2000, 4001, shift=40.0)
    reference.write_csv(tmp_path / "ref.csv")
    batch.write_csv(tmp_path / "cur.csv")
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.csv", "--mode", mode, "--no-cache")
    assert done.returncode == 0, done.stderr
    plain = metrics(tmp_path)
    _with_blank_lines(reference, tmp_path / "ref_blank.csv", 3)
    _with_blank_lines(batch, tmp_path / "cur_blank.csv", 6)
    done = churnops(tmp_path, "monitor", "-r", "ref_blank.csv", "-p", "cur_blank.csv", "--mode", mode, "--no-cache")
    assert done.returncode == 0, done.stderr
    blank = metrics(tmp_path)
    assert "ref_blank.csv: 3 empty rows (no value in any column) left out" in done.stderr
    checks = blank["data_quality"]["checks"]
    assert [(c["check"], c["count"], c["severity"]) for c in checks if c["check"] == "empty_rows"] == [
        ("empty_rows", 6, "warning")
    ]
    assert not [c for c in checks if c["check"] in ("missing", "duplicated_rows")], checks
    assert "6 empty rows (no value in any column) left out" in done.stdout
    assert blank["current"]["rows"] == plain["current"]["rows"] == 2000
    assert blank["reference"]["rows"] == plain["reference"]["rows"] == 4000
    assert blank["data_quality"]["score"] == plain["data_quality"]["score"]
    for name, column in plain["columns"].items():
        assert blank["columns"][name]["drift_score"] == column["drift_score"], name
        assert blank["columns"][name]["drift_detected"] == column["drift_detected"], name


def test_empty_rows_are_found_in_parquet_and_a_batch_of_only_empty_rows_is_refused(tmp_path):
    rng = np.random.default_rng(6)
    make(rng, 3000, 1).write_csv(tmp_path / "ref.csv")
    batch = make(rng, 1000, 3001)
    empty = pl.DataFrame({name: [None] * 4 for name in batch.columns}, schema=batch.schema)
    only_id = empty.head(1).with_columns(pl.lit(99999, dtype=batch.schema["row"]).alias("row"))
    pl.concat([batch.head(500), empty, only_id, batch.tail(500)]).write_parquet(tmp_path / "cur.parquet")
    for mode in ("exact", "streaming"):
        done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.parquet", "--mode", mode)
        assert done.returncode == 0, done.stderr
        found = metrics(tmp_path)
        assert found["current"]["rows"] == 1001  # a row with an identifier only is a row
        assert [c["count"] for c in found["data_quality"]["checks"] if c["check"] == "empty_rows"] == [4]
    _with_blank_lines(batch.head(0), tmp_path / "blank.csv", 5)
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "blank.csv")
    assert done.returncode == 2
    assert "blank.csv: has no data: its 5 rows are empty (no value in any column)" in done.stderr


def test_a_date_of_the_record_that_every_batch_moves_past_is_pointed_at(tmp_path):
    """A snapshot date: each monthly batch's dates all lie after the reference's last, so it drifts
    every night whatever the customers do; the quality check says what it likely is and the way out."""
    rng = np.random.default_rng(8)
    reference, batch = make(rng, 3000, 1), make(rng, 1000, 3001)
    reference.with_columns(snapshot=pl.lit("2024-01-15")).write_csv(tmp_path / "ref.csv")
    batch.with_columns(snapshot=pl.lit("2024-07-15")).write_csv(tmp_path / "cur.csv")
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.csv", "--set", "columns.datetime=['snapshot']")
    assert done.returncode == 0, done.stderr
    checks = metrics(tmp_path)["data_quality"]["checks"]
    (check,) = [c for c in checks if c["column"] == "snapshot" and c["check"] == "out_of_reference_range"]
    assert check["count"] == 1000
    assert "every date after the reference's last - the date of the record? (columns.ignored" in check["message"]
    line = next(line for line in done.stdout.splitlines() if line.startswith("data quality"))
    assert "(ok; " in line and "which lower no score)" in line, line  # beside a list of warnings, not a contradiction
    batch.with_columns(snapshot=pl.lit("2023-07-15")).write_csv(tmp_path / "old.csv")  # before it: not that
    assert (
        churnops(
            tmp_path, "monitor", "-r", "ref.csv", "-p", "old.csv", "--set", "columns.datetime=['snapshot']"
        ).returncode
        == 0
    )
    checks = metrics(tmp_path)["data_quality"]["checks"]
    (check,) = [c for c in checks if c["column"] == "snapshot" and c["check"] == "out_of_reference_range"]
    assert "date of the record" not in check["message"]


def test_a_scenario_drifts_labels_written_as_words(tmp_path):
    """generate on a reference whose labels are words ('Attrited Customer') failed with 'target_rate
    needs a 0/1 column': the positive label is columns.target_positive (or the operation's value)."""
    rng = np.random.default_rng(3)
    n = 4_000
    words = np.where(rng.random(n) < 0.2, "Attrited Customer", "Existing Customer").tolist()
    labels = pl.Series("Attrition", [None] * 40 + words[40:], dtype=pl.String)  # a few not labelled yet
    pl.DataFrame({"Charges": rng.normal(70, 10, n).round(2), "Attrition": labels}).write_csv(tmp_path / "ref.csv")
    scenario = (
        '[scenario]\nname = "mine"\n\n[[scenario.custom.mine]]\nop = "target_rate"\ncolumn = "Attrition"\n'
        "amount = 0.1\n"
    )
    paths = '[paths]\nreference = "ref.csv"\nproduction = "batch.csv"\n\n'
    (tmp_path / "churnops.toml").write_text(paths + scenario)
    done = churnops(tmp_path, "generate")  # the default rows are the embedded data's: say how to choose
    assert done.returncode == 2 and "only 4000 data rows" in done.stderr and "--rows START:END" in done.stderr
    done = churnops(tmp_path, "generate", "--rows", "0:4000")
    assert done.returncode == 2 and "labels of 'Attrition' are not 0/1 (" in done.stderr, done.stderr
    assert "'Existing Customer'" in done.stderr and "'Attrited Customer'" in done.stderr
    assert "columns.target_positive" in done.stderr and not (tmp_path / "batch.csv").exists()

    columns = '[columns]\ntarget = "Attrition"\ntarget_positive = "Attrited Customer"\n\n'
    (tmp_path / "churnops.toml").write_text(paths + columns + scenario)
    done = churnops(tmp_path, "generate", "--rows", "0:4000")
    assert done.returncode == 0, done.stderr
    batch = pl.read_csv(tmp_path / "batch.csv")["Attrition"]
    assert set(batch.drop_nulls().unique()) == {"Attrited Customer", "Existing Customer"}
    assert batch.null_count() == 40  # no label made up
    rate = (batch.drop_nulls() == "Attrited Customer").mean()
    before = (labels.drop_nulls() == "Attrited Customer").mean()
    assert abs(rate - before - 0.1) < 0.002, (before, rate)
    assert "target rate" in done.stdout and "(requested +10.00%" in done.stdout

    (tmp_path / "churnops.toml").write_text(paths + scenario + 'value = "Existing Customer"\n')  # the other way
    assert churnops(tmp_path, "generate", "--rows", "0:4000", "--force").returncode == 0
    assert (pl.read_csv(tmp_path / "batch.csv")["Attrition"].drop_nulls() == "Existing Customer").mean() > 0.85


def test_a_label_column_not_filled_yet_is_no_quality_failure(tmp_path):
    """An export whose label column is there but empty (the outcomes come later) gave a WARNING
    every night - 'churn mostly missing or unusable' - where a batch without the column is OK."""
    from churnops.data.generator import generate_reference

    generate_reference(6_000, 3).write_csv(tmp_path / "ref.csv")
    batch = generate_reference(6_000, 4).with_columns(pl.lit(None, dtype=pl.Int64).alias("Churn Flag"))
    batch.write_csv(tmp_path / "cur.csv")
    done = churnops(tmp_path, "monitor", "-r", "ref.csv", "-p", "cur.csv", "-t", "Churn Flag")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK: "), done.stdout
    assert "target Churn Flag: not compared - no label in this batch yet (the column is empty)" in done.stdout
    document = metrics(tmp_path)
    assert document["data_quality"]["score"] == 1.0
    assert not [c for c in document["data_quality"]["checks"] if c.get("column") == "Churn Flag"]
    assert "Churn Flag" in {s["name"] for s in document["skipped_columns"]}


def test_init_reads_a_batch_written_otherwise_than_the_reference(tmp_path):
    """init --current took the reference's format for the batch too: monitor then failed on a
    ';'-separated batch of decimal commas, and its advice (init --separator ';') failed on the
    reference. The batch's own format goes in [data.current]."""
    rng = np.random.default_rng(5)

    def frame(n: int) -> pl.DataFrame:
        return pl.DataFrame({"charges": rng.normal(70, 10, n).round(2), "plan": rng.choice(["a", "b"], n)})

    frame(3_000).write_csv(tmp_path / "ref.csv")
    batch = frame(2_000).with_columns(pl.col("charges").cast(pl.String).str.replace(".", ",", literal=True))
    batch.write_csv(tmp_path / "batch.csv", separator=";")
    done = churnops(tmp_path, "init", "--reference", "ref.csv", "--current", "batch.csv")
    assert done.returncode == 0, done.stderr
    assert "batch.csv is written otherwise than ref.csv: ';'-separated, decimal mark ','" in done.stdout
    toml = (tmp_path / "churnops.toml").read_text()
    assert "[data.current]" in toml and 'separator = ";"' in toml and 'decimal = ","' in toml
    done = churnops(tmp_path, "monitor")
    assert done.returncode == 0, done.stderr
    found = metrics(tmp_path)
    assert found["columns"]["charges"]["type"] == "numerical" and not found["columns"]["charges"]["drift_detected"]
