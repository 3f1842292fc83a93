"""What a designed experiment holds: the user's choices (:class:`Draft`), the task picked from a
task file (:class:`TaskChoice`), what writing it did (:class:`Designed`), and the defaults every
designed file shares."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from cruijff.records import Problem, Role

DATASET_TYPES = ("chat_completion", "text_completion")
"""How rows become prompts (cruijff_kit's closed set); the first is the default."""

DEFAULT_CONTROLS: Mapping[str, Any] = {
    "dataset_type": DATASET_TYPES[0],
    "system_prompt": "",
    "prompt": "{input}",
    "epochs": 1,
}
"""The controls every designed file writes out (cruijff_kit requires ``dataset_type``); an
option's value replaces the default."""

DESIGNED_ROLES = (Role.PREPARATION, Role.EVALUATION)
"""The roles a designed experiment fills: a trainer and an evaluator."""


@attrs.frozen(kw_only=True)
class TaskChoice:
    """A ``@task`` function of a task file: its name and the first line of its docstring."""

    script: Path
    name: str
    description: str = ""


@attrs.frozen(kw_only=True)
class Draft:
    """Everything a designed experiment file says; :func:`~cruijff.designer.document` writes it
    out.

    ``tools`` maps a role to the tool's name as the file writes it; ``variables`` and
    ``controls`` keep the order they were given in (the run names follow it).
    """

    name: str
    date: str
    question: str = ""
    tools: Mapping[str, str] = attrs.field(factory=dict)
    models: tuple[Path, ...] = ()
    data: Path
    tasks: tuple[TaskChoice, ...] = ()
    variables: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    controls: tuple[tuple[str, Any], ...] = ()
    recipe: str | None = None
    scheduler: str | None = None
    profile: str | None = None


@attrs.frozen(kw_only=True)
class Designed:
    """What :func:`~cruijff.designer.write_design` did: the file (``written`` false for a dry
    run), its text, the warnings checking it found, and the runs and jobs it makes."""

    path: Path
    text: str
    warnings: tuple[Problem, ...]
    runs: tuple[str, ...]
    jobs: int
    written: bool


def today() -> str:
    """Today's date as an experiment file writes it (``YYYY-MM-DD``)."""
    return datetime.date.today().isoformat()
