"""The few exceptions chaoslab raises, each mapped to one documented exit code.

The CLI is the only place that turns these into exit codes; the library never returns
integer status codes. Every error a user can fix says what to change.
"""

from __future__ import annotations

from dataclasses import dataclass

# Exit codes, documented in README.md ("Exit codes").
EXIT_OK = 0
EXIT_SLO_MISSED = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3
EXIT_INTERRUPTED = 130
# An unexpected error inside chaoslab (a bug): reported with its traceback, exit 3 like an
# environment error so CI never mistakes it for "SLO missed" (1).
EXIT_INTERNAL = 3


class ChaoslabError(Exception):
    """Base of every error chaoslab reports to a user without a traceback."""

    exit_code = EXIT_ENVIRONMENT


@dataclass(frozen=True)
class SpecProblem:
    """One problem in an experiment file: where it is and what was expected."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.message}"


class SpecError(ChaoslabError):
    """The experiment file (or a --set override) is invalid; carries every problem found."""

    exit_code = EXIT_USAGE

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(ChaoslabError):
    """Bad command-line usage, or a capability that has not landed yet."""

    exit_code = EXIT_USAGE


class ClusterError(ChaoslabError):
    """The cluster backend failed or could not be reached."""

    exit_code = EXIT_ENVIRONMENT


class LoadError(ChaoslabError):
    """The load generator (Locust) failed to start or died."""

    exit_code = EXIT_ENVIRONMENT


class ResultsError(ChaoslabError):
    """A results folder is missing, unreadable or not a chaoslab run."""

    exit_code = EXIT_USAGE


class Interrupted(ChaoslabError):
    """The run was interrupted by Ctrl-C or SIGTERM; partial results were kept."""

    exit_code = EXIT_INTERRUPTED
