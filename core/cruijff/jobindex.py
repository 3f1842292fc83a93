"""The jobs of a scaffolded experiment, kept so that ``cruijff status`` need not plan again.

``<state_dir>/jobs.json``, written atomically by every scaffold (and so every ``cruijff run``)::

    {"file": "/abs/experiment.yaml", "digest": "<sha256 of its bytes>", "scheduler": "slurm",
     "jobs": [["rank8.train", "rank8", "runs/rank8/train.log"], ...]}

Every job of the plan in plan order, with its run and its log. ``cruijff status`` reads it
while the experiment file is byte for byte the one it was made from and the scheduler the
same; otherwise (a file edited since, an index from another cruijff, none yet) it plans again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import attrs

from cruijff.fsutil import UnreadableFile, read_json, write_json
from cruijff.records import Plan

NAME = "jobs.json"


@attrs.frozen
class IndexedJob:
    """One job of the index: its unit, its run and its log (as text: status reads twenty
    thousand and shows them, never opens one)."""

    unit_id: str
    run: str
    log: str


def jobs_of(plan: Plan) -> list[IndexedJob]:
    """The plan's jobs as the index keeps them, in plan order."""
    return [
        IndexedJob(job.unit_id, unit.run, str(job.log))
        for unit in plan.units
        if (job := plan.generated[unit.id].job) is not None
    ]


def digest(file: Path) -> str:
    return hashlib.sha256(Path(file).read_bytes()).hexdigest()


def write(plan: Plan) -> None:
    """Keep the plan's jobs for ``status`` (unchanged files are not rewritten)."""
    experiment = plan.experiment
    path = experiment.state_dir / NAME
    data: dict[str, Any] = {
        "file": str(experiment.file),
        "digest": digest(experiment.file),
        "scheduler": experiment.scheduler.name,
        "jobs": [[job.unit_id, job.run, job.log] for job in jobs_of(plan)],
    }
    try:
        if read_json(path) == data:
            return
    except (OSError, UnreadableFile):  # replaced below
        pass
    write_json(path, data)


def read(state_dir: Path, file: Path, scheduler: str) -> list[IndexedJob] | None:
    """The indexed jobs, or None unless the index stands for ``file`` as it is now and for
    ``scheduler``."""
    try:
        data = read_json(state_dir / NAME)
        if not data or data.get("file") != str(file) or data.get("scheduler") != scheduler:
            return None
        if data.get("digest") != digest(file):
            return None
        return [IndexedJob(unit, run, log) for unit, run, log in data["jobs"]]
    except (OSError, ValueError, TypeError, KeyError, UnreadableFile):
        return None  # plan again instead
