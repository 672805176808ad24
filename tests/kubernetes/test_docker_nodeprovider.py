"""The docker node provider against real Docker containers standing in for nodes.

kind and minikube (--driver=docker) run each Kubernetes node as a Docker container, so
what the provider must get right is Docker's side: kill, pause, unpause and start of a
container named after the node. The harness uses a running Docker daemon if there is
one, else starts `dockerd` (Debian package docker.io) on a private socket with its own
data root, and stops it at the end. No image can be pulled here, so the "node" image is
built with `docker import` from a tarball holding the host's /bin/sleep and the
libraries it links. Skipped, with the reason, when no daemon can run on this machine.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chaoslab.cluster.kube import KubernetesCluster
from chaoslab.cluster.nodeproviders import DockerNodeProvider
from chaoslab.errors import ClusterError
from chaoslab.spec import KubernetesClusterSpec
from tests.kubernetes.conftest import FAST, workload
from tests.kubernetes.fake import FakeKubeApi
from tests.kubernetes.test_faults import fault

IMAGE = "chaoslab-test-node:1"
# dockerd initialises its data root and containerd in 1-3 s; allow for a noisy machine.
DAEMON_START_SECONDS = 60.0
DAEMON_STOP_SECONDS = 30.0


@dataclass(frozen=True)
class Daemon:
    host: str  # DOCKER_HOST value

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKER_HOST": self.host}
        return subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=60, check=check)


def _answers(host: str) -> bool:
    if shutil.which("docker") is None:
        return False
    result = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True, text=True, env={**os.environ, "DOCKER_HOST": host}, timeout=20, check=False,
    )
    return result.returncode == 0


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(DAEMON_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    existing = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if _answers(existing):
        yield Daemon(existing)
        return
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed (Debian: apt-get install docker.io)")
    dockerd = shutil.which("dockerd") or ("/usr/sbin/dockerd" if Path("/usr/sbin/dockerd").exists() else None)
    if dockerd is None:
        pytest.skip("dockerd is not installed (Debian: apt-get install docker.io) and no Docker daemon runs")
    # A short path: the daemon's unix sockets live under it (sun_path is 108 bytes).
    root = Path(tempfile.mkdtemp(prefix="chaoslab-dockerd-"))
    host = f"unix://{root}/docker.sock"
    log = (root / "dockerd.log").open("wb")
    process = subprocess.Popen(
        [
            dockerd,
            "--host", host,
            "--data-root", str(root / "data"),
            "--exec-root", str(root / "exec"),
            "--pidfile", str(root / "docker.pid"),
            # No host change: no firewall rules, no bridge, net.ipv4.ip_forward left alone.
            "--iptables=false", "--ip6tables=false", "--bridge=none", "--ip-forward=false",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + DAEMON_START_SECONDS
        while not _answers(host):
            if process.poll() is not None or time.monotonic() > deadline:
                _stop(process)
                tail = (root / "dockerd.log").read_text(errors="replace")[-1500:]
                pytest.skip(f"dockerd could not start here (no cgroups or permissions?): {tail}")
            time.sleep(0.2)
        yield Daemon(host)
    finally:
        _stop(process)
        log.close()
        shutil.rmtree(root)


def _node_rootfs_tar(directory: Path) -> Path:
    """A root filesystem with the host's /bin/sleep and the shared libraries it needs."""
    sleep = Path(shutil.which("sleep") or "/bin/sleep").resolve()
    libraries = subprocess.run(["ldd", str(sleep)], capture_output=True, text=True, check=True).stdout
    files = [sleep] + [Path(word) for word in libraries.split() if word.startswith("/")]
    tar_path = directory / "rootfs.tar"
    with tarfile.open(tar_path, "w") as tar:
        for path in files:
            target = "bin/sleep" if path == sleep else str(path).lstrip("/")
            tar.add(path.resolve(), arcname=target)
    return tar_path


@pytest.fixture(scope="module")
def node_image(daemon: Daemon, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tar_path = _node_rootfs_tar(tmp_path_factory.mktemp("rootfs"))
    daemon.docker("import", str(tar_path), IMAGE)
    yield IMAGE
    daemon.docker("rmi", "-f", IMAGE, check=False)


@pytest.fixture
def node_containers(daemon: Daemon, node_image: str) -> Iterator[list[str]]:
    """Containers named like the nodes of a 3-node minikube, prefixed for this test."""
    prefix = f"chaoslab-test-{random.getrandbits(24):06x}-"
    names = []
    for node in ("minikube-m02", "minikube-m03"):
        name = prefix + node
        daemon.docker("run", "-d", "--name", name, "--network", "none", node_image, "/bin/sleep", "3600")
        names.append(name)
    yield names
    for name in names:
        daemon.docker("rm", "-f", name, check=False)


def status(daemon: Daemon, container: str) -> str:
    return daemon.docker("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", container).stdout.strip()


def test_kill_pause_unpause_start_through_the_provider(daemon: Daemon, node_containers: list[str]) -> None:
    prefix = node_containers[0].removesuffix("minikube-m02")
    provider = DockerNodeProvider(container=prefix + "{node}", docker_host=daemon.host)
    node = "minikube-m02"
    assert provider.state(node) == "running"

    provider.hang(node)
    assert status(daemon, node_containers[0]) == "paused 0"
    assert provider.state(node) == "paused"
    provider.restore(node)
    assert status(daemon, node_containers[0]) == "running 0"

    provider.crash(node)
    assert status(daemon, node_containers[0]) == "exited 137"  # SIGKILL: a power cut
    assert provider.state(node) == "stopped"
    provider.restore(node)
    assert status(daemon, node_containers[0]) == "running 0"

    provider.restore(node)  # a running node is left alone
    assert status(daemon, node_containers[0]) == "running 0"
    assert status(daemon, node_containers[1]) == "running 0"  # the other node was never touched


def test_a_missing_node_container_says_how_to_name_it(daemon: Daemon) -> None:
    provider = DockerNodeProvider(docker_host=daemon.host)
    with pytest.raises(ClusterError, match=r"no container 'no-such-node'.*nodeProvider.container"):
        provider.state("no-such-node")
    with pytest.raises(ClusterError, match="docker kill no-such-node"):
        provider.crash("no-such-node")


def test_node_crash_on_the_backend_kills_the_node_container_and_teardown_starts_it(
    daemon: Daemon, node_containers: list[str]
) -> None:
    prefix = node_containers[0].removesuffix("minikube-m02")
    provider = DockerNodeProvider(container=prefix + "{node}", docker_host=daemon.host)
    api = FakeKubeApi()
    cluster = KubernetesCluster(
        KubernetesClusterSpec(), api, node_provider=provider, timeouts=FAST, name_suffix=lambda: "d0c4e1", app_source=""
    )
    try:
        deployment = cluster.deploy(workload(replicas=2))
        cluster.wait_ready(deployment, timeout=10)
        injection = cluster.inject(deployment, fault(action="node-crash"), "f0", random.Random(0))
        (node,) = injection.targets
        assert status(daemon, prefix + node) == "exited 137"
        cluster.teardown(deployment)
        assert status(daemon, prefix + node) == "running 0"
    finally:
        cluster.close()
