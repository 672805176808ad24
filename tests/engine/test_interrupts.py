"""SIGINT and SIGTERM during every phase: nothing left behind, partial results kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from chaoslab.errors import EXIT_INTERRUPTED
from chaoslab.results import read_run
from tests.engine.conftest import EXPERIMENTS, REPO, chaoslab_command

pytestmark = pytest.mark.slow

PHASES = ["deploy", "ready", "warmup", "measure", "cooldown", "teardown"]


def _trial_phase(out_root: Path) -> str | None:
    for info in out_root.glob("*/trials/*/trial.json"):
        try:
            return json.loads(info.read_text())["phase"]
        except (json.JSONDecodeError, OSError, KeyError):
            return None
    return None


def _start_run(out_root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        chaoslab_command("run", str(EXPERIMENTS / "interrupt.yaml"), "--out", str(out_root), *args),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _interrupt(proc: subprocess.Popen[str], signum: int) -> tuple[str, list[psutil.Process]]:
    """Note what the run has started, signal it, and wait for it to end; its stderr."""
    seen = _descendants(proc.pid)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    return stderr, seen


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _alive(processes: list[psutil.Process], grace: float = 0.0) -> list[str]:
    """Those still running (after up to `grace` seconds), as pid and command line."""
    deadline = time.monotonic() + grace
    while True:
        alive = []
        for process in processes:
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{process.pid} {' '.join(process.cmdline())[:200]}")
            except psutil.NoSuchProcess:
                continue
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.1)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("phase", PHASES)
def test_interrupt_leaves_nothing_behind(tmp_path: Path, phase: str, signum: int) -> None:
    out_root = tmp_path / "results"
    proc = _start_run(out_root, "--no-images")
    try:
        deadline = time.monotonic() + 60
        while _trial_phase(out_root) != phase:
            assert proc.poll() is None, f"run ended before phase {phase}: {proc.communicate()}"
            assert time.monotonic() < deadline, f"phase {phase} never reached"
            time.sleep(0.01)
        # What the run has started by now (pods, proxy, Locust) must all be gone afterwards.
        if phase != "deploy":
            time.sleep(0.3)
        stderr, seen = _interrupt(proc, signum)
    finally:
        _kill(proc)

    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr
    assert "partial results kept" in stderr
    alive = _alive(seen)
    assert not alive, f"left behind: {alive}"

    run = read_run(next(out_root.iterdir()))
    assert run.status == "aborted"
    # Interrupted in teardown, the trial itself had completed: teardown is shielded and
    # finishes, and the run stops there.
    assert run.trials and run.trials[0].info.status == ("completed" if phase == "teardown" else "aborted")
    assert "end" in run.trials[0].info.phases, "teardown must have finished"
    if phase in ("measure", "cooldown"):
        assert run.trials[0].load["requests"].sum() > 0, "load measured before the interrupt is kept"


def _run_status(out_root: Path) -> str | None:
    for journal in out_root.glob("*/run.json"):
        try:
            return json.loads(journal.read_text())["status"]
        except (json.JSONDecodeError, OSError, KeyError):
            return None
    return None


def test_interrupt_while_the_report_renders_images_leaves_no_browser(tmp_path: Path) -> None:
    """After the last trial, the report starts a headless Chromium for the PNG/SVG charts:
    Ctrl-C then must end it too, and keep every trial measured."""
    out_root = tmp_path / "results"
    proc = _start_run(out_root, "--set", "faults=[]")
    try:
        deadline = time.monotonic() + 90
        browser: list[psutil.Process] = []
        while not browser:
            assert proc.poll() is None, f"run ended before its report started a browser: {proc.communicate()}"
            assert time.monotonic() < deadline, "no browser seen while the report rendered"
            if _run_status(out_root) == "completed":
                browser = [p for p in _descendants(proc.pid) if "chrom" in p.name().lower()]
            time.sleep(0.02)
        stderr, seen = _interrupt(proc, signal.SIGINT)
    finally:
        _kill(proc)

    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr
    alive = _alive(seen, grace=10)  # Chromium's helpers exit a moment after the browser
    assert not alive, f"left behind: {alive}"
    run_dir = next(out_root.iterdir())
    run = read_run(run_dir)
    assert run.status == "aborted" and [t.info.status for t in run.trials] == ["completed"]
    assert (run_dir / "summary.csv").is_file()
