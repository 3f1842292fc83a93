"""What a plugin author needs to test a contribution to the analysis without running jobs:
mark a plan's jobs as succeeded (as a finished ``cruijff run`` leaves them), write the files
your tool's jobs would write, then read them back the way ``cruijff analyze`` does.

    plan = design(manager, path)
    mark_succeeded(plan)
    (unit.directory / "scores.json").write_text(...)   # what your job writes
    collected = observe(manager, plan)                  # your cruijff_observe, through the core
    assert collected.scores[0].samples == {...}
"""

from __future__ import annotations

from collections.abc import Iterable

from cruijff.analysis.collect import Collected, collect
from cruijff.manager import PluginManager
from cruijff.records import JobState, Plan
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
