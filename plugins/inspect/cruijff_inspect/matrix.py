"""The evaluation matrix: which (run, task, epoch) cells exist, and the unit of each.

Without ``evaluation.matrix``: every fine-tuned run on every task at its last epoch, every
control run (a base model) and every eval-only run (an existing checkpoint) once. With it, each
entry names a run, its tasks (all when left out) and its epochs: a list, ``all``, left out (the
last) or ``null`` (the run's base model as it is: the entry's ``base``). A fine-tuned run's
epochs are the ``hf-model`` artifacts its training unit produces; an evaluation of one depends
on that unit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from cruijff.errors import ProblemsFound
from cruijff.records import (
    NAME_PATTERN,
    Artifact,
    ArtifactKind,
    EvalTask,
    Experiment,
    MatrixEntry,
    Problem,
    Run,
    RunType,
    Unit,
)
from cruijff_inspect.results import LOGS
from cruijff_inspect.settings import PLUGIN

TOOL = "inspect"
KIND = "eval"
EPOCH, BASE, CHECKPOINT = "epoch", "base", "checkpoint"
"""What a cell evaluates: a fine-tuned run's epoch, a base model, an existing checkpoint."""


@attrs.frozen(kw_only=True)
class Cell:
    """One evaluation: a run's model (at an epoch, as a base model, or a checkpoint) on a task."""

    run: Run
    task: EvalTask
    source: str
    model: Path
    epoch: int | None = None
    producer: str | None = None
    artifact: Artifact | None = None

    @property
    def label(self) -> str:
        """The cell's folder name inside ``<run>/eval/<task>/``."""
        return f"epoch_{self.epoch}" if self.source == EPOCH else self.source


def unit_id(run: str, task: str, label: str) -> str:
    """``<run>.eval.<task>.<label>``, shortened with a hash when it would be too long."""
    whole = f"{run}.eval.{task}.{label}"
    if NAME_PATTERN.fullmatch(whole):
        return whole
    digest = hashlib.sha256(whole.encode()).hexdigest()[:8]
    return f"{whole[: 99 - len(digest)].rstrip('.-_')}-{digest}"


def out_of_range(run: str, epoch: int, epochs: Collection[int]) -> tuple[str, str]:
    """What is said of an epoch that is not among the ``epochs`` a run trains for: the message
    and the hint (at parse time from the file's epochs, at select time from the checkpoints)."""
    count = len(epochs)
    return (
        f"epoch {epoch} is out of range: {run} trains for {count} epoch{'s' if count != 1 else ''}",
        f"epochs are 0-based: {min(epochs)} to {max(epochs)}",
    )


def checkpoints(upstream: Iterable[Unit]) -> dict[str, dict[int, tuple[str, Artifact]]]:
    """For each run, its ``hf-model`` artifacts by epoch, with the id of the unit making each."""
    found: dict[str, dict[int, tuple[str, Artifact]]] = {}
    for unit in upstream:
        for artifact in unit.produces:
            if artifact.kind == ArtifactKind.HF_MODEL and artifact.epoch is not None:
                run = artifact.run or unit.run
                found.setdefault(run, {})[artifact.epoch] = (unit.id, artifact)
    return found


class _Planner:
    def __init__(self, experiment: Experiment, upstream: tuple[Unit, ...]) -> None:
        self.experiment = experiment
        self.models = checkpoints(upstream)
        self.problems: list[Problem] = []
        evaluation = experiment.evaluation
        self.tasks = {task.name: task for task in evaluation.tasks} if evaluation else {}

    def problem(self, path: str, message: str, hint: str = "") -> None:
        self.problems.append(
            Problem(where=self.experiment.locate(path), message=message, hint=hint, plugin=PLUGIN)
        )

    def base_cell(self, run: Run, task: EvalTask) -> Cell:
        return Cell(run=run, task=task, source=BASE, model=self.experiment.model(run.model).path)

    def checkpoint_cell(self, run: Run, task: EvalTask) -> Cell:
        value = run.parameters.get("checkpoint_path")
        model = self.experiment.resolve(value)
        return Cell(run=run, task=task, source=CHECKPOINT, model=model)

    def epochs(self, run: Run, where: str) -> dict[int, tuple[str, Artifact]] | None:
        trained = self.models.get(run.name)
        if not trained:
            self.problem(
                where,
                f"{run.name} is a fine-tuned run, but no preparation tool of this experiment "
                "produces its model",
                "add tools: {preparation: ...}, or make it a control or eval-only run",
            )
            return None
        return trained

    def epoch_cell(self, run: Run, task: EvalTask, epoch: int, trained: Mapping) -> Cell:
        producer, artifact = trained[epoch]
        return Cell(
            run=run,
            task=task,
            source=EPOCH,
            model=artifact.path,
            epoch=epoch,
            producer=producer,
            artifact=artifact,
        )

    def default(self) -> list[Cell]:
        cells = []
        for run in self.experiment.runs:
            tasks = list(self.tasks.values())
            if run.type is RunType.CONTROL:
                cells += [self.base_cell(run, task) for task in tasks]
            elif run.type is RunType.EVAL_ONLY:
                cells += [self.checkpoint_cell(run, task) for task in tasks]
            else:
                trained = self.epochs(run, run.yaml_path or "tools")  # a grid's run: no line
                if trained:
                    cells += [self.epoch_cell(run, task, max(trained), trained) for task in tasks]
        return cells

    def explicit(self, entries: Iterable[MatrixEntry]) -> list[Cell]:
        cells = []
        for entry in entries:
            path = entry.yaml_path
            try:
                run = self.experiment.run(entry.run)
            except KeyError:
                continue  # the core reports it
            tasks = [self.tasks[name] for name in entry.tasks if name in self.tasks] or list(
                self.tasks.values()
            )
            if run.type is RunType.EVAL_ONLY:
                cells += [self.checkpoint_cell(run, task) for task in tasks]
                continue
            if run.type is RunType.CONTROL or entry.base:
                cells += [self.base_cell(run, task) for task in tasks]
                continue
            trained = self.epochs(run, f"{path}.run")
            if not trained:
                continue
            chosen = self.chosen_epochs(run, entry.epochs, trained, f"{path}.epochs")
            cells += [
                self.epoch_cell(run, task, epoch, trained) for task in tasks for epoch in chosen
            ]
        return cells

    def chosen_epochs(self, run: Run, epochs: Any, trained: Mapping, path: str) -> list[int]:
        """A matrix entry's epochs of a fine-tuned run: left out, the last; ``all``; or a list
        whose epochs must exist (a problem for each one that does not)."""
        if epochs is None:
            return [max(trained)]
        if epochs == "all":
            return sorted(trained)
        for position, epoch in enumerate(epochs):
            if epoch not in trained:
                self.problem(f"{path}[{position}]", *out_of_range(run.name, epoch, trained))
        return [epoch for epoch in epochs if epoch in trained]


def cells(experiment: Experiment, upstream: tuple[Unit, ...]) -> list[Cell]:
    """The cells of the experiment, each once, in matrix (or run) order; ProblemsFound when an
    epoch does not exist or a fine-tuned run has no trained model."""
    planner = _Planner(experiment, upstream)
    matrix = experiment.evaluation.matrix if experiment.evaluation else None
    found = planner.explicit(matrix) if matrix is not None else planner.default()
    if planner.problems:
        raise ProblemsFound(tuple(planner.problems))
    unique: dict[tuple[str, str, str], Cell] = {}
    for cell in found:
        unique.setdefault((cell.run.name, cell.task.name, cell.label), cell)
    return list(unique.values())


def unit(cell: Cell) -> Unit:
    """The unit of a cell: its folder ``<run>/eval/<task>/<epoch_N|base|checkpoint>``."""
    consumed = cell.artifact or Artifact(
        kind=ArtifactKind.HF_MODEL, path=cell.model, run=cell.run.name
    )
    directory = cell.run.directory / "eval" / cell.task.name / cell.label
    return Unit(
        id=unit_id(cell.run.name, cell.task.name, cell.label),
        tool=TOOL,
        kind=KIND,
        run=cell.run.name,
        directory=directory,
        params={
            "task": cell.task.name,
            "source": cell.source,
            "epoch": cell.epoch,
            "model": str(cell.model),
        },
        depends_on=(cell.producer,) if cell.producer else (),
        consumes=(consumed,),
        produces=(
            Artifact(
                kind=ArtifactKind.INSPECT_LOG,
                path=directory / LOGS,
                epoch=cell.epoch,
                run=cell.run.name,
            ),
        ),
    )


def select(experiment: Experiment, upstream: tuple[Unit, ...]) -> tuple[Unit, ...]:
    """``cruijff_select`` for the inspect tool."""
    return tuple(unit(cell) for cell in cells(experiment, upstream))
