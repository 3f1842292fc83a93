"""Parse: claim the training parameters and ``output.wandb_project``, and check them, the base
recipe, the models that fine-tuned runs train and the training data.

A file in cruijff_kit's form means here what it means in cruijff_kit. Where cruijff keeps a
meaning of its own, a warning says so when a file relies on it (:data:`DIFFERENCES` lists
them); where it cannot honour a key, an error or a warning says that.

A QLoRA run over a model whose weights NF4 cannot split into its blocks fails only once
torchtune quantizes them; :func:`cruijff_torchtune.resolve.quantizes_base`, the rule the
config builder follows too, says which runs quantize, so it is an error here instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping

from cruijff.records import Experiment, Key, ParseReport, Problem, Run, RunType, Severity
from cruijff.suggest import did_you_mean
from cruijff.yamlfile import yaml_text
from cruijff_torchtune import NAME, outputs, params
from cruijff_torchtune.config import planned
from cruijff_torchtune.data import DataError, TrainingFile, file_splits, training_file
from cruijff_torchtune.models import NF4_BLOCK, ModelError, read_model
from cruijff_torchtune.recipes import (
    config_names,
    find_config,
    recipe_quantizes_base,
    torchtune_folder,
)
from cruijff_torchtune.resolve import (
    MISSING,
    finetune,
    given,
    quantizes_base,
    tool_value,
    validates,
)
from cruijff_torchtune.units import EXTRAS, gpu_count

OUTPUT = ("wandb_project",)
"""Keys of the ``output`` section: ``wandb_project`` also logs to W&B, offline."""

SHARED = ("prompt", "system_prompt", "dataset_type")
"""Keys the evaluator checks too: torchtune checks their values only where there is no
evaluator, so that each error is printed once. A missing ``dataset_type`` of a fine-tuned run
is torchtune's to report whatever the evaluator (the evaluator reports it for the runs no
training tool checks), so that a run the evaluation does not cover never trains with a
guessed format."""

DIFFERENCES = {
    "lora_alpha": "cruijff_kit ignores lora_alpha and trains with 2 × lora_rank",
    "full_recipe": "cruijff_kit trains LoRA with a full fine-tuning config's values",
    "qlora_recipe": "cruijff_kit trains plain LoRA with a QLoRA config's values",
    "drop_last": "cruijff_kit's validation loss leaves out the last partial batch",
}
"""Where cruijff keeps a meaning of its own for a file cruijff_kit reads too (each warned
about where a file relies on it)."""

Report = Callable[..., None]
"""``report(path, message, hint="", severity=Severity.ERROR)``: add a problem at a dotted
path of the file."""


def parse(experiment: Experiment, keys: Iterable[Key]) -> ParseReport:
    """The keys the tool understands, and what is wrong with them and its runs' models."""
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()

    def report(path: str, message: str, hint: str = "", severity=Severity.ERROR) -> None:
        if (path, message) in seen:  # runs of one grid share their controls
            return
        seen.add((path, message))
        problems.append(
            Problem(
                severity=severity,
                where=experiment.locate(path),
                message=message,
                hint=hint,
                plugin=NAME,
            )
        )

    keys = tuple(keys)
    # The shared keys are the evaluator's to check where there is one: each error printed once.
    evaluator = "evaluation" in experiment.tools
    claimed = {key.path for key in keys if _claim(key, report, check_shared=not evaluator)}
    trained = [run for run in experiment.runs if run.type is RunType.FINE_TUNED]
    if not evaluator:
        _check_prompts(keys, report)
    _check_dataset_type(experiment, trained, report)
    _check_models(experiment, report)
    _check_quantize(experiment, report)
    _check_runs(experiment, trained, keys, report)
    if experiment.data is None and trained:
        report("data", "fine-tuning needs training data", "add data: {training: {path: ...}}")
    elif experiment.data is not None:
        _check_data(experiment, trained, report)
    return ParseReport(
        claimed=claimed,
        vocabulary={"parameters": params.KNOWN, "output": OUTPUT},
        problems=problems,
    )


def _claim(key: Key, report: Report, *, check_shared: bool = True) -> bool:
    """Whether ``key`` is the tool's; its values are checked on the way (the shared keys only
    with ``check_shared``)."""
    if key.section == "output" and key.name in OUTPUT:
        if not isinstance(key.value, str) or not key.value:
            report(key.path, f"{key.name} must be a project name, not {yaml_text(key.value)}")
        return True
    if key.section != "parameters":
        return False
    if key.name not in params.KNOWN and not params.is_config_path(key.name):
        return False
    if key.name in SHARED and not check_shared:
        return True
    # a variable's value is the list of values it takes
    values = key.value if key.path.startswith("variables.") else (key.value,)
    for value in values:
        wrong = params.check_value(key.name, value)
        if wrong:
            report(key.path, wrong, HINTS.get(key.name, ""))
        elif key.name == "base_recipe":
            _check_recipe(value, key.path, report)
        elif key.name in EXTRAS and (not value.strip() or any(c in value for c in "\r\n")):
            report(
                key.path,
                f"{key.name} must be one line of text, not {yaml_text(value)}",
                f"{key.name} is a cluster's name, written on an #SBATCH line of the job",
            )
        elif key.name == "lr_scheduler" and not _has_scheduler(value):
            report(
                key.path,
                f"the installed torchtune has no {value}",
                "write lr_scheduler: get_cosine_schedule_with_warmup",
            )
        elif key.name == "custom_recipe":
            report(
                key.path,
                "custom_recipe names a cruijff_kit recipe; cruijff runs torchtune's, or its "
                "own where the validation loss is asked for",
                "leave custom_recipe out",
                Severity.WARNING,
            )
    return True


HINTS = {
    "packed": "cruijff never packs rows (cruijff_kit's packed is false too): leave packed out",
    "dataset_type": "chat_completion applies the model's chat template, text_completion "
    "trains on the plain text",
}
"""Hints for a wrong value of a parameter, where one helps."""


@functools.cache
def _has_scheduler(name: str) -> bool:
    """Whether torchtune's ``lr_schedulers`` module defines ``name``, read from its file."""
    folder = torchtune_folder()
    if folder is None:
        return True  # said once, by the recipe check, where a base_recipe needs it
    source = folder / "training" / "lr_schedulers.py"
    try:
        return f"def {name}(" in source.read_text(encoding="utf-8")
    except OSError:
        return False


def _check_prompts(keys: Iterable[Key], report: Report) -> None:
    """Every training prompt has ``{input}``, where each example's input goes: without it the
    model would train on the instruction alone."""
    for key in keys:
        if key.section != "parameters" or key.name != "prompt":
            continue
        values = key.value if key.path.startswith("variables.") else (key.value,)
        if any(isinstance(value, str) and "{input}" not in value for value in values):
            report(
                key.path,
                "the prompt does not contain {input}",
                'write {input} where each example goes, e.g. "Capitalize: {input}"',
            )


def _check_dataset_type(experiment: Experiment, trained: list[Run], report: Report) -> None:
    """A fine-tuned run needs ``dataset_type``: cruijff_kit never guesses it. One error, at
    ``controls.dataset_type``, for all of them."""
    for run in trained:
        if tool_value("dataset_type", experiment.controls, run.parameters, None)[0] is None:
            report(
                "controls.dataset_type",
                "dataset_type is missing: fine-tuning needs to know how to format the rows",
                "add dataset_type: chat_completion (the model's chat template) or "
                "text_completion (plain text) to controls",
            )
            return


def _check_recipe(name: str, path: str, report: Report) -> None:
    if torchtune_folder() is None:
        report(
            path,
            "torchtune is not installed, so its recipes cannot be read",
            "pip install cruijff-torchtune (it brings torchtune)",
        )
    elif find_config(name) is None:
        report(
            path,
            f"{name!r} is not a torchtune config",
            did_you_mean(name, config_names()) or "`cruijff recipes` lists them",
        )


def _check_quantize(experiment: Experiment, report: Report) -> None:
    """A full fine-tune cannot quantize its base model (torchtune's full builders take no
    ``quantize_base``): asking for it is an error here, not a failed job."""
    for run in experiment.runs:
        if run.type is not RunType.FINE_TUNED:
            continue
        asked = given("model.quantize_base", experiment.controls, run.parameters)
        if (
            asked is not MISSING
            and asked
            and finetune(experiment.controls, run.parameters) != "lora"
        ):
            report(
                run.yaml_path or "controls",  # a grid's run: the controls make it full
                f"run {run.name} is a full fine-tune, which cannot quantize its base model "
                "(model.quantize_base: true is QLoRA)",
                "train it with finetune: lora, or set model.quantize_base: false",
            )
            return  # one error: the others come from the same setting


def _where(run: Run, name: str, controls: Mapping) -> str:
    """Where a run's parameter ``name`` is written: its own parameters (a grid's run: the
    variables), else the controls."""
    if name in run.parameters:
        return f"{run.yaml_path}.parameters.{name}" if run.yaml_path else f"variables.{name}"
    if name in controls:
        return f"controls.{name}"
    return run.yaml_path or "controls"


def _check_runs(
    experiment: Experiment, trained: list[Run], keys: Iterable[Key], report: Report
) -> None:
    """What each fine-tuned run asks that cruijff cannot do, or does otherwise than
    cruijff_kit: say so, once per place that asks it."""
    controls = experiment.controls
    gpus_asked = [key for key in keys if key.section == "parameters" and key.name == "gpus"]
    for run in trained:
        mine = run.parameters
        kind = finetune(controls, mine)
        recipe, _ = tool_value("base_recipe", controls, mine, None)
        if isinstance(recipe, str) and find_config(recipe) is not None:
            _check_recipe_kind(recipe, run, controls, report)
        alpha = given("model.lora_alpha", controls, mine)
        rank = _count(planned("model.lora_rank", controls, mine))
        if kind == "lora" and alpha is not MISSING and rank:
            name = "lora_alpha" if "lora_alpha" in {**controls, **mine} else "model.lora_alpha"
            report(
                _where(run, name, controls),
                f"lora_alpha {yaml_text(alpha)} is used as written; "
                f"{DIFFERENCES['lora_alpha']} ({2 * rank})",
                "leave lora_alpha out for cruijff_kit's meaning",
                Severity.WARNING,
            )
        if kind == "full" and planned("save_adapter_weights_only", controls, mine):
            report(
                _where(run, "save_adapter_weights_only", controls),
                "a full fine-tune has no adapter to keep alone (save_adapter_weights_only)",
                "leave save_adapter_weights_only out, or train it with finetune: lora",
            )
        if not experiment.scheduler.gpus and run.compute.gpus:
            report(
                f"{run.compute.yaml_path}.gpus",
                f"the {experiment.scheduler.name or 'local'} scheduler's jobs get no GPUs: "
                f"run {run.name} trains on the CPU",
                "leave gpus out here, or choose a scheduler with GPUs",
                Severity.WARNING,
            )
        _check_validation(run, controls, report)
        dataset_type, _ = tool_value("dataset_type", controls, mine, None)
        system_prompt, _ = tool_value("system_prompt", controls, mine, "")
        if dataset_type == "text_completion" and system_prompt:
            report(
                _where(run, "system_prompt", controls),
                "training with dataset_type text_completion has no system prompt: "
                "system_prompt is not trained on (as in cruijff_kit)",
                "leave system_prompt empty, or use chat_completion",
                Severity.WARNING,
            )
    if not experiment.scheduler.gpus:
        for key in gpus_asked:
            values = key.value if key.path.startswith("variables.") else (key.value,)
            if any(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
                report(
                    key.path,
                    f"the {experiment.scheduler.name or 'local'} scheduler's jobs get no GPUs: "
                    "training runs on the CPU",
                    "leave gpus out, or choose a scheduler with GPUs",
                    Severity.WARNING,
                )


def _check_recipe_kind(recipe: str, run: Run, controls: dict, report: Report) -> None:
    """A base recipe that is a full or a QLoRA fine-tune: cruijff trains that kind, where
    cruijff_kit takes only its values into a plain LoRA run."""
    where = _where(run, "base_recipe", controls)
    mine = run.parameters
    chosen, _ = tool_value("finetune", controls, mine, None)
    if chosen is None and finetune(controls, mine) == "full":
        report(
            where,
            f"{recipe} is a full fine-tuning config: cruijff trains a full fine-tune, where "
            f"{DIFFERENCES['full_recipe']}",
            "write finetune: lora for cruijff_kit's meaning, or finetune: full to say so",
            Severity.WARNING,
        )
    elif (
        recipe_quantizes_base(recipe)
        and finetune(controls, mine) == "lora"
        and given("model.quantize_base", controls, mine) is MISSING
    ):
        report(
            where,
            f"{recipe} quantizes the base model to NF4: cruijff trains QLoRA, where "
            f"{DIFFERENCES['qlora_recipe']}",
            "write model.quantize_base: false for cruijff_kit's meaning, or true to say so",
            Severity.WARNING,
        )


def _check_validation(run: Run, controls: dict, report: Report) -> None:
    """Validation keys that change nothing without ``validation_during_training: true``."""
    mine = run.parameters
    on = tool_value("validation_during_training", controls, mine, False)[0]
    if on:
        if planned("run_val_every_n_steps", controls, mine) == 0:
            report(
                _where(run, "run_val_every_n_steps", controls),
                "run_val_every_n_steps 0 turns the validation loss off (as in cruijff_kit)",
                "leave it out for a validation pass every 50 steps and at each epoch's end",
                Severity.WARNING,
            )
        return
    for name in ("run_val_every_n_steps", "batch_size_val"):
        if given(name, controls, mine) is not MISSING:
            report(
                _where(run, name, controls),
                f"{name} changes nothing without validation_during_training: true",
                "add validation_during_training: true for the validation loss",
                Severity.WARNING,
            )


def _check_data(experiment: Experiment, trained: list[Run], report: Report) -> None:
    """Each run's training file: found, holding the splits training reads, and as many rows
    as ``data.training.splits`` says (a warning names both counts where it does not)."""
    assert experiment.data is not None
    generated = experiment.data.generation is not None
    checked: set = set()
    for run in trained:
        try:
            file = training_file(experiment, run)
        except DataError as error:
            report(error.where, error.message, error.hint)
            continue
        if generated and file.path == experiment.data.path:
            continue  # written by the generation job: its declared splits are used
        _check_warmup(experiment, run, file, experiment.controls, report)
        on = validates(experiment.controls, run.parameters)
        batch_val = _count(planned("batch_size_val", experiment.controls, run.parameters))
        mark = (file.path, file.source, on, batch_val)
        if mark in checked:
            continue
        checked.add(mark)
        _check_file(experiment, file, on, batch_val, report)


def _count(value: object) -> int | None:
    """``value`` where it is a count (a positive integer), else None: a wrong value is
    reported where it is written, and checks that need it skip it."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _check_warmup(
    experiment: Experiment, run: Run, file: TrainingFile, controls: Mapping, report: Report
) -> None:
    """A run that ends before its warmup does never trains at its learning rate (cruijff_kit's
    scaffold warns too): its default is 100 steps, more than a small experiment makes."""
    mine = run.parameters
    rows = file.rows("train")
    warmup, batch, accumulation, epochs = (
        _count(planned(path, controls, mine))
        for path in (
            "lr_scheduler.num_warmup_steps",
            "batch_size",
            "gradient_accumulation_steps",
            "epochs",
        )
    )
    cap = planned("max_steps_per_epoch", controls, mine)
    if not (rows and warmup and batch and accumulation and epochs):
        return  # nothing to warm up, or a value that is wrong (and said so)
    ranks = max(1, gpu_count(experiment, run))  # each GPU reads its share of the rows
    per_epoch = outputs.steps_per_epoch(rows, batch, accumulation, _count(cap), ranks)
    steps = per_epoch * epochs
    if 0 < steps <= warmup:
        report(
            _where(run, "num_warmup_steps", controls),
            f"{steps} optimizer steps, no more than num_warmup_steps {warmup}: the learning "
            "rate is still warming up when training ends",
            f"set num_warmup_steps below {steps} (cruijff_kit's default is 100)",
            Severity.WARNING,
        )


def _check_file(
    experiment: Experiment,
    file: TrainingFile,
    validating: bool,
    batch_val: int | None,
    report: Report,
) -> None:
    """The splits training reads are in the file, and as many as the experiment says."""
    assert experiment.data is not None
    sizes = file_splits(file.path)
    if sizes is None:
        report(file.source, f"{file.path} is not a JSON file of rows")
        return
    for split in ("train", "validation") if validating else ("train",):
        if not isinstance(sizes, int) and split not in sizes:
            report(
                file.source,
                f"{file.path.name} has no {split!r} split (it has: {', '.join(sizes) or 'none'})",
                'write {"train": [...], "validation": [...]} or a bare list of rows',
            )
    if file.source.endswith(".training_condition"):
        return  # cruijff_kit cuts nothing there and declares nothing about it
    declared = experiment.data.splits
    for split, count in declared.items():
        actual = sizes if isinstance(sizes, int) else sizes.get(split)
        if actual is None or actual == count:
            continue
        effect = ""
        if split == "train":
            effect = (
                f": training uses the first {count} (as cruijff_kit does)"
                if count < actual
                else f": training uses all {actual}"
            )
        report(
            f"{experiment.data.yaml_path}.splits.{split}",
            f"{file.path.name} has {actual} {split} rows, splits.{split} says {count}{effect}",
            f"write splits.{split}: {actual}" if split != "train" or count > actual else "",
            Severity.WARNING,
        )
    rows = sizes if isinstance(sizes, int) else sizes.get("validation")
    if validating and rows and batch_val and rows % batch_val:
        report(
            file.source,
            f"{file.path.name}: the validation loss is over all {rows} validation rows; "
            f"{DIFFERENCES['drop_last']} ({rows % batch_val} left over from batches of "
            f"{batch_val})",
            f"a batch_size_val that divides {rows} gives cruijff_kit's number too",
            Severity.WARNING,
        )


def _check_models(experiment: Experiment, report: Report) -> None:
    """Every model a run fine-tunes must be one torchtune builds, and one NF4 can split where a
    run quantizes it."""
    for model in experiment.models:
        runs = [
            run
            for run in experiment.runs
            if run.type is RunType.FINE_TUNED and run.model == model.name
        ]
        if not runs or not model.path.exists():
            continue
        where = f"{model.yaml_path}.path"
        try:
            spec = read_model(model.path)
        except ModelError as error:
            report(where, str(error))
            continue
        if not spec.has_weights:
            report(
                where,
                f"{model.path} holds no .safetensors weights yet: the experiment can be "
                "designed and planned, not scaffolded or run",
                "download the weights into it before `cruijff scaffold` or `cruijff run`",
                severity=Severity.WARNING,
            )
        misfits = spec.nf4_misfits()
        if misfits and any(quantizes_base(experiment.controls, r.parameters) for r in runs):
            report(
                where,
                f"QLoRA quantizes weights to NF4 in blocks of {NF4_BLOCK:,} values, and this "
                f"model's {', '.join(misfits)} weights are not a multiple of that",
                "train it with a LoRA recipe, or set model.quantize_base: false",
            )
