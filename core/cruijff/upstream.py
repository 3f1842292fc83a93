"""What a tool finds among the units selected before its own (``cruijff_select``'s
``upstream``): who makes the files it reads, so that its jobs depend on theirs.

Generation -> training -> evaluation dependencies come from here: a unit that reads a dataset
a generator writes depends on that generator's unit and sizes its work from the dataset's
declared splits, since the file does not exist until that job has run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from cruijff.records import NAME_PATTERN, Artifact, ArtifactKind, Unit


def dataset_maker(upstream: Iterable[Unit], path: Path) -> tuple[Unit, Artifact] | None:
    """The unit that produces the dataset at ``path``, and that artifact; None when no unit
    does (the file is the user's own)."""
    made = _datasets(upstream)
    return made.get(Path(path).absolute()) if made else None


_last: list = [None, {}]
"""The upstream units last indexed, and their index: every unit of a tool asks of the same
units, so indexing them once keeps a plan of N units from costing N²."""


def _datasets(upstream: Iterable[Unit]) -> dict[Path, tuple[Unit, Artifact]]:
    if _last[0] is upstream and isinstance(upstream, tuple):
        return _last[1]
    index: dict[Path, tuple[Unit, Artifact]] = {}
    for unit in upstream:
        for artifact in unit.produces:
            if artifact.kind == ArtifactKind.DATASET:
                index.setdefault(Path(artifact.path).absolute(), (unit, artifact))
    _last[:] = [upstream, index]
    return index


CONDITION_KINDS = ("train", "test")


def condition_file(folder: Path, condition: str, kind: str) -> list[Path]:
    """The files of a generated condition in ``folder``, sorted: ``{condition}_{kind}_*.json``
    (cruijff_kit's convert-tabular-to-text skill adds a hash of its settings), ``kind``
    ``train`` or ``test``. Matched on the folder's listing by prefix and suffix, never as a
    glob pattern, so no condition name reaches outside ``folder``; a name that is not a plain
    name (the core's rule for condition names) matches nothing."""
    if kind not in CONDITION_KINDS:
        raise ValueError(f"kind must be one of {', '.join(CONDITION_KINDS)}, not {kind!r}")
    if not NAME_PATTERN.fullmatch(condition):
        return []
    prefix = f"{condition}_{kind}_"
    try:
        names = [entry.name for entry in os.scandir(folder) if entry.is_file()]
    except OSError:
        return []
    return sorted(
        Path(folder) / name
        for name in names
        if name.startswith(prefix) and name.endswith(".json") and len(name) > len(prefix) + 4
    )
