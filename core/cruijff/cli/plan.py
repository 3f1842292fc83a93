"""``cruijff plan``: the runs and jobs an experiment would create, without writing anything."""

from __future__ import annotations

from pathlib import Path

import click

from cruijff.cli import App, experiment_argument, json_option, scheduler_option


@click.command()
@experiment_argument
@click.option("--explain", metavar="RUN", help="Show every setting of RUN and where it came from.")
@scheduler_option
@json_option
@click.pass_obj
def command(
    app: App, experiment: Path, explain: str | None, scheduler: str | None, as_json: bool
) -> None:
    """Show the runs and jobs EXPERIMENT would create, with totals. Writes nothing.

    With --explain RUN, show each final setting of RUN's units with its source (recipe,
    default, controls, run...).
    """
    from cruijff import orchestrator
    from cruijff.cli.render import params_text, print_json, table
    from cruijff.design import runs_table

    plan = orchestrator.design(app.manager, experiment, scheduler=scheduler)
    if explain is not None:
        _explain(plan, explain, as_json)
        return
    runs = runs_table(plan)
    jobs = [
        {
            "unit": job.unit_id,
            "name": job.name,
            "depends_on": list(job.depends_on),
            "gpus": job.resources.gpus,
            "cpus": job.resources.cpus,
            "mem_mb": job.resources.mem_mb,
            "time_s": job.resources.time_s,
            "workdir": str(job.workdir),
        }
        for job in plan.jobs
    ]
    if as_json:
        print_json(
            {
                "experiment": plan.experiment.name,
                "directory": plan.experiment.directory,
                "scheduler": plan.experiment.scheduler.name,
                "runs": runs,
                "jobs": jobs,
            }
        )
        return
    table(
        f"Runs of {plan.experiment.name}",
        ["run", "type", "model", "parameters", "jobs"],
        ([r["name"], r["type"], r["model"], params_text(r["parameters"]), r["jobs"]] for r in runs),
    )
    table(
        "Jobs",
        ["unit", "after", "gpus", "cpus", "memory", "time"],
        (
            [
                j["unit"],
                ", ".join(j["depends_on"]) or "-",
                j["gpus"],
                j["cpus"],
                f"{j['mem_mb']} MB" if j["mem_mb"] else "-",
                f"{j['time_s'] // 60} min" if j["time_s"] else "-",
            ]
            for j in jobs
        ),
    )
    click.echo(
        f"{len(runs)} runs, {len(jobs)} jobs, scheduler {plan.experiment.scheduler.name}, "
        f"in {plan.experiment.directory}"
    )


def _explain(plan, run: str, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    from cruijff.cli.render import print_json, table
    from cruijff.errors import UserError
    from cruijff.suggest import did_you_mean

    names = [r.name for r in plan.experiment.runs]
    if run not in names:
        raise UserError(
            f"no run is called {run!r}",
            hint=did_you_mean(run, names) or f"runs: {', '.join(names[:10])}",
        )
    units = [u for u in plan.units if u.run == run]
    if as_json:
        print_json(
            {
                u.id: [
                    {"path": s.path, "value": s.value, "source": s.source}
                    for s in plan.generated[u.id].settings
                ]
                for u in units
            }
        )
        return
    for unit in units:
        settings = plan.generated[unit.id].settings
        if not settings:
            click.echo(f"{unit.id}: no settings reported by its tool")
            continue
        table(
            f"{unit.id}",
            ["setting", "value", "from"],
            ([s.path, s.value, s.source] for s in settings),
        )
