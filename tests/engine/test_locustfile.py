"""A locustfile experiment runs through `chaoslab run` with our bucket listener beside it."""

from __future__ import annotations

import pytest

from tests.engine.conftest import EXPERIMENTS

pytestmark = pytest.mark.slow


def test_user_locustfile_runs_and_is_measured(run_cli) -> None:
    result = run_cli(EXPERIMENTS / "locustfile.yaml")
    assert result.code == 0, result.stderr
    trial = result.results().trials[0]
    assert trial.load["requests"].sum() > 50
    assert trial.load["failures"].sum() == 0
    # Locust's own stats are kept beside our buckets, and name the user's tasks.
    stats = (trial.path / "locust_stats.csv").read_text()
    assert "browse" in stats and "health" in stats
