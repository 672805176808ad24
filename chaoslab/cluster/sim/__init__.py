"""The simulated cluster (`backend: sim`): Kubernetes semantics, real processes, no install.

Why it exists: an experiment must teach the lessons of a real cluster (pods restart,
endpoints lag, a dead node keeps receiving traffic until the controller notices) on any
laptop, in seconds. So the simulator models the components whose delays decide recovery
and keeps everything a client touches real: pods are OS processes serving HTTP on
loopback ports, the Service is a real TCP proxy, a killed pod really refuses or resets
connections, a hung node really makes clients time out.

Layout (data flows one way: spec -> SimCluster -> components -> processes):

  cluster.py      SimCluster, the `Cluster` protocol: one control-plane thread runs every
                  component each tick (20 ms) and carries out faults
  state.py        the shared state (what the API server stores + each machine's reality)
                  and the ordered event log
  controllers.py  scheduler, ReplicaSet, Endpoints, node lifecycle + taint manager, drain
  kubelet.py      per node: heartbeats and status sync (a node marked Unknown is Ready
                  again at its next heartbeat), container start/restart with CrashLoopBackOff,
                  readiness/liveness probes, graceful termination, crash/hang/boot
  probes.py       kubelet HTTP probes on a thread pool (a hung pod never stalls the loop)
  service.py      starts a Service proxy process and feeds it endpoint lists
  proxy.py        the Service proxy process: kube-proxy (iptables mode) semantics
  processes.py    process groups with PDEATHSIG, registered with chaoslab/reaper.py (kills
                  what a dead engine left, stopped groups too), loopback ports outside
                  the ephemeral range
  app.py          the built-in workload (chaoslab/echo), stdlib only
  shim.py         the container shim around a user's `command`: its forks die with it

Every delay comes from `SimTimings` (upstream defaults, documented beside each field)
or from the pod fields a real cluster uses (probes, tolerationSeconds,
terminationGracePeriodSeconds). Events use the shared `EventKind` vocabulary.
"""

from chaoslab.cluster.sim.cluster import SimCluster

__all__ = ["SimCluster"]
