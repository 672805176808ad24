"""Observers that run beside the load: the cluster-event recorder and the availability probe.

Both write append-only tables into the trial folder as data arrives, so an interrupted
trial keeps everything observed up to the interrupt. The probe is deliberately independent
of Locust: a fixed-rate stream of fresh connections that shows availability even when the
load generator is saturated or its connections are pinned to healthy pods.
"""

from __future__ import annotations

import errno
import http.client
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from chaoslab.cluster.network import HOST_NETWORK, ClientNetwork, NetworkHTTPConnection
from chaoslab.cluster.base import AUTOSCALER_COLUMNS, EVENT_COLUMNS, Cluster, ClusterEvent, EventKind
from chaoslab.results import PROBE_COLUMNS, CsvAppender
from chaoslab.spec import AvailabilityProbeSpec


class EventRecorder:
    """Drains the cluster's event stream into events.csv and keeps live counters.

    Called from the engine's loop (`drain`), so it needs no thread of its own. The
    backends record fault injections in the same stream, so events.csv is one ordered file.
    """

    def __init__(self, cluster: Cluster, path: Path, autoscaler_path: Path | None = None) -> None:
        self._cluster = cluster
        self._table = CsvAppender(path, EVENT_COLUMNS)
        # autoscaler.csv: opened at the first HPA evaluation, so a trial without one has none.
        self._autoscaler_path = autoscaler_path
        self._autoscaler_table: CsvAppender | None = None
        self._endpoints: set[str] = set()

    @property
    def ready_endpoints(self) -> int:
        """Pods currently in the Service's endpoints, as the event stream tells it."""
        return len(self._endpoints)

    def drain(self) -> list[ClusterEvent]:
        events = sorted(self._cluster.events(), key=lambda e: e.ts)
        for event in events:
            if event.kind is EventKind.ENDPOINT_ADDED:
                self._endpoints.add(event.name)
            elif event.kind is EventKind.ENDPOINT_REMOVED:
                self._endpoints.discard(event.name)
        self._table.write_many(e.row() for e in events)
        if self._autoscaler_path is not None:
            samples = list(self._cluster.autoscaler_samples())
            if samples and self._autoscaler_table is None:
                self._autoscaler_table = CsvAppender(self._autoscaler_path, AUTOSCALER_COLUMNS)
            if self._autoscaler_table is not None:
                self._autoscaler_table.write_many(s.row() for s in samples)
        return events

    def close(self) -> None:
        self._table.close()
        if self._autoscaler_table is not None:
            self._autoscaler_table.close()


@dataclass(frozen=True)
class ProbeResult:
    ts: float
    ok: bool
    latency_ms: float | None
    error: str


def classify_probe_error(exc: BaseException) -> str:
    """Map a client-side failure to the failure classes of load.csv."""
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)):
        return "reset"
    if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        return "refused"
    return "other"


class AvailabilityProbe:
    """A fixed-rate HTTP probe on fresh connections, in a thread, writing probe.csv.

    One request every `interval` on a new connection (as a new client would open), with
    its own timeout; a slow answer delays the next probe rather than piling them up.
    """

    def __init__(
        self,
        url: str,
        spec: AvailabilityProbeSpec,
        path: Path,
        clock: Callable[[], float] = time.time,
        network: ClientNetwork = HOST_NETWORK,
    ) -> None:
        parts = urlsplit(url)
        self._network = network
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._spec = spec
        self._clock = clock
        self._table = CsvAppender(path, PROBE_COLUMNS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaoslab-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def probe_once(self) -> ProbeResult:
        started = self._clock()
        begun = time.monotonic()
        connection = NetworkHTTPConnection(self._host, self._port, self._spec.timeout, self._network)
        try:
            connection.request("GET", self._spec.path, headers={"Connection": "close"})
            response = connection.getresponse()
            response.read()
            latency = (time.monotonic() - begun) * 1000.0
            if response.status >= 500:
                return ProbeResult(started, False, latency, "http_5xx")
            if response.status >= 400:
                return ProbeResult(started, False, latency, "other")
            return ProbeResult(started, True, latency, "")
        except (OSError, http.client.HTTPException) as exc:
            return ProbeResult(started, False, None, classify_probe_error(exc))
        finally:
            connection.close()

    def _run(self) -> None:
        next_due = time.monotonic()
        while not self._stop.is_set():
            result = self.probe_once()
            self._table.write(
                {
                    "ts": round(result.ts, 4),
                    "ok": int(result.ok),
                    "latency_ms": None if result.latency_ms is None else round(result.latency_ms, 3),
                    "error": result.error,
                }
            )
            next_due += self._spec.interval
            delay = next_due - time.monotonic()
            if delay < 0:
                next_due = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._spec.timeout + 2.0)
        self._table.close()
