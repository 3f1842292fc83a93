"""Collect: everything an analysis reads, from the experiment file and its directory alone.

- **Scores** of every evaluation cell whose job succeeded, from the plugin that owns it
  (``cruijff_observe``: inspect reads its own ``.eval`` logs), with non-finite sample scores
  left out and a non-finite value made None (:func:`finite`);
- **Curves** from every ``train-metrics`` artifact (a CSV of :data:`~.model.CURVE_COLUMNS`);
- **Missing** cells: not run yet, failed, or unreadable (a plugin that fails on one cell
  makes that cell missing, with the error as its cause), and unreadable curves, each with
  its cause;
- **Environment**: the project's git commit, the data file (relative to the experiment
  directory or file where it is inside them: :func:`data_file`) and its sha256, and the
  package versions the jobs ran with, where their tools recorded them.

Evaluation units are those of tools in the evaluation role; their ``params`` carry ``task``,
``epoch`` (None for controls and eval-only runs) and ``vis_label``, as the shipped evaluator's
do: labels are kept per cell, ``(run, task, epoch)``. Nothing here writes; the job records are
read, never changed.
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
from cruijff.errors import CruijffError
from cruijff.manager import PluginManager
from cruijff.records import ArtifactKind, Plan, Role, Unit
from cruijff.state import ExperimentState, JobRecord


@attrs.frozen(kw_only=True)
class Collected:
    """What :func:`collect` found, in the plan's unit order."""

    scores: tuple[Scores, ...] = ()
    curves: tuple[Curve, ...] = ()
    missing: tuple[Missing, ...] = ()
    labels: Mapping[tuple[str, str, int | None], str] = attrs.field(factory=dict)
    environment: Mapping[str, Any] = attrs.field(factory=dict)


def collect(manager: PluginManager, plan: Plan) -> Collected:
    """Scores, curves, missing cells and environment of a planned experiment."""
    experiment = plan.experiment
    records = ExperimentState(experiment.state_dir).records()
    evaluators = {tool.name for tool in manager.tools() if tool.role is Role.EVALUATION}
    scores: list[Scores] = []
    curves: list[Curve] = []
    missing: list[Missing] = []
    labels: dict[tuple[str, str, int | None], str] = {}
    packages: dict[str, Mapping[str, str]] = {}
    for unit in plan.units:
        record = records.get(unit.id)
        if unit.tool in evaluators:
            found = _observe(manager, plan, unit, record)
            if isinstance(found, Missing):
                missing.append(found)
            else:
                for s in found.scores:
                    scores.append(finite(s))
                    label = unit.params.get("vis_label")
                    if isinstance(label, str) and label:
                        labels.setdefault((s.run, s.task, s.epoch), label)
                if found.environment:
                    packages[unit.id] = found.environment
        for artifact in unit.produces:
            if artifact.kind == ArtifactKind.TRAIN_METRICS and record is not None and record.done:
                curve = read_curve(unit.run, artifact.path, experiment.directory)
                if isinstance(curve, Curve):
                    curves.append(curve)
                elif curve is not None:
                    missing.append(Missing(run=unit.run, task=None, epoch=None, cause=curve))
    environment: dict[str, Any] = {"packages": packages}
    commit = git_commit(experiment.file.parent)
    if commit:
        environment["git_commit"] = commit
    if experiment.data is not None and experiment.data.path.is_file():
        environment["data_sha256"] = sha256(experiment.data.path)
        environment["data_file"] = data_file(experiment.data.path, experiment)
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
    try:
        observed = manager.observe(plan.experiment, unit)
    except Exception as error:  # one cell's failure is that cell's cause, not the analysis's
        text = (
            error.message if isinstance(error, CruijffError) else f"{type(error).__name__}: {error}"
        )
        return Missing(**where, cause=f"its tool could not read it: {text}")
    if observed is None:
        return Missing(**where, cause="its tool reports no scores")
    if observed.missing:
        return Missing(**where, cause=observed.missing)
    return observed


def finite(scores: Scores) -> Scores:
    """``scores`` without its non-finite sample scores (NaN, infinities: no statistic can use
    them), and with a non-finite value as None."""
    value = scores.value
    if value is not None and not math.isfinite(value):
        value = None
    if value is scores.value and all(math.isfinite(v) for v in scores.samples.values()):
        return scores
    samples = {key: v for key, v in scores.samples.items() if math.isfinite(v)}
    return attrs.evolve(scores, value=value, samples=samples)


def read_curve(run: str, path: Path, root: Path) -> Curve | str | None:
    """A run's curve from a train-metrics CSV, or why there is none (unreadable, no rows);
    None where there is no such file (its trainer wrote none: nothing to report)."""
    shown = _relative(path, root)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        reason = f"{type(error).__name__}: {error}".replace(str(path), shown)
        return f"its training curve {shown} cannot be read: {reason}"
    steps, epochs, loss, val_loss = [], [], [], []
    for number, row in enumerate(rows, 1):
        step = _number(row.get("step"))
        steps.append(int(step) if step is not None else number)
        epoch = _number(row.get("epoch"))
        epochs.append(int(epoch) if epoch is not None else 0)
        loss.append(_number(row.get("loss")))
        val_loss.append(_number(row.get("val_loss")))
    if not rows:
        return f"its training curve {shown} has no rows"
    return Curve(run=run, path=shown, steps=steps, epochs=epochs, loss=loss, val_loss=val_loss)


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def data_file(path: Path, experiment: Any) -> str:
    """The data file as the report names it: relative to the experiment directory where it is
    inside it, else relative to the experiment file's folder (as experiment files write
    paths) where it is inside that, else in full."""
    for root in (experiment.directory, experiment.file.parent):
        if path.is_relative_to(root):
            return str(path.relative_to(root))
    return str(path)


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` where it is inside it, else as written."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


GIT_TIMEOUT = 30
"""Seconds git gets to answer (a slow network file system can take long)."""
GIT_SILENT = "unknown (git did not answer)"


def git_commit(folder: Path) -> str | None:
    """The commit of the git checkout ``folder`` is in (with ``+dirty`` when it has changes),
    or None outside one; git's absence is no error. When git does not answer within
    :data:`GIT_TIMEOUT` seconds the commit is :data:`GIT_SILENT`, so that the report says so
    rather than silently leaving it out."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return GIT_SILENT
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
