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
        flying = orchestrator.cancel(app.manager, experiment, scheduler=scheduler, dry_run=True)
        click.echo(f"would cancel {len(flying)} jobs" + "".join(f"\n  {r.unit_id}" for r in flying))
        return
    asked = orchestrator.cancel(app.manager, experiment, scheduler=scheduler)
    # Only what really ended counts: a job the scheduler could not stop is said to be so.
    ended = [record for record in asked if record.finished]
    for record in asked:
        state = record.state.value if record.state else "unknown"
        note = "" if record.finished else " (still in flight: the scheduler did not stop it)"
        click.echo(f"{record.unit_id}: {state}{note}")
    click.echo(
        f"cancelled {len(ended)} jobs"
        + (f", {len(asked) - len(ended)} not" if len(ended) < len(asked) else "")
    )
