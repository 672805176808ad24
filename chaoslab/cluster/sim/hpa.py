"""The simulated HorizontalPodAutoscaler controller, fed with the pods' real CPU time.

Why it exists: what people demonstrate with Kubernetes is the cluster scaling itself when
load rises, and what clients suffer until it has. This controller does on the sim what
kube-controller-manager's HPA controller does on a real cluster, with its timings from
`cluster.sim.timings` (upstream defaults, see spec.SimTimings):

- metrics-server: every `metrics_resolution` (15 s) the CPU time of every running pod's
  process group is read from /proc (cpu.py); a pod's usage is the rate between its last
  two scrapes, so a new container has no metric until its second scrape;
- every `hpa_sync_period` (15 s) each HPA is evaluated: the CPU recommendation and the
  behaviour (stabilization windows, scaling policies, min/max) come from the pure
  functions of `chaoslab.autoscaling`; a change sets the Deployment's replicas, which
  the ReplicaSet controller then acts on, as the scale subresource does upstream.

Every evaluation becomes an `AutoscalerSample` (autoscaler.csv) and every change an
`hpa_scaled` event with the metric it saw, plus the usual `scaled` event.
Times inside are monotonic seconds; samples and events carry wall-clock time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from chaoslab.autoscaling import CpuSettings, Decision, History, PodCpu, Rules, cpu_replicas, decide, effective_rules
from chaoslab.cluster.base import AutoscalerSample, EventKind
from chaoslab.cluster.sim.cpu import MetricsServer
from chaoslab.cluster.sim.state import CONTAINER_RUNNING, SimDeployment, SimPod, World
from chaoslab.spec import AutoscalingSpec
from chaoslab.units import parse_cpu


@dataclass
class _Autoscaler:
    """One HPA object and the controller's memory of it."""

    deployment: str
    spec: AutoscalingSpec
    request: float  # CPU request of each pod, cores
    up: Rules
    down: Rules
    next_sync: float
    history: History = field(default_factory=History)


class HorizontalPodAutoscalers:
    """The HPA controller and the metrics-server of the simulated cluster."""

    def __init__(self, world: World, clock: Callable[[], float], metrics: MetricsServer | None = None) -> None:
        timings = world.timings
        self.world = world
        self._clock = clock
        self.metrics = metrics if metrics is not None else MetricsServer(timings.metrics_resolution)
        self.settings = CpuSettings(
            tolerance=timings.hpa_tolerance,
            cpu_initialization_period=timings.hpa_cpu_initialization_period,
            initial_readiness_delay=timings.hpa_initial_readiness_delay,
        )
        self._autoscalers: dict[str, _Autoscaler] = {}
        self._samples: deque[AutoscalerSample] = deque()

    def add(self, deployment: SimDeployment, now: float) -> None:
        """Create the HPA of a deployment whose spec has `autoscaling` (first sync one period on)."""
        spec = deployment.spec.autoscaling
        if spec is None:
            return
        requests = deployment.spec.resources.requests if deployment.spec.resources is not None else None
        assert requests is not None and requests.cpu is not None, "validated: autoscaling needs requests.cpu"
        up, down = effective_rules(spec, self.world.timings.hpa_downscale_stabilization)
        self._autoscalers[deployment.name] = _Autoscaler(
            deployment=deployment.name,
            spec=spec,
            request=parse_cpu(requests.cpu),
            up=up,
            down=down,
            next_sync=now + self.world.timings.hpa_sync_period,
        )

    def remove(self, name: str) -> None:
        self._autoscalers.pop(name, None)

    def samples(self) -> Iterator[AutoscalerSample]:
        """Evaluations since the previous call, in order (safe from any thread: deque ops are atomic)."""
        drained = []
        while self._samples:
            drained.append(self._samples.popleft())
        return iter(drained)

    def tick(self, now: float) -> None:
        if not self._autoscalers:
            return
        if self.metrics.due(now):
            self.metrics.scrape(now, self._running_pods())
        for autoscaler in self._autoscalers.values():
            if now >= autoscaler.next_sync:
                autoscaler.next_sync += self.world.timings.hpa_sync_period
                if autoscaler.next_sync <= now:  # a stalled tick: no burst of catch-up syncs
                    autoscaler.next_sync = now + self.world.timings.hpa_sync_period
                self._sync(autoscaler, now)

    def _running_pods(self) -> Iterator[tuple[str, int, int]]:
        for name in self._autoscalers:
            deployment = self.world.deployments.get(name)
            if deployment is None:
                continue
            for pod in deployment.pods.values():
                if pod.process is not None and pod.container == CONTAINER_RUNNING:
                    yield pod.name, pod.generation, pod.process.pgid

    def _pod_cpu(self, pod: SimPod, request: float) -> PodCpu:
        usage = self.metrics.usage(pod.name)
        return PodCpu(
            name=pod.name,
            phase="Pending" if pod.node is None or not pod.ever_started else "Running",
            deleting=pod.terminating,
            ready=pod.ready if pod.node is not None else None,
            start_time=pod.scheduled_at,
            # The kubelet writes the Ready condition when it first syncs the pod.
            ready_transition=pod.ready_transition if pod.ready_transition is not None else pod.scheduled_at,
            request=request,
            usage=usage.cores if usage is not None else None,
            metric_ts=usage.ts if usage is not None else None,
            window=usage.window if usage is not None else 0.0,
        )

    def _sync(self, autoscaler: _Autoscaler, now: float) -> None:
        deployment = self.world.deployments.get(autoscaler.deployment)
        if deployment is None:
            return
        current = deployment.desired
        if current == 0:
            return  # upstream: a target scaled to 0 has autoscaling disabled
        pods = [self._pod_cpu(pod, autoscaler.request) for pod in deployment.pods.values()]
        target = autoscaler.spec.target_utilization
        metric = cpu_replicas(current, pods, target, now, self.settings)
        recommendation = metric.replicas if metric.replicas is not None else current
        spec = autoscaler.spec
        if metric.replicas is None and spec.min_replicas <= current <= spec.max_replicas:
            # No usable metric (FailedGetResourceMetric): upstream changes nothing and records
            # no recommendation; only a count outside [minReplicas, maxReplicas] is corrected.
            decision = Decision(current, current, "FailedGetResourceMetric", autoscaler.history)
        else:
            decision = decide(current, recommendation, spec, autoscaler.up, autoscaler.down, autoscaler.history, now)
        autoscaler.history = decision.history
        sample = AutoscalerSample(
            ts=self._clock(),
            name=autoscaler.deployment,
            current=current,
            desired=decision.desired,
            recommendation=metric.replicas,
            utilization=metric.utilization,
            target=target,
            ready=metric.ready,
            unready=metric.unready,
            missing=metric.missing,
            reason=decision.reason,
        )
        self._samples.append(sample)
        if decision.desired == current:
            return
        deployment.desired = decision.desired
        seen = "unknown" if metric.utilization is None else f"{metric.utilization}%"
        self.world.emit(
            EventKind.HPA_SCALED,
            "hpa",
            autoscaler.deployment,
            reason="SuccessfulRescale",
            detail=(
                f"replicas={decision.desired} from={current} cpu={seen} target={target}% "
                f"recommendation={recommendation} limit={decision.reason}"
            ),
        )
        self.world.emit(
            EventKind.SCALED,
            "deployment",
            autoscaler.deployment,
            reason="HorizontalPodAutoscaler",
            detail=f"replicas={decision.desired}",
        )
