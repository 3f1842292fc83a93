"""``cruijff calibrate``: run a short job of one run and keep what it used for estimates."""

from __future__ import annotations

from pathlib import Path

import click

from cruijff.cli import App, experiment_argument, json_option, scheduler_option


@click.command()
@experiment_argument
@click.argument("run", required=False)
@click.option("--detach", is_flag=True, help="Submit and return; the next calibrate collects it.")
@scheduler_option
@json_option
@click.pass_obj
def command(
    app: App,
    experiment: Path,
    run: str | None,
    detach: bool,
    scheduler: str | None,
    as_json: bool,
) -> None:
    """Measure RUN (default: the first fine-tuned run) before committing to a sweep.

    Runs a few optimizer steps of RUN's training job at its real micro-batch and sequence
    length, on the scheduler EXPERIMENT uses, and records its speed and peak memory in the
    index of measurements ($CRUIJFF_DATA_DIR, else $XDG_DATA_HOME/cruijff). Every later
    `cruijff plan` of a job like it (same model, method, micro-batch, sequence length and
    hardware) estimates from that measurement. Waits for the job unless --detach.
    """
    from cruijff import orchestrator
    from cruijff.calibrate import calibrate
    from cruijff.cli.render import print_json
    from cruijff.errors import UserError

    plan = orchestrator.design(app.manager, experiment, scheduler=scheduler)

    def progress(text: str) -> None:
        if not as_json:
            click.echo(f"calibrate: {text}", err=True)

    from cruijff.state import ExperimentState

    # the experiment's lock: a calibration serves the local queue as a driving `run` does
    with ExperimentState(plan.experiment.state_dir).driving():
        done = calibrate(app.manager, plan, run, detach=detach, progress=progress)
    measured = dict(done.measurement.measured) if done.measurement else {}
    if as_json:
        print_json(
            {
                "unit": done.unit,
                "state": done.status.state.value,
                "cause": done.status.cause,
                "measured": measured,
                "predicted": dict(done.measurement.predicted) if done.measurement else None,
                "recorded": str(done.recorded) if done.recorded else None,
                "directory": str(done.directory),
            }
        )
    if not done.status.state.finished:
        if not as_json:
            click.echo(
                f"{done.unit}: calibration {done.status.state.value.lower()}; "
                "run `cruijff calibrate` again to collect it"
            )
        return
    if done.measurement is None:
        failed = done.status.state.value != "SUCCEEDED"
        raise UserError(
            f"the calibration of {done.unit} "
            + ("failed: " if failed else "measured nothing: ")
            + done.status.cause,
            hint=f"its log and configs are in {done.directory}",
        )
    if as_json:
        return
    click.echo(_summary(done, measured))


def _summary(done, measured: dict) -> str:  # type: ignore[no-untyped-def]
    predicted = done.measurement.predicted
    parts = [f"{done.unit}: calibrated"]
    if measured.get("steps") and measured.get("wall_s"):
        parts.append(f"{measured['steps']} steps in {measured['wall_s']:.0f} s")
    if measured.get("memory_gb") is not None:
        memory = predicted.get("memory_gb")
        said = f" (predicted {memory[1]:.3g}, {memory[0]:.3g} to {memory[2]:.3g})" if memory else ""
        parts.append(f"peak memory {measured['memory_gb']:.3g} GiB{said}")
    return ", ".join(parts) + f"\nrecorded in {done.recorded}; `cruijff plan` now estimates from it"
