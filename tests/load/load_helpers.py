"""Real local HTTP servers and a helper that runs real Locust through `LoadRun`.

(Helpers for tests/load; the fixtures that use them are in conftest.py.)

The server misbehaves on purpose by path, so one Locust run can meet every failure class:
  /ok           200
  /status/500   500
  /reset        accepts the request, then closes the connection with a TCP RST
  /hang         never answers (until the test ends)
Every request is counted by path on the server side, the ground truth the buckets are
checked against.
"""

from __future__ import annotations

import os
import socket
import sys
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from chaoslab.load.runner import LoadRun
from chaoslab.load.stream import Bucket
from chaoslab.spec import LoadSpec

# Linger on with a zero timeout: close() sends RST instead of FIN.
_LINGER_RST = struct.pack("ii", 1, 0)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real service
    disable_nagle_algorithm = True
    server: LoadTestServer

    def do_GET(self) -> None:
        self.server.respond(self)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # one line per request would drown the test output


class LoadTestServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: users connecting at once would see dropped SYNs
    # and 1 s connect delays (the SYN retransmit) that no real server causes.
    request_queue_size = 128

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def count(self, path: str) -> int:
        with self._lock:
            return self.counts[path]

    def respond(self, handler: _Handler) -> None:
        path = urlsplit(handler.path).path
        with self._lock:
            self.counts[path] += 1
        if path == "/reset":
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            handler.connection.close()
            handler.close_connection = True
            return
        if path == "/hang":
            self._release.wait(timeout=60)
            handler.close_connection = True
            return
        status = 500 if path == "/status/500" else 200
        body = b"ok\n" if status == 200 else b"boom\n"
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)

    def handle_error(self, request: object, client_address: object) -> None:
        # Locust drops its connections when it stops: broken pipes and resets are expected.
        if isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]

    def __enter__(self) -> LoadTestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=10)


@dataclass(frozen=True)
class Finished:
    rows: list[Bucket]
    run: LoadRun
    trial: Path


def group_processes(pgid: int) -> list[psutil.Process]:
    """Live processes of process group `pgid` (Locust's master and workers)."""
    found = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return found


def wait_until(condition: Callable[[], object], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())


def run_load(
    load: LoadSpec,
    url: str,
    trial: Path,
    seconds: float,
    *,
    experiment_dir: Path | None = None,
    bucket: float = 0.1,
    during: Callable[[LoadRun], object] | None = None,
    stages_start: float | None = None,
) -> Finished:
    """Run Locust through LoadRun for `seconds`, polling as the engine does, then stop it.

    during: optional callable(run) called once, half way through.
    """
    run = LoadRun(
        load, url, bucket, trial, seed=7, experiment_dir=experiment_dir or trial.parent, stages_start=stages_start
    )
    rows: list[Bucket] = []
    run.start()
    try:
        halfway = time.monotonic() + seconds / 2
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            rows += run.poll()
            if during is not None and time.monotonic() >= halfway:
                during(run)
                during = None
            time.sleep(0.1)
    finally:
        rows += run.stop()
    return Finished(rows=rows, run=run, trial=trial)
