"""``cruijff run``: scaffold, submit what has not succeeded, and watch it finish."""

from __future__ import annotations

from pathlib import Path

import click

from cruijff.cli import App, experiment_argument, only_option, scheduler_option


@click.command()
@experiment_argument
@click.option(
    "-j",
    "--jobs",
    metavar="N",
    type=click.IntRange(min=1),
    help="Local scheduler: jobs that run at once (default: the experiment's `scheduler.jobs`, "
    "else 1).",
)
@click.option("--detach", is_flag=True, help="Submit and return; jobs go on in the background.")
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Rerun only failed jobs, adjusted for how they failed (more time...).",
)
@only_option
@click.option(
    "--force",
    is_flag=True,
    help="With --only: run those jobs again even where they succeeded (what depends on them "
    "is marked outdated and reruns next time).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be submitted; change nothing.")
@scheduler_option
@click.pass_obj
def command(
    app: App,
    experiment: Path,
    jobs: int | None,
    detach: bool,
    retry_failed: bool,
    only: tuple[str, ...],
    force: bool,
    dry_run: bool,
    scheduler: str | None,
) -> None:
    """Run EXPERIMENT: scaffold it, submit every job that has not succeeded, and watch.

    Training jobs run first and evaluations after the checkpoints they need. Running it again
    resumes: succeeded jobs are skipped, jobs still running are watched, the rest submitted.
    With --only, only the jobs chosen run, with the unfinished ones they depend on. Ctrl-C
    stops watching; the jobs go on (`cruijff status`, `cruijff cancel`).
    """
    from cruijff import orchestrator
    from cruijff.cli.render import Progress, console, print_problems
    from cruijff.errors import UserError
    from cruijff.records import JobState
    from cruijff.runner import RunOptions

    if force and not only:
        raise click.UsageError("--force reruns the jobs --only chooses: give --only PATTERN")
    options = RunOptions(jobs=jobs, detach=detach, retry_failed=retry_failed, force=force)
    out = console()
    if dry_run:
        would = orchestrator.dry_run(
            app.manager, experiment, options, scheduler=scheduler, only=only
        )
        click.echo(
            f"would write {len(would.scaffold.written)} files and submit {len(would.jobs)} of "
            f"{len(would.plan.jobs)} jobs to {would.plan.experiment.scheduler.name}:"
        )
        for job in would.jobs:
            after = f" (after {', '.join(job.depends_on)})" if job.depends_on else ""
            ended = f" (once {', '.join(job.after)} ended)" if job.after else ""
            click.echo(f"  {job.unit_id}{after}{ended}")
        for spec in would.files:
            click.echo(f"  would write {spec.path}")
        return
    progress = Progress(out)

    def warn(plan) -> None:  # type: ignore[no-untyped-def]
        print_problems(plan.warnings)

    try:
        with out.status("starting", spinner="dots") as status:
            progress.status = status
            result = orchestrator.run_experiment(
                app.manager,
                experiment,
                options,
                scheduler=scheduler,
                observer=progress,
                on_plan=warn,
                only=only,
            )
            progress.flush()
    except KeyboardInterrupt:
        out.print(
            "Stopped watching. Jobs go on: `cruijff status` to watch them, "
            "`cruijff cancel` to stop them."
        )
        raise click.exceptions.Exit(130) from None
    for path in result.scaffold.kept:
        out.print(f"[yellow]kept {path}: edited since it was generated[/]")
    picked = result.chosen
    records = [
        result.records[job.unit_id]
        for job in result.plan.jobs
        if job.unit_id in result.records and (picked is None or job.unit_id in picked)
    ]
    resumed = f" (resumed: {result.resumed})" if result.resumed is not None else ""
    if detach:
        out.print(f"Submitted{resumed}; watch with `cruijff status {experiment}`.")
        return
    # the run is over: answer the question with what it left (nothing rewritten if unchanged)
    from cruijff.analysis.analyze import analyze
    from cruijff.cli.render import show_analysis

    try:
        analysis, report = analyze(app.manager, result.plan)
        show_analysis(analysis, result.plan.experiment, report)
    except Exception as error:  # the run's own report below matters more than the analysis
        from rich.markup import escape

        from cruijff.errors import CruijffError

        known = isinstance(error, CruijffError)
        reason = error.message if known else f"{type(error).__name__}: {error}"
        out.print(
            f"[yellow]warning: the analysis failed: {escape(reason)}; "
            f"retry with `cruijff analyze {escape(str(experiment))}`[/]"
        )
    failed = [r for r in records if r.state is not None and r.state.failed]
    done = sum(1 for r in records if r.state is JobState.SUCCEEDED)
    total = len(result.plan.jobs) if picked is None else len(picked)
    chosen = "" if picked is None else " chosen"
    out.print(
        f"{done} of {total}{chosen} jobs succeeded in {result.plan.experiment.directory}{resumed}",
        markup=False,
    )
    if failed:
        raise UserError(
            f"{len(failed)} job{'s' if len(failed) > 1 else ''} failed: "
            + ", ".join(r.unit_id for r in failed),
            hint="read their logs; `cruijff run` reruns them, `--retry-failed` adjusted",
        )
