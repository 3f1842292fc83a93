"""Scaffold: write a plan's files into the experiment directory, atomically and idempotently.

A manifest (``.cruijff/scaffold.json``) remembers the hash of every file cruijff wrote, so a
second scaffold writes nothing, a changed experiment rewrites only what changed, and a file the
user edited since is left alone (and reported) unless ``force`` is given.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import attrs

from cruijff.fsutil import read_json, write_atomic, write_json
from cruijff.manager import PluginManager
from cruijff.records import Plan
from cruijff.state import ExperimentState


@attrs.frozen(kw_only=True)
class ScaffoldResult:
    """What scaffolding did: files written, files already up to date, and files kept because
    the user edited them (or they were not cruijff's) and ``force`` was not given."""

    written: tuple[Path, ...] = ()
    unchanged: tuple[Path, ...] = ()
    kept: tuple[Path, ...] = ()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def scaffold(
    manager: PluginManager, plan: Plan, *, force: bool = False, dry_run: bool = False
) -> ScaffoldResult:
    """Write the plan's files; with ``dry_run``, only say what would happen."""
    experiment = plan.experiment
    manifest_path = experiment.state_dir / "scaffold.json"
    manifest: dict[str, str] = read_json(manifest_path) or {}
    written, unchanged, kept = [], [], []
    if not dry_run:
        manager.before_scaffold(plan)
    state = ExperimentState(experiment.state_dir)
    try:
        for unit, spec in ((u, f) for u in plan.units for f in plan.generated[u.id].files):
            key = str(spec.path.relative_to(experiment.directory))
            new = _digest(spec.content)
            try:
                current = _digest(spec.path.read_text(encoding="utf-8"))
            except (FileNotFoundError, UnicodeDecodeError):
                current = None
            if current == new:
                unchanged.append(spec.path)
                if manifest.get(key) != new and not dry_run:
                    manifest[key] = new
                continue
            if current is not None and manifest.get(key) != current and not force:
                kept.append(spec.path)  # edited by the user since cruijff wrote it
                continue
            if not dry_run:
                if current is not None:
                    outdate(state, unit.id, spec.path)  # before the file changes: crash-safe
                write_atomic(spec.path, spec.content, executable=spec.executable)
                manifest[key] = new
            written.append(spec.path)
        if not dry_run and (written or manifest != (read_json(manifest_path) or {})):
            write_json(manifest_path, manifest)
            if written:
                ExperimentState(experiment.state_dir).log(
                    "scaffolded", written=[str(p) for p in written], kept=[str(p) for p in kept]
                )
    except BaseException as error:
        if not dry_run:
            manager.on_scaffold_error(plan, error)
        raise
    result = ScaffoldResult(written=tuple(written), unchanged=tuple(unchanged), kept=tuple(kept))
    if not dry_run:
        manager.after_scaffold(plan, result.written)
    return result


def outdate(state: ExperimentState, unit_id: str, path: Path) -> None:
    """A unit whose file changes no longer stands as done: ``cruijff run`` runs it again."""
    record = state.record(unit_id)
    if record is not None and record.done:
        cause = f"outdated: {path.name} changed since it ran"
        state.save(attrs.evolve(record, outdated=True, cause=cause))
        state.log("outdated", unit=unit_id, file=str(path))
