"""``cruijff validate``: check an experiment file, every problem at once."""

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
    """Check EXPERIMENT (a YAML file) and report every problem with file:line:column.

    The core checks the file's shape and cross-references; each tool plugin checks the keys
    it owns. Exits 1 if there is any error, 0 otherwise (warnings do not fail).
    """
    from cruijff import orchestrator
    from cruijff.cli.render import print_json, print_problems
    from cruijff.errors import ProblemsFound

    checked, the_plan = orchestrator.validate(app.manager, experiment, scheduler=scheduler)
    runs = len(the_plan.experiment.runs) if the_plan else None
    jobs = len(the_plan.jobs) if the_plan else None
    if as_json:
        print_json(
            {
                "file": str(experiment),
                "ok": checked.ok,
                "runs": runs,
                "jobs": jobs,
                "problems": _problems(checked, the_plan),
            }
        )
        if not checked.ok:
            raise click.exceptions.Exit(1)
        return
    if not checked.ok:
        raise ProblemsFound(checked.problems)
    print_problems(_problems(checked, the_plan))
    click.echo(f"{experiment}: valid ({runs} runs, {jobs} jobs)")


def _problems(checked, the_plan):  # type: ignore[no-untyped-def]
    """The file's problems, and with a plan its reviews' warnings too (the plan's warnings
    start with the file's)."""
    return the_plan.warnings if the_plan is not None else checked.problems
