"""Parse: claim the training parameters and ``output.wandb_project``, and check them, the base
recipe, the models that fine-tuned runs train and the training data.

A QLoRA run over a model whose weights NF4 cannot split into its blocks fails only once
torchtune quantizes them; :func:`cruijff_torchtune.resolve.quantizes_base`, the rule the
config builder follows too, says which runs quantize, so it is an error here instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from cruijff.records import Experiment, Key, ParseReport, Problem, RunType
from cruijff.suggest import did_you_mean
from cruijff.yamlfile import yaml_text
from cruijff_torchtune import NAME, params
from cruijff_torchtune.models import NF4_BLOCK, ModelError, read_model
from cruijff_torchtune.recipes import config_names, find_config, torchtune_folder
from cruijff_torchtune.resolve import MISSING, finetune, given, quantizes_base

OUTPUT = ("wandb_project",)
"""Keys of the ``output`` section: ``wandb_project`` also logs to W&B, offline."""

PROMPTS = ("prompt", "system_prompt")
"""Keys the evaluator checks too: torchtune checks them only where there is no evaluator."""

Report = Callable[..., None]
"""``report(path, message, hint="")``: add a problem at a dotted path of the file."""


def parse(experiment: Experiment, keys: Iterable[Key]) -> ParseReport:
    """The keys the tool understands, and what is wrong with them and its runs' models."""
    problems: list[Problem] = []

    def report(path: str, message: str, hint: str = "") -> None:
        problems.append(
            Problem(where=experiment.locate(path), message=message, hint=hint, plugin=NAME)
        )

    keys = tuple(keys)
    # The prompts are the evaluator's to check where there is one: each error printed once.
    evaluator = "evaluation" in experiment.tools
    claimed = {key.path for key in keys if _claim(key, report, check_prompts=not evaluator)}
    if not evaluator:
        _check_prompts(keys, report)
    _check_models(experiment, report)
    _check_quantize(experiment, report)
    if experiment.data is None and any(run.type is RunType.FINE_TUNED for run in experiment.runs):
        report("data", "fine-tuning needs training data", "add data: {training: {path: ...}}")
    return ParseReport(
        claimed=claimed,
        vocabulary={"parameters": params.KNOWN, "output": OUTPUT},
        problems=problems,
    )


def _claim(key: Key, report: Report, *, check_prompts: bool = True) -> bool:
    """Whether ``key`` is the tool's; its values are checked on the way (the prompts only
    with ``check_prompts``)."""
    if key.section == "output" and key.name in OUTPUT:
        if not isinstance(key.value, str) or not key.value:
            report(key.path, f"{key.name} must be a project name, not {yaml_text(key.value)}")
        return True
    if key.section != "parameters":
        return False
    if key.name not in params.KNOWN and not params.is_config_path(key.name):
        return False
    if key.name in PROMPTS and not check_prompts:
        return True
    # a variable's value is the list of values it takes
    values = key.value if key.path.startswith("variables.") else (key.value,)
    for value in values:
        wrong = params.check_value(key.name, value)
        if wrong:
            report(key.path, wrong)
        elif key.name == "base_recipe":
            _check_recipe(value, key.path, report)
    return True


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
        misfits = spec.nf4_misfits()
        if misfits and any(quantizes_base(experiment.controls, r.parameters) for r in runs):
            report(
                where,
                f"QLoRA quantizes weights to NF4 in blocks of {NF4_BLOCK:,} values, and this "
                f"model's {', '.join(misfits)} weights are not a multiple of that",
                "train it with a LoRA recipe, or set model.quantize_base: false",
            )
