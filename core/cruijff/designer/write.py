"""Writing a designed file (:func:`write_design`): its text checked exactly as ``cruijff
validate`` checks it, and read back to the same data, before it is written, atomically; a file
with an error is never written."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from cruijff.designer.content import document
from cruijff.designer.draft import Designed, Draft
from cruijff.designer.place import refuse_overwrite
from cruijff.designer.text import render
from cruijff.errors import ProblemsFound
from cruijff.manager import PluginManager
from cruijff.records import Problem, Severity


def write_design(
    manager: PluginManager, draft: Draft, path: Path, *, force: bool = False, dry_run: bool = False
) -> Designed:
    """Write ``draft`` to ``path``, atomically, after checking the text as ``cruijff
    validate`` does: ProblemsFound (nothing written) if it has an error; warnings are
    returned. With ``dry_run``, check but write nothing. UserError if ``path`` exists and
    ``force`` is not given."""
    from cruijff.fsutil import write_atomic

    refuse_overwrite(path, force)
    if draft.scheduler:
        manager.scheduler(draft.scheduler)  # UserError listing the installed ones
    folder = Path(os.path.abspath(path)).parent
    data = document(draft, folder)
    text = render(data, path.name)
    problems, runs, jobs = _check(manager, text, data, path, folder)
    if any(problem.severity is Severity.ERROR for problem in problems):
        error = ProblemsFound(problems)
        error.hint = f"nothing was written: fix the options and design {path.name} again"
        raise error
    if not dry_run:
        write_atomic(path, text)
    return Designed(
        path=path, text=text, warnings=problems, runs=runs, jobs=jobs, written=not dry_run
    )


def _check(
    manager: PluginManager, text: str, data: Mapping[str, Any], path: Path, folder: Path
) -> tuple[tuple[Problem, ...], tuple[str, ...], int]:
    """Check ``text`` as the file ``path`` (written beside it for a moment, so its relative
    paths mean what they will mean): every problem, with its place in ``path``, the run
    names and the number of jobs."""
    from cruijff import orchestrator
    from cruijff.yamlfile import load_yaml

    with _scratch(folder) as where:
        fd, name = tempfile.mkstemp(dir=where, prefix=f".{path.name}.", suffix=".design")
        scratch = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            # A rendering bug, not the user's: what is checked must be what was designed.
            if load_yaml(scratch).data != data:
                raise AssertionError(f"the designed file does not read back as written:\n{text}")
            checked, plan = orchestrator.validate(manager, scratch)
        finally:
            scratch.unlink(missing_ok=True)
    problems = tuple(_moved(problem, scratch, path) for problem in checked.problems)
    if plan is None:
        return problems, (), 0
    return problems, tuple(run.name for run in plan.experiment.runs), len(plan.jobs)


@contextlib.contextmanager
def _scratch(folder: Path) -> Iterator[Path]:
    """``folder`` when it exists; else a temporary one (every path the file gives is then
    absolute, since nothing lies inside a folder that does not exist yet)."""
    if folder.is_dir():
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="cruijff-design-") as where:
        yield Path(where)


def _moved(problem: Problem, scratch: Path, path: Path) -> Problem:
    """``problem`` as the user will see it: placed in ``path``, not in the scratch file."""
    if problem.where.file is not None and Path(problem.where.file).name == scratch.name:
        return attrs.evolve(problem, where=attrs.evolve(problem.where, file=path))
    return problem
