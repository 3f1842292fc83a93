"""The built-in local scheduler: runs jobs on this machine, N at a time.

This module is the plugin the core registers; it stays cheap to import; the scheduler itself
lives in :mod:`cruijff.local.scheduler`, loaded only when the schedulers are listed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from cruijff.hookspecs import hookimpl

if TYPE_CHECKING:
    from cruijff.records import SchedulerInfo


@hookimpl
def cruijff_schedulers() -> Iterator[SchedulerInfo]:
    """Register the ``local`` scheduler."""
    from cruijff.local.scheduler import LocalScheduler
    from cruijff.records import SchedulerInfo

    yield SchedulerInfo(
        name="local",
        factory=LocalScheduler,
        description="runs jobs on this machine, N at a time",
    )
