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

Standard library only (and localcluster.py beside it), like localcluster.py.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import platform
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
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

# Bumped when the way nodes' binaries or images are made changes: a new cache key.
NODE_RECIPE = 1
# Debian packages of the node image (bookworm: containerd 1.6.20, runc 1.1.5,
# containernetworking-plugins 1.1.1 with the plugins in /usr/lib/cni, iptables 1.8.9 on
# its nft backend). busybox-static also provides the workload image's binary.
NODE_PACKAGES = (
    "containerd", "runc", "containernetworking-plugins", "iptables", "iproute2", "conntrack",
    "ca-certificates", "procps", "util-linux", "mount", "busybox-static",
)
# The Python image: Debian's python3 (3.11 in bookworm); `python` is what the backend runs.
PYTHON_PACKAGES = ("python3", "python-is-python3")
# Pod image names. A registry-like host part that cannot resolve, and no `latest` tag,
# so the kubelet's default IfNotPresent policy uses the imported image and never pulls.
PAUSE_IMAGE = "chaoslab.local/pause:1"
PYTHON_IMAGE = "chaoslab.local/python:3.11"
WORKLOAD_IMAGE = "chaoslab.local/httpd:1"
WORKLOAD_PORT = 8080
NODE_IMAGE_REPO = "chaoslab-e2e/node"
# Docker labels on everything made, so `down` and the tests can find exactly it.
OWNER_LABEL = "chaoslab.e2e/owner"
# The node-lifecycle timing of the control plane (localcluster.py's shortened defaults:
# grace 10 s, monitor period 1 s) and of the kubelets: an 8 s Lease renewed every 2 s
# (upstream kubelet: 40 s, every 10 s) and a node status every 2 s (upstream: 10 s).
NODE_LEASE_SECONDS = 8
NODE_STATUS_UPDATE_SECONDS = 2
DEFAULT_WORKERS = 3
# Pod network: one /24 per node (index 0 = the control-plane node), routed node to node.
POD_CIDR = "10.244.0.0/16"
# The node network: a /24 out of this range that no host route overlaps; the host's
# bridge address is .1, the control-plane node .10, workers .11, .12, ...
NODE_SUBNET_CANDIDATES = tuple(f"172.28.{i}.0/24" for i in range(200, 250))
FIRST_NODE_HOST = 10
# The kernel-wide sysctls the kubelet sets (setupKernelTunables in
# pkg/kubelet/cm/container_manager_linux.go) with the values it wants; they are global,
# not per network namespace, so a node container would change the host's.
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}
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
class NodeRecord:
    name: str  # the Kubernetes node name, also the container's name
    address: str
    pod_cidr: str
    control_plane: bool


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
            processes=tuple(lc.ProcessRecord(**{**p, "argv": tuple(p["argv"])}) for p in data["processes"]),
            host_sysctls=tuple((k, v) for k, v in data["host_sysctls"]),
            host_nft=data["host_nft"],
            ready=bool(data["ready"]),
            timings=tuple((k, float(v)) for k, v in data["timings"]),
        )


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """One folder per checkout, short (dockerd's unix sockets live in it: 108 bytes)."""
    explicit = environ.get("CHAOSLAB_K8S_NODES_DIR")
    if explicit:
        return Path(explicit)
    digest = hashlib.sha256(str(lc.REPO_ROOT).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"chaoslab-nodes-{digest}"


def read_state(state_dir: Path) -> State | None:
    path = state_dir / "state.json"
    try:
        return State.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise RealNodesError(f"{path} is unreadable ({exc}); remove {state_dir} by hand") from exc


def write_state(state: State) -> None:
    path = Path(state.state_dir) / "state.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2))
    tmp.rename(path)


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


# --- building ----------------------------------------------------------------------------


PAUSE_SOURCE = r"""
/* The pod sandbox's process: holds the pod's namespaces, reaps orphans (it is PID 1 of a
   shared PID namespace), exits 0 on SIGTERM/SIGINT. */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>
static void stop(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
  struct sigaction sa = {0};
  sa.sa_handler = stop;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sa.sa_handler = reap;
  sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction(SIGCHLD, &sa, NULL);
  for (;;) pause();
  return 0;
}
"""


@dataclass(frozen=True)
class NodeArtifacts:
    """The cache folders: kubelet + kube-proxy (keyed by the Go module), images (by recipe)."""

    bin: Path
    images: Path

    def binaries_complete(self) -> bool:
        return (self.bin / "BUILD-INFO.json").is_file() and all((self.bin / n).is_file() for n in ("kubelet", "kube-proxy"))

    def images_complete(self) -> bool:
        return (self.images / "BUILD-INFO.json").is_file() and all(
            (self.images / n).is_file() for n in ("node-rootfs.tar", "pause.tar", "python.tar", "workload.tar")
        )

    def images_key(self) -> str:
        return self.images.name.rsplit("-", 1)[-1]


def images_key() -> str:
    digest = hashlib.sha256()
    digest.update(f"recipe={NODE_RECIPE}".encode())
    for part in (NODE_PACKAGES, PYTHON_PACKAGES, (PAUSE_IMAGE, PYTHON_IMAGE, WORKLOAD_IMAGE), (PAUSE_SOURCE,)):
        digest.update("\0".join(part).encode())
    return digest.hexdigest()[:12]


def artifacts(environ: Mapping[str, str]) -> NodeArtifacts:
    root = lc.cache_root(environ)
    versions = lc.build_versions()
    return NodeArtifacts(
        bin=root / f"nodes-{versions.kubernetes}-{lc.build_key()}-r{NODE_RECIPE}" / "bin",
        images=root / f"node-images-{images_key()}",
    )


def _require(command: str, package: str) -> str:
    found = shutil.which(command)
    if found is None:
        raise RealNodesError(f"the `{command}` command is needed to build the real nodes (Debian: apt-get install {package})")
    return found


def build_binaries(folder: Path, environ: Mapping[str, str], log: Callable[[str], None]) -> None:
    """kubelet and kube-proxy from tests/e2e/build, as localcluster builds the control plane."""
    versions = lc.build_versions()
    go = lc._go_command(environ)
    started = time.monotonic()
    staging = folder.parent / f"bin.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    cores = max(1, min(2, os.cpu_count() or 1))
    env = {**environ, "CGO_ENABLED": "0", "GOMAXPROCS": str(cores), "GOFLAGS": "-mod=readonly -buildvcs=false"}
    nice = ["nice", "-n", "10"] if shutil.which("nice") else []
    try:
        lc._run_go(nice + [go, "build", "-p", str(cores), "-trimpath", "-ldflags", lc._kubernetes_ldflags(versions.kubernetes),
                           "-o", str(staging) + "/", "k8s.io/kubernetes/cmd/kubelet", "k8s.io/kubernetes/cmd/kube-proxy"],
                   env, "kubelet and kube-proxy", log)
        seconds = round(time.monotonic() - started, 1)
        info = {"kubernetes": versions.kubernetes, "go_toolchain": lc._go_version(go, env), "build_seconds": seconds,
                "built": time.time(), "recipe": NODE_RECIPE}
        (staging / "BUILD-INFO.json").write_text(json.dumps(info, indent=2))
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"built kubelet and kube-proxy in {seconds:.0f}s: {folder}")


def apt_sources() -> tuple[str, list[Path]]:
    """The suite and the apt source files this machine uses (deb822 .sources or .list)."""
    files = []
    main_list = Path("/etc/apt/sources.list")
    if main_list.is_file() and any(line.strip().startswith("deb ") for line in main_list.read_text().splitlines()):
        files.append(main_list)
    parts = Path("/etc/apt/sources.list.d")
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources") and p.is_file())
    suites = []
    for path in files:
        text = path.read_text()
        suites += re.findall(r"^Suites:\s*(\S+)", text, re.MULTILINE)
        suites += re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?\S+\s+(\S+)", text, re.MULTILINE)
    if not files or not suites:
        raise RealNodesError("no apt sources found in /etc/apt (sources.list or sources.list.d/*.sources|*.list); "
                             "the node image is made with mmdebstrap from the machine's own Debian sources")
    return suites[0].split("-")[0], files


def mmdebstrap(target: Path, packages: Sequence[str], log_path: Path) -> subprocess.Popen[bytes]:
    suite, sources = apt_sources()
    command = [
        _require("mmdebstrap", "mmdebstrap"), "--variant=minbase", "--mode=root", "--format=tar",
        f"--include={','.join(packages)}",
        # No documentation, manuals or translations: a smaller image, nothing lost.
        "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*", "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        suite, str(target), *(str(s) for s in sources),
    ]
    with log_path.open("wb") as log_file:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)


def _go_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def write_docker_archive(path: Path, tag: str, layer: Path, config: Mapping[str, Any]) -> None:
    """An image tarball in the format `docker save` writes (manifest.json, the image
    config, one layer.tar), which `ctr images import` and `docker load` read."""
    digest = hashlib.sha256()
    with layer.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    diff_id = digest.hexdigest()
    image_config = {
        "architecture": _go_arch(), "os": "linux", "created": "1970-01-01T00:00:00Z",
        "config": dict(config), "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
    }
    config_bytes = json.dumps(image_config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": [f"{diff_id}/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        tar.add(layer, arcname=f"{diff_id}/layer.tar")
        for name, data in ((config_name, config_bytes), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _busybox_layer(node_rootfs: Path, work: Path, layer: Path) -> None:
    """/bin/busybox (static, from the node image) with a link per applet, and /www."""
    with tarfile.open(node_rootfs) as tar:
        member = next(m for m in tar.getmembers() if m.isfile() and m.name.lstrip("./") in ("bin/busybox", "usr/bin/busybox"))
        extracted = tar.extractfile(member)
        assert extracted is not None
        binary = work / "busybox"
        binary.write_bytes(extracted.read())
    binary.chmod(0o755)
    applets = subprocess.run([str(binary), "--list"], capture_output=True, text=True, check=True).stdout.split()
    index = b"<html><body><h1>chaoslab workload</h1></body></html>\n"
    with tarfile.open(layer, "w") as tar:
        for directory in ("bin", "tmp", "www"):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        tar.add(binary, arcname="bin/busybox")
        for applet in applets:
            if applet != "busybox":
                info = tarfile.TarInfo(f"bin/{applet}")
                info.type = tarfile.SYMTYPE
                info.linkname = "busybox"
                tar.addfile(info)
        info = tarfile.TarInfo("www/index.html")
        info.size = len(index)
        tar.addfile(info, io.BytesIO(index))


def build_images(folder: Path, log: Callable[[str], None]) -> None:
    """The node root filesystem and the three pod images, into `folder`."""
    gcc = _require("gcc", "gcc libc6-dev")
    started = time.monotonic()
    staging = folder.parent / f"{folder.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        suite, sources = apt_sources()
        log(f"making the node and Python root filesystems with mmdebstrap ({suite}, from {', '.join(map(str, sources))})")
        jobs = {
            "node": mmdebstrap(staging / "node-rootfs.tar", NODE_PACKAGES, staging / "mmdebstrap-node.log"),
            "python": mmdebstrap(staging / "python-rootfs.tar", PYTHON_PACKAGES, staging / "mmdebstrap-python.log"),
        }
        try:
            codes = {name: job.wait() for name, job in jobs.items()}
        except BaseException:
            for job in jobs.values():
                job.terminate()
                job.wait()
            raise
        for name, code in codes.items():
            if code != 0:
                tail = (staging / f"mmdebstrap-{name}.log").read_text(errors="replace")[-2000:]
                raise RealNodesError(f"mmdebstrap of the {name} image failed (exit {code}):\n{tail}")
        rootfs_seconds = round(time.monotonic() - started, 1)
        work = staging / "work"
        work.mkdir()
        (work / "pause.c").write_text(PAUSE_SOURCE)
        subprocess.run([gcc, "-static", "-O2", "-s", "-o", str(work / "pause"), str(work / "pause.c")], check=True, capture_output=True)
        with tarfile.open(work / "pause-layer.tar", "w") as tar:
            tar.add(work / "pause", arcname="pause")
        write_docker_archive(staging / "pause.tar", PAUSE_IMAGE, work / "pause-layer.tar", {"Entrypoint": ["/pause"]})
        path_env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        write_docker_archive(staging / "python.tar", PYTHON_IMAGE, staging / "python-rootfs.tar",
                             {"Env": path_env, "Cmd": ["python"]})
        _busybox_layer(staging / "node-rootfs.tar", work, work / "workload-layer.tar")
        write_docker_archive(staging / "workload.tar", WORKLOAD_IMAGE, work / "workload-layer.tar",
                             {"Env": path_env, "Cmd": ["httpd", "-f", "-p", str(WORKLOAD_PORT), "-h", "/www"]})
        (staging / "python-rootfs.tar").unlink()
        shutil.rmtree(work)
        seconds = round(time.monotonic() - started, 1)
        info = {"suite": suite, "node_packages": NODE_PACKAGES, "python_packages": PYTHON_PACKAGES, "build_seconds": seconds,
                "rootfs_seconds": rootfs_seconds, "built": time.time(), "recipe": NODE_RECIPE,
                "sizes_mb": {p.name: round(p.stat().st_size / 1e6) for p in staging.glob("*.tar")}}
        (staging / "BUILD-INFO.json").write_text(json.dumps(info, indent=2))
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"built the node and pod images in {seconds:.0f}s (root filesystems {rootfs_seconds:.0f}s): {folder}")


def build(environ: Mapping[str, str], log: Callable[[str], None] = print) -> NodeArtifacts:
    """Everything the nodes need, unless cached: the control plane (localcluster.build),
    kubelet + kube-proxy, and the images."""
    lc.build(environ, log)
    found = artifacts(environ)
    if not found.images_complete():
        with lc.locked(found.images.parent / f"{found.images.name}.lock"):
            if not found.images_complete():
                build_images(found.images, log)
    if not found.binaries_complete():
        with lc.locked(found.bin.parent / "build.lock"):
            if not found.binaries_complete():
                build_binaries(found.bin, environ, log)
    return found


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


# --- node configuration ------------------------------------------------------------------


ENTRYPOINT = r"""#!/bin/sh
# PID 1 of a node container: make /sys and the cgroup hierarchies writable, hide the
# host's kernel-wide sysctls behind files holding the kubelet's values, start containerd,
# import the pod images once, route the other nodes' pod subnets, start kubelet and kube-proxy.
set -eu
conf=/etc/chaoslab
logs=/var/log/chaoslab
mount --make-rshared /
mount -o remount,rw /sys
for m in $(awk '$2 ~ "^/sys/fs/cgroup/" {print $2}' /proc/mounts); do mount -o remount,bind,rw "$m"; done
mkdir -p /run/chaoslab-sysctl
while read -r key value; do
  [ -n "$key" ] || continue
  file=/run/chaoslab-sysctl/$(echo "$key" | tr / _)
  echo "$value" > "$file"
  mount --bind "$file" "/proc/sys/$key"
done < $conf/sysctls
mkdir -p /etc/cni/net.d /etc/containerd
cp $conf/cni.conflist /etc/cni/net.d/10-chaoslab.conflist
cp $conf/containerd.toml /etc/containerd/config.toml
containerd --config /etc/containerd/config.toml >>$logs/containerd.log 2>&1 &
i=0
until ctr version >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 600 ] || { echo "containerd did not start" >&2; exit 1; }; sleep 0.1; done
marker=/var/lib/containerd/.chaoslab-images-$(cat $conf/images-key)
if [ ! -e "$marker" ]; then
  for image in /opt/chaoslab/images/pause.tar /opt/chaoslab/images/python.tar /opt/chaoslab/images/workload.tar; do
    ctr -n k8s.io images import "$image" >>$logs/images.log 2>&1
  done
  touch "$marker"
fi
# Docker gives even an internal network's containers a default route via the host's
# bridge address: remove it, so nodes and pods reach nothing but the suite's own network.
ip route del default 2>/dev/null || true
while read -r subnet via; do [ -n "$subnet" ] && ip route replace "$subnet" via "$via"; done < $conf/routes
/opt/chaoslab/bin/kubelet --config=$conf/kubelet.yaml --kubeconfig=$conf/kubeconfig \
  --hostname-override="$(cat $conf/node-name)" --node-ip="$(cat $conf/node-ip)" $(cat $conf/kubelet-flags) \
  >>$logs/kubelet.log 2>&1 &
/opt/chaoslab/bin/kube-proxy --config=$conf/kube-proxy.yaml >>$logs/kube-proxy.log 2>&1 &
trap 'kill -TERM $(jobs -p) 2>/dev/null; wait; exit 0' TERM INT
wait
"""

CONTAINERD_CONFIG = """version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  # The node has no CAP_SYS_RESOURCE, so a negative oom_score_adj cannot be written.
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
"""


def kubelet_config(node: NodeRecord) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # cgroup v1 and no systemd as PID 1 on this kind of machine.
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "containerRuntimeEndpoint": "unix:///run/containerd/containerd.sock",
        # The API server has no kubelet client certificate; the kubelet's port is on the
        # suite's internal network only.
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "nodeLeaseDurationSeconds": NODE_LEASE_SECONDS,
        "nodeStatusUpdateFrequency": f"{NODE_STATUS_UPDATE_SECONDS}s",
        "nodeStatusReportFrequency": f"{NODE_STATUS_UPDATE_SECONDS}s",
        # A small shared disk must not make the kubelet evict pods or delete images that
        # cannot be pulled again.
        "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "protectKernelDefaults": False,
        "resolvConf": "/etc/chaoslab/resolv.conf",  # no name servers: pods resolve nothing outside
        "podCIDR": node.pod_cidr,
        "maxPods": 50,
        # CrashLoopBackOff from 1 s, doubling, capped at 60 s (upstream: 10 s, capped at
        # 300 s): the alpha gate that shortens it, so a crash loop fits in a short test.
        "featureGates": {"ReduceDefaultCrashLoopBackOffDecay": True},
        "serializeImagePulls": False,
    }


def kube_proxy_config(node: NodeRecord) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": "/etc/chaoslab/kubeconfig"},
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": node.name,
        "bindAddress": node.address,
        "nodePortAddresses": ["primary"],  # NodePorts on the node's own address only
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # Do not touch the host's conntrack sysctls (nf_conntrack_max is kernel-wide).
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }


def cni_config(node: NodeRecord) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": "chaoslab",
        "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": True, "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": node.pod_cidr}]], "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def node_kubeconfig(server: str, ca: str, token: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Config",
        # The serving certificate names 127.0.0.1/localhost; the nodes reach the API server
        # through the forwarder on the bridge address, so they verify it as `localhost`.
        "clusters": [{"name": lc.CLUSTER_NAME, "cluster": {"server": server, "certificate-authority-data": ca,
                                                            "tls-server-name": "localhost"}}],
        "users": [{"name": node, "user": {"token": token}}],
        "contexts": [{"name": "node", "context": {"cluster": lc.CLUSTER_NAME, "user": node}}],
        "current-context": "node",
    }


def write_node_config(folder: Path, node: NodeRecord, nodes: Sequence[NodeRecord], server: str, admin_kubeconfig: Path,
                      key: str) -> None:
    admin = json.loads(admin_kubeconfig.read_text())
    ca = base64.b64encode(Path(admin["clusters"][0]["cluster"]["certificate-authority"]).read_bytes()).decode()
    token = admin["users"][0]["user"]["token"]
    folder.mkdir(parents=True)
    (folder / "logs").mkdir()
    files = {
        "entrypoint.sh": ENTRYPOINT,
        "containerd.toml": CONTAINERD_CONFIG.format(pause=PAUSE_IMAGE),
        "kubelet.yaml": json.dumps(kubelet_config(node), indent=2),
        "kube-proxy.yaml": json.dumps(kube_proxy_config(node), indent=2),
        "cni.conflist": json.dumps(cni_config(node), indent=2),
        "kubeconfig": json.dumps(node_kubeconfig(server, ca, token, node.name), indent=2),
        "sysctls": "".join(f"{k} {v}\n" for k, v in KUBELET_SYSCTLS.items()),
        "routes": "".join(f"{other.pod_cidr} {other.address}\n" for other in nodes if other.name != node.name),
        "node-name": node.name,
        "node-ip": node.address,
        "images-key": key,
        "resolv.conf": "",
        # Control-plane node: kubeadm's taint, at registration (before any pod lands).
        "kubelet-flags": f"--register-with-taints={lc.CONTROL_PLANE_LABEL}:NoSchedule" if node.control_plane else "",
    }
    for name, text in files.items():
        (folder / "conf" / name).parent.mkdir(exist_ok=True)
        (folder / "conf" / name).write_text(text)
    (folder / "conf" / "entrypoint.sh").chmod(0o755)


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
        _print_tail(Path(record.log), record.name, log, lines)
    for node in state.nodes:
        for name in ("kubelet", "containerd", "kube-proxy", "images"):
            _print_tail(Path(state.state_dir) / "nodes" / node.name / "logs" / f"{name}.log", f"{node.name} {name}", log, lines)


def _print_tail(path: Path, what: str, log: Callable[[str], None], lines: int) -> None:
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return
    log(f"--- {what} ({path}, last {len(tail)} lines)")
    for line in tail:
        log("  " + line)


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
