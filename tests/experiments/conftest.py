"""Fixtures for the experiment library's tests: the engine tests' CLI runner, reused."""

from __future__ import annotations

# Imported, not copied: `run_cli` runs `chaoslab run FILE --out <tmp> --no-images ...` in a
# subprocess, as a user would, and `CliRun.results()` reads the run folder back.
from tests.engine.conftest import run_cli  # noqa: F401
