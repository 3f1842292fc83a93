"""``cruijff scaffold``: write the run directories, configs and job specs."""

from __future__ import annotations

from pathlib import Path

import click

from cruijff.cli import App, experiment_argument, json_option, scheduler_option


@click.command()
@experiment_argument
@click.option("--force", is_flag=True, help="Overwrite files you edited since they were generated.")
@click.option("--dry-run", is_flag=True, help="Say what would be written; write nothing.")
@scheduler_option
@json_option
@click.pass_obj
def command(
    app: App, experiment: Path, force: bool, dry_run: bool, scheduler: str | None, as_json: bool
) -> None:
    """Write one directory per run of EXPERIMENT, with its configs and job files.

    Running it twice changes nothing. A file you edited since it was generated is kept (and
    named) unless --force is given.
    """
    from cruijff import orchestrator
    from cruijff.cli.render import print_json, print_problems

    plan, result = orchestrator.scaffold_experiment(
        app.manager, experiment, force=force, dry_run=dry_run, scheduler=scheduler
    )
    root = plan.experiment.directory
    if as_json:
        print_json(
            {
                "directory": root,
                "dry_run": dry_run,
                "written": result.written,
                "unchanged": result.unchanged,
                "kept": result.kept,
            }
        )
        return
    print_problems(plan.warnings)
    verb = "would write" if dry_run else "wrote"
    for path in result.written:
        click.echo(f"{verb} {path.relative_to(root)}")
    for path in result.kept:
        click.echo(
            f"kept {path.relative_to(root)}: edited since it was generated (--force overwrites it)",
            err=True,
        )
    click.echo(
        f"{len(result.written)} files {verb}, {len(result.unchanged)} unchanged, "
        f"{len(result.kept)} kept, in {root}"
    )
