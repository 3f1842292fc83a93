"""The evaluation matrix: which (run, task, epoch) cells exist, and the unit of each.

Without ``evaluation.matrix``: every fine-tuned run on every task at its last epoch, every
control run (a base model) and every eval-only run (an existing checkpoint) once. With it, each
entry names a run, its tasks (all when left out) and its epochs: a list, ``all``, left out (the
last) or ``null`` (the run's base model as it is: the entry's ``base``). A fine-tuned run's
epochs are the ``hf-model`` artifacts its training unit produces, or its ``lora-adapter``
artifacts where it keeps no merged model (then the cell evaluates the base model plus that
adapter); an evaluation of one depends on that unit. A cell whose data file a generation tool
writes depends on that tool's unit too, and the split it reads must be one the dataset
declares.

Each cell has a label (cruijff_kit's ``vis_label``): the entry's ``vis_label``, else the run's
name; an entry of several tasks labels each cell ``"<label> (<task>)"``.
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
from cruijff.upstream import dataset_maker
from cruijff_inspect import adapter as adapters
from cruijff_inspect.data import eval_data, missing_split
from cruijff_inspect.results import CONFIG, LOGS
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
    adapter: Path | None = None
    """A LoRA adapter evaluated over ``model`` (its base model)."""
    vis_label: str = ""
    vis_source: str = ""
    data_maker: str | None = None
    """The unit that generates the cell's data file, if a tool of the experiment does."""
    data_artifact: Artifact | None = None
    """That unit's ``dataset`` artifact (its rows per split, known before the file exists)."""
    lead: str | None = None
    """The unit whose job evaluates this cell too (:func:`together`); this cell's job starts
    after it and finds the work done."""
    together: tuple[Path, ...] = ()
    """The configs of the cells this cell's job evaluates after its own."""

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
    """For each run, its checkpoint by epoch, with the id of the unit making each: the
    ``hf-model`` artifact (merged weights), else the ``lora-adapter`` one."""
    models: dict[str, dict[int, tuple[str, Artifact]]] = {}
    loras: dict[str, dict[int, tuple[str, Artifact]]] = {}
    for unit in upstream:
        for artifact in unit.produces:
            if artifact.epoch is None:
                continue
            found = {ArtifactKind.HF_MODEL: models, ArtifactKind.LORA_ADAPTER: loras}.get(
                artifact.kind
            )
            if found is not None:
                found.setdefault(artifact.run or unit.run, {})[artifact.epoch] = (unit.id, artifact)
    for run, epochs in loras.items():
        for epoch, made in epochs.items():
            models.setdefault(run, {}).setdefault(epoch, made)
    return models


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
        """An eval-only run's folder, verbatim when absolute (cruijff_kit's ``model_path``);
        an adapter folder is evaluated over the base model it records."""
        folder = checkpoint_folder(self.experiment, run.parameters.get("checkpoint_path"))
        if adapters.is_adapter(folder):
            try:
                base = adapters.recorded_base(folder)
            except adapters.AdapterError:
                base = self.experiment.model(run.model).path  # parse reported it
            return Cell(run=run, task=task, source=CHECKPOINT, model=base, adapter=folder)
        return Cell(run=run, task=task, source=CHECKPOINT, model=folder)

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
        if artifact.kind == ArtifactKind.LORA_ADAPTER:
            base = self.experiment.model(run.model).path
            return Cell(
                run=run,
                task=task,
                source=EPOCH,
                model=base,
                adapter=artifact.path,
                epoch=epoch,
                producer=producer,
                artifact=artifact,
            )
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
                found = [self.base_cell(run, task) for task in tasks]
            elif run.type is RunType.EVAL_ONLY:
                found = [self.checkpoint_cell(run, task) for task in tasks]
            else:
                trained = self.epochs(run, run.yaml_path or "tools")  # a grid's run: no line
                found = []
                if trained:
                    found = [self.epoch_cell(run, task, max(trained), trained) for task in tasks]
            cells += labelled(found, run.name, "the run's name", len(tasks))
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
            if entry.vis_label is not None:
                label, source = entry.vis_label, f"{path}.vis_label"
            else:
                label, source = run.name, "the run's name"
            if run.type is RunType.EVAL_ONLY:
                found = [self.checkpoint_cell(run, task) for task in tasks]
            elif run.type is RunType.CONTROL or entry.base:
                found = [self.base_cell(run, task) for task in tasks]
            else:
                trained = self.epochs(run, f"{path}.run")
                if not trained:
                    continue
                chosen = self.chosen_epochs(run, entry.epochs, trained, f"{path}.epochs")
                found = [
                    self.epoch_cell(run, task, epoch, trained) for task in tasks for epoch in chosen
                ]
            cells += labelled(found, label, source, len(tasks))
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


def checkpoint_folder(experiment: Experiment, value: str) -> Path:
    """An eval-only run's ``checkpoint_path``: an absolute path as it is written (links kept,
    as cruijff_kit passes it), a relative one against the experiment file's folder."""
    written = Path(value).expanduser()
    return written if written.is_absolute() else experiment.resolve(value)


def labelled(cells: list[Cell], label: str, source: str, tasks: int) -> list[Cell]:
    """``cells`` with their label: ``label``, or ``"<label> (<task>)"`` where the entry has
    several tasks (so that each cell's label is its own, as cruijff_kit composes it)."""
    if tasks > 1:
        return [
            attrs.evolve(c, vis_label=f"{label} ({c.task.name})", vis_source=source) for c in cells
        ]
    return [attrs.evolve(c, vis_label=label, vis_source=source) for c in cells]


def data_dependencies(
    experiment: Experiment, cells: list[Cell], upstream: tuple[Unit, ...]
) -> tuple[dict[tuple[str, str], tuple[str, Artifact]], list[Problem]]:
    """For each (run, task) whose data file a generation tool writes, that tool's unit and its
    dataset artifact; and a problem (once per place) for each split a cell reads that the
    dataset does not declare."""
    makers: dict[tuple[str, str], tuple[str, Artifact]] = {}
    problems: dict[tuple[str, str], Problem] = {}
    for run, task in {(c.run.name, c.task.name): (c.run, c.task) for c in cells}.values():
        data = eval_data(experiment, run, task)
        made = dataset_maker(upstream, data.path) if data.path is not None else None
        if made is None:
            continue
        maker, artifact = made
        makers[(run.name, task.name)] = (maker.id, artifact)
        if data.split is None or not artifact.splits or (data.split_where, data.split) in problems:
            continue
        missing = missing_split(data.path, data.split, artifact.splits)
        if missing is not None:
            message, hint = missing
            default = f" ({data.split_source})" if data.split_source.startswith("the task") else ""
            problems[(data.split_where, data.split)] = Problem(
                where=experiment.locate(data.split_where),
                message=f"{message}, as {maker.tool} generates it; the task {task.name} reads "
                f"{data.split!r}{default}",
                hint=hint,
                plugin=PLUGIN,
            )
    return makers, list(problems.values())


def cells(experiment: Experiment, upstream: tuple[Unit, ...]) -> list[Cell]:
    """The cells of the experiment, each once, in matrix (or run) order; ProblemsFound when an
    epoch does not exist, a fine-tuned run has no trained model, or a generated dataset lacks
    a split a cell reads."""
    planner = _Planner(experiment, upstream)
    matrix = experiment.evaluation.matrix if experiment.evaluation else None
    found = planner.explicit(matrix) if matrix is not None else planner.default()
    makers, problems = data_dependencies(experiment, found, upstream)
    if planner.problems or problems:
        raise ProblemsFound((*planner.problems, *problems))
    unique: dict[tuple[str, str, str], Cell] = {}
    for cell in found:
        made = makers.get((cell.run.name, cell.task.name))
        if made is not None:
            cell = attrs.evolve(cell, data_maker=made[0], data_artifact=made[1])
        unique.setdefault((cell.run.name, cell.task.name, cell.label), cell)
    return list(unique.values())


def unit(cell: Cell) -> Unit:
    """The unit of a cell: its folder ``<run>/eval/<task>/<epoch_N|base|checkpoint>``."""
    consumed = cell.artifact or Artifact(
        kind=ArtifactKind.LORA_ADAPTER if cell.adapter else ArtifactKind.HF_MODEL,
        path=cell.adapter or cell.model,
        run=cell.run.name,
    )
    directory = cell.run.directory.joinpath("eval", cell.task.name, cell.label)
    params: dict[str, Any] = {
        "task": cell.task.name,
        "source": cell.source,
        "epoch": cell.epoch,
        "model": str(cell.model),
        "vis_label": cell.vis_label,
    }
    if cell.adapter is not None:
        params["adapter"] = str(cell.adapter)
    depends = tuple(dict.fromkeys(d for d in (cell.data_maker, cell.producer) if d))
    return Unit(
        id=unit_id(cell.run.name, cell.task.name, cell.label),
        tool=TOOL,
        kind=KIND,
        run=cell.run.name,
        directory=directory,
        params=params,
        depends_on=depends,
        consumes=(consumed,),
        payload=cell,
        produces=(
            Artifact(
                kind=ArtifactKind.INSPECT_LOG,
                path=directory / LOGS,
                epoch=cell.epoch,
                run=cell.run.name,
            ),
        ),
    )


def together(units: list[Unit]) -> list[Unit]:
    """The cells of one model (the same folder and adapter, waiting for the same units) in one
    process, which loads it once: the first cell's job evaluates the others after its own;
    theirs start after it ended, and evaluate their cell only where it did not (a failed cell
    retries alone)."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, each in enumerate(units):
        cell = each.payload
        key = (cell.model, cell.adapter, each.depends_on)
        groups.setdefault(key, []).append(index)
    units = list(units)
    for members in groups.values():
        if len(members) < 2:
            continue
        lead, *rest = members
        configs = tuple(units[i].directory / CONFIG for i in rest)
        units[lead] = _with(units[lead], together=configs)
        for i in rest:
            units[i] = _with(units[i], lead=units[lead].id)
    return units


def _with(each: Unit, **changes: Any) -> Unit:
    return attrs.evolve(each, payload=attrs.evolve(each.payload, **changes))


def select(experiment: Experiment, upstream: tuple[Unit, ...]) -> tuple[Unit, ...]:
    """``cruijff_select`` for the inspect tool: a unit per cell, a model's cells evaluated in
    one process where the scheduler keeps the order that needs (``together``)."""
    units = [unit(cell) for cell in cells(experiment, upstream)]
    return tuple(together(units) if experiment.scheduler.together else units)
