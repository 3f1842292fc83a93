"""``cruijff plan``: the runs and jobs an experiment would create, without writing anything."""

from __future__ import annotations

from pathlib import Path

import click

from cruijff.cli import App, experiment_argument, json_option, scheduler_option
from cruijff.gcpause import paused_gc

ROWS = 30
"""Rows a table of runs or jobs lists unless --all."""


@click.command()
@experiment_argument
@click.option("--explain", metavar="RUN", help="Show every setting of RUN and where it came from.")
@click.option("--all", "show_all", is_flag=True, help=f"List every run and job (else {ROWS} each).")
@scheduler_option
@json_option
@click.pass_obj
@paused_gc(to_the_end=True)  # a short read of many records: see cruijff.gcpause
def command(
    app: App,
    experiment: Path,
    explain: str | None,
    show_all: bool,
    scheduler: str | None,
    as_json: bool,
) -> None:
    """Show the runs and jobs EXPERIMENT would create, with estimates and totals. Writes
    nothing.

    The tables list the first runs and jobs (--all: every one; --json: everything, for
    scripts). With --explain RUN, show each final setting of RUN's units with its source
    (recipe, default, controls, run...).
    """
    from cruijff import orchestrator
    from cruijff.cli.render import params_text, print_json, print_problems, table

    plan = orchestrator.design(app.manager, experiment, scheduler=scheduler)
    if explain is not None:
        _explain(plan, explain, as_json)
        return
    limit = None if show_all else ROWS
    document = planned(plan, None if as_json else limit)
    if as_json:
        print_json(document)
        return
    print_problems(plan.warnings)
    runs, jobs, totals = document["runs"], document["jobs"], document["totals"]
    table(
        f"Runs of {plan.experiment.name}" + _shown(runs, limit),
        ["run", "type", "model", "parameters", "jobs"],
        (
            [r["name"], r["type"], r["model"], params_text(r["parameters"]), r["jobs"]]
            for r in runs[:limit]
        ),
    )
    table(
        f"Jobs (estimates for {document['hardware']['name']})" + _shown(plan.jobs, limit),
        ["unit", "after", "gpus", "asks", "memory (est.)", "time (est.)", "from"],
        (
            [
                j["unit"],
                ", ".join([*j["depends_on"], *(f"{u} (ended)" for u in j["starts_after"])]) or "-",
                j["gpus"],
                _asks(j),
                _range(j["estimate"], "memory_gb", "GiB"),
                _hours(j["estimate"]),
                (j["estimate"] or {}).get("source", "-"),
            ]
            for j in jobs[:limit]
        ),
    )
    for name, rows in document["notes"].items():
        if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
            columns = list(dict.fromkeys(c for r in rows for c in r))
            table(
                name.replace("_", " ").capitalize(),
                columns,
                ([_cell(r.get(c)) for c in columns] for r in rows),
            )
    learned = _learned(plan)
    if learned:
        click.echo(learned)
    click.echo(_totals_line(plan, totals))


def _shown(rows: list, limit: int | None) -> str:
    """A table title's note when it lists only the first rows (a person reads a sample and the
    totals; --all and --json give every row)."""
    if limit is None or len(rows) <= limit:
        return ""
    return f": the first {limit} of {len(rows):,} (--all lists every one)"


def planned(plan, rows: int | None = None) -> dict:  # type: ignore[no-untyped-def]
    """What ``cruijff plan --json`` prints: runs, jobs with their estimates, totals, the
    reviews' warnings and notes; with ``rows``, only the first jobs (the totals count all)."""
    from cruijff.design import runs_table
    from cruijff.estimates import totals
    from cruijff.records import thaw

    estimates = plan.estimates
    jobs = [
        {
            "unit": job.unit_id,
            "name": job.name,
            "depends_on": list(job.depends_on),
            "starts_after": list(job.after),
            "gpus": job.resources.gpus,
            "cpus": job.resources.cpus,
            "mem_mb": job.resources.mem_mb,
            "time_s": job.resources.time_s,
            "workdir": str(job.workdir),
            "estimate": estimate.to_json() if (estimate := estimates.get(job.unit_id)) else None,
        }
        for job in plan.jobs[:rows]
    ]
    runs = runs_table(plan)
    hardware = plan.hardware
    return {
        "experiment": plan.experiment.name,
        "directory": str(plan.experiment.directory),
        "scheduler": plan.experiment.scheduler.name,
        "hardware": {"name": hardware.name, **hardware.describe()} if hardware else None,
        "runs": runs,
        "jobs": jobs,
        "totals": totals(
            ((job.resources.gpus, estimates.get(job.unit_id)) for job in plan.jobs), len(runs)
        ),
        "warnings": list(plan.warnings),
        "notes": thaw(plan.notes),
    }


def _cell(value: object) -> str:
    """A note's value in a table cell: lists shortened to their first two and a count."""
    if value is None or value == []:
        return "-"
    if isinstance(value, list):
        shown = ", ".join(str(v) for v in value[:2])
        return shown + (f" (+{len(value) - 2})" if len(value) > 2 else "")
    return str(value)


def _asks(job: dict) -> str:
    memory = f"{job['mem_mb'] / 1024:.3g} GB" if job["mem_mb"] else "-"
    limit = _duration(job["time_s"] / 3600) if job["time_s"] else "-"
    return f"{memory}, {limit}"


def _range(estimate: dict | None, key: str, unit: str) -> str:
    value = (estimate or {}).get(key)
    if not value:
        return "-"
    low, expected, high = value
    return f"{expected:.3g} {unit} ({low:.3g} to {high:.3g})"


def _hours(estimate: dict | None) -> str:
    value = (estimate or {}).get("hours")
    if not value:
        return "-"
    return " to ".join(_duration(v) for v in (value[0], value[2])) + f" ({_duration(value[1])})"


def _duration(hours: float) -> str:
    seconds = hours * 3600
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{hours:.1f} h"


def _learned(plan) -> str:  # type: ignore[no-untyped-def]
    """Which estimates came from measurements, and how far off past predictions were."""
    estimates = [e for e in plan.estimates.values() if e is not None]
    measured = [e for e in estimates if e.source in ("measured", "calibration")]
    if not measured:
        return ""
    ratios: dict[str, list[float]] = {"hours": [], "memory_gb": []}
    for estimate in measured:
        for figure, error in (estimate.facts.get("past_error") or {}).items():
            if error:
                ratios.setdefault(figure, []).extend(error["ratio_range"])
    said = [
        f"{name} {min(values):.2g}× to {max(values):.2g}×"
        for figure, name in (("hours", "time"), ("memory_gb", "memory"))
        if (values := ratios.get(figure))
    ]
    text = f"{len(measured)} of {len(plan.jobs)} jobs estimated from earlier measurements"
    return text + (f" (measured ÷ predicted then: {', '.join(said)})" if said else "")


def _totals_line(plan, totals: dict) -> str:  # type: ignore[no-untyped-def]
    low, expected, high = totals["gpu_hours"]
    disk = totals["disk_gb"]["total"]
    parts = [
        f"{totals['runs']} runs, {totals['jobs']} jobs",
        f"{totals['eval_samples']:,} evaluation samples",
    ]
    if expected:
        parts.append(f"{expected:.3g} GPU-hours ({low:.3g} to {high:.3g})")
    else:
        low, expected, high = totals["job_hours"]
        parts.append(f"{_duration(expected)} of jobs ({_duration(low)} to {_duration(high)})")
    parts.append(f"{disk[1]:.3g} GB on disk ({disk[0]:.3g} to {disk[2]:.3g})")
    unknown = totals["unknown"]["hours"]
    if unknown:
        parts.append(f"{unknown} jobs without a time estimate")
    return (
        ", ".join(parts)
        + f"; scheduler {plan.experiment.scheduler.name}, in {plan.experiment.directory}"
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
