"""Select: one training unit per fine-tuned run, carrying a :class:`TrainingPlan`.

The run's config is built here, once, so that a run that cannot train (too few rows for one
optimizer step) is an error before anything is written, and what the unit will produce (a
merged model and an adapter per epoch, the loss per step) is known in advance.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from cruijff.errors import UserError
from cruijff.records import (
    Artifact,
    Experiment,
    Resources,
    Run,
    RunType,
    Setting,
    Unit,
    freeze,
)
from cruijff_torchtune import NAME, outputs
from cruijff_torchtune.config import RunConfig, build
from cruijff_torchtune.models import ModelSpec, read_model, training_resources
from cruijff_torchtune.resolve import tool_value


@attrs.frozen(kw_only=True)
class TrainingPlan:
    """What generating a training unit needs, resolved at select time: the recipe ``tune run``
    starts, whether it trains LoRA, the final ``finetune.yaml`` (read-only: mappings and
    tuples), where each of its values came from, and what the job asks of the machine."""

    recipe: str
    lora: bool
    config: Mapping[str, Any] = attrs.field(converter=freeze)
    settings: tuple[Setting, ...] = attrs.field(converter=tuple)
    resources: Resources

    @property
    def nproc(self) -> int:
        """Processes ``tune run`` starts: one per GPU, one on the CPU."""
        return max(1, self.resources.gpus)


def select(experiment: Experiment) -> tuple[Unit, ...]:
    """A training unit for every fine-tuned run, in the experiment's run order."""
    return tuple(
        training_unit(experiment, run) for run in experiment.runs if run.type is RunType.FINE_TUNED
    )


def training_unit(experiment: Experiment, run: Run) -> Unit:
    """The unit that trains ``run``; UserError when it would make no optimizer step."""
    assert experiment.data is not None, "checked at parse time"
    controls, mine = dict(experiment.controls), dict(run.parameters)
    model = _model(experiment.model(run.model).path)
    gpus = _gpus(experiment, controls, mine)
    built = build(
        run_name=run.name,
        output_dir=run.directory,
        model=model,
        data=experiment.data.path,
        controls=controls,
        run=mine,
        gpus=gpus,
        wandb_project=experiment.output.get("wandb_project"),
    )
    _check_steps(run.name, built.config)
    return Unit(
        id=f"{run.name}.train",
        tool=NAME,
        kind="train",
        run=run.name,
        directory=run.directory,
        params=run.parameters,
        produces=_produces(run, built),
        payload=TrainingPlan(
            recipe=built.recipe,
            lora=built.lora,
            config=built.config,
            settings=(Setting(path=p, value=v, source=s) for p, v, s in built.settings),
            resources=_resources(model, gpus, controls, mine),
        ),
    )


@functools.cache
def _model(path: Path) -> ModelSpec:
    return read_model(path)


def _gpus(experiment: Experiment, controls: Mapping, run: Mapping) -> int:
    value, _ = tool_value("gpus", controls, run, None)
    if value is not None:
        return int(value)
    # where the scheduler's jobs get GPUs, one; else the CPU
    return 1 if experiment.scheduler.gpus else 0


def _resources(model: ModelSpec, gpus: int, controls: Mapping, run: Mapping) -> Resources:
    """The model's size decides memory and time; ``cpus``, ``mem_gb`` and ``time_minutes``
    override them."""
    sized = training_resources(model.parameters, on_gpu=gpus > 0)
    sized["gpus"] = gpus
    sized["cpus"] = 4 * gpus if gpus else 2
    for name, key, scale in (
        ("cpus", "cpus", 1),
        ("mem_gb", "mem_mb", 1024),
        ("time_minutes", "time_s", 60),
    ):
        value, _ = tool_value(name, controls, run, None)
        if value is not None:
            sized[key] = int(value * scale)
    return Resources(**sized)


def _produces(run: Run, built: RunConfig) -> list[Artifact]:
    """A merged model per epoch, an adapter per epoch for LoRA, and the loss per step."""
    epochs = range(int(built.config["epochs"]))
    produces = [
        Artifact(kind="hf-model", run=run.name, epoch=e, path=outputs.epoch_dir(run.directory, e))
        for e in epochs
    ]
    if built.lora:
        produces += [
            Artifact(
                kind="lora-adapter",
                run=run.name,
                epoch=e,
                path=outputs.adapter_dir(run.directory, e),
            )
            for e in epochs
        ]
    produces.append(
        Artifact(kind="train-metrics", run=run.name, path=run.directory / outputs.METRICS)
    )
    return produces


def _check_steps(run: str, config: Mapping[str, Any]) -> None:
    """A run whose epochs hold too few rows for one optimizer step trains nothing: say so now,
    not after the job "succeeded" without a step."""
    dataset = config["dataset"]
    rows = _rows(Path(dataset["source"]), dataset.get("split", "train"))
    if rows is None:
        return  # unreadable data: the job reports it with its cause
    batch, accumulation = outputs.step_size(config)
    if outputs.steps_per_epoch(rows, batch, accumulation, None) == 0:
        raise UserError(
            f"run {run!r} would train nothing: its {rows} training rows make no optimizer step "
            f"(batch_size {batch} × gradient_accumulation_steps {accumulation} = "
            f"{batch * accumulation} rows a step)",
            hint="lower batch_size or gradient_accumulation_steps (recipes often set 8), "
            "or add training data",
        )


@functools.cache
def _rows(path: Path, split: str) -> int | None:
    from cruijff_torchtune.components import read_rows

    try:
        return len(read_rows(path, split))
    except (OSError, ValueError, TypeError):
        return None
