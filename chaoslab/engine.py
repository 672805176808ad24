"""Runs an experiment plan: one trial at a time, phase by phase, with guaranteed teardown.

    deploy -> wait ready -> warmup (load starts) -> measure (load + observers + faults)
           -> cooldown -> teardown (always: success, failure, exception, Ctrl-C, SIGTERM)

The engine talks to the cluster only through the `Cluster` protocol and to Locust only
through `LoadRun` (which keeps Locust in its own process), so this process is never
monkey-patched by gevent. Everything measured is written into the trial folder as it
arrives; an interrupted run keeps it and is marked `aborted`.
"""

from __future__ import annotations

import importlib.metadata
import platform
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import yaml

from chaoslab import __version__
from chaoslab.cluster import open_cluster
from chaoslab.cluster.base import Cluster, Deployment, EventKind, Injection
from chaoslab.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SLO_MISSED,
    ChaoslabError,
    ClusterError,
    Interrupted,
    UsageError,
)
from chaoslab.interrupts import InterruptGuard
from chaoslab.load.runner import LoadRun
from chaoslab.observe import AvailabilityProbe, EventRecorder
from chaoslab.plan import Plan, ScheduledFault, TrialPlan, fault_schedule
from chaoslab.results import (
    FAULT_COLUMNS,
    CsvAppender,
    atomic_write_json,
    atomic_write_text,
    run_folder_name,
)
from chaoslab.spec import ClusterSpec, Experiment, ScaleFault

# How often the engine loop drains events, polls load buckets and refreshes the status
# line. Faults fire on their own deadline, not on this tick.
TICK_SECONDS = 0.1


@dataclass(frozen=True)
class RunOptions:
    """How to run a plan: where the experiment came from and where results go."""

    source: Path
    out_root: Path
    overrides: tuple[str, ...] = ()
    images: bool = True
    # Allow a kubernetes context that is not obviously local (`--yes`).
    yes: bool = False


@dataclass(frozen=True)
class LiveStatus:
    """What the status line shows for the running trial."""

    trial_id: str
    phase: str
    elapsed_s: float
    phase_remaining_s: float | None
    requests_per_s: float
    error_rate: float
    ready: int
    desired: int


@dataclass(frozen=True)
class RunOutcome:
    """What a finished (or aborted) run produced, for the CLI to report."""

    run_dir: Path
    status: str
    exit_code: int
    reasons: tuple[str, ...] = ()
    report_html: Path | None = None
    summary: Any = None  # pandas.DataFrame when the analysis ran
    comparison: Any = None
    warnings: tuple[str, ...] = ()


class Progress(Protocol):
    """Where the engine reports progress; the CLI draws it, tests may ignore it."""

    def run_started(self, run_dir: Path, plan: Plan) -> None: ...

    def trial_started(self, trial: TrialPlan) -> None: ...

    def status(self, status: LiveStatus) -> None: ...

    def trial_finished(self, trial: TrialPlan, status: str) -> None: ...

    def message(self, text: str) -> None: ...


class SilentProgress:
    """A Progress that shows nothing."""

    def run_started(self, run_dir: Path, plan: Plan) -> None:
        pass

    def trial_started(self, trial: TrialPlan) -> None:
        pass

    def status(self, status: LiveStatus) -> None:
        pass

    def trial_finished(self, trial: TrialPlan, status: str) -> None:
        pass

    def message(self, text: str) -> None:
        pass


ClusterFactory = Callable[..., Cluster]


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("locust", "pandas", "plotly", "kaleido", "kubernetes", "pydantic"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def resolved_yaml(experiment: Experiment) -> str:
    """The experiment as validated, every default filled in, durations in seconds."""
    return yaml.safe_dump(experiment.model_dump(mode="json", by_alias=True), sort_keys=False)


class RunJournal:
    """run.json: rewritten atomically whenever the run's state changes."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data
        self.save()

    def update(self, **changes: Any) -> None:
        self.data.update(changes)
        self.save()

    def save(self) -> None:
        atomic_write_json(self.path, self.data)


class TrialJournal:
    """trial.json: status and phase timestamps of one trial, rewritten at each phase."""

    def __init__(self, path: Path, trial: TrialPlan, clock: Callable[[], float]) -> None:
        self.path = path
        self._clock = clock
        experiment = trial.experiment
        self.data: dict[str, Any] = {
            "id": trial.id,
            "status": "running",
            "phase": None,
            "phases": {},
            "measure_start": None,
            "measure_end": None,
            "desired_replicas": experiment.workload.replicas,
            "slo": {
                "availability": experiment.measure.slo.availability,
                "window": experiment.measure.slo.window,
            },
            "bucket": experiment.measure.bucket,
            "target_url": None,
            "service_network": None,
            "error": None,
        }
        self.save()

    @property
    def phase(self) -> str | None:
        return self.data["phase"]

    def enter(self, phase: str) -> float:
        now = self._clock()
        self.data["phase"] = phase
        self.data["phases"][phase] = now
        self.save()
        return now

    def update(self, **changes: Any) -> None:
        self.data.update(changes)
        self.save()

    def save(self) -> None:
        atomic_write_json(self.path, self.data)


@dataclass
class _TrialState:
    """Mutable bookkeeping of the trial that is running (engine-internal)."""

    cluster: Cluster | None = None
    deployment: Deployment | None = None
    recorder: EventRecorder | None = None
    load: LoadRun | None = None
    probe: AvailabilityProbe | None = None
    faults_table: CsvAppender | None = None
    injections: list[Injection] = field(default_factory=list)
    desired: int = 0
    phase_deadline: float | None = None
    started_monotonic: float = 0.0


class Engine:
    """Runs every trial of a plan into one results folder."""

    def __init__(
        self,
        plan: Plan,
        options: RunOptions,
        *,
        guard: InterruptGuard,
        progress: Progress | None = None,
        clock: Callable[[], float] = time.time,
        cluster_factory: ClusterFactory = open_cluster,
    ) -> None:
        self.plan = plan
        self.options = options
        self.guard = guard
        self.progress = progress or SilentProgress()
        self.clock = clock
        self.cluster_factory = cluster_factory
        started = datetime.fromtimestamp(clock(), tz=timezone.utc)
        self.run_dir = _unique_dir(options.out_root / run_folder_name(plan.experiment.name, started))

    # --- the run -----------------------------------------------------------------------

    def run(self) -> RunOutcome:
        experiment = self.plan.experiment
        try:
            self.run_dir.mkdir(parents=True)
        except OSError as exc:
            raise UsageError(
                f"--out {self.options.out_root}: cannot create the results folder {self.run_dir} "
                f"({exc.strerror or exc}); choose a writable folder"
            ) from exc
        atomic_write_text(self.run_dir / "experiment.yaml", resolved_yaml(experiment))
        journal = RunJournal(
            self.run_dir / "run.json",
            {
                "format": 1,
                "chaoslab": __version__,
                "libraries": library_versions(),
                "experiment": experiment.name,
                "source": str(self.options.source),
                "overrides": list(self.options.overrides),
                "backend": experiment.cluster.backend,
                "cluster": _cluster_info(experiment.cluster),
                "target_url": None,
                "service_network": None,
                "status": "running",
                "started": self.clock(),
                "ended": None,
                "plan": [
                    {"id": t.id, "point": t.point, "trial": t.trial, "seed": t.seed, "params": t.params}
                    for t in self.plan.trials
                ],
                "trials_done": [],
                "exit_code": None,
                "error": None,
            },
        )
        self.progress.run_started(self.run_dir, self.plan)
        try:
            for trial in self.plan.trials:
                self.guard.raise_if_interrupted()
                self.progress.trial_started(trial)
                status = self._run_trial(trial, journal)
                journal.data["trials_done"].append(trial.id)
                journal.save()
                self.progress.trial_finished(trial, status)
            journal.update(status="completed", ended=self.clock())
            # The analysis belongs to the run: if it is interrupted or fails, the journal
            # must say so, with the exit code the CLI returns.
            outcome = self._analyse()
        except Interrupted as exc:
            journal.update(status="aborted", ended=self.clock(), exit_code=EXIT_INTERRUPTED, error=str(exc))
            self._partial_summary()
            raise
        except ChaoslabError as exc:
            journal.update(status="failed", ended=self.clock(), exit_code=exc.exit_code, error=str(exc))
            self._partial_summary()
            raise
        except BaseException as exc:
            journal.update(status="failed", ended=self.clock(), exit_code=EXIT_INTERNAL, error=repr(exc))
            raise
        journal.update(exit_code=outcome.exit_code, verdict=list(outcome.reasons))
        return outcome

    def _analyse(self) -> RunOutcome:
        """Summary, comparison, verdict and the report, from the results folder alone."""
        from chaoslab.report import build_report

        result = build_report(self.run_dir, images=self.options.images)
        exit_code = EXIT_OK if result.verdict.passed else EXIT_SLO_MISSED
        return RunOutcome(
            run_dir=self.run_dir,
            status="completed",
            exit_code=exit_code,
            reasons=tuple(result.verdict.reasons),
            report_html=result.html,
            summary=result.summary,
            comparison=result.comparison,
            warnings=tuple(result.warnings),
        )

    def _partial_summary(self) -> None:
        """After an abort or failure: summary.csv from what was measured, if possible.

        Charts are left to `chaoslab report RUN_DIR`, which can be run at leisure; this
        must be quick because the user is waiting to get their terminal back.
        """
        try:
            from chaoslab import analysis
            from chaoslab.results import atomic_write_frame, read_run

            run = read_run(self.run_dir)
            if run.trials:
                atomic_write_frame(self.run_dir / "summary.csv", analysis.summary_table(run))
        except (ChaoslabError, ValueError, KeyError, OSError) as exc:
            self.progress.message(f"could not summarise the partial results: {exc}")

    # --- one trial ---------------------------------------------------------------------

    def _run_trial(self, trial: TrialPlan, journal: RunJournal) -> str:
        experiment = trial.experiment
        trial_dir = self.run_dir / "trials" / trial.id
        trial_dir.mkdir(parents=True)
        atomic_write_json(
            trial_dir / "params.json",
            {"id": trial.id, "point": trial.point, "trial": trial.trial, "seed": trial.seed, "params": trial.params},
        )
        info = TrialJournal(trial_dir / "trial.json", trial, self.clock)
        state = _TrialState(desired=experiment.workload.replicas, started_monotonic=time.monotonic())
        status = "failed"
        try:
            self._phases(trial, trial_dir, info, state, journal)
            status = "completed"
        except Interrupted:
            status = "aborted"
            raise
        except ChaoslabError as exc:
            info.update(error=str(exc))
            raise
        finally:
            teardown_error = self._shielded_teardown(info, state, status)
            if teardown_error is not None and status == "completed":
                info.update(status="failed", error=str(teardown_error))
                if isinstance(teardown_error, ChaoslabError):
                    raise teardown_error
                raise ClusterError(f"teardown failed: {teardown_error}") from teardown_error
            self.guard.raise_if_interrupted()
        return status

    def _phases(
        self, trial: TrialPlan, trial_dir: Path, info: TrialJournal, state: _TrialState, journal: RunJournal
    ) -> None:
        experiment = trial.experiment
        timeline = experiment.timeline
        info.enter("deploy")
        self._status(trial, info, state)
        state.cluster = self.cluster_factory(
            experiment.cluster, seed=trial.seed, yes=self.options.yes, base_dir=self.options.source.parent
        )
        state.recorder = EventRecorder(state.cluster, trial_dir / "events.csv", trial_dir / "autoscaler.csv")
        state.faults_table = CsvAppender(trial_dir / "faults.csv", FAULT_COLUMNS)
        state.deployment = state.cluster.deploy(experiment.workload)

        info.enter("ready")
        self._tick(trial, info, state)
        state.cluster.wait_ready(state.deployment, timeline.ready_timeout)
        state.cluster.check_faults(state.deployment, experiment.faults)
        self._tick(trial, info, state)
        url = state.cluster.service_url(state.deployment)
        network = state.cluster.client_network()
        info.update(target_url=url, service_network=network.description)
        if journal.data.get("target_url") is None:
            journal.update(target_url=url, service_network=network.description)
        integrity = experiment.load.data_integrity
        # The data-integrity users talk to one ordinal, as a database client to its primary.
        load_url = url if integrity is None else state.cluster.ordinal_url(state.deployment, integrity.ordinal)

        warmup_start = info.enter("warmup")
        state.load = LoadRun(
            experiment.load,
            target_url=load_url,
            bucket=experiment.measure.bucket,
            out_dir=trial_dir,
            seed=trial.seed,
            experiment_dir=self.options.source.parent,
            stages_start=warmup_start + timeline.warmup,
            network=network,
        )
        state.load.start()
        self.guard.raise_if_interrupted()
        self._run_until(trial, info, state, warmup_start + timeline.warmup, [])

        measure_start = info.enter("measure")
        info.update(measure_start=measure_start)
        if experiment.measure.probe is not None:
            state.probe = AvailabilityProbe(
                url, experiment.measure.probe, trial_dir / "probe.csv", self.clock, network=network
            )
            state.probe.start()
        schedule = fault_schedule(experiment)
        rng = random.Random(trial.seed)
        self._run_until(trial, info, state, measure_start + timeline.duration, schedule, rng, measure_start)
        info.update(measure_end=self.clock())

        cooldown_start = info.enter("cooldown")
        self._run_until(trial, info, state, cooldown_start + timeline.cooldown, [])

    def _run_until(
        self,
        trial: TrialPlan,
        info: TrialJournal,
        state: _TrialState,
        deadline: float,
        schedule: list[ScheduledFault],
        rng: random.Random | None = None,
        measure_start: float = 0.0,
    ) -> None:
        """The engine loop of one phase: fire due faults, drain observers, show status."""
        pending = list(schedule)
        state.phase_deadline = deadline
        while True:
            now = self.clock()
            while pending and measure_start + pending[0].at <= now:
                assert rng is not None
                self._inject(pending.pop(0), rng, state, measure_start)
            self._tick(trial, info, state)
            now = self.clock()
            if now >= deadline:
                return
            next_due = measure_start + pending[0].at if pending else deadline
            time.sleep(max(0.0, min(TICK_SECONDS, next_due - now, deadline - now)))

    def _inject(self, scheduled: ScheduledFault, rng: random.Random, state: _TrialState, measure_start: float) -> None:
        assert state.cluster is not None and state.deployment is not None and state.faults_table is not None
        injection = state.cluster.inject(state.deployment, scheduled.fault, scheduled.fault_id, rng)
        state.injections.append(injection)
        if isinstance(scheduled.fault, ScaleFault):
            state.desired = scheduled.fault.replicas
        state.faults_table.write(
            {
                "fault_id": injection.fault_id,
                "action": injection.action,
                "scheduled_s": round(scheduled.at, 3),
                "ts": round(injection.ts, 4),
                "targets": ";".join(injection.targets),
                "ready_before": injection.ready_before,
                "ready_after": injection.ready_after,
                "detail": injection.detail,
            }
        )
        self.progress.message(
            f"{scheduled.at:6.1f}s  {injection.action} {injection.fault_id}: {', '.join(injection.targets) or '-'}"
        )

    def _tick(self, trial: TrialPlan, info: TrialJournal, state: _TrialState) -> None:
        # A signal handler's exception can be swallowed if it fires inside a finaliser
        # (`__del__` exceptions are only printed); the guard's flag is checked here too.
        self.guard.raise_if_interrupted()
        if state.recorder is not None:
            for event in state.recorder.drain():
                if event.kind is EventKind.HPA_SCALED:  # the status line's desired follows the HPA
                    state.desired = int(event.detail.split("replicas=", 1)[1].split()[0])
        if state.load is not None:
            state.load.poll()
        self._status(trial, info, state)

    def _status(self, trial: TrialPlan, info: TrialJournal, state: _TrialState) -> None:
        live = state.load.live() if state.load is not None else None
        now = self.clock()
        self.progress.status(
            LiveStatus(
                trial_id=trial.id,
                phase=info.phase or "",
                elapsed_s=time.monotonic() - state.started_monotonic,
                phase_remaining_s=None if state.phase_deadline is None else max(0.0, state.phase_deadline - now),
                requests_per_s=live.requests_per_s if live else 0.0,
                error_rate=(live.error_rate or 0.0) if live else 0.0,
                ready=state.recorder.ready_endpoints if state.recorder else 0,
                desired=state.desired,
            )
        )

    def _shielded_teardown(self, info: TrialJournal, state: _TrialState, status: str) -> Exception | None:
        """Teardown that an interrupt cannot skip.

        Only the first signal raises; if it lands in the instant before the shield is up,
        teardown simply starts again (every step is idempotent), this time shielded.
        """
        while True:
            try:
                with self.guard.shield():
                    error = self._teardown(info, state)
                    info.update(status=status)
                    return error
            except Interrupted:
                if status == "completed":
                    status = "aborted"

    def _teardown(self, info: TrialJournal, state: _TrialState) -> Exception | None:
        """Stop load and observers, undo faults, remove the workload, close the cluster.

        Every step runs even if an earlier one failed; the first error is returned (the
        caller raises it unless another error is already on its way).
        """
        errors: list[Exception] = []

        def step(action: Callable[[], object]) -> None:
            # Any failure is recorded and the next step still runs: a failed CSV write
            # must not keep the workload or a crashed node in place.
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - collected, reported and re-raised by the caller
                errors.append(exc)
                self.progress.message(f"teardown: {exc}")

        step(lambda: info.enter("teardown"))

        if state.probe is not None:
            step(state.probe.stop)
        if state.load is not None:
            step(state.load.stop)
        for injection in reversed(state.injections):
            if injection.restorable and state.cluster is not None:
                step(lambda injection=injection: state.cluster.restore(injection))  # type: ignore[union-attr]
        if state.cluster is not None and state.deployment is not None:
            step(lambda: state.cluster.teardown(state.deployment))  # type: ignore[union-attr]
        if state.recorder is not None:
            step(state.recorder.drain)
        if state.cluster is not None:
            step(state.cluster.close)
        if state.recorder is not None:
            step(state.recorder.close)
        if state.faults_table is not None:
            step(state.faults_table.close)
        step(lambda: info.enter("end"))
        return errors[0] if errors else None


def _unique_dir(path: Path) -> Path:
    """`path`, or `path-2`, `path-3`... when two runs start within the same second."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def _cluster_info(spec: ClusterSpec) -> dict[str, Any]:
    """Backend facts for run.json, with nothing secret in them."""
    if spec.backend == "sim":
        return {"backend": "sim", "nodes": spec.sim.nodes, "timings": spec.sim.timings.model_dump(by_alias=True)}
    kube = spec.kubernetes
    return {"backend": "kubernetes", "context": kube.context, "namespace": kube.namespace}


