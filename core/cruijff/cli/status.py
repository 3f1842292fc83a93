"""``cruijff status``: where every job of an experiment is, from any shell."""

from __future__ import annotations

from pathlib import Path

import click

from cruijff.cli import App, experiment_argument, json_option, scheduler_option


@click.command()
@experiment_argument
@scheduler_option
@json_option
@click.pass_obj
def command(app: App, experiment: Path, scheduler: str | None, as_json: bool) -> None:
    """Show every job of EXPERIMENT: its state, attempt, scheduler id and cause of failure.

    Reads the experiment's records and asks the scheduler once; changes nothing.
    """
    from cruijff import orchestrator
    from cruijff.cli.render import print_json, show_results, table
    from cruijff.local.scheduler import UNSERVED

    plan, records = orchestrator.status(app.manager, experiment, scheduler=scheduler)
    rows = []
    for unit_id, record in records.items():
        rows.append(
            {
                "unit": unit_id,
                "state": record.state.value
                if record and record.state
                else ("SUBMITTING" if record and record.submitting else "NOT_SUBMITTED"),
                "attempt": record.attempt if record else 0,
                "job_id": record.handle.id if record and record.handle else None,
                "exit_code": record.exit_code if record else None,
                "cause": record.cause if record else "",
                "log": str(record.job.log) if record else str(_log_of(plan, unit_id)),
                "updated": record.updated if record else None,
                "metrics": dict(record.metrics) if record else {},
            }
        )
    if as_json:
        print_json(
            {
                "experiment": plan.experiment.name,
                "scheduler": plan.experiment.scheduler.name,
                "jobs": rows,
            }
        )
        return
    table(
        f"{plan.experiment.name} ({plan.experiment.scheduler.name})",
        ["unit", "state", "attempt", "job id", "cause"],
        (
            [r["unit"], r["state"], r["attempt"] or "-", r["job_id"] or "-", r["cause"]]
            for r in rows
        ),
    )
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    click.echo(", ".join(f"{n} {state.lower().replace('_', ' ')}" for state, n in counts.items()))
    unserved = sum(1 for row in rows if row["cause"] == UNSERVED)
    if unserved:
        click.echo(f"No executor is serving {unserved} queued jobs: run `cruijff run` to resume.")
    show_results(plan, records)


def _log_of(plan, unit_id: str) -> Path | None:  # type: ignore[no-untyped-def]
    for job in plan.jobs:
        if job.unit_id == unit_id:
            return job.log
    return None
