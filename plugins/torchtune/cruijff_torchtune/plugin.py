"""The torchtune tool: parse its parameters, select one training unit per fine-tuned run,
generate its ``finetune.yaml`` and job, and validate what the job left behind.

Nothing here imports torch or torchtune: configs come from torchtune's files, models from
their ``config.json``; the job (:mod:`cruijff_torchtune.launch`) does the heavy work.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from pathlib import Path
from typing import Any

import attrs

from cruijff import hookimpl
from cruijff.errors import UserError
from cruijff.records import (
    Artifact,
    FileSpec,
    Generated,
    JobSpec,
    JobState,
    ParseReport,
    Problem,
    Resources,
    Role,
    RunType,
    Setting,
    Tool,
    Unit,
    Validation,
)
from cruijff.suggest import did_you_mean
from cruijff_torchtune import outputs, params
from cruijff_torchtune.config import build, dump_yaml
from cruijff_torchtune.models import NF4_BLOCK, ModelError, read_model, training_resources
from cruijff_torchtune.recipes import config_names, find_config, quantizes_base, torchtune_folder

NAME = "torchtune"
TOOL = Tool(
    name=NAME,
    role=Role.PREPARATION,
    description="fine-tunes models with torchtune recipes (LoRA and full)",
    labels={
        "lora_rank": "rank",
        "lr": "lr",
        "batch_size": "bs",
        "epochs": "ep",
        "gradient_accumulation_steps": "ga",
        "lora_alpha": "alpha",
        "seed": "seed",
    },
    produces=("hf-model", "lora-adapter", "train-metrics"),
    requires=("torch", "torchtune", "torchao"),
)
LAUNCH = "cruijff_torchtune.launch"
OUTPUT = ("wandb_project",)  # output.wandb_project: also log to W&B, offline
OOM = re.compile(r"CUDA out of memory|OutOfMemoryError|out of memory|Killed", re.IGNORECASE)


@hookimpl
def cruijff_tools():
    yield TOOL


def _ours(experiment: Any) -> bool:
    return NAME in experiment.tools.values()


# --- parse -----------------------------------------------------------------------------------


@hookimpl
def cruijff_parse(experiment, keys):
    """Claim and check the training parameters, the base recipe and the models."""
    if not _ours(experiment):
        return None
    claimed, problems = set(), []

    def problem(path: str, message: str, hint: str = "") -> None:
        problems.append(
            Problem(where=experiment.locate(path), message=message, hint=hint, plugin=NAME)
        )

    for key in keys:
        if key.section == "output" and key.name in OUTPUT:
            claimed.add(key.path)
            if not isinstance(key.value, str) or not key.value:
                problem(key.path, f"{key.name} must be a project name, not {key.value!r}")
            continue
        if key.section != "parameters":
            continue
        if key.name not in params.KNOWN and not params.is_config_path(key.name):
            continue
        claimed.add(key.path)
        values = key.value if key.path.startswith("variables.") else (key.value,)
        for value in values:
            wrong = params.check_value(key.name, value)
            if wrong:
                problem(key.path, wrong)
            elif key.name == "base_recipe":
                _check_recipe(value, key.path, problem)
    for index, model in enumerate(experiment.models):
        runs = [
            run
            for run in experiment.runs
            if run.type is RunType.FINE_TUNED and run.model == model.name
        ]
        if not runs or not model.path.exists():
            continue
        try:
            spec = read_model(model.path)
        except ModelError as error:
            problem(f"models.base[{index}].path", str(error))
            continue
        misfits = spec.nf4_misfits()
        if misfits and any(_quantizes(experiment.controls, run.parameters) for run in runs):
            problem(
                f"models.base[{index}].path",
                f"QLoRA quantizes weights to NF4 in blocks of {NF4_BLOCK:,} values, and this "
                f"model's {', '.join(misfits)} weights are not a multiple of that",
                "train it with a LoRA recipe, or set model.quantize_base: false",
            )
    if experiment.data is None and any(run.type is RunType.FINE_TUNED for run in experiment.runs):
        problem("data", "fine-tuning needs training data", "add data: {training: {path: ...}}")
    return ParseReport(
        claimed=claimed,
        vocabulary={"parameters": params.KNOWN, "output": OUTPUT},
        problems=problems,
    )


def _quantizes(controls: Any, run: Any) -> bool:
    """Whether a run's LoRA quantizes its base: a QLoRA recipe, unless model.quantize_base
    says otherwise (as in :func:`cruijff_torchtune.config.build`)."""
    explicit, _ = params_value("model.quantize_base", dict(controls), dict(run))
    if explicit is not None:
        return bool(explicit)
    recipe, _ = params_value("base_recipe", dict(controls), dict(run))
    finetune, _ = params_value("finetune", dict(controls), dict(run))
    return isinstance(recipe, str) and finetune != "full" and quantizes_base(recipe)


def _check_recipe(name: str, path: str, problem: Any) -> None:
    if torchtune_folder() is None:
        problem(
            path,
            "torchtune is not installed, so its recipes cannot be read",
            "pip install cruijff-torchtune (it brings torchtune)",
        )
    elif find_config(name) is None:
        problem(
            path,
            f"{name!r} is not a torchtune config",
            did_you_mean(name, config_names()) or "`cruijff recipes` lists them",
        )


# --- select and generate ---------------------------------------------------------------------


@functools.cache
def _model(path: Path) -> Any:
    return read_model(path)


def _gpus(experiment: Any, controls: dict, run: dict) -> int:
    value, _ = params_value("gpus", controls, run)
    if value is not None:
        return int(value)
    # where the scheduler's jobs get GPUs, one; else the CPU
    return 1 if experiment.scheduler.gpus else 0


def params_value(name: str, controls: dict, run: dict) -> tuple[Any, str]:
    from cruijff_torchtune.config import tool_value

    return tool_value(name, controls, run, None)


def _unit_for(experiment: Any, run: Any) -> Unit:
    controls, mine = dict(experiment.controls), dict(run.parameters)
    model = _model(experiment.model(run.model).path)
    gpus = _gpus(experiment, controls, mine)
    config = build(
        run_name=run.name,
        output_dir=run.directory,
        model=model,
        data=experiment.data.path,
        controls=controls,
        run=mine,
        gpus=gpus,
        wandb_project=experiment.output.get("wandb_project"),
    )
    _check_steps(run.name, config.config)
    epochs = int(config.config["epochs"])
    produces = [
        Artifact(
            kind="hf-model", run=run.name, epoch=epoch, path=outputs.epoch_dir(run.directory, epoch)
        )
        for epoch in range(epochs)
    ]
    produces += [
        Artifact(
            kind="lora-adapter",
            run=run.name,
            epoch=epoch,
            path=outputs.adapter_dir(run.directory, epoch),
        )
        for epoch in range(epochs)
        if config.lora
    ]
    produces.append(
        Artifact(kind="train-metrics", run=run.name, path=run.directory / outputs.METRICS)
    )
    resources = training_resources(model.parameters, on_gpu=gpus > 0)
    resources["gpus"] = gpus
    for name, key, scale in (
        ("cpus", "cpus", 1),
        ("mem_gb", "mem_mb", 1024),
        ("time_minutes", "time_s", 60),
    ):
        value, _ = params_value(name, controls, mine)
        if value is not None:
            resources[key] = int(value * scale)
    return Unit(
        id=f"{run.name}.train",
        tool=NAME,
        kind="train",
        run=run.name,
        directory=run.directory,
        params={
            "recipe": config.recipe,
            "config": config.config,
            "lora": config.lora,
            "settings": [list(s) for s in config.settings],
            "resources": resources,
        },
        produces=produces,
    )


def _check_steps(run: str, config: dict[str, Any]) -> None:
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


@hookimpl
def cruijff_select(experiment, tool, upstream):
    if tool.name != NAME:
        return None
    return tuple(
        _unit_for(experiment, run) for run in experiment.runs if run.type is RunType.FINE_TUNED
    )


@hookimpl
def cruijff_generate(experiment, unit):
    if unit.tool != NAME:
        return None
    config = params.thaw(unit.params["config"])
    config_path = unit.directory / "finetune.yaml"
    settings = [
        Setting(path=path, value=value, source=source)
        for path, value, source in unit.params["settings"]
    ]
    provenance = {
        path: {"value": params.thaw(value), "source": source}
        for path, value, source in unit.params["settings"]
    }
    resources = dict(unit.params["resources"])
    cpus = resources.pop("cpus", 2 if not resources["gpus"] else 4 * resources["gpus"])
    job = JobSpec(
        unit_id=unit.id,
        name=f"{experiment.name}.{unit.id}",
        argv=(
            sys.executable,
            "-m",
            LAUNCH,
            str(config_path),
            "--recipe",
            unit.params["recipe"],
            "--nproc",
            str(max(1, resources["gpus"])),
        ),
        workdir=unit.directory,
        log=unit.directory / "train.log",
        env={"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"},
        resources=Resources(cpus=cpus, **resources),
        produces=unit.produces,
    )
    header = (
        f"# torchtune config of run {unit.run} of experiment {experiment.name}, written "
        "by cruijff.\n# Run it as it stands: tune run "
        f"{unit.params['recipe']} --config finetune.yaml\n"
    )
    files = [
        FileSpec(path=config_path, content=header + dump_yaml(config)),
        FileSpec(
            path=unit.directory / "provenance.json", content=json.dumps(provenance, indent=2) + "\n"
        ),
    ]
    return Generated(files=files, job=job, settings=settings)


# --- validate and retry ----------------------------------------------------------------------


def failure_cause(log: Path, exit_code: int | None) -> str:
    """Why a training job failed, from the end of its log."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[-200:]
    except OSError:
        lines = []
    if any(OOM.search(line) for line in lines):
        return "out of memory"
    errors = [line.strip() for line in lines if re.match(r"^[\w.]+(Error|Exception)\b", line)]
    detail = errors[-1] if errors else (lines[-1].strip() if lines else "no output")
    code = f"exit code {exit_code}: " if exit_code is not None else ""
    return f"{code}{detail[:300]}"


@hookimpl
def cruijff_validate(experiment, unit, status):
    if unit.tool != NAME:
        return None
    if status is not None and status.state is not JobState.SUCCEEDED:
        return Validation(
            unit_id=unit.id,
            ok=False,
            cause=failure_cause(unit.directory / "train.log", status.exit_code),
        )
    models = [a for a in unit.produces if a.kind == "hf-model"]
    for artifact in models:
        if not outputs.complete_epoch(unit.directory, artifact.epoch):
            return Validation(
                unit_id=unit.id, ok=False, cause=f"no whole checkpoint in {artifact.path}"
            )
        if (artifact.path / "adapter_config.json").exists():
            return Validation(
                unit_id=unit.id, ok=False, cause=f"{artifact.path} still holds adapter_config.json"
            )
    rows = outputs.read_metrics(unit.directory)
    if not rows:
        return Validation(unit_id=unit.id, ok=False, cause="no training metrics")
    metrics = {"steps": len(rows), "final_loss": float(rows[-1]["loss"]), "epochs": len(models)}
    return Validation(
        unit_id=unit.id, ok=True, metrics=metrics, artifacts=unit.produces, summary=("final_loss",)
    )


@hookimpl
def cruijff_retry(experiment, unit, job, status):
    """Out of memory on a GPU: half the batch, twice the accumulation (same effective batch)."""
    if status.state is not JobState.OUT_OF_MEMORY:
        return None
    config = dict(json.loads(json.dumps(_read_yaml(Path(job.argv[3])))))
    batch = int(_override(job.argv, "batch_size") or config.get("batch_size", 1))
    if batch <= 1:
        return None
    steps = int(
        _override(job.argv, "gradient_accumulation_steps")
        or config.get("gradient_accumulation_steps")
        or 1
    )
    kept = [
        a for a in job.argv if not a.startswith(("batch_size=", "gradient_accumulation_steps="))
    ]
    return attrs.evolve(
        job, argv=(*kept, f"batch_size={batch // 2}", f"gradient_accumulation_steps={steps * 2}")
    )


def _override(argv: tuple[str, ...], name: str) -> str | None:
    values = [a.split("=", 1)[1] for a in argv if a.startswith(f"{name}=")]
    return values[-1] if values else None


def _read_yaml(path: Path) -> dict:
    from cruijff.yamlfile import load_yaml

    return dict(load_yaml(path).data)


# --- commands --------------------------------------------------------------------------------


@hookimpl
def cruijff_commands(cli):
    from cruijff_torchtune.commands import recipes

    cli.add_command(recipes)
