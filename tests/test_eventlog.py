"""The event log's group commit: appends waiting together are written in one transaction (one
call of the detectors, one save of their state), each answered with its own ids, duplicates and
closed windows; windows close at exactly ``window_size`` events in order; a client id sent twice
in one transaction is written once; an id the log makes that a client already took is replaced;
a failed transaction writes none of its appends and the log goes on.

Nothing waits on a clock: appends are made to wait together by submitting them while the writer
is held inside a transaction (its detectors wait for an event the test sets); the writer then
takes everything queued."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import sqlite3
import threading
from pathlib import Path

import pytest

from churnops.errors import InputDataError
from churnops.serve.eventlog import EventLog, Watch


class Observer:
    """Stands in for the detectors: watches the key ``x``, remembers the values of each call and
    returns a state."""

    def __init__(self) -> None:
        self.calls: list[list] = []
        self.watch = Watch(("x",), self.see)

    def see(self, columns: dict[str, list]) -> str:
        self.calls.append(columns["x"])
        return json.dumps({"seen": sum(len(call) for call in self.calls)})


def rows(path: Path, query: str) -> list[tuple]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute(query).fetchall()


@pytest.fixture()
def log(tmp_path: Path):
    opened = EventLog(tmp_path / "events.db", window_size=5)
    yield opened
    opened.close()


def held_together(log: EventLog, batches: list[list[tuple]], watch: Watch) -> list:
    """Submit ``batches`` while the writer is held in a transaction of one event (``blocker``):
    they are all written in the next transaction; their answers, in order."""
    entered, release = threading.Event(), threading.Event()

    def blocking(columns: dict[str, list]) -> str:
        entered.set()
        assert release.wait(timeout=60)
        return "{}"

    blocker = log.submit([(None, {"x": -1})], Watch(("x",), blocking))
    assert entered.wait(timeout=60)
    futures = [log.submit(batch, watch) for batch in batches]
    release.set()
    blocker.result()
    return [future.result() for future in futures]


def test_appends_waiting_together_are_one_transaction_and_each_gets_its_own_answer(log, tmp_path):
    observe = Observer()
    batches = [[(None, {"x": 10 * i + j}) for j in range(3)] for i in range(4)]  # 12 events behind the blocker
    answers = held_together(log, batches, observe.watch)
    assert len(observe.calls) == 1  # one transaction: the detectors called once, in log order
    assert observe.calls[0] == [10 * i + j for i in range(4) for j in range(3)]
    assert [a.closed for a in answers] == [[], [0], [1], []]  # events 5 and 10 close windows 0 and 1
    assert [a.window for a in answers] == [0, 1, 2, 2]
    logged = rows(tmp_path / "events.db", "SELECT event_id, window, record FROM events ORDER BY seq")
    assert [json.loads(record)["x"] for _, _, record in logged] == [-1] + [
        10 * i + j for i in range(4) for j in range(3)
    ]
    assert [window for _, window, _ in logged] == [0] * 5 + [1] * 5 + [2] * 3
    made = [event_id for event_id, _, _ in logged[1:]]
    assert [event_id for a in answers for event_id in a.event_ids] == made
    assert made == sorted(made) and len(set(made)) == 12  # time-ordered ids, made by the log
    assert rows(tmp_path / "events.db", "SELECT window, events FROM windows") == [(0, 5), (1, 5)]
    assert log.detector_state() == json.dumps({"seen": 12})  # saved with the events it saw
    assert (log.open_window, log.open_count) == (2, 3)


def test_a_client_id_sent_twice_in_one_transaction_is_written_once(log, tmp_path):
    observe = Observer()
    first = log.append([("retried", {"x": 0})], observe.watch)
    assert first.accepted == ["retried"]
    batches = [[("a", {"x": 1})], [("b", {"x": 2}), ("retried", {"x": 3})], [("b", {"x": 4}), (None, {"x": 5})]]
    answers = held_together(log, batches, observe.watch)
    made = answers[2].event_ids[1]
    assert [(a.accepted, a.duplicates) for a in answers] == [(["a"], []), (["b"], ["retried"]), ([made], ["b"])]
    assert answers[2].event_ids[0] == "b"  # a duplicate keeps its id in the answer
    logged = rows(tmp_path / "events.db", "SELECT event_id, record FROM events ORDER BY seq")
    assert [json.loads(record)["x"] for _, record in logged] == [0, -1, 1, 2, 5]
    assert [len(call) for call in observe.calls] == [1, 3]  # duplicates are not fed to the detectors


def test_windows_close_in_order_with_client_ids_and_duplicates_between(log, tmp_path):
    log.append([(f"c{i}", {"x": i}) for i in range(3)])
    batches = [[(f"c{i}", {"x": i}) for i in range(2, 9)], [(None, {"x": 9}), ("c0", {"x": 0}), ("c9", {"x": 10})]]
    answers = held_together(log, batches, Observer().watch)
    assert [(a.duplicates, a.closed, a.window) for a in answers] == [(["c2"], [0, 1], 2), (["c0"], [], 2)]
    logged = rows(tmp_path / "events.db", "SELECT window, record FROM events ORDER BY seq")
    assert [w for w, _ in logged] == [0] * 5 + [1] * 5 + [2] * 2  # the blocker is the fourth event
    assert [json.loads(r)["x"] for _, r in logged] == [0, 1, 2, -1, 3, 4, 5, 6, 7, 8, 9, 10]


def test_a_large_append_keeps_its_order(log, tmp_path):
    """Rows go in by statements of many rows (a power of two, then halves of it)."""
    answer = log.append([(None, {"x": i}) for i in range(1_300)] + [("client", {"x": 1_300})])
    assert len(answer.accepted) == 1_301 and answer.closed == list(range(260))
    logged = rows(tmp_path / "events.db", "SELECT event_id, window, record FROM events ORDER BY seq")
    assert [json.loads(record)["x"] for _, _, record in logged] == list(range(1_301))
    assert [window for _, window, _ in logged] == [i // 5 for i in range(1_301)]
    assert [event_id for event_id, _, _ in logged] == answer.event_ids


def test_a_sqlite_that_allows_999_bound_values_gets_smaller_statements(tmp_path, monkeypatch):
    if not hasattr(sqlite3.Connection, "setlimit"):
        pytest.skip("needs Python 3.11 (Connection.setlimit)")
    real = EventLog._connect

    def connect(self):
        db = real(self)
        db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # SQLite before 3.32
        return db

    monkeypatch.setattr(EventLog, "_connect", connect)
    log = EventLog(tmp_path / "events.db", window_size=5)
    try:
        assert log._rows_per_insert == 128  # 4 values a row: 512 of them
        answer = log.append([(None, {"x": i}) for i in range(700)])
        assert len(answer.accepted) == 700 and log.total() == 700
    finally:
        log.close()


def test_an_id_the_log_makes_that_a_client_took_is_replaced(log, tmp_path, monkeypatch):
    taken = log._ids.take(1)[0]
    log.append([(taken, {"x": 0})])  # a client chose the id the log is about to make

    class Repeats:
        def __init__(self, real) -> None:
            self.real, self.first = real, True

        def take(self, count: int) -> list[str]:
            made = self.real.take(count)
            if self.first:
                self.first = False
                made[0] = taken
            return made

    monkeypatch.setattr(log, "_ids", Repeats(log._ids))
    answer = log.append([(None, {"x": 1}), (None, {"x": 2})])
    assert len(answer.accepted) == 2 and taken not in answer.accepted and answer.duplicates == []
    logged = rows(tmp_path / "events.db", "SELECT event_id FROM events ORDER BY seq")
    assert [event_id for (event_id,) in logged] == [taken, *answer.accepted]


def test_a_failed_transaction_writes_none_of_its_appends_and_the_log_goes_on(log, tmp_path):
    def broken(columns: dict[str, list]) -> str:
        raise RuntimeError("detectors broke")

    with pytest.raises(RuntimeError, match="detectors broke"):
        held_together(log, [[(f"e{i}", {"x": i})] for i in range(3)], Watch(("x",), broken))
    assert rows(tmp_path / "events.db", "SELECT record FROM events") == [('{"x":-1}',)]  # the blocker only
    assert (log.open_window, log.open_count) == (0, 1)
    again = log.append([("e0", {"x": 0}), ("e1", {"x": 1})], Observer().watch)
    assert again.accepted == ["e0", "e1"] and log.total() == 3


def test_appends_with_different_detectors_are_not_mixed(log):
    first, second = Observer(), Observer()
    held_together(log, [[(None, {"x": 0})], [(None, {"x": 1})], [(None, {"x": 2})]], first.watch)
    assert first.calls == [[0, 1, 2]]
    held_together(log, [[(None, {"x": 3})], [(None, {"x": 4})], [(None, {"x": 5})]], second.watch)
    assert second.calls == [[3, 4, 5]]


def test_a_closed_log_refuses_appends(tmp_path):
    from churnops.errors import InputDataError

    log = EventLog(tmp_path / "events.db", window_size=5)
    log.append([(None, {"x": 0})])
    log.close()
    with pytest.raises(InputDataError, match="closed"):
        log.submit([(None, {"x": 1})])
    assert rows(tmp_path / "events.db", "SELECT COUNT(*) FROM events") == [(1,)]


def test_the_arms_are_measured_once_while_the_log_and_the_models_are_unchanged(tmp_path):
    """GET /v1/drift is open to anyone and measuring the arms reads up to 400,000 rows: the
    measure is reused until the log changes (a write by the service, a label) or a model does."""
    from types import SimpleNamespace

    from churnops.serve.app import ServiceState
    from churnops.serve.eventlog import ARM, MODEL_VERSION, PROBABILITY

    log = EventLog(tmp_path / "events.db", window_size=1_000)
    try:
        scored = {ARM: "champion", MODEL_VERSION: "1", PROBABILITY: 0.25}
        log.append([(f"e{i}", {"x": i, **scored}) for i in range(50)])
        champion = SimpleNamespace(champion=SimpleNamespace(name="m", version="1"))
        state = ServiceState(log, None, None, None, None, 1_000, 1 << 20, 1_000, tmp_path, batcher=champion)
        first = state.measured_arms()
        assert first is not None and first["arms"]["champion"]["scored"] == 50
        assert state.measured_arms() is first  # nothing changed: the same measure
        log.label([("e1", 1)])
        labelled = state.measured_arms()
        assert labelled is not first and labelled["arms"]["champion"]["labelled"] == 1
        champion.champion.version = "2"  # another model scoring now: measured again
        assert state.measured_arms()["arms"]["champion"]["scored"] == 0
    finally:
        log.close()


def test_records_written_elsewhere_are_kept_as_given_and_their_watched_values_seen_once(log, tmp_path):
    """What a worker process sends: records already written as JSON with the values the detectors
    see; a duplicate's value is not seen, and a count that does not match is refused."""
    observe = Observer()
    log.append([("seen-before", {"x": 0})], observe.watch)
    texts = ['{"x":1,"y":"a"}', '{"x":2}', '{"x":3}']
    answer = log.submit_texts(["n1", "seen-before", None], texts, {"x": [1, 2, 3]}, observe.watch).result()
    assert answer.duplicates == ["seen-before"] and len(answer.accepted) == 2
    assert observe.calls == [[0], [1, 3]]
    logged = rows(tmp_path / "events.db", "SELECT record FROM events ORDER BY seq")
    assert [record for (record,) in logged] == ['{"x":0}', '{"x":1,"y":"a"}', '{"x":3}']
    for ids, given, columns in (
        (["a", "b"], texts[:1], {"x": [1, 2]}),
        (["a"], texts[:1], {"x": [1, 2]}),
        (["a"], texts[:1], {"y": [1]}),
        (["a"], texts[:1], {}),
    ):
        with pytest.raises(ValueError, match="one record"):
            log.submit_texts(ids, given, columns, observe.watch)
    assert log.total() == 3


def test_the_event_log_is_readable_by_its_owner_alone(tmp_path, caplog):
    """It keeps every record sent (customers' data): it was created readable by every user of the
    machine (mode 644 under the usual umask), and so were its write-ahead files."""
    import os
    import stat

    previous = os.umask(0o022)
    try:
        log = EventLog(tmp_path / "events.db", window_size=10)
        log.append([(None, {"x": 1.0})])
        for name in ("events.db", "events.db-wal", "events.db-shm"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
        log.close()
        assert "read by other users" not in caplog.text
        (tmp_path / "events.db").chmod(0o644)  # made by an earlier churnops, or by hand
        EventLog(tmp_path / "events.db", window_size=10).close()
    finally:
        os.umask(previous)
    assert "can be read by other users of this machine (mode -rw-r--r--)" in caplog.text
    assert stat.S_IMODE((tmp_path / "events.db").stat().st_mode) == 0o644  # said, left as it is
    caplog.clear()  # a write-ahead file left readable by others (by a killed service, then chmod) is said too
    (tmp_path / "events.db").chmod(0o600)
    (tmp_path / "events.db-wal").write_bytes(b"")
    (tmp_path / "events.db-wal").chmod(0o644)
    EventLog(tmp_path / "events.db", window_size=10).close()
    assert "events.db-wal can be read by other users" in caplog.text
    assert "events.db can be read" not in caplog.text


class Undoing(Observer):
    """An observer told whether what it saw was committed (``kept``) or not (``undo``)."""

    def __init__(self) -> None:
        super().__init__()
        self.told: list[str] = []
        self.padding = 0  # characters added to the state
        self.watch = Watch(("x",), self.see, lambda: self.told.append("kept"), lambda: self.told.append("undo"))

    def see(self, columns: dict[str, list]) -> str:
        return super().see(columns)[:-1] + f', "padding": "{"x" * self.padding}"}}'


def test_a_log_that_cannot_grow_refuses_the_transaction_whole_and_the_detectors_forget_it(log, tmp_path):
    """SQLite's own refusal of a full database (as of a full disk): :class:`NotWritten` with its
    reason, nothing written, the detectors told to forget what they saw; writes go on when there
    is room again."""
    from churnops.serve.eventlog import NotWritten

    observer = Undoing()
    log.append([("e0", {"x": 0})], observer.watch)
    assert observer.told == ["kept"]
    pages = log._db.execute("PRAGMA page_count").fetchone()[0]
    log._db.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(NotWritten, match="full"):  # the events themselves do not fit
        log.append([(f"big{i}", {"x": i, "text": "x" * 2_000}) for i in range(50)], observer.watch)
    assert observer.told == ["kept"]  # refused before the detectors saw them
    observer.padding = 500_000
    with pytest.raises(NotWritten, match="full"):  # the events fit, the detectors' state does not
        log.append([("small", {"x": 1})], observer.watch)
    assert observer.told == ["kept", "undo"]
    assert rows(tmp_path / "events.db", "SELECT event_id FROM events") == [("e0",)]
    log._db.execute("PRAGMA max_page_count = 1073741823")
    again = log.append([("big0", {"x": 0})], observer.watch)
    assert again.accepted == ["big0"] and observer.told == ["kept", "undo", "kept"] and log.total() == 2


def test_detectors_that_saw_events_never_written_go_back_to_the_state_the_log_holds():
    import numpy as np

    from churnops.monitor.sequential import StreamDetector
    from churnops.serve.detectors import Detectors

    values = np.random.default_rng(3).normal(size=2_000)
    detector = StreamDetector.calibrated("x", values, None, 500, 1.0, seed=0)
    assert detector is not None
    detectors = Detectors({"x": detector}, "signature")
    saved = detectors.see({"x": list(values[:300])})
    detectors.kept()
    shifted = detectors.see({"x": list(values[:300] + 3)})
    assert shifted != saved
    detectors.undo()
    assert detectors.see({"x": []}) == saved  # the shifted values forgotten


def test_the_write_ahead_log_stays_near_its_limit_under_a_steady_load(tmp_path, monkeypatch):
    """The writer makes a checkpoint itself past ``WAL_LIMIT`` - after the checkpoint thread's,
    never beside it: beside it, SQLite refused the writer's as busy, and the write-ahead log grew
    to 2.5 times the limit under load (161 MiB for 64). Four threads append without pause."""
    from churnops.serve import eventlog

    monkeypatch.setattr(eventlog, "WAL_LIMIT", 1 << 20)
    monkeypatch.setattr(eventlog, "CHECKPOINT_BYTES", 128 << 10)
    log = EventLog(tmp_path / "events.db", window_size=1_000_000)
    wal = tmp_path / "events.db-wal"
    record = {"x": 1, "text": "y" * 400}
    largest = 0
    lock = threading.Lock()

    def load(number: int) -> None:
        nonlocal largest
        for _ in range(60):
            log.append([(None, record)] * 100)
            with lock:
                largest = max(largest, wal.stat().st_size)

    threads = [threading.Thread(target=load, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    assert not wal.exists()  # a clean close leaves no write-ahead log
    assert rows(tmp_path / "events.db", "SELECT COUNT(*) FROM events") == [(24_000,)]
    # past the limit by at most what is written between two looks (a checkpoint's worth and a transaction)
    assert largest < (1 << 20) + 4 * (128 << 10) + 4 * 100 * 600, largest


def test_an_alarm_on_events_never_written_is_not_said(caplog):
    """The detectors said an alarm when they saw the events, before the transaction holding them
    failed: each retry of a refused request said it again. Alarms are said once the events are
    committed, and forgotten with them."""
    import logging

    import numpy as np

    from churnops.monitor.sequential import StreamDetector
    from churnops.serve.detectors import Detectors

    values = np.random.default_rng(3).normal(size=2_000)
    detector = StreamDetector.calibrated("x", values, None, 500, 1.0, seed=0)
    assert detector is not None
    detectors = Detectors({"x": detector}, "signature")
    with caplog.at_level(logging.WARNING, logger="churnops.serve.detectors"):
        for _ in range(3):  # a request refused three times
            detectors.see({"x": list(values[:400] + 4)})
            detectors.undo()
        assert "detector alarm" not in caplog.text
        detectors.see({"x": list(values[:400] + 4)})
        detectors.kept()
    assert caplog.text.count("detector alarm: x") == 1, caplog.text


def test_what_cannot_be_written_beside_the_events_is_not_written_either(log, tmp_path):
    """Labels, a window closed by time, a window's verdict and the service's notes fail as the
    events do when the log cannot be written (:class:`NotWritten`, not SQLite's own error), and
    leave the log as it was."""
    from churnops.serve.eventlog import NotWritten

    log.append([("e0", {"x": 0})])
    log._db.execute("PRAGMA query_only = ON")  # SQLite refuses every write: as a full disk would
    with pytest.raises(NotWritten, match="readonly"):
        log.label([("e0", 1)])
    with pytest.raises(NotWritten, match="readonly"):
        log.close_open(older_than=1e12)
    with pytest.raises(NotWritten, match="readonly"):
        log.set_meta("notify", "{}")
    assert (log.open_window, log.open_count) == (0, 1)  # the window still open
    log._db.execute("PRAGMA query_only = OFF")
    assert log.label([("e0", 1)])[0] == 1
    assert log.close_open(older_than=1e12) == 0


def test_events_of_old_evaluated_windows_are_deleted_oldest_first_with_their_outcomes(tmp_path):
    """``prune`` deletes the events of windows evaluated and closed before the cut-off, in
    batches, oldest window first, with their outcomes; the open window, a window not evaluated yet
    (its events are evaluated again) and the windows after it are kept."""
    import time

    log = EventLog(tmp_path / "events.db", window_size=4)
    try:
        answer = log.append([(f"e{i}", {"x": float(i)}) for i in range(18)])  # windows 0-3 closed, 4 open
        assert answer.closed == [0, 1, 2, 3] and log.open_window == 4
        recorded, unknown, _ = log.label([("e1", 1), ("e5", 0), ("e9", 1)])
        assert recorded == 3 and unknown == []
        for window in (0, 1, 3):
            log.evaluated(window, "ok", "", 0.0)
        assert log.prune(before=0.0) == (-1, 0)  # every window closed after the cut-off
        later = time.time() + 1
        assert log.prune(later, limit=3) == (0, 3) and log.prune(later, limit=3) == (0, 1)
        assert log.prune(later, limit=3) == (1, 3) and log.prune(later, limit=3) == (1, 1)
        assert log.prune(later) == (2, 0)  # window 2 is not evaluated: it and window 3 stay
        kept = [row[0] for row in rows(tmp_path / "events.db", "SELECT event_id FROM events ORDER BY seq")]
        assert kept == [f"e{i}" for i in range(8, 18)]
        assert rows(tmp_path / "events.db", "SELECT event_id FROM labels") == [("e9",)]
        log.evaluated(2, "ok", "", 0.0)
        assert log.prune(later) == (2, 4) and log.prune(later) == (3, 4) and log.prune(later) == (-1, 0)
        assert log.open_count == 2 and log.total() == 2  # the open window's events
        assert [w["events"] for w in log.recent()] == [4, 4, 4, 4]  # the windows' history stays
        recorded, unknown, _ = log.label([("e1", 0), ("e17", 1)])
        assert recorded == 1 and unknown == ["e1"]
    finally:
        log.close()


def test_a_pruned_log_reuses_its_space_instead_of_growing(tmp_path):
    """The pages of deleted events are reused by the next ones: after as many events again as
    were deleted, the file has about the pages it had (slimming records in place frees none)."""
    import time

    path = tmp_path / "events.db"
    log = EventLog(path, window_size=2_000)
    payload = {"x": 1.0, "text": "y" * 1_000}
    try:
        log.append([(None, dict(payload)) for _ in range(10_000)])  # windows 0-4 closed
        for window in range(5):
            log.evaluated(window, "ok", "", 0.0)
        full = rows(path, "PRAGMA page_count")[0][0]
        while log.prune(time.time() + 1)[1]:
            pass
        assert log.total() == 0
        log.append([(None, dict(payload)) for _ in range(10_000)])
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            pages = db.execute("PRAGMA page_count").fetchone()[0]
        assert pages < 1.2 * full, (pages, full)
    finally:
        log.close()


def test_the_service_says_what_it_deleted_in_one_short_line_and_what_holds_deletion_back(tmp_path, caplog):
    """A pass over many windows says them as a range, not one by one (a first start with
    ``serve.keep_events`` on a long log wrote a line of 20,000 characters); a window that could
    not be evaluated and holds back the deletion of the later ones is said once."""
    import logging
    import time

    path = tmp_path / "events.db"
    log = EventLog(path, window_size=3)
    try:
        log.append([(None, {"x": float(i)}) for i in range(30)])  # windows 0-9 closed
        for window in (*range(7), 8, 9):  # window 7 not evaluated
            log.evaluated(window, "ok", "", 0.0)
        with sqlite3.connect(path) as db:
            db.execute("UPDATE windows SET closed_at = ?", (time.time() - 7_200,))  # closed two hours ago
        evaluator, _ = keeping(log)
        evaluator.failed.add(7)
        with caplog.at_level(logging.INFO, logger="churnops"):
            evaluator.prune()
            evaluator.prune()
        said = [record.getMessage() for record in caplog.records]
        assert "events older than serve.keep_events (1h) deleted, of 7 windows from 0 to 6 (21 events)" in said, said
        held = [line for line in said if line.startswith("window 7 could not be evaluated")]
        assert len(held) == 1 and "kept past serve.keep_events (1h) until it is" in held[0], said
        assert log.total() == 9
    finally:
        log.close()


def test_windows_waiting_for_their_evaluation_are_counted_from_the_log_and_said_at_most_every_ten_minutes(
    tmp_path, caplog
):
    """Closed windows not evaluated yet are counted from the event log (a failed one too), with
    the age of the oldest; the service says once that they pile up and once that it has caught up,
    and a burst caught up within the next ten minutes is not said again (the count shows it)."""
    import logging

    from churnops.serve.windows import BEHIND_WINDOWS, SAY_BEHIND_EVERY, WindowEvaluator

    log = EventLog(tmp_path / "events.db", window_size=3)
    gate, now = threading.Semaphore(0), [0.0]
    broken: set[int] = set()

    def evaluate(window: int) -> dict:
        if window in broken:  # (tried again after each window evaluated, 3 times)
            raise OSError("No space left on device")
        assert gate.acquire(timeout=60), "the test never let the evaluation go on"
        log.evaluated(window, "ok", "", 0.0)
        return {"window": window}

    evaluator = WindowEvaluator(log, None)
    evaluator.evaluate = evaluate  # type: ignore[method-assign]
    evaluator.clock = lambda: now[0]

    def burst(count: int) -> list[int]:
        """``count`` windows closed and given to the evaluator, which waits at the gate."""
        closed = log.append([(None, {"x": 1.0}) for _ in range(3 * count)]).closed
        evaluator.submit(closed)
        return closed

    def said(text: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if text in r.getMessage()]

    try:
        with caplog.at_level(logging.INFO, logger="churnops"):
            assert evaluator.waiting() == (0, 0.0)
            first = burst(BEHIND_WINDOWS + 2)
            count, age = evaluator.waiting()
            assert count == BEHIND_WINDOWS + 2 and age >= 0.0
            gate.release(len(first))
            evaluator.wait()
            assert evaluator.waiting() == (0, 0.0)
            behind = said("closed windows wait for their evaluation")
            assert len(behind) == 1 and behind[0].startswith(f"{BEHIND_WINDOWS + 2} closed windows wait"), behind
            assert "(a larger serve.window_size closes fewer) or their evaluation fails" in behind[0]
            assert said("caught up") == [
                f"the window evaluation has caught up (up to {BEHIND_WINDOWS + 2} windows waited)"
            ]

            second = burst(BEHIND_WINDOWS)  # within ten minutes of the first: counted, not said again
            assert evaluator.waiting()[0] == BEHIND_WINDOWS
            gate.release(len(second))
            evaluator.wait()
            assert len(said("closed windows wait")) == 1 and len(said("caught up")) == 1

            now[0] += SAY_BEHIND_EVERY  # ten minutes later a pile-up is said again
            broken.add(log.open_window)
            burst(BEHIND_WINDOWS)
            gate.release(BEHIND_WINDOWS - 1)
            evaluator.wait()
            assert len(said("closed windows wait")) == 2
            assert evaluator.waiting()[0] == 1  # the failed window still waits (tried again later)
            assert len(said("caught up")) == 1
    finally:
        gate.release(100)
        log.close()


def test_the_windows_waiting_are_found_through_an_index_of_them_alone_also_in_an_older_log(tmp_path):
    """Counting the windows not evaluated yet reads an index that holds only them, not the whole
    table of windows (a service that ran for weeks has millions: 61 ms a count without it, 0.4
    ms with it); a log written before that index gets it when opened."""
    path = tmp_path / "events.db"
    log = EventLog(path, window_size=3)
    log.append([(None, {"x": 1.0}) for _ in range(9)])
    log.evaluated(0, "ok", "", 0.0)
    log.close()
    with sqlite3.connect(path) as db:
        db.execute("DROP INDEX windows_waiting")  # as a log of the previous version
    log = EventLog(path, window_size=3)
    try:
        count, oldest = log.waiting()
        assert count == 2 and oldest is not None
        with sqlite3.connect(path) as db:
            plan = db.execute(
                "EXPLAIN QUERY PLAN SELECT COUNT(*), MIN(closed_at) FROM windows WHERE evaluated_at IS NULL"
            ).fetchall()
        assert any("USING INDEX windows_waiting" in str(step) for step in plan), plan
    finally:
        log.close()


class Timers:
    """Stands for ``threading.Timer`` in a window evaluator (``evaluator.later``): the timers
    set are listed, and the test calls their function instead of waiting real seconds."""

    def __init__(self) -> None:
        self.set: list = []

    def __call__(self, seconds: float, function):
        timers = self

        class Timer:
            def __init__(self) -> None:
                self.seconds, self.function, self.daemon, self.started = seconds, function, False, False
                self.name = ""
                timers.set.append(self)

            def start(self) -> None:
                self.started = True

            def cancel(self) -> None:
                timers.set.remove(self)

        return Timer()

    def passes(self) -> list:
        """The timers of the deletion passes due (not those emptying the write-ahead log)."""
        return [timer for timer in self.set if timer.name == "churnops-prune"]


def keeping(log: EventLog, period: str | None = "1h") -> tuple:
    """A window evaluator of ``log`` with ``serve.keep_events = period``, whose timers the test
    fires (:class:`Timers`); the evaluator and its timers."""
    from types import SimpleNamespace

    from churnops.serve.windows import WindowEvaluator

    later = Timers()
    evaluator = WindowEvaluator(log, None, SimpleNamespace(serve=SimpleNamespace(keep_events=period)))
    evaluator.later = later
    return evaluator, later


def closed_ago(path: Path, window: int, seconds: float) -> None:
    """Make a window of the log at ``path`` closed ``seconds`` ago."""
    import time

    with sqlite3.connect(path) as db:
        db.execute("UPDATE windows SET closed_at = ? WHERE window = ?", (time.time() - seconds, window))


def test_deleted_events_leave_no_copy_of_their_records_on_disk(tmp_path):
    """``serve.keep_events`` deletes customers' records for good: the database's pages are
    overwritten as rows are deleted, and the write-ahead log, which still holds the pages as they
    were, is emptied after the pass (at most once a minute) - then no byte of a deleted record is
    left in any of the log's files, while the kept events are all there."""
    import time

    from churnops.serve.windows import WIPE_EVERY

    path = tmp_path / "events.db"

    def on_disk(windows: range) -> list[int]:
        """The events of ``windows`` whose record is somewhere in the log's files."""
        files = b"".join(part.read_bytes() for part in tmp_path.iterdir() if part.is_file())
        events = [i for w in windows for i in range(100 * w, 100 * w + 100)]
        return [i for i in events if f"CUSTOMER-{i:05d}-SECRET".encode() in files]

    log = EventLog(path, window_size=100)
    evaluator, later = keeping(log)  # the wipe put off: called by the test instead of after real seconds
    now, timers = [0.0], later.set
    evaluator.clock = lambda: now[0]
    try:
        log.append([(f"e{i}", {"name": f"CUSTOMER-{i:05d}-SECRET", "x": float(i)}) for i in range(400)])
        log.label([("e5", 1), ("e250", 0)])
        for window in (0, 1, 2, 3):
            log.evaluated(window, "ok", "", 0.0)
        with sqlite3.connect(path) as db:
            db.execute("UPDATE windows SET closed_at = ? WHERE window < 2", (time.time() - 7_200,))
        evaluator.prune()
        assert log.total() == 200 and on_disk(range(2)) == [] and len(on_disk(range(2, 4))) == 200

        with sqlite3.connect(path) as db:
            db.execute("UPDATE windows SET closed_at = ? WHERE window = 2", (time.time() - 7_200,))
        evaluator.prune()  # within the minute: deleted, overwritten in the database once the log is copied
        assert log.total() == 100 and on_disk(range(2, 3))
        [timer] = [t for t in timers if t.seconds == WIPE_EVERY]  # the log emptied later by itself
        assert timer.seconds == WIPE_EVERY and timer.daemon
        now[0] += WIPE_EVERY
        timer.function()
        evaluator.wait()
        assert on_disk(range(3)) == [] and len(on_disk(range(3, 4))) == 100

        wiped = []
        log.wipe_deleted = lambda: wiped.append(1) or True  # type: ignore[method-assign]
        now[0] += WIPE_EVERY
        evaluator.prune_soon()  # at start, whatever is due: a killed service may have left some
        evaluator.wait()
        assert wiped == [1]
    finally:
        evaluator.shutdown()
        log.close()


def test_events_are_deleted_when_they_come_of_age_without_waiting_for_traffic(tmp_path):
    """After a pass of ``serve.keep_events``, the next one is due when the oldest evaluated window
    left comes of age, whether or not a window closes meanwhile (a service without traffic
    deleted nothing past its last window); no pass is due for a window not evaluated (its
    evaluation prunes), nor without ``keep_events``; stopping the service stops the timer."""

    from churnops.serve.windows import PRUNE_SLACK

    path = tmp_path / "events.db"
    log = EventLog(path, window_size=10)
    evaluator, later = keeping(log)
    unkept, unkept_later = keeping(log, None)
    timers, passes = later.set, later.passes
    closed = functools.partial(closed_ago, path)
    try:
        log.append([(None, {"x": float(i)}) for i in range(45)])  # windows 0-3 closed, 4 open
        for window in (0, 1, 2):
            log.evaluated(window, "ok", "", 0.0)
        closed(0, 7_200)
        closed(1, 3_000)  # of age in 600 s
        closed(2, 0)
        unkept.prune()
        assert unkept_later.set == [] and log.total() == 45

        evaluator.prune()
        assert log.total() == 35
        [timer] = passes()
        assert timer.started and timer.daemon and 600 + PRUNE_SLACK - 5 < timer.seconds <= 600 + PRUNE_SLACK
        evaluator.prune()  # another pass meanwhile (a window evaluated): still one timer
        assert len(passes()) == 1

        closed(1, 3_601)  # ten minutes later, no window closed meanwhile
        timers.remove(timer)
        timer.function()
        evaluator.wait()
        assert log.total() == 25
        [timer] = passes()  # window 2 next, in an hour
        assert 3_600 + PRUNE_SLACK - 5 < timer.seconds <= 3_600 + PRUNE_SLACK

        closed(2, 7_200)
        timers.remove(timer)
        timer.function()
        evaluator.wait()
        assert log.total() == 15 and passes() == []  # window 3 is not evaluated: its evaluation prunes

        log.evaluated(3, "ok", "", 0.0)
        evaluator.prune()
        assert len(passes()) == 1
        evaluator.shutdown()
        assert timers == []
    finally:
        log.close()


def test_a_failing_pass_is_said_once_and_tried_again_later_and_only_a_stuck_window_is_said(tmp_path, caplog):
    """A pass of ``serve.keep_events`` that fails (a full disk) is said once and tried again a
    minute later, then two, four... - not every second with a warning each time; a success resets
    it, and a window coming of age sooner than the retry is not kept waiting for it. A window
    merely waiting in line for its evaluation is not said to hold deletions back;
    one that could not be evaluated is, once, when it comes of age - then no timer runs for it.
    Once the service stops, a pass running then sets no timer."""
    import logging

    from churnops.serve.windows import PRUNE_RETRY, PRUNE_SLACK

    path = tmp_path / "events.db"
    log = EventLog(path, window_size=10)
    evaluator, later = keeping(log)
    timers, passes = later.set, later.passes
    closed = functools.partial(closed_ago, path)

    def fire() -> None:
        timer = timers.pop()
        timer.function()
        evaluator.wait()

    def said(text: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if text in r.getMessage()]

    real_prune = log.prune
    try:
        with caplog.at_level(logging.INFO, logger="churnops"):
            log.append([(None, {"x": float(i)}) for i in range(35)])  # windows 0-2 closed, 3 open
            log.evaluated(0, "ok", "", 0.0)
            closed(0, 7_200)

            def full(before: float, limit: int = 0):
                raise sqlite3.OperationalError("database or disk is full")

            log.prune = full  # type: ignore[method-assign]
            evaluator.prune()
            [timer] = timers
            assert timer.seconds == PRUNE_RETRY + PRUNE_SLACK
            fire()
            [timer] = timers
            assert timer.seconds == 2 * PRUNE_RETRY + PRUNE_SLACK
            assert len(said("could not be deleted: database or disk is full; tried again later")) == 1
            log.prune = real_prune  # type: ignore[method-assign]
            fire()  # room again: deleted, and no timer (window 1 waits for its evaluation)
            assert log.total() == 25 and timers == [] and said("deleted, of windows 0 (10)")

            closed(1, 7_200)  # waiting in line past keep_events: its evaluation will prune
            evaluator.prune()
            assert timers == [] and said("could not be evaluated") == []

            evaluator.failed.add(1)  # could not be evaluated, and of age: said once, no timer for it
            evaluator.prune()
            evaluator.prune()
            assert timers == [] and len(said("window 1 could not be evaluated: its events")) == 1

            log.evaluated(1, "ok", "", 0.0)
            log.evaluated(2, "ok", "", 0.0)
            log.prune = full  # type: ignore[method-assign]
            evaluator.prune()  # failing again: tried again in a minute
            [retry] = timers
            assert retry.seconds == PRUNE_RETRY + PRUNE_SLACK
            log.prune = real_prune  # type: ignore[method-assign]
            closed(2, 3_590)  # due in ten seconds
            evaluator.prune()  # room again (a window evaluated): the retry gives way to window 2's time
            [timer] = passes()
            assert 10 + PRUNE_SLACK - 5 < timer.seconds <= 10 + PRUNE_SLACK and timer is not retry
            evaluator.shutdown()
            evaluator.prune()  # a pass that ran on as the service stopped
            assert log.total() == 15 and timers == []  # window 2 is due in an hour: no timer set
    finally:
        log.prune = real_prune  # type: ignore[method-assign]
        log.close()


def test_a_deletion_pass_waits_briefly_for_a_lock_another_program_holds(tmp_path):
    """Another program holding a write lock on the log: a deletion pass waits for it only
    ``PRUNE_BUSY_SECONDS`` (it is tried again later), not the 30 s an append waits - it held the
    writes, and a stopping service, for that long; the appends' wait is restored after it."""
    import time

    from churnops.serve.eventlog import BUSY_SECONDS, PRUNE_BUSY_SECONDS, NotWritten

    path = tmp_path / "events.db"
    log = EventLog(path, window_size=10)
    waits: list[int] = []
    immediate = log._immediate

    @contextlib.contextmanager
    def watched():
        waits.append(log._db.execute("PRAGMA busy_timeout").fetchone()[0])
        with immediate():
            yield

    log._immediate = watched  # type: ignore[method-assign]
    other = sqlite3.connect(path, isolation_level=None)
    try:
        log.append([(None, {"x": float(i)}) for i in range(15)])
        log.evaluated(0, "ok", "", 0.0)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(NotWritten, match="locked"):
            log.prune(time.time() + 1)
        assert waits == [PRUNE_BUSY_SECONDS * 1000]
        assert log._db.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_SECONDS * 1000
        other.execute("ROLLBACK")
        assert log.prune(time.time() + 1) == (0, 10)
    finally:
        other.close()
        log.close()


def slimming(log: EventLog, inputs: str = "1h", events: str | None = None, share: float = 0.5) -> tuple:
    """A window evaluator of ``log`` with ``serve.keep_inputs = inputs`` (and ``keep_events``),
    the A/B arms on with ``customer`` as their key, ``churned`` the target (:func:`keeping`)."""
    from types import SimpleNamespace

    from churnops.serve.windows import WindowEvaluator

    later = Timers()
    serve = SimpleNamespace(keep_events=events, keep_inputs=inputs, ab=SimpleNamespace(key="customer", share=share))
    columns = SimpleNamespace(target="churned", prediction=None, id=["customer"])
    evaluator = WindowEvaluator(log, None, SimpleNamespace(serve=serve, columns=columns))
    evaluator.later = later
    return evaluator, later


def test_keep_inputs_drops_the_inputs_of_old_windows_and_keeps_scores_outcomes_and_customers(tmp_path, caplog):
    """``serve.keep_inputs``: the records of evaluated windows closed longer ago keep only their
    scores, target and A/B customer - the arms' numbers are the same before and after - and no
    byte of a dropped input is left in the log's files once the write-ahead log is emptied; a
    window not evaluated yet, the open window and younger windows keep theirs; the pass is said,
    continues where it stopped, and the next one is due when the next window comes of age."""
    import logging

    from churnops.serve.eventlog import ARM, MODEL_VERSION, PROBABILITY
    from churnops.serve.windows import PRUNE_SLACK

    path = tmp_path / "events.db"

    def on_disk(events: range) -> list[int]:
        files = b"".join(part.read_bytes() for part in tmp_path.iterdir() if part.is_file())
        return [i for i in events if f"SECRET-INCOME-{i:05d}".encode() in files]

    def scored(i: int) -> dict:
        return {
            "income": f"SECRET-INCOME-{i:05d}",
            "x": float(i),
            "customer": f"c{i % 7}",
            "churned": i % 2,
            PROBABILITY: i / 1000,
            ARM: "champion",
            MODEL_VERSION: "3",
        }

    log = EventLog(path, window_size=100)
    evaluator, later = slimming(log)
    try:
        log.append([(f"e{i}", scored(i)) for i in range(450)])  # windows 0-3 closed, 50 events open
        log.label([("e5", 1), ("e150", 0)])
        for window in (0, 1, 3):  # window 2 not evaluated
            log.evaluated(window, "ok", "", 0.0)
        before = log.scored(1_000, "customer")
        for window in range(4):
            closed_ago(path, window, 7_200)
        closed_ago(path, 1, 600)  # window 1: younger than keep_inputs
        with caplog.at_level(logging.INFO, logger="churnops"):
            evaluator.prune()
        said = [record.getMessage() for record in caplog.records]
        assert "inputs of events older than serve.keep_inputs (1h) dropped, of windows 0 (100)" in said, said
        record = log.records(0)[5]
        assert record == {"customer": "c5", "churned": 1, PROBABILITY: 0.005, ARM: "champion", MODEL_VERSION: "3"}
        assert log.records(1)[0]["income"] == "SECRET-INCOME-00100" and log.total() == 450
        assert log.scored(1_000, "customer") == before  # the arms' numbers: the same
        assert on_disk(range(100)) == [] and len(on_disk(range(100, 450))) == 350
        [due] = later.passes()  # window 1 comes of age in 3,000 s
        assert 3_000 - 5 < due.seconds - PRUNE_SLACK <= 3_000, due.seconds

        closed_ago(path, 1, 7_200)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="churnops"):
            evaluator.prune()  # window 2 is not evaluated: it holds back window 3
        assert "SECRET" not in json.dumps(log.records(1)) and "SECRET" in json.dumps(log.records(2) + log.records(3))
        log.evaluated(2, "ok", "", 0.0)
        with caplog.at_level(logging.INFO, logger="churnops"):
            evaluator.prune()
        assert "SECRET" not in json.dumps(log.records(2) + log.records(3))
        assert "SECRET" in json.dumps(log.records(4))  # the open window
        assert log.retained() == (0, 400)
        assert [message for message in (r.getMessage() for r in caplog.records) if "dropped" in message] == [
            "inputs of events older than serve.keep_inputs (1h) dropped, of windows 1 (100)",
            "inputs of events older than serve.keep_inputs (1h) dropped, of windows 2 (100), 3 (100)",
        ]
    finally:
        evaluator.shutdown()
        log.close()


def test_a_pass_cut_short_before_it_was_said_is_said_at_the_next_start(tmp_path, caplog):
    """The events deleted (or slimmed) are recorded in the same transaction as the deletion: a
    service killed after the transaction and before its log line says it at its next start,
    once; what a pass says is not said again."""
    import logging
    import time

    path = tmp_path / "events.db"
    log = EventLog(path, window_size=10)
    log.append([(None, {"x": float(i), "secret": "s"}) for i in range(35)])
    for window in range(3):
        log.evaluated(window, "ok", "", 0.0)
    for window in range(3):
        closed_ago(path, window, 7_200)
    assert log.prune(time.time() - 3_600) == (0, 10)  # the pass, killed before it said anything
    assert log.slim(time.time() - 3_600, ("x",), limit=4) == (1, 4)
    log.close()

    log = EventLog(path, window_size=10)
    evaluator, _ = keeping(log, None)  # restarted without keep_events: said all the same
    try:
        with caplog.at_level(logging.INFO, logger="churnops"):
            evaluator.prune()
            evaluator.prune()
        said = [record.getMessage() for record in caplog.records]
        assert said == [
            "events of windows 0 (10), deleted before the service last stopped and not said then",
            "inputs of the events of windows 1 (4), dropped before the service last stopped and not said then",
        ], said
        assert log.retained() == (10, 4) and log.records(1)[3] == {"x": 13.0} and "secret" in log.records(1)[4]
    finally:
        evaluator.shutdown()
        log.close()
    log = EventLog(path, window_size=10)
    evaluator, _ = keeping(log, "1h")
    try:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="churnops"):
            evaluator.prune()
        assert [r.getMessage() for r in caplog.records] == [
            "events older than serve.keep_events (1h) deleted, of windows 1 (10), 2 (10)"
        ]
    finally:
        evaluator.shutdown()
        log.close()


def test_only_what_was_not_said_is_said_after_a_kill_not_a_window_s_earlier_passes(tmp_path, caplog):
    """A window's inputs dropped and said, then its events deleted by a pass killed before its
    line: the next start said both again (the inputs twice). A window slimmed in several
    transactions, killed twice, was said for 12,000 of its 10,000 events. Only the events not
    said yet are said, each once."""
    import logging
    import time

    path = tmp_path / "events.db"
    log = EventLog(path, window_size=10)
    log.append([(None, {"x": float(i), "secret": "s"}) for i in range(35)])
    for window in range(3):
        log.evaluated(window, "ok", "", 0.0)
        closed_ago(path, window, 7_200)
    assert log.slim(time.time() - 3_600, ("x",)) == (0, 10)
    assert log.unsaid() == {0: (0, 10)}
    log.said()
    assert log.prune(time.time() - 3_600) == (0, 10)  # killed before its line
    assert log.slim(time.time() - 3_600, ("x",), limit=4) == (1, 4)
    assert log.unsaid() == {0: (10, 0), 1: (0, 4)}
    log.said()  # said at a start, then killed again in the middle of window 1
    assert log.slim(time.time() - 3_600, ("x",), limit=4) == (1, 4)
    assert log.unsaid() == {1: (0, 4)}
    log.close()

    log = EventLog(path, window_size=10)
    evaluator, _ = slimming(log, "1h")
    try:
        with caplog.at_level(logging.INFO, logger="churnops"):
            evaluator.prune()
        said = [record.getMessage() for record in caplog.records]
        assert said == [
            "inputs of the events of windows 1 (4), dropped before the service last stopped and not said then",
            "inputs of events older than serve.keep_inputs (1h) dropped, of windows 1 (2), 2 (10)",
        ], said
        assert log.retained() == (10, 30) and log.unsaid() == {}
    finally:
        evaluator.shutdown()
        log.close()


def test_an_event_an_arm_scored_keeps_its_customer_also_once_the_arms_are_paused(tmp_path):
    """The A/B comparison counts each customer once: an event an arm scored keeps its customer
    column when its inputs are dropped, whether or not the arms are on now (a paused test,
    ``serve.ab.share = 0``, lost its customers and its numbers changed); an event no arm scored
    keeps none."""

    from churnops.serve.eventlog import ARM, PROBABILITY

    path = tmp_path / "events.db"
    log = EventLog(path, window_size=4)
    log.append(
        [(None, {"customer": f"c{i}", "x": 1.0, PROBABILITY: 0.5, ARM: "challenger"}) for i in range(2)]
        + [(None, {"customer": f"c{i}", "x": 1.0}) for i in range(2, 5)]
    )
    log.evaluated(0, "ok", "", 0.0)
    closed_ago(path, 0, 7_200)
    evaluator, _ = slimming(log, "1h", share=0.0)
    try:
        evaluator.prune()
        assert log.records(0) == [
            {"customer": "c0", PROBABILITY: 0.5, ARM: "challenger"},
            {"customer": "c1", PROBABILITY: 0.5, ARM: "challenger"},
            {},
            {},
        ]
    finally:
        evaluator.shutdown()
        log.close()


def test_a_log_without_the_retention_table_is_opened_and_a_foreign_table_refused(tmp_path):
    """A log written before its deletions were recorded gets the table when opened; a database
    with a table churnops never makes is still not taken for an event log."""
    from churnops.errors import InputDataError

    path = tmp_path / "events.db"
    EventLog(path, window_size=3).close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE retention")
    EventLog(path, window_size=3).close()
    assert rows(path, "SELECT name FROM sqlite_master WHERE name = 'retention'") == [("retention",)]
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE other (x)")
    with pytest.raises(InputDataError, match="not churnops' event log"):
        EventLog(path, window_size=3)


@pytest.mark.parametrize(
    ("settings", "refused"),
    [
        ({"keep_inputs": "30d", "keep_events": "90d"}, None),
        ({"keep_inputs": "30d"}, None),
        ({"keep_inputs": "90d", "keep_events": "90d"}, "must be shorter than serve.keep_events (90d)"),
        ({"keep_inputs": "2160h", "keep_events": "30d"}, "must be shorter"),
        ({"keep_inputs": "2w"}, "is not a period like 12h or 90d"),
        ({"keep_inputs": 30}, "written as text"),
    ],
)
def test_keep_inputs_is_a_period_shorter_than_keep_events(settings, refused):
    from pydantic import ValidationError

    from churnops.config.models import ServeConfig

    if refused is None:
        assert ServeConfig(**settings).keep_inputs == settings["keep_inputs"]
    else:
        with pytest.raises(ValidationError, match=re.escape(refused)):
            ServeConfig(**settings)


def test_another_programs_database_is_refused_unchanged_and_links_beside_the_log_are_refused(tmp_path):
    """serve.event_log naming another program's SQLite database switched it to write-ahead logging
    (its header changed) and left a lock file before refusing it; a link planted as the log's -shm
    file was an internal error."""
    import hashlib

    other = tmp_path / "app.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    before = hashlib.sha256(other.read_bytes()).hexdigest()
    with pytest.raises(InputDataError, match="not churnops' event log"):
        EventLog(other, window_size=10)
    assert hashlib.sha256(other.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]  # no lock, no write-ahead file left
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for suffix in ("-shm", "-wal", ""):
        link = tmp_path / f"events.db{suffix}"
        link.symlink_to(victim)
        with pytest.raises(InputDataError, match="symbolic link"):
            EventLog(tmp_path / "events.db", window_size=10)
        link.unlink()
    assert victim.read_text() == "precious"
    EventLog(tmp_path / "events.db", window_size=10).close()  # once removed, the log is made


def test_a_smaller_window_size_after_a_restart_closes_the_open_window_as_it_is(tmp_path, caplog):
    """300 events in the open window, restarted with serve.window_size = 100: the next event was
    written to a window already closed, windows of 0 and 1 rows were evaluated (and alerted), and
    the windows table said 100 events for a window of 300."""
    log = EventLog(tmp_path / "events.db", window_size=1_000)
    log.append([(f"e{i}", {"x": float(i)}) for i in range(300)])
    log.close()
    log = EventLog(tmp_path / "events.db", window_size=100)
    assert "window 0 holds 300 events, serve.window_size is now 100: it is closed as it is" in caplog.text
    assert (log.open_window, log.open_count) == (1, 0)
    answer = log.append([(f"n{i}", {"x": 1.0}) for i in range(150)])
    log.close()
    with sqlite3.connect(tmp_path / "events.db") as db:
        events = db.execute("SELECT window, COUNT(*) FROM events GROUP BY window ORDER BY window").fetchall()
        windows = db.execute("SELECT window, events FROM windows ORDER BY window").fetchall()
    assert events == [(0, 300), (1, 100), (2, 50)] and windows == [(0, 300), (1, 100)], (events, windows, answer)
