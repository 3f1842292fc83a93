"""Every hook a cruijff plugin can implement, in one place.

A plugin is a module (or object) with functions named after these specs and marked with
:data:`hookimpl`, registered in the ``cruijff`` entry-point group::

    [project.entry-points.cruijff]
    mytool = "cruijff_mytool.plugin"

The core calls every hook through one typed method of the facade in :mod:`cruijff.manager`
(``manager.generate(experiment, unit)``, ``manager.after_design(plan)``...), never by a
name as a string; an implementation may accept fewer arguments than the spec names.

The four stages of every tool are **parse** (claim and check your keys of the experiment
file), **select** (which units of work exist), **generate** (files and a job for a unit: tools
generate, schedulers execute) and **validate** (look at what a finished unit left behind). For
select, generate and validate a plugin answers for its own tool's units and returns ``None``
for the rest; exactly one plugin must answer. ``cruijff_retry`` is asked only of the plugin
that provides the unit's tool. The lifecycle hooks around the phases (design, scaffold, run)
are observers: every implementation is called and results are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from cruijff.analysis.model import Analysis, Observations, Section
    from cruijff.estimates import Estimate, Review
    from cruijff.hardware import Hardware
    from cruijff.measurements import Index
    from cruijff.records import (
        Experiment,
        Generated,
        JobHandle,
        JobSpec,
        JobStatus,
        Key,
        ParseReport,
        Plan,
        SchedulerInfo,
        Tool,
        Unit,
        Validation,
    )

PROJECT = "cruijff"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- registration ---------------------------------------------------------------------------


@hookspec
def cruijff_tools() -> Iterable[Tool]:
    """Register the tools this plugin provides.

    Called once when the plugin manager first needs the list of tools.

    Returns:
        Tool records. Names must be unique across all installed plugins.

    Example::

        @hookimpl
        def cruijff_tools():
            yield Tool(name="axolotl", role=Role.PREPARATION, labels={"lora_r": "rank"},
                       produces=("hf-model",), requires=("axolotl",))
    """


@hookspec
def cruijff_schedulers() -> Iterable[SchedulerInfo]:
    """Register the schedulers this plugin provides.

    Called once when the plugin manager first needs the list of schedulers.

    Returns:
        SchedulerInfo records whose ``factory(experiment, options)`` builds a
        :class:`cruijff.scheduler.Scheduler` for one experiment.

    Example::

        @hookimpl
        def cruijff_schedulers():
            yield SchedulerInfo(name="pbs", factory=PbsScheduler.for_experiment,
                                available=lambda: shutil.which("qsub") is not None)
    """


# --- the four stages ------------------------------------------------------------------------


@hookspec
def cruijff_parse(experiment: Experiment, keys: tuple[Key, ...]) -> ParseReport | None:
    """Claim the keys of the experiment file this plugin understands, and check them.

    Called for every plugin when an experiment is loaded, after the core has checked the shape
    it owns. ``keys`` are the keys that belong to plugins (controls, run parameters, variable
    names, output, scheduler options, evaluation settings). A key no plugin claims is reported
    as unknown, with a "did you mean" searched in every plugin's vocabulary. Answer only for an
    experiment that uses your tool or scheduler (``experiment.tools``,
    ``experiment.scheduler.name``); return None otherwise.

    Args:
        experiment: the experiment as the core loaded it.
        keys: the plugin-owned keys, each with its section, dotted path and value.

    Returns:
        A ParseReport (claimed paths, known names per section, problems) or None.

    Example::

        @hookimpl
        def cruijff_parse(experiment, keys):
            if "mytool" not in experiment.tools.values():
                return None
            mine = [k for k in keys if k.section == "parameters" and k.name in KNOWN]
            problems = [Problem(where=experiment.locate(k.path), message="must be positive",
                                plugin="mytool") for k in mine if k.value <= 0]
            return ParseReport(claimed={k.path for k in mine},
                               vocabulary={"parameters": tuple(KNOWN)}, problems=problems)
    """


@hookspec
def cruijff_select(
    experiment: Experiment, tool: Tool, upstream: tuple[Unit, ...]
) -> tuple[Unit, ...] | None:
    """Decide the units of work ``tool`` does in this experiment.

    Called once per tool of the experiment, preparation tools first. Deterministic: the same
    experiment gives the same units in the same order.

    Args:
        experiment: the loaded experiment.
        tool: the tool asked for; answer only if it is yours.
        upstream: the units of the tools selected before this one (an evaluator finds the
            ``hf-model`` artifacts of training units here and depends on their unit ids).

    Returns:
        The tool's units (possibly none), or None if ``tool`` is not yours.

    Example::

        @hookimpl
        def cruijff_select(experiment, tool, upstream):
            if tool.name != "mytool":
                return None
            return tuple(Unit(id=f"{run.name}.train", tool="mytool", kind="train",
                              run=run.name, directory=run.directory / "train")
                         for run in experiment.runs if run.type is RunType.FINE_TUNED)
    """


@hookspec
def cruijff_generate(experiment: Experiment, unit: Unit) -> Generated | None:
    """Render the files of a unit and the job that runs it. Never write or submit anything.

    Called for every unit when an experiment is planned or scaffolded; the core writes the
    files (atomically, inside the experiment directory, keeping user edits) and hands the job
    to the scheduler.

    Args:
        experiment: the loaded experiment.
        unit: one of the units your ``cruijff_select`` returned.

    Returns:
        Generated(files, job), or None if the unit is not yours.

    Example::

        @hookimpl
        def cruijff_generate(experiment, unit):
            if unit.tool != "mytool":
                return None
            config = unit.directory / "config.yaml"
            return Generated(
                files=(FileSpec(path=config, content=yaml.safe_dump(dict(unit.params))),),
                job=JobSpec(unit_id=unit.id, name=unit.id, workdir=unit.directory,
                            argv=("mytool", "train", str(config)),
                            log=unit.directory / "job.log", depends_on=unit.depends_on))
    """


@hookspec
def cruijff_validate(
    experiment: Experiment, unit: Unit, status: JobStatus | None
) -> Validation | None:
    """Look at what a unit left behind and say whether it is complete.

    Called when a unit's job has finished (``status`` is the scheduler's report), and by
    ``cruijff run`` for units that have no job record yet (``status`` is None), so work done
    before can be recognised. A missing output is a failed Validation, not an exception.

    Args:
        experiment: the loaded experiment.
        unit: the unit to check.
        status: how its job ended, or None if no job was run this time.

    Returns:
        A Validation, or None if the unit is not yours.

    Example::

        @hookimpl
        def cruijff_validate(experiment, unit, status):
            if unit.tool != "mytool":
                return None
            done = (unit.directory / "model" / "config.json").exists()
            return Validation(unit_id=unit.id, ok=done, cause="" if done else "no model")
    """


# --- design: estimates and reviews ---------------------------------------------------------


@hookspec
def cruijff_estimate(
    experiment: Experiment, unit: Unit, job: JobSpec, hardware: Hardware, measurements: Index
) -> Estimate | None:
    """Estimate what the job of one of your units will take, before anything runs.

    Called by every plan (``cruijff plan``, ``scaffold``, ``run``) for each unit with a job,
    only on the plugin that provides the unit's tool; keep it cheap (arithmetic on what select
    already read). Prefer, in order, what a calibration job measured, what earlier runs of
    the same ``key`` measured (``measurements.find(key)``), a formula; say which in
    ``source``, and put the inputs in ``facts``.

    Args:
        experiment: the loaded experiment.
        unit: one of your units.
        job: the job its generate returned.
        hardware: what the scheduler's jobs run on (a GPU type, or the CPU).
        measurements: the cross-experiment index (:class:`cruijff.measurements.Index`).

    Returns:
        An Estimate (any figure may be None), or None if you cannot estimate this unit.

    Example::

        @hookimpl
        def cruijff_estimate(experiment, unit, job, hardware, measurements):
            if unit.tool != "mytool":
                return None
            steps = unit.payload.steps
            return Estimate(hours=Range(steps / 20, steps / 10, steps / 5) * (1 / 3600),
                            facts={"steps": steps}, key={"model": unit.payload.model})
    """


@hookspec
def cruijff_review(plan: Plan) -> Review | None:
    """Look at a whole plan, its estimates made, and warn where it will not go as the user
    expects: a run that cannot fit in memory (with the smallest change that would fit), a time
    limit too short, a queue that throttles, an evaluation too small to detect its effect.

    Called for every plugin once per plan; ``plan.estimates`` holds every job's estimate.
    Warnings are Problems (severity warning) that name the run and what would fix it;
    ``notes`` add named sections to ``plan --json`` (a list of mappings shows as a table).

    Example::

        @hookimpl
        def cruijff_review(plan):
            slow = [u for u, e in plan.estimates.items() if e and e.hours and e.hours.high > 48]
            return Review(problems=[Problem(where=Location(file=plan.experiment.path),
                                            message=f"{u} may take over 48 h",
                                            severity=Severity.WARNING) for u in slow])
    """


@hookspec
def cruijff_measure(experiment: Experiment, unit: Unit, status: JobStatus) -> Mapping | None:
    """Read what the finished job of one of your units used and did, for the index of
    measurements: e.g. ``{"tokens": 81920, "tokens_per_s": 410.0, "peak_memory_gb": 17.2}``
    (peak memory per GPU where the tool logs it).

    Called once a job succeeded and validated, on the plugin that provides the unit's tool;
    the core adds the scheduler's wall time and peak resident memory and stores the result
    next to the job's estimate under the estimate's ``key``.

    Example::

        @hookimpl
        def cruijff_measure(experiment, unit, status):
            if unit.tool != "mytool":
                return None
            return json.loads((unit.directory / "throughput.json").read_text())
    """


@hookspec
def cruijff_calibration(experiment: Experiment, unit: Unit, directory: Path) -> Unit | None:
    """A short version of one of your units, to measure it: a few steps at the real
    micro-batch and sequence length, writing only under ``directory``.

    Called by ``cruijff calibrate`` on the plugin that provides the unit's tool; the core
    generates the short unit (your ``cruijff_generate``), writes its files, runs its job on
    the experiment's scheduler and records what ``cruijff_measure`` then reads of it under
    its estimate's key, with ``source`` calibration. Return None if the unit cannot be
    calibrated.

    Example::

        @hookimpl
        def cruijff_calibration(experiment, unit, directory):
            if unit.tool != "mytool":
                return None
            return attrs.evolve(unit, directory=directory, params={**unit.params, "steps": 5})
    """


# --- analysis -------------------------------------------------------------------------------


@hookspec
def cruijff_observe(experiment: Experiment, unit: Unit) -> Observations | None:
    """Read what one of your units left behind for the analysis: per-sample scores.

    Called by ``cruijff analyze`` for every unit whose job succeeded, from the files in the
    experiment directory alone (no network, no server). The core owns the statistics and the
    report; a tool only reads its own files. Training curves need no hook: the core reads
    every ``train-metrics`` artifact (a CSV with the columns of
    :data:`cruijff.analysis.model.CURVE_COLUMNS`).

    Args:
        experiment: the loaded experiment.
        unit: one of your units (an evaluation cell), its job succeeded.

    Returns:
        Observations (scores per metric with every sample's score; or the cause when the files
        cannot be read), or None if the unit is not yours or has nothing to analyse.

    Example::

        @hookimpl
        def cruijff_observe(experiment, unit):
            if unit.tool != "mytool":
                return None
            rows = json.loads((unit.directory / "scores.json").read_text())
            return Observations(scores=[Scores(
                unit=unit.id, run=unit.run, task=unit.params["task"], epoch=None,
                metric="exact/accuracy", value=mean(rows.values()), samples=rows,
                binary=True, log="...")])
    """


@hookspec
def cruijff_report(analysis: Analysis, experiment: Experiment) -> Iterable[Section] | None:
    """Add sections (text, a table, plots) to the report of an analysis.

    Called once per ``cruijff analyze``, after the statistics; every implementation's sections
    are added, in plugin order, after the core's. Same inputs must give the same sections
    (the report is byte-identical when nothing changed).

    Example::

        @hookimpl
        def cruijff_report(analysis, experiment):
            yield Section(title="Throughput", text="Tokens per second per run.",
                          columns=("run", "tokens/s"), rows=[("rank8", 1520.0)])
    """


# --- orchestration --------------------------------------------------------------------------


@hookspec
def cruijff_after_design(plan: Plan) -> None:
    """Observe a finished design: the experiment checked and its units and jobs decided.

    Called by ``cruijff plan``, ``scaffold`` and ``run`` once the plan is complete.

    Example::

        @hookimpl
        def cruijff_after_design(plan):
            log.info("%d jobs planned", len(plan.jobs))
    """


@hookspec
def cruijff_before_scaffold(plan: Plan) -> None:
    """Observe the start of scaffolding, before any file is written.

    Example::

        @hookimpl
        def cruijff_before_scaffold(plan):
            plan.experiment.directory.mkdir(parents=True, exist_ok=True)
    """


@hookspec
def cruijff_after_scaffold(plan: Plan, written: tuple) -> None:
    """Observe a finished scaffold; ``written`` lists the paths that were (re)written.

    Example::

        @hookimpl
        def cruijff_after_scaffold(plan, written):
            notify(f"{len(written)} files written for {plan.experiment.name}")
    """


@hookspec
def cruijff_on_scaffold_error(plan: Plan, error: BaseException) -> None:
    """Observe a scaffold that failed; the error is raised again after the observers.

    Example::

        @hookimpl
        def cruijff_on_scaffold_error(plan, error):
            log.error("scaffold of %s failed: %s", plan.experiment.name, error)
    """


@hookspec
def cruijff_before_run(plan: Plan, jobs: tuple[JobSpec, ...]) -> None:
    """Observe the start of ``cruijff run``; ``jobs`` are the jobs it is about to submit.

    Example::

        @hookimpl
        def cruijff_before_run(plan, jobs):
            log.info("submitting %d of %d jobs", len(jobs), len(plan.jobs))
    """


@hookspec
def cruijff_after_submit(
    plan: Plan, jobs: tuple[JobSpec, ...], handles: tuple[JobHandle, ...]
) -> None:
    """Observe a batch of jobs handed to the scheduler; ``handles[i]`` belongs to ``jobs[i]``.

    Example::

        @hookimpl
        def cruijff_after_submit(plan, jobs, handles):
            for job, handle in zip(jobs, handles):
                log.info("%s is %s job %s", job.unit_id, handle.scheduler, handle.id)
    """


@hookspec
def cruijff_on_job_error(
    plan: Plan, job: JobSpec, status: JobStatus, validation: Validation | None
) -> None:
    """Observe a job that failed (its state, and the tool's validation where there is one).

    Example::

        @hookimpl
        def cruijff_on_job_error(plan, job, status, validation):
            slack.post(f"{job.unit_id} ended {status.state.value}: {status.cause}")
    """


@hookspec
def cruijff_after_run(plan: Plan, states: dict) -> None:
    """Observe the end of an attached ``cruijff run``; ``states`` maps unit id to JobState.

    Example::

        @hookimpl
        def cruijff_after_run(plan, states):
            failed = [u for u, s in states.items() if s.failed]
            log.info("%d jobs failed", len(failed))
    """


@hookspec
def cruijff_on_run_error(plan: Plan, error: BaseException) -> None:
    """Observe a ``cruijff run`` that stopped on an error; the error is raised again after.

    Example::

        @hookimpl
        def cruijff_on_run_error(plan, error):
            log.error("run of %s stopped: %s", plan.experiment.name, error)
    """


@hookspec
def cruijff_retry(
    experiment: Experiment, unit: Unit, job: JobSpec, status: JobStatus
) -> JobSpec | None:
    """Adjust a failed job of your own unit before ``cruijff run --retry-failed`` submits it
    again.

    Called only on the plugin that provides ``unit.tool`` (like generate and validate), once
    per failed job, with how it failed. Return the adjusted JobSpec, or None to leave it to
    cruijff's general policy (twice the time after a time limit, twice the memory after an
    out-of-memory kill, otherwise unchanged).

    Example::

        @hookimpl
        def cruijff_retry(experiment, unit, job, status):
            if status.state is JobState.OUT_OF_MEMORY and unit.params.get("batch_size", 1) > 1:
                return attrs.evolve(job, argv=(*job.argv, "--smaller-batch"))
            return None
    """


@hookspec
def cruijff_commands(cli: click.Group) -> None:
    """Add commands to the ``cruijff`` command line.

    Called when the CLI is built. Keep the module that implements this light: import heavy
    libraries inside the command, not at the top, so ``cruijff --help`` stays fast.

    Example::

        @hookimpl
        def cruijff_commands(cli):
            @cli.command()
            def recipes():
                "List the recipes of mytool."
                click.echo("\\n".join(list_recipes()))
    """
