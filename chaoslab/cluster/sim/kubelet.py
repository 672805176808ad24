"""The simulated kubelet: one per node, it turns bound pods into running processes.

Why it exists: recovery after a pod or container fault is mostly kubelet behaviour
(start latency, probes, restart back-off, graceful termination), so it is modelled with
upstream semantics rather than approximated:

- Heartbeat and status: while the node is up the kubelet renews its Lease and syncs its
  node status every `node_heartbeat_period` (upstream: Lease renewal and
  nodeStatusUpdateFrequency, both 10 s); a crashed or hung node stops. When the API
  says the node is not Ready (the node-lifecycle controller set Ready=Unknown after a
  missed heartbeat) the kubelet's next status sync posts Ready=True again (reason
  KubeletReady, "kubelet is posting ready status"), so a grace period shorter than the
  heartbeat makes nodes flap between Unknown and Ready, as upstream. At the same sync
  its status manager writes back the Ready condition of pods the controller marked
  NotReady (MarkPodsNotReady) while the kubelet still finds them ready (upstream:
  status manager reconcile, syncPeriod 10 s).
- Start: a pod bound to the node starts `pod_start_delay` after binding (sandbox +
  container creation; a sim choice, 0.5 s). Restarts in place reuse the sandbox and
  start as soon as the back-off allows.
- Probes: each probe first runs at container start + initialDelaySeconds (the kubelet
  triggers a readiness probe as soon as a container runs and no result exists yet),
  then every periodSeconds, with timeoutSeconds, successThreshold and failureThreshold
  as in the Pod API. Without a readiness probe a running container is Ready at once.
  A liveness failure kills the container (SIGTERM, SIGKILL after the grace period).
- Restart back-off (CrashLoopBackOff): the first restart is immediate, the next waits
  `back_off_initial` (10 s) and each further one doubles up to `back_off_max` (300 s);
  a container that ran `back_off_reset` (600 s) starts over. Upstream the first crash
  restarts without delay (kubernetes/kubernetes#133472, kubernetes/website#41570; also
  "Kubernetes in Action", 2nd ed., 6.2.1: immediately, then 10, 20, 40 ... s).
- Termination: SIGTERM to the container's process group, SIGKILL after the pod's grace
  period; the pod object is removed (pod_deleted) once the process is gone.
- The machine: `crash` SIGKILLs every container and silences the kubelet; `hang`
  SIGSTOPs them; `boot` brings the kubelet back, which restarts the containers of pods
  still bound to the node and finishes deletions that happened while it was away.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from chaoslab.cluster.base import EventKind
from chaoslab.cluster.sim.probes import Prober, ProbeResult
from chaoslab.cluster.sim.processes import describe_exit, spawn, tail
from chaoslab.cluster.sim.state import (
    CONTAINER_RUNNING,
    CONTAINER_STOPPING,
    CONTAINER_WAITING,
    NODE_CRASHED,
    NODE_HUNG,
    NODE_UP,
    ProbeTracker,
    SimDeployment,
    SimNode,
    SimPod,
    World,
)

# The Ready condition's reason when the kubelet posts it (upstream nodestatus.ReadyCondition).
NODE_READY_REASON = "KubeletReady"
# Reason on a pod Ready condition the kubelet's status manager wrote back after the
# node-lifecycle controller had marked the pod NotReady (a sim label: upstream writes
# the kubelet's cached status without a reason).
POD_STATUS_SYNC_REASON = "KubeletStatusSync"
APP_PATH = Path(__file__).with_name("app.py")
KV_PATH = Path(__file__).with_name("kv.py")
KV_IMAGE = "chaoslab/kv"
SHIM_PATH = Path(__file__).with_name("shim.py")
# Kubernetes expands $(VAR) in command and args from the container's environment.
_VAR_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def container_env(deployment: SimDeployment, pod: SimPod, node: str, base: Mapping[str, str]) -> dict[str, str]:
    """The container's environment: the host's (for PATH), the app knobs, then the spec's env."""
    spec = deployment.spec
    env = dict(base)
    env.update(
        {
            "PORT": str(pod.port),
            # The address to bind: the pod's own IP on the kernel Service path (where
            # 127.0.0.1 is not reachable through the Service, as in a real pod).
            "HOST": pod.ip,
            "POD_IP": pod.ip,
            "POD_NAME": pod.name,
            "NODE_NAME": node,
            "CHAOSLAB_LATENCY_MS": f"{spec.app.latency_ms:g}",
            "CHAOSLAB_LATENCY_JITTER_MS": f"{spec.app.latency_jitter_ms:g}",
            "CHAOSLAB_CPU_MS": f"{spec.app.cpu_ms:g}",
            "CHAOSLAB_STARTUP_SECONDS": f"{spec.app.startup_seconds:g}",
            "CHAOSLAB_READINESS_DELAY_SECONDS": f"{spec.app.readiness_delay_seconds:g}",
            "CHAOSLAB_ERROR_RATE": f"{spec.app.error_rate:g}",
            "CHAOSLAB_REPLAY_MS_PER_WRITE": f"{spec.app.replay_ms_per_write:g}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if pod.data_dir is not None:
        # A real pod sees its volume at mountPath; a simulated one at this folder.
        env["CHAOSLAB_DATA_DIR"] = str(pod.data_dir)
    for var in spec.env:
        env[var.name] = _expand(var.value, env)
    # The simulated pod's "IP" is its loopback port: $PORT must win over any spec value.
    env["PORT"] = str(pod.port)
    return env


def container_argv(deployment: SimDeployment, env: Mapping[str, str], python: str) -> list[str]:
    """`command` + `args` as Kubernetes runs them; the built-in app when no command is given."""
    spec = deployment.spec
    if spec.command:
        argv = list(spec.command) + list(spec.args or [])
    else:
        # -S: the app is stdlib only, skipping site saves start-up time and memory per pod.
        app = KV_PATH if spec.image == KV_IMAGE else APP_PATH
        argv = [python, "-S", str(app)] + list(spec.args or [])
    return [_expand(part, env) for part in argv]


def shimmed(argv: list[str], env: Mapping[str, str], python: str) -> list[str]:
    """A user's command run under the container shim (shim.py), its program resolved on
    the container's PATH first; a missing program raises FileNotFoundError here, before
    anything starts, as the container runtime reports it (RunContainerError)."""
    program = argv[0]
    if "/" in program:
        resolved = program if os.access(program, os.X_OK) and not os.path.isdir(program) else None
    else:
        resolved = shutil.which(program, path=env.get("PATH", os.defpath))
    if resolved is None:
        # The container runtime's words for it: `exec: "x": executable file not found in $PATH`.
        raise FileNotFoundError(errno.ENOENT, "executable file not found in $PATH", program)
    # The shim is told which process must stay its parent: this one, the engine.
    return [python, "-S", str(SHIM_PATH), str(os.getpid()), resolved, *argv[1:]]


def _expand(text: str, env: Mapping[str, str]) -> str:
    return _VAR_REFERENCE.sub(lambda m: env.get(m.group(1), m.group(0)), text)


class Kubelet:
    """The node agent of one simulated node. Called on the control-plane thread only."""

    def __init__(
        self,
        world: World,
        node: SimNode,
        prober: Prober,
        base_env: Mapping[str, str],
        python: str = sys.executable,
    ) -> None:
        self.world = world
        self.node = node
        self.prober = prober
        self.base_env = dict(base_env)
        self.python = python
        self._next_relist = 0.0

    # --- the periodic sync ----------------------------------------------------------

    def tick(self, now: float) -> None:
        node = self.node
        if node.state != NODE_UP:
            return
        if now >= node.next_heartbeat:
            self._heartbeat(now)
        relist = now >= self._next_relist
        if relist:
            self._next_relist = now + self.world.timings.pleg_relist_period
        for pod in self.world.pods_on(node.name):
            self.sync_pod(pod, now, relist=relist)

    def _heartbeat(self, now: float) -> None:
        """Renew the Lease, post the node's status, reconcile the pods' Ready conditions."""
        node = self.node
        node.last_heartbeat = now
        node.next_heartbeat = now + self.world.timings.node_heartbeat_period
        if node.ready != "True":
            node.ready = "True"
            self.world.emit(
                EventKind.NODE_READY, "node", node.name, node=node.name, reason=NODE_READY_REASON, detail="status=True"
            )
        for pod in self.world.pods_on(node.name):
            if pod.kubelet_ready and not pod.ready and not pod.terminating:
                self.world.set_ready(pod, True, now, reason=POD_STATUS_SYNC_REASON)

    def sync_pod(self, pod: SimPod, now: float, *, relist: bool = True) -> None:
        """Act on one pod. `relist`: whether this sync sees container deaths, which the
        kubelet's PLEG only discovers on its periodic relist (every 1 s upstream)."""
        if self.node.state != NODE_UP:
            return
        if pod.terminating:
            self._terminate(pod, now)
            return
        if pod.container == CONTAINER_WAITING:
            if pod.start_due is not None and now >= pod.start_due:
                self._start(pod, now)
            return
        assert pod.process is not None
        status = pod.process.poll() if relist else None
        if status is not None:
            self._died(pod, now, status)
            return
        if pod.container == CONTAINER_STOPPING:
            if pod.stop_deadline is not None and now >= pod.stop_deadline:
                pod.process.signal_group(signal.SIGKILL)
            return
        self._probe(pod, now)

    # --- containers -----------------------------------------------------------------

    def _start(self, pod: SimPod, now: float) -> None:
        deployment = self.world.deployments[pod.deployment]
        restart = pod.ever_started
        env = container_env(deployment, pod, self.node.name, self.base_env)
        argv = container_argv(deployment, env, self.python)
        try:
            if deployment.spec.command:
                argv = shimmed(argv, env, self.python)
            process = spawn(
                argv, env, label=pod.name, log_path=pod.log_path, reaper=self.world.reaper, enter=self.world.enter
            )
        except OSError as exc:
            # RunContainerError: the kubelet backs off exactly as after a crash.
            pod.last_exit = f"StartError: {exc}"
            self.world.emit(
                EventKind.CONTAINER_DIED,
                "pod",
                pod.name,
                node=self.node.name,
                reason="RunContainerError",
                detail=f"error={exc}",
            )
            pod.ever_started = True
            self._schedule_restart(pod, now, ran_for=0.0)
            return
        pod.process = process
        pod.generation += 1
        pod.container = CONTAINER_RUNNING
        pod.started_at = now
        pod.start_due = None
        pod.waiting_reason = ""
        if restart:
            pod.restart_count += 1
            self.world.emit(
                EventKind.CONTAINER_RESTARTED,
                "pod",
                pod.name,
                node=self.node.name,
                reason="kubelet",
                detail=f"restartCount={pod.restart_count}",
            )
        pod.ever_started = True
        self.world.emit(
            EventKind.CONTAINER_STARTED,
            "pod",
            pod.name,
            node=self.node.name,
            detail=f"restartCount={pod.restart_count} pid={process.pid} port={pod.port}"
            + (f" ip={pod.ip}" if self.world.addresses is not None else ""),
        )
        spec = deployment.spec
        pod.readiness = (
            ProbeTracker(spec.readiness_probe, next_due=now + spec.readiness_probe.initial_delay_seconds)
            if spec.readiness_probe is not None
            else None
        )
        pod.liveness = (
            ProbeTracker(spec.liveness_probe, next_due=now + spec.liveness_probe.initial_delay_seconds)
            if spec.liveness_probe is not None
            else None
        )
        if pod.readiness is None:
            self.world.set_ready(pod, True, now, reason="ContainerRunning")
        else:
            # A new container starts unready until its readiness probe passes.
            self.world.set_ready(pod, False, now, reason="ContainerRestarted")

    def _died(self, pod: SimPod, now: float, status: int) -> None:
        assert pod.process is not None
        pod.process.signal_group(signal.SIGKILL)  # the rest of the container's group
        pod.process = None
        exit_text = describe_exit(status)
        reason = pod.stop_reason or ("Completed" if status == 0 else "Error")
        pod.last_exit = exit_text
        pod.container = CONTAINER_WAITING
        pod.stop_deadline = None
        pod.stop_reason = ""
        pod.readiness = None
        pod.liveness = None
        self.world.emit(
            EventKind.CONTAINER_DIED,
            "pod",
            pod.name,
            node=self.node.name,
            reason=reason,
            detail=f"{exit_text} restartCount={pod.restart_count}",
        )
        self.world.set_ready(pod, False, now, reason="ContainerDied")
        ran_for = now - pod.started_at if pod.started_at is not None else 0.0
        self._schedule_restart(pod, now, ran_for=ran_for)

    def _schedule_restart(self, pod: SimPod, now: float, ran_for: float) -> None:
        timings = self.world.timings
        if ran_for >= timings.back_off_reset:
            pod.back_off = 0.0
        delay = pod.back_off
        pod.back_off = min(timings.back_off_max, timings.back_off_initial if delay == 0 else 2 * delay)
        pod.container = CONTAINER_WAITING
        pod.start_due = now + delay
        if delay > 0:
            pod.waiting_reason = "CrashLoopBackOff"
            self.world.emit(
                EventKind.BACK_OFF,
                "pod",
                pod.name,
                node=self.node.name,
                reason="CrashLoopBackOff",
                detail=f"backoff={delay:g} restartCount={pod.restart_count}",
            )
        else:
            pod.waiting_reason = "ContainerCreating"

    def _terminate(self, pod: SimPod, now: float) -> None:
        process = pod.process
        if process is None:
            self.world.remove_pod(pod, reason="kubelet", detail=pod.last_exit)
            return
        status = process.poll()
        if status is not None:
            process.signal_group(signal.SIGKILL)
            pod.process = None
            pod.container = CONTAINER_WAITING
            self.world.remove_pod(pod, reason="kubelet", detail=describe_exit(status))
            return
        if pod.term_deadline is None:
            if process.stopped:
                process.signal_group(signal.SIGCONT)
            if pod.deletion_grace <= 0:
                process.signal_group(signal.SIGKILL)
            else:
                process.signal_group(signal.SIGTERM)
            pod.term_deadline = now + pod.deletion_grace
        elif now >= pod.term_deadline:
            process.signal_group(signal.SIGKILL)

    # --- probes ---------------------------------------------------------------------

    def _probe(self, pod: SimPod, now: float) -> None:
        for kind in ("readiness", "liveness"):
            tracker = pod.readiness if kind == "readiness" else pod.liveness
            if tracker is None:
                continue
            if tracker.in_flight is not None:
                if not tracker.in_flight.done():
                    continue
                result = tracker.in_flight.result()
                tracker.in_flight = None
                self._apply(pod, kind, tracker, result, now)
                if pod.container != CONTAINER_RUNNING:
                    return  # the liveness probe just killed it
            if now >= tracker.next_due:
                spec = tracker.spec
                tracker.in_flight = self.prober.submit(
                    pod.ip, pod.port, spec.http_get.path, float(spec.timeout_seconds)
                )
                tracker.next_due += spec.period_seconds
                if tracker.next_due <= now:
                    tracker.next_due = now + spec.period_seconds

    def _apply(self, pod: SimPod, kind: str, tracker: ProbeTracker, result: ProbeResult, now: float) -> None:
        spec = tracker.spec
        if result.ok:
            tracker.successes += 1
            tracker.failures = 0
        else:
            tracker.failures += 1
            tracker.successes = 0
            tracker.last_failure = result.reason
        if kind == "readiness":
            # Transitions of the kubelet's own view: a Ready condition the node-lifecycle
            # controller overwrote is put back by the status sync (_heartbeat), not here.
            if result.ok and not pod.kubelet_ready and tracker.successes >= spec.success_threshold:
                self.world.set_ready(pod, True, now, reason="ReadinessProbe")
            elif not result.ok and pod.kubelet_ready and tracker.failures >= spec.failure_threshold:
                self.world.set_ready(
                    pod, False, now, reason="ReadinessProbe", detail=f"error={result.reason}"
                )
            return
        if not result.ok and tracker.failures >= spec.failure_threshold:
            self._kill_container(pod, now, reason="LivenessProbe")

    def _kill_container(self, pod: SimPod, now: float, reason: str) -> None:
        assert pod.process is not None
        grace = float(self.world.deployments[pod.deployment].spec.termination_grace_period_seconds)
        pod.stop_reason = reason
        pod.container = CONTAINER_STOPPING
        pod.stop_deadline = now + grace
        pod.process.signal_group(signal.SIGTERM if grace > 0 else signal.SIGKILL)
        self.world.set_ready(pod, False, now, reason=reason)

    # --- the machine ----------------------------------------------------------------

    def crash(self, now: float) -> None:
        """Power loss: every container dies at once, the kubelet and its heartbeats stop."""
        self.node.state = NODE_CRASHED
        for pod in self.world.pods_on(self.node.name):
            if pod.process is None:
                continue
            status = pod.process.kill()
            pod.process = None
            pod.kubelet_ready = False  # the kubelet's memory goes with the machine
            pod.container = CONTAINER_WAITING
            pod.start_due = None
            pod.readiness = None
            pod.liveness = None
            # A liveness kill that was under way is moot: the next death is not its doing.
            pod.stop_reason = ""
            pod.stop_deadline = None
            pod.last_exit = describe_exit(status)
            self.world.emit(
                EventKind.CONTAINER_DIED,
                "pod",
                pod.name,
                node=self.node.name,
                reason="NodeCrash",
                detail=f"{pod.last_exit} restartCount={pod.restart_count}",
            )

    def hang(self) -> None:
        """The machine freezes: containers are SIGSTOPped, the kubelet goes silent."""
        self.node.state = NODE_HUNG
        for pod in self.world.pods_on(self.node.name):
            if pod.process is not None:
                pod.process.signal_group(signal.SIGSTOP)
            for tracker in (pod.readiness, pod.liveness):
                if tracker is not None:
                    tracker.in_flight = None  # a result measured across the freeze means nothing

    def boot(self, now: float) -> None:
        """The node is back: heartbeat, Ready=True, containers resumed or restarted."""
        was = self.node.state
        self.node.state = NODE_UP
        if was == NODE_HUNG:
            for pod in self.world.pods_on(self.node.name):
                # A frozen kubelet re-learns readiness from fresh probes: what it believed
                # before the freeze says nothing about now. (A crash already forgot it.)
                pod.kubelet_ready = pod.ready
        self._heartbeat(now)
        for pod in self.world.pods_on(self.node.name):
            if was == NODE_HUNG and pod.process is not None:
                pod.process.signal_group(signal.SIGCONT)
                for tracker in (pod.readiness, pod.liveness):
                    if tracker is not None:
                        tracker.next_due = now
                        if not pod.ready:
                            tracker.successes = 0
                if pod.readiness is None and not pod.ready and not pod.terminating:
                    self.world.set_ready(pod, True, now, reason="KubeletResumed")
            elif was == NODE_CRASHED and not pod.terminating:
                if pod.ever_started and pod.process is None:
                    pod.back_off = 0.0  # the kubelet's back-off memory died with it
                    pod.start_due = now
                elif pod.start_due is None:
                    pod.start_due = now + self.world.timings.pod_start_delay
        for pod in self.world.pods_on(self.node.name):
            self.sync_pod(pod, now)

    def log_tail(self, pod: SimPod) -> str:
        return tail(pod.log_path)
