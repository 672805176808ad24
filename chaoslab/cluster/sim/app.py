"""chaoslab/echo: the built-in workload, one stdlib-only file run as `python app.py`.

Why it exists: an experiment needs a web service whose behaviour is known and tunable
(latency, CPU cost, start-up time, readiness delay, error rate) so that the charts show
the cluster's recovery, not the app's quirks. The same file runs as a simulated pod
(an OS process on a loopback port) and, mounted from a ConfigMap into
`python:3.12-slim`, as a real container; so it imports nothing from chaoslab and reads
its whole configuration from the environment:

  PORT                              port to listen on (default 8080)
  HOST                              address to bind (default 127.0.0.1; a real cluster sets 0.0.0.0)
  POD_NAME, NODE_NAME               echoed by `/` so clients can tell replicas apart
  CHAOSLAB_LATENCY_MS               added latency per `/` request (default 0)
  CHAOSLAB_LATENCY_JITTER_MS        uniform jitter +/- around it (default 0)
  CHAOSLAB_CPU_MS                   busy CPU time per `/` request (default 0)
  CHAOSLAB_STARTUP_SECONDS          sleep before listening (clients are refused meanwhile)
  CHAOSLAB_READINESS_DELAY_SECONDS  `/readyz` answers 503 this long after listening starts
  CHAOSLAB_ERROR_RATE               fraction of `/` requests answered with 500 (0..1)

Endpoints: `/` (JSON with pod and node; any other path is served the same way, so a
load test may name its requests freely), `/healthz` (200), `/readyz` (200 or 503).
SIGTERM/SIGINT: graceful shutdown as a well-behaved container: stop accepting (the
listening socket closes, so late connections are refused), finish in-flight requests,
exit 0. The kubelet (or the simulator) sends SIGKILL if that takes longer than the
grace period.
"""

from __future__ import annotations

import sys

# http.client (imported by http.server) loads `ssl` when it can, which maps OpenSSL and
# costs ~4 MB RSS per process; the app never speaks TLS. Blocking the optional import
# keeps 50 simulated pods well under 1 GB (http.client handles the ImportError itself).
sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]

import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

# Longest time a graceful shutdown waits for in-flight requests; the kubelet's SIGKILL
# after terminationGracePeriodSeconds (default 30 s) is the real bound.
SHUTDOWN_WAIT_SECONDS = 30.0


def _env_float(name: str, default: float = 0.0) -> float:
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    try:
        return float(raw)
    except ValueError:
        print(f"app: ignoring {name}={raw!r}: expected a number", file=sys.stderr)
        return default


class AppState:
    """Configuration and shared counters, one per process."""

    def __init__(self) -> None:
        self.pod = os.environ.get("POD_NAME", "")
        self.node = os.environ.get("NODE_NAME", "")
        self.latency_s = _env_float("CHAOSLAB_LATENCY_MS") / 1000.0
        self.jitter_s = _env_float("CHAOSLAB_LATENCY_JITTER_MS") / 1000.0
        self.cpu_s = _env_float("CHAOSLAB_CPU_MS") / 1000.0
        self.startup_s = _env_float("CHAOSLAB_STARTUP_SECONDS")
        self.readiness_delay_s = _env_float("CHAOSLAB_READINESS_DELAY_SECONDS")
        self.error_rate = min(1.0, max(0.0, _env_float("CHAOSLAB_ERROR_RATE")))
        self.ready_at = float("inf")
        self.terminating = False
        self.rng = random.Random()
        self.in_flight = 0
        self.idle = threading.Condition()
        body = json.dumps({"pod": self.pod, "node": self.node}, separators=(",", ":"))
        self.ok_body = body.encode() + b"\n"


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response carries Content-Length
    disable_nagle_algorithm = True
    server_version = "chaoslab-echo"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """No per-request logging: it would cost more than the request itself."""

    def do_GET(self) -> None:
        self._route(head=False)

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_POST(self) -> None:
        self._drain_body()
        self._route(head=False)

    do_PUT = do_POST
    do_PATCH = do_POST
    do_DELETE = do_POST

    def _drain_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(length)

    def _route(self, head: bool) -> None:
        state: AppState = self.server.app_state  # type: ignore[attr-defined]
        with state.idle:
            state.in_flight += 1
        try:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._reply(200, b"ok\n", "text/plain", head)
            elif path == "/readyz":
                ready = time.monotonic() >= state.ready_at and not state.terminating
                self._reply(200 if ready else 503, b"ready\n" if ready else b"not ready\n", "text/plain", head)
            else:
                self._serve_root(state, head)
        finally:
            with state.idle:
                state.in_flight -= 1
                state.idle.notify_all()

    def _serve_root(self, state: AppState, head: bool) -> None:
        if state.cpu_s > 0:
            # CPU time of this thread, not wall time: concurrent requests share the
            # process's one core (the GIL), so each still costs cpu_s of CPU and a pod
            # saturates at 1 / cpu_s requests per second, as a CPU-bound service does.
            end = time.thread_time() + state.cpu_s
            while time.thread_time() < end:
                pass
        delay = state.latency_s
        if state.jitter_s > 0:
            delay += state.rng.uniform(-state.jitter_s, state.jitter_s)
        if delay > 0:
            time.sleep(delay)
        if state.error_rate > 0 and state.rng.random() < state.error_rate:
            self._reply(500, b'{"error":"injected"}\n', "application/json", head)
        else:
            self._reply(200, state.ok_body, "application/json", head)

    def _reply(self, status: int, body: bytes, content_type: str, head: bool) -> None:
        state: AppState = self.server.app_state  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if state.terminating:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if not head:
            self.wfile.write(body)


class EchoServer(ThreadingHTTPServer):
    daemon_threads = True
    # http.server's default listen backlog is 5: a burst of new connections (20 Locust
    # users starting at once) would overflow it and cost SYN retransmits of 1 s.
    request_queue_size = 1024


def main() -> None:
    state = AppState()
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8080"))
    holder: dict[str, EchoServer] = {}

    def on_signal(signum: int, frame: object) -> None:
        state.terminating = True
        server = holder.get("server")
        if server is None:  # still starting up: nothing to drain
            os._exit(0)
        # shutdown() blocks until serve_forever returns, so it cannot run on this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if state.startup_s > 0:
        time.sleep(state.startup_s)
    server = EchoServer((host, port), EchoHandler)
    server.app_state = state  # type: ignore[attr-defined]
    holder["server"] = server
    state.ready_at = time.monotonic() + state.readiness_delay_s
    if state.terminating:  # a signal arrived while binding
        server.server_close()
        return
    serve_until_stopped(server, state.idle, lambda: state.in_flight)


def serve_until_stopped(server: ThreadingHTTPServer, idle: threading.Condition, in_flight: Callable[[], int]) -> None:
    """Serve until `server.shutdown()`, then wait (bounded) for in-flight requests to end.

    Shared with kv.py: `idle` is notified whenever a request ends, `in_flight` counts them.
    """
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    deadline = time.monotonic() + SHUTDOWN_WAIT_SECONDS
    with idle:
        while in_flight() > 0 and time.monotonic() < deadline:
            idle.wait(0.1)


if __name__ == "__main__":
    main()
