"""The TRL tool: fine-tunes base models with Hugging Face TRL's ``SFTTrainer`` (LoRA through
PEFT, or full), one job per run: the same experiment file trains with either this tool or the
torchtune one, the parameters meaning the same.

- parse (:mod:`cruijff_trl.parse`): claims the training parameters, ``sft.*`` / ``peft.*`` and
  ``output.wandb_project``, and checks them, the models and the data;
- select (:mod:`cruijff_trl.units`): one unit per fine-tuned run, carrying its built config as
  a :class:`~cruijff_trl.units.TrainingPlan`;
- generate (:mod:`cruijff_trl.generate`): the run's ``trl_config.yaml`` and job;
- validate (:mod:`cruijff_trl.validate`): complete when every epoch left a whole model (or
  adapter) and the loss per step was written;
- retry (:mod:`cruijff_trl.retry`): out of memory, half the batch and twice the accumulation.

Nothing imported here imports torch, transformers, trl or peft: the job
(:mod:`cruijff_trl.launch`, :mod:`cruijff_trl.train`) does the heavy work. The stages' modules
are imported when a hook first needs them.
"""

from __future__ import annotations

from cruijff import hookimpl
from cruijff.records import Role, Tool
from cruijff_trl import NAME

TOOL = Tool(
    name=NAME,
    role=Role.PREPARATION,
    description="fine-tunes models with Hugging Face TRL and PEFT (LoRA and full)",
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
    consumes=("dataset",),
    requires=("torch", "transformers", "trl", "peft"),
)


@hookimpl
def cruijff_tools():
    yield TOOL


@hookimpl
def cruijff_parse(experiment, keys):
    if NAME not in experiment.tools.values():
        return None
    from cruijff_trl import parse

    return parse.parse(experiment, keys)


@hookimpl
def cruijff_select(experiment, tool, upstream):
    if tool.name != NAME:
        return None
    from cruijff_trl import units

    return units.select(experiment, tuple(upstream))


@hookimpl
def cruijff_generate(experiment, unit):
    if unit.tool != NAME:
        return None
    from cruijff_trl import generate

    return generate.generate(experiment, unit)


@hookimpl
def cruijff_validate(experiment, unit, status):
    if unit.tool != NAME:
        return None
    from cruijff_trl import validate

    return validate.validate(unit, status)


@hookimpl
def cruijff_retry(experiment, unit, job, status):
    from cruijff_trl import retry

    return retry.smaller_batch(unit, job, status)


@hookimpl
def cruijff_before_scaffold(plan):
    """Refuse to scaffold (and so to run) a fine-tuning whose model has no weights yet."""
    if NAME not in plan.experiment.tools.values():
        return
    from cruijff_trl.units import require_weights

    require_weights(plan)
