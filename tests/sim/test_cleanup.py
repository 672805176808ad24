"""Nothing left behind: teardown, close, and the death of the engine process itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

from chaoslab.errors import ClusterError
from chaoslab.spec import NodeHangFault, TargetSpec

from tests.sim.helpers import poll_until, workload


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _listening_ports() -> set[int]:
    return {c.laddr.port for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}


def _is_reaper(process: psutil.Process) -> bool:
    return _runs(process, "reaper.py")


def _is_network_agent(process: psutil.Process) -> bool:
    return _runs(process, "netns_agent.py")


def _runs(process: psutil.Process, script: str) -> bool:
    try:
        return any(part.endswith(script) for part in process.cmdline())
    except psutil.NoSuchProcess:
        return False


def _cluster_ports(cluster, deployment) -> set[int]:
    ports = {int(p.endpoint.rsplit(":", 1)[1]) for p in cluster.pods(deployment) if p.endpoint}
    ports.add(int(cluster.service_url(deployment).rsplit(":", 1)[1]))
    return ports


def _in_namespace(namespace: str) -> list[int]:
    """Every process whose network namespace is `namespace` (`net:[...]`)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/net") == namespace:
                    found.append(int(entry))
            except OSError:
                pass  # gone, or not ours to read
    return found


@pytest.mark.parametrize("proxy_mode", ["nftables", "userspace"])
def test_teardown_and_close_leave_no_process_and_no_listening_socket(make_cluster, rng, proxy_mode):
    cluster = make_cluster(nodes=2, proxy_mode=proxy_mode)
    deployment = cluster.deploy(workload(replicas=4))
    cluster.wait_ready(deployment, timeout=30)
    kernel = proxy_mode == "nftables"
    # On the kernel path the pods listen inside the run's network, invisible from here;
    # what must go is every process in that namespace.
    namespace = cluster.client_network().namespace_id if kernel else ""
    ports = set() if kernel else _cluster_ports(cluster, deployment)
    everything = psutil.Process().children(recursive=True)
    # The reaper outlives teardown (it belongs to the cluster, gone at close), and so
    # does the network agent on the kernel path.
    children = [c for c in everything if not _is_reaper(c) and not _is_network_agent(c)]
    assert len([c for c in children if _alive(c.pid)]) >= (4 if kernel else 5)  # 4 pods (+ the proxy)
    assert len(everything) == len(children) + (2 if kernel else 1)
    assert ports <= _listening_ports()
    if kernel:
        assert {c.pid for c in children} <= set(_in_namespace(namespace))
    # A hung node's processes are stopped: they must still die.
    cluster.inject(deployment, NodeHangFault(action="node-hang", at=0, target=TargetSpec(name="node-1")), "f1", rng)

    cluster.teardown(deployment)
    assert not [c.pid for c in children if _alive(c.pid)], "teardown left pod or proxy processes"
    assert not ports & _listening_ports()
    cluster.close()
    cluster.close()  # idempotent
    assert not [c for c in psutil.Process().children(recursive=True) if _alive(c.pid)]
    if kernel:
        assert not _in_namespace(namespace), "a process is left in the run's network"
    with pytest.raises(ClusterError, match="closed"):
        cluster.deploy(workload())


ENGINE = textwrap.dedent(
    """
    import json, random, signal, sys, time
    from chaoslab.cluster.sim import SimCluster
    from chaoslab.spec import NodeHangFault, SimClusterSpec, TargetSpec, WorkloadSpec

    cluster = SimCluster(SimClusterSpec(nodes=2, timings={"podStartDelay": 0.1}, proxyMode=sys.argv[2]))
    def stop(signum, frame):
        cluster.close()
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    deployment = cluster.deploy(WorkloadSpec.model_validate(json.loads(sys.argv[1])))
    cluster.wait_ready(deployment, 30)
    pods = cluster.pods(deployment)
    network = cluster.client_network()
    kernel = hasattr(network, "namespace_id")
    if kernel:
        # Ready is not yet serving (no readiness probe here): wait until every pod
        # listens, so a forking command has forked (sh starts `sleep` before it execs).
        # Here, because the pods listen inside the run's network.
        for endpoint in [p.endpoint for p in pods]:
            host, port = endpoint.rsplit(":", 1)
            for _ in range(300):
                try:
                    network.connect((host, int(port)), 1.0).close()
                    break
                except OSError:
                    time.sleep(0.1)
    print(json.dumps({
        "url": cluster.service_url(deployment),
        "ports": [] if kernel else [p.endpoint for p in pods],
        "namespace": network.namespace_id if kernel else "",
    }), flush=True)
    if sys.stdin.readline().strip() == "hang":
        # Freeze every node: each pod's process group is stopped and can act on nothing.
        for node in ("node-1", "node-2"):
            cluster.inject(deployment, NodeHangFault(action="node-hang", at=0, target=TargetSpec(name=node)), node, random.Random(0))
        print("hung", flush=True)
    time.sleep(120)
    """
)


# A user's command that forks: a helper in the background, then the server. Only the
# container shim (sim/shim.py) takes the helper down with a SIGKILLed engine.
FORKING = {
    "name": "web",
    "replicas": 3,
    "command": ["/bin/sh", "-c", f"sleep 300 & exec {sys.executable} -m http.server --bind $(HOST) $(PORT)"],
}


@pytest.mark.parametrize(
    ("signum", "spec", "then", "proxy_mode"),
    [
        (signal.SIGKILL, {"name": "web", "replicas": 3}, "", "nftables"),
        (signal.SIGTERM, {"name": "web", "replicas": 3}, "", "nftables"),
        (signal.SIGKILL, FORKING, "", "nftables"),
        (signal.SIGKILL, FORKING, "hang", "nftables"),
        (signal.SIGKILL, {"name": "web", "replicas": 3}, "", "userspace"),
        (signal.SIGKILL, FORKING, "hang", "userspace"),
    ],
    ids=[
        "sigkill",
        "sigterm",
        "sigkill-forking-command",
        "sigkill-forking-command-on-hung-nodes",
        "userspace-sigkill",
        "userspace-sigkill-forking-command-on-hung-nodes",
    ],
)
def test_engine_death_takes_every_pod_and_the_proxy_with_it(signum, spec, then, proxy_mode, tmp_path):
    # The cluster's temporary folder goes too: it lives under this TMPDIR.
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    engine = subprocess.Popen(
        [sys.executable, "-c", ENGINE, json.dumps(spec), proxy_mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, TMPDIR=str(tmpdir)),
    )
    try:
        line = engine.stdout.readline()
        assert line, "the engine did not start its cluster"
        started = json.loads(line)
        ports = {int(endpoint.rsplit(":", 1)[1]) for endpoint in started["ports"]}
        namespace = started["namespace"]
        if not namespace:
            ports.add(int(started["url"].rsplit(":", 1)[1]))
        # Ready is not yet serving (no readiness probe here): wait until every pod listens,
        # so a forking command has forked (sh starts `sleep` before it execs the server).
        poll_until(lambda: ports <= _listening_ports(), 30, "every pod and the proxy listening")
        per_pod = 1 if "command" not in spec else 3  # the app; or shim, server, sleep
        expected = 2 + 3 * per_pod  # the proxy (or the network agent), the reaper, three pods
        tree = psutil.Process(engine.pid)
        descendants = poll_until(
            lambda: (found := [p.pid for p in tree.children(recursive=True)]) and len(found) >= expected and found,
            30,
            f"{expected} processes under the engine",
        )
        engine.stdin.write(then + "\n")
        engine.stdin.flush()
        if then:
            assert engine.stdout.readline().strip() == "hung"
            # SIGSTOP reaches each member of a group when the kernel next schedules it.
            poll_until(
                lambda: len([p for p in descendants if psutil.Process(p).status() == psutil.STATUS_STOPPED]) == 3 * per_pod,
                15,
                "every pod process stopped on its hung node",
            )
        engine.send_signal(signum)
        engine.wait(timeout=30)
        poll_until(lambda: not any(_alive(pid) for pid in descendants), 15, "every simulated process gone")
        poll_until(lambda: not ports & _listening_ports(), 15, "no listening socket left")
        if namespace:
            poll_until(lambda: not _in_namespace(namespace), 15, "no process left in the run's network")
        poll_until(lambda: not any(tmpdir.iterdir()), 15, "the cluster's temporary folder removed")
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
        engine.stdin.close()
        engine.stdout.close()
