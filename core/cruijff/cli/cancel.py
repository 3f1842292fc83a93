"""``cruijff cancel``: stop every job of an experiment that is waiting or running."""

from __future__ import annotations

from pathlib import Path

import click

from cruijff.cli import App, experiment_argument, scheduler_option


@click.command()
@experiment_argument
@click.option("--dry-run", is_flag=True, help="Say which jobs would be cancelled; cancel none.")
@scheduler_option
@click.pass_obj
def command(app: App, experiment: Path, dry_run: bool, scheduler: str | None) -> None:
    """Cancel every waiting or running job of EXPERIMENT (`cruijff run` submits them again)."""
    from cruijff import orchestrator

    if dry_run:
        _, records = orchestrator.status(app.manager, experiment, scheduler=scheduler)
        flying = [unit for unit, record in records.items() if record and record.in_flight]
        click.echo(f"would cancel {len(flying)} jobs" + "".join(f"\n  {u}" for u in flying))
        return
    cancelled = orchestrator.cancel(app.manager, experiment, scheduler=scheduler)
    for record in cancelled:
        click.echo(f"{record.unit_id}: {record.state.value if record.state else 'cancelled'}")
    click.echo(f"cancelled {len(cancelled)} jobs")
