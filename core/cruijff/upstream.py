"""What a tool finds among the units selected before its own (``cruijff_select``'s
``upstream``): who makes the files it reads, so that its jobs depend on theirs.

Generation -> training -> evaluation dependencies come from here: a unit that reads a dataset
a generator writes depends on that generator's unit and sizes its work from the dataset's
declared splits, since the file does not exist until that job has run.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cruijff.records import Artifact, ArtifactKind, Unit


def dataset_maker(upstream: Iterable[Unit], path: Path) -> tuple[Unit, Artifact] | None:
    """The unit that produces the dataset at ``path``, and that artifact; None when no unit
    does (the file is the user's own)."""
    target = Path(path).absolute()
    for unit in upstream:
        for artifact in unit.produces:
            if artifact.kind == ArtifactKind.DATASET and Path(artifact.path).absolute() == target:
                return unit, artifact
    return None
