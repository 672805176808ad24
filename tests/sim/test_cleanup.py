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


def _cluster_ports(cluster, deployment) -> set[int]:
    ports = {int(p.endpoint.rsplit(":", 1)[1]) for p in cluster.pods(deployment) if p.endpoint}
    ports.add(int(cluster.service_url(deployment).rsplit(":", 1)[1]))
    return ports


def test_teardown_and_close_leave_no_process_and_no_listening_socket(make_cluster, rng):
    cluster = make_cluster(nodes=2)
    deployment = cluster.deploy(workload(replicas=4))
    cluster.wait_ready(deployment, timeout=30)
    ports = _cluster_ports(cluster, deployment)
    children = psutil.Process().children(recursive=True)
    assert len([c for c in children if _alive(c.pid)]) >= 5  # 4 pods + the proxy
    assert ports <= _listening_ports()
    # A hung node's processes are stopped: they must still die.
    cluster.inject(deployment, NodeHangFault(action="node-hang", at=0, target=TargetSpec(name="node-1")), "f1", rng)

    cluster.teardown(deployment)
    assert not [c.pid for c in children if _alive(c.pid)], "teardown left pod or proxy processes"
    assert not ports & _listening_ports()
    cluster.close()
    cluster.close()  # idempotent
    assert not [c for c in psutil.Process().children(recursive=True) if _alive(c.pid)]
    with pytest.raises(ClusterError, match="closed"):
        cluster.deploy(workload())


ENGINE = textwrap.dedent(
    """
    import json, signal, sys, time
    from chaoslab.cluster.sim import SimCluster
    from chaoslab.spec import SimClusterSpec, WorkloadSpec

    cluster = SimCluster(SimClusterSpec(nodes=2, timings={"podStartDelay": 0.1}))
    def stop(signum, frame):
        cluster.close()
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    deployment = cluster.deploy(WorkloadSpec.model_validate(json.loads(sys.argv[1])))
    cluster.wait_ready(deployment, 30)
    pods = cluster.pods(deployment)
    print(json.dumps({"url": cluster.service_url(deployment), "ports": [p.endpoint for p in pods]}), flush=True)
    time.sleep(120)
    """
)


# A user's command that forks: a helper in the background, then the server. Only the
# container shim (sim/shim.py) takes the helper down with a SIGKILLed engine.
FORKING = {
    "name": "web",
    "replicas": 3,
    "command": ["/bin/sh", "-c", f"sleep 300 & exec {sys.executable} -m http.server --bind 127.0.0.1 $(PORT)"],
}


@pytest.mark.parametrize(
    ("signum", "spec"),
    [
        (signal.SIGKILL, {"name": "web", "replicas": 3}),
        (signal.SIGTERM, {"name": "web", "replicas": 3}),
        (signal.SIGKILL, FORKING),
    ],
    ids=["sigkill", "sigterm", "sigkill-forking-command"],
)
def test_engine_death_takes_every_pod_and_the_proxy_with_it(signum, spec):
    engine = subprocess.Popen(
        [sys.executable, "-c", ENGINE, json.dumps(spec)], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        line = engine.stdout.readline()
        assert line, "the engine did not start its cluster"
        started = json.loads(line)
        ports = {int(endpoint.rsplit(":", 1)[1]) for endpoint in started["ports"]}
        ports.add(int(started["url"].rsplit(":", 1)[1]))
        descendants = [p.pid for p in psutil.Process(engine.pid).children(recursive=True)]
        assert len(descendants) >= (4 if "command" not in spec else 1 + 3 * 3)  # proxy; shim, server, sleep
        engine.send_signal(signum)
        engine.wait(timeout=30)
        poll_until(lambda: not any(_alive(pid) for pid in descendants), 15, "every simulated process gone")
        poll_until(lambda: not ports & _listening_ports(), 15, "no listening socket left")
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
        engine.stdout.close()
