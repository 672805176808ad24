"""chaoslab/kv: the built-in stateful workload, a key-value store that keeps its data on a volume.

Why it exists: to show what a StatefulSet and its volume keep through a fault, the app must
lose exactly what its storage loses and nothing else. So it acknowledges a write only after
the write is appended to a log on its data folder and fsynced (what survives there is what
was acknowledged), rebuilds its memory from that log at start (replay time grows with the
data, as a database's recovery does), and tells clients who it is: pod name, node, the id
of the volume it found (created on the volume's first use) and how often it started on it.

Stdlib only and importing nothing from chaoslab but its sibling `app.py` (chaoslab/echo,
for the server class): the same two files run as a simulated pod and, mounted from a
ConfigMap into a public Python image, as a real container. Configuration, from the
environment:

  PORT, HOST, POD_NAME, NODE_NAME   as for chaoslab/echo
  CHAOSLAB_DATA_DIR                 the volume's folder (a real pod: its mountPath); unset:
                                    nothing persists, /identity says volume null
  CHAOSLAB_REPLAY_MS_PER_WRITE      start-up cost per logged write while replaying (default 0)
  CHAOSLAB_STARTUP_SECONDS          sleep before replaying

Endpoints: `PUT|POST /kv/<key>` (body: the value; 200 once durable), `GET /kv/<key>` (200
with the value, 404 when unknown), `/identity` and `/` (JSON identity), `/healthz`,
`/readyz`. Every answer carries the identity in X-Chaoslab-* headers, so a client learns
with each request which pod, volume and start served it. The port opens only after the
replay: a starting pod refuses, it never answers from half its data.
"""

from __future__ import annotations

import sys

sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]  # see app.py: no TLS, less memory

import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from http.server import BaseHTTPRequestHandler  # noqa: E402
from pathlib import Path  # noqa: E402

from app import EchoServer, _env_float, serve_until_stopped  # noqa: E402

LOG_FILE = "kv.log"
VOLUME_ID_FILE = "volume-id"
STARTS_FILE = "starts"
# Longest key and value a client may send: far above what the data-integrity users send.
MAX_BODY_BYTES = 64 * 1024


def _durable_write(path: Path, text: str) -> None:
    """Replace `path` with `text`, fsynced, atomically (write, fsync, rename, fsync dir)."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class Store:
    """The data, in memory and (when there is a volume) in an fsynced append-only log."""

    def __init__(self, data_dir: str | None, replay_s_per_write: float) -> None:
        self.values: dict[str, str] = {}
        self.lock = threading.Lock()
        self.volume_id: str | None = None
        self.starts = 0
        self._log = None
        if not data_dir:
            return
        folder = Path(data_dir)
        folder.mkdir(parents=True, exist_ok=True)
        id_path = folder / VOLUME_ID_FILE
        if not id_path.exists():
            _durable_write(id_path, uuid.uuid4().hex[:12])
        self.volume_id = id_path.read_text(encoding="utf-8").strip()
        starts_path = folder / STARTS_FILE
        previous = starts_path.read_text(encoding="utf-8").strip() if starts_path.exists() else "0"
        self.starts = (int(previous) if previous.isdigit() else 0) + 1
        _durable_write(starts_path, str(self.starts))
        log_path = folder / LOG_FILE
        self._replay(log_path, replay_s_per_write)
        self._log = log_path.open("a", encoding="utf-8")

    def _replay(self, log_path: Path, seconds_per_write: float) -> None:
        """Rebuild memory from the log; a torn last record (never acknowledged: the write
        died before its fsync returned) is cut off, so later appends start on a clean line."""
        if not log_path.exists():
            return
        complete = 0
        with log_path.open("rb") as handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    break
                record = json.loads(line)
                self.values[record["k"]] = record["v"]
                complete += len(line)
                if seconds_per_write > 0:
                    time.sleep(seconds_per_write)
        if complete < log_path.stat().st_size:
            with log_path.open("r+b") as handle:
                handle.truncate(complete)
                os.fsync(handle.fileno())

    def put(self, key: str, value: str) -> None:
        """Store durably; returns only once the record is on the volume (fsync)."""
        with self.lock:
            if self._log is not None:
                self._log.write(json.dumps({"k": key, "v": value}, separators=(",", ":")) + "\n")
                self._log.flush()
                os.fsync(self._log.fileno())
            self.values[key] = value

    def get(self, key: str) -> str | None:
        with self.lock:
            return self.values.get(key)


class KvState:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.pod = os.environ.get("POD_NAME", "")
        self.node = os.environ.get("NODE_NAME", "")
        self.terminating = False
        self.in_flight = 0
        self.idle = threading.Condition()

    def identity(self) -> dict[str, object]:
        return {
            "pod": self.pod,
            "node": self.node,
            "volume": self.store.volume_id,
            "starts": self.store.starts,
            "keys": len(self.store.values),
        }


class KvHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "chaoslab-kv"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """No per-request logging."""

    def do_GET(self) -> None:
        self._handle(write=False)

    def do_PUT(self) -> None:
        self._handle(write=True)

    do_POST = do_PUT

    def _handle(self, write: bool) -> None:
        state: KvState = self.server.app_state  # type: ignore[attr-defined]
        with state.idle:
            state.in_flight += 1
        try:
            self._route(state, write)
        finally:
            with state.idle:
                state.in_flight -= 1
                state.idle.notify_all()

    def _route(self, state: KvState, write: bool) -> None:
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._reply(state, 413, {"error": "body too large"})
            return
        body = self.rfile.read(length).decode("utf-8", errors="replace") if length > 0 else ""
        if path.startswith("/kv/") and len(path) > 4:
            key = path[4:]
            if write:
                state.store.put(key, body)
                self._reply(state, 200, {"ok": True, "key": key})
                return
            value = state.store.get(key)
            if value is None:
                self._reply(state, 404, {"error": "not found", "key": key})
            else:
                self._reply(state, 200, {"key": key, "value": value})
        elif path == "/healthz":
            self._reply(state, 200, {"ok": True})
        elif path == "/readyz":
            self._reply(state, 503 if state.terminating else 200, {"ready": not state.terminating})
        else:
            self._reply(state, 200, state.identity())

    def _reply(self, state: KvState, status: int, payload: dict[str, object]) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Chaoslab-Pod", state.pod)
        self.send_header("X-Chaoslab-Node", state.node)
        self.send_header("X-Chaoslab-Volume", state.store.volume_id or "")
        self.send_header("X-Chaoslab-Starts", str(state.store.starts))
        if state.terminating:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    holder: dict[str, EchoServer] = {}
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()
        server = holder.get("server")
        if server is None:  # still replaying: nothing acknowledged is in flight
            os._exit(0)
        server.app_state.terminating = True  # type: ignore[attr-defined]
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    startup = _env_float("CHAOSLAB_STARTUP_SECONDS")
    if startup > 0:
        time.sleep(startup)
    store = Store(os.environ.get("CHAOSLAB_DATA_DIR"), _env_float("CHAOSLAB_REPLAY_MS_PER_WRITE") / 1000.0)
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8080"))
    server = EchoServer((host, port), KvHandler)
    state = KvState(store)
    server.app_state = state  # type: ignore[attr-defined]
    holder["server"] = server
    if stopping.is_set():
        server.server_close()
        return
    serve_until_stopped(server, state.idle, lambda: state.in_flight)


if __name__ == "__main__":
    main()
