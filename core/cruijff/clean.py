"""Freeing disk without losing results: the weights ``cruijff clean`` removes, and its memory.

``<state_dir>/cleaned.json``, replaced atomically after each clean::

    {"runs/rank8/epoch_0": {"run": "rank8", "epoch": 0, "kind": "hf-model", "unit":
     "rank8.train", "bytes": 2471006208, "files": ["model.safetensors"], "time": "..."}, ...}

Only weight files go (:data:`WEIGHTS`), from the model and adapter folders that finished
training jobs produced; configs, tokenizers, metrics, logs and every evaluation result stay,
and so do the job records: ``status`` and the analysis read what they read before, and a later
``run`` skips the succeeded training as before. A job that still needs cleaned weights (an
evaluation added since, or one not run yet under ``--all-weights``) is refused before anything
is submitted, naming the run and epoch to train again. A folder whose weights are back (trained
again) is no longer cleaned, whatever the file says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from cruijff.errors import UserError
from cruijff.fsutil import read_json, write_json
from cruijff.records import Artifact, ArtifactKind, Plan, Unit
from cruijff.state import JobRecord, now

NAME = "cleaned.json"
WEIGHTS = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt")
"""The suffixes of the files that hold weights (the rest of a model folder is small)."""
KINDS = {
    "checkpoints": (ArtifactKind.HF_MODEL,),
    "all-weights": (ArtifactKind.HF_MODEL, ArtifactKind.LORA_ADAPTER),
}
"""What each mode removes: ``checkpoints`` the merged models; ``all-weights`` adapters too."""


@attrs.frozen(kw_only=True)
class Removal:
    """The weights of one artifact folder that a clean removes (or would)."""

    unit: str
    run: str
    epoch: int | None
    kind: str
    folder: Path
    files: tuple[Path, ...]
    bytes: int


def weight_files(folder: Path) -> list[Path]:
    """The weight files directly in ``folder`` (none where it is gone)."""
    try:
        return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(WEIGHTS))
    except OSError:
        return []


def choose(
    plan: Plan, records: Mapping[str, JobRecord], mode: str, keep_last: bool = False
) -> list[Removal]:
    """What a clean in ``mode`` (``checkpoints`` or ``all-weights``) removes: the weights of the
    artifacts of succeeded jobs, of the kinds the mode names; for ``checkpoints`` only those no
    evaluation still needs (every job that consumes them has succeeded); with ``keep_last``,
    not the last epoch's of each run. Nothing of a job in flight."""
    consumers: dict[Path, list[str]] = {}
    for unit in plan.units:
        for artifact in unit.consumes:
            consumers.setdefault(Path(artifact.path), []).append(unit.id)

    def done(unit_id: str) -> bool:
        record = records.get(unit_id)
        return record is not None and record.done

    def busy(unit_id: str) -> bool:
        record = records.get(unit_id)
        return record is not None and record.in_flight

    chosen = []
    for unit in plan.units:
        if not done(unit.id):
            continue
        artifacts = [a for a in unit.produces if a.kind in KINDS[mode]]
        last = max((a.epoch for a in artifacts if a.epoch is not None), default=None)
        for artifact in artifacts:
            if keep_last and artifact.epoch == last:
                continue
            needed = consumers.get(Path(artifact.path), [])
            if any(busy(c) for c in needed):
                continue
            if mode == "checkpoints" and not all(done(c) for c in needed):
                continue
            files = weight_files(Path(artifact.path))
            if files:
                chosen.append(_removal(unit, artifact, files))
    return chosen


def _removal(unit: Unit, artifact: Artifact, files: list[Path]) -> Removal:
    return Removal(
        unit=unit.id,
        run=artifact.run or unit.run,
        epoch=artifact.epoch,
        kind=artifact.kind,
        folder=Path(artifact.path),
        files=tuple(files),
        bytes=sum(_size(p) for p in files),
    )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def remove(plan: Plan, removals: Iterable[Removal]) -> int:
    """Delete the files of ``removals``, remembering each folder in ``cleaned.json`` first
    (a clean killed part-way leaves folders noted whose weights are still there, which
    :func:`cleaned` does not count); returns the bytes freed."""
    removals = list(removals)
    experiment = plan.experiment
    path = experiment.state_dir / NAME
    known = _read(path)
    when = now()
    for item in removals:
        known[_key(experiment.directory, item.folder)] = {
            "unit": item.unit,
            "run": item.run,
            "epoch": item.epoch,
            "kind": item.kind,
            "bytes": item.bytes,
            "files": [p.name for p in item.files],
            "time": when,
        }
    if removals:
        experiment.state_dir.mkdir(parents=True, exist_ok=True)
        write_json(path, known)
    freed = 0
    for item in removals:
        for file in item.files:
            size = _size(file)
            try:
                file.unlink()
            except FileNotFoundError:
                continue
            freed += size
    return freed


def cleaned(plan: Plan) -> dict[Path, dict[str, Any]]:
    """The folders whose weights a clean removed and that have none again since, with what
    ``cleaned.json`` says of each."""
    experiment = plan.experiment
    found = {}
    for key, entry in _read(experiment.state_dir / NAME).items():
        folder = experiment.directory / key
        if isinstance(entry, dict) and not weight_files(folder):
            found[folder] = entry
    return found


def check_needed(plan: Plan, unit_ids: Iterable[str]) -> None:
    """Refuse to submit jobs that read weights a clean removed, naming what to retrain."""
    gone = cleaned(plan)
    if not gone:
        return
    units = {unit.id: unit for unit in plan.units}
    unit_ids = list(unit_ids)  # in submission order: the first job that needs them is named
    retraining = set(unit_ids)
    for unit_id in unit_ids:
        unit = units.get(unit_id)
        if unit is None:
            continue
        for artifact in unit.consumes:
            entry = gone.get(Path(artifact.path))
            if entry is None or entry.get("unit") in retraining:
                continue
            epoch = entry.get("epoch")
            raise UserError(
                f"{unit_id} needs the weights of run {entry.get('run')} epoch {epoch}, which "
                f"`cruijff clean` removed ({entry.get('time')})",
                hint=f"train them again: `cruijff run {plan.experiment.file} --only "
                f"{entry.get('unit')} --force`",
            )


def _key(root: Path, folder: Path) -> str:
    try:
        return str(folder.relative_to(root))
    except ValueError:
        return str(folder)


def _read(path: Path) -> dict[str, Any]:
    data = read_json(path, fix="remove it: it only notes what `cruijff clean` removed")
    return data if isinstance(data, dict) else {}
