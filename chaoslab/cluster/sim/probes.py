"""HTTP probes for the simulated kubelet: real GET requests with real timeouts.

Why it exists: readiness and liveness must see what a real kubelet sees (refused,
timed out, 5xx), yet a hung pod must never stall the control-plane loop. Probes run on
a small thread pool and hand back a future; the kubelet looks at finished futures on
its next tick. On the kernel Service path their sockets are made inside the run's
network (cluster/network.py), where the pod IPs are. Results follow the kubelet's httpGet probe rules: a status in [200, 400)
is success, anything else (or no answer within timeoutSeconds) is failure.
"""

from __future__ import annotations

import http.client
import socket
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from chaoslab.cluster.network import HOST_NETWORK, ClientNetwork, NetworkHTTPConnection

# Concurrent probes in flight. Each probe waits at most its timeoutSeconds (default 1 s),
# so 16 workers cover 50 pods with two probe kinds at periodSeconds >= 1 comfortably.
PROBE_WORKERS = 16


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of one probe: success, and a short reason when it failed."""

    ok: bool
    reason: str = ""


def http_get(host: str, port: int, path: str, timeout: float, network: ClientNetwork = HOST_NETWORK) -> ProbeResult:
    """One kubelet-style httpGet probe."""
    connection = NetworkHTTPConnection(host, port, timeout, network)
    try:
        connection.request("GET", path, headers={"User-Agent": "kube-probe/chaoslab", "Connection": "close"})
        response = connection.getresponse()
        response.read()
    except ConnectionRefusedError:
        return ProbeResult(False, "connection refused")
    except ConnectionResetError:
        return ProbeResult(False, "connection reset")
    except (TimeoutError, socket.timeout):
        return ProbeResult(False, f"timeout after {timeout:g}s")
    except (OSError, http.client.HTTPException) as exc:
        return ProbeResult(False, f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()
    if 200 <= response.status < 400:
        return ProbeResult(True)
    return ProbeResult(False, f"HTTP {response.status}")


class Prober:
    """Runs probes off the control-plane thread."""

    def __init__(self, workers: int = PROBE_WORKERS, network: ClientNetwork = HOST_NETWORK) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sim-probe")
        self.network = network

    def submit(self, host: str, port: int, path: str, timeout: float) -> Future[ProbeResult]:
        return self._pool.submit(http_get, host, port, path, timeout, self.network)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
