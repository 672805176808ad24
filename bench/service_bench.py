"""What the simulated Service costs: direct to a pod vs the kernel Service vs the user-space proxy.

Why it exists: issue 15 moved the sim's Service into the kernel (kube-proxy's nftables
rules in the run's private network namespace, cluster/sim/kernelservice.py) because the
user-space proxy (cluster/sim/proxy.py) added milliseconds and a share of a core per
request. This measures both paths side by side in one run, against the same pod reached
directly. Targets (issue 15): added median latency through the Service <= 0.1 ms, paced
and saturated; saturated throughput >= 0.95x direct; no proxy CPU. Nothing is asserted
(shared, noisy machines): the numbers and a PASS/MISS word are printed.

Set-up: two sim clusters at once, one node and one pod of the built-in app each
(`latencyMs: 0`, so only the network path shows):
- `proxyMode: nftables`: the client is forked into the run's network namespace
  (`preexec_fn=cluster.client_network().preexec()`); "direct" is the pod's own IP
  (10.244.1.x:port), "service" the ClusterIP (10.96.0.11:80), rewritten by the kernel;
- `proxyMode: userspace`: the client runs on the host; "direct" is the pod's
  127.0.0.1:port, "service" the proxy's 127.0.0.1:port.
Each Service is compared with direct in the same place, by the same client process
(`client()` below: stdlib, blocking sockets in threads; one process forked into the
namespace, one on the host, each kept for the whole run and told what to do slice by
slice on stdin). Requests are `GET /` with `Connection: close`, a new TCP connection
each (Services balance per connection; the server closes first, so TIME_WAIT stays on
its side and the client never runs out of ports), timed from connect() to the last byte
of the body; and once more over keep-alive connections. 10.x addresses are only ever
used from inside the namespace.

Shapes: paced (one request at a time on a fixed schedule, 200/s: the added median
latency at a modest rate; direct and Service requests alternate one by one in the same
slice, so both see the same machine) and saturated (N threads, no wait: requests/s and
the median latency at that load; one target per slice, the four back to back with direct
next to its Service, the order reversed every other round). Figures are medians over
rounds of each round's paired difference or ratio, so slow drifts of a shared machine
cancel; the spread over rounds is printed beside them.

CPU per request, over the measured windows (all rounds' CPU over all their requests:
/proc counts a process's CPU in 10 ms clock ticks, too coarse for one slice): the proxy
process's own CPU time; on the kernel path there is no proxy process, so it is 0 by
construction. The kernel's NAT and conntrack work is not free, but it runs in the
client's and the pod's system time or in softirq, so the honest cost of a path is the
CPU of all its processes (client + pod + proxy: "path CPU") per request, its extra over
direct, and the machine-wide softirq time per request beside it (other jobs on the
machine add to that one). Where the cores are the limit, capacity goes as 1 / CPU per
request: "CPU-bound capacity" is direct's (path + softirq) over the Service's, a
throughput figure far less disturbed by other jobs' bursts than requests/s.

Where this machine cannot make the run's network (no user namespaces, no nft), the
kernel columns say n/a and the user-space proxy is measured alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from chaoslab.cluster.sim import SimCluster
from chaoslab.errors import ClusterError
from chaoslab.spec import SimClusterSpec, WorkloadSpec

ROOT = Path(__file__).resolve().parents[1]
# Per slice: a warm-up (threads start, connections open), then the measured window.
# Short slices and many rounds: on a shared machine the load of other jobs changes
# within seconds, and only figures measured close together in time compare. Paced
# slices measure both paths at once (requests alternate), so they need fewer rounds.
WARMUP_SECONDS = float(os.environ.get("BENCH_SERVICE_WARMUP", "0.1"))
PACED_WINDOW_SECONDS = float(os.environ.get("BENCH_SERVICE_PACED_SECONDS", "2"))
PACED_ROUNDS = int(os.environ.get("BENCH_SERVICE_PACED_ROUNDS", "12"))
SATURATED_WINDOW_SECONDS = float(os.environ.get("BENCH_SERVICE_SECONDS", "0.5"))
SATURATED_ROUNDS = int(os.environ.get("BENCH_SERVICE_ROUNDS", "40"))
# Paced: one request at a time on a fixed schedule, this many per second in all (direct
# and Service alternate, so each gets half), about what a few users of the demo send.
PACED_RATE = 200.0
# Saturated: this many concurrent connections, each sending as fast as answers come.
SATURATED_CLIENTS = int(os.environ.get("BENCH_SERVICE_CLIENTS", "8"))
REQUEST_TIMEOUT = 5.0
# Targets of issue 15.
TARGET_ADDED_MS = 0.1
TARGET_RATIO = 0.95


# --- the load client (its own process; stdlib only) -------------------------------------


def _read_response(sock: socket.socket, buffer: bytearray) -> None:
    """Read one HTTP response with a Content-Length body; leaves what follows in `buffer`."""
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            break
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        buffer += chunk
    head = bytes(buffer[:end]).lower()
    if not head.startswith(b"http/1.1 200"):
        raise ConnectionError(f"unexpected response {bytes(buffer[:40])!r}")
    length = next(int(line[15:]) for line in head.split(b"\r\n") if line.startswith(b"content-length:"))
    total = end + 4 + length
    while len(buffer) < total:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the end of the body")
        buffer += chunk
    del buffer[:total]


def client() -> None:
    """Load from wherever this process stands, one slice per JSON line on stdin: prints
    `measure` when the slice's window starts, then one JSON line with, per target, the
    window's requests/s, median and p99 latency (ms) and errors, and its own CPU seconds."""
    for line in sys.stdin:
        _slice(json.loads(line))


def _slice(config: dict[str, Any]) -> None:
    addresses = [(host, int(port)) for host, port in config["targets"]]
    keepalive = bool(config["keepalive"])
    workers = int(config["workers"])
    interval = 1.0 / config["rate"] if config["rate"] else 0.0
    close = "" if keepalive else "Connection: close\r\n"
    requests = [f"GET / HTTP/1.1\r\nHost: {host}\r\n{close}\r\n".encode() for host, _ in addresses]
    start = time.perf_counter() + config["warmup"]
    stop_at = start + config["window"]
    stopping = threading.Event()
    latencies: list[list[float]] = [[] for _ in addresses]
    errors = [0 for _ in addresses]
    lock = threading.Lock()

    def work(offset: int) -> None:
        mine: list[list[float]] = [[] for _ in addresses]
        failed = [0 for _ in addresses]
        socks: list[socket.socket | None] = [None for _ in addresses]
        buffers = [bytearray() for _ in addresses]
        due = time.perf_counter()
        count = offset
        while not stopping.is_set():
            index = count % len(addresses)  # several targets: they alternate request by request
            count += 1
            if interval:
                # Open-loop schedule; a slot missed while a request was slow is skipped,
                # not made up for with a burst.
                now = time.perf_counter()
                if due > now:
                    time.sleep(due - now)
                due = max(due + interval, time.perf_counter())
            began = time.perf_counter()
            sock = socks[index]
            try:
                if sock is None:
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    socks[index] = sock
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    sock.settimeout(REQUEST_TIMEOUT)
                    sock.connect(addresses[index])
                    buffers[index].clear()
                sock.sendall(requests[index])
                _read_response(sock, buffers[index])
                finished = time.perf_counter()
                if not keepalive:
                    while sock.recv(65536):  # the server's FIN: it closes first
                        pass
                    sock.close()
                    socks[index] = None
            except OSError:
                failed[index] += start <= began < stop_at
                if socks[index] is not None:
                    socks[index].close()  # type: ignore[union-attr]
                    socks[index] = None
                continue
            if start <= began < stop_at:
                mine[index].append((finished - began) * 1000.0)
        for sock in socks:
            if sock is not None:
                sock.close()
        with lock:
            for index in range(len(addresses)):
                latencies[index] += mine[index]
                errors[index] += failed[index]

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, start - time.perf_counter()))
    cpu_before = time.process_time()
    print("measure", flush=True)
    time.sleep(max(0.0, stop_at - time.perf_counter()))
    cpu = time.process_time() - cpu_before
    stopping.set()
    for thread in threads:
        thread.join(REQUEST_TIMEOUT + 1)
    summaries = []
    for values, failed in zip(latencies, errors):
        values.sort()
        summaries.append(
            {
                "requests": len(values),
                "rps": len(values) / config["window"],
                "errors": failed,
                "median_ms": statistics.median(values) if values else float("nan"),
                "p99_ms": values[int(len(values) * 0.99)] if values else float("nan"),
            }
        )
    print(json.dumps({"targets": summaries, "cpu_s": cpu}), flush=True)


# --- the engine's side ---------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    key: str  # short, for the targets table
    label: str
    workers: int
    rate: float  # for all workers together; 0: no wait
    keepalive: bool

    @property
    def paced(self) -> bool:
        return self.rate > 0

    @property
    def window(self) -> float:
        return PACED_WINDOW_SECONDS if self.paced else SATURATED_WINDOW_SECONDS

    @property
    def rounds(self) -> int:
        return PACED_ROUNDS if self.paced else SATURATED_ROUNDS


def _cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def _softirq_seconds() -> float:
    """Machine-wide time in softirq (/proc/stat), which no process is charged for."""
    with open("/proc/stat") as handle:
        fields = handle.readline().split()
    return int(fields[7]) / os.sysconf("SC_CLK_TCK")


class LoadClient:
    """One client process, on the host or forked into the run's network namespace, kept
    for the whole benchmark: direct and Service are measured by the same process."""

    def __init__(self, preexec: Callable[[], None] | None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from bench.service_bench import client; client()"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=preexec,
        )

    def run(self, targets: list[Target], shape: Shape) -> list[dict[str, float]]:
        """One slice; per target its figures, and CPU per request of the slice's processes."""
        config = {
            "targets": [(target.host, target.port) for target in targets], "keepalive": shape.keepalive,
            "workers": shape.workers, "rate": shape.rate / shape.workers, "warmup": WARMUP_SECONDS,
            "window": shape.window,
        }  # fmt: skip
        pods = {target.pod_pid for target in targets}
        proxies = {target.proxy_pid for target in targets if target.proxy_pid is not None}
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps(config) + "\n")
        stdin.flush()
        line = stdout.readline()
        if line.strip() != "measure":
            raise RuntimeError(f"the load client said {line!r} (exit {self.process.poll()})")
        pod, proxy, softirq = sum(map(_cpu, pods)), sum(map(_cpu, proxies)), _softirq_seconds()
        line = stdout.readline()
        pod, proxy = sum(map(_cpu, pods)) - pod, sum(map(_cpu, proxies)) - proxy
        softirq = _softirq_seconds() - softirq
        if not line:
            raise RuntimeError(f"the load client exited {self.process.poll()}")
        reply = json.loads(line)
        results: list[dict[str, float]] = reply["targets"]
        for result, target in zip(results, targets):
            # Seconds, summed over rounds later: /proc counts a process's CPU in clock
            # ticks (10 ms), too coarse for one slice. The proxy serves only its target.
            result["proxy_s"] = proxy if target.proxy_pid is not None else 0.0
            # Only a slice with one target says what one path costs in all.
            result["path_s"] = reply["cpu_s"] + pod + proxy if len(targets) == 1 else float("nan")
            result["softirq_s"] = softirq if len(targets) == 1 else float("nan")
        return results

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(REQUEST_TIMEOUT + 5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass(frozen=True)
class Target:
    label: str
    host: str
    port: int
    client: LoadClient
    pod_pid: int
    proxy_pid: int | None = None  # the user-space proxy's process


def _pid_of(predicate: Callable[[list[str], dict[str, str]], bool]) -> int:
    for child in psutil.Process().children(recursive=True):
        try:
            if predicate(child.cmdline(), child.environ()):
                return child.pid
        except psutil.Error:
            continue
    raise RuntimeError("process not found among the engine's children")


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _per_request(results: list[dict[str, float]], what: str) -> float:
    """Microseconds of `what` per request over all rounds (NaN when not measured)."""
    return sum(r[what] for r in results) / max(1, sum(int(r["requests"]) for r in results)) * 1e6


def _us(value: float) -> str:
    return "-" if value != value else f"{value:.0f} us"


Runs = dict[str, list[dict[str, float]]]


def _measure(shape: Shape, targets: list[Target], pairs: list[tuple[Target, Target]]) -> Runs:
    """`shape.rounds` rounds of one shape. Paced: each pair in one slice, direct and Service
    alternating request by request. Saturated: one target per slice, in ABBA order."""
    runs: Runs = {target.label: [] for target in targets}
    for round_number in range(shape.rounds):
        forward = round_number % 2 == 0
        if shape.paced:
            for direct, service in pairs if forward else pairs[::-1]:
                both = [direct, service] if forward else [service, direct]
                for target, result in zip(both, direct.client.run(both, shape)):
                    runs[target.label].append(result)
        else:
            for target in targets if forward else targets[::-1]:
                runs[target.label].append(target.client.run([target], shape)[0])
    return runs


def _print_shape(shape: Shape, runs: Runs, pairs: list[tuple[Target, Target]]) -> dict[str, dict[str, float]]:
    """The shape's table and each Service's paired figures (returned for the summary)."""
    median = statistics.median
    how = "direct and Service alternate request by request" if shape.paced else "one target per slice"
    print(f"[{shape.label}] ({how})")
    print(
        f"  {'target':32} {'req/s':>7} {'median':>9} {'p99':>8} {'errors':>6} "
        f"{'proxy CPU':>10} {'path CPU':>9} {'softirq':>8}"
    )
    cpu = {label: {what: _per_request(results, what) for what in ("proxy_s", "path_s", "softirq_s")}
           for label, results in runs.items()}  # fmt: skip
    for label, results in runs.items():
        print(
            f"  {label:32} {median(r['rps'] for r in results):7.0f} "
            f"{median(r['median_ms'] for r in results):7.3f}ms {median(r['p99_ms'] for r in results):6.2f}ms "
            f"{sum(int(r['errors']) for r in results):6d} {_us(cpu[label]['proxy_s']):>10} "
            f"{_us(cpu[label]['path_s']):>9} {_us(cpu[label]['softirq_s']):>8}"
        )
    figures: dict[str, dict[str, float]] = {}
    for direct, service in pairs:
        rounds = list(zip(runs[direct.label], runs[service.label]))
        added_each = [s["median_ms"] - d["median_ms"] for d, s in rounds]
        ratio_each = [s["rps"] / d["rps"] for d, s in rounds]
        d_cpu, s_cpu = cpu[direct.label], cpu[service.label]
        figure = {
            "added_ms": median(added_each),
            "ratio": median(ratio_each),
            "proxy_us": s_cpu["proxy_s"],
            "path_us": s_cpu["path_s"] - d_cpu["path_s"],
            # On a machine whose cores are the limit, capacity goes as 1 / CPU per request:
            # a figure that the other jobs' bursts disturb far less than requests/s.
            "capacity": (d_cpu["path_s"] + d_cpu["softirq_s"]) / (s_cpu["path_s"] + s_cpu["softirq_s"]),
        }
        figures[service.label] = figure
        words = [f"added median {figure['added_ms']:+.3f} ms [rounds {min(added_each):+.3f}..{max(added_each):+.3f}]"]
        if not shape.paced:
            words.append(f"throughput {figure['ratio']:.2f}x direct [rounds {min(ratio_each):.2f}..{max(ratio_each):.2f}]")
            words.append(f"path CPU {figure['path_us']:+.0f} us/request over direct")
            words.append(f"CPU-bound capacity {figure['capacity']:.2f}x direct (1 / (path CPU + softirq))")
        print(f"  {service.label}: " + "; ".join(words))
    return figures


def _print_targets(figures: dict[str, dict[str, dict[str, float]]], kernel: str | None, user: str) -> None:
    """Issue 15's targets beside the measured figures, for both paths (n/a: no kernel path)."""
    print("[targets, issue 15]")
    print(f"  {'':56} {'kernel Service':>20} {'user-space proxy':>20}")

    def row(name: str, cell: Callable[[dict[str, float]], str], key: str) -> None:
        cells = [cell(figures[key][s]) if s is not None else "n/a" for s in (kernel, user)]
        print(f"  {name:56} {cells[0]:>20} {cells[1]:>20}")

    for key in figures:
        row(
            f"added median latency, {key} (<= {TARGET_ADDED_MS:g} ms)",
            lambda f: f"{f['added_ms']:+.3f} ms {_verdict(f['added_ms'] <= TARGET_ADDED_MS)}",
            key,
        )
    saturated = [key for key in figures if key.startswith("saturated")]
    for key in saturated:
        row(
            f"throughput vs direct, {key} (>= {TARGET_RATIO:g}x)",
            lambda f: f"{f['ratio']:.3f}x {_verdict(f['ratio'] >= TARGET_RATIO)}",
            key,
        )
    for key in saturated:
        row(
            f"  the same from CPU per request, {key}",
            lambda f: f"{f['capacity']:.3f}x {_verdict(f['capacity'] >= TARGET_RATIO)}",
            key,
        )
    for key in saturated:
        row(
            f"proxy CPU per request, {key} (none)",
            lambda f: "0: no process PASS" if f["proxy_us"] == 0 else f"{f['proxy_us']:.0f} us MISS",
            key,
        )


def _pod(cluster: SimCluster, name: str) -> tuple[str, int, int, str]:
    """One pod of the built-in app on `cluster`: its address, its process, the Service's URL."""
    deployment = cluster.deploy(WorkloadSpec(name=name, replicas=1, app={"latencyMs": 0}))
    cluster.wait_ready(deployment, timeout=60)
    pod = cluster.pods(deployment)[0]
    pid = _pid_of(lambda argv, env: env.get("POD_NAME") == pod.name)
    ((host, port),) = [endpoint.rsplit(":", 1) for endpoint in cluster.endpoints(deployment)]
    return host, int(port), pid, cluster.service_url(deployment).removeprefix("http://")


def main() -> None:
    targets: list[Target] = []
    with contextlib.ExitStack() as stack:
        userspace = stack.enter_context(SimCluster(SimClusterSpec(nodes=1, proxy_mode="userspace"), seed=16))
        try:
            kernel = stack.enter_context(SimCluster(SimClusterSpec(nodes=1, proxy_mode="nftables"), seed=15))
        except ClusterError as exc:
            kernel = None
            print(f"[service] no kernel Service on this machine, the user-space proxy only: {exc}")
        if kernel is not None:
            network = kernel.client_network()
            print(f"[service] kernel path: {network.description}")
            pod_ip, pod_port, pid, cluster_ip = _pod(kernel, "web-kernel")
            inside = LoadClient(network.preexec())
            stack.callback(inside.close)
            targets += [
                Target(f"direct (netns) {pod_ip}:{pod_port}", pod_ip, pod_port, inside, pid),
                Target(f"kernel Service {cluster_ip}:80", cluster_ip, 80, inside, pid),
            ]
        print(f"[service] user-space path: {userspace.client_network().description}")
        host_ip, host_port, pid, proxy_url = _pod(userspace, "web-userspace")
        proxy_host, _, proxy_port = proxy_url.partition(":")
        if not host_ip == proxy_host == "127.0.0.1":
            raise RuntimeError(f"the user-space path left loopback ({host_ip}, {proxy_host}): not measured")
        proxy_pid = _pid_of(lambda argv, env: any(part.endswith("proxy.py") for part in argv))
        outside = LoadClient(None)
        stack.callback(outside.close)
        targets += [
            Target(f"direct (host) {host_ip}:{host_port}", host_ip, host_port, outside, pid),
            Target(f"user-space proxy {proxy_url}", proxy_host, int(proxy_port), outside, pid, proxy_pid),
        ]
        pairs = list(zip(targets[::2], targets[1::2]))
        print(
            f"  1 pod of the built-in app (latencyMs 0) per cluster; one client process per network (namespace, "
            f"host); {PACED_ROUNDS} rounds of {PACED_WINDOW_SECONDS:g}s paced slices, {SATURATED_ROUNDS} of "
            f"{SATURATED_WINDOW_SECONDS:g}s saturated ones (+{WARMUP_SECONDS:g}s warm-up each), order reversed "
            "every other round. Per target: medians over rounds; per Service: median over rounds of its "
            "difference (ratio) to direct in the same round. CPU per request over the window: proxy = the proxy "
            "process; path = client + pod + proxy processes; softirq = the whole machine's (other jobs included); "
            "all rounds' CPU over all their requests"
        )
        shapes = [
            Shape("paced/new-conn", f"paced {PACED_RATE:.0f} req/s, new connection per request", 1, PACED_RATE, False),
            Shape("saturated/new-conn", f"saturated {SATURATED_CLIENTS} clients, new connection per request",
                  SATURATED_CLIENTS, 0, False),
            Shape("paced/keep-alive", f"paced {PACED_RATE:.0f} req/s, keep-alive", 1, PACED_RATE, True),
            Shape("saturated/keep-alive", f"saturated {SATURATED_CLIENTS} clients, keep-alive", SATURATED_CLIENTS, 0, True),
        ]  # fmt: skip
        figures = {}
        for shape in shapes:
            figures[shape.key] = _print_shape(shape, _measure(shape, targets, pairs), pairs)
            sys.stdout.flush()
        _print_targets(figures, targets[1].label if kernel is not None else None, targets[-1].label)

if __name__ == "__main__":
    main()
