"""The ``evaluation`` section: its settings (the evaluation tool's keys), scorers, tasks and the
matrix, whose runs and tasks must exist."""

from __future__ import annotations

from typing import Any

from cruijff.experiment.compute import compute
from cruijff.experiment.context import Context
from cruijff.experiment.reader import ListOf, is_count, kind, present
from cruijff.records import NAME_PATTERN, EvalTask, Evaluation, MatrixEntry, RunType, Scorer
from cruijff.suggest import did_you_mean, one_of
from cruijff.yamlfile import yaml_text

OWN_KEYS = ("scorers", "tasks", "matrix", "compute")
"""The keys of the section the core reads; the others are the evaluation tool's settings."""
SCORER_KEYS = ("name", "params")
TASK_KEYS = ("name", "script")
"""The keys of a task the core reads; the others are the evaluation tool's settings."""
MATRIX_KEYS = ("run", "tasks", "epochs", "vis_label")

SCORERS = ListOf(
    plural="scorers",
    item="a scorer name or mapping",
    hint="write - name: match",
    optional=True,
    names=True,
)
TASKS = ListOf(
    plural="tasks",
    item="a mapping (name, script...)",
    hint="write - name: my_task",
    optional=True,
    name_hint="write - name: {}",
)
MATRIX = ListOf(
    plural="entries",
    item="a mapping (run, tasks, epochs)",
    hint="write - {run: ..., tasks: [...], epochs: [0]}",
)
_EPOCHS_HINT = 'write a list of 0-based epochs such as [0, 1], "all", or null'


def evaluation(ctx: Context, value: Any) -> dict[str, Any]:
    """The Evaluation record (none without the section)."""
    if value is None:
        return {}
    section = ctx.mapping(value, "evaluation")
    settings = present({key: item for key, item in section.items() if key not in OWN_KEYS})
    for key, item in settings.items():
        ctx.offer("evaluation", f"evaluation.{key}", key, item)
    scorers = _scorers(ctx, section.get("scorers"))
    tasks = _tasks(ctx, section.get("tasks"))
    matrix = None
    if section.get("matrix") is not None:
        matrix = tuple(_matrix(ctx, section["matrix"]))
    return {
        "evaluation": Evaluation(
            settings=settings,
            scorers=scorers,
            tasks=tasks,
            matrix=matrix,
            tasks_written=bool(section.get("tasks")),
            compute=compute(ctx, section.get("compute"), "evaluation.compute"),
        )
    }


def _scorers(ctx: Context, value: Any) -> list[Scorer]:
    if isinstance(value, str):  # cruijff_kit reads `scorers: match` as [{name: match}]
        value = [{"name": value}]
    scorers = []
    for path, item in ctx.items(value, "evaluation.scorers", SCORERS):
        if isinstance(item, str):
            scorers.append(Scorer(name=item, yaml_path=path, name_path=path))
            continue
        ctx.known_keys(item, path, SCORER_KEYS)
        name = ctx.string(item, "name", path, required=True)
        params = ctx.mapping(item.get("params"), f"{path}.params")
        if name is not None:  # an empty name too: the evaluation tool knows no such scorer
            scorers.append(
                Scorer(name=name, params=params, yaml_path=path, name_path=f"{path}.name")
            )
    return scorers


def _tasks(ctx: Context, value: Any) -> list[EvalTask]:
    tasks = []
    for path, item in ctx.items(value, "evaluation.tasks", TASKS):
        name = ctx.name(item, path)
        if not ctx.first(ctx.task_names, name, path, "task"):
            name = None
        script = None
        if item.get("script") is not None:
            script = ctx.file_path(
                item, "script", path, required=False, what="task script", folder=False
            )
        settings = present({key: s for key, s in item.items() if key not in TASK_KEYS})
        for key, setting in settings.items():
            ctx.offer("task", f"{path}.{key}", key, setting)
        if name and NAME_PATTERN.fullmatch(name):
            tasks.append(EvalTask(name=name, script=script, settings=settings, yaml_path=path))
    return tasks


def _matrix(ctx: Context, value: Any) -> list[MatrixEntry]:
    """The entries whose run is named and whose epochs are valid; an entry's epochs are the
    evaluation tool's to check against its run's training (the core knows no epoch count)."""
    entries = []
    for path, item in ctx.items(value, "evaluation.matrix", MATRIX):
        ctx.known_keys(item, path, MATRIX_KEYS)
        name = ctx.string(item, "run", path, required=True)
        if name is not None and name not in ctx.run_names and not ctx.runs_refused:
            ctx.error(
                f"{path}.run",
                f"{yaml_text(name)} is not a run",
                did_you_mean(name, ctx.run_names) or one_of(ctx.run_names),
            )
        tasks = _matrix_tasks(ctx, item.get("tasks"), f"{path}.tasks")
        epochs, valid = _epochs(ctx, item.get("epochs"), f"{path}.epochs")
        run = ctx.runs.get(name) if name is not None else None
        if run is not None and epochs is not None and run.type is not RunType.FINE_TUNED:
            ctx.error(
                f"{path}.epochs",
                f"{run.name} is a {run.type.value} run: it has no epochs",
                "write epochs: null or leave it out",
            )
        if name is not None and valid:
            entries.append(
                MatrixEntry(
                    run=name,
                    tasks=tasks,
                    epochs=epochs,
                    base="epochs" in item and item["epochs"] is None,
                    vis_label=ctx.string(item, "vis_label", path),
                    yaml_path=path,
                )
            )
    return entries


def _matrix_tasks(ctx: Context, value: Any, path: str) -> list[str]:
    if value is None:
        return []  # every task
    if not isinstance(value, list):
        hint = f"write {yaml_text([value])}" if isinstance(value, str) else ""
        ctx.error(path, f"expected a list of task names, not {kind(value)}", hint)
        return []
    tasks = []
    for index, task in enumerate(value):
        if not isinstance(task, str):
            ctx.error(f"{path}[{index}]", f"expected a task name, not {kind(task)}")
        elif task not in ctx.task_names:
            ctx.error(
                f"{path}[{index}]",
                f"{yaml_text(task)} is not a task",
                did_you_mean(task, ctx.task_names) or one_of(ctx.task_names),
            )
        else:
            tasks.append(task)
    return tasks


def _epochs(ctx: Context, value: Any, path: str) -> tuple[tuple[int, ...] | str | None, bool]:
    """An entry's epochs as the record holds them, and whether they are valid: a list of
    counts, ``all`` or null. Invalid epochs leave the entry out, so that the positions in
    an entry's epochs are those written."""
    if value is None or value == "all":
        return value, True
    if not isinstance(value, list):
        ctx.error(path, f"expected a list of epochs, not {kind(value)}", _EPOCHS_HINT)
        return None, False
    for index, epoch in enumerate(value):
        if not is_count(epoch):
            ctx.error(f"{path}[{index}]", f"{yaml_text(epoch)} is not an epoch", _EPOCHS_HINT)
    epochs = tuple(epoch for epoch in value if is_count(epoch))
    return epochs, len(epochs) == len(value)
