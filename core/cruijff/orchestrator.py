"""The phases as functions: each CLI command parses its options, calls one of these and renders
what it returns. Tool names never appear here: everything goes through the plugin manager."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from cruijff import jobindex
from cruijff.design import Checked, check, load, plan, with_scheduler
from cruijff.gcpause import paused_gc
from cruijff.jobindex import IndexedJob
from cruijff.manager import PluginManager
from cruijff.records import Experiment, FileSpec, JobSpec, Plan, Severity
from cruijff.runner import Observer, Runner, RunOptions, open_scheduler
from cruijff.scaffold import ScaffoldResult, scaffold
from cruijff.scheduler import scheduler_files
from cruijff.state import ExperimentState, JobRecord


def validate(
    manager: PluginManager, path: Path, *, scheduler: str | None = None
) -> tuple[Checked, Plan | None]:
    """Every problem of an experiment file, from the core and the plugins, and its plan when
    it has no error (the runs and jobs a valid file makes)."""
    checked = check(manager, path, scheduler=scheduler)
    return checked, plan(manager, checked) if checked.ok else None


def design(manager: PluginManager, path: Path, *, scheduler: str | None = None) -> Plan:
    """The plan of an experiment (ProblemsFound if the file has errors). Writes nothing."""
    with paused_gc():
        return plan(manager, check(manager, path, scheduler=scheduler))


def scaffold_experiment(
    manager: PluginManager,
    path: Path,
    *,
    force: bool = False,
    dry_run: bool = False,
    scheduler: str | None = None,
) -> tuple[Plan, ScaffoldResult]:
    """Design, then write the run directories, with the scheduler's files (SLURM's batch
    scripts: read them, or edit them, before anything is submitted)."""
    return scaffold_plan(
        manager, design(manager, path, scheduler=scheduler), force=force, dry_run=dry_run
    )


def scaffold_plan(
    manager: PluginManager, the_plan: Plan, *, force: bool = False, dry_run: bool = False
) -> tuple[Plan, ScaffoldResult]:
    """Write a plan's run directories and its scheduler's files."""
    files = scheduler_files(open_scheduler(the_plan, manager, {}), the_plan.jobs)
    return the_plan, scaffold(manager, the_plan, force=force, dry_run=dry_run, extra=files)


@attrs.frozen(kw_only=True)
class RunResult:
    """What ``cruijff run`` did: the plan, what scaffolding did, and the job records at the end."""

    plan: Plan
    scaffold: ScaffoldResult
    records: dict[str, JobRecord]


@attrs.frozen(kw_only=True)
class DryRun:
    """What ``cruijff run --dry-run`` would do: the files scaffolding would write, the jobs it
    would submit (in order) and the files the scheduler would write for them."""

    plan: Plan
    scaffold: ScaffoldResult
    jobs: tuple[JobSpec, ...]
    files: tuple[FileSpec, ...]


def dry_run(
    manager: PluginManager, path: Path, options: RunOptions, *, scheduler: str | None = None
) -> DryRun:
    """What ``run`` would write and submit, from the records as they are. Writes nothing."""
    the_plan, written = scaffold_experiment(manager, path, dry_run=True, scheduler=scheduler)
    sched = open_scheduler(the_plan, manager, {"jobs": options.jobs} if options.jobs else {})
    runner = Runner(manager, the_plan, sched)
    records = runner.refresh(runner.state.records(), write=False)
    batch = tuple(runner.to_submit(records, options.retry_failed))
    return DryRun(
        plan=the_plan, scaffold=written, jobs=batch, files=tuple(sched.preview(list(batch)))
    )


def run_experiment(
    manager: PluginManager,
    path: Path,
    options: RunOptions,
    *,
    scheduler: str | None = None,
    observer: Observer | None = None,
    on_plan: Callable[[Plan], None] = lambda plan: None,
) -> RunResult:
    """Scaffold (keeping user edits), then submit and watch under the experiment's lock;
    ``on_plan`` sees the plan first (its warnings are worth reading before jobs start)."""
    the_plan = design(manager, path, scheduler=scheduler)
    on_plan(the_plan)
    the_plan, written = scaffold_plan(manager, the_plan)
    state = ExperimentState(the_plan.experiment.state_dir)
    with state.driving():
        sched = open_scheduler(the_plan, manager, {"jobs": options.jobs} if options.jobs else {})
        runner = Runner(manager, the_plan, sched, observer=observer, state=state)
        records = runner.run(options)
    return RunResult(plan=the_plan, scaffold=written, records=records)


@attrs.frozen(kw_only=True)
class Status:
    """Every job of an experiment (unit, run, log) in plan order, with its latest record
    (None: never submitted)."""

    experiment: Experiment
    jobs: tuple[IndexedJob, ...]
    records: dict[str, JobRecord | None]


def status(manager: PluginManager, path: Path, *, scheduler: str | None = None) -> Status:
    """Every job of the experiment with its latest state, from one scheduler query. Writes
    nothing. The jobs come from the index the last scaffold left while the file is as it was
    then (:mod:`cruijff.jobindex`), else from planning again."""
    loaded = load(manager, path)
    jobs = None
    if loaded.experiment is not None and not any(
        p.severity is Severity.ERROR for p in loaded.problems
    ):
        experiment = with_scheduler(manager, loaded.experiment, scheduler)
        jobs = jobindex.read(experiment.state_dir, experiment.file, experiment.scheduler.name)
    if jobs is None:
        the_plan = design(manager, path, scheduler=scheduler)
        experiment = the_plan.experiment
        jobs = jobindex.jobs_of(the_plan)
    else:
        the_plan = Plan(experiment=experiment)
    runner = Runner(manager, the_plan, open_scheduler(the_plan, manager, {}))
    records = runner.refresh(runner.state.records(brief=True), write=False)
    return Status(
        experiment=experiment,
        jobs=tuple(jobs),
        records={job.unit_id: records.get(job.unit_id) for job in jobs},
    )


def analyze(
    manager: PluginManager, path: Path, *, scheduler: str | None = None
) -> tuple[Plan, Any, Path]:
    """The experiment's analysis from its files, and the report it wrote (analysis/)."""
    from cruijff.analysis.analyze import analyze as analyze_plan

    the_plan = design(manager, path, scheduler=scheduler)
    analysis, report = analyze_plan(manager, the_plan)
    return the_plan, analysis, report


def cancel(
    manager: PluginManager, path: Path, *, scheduler: str | None = None, dry_run: bool = False
) -> list[JobRecord]:
    """Cancel every in-flight job of the experiment; returns their records after the cancel
    (with ``dry_run``: the records of the jobs it would cancel, changing nothing)."""
    the_plan = design(manager, path, scheduler=scheduler)
    sched = open_scheduler(the_plan, manager, {})
    runner = Runner(manager, the_plan, sched)
    if dry_run:
        return [r for r in runner.status().values() if r is not None and r.in_flight]
    return runner.cancel()
