"""Retrying a training job that ran out of memory: half the micro-batch, twice the gradient
accumulation, so each optimizer step still sees as many rows.

The job passes ``sft.per_device_train_batch_size=N sft.gradient_accumulation_steps=M`` on as
overrides of its ``trl_config.yaml``; a second retry halves the first retry's values. A job
that ran out of time resumes from its last checkpoint by itself, given more time by the core.
"""

from __future__ import annotations

import attrs

from cruijff.records import JobSpec, JobState, JobStatus, Unit
from cruijff_trl.units import TrainingPlan, step_size

BATCH, ACCUMULATION = "sft.per_device_train_batch_size", "sft.gradient_accumulation_steps"


def smaller_batch(unit: Unit, job: JobSpec, status: JobStatus) -> JobSpec | None:
    """``job`` with half its batch after an out-of-memory failure; None otherwise (or at 1)."""
    if status.state is not JobState.OUT_OF_MEMORY:
        return None
    plan: TrainingPlan = unit.payload
    batch, steps = step_size(plan.config)
    batch = int(_override(job.argv, BATCH) or batch)
    if batch <= 1:
        return None
    steps = int(_override(job.argv, ACCUMULATION) or steps)
    kept = [a for a in job.argv if not a.startswith((f"{BATCH}=", f"{ACCUMULATION}="))]
    return attrs.evolve(job, argv=(*kept, f"{BATCH}={batch // 2}", f"{ACCUMULATION}={steps * 2}"))


def _override(argv: tuple[str, ...], name: str) -> str | None:
    """The last ``name=value`` override in ``argv``'s value, or None."""
    values = [a.split("=", 1)[1] for a in argv if a.startswith(f"{name}=")]
    return values[-1] if values else None
