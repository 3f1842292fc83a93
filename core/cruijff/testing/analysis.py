"""What a plugin author needs to test a contribution to the analysis without running jobs:
mark a plan's jobs as succeeded (as a finished ``cruijff run`` leaves them), write the files
your tool's jobs would write, then read them back the way ``cruijff analyze`` does.

    plan = design(manager, path)
    mark_succeeded(plan)
    (unit.directory / "scores.json").write_text(...)   # what your job writes
    collected = observe(manager, plan)                  # your cruijff_observe, through the core
    assert collected.scores[0].samples == {...}

To test what the core makes of scores (a report section of yours, a table) without any files,
build them and analyse them as ``cruijff analyze`` does:

    runs = [Run(name="base", type=RunType.CONTROL, model="m", directory=Path("base")),
            Run(name="ft", model="m", directory=Path("ft"))]
    analysis = analysis_of(
        [scores("base", "t", "match/accuracy", {"a": 0, "b": 0}),
         scores("ft", "t", "match/accuracy", {"a": 1, "b": 0}, epoch=0)],
        runs,
    )
    assert analysis.comparisons[0].flips_up_ids == ("a",)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from cruijff.analysis import compare
from cruijff.analysis.collect import Collected, collect, finite
from cruijff.analysis.model import Analysis, Scores
from cruijff.manager import PluginManager
from cruijff.records import JobState, Plan, Run
from cruijff.state import ExperimentState, JobRecord


def mark_succeeded(plan: Plan, units: Iterable[str] | None = None) -> None:
    """Record the jobs of ``units`` (default: every job of the plan) as succeeded."""
    wanted = None if units is None else set(units)
    state = ExperimentState(plan.experiment.state_dir)
    for job in plan.jobs:
        if wanted is None or job.unit_id in wanted:
            state.save(JobRecord(unit_id=job.unit_id, job=job, state=JobState.SUCCEEDED))


def observe(manager: PluginManager, plan: Plan) -> Collected:
    """Scores, curves and missing cells as ``cruijff analyze`` collects them."""
    return collect(manager, plan)


def scores(
    run: str,
    task: str,
    metric: str,
    samples: Mapping[str, float],
    epoch: int | None = None,
    *,
    value: float | None = None,
    binary: bool | None = None,
    dataset: str = "",
    baseline: bool = False,
    log: str = "",
) -> Scores:
    """One cell's :class:`~cruijff.analysis.model.Scores` as a tool would contribute them:
    ``samples`` by sample id (ids made strings), ``value`` the mean of the finite ones unless
    given, ``binary`` whether every finite one is 0 or 1 unless given, ``log``
    ``<run>/<task>.eval`` unless given; the unit is ``<run>.eval.<task>``."""
    plain = {str(key): float(item) for key, item in samples.items()}
    usable = [v for v in plain.values() if math.isfinite(v)]  # what the analysis keeps
    if value is None and usable:
        value = math.fsum(usable) / len(usable)
    return Scores(
        unit=f"{run}.eval.{task}",
        run=run,
        task=task,
        epoch=epoch,
        metric=metric,
        value=value,
        samples=plain,
        binary=all(v in (0.0, 1.0) for v in usable) if binary is None else binary,
        log=log or f"{run}/{task}.eval",
        dataset=dataset,
        baseline=baseline,
    )


def analysis_of(
    found: Sequence[Scores], runs: Sequence[Run], *, experiment: str = "experiment"
) -> Analysis:
    """The :class:`~cruijff.analysis.model.Analysis` the core makes of ``found`` for an
    experiment of ``runs`` (:func:`cruijff.analysis.compare.analysis`, after the clean-up
    :func:`~cruijff.analysis.collect.collect` applies: non-finite scores left out): cells with
    intervals, comparisons with the control, seed groups, verdicts and notes."""
    return compare.analysis(experiment, [finite(s) for s in found], runs)
