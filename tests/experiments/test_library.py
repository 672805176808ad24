"""Every file of the experiment library validates, plans, and says what it is for.

A newcomer runs these files as they are (`make demo`, a talk), so a file that no longer
validates after a spec change, or whose plan fails, must fail here, not on stage.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.engine.conftest import REPO, chaoslab_command
from tests.experiments.lessons import LIBRARY

FILES = sorted(LIBRARY.glob("*.yaml"))
# The header every file opens with (issue 8): what it shows, the expected outcome, run time.
HEADER_FIELDS = ("What it shows:", "Expected:", "Run time:")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(chaoslab_command(*args), capture_output=True, text=True, timeout=120, cwd=REPO)


def test_the_library_has_the_issue_8_experiments() -> None:
    names = {path.stem for path in FILES}
    assert names >= {
        "replicas-pod-delete",
        "container-crashloop",
        "node-crash-tolerations",
        "node-hang-vs-crash",
        "node-drain-pdb",
        "scale-under-load",
        "readiness-probe-tuning",
        "minikube-pod-delete",
    }


def test_every_experiment_validates_in_one_call() -> None:
    result = _cli("validate", *(str(path) for path in FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok ") == len(FILES), result.stdout


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_experiment_plans(path: Path) -> None:
    # A kubernetes experiment's dry run lists the real cluster's targets, so without a
    # cluster its plan (sweep, faults, warnings) is checked on sim.
    backend = ["--backend", "sim"] if "backend: kubernetes" in path.read_text(encoding="utf-8") else []
    result = _cli("run", str(path), "--dry-run", *backend)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "expected wall time" in result.stdout


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_experiment_opens_with_its_header(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line)
    text = "\n".join(header)
    missing = [field for field in HEADER_FIELDS if field not in text]
    assert not missing, f"{path.name}: the opening comment lacks {missing}"
