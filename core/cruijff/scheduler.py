"""The interface every scheduler implements; tools generate jobs, schedulers execute them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from cruijff.records import FileSpec, JobHandle, JobSpec, JobStatus


@runtime_checkable
class Scheduler(Protocol):
    """Runs JobSpecs and reports on them; built by ``SchedulerInfo.factory(experiment, options)``.

    Jobs carry their dependencies as unit ids; a scheduler starts a job only once every job it
    depends on has succeeded, and reports DEPENDENCY_NEVER_SATISFIED when one failed.
    """

    name: str

    def submit(self, jobs: Sequence[JobSpec], handles: Mapping[str, JobHandle]) -> list[JobHandle]:
        """Hand a batch of jobs over, in dependency order; returns a handle per job.

        ``handles`` maps the unit ids of jobs submitted earlier (dependencies outside this
        batch) to their handles. Raises UserError naming the job when one is refused.
        """

    def poll(self, handles: Sequence[JobHandle]) -> dict[JobHandle, JobStatus]:
        """The current status of each job, in as few queries as possible. Read-only: it
        writes and starts nothing (``cruijff status`` polls too)."""

    def resume(self, handles: Sequence[JobHandle]) -> None:
        """Make sure these in-flight jobs are served: called by the ``cruijff run`` that drives
        the experiment, never by ``status``. A scheduler whose jobs wait on their own (SLURM)
        does nothing; the local one starts an executor if none serves its queue."""

    def cancel(self, handles: Sequence[JobHandle]) -> None:
        """Stop these jobs (running ones are killed, waiting ones never start)."""

    def find(self, names: Sequence[str]) -> dict[str, JobHandle]:
        """Look up jobs by name, for submissions whose outcome is unknown after a crash.

        A name missing from the answer means "never submitted", and the job is submitted
        again: a scheduler that could not look (its queue did not answer) must raise
        UserError instead of answering partly."""

    def preview(self, jobs: Sequence[JobSpec]) -> list[FileSpec]:
        """The files submitting these jobs would write (batch scripts...), for dry runs."""
