import os

import polars as pl
import pytest

from churnops.data.io import atomic_path, atomic_write_text, read_table, table_format, write_table
from churnops.errors import InputDataError, OutputWriteError


def test_csv_and_parquet_round_trip(tmp_path):
    frame = pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None], "c": [0.5, None, 2.0]})
    for name in ("t.csv", "t.parquet"):
        write_table(frame, tmp_path / name)
        assert read_table(tmp_path / name).equals(frame)


def test_row_range(tmp_path):
    frame = pl.DataFrame({"a": list(range(100))})
    for name in ("t.csv", "t.parquet"):
        write_table(frame, tmp_path / name)
        assert read_table(tmp_path / name, (10, 20))["a"].to_list() == list(range(10, 20))
        with pytest.raises(InputDataError, match=r"rows \[90, 120\) requested but the file has only 100"):
            read_table(tmp_path / name, (90, 120))
        with pytest.raises(InputDataError, match=r"rows \[200, 300\) requested but the file has only 100 data"):
            read_table(tmp_path / name, (200, 300))  # a window past the end: the real count, not 200


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "file is empty"),
        (b"a,b\n", "has a header but no data rows"),
        (b"a,b\n1,2\n\xff\xfe,3\n", "not valid UTF-8"),
        (b"a,a\n1,2\n", "duplicate column names: a"),
    ],
)
def test_broken_csv_gives_one_clear_line(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputDataError) as info:
        read_table(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(InputDataError, match="file not found"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(InputDataError, match=r"unsupported file type '.xlsx' \(use .csv or .parquet\): save the sheet"):
        table_format(tmp_path / "x.xlsx")
    with pytest.raises(InputDataError, match=r"unsupported file type '.gz' \(use .csv or .parquet\): unpack it first"):
        table_format(tmp_path / "batch.csv.gz")
    with pytest.raises(InputDataError, match=r"unsupported file type '.json' \(use .csv or .parquet\)$"):
        table_format(tmp_path / "x.json")
    with pytest.raises(InputDataError, match="is a folder"):
        read_table(tmp_path)


def test_late_type_change_is_inferred_from_all_rows(tmp_path):
    path = tmp_path / "late.csv"
    rows = ["x"] + [str(i) for i in range(20_000)] + ["1.5"]
    path.write_text("\n".join(rows) + "\n")
    frame = read_table(path)
    assert frame["x"].dtype == pl.Float64
    assert frame.height == 20_001


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_write_gives_normal_permissions(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_parquet_batches_are_smaller_when_they_become_frames(tmp_path):
    from churnops.data.io import PARQUET_BATCH_ROWS, PARQUET_FRAME_ROWS, TableReader

    path = tmp_path / "t.parquet"
    write_table(pl.DataFrame({"a": list(range(200_000)), "b": [0.5] * 200_000}), path)
    frames = TableReader(path)
    batches = TableReader(path, arrow=True)
    assert (frames.batch_rows, batches.batch_rows) == (PARQUET_FRAME_ROWS, PARQUET_BATCH_ROWS)
    assert [len(chunk) for chunk in frames] == [65_536, 65_536, 65_536, 3_392]
    assert sum(batch.num_rows for batch in batches) == 200_000


@pytest.mark.parametrize("chosen, expected", [(None, "jemalloc"), ("system", "system")])
def test_reading_parquet_picks_a_pool_that_returns_memory_unless_the_user_chose(tmp_path, chosen, expected):
    # the pool is global to the process: look at it in a fresh one
    import subprocess
    import sys

    path = tmp_path / "t.parquet"
    write_table(pl.DataFrame({"a": [1, 2, 3]}), path)
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if chosen:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    script = (
        "import sys, pathlib, pyarrow as pa\n"
        "from churnops.data.io import TableReader\n"
        "list(TableReader(pathlib.Path(sys.argv[1])))\n"
        "print(pa.default_memory_pool().backend_name)\n"
    )
    pools = subprocess.run(
        [sys.executable, "-c", script, str(path)], env=env, capture_output=True, text=True, check=True
    )
    assert pools.stdout.strip() == expected


def test_types_guessed_from_a_few_rows_are_those_of_the_full_guess(tmp_path):
    """The first guess of a CSV's types uses 1,000 rows; a column empty there, or whose later
    values contradict it (a decimal after integers, text after numbers), is guessed again from
    10,000 rows - as if only the full guess existed."""
    from churnops.data.io import QUICK_INFER_ROWS, TableReader

    rows = 3 * QUICK_INFER_ROWS
    lines = ["ints,late,decimal,text,flag"]
    for i in range(rows):
        late = "" if i < QUICK_INFER_ROWS + 10 else str(i)
        decimal = "1.5" if i == 2 * QUICK_INFER_ROWS else str(i)
        text = "n/a?" if i == rows - 1 else str(i)
        lines.append(f"{i},{late},{decimal},{text},{'true' if i % 2 else 'false'}")
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    frame = next(iter(TableReader(path)))
    assert dict(frame.schema) == {
        "ints": pl.Int64, "late": pl.Int64, "decimal": pl.Float64, "text": pl.String, "flag": pl.Boolean,
    }  # fmt: skip
    assert frame["late"].null_count() == QUICK_INFER_ROWS + 10 and frame["decimal"][2 * QUICK_INFER_ROWS] == 1.5
    assert frame.height == rows


def test_null_tokens_in_later_pieces_read_as_before(tmp_path):
    """Pieces after the first are parsed without matching the null tokens unless one could
    matter: NA among numbers, NaN in a float column, None among text - each read as missing,
    exactly as when every cell is matched."""
    from churnops.data.io import NULL_VALUES, TableReader

    lines = ["n,f,t"]
    for i in range(4000):
        n = "NA" if i == 3500 else str(i)
        f = "NaN" if i == 3600 else f"{i}.5"
        t = "None" if i == 3700 else '""' if i == 3800 else f"name{i % 7}"  # a quoted empty text too
        lines.append(f"{n},{f},{t}")
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    pieces = list(TableReader(path, chunk_bytes=4096))
    assert len(pieces) > 10
    read = pl.concat(pieces)
    expected = pl.read_csv(path, null_values=NULL_VALUES, infer_schema_length=10_000)
    assert read.equals(expected)
    assert read["n"].null_count() == read["f"].null_count() == 1 and read["t"].null_count() == 2
    assert not read["f"].is_nan().any()


def test_a_stray_text_cell_after_the_guessed_rows_leaves_the_other_columns_typed(tmp_path, cli, monkeypatch):
    """One 'n/a yet' in a number column after the rows the types are guessed from: that column is
    still tested as numbers (the cell counted as failed) and every other column keeps its type,
    in both engines, whichever piece the cell falls in."""
    import json

    from churnops.data.io import TableReader

    rows = 12_000
    lines = ["score,amount,flag,city"] + [
        f"{i % 13},{i * 0.37:.2f},{'true' if i % 3 else 'false'},{'Lyon' if i % 4 else 'Nice'}" for i in range(rows)
    ]
    lines[11_001] = "n/a yet,3.5,true,Lyon"
    (tmp_path / "ref.csv").write_text("\n".join(lines) + "\n")
    reader = TableReader(tmp_path / "ref.csv")
    (chunk,) = list(reader)
    assert dict(chunk.schema) == {"score": pl.String, "amount": pl.Float64, "flag": pl.Boolean, "city": pl.String}
    assert reader.intended["score"] == pl.Int64
    monkeypatch.chdir(tmp_path)
    for mode in ("exact", "streaming"):
        done = cli("monitor", "-r", "ref.csv", "-p", "ref.csv", "--target", "", "--mode", mode, "--no-cache")
        assert done.exit_code == 0, done.output
        metrics = json.loads((tmp_path / "monitoring" / "monitoring_metrics.json").read_text())
        types = {name: column["type"] for name, column in metrics["columns"].items()}
        assert types == {"score": "numerical", "amount": "numerical", "flag": "categorical", "city": "categorical"}
        assert metrics["columns"]["score"]["reference"]["unparsable"] == 1, mode
        assert metrics["data_quality"]["failed_cells"] == 1, mode  # the batch's cell (the batch is the file too)


def test_numbers_written_as_text_are_told_apart_from_codes_and_text():
    """Stray cells without a digit, digit group separators, currency and percent signs are
    numbers written as text; a cell with a digit that is not a number (A642) makes a code."""
    from churnops.pipeline.starter import numbers_as_text_columns

    n = 400
    frame = pl.DataFrame(
        {
            "score": [str(i) if i % 100 else "n/a yet" for i in range(n)],
            "dash": [f"{i}.5" if i % 50 else "-" for i in range(n)],
            "pct": [f"{i % 100}" if i % 50 else "95%" for i in range(n)],
            "price": [f"{i}" if i % 80 else "$668" for i in range(n)],
            "income": [f"{1000 + i * 37:,}.25" for i in range(n)],
            "code": [f"{i:05d}" if i % 90 else "A642" for i in range(n)],
            "words": ["x"] * n,
            "mostly_text": [str(i) if i % 2 else "none" for i in range(n)],
            "few": ["1", "-"] * 5 + [None] * (n - 10),
        }
    )
    found = {name: (others, example) for name, others, _, example in numbers_as_text_columns(frame, set())}
    assert found == {
        "score": (4, "n/a yet"),
        "dash": (8, "-"),
        "pct": (0, "95%"),
        "price": (0, "$668"),
        "income": (0, "1,000.25"),
    }
    assert numbers_as_text_columns(frame, {"score"})[0][0] == "dash"


def test_a_file_written_through_a_folder_descriptor_replaces_a_planted_link_and_keeps_its_mode(tmp_path):
    from churnops.data.files import open_folder, write_file_at

    root = tmp_path.resolve()
    outside = root / "outside.txt"
    outside.write_text("theirs")
    (root / "made").mkdir()
    (root / "made" / "kept.txt").write_text("old")
    os.chmod(root / "made" / "kept.txt", 0o640)
    (root / "made" / "out.txt").symlink_to(outside)
    folder = open_folder(root / "made" / "deeper", create=True)
    try:
        write_file_at(folder, "new.txt", b"new", root / "made" / "deeper" / "new.txt")
    finally:
        os.close(folder)
    folder = open_folder(root / "made")
    try:
        write_file_at(folder, "out.txt", b"ours", root / "made" / "out.txt")
        write_file_at(folder, "kept.txt", b"new", root / "made" / "kept.txt")
        with pytest.raises(OutputWriteError, match="is a folder"):  # nothing left behind
            write_file_at(folder, "deeper", b"x", root / "made" / "deeper")
    finally:
        os.close(folder)
    assert outside.read_text() == "theirs" and not (root / "made" / "out.txt").is_symlink()
    assert (root / "made" / "out.txt").read_text() == "ours" and (root / "made" / "deeper" / "new.txt").is_file()
    assert (root / "made" / "kept.txt").stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in (root / "made").iterdir()) == ["deeper", "kept.txt", "out.txt"]


def test_a_folder_is_opened_only_through_no_link(tmp_path):
    from churnops.data.files import LinkedPath, open_folder

    root = tmp_path.resolve()
    (root / "real" / "inner").mkdir(parents=True)
    (root / "link").symlink_to(root / "real", target_is_directory=True)
    for path in (root / "link", root / "link" / "inner", root / "link" / "inner" / "new"):
        with pytest.raises(LinkedPath) as caught:
            os.close(open_folder(path, create=True))
        assert caught.value.path == root / "link"
    assert sorted(p.name for p in (root / "real" / "inner").iterdir()) == []
    (root / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="Not a directory"):
        os.close(open_folder(root / "file" / "below", create=True))
