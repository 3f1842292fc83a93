"""A scheduler for tests that runs jobs from the test's own process, one after another, with no
executor or job wrapper in the background: ``submit`` queues, ``resume`` runs what is ready.

Jobs are still commands (``subprocess.run`` in their workdir, output in their log); what goes is
the detached machinery, so a test of the loop is quick and leaves nothing running. The queue
lives in memory, shared by every instance on the same state folder within one process (each
``cruijff`` command builds its own scheduler). Register it with the ``cruijff_inprocess``
fixture, or ``SchedulerInfo(name=NAME, factory=lambda experiment, options:
InProcessScheduler(options, experiment.state_dir))``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from cruijff.records import FileSpec, JobHandle, JobSpec, JobState, JobStatus

NAME = "inprocess"


@attrs.define
class _Job:
    spec: JobSpec
    handle: JobHandle
    depends_on: tuple[str, ...]  # job ids
    status: JobStatus = attrs.field(factory=lambda: JobStatus(state=JobState.PENDING))


_QUEUES: dict[Path, dict[str, _Job]] = {}


class InProcessScheduler:
    """Runs each job when ``resume`` finds its dependencies succeeded (in submission order)."""

    name = NAME

    def __init__(self, options: Mapping[str, Any], state_dir: Path) -> None:
        self.jobs = _QUEUES.setdefault(Path(state_dir).absolute(), {})

    def submit(self, jobs: Sequence[JobSpec], handles: Mapping[str, JobHandle]) -> list[JobHandle]:
        ids = {unit: handle.id for unit, handle in handles.items()}
        result = []
        for job in jobs:
            job_id = f"{job.unit_id}.{len(self.jobs) + 1}"
            handle = JobHandle(scheduler=NAME, id=job_id, name=job.name)
            ids[job.unit_id] = job_id
            deps = tuple(ids[unit] for unit in job.depends_on if unit in ids)
            self.jobs[job_id] = _Job(spec=job, handle=handle, depends_on=deps)
            result.append(handle)
        return result

    def poll(self, handles: Sequence[JobHandle]) -> dict[JobHandle, JobStatus]:
        missing = JobStatus(state=JobState.UNKNOWN, cause="no such job")
        return {h: self.jobs[h.id].status if h.id in self.jobs else missing for h in handles}

    def resume(self, handles: Sequence[JobHandle]) -> None:
        """Run every pending job whose dependencies succeeded; fail those whose failed."""
        progress = True
        while progress:
            progress = False
            for job in self.jobs.values():
                if job.status.state is not JobState.PENDING:
                    continue
                deps = [self.jobs[d].status.state for d in job.depends_on if d in self.jobs]
                if any(state.finished and state is not JobState.SUCCEEDED for state in deps):
                    job.status = JobStatus(
                        state=JobState.DEPENDENCY_NEVER_SATISFIED, cause="a dependency failed"
                    )
                elif all(state is JobState.SUCCEEDED for state in deps):
                    job.status = _run(job.spec)
                else:
                    continue
                progress = True

    def cancel(self, handles: Sequence[JobHandle]) -> None:
        for handle in handles:
            job = self.jobs.get(handle.id)
            if job is not None and not job.status.state.finished:
                job.status = JobStatus(state=JobState.CANCELLED, cause="cancelled")

    def find(self, names: Sequence[str]) -> dict[str, JobHandle]:
        found = {job.handle.name: job.handle for job in self.jobs.values()}
        return {name: found[name] for name in names if name in found}

    def preview(self, jobs: Sequence[JobSpec]) -> list[FileSpec]:
        return []


def _run(spec: JobSpec) -> JobStatus:
    log = Path(spec.log) if Path(spec.log).is_absolute() else Path(spec.workdir) / spec.log
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        try:
            done = subprocess.run(
                list(spec.argv),
                cwd=spec.workdir,
                env={**os.environ, **{str(k): str(v) for k, v in spec.env.items()}},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        except OSError as error:
            return JobStatus(
                state=JobState.FAILED, exit_code=127, cause=f"could not start: {error}"
            )
    if done.returncode == 0:
        return JobStatus(state=JobState.SUCCEEDED, exit_code=0)
    return JobStatus(
        state=JobState.FAILED, exit_code=done.returncode, cause=f"exit code {done.returncode}"
    )
