"""Helpers for whole-experiment tests: run the real CLI in a subprocess, read its results."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from chaoslab.results import RunData, read_run

HERE = Path(__file__).parent
EXPERIMENTS = HERE / "experiments"
REPO = HERE.parent.parent


@dataclass(frozen=True)
class CliRun:
    code: int
    stdout: str
    stderr: str
    out_root: Path

    def run_dir(self) -> Path:
        folders = [p for p in self.out_root.iterdir() if p.is_dir()]
        assert len(folders) == 1, f"expected one run folder in {self.out_root}: {folders}\n{self.stderr}"
        return folders[0]

    def results(self) -> RunData:
        return read_run(self.run_dir())


def chaoslab_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "chaoslab", *args]


@pytest.fixture
def run_cli(tmp_path: Path):
    """Run `chaoslab run FILE ...` to completion into a fresh results root."""

    runs = iter(range(1, 1000))

    def run(experiment: Path, *args: str, timeout: float = 240) -> CliRun:
        out_root = tmp_path / f"results-{next(runs)}"
        proc = subprocess.run(
            chaoslab_command("run", str(experiment), "--out", str(out_root), "--no-images", *args),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return CliRun(proc.returncode, proc.stdout, proc.stderr, out_root)

    return run
