"""What a project folder offers as the questions' defaults: its model folders, data files and
task files, looked for in ``models/``, ``data/`` and ``tasks/`` first, then in the folder
itself. A folder that cannot be read offers nothing."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from pathlib import Path

from cruijff.designer.tasks import task_functions
from cruijff.errors import UserError

_MAX_TASK_FILE = 1_000_000
"""The bytes past which a Python file is not parsed for tasks (guessing must stay quick)."""


def guess_models(folder: Path) -> list[Path]:
    """Folders under ``folder`` (and its ``models/``) that hold a ``config.json``."""
    return _look(
        folder,
        "models",
        lambda parent: (p for p in parent.iterdir() if (p / "config.json").is_file()),
    )


def guess_data(folder: Path) -> list[Path]:
    """JSON files in ``folder``'s ``data/`` and in ``folder`` itself."""
    return _look(folder, "data", lambda parent: (p for p in parent.glob("*.json") if p.is_file()))


def guess_tasks(folder: Path) -> list[Path]:
    """Python files in ``folder``'s ``tasks/`` and in ``folder`` with a ``@task`` function."""
    return _look(folder, "tasks", lambda parent: filter(_has_tasks, parent.glob("*.py")))


def _look(folder: Path, inside: str, entries: Callable[[Path], Iterable[Path]]) -> list[Path]:
    """The ``entries`` of ``folder/inside``, then of ``folder``, each sorted, shown relative to
    ``folder``."""
    found: list[Path] = []
    for parent in (folder / inside, folder):
        with contextlib.suppress(OSError):
            found += sorted(entries(parent))
    return [_shown(path, folder) for path in found]


def _has_tasks(path: Path) -> bool:
    with contextlib.suppress(UserError, OSError):
        return path.stat().st_size < _MAX_TASK_FILE and bool(task_functions(path))
    return False


def _shown(path: Path, folder: Path) -> Path:
    with contextlib.suppress(ValueError):
        return path.relative_to(folder)
    return path
