"""Validate: a training unit is complete when every epoch left a whole merged model (or a whole
adapter where the run keeps adapters only) and the job wrote its loss per step; else the cause,
from its log."""

from __future__ import annotations

import re
from pathlib import Path

from cruijff.records import ArtifactKind, JobState, JobStatus, Unit, Validation
from cruijff_trl import outputs

OOM = re.compile(r"CUDA out of memory|OutOfMemoryError|out of memory|Killed", re.IGNORECASE)
ERROR_LINE = re.compile(r"^[\w.]+(Error|Exception)\b")


def failure_cause(log: Path, exit_code: int | None) -> str:
    """Why a training job failed, from the end of its log."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[-200:]
    except OSError:
        lines = []
    if any(OOM.search(line) for line in lines):
        return "out of memory"
    errors = [line.strip() for line in lines if ERROR_LINE.match(line)]
    detail = errors[-1] if errors else (lines[-1].strip() if lines else "no output")
    code = f"exit code {exit_code}: " if exit_code is not None else ""
    return f"{code}{detail[:300]}"


def validate(unit: Unit, status: JobStatus | None) -> Validation:
    """The verdict on a training unit, with its step count and final loss when complete."""
    if status is not None and status.state is not JobState.SUCCEEDED:
        cause = failure_cause(unit.directory / outputs.LOG, status.exit_code)
        return Validation(unit_id=unit.id, ok=False, cause=cause)
    models = [a for a in unit.produces if a.kind == ArtifactKind.HF_MODEL]
    adapters = [a for a in unit.produces if a.kind == ArtifactKind.LORA_ADAPTER]
    for artifact in models or adapters:
        if not outputs.complete_epoch(unit.directory, artifact.epoch, adapters_only=not models):
            return Validation(unit_id=unit.id, ok=False, cause=f"no whole model in {artifact.path}")
    rows = outputs.read_metrics(unit.directory)
    losses = [row for row in rows if row.get("loss")]
    if not losses:
        return Validation(unit_id=unit.id, ok=False, cause="no training metrics")
    metrics = {
        "steps": len(losses),  # logged steps
        "final_loss": float(losses[-1]["loss"]),
        "epochs": len(models or adapters),
    }
    validated = [row for row in rows if row.get("val_loss")]
    if validated:
        metrics["final_val_loss"] = float(validated[-1]["val_loss"])
    return Validation(
        unit_id=unit.id, ok=True, metrics=metrics, artifacts=unit.produces, summary=("final_loss",)
    )
