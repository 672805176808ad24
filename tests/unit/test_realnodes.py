"""The real-node harness's pure parts, and its refusal when containers cannot run.

tests/e2e/realnodes.py is exercised whole by `make e2e-nodes`; these check, without
Docker, what a person meets first: a machine where dockerd cannot start gets the reason
(not a skip), the host comparison names what changed, images are in the layout
`docker save` writes, and the node subnet never shadows a route of the host.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.e2e import nodeimages, realnodes


def _script(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def test_a_machine_where_dockerd_cannot_start_fails_with_its_reason(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _script(bin_dir, "dockerd", 'echo "failed to mount cgroup: operation not permitted" >&2; exit 1')
    _script(bin_dir, "docker", "exit 1")
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    environ = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    with pytest.raises(realnodes.RealNodesError, match=r"(?s)containers cannot run here: dockerd did not start.*operation not permitted"):
        realnodes.start_dockerd(state_dir, environ)


def test_without_docker_installed_the_error_says_what_to_install(tmp_path: Path) -> None:
    environ = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
    with pytest.raises(realnodes.RealNodesError, match=r"apt-get install docker.io"):
        realnodes.start_dockerd(tmp_path, environ)


def test_the_host_comparison_names_each_change() -> None:
    before = {"sysctls": {"vm/overcommit_memory": "0", "kernel/panic": "1"}, "nft": "", "links": ["eth0", "lo"]}
    assert realnodes.compare_host(before, before) == []
    after = {"sysctls": {"vm/overcommit_memory": "1", "kernel/panic": "1"}, "nft": "table ip filter {\n}\n",
             "links": ["cni0", "eth0", "lo"]}
    differences = realnodes.compare_host(before, after)
    assert differences[0] == "sysctl vm.overcommit_memory: 0 -> 1"
    assert "nft ruleset changed" in differences[1] and "table ip filter" in differences[1]
    assert differences[2] == "network links added ['cni0'], removed []"


def test_pod_images_are_written_in_docker_save_layout(tmp_path: Path) -> None:
    layer = tmp_path / "layer.tar"
    payload = tmp_path / "pause"
    payload.write_bytes(b"\x7fELF")
    with tarfile.open(layer, "w") as tar:
        tar.add(payload, arcname="pause")
    archive = tmp_path / "pause.tar"
    realnodes.write_docker_archive(archive, "chaoslab.local/pause:1", layer, {"Entrypoint": ["/pause"]})
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        (entry,) = manifest
        assert entry["RepoTags"] == ["chaoslab.local/pause:1"]
        config = json.load(tar.extractfile(entry["Config"]))
        (layer_name,) = entry["Layers"]
        assert tar.extractfile(layer_name).read() == layer.read_bytes()
    assert config["os"] == "linux" and config["config"] == {"Entrypoint": ["/pause"]}
    assert config["rootfs"]["diff_ids"] == [f"sha256:{layer_name.split('/')[0]}"]


def test_the_node_subnet_avoids_every_host_route() -> None:
    routes = [(0x0AF00000, 0xFFFF0000)]  # 10.240.0.0/16
    assert realnodes._overlaps("10.240.5.0/24", routes)
    assert realnodes._overlaps("10.0.0.0/8", routes)
    assert not realnodes._overlaps("172.28.200.0/24", routes)
    assert realnodes.choose_subnet(Path("/tmp/x")) in realnodes.NODE_SUBNET_CANDIDATES


def test_every_node_masks_the_kernel_wide_sysctls_the_kubelet_sets(tmp_path: Path) -> None:
    nodes = (
        realnodes.NodeRecord("cp", "172.28.200.10", "10.244.0.0/24", True),
        realnodes.NodeRecord("w1", "172.28.200.11", "10.244.1.0/24", False),
    )
    kubeconfig = tmp_path / "kubeconfig"
    ca = tmp_path / "ca.crt"
    ca.write_text("CA")
    kubeconfig.write_text(json.dumps({"clusters": [{"cluster": {"certificate-authority": str(ca)}}],
                                      "users": [{"user": {"token": "t"}}]}))
    realnodes.write_node_config(tmp_path / "w1", nodes[1], nodes, "https://172.28.200.1:1234", kubeconfig, "key")
    conf = tmp_path / "w1" / "conf"
    masked = dict(line.split() for line in (conf / "sysctls").read_text().splitlines())
    assert masked["vm/overcommit_memory"] == "1" and masked["kernel/panic"] == "10" and masked["kernel/panic_on_oops"] == "1"
    assert (conf / "routes").read_text() == "10.244.0.0/24 172.28.200.10\n"  # to every other node's pods
    assert (conf / "kubelet-flags").read_text() == ""  # only the control-plane node is tainted
    proxy = json.loads((conf / "kube-proxy.yaml").read_text())
    assert proxy["conntrack"]["maxPerCore"] == 0  # the host's nf_conntrack_max is left alone


def test_a_build_is_published_whole_replacing_an_older_one(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "stale.tar").write_text("old")
    staging = tmp_path / "images.partial-1"
    staging.mkdir()
    (staging / "node-rootfs.tar").write_text("new")
    nodeimages.publish(staging, folder, {"recipe": 1})
    assert sorted(p.name for p in folder.iterdir()) == ["BUILD-INFO.json", "node-rootfs.tar"]
    assert json.loads((folder / "BUILD-INFO.json").read_text()) == {"recipe": 1}
    assert not staging.exists()
