"""A real ``churnops serve`` process on 127.0.0.1 for the tests: started on a free port, its
address read from the line it prints once it listens (no clock involved)."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

TOKEN = "test-token-0123456789abcdef"
WINDOW = 1_000


class Service:
    def __init__(self, root: Path, *args: str, token: str | None = TOKEN, file_size: int | None = None) -> None:
        """``file_size``: the largest file the service may write, in bytes (``RLIMIT_FSIZE``; a
        write beyond fails as on a full disk), raised later with :meth:`allow_files`."""
        env = {**os.environ, "CHURNOPS_API_TOKEN": token or ""}

        def limit() -> None:
            import resource

            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, resource.RLIM_INFINITY))

        self.process = subprocess.Popen(
            [sys.executable, "-m", "churnops", "serve", "--port", "0", "--set", f"serve.window_size={WINDOW}", *args],
            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=None if file_size is None else limit,
        )  # fmt: skip
        line = self.process.stdout.readline()  # the service says where it listens once it does
        if "listening on" not in line:
            self.process.kill()
            raise AssertionError(f"the service did not start: {line}{self.process.stderr.read()}")
        self.url = line.split("listening on ")[1].split()[0]

    def allow_files(self) -> None:
        """Let the service write files of any size again (room on the disk again)."""
        import resource

        resource.prlimit(self.process.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                return answer.status, answer.read(), dict(answer.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read(), dict(error.headers)

    def post(self, events, token: str | None = TOKEN, raw: bytes | None = None):
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        status, body, _ = self.request(
            "POST", "/v1/events", raw if raw is not None else json.dumps(events).encode(), headers
        )
        return status, json.loads(body)

    def window(self, number: int) -> dict:
        status, body, _ = self.request("GET", f"/v1/drift?window={number}&wait=60")
        assert status == 200, body
        return json.loads(body)["metrics"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)


class Lines:
    """The service's standard error, line by line, read by a thread (a test waits on the lines)."""

    def __init__(self, stream) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put("")

    def wait_for(self, pattern: str) -> re.Match:
        seen = []
        while True:
            line = self.lines.get(timeout=300)
            seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found
            assert line, f"the service ended without saying {pattern!r}: {''.join(seen)[-2000:]}"


def trained_workspace(root: Path) -> Path:
    """``root`` made a workspace with the embedded data and a champion model (``churnops train``)."""
    import pytest

    pytest.importorskip("sklearn", reason="needs: scikit-learn (pip install 'churnops[mlflow]')")
    for args in (["data", "init"], ["train"]):
        done = subprocess.run(
            [sys.executable, "-m", "churnops", "-q", *args], cwd=root, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, done.stderr
    return root


def children_running(pid: int, code: bytes) -> list[int]:
    """The child processes of ``pid`` whose command line holds ``code`` (from ``/proc``)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if code in command:
                found.append(int(child))
    return found
