"""Scaffold: write a plan's files into the experiment directory, atomically and idempotently.

A manifest (``.cruijff/scaffold.json``) remembers the hash of every file cruijff wrote, so a
second scaffold writes nothing, a changed experiment rewrites only what changed, and a file the
user edited since is left alone (and reported) unless ``force`` is given. The scheduler's files
(``extra``: SLURM's batch scripts and the links to them) go through the same machinery.

Each file is replaced by a rename, so a killed scaffold leaves it old or new. The files are
made again from the experiment file whenever needed, so they are not flushed to the disk one by
one (the manifest is): a power cut may leave one empty, and an empty file where cruijff wrote
one is written again, never taken for an edit.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

import attrs

from cruijff import jobindex
from cruijff.errors import UserError
from cruijff.fsutil import read_json, write_atomic, write_json
from cruijff.manager import PluginManager
from cruijff.records import FileSpec, Plan
from cruijff.scheduler import LinkSpec
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


_EMPTY = _digest("")


def _relative_target(spec: LinkSpec) -> str:
    return os.path.relpath(spec.target, spec.path.parent)


def _wanted(spec: FileSpec | LinkSpec) -> str:
    if isinstance(spec, LinkSpec):
        return _digest("symlink\0" + _relative_target(spec))
    return _digest(spec.content)


def _current(spec: FileSpec | LinkSpec) -> str | None:
    """The digest of what is at the spec's path now (None: nothing readable). A link's is
    its target's name; a file a link should be is its text, so it never matches the link."""
    if isinstance(spec, LinkSpec) and spec.path.is_symlink():
        return _digest("symlink\0" + os.readlink(spec.path))
    try:
        return _digest(spec.path.read_text(encoding="utf-8"))
    except (FileNotFoundError, UnicodeDecodeError, IsADirectoryError):
        return None


def _write(spec: FileSpec | LinkSpec) -> None:
    if not isinstance(spec, LinkSpec):
        write_atomic(spec.path, spec.content, executable=spec.executable, durable=False)
        return
    # A link made beside it and renamed over it: at every moment the old or the new one.
    spec.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = spec.path.parent / f".{spec.path.name}.{secrets.token_hex(4)}.tmp"
    os.symlink(_relative_target(spec), tmp)
    try:
        os.replace(tmp, spec.path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def scaffold(
    manager: PluginManager,
    plan: Plan,
    *,
    force: bool = False,
    dry_run: bool = False,
    extra: Sequence[FileSpec | LinkSpec] = (),
) -> ScaffoldResult:
    """Write the plan's files, and ``extra`` (the scheduler's: ``scheduler_files``); with
    ``dry_run``, only say what would happen."""
    experiment = plan.experiment
    manifest_path = experiment.state_dir / "scaffold.json"
    manifest: dict[str, str] = read_json(manifest_path) or {}
    written, unchanged, kept = [], [], []
    # The scheduler's files belong to no unit: a batch script changes with the cluster profile
    # (a time limit, a partition), which leaves a finished unit's outputs as good as they were.
    specs: list[tuple[str | None, FileSpec | LinkSpec]] = [
        (u.id, f) for u in plan.units for f in plan.generated[u.id].files
    ]
    for spec in extra:
        normal = os.path.normpath(spec.path)  # lexical, as design checks the tools' files
        if not normal.startswith(str(experiment.directory) + os.sep):
            raise UserError(
                f"the scheduler wants to write {spec.path}, outside the experiment directory "
                f"{experiment.directory}",
                hint="a bug in the scheduler plugin: report it to its authors",
            )
        specs.append((None, spec))
    if not dry_run:
        manager.before_scaffold(plan)
    state = ExperimentState(experiment.state_dir)
    try:
        for unit_id, spec in specs:
            key = str(spec.path.relative_to(experiment.directory))
            new = _wanted(spec)
            current = _current(spec)
            if current == new:
                unchanged.append(spec.path)
                if manifest.get(key) != new and not dry_run:
                    manifest[key] = new
                continue
            damaged = current == _EMPTY and key in manifest  # what a power cut can leave
            if current is not None and manifest.get(key) != current and not force and not damaged:
                kept.append(spec.path)  # edited by the user since cruijff wrote it
                continue
            if not dry_run:
                restored = damaged and manifest.get(key) == new  # what the unit ran with
                if current is not None and unit_id is not None and not restored:
                    outdate(state, unit_id, spec.path)  # before the file changes: crash-safe
                _write(spec)
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
        jobindex.write(plan)  # what `cruijff status` reads without planning again
        manager.after_scaffold(plan, result.written)
    return result


def outdate(state: ExperimentState, unit_id: str, path: Path) -> None:
    """A unit whose file changes no longer stands as done: ``cruijff run`` runs it again."""
    record = state.record(unit_id)
    if record is not None and record.done:
        cause = f"outdated: {path.name} changed since it ran"
        state.save(attrs.evolve(record, outdated=True, cause=cause))
        state.log("outdated", unit=unit_id, file=str(path))
