"""The built-in local scheduler: runs jobs on this machine, N at a time.

This module is the plugin the core registers; it stays cheap to import; the scheduler itself
lives in :mod:`cruijff.local.scheduler`, loaded only when the schedulers are listed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from cruijff.hookspecs import hookimpl

if TYPE_CHECKING:
    from cruijff.records import Experiment, SchedulerInfo


@hookimpl
def cruijff_schedulers() -> Iterator[SchedulerInfo]:
    """Register the ``local`` scheduler."""
    from cruijff.local.scheduler import LocalScheduler
    from cruijff.records import SchedulerInfo

    yield SchedulerInfo(
        name="local",
        factory=lambda experiment, options: LocalScheduler(options, experiment.state_dir),
        description="runs jobs on this machine, N at a time",
        gpus=has_cuda_devices,
        # the executor starts a job only once its JobSpec.after ended (cruijff.local.executor)
        together=lambda experiment: True,
    )


def has_cuda_devices(experiment: Experiment | None = None) -> bool:
    """Whether this machine has an NVIDIA GPU its jobs may use, without importing torch: the
    driver lists its devices under /proc, and ``CUDA_VISIBLE_DEVICES`` may hide them all."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    try:
        return any(Path("/proc/driver/nvidia/gpus").iterdir())
    except OSError:
        return False


@hookimpl
def cruijff_parse(experiment, keys):  # type: ignore[no-untyped-def]
    """Claim ``scheduler.jobs`` (how many jobs run at once) when the local scheduler is used."""
    from cruijff.records import ParseReport, Problem

    if experiment.scheduler.name != "local":
        return None
    mine = [key for key in keys if key.section == "scheduler" and key.name == "jobs"]
    problems = [
        Problem(
            where=experiment.locate(key.path),
            message=f"jobs must be a whole number of at least 1, not {key.value!r}",
            hint="e.g. jobs: 2",
            plugin="local",
        )
        for key in mine
        if not isinstance(key.value, int) or isinstance(key.value, bool) or key.value < 1
    ]
    return ParseReport(
        claimed={key.path for key in mine},
        vocabulary={"scheduler": ("jobs",)},
        problems=problems,
    )
