"""A real Kubernetes control plane on loopback, for the end-to-end tests (`make e2e`).

Why it exists: the kubernetes backend is unit-tested against a fake of our own API
wrapper, which proves our calls but not what the cluster does with them. Here the real
controllers run: etcd, kube-apiserver, kube-controller-manager (ReplicaSet, disruption,
node-lifecycle, namespace, garbage collector...) and kube-scheduler, built from
Kubernetes' own Go modules, with KWOK playing the kubelet of N fake nodes (no container
runs: pods become Running and Ready through KWOK's stages, see kwok-stages.yaml).

No container image or release binary can be downloaded on these machines, so the
binaries are built once from the Go module proxy (tests/e2e/build/go.mod) into a cache
folder outside the repository, keyed by version and by the build recipe, and reused.

Everything binds 127.0.0.1 (checked after start), keeps its data in one temporary state
folder, and is recorded (pid, process group, start time) in that folder's state.json, so
`down` stops exactly what `up` started and removes the folder.

One KWOK process per node, so a node's "kubelet" can be frozen on its own: `node stop`
sends SIGSTOP (its Lease and status stop, as when a machine dies or hangs), `node resume`
sends SIGCONT. The e2e tests reach these through the backend's `command` node provider.

Usage (the Makefile's k8s-local, k8s-local-down and e2e targets call these):
    python tests/e2e/localcluster.py build            build the binaries unless cached
    python tests/e2e/localcluster.py up [--nodes 3]   build if needed, start, write kubeconfig
    python tests/e2e/localcluster.py down             stop what `up` started, remove its folder
    python tests/e2e/localcluster.py status | logs | env
    python tests/e2e/localcluster.py node stop|resume|state NODE

Only the standard library and the `openssl` command are used, so it runs before any
virtualenv exists.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parent.parent
BUILD_MODULE = E2E_DIR / "build"
KWOK_STAGES = E2E_DIR / "kwok-stages.yaml"

# Bumped when the way binaries are built changes (flags, names): a new cache key.
BUILD_RECIPE = 1
# The kubeconfig context. Not one of the backend's "obviously local" names (minikube,
# kind-*, docker-desktop) on purpose: the tests list it in allowContexts, and check that
# without it chaoslab refuses the context.
CONTEXT = "chaoslab-e2e"
CLUSTER_NAME = "chaoslab-e2e"
CONTROL_PLANE_NODE = f"{CLUSTER_NAME}-control-plane"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
# KWOK's convention for the nodes it fakes (kwok docs, "Manage nodes").
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
# Default number of worker nodes: enough for one to fail while pods move to the others.
DEFAULT_WORKERS = 3
# Node-lifecycle timing, shortened from the upstream defaults (kube-controller-manager
# --node-monitor-period 5s, --node-monitor-grace-period 50s; kubelet Lease 40s renewed
# every 10s) by the same ratios, so a lost node is noticed in seconds, not a minute.
DEFAULT_NODE_MONITOR_PERIOD_S = 1
DEFAULT_NODE_MONITOR_GRACE_PERIOD_S = 10
# KWOK renews each Lease every duration/4 (as the kubelet): 8 s -> every 2 s, five
# renewals per grace period as upstream (40 s lease, 10 s renewals, 50 s grace).
DEFAULT_NODE_LEASE_SECONDS = 8
# kube-apiserver --default-not-ready-toleration-seconds / --default-unreachable-
# toleration-seconds: the DefaultTolerationSeconds admission plugin's 300 s, kept.
DEFAULT_TOLERATION_SECONDS = 300
# Bounds on start-up steps; generous for a shared, noisy 2-core machine.
ETCD_READY_SECONDS = 60.0
APISERVER_READY_SECONDS = 180.0
CLUSTER_READY_SECONDS = 120.0
STOP_SECONDS = 20.0
# Service and pod address ranges. Nothing ever connects to them (no kube-proxy, no
# containers): they are strings in API objects. Node addresses are loopback (127.0.0.x)
# so that a load generator pointed at a NodePort can only ever reach this machine.
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR_PREFIX = "10.244"
# How long certificates live: a test cluster is down long before.
CERT_DAYS = 7
# Print a progress line this often while building, so CI logs show it is alive.
BUILD_PROGRESS_SECONDS = 60.0
# The binaries a build produces (etcd, the three control-plane components, KWOK).
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


class LocalClusterError(Exception):
    """Something a person has to look at: the message says what and where."""


# --- settings and state ----------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """What `up` may be asked to change; every field has a flag and an env variable."""

    workers: int = DEFAULT_WORKERS
    node_monitor_period_s: int = DEFAULT_NODE_MONITOR_PERIOD_S
    node_monitor_grace_period_s: int = DEFAULT_NODE_MONITOR_GRACE_PERIOD_S
    node_lease_seconds: int = DEFAULT_NODE_LEASE_SECONDS
    not_ready_toleration_seconds: int = DEFAULT_TOLERATION_SECONDS
    unreachable_toleration_seconds: int = DEFAULT_TOLERATION_SECONDS
    # False: no KWOK node at all; real kubelets register themselves (tests/e2e/realnodes.py).
    kwok: bool = True


@dataclass(frozen=True)
class ProcessRecord:
    """One process `up` started: enough to find it again, and only it."""

    name: str  # component, and the node for KWOK (kwok/<node>)
    pid: int
    pgid: int
    start_ticks: int  # /proc/<pid>/stat starttime: tells a reused pid apart
    argv: tuple[str, ...]
    log: str

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> ProcessRecord:
        """A record as state.json holds it (argv a JSON list); realnodes.py's state uses it too."""
        return ProcessRecord(**{**data, "argv": tuple(data["argv"])})


@dataclass(frozen=True)
class State:
    """state.json: what runs, where its files are, how to reach it."""

    state_dir: str
    kubeconfig: str
    context: str
    server: str
    version: str
    control_plane_node: str
    workers: tuple[str, ...]
    settings: Settings
    processes: tuple[ProcessRecord, ...] = ()
    ready: bool = False
    started: float = 0.0
    ready_after_s: float | None = None

    def kwok_process(self, node: str) -> ProcessRecord:
        for record in self.processes:
            if record.name == f"kwok/{node}":
                return record
        known = ", ".join(r.name.removeprefix("kwok/") for r in self.processes if r.name.startswith("kwok/"))
        raise LocalClusterError(f"node {node!r} is not a KWOK node of the local cluster (nodes: {known or 'none'})")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = 1
        return data

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> State:
        return State(
            state_dir=data["state_dir"],
            kubeconfig=data["kubeconfig"],
            context=data["context"],
            server=data["server"],
            version=data["version"],
            control_plane_node=data["control_plane_node"],
            workers=tuple(data["workers"]),
            settings=Settings(**data["settings"]),
            processes=tuple(ProcessRecord.from_json(p) for p in data["processes"]),
            ready=bool(data.get("ready", False)),
            started=float(data.get("started", 0.0)),
            ready_after_s=data.get("ready_after_s"),
        )


# The shared plumbing of a harness's state folder, used by realnodes.py for its own state.

_State = TypeVar("_State")


def checkout_state_dir(environ: Mapping[str, str], variable: str, prefix: str) -> Path:
    """`$variable` if set, else `<tmp>/<prefix>-<hash of this checkout's path>`."""
    explicit = environ.get(variable)
    if explicit:
        return Path(explicit)
    digest = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"{prefix}-{digest}"


def read_state_file(
    state_dir: Path, from_json: Callable[[Mapping[str, Any]], _State], error: type[LocalClusterError] = LocalClusterError
) -> _State | None:
    """`state_dir/state.json` read back with `from_json`; None when there is none, `error`
    (naming the folder to remove by hand) when it cannot be read."""
    path = state_dir / "state.json"
    try:
        return from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise error(f"{path} is unreadable ({exc}); remove {state_dir} by hand") from exc


def write_state_file(state_dir: Path, data: Mapping[str, Any]) -> None:
    """`state_dir/state.json`, replaced whole (written beside it, then renamed over it)."""
    path = state_dir / "state.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.rename(path)


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """One state folder per checkout: a CI clone elsewhere never meets a developer's."""
    return checkout_state_dir(environ, "CHAOSLAB_K8S_LOCAL_DIR", "chaoslab-k8s-local")


def read_state(state_dir: Path) -> State | None:
    return read_state_file(state_dir, State.from_json)


def write_state(state: State) -> None:
    write_state_file(Path(state.state_dir), state.to_json())


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (created if missing), so two `up`s or builds never race."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- building ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Versions:
    """The versions the build module pins (tests/e2e/build/go.mod is the one source)."""

    kubernetes: str
    kwok: str
    etcd: str
    go: str  # the go directive


def build_versions(module: Path = BUILD_MODULE) -> Versions:
    text = (module / "go.mod").read_text()

    def required(path: str) -> str:
        match = re.search(rf"^\s*{re.escape(path)}\s+(v\S+)", text, re.MULTILINE)
        if not match:
            raise LocalClusterError(f"{module / 'go.mod'} does not require {path}")
        return match.group(1)

    go = re.search(r"^go\s+(\S+)", text, re.MULTILINE)
    return Versions(
        kubernetes=required("k8s.io/kubernetes"),
        kwok=required("sigs.k8s.io/kwok"),
        etcd=required("go.etcd.io/etcd/server/v3"),
        go=go.group(1) if go else "",
    )


def cache_root(environ: Mapping[str, str]) -> Path:
    explicit = environ.get("CHAOSLAB_K8S_CACHE")
    if explicit:
        return Path(explicit)
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME", "~")).expanduser() / ".cache")
    return Path(base) / "chaoslab" / "k8s"


def build_key(module: Path = BUILD_MODULE) -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((module / name).read_bytes())
    digest.update(f"recipe={BUILD_RECIPE}".encode())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class Binaries:
    folder: Path

    def path(self, name: str) -> Path:
        return self.folder / name

    def complete(self) -> bool:
        return (self.folder / "BUILD-INFO.json").is_file() and all(
            (self.folder / name).is_file() for name in COMPONENTS
        )


def binaries_folder(environ: Mapping[str, str]) -> Path:
    versions = build_versions()
    return cache_root(environ) / f"{versions.kubernetes}-{build_key()}" / "bin"


def _kubernetes_ldflags(version: str) -> str:
    """`hack/lib/version.sh`'s -X flags, so each binary reports its real version (the
    API server's /version, the emulation version and feature gates depend on it)."""
    match = re.fullmatch(r"v(\d+)\.(\d+)\.\d+.*", version)
    if not match:
        raise LocalClusterError(f"unexpected Kubernetes version {version!r} in the build module")
    major, minor = match.groups()
    flags = ["-s", "-w"]  # no symbol table or DWARF: a third of the size
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {package}.gitVersion={version}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
        ]
    return " ".join(flags)


def _go_command(environ: Mapping[str, str]) -> str:
    found = shutil.which("go", path=environ.get("PATH")) or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None
    )
    if found is None:
        versions = build_versions()
        raise LocalClusterError(
            f"the `go` command was not found; the local control plane is built from Go modules "
            f"and needs Go {versions.go} or newer on PATH"
        )
    return found


def _run_go(argv: Sequence[str], env: Mapping[str, str], what: str, log: Callable[[str], None]) -> None:
    started = time.monotonic()
    process = subprocess.Popen(list(argv), cwd=BUILD_MODULE, env=dict(env), stdin=subprocess.DEVNULL)
    while True:
        try:
            code = process.wait(timeout=BUILD_PROGRESS_SECONDS)
            break
        except subprocess.TimeoutExpired:
            log(f"  ... still building {what} ({time.monotonic() - started:.0f}s)")
        except BaseException:
            process.terminate()
            process.wait()
            raise
    if code != 0:
        raise LocalClusterError(
            f"building {what} failed (exit {code}): `{' '.join(argv)}` in {BUILD_MODULE}. If a module is "
            "missing from the Go module proxy, change the versions in tests/e2e/build/go.mod "
            "(and run `go mod tidy` there)"
        )


def build(environ: Mapping[str, str], log: Callable[[str], None] = print) -> Binaries:
    """Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok into
    the cache folder, unless a complete build for this go.mod/go.sum is already there."""
    folder = binaries_folder(environ)
    binaries = Binaries(folder)
    if binaries.complete():
        return binaries
    with locked(folder.parent / "build.lock"):
        if binaries.complete():  # another process built it while we waited
            return binaries
        versions = build_versions()
        go = _go_command(environ)
        log(
            f"building Kubernetes {versions.kubernetes}, KWOK {versions.kwok} and etcd {versions.etcd} "
            f"into {folder} (once; cold: about 6 minutes on 2 cores, plus module downloads)"
        )
        started = time.monotonic()
        staging = folder.parent / f"bin.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        cores = max(1, min(2, os.cpu_count() or 1))
        env = {
            **environ,
            "CGO_ENABLED": "0",
            "GOMAXPROCS": str(cores),
            # -mod=readonly: a go.sum out of date fails instead of being rewritten.
            "GOFLAGS": "-mod=readonly -buildvcs=false",
        }
        common = [go, "build", "-p", str(cores), "-trimpath"]
        nice = ["nice", "-n", "10"] if shutil.which("nice") else []
        try:
            _run_go(
                nice + common + ["-ldflags", _kubernetes_ldflags(versions.kubernetes), "-o", str(staging) + "/",
                                 "k8s.io/kubernetes/cmd/kube-apiserver",
                                 "k8s.io/kubernetes/cmd/kube-controller-manager",
                                 "k8s.io/kubernetes/cmd/kube-scheduler",
                                 "sigs.k8s.io/kwok/cmd/kwok"],
                env, "kube-apiserver, kube-controller-manager, kube-scheduler and kwok", log,
            )
            _run_go(nice + common + ["-ldflags", "-s -w", "-o", str(staging / "etcd"), "go.etcd.io/etcd/server/v3"],
                    env, "etcd", log)
            reported = subprocess.run(
                [str(staging / "kube-apiserver"), "--version"], capture_output=True, text=True, check=False
            ).stdout.strip()
            if versions.kubernetes not in reported:
                raise LocalClusterError(
                    f"the built kube-apiserver reports {reported!r}, not {versions.kubernetes}: the version "
                    "ldflags did not apply"
                )
            seconds = time.monotonic() - started
            info = {**asdict(versions), "go_toolchain": _go_version(go, env), "build_seconds": round(seconds, 1),
                    "built": time.time(), "recipe": BUILD_RECIPE}
            (staging / "BUILD-INFO.json").write_text(json.dumps(info, indent=2))
            shutil.rmtree(folder, ignore_errors=True)
            staging.rename(folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log(f"built in {seconds:.0f}s: {folder}")
    return binaries


def _go_version(go: str, env: Mapping[str, str]) -> str:
    result = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, env=dict(env), check=False)
    return result.stdout.strip()


# --- processes ---------------------------------------------------------------------------


def process_start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time since boot), None when there is no such pid."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[19])


def process_state(pid: int) -> str | None:
    """The one-letter state of /proc/<pid>/stat (R, S, T for stopped, Z...)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2 :].split()[0]


def is_ours(record: ProcessRecord) -> bool:
    """The recorded process is still running (the same process, not a reused pid)."""
    state = process_state(record.pid)
    return state is not None and state != "Z" and process_start_ticks(record.pid) == record.start_ticks


def start_process(name: str, argv: Sequence[str], state_dir: Path, env: Mapping[str, str]) -> ProcessRecord:
    """Start one component in its own session (so its process group can be stopped whole
    and a Ctrl-C in the terminal that ran `up` does not reach it), logging to a file."""
    logs = state_dir / "logs"
    logs.mkdir(exist_ok=True)
    log_path = logs / (name.replace("/", "-") + ".log")
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=state_dir,
            env=dict(env),
            start_new_session=True,
        )
    ticks = process_start_ticks(process.pid)
    if ticks is None:
        raise LocalClusterError(f"{name} exited at once; see {log_path}")
    return ProcessRecord(name=name, pid=process.pid, pgid=process.pid, start_ticks=ticks, argv=tuple(argv), log=str(log_path))


def stop_processes(records: Sequence[ProcessRecord], log: Callable[[str], None]) -> list[str]:
    """Stop the recorded process groups, clients first (KWOK, controllers, scheduler), then
    the API server, then etcd: an API server whose etcd is already gone, or that still
    serves watches, takes far longer to shut down. Returns what could not be stopped."""
    tiers = [
        [r for r in records if r.name not in ("kube-apiserver", "etcd")],
        [r for r in records if r.name == "kube-apiserver"],
        [r for r in records if r.name == "etcd"],
    ]
    left: list[str] = []
    for tier in tiers:
        left += _stop_tier([r for r in tier if is_ours(r)], log)
    return left


def _stop_tier(alive: Sequence[ProcessRecord], log: Callable[[str], None]) -> list[str]:
    """SIGTERM (after SIGCONT: a frozen KWOK cannot act on SIGTERM), then SIGKILL after STOP_SECONDS."""
    for record in alive:
        _signal_group(record, signal.SIGCONT)
        _signal_group(record, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline and any(is_ours(r) for r in alive):
        time.sleep(0.05)
    for record in alive:
        if is_ours(record):
            log(f"{record.name} (pid {record.pid}) ignored SIGTERM for {STOP_SECONDS:g}s: SIGKILL")
            _signal_group(record, signal.SIGKILL)
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline and any(is_ours(r) for r in alive):
        time.sleep(0.05)
    return [f"{r.name} (pid {r.pid})" for r in alive if is_ours(r)]


def _signal_group(record: ProcessRecord, sig: signal.Signals) -> None:
    try:
        os.killpg(record.pgid, sig)
    except ProcessLookupError:
        pass  # the group is gone already: nothing left to signal
    except PermissionError as exc:
        raise LocalClusterError(f"cannot signal {record.name} (process group {record.pgid}): {exc}") from exc


def listening_sockets(pids: Sequence[int]) -> list[tuple[int, str, int]]:
    """(pid, local address, port) of every listening TCP socket the given processes hold.

    Read from /proc (socket inodes of each process's open files, matched against
    /proc/net/tcp and tcp6 in state LISTEN), so it needs no `ss` and sees only our sockets.
    """
    inodes: dict[str, int] = {}
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue  # closed while we looked
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
        except (FileNotFoundError, PermissionError):
            continue
    found: list[tuple[int, str, int]] = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            parts = line.split()
            local, state, inode = parts[1], parts[3], parts[9]
            if state != "0A" or inode not in inodes:  # 0A: TCP_LISTEN
                continue
            address_hex, port_hex = local.split(":")
            found.append((inodes[inode], _proc_address(address_hex, width), int(port_hex, 16)))
    return found


def _proc_address(hex_address: str, width: int) -> str:
    raw = bytes.fromhex(hex_address)
    if width == 8:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    # /proc/net/tcp6 stores the address as four host-order 32-bit words.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def is_loopback(address: str) -> bool:
    return address.startswith("127.") or address in ("::1", "::ffff:127.0.0.1") or address.startswith("::ffff:127.")


def free_ports(count: int) -> list[int]:
    """Distinct ports the kernel just handed out on 127.0.0.1 (free now; used a moment
    later). Held open together, so the same port is never handed out twice."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# --- certificates and kubeconfig -----------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        raise LocalClusterError("the `openssl` command is needed to make the test certificates (Debian: apt-get install openssl)")
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LocalClusterError(f"openssl {' '.join(args[:2])} failed: {result.stderr.strip()}")


def make_certificates(pki: Path) -> None:
    """A CA, the API server's serving certificate for 127.0.0.1/localhost, and the
    service-account signing key pair. Extensions are explicit: Python's ssl (and Go's
    x509) refuse certificates without keyUsage, basicConstraints and key identifiers."""
    pki.mkdir(mode=0o700)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", str(CERT_DAYS), "-subj", f"/CN={CLUSTER_NAME}-ca",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
             "-addext", "subjectKeyIdentifier=hash", cwd=pki)
    (pki / "apiserver.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n"
    )
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "apiserver.key", "-out", "apiserver.csr",
             "-subj", "/CN=kube-apiserver", cwd=pki)
    _openssl("x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "apiserver.crt", "-days", str(CERT_DAYS), "-extfile", "apiserver.ext", cwd=pki)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def write_kubeconfig(path: Path, server: str, ca: Path, token: str) -> None:
    """A kubeconfig with one context; JSON, which every kubeconfig reader takes as YAML."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER_NAME, "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": f"{CLUSTER_NAME}-admin", "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CLUSTER_NAME, "user": f"{CLUSTER_NAME}-admin"}}],
        "current-context": CONTEXT,
        "preferences": {},
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


# --- a minimal API client (the script runs before any virtualenv exists) -------------------


class Api:
    """Just enough of the Kubernetes REST API to create nodes and check readiness."""

    def __init__(self, server: str, ca: Path, token: str) -> None:
        self.server = server
        self._token = token
        self._context = ssl.create_default_context(cafile=str(ca))

    @staticmethod
    def from_kubeconfig(path: Path) -> Api:
        config = json.loads(path.read_text())
        cluster = config["clusters"][0]["cluster"]
        return Api(cluster["server"], Path(cluster["certificate-authority"]), config["users"][0]["user"]["token"])

    def request(
        self, method: str, path: str, body: Any = None, timeout: float = 10.0, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.server + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, context=self._context, timeout=timeout) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            status = exc.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = self.request(method, path, body)
        if status >= 300:
            message = payload.get("message") if isinstance(payload, dict) else payload
            raise LocalClusterError(f"{method} {path}: HTTP {status}: {message}")
        return payload


def poll(what: str, deadline_s: float, check: Callable[[], bool], watch: Sequence[ProcessRecord] = ()) -> None:
    """Until `check()` is true; fails early when one of `watch` has exited."""
    deadline = time.monotonic() + deadline_s
    while True:
        for record in watch:
            if not is_ours(record):
                raise LocalClusterError(f"{record.name} exited while waiting for {what}; see {record.log}")
        try:
            if check():
                return
        except (OSError, LocalClusterError, ValueError):
            pass  # not up yet: a refused connection or an HTTP error means "wait"
        if time.monotonic() >= deadline:
            raise LocalClusterError(f"timed out after {deadline_s:g}s waiting for {what}")
        time.sleep(0.25)


def node_body(name: str, index: int, control_plane: bool) -> dict[str, Any]:
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
    }
    taints = []
    if control_plane:
        labels[CONTROL_PLANE_LABEL] = ""
        # kubeadm's taint on control-plane nodes: workloads go to the workers.
        taints.append({"key": CONTROL_PLANE_LABEL, "effect": "NoSchedule"})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": {KWOK_NODE_ANNOTATION: "fake"}},
        "spec": {"taints": taints, "podCIDR": f"{POD_CIDR_PREFIX}.{index}.0/24", "podCIDRs": [f"{POD_CIDR_PREFIX}.{index}.0/24"]},
    }


def node_ready(node: Mapping[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


# --- up / down ---------------------------------------------------------------------------


def up(state_dir: Path, settings: Settings, environ: Mapping[str, str], log: Callable[[str], None] = print) -> State:
    """Build if needed, start everything, wait until it works, and return the state."""
    binaries = build(environ, log)
    with locked(_lock_path(state_dir, environ)):
        existing = read_state(state_dir)
        if existing is not None and existing.ready and all(is_ours(r) for r in existing.processes):
            log(f"already running: {existing.kubeconfig}")
            if existing.settings != settings:
                log(f"  (with {existing.settings}, not the {settings} asked for: `make k8s-local-down` first to change them)")
            return existing
        if existing is not None or state_dir.exists():
            log(f"cleaning up a previous local cluster in {state_dir}")
            _down_locked(state_dir, log)
        return _start(state_dir, settings, binaries, environ, log)


def _start(state_dir: Path, settings: Settings, binaries: Binaries, environ: Mapping[str, str], log: Callable[[str], None]) -> State:
    started = time.monotonic()
    state_dir.mkdir(mode=0o700, parents=True)
    try:
        return _start_in(state_dir, settings, binaries, environ, log, started)
    except BaseException:
        log("the local cluster did not come up; last log lines:")
        print_logs(read_state(state_dir), log, lines=15)
        _down_locked(state_dir, log)
        raise


def _start_in(
    state_dir: Path, settings: Settings, binaries: Binaries, environ: Mapping[str, str], log: Callable[[str], None], started: float
) -> State:
    pki = state_dir / "pki"
    make_certificates(pki)
    token = secrets.token_hex(32)
    # Static token file: token,user,uid,"groups"; system:masters passes every authorizer.
    (pki / "tokens.csv").write_text(f'{token},{CLUSTER_NAME}-admin,{CLUSTER_NAME}-admin,"system:masters"\n')
    etcd_client, etcd_peer, api_port = free_ports(3)
    server = f"https://127.0.0.1:{api_port}"
    kubeconfig = state_dir / "kubeconfig"
    write_kubeconfig(kubeconfig, server, pki / "ca.crt", token)
    versions = build_versions()
    workers = tuple(f"{CLUSTER_NAME}-worker-{i}" for i in range(1, settings.workers + 1)) if settings.kwok else ()
    state = State(
        state_dir=str(state_dir), kubeconfig=str(kubeconfig), context=CONTEXT, server=server,
        version=versions.kubernetes, control_plane_node=CONTROL_PLANE_NODE, workers=workers,
        settings=settings, started=time.time(),
    )
    write_state(state)
    # KWOK reads ~/.kwok/kwok.yaml too unless its work dir is elsewhere: keep it ours.
    env = {k: v for k, v in environ.items() if not k.startswith(("KUBECONFIG", "ETCD"))}
    env["KWOK_WORKDIR"] = str(state_dir / "kwok")

    def launch(name: str, argv: list[str]) -> ProcessRecord:
        nonlocal state
        record = start_process(name, argv, state_dir, env)
        state = replace(state, processes=state.processes + (record,))
        write_state(state)  # recorded at once: a failure later still stops it
        return record

    etcd = launch("etcd", [
        str(binaries.path("etcd")),
        "--name", CLUSTER_NAME,
        "--data-dir", str(state_dir / "etcd"),
        "--listen-client-urls", f"http://127.0.0.1:{etcd_client}",
        "--advertise-client-urls", f"http://127.0.0.1:{etcd_client}",
        "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
        "--initial-cluster", f"{CLUSTER_NAME}=http://127.0.0.1:{etcd_peer}",
        # A throwaway test store: no fsync (much less disk I/O on a shared machine).
        "--unsafe-no-fsync",
        "--log-level", "warn",
    ])
    poll("etcd", ETCD_READY_SECONDS, lambda: _http_ok(f"http://127.0.0.1:{etcd_client}/health"), [etcd])
    apiserver = launch("kube-apiserver", [
        str(binaries.path("kube-apiserver")),
        "--etcd-servers", f"http://127.0.0.1:{etcd_client}",
        "--bind-address", "127.0.0.1",
        "--advertise-address", "127.0.0.1",
        "--secure-port", str(api_port),
        "--tls-cert-file", str(pki / "apiserver.crt"),
        "--tls-private-key-file", str(pki / "apiserver.key"),
        "--client-ca-file", str(pki / "ca.crt"),
        "--token-auth-file", str(pki / "tokens.csv"),
        # RBAC as on a real cluster; every component here runs as the admin (system:masters).
        "--authorization-mode", "RBAC",
        "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
        "--service-account-key-file", str(pki / "sa.pub"),
        "--service-account-signing-key-file", str(pki / "sa.key"),
        "--service-cluster-ip-range", SERVICE_CIDR,
        # The `kubernetes` Service's endpoints would be 127.0.0.1, which the Endpoints
        # API rejects; nothing here uses that Service.
        "--endpoint-reconciler-type", "none",
        "--default-not-ready-toleration-seconds", str(settings.not_ready_toleration_seconds),
        "--default-unreachable-toleration-seconds", str(settings.unreachable_toleration_seconds),
        "--cert-dir", str(pki),
        # exec and logs go to a kubelet at its node's InternalIP (real nodes have no
        # resolvable hostname); KWOK nodes never serve either.
        "--kubelet-preferred-address-types", "InternalIP",
        "--profiling=false",
    ])
    api = Api(server, pki / "ca.crt", token)
    poll("kube-apiserver /readyz", APISERVER_READY_SECONDS, lambda: api.request("GET", "/readyz")[0] == 200, [apiserver])
    nodes = [(CONTROL_PLANE_NODE, True), *((name, False) for name in workers)] if settings.kwok else []
    for index, (name, control_plane) in enumerate(nodes):
        api.ok("POST", "/api/v1/nodes", node_body(name, index, control_plane))
    admin = ["--kubeconfig", str(kubeconfig)]
    controllers = launch("kube-controller-manager", [
        str(binaries.path("kube-controller-manager")), *admin,
        "--bind-address", "127.0.0.1",
        "--secure-port", "0",  # no health endpoint: readiness is checked by its effects
        "--leader-elect=false",
        "--cluster-name", CLUSTER_NAME,
        "--service-account-private-key-file", str(pki / "sa.key"),
        "--root-ca-file", str(pki / "ca.crt"),
        "--node-monitor-period", f"{settings.node_monitor_period_s}s",
        "--node-monitor-grace-period", f"{settings.node_monitor_grace_period_s}s",
        "--profiling=false",
    ])
    scheduler = launch("kube-scheduler", [
        str(binaries.path("kube-scheduler")), *admin,
        "--bind-address", "127.0.0.1",
        "--secure-port", "0",
        "--leader-elect=false",
        "--profiling=false",
    ])
    kwoks = []
    for index, (name, _) in enumerate(nodes):
        kwoks.append(launch(f"kwok/{name}", [
            str(binaries.path("kwok")), *admin,
            "--config", str(KWOK_STAGES),
            "--manage-single-node", name,
            # Loopback node addresses: a NodePort URL can only ever reach this machine.
            "--node-ip", f"127.0.0.{index + 2}",
            "--node-name", name,
            "--cidr", f"{POD_CIDR_PREFIX}.{index}.0/24",
            "--node-lease-duration-seconds", str(settings.node_lease_seconds),
        ]))
    everything = [etcd, apiserver, controllers, scheduler, *kwoks]
    if nodes:
        poll("every node Ready", CLUSTER_READY_SECONDS, lambda: _nodes_ready(api, [n for n, _ in nodes]), everything)
    # The service-account controller (kube-controller-manager) makes `default`;
    # pods cannot be created in a namespace before it exists.
    poll("the default ServiceAccount (kube-controller-manager)", CLUSTER_READY_SECONDS,
         lambda: api.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200, everything)
    if nodes:
        _smoke_pod(api, everything)
    check_loopback_only(everything)
    state = replace(state, ready=True, ready_after_s=round(time.monotonic() - started, 1))
    write_state(state)
    shown = f"{len(workers)} KWOK workers + {CONTROL_PLANE_NODE}" if nodes else "no KWOK nodes"
    log(f"local Kubernetes {versions.kubernetes} up in {state.ready_after_s:.0f}s: {shown}")
    log(f"export KUBECONFIG={kubeconfig}   # context {CONTEXT}, server {server}")
    return state


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status == 200


def _nodes_ready(api: Api, names: Sequence[str]) -> bool:
    listing = api.ok("GET", "/api/v1/nodes")
    ready = {n["metadata"]["name"] for n in listing.get("items", ()) if node_ready(n)}
    return set(names) <= ready


def _smoke_pod(api: Api, watch: Sequence[ProcessRecord]) -> None:
    """One pod through the whole path: admitted, scheduled (kube-scheduler), Running and
    Ready (KWOK), deleted (KWOK's pod-delete stage) - before any test relies on it."""
    path = "/api/v1/namespaces/default/pods"
    name = f"{CLUSTER_NAME}-smoke"
    api.ok("POST", path, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "smoke", "image": "registry.invalid/smoke:never-pulled"}]},
    })

    def ready() -> bool:
        pod = api.ok("GET", f"{path}/{name}")
        conditions = (pod.get("status") or {}).get("conditions") or ()
        return bool(pod["spec"].get("nodeName")) and any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    poll("a smoke pod to be scheduled and Ready (kube-scheduler, KWOK)", CLUSTER_READY_SECONDS, ready, watch)
    api.ok("DELETE", f"{path}/{name}")
    poll("the smoke pod to be deleted (KWOK)", CLUSTER_READY_SECONDS, lambda: api.request("GET", f"{path}/{name}")[0] == 404, watch)


def check_loopback_only(records: Sequence[ProcessRecord]) -> None:
    """Refuse a cluster with any listening socket outside 127.0.0.0/8 and ::1."""
    outside = [(pid, address, port) for pid, address, port in listening_sockets([r.pid for r in records]) if not is_loopback(address)]
    if outside:
        names = {r.pid: r.name for r in records}
        shown = ", ".join(f"{names.get(pid, pid)} on {address}:{port}" for pid, address, port in outside)
        raise LocalClusterError(f"refusing to run: listening on a non-loopback address: {shown}")


def _lock_path(state_dir: Path, environ: Mapping[str, str]) -> Path:
    """Beside the build cache, not in the temp folder: `down` leaves nothing in /tmp."""
    return cache_root(environ) / "locks" / f"{state_dir.name}.lock"


def down(state_dir: Path, environ: Mapping[str, str], log: Callable[[str], None] = print) -> None:
    with locked(_lock_path(state_dir, environ)):
        _down_locked(state_dir, log)


def _down_locked(state_dir: Path, log: Callable[[str], None]) -> None:
    state = read_state(state_dir)
    left: list[str] = []
    if state is not None:
        running = [r for r in state.processes if is_ours(r)]
        left = stop_processes(state.processes, log)
        log(f"stopped {len(running) - len(left)} process(es) of the local cluster")
    if state_dir.exists():
        if left:
            raise LocalClusterError(f"could not stop {', '.join(left)}; {state_dir} is kept for its state.json")
        shutil.rmtree(state_dir)
        log(f"removed {state_dir}")


def print_logs(state: State | None, log: Callable[[str], None], lines: int = 40) -> None:
    if state is None:
        log("no local cluster state")
        return
    for record in state.processes:
        print_tail(Path(record.log), record.name, log, lines)


def print_tail(path: Path, what: str, log: Callable[[str], None], lines: int) -> None:
    """The last `lines` lines of a log file under a `--- what (path, ...)` header; nothing
    when the file does not exist (a process that never started)."""
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return
    log(f"--- {what} ({path}, last {len(tail)} lines)")
    for line in tail:
        log("  " + line)


# --- node faults (the e2e tests' `command` node provider calls these) ----------------------


def node_action(state_dir: Path, action: str, node: str) -> str:
    """stop (freeze the node's KWOK: heartbeats end), resume, or state (running|paused)."""
    state = read_state(state_dir)
    if state is None or not state.ready:
        raise LocalClusterError(f"no local cluster is running (state {state_dir}); start one with `make k8s-local`")
    record = state.kwok_process(node)
    if not is_ours(record):
        raise LocalClusterError(f"the KWOK process of node {node} (pid {record.pid}) is not running; see {record.log}")
    if action == "stop":
        os.kill(record.pid, signal.SIGSTOP)
    elif action == "resume":
        os.kill(record.pid, signal.SIGCONT)
    elif action != "state":
        raise LocalClusterError(f"unknown node action {action!r} (expected stop, resume or state)")
    if action == "stop":
        _wait_for_process_state(record.pid, "T")
    return "paused" if process_state(record.pid) == "T" else "running"


def _wait_for_process_state(pid: int, wanted: str) -> None:
    deadline = time.monotonic() + 5.0
    while process_state(pid) != wanted and time.monotonic() < deadline:
        time.sleep(0.01)


# --- command line -----------------------------------------------------------------------


def _int_env(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise LocalClusterError(f"{name}={value!r}: expected a whole number") from exc


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state-dir", type=Path, default=default_state_dir(environ),
                        help="where the running cluster keeps its files (env CHAOSLAB_K8S_LOCAL_DIR)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build the binaries into the cache unless they are there")
    start = commands.add_parser("up", help="build if needed and start the local control plane")
    start.add_argument("--nodes", type=int, default=_int_env(environ, "K8S_NODES", DEFAULT_WORKERS),
                       help="worker nodes (KWOK), besides the control-plane node (env K8S_NODES)")
    start.add_argument("--node-monitor-grace-period", type=int,
                       default=_int_env(environ, "K8S_NODE_MONITOR_GRACE_PERIOD", DEFAULT_NODE_MONITOR_GRACE_PERIOD_S),
                       help="seconds without a heartbeat before a node is Unknown (upstream: 50)")
    start.add_argument("--node-monitor-period", type=int,
                       default=_int_env(environ, "K8S_NODE_MONITOR_PERIOD", DEFAULT_NODE_MONITOR_PERIOD_S),
                       help="seconds between node-lifecycle checks (upstream: 5)")
    start.add_argument("--node-lease-seconds", type=int,
                       default=_int_env(environ, "K8S_NODE_LEASE_SECONDS", DEFAULT_NODE_LEASE_SECONDS),
                       help="node Lease duration; KWOK renews every quarter of it (upstream kubelet: 40)")
    start.add_argument("--toleration-seconds", type=int,
                       default=_int_env(environ, "K8S_TOLERATION_SECONDS", DEFAULT_TOLERATION_SECONDS),
                       help="default not-ready/unreachable tolerationSeconds given to pods (upstream: 300)")
    commands.add_parser("down", help="stop what `up` started and remove its folder")
    commands.add_parser("status", help="what runs, and where")
    commands.add_parser("env", help="print `export KUBECONFIG=...` for a shell")
    logs = commands.add_parser("logs", help="the last lines of every component's log")
    logs.add_argument("--lines", type=int, default=40)
    node = commands.add_parser("node", help="freeze or resume one node's KWOK (its kubelet)")
    node.add_argument("action", choices=("stop", "resume", "state"))
    node.add_argument("name")
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if environ is None else environ)

    def log(message: str) -> None:
        print(message, flush=True)

    try:
        args = _parser(env).parse_args(argv)
        state_dir: Path = args.state_dir.resolve()
        if args.command == "build":
            started = time.monotonic()
            binaries = build(env, log)
            info = json.loads((binaries.folder / "BUILD-INFO.json").read_text())
            log(f"binaries: {binaries.folder} (built in {info['build_seconds']:.0f}s; this call {time.monotonic() - started:.1f}s)")
        elif args.command == "up":
            if args.nodes < 1:
                raise LocalClusterError(f"--nodes {args.nodes}: at least one worker node is needed")
            settings = Settings(
                workers=args.nodes,
                node_monitor_period_s=args.node_monitor_period,
                node_monitor_grace_period_s=args.node_monitor_grace_period,
                node_lease_seconds=args.node_lease_seconds,
                not_ready_toleration_seconds=args.toleration_seconds,
                unreachable_toleration_seconds=args.toleration_seconds,
            )
            up(state_dir, settings, env, log)
        elif args.command == "down":
            down(state_dir, env, log)
        elif args.command == "status":
            state = read_state(state_dir)
            if state is None:
                log(f"not running (no {state_dir / 'state.json'})")
                return 1
            for record in state.processes:
                shown = {None: "gone", "T": "frozen (SIGSTOP)"}.get(process_state(record.pid) if is_ours(record) else None, "running")
                log(f"{record.name:48} pid {record.pid:<8} {shown}")
            log(f"kubeconfig {state.kubeconfig} (context {state.context}, server {state.server}, ready={state.ready})")
        elif args.command == "env":
            state = read_state(state_dir)
            if state is None:
                raise LocalClusterError("no local cluster is running; start one with `make k8s-local`")
            log(f"export KUBECONFIG={state.kubeconfig}")
        elif args.command == "logs":
            print_logs(read_state(state_dir), log, lines=args.lines)
        elif args.command == "node":
            log(node_action(state_dir, args.action, args.name))
    except LocalClusterError as exc:
        print(f"localcluster: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("localcluster: interrupted", file=sys.stderr, flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
