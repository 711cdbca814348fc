"""``churnops serve --workers N``: worker processes take connections beside the main one. Real
processes on 127.0.0.1; nothing waits on a clock: the tests read the lines the service prints (it
says when every worker serves), wait on answers and on processes ending (pidfd)."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import urllib.error
from pathlib import Path

import polars as pl
import pytest

import churnops

pytest.importorskip("uvicorn", reason="needs: uvicorn (pip install 'churnops[serve]')")
pytest.importorskip("starlette", reason="needs: starlette (pip install 'churnops[serve]')")

from service_process import TOKEN, Lines, Service, children_running, trained_workspace  # noqa: E402 - after the extra is known

AUTH = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A workspace with the embedded data and a champion model."""
    return trained_workspace(tmp_path_factory.mktemp("serve-workers"))


def with_workers(root: Path, count: int, *args: str) -> Service:
    service = Service(root, "--workers", str(count), *args)
    line = service.process.stdout.readline()  # said once every worker serves
    assert line.strip() == f"churnops serve: {count} worker processes take connections", line
    return service


def workers_of(pid: int) -> list[int]:
    return children_running(pid, b"from churnops.serve.workers import worker")


def ended(pids: list[int]) -> bool:
    """Whether every process of ``pids`` has ended (waited on with pidfds, at most 120 s)."""
    for pid in pids:
        try:
            watch = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            readable, _, _ = select.select([watch], [], [], 120)
            if not readable:
                return False
        finally:
            os.close(watch)
    return True


def metric(service: Service, name: str) -> float:
    text = service.request("GET", "/metrics")[1].decode()
    return sum(float(found) for found in re.findall(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE))


def predict(service: Service, body: bytes, headers: dict | None = None):
    status, answer, _ = service.request("POST", "/v1/predict", body, AUTH if headers is None else headers)
    return status, json.loads(answer)


def test_workers_score_as_the_main_process_does_and_each_answer_is_logged_once(trained):
    rows = churnops.generate(80, start=26_000)
    rows.write_csv(trained / "rows.csv")
    done = subprocess.run(
        [sys.executable, "-m", "churnops", "-q", "predict", "-i", "rows.csv", "-o", "scored.csv"],
        cwd=trained, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = dict(
        zip(rows["CustomerId"].to_list(), pl.read_csv(trained / "scored.csv")["churn_probability"], strict=True)
    )
    service = with_workers(trained, 3)
    try:
        pids = workers_of(service.process.pid)
        assert len(pids) == 3
        answers: dict[str, dict] = {}
        lock = threading.Lock()

        def send(part: list[dict]) -> None:
            for row in part:  # one request per connection: the kernel hands each to a free process
                event_id = f"wk-{row['CustomerId']}"
                status, answer = predict(service, json.dumps({"event_id": event_id, **row}).encode())
                assert status == 200, answer
                with lock:
                    answers[event_id] = answer

        records = rows.to_dicts()
        threads = [threading.Thread(target=send, args=(records[i::8],)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        assert len(answers) == 80
        for row in records:
            [scored] = answers[f"wk-{row['CustomerId']}"]["predictions"]
            assert scored["event_id"] == f"wk-{row['CustomerId']}"
            assert scored["probability"] == pytest.approx(expected[row["CustomerId"]], abs=1e-9)
            assert scored["arm"] == "champion" and scored["version"] == "1"
        # the workers scored them all (the main process takes no connection); it wrote every one, once
        assert metric(service, "churnops_serve_worker_scored_rows_total") == 80
        assert metric(service, "churnops_serve_scored_rows_total") == 80
        assert metric(service, 'churnops_serve_requests_total{endpoint="predict",status="200"}') >= 80
        with sqlite3.connect(f"file:{trained / 'monitoring' / 'events.db'}?mode=ro", uri=True) as db:
            logged = dict(db.execute("SELECT event_id, record FROM events WHERE event_id LIKE 'wk-%'").fetchall())
        assert sorted(logged) == sorted(answers)
        for event_id, record in logged.items():
            kept = json.loads(record)
            assert kept["churn_probability"] == answers[event_id]["predictions"][0]["probability"]
        # a request sent again is a duplicate, whichever process takes it
        again = {"event_id": "wk-" + str(records[0]["CustomerId"]), **records[0]}
        for _ in range(6):
            status, answer = predict(service, json.dumps(again).encode())
            assert status == 200 and answer["predictions"][0].get("duplicate") is True
        # the other endpoints answer through any process: one story
        for _ in range(6):
            status, page, headers = service.request("GET", "/")
            assert status == 200 and "default-src 'none'" in headers["content-security-policy"]
            status, drift, _ = service.request("GET", "/v1/drift")
            assert status == 200 and json.loads(drift)["open_window"]["events"] >= 80
        stopping = workers_of(service.process.pid)
        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(timeout=120) == 0
        assert ended(stopping)
    finally:
        service.stop()


def test_workers_refuse_what_the_main_process_refuses_and_the_private_door_stays_shut(trained):
    service = with_workers(trained, 2, "--set", "serve.max_body_bytes=4096")
    try:
        row = churnops.generate(1, start=27_000).to_dicts()[0]
        before = metric(service, "churnops_serve_events_total")
        cases = [
            (json.dumps(row).encode(), {"Content-Type": "application/json"}, 401),
            (json.dumps(row).encode(), {**AUTH, "Authorization": "Bearer wrong"}, 401),
            (b"{not json", AUTH, 400),
            (json.dumps({**row, "Surname": "x" * 5000}).encode(), AUTH, 413),
            (json.dumps({**row, "<script>alert(1)</script>": 1}).encode(), AUTH, 422),
            (json.dumps({**row, "Credit Score": "high"}).encode(), AUTH, 422),
            (b'{"Credit Score": NaN}', AUTH, 400),
            (json.dumps({"Balance": 5.0}).encode(), AUTH, 422),  # the model's other inputs missing
        ]
        for body, headers, expected in cases:
            for _ in range(4):  # several connections: the workers' answers and the main one's
                status, answer = predict(service, body, headers)
                assert status == expected, answer
                assert set(answer) <= {"error", "problems"} and answer["error"]
        assert metric(service, 'churnops_serve_requests_total{endpoint="predict",status="401"}') == 8
        assert metric(service, 'churnops_serve_requests_total{endpoint="predict",status="422"}') == 12
        assert metric(service, "churnops_serve_events_total") == before
        # what the workers send the main process is never answered on the service's port
        from churnops.serve.app import WORKER_HEADER, WORKER_PATH

        forged = json.dumps(
            {"worker": 1, "calls": 0, "rows": 0, "requests": [{"endpoint": "events", "status": 200,
             "seconds": 0.0, "events": [row]}]}
        ).encode()  # fmt: skip
        for secret in ("", "guess", "x" * 43):
            status, answer, _ = service.request("POST", WORKER_PATH, forged, {**AUTH, WORKER_HEADER: secret})
            assert status == 404, answer
        assert metric(service, "churnops_serve_events_total") == before
        # the answers of odd requests are those of one process
        status, answer, _ = service.request("TRACE", "/")
        assert status == 405 and json.loads(answer) == {"error": "method not allowed"}
        status, answer, headers = service.request("GET", "/healthz")
        status, empty, head = service.request("HEAD", "/healthz")
        assert status == 200 and empty == b"" and head["content-length"] == str(len(answer))
        import socket

        host, port = service.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as raw:
            raw.sendall(b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            said = b""
            while chunk := raw.recv(65_536):
                said += chunk
        assert said.startswith(b"HTTP/1.1 404") and said.endswith(b'{"error":"no such endpoint"}'), said
        with socket.create_connection((host, int(port))) as raw:  # a trailing slash: no endpoint, no redirect
            raw.sendall(b"GET /v1/drift/ HTTP/1.1\r\nHost: elsewhere.example\r\nConnection: close\r\n\r\n")
            said = b""
            while chunk := raw.recv(65_536):
                said += chunk
        assert said.startswith(b"HTTP/1.1 404") and b"location" not in said.lower(), said
        # a body is read only for an endpoint that takes one, and only with the token: 'Expect:
        # 100-continue' shows whether the worker asked for it (it read whole bodies to pass them on)
        for path, token, expected in (
            ("/v1/labels", None, b"HTTP/1.1 401"),
            ("/v1/labels", "wrong-token-0123456789", b"HTTP/1.1 401"),
            ("/v1/elsewhere", TOKEN, b"HTTP/1.1 404"),
            ("/v1/drift", TOKEN, b"HTTP/1.1 405"),
        ):
            with socket.create_connection((host, int(port))) as raw:
                auth = f"Authorization: Bearer {token}\r\n" if token else ""
                raw.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
                    f"Content-Length: 1000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n".encode()
                )
                said = raw.recv(65_536)
            assert said.startswith(expected), (path, said[:200])
        # the workers' own refusals of /v1/labels are counted (they were not)
        assert metric(service, 'churnops_serve_requests_total{endpoint="labels",status="401"}') == 2
        # a Content-Length written with thousands of leading zeros is still its number
        body = json.dumps(row).encode()
        with socket.create_connection((host, int(port))) as raw:
            raw.sendall(
                f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {'0' * 5_000}{len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            said = b""
            while chunk := raw.recv(65_536):
                said += chunk
        assert said.startswith(b"HTTP/1.1 200"), said[:300]
    finally:
        service.stop()


def test_a_killed_main_process_ends_its_workers_and_no_acknowledged_event_is_lost(trained):
    rows = churnops.generate(400, start=28_000).to_dicts()
    service = with_workers(trained, 2)
    pids = workers_of(service.process.pid)
    acknowledged: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()

    def load(worker: int) -> None:
        for number in range(400):
            row = rows[(worker * 97 + number) % len(rows)]
            body = json.dumps({"event_id": f"kill-{worker}-{number}", **row}).encode()
            try:
                status, answer = predict(service, body)
            except (OSError, urllib.error.URLError, ValueError):
                return  # the service is gone: this one was never acknowledged
            if status != 200:
                return
            with lock:
                acknowledged.append(answer["predictions"][0]["event_id"])
                if len(acknowledged) >= 150:
                    enough.set()

    threads = [threading.Thread(target=load, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    assert enough.wait(timeout=600)
    service.process.send_signal(signal.SIGKILL)  # in the middle of the load
    service.process.wait(timeout=60)
    assert ended(pids), "a worker outlived the killed main process"
    for thread in threads:
        thread.join(timeout=600)
    import tempfile

    left = list(Path(tempfile.gettempdir()).glob(f"churnops-serve-{service.process.pid}-*"))
    assert len(left) == 1  # a killed process cannot remove its private folder...
    restarted = with_workers(trained, 2)
    assert not left[0].exists()  # ...the next service does
    try:
        with sqlite3.connect(f"file:{trained / 'monitoring' / 'events.db'}?mode=ro", uri=True) as db:
            logged = [row[0] for row in db.execute("SELECT event_id FROM events WHERE event_id LIKE 'kill-%'")]
        assert len(logged) == len(set(logged))  # nothing written twice
        assert set(acknowledged) <= set(logged)  # nothing acknowledged lost
    finally:
        restarted.stop()  # at once: a stop asked before the server listens is not lost


def test_a_worker_that_dies_is_started_again_and_the_service_keeps_answering(tmp_path):
    done = subprocess.run([sys.executable, "-m", "churnops", "-q", "data", "init"], cwd=tmp_path, capture_output=True)
    assert done.returncode == 0, done.stderr
    service = with_workers(tmp_path, 2, "-v")
    errors = Lines(service.process.stderr)
    try:
        first = int(errors.wait_for(r"worker 1 \(process (\d+)\) is serving").group(1))
        assert first in workers_of(service.process.pid)
        os.kill(first, signal.SIGKILL)
        errors.wait_for(r"worker 1 stopped \(killed by SIGKILL\); it is started again")
        again = int(errors.wait_for(r"worker 1 \(process (\d+)\) is serving").group(1))
        assert again != first and again in workers_of(service.process.pid)
        events = churnops.generate(30, start=20_000).to_dicts()
        for event in events:  # /v1/events passed on by whichever process takes the connection
            status, answer = service.post([event])
            assert status == 200 and answer["accepted"] == 1
        status, answer = service.post(events[:2], token=None)
        assert status == 401
        # without a champion, /v1/predict is a clear 503 from every process
        for _ in range(4):
            status, answer = predict(service, json.dumps(events[0]).encode())
            assert status == 503 and "churnops train" in answer["error"]
    finally:
        service.stop()


def test_records_longer_once_written_than_the_body_they_came_in_are_written(trained):
    """A worker's message is longer than the requests it carries (quotes escaped again, numbers
    written in full, a probability, arm and version added): the main process takes it, and
    requests just under serve.max_body_bytes are written as one process writes them."""
    limit = 1_000_000
    rows = churnops.generate(80, start=27_000).to_dicts()
    # each '"' and '\\' takes 2 bytes in the body and 4 in the worker's message
    quoted = json.dumps([{**row, "Occupation": '"\\' * 3_000} for row in rows[:78]]).encode()
    numbers = [{**row, **dict.fromkeys(("Balance", "Income", "Outstanding Loans"), 1e15)} for row in rows]
    full = json.dumps(numbers, separators=(",", ":")).replace("1000000000000000.0", "1e15").encode()
    bodies = [("/v1/events", quoted), ("/v1/events", full), ("/v1/predict", quoted), ("/v1/predict", full)]
    assert limit - 40_000 < len(quoted) < limit
    assert all(len(body) < limit for _, body in bodies)
    written: dict[int, list[str]] = {1: [], 2: []}
    for count in (1, 2):
        settings = ("--set", f"serve.max_body_bytes={limit}")
        service = with_workers(trained, count, *settings) if count > 1 else Service(trained, *settings)
        try:
            for path, body in bodies:
                for repeat in range(count):  # with two workers, twice: each may take one
                    status, answer, _ = service.request("POST", path, body, AUTH)
                    assert status == 200, (count, path, answer[:300])
                    found = json.loads(answer)
                    ids = found.get("event_ids") or [p["event_id"] for p in found["predictions"]]
                    if repeat == 0:
                        log = f"file:{trained / 'monitoring' / 'events.db'}?mode=ro"
                        with sqlite3.connect(log, uri=True) as db:
                            texts = dict(db.execute("SELECT event_id, record FROM events"))
                        written[count] += [texts[event_id] for event_id in ids]
            assert metric(service, "churnops_serve_closed_connections_total") == 0
        finally:
            service.stop()
    assert len(written[1]) == 2 * (78 + 80)
    assert written[2] == written[1]  # the same records, as one process writes them


def test_a_workers_message_is_checked_for_its_form():
    """A worker sends records as the event log keeps them (JSON texts it wrote from records it
    checked) and the values the detectors see; the main process checks the form of each entry
    and refuses a malformed one alone."""
    from churnops.serve.app import worker_message

    watched = ("churn_probability",)
    text = '{"Age":40,"churn_probability":0.25,"churnops_arm":"champion","churnops_model_version":"2"}'
    scored = {"endpoint": "predict", "status": 200, "seconds": 0.01, "ids": [None], "texts": [text],
              "columns": {"churn_probability": [0.25]}}  # fmt: skip
    logged = {"endpoint": "events", "status": 200, "seconds": 0.0, "ids": ["e1"], "texts": ['{"Geography":"x"}'],
              "columns": {"churn_probability": [None]}}  # fmt: skip
    refused = {"endpoint": "predict", "status": 422, "seconds": 0.0}
    good = {"worker": 1, "pid": 4242, "calls": 3, "rows": 3, "requests": [scored, logged, refused],
            "closed": {"slow_request": 2}, "bodies": {"waiting": 1, "waited": 4}}  # fmt: skip
    told = worker_message(good, watched, 10)
    assert told.closed == {"slow_request": 2} and told.bodies == {"waiting": 1, "waited": 4}
    assert [entry.error for entry in told.entries] == [None, None, None]
    first, second = told.entries[0].written, told.entries[1].written
    assert first is not None and (first.ids, first.texts, first.columns) == ([None], [text], scored["columns"])
    assert second is not None and second.ids == ["e1"] and second.columns == {"churn_probability": [None]}
    assert told.entries[2].written is None and told.entries[2].status == 422
    # a message with no request brings the worker's counts up to date; a worker refuses /v1/labels alone
    counts = worker_message({**good, "requests": [], "bodies": {"waiting": 0, "waited": 5}}, watched, 10)
    assert counts.entries == [] and counts.bodies == {"waiting": 0, "waited": 5}
    labels = worker_message({**good, "requests": [{"endpoint": "labels", "status": 401, "seconds": 0.0}]}, watched, 10)
    assert labels.entries[0].endpoint == "labels" and labels.entries[0].error is None
    for bad in ([], {**good, "worker": -1}, {**good, "calls": 1.5}, {**good, "requests": None}, {**good, "pid": "7"},
                {k: v for k, v in good.items() if k != "pid"},
                {**good, "requests": [{"endpoint": "labels", "status": 200, "seconds": 0.0}]},
                {**good, "requests": [scored] * 1_025}, {**good, "requests": [{**scored, "seconds": "0"}]},
                {**good, "requests": [{**scored, "endpoint": "labels"}]}, {**good, "requests": ["x"]},
                {**good, "closed": {"other": 1}}, {**good, "closed": {"slow_request": -1}},
                {**good, "bodies": {"waiting": -1}}, {**good, "bodies": {"other": 1}}, {**good, "bodies": [1]},
                {**good, "bodies": {"waited": 1.5}}):  # fmt: skip
        with pytest.raises(ValueError):
            worker_message(bad, watched, 10)
    for entry in (
        {**scored, "ids": [None] * 11, "texts": [text] * 11, "columns": {"churn_probability": [0.5] * 11}},
        {**scored, "ids": []},
        {**scored, "ids": [""]},
        {**scored, "ids": ["a\x00b"]},
        {**scored, "ids": [7]},
        {**scored, "ids": "e1"},
        {**scored, "texts": []},
        {**scored, "texts": [text, text]},
        {**scored, "texts": [{"Age": 40}]},
        {**scored, "texts": ["[1, 2]"]},
        {**scored, "texts": ["{x"]},
        {**scored, "texts": ["}"]},
        {**scored, "columns": {}},
        {**scored, "columns": {"churn_probability": [0.25], "Age": [40]}},
        {**scored, "columns": {"churn_probability": [[0.25]]}},
        {**scored, "columns": {"churn_probability": ["0.25"]}},
        {**scored, "columns": {"churn_probability": [float("inf")]}},
        {**scored, "columns": {"churn_probability": [0.25, 0.5]}},
        {**scored, "status": 201},
        {**refused, "status": 200},
    ):  # one bad entry is refused alone: the others of the message are written
        told = worker_message({**good, "requests": [entry, logged]}, watched, 10)
        assert told.entries[0].error and told.entries[0].written is None, entry
        assert told.entries[1].error is None and told.entries[1].written


def test_a_workers_counts_never_go_back_when_its_process_ends():
    """A worker's counters start from 0 with each of its processes: the main process replaced a
    dead worker's counts by its new process's (churnops_serve_body_waits_total fell from 38 to 15)
    and kept its requests waiting for room on the gauge after it died (8, for more than 40 s)."""
    from churnops.serve.app import WorkerCounts, worker_message

    def told(worker: int, pid: int, waiting: int, waited: int, rows: int) -> object:
        message = {"worker": worker, "pid": pid, "calls": rows, "rows": rows, "requests": [],
                   "closed": {"slow_request": waited}, "bodies": {"waiting": waiting, "waited": waited}}  # fmt: skip
        return worker_message(message, (), 10)

    counts = WorkerCounts()
    counts.told(told(1, 100, waiting=8, waited=38, rows=500))
    counts.told(told(2, 200, waiting=1, waited=2, rows=20))
    assert (counts.waiting(), counts.total("waited"), counts.total("rows")) == (9, 40, 520)
    counts.ended(1, 100)  # worker 1's process dies: its waits are over, its counters kept
    assert (counts.waiting(), counts.total("waited"), counts.total("rows 1")) == (1, 40, 500)
    counts.told(told(1, 100, waiting=8, waited=39, rows=501))  # a message still on its way: nothing
    counts.told(told(1, 101, waiting=0, waited=15, rows=7))  # its new process starts from 0
    assert (counts.waiting(), counts.total("waited"), counts.total("calls")) == (1, 55, 527)
    assert counts.total("closed slow_request") == 55 and counts.total("rows 1") == 507
    assert counts.workers() == [1, 2]
    counts.ended(2, 999)  # not the process it last heard from: nothing changes
    assert counts.waiting() == 1 and counts.total("rows 2") == 20


def test_a_stop_asked_as_soon_as_the_service_says_it_listens_is_not_lost(tmp_path):
    done = subprocess.run([sys.executable, "-m", "churnops", "-q", "data", "init"], cwd=tmp_path, capture_output=True)
    assert done.returncode == 0, done.stderr
    for args in ((), ("--workers", "2")):
        service = Service(tmp_path, *args)
        service.process.send_signal(signal.SIGTERM)  # before its server may have started
        assert service.process.wait(timeout=120) == 0


def test_every_worker_scores_with_the_main_processs_model_even_one_started_again(tmp_path):
    """A worker started again loaded what the champion alias pointed at by then, while the main
    process and the other workers still scored with the version they had: two models answering at
    once. Every worker loads the main process's versions; after a window, all move together."""
    trained_workspace(tmp_path)
    service = with_workers(tmp_path, 2, "-v")
    errors = Lines(service.process.stderr)
    try:
        record = json.dumps(churnops.generate(1, start=29_000).to_dicts()[0]).encode()

        def versions(count: int) -> set[str]:
            return {predict(service, record)[1]["predictions"][0]["version"] for _ in range(count)}

        assert versions(10) == {"1"}
        done = subprocess.run([sys.executable, "-m", "churnops", "-q", "train"], cwd=tmp_path, capture_output=True)
        assert done.returncode == 0, done.stderr  # the champion alias now points at version 2
        first = int(errors.wait_for(r"worker 1 \(process (\d+)\) is serving").group(1))
        os.kill(first, signal.SIGKILL)
        errors.wait_for(r"worker 1 stopped \(killed by SIGKILL\); it is started again")
        errors.wait_for(r"worker 1 \(process \d+\) is serving")
        assert versions(20) == {"1"}  # the restarted worker scores with the main process's version
        # a window closes: the main process takes up version 2, and so does every worker
        assert service.post(churnops.generate(1_000, start=20_000).to_dicts())[0] == 200
        service.window(0)
        moved = r"worker (\d) \(process \d+\) scores with champion version 2"
        assert {errors.wait_for(moved).group(1) for _ in range(2)} == {"1", "2"}  # each says so
        assert versions(20) == {"2"}
    finally:
        service.stop()


def test_a_workers_waits_for_room_show_in_metrics_and_its_refusals_are_counted(tmp_path):
    """With workers, /metrics counted a request waiting for room only once its worker next sent
    an answered request to the main process (it read 0 while requests waited), and a 503 for no
    room in time was counted nowhere. Connections each ask for all of a worker's room until one
    waits (with two workers, the third at the latest) - the gauge says so while it waits - and it
    is answered 503, counted."""
    import socket

    done = subprocess.run([sys.executable, "-m", "churnops", "-q", "data", "init"], cwd=tmp_path, capture_output=True)
    assert done.returncode == 0, done.stderr
    limit = 1 << 20
    service = with_workers(
        tmp_path, 2, "--set", f"serve.max_inflight_bytes={limit}", "--set", "serve.request_timeout=6"
    )
    host, port = service.url.removeprefix("http://").split(":")
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {limit}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    ).encode()

    def metric(name: str) -> float:
        text = service.request("GET", "/metrics")[1].decode()
        return float(text.split(f"\n{name} ", 1)[1].split("\n", 1)[0])

    connections, holding, waiting = [], [], []
    try:
        while not waiting:  # three connections at most: two workers cannot give room to three
            assert len(connections) < 3
            connection = socket.create_connection((host, int(port)))
            connections.append(connection)
            connection.sendall(head)
            for _ in range(10_000):  # until it is asked for its body, or the service says it waits
                if select.select([connection], [], [], 0.01)[0]:
                    assert connection.recv(100).startswith(b"HTTP/1.1 100 Continue")
                    holding.append(connection)
                    break
                if metric("churnops_serve_bodies_waiting") == len(waiting) + 1:
                    waiting.append(connection)
                    break
            else:
                raise AssertionError("the request neither got room nor was counted waiting")
        assert len(holding) in (1, 2) and len(waiting) == 1
        answer = b""
        while chunk := waiting[0].recv(65_536):  # its wait (3 s) ends before the holders' deadline (6 s)
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in answer.lower(), answer[:300]
        assert metric("churnops_serve_bodies_waiting") == 0
        assert metric("churnops_serve_body_waits_total") == 1
        metrics = service.request("GET", "/metrics")[1].decode()
        assert 'churnops_serve_requests_total{endpoint="events",status="503"} 1.0' in metrics
    finally:
        for connection in connections:
            connection.close()
        service.stop()
