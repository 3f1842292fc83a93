"""Parse: claim the training parameters and ``output.wandb_project``, and check them, the models
that fine-tuned runs train and the training data.

The parameters are the torchtune tool's, with its meanings (:mod:`cruijff_trl.params`); what
only torchtune has is an error naming what to write for TRL, and a dotted ``sft.FIELD`` or
``peft.FIELD`` must be a field of TRL's ``SFTConfig`` or PEFT's ``LoraConfig`` (from a static
list: validating never imports trl). QLoRA needs CUDA: asking for it where the jobs get no GPU
is an error here, not a failed job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from cruijff.records import Experiment, Key, ParseReport, Problem, Run, RunType, Severity
from cruijff.yamlfile import yaml_text
from cruijff_trl import NAME, params
from cruijff_trl.config import finetune, tool_value, validates
from cruijff_trl.data import DataError, file_splits, training_file
from cruijff_trl.models import ModelError, read_model

OUTPUT = ("wandb_project",)
"""Keys of the ``output`` section: ``wandb_project`` also logs to W&B, offline."""

SHARED = ("prompt", "system_prompt", "dataset_type")
"""Keys the evaluator checks too: checked here only where there is no evaluator, so that
each error is printed once (a missing ``dataset_type`` of a fine-tuned run is this tool's to
report either way)."""

Report = Callable[..., None]


def parse(experiment: Experiment, keys: Iterable[Key]) -> ParseReport:
    """The keys the tool understands, and what is wrong with them and its runs."""
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
    evaluator = "evaluation" in experiment.tools
    claimed = {key.path for key in keys if _claim(key, report, check_shared=not evaluator)}
    trained = [run for run in experiment.runs if run.type is RunType.FINE_TUNED]
    if not evaluator:
        _check_prompts(keys, report)
    _check_dataset_type(experiment, trained, report)
    _check_runs(experiment, trained, report)
    _check_models(experiment, trained, report)
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
    """Whether ``key`` is the tool's; its name and values are checked on the way."""
    if key.section == "output" and key.name in OUTPUT:
        if not isinstance(key.value, str) or not key.value:
            report(key.path, f"{key.name} must be a project name, not {yaml_text(key.value)}")
        return True
    if key.section != "parameters":
        return False
    if key.name not in params.KNOWN and not (
        params.is_config_path(key.name) or key.name in params.TORCHTUNE
    ):
        return False
    wrong_name = params.check_name(key.name)
    if wrong_name:
        report(key.path, *wrong_name)
        return True
    if key.name in SHARED and not check_shared:
        return True
    values = key.value if key.path.startswith("variables.") else (key.value,)
    for value in values:
        wrong = params.check_value(key.name, value)
        if wrong:
            report(key.path, wrong)
    return True


def _check_prompts(keys: Iterable[Key], report: Report) -> None:
    """Every training prompt has ``{input}``, where each example's input goes."""
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
    """A fine-tuned run needs ``dataset_type``: cruijff_kit never guesses it."""
    for run in trained:
        if tool_value("dataset_type", experiment.controls, run.parameters, None)[0] is None:
            report(
                "controls.dataset_type",
                "dataset_type is missing: fine-tuning needs to know how to format the rows",
                "add dataset_type: chat_completion (the model's chat template) or "
                "text_completion (plain text) to controls",
            )
            return


def _where(run: Run, name: str, controls) -> str:
    """Where a run's parameter ``name`` is written: its own parameters, else the controls."""
    if name in run.parameters:
        return f"{run.yaml_path}.parameters.{name}" if run.yaml_path else f"variables.{name}"
    if name in controls:
        return f"controls.{name}"
    return run.yaml_path or "controls"


LORA_ONLY = ("lora_rank", "lora_alpha", "lora_dropout", "save_adapter_weights_only")


def _check_runs(experiment: Experiment, trained: list[Run], report: Report) -> None:
    """What each fine-tuned run asks that cannot be done, or changes nothing: say so, once per
    place that asks it."""
    controls = experiment.controls
    scheduler = experiment.scheduler.name or "local"
    for run in trained:
        mine = run.parameters
        given = {**controls, **mine}
        lora = finetune(controls, mine) == "lora"
        if tool_value(params.QUANTIZE, controls, mine, False)[0]:
            if not lora:
                report(
                    _where(run, params.QUANTIZE, controls),
                    f"run {run.name} is a full fine-tune, which cannot quantize its base model "
                    "(model.quantize_base: true is QLoRA)",
                    "train it with finetune: lora, or set model.quantize_base: false",
                )
            elif not experiment.scheduler.gpus:
                report(
                    _where(run, params.QUANTIZE, controls),
                    f"QLoRA (model.quantize_base: true) needs a CUDA GPU, and the {scheduler} "
                    "scheduler's jobs get none",
                    "set model.quantize_base: false to train plain LoRA, or choose a scheduler "
                    "with GPUs",
                )
        if not lora:
            for name in [*LORA_ONLY, *(n for n in given if n.startswith("peft."))]:
                if name in given:
                    report(
                        _where(run, name, controls),
                        f"{name} changes nothing in a full fine-tune (there is no adapter)",
                        "leave it out, or train the run with finetune: lora",
                        Severity.WARNING,
                    )
        elif "lora_alpha" in given or "peft.lora_alpha" in given:
            name = "lora_alpha" if "lora_alpha" in given else "peft.lora_alpha"
            report(
                _where(run, name, controls),
                f"{name} {yaml_text(given[name])} is used as written; cruijff_kit ignores "
                "lora_alpha and trains with 2 × lora_rank",
                "leave lora_alpha out for cruijff_kit's meaning",
                Severity.WARNING,
            )
        asked = tool_value("validation_during_training", controls, mine, False)[0]
        if asked and given.get("run_val_every_n_steps") == 0:
            report(
                _where(run, "run_val_every_n_steps", controls),
                "run_val_every_n_steps 0 turns the validation loss off (as in cruijff_kit)",
                "leave it out for a validation pass every 50 steps and at each epoch's end",
                Severity.WARNING,
            )
        for name in () if asked else ("run_val_every_n_steps", "batch_size_val"):
            if name in given:
                report(
                    _where(run, name, controls),
                    f"{name} changes nothing without validation_during_training: true",
                    "add validation_during_training: true for the validation loss",
                    Severity.WARNING,
                )
        if not experiment.scheduler.gpus and (run.compute.gpus or given.get("gpus")):
            report(
                _where(run, "gpus", controls)
                if "gpus" in given
                else f"{run.compute.yaml_path}.gpus",
                f"the {scheduler} scheduler's jobs get no GPUs: run {run.name} trains on the CPU",
                "leave gpus out, or choose a scheduler with GPUs",
                Severity.WARNING,
            )
        dataset_type = tool_value("dataset_type", controls, mine, None)[0]
        if dataset_type == "text_completion" and tool_value("system_prompt", controls, mine, "")[0]:
            report(
                _where(run, "system_prompt", controls),
                "training with dataset_type text_completion has no system prompt: "
                "system_prompt is not trained on (as in cruijff_kit)",
                "leave system_prompt empty, or use chat_completion",
                Severity.WARNING,
            )


def _check_models(experiment: Experiment, trained: list[Run], report: Report) -> None:
    """Every model a run fine-tunes is a decoder whose config.json this plugin reads."""
    for model in experiment.models:
        if not any(run.model == model.name for run in trained) or not model.path.exists():
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
                Severity.WARNING,
            )


def _check_data(experiment: Experiment, trained: list[Run], report: Report) -> None:
    """Each run's training file: found, and holding the splits training reads."""
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
        validating = validates(experiment.controls, run.parameters)
        if (file.path, validating) in checked:
            continue
        checked.add((file.path, validating))
        sizes = file_splits(file.path)
        if sizes is None:
            report(file.source, f"{file.path} is not a JSON file of rows")
            continue
        for split in ("train", "validation") if validating else ("train",):
            if not isinstance(sizes, int) and split not in sizes:
                report(
                    file.source,
                    f"{file.path.name} has no {split!r} split (it has: "
                    f"{', '.join(sizes) or 'none'})",
                    'write {"train": [...], "validation": [...]} or a bare list of rows',
                )
