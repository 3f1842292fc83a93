"""Retrying a training job that ran out of memory: half the batch, twice the gradient
accumulation, so each optimizer step still sees as many rows.

The job passes ``batch_size=N gradient_accumulation_steps=M`` to torchtune as overrides of its
``finetune.yaml``; a second retry halves the first retry's values, not the config's.
"""

from __future__ import annotations

import attrs

from cruijff.records import JobSpec, JobState, JobStatus, Unit
from cruijff_torchtune import outputs
from cruijff_torchtune.units import TrainingPlan

OVERRIDES = ("batch_size", "gradient_accumulation_steps")


def smaller_batch(unit: Unit, job: JobSpec, status: JobStatus) -> JobSpec | None:
    """``job`` with half its batch after an out-of-memory failure; None otherwise (or at 1)."""
    if status.state is not JobState.OUT_OF_MEMORY:
        return None
    plan: TrainingPlan = unit.payload
    batch, steps = outputs.step_size(plan.config)
    batch = int(_override(job.argv, "batch_size") or batch)
    if batch <= 1:
        return None
    steps = int(_override(job.argv, "gradient_accumulation_steps") or steps)
    kept = [a for a in job.argv if not a.startswith(tuple(f"{name}=" for name in OVERRIDES))]
    return attrs.evolve(
        job, argv=(*kept, f"batch_size={batch // 2}", f"gradient_accumulation_steps={steps * 2}")
    )


def _override(argv: tuple[str, ...], name: str) -> str | None:
    """The last ``name=value`` override in ``argv``'s value, or None."""
    values = [a.split("=", 1)[1] for a in argv if a.startswith(f"{name}=")]
    return values[-1] if values else None
