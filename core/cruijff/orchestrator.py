"""The phases as functions: each CLI command parses its options, calls one of these and renders
what it returns. Tool names never appear here: everything goes through the plugin manager."""

from __future__ import annotations

from pathlib import Path

import attrs

from cruijff.design import Checked, check, plan
from cruijff.manager import PluginManager
from cruijff.records import Plan
from cruijff.runner import Observer, Runner, RunOptions, open_scheduler
from cruijff.scaffold import ScaffoldResult, scaffold
from cruijff.state import ExperimentState, JobRecord


def validate(manager: PluginManager, path: Path, *, scheduler: str | None = None) -> Checked:
    """Every problem of an experiment file, from the core and the plugins."""
    return check(manager, path, scheduler=scheduler)


def design(manager: PluginManager, path: Path, *, scheduler: str | None = None) -> Plan:
    """The plan of an experiment (ProblemsFound if the file has errors). Writes nothing."""
    return plan(manager, check(manager, path, scheduler=scheduler))


def scaffold_experiment(
    manager: PluginManager,
    path: Path,
    *,
    force: bool = False,
    dry_run: bool = False,
    scheduler: str | None = None,
) -> tuple[Plan, ScaffoldResult]:
    """Design, then write the run directories."""
    the_plan = design(manager, path, scheduler=scheduler)
    return the_plan, scaffold(manager, the_plan, force=force, dry_run=dry_run)


@attrs.frozen(kw_only=True)
class RunResult:
    """What ``cruijff run`` did: the plan, what scaffolding did, and the job records at the end."""

    plan: Plan
    scaffold: ScaffoldResult
    records: dict[str, JobRecord]


def run_experiment(
    manager: PluginManager,
    path: Path,
    options: RunOptions,
    *,
    scheduler: str | None = None,
    observer: Observer | None = None,
) -> RunResult:
    """Scaffold (keeping user edits), then submit and watch under the experiment's lock."""
    the_plan, written = scaffold_experiment(manager, path, scheduler=scheduler)
    state = ExperimentState(the_plan.experiment.state_dir)
    with state.driving():
        sched = open_scheduler(the_plan, manager, {"jobs": options.jobs} if options.jobs else {})
        runner = Runner(manager, the_plan, sched, observer=observer, state=state)
        records = runner.run(options)
    return RunResult(plan=the_plan, scaffold=written, records=records)


def status(
    manager: PluginManager, path: Path, *, scheduler: str | None = None
) -> tuple[Plan, dict[str, JobRecord | None]]:
    """Every job of the experiment with its latest state. Writes nothing."""
    the_plan = design(manager, path, scheduler=scheduler)
    sched = open_scheduler(the_plan, manager, {})
    return the_plan, Runner(manager, the_plan, sched).status()


def cancel(manager: PluginManager, path: Path, *, scheduler: str | None = None) -> list[JobRecord]:
    """Cancel every in-flight job of the experiment."""
    the_plan = design(manager, path, scheduler=scheduler)
    sched = open_scheduler(the_plan, manager, {})
    return Runner(manager, the_plan, sched).cancel()
