"""The interface every scheduler implements; tools generate jobs, schedulers execute them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from cruijff.records import FileSpec, JobHandle, JobSpec, JobStatus


@runtime_checkable
class Scheduler(Protocol):
    """Runs JobSpecs and reports on them; built by ``SchedulerInfo.factory(experiment, options)``.

    Jobs carry their dependencies as unit ids; a scheduler starts a job only once every job it
    depends on has succeeded, and reports DEPENDENCY_NEVER_SATISFIED when one failed.

    Optional capability, :class:`WritesScripts`: a scheduler that submits files a user may want
    to read first (SLURM's batch scripts) gives them with ``scripts(jobs)``. ``cruijff scaffold``
    writes them with the tools' files (a user's edit is kept and reported, unless ``--force``),
    and its ``submit`` then submits those files as they stand. Schedulers without it (local,
    in-process) write nothing at scaffold time.
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


@attrs.frozen(kw_only=True)
class LinkSpec:
    """A symbolic link a scheduler wants in the experiment directory: ``path`` points at
    ``target`` (written relative to the link's folder, so the experiment can move). Scaffold
    treats it like a file: a link the user replaced is kept and reported unless ``force``."""

    path: Path
    target: Path


@runtime_checkable
class WritesScripts(Scheduler, Protocol):
    """A scheduler whose submissions are files worth reading before anything is submitted."""

    def scripts(self, jobs: Sequence[JobSpec]) -> Sequence[FileSpec | LinkSpec]:
        """The files ``submit`` would submit for these jobs (every job of the plan), inside the
        experiment directory, and links to them; the same jobs give the same files, byte for
        byte, so a second scaffold writes nothing. Writes nothing itself.

        ``submit`` submits what scaffold wrote, edited or not; a job it has no file for (a
        retry adjusted since, a submission without scaffold) it renders as it always did.
        Raises UserError naming a job whose script cannot be written.
        """


def scheduler_files(scheduler: Any, jobs: Sequence[JobSpec]) -> tuple[FileSpec | LinkSpec, ...]:
    """What scaffold writes for ``scheduler``: its ``scripts(jobs)``, or nothing where it has
    no such capability."""
    if isinstance(scheduler, WritesScripts):
        return tuple(scheduler.scripts(jobs))
    return ()
