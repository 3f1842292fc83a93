"""``cruijff run``: scaffold, submit what has not succeeded, and watch it finish."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from cruijff.cli import App, experiment_argument, scheduler_option


class Progress:
    """Prints a line per job event and keeps a live status line with the running jobs' last
    log line (where tools print their step, loss and ETA)."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.records: dict[str, Any] = {}
        self.started: dict[str, float] = {}
        self.status: Any = None
        self.submitted: list[Any] = []
        # without a live status line (a pipe, a CI log), report running jobs now and then
        self.report_every = None if console.is_terminal else 30.0
        self.reported = time.monotonic()

    def __call__(self, event: str, record: Any) -> None:
        from cruijff.records import JobState

        if record is not None:
            self.records[record.unit_id] = record
        if event == "submitted":
            self.submitted.append(record)
            return
        self.flush()
        if event == "state" and record.state is JobState.RUNNING:
            self.started[record.unit_id] = time.monotonic()
            self.console.print(f"  [cyan]running[/] {record.unit_id}")
        elif event == "done":
            began = self.started.pop(record.unit_id, None)
            took = f" in {time.monotonic() - began:.0f} s" if began is not None else ""
            if record.state is JobState.SUCCEEDED:
                self.console.print(f"  [green]✓ {record.unit_id}[/] succeeded{took}")
            else:
                cause = f": {record.cause}" if record.cause else ""
                self.console.print(
                    f"  [red]✗ {record.unit_id} {record.state.value.lower()}{cause}[/]"
                    f" (log: {record.job.log})"
                )
        if self.status is not None:
            self.status.update(self.line())
        if (
            event == "tick"
            and self.report_every is not None
            and time.monotonic() - self.reported >= self.report_every
        ):
            self.reported = time.monotonic()
            for line in self.line().splitlines()[1:]:
                self.console.print(line, markup=False, highlight=False)

    def flush(self) -> None:
        """Say what was submitted, in one line however many jobs it was."""
        if self.submitted:
            scheduler = self.submitted[0].handle.scheduler
            self.console.print(f"  submitted {len(self.submitted)} jobs to {scheduler}")
            self.submitted = []

    def line(self) -> str:
        from cruijff.records import JobState

        states = [r.state for r in self.records.values()]
        running = [r for r in self.records.values() if r.state is JobState.RUNNING]
        text = (
            f"{sum(s is JobState.SUCCEEDED for s in states)} done, {len(running)} running, "
            f"{sum(s is JobState.PENDING for s in states)} waiting"
        )
        for record in running[:2]:
            elapsed = time.monotonic() - self.started.get(record.unit_id, time.monotonic())
            text += f"\n  {record.unit_id} ({elapsed:.0f} s): {last_line(record.job.log)}"
        return text


def last_line(path: Path, limit: int = 100) -> str:
    """The command's last non-empty line in a log (reading only its end), shortened; the
    local job wrapper's own start and end lines say nothing the progress line does not."""
    from cruijff.local.store import LOG_MARK

    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 4096))
            tail = handle.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [
        line
        for line in tail.replace("\r", "\n").splitlines()
        if line.strip() and not line.startswith(LOG_MARK)
    ]
    return lines[-1].strip()[:limit] if lines else ""


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
@click.option("--dry-run", is_flag=True, help="Say what would be submitted; change nothing.")
@scheduler_option
@click.pass_obj
def command(
    app: App,
    experiment: Path,
    jobs: int | None,
    detach: bool,
    retry_failed: bool,
    dry_run: bool,
    scheduler: str | None,
) -> None:
    """Run EXPERIMENT: scaffold it, submit every job that has not succeeded, and watch.

    Training jobs run first and evaluations after the checkpoints they need. Running it again
    resumes: succeeded jobs are skipped, jobs still running are watched, the rest submitted.
    Ctrl-C stops watching; the jobs go on (`cruijff status`, `cruijff cancel`).
    """
    from cruijff import orchestrator
    from cruijff.cli.render import console
    from cruijff.errors import UserError
    from cruijff.records import JobState
    from cruijff.runner import RunOptions

    options = RunOptions(jobs=jobs, detach=detach, retry_failed=retry_failed)
    out = console()
    if dry_run:
        _dry_run(app, experiment, options, scheduler)
        return
    progress = Progress(out)
    try:
        with out.status("starting", spinner="dots") as status:
            progress.status = status
            result = orchestrator.run_experiment(
                app.manager, experiment, options, scheduler=scheduler, observer=progress
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
    records = [
        result.records[job.unit_id] for job in result.plan.jobs if job.unit_id in result.records
    ]
    if detach:
        out.print(f"Submitted; watch with `cruijff status {experiment}`.")
        return
    show_results(result.plan, result.records)
    failed = [r for r in records if r.state is not None and r.state.failed]
    done = sum(1 for r in records if r.state is JobState.SUCCEEDED)
    out.print(
        f"{done} of {len(result.plan.jobs)} jobs succeeded in {result.plan.experiment.directory}"
    )
    if failed:
        raise UserError(
            f"{len(failed)} job{'s' if len(failed) > 1 else ''} failed: "
            + ", ".join(r.unit_id for r in failed),
            hint="read their logs; `cruijff run` reruns them, `--retry-failed` adjusted",
        )


def _dry_run(app: App, experiment: Path, options: Any, scheduler: str | None) -> None:
    from cruijff import orchestrator
    from cruijff.runner import Runner, open_scheduler
    from cruijff.state import ExperimentState

    plan, written = orchestrator.scaffold_experiment(
        app.manager, experiment, dry_run=True, scheduler=scheduler
    )
    sched = open_scheduler(plan, app.manager, {"jobs": options.jobs} if options.jobs else {})
    runner = Runner(app.manager, plan, sched)
    records = runner.refresh(ExperimentState(plan.experiment.state_dir).records(), write=False)
    batch = runner.to_submit(records, options.retry_failed)
    click.echo(
        f"would write {len(written.written)} files and submit {len(batch)} of "
        f"{len(plan.jobs)} jobs to {plan.experiment.scheduler.name}:"
    )
    for job in batch:
        after = f" (after {', '.join(job.depends_on)})" if job.depends_on else ""
        click.echo(f"  {job.unit_id}{after}")
    for spec in sched.preview(batch):
        click.echo(f"  would write {spec.path}")


def show_results(plan: Any, records: Any) -> None:
    """The results table, when the tools reported any."""
    from cruijff.cli.render import table
    from cruijff.results import format_value, results_table

    columns, rows = results_table(plan, records)
    if rows:
        table("Results", columns, ([format_value(row.get(c)) for c in columns] for row in rows))
