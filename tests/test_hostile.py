"""The hostile-input suite, run the way a new user runs churnops: a real process per command.

Broken files must give one clean line (exit 2) and leave the previous outputs exactly as they
were; usable but suspicious files are monitored and explained by the quality section; nothing
data-derived reaches the report unescaped. See docs/reliability.md for the list.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from run_outputs import snapshot

BATCH = Path("data/production/bank_churn_prod.csv")


def churnops(root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "CHURNOPS_DEBUG": ""}
    return subprocess.run(
        [sys.executable, "-m", "churnops", *args], cwd=root, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory, bank) -> Path:
    """A workspace after one good drifted run: the outputs every failing run must keep."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "data").mkdir()
    bank.write_csv(root / "data" / "churn.csv")
    assert churnops(root, "generate").returncode == 0
    done = churnops(root, "monitor")
    assert done.returncode == 0, done.stderr
    assert (root / "trigger.txt").exists()
    return root


@pytest.fixture()
def ws(base, tmp_path) -> Path:
    """A private copy of the base workspace."""
    import shutil

    root = tmp_path / "ws"
    shutil.copytree(base, root, symlinks=True)
    return root


def _batch(root: Path) -> pl.DataFrame:
    return pl.read_csv(root / BATCH)


def _write_bad(root: Path, case: str) -> tuple[list[str], str]:
    """Make the broken input for ``case``; return the command's arguments and the expected text."""
    bad = root / "bad.csv"
    batch = _batch(root)
    if case == "missing file":
        return ["monitor", "--current", "nowhere.csv"], "nowhere.csv: file not found"
    if case == "empty file":
        bad.write_bytes(b"")
        return ["monitor", "--current", "bad.csv"], "bad.csv: file is empty"
    if case == "header only":
        bad.write_text(",".join(batch.columns) + "\n")
        return ["monitor", "--current", "bad.csv"], "bad.csv: has a header but no data rows"
    if case == "wrong delimiter":
        batch.write_csv(bad, separator=";")
        return ["monitor", "--current", "bad.csv"], "looks ';'-separated"
    if case == "not UTF-8":
        data = (root / BATCH).read_bytes().replace(b"Doctor", b"Docteur \xe9", 1)
        bad.write_bytes(data)
        return ["monitor", "--current", "bad.csv"], "bad.csv: not valid UTF-8 text at line"
    if case == "column missing":
        batch.drop("Balance").write_csv(bad)
        return ["monitor", "--current", "bad.csv"], "bad.csv: current data lacks the column Balance"
    if case == "column renamed":
        batch.rename({"Income": "Revenue"}).write_csv(bad)
        return ["monitor", "--current", "bad.csv"], "lacks the column Income; it has a column the reference lacks: Rev"
    if case == "duplicate names":
        text = (root / BATCH).read_text().replace("Surname", "Balance", 1)
        bad.write_text(text)
        return ["monitor", "--current", "bad.csv"], "bad.csv: duplicate column names: Balance"
    if case == "nested parquet":
        table = pa.table({"Balance": [1.0, 2.0], "tags": pa.array([[1], [2, 3]], type=pa.list_(pa.int64()))})
        pq.write_table(table, root / "bad.parquet")
        return ["monitor", "--current", "bad.parquet"], "bad.parquet: nested columns are not supported: tags"
    if case == "no column in common":
        pl.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]}).write_csv(bad)
        return ["monitor", "--current", "bad.csv"], "no monitored column in common"
    if case == "bad config value":
        return ["monitor", "--set", "thresholds.dataset_drift=lots"], "thresholds.dataset_drift"
    if case == "unknown config key":
        (root / "churnops.toml").write_text("[thresholds]\ndatset_drift = 0.2\n")
        return ["monitor"], "churnops.toml: thresholds.datset_drift: unknown key"
    if case == "config not TOML":
        (root / "churnops.toml").write_text("[thresholds\n")
        return ["monitor"], "churnops.toml"
    if case == "path leaving the project":
        return ["monitor", "--set", "paths.monitoring_dir='../elsewhere'"], "leaves the project folder"
    if case == "CR-only line ends":
        bad.write_bytes((root / BATCH).read_bytes().replace(b"\n", b"\r"))
        return ["monitor", "--current", "bad.csv"], "carriage return only"
    if case == "UTF-16 text":
        bad.write_bytes((root / BATCH).read_text().encode("utf-16"))
        return ["monitor", "--current", "bad.csv"], "UTF-16"
    if case == "a pipe, not a file":
        os.mkfifo(bad)
        return ["monitor", "--current", "bad.csv"], "not a regular file"
    if case == "a line break inside a column name":
        text = (root / BATCH).read_text()
        bad.write_text(text.replace("Surname", '"Sur\nname"', 1))
        return ["monitor", "--current", "bad.csv"], "line break"
    if case == "a line break in a Parquet column name":
        frame = pl.read_csv(root / BATCH).rename({"Surname": "Sur\n- ALERT: forged"})
        frame.write_parquet(root / "bad.parquet")
        return ["monitor", "--current", "bad.parquet"], "line break"
    raise AssertionError(case)


BAD_CASES = [
    "missing file",
    "empty file",
    "header only",
    "wrong delimiter",
    "not UTF-8",
    "column missing",
    "column renamed",
    "duplicate names",
    "nested parquet",
    "no column in common",
    "bad config value",
    "unknown config key",
    "config not TOML",
    "path leaving the project",
    "CR-only line ends",
    "UTF-16 text",
    "a pipe, not a file",
    "a line break inside a column name",
    "a line break in a Parquet column name",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_broken_input_is_one_line_exit_2_and_the_previous_outputs_are_kept(ws, case):
    args, expected = _write_bad(ws, case)
    before = snapshot(ws)
    done = churnops(ws, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert snapshot(ws) == before
    leftovers = [p.name for p in (ws / "monitoring").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def _metrics(root: Path) -> dict:
    return json.loads((root / "monitoring" / "monitoring_metrics.json").read_text())


def _checks(metrics: dict) -> dict[tuple[str, str | None], dict]:
    return {(c["check"], c.get("column")): c for c in metrics["data_quality"]["checks"]}


def test_suspicious_values_are_monitored_and_explained(ws):
    batch = _batch(ws)
    n = batch.height
    row = pl.int_range(pl.len())
    suspicious = batch.with_columns(
        # numbers as text with thousands separators, and '', NA, null among them
        pl.when(row < 10)
        .then(pl.lit("NA"))
        .when(row < 20)
        .then(pl.lit("null"))
        .when(row < 30)
        .then(pl.lit(""))
        .otherwise(pl.col("Balance").map_elements(lambda v: f"{v:,.2f}", return_dtype=pl.String))
        .alias("Balance"),
        pl.lit(None, dtype=pl.Float64).alias("Income"),  # all missing
        pl.when(row < 50)
        .then(pl.lit("inf"))
        .otherwise(pl.col("Outstanding Loans").cast(pl.String))
        .alias("Outstanding Loans"),
        pl.when(row < 40)
        .then(pl.lit("seven hundred"))
        .otherwise(pl.col("Credit Score").cast(pl.String))
        .alias("Credit Score"),  # changed type in a few rows
        pl.lit("surplus").alias("Unexpected Extra"),
    )
    suspicious.write_csv(ws / "odd.csv")
    done = churnops(ws, "monitor", "--current", "odd.csv")
    assert done.returncode == 0, done.stderr
    metrics = _metrics(ws)
    checks = _checks(metrics)
    assert checks[("missing", "Balance")]["count"] == 30
    assert ("unparsable", "Balance") not in checks  # "1,234.56" is a number
    assert metrics["columns"]["Balance"]["current"]["count"] == n - 30
    assert checks[("missing", "Income")]["count"] == n
    assert "no usable value" in metrics["columns"]["Income"]["note"]
    assert checks[("infinite", "Outstanding Loans")]["count"] == 50
    assert checks[("unparsable", "Credit Score")]["count"] == 40
    assert ("extra_column", "Unexpected Extra") in checks
    assert not metrics["data_quality"]["passed"]
    report = (ws / "monitoring" / "monitoring_report.html").read_text()
    for text in ("Income", "Unexpected Extra", "Credit Score"):
        assert text in report


def test_a_column_constant_in_the_reference(ws):
    reference = pl.read_csv(ws / "data" / "churn.csv").with_columns(pl.lit(1).alias("NumComplaints"))
    reference.write_csv(ws / "flat.csv")
    done = churnops(ws, "monitor", "--reference", "flat.csv", "--reference-rows", "0:20000")
    assert done.returncode == 0, done.stderr
    checks = _checks(_metrics(ws))
    assert ("constant_in_reference", "NumComplaints") in checks


def test_a_million_distinct_categories_and_very_long_strings(ws):
    reference = pl.read_csv(ws / "data" / "churn.csv").head(20_000)
    rows = 1_000_000
    current = pl.concat([reference] * 50).with_columns(
        pl.format("occupation-{}", pl.int_range(pl.len())).alias("Occupation"),
        pl.format("C{}", pl.int_range(pl.len())).alias("CustomerId"),
        pl.when(pl.int_range(pl.len()) < 20)
        .then(pl.lit("<b>" + "x" * 200_000))
        .otherwise(pl.col("Gender"))
        .alias("Gender"),
    )
    assert current.height == rows
    current.write_parquet(ws / "wide_categories.parquet")
    done = churnops(ws, "monitor", "--current", "wide_categories.parquet")
    assert done.returncode == 0, done.stderr
    metrics = _metrics(ws)
    checks = _checks(metrics)
    assert checks[("all_unseen", "Occupation")]["count"] == rows
    assert "999,995 more" in checks[("all_unseen", "Occupation")]["message"]
    assert metrics["columns"]["Occupation"]["drift_detected"]
    assert metrics["columns"]["Occupation"]["current"]["n_categories"] == rows
    # outputs stay small: long labels are shortened, only the top categories are listed
    for name in ("monitoring_metrics.json", "monitoring_report.html"):
        size = (ws / "monitoring" / name).stat().st_size
        assert size < 1_000_000, (name, size)
    report = (ws / "monitoring" / "monitoring_report.html").read_text()
    assert "x" * 1000 not in report and "200003 chars" in report
    assert "<b>xxx" not in report and "&lt;b&gt;xxx" in report


@pytest.fixture(scope="module")
def long_labels_data(tmp_path_factory) -> Path:
    """12,000 distinct 10 kB labels in the reference and in the batch (CSV and Parquet, 120 MB per CSV)."""
    root = tmp_path_factory.mktemp("long-labels")
    for name, seed in (("ref", 1), ("cur", 2)):
        rng = np.random.default_rng(seed)
        frame = pl.DataFrame({"x": rng.normal(size=12_000)}).with_columns(
            (pl.lit("<i>" + "y" * 10_000) + pl.format("-{}-{}", pl.lit(name), pl.int_range(pl.len()))).alias("label")
        )
        frame.write_csv(root / f"{name}.csv")
        frame.write_parquet(root / f"{name}.parquet")
    return root


PEAK_RSS = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""
"""Runs a command from a fresh, small process: a child forked from pytest itself would report
pytest's own memory as its peak (Linux counts the resident set inherited before exec)."""


def _peak_rss_mib(root: Path, *args: str) -> tuple[int, float]:
    """Run churnops; its exit code and the peak resident memory of that process."""
    env = {**os.environ, "COLUMNS": "200", "CHURNOPS_DEBUG": ""}
    command = [sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "churnops", *args]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=True)
    code, kib = done.stdout.split()
    return int(code), int(kib) / 1024


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("mode", ["exact", "streaming"])
def test_distinct_long_labels_cost_memory_per_chunk_not_per_table(long_labels_data, tmp_path, fmt, mode):
    """Every label distinct and 10 kB long: coding each chunk against all known labels made this
    quadratic (25,000 rows: 15-70 s and 2.8 GB), and Arrow grew one dictionary per row group."""
    data = long_labels_data
    code, peak = _peak_rss_mib(
        tmp_path,
        "monitor",
        "--reference",
        str(data / f"ref.{fmt}"),
        "--current",
        str(data / f"cur.{fmt}"),
        "--mode",
        mode,
        "--no-cache",
        "--set",
        'columns.categorical=["label"]',
        "--set",
        "columns.target=''",
        "--set",
        "history.enabled=false",
        "--set",
        "model.monitor='off'",
    )
    assert code == 0
    # the tables hold 120 MB of labels each: 210-265 MiB; the old coding peaked at 1,070-1,410 MiB
    assert peak < 600, peak
    metrics = _metrics(tmp_path)
    label = metrics["columns"]["label"]
    assert label["drift_detected"] and label["current"]["n_categories"] == 12_000
    assert _checks(metrics)[("all_unseen", "label")]["count"] == 12_000
    report = (tmp_path / "monitoring" / "monitoring_report.html").read_text()
    assert "y" * 1_000 not in report and "(10009 chars, sha1 " in report and "&lt;i&gt;yyy" in report


XSS = [
    "<script>alert('col')</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    '=HYPERLINK("http://evil.example","x")',
]


def test_hostile_names_and_values_are_escaped_everywhere(ws):
    rng = np.random.default_rng(7)
    ref = pl.DataFrame(
        {
            XSS[0]: rng.normal(size=3000),
            XSS[1]: rng.choice(["a", "b"], 3000),
            "amount": rng.gamma(2, 50, 3000),
        }
    )
    cur = pl.DataFrame(
        {
            XSS[0]: rng.normal(1.0, size=2000),
            XSS[1]: rng.choice(XSS, 2000),
            "amount": rng.gamma(2, 50, 2000),
        }
    )
    ref.write_csv(ws / "ref.csv")
    cur.write_csv(ws / "cur.csv")
    done = churnops(ws, "monitor", "--reference", "ref.csv", "--current", "cur.csv")
    assert done.returncode == 0, done.stderr
    for name in ("monitoring_report.html", "monitoring_report.standalone.html"):
        html = (ws / "monitoring" / name).read_text()
        assert "<script" not in html.lower()
        assert "<img" not in html.lower()
        assert 'href="javascript:' not in html.lower()
        assert "&lt;script&gt;alert(&#39;col&#39;)&lt;/script&gt;" in html or "&lt;script&gt;" in html
    assert json.loads((ws / "monitoring" / "monitoring_metrics.json").read_text())["columns"][XSS[0]]
    history = churnops(ws, "history", "--column", XSS[1], "--format", "csv")
    assert history.returncode == 0, history.stderr
    rows = list(csv.reader(io.StringIO(history.stdout)))
    assert rows[1:] and any(XSS[1] in cell for row in rows[1:] for cell in row)
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")) or _is_number(cell), row


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


QUIET_RUN = ["--set", "history.enabled=false", "--set", "model.monitor='off'"]


def test_the_evidently_engine_keeps_the_native_verdict_of_an_empty_current_column(tmp_path):
    """Evidently refuses a column with no usable value ("An empty column ... was provided"): the
    run used to end with exit 1. The native engine's verdict (drifted, with a note) is kept."""
    pytest.importorskip("evidently", reason="needs: evidently")
    rng = np.random.default_rng(0)
    schema = {"amount": pl.Float64, "kind": pl.String, "score": pl.Float64, "tier": pl.String}
    pl.DataFrame(
        {
            "amount": rng.normal(size=600),
            "kind": rng.choice(["a", "b", "c"], 600),
            "score": rng.normal(size=600),
            "tier": rng.choice(["x", "y"], 600),
        },
        schema=schema,
    ).write_csv(tmp_path / "ref.csv")
    pl.DataFrame(
        {"amount": rng.normal(size=400), "kind": rng.choice(["a", "b", "c"], 400), "score": None, "tier": None},
        schema=schema,
    ).write_csv(tmp_path / "cur.csv")
    args = ["monitor", "--reference", "ref.csv", "--current", "cur.csv", "--engine", "evidently", *QUIET_RUN]
    done = churnops(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    metrics = _metrics(tmp_path)
    assert metrics["engine"] == "evidently"
    for name in ("score", "tier"):
        column = metrics["columns"][name]
        assert column["drift_detected"] and column["note"] == f"column '{name}' has no usable value in the current data"
    assert metrics["columns"]["amount"]["test"] == "ks" and metrics["columns"]["kind"]["test"] == "chisquare"
    assert metrics["dataset_drift"]["drifted_columns"][-2:] == ["score", "tier"]
    # Evidently's own page is not written unless asked for
    assert not (tmp_path / "monitoring" / "evidently_report.html").exists()
    assert "evidently_report" not in done.stdout and metrics["settings"]["evidently"]["html"] is None


class _Page(HTMLParser):
    """The elements of a page as a browser's tokenizer sees them: start tags and script texts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


EVIDENTLY_XSS = ["</script><script>alert(1)</script>", "<img src=x onerror=alert(2)>", "a&b<!--<script>"]


def test_evidently_page_is_opt_in_and_its_data_cannot_run_as_script(tmp_path):
    """Evidently embeds its data as JSON in a script element without escaping ``</``: hostile
    column names and values ran as script in the saved page."""
    pytest.importorskip("evidently", reason="needs: evidently")
    rng = np.random.default_rng(1)
    hostile_values = [*EVIDENTLY_XSS, "plain"]

    def frame(n, shift):
        return pl.DataFrame(
            {EVIDENTLY_XSS[0]: rng.normal(shift, 1, n), EVIDENTLY_XSS[1]: rng.choice(hostile_values, n)}
        )

    frame(500, 0.0).write_csv(tmp_path / "ref.csv")
    frame(400, 1.0).write_csv(tmp_path / "cur.csv")
    args = ["monitor", "--reference", "ref.csv", "--current", "cur.csv", "--engine", "evidently", *QUIET_RUN]
    page_path = tmp_path / "monitoring" / "evidently_report.html"
    done = churnops(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    assert not page_path.exists()  # not written by default
    done = churnops(tmp_path, *args, "--evidently-html")
    assert done.returncode == 0, done.stderr
    assert f"evidently_report: {page_path}" in done.stdout
    page = _Page()
    page.feed(page_path.read_text(encoding="utf-8"))
    page.close()
    # no element or attribute comes from the data: the page's own four scripts, no <img>, no on*
    assert [tag for tag, _ in page.tags if tag == "script"] == ["script"] * 4
    assert not [tag for tag, _ in page.tags if tag == "img"]
    assert not [name for _, attrs in page.tags for name, _ in attrs if name.lower().startswith("on")]
    for script in page.scripts:
        for hostile in EVIDENTLY_XSS:
            assert hostile not in script
    # the data is all there, escaped: the data script is two JSON assignments
    data_lines = [line for line in page.scripts[0].splitlines() if line.strip()]
    assert len(data_lines) == 2
    decoded = [json.loads(line.split(" = ", 1)[1].rstrip(";")) for line in data_lines]
    text = json.dumps(decoded, ensure_ascii=False)
    assert all(hostile in text for hostile in EVIDENTLY_XSS[:2])
    assert "<" not in page.scripts[0] and ">" not in page.scripts[0] and "&" not in page.scripts[0]
    # and a later run without the option removes the page instead of leaving a stale one
    assert churnops(tmp_path, *args).returncode == 0 and not page_path.exists()


def test_a_page_without_the_known_data_block_is_refused():
    pytest.importorskip("evidently", reason="needs: evidently")
    from churnops.errors import IntegrationError
    from churnops.integrations.evidently_engine import escaped_evidently_page

    ident = "metric_" + "a" * 32
    data = f'  var {ident} = {{"x": "</script>"}};\n  var additional_graphs_{ident} = {{}};'
    good = f"<head>\n<script>\n{data}\n</script>"
    assert '</script>"' not in escaped_evidently_page(good)
    for bad in (
        good.replace("var additional_graphs_", "var other_"),  # not Evidently's pair
        good + "\n" + good,  # two data blocks
        good.replace('{"x": "</script>"}', "{'x': 1}"),  # not JSON
        "<html><body>no data</body></html>",
    ):
        with pytest.raises(IntegrationError, match="not written"):
            escaped_evidently_page(bad)


def test_implausible_labels_and_two_valued_columns_count_against_quality(ws):
    """A column-shifted row: the target at 50000, a 0/1-like column with a third value. They are
    data errors (the score falls), the target keeps its two-proportion test on its real labels,
    and the console's target line stays."""
    batch = _batch(ws)
    first = pl.int_range(pl.len()) < 3
    shifted = batch.with_columns(
        pl.when(first).then(50000).otherwise(pl.col("Churn Flag")).alias("Churn Flag"),
        pl.when(first).then(pl.lit("2")).otherwise(pl.col("Gender")).alias("Gender"),
    )
    shifted.write_csv(ws / "shifted.csv")
    done = churnops(ws, "monitor", "--current", "shifted.csv")
    assert done.returncode == 0, done.stderr
    assert "target Churn Flag:" in done.stdout
    metrics = _metrics(ws)
    checks = _checks(metrics)
    assert checks[("implausible_value", "Churn Flag")]["severity"] == "error"
    assert checks[("implausible_value", "Churn Flag")]["count"] == 3
    assert checks[("implausible_value", "Gender")]["count"] == 3
    assert metrics["data_quality"]["score"] < 1.0 and metrics["data_quality"]["failed_cells"] >= 6
    target = metrics["target_drift"]
    assert target["test"] == "z" and "left out" in target["note"]
    assert target["current_rate"] == pytest.approx(
        shifted.filter(pl.col("Churn Flag") != 50000)["Churn Flag"].mean(), rel=1e-9
    )


def test_a_column_of_only_new_categories_is_a_quality_error(ws):
    _batch(ws).with_columns(pl.lit("Astronaut").alias("Occupation")).write_csv(ws / "unseen.csv")
    done = churnops(ws, "monitor", "--current", "unseen.csv")
    assert done.returncode == 0, done.stderr
    metrics = _metrics(ws)
    check = _checks(metrics)[("all_unseen", "Occupation")]
    assert check["severity"] == "error" and check["count"] == metrics["current"]["rows"]
    assert not metrics["data_quality"]["passed"]  # 1 of 17 columns wholly wrong: 0.941 < 0.95


def test_parquet_durations_times_and_wide_decimals_are_monitored_as_numbers(ws):
    import decimal

    table = _batch(ws).head(3000).to_arrow()
    balance = table.schema.get_field_index("Balance")
    values = [decimal.Decimal(str(round(v, 2))) for v in table.column(balance).to_pylist()]
    table = table.set_column(balance, "Balance", pa.array(values, pa.decimal256(40, 2)))
    income = table.schema.get_field_index("Income")
    table = table.set_column(
        income, "Income", pa.array(np.asarray(table.column(income).to_numpy()).astype("int64"), pa.duration("s"))
    )
    loans = table.schema.get_field_index("Outstanding Loans")
    table = table.set_column(loans, "Outstanding Loans", pa.array(np.arange(3000) * 1000, pa.time64("us")))
    score = table.schema.get_field_index("Credit Score")  # a 128-bit decimal: numbers too, never text
    scores = [decimal.Decimal(v) for v in table.column(score).to_pylist()]
    table = table.set_column(score, "Credit Score", pa.array(scores, pa.decimal128(20, 2)))
    pq.write_table(table, ws / "odd.parquet")
    for mode in ("exact", "streaming"):
        done = churnops(ws, "monitor", "--current", "odd.parquet", "--mode", mode)
        assert done.returncode == 0, (mode, done.stderr)
        columns = _metrics(ws)["columns"]
        assert columns["Balance"]["current"]["count"] == 3000
        assert columns["Income"]["type"] == "numerical"
        assert columns["Credit Score"]["type"] == "numerical" and columns["Credit Score"]["current"]["count"] == 3000


def test_rows_outside_the_reference_window_never_change_how_it_is_read(ws):
    """A repeated header line after the window (what `cat a.csv b.csv` makes) used to turn the
    numeric columns of the whole first piece into text."""
    expected = _metrics(ws)["dataset_drift"]
    reference = ws / "data" / "churn.csv"
    with reference.open("a") as handle:
        handle.write(reference.read_text().splitlines()[0] + "\n")
    done = churnops(ws, "monitor", "--no-cache")
    assert done.returncode == 0, done.stderr
    assert _metrics(ws)["dataset_drift"] == expected


@pytest.mark.parametrize("mode", ["exact", "streaming"])
def test_an_integer_beyond_64_bits_is_a_number_in_both_engines(ws, mode):
    """One 20-digit cell made polars read the column as 128-bit integers, which NumPy has not."""
    frame = pl.read_csv(ws / BATCH, infer_schema_length=0)
    big = pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("99999999999999999999")).otherwise(pl.col("Credit Score"))
    frame.with_columns(big.alias("Credit Score")).write_csv(ws / "big.csv")
    done = churnops(ws, "monitor", "--current", "big.csv", "--mode", mode, "--set", "model.monitor='off'")
    assert done.returncode == 0, done.stderr
    metrics = _metrics(ws)
    assert metrics["columns"]["Credit Score"]["current"]["count"] == frame.height


def test_unsigned_64_bit_parquet_values_are_monitored(ws):
    rng = np.random.default_rng(0)
    values = rng.integers(0, 2**62, 3000, dtype=np.uint64) + np.uint64(2**63)
    pl.DataFrame({"u": values, "y": rng.integers(0, 2, 3000)}).write_parquet(ws / "u.parquet")
    done = churnops(ws, "monitor", "--reference", "u.parquet", "--current", "u.parquet", "--target", "y")
    assert done.returncode == 0, done.stderr
    metrics = _metrics(ws)
    assert "u" in metrics["columns"] and metrics["data_quality"]["passed"], metrics["data_quality"]


def test_invisible_characters_that_make_two_names_look_alike_are_shown(tmp_path):
    """'Balance' and 'Balance\u200b' (a zero-width space) looked identical on the terminal, in the
    report and in trigger.txt; so did a soft hyphen, a byte order mark and tag characters."""
    rng = np.random.default_rng(1)
    twin = "Balance\u200b"
    for rows, file, shift in ((800, "r.csv", 0.0), (800, "c.csv", 3.0)):
        labels = rng.choice(["gold\u00ad", "gold", "x\ufeff\U000e0041", "Seg\u3164", "v\u034f\ufe0f\u2800"], rows)
        frame = pl.DataFrame(
            {
                "Balance": rng.normal(0, 1, rows),
                twin: rng.normal(shift, 1, rows),
                "tier": labels,
                "y": rng.integers(0, 2, rows),
            }
        )
        frame.write_csv(tmp_path / file)
    done = churnops(tmp_path, "monitor", "--reference", "r.csv", "--current", "c.csv", "--target", "y")
    assert done.returncode == 0, done.stderr
    shown = done.stdout + done.stderr + (tmp_path / "trigger.txt").read_text()
    assert "\u200b" not in shown and "Balance\\u200b" in shown, shown
    for page in ("monitoring_report.html", "monitoring_report.standalone.html"):
        html = (tmp_path / "monitoring" / page).read_text()
        for invisible in ("\u200b", "\u00ad", "\ufeff", "\U000e0041", "\u3164", "\u034f", "\ufe0f", "\u2800"):
            assert invisible not in html, (page, repr(invisible))
        assert "Balance\\u200b" in html and "gold\\xad" in html and "x\\ufeff\\U000e0041" in html, page


def test_control_characters_and_bidi_overrides_are_shown_not_run_in_the_report(tmp_path):
    rng = np.random.default_rng(0)
    name = "col\x1b[31mRED\u202eabc"
    for rows, file in ((500, "r.csv"), (500, "c.csv")):
        labels = rng.choice(["\x1b[2Jcleared", "b"], rows)
        frame = pl.DataFrame({name: rng.normal(0, 1, rows), "cat": labels, "y": rng.integers(0, 2, rows)})
        frame.write_csv(tmp_path / file)
    done = churnops(tmp_path, "monitor", "--reference", "r.csv", "--current", "c.csv", "--target", "y")
    assert done.returncode == 0, done.stderr
    for page in ("monitoring_report.html", "monitoring_report.standalone.html"):
        html = (tmp_path / "monitoring" / page).read_text()
        assert "\x1b" not in html and "\u202e" not in html, page
        assert "\\x1b[31mRED\\u202eabc" in html, page
