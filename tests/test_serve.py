"""``churnops serve`` as a real process on 127.0.0.1: a window's numbers are those of
``churnops monitor`` on the same rows, every acknowledged event survives a SIGKILL exactly once,
and hostile requests get a 4xx with one clear message. Nothing waits on a clock: the tests read
the service's "listening" line, wait on its answers, and ask it to answer once a window is
evaluated (``GET /v1/drift?window=N&wait=S``)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import churnops

pytest.importorskip("uvicorn", reason="needs: uvicorn (pip install 'churnops[serve]')")
pytest.importorskip("starlette", reason="needs: starlette (pip install 'churnops[serve]')")

from service_process import TOKEN, WINDOW, Lines, Service, children_running, trained_workspace  # noqa: E402 - after the extra is known


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "churnops", "-q", "data", "init"], cwd=tmp_path, capture_output=True)
    assert done.returncode == 0, done.stderr
    return tmp_path


def refused_at_start(root: Path, *args: str, token: str = TOKEN) -> subprocess.CompletedProcess:
    """``churnops serve --port 0 *args`` in ``root``, which should refuse to start (and so return)."""
    return subprocess.run(
        [sys.executable, "-m", "churnops", "serve", "--port", "0", *args],
        cwd=root, capture_output=True, text=True, timeout=600, env={**os.environ, "CHURNOPS_API_TOKEN": token},
    )  # fmt: skip


def _events(frame: pl.DataFrame, prefix: str) -> list[dict]:
    return [{"event_id": f"{prefix}-{i}", **row} for i, row in enumerate(frame.to_dicts())]


def test_a_windows_numbers_are_those_of_churnops_monitor_on_the_same_rows(project):
    batch = churnops.generate(WINDOW + 300, start=20_000, scenario="seed")
    service = Service(project)
    try:
        for start in range(0, batch.height, 250):
            status, answer = service.post(_events(batch[start : start + 250], f"e{start}"))
            assert status == 200 and answer["accepted"] == min(250, batch.height - start), answer
        served = service.window(0)
        status, page, headers = service.request("GET", "/")
        assert status == 200 and b"<script" not in page and "default-src 'none'" in headers["content-security-policy"]
        status, report, _ = service.request("GET", "/v1/windows/0/report")
        assert status == 200 and report.startswith(b"<!DOCTYPE html>")
        status, drift, _ = service.request("GET", "/v1/drift")
        assert json.loads(drift)["open_window"] == {"window": 1, "events": 300, "window_size": WINDOW}
        status, metrics, _ = service.request("GET", "/metrics")
        assert (
            b'churnops_dataset_drift_score{window="0"}' in metrics and b"churnops_serve_events_total 1300.0" in metrics
        )
    finally:
        service.stop()
    batch[:WINDOW].write_csv(project / "window.csv")
    done = subprocess.run(
        [sys.executable, "-m", "churnops", "-q", "monitor", "-p", "window.csv"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    batch_metrics = json.loads((project / "monitoring" / "monitoring_metrics.json").read_text())
    for name, column in batch_metrics["columns"].items():
        assert served["columns"][name]["drift_score"] == column["drift_score"], name
        assert served["columns"][name]["drift_detected"] == column["drift_detected"], name
    for key in ("score", "detected", "drifted_columns"):
        assert served["dataset_drift"][key] == batch_metrics["dataset_drift"][key]
    assert served["target_drift"]["p_value"] == batch_metrics["target_drift"]["p_value"]
    assert served["data_quality"]["score"] == batch_metrics["data_quality"]["score"]
    assert served["verdict"]["status"] == batch_metrics["verdict"]["status"] == "alert"


def test_every_acknowledged_event_survives_a_kill_exactly_once(project):
    rows = churnops.generate(4_000, start=20_000).to_dicts()
    service = Service(project)
    acknowledged: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()

    def load(worker: int) -> None:
        for batch in range(100):
            events = [{"event_id": f"w{worker}-{batch}-{i}", **rows[(batch * 40 + i) % len(rows)]} for i in range(40)]
            try:
                status, answer = service.post(events)
            except (OSError, urllib.error.URLError):
                return  # the service is gone: this batch was never acknowledged
            if status != 200:
                return
            with lock:
                acknowledged.extend(answer["event_ids"])
                if len(acknowledged) >= 2_400:
                    enough.set()

    workers = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for worker in workers:
        worker.start()
    assert enough.wait(timeout=600)
    service.process.send_signal(signal.SIGKILL)  # in the middle of the load
    service.process.wait(timeout=60)
    for worker in workers:
        worker.join(timeout=600)

    restarted = Service(project)
    try:
        with sqlite3.connect(f"file:{project / 'monitoring' / 'events.db'}?mode=ro", uri=True) as db:
            logged = [row[0] for row in db.execute("SELECT event_id FROM events")]
            per_window = dict(db.execute("SELECT window, COUNT(*) FROM events GROUP BY window").fetchall())
            closed = dict(db.execute("SELECT window, events FROM windows").fetchall())
        assert len(logged) == len(set(logged))  # nothing counted twice
        assert set(acknowledged) <= set(logged)  # nothing acknowledged lost
        assert all(per_window[w] == WINDOW == closed[w] for w in closed)
        status, drift, _ = restarted.request("GET", "/v1/drift")
        open_window = json.loads(drift)["open_window"]
        assert open_window["window"] == len(closed) and open_window["events"] == len(logged) - WINDOW * len(closed)
        # a client retrying an acknowledged batch is told, and nothing is counted again
        again = [{"event_id": acknowledged[0], **rows[0]}]
        status, answer = restarted.post(again)
        assert status == 200 and answer["accepted"] == 0 and answer["duplicates"] == [acknowledged[0]]
        for window in closed:  # windows closed before the kill are evaluated, now or at the restart
            assert restarted.window(window)["current"]["rows"] == WINDOW
        # the detectors' state was saved with the events: they have seen each logged event once
        detectors = {d["stream"]: d for d in json.loads(restarted.request("GET", "/v1/drift")[1])["detectors"]}
        assert detectors["Credit Score"]["values_seen"] == len(logged)
    finally:
        restarted.stop()


def test_hostile_requests_get_a_clear_4xx_and_write_nothing(project):
    service = Service(project, "--set", "serve.max_body_bytes=4096", "--set", "serve.max_batch=5")
    one = churnops.generate(1, start=20_000).to_dicts()[0]
    try:
        cases = [
            (service.post([one], token=None), 401, "bearer token"),
            (service.post([one], token="wrong-token-0123456789"), 401, "bearer token"),
            (service.post(None, raw=b"{not json"), 400, "not valid JSON"),
            (service.post(None, raw=b'[{"Balance": NaN}]'), 400, "not valid JSON"),
            (service.post(None, raw=b"[" + b"[" * 100_000 + b"]"), 413, "larger than"),
            (service.post([one] * 6), 422, "at most 5"),
            (service.post([{**one, "Balance": "lots"}]), 422, "Balance: expected a number"),
            (service.post([{**one, "Credit Score": 700.5}]), 422, "expected a whole number"),
            (service.post([{**one, "<img src=x>": 1}]), 422, "unknown column"),
            (service.post([{**one, "Balance": [1, 2]}]), 422, "nested value"),
            (service.post({"event_id": 7, **one}), 422, "event_id must be text"),
            (service.post([]), 422, "no event"),
        ]
        for (status, answer), expected, said in cases:
            assert status == expected and said in json.dumps(answer), (expected, answer)
        status, body, _ = service.request("GET", "/v1/nowhere")
        assert status == 404 and json.loads(body)["error"] == "no such endpoint"
        # a trailing slash is no endpoint either: never a redirect to a URL made of the client's Host header
        hostile = {"Host": "evil.example", "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        status, body, headers = service.request("POST", "/v1/events/", json.dumps([one]).encode(), hostile)
        assert status == 404 and "location" not in {name.lower() for name in headers}, headers
        # a Content-Length written with thousands of leading zeros is still its number (it was a 500)
        import socket

        body = json.dumps([{**one, "Balance": "lots"}]).encode()  # read whole and checked: 422, nothing written
        host, port = service.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as raw:
            raw.sendall(
                f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {'0' * 5_000}{len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            said = _answer(raw)
        assert said.startswith(b"HTTP/1.1 422") and b"Balance: expected a number" in said, said[:300]
        status, body, _ = service.request("GET", "/v1/events")
        assert status == 405
        status, body, _ = service.request("GET", "/v1/drift?window=x")
        assert status == 400
        # markup in a value is data, accepted as text and never markup in any page
        status, answer = service.post([{**one, "Occupation": "<script>alert(1)</script>"}])
        assert status == 200 and answer["accepted"] == 1
        status, page, _ = service.request("GET", "/")
        assert b"<script>" not in page
        status, drift, _ = service.request("GET", "/v1/drift")
        assert json.loads(drift)["open_window"]["events"] == 1  # nothing else was written
    finally:
        service.stop()
    stderr = service.process.stderr.read()
    assert TOKEN not in stderr and "Traceback" not in stderr


def test_the_service_refuses_to_start_unsafely(project):
    without = refused_at_start(project, token="")
    assert without.returncode == 2 and "set the environment variable CHURNOPS_API_TOKEN" in without.stderr
    exposed = refused_at_start(project, "--host", "0.0.0.0", "--insecure-no-auth", token="")
    assert exposed.returncode == 2 and "only allowed on 127.0.0.1" in exposed.stderr
    (project / "monitoring").mkdir(exist_ok=True)
    (project / "elsewhere.db").write_text("")
    (project / "monitoring" / "events.db").symlink_to(project / "elsewhere.db")
    linked = refused_at_start(project)
    assert linked.returncode == 2 and "symbolic link" in linked.stderr
    assert (project / "elsewhere.db").read_text() == ""


def test_the_detectors_keep_quiet_on_the_reference_and_find_the_seed_drift(project):
    """50,000 events like the reference: no stream alarms more often than serve.arl0 (5,000 here)
    allows; then the seed drift (credit scores 15 points lower): the Credit Score stream alarms
    downwards, with an estimate of when the change began."""
    service = Service(project, "--set", "serve.arl0=5000")
    calm = churnops.generate(50_000, start=30_000)
    try:
        for start in range(0, calm.height, 1_000):
            assert service.post(_events(calm[start : start + 1_000], f"c{start}"))[0] == 200
        before = {d["stream"]: d for d in json.loads(service.request("GET", "/v1/drift")[1])["detectors"]}
        assert set(before) >= {"Balance", "Credit Score", "Income"}
        for stream, detector in before.items():
            assert detector["values_seen"] > 40_000, stream
            assert detector["alarms"] <= 2 * 50_000 / 5_000, (stream, detector["alarms"])
        drifted = churnops.generate(5_000, start=80_000, scenario="seed")
        for start in range(0, drifted.height, 1_000):
            assert service.post(_events(drifted[start : start + 1_000], f"d{start}"))[0] == 200
        after = {d["stream"]: d for d in json.loads(service.request("GET", "/v1/drift")[1])["detectors"]}
        credit = after["Credit Score"]
        assert credit["alarms"] > before["Credit Score"]["alarms"]
        last = credit["last_alarm"]
        assert last["direction"] == "down" and last["at_value"] > 50_000 and last["delay_values"] >= 0
        status, metrics, _ = service.request("GET", "/metrics")
        assert b'churnops_serve_detector_alarms_total{stream="Credit Score"}' in metrics
    finally:
        service.stop()


def test_a_drift_lasting_several_windows_is_one_alert_a_reminder_and_an_all_clear(project):
    (project / "churnops.toml").write_text(
        '[serve]\nremind_every = 2\n\n[metrics]\ntextfile_dir = "monitoring/prom"\n\n'
        '[[notify.channels]]\ntype = "file"\npath = "monitoring/notices.jsonl"\non = ["drift", "ok"]\n'
    )
    service = Service(project)
    drifted = churnops.generate(3 * WINDOW, start=20_000, scenario="seed")
    calm = churnops.generate(WINDOW, start=23_000)
    try:
        for number, part in enumerate([drifted[i * WINDOW : (i + 1) * WINDOW] for i in range(3)] + [calm]):
            assert service.post(_events(part, f"w{number}"))[0] == 200
            assert service.window(number)["verdict"]["status"] == ("alert" if number < 3 else "ok")
    finally:
        service.stop()
    notices = [json.loads(line) for line in (project / "monitoring" / "notices.jsonl").read_text().splitlines()]
    assert [n["status"] for n in notices] == ["drift", "drift", "ok"]  # windows 0, 2 (reminder), 3 (over)
    windows = project / "monitoring" / "windows"
    assert (windows / "0" / "trigger.txt").read_text().startswith("ALERT") and not (
        windows / "3" / "trigger.txt"
    ).exists()
    assert "churnops_alert" in (project / "monitoring" / "prom" / "churnops.prom").read_text()  # [metrics] textfile
    history = subprocess.run(
        [sys.executable, "-m", "churnops", "history", "--format", "json"], cwd=project, capture_output=True, text=True
    )
    assert history.returncode == 0, history.stderr
    assert len(json.loads(history.stdout)) == 4  # each window is a run of the history


def test_a_window_period_closes_a_window_that_is_not_full(project):
    service = Service(project, "--set", "serve.window_period=1s")
    events = churnops.generate(300, start=20_000)
    try:
        assert service.post(_events(events, "p"))[1]["window"] == 0
        closed = service.window(0)  # answered once the clock closed and evaluated it
        assert closed["current"]["rows"] == 300
        status, drift, _ = service.request("GET", "/v1/drift")
        assert json.loads(drift)["open_window"]["window"] == 1
    finally:
        service.stop()
    bad = refused_at_start(project, "--set", "serve.window_period=2w")
    assert bad.returncode == 2 and "is not a period like 30s" in bad.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A workspace with the embedded data and a champion model."""
    return trained_workspace(tmp_path_factory.mktemp("serve-model"))


def test_predict_scores_as_churnops_predict_does_and_logs_the_events(trained):
    rows = churnops.generate(40, start=25_000)
    rows.write_csv(trained / "rows.csv")
    done = subprocess.run(
        [sys.executable, "-m", "churnops", "-q", "predict", "-i", "rows.csv", "-o", "scored.csv"],
        cwd=trained, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = pl.read_csv(trained / "scored.csv")["churn_probability"].to_list()
    service = Service(trained)
    try:
        status, ready, _ = service.request("GET", "/readyz")
        assert json.loads(ready)["model"].startswith("bank-churn v")
        events = _events(rows, "s")
        one = service.request(
            "POST", "/v1/predict", json.dumps(events[0]).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        )  # fmt: skip
        assert one[0] == 200
        first = json.loads(one[1])["predictions"][0]
        assert first["event_id"] == "s-0" and first["arm"] == "champion" and first["label"] in (0, 1)
        threads, answers = [], {}

        def ask(i: int) -> None:  # concurrent single-record requests
            status, body, _ = service.request(
                "POST", "/v1/predict", json.dumps(events[i]).encode(),
                {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
            )  # fmt: skip
            answers[i] = (status, json.loads(body))

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(1, 40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert all(status == 200 for status, _ in answers.values())
        got = [first["probability"]] + [answers[i][1]["predictions"][0]["probability"] for i in range(1, 40)]
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)  # the command's numbers
        status, metrics, _ = service.request("GET", "/metrics")
        assert b"churnops_serve_scored_rows_total 40" in metrics and b"churnops_serve_events_total 40.0" in metrics
        again = service.request(
            "POST", "/v1/predict", json.dumps(events[0]).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        )  # fmt: skip
        assert json.loads(again[1])["predictions"][0].get("duplicate") is True  # scored, not counted twice
        bad = service.request(
            "POST", "/v1/predict", json.dumps({**events[1], "Balance": "lots"}).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        )  # fmt: skip
        assert bad[0] == 422
        # a record without some of the model's inputs is refused, as churnops predict refuses such
        # a file (it was scored with them missing); sent as null, an input is a missing value
        lacking = {k: v for k, v in events[0].items() if k not in ("Balance", "Income")} | {"event_id": "s-x"}
        status, body, _ = service.request(
            "POST", "/v1/predict", json.dumps([events[1], lacking]).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        )  # fmt: skip
        assert status == 422, body
        assert json.loads(body)["problems"] == ["record 1: no Balance, Income (send null for a missing value)"]
        status, body, _ = service.request(
            "POST", "/v1/predict", json.dumps(lacking | {"Balance": None, "Income": None}).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        )  # fmt: skip
        assert status == 200, body
        # dates are read value by value: neighbours in a micro-batch never decide how a request's
        # date reads ('12/25/1990' beside '25/12/1990' was read as missing), one that reads both
        # ways or not at all is refused, and the requests beside it are answered as usual
        late = next(event for event in events if int(event["Date of Birth"][8:10]) > 12)  # day past the 12th
        birth = late["Date of Birth"]
        written = {
            "iso": birth,
            "us": f"{birth[5:7]}/{birth[8:10]}/{birth[:4]}",
            "eu": f"{birth[8:10]}/{birth[5:7]}/{birth[:4]}",
            "both": "01/02/1990",
            "none": "yesterday",
        }
        sent = {key: {**late, "event_id": f"date-{key}", "Date of Birth": value} for key, value in written.items()}
        dated = {}

        def ask_dated(key: str) -> None:
            status, body, _ = service.request(
                "POST", "/v1/predict", json.dumps(sent[key]).encode(),
                {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
            )  # fmt: skip
            dated[key] = (status, json.loads(body))

        threads = [threading.Thread(target=ask_dated, args=(key,)) for key in sent]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert dated["both"][0] == 422 and "reads as day/month and as month/day" in json.dumps(dated["both"][1])
        assert dated["none"][0] == 422 and "is not a date the model can read" in json.dumps(dated["none"][1])
        iso = dated["iso"][1]["predictions"][0]["probability"]
        for key in ("us", "eu"):
            assert dated[key][0] == 200 and dated[key][1]["predictions"][0]["probability"] == iso, dated[key]
    finally:
        service.stop()


def test_a_window_of_scored_traffic_is_a_window_without_labels_not_one_of_missing_values(trained):
    """/v1/predict's records never carry the outcome: every such window ended in a data quality
    warning ("Churn Flag: all values missing"). It is a window whose labels come later."""
    rows = churnops.generate(WINDOW, start=27_000).drop("Churn Flag")
    service = Service(trained, "--set", "serve.event_log=monitoring/unlabelled.db")  # its windows alone
    try:
        status, body, _ = service.request(
            "POST", "/v1/predict", json.dumps(_events(rows, "w")).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        )  # fmt: skip
        assert status == 200, body
        (window,) = json.loads(body)["closed_windows"]
        metrics = service.window(window)
        assert metrics["data_quality"]["passed"], metrics["data_quality"]
        assert not any("Churn Flag" in (check.get("column") or "") for check in metrics["data_quality"]["checks"])
        assert metrics["target_drift"] is None
        assert "Churn Flag" in {column["name"] for column in metrics["skipped_columns"]}
    finally:
        service.stop()


def test_requests_waiting_together_are_scored_in_one_model_call(trained, monkeypatch):
    import asyncio

    from churnops.config import load_config
    from churnops.serve.records import RecordSchema
    from churnops.serve.scoring import Champion, MicroBatcher

    monkeypatch.chdir(trained)
    config = load_config()
    champion = Champion.load(config)
    assert champion is not None
    rows = churnops.generate(30, start=26_000).to_dicts()
    schema = RecordSchema({name: str(dtype) for name, dtype in churnops.generate(5).schema.items()})
    batcher = MicroBatcher(champion, schema.dtypes)

    async def together() -> list:
        return await asyncio.gather(*(batcher.score([row]) for row in rows))

    scores = asyncio.run(together())
    assert champion.calls == 1 and champion.rows == 30  # thirty requests, one model call
    alone = champion.score(pl.DataFrame(rows))
    assert [float(s[0]) for s in scores] == pytest.approx(list(alone), rel=1e-12)


def test_predict_without_a_champion_is_a_clear_503(project):
    service = Service(project)
    try:
        status, body = service.post([churnops.generate(1, start=20_000).to_dicts()[0]])
        assert status == 200
        status, body, _ = service.request(
            "POST", "/v1/predict", json.dumps(churnops.generate(1, start=20_000).to_dicts()[0]).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        )  # fmt: skip
        assert status == 503 and "churnops train" in json.loads(body)["error"]
    finally:
        service.stop()


def test_what_an_outside_review_found_stays_fixed(project):
    """Waiting for windows never holds up writes; wide numbers and control characters are refused;
    window numbers of any length are a 4xx; the metrics pass promtool and survive a restart."""
    service = Service(project)
    rows = churnops.generate(WINDOW, start=20_000)
    try:
        answers: dict[int, int] = {}
        turned_away = threading.Event()

        def wait(i: int) -> None:
            answers[i] = service.request("GET", f"/v1/drift?window={10**6 + i}&wait=30")[0]
            if list(answers.values()).count(429) == 6:
                turned_away.set()  # 64 wait, the 6 beyond were turned away

        waiters = [threading.Thread(target=wait, args=(i,)) for i in range(70)]
        for waiter in waiters:
            waiter.start()
        assert turned_away.wait(timeout=300)
        status, answer = service.post(_events(rows, "r"))  # closes window 0 while 64 requests wait
        assert status == 200 and answer["closed_windows"] == [0]
        assert len(answers) == 6  # the waiting ones are still waiting: they held up nothing
        for waiter in waiters:
            waiter.join(timeout=300)
        assert sorted(set(answers.values())) == [404, 429]
        one = rows.to_dicts()[0]
        for event, said in (
            ({**one, "Credit Score": 1e19}, "out of range"),
            ({**one, "event_id": "a\u0000b\u001b[31m"}, "control characters"),
        ):
            status, body = service.post([event])
            assert status == 422 and said in json.dumps(body), body
        for path in (
            "/v1/windows/" + "9" * 5000 + "/report",
            "/v1/drift?window=" + "9" * 5000,
            "/v1/drift?window=%D9%A3",
        ):
            assert service.request("GET", path)[0] in (400, 404), path
        status, _ = service.post(None, raw=b"[]")
        headers = {"Content-Type": "text/notjson", "Authorization": f"Bearer {TOKEN}"}
        assert service.request("POST", "/v1/events", json.dumps([one]).encode(), headers)[0] == 415
        service.window(0)
    finally:
        service.stop()
    restarted = Service(project)
    try:
        status, metrics, _ = restarted.request("GET", "/metrics")
        assert b'churnops_dataset_drift_score{window="0"}' in metrics  # the last window, after a restart
        promtool = shutil.which("promtool")
        if promtool is not None:
            checked = subprocess.run([promtool, "check", "metrics"], input=metrics, capture_output=True)
            assert checked.returncode == 0, checked.stdout + checked.stderr
        second = subprocess.run(
            [sys.executable, "-m", "churnops", "serve", "--port", "0"],
            cwd=project, capture_output=True, text=True, timeout=300, env={**os.environ, "CHURNOPS_API_TOKEN": TOKEN},
        )  # fmt: skip
        assert second.returncode == 2 and "in use by another churnops serve" in second.stderr
    finally:
        restarted.stop()
    # an older log's window files are never served as this log's windows
    (project / "monitoring" / "events.db").rename(project / "old-events.db")
    for extra in ("events.db-wal", "events.db-shm"):
        (project / "monitoring" / extra).unlink(missing_ok=True)
    fresh = Service(project)
    try:
        assert fresh.request("GET", "/v1/drift?window=0&wait=0")[0] == 404
        assert fresh.request("GET", "/v1/windows/0/report")[0] == 404
    finally:
        fresh.stop()
    # a database that is not an event log is refused, not taken over
    import sqlite3 as sql

    (project / "monitoring" / "events.db").unlink()
    with sql.connect(project / "monitoring" / "events.db") as db:
        db.execute("CREATE TABLE runs (id INTEGER)")
    foreign = refused_at_start(project)
    assert foreign.returncode == 2 and "not churnops' event log" in foreign.stderr
    dated = refused_at_start(
        project, "--set", "serve.event_log=monitoring/other.db", "--set", 'serve.detectors=["Date of Birth"]'
    )
    assert dated.returncode == 2 and "not a tested numerical column" in dated.stderr


def test_late_labels_give_the_champions_realized_performance(trained):
    from churnops.monitor.performance import roc_auc

    rows = churnops.generate(300, start=27_000)
    service = Service(trained, "--set", "serve.event_log=monitoring/late.db")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    try:
        events = _events(rows.drop("Churn Flag"), "late")
        status, body, _ = service.request("POST", "/v1/predict", json.dumps(events).encode(), headers)
        assert status == 200
        scores = [p["probability"] for p in json.loads(body)["predictions"]]
        model = json.loads(service.request("GET", "/v1/drift")[1])["model"]
        assert model["labelled"] == 0 and model["roc_auc"] is None and model["scored"] == 300
        outcomes = [{"event_id": f"late-{i}", "label": int(flag)} for i, flag in enumerate(rows["Churn Flag"])]
        outcomes.append({"event_id": "never-seen", "label": 1})
        status, body, _ = service.request("POST", "/v1/labels", json.dumps(outcomes).encode(), headers)
        assert status == 200 and json.loads(body) == {
            "labelled": 300, "unknown_event_ids": ["never-seen"], "unscored_event_ids": []
        }  # fmt: skip
        model = json.loads(service.request("GET", "/v1/drift")[1])["model"]
        expected = roc_auc(np.array(rows["Churn Flag"].to_list()), np.array(scores))
        assert model["labelled"] == 300 and model["roc_auc"] == pytest.approx(expected, rel=1e-12)
        assert 0 < model["brier"] < 0.25 and model["log_loss"] > 0
        for bad in (
            [{"event_id": "late-1", "label": 2}],
            [{"label": 1}],
            [],
            [{"event_id": "late-1", "label": 1, "x<": 1}],
        ):
            status, body, _ = service.request("POST", "/v1/labels", json.dumps(bad).encode(), headers)
            assert status == 422, body
        plain = json.dumps([{"event_id": "plain-1", "Credit Score": 640}]).encode()
        assert service.request("POST", "/v1/events", plain, headers)[0] == 200  # logged, not scored
        status, body, _ = service.request(
            "POST", "/v1/labels", json.dumps([{"event_id": "plain-1", "label": 1}, outcomes[0]]).encode(), headers
        )
        assert status == 200 and json.loads(body) == {
            "labelled": 2, "unknown_event_ids": [], "unscored_event_ids": ["plain-1"]
        }  # fmt: skip
        twice = [{"event_id": "late-1", "label": 1 - outcomes[1]["label"]}, outcomes[1]]  # its last label wins
        status, body, _ = service.request("POST", "/v1/labels", json.dumps(twice).encode(), headers)
        assert status == 200 and json.loads(body)["labelled"] == 1
        assert json.loads(service.request("GET", "/v1/drift")[1])["model"]["roc_auc"] == pytest.approx(
            expected, rel=1e-12
        )
        assert service.request("POST", "/v1/labels", b"[]", {"Content-Type": "application/json"})[0] == 401
    finally:
        service.stop()


def test_a_challenger_scores_its_share_of_customers_for_good_and_the_arms_are_compared(trained):
    from churnops.config import load_config
    from churnops.integrations import mlflow_registry as registry
    from churnops.pipeline.scoring import store_of

    config = load_config(trained / "churnops.toml") if (trained / "churnops.toml").exists() else load_config(trained)
    store = store_of(config)
    champion = registry.find_alias(store, config.model.name, "champion")
    registry.set_alias(store, config.model.name, "challenger", champion.version)  # the same model in both arms
    rows = churnops.generate(400, start=28_000)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    events = _events(rows.drop("Churn Flag"), "ab")
    arms: dict[int, str] = {}
    for attempt in range(2):  # the same customers after a restart: the same arms
        service = Service(
            trained, "--set", "serve.ab.share=0.5", "--set", "serve.event_log=monitoring/ab.db",
            "--set", "serve.ab.min_labels=100", "--set", "serve.ab.min_each_outcome=10",
        )  # fmt: skip
        try:
            batch = [{**e, "event_id": f"{e['event_id']}-{attempt}"} for e in events]
            status, body, _ = service.request("POST", "/v1/predict", json.dumps(batch).encode(), headers)
            assert status == 200, body
            predictions = json.loads(body)["predictions"]
            for event, prediction in zip(batch, predictions, strict=True):
                arms.setdefault(event["CustomerId"], prediction["arm"])
                assert arms[event["CustomerId"]] == prediction["arm"]
            if attempt == 1:
                outcomes = [{"event_id": f"ab-{i}-1", "label": int(flag)} for i, flag in enumerate(rows["Churn Flag"])]
                assert service.request("POST", "/v1/labels", json.dumps(outcomes).encode(), headers)[0] == 200
                model = json.loads(service.request("GET", "/v1/drift")[1])["model"]
        finally:
            service.stop()
    shares = list(arms.values())
    assert 120 < shares.count("challenger") < 280  # about half of 400 customers
    assert model["champion"]["labelled"] + model["challenger"]["labelled"] == 400
    assert model["challenger_share"] == 0.5 and "DeLong" in model["comparison"]["test"]
    # the same model in both arms: not better, whatever the draw of customers
    assert 0.0 <= model["comparison"]["p_value"] <= 1.0 and model["comparison"]["promote"] is False
    assert "not significantly better" in model["comparison"]["reason"]
    bad = refused_at_start(
        trained, "--set", "serve.ab.share=0.5", "--set", "serve.ab.key=nope",
        "--set", "serve.event_log=monitoring/ab2.db",
    )  # fmt: skip
    assert bad.returncode == 2 and "serve.ab.key" in bad.stderr


def test_without_the_serve_extra_the_command_says_what_to_install(project):
    code = (
        "import sys; sys.modules['starlette'] = None; sys.argv = ['churnops', 'serve', '--port', '0']; "
        "from churnops.cli import main; sys.exit(main())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=project, capture_output=True, text=True, timeout=300,
        env={**os.environ, "CHURNOPS_API_TOKEN": TOKEN},
    )  # fmt: skip
    assert done.returncode == 2 and "pip install 'churnops[serve]'" in done.stderr, done.stderr


def _one_response(client, pending: bytes = b"") -> tuple[bytes, bytes]:
    """One whole HTTP response read from ``client`` (its head and its Content-Length body), and
    what was read beyond it."""
    data = pending
    while b"\r\n\r\n" not in data:
        more = client.recv(65536)
        assert more, data
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(rest) < length:
        more = client.recv(65536)
        assert more, data
        rest += more
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


def test_a_stop_does_not_wait_for_the_requests_waiting_for_a_window(project):
    """SIGTERM waited for a long poll (GET /v1/drift?window=N&wait=60) to run out: 61 s, past a
    Kubernetes grace period of 30 s, so the service was killed instead of stopping cleanly. The
    waiting request is answered 503 at once and the service exits 0 (the wait below is bounded far
    under the poll's 60 s)."""
    import signal
    import socket

    service = Service(project)
    host, port = service.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=120) as client:
        client.sendall(b"GET /v1/drift?window=99&wait=60 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert service.request("GET", "/healthz")[0] == 200  # the poll was read before this was answered
        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(timeout=30) == 0
        answer, _ = _one_response(client)
    assert answer.startswith(b"HTTP/1.1 503") and b"the service is stopping" in answer, answer


def test_a_stop_does_not_wait_for_a_body_that_stopped_arriving(project):
    """SIGTERM waited for the rest of a body a client had stopped sending - up to
    serve.request_timeout (here 600 s): past a Kubernetes grace period, the service was killed. The
    request is not answered (its client was told nothing, so nothing is lost), its connection is
    closed, and the service exits 0 (the wait below is bounded far under the 600 s)."""
    import signal
    import socket

    service = Service(project, "--set", "serve.request_timeout=600")
    host, port = service.url.removeprefix("http://").rsplit(":", 1)
    body = json.dumps([{"Age": 40}] * 500).encode()
    with socket.create_connection((host, int(port)), timeout=120) as client:
        head = _head(body).replace(b"Expect: 100-continue\r\n", b"")
        client.sendall(head + body[: len(body) // 2])
        assert service.request("GET", "/healthz")[0] == 200  # the head was read before this was answered
        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(timeout=60) == 0
        try:
            said = _answer(client)
        except ConnectionResetError:
            said = b""
    assert said == b"", said
    with sqlite3.connect(f"file:{project / 'monitoring' / 'events.db'}?mode=ro", uri=True) as db:
        assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0


def test_the_probes_answer_while_clients_hold_every_connection(project):
    """Connections that send part of a head and wait (no token needed) made every request a 503,
    /healthz and /readyz too - a liveness probe failed, and the orchestrator would restart a
    service that is alive - and, past the cap, were still accepted until the service ran out of
    file handles. The probes are answered beyond the cap; past its spare connections, a new
    connection closes the oldest one that holds no request, so the service's connections stay
    bounded; everything else still gets 503 while the cap is full."""
    import resource
    import socket

    from churnops.serve.connections import MAX_CONNECTIONS, SPARE_CONNECTIONS

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MAX_CONNECTIONS + SPARE_CONNECTIONS + 600
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, wanted), hard))
    service = Service(project)
    held = []
    try:
        host, port = service.url.removeprefix("http://").rsplit(":", 1)
        for _ in range(MAX_CONNECTIONS + SPARE_CONNECTIONS + 400):
            connection = socket.create_connection((host, int(port)), timeout=60)
            connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            held.append(connection)
        # the service has taken them all once a request on a new connection is refused for the cap
        for _ in range(600):
            if service.request("GET", "/v1/drift")[0] == 503:
                break
        else:
            raise AssertionError("the cap was never reached")
        assert service.request("GET", "/healthz")[0] == 200
        status, body, _ = service.request("GET", "/readyz")
        assert status == 200, body
        assert service.request("GET", "/v1/drift")[0] == 503
        sockets = 0
        for fd in Path(f"/proc/{service.process.pid}/fd").iterdir():
            with contextlib.suppress(FileNotFoundError):  # a connection the service closed meanwhile
                sockets += "socket" in os.readlink(fd)
        assert sockets <= MAX_CONNECTIONS + SPARE_CONNECTIONS + 20, sockets
    except BaseException:
        service.stop()  # a failure above leaves no service running
        raise
    finally:
        for connection in held:
            connection.close()
    try:
        for _ in range(600):  # the connections closed above leave the service
            if service.request("GET", "/v1/drift")[0] == 200:
                break
        assert _metric(service, 'churnops_serve_closed_connections_total{reason="crowded_out"}') >= 400
    finally:
        service.stop()


def test_reads_need_the_token_when_the_configuration_says_so(project):
    """/v1/drift, the status page, the windows' reports and /metrics show summaries of the records
    sent, to anyone who can connect; serve.protect_reads puts them behind the token (the probes
    stay open)."""
    service = Service(project, "--set", "serve.protect_reads=true", "--set", "serve.window_size=50")
    try:
        rows = churnops.generate(50, start=20_000).to_dicts()
        assert service.post(rows)[0] == 200
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for path in ("/v1/drift?window=0&wait=60", "/v1/drift", "/", "/metrics", "/v1/windows/0/report"):
            status, body, _ = service.request("GET", path)
            assert status == 401, (path, body)
            assert service.request("GET", path, headers={"Authorization": "Bearer wrong"})[0] == 401
            status, body, _ = service.request("GET", path, headers=auth)
            assert status == 200, (path, body[:300])
        assert service.request("GET", "/healthz")[0] == 200
        status, body, _ = service.request("GET", "/readyz")  # open to probes, telling nothing more
        assert status == 200 and json.loads(body) == {"status": "ready"}, body
        assert json.loads(service.request("GET", "/readyz", headers=auth)[1])["reference_columns"] == 20
    finally:
        service.stop()
    service = Service(project)  # by default reads are open, as before
    try:
        assert service.request("GET", "/v1/drift")[0] == 200 and service.request("GET", "/metrics")[0] == 200
    finally:
        service.stop()


def test_a_client_that_does_not_take_its_answers_is_cut(project):
    """A client that pipelines requests and never reads held its connection (and a slot of the
    1,000) forever, and kept a SIGTERM from ending the service: uvicorn waits with no end for the
    answers' buffer to drain. Once answers wait, the client has serve.request_timeout to take them;
    then the connection is reset (the wait below is for that reset, bounded far above the
    deadline), counted in /metrics, with no error in the service's log, and the others are served."""
    import select
    import socket

    service = Service(project, "--set", "serve.request_timeout=1")
    try:
        host, port = service.url.removeprefix("http://").rsplit(":", 1)
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)  # it takes next to nothing
        client.connect((host, int(port)))
        client.setblocking(False)
        request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        try:
            for _ in range(40_000):  # far more answers than the sockets' buffers hold
                client.send(request)
        except BlockingIOError:
            pass  # the service stopped reading: its answers wait
        watch = select.poll()
        watch.register(client, 0)  # only a hang-up or an error wakes the poll
        events = watch.poll(120_000)
        client.close()
        assert events and events[0][1] & (select.POLLHUP | select.POLLERR), events
        status, body, _ = service.request("GET", "/metrics")
        assert status == 200
        assert 'churnops_serve_closed_connections_total{reason="answer_not_taken"} 1' in body.decode(), body[-2000:]
        assert service.request("GET", "/healthz")[0] == 200
    finally:
        service.stop()
    log = service.process.stderr.read()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]


def test_a_client_that_stays_silent_or_trickles_its_request_is_closed(project):
    """serve.request_timeout: a connection that sends nothing, a request head or body that never
    ends, or a blank line after a finished request, is closed once the deadline passes (each wait
    below is for the service to close the socket, bounded by a socket timeout far above the
    deadline); whole requests are served, also kept alive and quiet between them, and a request
    pipelined behind a long answer is read once that answer is sent."""
    import socket

    service = Service(project, "--set", "serve.request_timeout=1")
    try:
        host, port = service.url.removeprefix("http://").rsplit(":", 1)
        healthz = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

        def closed_by_the_service(first: bytes, then: bytes = b"") -> bool:
            with socket.create_connection((host, int(port)), timeout=120) as client:
                if first:
                    client.sendall(first)
                    if first == healthz:
                        _one_response(client)
                if then:
                    client.sendall(then)
                try:
                    return client.recv(1024) == b""  # the service hung up; a timeout raises instead
                except TimeoutError:
                    return False

        body_missing = (
            f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 10\r\n\r\n["
        )
        assert closed_by_the_service(b"")
        assert closed_by_the_service(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n")
        assert closed_by_the_service(body_missing.encode())
        assert closed_by_the_service(healthz, b"\r\n")  # a blank line a parser skips stops uvicorn's own timer
        with socket.create_connection((host, int(port)), timeout=120) as client:
            # answered before its body arrived (401: no token), then the body, then silence
            client.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n")
            answer, rest = _one_response(client)
            assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
            client.sendall(b"[")
            assert rest == b"" and client.recv(1024) == b""  # closed by the service, not by the socket timeout
        with socket.create_connection((host, int(port)), timeout=120) as client:
            rest = b""
            for _ in range(2):  # one connection, two whole requests
                client.sendall(healthz)
                answer, rest = _one_response(client, rest)
                assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"status":"ok"}'), answer
        with socket.create_connection((host, int(port)), timeout=120) as client:
            # a long poll, and behind it the head of a request whose body comes later: the
            # deadline of the second starts once the first is answered
            client.sendall(b"GET /v1/drift?window=0&wait=3 HTTP/1.1\r\nHost: x\r\n\r\n" + healthz[:-2])
            first, rest = _one_response(client)
            assert first.startswith(b"HTTP/1.1 "), first
            client.sendall(b"\r\n")
            second, _ = _one_response(client, rest)
            assert second.startswith(b"HTTP/1.1 200"), second
        status, _, _ = service.request("GET", "/healthz")
        assert status == 200
    finally:
        service.stop()


def test_a_request_with_huge_headers_is_refused_at_once_and_the_others_are_served(project):
    """One client sending a 130 MiB header held the service for seconds and grew its memory: the
    request line and headers are capped at 64 KiB (431, closed), a large body under small headers
    is still read, and requests beside it are answered."""
    import socket

    from churnops.serve.connections import MAX_HEAD_BYTES

    service = Service(project, "--set", "serve.max_body_bytes=1000000")
    try:
        host, port = service.url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=120) as client:
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: ")
            answer = b""
            try:
                for _ in range(4 * 1024):  # 4 MiB of header at most: the service answers long before
                    client.sendall(b"a" * 1024)
            except (BrokenPipeError, ConnectionResetError):
                pass
            while chunk := client.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert answer.endswith(b'{"error":"the request line and headers exceed 65,536 bytes"}')
        long_url = b"GET /healthz?" + b"q" * (MAX_HEAD_BYTES + 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        with socket.create_connection((host, int(port)), timeout=120) as client:
            client.sendall(long_url)
            assert _one_response(client)[0][:10] == b"HTTP/1.1 4"  # 431, or 400 when it came whole at once
        headers = "".join(f"X-Ok-{i}: {'v' * 100}\r\n" for i in range(100)).encode()  # 11 KiB: fine
        events = [{"Credit Score": 600 + i % 50, "Balance": 1234.5 + i, "Occupation": "Engineer"} for i in range(1_000)]
        events = json.dumps(events).encode()  # 80 KiB: more than the headers' cap, in a body
        assert len(events) > MAX_HEAD_BYTES
        with socket.create_connection((host, int(port)), timeout=120) as client:
            head = f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            head += f"Content-Type: application/json\r\nContent-Length: {len(events)}\r\n"
            client.sendall(head.encode() + headers + b"\r\n" + events)
            answer, _ = _one_response(client)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        status, _, _ = service.request("GET", "/healthz")
        assert status == 200
        auth = f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        one = json.dumps([{"Credit Score": 612}]).encode()
        post = f"POST /v1/events HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {len(one)}\r\n\r\n".encode() + one
        before = json.loads(service.request("GET", "/v1/drift")[1])["open_window"]["events"]
        with socket.create_connection((host, int(port)), timeout=120) as client:
            # a request refused behind one being answered: the answer in front comes first
            client.sendall(post + b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * (MAX_HEAD_BYTES + 300_000))
            first, rest = _one_response(client)
            assert first.startswith(b"HTTP/1.1 200"), first[:200]
            second, _ = _one_response(client, rest)
            assert second.startswith(b"HTTP/1.1 431"), second[:200]
        assert json.loads(service.request("GET", "/v1/drift")[1])["open_window"]["events"] == before + 1
        with socket.create_connection((host, int(port)), timeout=120) as client:
            # a large body, then the start of a small request in the same read: not a large head
            client.sendall(head.encode() + headers + b"\r\n" + events + b"GET /healthz HTTP/1.1\r\nHo")
            first, rest = _one_response(client)
            client.sendall(b"st: x\r\n\r\n")
            second, _ = _one_response(client, rest)
            assert first.startswith(b"HTTP/1.1 422") or first.startswith(b"HTTP/1.1 200"), first[:200]
            assert second.startswith(b"HTTP/1.1 200"), second[:200]

        def post_of(i: int) -> bytes:
            body = json.dumps([{"event_id": f"pipe-{i}", "Credit Score": 600 + i % 50}]).encode()
            return f"POST /v1/events HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {len(body)}\r\n\r\n".encode() + body

        def peak_kib() -> int:
            status = Path(f"/proc/{service.process.pid}/status").read_text()
            return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))

        peak = peak_kib()
        with socket.create_connection((host, int(port)), timeout=120) as client:
            # a chunked body's trailers, which nothing reads, cannot fill the service's memory
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n")
            refused = False
            try:
                for _ in range(64):  # 64 MiB of trailers at most: the service hangs up after 1 MiB
                    client.sendall(b"".join(b"X-T%d: %s\r\n" % (i, b"t" * 1000) for i in range(1024)))
            except (BrokenPipeError, ConnectionResetError):
                refused = True
            if not refused:  # the kernel took the bytes: the service hung up all the same
                while client.recv(65536):
                    pass
        with socket.create_connection((host, int(port)), timeout=120) as client:
            # one trailer of 32 MiB, which the parser would hold whole until its line ends
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Big: ")
            try:
                for _ in range(32):
                    client.sendall(b"a" * (1 << 20))
            except (BrokenPipeError, ConnectionResetError):
                pass
            else:
                while client.recv(65536):
                    pass
        assert service.request("GET", "/healthz")[0] == 200
        assert peak_kib() - peak < 32 << 10  # 96 MiB of trailers were offered
        with socket.create_connection((host, int(port)), timeout=120) as client:
            # a request answered before the one refused behind it is cut
            trailers = b"".join(b"X-T%d: %s\r\n" % (i, b"t" * 100) for i in range(700))
            chunked_get = b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + trailers
            client.sendall(post_of(2_000) + chunked_get)
            answer, _ = _one_response(client)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]

        with socket.create_connection((host, int(port)), timeout=120) as client:
            # 300 small requests in one write (about 75 KiB): none is a large head
            client.sendall(b"".join(post_of(i) for i in range(300)))
            rest = b""
            for _ in range(300):
                answer, rest = _one_response(client, rest)
                assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        wait = b"GET /v1/drift?window=999999&wait=1 HTTP/1.1\r\nHost: x\r\n\r\n"
        with socket.create_connection((host, int(port)), timeout=120) as client:
            # a refusal waits for every request queued in front of it, answered in order
            client.sendall(
                wait + post_of(1_000) + post_of(1_001) + post_of(1_002) + b"GET /healthz HTTP/1.1\r\nX-Big: "
            )
            for _ in range(100):
                client.sendall(b"b" * 1_000)
            statuses, rest = [], b""
            for _ in range(5):
                answer, rest = _one_response(client, rest)
                statuses.append(int(answer.split(b" ", 2)[1]))
            assert statuses == [404, 200, 200, 200, 431], statuses
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (b" " * 64,) * 12_000)
        event = json.dumps([{"event_id": "chunked-1", "Credit Score": 640}]).encode()
        chunked = chunks[: -len(b"\r\n")] if False else chunks  # padding first, the event last
        with socket.create_connection((host, int(port)), timeout=120) as client:
            # a chunked body of 770 KB in 64-byte chunks (its framing adds 10%): under the limit
            head = f"POST /v1/events HTTP/1.1\r\nHost: x\r\n{auth}Transfer-Encoding: chunked\r\n\r\n"
            client.sendall(head.encode() + chunked + b"%x\r\n%s\r\n0\r\n\r\n" % (len(event), event))
            answer, _ = _one_response(client)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    finally:
        service.stop()


def _evaluators(pid: int) -> list[int]:
    """The service's window evaluator processes (its children running churnops.serve.evaluation)."""
    return children_running(pid, b"from churnops.serve.evaluation import child")


def test_windows_are_evaluated_in_a_process_beside_the_service_that_is_replaced_when_it_dies(project):
    rows = churnops.generate(2 * WINDOW, start=20_000).to_dicts()
    service = Service(project)
    try:
        assert _evaluators(service.process.pid) == []  # started when the first window closes
        assert service.post(rows[:WINDOW])[0] == 200
        first = service.window(0)
        [evaluator] = _evaluators(service.process.pid)
        os.kill(evaluator, signal.SIGKILL)
        assert service.post(rows[WINDOW:])[0] == 200
        second = service.window(1)  # evaluated all the same, by a new evaluator
        [replacement] = _evaluators(service.process.pid)
        assert replacement != evaluator
        assert first["current"]["rows"] == second["current"]["rows"] == WINDOW
    finally:
        service.stop()
    assert not Path(f"/proc/{replacement}").exists()  # stopped with the service
    errors = service.process.stderr.read()
    assert "the window evaluator had stopped (killed by SIGKILL); a new window evaluator is started" in errors, errors
    assert "Traceback" not in errors
    with sqlite3.connect(f"file:{project / 'monitoring' / 'events.db'}?mode=ro", uri=True) as db:
        evaluated = db.execute("SELECT window, status FROM windows WHERE evaluated_at IS NOT NULL").fetchall()
    assert sorted(evaluated) == [(0, first["verdict"]["status"]), (1, second["verdict"]["status"])]


def test_a_window_has_the_same_numbers_evaluated_in_the_service_process_or_beside_it(tmp_path):
    batch = churnops.generate(WINDOW, start=20_000, scenario="seed")
    documents = {}
    for mode in ("thread", "process"):
        folder = tmp_path / mode
        folder.mkdir()
        done = subprocess.run([sys.executable, "-m", "churnops", "-q", "data", "init"], cwd=folder, capture_output=True)
        assert done.returncode == 0, done.stderr
        service = Service(folder, "--set", f"serve.evaluation={mode}")
        try:
            assert service.post(_events(batch, "e"))[0] == 200
            documents[mode] = service.window(0)
            assert (_evaluators(service.process.pid) != []) == (mode == "process")
        finally:
            service.stop()
    thread, process = documents["thread"], documents["process"]
    assert thread["columns"] == process["columns"]
    assert thread["dataset_drift"] == process["dataset_drift"] and thread["verdict"] == process["verdict"]
    assert thread["data_quality"] == process["data_quality"]


def test_a_reference_changed_under_the_service_is_not_used_by_its_window_evaluator(project):
    rows = churnops.generate(WINDOW, start=20_000).to_dicts()
    service = Service(project)
    try:
        reference = project / "data" / "churn.csv"
        lines = reference.read_bytes().splitlines(keepends=True)
        reference.write_bytes(b"".join([lines[0], *lines[2:]]))  # one customer less: not the loaded reference
        assert service.post(rows)[0] == 200
        served = service.window(0)  # evaluated by the service itself, against the reference it loaded
        assert served["reference"]["rows"] == 20_000
    finally:
        service.stop()
    errors = service.process.stderr.read()
    assert "windows are evaluated in the main process from now on" in errors, errors
    assert "changed since the service loaded it" in errors


def test_the_window_evaluator_answers_only_what_it_is_asked_in_json(project):
    from churnops.config import load_config
    from churnops.monitor.settings import settings_from_config
    from churnops.pipeline.monitoring import MonitorRequest, inferred_configuration, reference_source
    from churnops.pipeline.reference import get_reference_profile
    from churnops.serve.evaluation import BOOT, child_path, setup_message
    from churnops.serve.records import RecordSchema
    from churnops.serve.windows import WindowContext

    child = [sys.executable, "-I", "-c", BOOT, json.dumps(child_path()), str(os.getpid())]  # as the service does
    done = subprocess.run(child, input=b"{not json\n", capture_output=True, cwd=project)
    assert done.returncode == 2 and json.loads(done.stdout)["fatal"], done
    elsewhere = {"root": "/", "config": {}, "churnops": "/opt/other/churnops/__init__.py"}
    done = subprocess.run(child, input=json.dumps(elsewhere).encode() + b"\n", capture_output=True, cwd=project)
    assert done.returncode == 2 and "installed again" in json.loads(done.stdout)["fatal"], done
    incomplete = {"root": "/", "config": {}, "churnops": str(Path(churnops.__file__).resolve())}
    done = subprocess.run(child, input=json.dumps(incomplete).encode() + b"\n", capture_output=True, cwd=project)
    assert done.returncode == 2 and "incomplete" in json.loads(done.stdout)["fatal"], done

    service = Service(project)  # an event log with one closed window
    try:
        assert service.post(churnops.generate(WINDOW, start=20_000).to_dicts())[0] == 200
        expected = service.window(0)
    finally:
        service.stop()
    config = load_config(project / "churnops.toml") if (project / "churnops.toml").exists() else load_config()
    config = config.model_copy(update={"root": project})
    source = reference_source(config, MonitorRequest())
    config = inferred_configuration(config, source.path)
    settings = settings_from_config(config)
    profile, info, _, _ = get_reference_profile(config, source, settings, use_cache=True)
    out = project / "again"
    context = WindowContext(
        profile, settings, info, out, list(config.thresholds.trigger_on), RecordSchema.from_profile(profile).dtypes
    )
    setup = setup_message(config, context, project / "monitoring" / "events.db")
    requests = [json.dumps(setup), "garbage", json.dumps({"window": "0"}), "[" * 100_000, json.dumps({"window": -1})]
    requests += [json.dumps({"window": 7}), json.dumps({"window": 0})]
    done = subprocess.run(child, input="\n".join(requests).encode() + b"\n", capture_output=True, cwd=project)
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert answers[0] == {"ready": True}
    assert all(answer["window"] is None and "error" in answer for answer in answers[1:5])
    assert answers[5] == {"window": 7, "error": "window 7 is not closed"}
    assert answers[6]["window"] == 0 and answers[6]["document"]["columns"] == expected["columns"]
    assert not (out / "7").exists() and not (out / "-1").exists()
    assert (out / "0" / "monitoring_metrics.json").is_file() and (out / "0" / "monitoring_report.html").is_file()


def _evaluated(service: Service, window: int) -> bool:
    status, body, _ = service.request("GET", f"/v1/drift?window={window}&wait=0")
    return status == 200


def _windows_waiting(service: Service) -> int:
    """Closed windows waiting for their evaluation, as /metrics says it; /v1/drift says the same."""
    status, exposition, _ = service.request("GET", "/metrics")
    gauge = [line for line in exposition.decode().splitlines() if line.startswith("churnops_serve_windows_waiting ")]
    assert status == 200 and len(gauge) == 1, exposition
    lines = exposition.decode().splitlines()
    age = [line for line in lines if line.startswith("churnops_serve_oldest_waiting_window_seconds ")]
    assert len(age) == 1 and (float(age[0].split()[1]) > 0) == (gauge[0] != "churnops_serve_windows_waiting 0"), age
    status, drift, _ = service.request("GET", "/v1/drift")
    assert status == 200 and json.loads(drift)["windows_waiting"] == int(gauge[0].split()[1]), drift
    return int(gauge[0].split()[1])


def test_a_stuck_window_evaluator_holds_up_no_request_and_no_stop(project):
    rows = churnops.generate(3 * WINDOW, start=20_000).to_dicts()
    service = Service(project)  # serve.evaluation_timeout: 600 s
    try:
        assert service.post(rows[:WINDOW])[0] == 200
        service.window(0)
        [evaluator] = _evaluators(service.process.pid)
        os.kill(evaluator, signal.SIGSTOP)  # stuck: it will not answer for window 1
        assert service.post(rows[WINDOW : 2 * WINDOW])[0] == 200  # closes window 1, sent to it
        assert service.post(rows[2 * WINDOW :])[0] == 200  # closes window 2 while window 1 waits
        assert service.request("GET", "/healthz")[0] == 200
        assert not _evaluated(service, 1) and not _evaluated(service, 2)  # answered before they were
        assert _windows_waiting(service) == 2  # said in /metrics, /v1/drift and on the status page
        assert b"Closed windows waiting for their evaluation: 2 (the oldest for " in service.request("GET", "/")[1]
        os.kill(evaluator, signal.SIGCONT)
        assert service.window(1)["current"]["rows"] == service.window(2)["current"]["rows"] == WINDOW
        assert _windows_waiting(service) == 0
        assert b"waiting for their evaluation" not in service.request("GET", "/")[1]
    finally:
        for pid in _evaluators(service.process.pid):
            os.kill(pid, signal.SIGCONT)  # never left stopped, whatever failed
        service.stop()


def test_a_window_evaluator_too_slow_is_replaced_and_a_stop_does_not_wait_for_it(project):
    rows = churnops.generate(3 * WINDOW, start=20_000).to_dicts()
    service = Service(project, "--set", "serve.evaluation_timeout=3")
    try:
        assert service.post(rows[:WINDOW])[0] == 200
        service.window(0)
        [evaluator] = _evaluators(service.process.pid)
        os.kill(evaluator, signal.SIGSTOP)
        assert service.post(rows[WINDOW : 2 * WINDOW])[0] == 200
        assert service.window(1)["current"]["rows"] == WINDOW  # evaluated by the service after 3 s
        [replacement] = _evaluators(service.process.pid)  # the stuck one was stopped for good
        assert replacement != evaluator and not Path(f"/proc/{evaluator}").exists()
        os.kill(replacement, signal.SIGSTOP)
        assert service.post(rows[2 * WINDOW :])[0] == 200  # window 2 goes to the stuck replacement
        service.process.send_signal(signal.SIGTERM)  # the stop gives it 3 s, then evaluates window 2 itself
        assert service.process.wait(timeout=120) == 0
    finally:
        if service.process.poll() is None:
            for pid in _evaluators(service.process.pid):
                os.kill(pid, signal.SIGKILL)
            service.process.kill()
            service.process.wait()
    assert not Path(f"/proc/{replacement}").exists()
    errors = service.process.stderr.read()
    assert "took more than 3 s over window 1" in errors and "Traceback" not in errors, errors
    # window 2 was with the frozen replacement when the stop came (frozen while it started, or
    # over the window): whichever of its 3 s ran out first, the service said it gave up on it
    given_up = ("did not start within 3 s", "took more than 3 s over window 2", "did not finish window 2 within 3 s")
    assert any(reason in errors for reason in given_up), errors
    with sqlite3.connect(f"file:{project / 'monitoring' / 'events.db'}?mode=ro", uri=True) as db:
        evaluated = [w for (w,) in db.execute("SELECT window FROM windows WHERE evaluated_at IS NOT NULL")]
    assert sorted(evaluated) == [0, 1, 2]


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_a_window_that_cannot_be_evaluated_says_so_at_once(project, mode):
    (project / "monitoring" / "windows").mkdir(parents=True)
    (project / "monitoring" / "windows" / "0").write_text("a file where the window's folder goes")
    service = Service(project, "--set", f"serve.evaluation={mode}")
    try:
        assert service.post(churnops.generate(WINDOW, start=20_000).to_dicts())[0] == 200
        status, body, _ = service.request("GET", "/v1/drift?window=0&wait=60")
        assert status == 503 and b"window 0 could not be evaluated" in body, body  # not a 404 after 60 s
        status, page, _ = service.request("GET", "/")
        assert b"<td class='failed'>failed</td>" in page
        status, answer = service.post([{}])
        assert status == 422 and "none of the reference's columns" in json.dumps(answer), answer
    finally:
        service.stop()
    errors = service.process.stderr.read()
    assert "window 0 could not be evaluated: [Errno" in errors and "Traceback" not in errors, errors
    assert len([line for line in errors.splitlines() if "could not be evaluated" in line]) == 1, errors


def test_a_frozen_window_evaluator_ends_with_a_killed_service(project):
    service = Service(project)
    assert service.post(churnops.generate(WINDOW, start=20_000).to_dicts())[0] == 200
    service.window(0)
    [evaluator] = _evaluators(service.process.pid)
    watch = os.pidfd_open(evaluator)
    try:
        os.kill(evaluator, signal.SIGSTOP)  # frozen: it cannot see its input close
        service.process.kill()
        service.process.wait()
        readable, _, _ = select.select([watch], [], [], 120)  # readable once the process has ended
        assert readable, "the frozen evaluator outlived the service"
    finally:
        os.close(watch)
        if Path(f"/proc/{evaluator}").exists():
            os.kill(evaluator, signal.SIGKILL)


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_a_window_folder_or_windows_dir_planted_as_a_link_is_never_written_through_nor_served(project, mode):
    """A link at monitoring/windows/<n> (planted before the window closes) is replaced by a real
    folder, never written through; a link planted after the window's files were written is not
    served; a windows_dir swapped for a link under a running service fails the window."""
    other = project.parent / f"{project.name}-other-project"
    other.mkdir()
    (other / "monitoring_report.html").write_text("another project's file")
    windows = project / "monitoring" / "windows"
    windows.mkdir(parents=True)
    (windows / "0").symlink_to(other, target_is_directory=True)
    batch = churnops.generate(2 * WINDOW, start=20_000, scenario="seed")
    service = Service(project, "--set", f"serve.evaluation={mode}")
    try:
        assert service.post(_events(batch[:WINDOW], "a"))[0] == 200
        assert service.window(0)["verdict"]["status"] == "alert"
        assert not (windows / "0").is_symlink() and (windows / "0" / "trigger.txt").is_file()
        assert sorted(p.name for p in other.iterdir()) == ["monitoring_report.html"]

        # the window's files written, then its folder swapped for a link to another project's
        shutil.rmtree(windows / "0")
        (windows / "0").symlink_to(other, target_is_directory=True)
        status, body, _ = service.request("GET", "/v1/windows/0/report")
        assert status == 404 and b"another project" not in body, body
        status, body, _ = service.request("GET", "/v1/drift?window=0")
        assert status == 404, body

        # serve.windows_dir itself swapped for a link while the service runs
        (windows / "0").unlink()
        windows.rmdir()
        windows.symlink_to(other, target_is_directory=True)
        assert service.post(_events(batch[WINDOW:], "b"))[0] == 200
        status, body, _ = service.request("GET", "/v1/drift?window=1&wait=60")
        assert status == 503 and b"window 1 could not be evaluated" in body, body
    finally:
        service.stop()
    assert sorted(p.name for p in other.iterdir()) == ["monitoring_report.html"]
    assert (other / "monitoring_report.html").read_text() == "another project's file"
    errors = service.process.stderr.read()
    assert f"{windows / '0'} was a symbolic link: removed (what it pointed to is untouched)" in errors, errors
    assert "serve.windows_dir now leads through a symbolic link" in errors, errors
    assert "Traceback" not in errors, errors


def _metric(service: Service, name: str) -> float:
    text = service.request("GET", "/metrics")[1].decode()
    return float(text.split(f"\n{name} ", 1)[1].split("\n", 1)[0])


def _head(body: bytes, path: str = "/v1/events", token: str = TOKEN) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    ).encode()


def _answer(connection) -> bytes:
    said = b""
    while chunk := connection.recv(65_536):
        said += chunk
    return said


def test_large_bodies_wait_for_room_and_every_one_is_answered(project):
    """Many large bodies at once took a worker to 2 GB (a body is about ten times its size in
    memory while checked): a process works on at most serve.max_inflight_bytes of bodies at once.
    A request beyond waits - its body not read - until room is given back, then is answered; a
    request without the token holds no room."""
    import socket

    limit = 1 << 20
    service = Service(
        project, "--set", f"serve.max_body_bytes={limit}", "--set", f"serve.max_inflight_bytes={limit}",
        "--set", "serve.max_batch=5000",
    )  # fmt: skip
    events = churnops.generate(4_000, start=20_000).to_dicts()
    size = len(json.dumps(events[:100]).encode()) / 100
    count = int(0.7 * limit / size)  # each body about 70% of the room: two do not fit at once
    first, second = (json.dumps(events[i * count : (i + 1) * count]).encode() for i in range(2))
    assert limit // 2 < len(first) < limit and limit // 2 < len(second) < limit
    host, port = service.url.removeprefix("http://").split(":")
    try:
        with socket.create_connection((host, int(port))) as a, socket.create_connection((host, int(port))) as b:
            a.sendall(_head(first))
            assert a.recv(100).startswith(b"HTTP/1.1 100 Continue")  # asked for its body: it holds the room
            # a request without the token is refused at once, holding nothing
            with socket.create_connection((host, int(port))) as stranger:
                stranger.sendall(_head(second, token="not-the-token-0123456789"))
                assert _answer(stranger).startswith(b"HTTP/1.1 401")
            b.sendall(_head(second))
            for _ in range(100_000):  # the service says when the second request waits
                if _metric(service, "churnops_serve_bodies_waiting") == 1:
                    break
            assert _metric(service, "churnops_serve_bodies_waiting") == 1
            assert not select.select([b], [], [], 0)[0]  # not asked for its body while the first holds the room
            a.sendall(first)
            answer = _answer(a)
            assert answer.startswith(b"HTTP/1.1 200") and f'"accepted":{count}'.encode() in answer, answer[:300]
            assert b.recv(100).startswith(b"HTTP/1.1 100 Continue")  # room given back: its turn
            b.sendall(second)
            answer = _answer(b)
            assert answer.startswith(b"HTTP/1.1 200") and f'"accepted":{count}'.encode() in answer, answer[:300]
        assert _metric(service, "churnops_serve_bodies_waiting") == 0
        assert _metric(service, "churnops_serve_body_waits_total") == 1
    finally:
        service.stop()


def test_a_request_that_gets_no_room_in_time_is_answered_503_and_counted(project):
    """A request waits for room at most half of serve.request_timeout, then is answered 503 with
    Retry-After; the refusal is counted in churnops_serve_requests_total like any answer."""
    import socket

    limit = 1 << 20
    service = Service(project, "--set", f"serve.max_inflight_bytes={limit}", "--set", "serve.request_timeout=6")
    host, port = service.url.removeprefix("http://").split(":")
    body = b"[" + b" " * (limit - 2) + b"]"
    try:
        with socket.create_connection((host, int(port))) as a, socket.create_connection((host, int(port))) as b:
            a.sendall(_head(body))
            assert a.recv(100).startswith(b"HTTP/1.1 100 Continue")  # it holds all the room, its body never sent
            b.sendall(_head(body))
            answer = _answer(b)  # the room's wait (3 s) ends before the first connection's deadline (6 s)
        assert answer.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in answer.lower(), answer[:300]
        metrics = service.request("GET", "/metrics")[1].decode()
        assert 'churnops_serve_requests_total{endpoint="events",status="503"} 1.0' in metrics, metrics[-2000:]
        assert _metric(service, "churnops_serve_body_waits_total") == 1
    finally:
        service.stop()


def test_waiting_requests_get_room_in_order_of_arrival():
    """A large body waited while a steady flow of small ones, each fitting the room left, went in
    before it - until it gave up with 503. A request that fits waits behind those already waiting."""
    import asyncio

    from churnops.serve.app import BodyBudget

    async def scenario() -> list[str]:
        budget = BodyBudget(100, patience=60)
        order: list[str] = []
        holding, release = asyncio.Event(), asyncio.Event()

        async def hold(name: str, size: int, until: asyncio.Event | None = None) -> None:
            async with budget.reserved(size) as room:
                assert room
                order.append(name)
                if until is not None:
                    holding.set()
                    await until.wait()

        first = asyncio.create_task(hold("first", 80, release))
        await holding.wait()
        large = asyncio.create_task(hold("large", 500))  # larger than the room: goes alone, when it is empty
        for _ in range(1_000):  # turns of the event loop (no clock) until it waits
            if budget.waiting == 1:
                break
            await asyncio.sleep(0)
        small = asyncio.create_task(hold("small", 10))  # would fit beside the first, but the large waits already
        for _ in range(1_000):
            if budget.waiting == 2 or small.done():
                break
            await asyncio.sleep(0)
        assert order == ["first"] and budget.in_use == 80 and budget.waiting == 2, order
        release.set()
        await asyncio.gather(first, large, small)
        assert budget.waiting == 0 and budget.in_use == 0 and budget.waited == 2
        return order

    assert asyncio.run(scenario()) == ["first", "large", "small"]


def test_requests_that_leave_while_waiting_for_room_give_their_place_to_the_next():
    """Each change woke every waiting request (a thousand waiting clients leaving cost seconds of
    CPU); now only the first in line is looked at. Requests that leave the line - cancelled (their
    client left) or out of patience - hold nothing and the next in line gets the room; one granted
    room as it was cancelled gives it back."""
    import asyncio

    from churnops.serve.app import BodyBudget

    async def scenario() -> None:
        changes: list[int] = []
        budget = BodyBudget(100, patience=60)
        budget.on_change = lambda: changes.append(budget.waiting)
        release = asyncio.Event()
        got: list[str] = []

        async def hold(name: str, size: int, until: asyncio.Event | None = None) -> None:
            async with budget.reserved(size) as room:
                got.append(name if room else f"{name}: no room")
                if until is not None:
                    await until.wait()

        first = asyncio.create_task(hold("first", 100, release))
        leaving = [asyncio.create_task(hold(f"gone{i}", 60)) for i in range(500)]
        last = asyncio.create_task(hold("last", 60))
        for _ in range(1_000):  # turns of the event loop (no clock) until all wait
            if budget.waiting == 501:
                break
            await asyncio.sleep(0)
        assert budget.waiting == 501 and got == ["first"]
        for task in leaving:
            task.cancel()
        await asyncio.gather(*leaving, return_exceptions=True)
        assert budget.waiting == 1 and budget.in_use == 100
        release.set()
        await asyncio.gather(first, last)
        assert got == ["first", "last"] and budget.in_use == 0 and budget.waiting == 0
        assert changes[-1] == 0 and max(changes) == 501
        # out of patience: nothing held, the line moves on
        impatient = BodyBudget(100, patience=0.01)
        async with impatient.reserved(100), impatient.reserved(50) as room:
            assert not room and impatient.waiting == 0
        assert impatient.in_use == 0

    asyncio.run(scenario())


def test_requests_pipelined_on_one_connection_are_each_read_whole(project):
    """Three requests of 50 KB sent back to back on one connection: the third was answered 400
    'not valid JSON', cut short - the connection guard counted the end of the second request,
    read in the same piece, as the third's chunk framing, and refused it."""
    import socket

    service = Service(project)
    events = churnops.generate(300, start=20_000).to_dicts()
    bodies = [json.dumps(events[i * 100 : (i + 1) * 100]).encode() for i in range(3)]
    host, port = service.url.removeprefix("http://").split(":")
    head = f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
    last = "Connection: close\r\n"  # the service closes the connection after the third answer
    sent = b"".join(
        f"{head}Content-Length: {len(body)}\r\n{last if i == 2 else ''}\r\n".encode() + body
        for i, body in enumerate(bodies)
    )
    try:
        with socket.create_connection((host, int(port))) as raw:
            raw.sendall(sent)
            said = _answer(raw)
        answers = said.split(b"HTTP/1.1 ")[1:]
        assert [answer[:3] for answer in answers] == [b"200"] * 3, said[-400:]
        assert all(b'"accepted":100' in answer for answer in answers)
        status, drift, _ = service.request("GET", "/v1/drift")
        assert json.loads(drift)["open_window"]["events"] == 300
    finally:
        service.stop()


def _peak_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0])


def test_a_client_pipelining_without_end_is_read_only_as_fast_as_it_is_answered(project):
    """One connection sending requests back to back without waiting for the answers had the
    service read and queue all of them: 20,000 requests of 16 KB (320 MB) grew it by about
    their size. It now reads ahead of the answers by at most a few requests; the peak memory of
    the process (reset before, read after, from /proc) shows it. Every request is answered."""
    import socket

    count, size = 20_000, 16_000
    service = Service(project)
    host, port = service.url.removeprefix("http://").split(":")
    request = f"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode() + b"x" * size
    answers: list[int] = []
    try:
        Path(f"/proc/{service.process.pid}/clear_refs").write_text("5")  # the peak starts from now
        before = _peak_rss_kib(service.process.pid)
        with socket.create_connection((host, int(port))) as raw:

            def read_answers() -> None:
                seen = b""
                while len(answers) < count and (chunk := raw.recv(1 << 20)):
                    seen += chunk
                    *whole, seen = seen.split(b"HTTP/1.1 ")
                    answers.extend(int(answer[:3]) for answer in whole if answer)
                if seen:
                    answers.append(int(seen[:3]))

            reader = threading.Thread(target=read_answers)
            reader.start()
            for _ in range(count // 1_000):
                raw.sendall(request * 1_000)
            reader.join()
        grown = _peak_rss_kib(service.process.pid) - before
    finally:
        service.stop()
    assert answers == [401] * count
    assert grown < 64 << 10, f"grew by {grown >> 10} MiB"


def test_a_large_head_is_refused_when_it_begins_in_the_read_that_ends_a_body(project):
    """The guard measured a request's head only to within one read (256 KiB) when the request
    began in the same read as the end of the previous request's body: a head of 150 KB sent
    right after a body was read and answered. With the body's size known, it is refused 431 like
    any head over 64 KiB, wherever the reads fall."""
    import socket

    service = Service(project)
    host, port = service.url.removeprefix("http://").split(":")
    body = b"x" * 10_000
    sent = (
        f"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
        + b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Large: "
        + b"y" * 150_000
        + b"\r\n\r\n"
    )
    try:
        with socket.create_connection((host, int(port))) as raw:
            raw.sendall(sent)
            said = _answer(raw)  # the 431 ends the connection, with no reset
    finally:
        service.stop()
    assert [answer[:3] for answer in said.split(b"HTTP/1.1 ")[1:]] == [b"401", b"431"], said[-300:]


def test_what_a_pipelining_client_sent_whole_is_answered_whatever_comes_before_or_after(project):
    """Three ways a client lost answers it had sent whole: (1) a request held back behind a long
    answer (its rest unread, as the service reads ahead only so far) was given its time to arrive
    from the previous answer, and cut as too slow while the long one ran; (2) shutting its
    sending side after pipelining closed the connection with requests still queued (one of ten
    answered); (3) a 401 to an 'Expect: 100-continue' request kept the connection open, so the next
    request was read as the body the client never sent."""
    import socket

    service = Service(project, "--set", "serve.request_timeout=2")
    host, port = service.url.removeprefix("http://").split(":")
    events = json.dumps(churnops.generate(1_000, start=20_000).to_dicts()).encode()  # about 300 KB
    assert len(events) > 200_000  # more than the service reads ahead
    post = (
        f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(events)}\r\n\r\n"
    ).encode() + events
    healthz = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    slow = b"GET /v1/drift?window=999999&wait=4 HTTP/1.1\r\nHost: x\r\n\r\n"  # answered after 4 s, past the 2 s

    def statuses(said: bytes) -> list[int]:
        return [int(answer[:3]) for answer in said.split(b"HTTP/1.1 ")[1:]]

    try:
        with socket.create_connection((host, int(port))) as raw:
            raw.sendall(healthz + slow + post)
            raw.shutdown(socket.SHUT_WR)
            said = _answer(raw)
        assert statuses(said) == [200, 404, 200] and b'"accepted":1000' in said, said[-300:]
        with socket.create_connection((host, int(port))) as raw:
            raw.sendall(healthz * 10)
            raw.shutdown(socket.SHUT_WR)
            assert statuses(_answer(raw)) == [200] * 10
        with socket.create_connection((host, int(port))) as raw:
            raw.sendall(
                b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n"
                b"Expect: 100-continue\r\n\r\n"
            )
            said = _answer(raw)  # the 401, then the end of the connection
        assert statuses(said) == [401] and b"connection: close" in said.lower(), said
    finally:
        service.stop()


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one process", "two workers"])
def test_a_full_disk_is_answered_503_keeps_nothing_half_written_and_the_service_goes_on(project, workers):
    """The event log cannot grow (the service may write no file beyond 2 MiB: writes fail as on a
    full disk): each write request is answered 503 with the reason and Retry-After, said once in
    the service's log without a traceback; the probes stay up. Once there is room again, writes
    go on, and the log holds every acknowledged event exactly once and nothing of the refused ones."""
    service = Service(project, *workers, file_size=2 << 20)
    acknowledged: list[str] = []
    refused = None
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    try:
        for number in range(60):  # about 500 bytes an event: the limit is passed within 8 requests
            events = json.dumps(churnops.generate(500, start=20_000 + 500 * number).to_dicts()).encode()
            status, body, answer_headers = service.request("POST", "/v1/events", events, headers)
            if status == 200:
                acknowledged += json.loads(body)["event_ids"]
                continue
            refused = (status, json.loads(body), answer_headers)
            break
        assert refused is not None, "the file size limit was never reached"
        assert refused[0] == 503 and "could not write the events" in refused[1]["error"], refused
        assert refused[2].get("retry-after") == "1"
        assert service.request("GET", "/healthz")[0] == 200
        label = json.dumps([{"event_id": acknowledged[0], "label": 1}]).encode()
        status, body, answer_headers = service.request("POST", "/v1/labels", label, headers)
        if status != 200:  # when the labels' page does not fit either: 503 too, never a 500
            assert status == 503 and b"could not write the labels" in body, body
            assert answer_headers.get("retry-after") == "1"
        service.allow_files()
        status, body = service.post(churnops.generate(WINDOW, start=70_000).to_dicts())  # closes a window
        assert status == 200, body
        acknowledged += body["event_ids"]
        closed = len(acknowledged) // WINDOW
        for window in range(closed):  # a window whose evaluation failed is evaluated once another one is
            status, body, _ = service.request("GET", f"/v1/drift?window={window}&wait=60")
            assert status == 200, (window, body)
        assert service.request("POST", "/v1/labels", label, headers)[0] == 200
    finally:
        service.stop()
    errors = service.process.stderr.read()
    assert "Traceback" not in errors and "Exception in ASGI" not in errors, errors
    assert errors.count("events could not be written") == 1, errors
    assert "events are written again" in errors
    db = sqlite3.connect(project / "monitoring" / "events.db")
    try:
        logged = [event_id for (event_id,) in db.execute("SELECT event_id FROM events")]
        unevaluated = db.execute("SELECT COUNT(*) FROM windows WHERE evaluated_at IS NULL").fetchone()[0]
    finally:
        db.close()
    assert sorted(logged) == sorted(acknowledged) and len(set(logged)) == len(logged)
    assert unevaluated == 0


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_a_window_that_could_not_be_evaluated_is_evaluated_once_another_one_is(project, mode):
    """A window whose evaluation failed (its folder could not be made: a full disk would do the
    same) was tried again only at the next start; it is tried again each time another window is
    evaluated, and gets its verdict once the cause is gone."""
    blocker = project / "monitoring" / "windows" / "0"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the window's folder goes")
    service = Service(project, "--set", f"serve.evaluation={mode}")
    try:
        assert service.post(churnops.generate(WINDOW, start=20_000).to_dicts())[0] == 200
        status, body, _ = service.request("GET", "/v1/drift?window=0&wait=60")
        assert status == 503 and b"tried again once another window is" in body, body
        blocker.unlink()
        assert service.post(churnops.generate(WINDOW, start=30_000).to_dicts())[0] == 200
        service.window(1)
        assert service.window(0)["dataset_drift"] is not None  # window 0 evaluated after window 1
    finally:
        service.stop()
    errors = service.process.stderr.read()
    assert "window 0, which could not be evaluated, is evaluated again" in errors, errors
    assert "Traceback" not in errors


def test_events_older_than_keep_events_are_deleted_and_the_windows_stay(project):
    """With ``serve.keep_events``, the events of evaluated windows closed longer ago are deleted
    with their outcomes - by themselves when they come of age, without traffic (and at start);
    the windows' metrics, reports and history stay, the open window is kept, and an outcome for a
    deleted event is refused as unknown. A period the service cannot read is refused at start.
    The test waits on what the service says it deleted, not on the clock."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    rows = churnops.generate(3 * WINDOW + 10, start=20_000).drop("Churn Flag")
    database = project / "monitoring" / "events.db"
    service = Service(project, "--set", "serve.keep_events=1s")
    errors = Lines(service.process.stderr)
    deleted: dict[int, str] = {}

    def deleted_until(windows: set[int]) -> None:
        while not windows <= deleted.keys():
            said = errors.wait_for(r"events older than serve\.keep_events \(1s\) deleted, of windows? (.*)$")
            deleted.update((int(w), n) for w, n in re.findall(r"(\d+) \(([\d,]+)\)", said.group(1)))

    def label(outcomes: list[dict]) -> None:  # (while their window is open: none is deleted yet)
        status, body, _ = service.request("POST", "/v1/labels", json.dumps(outcomes).encode(), headers)
        assert status == 200 and json.loads(body)["labelled"] == len(outcomes), body

    try:
        for start in range(0, 2 * WINDOW, 500):
            assert service.post(_events(rows[start : start + 500], f"a{start}"))[0] == 200
            if start in (0, WINDOW):
                label([{"event_id": f"a{start}-5", "label": 1}])
        deleted_until({0, 1})  # no more traffic: they are deleted once a second old
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            assert db.execute("SELECT COUNT(*) FROM labels").fetchone()[0] == 0
        for start in range(2 * WINDOW, rows.height, 500):
            assert service.post(_events(rows[start : start + 500], f"b{start}"))[0] == 200
        assert service.window(2)["current"]["rows"] == WINDOW
        deleted_until({2})
        assert deleted == {0: "1,000", 1: "1,000", 2: "1,000"}, deleted
        status, exposition, _ = service.request("GET", "/metrics")
        size = [line for line in exposition.decode().splitlines() if line.startswith("churnops_serve_event_log_bytes ")]
        assert status == 200 and len(size) == 1 and float(size[0].split()[1]) > 0, size
    finally:
        service.stop()
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        per_window = dict(db.execute("SELECT window, COUNT(*) FROM events GROUP BY window").fetchall())
        windows = [row[0] for row in db.execute("SELECT window FROM windows WHERE evaluated_at IS NOT NULL")]
        labels = db.execute("SELECT COUNT(*) FROM labels").fetchone()[0]
    assert per_window == {3: 10} and windows == [0, 1, 2] and labels == 0, per_window
    for window in (0, 1, 2):
        assert (project / "monitoring" / "windows" / str(window) / "monitoring_metrics.json").is_file()
    outcomes = [{"event_id": "a0-5", "label": 1}]
    restarted = Service(project, "--set", "serve.keep_events=1s")
    try:
        status, body, _ = restarted.request("POST", "/v1/labels", json.dumps(outcomes[:1]).encode(), headers)
        assert status == 200 and json.loads(body)["unknown_event_ids"] == ["a0-5"], body
        assert restarted.window(0)["current"]["rows"] == WINDOW  # the window's numbers stay
    finally:
        restarted.stop()
    done = refused_at_start(project, "--set", "serve.keep_events=2w")
    assert done.returncode == 2 and "serve.keep_events" in done.stderr and "12h or 90d" in done.stderr, done.stderr


def test_keep_inputs_drops_the_inputs_of_evaluated_windows_and_keeps_their_events(project):
    """With ``serve.keep_inputs``, the records of evaluated windows closed longer ago keep only
    what churnops needs after their evaluation (here: nothing of the features sent), their events
    and ids stay, /metrics counts them, the open window keeps its inputs; a ``keep_inputs`` not
    shorter than ``keep_events`` is refused at start."""
    rows = churnops.generate(2 * WINDOW + 10, start=20_000).drop("Churn Flag")
    database = project / "monitoring" / "events.db"
    service = Service(project, "--set", "serve.keep_inputs=1s")
    errors = Lines(service.process.stderr)
    slimmed: dict[int, str] = {}
    try:
        for start in range(0, rows.height, 500):
            assert service.post(_events(rows[start : start + 500], f"a{start}"))[0] == 200
        while not {0, 1} <= slimmed.keys():
            said = errors.wait_for(r"inputs of events older than serve\.keep_inputs \(1s\) dropped, of windows? (.*)$")
            slimmed.update((int(w), n) for w, n in re.findall(r"(\d+) \(([\d,]+)\)", said.group(1)))
        assert slimmed == {0: "1,000", 1: "1,000"}, slimmed
        status, exposition, _ = service.request("GET", "/metrics")
        lines = exposition.decode().splitlines()
        counted = [line for line in lines if line.startswith("churnops_serve_inputs_dropped")]
        assert status == 200 and counted == ["churnops_serve_inputs_dropped_total 2000"], counted
    finally:
        service.stop()
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        records = dict(db.execute("SELECT window, GROUP_CONCAT(record, '') FROM events GROUP BY window").fetchall())
        count = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert count == rows.height and set(records) == {0, 1, 2}
    assert records[0] == records[1] == "{}" * WINDOW and "Credit Score" in records[2]
    done = refused_at_start(project, "--set", "serve.keep_inputs=90d", "--set", "serve.keep_events=30d")
    assert done.returncode == 2 and "must be shorter than serve.keep_events (30d)" in done.stderr, done.stderr


NEEDS_OUTCOMES = ("churnops_serve_champion_roc_auc", "churnops_serve_model_alert")
"""Gauges of the champion measured on live outcomes: exposed once 500 scored events have one."""


def test_prometheus_scrapes_the_service_and_answers_every_query_of_its_grafana_dashboard(project, tmp_path):
    """A real Prometheus scrapes a real ``churnops serve``: every query of
    ``grafana/dashboards/churnops-serve.json`` (Grafana's variables given their values) answers
    with data, so no panel of the live-traffic dashboard stays empty. Prometheus scrapes through a
    relay that counts its scrapes, so the test waits on scrapes, not on the clock: a target's
    scrapes follow one another, so once the third after the windows were evaluated is asked for,
    the two before it - what a rate needs - are in Prometheus's store."""
    import http.server

    if shutil.which("prometheus") is None:
        pytest.skip("needs: prometheus (apt-get install prometheus)")
    from servers import free_port

    repo = Path(__file__).resolve().parents[1]
    dashboard = json.loads((repo / "grafana" / "dashboards" / "churnops-serve.json").read_text())
    rows = churnops.generate(2 * WINDOW + 10, start=20_000).drop("Churn Flag")
    service = Service(project)
    scraped = threading.Condition()
    scrapes = [0]

    class Relay(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            with scraped:
                scrapes[0] += 1
                scraped.notify_all()
            status, body, headers = service.request("GET", self.path)
            self.send_response(status)
            self.send_header("Content-Type", headers.get("content-type", "text/plain"))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # noqa: A002
            pass

    relay = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Relay)
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {repo / 'prometheus' / 'alerts.yml'}\n"
        "scrape_configs:\n  - job_name: churnops-serve\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{relay.server_address[1]}']\n"
    )
    prometheus = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for start in range(0, rows.height, 500):
            assert service.post(_events(rows[start : start + 500], f"g{start}"))[0] == 200
        assert service.window(1)["current"]["rows"] == WINDOW
        with scraped:
            after = scrapes[0] + 3
            assert scraped.wait_for(lambda: scrapes[0] >= after, timeout=300), "Prometheus stopped scraping"
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                if any(name in target["expr"] for name in NEEDS_OUTCOMES):
                    continue  # no outcomes sent here: test_ab.py checks these with a champion and labels
                query = target["expr"].replace("$instance", ".*").replace("$__rate_interval", "1m")
                url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
                with urllib.request.urlopen(url, timeout=60) as answer:
                    assert json.loads(answer.read())["data"]["result"], f"no data for {query} ({panel['title']})"
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
        relay.shutdown()
        service.stop()
