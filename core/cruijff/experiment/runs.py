"""The ``variables`` and ``runs`` sections: the swept axes, and the runs, as written or as the
grid of the axes over the base models (:mod:`cruijff.experiment.grid`)."""

from __future__ import annotations

from typing import Any

import attrs

from cruijff.experiment.compute import compute
from cruijff.experiment.context import Context
from cruijff.experiment.grid import canonical, grid_runs, grid_size, run_directory
from cruijff.experiment.reader import ListOf, kind, present
from cruijff.records import NAME_PATTERN, Axis, Experiment, Run, RunType, ZipGroup
from cruijff.suggest import did_you_mean, one_of
from cruijff.yamlfile import yaml_text

MAX_RUNS = 10_000
"""Most fine-tuned runs an experiment may have (a grid's product over the base models, or the
explicit runs): 10,000 plan in seconds; a slip such as one axis too many multiplies that into
minutes and gigabytes, and is refused before the grid is expanded."""

RUN_KEYS = (
    "name",
    "type",
    "model",
    "parameters",
    "compute",
    "training_condition",
    "dataset_path",  # retired, still read: the literal training file, like parameters'
    "slurm_overrides",  # retired, still read: the training job's partition and constraint
)
OVERRIDES = ("partition", "constraint")
"""The keys of a run's retired ``slurm_overrides``."""
RUNS = ListOf(plural="runs", item="a mapping (name, type, model...)")
ZIP = ListOf(
    plural="groups",
    item="a mapping of parameters to lists",
    hint="write - {batch_size: [4, 8], gradient_accumulation_steps: [2, 1]}",
)


# --- variables ------------------------------------------------------------------------------


def variables(ctx: Context, value: Any) -> dict[str, Any]:
    """The axes and zip groups in file order; the grid's factors go to ``ctx.factors``."""
    axes: list[Axis | ZipGroup] = []
    swept: dict[str, str] = {}  # parameter -> where it is swept first
    for key, item in ctx.mapping(value, "variables").items():
        if key == "zip":
            axes += _zip_groups(ctx, item, swept)
            continue
        axis = _axis(ctx, key, item, f"variables.{key}", swept)
        if axis is not None:
            axes.append(axis)
            _add_factor(ctx, [{key: each} for each in item], axis.yaml_path)
    return {"variables": axes}


def _zip_groups(ctx: Context, value: Any, swept: dict[str, str]) -> list[ZipGroup]:
    groups = []
    for path, group in ctx.items(value, "variables.zip", ZIP):
        if not group:
            ctx.error(path, f"expected {ZIP.item}, not an empty mapping")
            continue
        axes = []
        for key, item in group.items():
            axis = _axis(ctx, key, item, f"{path}.{key}", swept)
            if axis is not None:
                axes.append(axis)
        lengths = {axis.key: len(axis.values) for axis in axes}
        if len(set(lengths.values())) > 1:
            counts = ", ".join(f"{key} has {count}" for key, count in lengths.items())
            ctx.error(
                path,
                f"the lists of a zip group must have one length: {counts}",
                "the i-th values of every list go into one run",
            )
        elif axes:
            groups.append(ZipGroup(axes=axes, yaml_path=path))
            rows = [
                {axis.key: group[axis.key][i] for axis in axes} for i in range(len(axes[0].values))
            ]
            _add_factor(ctx, rows, path)
    return groups


def _axis(ctx: Context, key: str, value: Any, path: str, swept: dict[str, str]) -> Axis | None:
    """The axis of ``key`` (its values offered to the plugins), unless it is no list of values
    or its parameter is swept already."""
    ctx.offer("parameters", path, key, value, swept=True)
    if not isinstance(value, list) or not value:
        if isinstance(value, list):
            ctx.error(path, "an axis needs at least one value")
        elif isinstance(value, dict):
            ctx.error(path, "expected a list of values, not a mapping")
        else:
            ctx.error(
                path,
                f"expected a list of values, not {kind(value)}",
                f"write {yaml_text([value])} for one value, or set it in controls",
            )
        return None
    if key in swept:
        ctx.error(
            path,
            f"{key} is already swept at {swept[key]}",
            "a parameter belongs to one axis or zip group",
        )
        return None
    swept[key] = path
    return Axis(key=key, values=value, yaml_path=path)


def _add_factor(ctx: Context, rows: list[dict[str, Any]], path: str) -> None:
    seen: set[str] = set()
    for row in rows:
        text = canonical(row)
        if text in seen:
            shown = ", ".join(f"{key}={yaml_text(value)}" for key, value in row.items())
            ctx.error(path, f"{shown} appears twice", "the two runs would be identical")
            return
        seen.add(text)
    ctx.factors.append(rows)


# --- runs -----------------------------------------------------------------------------------


def runs(ctx: Context, value: Any) -> dict[str, Any]:
    """The runs as written, or without ``runs`` the grid; their names go to ``ctx``."""
    found = _grid(ctx) if value is None else _written(ctx, value)
    if value is not None and not ctx.runs_refused:
        _documented(ctx, found)
    ctx.runs = {run.name: run for run in found}
    return {"runs": found}


def _written(ctx: Context, value: Any) -> list[Run]:
    """Explicit runs, used as written."""
    if value == []:
        ctx.error(
            "runs",
            "the list of runs is empty",
            "leave runs out for the grid of variables over the base models",
        )
    types = [kind.value for kind in RunType]
    found = []
    trained = 0
    for path, item in ctx.items(value, "runs", RUNS):
        trained += item.get("type") in (None, RunType.FINE_TUNED.value)
        if trained > MAX_RUNS:
            ctx.error(
                path,
                f"more than {MAX_RUNS:,} fine-tuned runs",
                f"an experiment has at most {MAX_RUNS:,}: split it into several files",
            )
            ctx.runs_refused = True
            break
        ctx.known_keys(item, path, RUN_KEYS)
        name = ctx.name(item, path)
        if not ctx.first(ctx.run_names, name, path, "run"):
            name = None
        run_type = RunType.FINE_TUNED
        written = ctx.string(item, "type", path)
        if written is not None and written not in types:
            ctx.error(
                f"{path}.type",
                f"unknown run type {yaml_text(written)}",
                did_you_mean(written, types) or one_of(types),
            )
        elif written is not None:
            run_type = RunType(written)
        model = ctx.string(item, "model", path, required=True)
        if model is not None and ctx.model_names and model not in ctx.model_names:
            ctx.error(
                f"{path}.model",
                f"{yaml_text(model)} is not a base model",
                did_you_mean(model, ctx.model_names) or one_of(ctx.model_names),
            )
        parameters = present(ctx.mapping(item.get("parameters"), f"{path}.parameters"))
        for key, setting in parameters.items():
            ctx.offer("parameters", f"{path}.parameters.{key}", key, setting)
        if "dataset_path" in item:  # cruijff_kit reads it as parameters.dataset_path
            if "dataset_path" in parameters:
                ctx.error(
                    f"{path}.dataset_path",
                    "the run gives dataset_path twice (here and in parameters)",
                    "keep one",
                )
            parameters = {**parameters, "dataset_path": item["dataset_path"]}
            ctx.offer("parameters", f"{path}.dataset_path", "dataset_path", item["dataset_path"])
        asks = compute(ctx, item.get("compute"), f"{path}.compute")
        overrides = ctx.mapping(item.get("slurm_overrides"), f"{path}.slurm_overrides")
        ctx.known_keys(overrides, f"{path}.slurm_overrides", OVERRIDES)
        extras = {
            key: value
            for key in OVERRIDES
            if (value := ctx.string(overrides, key, f"{path}.slurm_overrides")) is not None
        }
        if extras:
            asks = attrs.evolve(asks, extras=extras)
        condition = ctx.string(item, "training_condition", path)
        if condition is not None and not NAME_PATTERN.fullmatch(condition):
            ctx.error(
                f"{path}.training_condition",
                f"{yaml_text(condition)} is not a condition name",
                "a condition is named by letters, digits, '.', '_' and '-'",
            )
            condition = None
        if condition is not None and run_type is not RunType.FINE_TUNED:
            ctx.warning(  # cruijff_kit scaffolds no training for it: the key has no effect
                f"{path}.training_condition",
                f"a {run_type.value} run trains nothing: training_condition is not read",
                "leave it out",
            )
            condition = None
        if name and NAME_PATTERN.fullmatch(name) and model is not None:
            found.append(
                Run(
                    name=name,
                    type=run_type,
                    model=model,
                    parameters=parameters,
                    directory=run_directory(ctx.directory, name),
                    index=len(found),
                    compute=asks,
                    training_condition=condition,
                    yaml_path=path,
                )
            )
    return found


def _documented(ctx: Context, found: list[Run]) -> None:
    """With explicit runs, ``variables`` documents the grid and the runs are the experiment
    (cruijff_kit's reading): a value no run has is a warning, since the file then says more
    than will run."""
    for rows in ctx.factors:
        for row in rows:
            if any(
                all(
                    canonical(run.parameters.get(key)) == canonical(value)
                    for key, value in row.items()
                )
                for run in found
                if run.type is RunType.FINE_TUNED
            ):
                continue
            shown = ", ".join(f"{key}: {yaml_text(value)}" for key, value in row.items())
            ctx.warning(
                f"variables.{next(iter(row))}",
                f"no run has {shown}, though variables lists it: it will not run",
                "with explicit runs, the runs are the experiment: add that run, or drop the value",
            )


def _grid(ctx: Context) -> list[Run]:
    """The grid of the factors over the base models; none at all (and an error) when it would
    have more than MAX_RUNS runs."""
    total, sizes = grid_size(len(ctx.models), ctx.factors)
    if total > MAX_RUNS:
        product = " × ".join(str(size) for size in sizes)
        ctx.error(
            "variables",
            f"the grid has {total:,} fine-tuned runs ({product}: base models "
            "× the values of each axis or zip group)",
            f"an experiment has at most {MAX_RUNS:,}: sweep fewer values, or split it into "
            "several files",
        )
        ctx.runs_refused = True
        return []
    found = grid_runs([model.name for model in ctx.models], ctx.factors, ctx.labels, ctx.directory)
    ctx.run_names = dict.fromkeys(run.name for run in found)
    return found


def parameter_path(experiment: Experiment, run: Run, *keys: str) -> str:
    """Where the file sets the first of the parameters ``keys`` of ``run`` that it sets: in
    the run's own parameters, the axis or zip group that sweeps it (a run of the grid), else
    the controls; "" where it sets none (the tool's defaults do). For a problem found after
    parsing, at the value's line."""
    for key in keys:
        if key in run.parameters:
            if run.yaml_path:
                return f"{run.yaml_path}.parameters.{key}"
            for factor in experiment.variables:
                for axis in factor.axes if isinstance(factor, ZipGroup) else (factor,):
                    if axis.key == key:
                        return axis.yaml_path
        if key in experiment.controls:
            return f"controls.{key}"
    return ""
