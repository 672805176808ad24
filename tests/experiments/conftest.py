"""Fixtures for the experiment library's tests: the engine tests' CLI runner, reused."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from chaoslab.results import RunData

# Imported, not copied: `run_cli` runs `chaoslab run FILE --out <tmp> --no-images ...` in a
# subprocess, as a user would, and `CliRun.results()` reads the run folder back.
from tests.engine.conftest import run_cli  # noqa: F401
from tests.experiments.lessons import LIBRARY, completed


@pytest.fixture
def run_lesson(run_cli) -> Callable[..., RunData]:  # noqa: F811 - the fixture imported above
    """Run a library experiment shortened by `--set`s; its results once every trial completed."""

    def run(file: str, *overrides: str, exit_codes: Sequence[int] = (0, 1)) -> RunData:
        result = run_cli(LIBRARY / file, *overrides)
        assert result.code in exit_codes, result.stderr
        results = result.results()
        completed(results)
        return results

    return run
