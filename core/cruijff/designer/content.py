"""The plain data of the experiment file a :class:`~cruijff.designer.draft.Draft` describes, in
cruijff_kit's form (:func:`document`): the defaults filled in, paths written relative to the
file's folder, the training data's size and splits counted."""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any

from cruijff.designer.draft import DEFAULT_CONTROLS, Draft, TaskChoice
from cruijff.errors import UserError

SPLITS = ("train", "validation", "test")
"""The splits :func:`count_splits` counts, in the order the experiment file writes them."""


def document(draft: Draft, folder: Path) -> dict[str, Any]:
    """The plain data of the experiment file ``draft`` describes, for a file in ``folder``
    (paths inside that folder are written relative to it, others absolute)."""
    data: dict[str, Any] = {
        "experiment": {"name": draft.name, "question": draft.question, "date": draft.date},
        "tools": dict(draft.tools),
    }
    if draft.variables:
        data["variables"] = {key: list(values) for key, values in draft.variables}
    data["controls"] = _controls(draft)
    data["models"] = {"base": _models(draft, folder)}
    data["data"] = {"training": _training(draft.data, folder)}
    data["evaluation"] = {"tasks": [_task(task, folder) for task in draft.tasks]}
    if draft.scheduler:
        data["scheduler"] = {"name": draft.scheduler}
        if draft.profile:
            data["scheduler"]["profile"] = draft.profile
    return data


def written_path(path: Path, folder: Path) -> str:
    """``path`` as the file writes it: relative to ``folder`` when it lies inside, else
    absolute (a file moved with its folder still finds what is beside it)."""
    absolute = Path(path).expanduser().resolve()
    with contextlib.suppress(ValueError, OSError):
        return absolute.relative_to(folder.resolve()).as_posix()
    return str(absolute)


def count_splits(path: Path) -> dict[str, int]:
    """The rows of each split of a JSON data file (``{"train": [...], ...}``); empty when it
    is a bare list or cannot be read (checking the file says why)."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    if not isinstance(rows, dict):
        return {}
    return {split: len(rows[split]) for split in SPLITS if isinstance(rows.get(split), list)}


def _controls(draft: Draft) -> dict[str, Any]:
    """The defaults, then the controls given, then the recipe; less what is swept (a swept
    variable is no control)."""
    controls = dict(DEFAULT_CONTROLS)
    controls.update(draft.controls)
    if draft.recipe:
        controls["base_recipe"] = draft.recipe
    for key, _ in draft.variables:
        controls.pop(key, None)
    return controls


def _models(draft: Draft, folder: Path) -> list[dict[str, str]]:
    from cruijff.experiment.grid import clean_name

    models: list[dict[str, str]] = []
    for path in draft.models:
        name = clean_name(Path(os.path.abspath(path)).name)
        if any(model["name"] == name for model in models):
            raise UserError(
                f"two model folders are called {name}",
                hint="rename one of the folders: a base model's name is its folder's",
            )
        models.append({"name": name, "path": written_path(path, folder)})
    return models


def _training(path: Path, folder: Path) -> dict[str, Any]:
    training: dict[str, Any] = {
        "path": written_path(path, folder),
        "format": "json",
        "dataset_label": path.stem,
    }
    with contextlib.suppress(OSError):
        training["size_kb"] = max(1, math.ceil(path.stat().st_size / 1024))
    splits = count_splits(path)
    if splits:
        training["splits"] = splits
    return training


def _task(task: TaskChoice, folder: Path) -> dict[str, str]:
    return {
        "name": task.name,
        "script": written_path(task.script, folder),
        "description": task.description or f"{task.name} in {task.script.name}",
    }
