"""``cruijff_generate`` for an evaluation cell: its ``eval_config.yaml`` and its job.

The config holds every final value (task, its arguments, scorers, decoding, model and provider
arguments); the job (``python -m cruijff_inspect.job eval_config.yaml``) needs nothing else, so a
cell can also be run by hand. Its top is cruijff_kit's ``eval.yaml``: ``prompt``,
``system_prompt``, ``scorers`` (``{name, params}``), ``dataset_type`` and ``use_chat_template``,
so a cruijff_kit task runs unchanged: it gets ``config_path`` (this file), ``use_chat_template``,
``vis_label``, ``data_path``, ``split`` and, where set, ``max_tokens``, ``assistant_prefix`` and
(when sampling) ``temperature``, each only if it declares it. A task's scorers are never
replaced: a task that declares ``config_path`` builds them from the file (the experiment's
``scorers``, or its own defaults); another task scores with its own and does not read
``evaluation.scorers`` (as in cruijff_kit; parse says so).
"""

from __future__ import annotations

import functools
import math
import sys
from pathlib import Path
from typing import Any

from cruijff import stamps
from cruijff.dumps import yaml_block
from cruijff.errors import UserError
from cruijff.records import (
    EvalTask,
    Experiment,
    FileSpec,
    Generated,
    JobSpec,
    Resources,
    Unit,
    thaw,
)
from cruijff_inspect import introspect
from cruijff_inspect.data import eval_data
from cruijff_inspect.estimate import PROVIDER_DEFAULT, max_tokens
from cruijff_inspect.matrix import BASE, CHECKPOINT, EPOCH
from cruijff_inspect.results import CONFIG, JOB_LOG, LOGS, RESULTS
from cruijff_inspect.settings import (
    CHAT,
    DEFAULT_PROVIDER,
    JOB_ENV,
    JOB_MODULE,
    TOGETHER,
    UNLESS_CURRENT,
    assistant_prefix,
    batch_size,
    chosen,
    decoding,
    evaluation_setting,
    provenance,
    run_setting,
    sampling,
    scorer_params,
)

WEIGHTS = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
TOY_GB = 0.1
"""Models lighter than this are evaluated on the CPU by default (test and toy models)."""

# GPUs, host memory (GB) and hours an evaluation asks for on a GPU, by model size on disk
# (GB): weights once (no gradients, no optimizer) plus a batch of activations; training asks
# for several times more. One GPU up to an 8B model in bf16 (and while the weights fit one
# GPU's memory with room to spare), four for a 70B one, as cruijff_kit's MODEL_CONFIGS ask;
# the model is spread over them with device="auto".
GPU_SIZES = (
    (3, 1, 8, 1),
    (8, 1, 16, 1),
    (18, 1, 32, 2),
    (40, 1, 64, 3),
    (80, 2, 128, 4),
    (math.inf, 4, 128, 4),
)


def weights_gb(folder: Path) -> float:
    """The size of a model folder's weight files, in GB (0 when there are none yet); listed
    once per version of the folder (a file added or removed changes its mtime)."""
    try:
        return _weights_gb(folder, stamps.stat(folder).st_mtime_ns)
    except OSError:
        return 0.0


@functools.lru_cache(maxsize=256)
def _weights_gb(folder: Path, mtime_ns: int) -> float:
    return sum(path.stat().st_size for path in folder.iterdir() if path.suffix in WEIGHTS) / 1e9


def model_size(experiment: Experiment, unit: Unit) -> float:
    """The model's size in GB: ``size_gb`` of its base model, else its weights on disk (a
    fine-tuned checkpoint does not exist yet; it weighs what its base model weighs), else
    what its ``config.json`` says they will weigh (a folder planned before its download)."""
    base = experiment.model(experiment.run(unit.run).model)
    if unit.params["source"] == CHECKPOINT:
        found = weights_gb(Path(unit.params["model"])) or base.size_gb
        return found or weights_gb(base.path) or described_gb(base.path)
    if base.size_gb is not None:
        return base.size_gb
    return weights_gb(base.path) or described_gb(base.path)


def described_gb(folder: Path) -> float:
    """The weights a model folder's ``config.json`` describes, in GB (0 when it cannot say)."""
    from cruijff_inspect.estimate import DTYPE_BYTES, read_model

    model = read_model(folder)
    if not model.parameters:
        return 0.0
    return model.parameters * DTYPE_BYTES.get(model.dtype or "bfloat16", 2) / 1e9


def evaluation_resources(experiment: Experiment, size_gb: float) -> Resources:
    """Resources sized from the model on their own (evaluation needs less than training),
    each overridable with ``evaluation.gpus|cpus|mem_gb|time_minutes`` or cruijff_kit's
    ``evaluation.compute``."""
    # the CPU unless asked where the scheduler's jobs get no GPU (and for toy models); else
    # as many GPUs as the model's size needs
    sized = next((g, m, h) for limit, g, m, h in GPU_SIZES if size_gb <= limit)
    on_gpu = experiment.scheduler.gpus and size_gb >= TOY_GB
    gpus = evaluation_setting(experiment, "gpus", sized[0] if on_gpu else 0)
    if gpus == 0:
        mem_gb, hours = max(4, math.ceil(size_gb * 3) + 2), 2
    else:
        mem_gb, hours = sized[1:]
    mem_gb = evaluation_setting(experiment, "mem_gb", mem_gb)
    minutes = evaluation_setting(experiment, "time_minutes", hours * 60)
    resources = Resources(
        gpus=gpus,
        cpus=evaluation_setting(experiment, "cpus", 4 if gpus else 2),
        mem_mb=int(mem_gb * 1024),
        time_s=int(minutes * 60),
    )
    compute = experiment.evaluation.compute if experiment.evaluation else None
    return compute.over(resources) if compute is not None else resources


RESOURCE_KEYS = (("gpus", "gpus", "gpus"), ("cpus", "cpus", "cpus_per_task"))
RESOURCE_KEYS += (("mem_mb", "mem_gb", "mem"), ("time_s", "time_minutes", "time"))
"""(Resources field, the evaluation key, the evaluation.compute key)."""


def resource_sources(experiment: Experiment, resources: Resources) -> dict[str, tuple[Any, str]]:
    """Where each resource of a cell's job comes from, for ``plan --explain``."""
    compute = experiment.evaluation.compute if experiment.evaluation else None
    sources = {}
    for field, key, kit_key in RESOURCE_KEYS:
        if compute is not None and getattr(compute, field) is not None:
            source = f"evaluation.compute.{kit_key}"
        elif evaluation_setting(experiment, key) is not None:
            source = f"evaluation.{key}"
        else:
            source = "default (from the model's size)"
        sources[f"resources.{field}"] = (getattr(resources, field), source)
    return sources


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
    """The model entry of the config (name, path, a LoRA adapter over it, provider and its
    arguments) and the generate config; greedy decoding unless the settings ask to sample."""
    provider = evaluation_setting(experiment, "provider", DEFAULT_PROVIDER)
    generate, provider_args = decoding(experiment.evaluation.settings, provider)
    args: dict[str, Any] = {"model_path": unit.params["model"], **provider_args}
    if provider == DEFAULT_PROVIDER and resources.gpus == 0:
        args["device"] = "cpu"  # no GPU asked for: none used, even where one is visible
    elif provider == DEFAULT_PROVIDER and resources.gpus > 1:
        args["device"] = "auto"  # the model spread over the GPUs (cruijff_kit's -M device)
    args.update(evaluation_setting(experiment, "model_args", {}))
    model = {
        "name": model_name(experiment, unit, provider),
        "path": unit.params["model"],
        "provider": provider,
        "args": args,
    }
    if unit.params.get("adapter"):
        model["adapter"] = unit.params["adapter"]
    return model, generate


def _function(task: EvalTask) -> introspect.Function | None:
    if task.script is None:
        return None
    name = task.settings.get("function") or task.name
    function = introspect.task_functions(task.script).get(name)
    if function is None:  # parse reports this; a file changed since
        raise UserError(f"{task.script} has no @task function {name!r}")
    return function


def _task_args(task: EvalTask, offered: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Where the task comes from, and its arguments: those of ``offered`` its function takes
    (read from the script), then the task's own ``args``."""
    explicit = dict(task.settings.get("args") or {})
    function = _function(task)
    if function is None:
        return {"registered": task.settings.get("task") or task.name}, explicit
    taken = {k: v for k, v in offered.items() if v is not None and function.accepts(k)}
    return {"script": str(task.script), "function": function.name}, {**taken, **explicit}


def _scorers(
    experiment: Experiment, task: EvalTask
) -> tuple[list[dict[str, Any]], dict[str, tuple[Any, str]]]:
    """The experiment's scorers as ``{name, params}``, a bare ``match`` or ``includes`` with
    cruijff_kit's arguments spelled out (unless the task file defines a scorer of that name),
    and where each comes from."""
    local: set[str] = set()
    if task.script is not None:
        try:
            local = {f.name for f in introspect.functions(task.script, "scorer") if f.decorated}
        except introspect.SourceError:
            local = set()
    scorers, sources = [], {}
    for index, scorer in enumerate(experiment.evaluation.scorers):
        params, kit = dict(scorer.params), False
        if scorer.name not in local:
            params, kit = scorer_params(scorer.name, scorer.params)
        scorers.append({"name": scorer.name, "params": params})
        where = f"evaluation.scorers[{index}]"
        sources[f"scorers[{index}]"] = (
            f"{scorer.name}({', '.join(f'{k}={v!r}' for k, v in params.items())})",
            f"{where} (bare {scorer.name}: exact and case-sensitive, as in cruijff_kit)"
            if kit
            else where,
        )
    return scorers, sources


def configure(
    experiment: Experiment, unit: Unit, resources: Resources
) -> tuple[dict[str, Any], dict[str, tuple[Any, str]]]:
    """The cell's config and where each chosen value comes from (``{path: (value, source)}``)."""
    run, task = experiment.run(unit.run), _task(experiment, unit)
    settings = experiment.evaluation.settings
    here = f"evaluation.tasks.{task.name}"
    sources: dict[str, tuple[Any, str]] = {}
    if task.settings.get("description") is not None:
        sources["description"] = (task.settings["description"], here)
    found_type = run_setting(experiment, run, "dataset_type")
    dataset_type = found_type[0] if found_type else None
    chat = dataset_type == CHAT
    prompt = chosen(experiment, run, task, "prompt")
    system = chosen(experiment, run, task, "system_prompt")
    config: dict[str, Any] = {}  # its top: cruijff_kit's eval.yaml, read through config_path
    if prompt is not None:
        config["prompt"] = prompt[0]
        sources["prompt"] = prompt
    config["system_prompt"] = system[0] if system else ""
    sources["system_prompt"] = system or ("", "default (none)")
    scorers, scorer_sources = _scorers(experiment, task)
    if scorers:
        config["scorers"] = scorers
    config["dataset_type"] = dataset_type
    config["use_chat_template"] = chat
    if found_type is not None:
        sources["dataset_type"] = found_type
        sources["use_chat_template"] = (chat, f"{found_type[1]}.dataset_type")
    model, generate = _model(experiment, unit, resources)
    data = eval_data(experiment, run, task)
    prefix = assistant_prefix(experiment, task)
    function = _function(task)
    source, task_args = _task_args(
        task,
        {
            "data_path": str(data.path) if data.path else None,
            "split": data.split,
            "prompt": config.get("prompt"),
            # a text_completion model is asked without a system prompt, as cruijff_kit's
            # tasks do when use_chat_template is false
            "system_prompt": config["system_prompt"] if chat else "",
            "config_path": str(unit.directory / CONFIG),
            "use_chat_template": chat if dataset_type else None,
            "vis_label": unit.params.get("vis_label") or None,
            "assistant_prefix": prefix[0] if prefix else None,
            "max_tokens": generate.get("max_tokens"),
            "temperature": settings.get("temperature") if sampling(settings) else None,
        },
    )
    builds_own = function is not None and function.declares("config_path")  # reads scorers
    limit = task.settings.get("limit") or settings.get("limit")
    batch, batch_source = batch_size(experiment)
    metadata: dict[str, Any] = {
        "is_finetuned": unit.params["source"] != BASE,
        "source_model": run.model,
        "vis_label": unit.params.get("vis_label"),
    }
    if unit.params["source"] == EPOCH:
        metadata["epoch"] = unit.params["epoch"]
    config.update(
        experiment=experiment.name,
        unit=unit.id,
        run=run.name,
        task=task.name,
        vis_label=unit.params.get("vis_label"),
        source=unit.params["source"],
        epoch=unit.params["epoch"],
        model=model,
        task_source=source,
        task_args=task_args,
        generate=generate,
        metadata=metadata,
        limit=limit,
        batch_size=batch,
        log_dir=LOGS,
        results=RESULTS,
    )

    sources["model"] = (model["name"], f"runs.{run.name}")
    sources["model_path"] = (model["path"], _model_source(unit, run.model))
    if model.get("adapter"):
        sources["adapter"] = (model["adapter"], _adapter_source(unit))
    if data.path is not None:
        sources["dataset"] = (str(data.path), data.source)
    if data.split is not None:
        sources["split"] = (data.split, data.split_source)
    if unit.params.get("vis_label"):
        sources["vis_label"] = (unit.params["vis_label"], _label_source(unit))
    if prefix is not None:
        sources["assistant_prefix"] = prefix
    if builds_own:
        if scorers:
            sources["scorers"] = (
                "built by the task from eval_config.yaml",
                f"{here} (config_path)",
            )
            sources.update(scorer_sources)
        else:
            sources["scorers"] = ("the task's own defaults", f"{here} (no evaluation.scorers)")
    else:
        unread = ": evaluation.scorers is not read" if scorers else ""
        sources["scorers"] = ("the task's own", f"{here} (it takes no config_path{unread})")
    for key, value in generate.items():
        sources[key] = (value, "evaluation" if settings.get(key) is not None else "default")
    cap = max_tokens(experiment, task)
    if "max_tokens" not in generate or cap.source.startswith("generate("):
        # a task's own generate(max_tokens=N) wins over the evaluation's
        sources["max_tokens"] = (
            cap.value,
            cap.source or f"none: inspect's default ({PROVIDER_DEFAULT} tokens with hf)",
        )
    if "do_sample" in model["args"]:
        sources["do_sample"] = (
            model["args"]["do_sample"],
            "evaluation" if settings.get("do_sample") is not None else "default (greedy)",
        )
    if settings.get("temperature") is not None and not sampling(settings):
        sources["temperature"] = (None, "evaluation (not used: greedy without do_sample: true)")
    if limit is not None:
        sources["limit"] = (limit, here if task.settings.get("limit") else "evaluation")
    sources["batch_size"] = (batch, batch_source)
    sources.update(resource_sources(experiment, resources))
    return config, sources


def _model_source(unit: Unit, base: str) -> str:
    source = unit.params["source"]
    if source == BASE or (unit.params.get("adapter") and source == EPOCH):
        return f"models.base {base}"
    if source == CHECKPOINT:
        where = "the adapter's base_model_name_or_path" if unit.params.get("adapter") else ""
        return where or f"runs.{unit.run}.parameters.checkpoint_path"
    return f"the hf-model artifact of {', '.join(unit.depends_on[-1:]) or 'its training'}"


def _adapter_source(unit: Unit) -> str:
    if unit.params["source"] == CHECKPOINT:
        return f"runs.{unit.run}.parameters.checkpoint_path (a LoRA adapter)"
    return f"the lora-adapter artifact of {', '.join(unit.depends_on[-1:]) or 'its training'}"


def dump_yaml(config: Any) -> str:
    return yaml_block(config)


def _label_source(unit: Unit) -> str:
    """Where a cell's label comes from (the matrix entry's ``vis_label``, or the run's name)."""
    return getattr(unit.payload, "vis_source", "") or "the run's name"


def generate(experiment: Experiment, unit: Unit) -> Generated:
    """The cell's ``eval_config.yaml`` and the job that evaluates it."""
    resources = evaluation_resources(experiment, model_size(experiment, unit))
    _function(_task(experiment, unit))  # a task file changed since it was checked: said now
    # the config and its provenance, made once where the file or the settings are read (a
    # plan reads neither)
    configured = functools.cache(lambda: configure(experiment, unit, resources))
    path = unit.directory / CONFIG
    header = (
        f"# Evaluation {unit.id} of experiment {experiment.name}, written by cruijff.\n"
        f"# Run it as it stands: python -m {JOB_MODULE} {CONFIG}\n"
    )
    argv: tuple[str, ...] = (sys.executable, "-m", JOB_MODULE, str(path))
    lead, others = getattr(unit.payload, "lead", None), getattr(unit.payload, "together", ())
    if others:  # this job evaluates the model's other cells too, loading it once
        argv += (TOGETHER, *map(str, others))
    if lead:  # started after the job that evaluated this cell too
        argv += (UNLESS_CURRENT,)
    job = JobSpec(
        unit_id=unit.id,
        name=f"{experiment.name}.{unit.id}",
        argv=argv,
        after=(lead,) if lead else (),
        workdir=unit.directory,
        log=unit.directory / JOB_LOG,
        env=JOB_ENV,
        resources=resources,
        depends_on=unit.depends_on,
        produces=unit.produces,
    )
    return Generated(
        # rendered when written or previewed, never to plan
        files=(FileSpec(path=path, content=lambda: header + dump_yaml(configured()[0])),),
        job=job,
        settings=lambda: provenance({key: (thaw(v), s) for key, (v, s) in configured()[1].items()}),
    )
