"""``cruijff plan``: the runs and jobs an experiment would create, without writing anything."""

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
    """Show the runs and jobs EXPERIMENT would create, with totals. Writes nothing."""
    from cruijff import orchestrator
    from cruijff.cli.render import params_text, print_json, table
    from cruijff.design import runs_table

    plan = orchestrator.design(app.manager, experiment, scheduler=scheduler)
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
