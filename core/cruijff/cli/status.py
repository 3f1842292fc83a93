"""``cruijff status``: where every job of an experiment is, from any shell."""

from __future__ import annotations

from pathlib import Path

import click

from cruijff.cli import App, experiment_argument, json_option, scheduler_option

ROWS = 30
"""Jobs the table lists unless --all (unfinished ones first); the counts cover every job."""


@click.command()
@experiment_argument
@click.option("--all", "show_all", is_flag=True, help=f"List every job (else {ROWS}).")
@scheduler_option
@json_option
@click.pass_obj
def command(
    app: App, experiment: Path, show_all: bool, scheduler: str | None, as_json: bool
) -> None:
    """Show the jobs of EXPERIMENT: state, attempt, scheduler id and cause of failure, with
    counts by state and the results so far.

    Reads the experiment's records and asks the scheduler once; changes nothing. The table
    lists unfinished jobs first, up to 30 (--all: every one; --json: everything).
    """
    from cruijff import orchestrator
    from cruijff.cli.render import print_json, show_results, table
    from cruijff.local.scheduler import UNSERVED

    found = orchestrator.status(app.manager, experiment, scheduler=scheduler)
    name, scheduler_name = found.experiment.name, found.experiment.scheduler.name
    rows = []
    for job in found.jobs:
        record = found.records[job.unit_id]
        rows.append(
            {
                "unit": job.unit_id,
                "state": record.state.value
                if record and record.state
                else ("SUBMITTING" if record and record.submitting else "NOT_SUBMITTED"),
                "attempt": record.attempt if record else 0,
                "job_id": record.handle.id if record and record.handle else None,
                "exit_code": record.exit_code if record else None,
                "cause": record.cause if record else "",
                "log": job.log,  # where the scaffold that submitted it put it
                "updated": record.updated if record else None,
                "metrics": dict(record.metrics) if record else {},
            }
        )
    if as_json:
        print_json({"experiment": name, "scheduler": scheduler_name, "jobs": rows})
        return
    # every job that is not done, then the done ones, as many as a terminal shows
    shown = [r for r in rows if r["state"] != "SUCCEEDED"] + [
        r for r in rows if r["state"] == "SUCCEEDED"
    ]
    limit = None if show_all else ROWS
    more = f": {limit} of {len(rows):,}, unfinished first (--all lists every one)"
    table(
        f"{name} ({scheduler_name})" + (more if limit and len(rows) > limit else ""),
        ["unit", "state", "attempt", "job id", "cause"],
        (
            [r["unit"], r["state"], r["attempt"] or "-", r["job_id"] or "-", r["cause"]]
            for r in shown[:limit]
        ),
    )
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    click.echo(", ".join(f"{n} {state.lower().replace('_', ' ')}" for state, n in counts.items()))
    unserved = sum(1 for row in rows if row["cause"] == UNSERVED)
    if unserved:
        click.echo(f"No executor is serving {unserved} queued jobs: run `cruijff run` to resume.")
    show_results(found, limit)
