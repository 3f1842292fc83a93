"""The torchtune tool: fine-tunes base models with torchtune recipes, one job per run.

- parse (:mod:`cruijff_torchtune.parse`): claims the training parameters (``lr``,
  ``lora_rank``, dotted config paths, cruijff_kit's keys...) and ``output.wandb_project``, and
  checks them, the base recipe, the models and the data; warns where cruijff's meaning of a
  file differs from cruijff_kit's;
- select (:mod:`cruijff_torchtune.units`): one unit per fine-tuned run, carrying its built
  config as a :class:`~cruijff_torchtune.units.TrainingPlan`; a run whose training file a
  generation job writes depends on that job;
- generate (:mod:`cruijff_torchtune.generate`): the run's ``finetune.yaml`` and job;
- validate (:mod:`cruijff_torchtune.validate`): complete when every epoch left a whole model
  (or adapter) and the loss per step was written;
- retry (:mod:`cruijff_torchtune.retry`): out of memory, half the batch and twice the
  accumulation.

Nothing imported here imports torch or torchtune: configs come from torchtune's files, models
from their ``config.json``; the job (:mod:`cruijff_torchtune.launch`) does the heavy work, with
torchtune's recipes or, where the validation loss is asked for, the plugin's own
(:mod:`cruijff_torchtune.validating`). The
stages' modules are imported when a hook first needs them, so loading the plugin costs next to
nothing.
"""

from __future__ import annotations

from cruijff import hookimpl
from cruijff.records import Role, Tool
from cruijff_torchtune import NAME

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
    consumes=("dataset",),
    requires=("torch", "torchtune", "torchao"),
)


@hookimpl
def cruijff_tools():
    yield TOOL


@hookimpl
def cruijff_parse(experiment, keys):
    if NAME not in experiment.tools.values():
        return None
    from cruijff_torchtune import parse

    return parse.parse(experiment, keys)


@hookimpl
def cruijff_select(experiment, tool, upstream):
    if tool.name != NAME:
        return None
    from cruijff_torchtune import units

    return units.select(experiment, tuple(upstream))


@hookimpl
def cruijff_generate(experiment, unit):
    if unit.tool != NAME:
        return None
    from cruijff_torchtune import generate

    return generate.generate(experiment, unit)


@hookimpl
def cruijff_validate(experiment, unit, status):
    if unit.tool != NAME:
        return None
    from cruijff_torchtune import validate

    return validate.validate(unit, status)


@hookimpl
def cruijff_retry(experiment, unit, job, status):
    from cruijff_torchtune import retry

    return retry.smaller_batch(unit, job, status)


@hookimpl
def cruijff_before_scaffold(plan):
    """Refuse to scaffold (and so to run) a fine-tuning whose model has no weights yet: plans
    are sized from config.json alone, jobs need the weights."""
    if NAME not in plan.experiment.tools.values():
        return
    from cruijff_torchtune.units import require_weights

    require_weights(plan)


@hookimpl
def cruijff_commands(cli):
    from cruijff_torchtune.commands import recipes

    cli.add_command(recipes)


@hookimpl
def cruijff_estimate(experiment, unit, job, hardware, measurements):
    if unit.tool != NAME:
        return None
    from cruijff_torchtune import sizing

    return sizing.training_estimate(unit, job, hardware, measurements)


@hookimpl
def cruijff_review(plan):
    if NAME not in plan.experiment.tools.values():
        return None
    from cruijff_torchtune import sizing

    return sizing.review(plan)


@hookimpl
def cruijff_measure(experiment, unit, status):
    if unit.tool != NAME:
        return None
    from cruijff_torchtune import sizing

    return sizing.measure(unit, status)


@hookimpl
def cruijff_calibration(experiment, unit, directory):
    if unit.tool != NAME:
        return None
    from cruijff_torchtune import sizing

    return sizing.calibration(experiment, unit, directory)
