"""A cell's files and whether it is complete, read without inspect-ai (stdlib only).

A cell folder holds ``eval_config.yaml`` (what to evaluate), ``logs/`` (inspect's native
``.eval`` logs), ``job.log`` and, once the job has read its log, ``results.json``: the log's
status, every scorer's metrics, the model, task, epoch, sample count and duration. The job
writes ``results.json`` from the log through ``inspect_ai.log``; validating a cell reads that
file only, because importing inspect-ai would take seconds in every ``cruijff`` command.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cruijff.records import Artifact, ArtifactKind, JobStatus, Unit, Validation

CONFIG = "eval_config.yaml"
RESULTS = "results.json"
LOGS = "logs"
JOB_LOG = "job.log"
SUCCESS = "success"
MODEL_FILES = (".safetensors", ".bin", ".json", ".model", ".jinja", ".txt")
"""The files of a model folder whose change means the model changed."""


def digest(text: str) -> str:
    """A short hash of a file's text."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def model_fingerprint(folder: Path, *more: Path) -> str | None:
    """A hash of a model folder's files (names, sizes, modification times), and of ``more``
    folders' (a LoRA adapter over its base); None when one is gone (a deleted checkpoint does
    not make its evaluation stale)."""
    entries = []
    try:
        for index, each in enumerate((folder, *more)):
            for path in sorted(each.iterdir()):
                if path.suffix in MODEL_FILES:
                    stat = path.stat()
                    entries.append((index, path.name, stat.st_size, stat.st_mtime_ns))
    except OSError:
        return None
    if not more:  # as before adapters: one folder's entries without its index
        entries = [entry[1:] for entry in entries]
    return digest(json.dumps(entries))


def read_results(directory: Path) -> dict[str, Any] | None:
    """The cell's ``results.json``, or None when it is missing or unreadable."""
    try:
        data = json.loads((directory / RESULTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def flat_metrics(results: dict[str, Any]) -> dict[str, Any]:
    """What a Validation reports: ``scorer/metric`` values plus the cell's description."""
    metrics = dict(results.get("metrics") or {})
    for key in ("run", "task", "vis_label", "epoch", "model", "samples", "duration_s"):
        metrics[key] = results.get(key)
    return metrics


def stale(directory: Path, results: dict[str, Any]) -> str:
    """Why finished results no longer stand, or "" when they do."""
    try:
        config = (directory / CONFIG).read_text(encoding="utf-8")
    except OSError:
        return f"{CONFIG} is missing"
    if results.get("config_digest") != digest(config):
        return f"the evaluation settings ({CONFIG}) changed since it ran"
    folders = [Path(results.get("model_path", ""))]
    if results.get("adapter_path"):
        folders.append(Path(results["adapter_path"]))
    now = model_fingerprint(*folders)
    if now is not None and results.get("model_fingerprint") not in (None, now):
        changed = results.get("adapter_path") or results.get("model_path")
        return f"the model in {changed} changed since it was evaluated"
    return ""


def fault(directory: Path, results: dict[str, Any]) -> str:
    """Why a cell's ``results.json`` does not stand for it, "" when it does: it must be a
    success whose log still exists, under the current settings and model."""
    if results.get("status") != SUCCESS:
        return results.get("cause") or f"the evaluation ended with status {results.get('status')}"
    log = directory / str(results.get("log", ""))
    if not results.get("log") or not log.is_file():
        return f"its log {log} is gone"
    return stale(directory, results)


def validate(unit: Unit, status: JobStatus | None) -> Validation:
    """Complete only when the job read a ``success`` log that still exists, under the current
    settings and model; otherwise why not (the log's own error where there is one)."""
    directory = unit.directory
    results = read_results(directory)
    if results is None:
        ran = status is not None and status.state.failed
        cause = (
            f"the evaluation stopped before it wrote {RESULTS} (see {directory / JOB_LOG})"
            if ran
            else f"not evaluated yet (no {RESULTS})"
        )
        return Validation(unit_id=unit.id, ok=False, cause=cause)
    why = fault(directory, results)
    if why:
        return Validation(unit_id=unit.id, ok=False, cause=why)
    log = directory / str(results["log"])
    return Validation(
        unit_id=unit.id,
        ok=True,
        metrics=flat_metrics(results),
        summary=tuple(results.get("summary") or ()),
        artifacts=(
            Artifact(
                kind=ArtifactKind.INSPECT_LOG, path=log, epoch=results.get("epoch"), run=unit.run
            ),
        ),
    )
