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
  see "connection refused", as often as the kernel's ICMP rate limit lets its answer
  through; the other SYNs go unanswered and are retransmitted a second later, as on a
  node (see `render`);
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

The table's fixed part is loaded once (`render_table`); each sync is one nft
transaction written from the state before and after (`render_sync`, pure functions),
which `nft -f` applies atomically, as kube-proxy's syncs are.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from chaoslab.cluster.sim.netns import PrivateNetwork
from chaoslab.errors import ClusterError

Address = tuple[str, int]

TABLE = "kube-proxy"
# The kernel's ICMP error budget per peer: net.ipv4.icmp_ratelimit (1000 ms) refills one
# token a period, up to XRLIM_BURST_FACTOR (6, net/ipv4/icmp.c).
ICMP_RATE_BURST = 6
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
        # .2 to .254: .1 is the node's bridge (cni0) on a cluster, .255 the broadcast.
        first, count = subnet.network_address + 2, subnet.num_addresses - 3
        start = self._last.get(node, 0)
        for step in range(count):
            index = (start + step) % count
            ip = str(first + index)
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


def render_table() -> str:
    """The `ip kube-proxy` table's fixed part: base chains, maps, the reject and the
    network model. Loaded once; `render_sync` changes only what a sync changes, so
    state in the table (the reject budget) lives on across syncs, as the kernel's does."""
    return "\n".join(
        [
            f"table ip {TABLE} {{",
            '  comment "rules for kube-proxy (chaoslab sim)"',
            "  set unreachable {",
            "    type ipv4_addr",
            '    comment "pods on a crashed or hung node: their packets go nowhere"',
            "  }",
            "  map service-ips {",
            "    type ipv4_addr . inet_proto . inet_service : verdict",
            "  }",
            "  map no-endpoint-services {",
            "    type ipv4_addr . inet_proto . inet_service : verdict",
            "  }",
            # kube-proxy writes `reject`: an ICMP port unreachable, which the kernel
            # rate-limits per client address (net.ipv4.icmp_ratelimit, 1000 ms, in a
            # token bucket of 6: XRLIM_BURST_FACTOR in net/ipv4/icmp.c), so most SYNs to
            # a Service without endpoints go unanswered and are retransmitted a second
            # later (the real-node calibration shows it). Our clients speak from
            # 127.0.0.1, to which no ICMP error from a ClusterIP is delivered, so TCP
            # gets the other answer that means "refused", a reset, under the same budget;
            # the rest are dropped.
            "  limit reject-budget {",
            f"    rate 1/second burst {ICMP_RATE_BURST} packets",
            "  }",
            "  chain reject-chain {",
            '    meta l4proto tcp limit name "reject-budget" reject with tcp reset',
            "    drop",
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
            # As kube-proxy does for a node's own clients: before the packet leaves, so a
            # SYN dropped here leaves no conntrack entry and its retransmit is routed
            # anew (to an endpoint that came back meanwhile).
            "  chain filter-output {",
            "    type filter hook output priority 0; policy accept;",
            "    ct state new jump service-endpoints-check",
            "  }",
            # The network model, on the far side of the loopback: a packet is dropped
            # where it arrives, after it left (conntrack confirmed its NAT on the way
            # out), as on a cluster where the entry node's conntrack keeps the
            # connection on the lost pod and the SYN's retransmits go there too.
            "  chain filter-prerouting {",
            "    type filter hook prerouting priority 0; policy accept;",
            "    ip daddr @unreachable drop",
            f"    ip daddr {POD_NETWORK} fib daddr type != local drop",
            "  }",
            "}",
        ]
    ) + "\n"


def render_sync(before: Iterable[ServiceRules], services: Iterable[ServiceRules], unreachable: Iterable[str]) -> str:
    """One sync, as one nft transaction: the maps and the lost-node set rewritten, the
    chains of Services that had endpoints `before` removed, those of `services` with
    endpoints written."""
    table = f"ip {TABLE}"
    services = sorted(services, key=lambda service: service.cluster_ip)
    live = [service for service in services if service.endpoints]
    empty = [service for service in services if not service.endpoints]
    lines = [f"flush map {table} service-ips", f"flush map {table} no-endpoint-services", f"flush set {table} unreachable"]
    for service in before:
        if service.endpoints:
            lines += [f"flush chain {table} {_chain(service)}", f"delete chain {table} {_chain(service)}"]
    for service in live:
        backends = ", ".join(f"{index} : {ip} . {port}" for index, (ip, port) in enumerate(service.endpoints))
        lines += [
            f"add chain {table} {_chain(service)}",
            f"add rule {table} {_chain(service)} meta l4proto tcp dnat ip addr . port to "
            f"numgen random mod {len(service.endpoints)} map {{ {backends} }}",
        ]
    if live:
        elements = ", ".join(f"{s.cluster_ip} . tcp . {SERVICE_PORT} : goto {_chain(s)}" for s in live)
        lines.append(f"add element {table} service-ips {{ {elements} }}")
    if empty:
        elements = ", ".join(f"{s.cluster_ip} . tcp . {SERVICE_PORT} : goto reject-chain" for s in empty)
        lines.append(f"add element {table} no-endpoint-services {{ {elements} }}")
    dead = sorted(set(unreachable), key=ipaddress.IPv4Address)
    if dead:
        lines.append(f"add element {table} unreachable {{ {', '.join(dead)} }}")
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
        self._synced: tuple[ServiceRules, ...] = ()  # what the kernel has now
        network.nft_apply(render_table())

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
        services = tuple(self._services.values())
        self.network.nft_apply(render_sync(self._synced, services, unreachable))
        self._synced = services


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
