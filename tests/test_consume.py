"""``churnops consume`` on a real Redis (Debian's redis-server on 127.0.0.1, started here): every
entry counted once in the event log through kills, a restart and a claim by another consumer;
invalid entries in the dead-letter stream with their reason, acknowledged; a stop request
finishes the batch in hand; Redis problems are one line and exit 2, the password never shown.

Nothing waits on a clock: the server is ready when it says so, and the consumer is killed (or
asked to stop) at a chosen call - after its n-th write or before its n-th acknowledgement."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import orjson
import pytest
from servers import free_port

import churnops

redis = pytest.importorskip("redis", reason="needs: redis (pip install 'churnops[redis]')")

PASSWORD = "s3cret-Redis-pass-4711"
WINDOW = 1_000
BATCH = 200

# Runs churnops with one function wrapped to send the process a signal at its n-th call.
HOOK = textwrap.dedent(
    """
    import importlib, os, signal, sys
    where, nth, number = sys.argv[1], int(sys.argv[2]), getattr(signal, sys.argv[3])
    module_path, class_name, attribute = where.rsplit(".", 2)
    owner = getattr(importlib.import_module(module_path), class_name)
    real, calls = getattr(owner, attribute), [0]
    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == nth:
            os.kill(os.getpid(), number)
        return real(*args, **kwargs)
    setattr(owner, attribute, wrapper)
    from churnops.cli import main
    sys.exit(main(sys.argv[4:]))
    """
)


class RedisServer:
    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("needs: redis-server (apt-get install redis-server)")
        self.port = free_port()
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
             "--appendonly", "no", "--requirepass", PASSWORD, "--logfile", ""],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        said = []
        for line in self.process.stdout:  # the server says when it accepts connections, or exits
            said.append(line)
            if "Ready to accept connections" in line:
                break
        else:
            raise AssertionError(f"redis-server did not start: {''.join(said)}")
        threading.Thread(target=self.process.stdout.read, daemon=True).start()  # never a full pipe
        self.url = f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"
        self.client = redis.Redis(host="127.0.0.1", port=self.port, password=PASSWORD)

    def pending(self, stream: str, group: str = "churnops") -> dict[str, int]:
        summary = self.client.xpending(stream, group)
        return {c["name"].decode(): int(c["pending"]) for c in summary["consumers"]}

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> RedisServer:
    started = RedisServer(tmp_path_factory.mktemp("redis"))
    yield started
    started.stop()


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "churnops", "-q", "data", "init"], cwd=tmp_path, capture_output=True)
    assert done.returncode == 0, done.stderr
    return tmp_path


def consume(root: Path, url: str, *args: str, hook: tuple[str, int, str] | None = None) -> subprocess.CompletedProcess:
    command = ["consume", "--batch", str(BATCH), "--set", f"serve.window_size={WINDOW}", *args]
    prefix = (
        [sys.executable, "-c", HOOK, hook[0], str(hook[1]), hook[2]] if hook else [sys.executable, "-m", "churnops"]
    )
    return subprocess.run(
        [*prefix, *command], cwd=root, capture_output=True, text=True, timeout=600,
        env={**os.environ, "CHURNOPS_REDIS_URL": url},
    )  # fmt: skip


def logged(root: Path) -> list[str]:
    with sqlite3.connect(f"file:{root / 'monitoring' / 'events.db'}?mode=ro", uri=True) as db:
        return [row[0] for row in db.execute("SELECT event_id FROM events ORDER BY seq")]


def add(server: RedisServer, stream: str, events: list[dict | bytes]) -> list[str]:
    """XADD each event (JSON in the field 'event'); the entry ids."""
    pipe = server.client.pipeline()
    for event in events:
        pipe.xadd(stream, {"event": event if isinstance(event, bytes) else orjson.dumps(event)})
    return [entry_id.decode() for entry_id in pipe.execute()]


def test_every_entry_is_counted_once_through_a_kill_a_restart_and_a_claim(project, server):
    """Consumer a is killed after writing its second batch, before acknowledging it; restarted, it
    gets that batch again (duplicates: not counted) and is killed before writing the next one;
    consumer b claims that one from the dead a. Every entry is in the log once, nothing is left
    pending, and the window they fill is evaluated."""
    stream = "events-kills"
    rows = churnops.generate(WINDOW + 200, start=20_000).to_dicts()
    events = [{"event_id": f"e-{i}", **row} if i % 2 == 0 else row for i, row in enumerate(rows)]
    entry_ids = add(server, stream, events)
    expected = [f"e-{i}" if i % 2 == 0 else f"{stream}:{entry_id}" for i, entry_id in enumerate(entry_ids)]

    first = consume(project, server.url, "--stream", stream, "--consumer", "a",
                    hook=("churnops.serve.streams.StreamGroup.settle", 2, "SIGKILL"))  # fmt: skip
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert logged(project) == expected[: 2 * BATCH]  # the second batch is written...
    assert server.pending(stream) == {"a": BATCH}  # ...and not acknowledged

    again = consume(project, server.url, "--stream", stream, "--consumer", "a",
                    hook=("churnops.serve.eventlog.EventLog.append", 2, "SIGKILL"))  # fmt: skip
    assert again.returncode == -signal.SIGKILL, again.stderr
    assert logged(project) == expected[: 2 * BATCH]  # delivered twice, written once
    assert server.pending(stream) == {"a": BATCH}  # the third batch: read by a, never written

    other = consume(project, server.url, "--stream", stream, "--consumer", "b", "--claim-idle", "0", "--until-idle")
    assert other.returncode == 0, other.stderr
    assert "entries: 800 read, 800 written to the event log, 0 already in it" in other.stdout
    assert "(200 claimed from other consumers)" in other.stdout
    ids = logged(project)
    assert len(ids) == len(set(ids)) == len(rows) and set(ids) == set(expected)
    assert server.pending(stream) == {}
    metrics = orjson.loads((project / "monitoring" / "windows" / "0" / "monitoring_metrics.json").read_bytes())
    assert metrics["current"]["rows"] == WINDOW
    for run in (first, again, other):
        assert PASSWORD not in run.stdout + run.stderr


def test_two_streams_feeding_one_log_never_take_each_others_events_for_repeats(project, server):
    """An entry without its own event_id was named by its entry id, which is unique in its stream
    only: a second stream with the same ids (written in the same millisecond, or a stream renamed)
    had its events dropped as "already in" the log - 198 of 200 in the report that found it."""
    rows = churnops.generate(300, start=20_000).to_dicts()
    pipe = server.client.pipeline()
    for index, row in enumerate(rows):
        stream = "events-eu" if index < 150 else "events-us"
        pipe.xadd(stream, {"event": orjson.dumps(row)}, id=f"1-{index % 150}")  # the same ids in both
    pipe.execute()
    for stream in ("events-eu", "events-us"):
        done = consume(project, server.url, "--stream", stream, "--until-idle")
        assert done.returncode == 0, done.stderr
        assert "entries: 150 read, 150 written to the event log, 0 already in it" in done.stdout, done.stdout
    ids = logged(project)
    assert len(ids) == len(set(ids)) == 300 and {"events-eu:1-0", "events-us:1-0"} <= set(ids)


def test_invalid_entries_go_to_the_dead_letter_stream_with_their_reason(project, server):
    stream = "events-invalid"
    one = churnops.generate(3, start=20_000).to_dicts()
    bad = {
        "json": b"{not json",
        "nan": b'{"Balance": NaN}',
        "list": orjson.dumps([one[0]]),
        "text": orjson.dumps({**one[0], "Balance": "lots"}),
        "fraction": orjson.dumps({**one[0], "Credit Score": 700.5}),
        "column": orjson.dumps({**one[0], "<img src=x>": 1}),
    }
    ids = add(server, stream, [one[0], *bad.values(), one[1]])
    no_field = server.client.xadd(stream, {"payload": b"{}"}).decode()
    add(server, stream, [one[2]])
    # the URL on the command line (not advised, but it must not leak either), and debug logging
    done = consume(project, "", "-v", "--stream", stream, "--redis", server.url, "--until-idle")
    assert done.returncode == 0, done.stderr
    assert "entries: 10 read, 3 written to the event log, 0 already in it, 7 rejected to 'events-invalid:rejected'" in (
        done.stdout
    )
    assert "7 entries rejected to 'events-invalid:rejected'" in done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert len(logged(project)) == 3 and server.pending(stream) == {}
    rejected = {
        fields[b"entry_id"].decode(): fields for _, fields in server.client.xrange(f"{stream}:rejected", "-", "+")
    }
    expected = {
        "json": "not valid JSON",
        "nan": "not valid JSON",
        "list": "not a JSON object",
        "text": "Balance: expected a number, got text 'lots'",
        "fraction": "Credit Score: expected a whole number, got 700.5",
        "column": "unknown column '<img src=x>'",
    }
    for (kind, raw), entry_id in zip(bad.items(), ids[1:7], strict=True):
        assert expected[kind] in rejected[entry_id][b"reason"].decode(), kind
        assert rejected[entry_id][b"event"] == raw and rejected[entry_id][b"stream"] == stream.encode()
    assert b"no field 'event'" in rejected[no_field][b"reason"] and b"event" not in rejected[no_field]
    assert len(rejected) == 7


def test_rejections_are_recorded_before_anything_is_acknowledged_and_repeated_ids_never_dropped(project, server):
    stream = "events-conflict"
    one = churnops.generate(3, start=21_000).to_dicts()
    events = [{"event_id": "dup-1", **one[0]}, {"event_id": "dup-1", **one[1]}, {"event_id": "dup-1", **one[0]}, one[2]]
    ids = add(server, stream, events)
    from churnops.errors import InputDataError
    from churnops.serve.streams import Rejection, StreamGroup

    blocked = "events-blocked"
    add(server, blocked, [b"{not json"])
    group = StreamGroup(server.url, blocked, "churnops", "early", f"{blocked}:rejected", 1_000)
    group.connect()
    read = group.read(1, None)
    server.client.set(f"{blocked}:rejected", b"not a stream")  # taken by something else while consuming
    with pytest.raises(InputDataError, match="not a stream any more"):
        group.settle([read[0][0]], [Rejection(read[0][0], "not valid JSON", b"{not json")])
    group.close()
    assert server.pending(blocked) == {"early": 1}  # not acknowledged: its rejection was not recorded
    done = consume(project, server.url, "--stream", stream, "--until-idle")
    assert done.returncode == 0, done.stderr
    # the same event again: once
    assert server.pending(stream) == {} and logged(project) == ["dup-1", f"{stream}:{ids[3]}"]
    rejected = server.client.xrange(f"{stream}:rejected", "-", "+")
    assert [fields[b"entry_id"].decode() for _, fields in rejected] == [ids[1]]
    assert b"repeats the event_id 'dup-1'" in rejected[0][1][b"reason"]


def test_a_stop_request_finishes_the_batch_in_hand(project, server):
    """SIGTERM arrives while the first batch is being written: it is written and acknowledged, and
    nothing more is read."""
    stream = "events-stop"
    add(server, stream, churnops.generate(3 * BATCH, start=20_000).to_dicts())
    done = consume(project, server.url, "--stream", stream,
                   hook=("churnops.serve.eventlog.EventLog.append", 1, "SIGTERM"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"stopped (SIGTERM); entries: {BATCH} read, {BATCH} written" in done.stdout
    assert len(logged(project)) == BATCH and server.pending(stream) == {}
    groups = {g["name"].decode(): g for g in server.client.xinfo_groups(stream)}
    assert groups["churnops"]["entries-read"] == BATCH  # the rest was left in the stream


def test_redis_problems_are_one_line_and_exit_2(project, server):
    server.client.set("a-string", "x")
    closed = free_port()
    cases = [
        (f"redis://:{PASSWORD}@127.0.0.1:{closed}/0", ["--stream", "s"], "cannot reach redis at redis://127.0.0.1:"),
        (f"redis://:wrong-{PASSWORD}@127.0.0.1:{server.port}/0", ["--stream", "s"], "refused the credentials"),
        (f"redis://127.0.0.1:{server.port}/0", ["--stream", "s"], "refused the credentials"),
        (server.url, ["--stream", "a-string"], "redis key 'a-string' holds a string, not a stream"),
        (server.url, ["--stream", "s", "--set", "consume.dead_letter=a-string"], "holds a string"),
        ("", ["--stream", "s"], "no Redis URL: set the environment variable CHURNOPS_REDIS_URL"),
        ("http://nowhere", ["--stream", "s"], "not one redis-py reads"),
        (f"{server.url}?ssl_cert_reqs=bogus", ["--stream", "s"], "a parameter its scheme does not take"),
        (server.url, ["--stream", "s", "--set", "serve.keep_events=1m"], "serve.keep_events (1m) would delete events"),
    ]
    for url, args, said in cases:
        done = consume(project, url, *args, "--until-idle")
        assert done.returncode == 2 and said in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
        assert PASSWORD not in done.stdout + done.stderr
    code = (
        "import sys; sys.modules['redis'] = None; sys.argv = ['churnops', 'consume', '--stream', 's']; "
        "from churnops.cli import main; sys.exit(main())"
    )
    missing = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "pip install 'churnops[redis]'" in missing.stderr, missing.stderr


class EchoingRedis:
    """A server speaking Redis' protocol that answers every command with an error repeating its
    arguments - as written, base64-encoded and reversed - as a hostile or broken server could.
    (Redis itself does not repeat AUTH's password; only such a stand-in shows what churnops
    would print if a server did.)"""

    def __init__(self) -> None:
        import base64
        import socketserver

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while line := self.rfile.readline():
                    words = []
                    for _ in range(int(line[1:]) if line[:1] == b"*" else 0):
                        length = int(self.rfile.readline()[1:])
                        words.append(self.rfile.read(length + 2)[:-2])
                    said = b" ".join(words)
                    self.wfile.write(
                        b"-ERR unknown " + said + b" b64=" + base64.b64encode(said) + b" rev=" + said[::-1] + b"\r\n"
                    )

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    ("userinfo", "query", "secrets"),
    [
        ("", "?password=QpassW0rd77", ["QpassW0rd77"]),
        (":abc@", "", ["abc"]),
        ("ruser:R3disPassw0rd@", "", ["ruser", "R3disPassw0rd"]),
        ("", "?username=quser&password=p9", ["quser", "p9"]),
    ],
    ids=["query-password", "short-password", "user-and-password", "query-user-and-password"],
)
def test_a_server_repeating_the_credentials_never_gets_them_printed(project, userinfo, query, secrets):
    """Whatever the server answers, the line names the error, never its words; and every part of
    the URL that can be secret is redacted from anything printed (checked on its own below)."""
    from churnops.config import load_config
    from churnops.redact import forget_all, redact
    from churnops.serve.consume import redis_url

    echoing = EchoingRedis()
    url = f"redis://{userinfo}127.0.0.1:{echoing.port}/0{query}"
    try:
        done = consume(project, url, "--stream", "s")
    finally:
        echoing.close()
    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert said.strip() == f"error: redis at redis://127.0.0.1:{echoing.port}/0 answered an error while connecting"
    try:
        redis_url(load_config(project), url)  # what consume does before anything can print
        cleaned = redact(f"unknown AUTH {' '.join(secrets)} from {url}")
    finally:
        forget_all()
    assert not any(secret in cleaned.split() for secret in secrets), cleaned
    assert f"127.0.0.1:{echoing.port}/0" in cleaned, cleaned  # where it went stays readable


def test_a_redis_that_hangs_is_given_up_in_seconds_not_minutes(project, tmp_path):
    """A Redis that stops answering (here: stopped with SIGSTOP) held the consumer two minutes -
    a read waited 30 s, four times - past its SIGTERM. It now gives up within about 20 s: one
    line, exit 2 (the bound below is a guard against the old two minutes, not a measurement)."""
    (tmp_path / "frozen-redis").mkdir()
    frozen = RedisServer(tmp_path / "frozen-redis")
    consumer = None
    try:
        consumer = subprocess.Popen(
            [sys.executable, "-m", "churnops", "consume", "--stream", "events-frozen", "--set",
             f"serve.window_size={WINDOW}"],
            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "CHURNOPS_REDIS_URL": frozen.url},
        )  # fmt: skip
        assert consumer.stdout.readline().startswith("churnops consume: reading 'events-frozen'")
        frozen.process.send_signal(signal.SIGSTOP)
        try:
            _, err = consumer.communicate(timeout=90)
        finally:
            frozen.process.send_signal(signal.SIGCONT)
        assert consumer.returncode == 2 and "cannot reach redis" in err and PASSWORD not in err, err
        assert len(err.strip().splitlines()) == 1, err
    finally:
        if consumer is not None and consumer.poll() is None:
            consumer.kill()
        frozen.stop()
