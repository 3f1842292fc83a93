"""The phases as functions: each CLI command parses its options, calls one of these and renders
what it returns. Tool names never appear here: everything goes through the plugin manager."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from cruijff import jobindex, logs, selection, stamps
from cruijff.design import Checked, check, load, plan, with_scheduler
from cruijff.errors import UserError
from cruijff.gcpause import paused_gc
from cruijff.jobindex import IndexedJob
from cruijff.manager import PluginManager
from cruijff.records import Experiment, FileSpec, JobSpec, Plan, Severity
from cruijff.runner import Observer, Resumed, Runner, RunOptions, open_scheduler
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
    with paused_gc(), stamps.steady():
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
    chosen: frozenset[str] | None = None
    """With ``--only``: the units chosen and those they depend on (None: every unit)."""
    resumed: Resumed | None = None
    """Where earlier runs left records: the jobs skipped, watched and submitted."""


@attrs.frozen(kw_only=True)
class DryRun:
    """What ``cruijff run --dry-run`` would do: the files scaffolding would write, the jobs it
    would submit (in order) and the files the scheduler would write for them."""

    plan: Plan
    scaffold: ScaffoldResult
    jobs: tuple[JobSpec, ...]
    files: tuple[FileSpec, ...]


def chosen(plan: Plan, patterns: Sequence[str]) -> frozenset[str] | None:
    """The unit ids of the plan's jobs that ``--only`` patterns select (None: no patterns,
    every job); UserError for a pattern that selects nothing."""
    if not patterns:
        return None
    return frozenset(
        selection.select(patterns, ((j.unit_id, j.run) for j in jobindex.jobs_of(plan)))
    )


def dry_run(
    manager: PluginManager,
    path: Path,
    options: RunOptions,
    *,
    scheduler: str | None = None,
    only: Sequence[str] = (),
) -> DryRun:
    """What ``run`` would write and submit, from the records as they are. Writes nothing."""
    the_plan, written = scaffold_experiment(manager, path, dry_run=True, scheduler=scheduler)
    options = attrs.evolve(options, only=chosen(the_plan, only))
    sched = open_scheduler(the_plan, manager, {"jobs": options.jobs} if options.jobs else {})
    runner = Runner(manager, the_plan, sched)
    records = runner.refresh(runner.state.records(), write=False)
    batch = tuple(runner.to_submit(records, options.retry_failed, options.only, options.force))
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
    only: Sequence[str] = (),
) -> RunResult:
    """Scaffold (keeping user edits), then submit and watch under the experiment's lock;
    ``on_plan`` sees the plan first (its warnings are worth reading before jobs start).
    ``only``: ``--only`` patterns (:mod:`cruijff.selection`)."""
    the_plan = design(manager, path, scheduler=scheduler)
    options = attrs.evolve(options, only=chosen(the_plan, only))
    on_plan(the_plan)
    the_plan, written = scaffold_plan(manager, the_plan)
    state = ExperimentState(the_plan.experiment.state_dir)
    with state.driving():
        sched = open_scheduler(the_plan, manager, {"jobs": options.jobs} if options.jobs else {})
        runner = Runner(manager, the_plan, sched, observer=observer, state=state)
        records = runner.run(options)
    picked = None
    if options.only is not None:
        depends_on = {job.unit_id: job.depends_on for job in the_plan.jobs}
        picked = frozenset(selection.upstream(options.only, depends_on))
    return RunResult(
        plan=the_plan, scaffold=written, records=records, chosen=picked, resumed=runner.resumed
    )


@attrs.frozen(kw_only=True)
class Status:
    """Every job of an experiment (unit, run, log) in plan order, with its latest record
    (None: never submitted)."""

    experiment: Experiment
    jobs: tuple[IndexedJob, ...]
    records: dict[str, JobRecord | None]


def status(
    manager: PluginManager,
    path: Path,
    *,
    scheduler: str | None = None,
    only: Sequence[str] = (),
    option: str = "--only",
) -> Status:
    """Every job of the experiment with its latest state, from one scheduler query. Writes
    nothing. The jobs come from the index the last scaffold left while the file is as it was
    then (:mod:`cruijff.jobindex`), else from planning again; ``only`` patterns keep some."""
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
    if only:
        picked = selection.select(only, ((job.unit_id, job.run) for job in jobs), option)
        jobs = [job for job in jobs if job.unit_id in picked]
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


@attrs.frozen(kw_only=True)
class Cancelled:
    """What ``cruijff cancel`` did: the records of the jobs it cancelled (or, for a dry run,
    would cancel), after the cancel, and the jobs downstream of them that will now not run
    (until ``cruijff run`` submits them again)."""

    records: list[JobRecord]
    stranded: list[str]


def cancel(
    manager: PluginManager,
    path: Path,
    *,
    scheduler: str | None = None,
    dry_run: bool = False,
    only: Sequence[str] = (),
) -> Cancelled:
    """Cancel every in-flight job of the experiment (with ``only``, of the units those
    patterns select); with ``dry_run``, say what would be cancelled, changing nothing."""
    the_plan = design(manager, path, scheduler=scheduler)
    units = chosen(the_plan, only)
    sched = open_scheduler(the_plan, manager, {})
    runner = Runner(manager, the_plan, sched)
    if dry_run:
        now = runner.status()
        flying = [
            r
            for r in now.values()
            if r is not None and r.in_flight and (units is None or r.unit_id in units)
        ]
    else:
        flying = runner.cancel(units)
        now = runner.state.records()  # whether a dependent is done: no second scheduler query
    depends_on = {job.unit_id: job.depends_on for job in the_plan.jobs}
    stopped = {r.unit_id for r in flying}
    below = selection.downstream(stopped, depends_on) - stopped
    stranded = [
        job.unit_id
        for job in the_plan.jobs
        if job.unit_id in below
        and not ((record := now.get(job.unit_id)) is not None and record.done)
    ]
    return Cancelled(records=flying, stranded=stranded)


@attrs.frozen(kw_only=True)
class JobLog:
    """Where one job's log is and what its record says (None: never submitted); ``watch``
    brings the record up to date from the scheduler (for ``logs --follow``)."""

    unit: str
    path: Path
    record: JobRecord | None
    attempts_by_job: dict[str, int]
    watch: Callable[[JobRecord], JobRecord]


def job_log(
    manager: PluginManager, path: Path, unit: str, *, scheduler: str | None = None
) -> JobLog:
    """The log of the one job ``unit`` names (a unit id, or a run name or glob naming one
    job); UserError when it names none or several."""
    found = status(manager, path, scheduler=scheduler, only=[unit], option="job")
    if len(found.jobs) > 1:
        names = ", ".join(job.unit_id for job in found.jobs[:8])
        more = ", ..." if len(found.jobs) > 8 else ""
        raise UserError(
            f"{unit!r} names {len(found.jobs)} jobs: {names}{more}",
            hint="name one of them",
        )
    job = found.jobs[0]
    record = found.records[job.unit_id]
    log = Path(job.log)
    if record is not None and not log.is_absolute():
        log = Path(record.job.workdir) / log
    the_plan = Plan(experiment=found.experiment)
    runner = Runner(manager, the_plan, open_scheduler(the_plan, manager, {}))

    def watch(current: JobRecord) -> JobRecord:
        return runner.refresh({current.unit_id: current}, write=False)[current.unit_id]

    return JobLog(
        unit=job.unit_id,
        path=log,
        record=record,
        attempts_by_job=logs.attempts_by_job(runner.state.events(), job.unit_id),
        watch=watch,
    )
