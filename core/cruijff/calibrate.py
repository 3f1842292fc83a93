"""``cruijff calibrate``: measure one run's job before committing to a sweep of it.

The tool that owns the run's unit gives a short version of it (``cruijff_calibration``: a few
optimizer steps at the real micro-batch and sequence length); it is generated into
``<state_dir>/calibrate/<unit>/``, run on the experiment's own scheduler as the job
``<unit>.calibrate``, and what it used (``cruijff_measure``, the scheduler's wall time and
peak memory) goes into the index of measurements with ``source`` calibration, next to the
estimate made for it. The next plan of any experiment with the same estimate key uses it.

Files: ``pending.json`` in that folder names the submitted job while it runs (a detached
calibration is collected by the next ``cruijff calibrate``); weights the short job wrote are
deleted once measured (a calibration of an 8B model must not leave 16 GB behind); its log
and configs stay for the user to read.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from cruijff.errors import UserError
from cruijff.estimates import Estimate, Range
from cruijff.fsutil import read_json, write_atomic, write_json
from cruijff.manager import PluginManager
from cruijff.measurements import Index, Measurement, of_job
from cruijff.records import JobHandle, JobState, JobStatus, Plan, Unit, thaw
from cruijff.runner import open_scheduler
from cruijff.suggest import did_you_mean

PENDING = "pending.json"
WEIGHTS = (".safetensors", ".bin", ".pt", ".pth")
POLL_S = 1.0


@attrs.frozen(kw_only=True)
class Calibration:
    """How a calibration ended: its unit, the job's status, the measurement recorded (None
    while it runs or when it failed) and where the index keeps it."""

    unit: str
    status: JobStatus
    measurement: Measurement | None = None
    recorded: Path | None = None
    directory: Path


def calibrate(
    manager: PluginManager,
    plan: Plan,
    run: str | None,
    *,
    detach: bool = False,
    progress: Callable[[str], None] = lambda text: None,
) -> Calibration:
    """Calibrate the first unit of ``run`` (the first run with a unit that can be calibrated,
    when None) whose tool can; collect a pending calibration of it first."""
    unit, short = _choose(manager, plan, run)
    experiment = plan.experiment
    directory = short.directory
    generated = manager.generate(experiment, short)
    if generated.job is None:
        raise UserError(f"{unit.id} has no job to calibrate")
    job = attrs.evolve(
        generated.job,
        unit_id=f"{unit.id}.calibrate",
        name=f"{experiment.name}.{unit.id}.calibrate",
        depends_on=(),
    )
    scheduler = open_scheduler(plan, manager, {})
    estimate = manager.estimate(experiment, short, job, plan.hardware, Index())
    pending, submitted = _pending(directory)
    if pending is None:
        if any(dep not in _done(plan) for dep in unit.depends_on):
            raise UserError(
                f"{unit.id} needs {', '.join(unit.depends_on)} to have run first",
                hint="run the experiment's data generation first (cruijff run), then calibrate",
            )
        _clear(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for spec in generated.files:
            spec.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(spec.path, spec.content, executable=spec.executable)
        (handle,) = scheduler.submit([job], {})
        # what it was predicted and keyed as now: the file may change before it is collected
        pending_estimate = _estimate_json(estimate)
        write_json(
            directory / PENDING,
            {"handle": attrs.asdict(handle), "unit": unit.id, "estimate": pending_estimate},
        )
        progress(f"submitted {job.unit_id} ({handle.scheduler} job {handle.id})")
    else:
        handle, estimate = pending, _estimate_of(submitted)
        progress(f"collecting {job.unit_id} ({handle.scheduler} job {handle.id})")
    status = _wait(scheduler, handle, detach, progress)
    if not status.state.finished:
        return Calibration(unit=unit.id, status=status, directory=directory)
    (directory / PENDING).unlink(missing_ok=True)
    validation = manager.validate(experiment, short, status)
    if status.state is not JobState.SUCCEEDED or not validation.ok:
        cause = validation.cause or status.cause or status.state.value
        _drop_weights(directory)
        return Calibration(
            unit=unit.id,
            status=attrs.evolve(status, state=JobState.FAILED, cause=cause),
            directory=directory,
        )
    measurement = of_job(
        manager,
        experiment,
        short,
        status,
        estimate,
        gpus=job.resources.gpus,
        source="calibration",
    )
    recorded = Index().record(measurement) if measurement is not None else None
    _drop_weights(directory)
    if measurement is None:
        cause = f"{short.tool} could not estimate {unit.id}, so there is nothing to compare with"
        status = attrs.evolve(status, cause=cause)
    return Calibration(
        unit=unit.id,
        status=status,
        measurement=measurement,
        recorded=recorded,
        directory=directory,
    )


def _choose(manager: PluginManager, plan: Plan, run: str | None) -> tuple[Unit, Unit]:
    names = [r.name for r in plan.experiment.runs]
    if run is not None and run not in names:
        raise UserError(
            f"no run is called {run!r}",
            hint=did_you_mean(run, names) or f"runs: {', '.join(names[:10])}",
        )
    root = plan.experiment.state_dir / "calibrate"
    for unit in plan.units:
        if (run is not None and unit.run != run) or plan.generated[unit.id].job is None:
            continue
        short = manager.calibration(plan.experiment, unit, root / unit.id)
        if short is not None:
            return unit, short
    where = f"run {run!r}" if run else "this experiment"
    raise UserError(
        f"no unit of {where} can be calibrated",
        hint="calibration measures training jobs; pick a fine-tuned run",
    )


def _done(plan: Plan) -> set[str]:
    from cruijff.state import ExperimentState

    records = ExperimentState(plan.experiment.state_dir).records()
    return {unit for unit, record in records.items() if record.done}


def _pending(directory: Path) -> tuple[JobHandle | None, dict]:
    """The job a detached calibration submitted, and its estimate as it was then."""
    try:
        data = read_json(directory / PENDING)
        return JobHandle(**data["handle"]), dict(data.get("estimate") or {})
    except (OSError, ValueError, KeyError, TypeError, UserError):
        return None, {}


def _estimate_json(estimate: Estimate | None) -> dict | None:
    if estimate is None:
        return None
    return {**estimate.to_json(), "key": thaw(estimate.key)}


def _estimate_of(data: dict) -> Estimate | None:
    if not data or not data.get("key"):
        return None
    memory, hours = data.get("memory_gb"), data.get("hours")
    return Estimate(
        memory_gb=Range(*memory) if memory else None,
        hours=Range(*hours) if hours else None,
        source=data.get("source", "formula"),
        key=data["key"],
    )


def _wait(
    scheduler: Any, handle: JobHandle, detach: bool, progress: Callable[[str], None]
) -> JobStatus:
    """Poll until the job ends (or once, detached), keeping the local queue served."""
    started, last = time.monotonic(), None
    while True:
        scheduler.resume([handle])
        status = scheduler.poll([handle])[handle]
        if status.state.finished or detach:
            return status
        if status.state != last:
            progress(f"{status.state.value.lower()}")
            last = status.state
        time.sleep(POLL_S if time.monotonic() - started > 5 else POLL_S / 4)


def _clear(directory: Path) -> None:
    if directory.exists():
        shutil.rmtree(directory)


def _drop_weights(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file() and path.suffix in WEIGHTS:
            path.unlink()
