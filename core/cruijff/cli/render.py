"""Turning results into what a person reads (rich) or a script reads (JSON)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click

from cruijff.convert import to_plain
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
    click.echo(json.dumps(to_plain(data), indent=2, sort_keys=False))


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

    grid = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*(str(cell) if cell is not None else "" for cell in row))
    console().print(grid)


def params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in params.items()) or "-"
