"""``cruijff status``: where every job of an experiment is, from any shell."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cruijff.cli import App, experiment_argument, json_option, only_option, scheduler_option
from cruijff.gcpause import paused_gc

if TYPE_CHECKING:
    from cruijff.jobindex import IndexedJob
    from cruijff.state import JobRecord

ROWS = 30
"""Jobs the table lists unless --all (unfinished ones first); the counts cover every job."""


@click.command()
@experiment_argument
@click.option("--all", "show_all", is_flag=True, help=f"List every job (else {ROWS}).")
@only_option
@scheduler_option
@json_option
@click.pass_obj
@paused_gc(to_the_end=True)  # a short read of many records: see cruijff.gcpause
def command(
    app: App,
    experiment: Path,
    show_all: bool,
    only: tuple[str, ...],
    scheduler: str | None,
    as_json: bool,
) -> None:
    """Show the jobs of EXPERIMENT: state, attempt, scheduler id and cause of failure, with
    counts by state and the results so far.

    Reads the experiment's records and asks the scheduler once; changes nothing. The table
    lists unfinished jobs first, up to 30 (--all: every one; --json: everything); --only
    shows the runs or jobs chosen.
    """
    from cruijff import orchestrator
    from cruijff.cli.render import print_json, show_results, table
    from cruijff.local.scheduler import UNSERVED

    found = orchestrator.status(app.manager, experiment, scheduler=scheduler, only=only)
    name, scheduler_name = found.experiment.name, found.experiment.scheduler.name
    records = found.records
    if as_json:
        rows = [_row(job, records[job.unit_id]) for job in found.jobs]
        print_json({"experiment": name, "scheduler": scheduler_name, "jobs": rows})
        return
    states = {job.unit_id: _state(records[job.unit_id]) for job in found.jobs}
    # every job that is not done, then the done ones, as many as a terminal shows; only the
    # rows shown are made (twenty thousand rows cost half a second)
    limit = None if show_all else ROWS
    order = [job for job in found.jobs if states[job.unit_id] != "SUCCEEDED"]
    order += [job for job in found.jobs if states[job.unit_id] == "SUCCEEDED"]
    shown = [_row(job, records[job.unit_id]) for job in order[:limit]]
    total = len(found.jobs)
    more = f": {limit} of {total:,}, unfinished first (--all lists every one)"
    table(
        f"{name} ({scheduler_name})" + (more if limit and total > limit else ""),
        ["unit", "state", "attempt", "job id", "cause"],
        (
            [r["unit"], r["state"], r["attempt"] or "-", r["job_id"] or "-", r["cause"]]
            for r in shown
        ),
    )
    counts: dict[str, int] = {}
    for state in states.values():
        counts[state] = counts.get(state, 0) + 1
    click.echo(", ".join(f"{n} {state.lower().replace('_', ' ')}" for state, n in counts.items()))
    unserved = sum(1 for record in records.values() if record and record.cause == UNSERVED)
    if unserved:
        click.echo(f"No executor is serving {unserved} queued jobs: run `cruijff run` to resume.")
    show_results(found, limit)


def _state(record: JobRecord | None) -> str:
    if record is not None and record.state is not None:
        # a success whose inputs changed since: it runs again with the next `cruijff run`
        return "OUTDATED" if record.outdated and not record.in_flight else record.state.value
    return "SUBMITTING" if record is not None and record.submitting else "NOT_SUBMITTED"


def _row(job: IndexedJob, record: JobRecord | None) -> dict[str, Any]:
    """What status says of one job (a row of the table, an object of --json)."""
    return {
        "unit": job.unit_id,
        "state": _state(record),
        "attempt": record.attempt if record else 0,
        "job_id": record.handle.id if record and record.handle else None,
        "exit_code": record.exit_code if record else None,
        "cause": record.cause if record else "",
        "log": str(record.job.log) if record else job.log,  # where the job wrote it
        "updated": record.updated if record else None,
        "metrics": dict(record.metrics) if record else {},
    }
