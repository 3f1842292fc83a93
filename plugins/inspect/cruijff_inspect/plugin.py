"""The inspect-ai tool: evaluates checkpoints and base models, one job per matrix cell.

- parse (:mod:`cruijff_inspect.parse`): claims ``evaluation.*``, ``evaluation.tasks[i].*`` and
  the run parameters ``prompt``, ``system_prompt``, ``dataset_type``, ``checkpoint_path``,
  ``eval_dataset_path``, ``dataset_path``, and checks them with cruijff_kit's meaning
  (:mod:`cruijff_inspect.settings`);
- select (:mod:`cruijff_inspect.matrix`): one unit per (run, task, epoch) cell, depending on
  the training unit whose ``hf-model`` (or ``lora-adapter``) artifact it evaluates, and on the
  generation unit whose ``dataset`` it reads (:mod:`cruijff_inspect.data`);
- generate (:mod:`cruijff_inspect.generate`): the cell's ``eval_config.yaml`` (cruijff_kit's
  ``eval.yaml`` at its top) and job;
- validate (:mod:`cruijff_inspect.results`): complete when the job read a ``success`` log;
- retry (:mod:`cruijff_inspect.retry`): out of memory, half the batch;
- observe (:mod:`cruijff_inspect.observe`): for the analysis, every scorer's metrics and
  per-sample scores, read from the cell's ``.eval`` log through inspect's log API;
- estimate and measure (:mod:`cruijff_inspect.estimate`): a cell's samples, memory, hours and
  log size from its model's config, its data and its task's ``max_tokens`` (or from earlier
  cells' measurements), and what a finished cell evaluated in how long;
- review (:mod:`cruijff_inspect.review`): tasks whose answers nothing caps, and test splits
  too small to detect the effect the experiment looks for.

Nothing imported here imports inspect_ai, torch or transformers: the job
(:mod:`cruijff_inspect.job`) does, in its own process. The stages' modules are imported when a
hook first needs them, so loading the plugin (``cruijff --help``) costs next to nothing.
"""

from __future__ import annotations

from cruijff import hookimpl
from cruijff.records import ArtifactKind, Role, Tool

TOOL = Tool(
    name="inspect",
    role=Role.EVALUATION,
    description="evaluates checkpoints and base models with inspect-ai",
    aliases=("inspect-ai",),
    consumes=(ArtifactKind.HF_MODEL, ArtifactKind.LORA_ADAPTER, ArtifactKind.DATASET),
    produces=(ArtifactKind.INSPECT_LOG,),
    requires=("inspect_ai", "transformers", "accelerate"),
)


@hookimpl
def cruijff_tools():
    yield TOOL


@hookimpl
def cruijff_parse(experiment, keys):
    if not any(name in (TOOL.name, *TOOL.aliases) for name in experiment.tools.values()):
        return None
    from cruijff_inspect import parse

    return parse.parse(experiment, keys)


@hookimpl
def cruijff_select(experiment, tool, upstream):
    if tool.name != TOOL.name:
        return None
    from cruijff_inspect import matrix

    return matrix.select(experiment, upstream)


@hookimpl
def cruijff_generate(experiment, unit):
    if unit.tool != TOOL.name:
        return None
    from cruijff_inspect import generate

    return generate.generate(experiment, unit)


@hookimpl
def cruijff_validate(experiment, unit, status):
    if unit.tool != TOOL.name:
        return None
    from cruijff_inspect import results

    return results.validate(unit, status)


@hookimpl
def cruijff_retry(experiment, unit, job, status):
    from cruijff_inspect import retry

    return retry.smaller_batch(job, status)


@hookimpl
def cruijff_observe(experiment, unit):
    if unit.tool != TOOL.name:
        return None
    from cruijff_inspect import observe

    return observe.observe(experiment, unit)


@hookimpl
def cruijff_estimate(experiment, unit, job, hardware, measurements):
    if unit.tool != TOOL.name:
        return None
    from cruijff_inspect import estimate

    return estimate.estimate(experiment, unit, job, hardware, measurements)


@hookimpl
def cruijff_review(plan):
    if not any(name in (TOOL.name, *TOOL.aliases) for name in plan.experiment.tools.values()):
        return None
    from cruijff_inspect import review

    return review.review(plan)


@hookimpl
def cruijff_measure(experiment, unit, status):
    if unit.tool != TOOL.name:
        return None
    from cruijff_inspect import estimate

    return estimate.measure(unit, status)
