"""``cruijff_generate`` for an evaluation cell: its ``eval_config.yaml`` and its job.

The config holds every final value (task, its arguments, scorers, decoding, model and provider
arguments); the job (``python -m cruijff_inspect.job eval_config.yaml``) needs nothing else, so a
cell can also be run by hand. ``prompt`` and ``system_prompt`` sit at the top of the file, so a
cruijff_kit task that takes ``config_path`` reads them as it reads ``setup_finetune.yaml``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import yaml

from cruijff.errors import UserError
from cruijff.records import (
    EvalTask,
    Experiment,
    FileSpec,
    Generated,
    JobSpec,
    Resources,
    Unit,
)
from cruijff_inspect import introspect
from cruijff_inspect.matrix import BASE, CHECKPOINT
from cruijff_inspect.results import CONFIG, JOB_LOG, LOGS, RESULTS
from cruijff_inspect.settings import (
    DEFAULT_BATCH,
    DEFAULT_PROVIDER,
    DEFAULT_SPLIT,
    JOB_ENV,
    JOB_MODULE,
    SAME,
    chosen,
    decoding,
    evaluation_setting,
    provenance,
)

WEIGHTS = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
TOY_GB = 0.1
"""Models lighter than this are evaluated on the CPU by default (test and toy models)."""

# Host memory (GB) and hours an evaluation asks for on a GPU, by model size on disk (GB):
# weights once (no gradients, no optimizer) plus a batch of activations; training asks for
# several times more.
GPU_SIZES = ((3, 8, 1), (8, 16, 1), (18, 32, 2), (40, 64, 3), (math.inf, 128, 4))


def weights_gb(folder: Path) -> float:
    """The size of a model folder's weight files, in GB (0 when there are none yet)."""
    try:
        return sum(path.stat().st_size for path in folder.iterdir() if path.suffix in WEIGHTS) / 1e9
    except OSError:
        return 0.0


def model_size(experiment: Experiment, unit: Unit) -> float:
    """The model's size in GB: ``size_gb`` of its base model, else its weights on disk (a
    fine-tuned checkpoint does not exist yet; it weighs what its base model weighs)."""
    base = experiment.model(experiment.run(unit.run).model)
    if unit.params["source"] == CHECKPOINT:
        return weights_gb(Path(unit.params["model"])) or base.size_gb or 0.0
    return base.size_gb if base.size_gb is not None else weights_gb(base.path)


def evaluation_resources(experiment: Experiment, size_gb: float) -> Resources:
    """Resources sized from the model on their own (evaluation needs less than training),
    each overridable with ``evaluation.gpus|cpus|mem_gb|time_minutes``."""
    # the CPU unless asked where the scheduler's jobs get no GPU; else by size
    with_gpus = experiment.scheduler.gpus
    gpus = evaluation_setting(experiment, "gpus", 1 if with_gpus and size_gb >= TOY_GB else 0)
    if gpus == 0:
        mem_gb, hours = max(4, math.ceil(size_gb * 3) + 2), 2
    else:
        mem_gb, hours = next((m, h) for limit, m, h in GPU_SIZES if size_gb <= limit)
    mem_gb = evaluation_setting(experiment, "mem_gb", mem_gb)
    minutes = evaluation_setting(experiment, "time_minutes", hours * 60)
    return Resources(
        gpus=gpus,
        cpus=evaluation_setting(experiment, "cpus", 4 if gpus else 2),
        mem_mb=int(mem_gb * 1024),
        time_s=int(minutes * 60),
    )


def model_name(experiment: Experiment, unit: Unit, provider: str) -> str:
    """How inspect (and ``inspect view``) names the model: ``hf/<run>/epoch_1``,
    ``hf/<base model>``, ``hf/<eval-only run>``."""
    run = experiment.run(unit.run)
    if unit.params["source"] == BASE:
        return f"{provider}/{run.model}"
    if unit.params["source"] == CHECKPOINT:
        return f"{provider}/{run.name}"
    return f"{provider}/{run.name}/epoch_{unit.params['epoch']}"


def _task(experiment: Experiment, unit: Unit) -> EvalTask:
    tasks = {task.name: task for task in experiment.evaluation.tasks}
    return tasks[unit.params["task"]]


def _model(
    experiment: Experiment, unit: Unit, resources: Resources
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model entry of the config (name, path, provider and its arguments) and the
    generate config; greedy decoding unless the settings ask to sample."""
    provider = evaluation_setting(experiment, "provider", DEFAULT_PROVIDER)
    generate, provider_args = decoding(experiment.evaluation.settings, provider)
    args: dict[str, Any] = {"model_path": unit.params["model"], **provider_args}
    if provider == DEFAULT_PROVIDER and resources.gpus == 0:
        args["device"] = "cpu"  # no GPU asked for: none used, even where one is visible
    args.update(evaluation_setting(experiment, "model_args", {}))
    model = {
        "name": model_name(experiment, unit, provider),
        "path": unit.params["model"],
        "provider": provider,
        "args": args,
    }
    return model, generate


def _data(experiment: Experiment, task: EvalTask) -> tuple[str | None, str]:
    """The task's data file (``same``, the default where there is training data, is the
    training file) and split."""
    dataset = task.settings.get("dataset")
    if dataset is None and experiment.data is not None:
        dataset = SAME
    split = task.settings.get("split", DEFAULT_SPLIT)
    if dataset == SAME:
        return (str(experiment.data.path) if experiment.data else None), split
    return (str(experiment.resolve(dataset)) if dataset else None), split


def _task_args(task: EvalTask, offered: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Where the task comes from, and its arguments: those of ``offered`` its function takes
    (read from the script), then the task's own ``args``."""
    explicit = dict(task.settings.get("args") or {})
    if task.script is None:
        return {"registered": task.settings.get("task") or task.name}, explicit
    name = task.settings.get("function") or task.name
    function = introspect.task_functions(task.script).get(name)
    if function is None:  # parse reports this; a file changed since
        raise UserError(f"{task.script} has no @task function {name!r}")
    taken = {k: v for k, v in offered.items() if v is not None and function.accepts(k)}
    return {"script": str(task.script), "function": name}, {**taken, **explicit}


def configure(
    experiment: Experiment, unit: Unit, resources: Resources
) -> tuple[dict[str, Any], dict[str, tuple[Any, str]]]:
    """The cell's config and where each chosen value comes from (``{path: (value, source)}``)."""
    run, task = experiment.run(unit.run), _task(experiment, unit)
    settings = experiment.evaluation.settings
    here = f"evaluation.tasks.{task.name}"
    config: dict[str, Any] = {}
    sources: dict[str, tuple[Any, str]] = {}
    for key in ("prompt", "system_prompt"):
        found = chosen(experiment, run, task, key)
        if found is not None:
            config[key] = found[0]  # top level: cruijff_kit tasks read them from config_path
            sources[key] = found
    model, generate = _model(experiment, unit, resources)
    data_path, split = _data(experiment, task)
    source, task_args = _task_args(
        task,
        {
            "data_path": data_path,
            "split": split if data_path else None,
            "prompt": config.get("prompt"),
            "system_prompt": config.get("system_prompt"),
            "config_path": str(unit.directory / CONFIG),
            "max_tokens": generate.get("max_tokens"),
            "temperature": settings.get("temperature"),
        },
    )
    limit = task.settings.get("limit") or settings.get("limit")
    config.update(
        experiment=experiment.name,
        unit=unit.id,
        run=run.name,
        task=task.name,
        source=unit.params["source"],
        epoch=unit.params["epoch"],
        model=model,
        task_source=source,
        task_args=task_args,
        scorers=[{"name": s.name, "params": dict(s.params)} for s in experiment.evaluation.scorers],
        generate=generate,
        limit=limit,
        batch_size=settings.get("batch_size", DEFAULT_BATCH),
        log_dir=LOGS,
        results=RESULTS,
    )

    sources["model"] = (model["name"], f"runs.{run.name}")
    if data_path:
        sources["dataset"] = (data_path, here)
        sources["split"] = (split, here)
    for key, value in generate.items():
        sources[key] = (value, "evaluation")
    if "do_sample" in model["args"]:
        sources["do_sample"] = (model["args"]["do_sample"], "evaluation")
    if limit is not None:
        sources["limit"] = (limit, here if task.settings.get("limit") else "evaluation")
    batch_source = "evaluation" if "batch_size" in settings else "default"
    sources["batch_size"] = (config["batch_size"], batch_source)
    return config, sources


def generate(experiment: Experiment, unit: Unit) -> Generated:
    """The cell's ``eval_config.yaml`` and the job that evaluates it."""
    resources = evaluation_resources(experiment, model_size(experiment, unit))
    config, sources = configure(experiment, unit, resources)
    path = unit.directory / CONFIG
    header = (
        f"# Evaluation {unit.id} of experiment {experiment.name}, written by cruijff.\n"
        f"# Run it as it stands: python -m {JOB_MODULE} {CONFIG}\n"
    )
    text = header + yaml.safe_dump(_plain(config), sort_keys=False, width=100)
    job = JobSpec(
        unit_id=unit.id,
        name=f"{experiment.name}.{unit.id}",
        argv=(sys.executable, "-m", JOB_MODULE, str(path)),
        workdir=unit.directory,
        log=unit.directory / JOB_LOG,
        env=JOB_ENV,
        resources=resources,
        depends_on=unit.depends_on,
        produces=unit.produces,
    )
    return Generated(
        files=(FileSpec(path=path, content=text),),
        job=job,
        settings=provenance({key: (_plain(v), s) for key, (v, s) in sources.items()}),
    )


def _plain(value: Any) -> Any:
    """Records' read-only mappings and tuples as plain dicts and lists, for YAML."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
