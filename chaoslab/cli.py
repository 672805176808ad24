"""The command line: parse arguments, call one function, map errors to exit codes.

No experiment logic lives here. Exit codes (README, "Exit codes"): 0 ran and met its SLO
and recovery budget; 1 ran but missed them; 2 bad input or usage; 3 cluster or
environment error; 130 interrupted (partial results kept).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from chaoslab import __version__
from chaoslab.errors import (
    EXIT_ENVIRONMENT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ChaoslabError,
    Interrupted,
    SpecError,
)

_ERR = Console(stderr=True, highlight=False, soft_wrap=True)


def _note(text: str) -> None:
    _ERR.print(f"[yellow]note[/yellow] {escape(text)}", markup=True, highlight=False)
# Logs and pipes do not wrap: give tables room there instead of rich's 80-column default.
_OUT = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def _fail(exc: ChaoslabError, hint: str | None = None) -> NoReturn:
    if isinstance(exc, SpecError):
        for problem in exc.problems:
            _ERR.print(f"[red]error[/red] {escape(str(problem))}", markup=True, highlight=False)
        _ERR.print(f"{len(exc.problems)} problem(s) found", style="red")
    else:
        _ERR.print(f"[red]error[/red] {escape(str(exc))}", markup=True, highlight=False)
    if hint:
        _ERR.print(hint)
    sys.exit(exc.exit_code)


def _guarded(action: Callable[[], int]) -> NoReturn:
    """Run a command body; turn our errors into their exit codes, never a traceback."""
    try:
        code = action()
    except ChaoslabError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        _ERR.print("interrupted", style="red")
        sys.exit(EXIT_INTERRUPTED)
    except OSError as exc:
        # A file or folder the user named cannot be written or read (e.g. --out on a
        # read-only path, a full disk): an environment problem, said in one line.
        _ERR.print(f"[red]error[/red] {escape(str(exc))}", markup=True, highlight=False)
        sys.exit(EXIT_ENVIRONMENT)
    except Exception:  # noqa: BLE001 - a bug: show it, but never exit 1 ("SLO missed")
        _ERR.print_exception()
        _ERR.print("internal error in chaoslab (a bug); please report it with the traceback above", style="red")
        sys.exit(EXIT_INTERNAL)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chaoslab")
def cli() -> None:
    """chaoslab: chaos and recovery experiments for Kubernetes.

    Write an experiment in YAML, validate it, look at the plan with --dry-run, run it on
    the built-in simulated cluster (or a real one), and get a report with charts.
    """


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(files: Sequence[Path]) -> None:
    """Check experiment files; report every problem with file:line and field."""

    def body() -> int:
        from chaoslab.plan import build_plan
        from chaoslab.specload import load_experiment

        failed = 0
        for path in files:
            try:
                plan = build_plan(load_experiment(path))
            except SpecError as exc:
                failed += 1
                for problem in exc.problems:
                    _ERR.print(f"[red]error[/red] {escape(str(problem))}", markup=True, highlight=False)
                continue
            _OUT.print(f"ok {path}: {plan.points} point(s) x {plan.experiment.trials} trial(s)")
        return EXIT_USAGE if failed else 0

    _guarded(body)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a field, e.g. --set workload.replicas=2 (repeatable; a field the file sweeps then runs that value only).")
@click.option("--backend", type=click.Choice(["sim", "kubernetes"]), help="Override cluster.backend.")
@click.option("--context", metavar="NAME", help="kubeconfig context (kubernetes backend).")
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=Path("results"), show_default=True, help="Folder that receives the run folder.")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option("--yes", is_flag=True, help="Allow a cluster context that is not obviously local.")
@click.option("--no-images", is_flag=True, help="Skip PNG/SVG chart export (the HTML report is still written).")
@click.option("--junit", "junit_path", type=click.Path(path_type=Path), help="Also write JUnit XML: one test case per trial x fault.")
def run(
    file: Path,
    overrides: tuple[str, ...],
    backend: str | None,
    context: str | None,
    out_root: Path,
    dry_run: bool,
    yes: bool,
    no_images: bool,
    junit_path: Path | None,
) -> None:
    """Run an experiment (all sweep points x trials) and write a results folder."""

    def body() -> int:
        from chaoslab.plan import build_plan, render_plan
        from chaoslab.specload import load_experiment

        all_overrides = list(overrides)
        if backend:
            all_overrides.append(f"cluster.backend={backend}")
        if context:
            all_overrides.append(f"cluster.kubernetes.context={context}")
        plan = build_plan(load_experiment(file, all_overrides, on_note=_note))
        if dry_run:
            _OUT.print(render_plan(plan), highlight=False, markup=False)
            if plan.experiment.cluster.backend == "kubernetes":
                from chaoslab.cluster.kube import describe_targets

                targets = describe_targets(plan.experiment, yes=yes, base_dir=file.parent)
                _OUT.print(targets, highlight=False, markup=False)
            return 0
        if plan.experiment.cluster.backend != "sim":
            _check_cluster(plan.experiment, file, yes=yes)
        return _run_plan(
            plan, file, out_root, tuple(all_overrides), images=not no_images, yes=yes, junit_path=junit_path
        )

    _guarded(body)


def _check_cluster(experiment: Any, file: Path, *, yes: bool) -> None:
    """Connect once before anything is written, so an unreachable or refused cluster
    fails fast (exit 3 / exit 2) without leaving an empty results folder behind."""
    from chaoslab.cluster import open_cluster

    open_cluster(experiment.cluster, yes=yes, base_dir=file.parent).close()


def _run_plan(
    plan: Any,
    file: Path,
    out_root: Path,
    overrides: tuple[str, ...],
    *,
    images: bool,
    yes: bool,
    junit_path: Path | None = None,
) -> int:
    from chaoslab.engine import Engine, RunOptions
    from chaoslab.interrupts import InterruptGuard
    from chaoslab.progress import make_progress

    progress = make_progress(_OUT)
    guard = InterruptGuard(notify=progress.message)
    engine = Engine(
        plan,
        RunOptions(source=file, out_root=out_root, overrides=overrides, images=images, yes=yes),
        guard=guard,
        progress=progress,
    )
    with guard:
        try:
            with progress:
                outcome = engine.run()
        except Interrupted as exc:
            _ERR.print(f"[red]aborted[/red] {escape(str(exc))}; partial results kept in {escape(str(engine.run_dir))}", markup=True)
            _ERR.print(f"build a report from what was measured: chaoslab report {engine.run_dir}")
            return EXIT_INTERRUPTED
        except ChaoslabError as exc:
            _fail(exc, hint=f"partial results kept in {engine.run_dir}" if engine.run_dir.exists() else None)
    _print_outcome(outcome)
    if junit_path is not None and outcome.summary is not None:
        from chaoslab.junit import junit_xml
        from chaoslab.results import atomic_write_text

        atomic_write_text(junit_path, junit_xml(outcome.summary, plan.experiment.measure, plan.experiment.name))
        _OUT.print(f"junit:   {junit_path}")
    return outcome.exit_code


def _print_outcome(outcome: Any) -> None:
    from chaoslab.report import key_numbers

    comparison = outcome.comparison
    if comparison is not None and len(comparison):
        table = Table(title="Median across trials per sweep point (all numbers: comparison.csv)")
        table.add_column("sweep point", no_wrap=True)
        table.add_column("trials", justify="right")
        shown = [(title, f"{metric}_median", fmt) for title, metric, fmt in key_numbers(comparison) if f"{metric}_median" in comparison.columns]
        for title, _, _ in shown:
            table.add_column(title, justify="right", no_wrap=True)
        for _, row in comparison.iterrows():
            cells = [str(row.get("label", row.get("point", ""))), str(row.get("trials", ""))]
            cells += [fmt(row[column]) for _, column, fmt in shown]
            table.add_row(*cells)
        _OUT.print(table)
    _OUT.print(f"results: {outcome.run_dir}")
    if outcome.report_html:
        _OUT.print(f"report:  {outcome.report_html}")
    _print_warnings(outcome.warnings)
    if outcome.reasons:
        _OUT.print("[yellow]SLO or recovery budget missed (exit 1):[/yellow]", markup=True)
        for reason in outcome.reasons:
            _OUT.print(f"  - {reason}", markup=False)


def _print_warnings(warnings: Sequence[str]) -> None:
    for warning in warnings:
        _ERR.print(f"[yellow]warning[/yellow] {escape(warning)}", markup=True, highlight=False)


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--no-images", is_flag=True, help="Skip PNG/SVG chart export.")
def report(run_dir: Path, no_images: bool) -> None:
    """Rebuild summary, charts and report.html from a results folder alone."""

    def body() -> int:
        from chaoslab.report import build_report

        result = build_report(run_dir, images=not no_images)
        _OUT.print(f"report: {result.html}")
        _print_warnings(result.warnings)
        return 0

    _guarded(body)


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None, help="Folder for the comparison report (default: results/compare-<timestamp>).")
@click.option("--no-images", is_flag=True, help="Skip PNG/SVG chart export.")
def compare(run_dirs: Sequence[Path], out_dir: Path | None, no_images: bool) -> None:
    """Put several runs side by side in one comparison report."""

    def body() -> int:
        from datetime import datetime, timezone

        from chaoslab.report import build_comparison

        target = out_dir or Path("results") / f"compare-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
        result = build_comparison(list(run_dirs), target, images=not no_images)
        _OUT.print(f"report: {result.html}")
        _print_warnings(result.warnings)
        return 0

    _guarded(body)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the experiment format (for editors)."""

    def body() -> int:
        from chaoslab.specload import experiment_json_schema

        click.echo(json.dumps(experiment_json_schema(), indent=2))
        return 0

    _guarded(body)


def main() -> None:
    cli(prog_name="chaoslab")
