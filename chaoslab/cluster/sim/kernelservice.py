"""The simulated Service in the kernel: pod IPs, a ClusterIP, and kube-proxy's nftables rules.

Why it exists: the user-space proxy (proxy.py) costs a couple of milliseconds and a
share of a core per request, and fails differently from a cluster (it resets where a
node refuses). A real kube-proxy writes rules and lets the kernel rewrite packets. In
the run's private network (netns.py) the simulator can do the same, so what clients
see is what a kernel does:

- every pod gets its own IP from its node's subnet (node-1 10.244.1.0/24, ...),
  allocated as the host-local IPAM plugin does: the next free address after the last
  one handed out, so a replacement pod gets a new IP; the address is on the namespace's
  loopback from scheduling until the pod object is gone (its sandbox);
- each Service gets a ClusterIP from 10.96.0.0/12 (kube-apiserver's
  --service-cluster-ip-range as kubeadm sets it) on port 80;
- the rules follow kube-proxy's nftables mode (pkg/proxy/nftables/proxier.go, v1.36):
  table `ip kube-proxy`; the `nat-output` base chain (nat, output hook, priority
  dstnat = -100) jumps to `services`, which looks up `ip daddr . meta l4proto . th dport`
  in the `service-ips` verdict map and goes to the Service's chain; that chain picks a
  backend per new connection with `dnat ip addr . port to numgen random mod N map {...}`
  (what writeServiceToEndpointRules writes when there is no session affinity).
  A Service without endpoints is in `no-endpoint-services` instead, checked by
  `service-endpoints-check` from the `filter-output` base chain (filter, output hook,
  priority 0) for `ct state new`, which goes to `reject-chain`: `reject`, so clients
  see "connection refused" (for TCP as a reset to the SYN, see `render`);
- NAT happens once per connection: conntrack keeps an established connection on its
  backend after the endpoint is removed, as on a node (kube-proxy flushes conntrack
  for UDP only);
- packets to the pods of a crashed or hung node are dropped (`unreachable` set), and
  so are packets to a pod IP nobody has any more (its pod is gone while a stale rule
  still routes to it): on a cluster they go to a node that has no such pod, and clients
  time out. They are dropped where they arrive (prerouting, after the loopback), not
  where they leave, so conntrack has confirmed the connection's NAT and the SYN's
  retransmits follow it to the same lost pod, as the entry node's conntrack does. A pod whose container died on a live node still has its IP; the kernel
  answers for it with a reset, and clients see "connection refused", as on a node.
  These two rules are the simulator's model of the network, not kube-proxy's.

The ruleset is rendered whole from the current state (`render`, a pure function) and
loaded with `nft -f`, which applies it atomically.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from chaoslab.cluster.sim.netns import PrivateNetwork
from chaoslab.errors import ClusterError

Address = tuple[str, int]

TABLE = "kube-proxy"
# The Service port clients use (a Service's `port`; the pods listen on their own port,
# its `targetPort`).
SERVICE_PORT = 80
# The first ClusterIP handed out: kube-apiserver gives 10.96.0.1 to `kubernetes` and
# kubeadm 10.96.0.10 to kube-dns; the workload's Services come after.
FIRST_CLUSTER_IP = ipaddress.IPv4Address("10.96.0.11")
# The node subnets: node-<i> gets 10.244.<i>.0/24, as flannel and kubeadm's
# --pod-network-cidr=10.244.0.0/16 give each node a /24 of it.
POD_NETWORK = ipaddress.IPv4Network("10.244.0.0/16")


def node_subnet(node: str) -> ipaddress.IPv4Network:
    """node-<i>'s pod subnet, 10.244.<i>.0/24."""
    try:
        index = int(node.rsplit("-", 1)[1])
    except (IndexError, ValueError) as exc:
        raise ClusterError(f"no pod subnet for a node named {node!r}") from exc
    return ipaddress.IPv4Network(f"10.244.{index}.0/24")


class PodAddresses:
    """Pod IPs per node, the way host-local IPAM hands them out: the next free one after
    the last given, wrapping, so an IP comes back only after the whole range was used."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._taken: set[str] = set()

    def allocate(self, node: str) -> str:
        subnet = node_subnet(node)
        hosts = list(subnet.hosts())[1:]  # .1 is the node's bridge (cni0) on a cluster
        start = self._last.get(node, 0)
        for step in range(len(hosts)):
            index = (start + step) % len(hosts)
            ip = str(hosts[index])
            if ip not in self._taken:
                self._taken.add(ip)
                self._last[node] = index + 1
                return ip
        raise ClusterError(f"{node} has no free pod IP left in {subnet}")

    def release(self, ip: str) -> None:
        self._taken.discard(ip)


@dataclass(frozen=True)
class ServiceRules:
    """One Service as kube-proxy sees it: its ClusterIP and its ready endpoints."""

    name: str
    cluster_ip: str
    endpoints: tuple[Address, ...]


def render(services: Iterable[ServiceRules], unreachable: Iterable[str]) -> str:
    """The whole `ip kube-proxy` table, replacing any earlier one in the same transaction."""
    services = sorted(services, key=lambda service: service.cluster_ip)
    lines = [
        # Creating then deleting the table makes "delete" safe when it does not exist yet.
        f"table ip {TABLE} {{ }}",
        f"delete table ip {TABLE}",
        f"table ip {TABLE} {{",
        '  comment "rules for kube-proxy (chaoslab sim)"',
        "  set unreachable {",
        "    type ipv4_addr",
        '    comment "pods on a crashed or hung node: their packets go nowhere"',
    ]
    dead = sorted(set(unreachable), key=ipaddress.IPv4Address)
    if dead:
        lines.append(f"    elements = {{ {', '.join(dead)} }}")
    lines += [
        "  }",
        "  map service-ips {",
        "    type ipv4_addr . inet_proto . inet_service : verdict",
    ]
    live = [service for service in services if service.endpoints]
    if live:
        elements = ", ".join(
            f"{service.cluster_ip} . tcp . {SERVICE_PORT} : goto {_chain(service)}" for service in live
        )
        lines.append(f"    elements = {{ {elements} }}")
    lines += [
        "  }",
        "  map no-endpoint-services {",
        "    type ipv4_addr . inet_proto . inet_service : verdict",
    ]
    empty = [service for service in services if not service.endpoints]
    if empty:
        elements = ", ".join(f"{service.cluster_ip} . tcp . {SERVICE_PORT} : goto reject-chain" for service in empty)
        lines.append(f"    elements = {{ {elements} }}")
    lines += [
        "  }",
        "  chain reject-chain {",
        # kube-proxy writes a plain `reject` (ICMP port unreachable). Our clients speak
        # from 127.0.0.1, and an ICMP error from a ClusterIP to a loopback address is
        # dropped as a martian, so TCP gets the other answer that means the same to a
        # client, a reset to its SYN: "connection refused" either way.
        "    meta l4proto tcp reject with tcp reset",
        "    reject",
        "  }",
        "  chain service-endpoints-check {",
        "    ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
        "  }",
        "  chain services {",
        "    ip daddr . meta l4proto . th dport vmap @service-ips",
        "  }",
        "  chain nat-output {",
        "    type nat hook output priority -100; policy accept;",
        "    jump services",
        "  }",
        "  chain filter-output {",
        "    type filter hook output priority 0; policy accept;",
        "    ct state new jump service-endpoints-check",
        "  }",
        # The network model, on the far side of the loopback: a packet is dropped where
        # it arrives, after it left (conntrack confirmed its NAT on the way out), as on a
        # cluster where the entry node's conntrack keeps the connection on the lost pod
        # and the SYN's retransmits go there too. Dropped on the way out instead, the
        # connection would never be confirmed, and a retransmit would be balanced anew.
        "  chain filter-prerouting {",
        "    type filter hook prerouting priority 0; policy accept;",
        "    ip daddr @unreachable drop",
        f"    ip daddr {POD_NETWORK} fib daddr type != local drop",
        "  }",
    ]
    for service in live:
        backends = ", ".join(f"{index} : {ip} . {port}" for index, (ip, port) in enumerate(service.endpoints))
        lines += [
            f"  chain {_chain(service)} {{",
            f"    meta l4proto tcp dnat ip addr . port to numgen random mod {len(service.endpoints)} map {{ {backends} }}",
            "  }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _chain(service: ServiceRules) -> str:
    # kube-proxy names it service-<hash>-<namespace>/<name>/<protocol>/<port name>.
    return f"service-{service.name}-tcp"


class KernelServices:
    """Every Service of one sim cluster, and the rules that route them. Control-plane thread only."""

    def __init__(self, network: PrivateNetwork) -> None:
        self.network = network
        self.pod_addresses = PodAddresses()
        self._next_ip = FIRST_CLUSTER_IP
        self._services: dict[str, ServiceRules] = {}
        self._blackholes: dict[str, frozenset[str]] = {}

    def create(self, name: str) -> KernelService:
        ip = str(self._next_ip)
        self._next_ip += 1
        self._services[name] = ServiceRules(name, ip, ())
        self._blackholes[name] = frozenset()
        self._apply()
        return KernelService(self, name, ip)

    def allocate(self, node: str) -> str:
        """A new pod IP on `node`, on the namespace's loopback from now on (state.PodIPs)."""
        ip = self.pod_addresses.allocate(node)
        self.network.run([self.network.ip, "addr", "add", f"{ip}/32", "dev", "lo"])
        return ip

    def release(self, ip: str) -> None:
        """The pod's sandbox is gone: nothing answers at its IP any more."""
        self.pod_addresses.release(ip)
        try:
            self.network.run([self.network.ip, "addr", "del", f"{ip}/32", "dev", "lo"])
        except ClusterError:
            pass  # the network is already gone (teardown after its agent died)

    def update(self, name: str, endpoints: Iterable[Address], blackhole: Iterable[Address]) -> None:
        service = self._services[name]
        endpoints = tuple(sorted(endpoints))
        dead = frozenset(ip for ip, _ in blackhole)
        if endpoints == service.endpoints and dead == self._blackholes[name]:
            return
        self._services[name] = ServiceRules(name, service.cluster_ip, endpoints)
        self._blackholes[name] = dead
        self._apply()

    def remove(self, name: str) -> None:
        if self._services.pop(name, None) is not None:
            self._blackholes.pop(name, None)
            self._apply()

    def failure(self) -> str:
        return self.network.failure()

    def _apply(self) -> None:
        unreachable = frozenset().union(*self._blackholes.values())
        self.network.nft_apply(render(self._services.values(), unreachable))


class KernelService:
    """One Service's handle, the same surface as the user-space proxy's (service.py)."""

    def __init__(self, table: KernelServices, name: str, cluster_ip: str) -> None:
        self._table = table
        self.name = name
        self.cluster_ip = cluster_ip
        self.port = SERVICE_PORT

    @property
    def url(self) -> str:
        return f"http://{self.cluster_ip}"

    def update(self, endpoints: Iterable[Address], blackhole: Iterable[Address], ack: bool = False) -> None:
        """New rules, in force when this returns (nft -f is synchronous), so `ack` is implied."""
        self._table.update(self.name, endpoints, blackhole)

    def failure(self) -> str:
        return self._table.failure()

    def stop(self) -> None:
        try:
            self._table.remove(self.name)
        except ClusterError:
            pass  # the network is already gone, and the rules with it
