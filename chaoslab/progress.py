"""Terminal progress for `chaoslab run`: a bar for the whole plan and a live status line.

On a terminal it redraws in place (rich); elsewhere (CI logs, pipes, tests) it prints one
line per phase change and a periodic status line, so logs stay readable.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from chaoslab.engine import LiveStatus
from chaoslab.plan import Plan, TrialPlan
from chaoslab.units import format_duration

# A plain-text status line at most this often (seconds), so logs stay short.
PLAIN_STATUS_EVERY = 5.0


def _status_text(status: LiveStatus) -> str:
    remaining = "" if status.phase_remaining_s is None else f" ({format_duration(status.phase_remaining_s)} left)"
    return (
        f"{status.trial_id} {status.phase}{remaining} | {status.requests_per_s:,.0f} req/s | "
        f"errors {status.error_rate:.1%} | ready {status.ready}/{status.desired}"
    )


class RichProgress:
    """Live bar + status line on a terminal."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=console,
            refresh_per_second=4,
        )
        self._task: Any = None

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def run_started(self, run_dir: Path, plan: Plan) -> None:
        self._console.print(f"results: {run_dir}")
        self._task = self._progress.add_task("trials", total=len(plan.trials), status="")

    def trial_started(self, trial: TrialPlan) -> None:
        params = ", ".join(f"{k}={v}" for k, v in trial.params.items())
        self._console.print(f"trial {trial.id} {params}".rstrip())

    def status(self, status: LiveStatus) -> None:
        if self._task is not None:
            self._progress.update(self._task, status=_status_text(status))

    def trial_finished(self, trial: TrialPlan, status: str) -> None:
        if self._task is not None:
            self._progress.advance(self._task)
        self._console.print(f"trial {trial.id} {status}")

    def message(self, text: str) -> None:
        self._console.print(text, markup=False, highlight=False)


class PlainProgress:
    """Line-oriented progress for logs and pipes."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._phase: tuple[str, str] | None = None
        self._last_status = 0.0
        self._total = 0
        self._done = 0

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def run_started(self, run_dir: Path, plan: Plan) -> None:
        self._total = len(plan.trials)
        self._console.print(f"results: {run_dir}", markup=False)

    def trial_started(self, trial: TrialPlan) -> None:
        params = ", ".join(f"{k}={v}" for k, v in trial.params.items())
        self._console.print(f"[{self._done + 1}/{self._total}] trial {trial.id} {params}".rstrip(), markup=False)

    def status(self, status: LiveStatus) -> None:
        phase = (status.trial_id, status.phase)
        now = time.monotonic()
        if phase != self._phase or now - self._last_status >= PLAIN_STATUS_EVERY:
            self._phase = phase
            self._last_status = now
            self._console.print("  " + _status_text(status), markup=False, highlight=False)

    def trial_finished(self, trial: TrialPlan, status: str) -> None:
        self._done += 1
        self._console.print(f"[{self._done}/{self._total}] trial {trial.id} {status}", markup=False)

    def message(self, text: str) -> None:
        self._console.print("  " + text, markup=False, highlight=False)


def make_progress(console: Console) -> RichProgress | PlainProgress:
    return RichProgress(console) if console.is_terminal else PlainProgress(console)
