"""The SLURM scheduler's registration. Submission and monitoring arrive with the SLURM issue;
until then it never offers itself as the default and says so when asked for by name."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cruijff import hookimpl
from cruijff.errors import UserError
from cruijff.records import SchedulerInfo


def _not_yet(options: Mapping[str, Any], state_dir: Path) -> Any:
    raise UserError(
        "the slurm scheduler cannot submit jobs yet in this version of cruijff-slurm",
        hint="use `--scheduler local`",
    )


@hookimpl
def cruijff_schedulers():
    yield SchedulerInfo(
        name="slurm",
        factory=_not_yet,
        description="submits jobs to a SLURM cluster with sbatch",
        available=lambda: False,
    )
