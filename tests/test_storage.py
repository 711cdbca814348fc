"""Tables in object storage and outputs published to it, against moto's S3 server (a real S3 HTTP
API) started on 127.0.0.1 by the tests: a run on ``s3://`` URLs gives the numbers of the same run
on local files; a prefix of parts is one table; the outputs are uploaded whole; a throttling
server is retried; missing buckets and keys, a server that is down and credentials in a URL are
one line each. GCS and Azure URLs take the same code path with fsspec's in-memory filesystem
standing in for the provider (no emulator here)."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import polars as pl
import pytest
from servers import free_port

pytest.importorskip("moto", reason="needs: moto[server] (pip install -e '.[dev]')")

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_server():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):  # until it answers (each attempt waits on a connection, not a clock)
        if process.poll() is not None:
            raise AssertionError(f"moto's server stopped: {process.stderr.read()}")
        try:
            with urllib.request.urlopen(url + "/", timeout=5):
                break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            threading.Event().wait(0.05)
    else:
        process.kill()
        raise AssertionError("moto's server did not answer")
    yield url
    process.terminate()
    process.wait(timeout=30)


def _fs(endpoint: str):
    import pyarrow.fs as pafs

    os.environ.update(AWS)
    return pafs.S3FileSystem(
        endpoint_override=endpoint.removeprefix("http://"), scheme="http", region="us-east-1",
        allow_bucket_creation=True, allow_bucket_deletion=True,
    )  # fmt: skip


def _listed(fs, prefix: str) -> list[str]:
    import pyarrow.fs as pafs

    return [i.path for i in fs.get_file_info(pafs.FileSelector(prefix, recursive=True)) if i.is_file]


def _put(fs, key: str, data: bytes) -> None:
    with fs.open_output_stream(key) as out:
        out.write(data)


@pytest.fixture()
def workspace(tmp_path, s3_server):
    for args in (["data", "init"], ["generate"]):
        done = subprocess.run([sys.executable, "-m", "churnops", "-q", *args], cwd=tmp_path, capture_output=True)
        assert done.returncode == 0, done.stderr
    (tmp_path / "churnops.toml").write_text(f'[storage]\nendpoint_url = "{s3_server}"\n', encoding="utf-8")
    return tmp_path


def _churnops(root: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "churnops", *args], cwd=root, capture_output=True, text=True, timeout=600,
        env={**os.environ, **AWS, **(env or {})},
    )  # fmt: skip


def _via(proxy) -> list[str]:
    return ["--set", f"storage.endpoint_url='{proxy.url}'"]


def _metrics(root: Path) -> dict:
    return json.loads((root / "monitoring" / "monitoring_metrics.json").read_text(encoding="utf-8"))


def _numbers(document: dict) -> dict:
    return {
        "score": document["dataset_drift"],
        "columns": {
            name: (c["statistic"], c.get("p_value"), c["drift_detected"]) for name, c in document["columns"].items()
        },
        "quality": document["data_quality"]["score"],
    }


def test_a_run_on_s3_urls_gives_the_numbers_of_the_same_files_on_disk(workspace, s3_server):
    import churnops

    fs = _fs(s3_server)
    fs.create_dir("bank-runs")
    reference = churnops.generate(6_000, start=0)
    batch = churnops.generate(4_000, start=50_000, scenario="seed")
    reference.write_csv(workspace / "reference.csv")
    batch.write_csv(workspace / "batch.csv")
    _put(fs, "bank-runs/reference.csv", (workspace / "reference.csv").read_bytes())
    text = (workspace / "batch.csv").read_bytes()
    header, _, body = text.partition(b"\n")
    lines = body.splitlines(keepends=True)
    half = len(lines) // 2  # the batch as two parts of one prefix, each with its header
    _put(fs, "bank-runs/batches/2026-12-03/part-0001.csv", header + b"\n" + b"".join(lines[:half]))
    _put(fs, "bank-runs/batches/2026-12-03/part-0002.csv", header + b"\n" + b"".join(lines[half:]))
    _put(fs, "bank-runs/batches/2026-12-03/_SUCCESS", b"")  # not a table part: left out

    local = _churnops(workspace, "monitor", "--reference", "reference.csv", "--current", "batch.csv", "--no-cache")
    assert local.returncode == 0, local.stderr
    expected = _numbers(_metrics(workspace))
    remote = _churnops(
        workspace, "monitor", "--reference", "s3://bank-runs/reference.csv",
        "--current", "s3://bank-runs/batches/2026-12-03/", "--no-cache",
    )  # fmt: skip
    assert remote.returncode == 0, remote.stderr
    document = _metrics(workspace)
    assert _numbers(document) == expected
    assert document["current"]["path"] == "s3://bank-runs/batches/2026-12-03/"
    assert document["reference"]["path"] == "s3://bank-runs/reference.csv"
    assert not list((workspace / ".churnops").glob("staging-*"))  # the copies are gone

    # Parquet parts under a prefix are one table too
    batch.slice(0, 1_500).write_parquet(workspace / "a.parquet", row_group_size=500)
    batch.slice(1_500).write_parquet(workspace / "b.parquet", row_group_size=700)
    batch.write_parquet(workspace / "batch.parquet")
    for name in ("a", "b"):
        _put(fs, f"bank-runs/parquet/{name}.parquet", (workspace / f"{name}.parquet").read_bytes())
    local = _churnops(workspace, "monitor", "--reference", "reference.csv", "--current", "batch.parquet")
    expected = _numbers(_metrics(workspace))
    remote = _churnops(workspace, "monitor", "--reference", "reference.csv", "--current", "s3://bank-runs/parquet/")
    assert remote.returncode == 0, remote.stderr
    assert _numbers(_metrics(workspace)) == expected

    # one Parquet object is read in place: byte ranges, no copy, the same numbers in both modes
    batch.write_parquet(workspace / "groups.parquet", row_group_size=600)
    _put(fs, "bank-runs/one/batch.parquet", (workspace / "groups.parquet").read_bytes())
    size = (workspace / "groups.parquet").stat().st_size
    for mode in ("exact", "streaming"):
        local = _churnops(workspace, "monitor", "-r", "reference.csv", "-p", "groups.parquet", "--mode", mode)
        assert local.returncode == 0, local.stderr
        expected = _numbers(_metrics(workspace))
        remote = _churnops(
            workspace, "-v", "monitor", "-r", "reference.csv", "-p", "s3://bank-runs/one/batch.parquet", "--mode", mode
        )
        assert remote.returncode == 0, remote.stderr
        document = _metrics(workspace)
        assert _numbers(document) == expected, mode
        assert (
            document["current"]["path"] == "s3://bank-runs/one/batch.parquet" and document["current"]["sha256"] is None
        )
        fetched = re.search(r"read in place: ([\d,]+) of ([\d,]+) bytes fetched", remote.stderr)
        assert fetched, remote.stderr
        assert int(fetched.group(2).replace(",", "")) == size
        assert 0 < int(fetched.group(1).replace(",", "")) <= 1.5 * size  # no model here: about one read
        assert "part(s)" not in remote.stderr  # nothing was copied


def test_outputs_are_published_whole_and_a_failed_upload_keeps_the_local_ones(workspace, s3_server):
    fs = _fs(s3_server)
    fs.create_dir("bank-reports")
    done = _churnops(workspace, "monitor", "--set", "publish.url='s3://bank-reports/churnops/{run_id}/'")
    assert done.returncode == 0, done.stderr
    run_id = _metrics(workspace)["run_id"]
    names = ["monitoring_metrics.json", "monitoring_report.html", "report.css", "monitoring_report.standalone.html"]
    said = f"published to s3://bank-reports/churnops/{run_id}/: {', '.join(names)}"
    assert said in done.stdout, done.stdout
    import pyarrow.fs as pafs

    listed = fs.get_file_info(pafs.FileSelector(f"bank-reports/churnops/{run_id}", recursive=True))
    assert sorted(i.base_name for i in listed) == sorted(names)  # no temporary key left behind
    for name in names:
        with fs.open_input_stream(f"bank-reports/churnops/{run_id}/{name}") as source:
            assert source.read() == (workspace / "monitoring" / name).read_bytes()
    failed = _churnops(workspace, "monitor", "--set", "publish.url='s3://no-such-bucket/x/'")
    assert failed.returncode == 4 and "publishing to s3://no-such-bucket/x/ failed" in failed.stderr
    assert _metrics(workspace)["run_id"] != run_id  # the run itself was written


class Faulty:
    """A proxy in front of the S3 server that answers ``status`` (with the S3 error ``code``) to
    the first ``times`` requests whose path contains ``where``, and calls ``before(method, path)``
    ahead of forwarding each request."""

    def __init__(
        self,
        target: str,
        times: int,
        status: int = 503,
        code: str = "SlowDown",
        where: str = "",
        before=None,
        message: str = "injected",
    ):
        self.times, self.refused = times, 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if before is not None:
                    before(self.command, self.path)
                if proxy.refused < proxy.times and where in self.path:
                    proxy.refused += 1
                    # a server that quotes the request in its error: its token and signature
                    echoed = message.format(
                        token=self.headers.get("X-Amz-Security-Token", ""),
                        authorization=self.headers.get("Authorization", ""),
                    )
                    payload = f"<Error><Code>{code}</Code><Message>{echoed}</Message></Error>".encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                request = urllib.request.Request(target + self.path, data=body, method=self.command, headers=headers)
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        status_, data, answer_headers = answer.status, answer.read(), answer.headers
                except urllib.error.HTTPError as error:
                    status_, data, answer_headers = error.code, error.read(), error.headers
                self.send_response(status_)
                for key, value in answer_headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(key, value)
                length = answer_headers.get("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self) -> Faulty:
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_throttling_is_retried_and_storage_problems_are_one_line(workspace, s3_server):
    fs = _fs(s3_server)
    fs.create_dir("bank-errors")
    _put(fs, "bank-errors/batch.csv", (workspace / "data" / "churn.csv").read_bytes()[:200_000].rsplit(b"\n", 1)[0])
    with Faulty(s3_server, times=2) as proxy:
        slow = _churnops(
            workspace,
            "monitor",
            "--current",
            "s3://bank-errors/batch.csv",
            "--set",
            f"storage.endpoint_url='{proxy.url}'",
        )
        assert slow.returncode == 0, slow.stderr
        assert proxy.refused == 2  # answered 503 twice, then served
    outputs = workspace / "monitoring"
    before = {p.name: p.read_bytes() for p in outputs.iterdir() if p.is_file() and p.name != ".workspace.lock"}
    _put(fs, "bank-errors/binary.csv", b"PK\x03\x04" + bytes(range(256)) * 8)  # a workbook named .csv
    cases = {
        "s3://bank-errors/binary.csv": "s3://bank-errors/binary.csv: this is not text",  # not the private copy
        "s3://no-such-bucket/batch.csv": "no bucket 'no-such-bucket'",
        "s3://bank-errors/missing.csv": "not found",
        "s3://bank-errors/empty-prefix/": "not found",
        "s3://user:secret@bank-errors/batch.csv": "credentials and parameters do not go in the URL",
    }
    for url, said in cases.items():
        done = _churnops(workspace, "monitor", "--current", url)
        assert done.returncode == 2 and said in done.stderr, (url, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "secret" not in done.stderr
        assert "staging" not in done.stderr, done.stderr
    down = _churnops(
        workspace, "monitor", "--current", "s3://bank-errors/batch.csv",
        "--set", f"storage.endpoint_url='http://127.0.0.1:{free_port()}'", "--set", "storage.retries=2",
    )  # fmt: skip
    assert down.returncode == 2 and "cannot reach the storage server" in down.stderr, down.stderr
    with Faulty(s3_server, times=10**6, status=403, code="AccessDenied") as denying:
        denied = _churnops(
            workspace,
            "monitor",
            "--current",
            "s3://bank-errors/batch.csv",
            "--set",
            f"storage.endpoint_url='{denying.url}'",
        )
    assert denied.returncode == 2 and "access denied" in denied.stderr, denied.stderr
    assert len(denied.stderr.strip().splitlines()) == 1
    # a server whose error quotes the request: the session token and the signature came back in clear
    token = "FwoGZXIvYXdzEBYaDHqa0AP1SessTok9876543210abcdef"
    echo = "The provided token has expired: {token} ({authorization})"
    with Faulty(s3_server, 10**6, 400, "ExpiredToken", where="list-type", message=echo) as echoing:
        expired = _churnops(
            workspace,
            "monitor",
            "--current",
            "s3://bank-errors/parts/",
            *_via(echoing),
            env={"AWS_SESSION_TOKEN": token},
        )  # fmt: skip  (a prefix: listed with a GET, whose error has a body)
    assert expired.returncode == 2 and "s3://bank-errors/parts/: cannot read it" in expired.stderr, expired.stderr
    assert "ExpiredToken" in expired.stderr, expired.stderr  # the error's code is what it says
    assert echoing.refused and len(expired.stderr.strip().splitlines()) == 1, expired.stderr
    for secret in (token, AWS["AWS_ACCESS_KEY_ID"], AWS["AWS_SECRET_ACCESS_KEY"], "Signature=", "expired"):
        assert secret not in expired.stderr, expired.stderr
    # a part listed under the prefix and deleted before it is read
    text = (workspace / "data" / "churn.csv").read_bytes()[:100_000].rsplit(b"\n", 1)[0] + b"\n"
    _put(fs, "bank-errors/parts/part-1.csv", text)
    _put(fs, "bank-errors/parts/part-2.csv", text)

    def remove_second_part(method: str, path: str) -> None:
        if method == "GET" and path.startswith("/bank-errors/parts/part-2.csv"):
            fs.delete_file("bank-errors/parts/part-2.csv")

    with Faulty(s3_server, times=0, before=remove_second_part) as racing:
        gone = _churnops(
            workspace,
            "monitor",
            "--current",
            "s3://bank-errors/parts/",
            "--set",
            f"storage.endpoint_url='{racing.url}'",
        )
    assert gone.returncode == 2, gone.stderr
    assert "s3://bank-errors/parts/: part-2.csv was listed but is gone" in gone.stderr, gone.stderr
    # an object read in place that is removed, or replaced, once its reading has begun
    import polars as pl_

    parquet = workspace / "in-place.parquet"
    pl_.read_csv(workspace / "data" / "churn.csv", n_rows=3_000).write_parquet(parquet, row_group_size=500)
    other = workspace / "other.parquet"
    pl_.read_csv(workspace / "data" / "churn.csv", n_rows=1_000).write_parquet(other)
    for action, said in (("remove", "the object is gone"), ("replace", "s3://bank-errors/in-place.parquet: ")):
        _put(fs, "bank-errors/in-place.parquet", parquet.read_bytes())
        touched = []

        def meddle(method: str, path: str, action=action, touched=touched) -> None:
            if method == "GET" and path.startswith("/bank-errors/in-place.parquet") and not touched:
                touched.append(path)
                if action == "remove":
                    fs.delete_file("bank-errors/in-place.parquet")
                else:
                    _put(fs, "bank-errors/in-place.parquet", other.read_bytes())

        with Faulty(s3_server, times=0, before=meddle) as meddling:
            broken = _churnops(workspace, "monitor", "--current", "s3://bank-errors/in-place.parquet", *_via(meddling))
        assert broken.returncode == 2 and said in broken.stderr, (action, broken.stderr)
        assert len(broken.stderr.strip().splitlines()) == 1, broken.stderr
        assert "note: the outputs (" in broken.stdout  # whose outputs still stand
    after = {p.name: p.read_bytes() for p in outputs.iterdir() if p.is_file() and p.name != ".workspace.lock"}
    assert after == before  # the failed runs left the last good run's outputs as they were
    assert not list((workspace / ".churnops").glob("staging-*"))


def test_gcs_and_azure_urls_take_the_same_path(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    import pyarrow.fs as pafs

    from churnops.data import remote

    memory = fsspec.filesystem("memory")
    frame = pl.DataFrame({"a": list(range(1_000)), "b": ["x", "y"] * 500})
    for index in range(3):
        with memory.open(f"/bucket/prefix/part-{index}.parquet", "wb") as out:
            frame.slice(index * 300, 300 if index < 2 else 400).write_parquet(out)
    with memory.open("/bucket/one.csv", "wb") as out:
        frame.write_csv(out)
    wrapped = pafs.PyFileSystem(pafs.FSSpecHandler(memory))
    try:
        for scheme in ("gs", "az"):
            remote.register_filesystem(scheme, wrapped)
            folder = tmp_path / scheme
            folder.mkdir()
            staged = remote.stage(f"{scheme}://bucket/prefix/", folder, remote.StorageOptions())
            assert staged.parts == 3 and pl.read_parquet(staged.path).equals(frame)
            single = remote.stage(f"{scheme}://bucket/one.csv", folder, remote.StorageOptions())
            assert pl.read_csv(single.path).equals(frame)
            with pytest.raises(remote.InputDataError, match="not found"):
                remote.stage(f"{scheme}://bucket/none/", folder, remote.StorageOptions())
        with memory.open("/bucket/mixed/a.csv", "wb") as out:
            out.write(b"a,b\n1,x\n")
        with memory.open("/bucket/mixed/b.csv", "wb") as out:
            out.write(b"a,c\n2,y\n")
        with pytest.raises(remote.InputDataError, match="b.csv has another header than a.csv"):
            remote.stage("gs://bucket/mixed/", tmp_path / "gs", remote.StorageOptions())
        with memory.open("/bucket/mixed/c.parquet", "wb") as out:
            frame.write_parquet(out)
        with pytest.raises(remote.InputDataError, match="mixes CSV and Parquet"):
            remote.stage("gs://bucket/mixed/", tmp_path / "gs", remote.StorageOptions())
    finally:
        remote._FILESYSTEMS.clear()


def test_the_pipeline_reads_its_batch_from_s3_versions_it_in_s3_and_publishes_there(workspace, s3_server, tmp_path):
    """The whole nightly pipeline on object storage: the batch fetched from paths.production_url,
    the DVC remote set up by churnops dvc-setup --remote s3://... (its endpoint from [storage], no
    credential in .dvc/config), the outputs published under [publish] url and the notification
    pointing at them; a fresh git clone + dvc pull brings the batch back byte for byte."""
    pytest.importorskip("dvc_s3", reason="needs: dvc-s3 (pip install 'churnops[dvc-s3]')")
    fs = _fs(s3_server)
    for bucket in ("dvc-bucket", "bank-in", "bank-out"):
        fs.create_dir(bucket)
    batch = Path("data") / "production" / "bank_churn_prod.csv"
    delivered = (workspace / batch).read_bytes()
    made = _churnops(workspace, "generate", "-o", "s3://bank-in/batches/2026-12-03/bank_churn_prod.csv")
    assert made.returncode == 0 and "metadata: s3://bank-in/batches/2026-12-03/bank_churn_prod.meta.json" in made.stdout
    with fs.open_input_stream("bank-in/batches/2026-12-03/bank_churn_prod.csv") as source:
        assert source.read() == delivered  # the same batch as generated locally, uploaded whole
    (workspace / batch).unlink()  # the batch exists only in the bucket
    for args in (["init", "-q"], ["config", "user.email", "t@example.com"], ["config", "user.name", "T"]):
        subprocess.run(["git", *args], cwd=workspace, check=True)
    with_secret = _churnops(workspace, "dvc-setup", "--remote", "s3://AKIAEXAMPLE:s3cr3t@dvc-bucket/dvc")
    assert with_secret.returncode == 2 and "holds credentials" in with_secret.stderr
    assert "s3cr3t" not in with_secret.stderr and not (workspace / ".dvc").exists()
    done = _churnops(workspace, "dvc-setup", "--remote", "s3://dvc-bucket/dvc")
    assert done.returncode == 0, done.stderr
    config = (workspace / ".dvc" / "config").read_text()
    assert "url = s3://dvc-bucket/dvc" in config and f"endpointurl = {s3_server}" in config
    assert "testing" not in config and "access_key" not in config and "secret" not in config
    settings = workspace / "churnops.toml"
    settings.write_text(
        settings.read_text()
        + '[paths]\nproduction_url = "s3://bank-in/batches/2026-12-03/"\n'
        + '[publish]\nurl = "s3://bank-out/churnops/{run_id}/"\n'
        + '[notify]\nreport_url = "https://reports.example.com/churnops/{run_id}/monitoring_report.html"\n',
        encoding="utf-8",
    )
    run = _churnops(workspace, "pipeline")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "UNSTABLE" in run.stdout, run.stdout  # the seed batch drifts: versioned and notified
    assert (workspace / batch).read_bytes() == delivered
    metrics = _metrics(workspace)
    run_id = metrics["run_id"]
    assert metrics["current"]["path"] == "s3://bank-in/batches/2026-12-03/" and metrics["timings"]["fetch_s"] >= 0
    published = sorted(i.rsplit("/", 1)[1] for i in _listed(fs, f"bank-out/churnops/{run_id}"))
    assert "monitoring_report.html" in published and "monitoring_metrics.json" in published
    for name in ("monitoring_report.html", "monitoring_report.standalone.html", "monitoring_metrics.json"):
        with fs.open_input_stream(f"bank-out/churnops/{run_id}/{name}") as source:  # the final report,
            assert source.read() == (workspace / "monitoring" / name).read_bytes(), name  # with the DVC version
    assert f"report published to s3://bank-out/churnops/{run_id}/" in run.stdout, run.stdout
    note = (workspace / "monitoring" / "notification.txt").read_text(encoding="utf-8")
    assert note.startswith("Alert on 2026-12-03: "), note  # the prefix's last name
    assert f"Published: s3://bank-out/churnops/{run_id}/monitoring_report.html" in note, note
    assert f"Open: https://reports.example.com/churnops/{run_id}/monitoring_report.html" in note, note
    assert _listed(fs, "dvc-bucket/dvc"), "nothing was pushed to the bucket"
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(workspace), str(clone)], check=True)
    pulled = subprocess.run(
        [sys.executable, "-m", "dvc", "pull", "-q"], cwd=clone, capture_output=True, text=True,
        env={**os.environ, **AWS, "DVC_NO_ANALYTICS": "1"}, timeout=600,
    )  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    assert (clone / batch).read_bytes() == delivered

    exported = _churnops(workspace, "history", "--format", "csv", "-o", "s3://bank-out/history/runs.csv")
    assert exported.returncode == 0 and "written to s3://bank-out/history/runs.csv" in exported.stdout
    printed = _churnops(workspace, "history", "--format", "csv")
    with fs.open_input_stream("bank-out/history/runs.csv") as source:
        assert source.read().decode() == printed.stdout and run_id in printed.stdout
    fetched = _churnops(workspace, "data", "fetch")
    assert fetched.returncode == 0 and "fetched from s3://bank-in/batches/2026-12-03/" in fetched.stdout
    unpublished = _churnops(workspace, "pipeline", "--set", "publish.url='s3://no-such-bucket/x/{run_id}/'")
    assert unpublished.returncode == 4 and "the bucket does not exist" in unpublished.stdout + unpublished.stderr
    note = (workspace / "monitoring" / "notification.txt").read_text(encoding="utf-8")
    assert "Open: " not in note and "Published: " not in note, note  # no link to a report never uploaded
    assert "publishing: publishing to s3://no-such-bucket/" in note, note  # the team hears of the failure

    # all or nothing, and only tables: nothing local is replaced by a fetch that fails
    reference = workspace / "data" / "churn.csv"
    kept = {path: path.read_bytes() for path in (reference, workspace / batch)}
    _put(fs, "bank-in/reference/churn.csv", reference.read_bytes()[:50_000].rsplit(b"\n", 1)[0] + b"\n")
    _put(fs, "bank-in/garbage/batch.csv", b"PAR1" + bytes(range(256)) * 40 + b"PAR1")
    _put(fs, "bank-in/html/batch.csv", b"<html>\n<body>503 Service Unavailable</body>\n</html>\n")
    _put(fs, "bank-in/empty/batch.csv", b"")
    good_rows = b"\n".join(delivered.split(b"\n")[:3]) + b"\n"
    _put(fs, "bank-in/junk/batch.csv", good_rows + b"\xff\xfe\x00garbage\x81\n" * 50)
    with_reference = ["--set", "paths.reference_url='s3://bank-in/reference/churn.csv'"]
    for bad, said in (
        (
            ["--set", "paths.production='data/production/batch.parquet'"],
            "holds CSV but paths.production (batch.parquet)",
        ),
        (["--set", "paths.production_url='s3://bank-in/nothing-here/'", *with_reference], "not found"),
        (["--set", "paths.production_url='s3://bank-in/garbage/'"], "paths.production_url: not a CSV table"),
        (["--set", "paths.production_url='s3://bank-in/html/'"], "shares no column with"),
        (["--set", "paths.production_url='s3://bank-in/empty/'"], "batch.csv is empty"),
        (["--set", "paths.production_url='s3://bank-in/junk/'"], "paths.production_url: not a CSV table"),
        (["--set", "paths.production='data/churn.csv'"], "paths.production is the same file as paths.reference"),
        (["--set", "paths.production_url='s3://bank-in/a/../../bank-out/x/'"], "'..' and empty names are refused"),
    ):
        failed = _churnops(workspace, "pipeline", *bad)
        said_all = failed.stdout + failed.stderr
        assert failed.returncode == 2 and said in said_all, (bad, said_all)
    assert {path: path.read_bytes() for path in kept} == kept  # the reference was not replaced either
    assert not list((workspace / batch).parent.glob(".churnops-fetch-*"))
    (workspace / batch).unlink()  # a first fetch: the error page is compared with the reference
    first = _churnops(workspace, "data", "fetch", "--set", "paths.production_url='s3://bank-in/html/'")
    assert first.returncode == 2 and "shares no column with" in first.stderr, first.stderr
    assert not (workspace / batch).exists()
    (workspace / batch).write_bytes(kept[workspace / batch])
    boto3 = pytest.importorskip("boto3")
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.put_object(Bucket="bank-in", Key="trap/../../bank-out/x.csv", Body=b"a,b\n1,2\n")
    trapped = _churnops(workspace, "data", "fetch", "--set", "paths.production_url='s3://bank-in/trap/'")
    assert trapped.returncode == 2 and "refused object name" in trapped.stderr, trapped.stderr
    assert {path: path.read_bytes() for path in kept} == kept


def test_mlflow_models_kept_in_s3_are_trained_registered_and_loaded_by_a_clean_process(workspace, s3_server):
    """model.artifact_dir = "s3://...": train logs the model to the bucket (nothing local but the
    tracking database); predict and monitor, each a new process, load it from there and score
    exactly as the same model kept in a local folder; a bad or unreachable artifact store is one
    line."""
    pytest.importorskip("mlflow", reason="needs: mlflow (pip install 'churnops[mlflow]')")
    pytest.importorskip("boto3", reason="needs: boto3 (pip install 'churnops[mlflow-s3]')")

    fs = _fs(s3_server)
    fs.create_dir("bank-models")
    config = workspace / "churnops.toml"
    config.write_text(config.read_text() + '[model]\nartifact_dir = "s3://bank-models/mlflow"\n', encoding="utf-8")
    trained = _churnops(workspace, "train")
    assert trained.returncode == 0, trained.stderr
    stored = _listed(fs, "bank-models/mlflow")
    assert any(path.endswith("/artifacts/model.skops") for path in stored), stored
    assert any(path.endswith("/artifacts/MLmodel") for path in stored), stored
    assert not (workspace / "mlartifacts").exists()
    local = [
        "--set", "model.artifact_dir='mlartifacts'", "--set", "model.experiment='kept-locally'",
        "--set", "model.name='bank-churn-local'",
    ]  # fmt: skip
    assert _churnops(workspace, "train", *local).returncode == 0
    assert (workspace / "mlartifacts").is_dir()

    batch = "data/production/bank_churn_prod.csv"
    from_s3 = _churnops(workspace, "predict", "-i", batch, "-o", "from_s3.csv")
    assert from_s3.returncode == 0, from_s3.stderr
    assert "Downloading artifacts" not in from_s3.stderr  # MLflow's own progress bars stay quiet
    from_disk = _churnops(workspace, "predict", "-i", batch, "-o", "from_disk.csv", *local)
    assert from_disk.returncode == 0, from_disk.stderr
    scored = pl.read_csv(workspace / "from_s3.csv")
    assert scored.height == pl.read_csv(workspace / batch).height
    assert (
        scored["churn_probability"].to_list() == pl.read_csv(workspace / "from_disk.csv")["churn_probability"].to_list()
    )
    monitored = _churnops(workspace, "monitor")
    assert monitored.returncode in (0, 1), monitored.stderr
    assert _metrics(workspace)["model"]["version"] == "1"
    retrained = _churnops(workspace, "retrain")
    assert retrained.returncode == 0 and "challenger v2" in retrained.stdout, retrained.stderr
    versions = {p.split("/models/")[1].split("/")[0] for p in _listed(fs, "bank-models/mlflow") if "/models/" in p}
    assert len(versions) == 2  # the challenger went to the bucket too

    from service_process import TOKEN, Service

    service = Service(workspace)
    try:
        status, ready, _ = service.request("GET", "/readyz")
        assert status == 200 and json.loads(ready)["model"] == "bank-churn v1", ready
        row = pl.read_csv(workspace / batch).drop("Churn Flag").head(1).to_dicts()[0]
        status, answer, _ = service.request(
            "POST", "/v1/predict", json.dumps({"event_id": "s3-0", **row}).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        )  # fmt: skip
        assert status == 200, answer
        assert json.loads(answer)["predictions"][0]["probability"] == pytest.approx(scored["churn_probability"][0])
    finally:
        service.stop()

    with Faulty(s3_server, times=10**6, status=403, code="AccessDenied", where="/bank-models/") as denying:
        denied = _churnops(workspace, "predict", "-i", batch, "-o", "denied.csv", *_via(denying))
    assert denied.returncode == 2 and "access denied" in denied.stderr, denied.stderr
    assert len(denied.stderr.strip().splitlines()) == 1 and not (workspace / "denied.csv").exists()
    with Faulty(s3_server, times=10**6, status=403, code="AccessDenied", where="/bank-models/") as denying:
        denied = _churnops(workspace, "train", *_via(denying))
    assert denied.returncode == 2, denied.stderr
    assert "MLflow artifacts (s3://bank-models/mlflow): access denied" in denied.stderr, denied.stderr
    missing = _churnops(
        workspace, "train", "--set", "model.artifact_dir='s3://no-such-bucket/m'", "--set", "model.experiment='e2'"
    )
    assert missing.returncode == 2 and "the bucket does not exist" in missing.stderr, missing.stderr
    for value, said in (
        ("s3://AKIA:s3cr3t@bank-models/mlflow", "no credentials"),
        ("gs://bank-models/mlflow", "'gs://' artifact stores are not supported"),
        ("s3://bank-models/../../etc", "'..' and empty names are refused"),
    ):
        refused = _churnops(
            workspace, "train", "--set", f"model.artifact_dir='{value}'", "--set", "model.experiment='other'"
        )
        assert refused.returncode == 2 and said in refused.stderr, refused.stderr
        assert "s3cr3t" not in refused.stderr


def test_a_profile_cache_in_s3_is_shared_between_workspaces(workspace, s3_server, tmp_path):
    """storage.profile_cache_url: a profile built in one workspace is uploaded; another workspace
    with the same reference finds it there (a cache hit, the same numbers) instead of building
    it; an unusable object there is ignored with a warning and the profile built."""
    fs = _fs(s3_server)
    fs.create_dir("bank-profiles")
    shared = '\n[storage]\nprofile_cache_url = "s3://bank-profiles/churnops/"\n'
    settings = workspace / "churnops.toml"
    settings.write_text(
        settings.read_text().replace("[storage]\n", '[storage]\nprofile_cache_url = "s3://bank-profiles/churnops/"\n')
    )
    built = _churnops(workspace, "-v", "profile", "build")
    assert built.returncode == 0 and "reference profile shared at s3://bank-profiles/churnops/" in built.stderr, (
        built.stderr
    )
    stored = _listed(fs, "bank-profiles/churnops")
    assert len(stored) == 2 and stored[0].endswith(".npz") and stored[1] == stored[0] + ".sig"  # and its signature
    first = _churnops(workspace, "monitor")
    expected = _numbers(_metrics(workspace))

    other = tmp_path / "other"
    other.mkdir()
    for args in (["data", "init"], ["generate"]):
        assert _churnops(other, "-q", *args).returncode == 0
    (other / "churnops.toml").write_text(f'[storage]\nendpoint_url = "{s3_server}"' + shared.replace("\n[storage]", ""))
    hit = _churnops(other, "-v", "monitor")
    assert (
        hit.returncode == first.returncode
        and "reference profile fetched from s3://bank-profiles/churnops/" in hit.stderr
    )
    document = _metrics(other)
    assert document["outputs"]["profile_cache"] == "hit" and _numbers(document) == expected

    for cached in (other / ".churnops" / "profiles").glob("*.npz"):
        cached.unlink()  # gone locally; the shared copy replaced by something that is not a profile
    _put(fs, stored[0], b"PK\x03\x04 not a profile")
    rebuilt = _churnops(other, "-v", "monitor")
    assert rebuilt.returncode == first.returncode and "its signature does not match" in rebuilt.stderr
    assert _numbers(_metrics(other)) == expected


def test_a_committed_dvc_config_cannot_make_the_pipeline_run_a_program(workspace, s3_server, tmp_path):
    """Whoever could commit to the workspace's repository could run any program on the agent: a
    remote's configpath in .dvc/config made DVC's S3 library read an AWS configuration whose
    credential_process it ran at the push. DVC is not opened on a repository configuration that
    names a program or code to run; the same remote without it still pushes."""
    pytest.importorskip("dvc_s3", reason="needs: dvc-s3 (pip install 'churnops[dvc-s3]')")
    _fs(s3_server).create_dir("dvc-hostile")
    for args in (["init", "-q"], ["config", "user.email", "t@example.com"], ["config", "user.name", "T"]):
        subprocess.run(["git", *args], cwd=workspace, check=True)
    done = _churnops(workspace, "dvc-setup", "--remote", "s3://dvc-hostile/dvc")
    assert done.returncode == 0, done.stderr
    marker = tmp_path / "ran"
    aws = workspace / "aws_config"
    aws.write_text(
        "[default]\nregion = us-east-1\ncredential_process = sh -c 'touch "
        + str(marker)
        + '; echo {\\"Version\\":1,\\"AccessKeyId\\":\\"testing\\",\\"SecretAccessKey\\":\\"testing\\"}\'\n'
    )
    config = workspace / ".dvc" / "config"
    benign = config.read_text()
    config.write_text(benign + "    configpath = ../aws_config\n")
    subprocess.run(["git", "add", ".dvc/config", "aws_config"], cwd=workspace, check=True)
    subprocess.run(["git", "commit", "-qm", "remote settings"], cwd=workspace, check=True)
    no_keys = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_EC2_METADATA_DISABLED": "true"}
    run = _churnops(workspace, "pipeline", env=no_keys)
    assert not marker.exists(), "the repository's credential_process ran"
    said = run.stdout + run.stderr
    assert "sets configpath (an AWS configuration file, whose credential_process is a program" in said, said
    assert "AWS_CONFIG_FILE" in said and "FAILURE" in said, said
    # in .dvc/config.local too, and in the configuration of a revision a restore reads
    config.write_text(benign)
    (workspace / ".dvc" / "config.local").write_text(
        "['remote \"hostile\"']\n    url = s3://x/y\n    credentialpath = a\n"
    )
    run = _churnops(workspace, "pipeline", env=no_keys)
    assert '.dvc/config.local: remote "hostile" sets credentialpath' in run.stdout + run.stderr
    (workspace / ".dvc" / "config.local").unlink()
    run = _churnops(workspace, "pipeline")  # the same remote without the program: versioned and pushed
    assert run.returncode == 0 and "pushed" in run.stdout, run.stdout + run.stderr
    assert not marker.exists() and _listed(_fs(s3_server), "dvc-hostile/dvc")
    from churnops.errors import IntegrationError
    from churnops.integrations.dvc import restore_version

    batch = workspace / "data" / "production" / "bank_churn_prod.csv"
    with pytest.raises(IntegrationError, match=r"\.dvc/config \(at HEAD~1\): remote \"local_storage\" sets configpath"):
        restore_version(workspace, batch, "HEAD~1", tmp_path / "restored.csv")
    assert not marker.exists() and not (tmp_path / "restored.csv").exists()
    # a sub-repository's configuration, which DVC opens to read a path inside it
    sub = workspace / "data" / "production" / ".dvc"
    sub.mkdir()
    (sub / "config").write_text(benign + "    configpath = /proc/self/cwd/aws_config\n")
    subprocess.run(["git", "add", "-f", ".dvc/config", "data/production/.dvc/config"], cwd=workspace, check=True)
    subprocess.run(["git", "commit", "-qm", "a sub-repository"], cwd=workspace, check=True)
    (sub / "config").unlink()  # gone from the working tree, still in the revision restored
    with pytest.raises(IntegrationError, match=r"data/production/\.dvc/config \(at HEAD\): remote .* sets configpath"):
        restore_version(workspace, batch, "HEAD", tmp_path / "restored.csv")
    subprocess.run(["git", "checkout", "-q", "--", "data/production/.dvc/config"], cwd=workspace, check=True)
    run = _churnops(workspace, "pipeline", env=no_keys)
    assert "data/production/.dvc/config: remote" in run.stdout + run.stderr, run.stdout + run.stderr
    assert not marker.exists()
