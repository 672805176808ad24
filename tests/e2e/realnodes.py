"""Real Kubernetes worker nodes in Docker containers, for the real-node end-to-end tests.

Why it exists: the KWOK nodes of localcluster.py run no container, so they cannot show a
pod being probed, `container-kill` by exec, endpoints following real readiness,
kube-proxy routing a NodePort, or a node killed with `docker kill` coming back. Here each
node is a Docker container running containerd, runc, the CNI bridge plugin, a kubelet
and kube-proxy, registered with localcluster.py's control plane (started without KWOK
nodes): one control-plane node (tainted NoSchedule, the load's entry point, as in kind)
and N workers, named like kind's, so the backend's `docker` node provider crashes
(`docker kill`), hangs (`docker pause`) and restores them as it does on kind.

Nothing is pulled from any registry. Built once into a cache folder (keyed, under a
lock, renamed into place when complete), like the control plane's binaries:
- kubelet and kube-proxy, from the same Go module (tests/e2e/build) and build cache;
- a Debian root filesystem for the nodes, made with `mmdebstrap` from the apt sources
  this machine already uses (read when the image is built; no package host is written
  in the repository), `docker import`ed at `up`;
- pod images in `docker save` format, imported into each node's containerd: a static
  pause binary (the sandbox), a Python image for the built-in app
  (`cluster.kubernetes.pythonImage`), and a busybox httpd image for user workloads.

What it touches on the host, and nothing else:
- its own `dockerd` (private socket and data root in the state folder; no iptables
  rules, no ip_forward change, no docker0), so the host's nft ruleset stays as it was;
- one internal Docker bridge network with its own subnet (no default route: the nodes
  reach only each other and this host's bridge address), fixed node addresses;
- a TCP forwarder on that bridge address to the API server (which binds 127.0.0.1);
- kernel-wide sysctls the kubelet wants (vm.overcommit_memory, kernel.panic,
  kernel.panic_on_oops, ...): each node bind-mounts a file holding the kubelet's value
  over /proc/sys/<key>, so the kubelet finds what it wants and never writes the host's.
  `up` records the host's values and fails if one changed; `down` restores them.
Everything is recorded in the state folder and removed by `down`, also after a failure.

Usage (the Makefile's e2e-nodes target calls these):
    python tests/e2e/realnodes.py build                build what is not cached
    python tests/e2e/realnodes.py up [--workers 3]     build if needed, start control plane + nodes
    python tests/e2e/realnodes.py down                 remove everything `up` made
    python tests/e2e/realnodes.py status | logs | env | host-state

Standard library only (and localcluster.py beside it), like localcluster.py. What is built
lives in nodeimages.py, each node's configuration in nodeconfig.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

if __package__:  # imported by the tests (tests.e2e.realnodes)
    from . import localcluster as lc
else:  # run as a script, before any virtualenv exists
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import localcluster as lc  # noqa: E402

if __package__:
    from .nodeconfig import KUBELET_SYSCTLS, NODE_LEASE_SECONDS, POD_CIDR, NodeRecord, write_node_config
    from .nodeimages import (
        NODE_RECIPE, PAUSE_IMAGE, PYTHON_IMAGE, WORKLOAD_IMAGE, WORKLOAD_PORT, NodeArtifacts, build, write_docker_archive,
    )
else:
    from nodeconfig import KUBELET_SYSCTLS, NODE_LEASE_SECONDS, POD_CIDR, NodeRecord, write_node_config  # noqa: E402
    from nodeimages import (  # noqa: E402
        NODE_RECIPE, PAUSE_IMAGE, PYTHON_IMAGE, WORKLOAD_IMAGE, WORKLOAD_PORT, NodeArtifacts, build, write_docker_archive,
    )

__all__ = [  # what the tests use from here, wherever it is defined
    "KUBELET_SYSCTLS", "NODE_RECIPE", "PAUSE_IMAGE", "PYTHON_IMAGE", "WORKLOAD_IMAGE", "NodeRecord", "State",
    "write_docker_archive", "write_node_config",
]

NODE_IMAGE_REPO = "chaoslab-e2e/node"
# Docker labels on everything made, so `down` and the tests can find exactly it.
OWNER_LABEL = "chaoslab.e2e/owner"
DEFAULT_WORKERS = 3
# The node network: a /24 out of this range that no host route overlaps; the host's
# bridge address is .1, the control-plane node .10, workers .11, .12, ...
NODE_SUBNET_CANDIDATES = tuple(f"172.28.{i}.0/24" for i in range(200, 250))
FIRST_NODE_HOST = 10
# Other host sysctls a node could reach (conntrack sizing, forwarding): recorded and
# checked too. kube-proxy is told not to touch conntrack (maxPerCore 0, timeouts 0).
WATCHED_SYSCTLS = (*KUBELET_SYSCTLS, "net/ipv4/ip_forward", "net/netfilter/nf_conntrack_max")
# cgroup v1 cpu.shares of the nodes' parent cgroup, per node. Docker's default parent
# (/docker, 1024) would make all nodes and their pods together weigh as much as ONE
# process of the host: on a busy shared machine they would get a sliver of the CPU that
# sim's pods (plain processes) get, and scaling out could not add any. Each node weighs
# as two host processes instead, as if it brought some CPU of its own.
CPU_SHARES_PER_NODE = 2048
# Bounds, generous for a shared 2-core machine.
DOCKERD_READY_SECONDS = 60.0
NODES_READY_SECONDS = 180.0
SMOKE_SECONDS = 120.0
DOCKER_TIMEOUT_SECONDS = 300.0


class RealNodesError(lc.LocalClusterError):
    """Something a person has to look at: the message says what and where."""


# --- settings and state ----------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """state.json of the real-node cluster: what `down` must remove."""

    state_dir: str
    control_plane_dir: str  # localcluster.py's state folder for etcd and the control plane
    kubeconfig: str
    context: str
    docker_host: str
    network: str
    subnet: str
    gateway: str
    bridge: str
    node_image: str
    cgroup: str = ""  # the nodes' parent cgroup (a name under each /sys/fs/cgroup hierarchy)
    nodes: tuple[NodeRecord, ...] = ()
    processes: tuple[lc.ProcessRecord, ...] = ()  # dockerd, the API forwarder
    host_sysctls: tuple[tuple[str, str], ...] = ()
    host_nft: str = ""  # `nft list ruleset` before anything started
    ready: bool = False
    timings: tuple[tuple[str, float], ...] = ()

    @property
    def workers(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes if not n.control_plane)

    @property
    def control_plane_node(self) -> str:
        return next(n.name for n in self.nodes if n.control_plane)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "format": 1}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> State:
        return State(
            **{k: data[k] for k in ("state_dir", "control_plane_dir", "kubeconfig", "context", "docker_host",
                                    "network", "subnet", "gateway", "bridge", "node_image")},
            cgroup=data.get("cgroup", ""),
            nodes=tuple(NodeRecord(**n) for n in data["nodes"]),
            processes=tuple(lc.ProcessRecord.from_json(p) for p in data["processes"]),
            host_sysctls=tuple((k, v) for k, v in data["host_sysctls"]),
            host_nft=data["host_nft"],
            ready=bool(data["ready"]),
            timings=tuple((k, float(v)) for k, v in data["timings"]),
        )


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """One folder per checkout, short (dockerd's unix sockets live in it: 108 bytes)."""
    return lc.checkout_state_dir(environ, "CHAOSLAB_K8S_NODES_DIR", "chaoslab-nodes")


def read_state(state_dir: Path) -> State | None:
    return lc.read_state_file(state_dir, State.from_json, RealNodesError)


def write_state(state: State) -> None:
    lc.write_state_file(Path(state.state_dir), state.to_json())


# --- host state: what must be the same after the suite ------------------------------------


def read_sysctls(keys: Sequence[str] = WATCHED_SYSCTLS) -> dict[str, str]:
    values = {}
    for key in keys:
        try:
            values[key] = Path("/proc/sys", key).read_text().strip()
        except OSError:
            continue  # not on this kernel
    return values


def nft_ruleset() -> str:
    """The host's nft ruleset (`nft list ruleset`), or a note when nft is missing."""
    if shutil.which("nft") is None:
        return "(nft not installed)"
    result = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=False)
    return result.stdout if result.returncode == 0 else f"(nft failed: {result.stderr.strip()})"


def host_links() -> list[str]:
    return sorted(p.name for p in Path("/sys/class/net").iterdir())


def host_cgroups() -> list[str]:
    """Top-level cgroups of every hierarchy (the nodes' parent must be gone after)."""
    root = Path("/sys/fs/cgroup")
    if not root.is_dir():
        return []
    return sorted(f"{h.name}/{c.name}" for h in root.iterdir() if h.is_dir() for c in h.iterdir() if c.is_dir())


def host_snapshot() -> dict[str, Any]:
    """What the suite must leave unchanged on the host: sysctls, nft ruleset, links, cgroups."""
    return {"sysctls": read_sysctls(), "nft": nft_ruleset(), "links": host_links(), "cgroups": host_cgroups()}


def compare_host(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What differs between two host snapshots, said for a person."""
    differences = [f"sysctl {k.replace('/', '.')}: {v} -> {after['sysctls'].get(k)}"
                   for k, v in before["sysctls"].items() if after["sysctls"].get(k) != v]
    if before["nft"] != after["nft"]:
        differences.append(f"nft ruleset changed:\n--- before\n{before['nft']}\n--- after\n{after['nft']}")
    added = sorted(set(after["links"]) - set(before["links"]))
    removed = sorted(set(before["links"]) - set(after["links"]))
    if added or removed:
        differences.append(f"network links added {added}, removed {removed}")
    left = sorted(set(after.get("cgroups", ())) - set(before.get("cgroups", ())))
    if left:
        differences.append(f"cgroups left behind: {left}")
    return differences


# --- the private Docker daemon -------------------------------------------------------------


class Docker:
    """The docker CLI on our own daemon's socket."""

    def __init__(self, host: str, environ: Mapping[str, str]) -> None:
        self.host = host
        self._env = {**environ, "DOCKER_HOST": host}

    def run(self, *args: str, check: bool = True, timeout: float = DOCKER_TIMEOUT_SECONDS) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run(["docker", *args], capture_output=True, text=True, env=self._env, timeout=timeout, check=False)
        except FileNotFoundError as exc:
            raise RealNodesError("the docker CLI is not installed (Debian: apt-get install docker.io)") from exc
        except subprocess.TimeoutExpired as exc:
            raise RealNodesError(f"`docker {' '.join(args[:3])}` did not finish within {timeout:g}s") from exc
        if check and result.returncode != 0:
            raise RealNodesError(f"`docker {' '.join(args)}` failed: {result.stderr.strip() or result.stdout.strip()}")
        return result

    def answers(self) -> bool:
        try:
            return self.run("version", "--format", "{{.Server.Version}}", check=False, timeout=20).returncode == 0
        except RealNodesError:
            return False


def dockerd_argv(state_dir: Path, environ: Mapping[str, str]) -> list[str]:
    dockerd = shutil.which("dockerd", path=environ.get("PATH")) or (
        "/usr/sbin/dockerd" if Path("/usr/sbin/dockerd").exists() else None
    )
    if dockerd is None:
        raise RealNodesError("real nodes need Docker: dockerd is not installed (Debian: apt-get install docker.io)")
    return [
        dockerd,
        "--host", f"unix://{state_dir}/docker.sock",
        "--data-root", str(state_dir / "docker"),
        "--exec-root", str(state_dir / "docker-exec"),
        "--pidfile", str(state_dir / "docker.pid"),
        # Leave the host's tables, forwarding and links alone: no NAT or isolation rules,
        # no ip_forward=1, no docker0. Our network is internal anyway.
        "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none",
        "--userland-proxy=false",
    ]


def start_dockerd(state_dir: Path, environ: Mapping[str, str]) -> tuple[lc.ProcessRecord, Docker]:
    if shutil.which("docker", path=environ.get("PATH")) is None:
        raise RealNodesError("real nodes need Docker: the docker CLI is not installed (Debian: apt-get install docker.io)")
    record = lc.start_process("dockerd", dockerd_argv(state_dir, environ), state_dir, environ)
    docker = Docker(f"unix://{state_dir}/docker.sock", environ)
    deadline = time.monotonic() + DOCKERD_READY_SECONDS
    while not docker.answers():
        if not lc.is_ours(record) or time.monotonic() > deadline:
            tail = Path(record.log).read_text(errors="replace")[-2000:]
            lc.stop_processes([record], lambda _: None)
            raise RealNodesError(f"containers cannot run here: dockerd did not start (log {record.log}):\n{tail}")
        time.sleep(0.2)
    return record, docker


def node_run_args(node: NodeRecord, state: State, folder: Path, found: NodeArtifacts) -> list[str]:
    """`docker run` for one node. --privileged fails on this kind of machine (runc cannot
    grant CAP_SYS_RESOURCE, missing from the bounding set), so: every other capability,
    no seccomp/AppArmor filter, /proc and /sys unmasked, every device."""
    return [
        # --pull never: the image was imported; no registry is ever asked.
        "run", "--detach", "--pull", "never", "--name", node.name, "--hostname", node.name,
        "--label", f"{OWNER_LABEL}={state.state_dir}",
        "--network", state.network, "--ip", node.address,
        "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--cap-drop", "SYS_MODULE",
        "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
        "--security-opt", "systempaths=unconfined",
        "--device-cgroup-rule", "a *:* rwm", "--device", "/dev/kmsg",
        "--cgroupns", "private", "--cgroup-parent", f"/{state.cgroup}", "--cpu-shares", str(CPU_SHARES_PER_NODE),
        "--tmpfs", "/run", "--tmpfs", "/tmp",
        "--volume", f"{node.name}-containerd:/var/lib/containerd",
        "--volume", f"{folder / 'conf'}:/etc/chaoslab:ro",
        "--volume", f"{folder / 'logs'}:/var/log/chaoslab",
        "--volume", f"{found.bin}:/opt/chaoslab/bin:ro",
        "--volume", f"{found.images}:/opt/chaoslab/images:ro",
        "--entrypoint", "/etc/chaoslab/entrypoint.sh",
        state.node_image,
    ]


# --- the API forwarder -------------------------------------------------------------------


def forward(listen: str, target: str) -> None:
    """Relay TCP connections from `listen` (host:port) to `target`: the nodes' way to the
    API server, which binds loopback only. Runs until killed."""
    host, port = listen.rsplit(":", 1)
    target_host, target_port = target.rsplit(":", 1)
    server = socket.create_server((host, int(port)), backlog=128)

    def relay(client: socket.socket) -> None:
        try:
            upstream = socket.create_connection((target_host, int(target_port)), timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        try:
            while True:
                for key, _ in selector.select():
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            client.close()
            upstream.close()

    while True:
        client, _ = server.accept()
        threading.Thread(target=relay, args=(client,), daemon=True).start()


def free_port_on(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


# --- up / down ---------------------------------------------------------------------------


def _routes() -> list[tuple[int, int]]:
    """(network, mask) of every IPv4 route of the host, from /proc/net/route."""
    found = []
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        parts = line.split()
        destination, mask = int(parts[1], 16), int(parts[7], 16)
        if mask:  # the default route overlaps everything by definition; skip it
            found.append((socket.ntohl(destination), socket.ntohl(mask)))
    return found


def _overlaps(cidr: str, routes: Sequence[tuple[int, int]]) -> bool:
    base, bits = cidr.split("/")
    network = int.from_bytes(socket.inet_aton(base), "big")
    mask = (0xFFFFFFFF << (32 - int(bits))) & 0xFFFFFFFF
    return any((network & m) == (r & m) or (network & mask) == (r & mask) for r, m in routes for m in [min(m, mask)])


def choose_subnet(state_dir: Path) -> str:
    routes = _routes()
    for cidr in (POD_CIDR, lc.SERVICE_CIDR):
        if _overlaps(cidr, routes):
            raise RealNodesError(f"the pod or service range {cidr} overlaps a route of this host; nodes would shadow it")
    start = int(hashlib.sha256(str(state_dir).encode()).hexdigest(), 16) % len(NODE_SUBNET_CANDIDATES)
    for offset in range(len(NODE_SUBNET_CANDIDATES)):
        cidr = NODE_SUBNET_CANDIDATES[(start + offset) % len(NODE_SUBNET_CANDIDATES)]
        if not _overlaps(cidr, routes):
            return cidr
    raise RealNodesError(f"every candidate node subnet ({NODE_SUBNET_CANDIDATES[0]}...) overlaps a host route")


def up(state_dir: Path, workers: int, environ: Mapping[str, str], log: Callable[[str], None] = print) -> State:
    found = build(environ, log)
    with lc.locked(_lock_path(state_dir, environ)):
        existing = read_state(state_dir)
        if existing is not None and existing.ready and all(lc.is_ours(r) for r in existing.processes):
            log(f"already running: {existing.kubeconfig}")
            return existing
        if existing is not None or state_dir.exists():
            log(f"cleaning up previous real nodes in {state_dir}")
            _down_locked(state_dir, environ, log)
        state_dir.mkdir(mode=0o700, parents=True)
        try:
            return _start(state_dir, workers, found, environ, log)
        except BaseException:
            log("the real nodes did not come up; last log lines:")
            print_logs(read_state(state_dir), log, lines=20)
            _down_locked(state_dir, environ, log)
            raise


def _start(state_dir: Path, workers: int, found: NodeArtifacts, environ: Mapping[str, str], log: Callable[[str], None]) -> State:
    started = time.monotonic()
    timings: list[tuple[str, float]] = []

    def mark(what: str) -> None:
        timings.append((what, round(time.monotonic() - started, 1)))

    before = read_sysctls()
    subnet = choose_subnet(state_dir)
    prefix = subnet.rsplit(".", 1)[0]
    gateway = f"{prefix}.1"
    digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:8]
    names = [lc.CONTROL_PLANE_NODE, *(f"{lc.CLUSTER_NAME}-worker-{i}" for i in range(1, workers + 1))]
    nodes = tuple(
        NodeRecord(name=name, address=f"{prefix}.{FIRST_NODE_HOST + i}", pod_cidr=f"10.244.{i}.0/24", control_plane=i == 0)
        for i, name in enumerate(names)
    )
    state = State(
        state_dir=str(state_dir), control_plane_dir=str(state_dir / "cp"), kubeconfig=str(state_dir / "cp" / "kubeconfig"),
        context=lc.CONTEXT, docker_host=f"unix://{state_dir}/docker.sock", network=f"chaoslab-e2e-{digest}",
        subnet=subnet, gateway=gateway, bridge=f"clab-{digest}", node_image=f"{NODE_IMAGE_REPO}:{found.images_key()}",
        cgroup=f"chaoslab-nodes-{digest}",
        nodes=nodes, host_sysctls=tuple(before.items()), host_nft=nft_ruleset(),
    )
    write_state(state)
    dockerd, docker = start_dockerd(state_dir, environ)
    state = replace(state, processes=(dockerd,))
    write_state(state)
    mark("dockerd")
    docker.run("import", "--change", "ENTRYPOINT [\"/etc/chaoslab/entrypoint.sh\"]", str(found.images / "node-rootfs.tar"), state.node_image)
    mark("node image imported")
    docker.run("network", "create", "--driver", "bridge", "--internal", "--subnet", subnet, "--gateway", gateway,
               "--opt", f"com.docker.network.bridge.name={state.bridge}", "--label", f"{OWNER_LABEL}={state_dir}", state.network)
    _wait_for_bridge_address(state.bridge, gateway)
    # The control plane, without KWOK nodes; the kubelets register their nodes.
    settings = lc.Settings(workers=0, kwok=False, node_lease_seconds=NODE_LEASE_SECONDS)
    lc.up(Path(state.control_plane_dir), settings, environ, log)
    mark("control plane")
    api = lc.Api.from_kubeconfig(Path(state.kubeconfig))
    api_port = api.server.rsplit(":", 1)[1]
    forward_port = free_port_on(gateway)
    forwarder = lc.start_process("api-forwarder", [sys.executable, str(Path(__file__).resolve()), "forward",
                                                   f"{gateway}:{forward_port}", f"127.0.0.1:{api_port}"], state_dir, environ)
    state = replace(state, processes=(dockerd, forwarder))
    write_state(state)
    server = f"https://{gateway}:{forward_port}"
    make_parent_cgroup(state.cgroup, len(nodes))
    for node in nodes:
        folder = state_dir / "nodes" / node.name
        write_node_config(folder, node, nodes, server, Path(state.kubeconfig), found.images_key())
        docker.run("volume", "create", "--label", f"{OWNER_LABEL}={state_dir}", f"{node.name}-containerd")
        docker.run(*node_run_args(node, state, folder, found))
    mark("node containers started")
    lc.poll("every real node Ready", NODES_READY_SECONDS, lambda: lc._nodes_ready(api, names), [dockerd, forwarder])
    mark("nodes Ready")
    _label_control_plane(api)
    _smoke(api, [dockerd, forwarder])
    mark("smoke pod served through a NodePort")
    changed = {k: (v, now) for k, now in read_sysctls().items() if (v := before.get(k)) is not None and v != now}
    if changed:
        raise RealNodesError(f"a node changed host sysctls (before -> now): {changed}")
    state = replace(state, ready=True, timings=tuple(timings))
    write_state(state)
    log(f"real nodes up in {timings[-1][1]:.0f}s ({', '.join(f'{w} {s:g}s' for w, s in timings)}): "
        f"{lc.CONTROL_PLANE_NODE} + {workers} workers on {subnet}")
    log(f"export KUBECONFIG={state.kubeconfig}   # context {state.context}; DOCKER_HOST={state.docker_host}")
    return state


def _label_control_plane(api: lc.Api) -> None:
    """A kubelet may not give itself node-role.kubernetes.io/* labels (--node-labels
    refuses them), so the control-plane node's label is set through the API."""
    status, payload = api.request("PATCH", f"/api/v1/nodes/{lc.CONTROL_PLANE_NODE}",
                                  {"metadata": {"labels": {lc.CONTROL_PLANE_LABEL: ""}}},
                                  content_type="application/merge-patch+json")
    if status >= 300:
        raise RealNodesError(f"labelling {lc.CONTROL_PLANE_NODE} failed: HTTP {status}: {payload}")


CGROUP_ROOT = Path("/sys/fs/cgroup")


def make_parent_cgroup(name: str, nodes: int) -> None:
    """The nodes' parent cgroup, weighted for `nodes` nodes (cgroup v1 cpu controller;
    runc creates it in the other hierarchies). Removed by `down`."""
    cpu = CGROUP_ROOT / "cpu"
    if not (cpu / "cpu.shares").is_file():
        return  # not cgroup v1: the nodes keep docker's default weight
    (cpu / name).mkdir(exist_ok=True)
    (cpu / name / "cpu.shares").write_text(str(CPU_SHARES_PER_NODE * nodes))


def remove_parent_cgroup(name: str) -> None:
    if not name:
        return
    for hierarchy in CGROUP_ROOT.iterdir():
        folder = hierarchy / name
        if folder.is_dir():
            folder.rmdir()  # empty once the containers are gone; OSError otherwise


def _wait_for_bridge_address(bridge: str, gateway: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        shown = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", bridge], capture_output=True, text=True, check=False).stdout
        if f" {gateway}/" in shown:
            return
        time.sleep(0.1)
    raise RealNodesError(f"the bridge {bridge} of the node network has no address {gateway}; the nodes could not reach the API server")


def _smoke(api: lc.Api, watch: Sequence[lc.ProcessRecord]) -> None:
    """A readiness-probed pod on a worker, answering through the control-plane node's
    NodePort (kube-proxy there, a route to the worker's pod subnet): the whole path."""
    namespace = "default"
    name = f"{lc.CLUSTER_NAME}-smoke"
    labels = {"app": name}
    api.ok("POST", f"/api/v1/namespaces/{namespace}/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
            "name": "httpd", "image": WORKLOAD_IMAGE, "ports": [{"containerPort": WORKLOAD_PORT}],
            "readinessProbe": {"httpGet": {"path": "/", "port": WORKLOAD_PORT}, "periodSeconds": 1}}]},
    })
    service = api.ok("POST", f"/api/v1/namespaces/{namespace}/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"type": "NodePort", "selector": labels, "ports": [{"port": 80, "targetPort": WORKLOAD_PORT}]},
    })
    node_port = service["spec"]["ports"][0]["nodePort"]
    try:
        def ready() -> bool:
            pod = api.ok("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
            conditions = (pod.get("status") or {}).get("conditions") or ()
            return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

        lc.poll("the smoke pod (busybox httpd) Running and Ready on a worker", SMOKE_SECONDS, ready, watch)
        nodes = api.ok("GET", "/api/v1/nodes")["items"]
        entry = next(a["address"] for n in nodes if n["metadata"]["name"] == lc.CONTROL_PLANE_NODE
                     for a in n["status"]["addresses"] if a["type"] == "InternalIP")
        def answers() -> bool:
            with urllib.request.urlopen(f"http://{entry}:{node_port}/", timeout=5) as response:
                return response.status == 200 and b"chaoslab workload" in response.read()

        lc.poll(f"the smoke pod to answer on NodePort {entry}:{node_port} (kube-proxy)", SMOKE_SECONDS, answers, watch)
    finally:
        api.request("DELETE", f"/api/v1/namespaces/{namespace}/services/{name}")
        api.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}")
    lc.poll("the smoke pod to be deleted", SMOKE_SECONDS,
            lambda: api.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")[0] == 404, watch)


def _lock_path(state_dir: Path, environ: Mapping[str, str]) -> Path:
    return lc.cache_root(environ) / "locks" / f"{state_dir.name}.lock"


def down(state_dir: Path, environ: Mapping[str, str], log: Callable[[str], None] = print) -> None:
    with lc.locked(_lock_path(state_dir, environ)):
        _down_locked(state_dir, environ, log)


def _down_locked(state_dir: Path, environ: Mapping[str, str], log: Callable[[str], None]) -> None:
    """Remove the nodes, their volumes, the network, the forwarder, the control plane and
    dockerd, in that order; every step is tried even when one fails."""
    state = read_state(state_dir)
    problems: list[str] = []

    def step(what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except (lc.LocalClusterError, OSError, subprocess.SubprocessError) as exc:
            problems.append(f"{what}: {exc}")

    if state is not None:
        dockerd = next((r for r in state.processes if r.name == "dockerd"), None)
        docker = Docker(state.docker_host, environ)
        if not docker.answers() and (state_dir / "docker").exists():
            # A killed `up` left containers in dockerd's data root: start it again to remove them.
            step("restart dockerd to clean up", lambda: start_dockerd(state_dir, environ))
        if docker.answers():
            owned = f"label={OWNER_LABEL}={state.state_dir}"
            ids = docker.run("ps", "-aq", "--filter", owned, check=False).stdout.split()
            if ids:
                step("remove node containers", lambda: docker.run("rm", "-f", "-v", *ids))
            volumes = docker.run("volume", "ls", "-q", "--filter", owned, check=False).stdout.split()
            if volumes:
                step("remove node volumes", lambda: docker.run("volume", "rm", "-f", *volumes))
            networks = docker.run("network", "ls", "-q", "--filter", owned, check=False).stdout.split()
            if networks:
                step("remove the node network", lambda: docker.run("network", "rm", *networks))
            log(f"removed {len(ids)} node container(s), {len(volumes)} volume(s), {len(networks)} network(s)")
        forwarders = [r for r in state.processes if r.name != "dockerd"]
        step("stop the API forwarder", lambda: lc.stop_processes(forwarders, log))
        step("stop the control plane", lambda: lc.down(Path(state.control_plane_dir), environ, log))
        # dockerd last: it unmounts its containers' file systems as it stops.
        running = [r for r in (dockerd,) if r is not None]
        restarted = _dockerd_records(state_dir)
        step("stop dockerd", lambda: _stop_dockerd([*running, *restarted], log))
        step("remove the nodes' cgroup", lambda: remove_parent_cgroup(state.cgroup))
        step("restore host sysctls", lambda: _restore_sysctls(dict(state.host_sysctls), log))
        if Path("/sys/class/net", state.bridge).exists():
            problems.append(f"the bridge {state.bridge} is still there")
    mounts = _mounts_under(state_dir)
    if mounts:
        problems.append(f"still mounted under {state_dir}: {', '.join(mounts[:5])}")
    elif state_dir.exists() and not problems:
        shutil.rmtree(state_dir)
        log(f"removed {state_dir}")
    if problems:
        raise RealNodesError(f"could not remove everything ({state_dir} is kept): " + "; ".join(problems))


def _dockerd_records(state_dir: Path) -> list[lc.ProcessRecord]:
    """A dockerd started by a cleanup (its pid file), recognised by its socket argument."""
    pid_file = state_dir / "docker.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return []
    ticks = lc.process_start_ticks(pid)
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []
    if ticks is None or f"unix://{state_dir}/docker.sock".encode() not in argv:
        return []
    return [lc.ProcessRecord(name="dockerd", pid=pid, pgid=os.getpgid(pid), start_ticks=ticks, argv=(), log="")]


def _stop_dockerd(records: Sequence[lc.ProcessRecord], log: Callable[[str], None]) -> None:
    seen: set[int] = set()
    unique = [r for r in records if not (r.pid in seen or seen.add(r.pid))]
    left = lc.stop_processes(unique, log)
    if left:
        raise RealNodesError(f"could not stop {', '.join(left)}")


def _restore_sysctls(recorded: Mapping[str, str], log: Callable[[str], None]) -> None:
    for key, value in read_sysctls(tuple(recorded)).items():
        if value != recorded[key]:
            log(f"restoring host sysctl {key.replace('/', '.')}: {value} -> {recorded[key]} (a node changed it)")
            Path("/proc/sys", key).write_text(recorded[key])


def _mounts_under(folder: Path) -> list[str]:
    prefix = str(folder.resolve()) + "/"
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if point.startswith(prefix):
            found.append(point)
    return found


def print_logs(state: State | None, log: Callable[[str], None], lines: int = 40) -> None:
    if state is None:
        log("no real-node state")
        return
    lc.print_logs(lc.read_state(Path(state.control_plane_dir)), log, lines)
    for record in state.processes:
        lc.print_tail(Path(record.log), record.name, log, lines)
    for node in state.nodes:
        for name in ("kubelet", "containerd", "kube-proxy", "images"):
            lc.print_tail(Path(state.state_dir) / "nodes" / node.name / "logs" / f"{name}.log", f"{node.name} {name}", log, lines)


# --- command line -----------------------------------------------------------------------


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if environ is None else environ)

    def log(message: str) -> None:
        print(message, flush=True)

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, default=default_state_dir(env),
                        help="where the running nodes keep their files (env CHAOSLAB_K8S_NODES_DIR)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build the control plane, kubelet, kube-proxy and the images unless cached")
    start = commands.add_parser("up", help="build if needed, start the control plane and the node containers")
    start.add_argument("--workers", type=int, default=lc._int_env(env, "K8S_WORKERS", DEFAULT_WORKERS),
                       help="worker nodes besides the control-plane node (env K8S_WORKERS)")
    commands.add_parser("down", help="remove everything `up` made")
    commands.add_parser("status", help="what runs, and where")
    commands.add_parser("env", help="print KUBECONFIG and DOCKER_HOST exports for a shell")
    host = commands.add_parser("host-state", help="print the host's sysctls, nft ruleset and links as JSON")
    host.add_argument("--compare", type=Path, help="instead, fail if they differ from this earlier output")
    logs = commands.add_parser("logs", help="the last lines of every component's and node's logs")
    logs.add_argument("--lines", type=int, default=40)
    relay = commands.add_parser("forward", help=argparse.SUPPRESS)
    relay.add_argument("listen")
    relay.add_argument("target")
    try:
        args = parser.parse_args(argv)
        state_dir: Path = args.state_dir.resolve()
        if args.command == "build":
            started = time.monotonic()
            found = build(env, log)
            log(f"nodes: {found.bin}, {found.images} (this call {time.monotonic() - started:.1f}s)")
        elif args.command == "up":
            if args.workers < 1:
                raise RealNodesError(f"--workers {args.workers}: at least one worker node is needed")
            # SIGTERM as Ctrl-C: a half-started cluster is removed before exiting.
            signal.signal(signal.SIGTERM, _interrupt)
            up(state_dir, args.workers, env, log)
        elif args.command == "down":
            down(state_dir, env, log)
        elif args.command == "status":
            state = read_state(state_dir)
            if state is None:
                log(f"not running (no {state_dir / 'state.json'})")
                return 1
            docker = Docker(state.docker_host, env)
            shown = docker.run("ps", "-a", "--format", "{{.Names}} {{.Status}}", check=False).stdout if docker.answers() else "dockerd is not running\n"
            log(shown.rstrip())
            log(f"kubeconfig {state.kubeconfig}, DOCKER_HOST={state.docker_host}, ready={state.ready}, timings {dict(state.timings)}")
        elif args.command == "env":
            state = read_state(state_dir)
            if state is None:
                raise RealNodesError("no real nodes are running; start them with `make e2e-nodes-up`")
            log(f"export KUBECONFIG={state.kubeconfig}\nexport DOCKER_HOST={state.docker_host}")
        elif args.command == "host-state":
            if args.compare is None:
                log(json.dumps(host_snapshot(), indent=2, sort_keys=True))
            else:
                differences = compare_host(json.loads(args.compare.read_text()), host_snapshot())
                if differences:
                    raise RealNodesError("the host changed during the real-node run: " + "; ".join(differences))
                log("host unchanged: sysctls, nft ruleset and network links as before")
        elif args.command == "logs":
            print_logs(read_state(state_dir), log, lines=args.lines)
        elif args.command == "forward":
            forward(args.listen, args.target)
    except lc.LocalClusterError as exc:
        print(f"realnodes: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("realnodes: interrupted", file=sys.stderr, flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
