"""``cruijff cancel``: stop the jobs of an experiment that are waiting or running."""

from __future__ import annotations

from pathlib import Path

import click

from cruijff.cli import App, experiment_argument, json_option, only_option, scheduler_option


@click.command()
@experiment_argument
@only_option
@click.option("--dry-run", is_flag=True, help="Say which jobs would be cancelled; cancel none.")
@scheduler_option
@json_option
@click.pass_obj
def command(
    app: App,
    experiment: Path,
    only: tuple[str, ...],
    dry_run: bool,
    scheduler: str | None,
    as_json: bool,
) -> None:
    """Cancel every waiting or running job of EXPERIMENT (with --only, of the runs or jobs
    chosen), and say which jobs that depend on them will now not run. `cruijff run` submits
    them again."""
    from cruijff import orchestrator
    from cruijff.cli.render import print_json

    done = orchestrator.cancel(
        app.manager, experiment, scheduler=scheduler, dry_run=dry_run, only=only
    )
    if as_json:
        print_json(
            {
                "dry_run": dry_run,
                "jobs": [
                    {
                        "unit": r.unit_id,
                        "state": r.state.value if r.state else None,
                        "stopped": dry_run or r.finished,
                    }
                    for r in done.records
                ],
                "will_not_run": done.stranded,
            }
        )
        return
    if dry_run:
        click.echo(
            f"would cancel {len(done.records)} jobs"
            + "".join(f"\n  {r.unit_id}" for r in done.records)
        )
    else:
        # Only what really ended counts: a job the scheduler could not stop is said to be so.
        ended = [record for record in done.records if record.finished]
        for record in done.records:
            state = record.state.value if record.state else "unknown"
            note = "" if record.finished else " (still in flight: the scheduler did not stop it)"
            click.echo(f"{record.unit_id}: {state}{note}")
        click.echo(
            f"cancelled {len(ended)} jobs"
            + (f", {len(done.records) - len(ended)} not" if len(ended) < len(done.records) else "")
        )
    if done.stranded:
        verb = "would then not run" if dry_run else "will now not run"
        click.echo(
            f"{len(done.stranded)} jobs that depend on them {verb} (`cruijff run` submits "
            "them again):" + "".join(f"\n  {unit}" for unit in done.stranded)
        )
