"""``cruijff_review`` for an experiment evaluated with inspect: what the plan's evaluation will
not do as the user expects.

- A task whose answers nothing caps (no ``evaluation.max_tokens``, no ``max_tokens`` in the
  task's ``generate()`` or ``GenerateConfig``, :func:`cruijff_inspect.estimate.max_tokens`):
  inspect's hf provider then generates up to 2048 tokens a sample, minutes each for a model
  that never stops. Not said of a registered task (its source is not read) or of the offline
  ``cruijff-mock`` provider.
- Power: each task's samples ``n`` (the fewest of its cells', as their estimates count them)
  against the accuracy ``p`` of the control, where an earlier ``cruijff analyze`` left it in
  ``analysis/results.csv`` (the mean over the control runs of the task's first proportion
  metric in the file, which lists a task's metrics in the analysis's order, its primary
  first), else 0.5 (where the samples needed are the most). With
  ``experiment.min_effect``: a warning where ``n`` is below
  :func:`cruijff.analysis.power.samples_for_power` of ``p`` and ``p + min_effect`` (capped at
  1); without it, a warning where the smallest difference ``n`` samples detect
  (:func:`cruijff.analysis.power.detectable_difference`, 80% power, two-sided 5%) is over
  :data:`NOISE` (ten points). The notes' ``evaluation_power`` table has a row per task:
  its samples, the baseline, the smallest detectable difference (None: not even a perfect
  score is), ``min_effect`` and the samples needed for it (for ten points without it).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cruijff.estimates import Review
from cruijff.records import EvalTask, Experiment, Plan, Problem, RunType
from cruijff_inspect.estimate import PROVIDER_DEFAULT, TOOL, max_tokens
from cruijff_inspect.settings import DEFAULT_PROVIDER, MOCK_PROVIDER, PLUGIN, evaluation_setting

NOISE = 0.10
"""The smallest detectable difference above which a plan without ``min_effect`` is warned."""
BASELINE = 0.5
RESULTS = Path("analysis") / "results.csv"
"""Where ``cruijff analyze`` leaves a row per cell and metric, in the experiment directory."""
PROPORTION = "wilson"
"""The interval method of a metric that is a proportion (the analysis's ``stats.WILSON``)."""


def baselines(experiment: Experiment) -> dict[str, tuple[float, str]]:
    """Per task, the control runs' accuracy from an earlier analysis and the metric it is;
    empty without one (or without control runs)."""
    controls = {run.name for run in experiment.runs if run.type is RunType.CONTROL}
    path = experiment.directory / RESULTS
    if not controls:
        return {}
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError):
        return {}
    metrics: dict[str, str] = {}
    values: dict[str, list[float]] = {}
    for row in rows:
        if row.get("run") not in controls or row.get("ci_method") != PROPORTION:
            continue
        try:
            value = float(row.get("value") or "nan")
        except ValueError:
            continue
        task, metric = row.get("task") or "", row.get("metric") or ""
        if math.isfinite(value) and 0 <= value <= 1 and metrics.setdefault(task, metric) == metric:
            values.setdefault(task, []).append(value)
    return {task: (sum(seen) / len(seen), metrics[task]) for task, seen in values.items()}


def task_samples(plan: Plan) -> dict[str, int]:
    """Per task, the fewest samples of its cells that their estimates know."""
    found: dict[str, int] = {}
    for unit in plan.units:
        if unit.tool != TOOL:
            continue
        estimate = plan.estimates.get(unit.id)
        samples = getattr(estimate, "samples", None)
        if samples is not None:
            task = unit.params["task"]
            found[task] = min(samples, found.get(task, samples))
    return found


def _where(experiment: Experiment, task: EvalTask):
    return experiment.locate(task.yaml_path)


def cap_problems(plan: Plan) -> list[Problem]:
    """A warning per task of the plan whose answers nothing caps."""
    experiment = plan.experiment
    assert experiment.evaluation is not None
    if evaluation_setting(experiment, "provider", DEFAULT_PROVIDER) == MOCK_PROVIDER:
        return []
    evaluated = {unit.params["task"] for unit in plan.units if unit.tool == TOOL}
    problems = []
    for task in experiment.evaluation.tasks:
        if task.name not in evaluated:
            continue
        cap = max_tokens(experiment, task)
        if cap.capped or not cap.known:
            continue
        script = task.script.name if task.script is not None else "the task file"
        problems.append(
            Problem(
                where=_where(experiment, task),
                message=f"the task {task.name} sets no max_tokens: inspect's default "
                f"({PROVIDER_DEFAULT} tokens with the hf provider) lets an untrained or wandering "
                "model generate for minutes per sample",
                hint="set evaluation.max_tokens to the longest answer the task needs, in tokens, "
                f"or give the task's generate() a max_tokens in {script}",
                plugin=PLUGIN,
            )
        )
    return problems


def _points(value: float) -> str:
    return f"{value * 100:.3g}"


def power(plan: Plan) -> tuple[list[Problem], list[dict[str, Any]]]:
    """The power warnings and the ``evaluation_power`` rows (module docstring)."""
    from cruijff.analysis.power import detectable_difference, samples_for_power

    experiment = plan.experiment
    assert experiment.evaluation is not None
    effect = experiment.meta.get("min_effect")
    samples = task_samples(plan)
    known = baselines(experiment) if samples else {}
    problems, rows = [], []
    for task in experiment.evaluation.tasks:
        n = samples.get(task.name)
        if n is None:
            continue
        p = known.get(task.name, (BASELINE, ""))[0]
        mde = detectable_difference(n, p) if n >= 1 and p < 1 else math.inf
        target = min(1.0, p + (effect if effect is not None else NOISE))
        needed = samples_for_power(p, target) if target > p else None
        rows.append(
            {
                "task": task.name,
                "samples": n,
                "baseline": round(p, 4),
                "min_detectable": round(mde, 4) if math.isfinite(mde) else None,
                "min_effect": effect,
                "samples_needed": needed,
            }
        )
        baseline = (
            f"a control at {p:.0%} (the last analysis)"
            if task.name in known
            else f"an accuracy of {p:.0%}"
        )
        if effect is not None:
            if needed is not None and n < needed:
                problems.append(
                    Problem(
                        where=_where(experiment, task),
                        message=f"the task {task.name} evaluates {n} sample"
                        f"{'s' if n != 1 else ''}: detecting "
                        f"min_effect ({_points(effect)} points) from {baseline} at 80% power "
                        f"needs {needed}",
                        hint=f"a larger test split (at least {needed} samples), or a larger "
                        "min_effect",
                        plugin=PLUGIN,
                    )
                )
        elif mde > NOISE:
            under = (
                f"differences under {_points(mde)} points cannot"
                if math.isfinite(mde)
                else f"no improvement on {baseline} can"
            )
            problems.append(
                Problem(
                    where=_where(experiment, task),
                    message=f"the task {task.name}: {under} be told from noise at 80% power "
                    f"with {n} sample{'s' if n != 1 else ''}",
                    hint="set experiment.min_effect to the effect you expect, or evaluate more "
                    "samples" + (f" ({needed} detect {_points(NOISE)} points)" if needed else ""),
                    plugin=PLUGIN,
                )
            )
    return problems, rows


def review(plan: Plan) -> Review | None:
    """``cruijff_review`` for the inspect tool."""
    evaluation = plan.experiment.evaluation
    if evaluation is None or not evaluation.tasks:
        return None
    problems = cap_problems(plan)
    found, rows = power(plan)
    notes: Mapping[str, Any] = {"evaluation_power": rows} if rows else {}
    return Review(problems=[*problems, *found], notes=notes)
