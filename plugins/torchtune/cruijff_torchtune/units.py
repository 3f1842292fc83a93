"""Select: one training unit per fine-tuned run, carrying a :class:`TrainingPlan`.

The run's config is built here, once, so that a run that cannot train (too few rows for one
optimizer step) is an error before anything is written, and what the unit will produce (a
merged model and an adapter per epoch, or adapters only; the loss per step) is known in
advance. A training file that a generation job writes makes the unit depend on that job and
count its rows from the splits the job declares.

What the job asks of the machine comes in layers too, each recorded as a ``resources.*``
setting with its source: the model's size (and whether the scheduler has GPUs; GPUs by size
as cruijff_kit's MODEL_CONFIGS give them: one up to an 8B model, four for a 70B one) <
``controls`` < the run's parameters < the run's ``compute`` block (cruijff_kit's
``runs[].compute``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from cruijff import quantities, stamps
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
    Setting,
    Unit,
    freeze,
)
from cruijff_torchtune import NAME, outputs
from cruijff_torchtune.config import RunConfig, Shared, build
from cruijff_torchtune.data import DataError, TrainingFile, training_file
from cruijff_torchtune.models import ModelError, ModelSpec, read_model, training_resources
from cruijff_torchtune.resolve import tool_value

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
    """What generating a training unit needs, resolved at select time: the recipe ``tune run``
    starts, whether it trains LoRA (and keeps adapters only), the final ``finetune.yaml``
    (read-only: mappings and tuples), where each of its values and resources came from, and
    what the job asks of the machine."""

    recipe: str
    lora: bool
    config: Mapping[str, Any] = attrs.field(converter=lambda c: c if _read_only(c) else freeze(c))
    _settings: Callable[[], list[tuple[str, Any, str]]] = attrs.field(alias="settings", repr=False)
    """Every value of the config and resources with its source, as (path, value, source)."""
    resources: Resources
    adapters_only: bool = False
    model_config: Mapping[str, Any] = attrs.field(factory=dict)
    """The model folder's ``config.json``, read-only, for estimates: one object for every
    unit of a model folder."""
    train_rows: int | None = None
    row_bytes: tuple[int, float] | None = None
    """The text bytes of the longest training row and their mean: a byte-level tokenizer's
    bound on its tokens (None: unknown before a generation job writes the file)."""

    @functools.cached_property
    def sourced(self) -> list[tuple[str, Any, str]]:
        """Every value of the config and resources with its source, as (path, value, source):
        made when first read (provenance.json, ``plan --explain``), not for every plan."""
        return self._settings()

    @functools.cached_property
    def settings(self) -> tuple[Setting, ...]:
        """:attr:`sourced` as records."""
        return tuple(Setting(path=p, value=v, source=s) for p, v, s in self.sourced)

    @property
    def nproc(self) -> int:
        """Processes ``tune run`` starts: one per GPU, one on the CPU."""
        return max(1, self.resources.gpus)


def _read_only(config: Any) -> bool:
    # config.build gives it frozen, sharing the sections runs have in common
    return isinstance(config, MappingProxyType)


def select(experiment: Experiment, upstream: tuple[Unit, ...] = ()) -> tuple[Unit, ...]:
    """A training unit for every fine-tuned run, in the experiment's run order; the config
    layers its runs share are built once (:class:`~cruijff_torchtune.config.Shared`)."""
    shared, rows = Shared(), {}
    return tuple(
        training_unit(experiment, run, upstream, shared, rows)
        for run in experiment.runs
        if run.type is RunType.FINE_TUNED
    )


def _train_rows(data: TrainingFile, known: dict[tuple, tuple]) -> tuple[Any, Any]:
    """The train rows of a run's file as training reads them, and their bytes; a file on
    disk is read once into ``known`` (a generation job's declares its rows: nothing to read)."""
    if data.artifact is not None:
        return data.rows("train"), data.row_bytes("train")
    key = (data.path, data.max_samples)
    if key not in known:
        known[key] = (data.rows("train"), data.row_bytes("train"))
    return known[key]


def training_unit(
    experiment: Experiment,
    run: Run,
    upstream: tuple[Unit, ...] = (),
    shared: Shared | None = None,
    rows: dict[tuple, tuple] | None = None,
) -> Unit:
    """The unit that trains ``run``; UserError when it would make no optimizer step. ``rows``
    keeps what the files of a sweep's runs hold, read once per file in one plan."""
    assert experiment.data is not None, "checked at parse time"
    controls, mine = experiment.controls, run.parameters
    model = _model(experiment.model(run.model).path)
    try:
        data = training_file(experiment, run, upstream)
    except DataError as error:  # parse reports it; a plan of a file with errors gets here
        raise UserError(f"run {run.name!r}: {error.message}", hint=error.hint) from None
    gpus, gpus_source = _gpus(experiment, run, controls, mine, model.parameters)
    built = build(
        run_name=run.name,
        output_dir=run.directory,
        model=model,
        data=data.path,
        controls=controls,
        run=mine,
        gpus=gpus,
        wandb_project=experiment.output.get("wandb_project"),
        max_samples=data.max_samples,
        shared=shared,
    )
    train_rows, row_bytes = _train_rows(data, {} if rows is None else rows)
    _check_steps(experiment, run, built.frozen, train_rows, gpus)
    compute = run.compute
    if not experiment.scheduler.gpus and compute.gpus is not None:
        compute = attrs.evolve(compute, gpus=None)  # its jobs get none (parse warns)
    resources, sources = _resources(model, (gpus, gpus_source), compute, controls, mine)

    def settings() -> list[tuple[str, Any, str]]:
        made = list(built.settings)
        made += [
            (f"resources.{field}", value, sources[field])
            for field, value in _resource_values(resources)
        ]
        return made + _data_settings(experiment, data)

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
            recipe=built.recipe,
            lora=built.lora,
            config=built.frozen,
            settings=settings,
            resources=resources,
            adapters_only=built.adapters_only,
            model_config=_frozen_config(model),
            train_rows=train_rows,
            row_bytes=row_bytes,
        ),
    )


_FROZEN: dict[int, tuple[ModelSpec, Mapping[str, Any]]] = {}


def _frozen_config(model: ModelSpec) -> Mapping[str, Any]:
    """The model's config.json, frozen once per read of the folder (not once per run)."""
    known = _FROZEN.get(id(model))
    if known is None or known[0] is not model:
        known = _FROZEN[id(model)] = (model, freeze(model.config))
    return known[1]


def _model(path: Path) -> ModelSpec:
    """The model folder's spec, read once per version of its ``config.json``."""
    try:
        stat = stamps.stat(os.path.join(path, "config.json"))
        version: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = None
    return _read_model(path, version)


@functools.cache
def _read_model(path: Path, version: tuple[int, int] | None) -> ModelSpec:
    return read_model(path)


def _gpus(
    experiment: Experiment, run: Run, controls: Mapping, mine: Mapping, parameters: int | None
) -> tuple[int, str]:
    """GPUs for the run's job and where that came from: none where the scheduler's jobs get
    none (parse warns when the experiment asks for some), else the run's ``compute``, its
    ``gpus`` parameter, the controls', else as many as a model of ``parameters`` weights
    needs (one where its size is unknown)."""
    if not experiment.scheduler.gpus:
        return 0, f"scheduler {experiment.scheduler.name or 'local'} (no GPUs)"
    if run.compute.gpus is not None:
        return run.compute.gpus, run.compute.yaml_path
    value, source = tool_value("gpus", controls, mine, None)
    if value is not None:
        return int(value), source
    if parameters is None:
        return 1, f"scheduler {experiment.scheduler.name or 'local'} (GPUs)"
    return training_resources(parameters, on_gpu=True)["gpus"], "model size"


def gpu_count(experiment: Experiment, run: Run) -> int:
    """The GPUs a run's job gets, as :func:`training_unit` decides them, for checks made
    before the units are (a model folder that cannot be read counts as one GPU's, a wrong
    ``gpus`` value, reported where it is written, as one)."""
    try:
        parameters: int | None = _model(experiment.model(run.model).path).parameters
    except (ModelError, OSError, KeyError):
        parameters = None
    try:
        return _gpus(experiment, run, experiment.controls, run.parameters, parameters)[0]
    except (TypeError, ValueError):
        return 1


def _resources(
    model: ModelSpec, gpus: tuple[int, str], compute: Compute, controls: Mapping, mine: Mapping
) -> tuple[Resources, dict[str, str]]:
    """What the job asks for, and where each came from: the model's size decides memory and
    time, the GPUs the CPUs; then the parameters of :data:`RESOURCES` and :data:`EXTRAS`,
    then the run's ``compute`` block."""
    count, gpus_source = gpus
    sized: dict[str, Any] = training_resources(model.parameters, on_gpu=count > 0)
    sized["gpus"], sized["cpus"] = count, 4 * count if count else 2
    sources = {"gpus": gpus_source, "cpus": "default", "mem_mb": "model size"}
    sources["time_s"] = "model size"
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


def _data_settings(experiment: Experiment, data: TrainingFile) -> list[tuple[str, Any, str]]:
    """What is known of the training data, for ``plan --explain`` and ``provenance.json``."""
    assert experiment.data is not None
    where = experiment.data.yaml_path
    settings = [("data.file", str(data.path), data.source)]
    if experiment.data.label:
        settings.append(("data.label", experiment.data.label, f"{where}.dataset_label"))
    if experiment.data.size_kb is not None:
        settings.append(("data.size_kb", experiment.data.size_kb, f"{where}.size_kb"))
    if data.maker is not None:
        settings.append(("data.made_by", data.maker.id, "the generation tool"))
    return settings


def _produces(run: Run, built: RunConfig) -> list[Artifact]:
    """A merged model per epoch (none when only adapters are kept), an adapter per epoch for
    LoRA, and the loss per step."""
    epochs = range(int(built.frozen["epochs"]))
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


STEP_KEYS = ("batch_size", "gradient_accumulation_steps")
"""The parameters a step's size comes from: where the file sets one, a run that makes no step
is its problem (else its data's)."""


def _check_steps(
    experiment: Experiment, run: Run, config: Mapping[str, Any], rows: int | None, gpus: int
) -> None:
    """A run whose epochs hold too few ``rows`` for one optimizer step trains nothing: say so
    now, not after the job "succeeded" without a step. Over several GPUs each reads its share
    of the rows."""
    if rows is None:
        return  # unreadable data: parse said so, or the job reports it with its cause
    batch, accumulation = outputs.step_size(config)
    ranks = max(1, gpus)
    if outputs.steps_per_epoch(rows, batch, accumulation, None, ranks) == 0:
        shared = f" ({-(-rows // ranks)} on each of {ranks} GPUs)" if ranks > 1 else ""
        message = (
            f"run {run.name!r} would train nothing: its {rows} training rows{shared} make no "
            f"optimizer step (batch_size {batch} × gradient_accumulation_steps {accumulation} "
            f"= {batch * accumulation} rows a step)"
        )
        hint = (
            "lower batch_size or gradient_accumulation_steps (recipes often set 8), "
            + ("or use fewer GPUs, " if ranks > 1 else "")
            + "or add training data"
        )
        path = parameter_path(experiment, run, *STEP_KEYS) or (
            experiment.data.yaml_path if experiment.data else ""
        )
        where = experiment.locate(path)
        raise ProblemsFound((Problem(where=where, message=message, hint=hint, plugin=NAME),))


def require_weights(plan: Plan) -> None:
    """UserError naming every model a training unit of ``plan`` fine-tunes that has no
    weights in its folder yet (looked at now, not from the plan's cached spec)."""
    from cruijff_torchtune.models import weight_files

    experiment = plan.experiment
    missing = sorted(
        {
            experiment.model(experiment.run(unit.run).model).path
            for unit in plan.units
            if unit.tool == NAME
            and not weight_files(experiment.model(experiment.run(unit.run).model).path)
        }
    )
    if missing:
        raise UserError(
            f"no weights yet in {', '.join(str(path) for path in missing)}: an experiment can "
            "be planned from config.json alone, but not scaffolded or run",
            hint="download the .safetensors weights into the model folder, then run again",
        )
