"""Turning results into what a person reads (rich) or a script reads (JSON)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import click

from cruijff.convert import finite, to_plain
from cruijff.errors import CruijffError, ProblemsFound
from cruijff.records import Problem, Severity


def console(stderr: bool = False) -> Any:
    """A rich console; plain text when not on a terminal or when NO_COLOR is set."""
    from rich.console import Console

    out = Console(stderr=stderr, highlight=False, no_color="NO_COLOR" in os.environ)
    if not out.is_terminal:  # a pipe or a log file: don't squeeze tables into 80 columns
        out.width = max(out.width, 160)
    return out


def print_json(data: Any) -> None:
    """``data`` as JSON: always valid JSON, so a number that is not finite (NaN, infinity),
    which JSON cannot write, is ``null``."""
    click.echo(json.dumps(finite(to_plain(data)), indent=2, sort_keys=False, allow_nan=False))


def problem_line(problem: Problem) -> str:
    """``file:line:col: path: message (hint)``, the form editors jump to."""
    return str(problem)


def print_problems(problems: Iterable[Problem]) -> None:
    for problem in problems:
        prefix = "warning" if problem.severity is Severity.WARNING else "error"
        text = problem_line(problem).removeprefix("warning: ")
        click.echo(f"{prefix}: {text}", err=True)


def print_error(error: CruijffError, *, verbose: int = 0) -> None:
    if isinstance(error, ProblemsFound):
        print_problems(error.problems)
    if verbose and error.__cause__ is not None:
        import traceback

        traceback.print_exception(error.__cause__, file=sys.stderr)
    click.echo(f"Error: {error.message}", err=True)
    if error.hint:
        click.echo(f"Hint: {error.hint}", err=True)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.table import Table
    from rich.text import Text

    grid = Table(title=Text(title), title_justify="left", header_style="bold")
    for column in columns:
        grid.add_column(column)
    for row in rows:
        # as text, never as rich markup: a value's "[red]" or "[/]" is printed as it is
        grid.add_row(*(Text(str(cell) if cell is not None else "") for cell in row))
    console().print(grid)


def params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in params.items()) or "-"


# --- cruijff run's progress, and the results table of run and status -----------------------


class Progress:
    """Prints a line per job event and keeps a live status line with the running jobs' last
    log line (where tools print their step, loss and ETA)."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.records: dict[str, Any] = {}
        self.started: dict[str, float] = {}
        self.status: Any = None
        self.submitted: list[Any] = []
        # without a live status line (a pipe, a CI log), report running jobs now and then
        self.report_every = None if console.is_terminal else 30.0
        self.reported = time.monotonic()

    def __call__(self, event: str, record: Any) -> None:
        from cruijff.records import JobState

        if record is not None:
            self.records[record.unit_id] = record
        if event == "submitted":
            self.submitted.append(record)
            return
        self.flush()
        if event == "state" and record.state is JobState.RUNNING:
            self.started[record.unit_id] = time.monotonic()
            self.console.print(f"  [cyan]running[/] {record.unit_id}")
        elif event == "done":
            began = self.started.pop(record.unit_id, None)
            took = f" in {time.monotonic() - began:.0f} s" if began is not None else ""
            if record.state is JobState.SUCCEEDED:
                self.console.print(f"  [green]✓ {record.unit_id}[/] succeeded{took}")
            else:
                cause = f": {record.cause}" if record.cause else ""
                self.console.print(
                    f"  [red]✗ {record.unit_id} {record.state.value.lower()}{cause}[/]"
                    f" (log: {record.job.log})"
                )
        if self.status is not None:
            self.status.update(self.line())
        if (
            event == "tick"
            and self.report_every is not None
            and time.monotonic() - self.reported >= self.report_every
        ):
            self.reported = time.monotonic()
            for line in self.line().splitlines()[1:]:
                self.console.print(line, markup=False, highlight=False)

    def flush(self) -> None:
        """Say what was submitted, in one line however many jobs it was."""
        if self.submitted:
            scheduler = self.submitted[0].handle.scheduler
            self.console.print(f"  submitted {len(self.submitted)} jobs to {scheduler}")
            self.submitted = []

    def line(self) -> str:
        from cruijff.records import JobState

        states = [r.state for r in self.records.values()]
        running = [r for r in self.records.values() if r.state is JobState.RUNNING]
        text = (
            f"{sum(s is JobState.SUCCEEDED for s in states)} done, {len(running)} running, "
            f"{sum(s is JobState.PENDING for s in states)} waiting"
        )
        for record in running[:2]:
            elapsed = time.monotonic() - self.started.get(record.unit_id, time.monotonic())
            text += f"\n  {record.unit_id} ({elapsed:.0f} s): {last_line(record.job.log)}"
        return text


def last_line(path: Path, limit: int = 100) -> str:
    """The command's last non-empty line in a log (reading only its end), shortened; the
    local job wrapper's own start and end lines say nothing the progress line does not."""
    from cruijff.local.store import LOG_MARK

    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 4096))
            tail = handle.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [
        line
        for line in tail.replace("\r", "\n").splitlines()
        if line.strip() and not line.startswith(LOG_MARK)
    ]
    return lines[-1].strip()[:limit] if lines else ""


def show_results(found: Any, limit: int | None = None) -> None:
    """The results table of a :class:`cruijff.orchestrator.Status` (or a run's plan and
    records), when the tools reported any: the first ``limit`` runs."""
    from cruijff.results import format_value, results_table

    columns, rows = results_table(found.experiment, found.jobs, found.records)
    title = "Results"
    if limit is not None and len(rows) > limit:
        title += f": the first {limit} of {len(rows):,} runs (--all, or analyze, for every one)"
    if rows:
        table(title, columns, ([format_value(row.get(c)) for c in columns] for row in rows[:limit]))


def _interval(value: float | None, low: float | None, high: float | None) -> str:
    if value is None:
        return "-"
    if low is None or high is None:
        return f"{value:.3g}"
    return f"{value:.3g} [{low:.3g}, {high:.3g}]"


def _p(value: float | None) -> str:
    return "-" if value is None else ("<0.001" if value < 0.001 else f"{value:.3g}")


def show_analysis(analysis: Any, experiment: Any, report: Any) -> None:
    """The analysis in the terminal: results, comparisons with the control, verdicts, notes,
    what is missing, and where the report is. A metric such as ``match/accuracy[max]`` or a
    cause holding ``[/b]`` prints as it is, never as markup: table cells are text, and values
    in printed lines are escaped."""
    from rich.markup import escape

    out = console()

    def plain(value: Any) -> str:
        return "" if value is None else str(value)

    def text(value: Any) -> str:
        return escape(plain(value))

    epoch = lambda value: "-" if value is None else str(value)  # noqa: E731
    if analysis.cells:
        table(
            "Results (95% intervals)",
            ["run", "task", "epoch", "metric", "value", "n"],
            (
                [
                    plain(c.label or c.run),
                    plain(c.task),
                    epoch(c.epoch),
                    plain(c.metric),
                    _interval(c.value, c.ci_low, c.ci_high)
                    + (" (floor)" if c.floor else " (ceiling)" if c.ceiling else ""),
                    c.n,
                ]
                for c in analysis.cells
            ),
        )
    if analysis.comparisons:
        table(
            "Against the base model (paired)",
            ["run", "control", "task", "epoch", "metric", "Δ", "p (Holm)", "flips ↑/↓"],
            (
                [
                    plain(c.run),
                    plain(c.control),
                    plain(c.task),
                    epoch(c.epoch),
                    plain(c.metric),
                    _interval(c.delta, c.ci_low, c.ci_high),
                    _p(c.p_adjusted),
                    f"{c.flips_up}/{c.flips_down}",
                ]
                for c in analysis.comparisons
            ),
        )
    for note in getattr(analysis, "notes", ()):
        out.print(text(note))
    for verdict in analysis.verdicts:
        where = text(f"{verdict.task}, epoch {epoch(verdict.epoch)}, {verdict.metric}")
        if verdict.best:
            out.print(
                f"{where}: {text(verdict.best)} is best "
                f"(Δ {_interval(verdict.delta, verdict.ci_low, verdict.ci_high)} "
                f"over {text(verdict.runner_up)})"
            )
        elif verdict.runner_up:
            needed = (
                f"; about {verdict.samples_needed} samples would tell them apart"
                if (verdict.samples_needed)
                else ""
            )
            out.print(f"{where}: the runs cannot be told apart at this sample size{needed}")
    for missing in analysis.missing:
        cell = " ".join(
            str(part) for part in (missing.run, missing.task, missing.epoch) if part is not None
        )
        out.print(f"[yellow]missing {text(cell)}: {text(missing.cause)}[/]")
    out.print(f"Report: {text(report)}")
