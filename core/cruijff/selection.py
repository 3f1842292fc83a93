"""Choosing part of an experiment: the ``--only PATTERN`` of ``run``, ``cancel`` and ``status``.

A pattern is a run name (every job of that run), a unit id (``rank8.train``) or a shell-style
glob over either (``rank8*``, ``*.eval.*``), matched case-sensitively as names are written.
Several patterns select the union. A pattern that matches nothing is an error naming the
closest names, never an empty selection that would quietly do nothing.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Mapping, Sequence

from cruijff.errors import UserError

NEAR = 5
"""How many near names an unmatched pattern's error lists."""


def select(
    patterns: Sequence[str], jobs: Iterable[tuple[str, str]], option: str = "--only"
) -> set[str]:
    """The unit ids of ``jobs`` (``(unit id, run)`` pairs) that any of ``patterns`` matches;
    ``option`` names where the patterns were given, for the error."""
    jobs = list(jobs)
    chosen: set[str] = set()
    for pattern in patterns:
        matched = {
            unit
            for unit, run in jobs
            if fnmatch.fnmatchcase(unit, pattern) or fnmatch.fnmatchcase(run, pattern)
        }
        if not matched:
            raise UserError(
                f"{option} {pattern!r} matches no run or job", hint=_near(pattern, jobs)
            )
        chosen |= matched
    return chosen


def _near(pattern: str, jobs: list[tuple[str, str]]) -> str:
    names = sorted({run for _, run in jobs} | {unit for unit, _ in jobs})
    plain = pattern.replace("*", "").replace("?", "")
    close = difflib.get_close_matches(plain, names, n=NEAR, cutoff=0.5)
    if close:
        return "near names: " + ", ".join(close)
    runs = sorted({run for _, run in jobs})
    shown = ", ".join(runs[:NEAR]) + (", ..." if len(runs) > NEAR else "")
    return f"runs: {shown} (a run name, a job such as RUN.train, or a glob such as 'rank8*')"


def downstream(units: Iterable[str], depends_on: Mapping[str, Sequence[str]]) -> set[str]:
    """Every unit that depends, directly or through others, on one of ``units`` (``units``
    themselves not included unless one depends on another)."""
    dependents: dict[str, list[str]] = {}
    for unit, parents in depends_on.items():
        for parent in parents:
            dependents.setdefault(parent, []).append(unit)
    return _reach(units, dependents)


def upstream(units: Iterable[str], depends_on: Mapping[str, Sequence[str]]) -> set[str]:
    """``units`` and every unit they depend on, directly or through others."""
    units = set(units)
    return units | _reach(units, depends_on)


def _reach(units: Iterable[str], edges: Mapping[str, Sequence[str]]) -> set[str]:
    """Every unit reached from ``units`` along ``edges``, in one or more steps."""
    found: set[str] = set()
    todo = list(units)
    while todo:
        for other in edges.get(todo.pop(), ()):
            if other not in found:
                found.add(other)
                todo.append(other)
    return found
