"""Select: one training unit per fine-tuned run, carrying a :class:`TrainingPlan`.

The run's config is built here, once, so that a run that cannot train (too few rows for one
optimizer step) is an error before anything is written, and what the unit produces is known in
advance: per epoch a merged model (none where only adapters are kept) and, for LoRA, an
adapter; the loss per step. These are the torchtune tool's artifacts, at the same paths, so
the evaluation and the analysis read either trainer's runs alike.

What the job asks of the machine comes in layers, each a ``resources.*`` setting with its
source: the model's size (GPUs by size as cruijff_kit's MODEL_CONFIGS give them) <
``controls`` < the run's parameters < the run's ``compute`` block.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from cruijff import quantities
from cruijff.errors import ProblemsFound, UserError
from cruijff.experiment import parameter_path
from cruijff.records import (
    Artifact,
    ArtifactKind,
    Compute,
    Experiment,
    Plan,
    Problem,
    Resources,
    Run,
    RunType,
    Unit,
)
from cruijff_trl import NAME, outputs
from cruijff_trl.config import RunConfig, build, tool_value
from cruijff_trl.data import DataError, training_file
from cruijff_trl.models import ModelError, ModelSpec, read_model, training_resources

RESOURCES: dict[str, tuple[str, Callable[[Any], int]]] = {
    # parameter: (Resources field, its value from the parameter's)
    "cpus": ("cpus", int),
    "cpus_per_task": ("cpus", int),
    "mem_gb": ("mem_mb", lambda gb: int(gb * 1024)),
    "mem": ("mem_mb", quantities.megabytes),
    "time_minutes": ("time_s", lambda minutes: int(minutes * 60)),
    "time": ("time_s", quantities.seconds),
}
"""The parameters that set what a training job asks for (cruijff's names, cruijff_kit's)."""

EXTRAS = ("partition", "constraint", "account")
"""Parameters a scheduler reads from ``Resources.extras`` (cruijff_kit's SLURM keys)."""


@attrs.frozen(kw_only=True)
class TrainingPlan:
    """What generating a training unit needs, resolved at select time: the built config
    (read-only) with every value's source, what the job asks of the machine, and the counts
    the plan shows (train rows, optimizer steps per epoch, trained weights)."""

    built: RunConfig
    resources: Resources
    resource_sources: Mapping[str, str]
    train_rows: int | None
    steps_per_epoch: int | None
    trainable: int | None
    """The weights training changes: LoRA's, or the whole model's (None: unknown)."""

    @property
    def config(self) -> Mapping[str, Any]:
        return self.built.config

    @property
    def processes(self) -> int:
        """Processes the job starts: one per GPU, one on the CPU."""
        return max(1, self.resources.gpus)

    @property
    def sourced(self) -> list[tuple[str, Any, str]]:
        """Every value of the config and resources with its source, as (path, value, source)."""
        return [*self.built.sourced] + [
            (f"resources.{field}", value, self.resource_sources.get(field, "default"))
            for field, value in _resource_values(self.resources)
        ]


def select(experiment: Experiment, upstream: tuple[Unit, ...] = ()) -> tuple[Unit, ...]:
    """A training unit for every fine-tuned run, in the experiment's run order."""
    return tuple(
        training_unit(experiment, run, upstream)
        for run in experiment.runs
        if run.type is RunType.FINE_TUNED
    )


def training_unit(experiment: Experiment, run: Run, upstream: tuple[Unit, ...] = ()) -> Unit:
    """The unit that trains ``run``; UserError when it would make no optimizer step."""
    assert experiment.data is not None, "checked at parse time"
    controls, mine = experiment.controls, run.parameters
    model_path = experiment.model(run.model).path
    try:
        model: ModelSpec | None = read_model(model_path)
    except ModelError:
        model = None  # parse reports it
    try:
        data = training_file(experiment, run, upstream)
    except DataError as error:  # parse reports it; a plan of a file with errors gets here
        raise UserError(f"run {run.name!r}: {error.message}", hint=error.hint) from None
    gpus, gpus_source = gpus_for(experiment, run, model)
    built = build(
        run_name=run.name,
        output_dir=run.directory,
        model=model_path,
        data=data.path,
        controls=controls,
        run=mine,
        gpus=gpus,
        max_samples=data.max_samples,
        wandb_project=experiment.output.get("wandb_project"),
    )
    rows = data.rows("train")
    steps = _check_steps(experiment, run, built, rows, gpus)
    compute = run.compute
    if not experiment.scheduler.gpus and compute.gpus is not None:
        compute = attrs.evolve(compute, gpus=None)  # its jobs get none (parse warns)
    resources, sources = _resources(model, (gpus, gpus_source), compute, controls, mine)
    return Unit(
        id=f"{run.name}.train",
        tool=NAME,
        kind="train",
        run=run.name,
        directory=run.directory,
        params=run.parameters,
        depends_on=(data.maker.id,) if data.maker is not None else (),
        produces=_produces(run, built),
        consumes=(data.artifact,) if data.artifact is not None else (),
        payload=TrainingPlan(
            built=built,
            resources=resources,
            resource_sources=sources,
            train_rows=rows,
            steps_per_epoch=steps,
            trainable=_trainable(model, built),
        ),
    )


def _trainable(model: ModelSpec | None, built: RunConfig) -> int | None:
    if model is None:
        return None
    if not built.lora:
        return model.parameters
    peft = built.config["peft"]
    return model.lora_parameters(int(peft["r"]), list(peft["target_modules"]))


def gpus_for(experiment: Experiment, run: Run, model: ModelSpec | None) -> tuple[int, str]:
    """GPUs for the run's job and where that came from: none where the scheduler's jobs get
    none, else the run's ``compute``, its ``gpus`` parameter, the controls', else as many as
    the model's size needs (one where its size is unknown)."""
    name = experiment.scheduler.name or "local"
    if not experiment.scheduler.gpus:
        return 0, f"scheduler {name} (no GPUs)"
    if run.compute.gpus is not None:
        return run.compute.gpus, run.compute.yaml_path
    value, source = tool_value("gpus", experiment.controls, run.parameters, None)
    if value is not None:
        return int(value), source
    if model is None:
        return 1, f"scheduler {name} (GPUs)"
    return training_resources(model.parameters, on_gpu=True)["gpus"], "model size"


def _resources(
    model: ModelSpec | None,
    gpus: tuple[int, str],
    compute: Compute,
    controls: Mapping,
    mine: Mapping,
) -> tuple[Resources, dict[str, str]]:
    """What the job asks for, and where each came from: the model's size decides memory and
    time, the GPUs the CPUs; then the parameters of :data:`RESOURCES` and :data:`EXTRAS`,
    then the run's ``compute`` block."""
    count, gpus_source = gpus
    sized: dict[str, Any] = {"mem_mb": None, "time_s": None}
    sources = {"gpus": gpus_source, "cpus": "default"}
    if model is not None:
        sized.update(training_resources(model.parameters, on_gpu=count > 0))
        sources["mem_mb"] = sources["time_s"] = "model size"
    sized["gpus"], sized["cpus"] = count, 4 * count if count else 2
    for name, (field, convert) in RESOURCES.items():
        value, source = tool_value(name, controls, mine, None)
        if value is not None:
            sized[field], sources[field] = convert(value), source
    extras = {}
    for name in EXTRAS:
        value, source = tool_value(name, controls, mine, None)
        if value is not None:
            extras[name], sources[name] = value, source
    resources = compute.over(Resources(**sized, extras=extras))
    for field in ("time_s", "mem_mb", "cpus"):
        if getattr(compute, field) is not None:
            sources[field] = compute.yaml_path
    return resources, sources


def _resource_values(resources: Resources) -> list[tuple[str, Any]]:
    values: list[tuple[str, Any]] = [
        ("gpus", resources.gpus),
        ("cpus", resources.cpus),
        ("mem_mb", resources.mem_mb),
        ("time_s", resources.time_s),
    ]
    return values + sorted(resources.extras.items())


def _produces(run: Run, built: RunConfig) -> list[Artifact]:
    """A merged model per epoch (none when only adapters are kept), an adapter per epoch for
    LoRA, and the loss per step."""
    epochs = range(int(built.config["sft"]["num_train_epochs"]))
    produces = []
    if not built.adapters_only:
        produces += [
            Artifact(
                kind=ArtifactKind.HF_MODEL,
                run=run.name,
                epoch=e,
                path=outputs.epoch_dir(run.directory, e),
            )
            for e in epochs
        ]
    if built.lora:
        produces += [
            Artifact(
                kind=ArtifactKind.LORA_ADAPTER,
                run=run.name,
                epoch=e,
                path=outputs.adapter_dir(run.directory, e),
            )
            for e in epochs
        ]
    produces.append(
        Artifact(
            kind=ArtifactKind.TRAIN_METRICS, run=run.name, path=run.directory / outputs.METRICS
        )
    )
    return produces


def step_size(config: Mapping[str, Any]) -> tuple[int, int]:
    """A config's batch size and gradient accumulation steps."""
    sft = config["sft"]
    return int(sft["per_device_train_batch_size"]), int(sft["gradient_accumulation_steps"])


STEP_KEYS = (
    "batch_size",
    "gradient_accumulation_steps",
    "sft.per_device_train_batch_size",
    "sft.gradient_accumulation_steps",
)
"""The parameters a step's size comes from: where the file sets one, a run that makes no step
is its problem (else its data's)."""


def _check_steps(
    experiment: Experiment, run: Run, built: RunConfig, rows: int | None, gpus: int
) -> int | None:
    """Optimizer steps per epoch; a problem at the batch size where an epoch's rows make none (a
    job would "succeed" without a step). Over several GPUs each reads its share of the rows."""
    if rows is None:
        return None  # unreadable data: parse said so, or the job reports it with its cause
    batch, accumulation = step_size(built.config)
    cap = built.config["train"]["max_steps_per_epoch"]
    ranks = max(1, gpus)
    steps = outputs.steps_per_epoch(rows, batch, accumulation, cap, ranks)
    if steps == 0:
        shared = f" ({-(-rows // ranks)} on each of {ranks} GPUs)" if ranks > 1 else ""
        message = (
            f"run {run.name!r} would train nothing: its {rows} training rows{shared} make no "
            f"optimizer step (batch_size {batch} × gradient_accumulation_steps {accumulation} "
            f"= {batch * accumulation} rows a step)"
        )
        hint = (
            "lower batch_size or gradient_accumulation_steps, "
            + ("or use fewer GPUs, " if ranks > 1 else "")
            + "or add training data"
        )
        path = parameter_path(experiment, run, *STEP_KEYS) or (
            experiment.data.yaml_path if experiment.data else ""
        )
        where = experiment.locate(path)
        raise ProblemsFound((Problem(where=where, message=message, hint=hint, plugin=NAME),))
    return steps


def require_weights(plan: Plan) -> None:
    """UserError naming every model a TRL unit of ``plan`` fine-tunes that has no weights in
    its folder yet (looked at now)."""
    from cruijff_trl.models import weight_files

    experiment = plan.experiment
    folders = {
        experiment.model(experiment.run(unit.run).model).path
        for unit in plan.units
        if unit.tool == NAME
    }
    missing = sorted(path for path in folders if not weight_files(path))
    if missing:
        raise UserError(
            f"no weights yet in {', '.join(str(path) for path in missing)}: an experiment can "
            "be planned from config.json alone, but not scaffolded or run",
            hint="download the .safetensors weights into the model folder, then run again",
        )
