"""Collect: everything an analysis reads, from the experiment file and its directory alone.

- **Scores** of every evaluation cell whose job succeeded, from the plugin that owns it
  (``cruijff_observe``: inspect reads its own ``.eval`` logs);
- **Curves** from every ``train-metrics`` artifact (a CSV of :data:`~.model.CURVE_COLUMNS`);
- **Missing** cells: not run yet, failed, or unreadable, each with its cause;
- **Environment**: the project's git commit, the data file's sha256, and the package versions
  the jobs ran with, where their tools recorded them.

Evaluation units are those of tools in the evaluation role; their ``params`` carry ``task``,
``epoch`` (None for controls and eval-only runs) and ``vis_label``, as the shipped evaluator's
do. Nothing here writes; the job records are read, never changed.
"""

from __future__ import annotations

import csv
import hashlib
import math
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from cruijff.analysis.model import Curve, Missing, Observations, Scores
from cruijff.manager import PluginManager
from cruijff.records import ArtifactKind, Plan, Role, Unit
from cruijff.state import ExperimentState, JobRecord


@attrs.frozen(kw_only=True)
class Collected:
    """What :func:`collect` found, in the plan's unit order."""

    scores: tuple[Scores, ...] = ()
    curves: tuple[Curve, ...] = ()
    missing: tuple[Missing, ...] = ()
    labels: Mapping[str, str] = attrs.field(factory=dict)
    environment: Mapping[str, Any] = attrs.field(factory=dict)


def collect(manager: PluginManager, plan: Plan) -> Collected:
    """Scores, curves, missing cells and environment of a planned experiment."""
    experiment = plan.experiment
    records = ExperimentState(experiment.state_dir).records()
    evaluators = {tool.name for tool in manager.tools() if tool.role is Role.EVALUATION}
    scores: list[Scores] = []
    curves: list[Curve] = []
    missing: list[Missing] = []
    labels: dict[str, str] = {}
    packages: dict[str, Mapping[str, str]] = {}
    for unit in plan.units:
        record = records.get(unit.id)
        if unit.tool in evaluators:
            label = unit.params.get("vis_label")
            if isinstance(label, str) and label:
                labels.setdefault(unit.run, label)
            found = _observe(manager, plan, unit, record)
            if isinstance(found, Missing):
                missing.append(found)
            else:
                scores += found.scores
                if found.environment:
                    packages[unit.id] = found.environment
        for artifact in unit.produces:
            if artifact.kind == ArtifactKind.TRAIN_METRICS and record is not None and record.done:
                curve = read_curve(unit.run, artifact.path, experiment.directory)
                if curve is not None:
                    curves.append(curve)
    environment: dict[str, Any] = {"packages": packages}
    commit = git_commit(experiment.file.parent)
    if commit:
        environment["git_commit"] = commit
    if experiment.data is not None and experiment.data.path.is_file():
        environment["data_sha256"] = sha256(experiment.data.path)
        environment["data_file"] = str(experiment.data.path)
    return Collected(
        scores=tuple(scores),
        curves=tuple(curves),
        missing=tuple(missing),
        labels=labels,
        environment=environment,
    )


def _observe(
    manager: PluginManager, plan: Plan, unit: Unit, record: JobRecord | None
) -> Observations | Missing:
    """The unit's observations, or why it is missing."""
    task = unit.params.get("task")
    epoch = unit.params.get("epoch")
    where = {"run": unit.run, "task": task if isinstance(task, str) else None, "epoch": epoch}
    if record is None or record.state is None:
        return Missing(**where, cause="not run yet")
    if not record.done:
        state = record.state.value.lower().replace("_", " ")
        cause = "outdated: its files changed since it ran" if record.outdated else state
        if record.cause and not record.outdated:
            cause = f"{state}: {record.cause}"
        return Missing(**where, cause=cause)
    observed = manager.observe(plan.experiment, unit)
    if observed is None:
        return Missing(**where, cause="its tool reports no scores")
    if observed.missing:
        return Missing(**where, cause=observed.missing)
    return observed


def read_curve(run: str, path: Path, root: Path) -> Curve | None:
    """A run's curve from a train-metrics CSV (None when it has no readable rows)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    steps, epochs, loss, val_loss = [], [], [], []
    for number, row in enumerate(rows, 1):
        step = _number(row.get("step"))
        steps.append(int(step) if step is not None else number)
        epoch = _number(row.get("epoch"))
        epochs.append(int(epoch) if epoch is not None else 0)
        loss.append(_number(row.get("loss")))
        val_loss.append(_number(row.get("val_loss")))
    if not rows:
        return None
    try:
        shown = str(path.relative_to(root))
    except ValueError:
        shown = str(path)
    return Curve(run=run, path=shown, steps=steps, epochs=epochs, loss=loss, val_loss=val_loss)


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def git_commit(folder: Path) -> str | None:
    """The commit of the git checkout ``folder`` is in (with ``+dirty`` when it has changes),
    or None outside one; git's absence is no error."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def sha256(path: Path) -> str:
    """The file's sha256, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
