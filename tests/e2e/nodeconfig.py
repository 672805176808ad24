"""How each real node is configured: its entrypoint, containerd, kubelet, kube-proxy, CNI.

Why it exists (a part of realnodes.py, split by concept): these files are what makes a
Docker container a working Kubernetes node on this kind of machine (cgroup v1 without
systemd, no CAP_SYS_RESOURCE, kernel-wide sysctls the kubelet must not write on the
host); each setting says why. realnodes.py writes them per node and mounts them
read-only at /etc/chaoslab. Standard library only.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__:  # imported by the tests (tests.e2e.nodeconfig)
    from . import localcluster as lc
else:  # run as a script, before any virtualenv exists
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import localcluster as lc  # noqa: E402

if __package__:
    from .nodeimages import PAUSE_IMAGE
else:
    from nodeimages import PAUSE_IMAGE  # noqa: E402

# The node-lifecycle timing of the control plane (localcluster.py's shortened defaults:
# grace 10 s, monitor period 1 s) and of the kubelets: an 8 s Lease renewed every 2 s
# (upstream kubelet: 40 s, every 10 s) and a node status every 2 s (upstream: 10 s).
NODE_LEASE_SECONDS = 8
NODE_STATUS_UPDATE_SECONDS = 2

# Pod network: one /24 per node (index 0 = the control-plane node), routed node to node.
POD_CIDR = "10.244.0.0/16"
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


@dataclass(frozen=True)
class NodeRecord:
    name: str  # the Kubernetes node name, also the container's name
    address: str
    pod_cidr: str
    control_plane: bool


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
# The node routes between its pods, kube-proxy's NAT and the other nodes: forwarding on in
# the node's own network namespace (a new namespace copies the host's value, which may be
# 0; the host's own setting is never written).
echo 1 > /proc/sys/net/ipv4/ip_forward
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


