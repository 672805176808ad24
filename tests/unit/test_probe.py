"""The availability probe classifies real client failures like load.csv does."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd

from chaoslab.observe import AvailabilityProbe
from chaoslab.spec import AvailabilityProbeSpec


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        status = 500 if self.path == "/broken" else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_probe_results_and_classes(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers: a hung pod
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        spec = AvailabilityProbeSpec(interval=0.05, timeout=0.3)
        probe = AvailabilityProbe(url, spec, tmp_path / "probe.csv")
        assert probe.probe_once().ok
        assert AvailabilityProbe(url, spec.model_copy(update={"path": "/broken"}), tmp_path / "b.csv").probe_once().error == "http_5xx"
        assert AvailabilityProbe(f"http://127.0.0.1:{_free_port()}", spec, tmp_path / "r.csv").probe_once().error == "refused"
        hung = AvailabilityProbe(f"http://127.0.0.1:{silent.getsockname()[1]}", spec, tmp_path / "t.csv").probe_once()
        assert hung.error == "timeout" and not hung.ok

        probe.start()
        threading.Event().wait(0.5)
        probe.stop()
        table = pd.read_csv(tmp_path / "probe.csv")
        assert list(table.columns) == ["ts", "ok", "latency_ms", "error"]
        assert 4 <= len(table) <= 12 and table["ok"].all()
    finally:
        server.shutdown()
        server.server_close()
        silent.close()
