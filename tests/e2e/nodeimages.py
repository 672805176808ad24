"""What the real nodes run, built once and cached: kubelet, kube-proxy and the images.

Why it exists (a part of realnodes.py, split by concept): nothing can be pulled from any
registry here, so kubelet and kube-proxy are built from the control plane's Go module
(tests/e2e/build), the node's root filesystem is made with `mmdebstrap` from the apt
sources this machine already uses (read from /etc/apt when the image is built; no
package host is written in the repository), and the pod images (a static pause binary,
a Python image for the built-in app, a busybox httpd for user workloads) are written in
the layout `docker save` writes. Each output folder is keyed, built into a temporary
folder under a lock and renamed into place when complete. Standard library only.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__:  # imported by the tests (tests.e2e.nodeimages)
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


class NodeImagesError(lc.LocalClusterError):
    """A build step failed; the message says which and how to fix it."""


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
        raise NodeImagesError(f"the `{command}` command is needed to build the real nodes (Debian: apt-get install {package})")
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
        publish(staging, folder, info)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"built kubelet and kube-proxy in {seconds:.0f}s: {folder}")


def publish(staging: Path, folder: Path, info: Mapping[str, Any]) -> None:
    """Put a complete build in place: its BUILD-INFO.json (what `*_complete` looks for)
    last into the staging folder, then one rename, so a reader sees all or nothing."""
    (staging / "BUILD-INFO.json").write_text(json.dumps(info, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)


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
        raise NodeImagesError("no apt sources found in /etc/apt (sources.list or sources.list.d/*.sources|*.list); "
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
                raise NodeImagesError(f"mmdebstrap of the {name} image failed (exit {code}):\n{tail}")
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
        publish(staging, folder, info)
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


