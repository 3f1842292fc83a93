"""The local scheduler: a file queue per experiment, served by a detached executor.

``submit`` only writes job folders under ``<state_dir>/local`` and makes sure an executor
runs; the executor (:mod:`cruijff.local.executor`) starts the jobs, each under a wrapper
(:mod:`cruijff.local.job`). So ``cruijff run`` may detach or be killed at any moment without
losing or doubling a job. See :mod:`cruijff.local.store` for the files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cruijff.convert import to_plain
from cruijff.errors import UserError
from cruijff.fsutil import write_atomic, write_json
from cruijff.local.store import (
    BROKEN,
    CANCEL,
    CANCELLED,
    CONFIG,
    DEPENDENCY_FAILED,
    EXECUTOR_LOG,
    EXITED,
    FINAL,
    GRACE_S,
    JOBS,
    LOCK,
    LOST,
    MISSING,
    QUEUED,
    RUNNING,
    SPEC,
    dependency_cause,
    executor_alive,
    exit_cause,
    failure,
    holding,
    is_alive,
    is_job_id,
    is_wrapper,
    job_dir,
    job_ids,
    now_iso,
    read_spec,
    read_state,
    read_status,
    signal_group,
    write_status,
)
from cruijff.records import FileSpec, JobHandle, JobSpec, JobState, JobStatus

CANCEL_WAIT_S = GRACE_S + 3.0
"""How long ``cancel`` waits for running jobs to end: the wrapper's grace period and a margin."""

UNSERVED = "queued, but no executor is serving the queue: run `cruijff run` to resume"


class LocalScheduler:
    """Runs jobs on this machine, ``options["jobs"]`` at a time (default 1)."""

    name = "local"

    def __init__(self, options: Mapping[str, Any], state_dir: Path) -> None:
        jobs = options.get("jobs")
        if jobs is None:
            jobs = 1
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise UserError(
                f"the local scheduler's jobs must be a whole number of at least 1, not {jobs!r}",
                hint="e.g. --jobs 2, or 'jobs: 2' in the scheduler section",
            )
        self.jobs = jobs
        # Absolute: the executor and the wrappers run in other folders.
        self.local_dir = Path(state_dir).absolute() / "local"
        self._executor: subprocess.Popen | None = None

    # --- submit -----------------------------------------------------------------------------

    def submit(self, jobs: Sequence[JobSpec], handles: Mapping[str, JobHandle]) -> list[JobHandle]:
        """Queue a batch of jobs (in dependency order) and make sure the executor runs."""
        jobs = list(jobs)
        units = [job.unit_id for job in jobs]
        for job in jobs:
            if units.count(job.unit_id) > 1:
                raise UserError(f"job {job.unit_id} appears twice in one submission")
            if not job.argv:
                raise UserError(f"job {job.unit_id} has no command to run")
        earlier = self._earlier_jobs(jobs, handles)
        write_json(self.local_dir / CONFIG, {"jobs": self.jobs})
        ids = self._allocate(units)
        local_ids = {**earlier, **dict(zip(units, ids, strict=True))}
        submitted_ns = time.time_ns()
        # Dependencies first, so the executor never sees a job before the jobs it waits for
        # (it takes a dependency without a status for one that never will have one).
        for index in _dependency_order(jobs):
            job, job_id = jobs[index], ids[index]
            directory = job_dir(self.local_dir, job_id)
            spec = {
                "job_id": job_id,
                "attempt": int(job_id.rsplit(".", 1)[1]),
                "name": job.name,
                "job": to_plain(job),
                # A dependency on a unit with no job here succeeded in an earlier run.
                "dependencies": [local_ids[dep] for dep in job.depends_on if dep in local_ids],
                # ...and a unit to start after, with no job here, ended before this one
                "after": [local_ids[unit] for unit in job.after if unit in local_ids],
                "submitted_ns": submitted_ns,
                "order": index,
            }
            (directory / LOCK).touch()
            write_status(directory, {"state": QUEUED, "queued_at": now_iso()})
            # The spec goes last: it is what makes the job exist for every reader, so a
            # submission killed half-way leaves nothing that looks submitted.
            write_json(directory / SPEC, spec)
        self._ensure_executor()
        return [
            JobHandle(scheduler=self.name, id=job_id, name=job.name)
            for job, job_id in zip(jobs, ids, strict=True)
        ]

    def _earlier_jobs(
        self, jobs: Sequence[JobSpec], handles: Mapping[str, JobHandle]
    ) -> dict[str, str]:
        """Unit id -> local job id of the dependencies submitted before this batch."""
        batch = {job.unit_id for job in jobs}
        earlier = {}
        for job in jobs:
            for unit in job.after:  # only an order: a job unknown here is simply not waited for
                handle = handles.get(unit)
                if unit not in batch and handle is not None and self._knows(handle):
                    earlier[unit] = handle.id
            for dep in job.depends_on:
                if dep in batch or dep not in handles:
                    continue
                handle = handles[dep]
                if not self._knows(handle):
                    raise UserError(
                        f"job {job.unit_id} depends on {dep}, whose job {handle.scheduler}:"
                        f"{handle.id} the local scheduler does not know",
                        hint=f"is {self.local_dir} from another machine, or was it removed?",
                    )
                earlier[dep] = handle.id
        return earlier

    def _knows(self, handle: JobHandle) -> bool:
        """Whether ``handle`` names a job of this queue."""
        return (
            handle.scheduler == self.name
            and is_job_id(handle.id)
            and (job_dir(self.local_dir, handle.id) / SPEC).exists()
        )

    def _allocate(self, units: Sequence[str]) -> list[str]:
        """A fresh job id ``<unit>.<n>`` per unit; mkdir makes each one ours alone."""
        jobs_dir = self.local_dir / JOBS
        jobs_dir.mkdir(parents=True, exist_ok=True)
        last: dict[str, int] = {}
        for job_id in job_ids(self.local_dir):
            unit, _, number = job_id.rpartition(".")
            if number.isdigit():
                last[unit] = max(last.get(unit, 0), int(number))
        ids = []
        for unit in units:
            number = last.get(unit, 0) + 1
            while True:
                try:
                    (jobs_dir / f"{unit}.{number}").mkdir()
                    break
                except FileExistsError:
                    number += 1
            ids.append(f"{unit}.{number}")
        return ids

    def _ensure_executor(self) -> None:
        """Start an executor unless one serves the queue (a second one would exit at once)."""
        if self._executor is not None and self._executor.poll() is None:
            return
        if executor_alive(self.local_dir):
            return
        self.local_dir.mkdir(parents=True, exist_ok=True)
        with open(self.local_dir / EXECUTOR_LOG, "ab") as log:
            self._executor = subprocess.Popen(
                [sys.executable, "-m", "cruijff.local.executor", str(self.local_dir)],
                cwd=self.local_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )

    # --- poll -------------------------------------------------------------------------------

    def poll(self, handles: Sequence[JobHandle]) -> dict[JobHandle, JobStatus]:
        """Each job's status, read from its folder. Read-only: it writes nothing and starts
        nothing, so a queued job no executor serves says so (``resume`` serves it)."""
        views: dict[str, tuple[str, dict[str, Any]]] = {}
        result = {}
        for handle in handles:
            if handle.scheduler != self.name or not is_job_id(handle.id):
                result[handle] = JobStatus(
                    state=JobState.UNKNOWN, cause=f"not a local job: {handle.scheduler}"
                )
                continue
            result[handle] = self._status(handle.id, views, set())
        waiting = [h for h in result if result[h].state is JobState.PENDING]
        if waiting and not self._serving():
            for handle in waiting:
                result[handle] = JobStatus(state=JobState.PENDING, cause=UNSERVED)
        return result

    def resume(self, handles: Sequence[JobHandle]) -> None:
        """Start an executor if a queued job among ``handles`` has none serving it (after a
        kill of the executor, or a reboot)."""
        for handle in handles:
            if handle.scheduler != self.name or not is_job_id(handle.id):
                continue
            state, _ = read_state(job_dir(self.local_dir, handle.id))
            if state == QUEUED:
                self._ensure_executor()
                return

    def _serving(self) -> bool:
        return (self._executor is not None and self._executor.poll() is None) or executor_alive(
            self.local_dir
        )

    def _view(self, job_id: str, views: dict) -> tuple[str, dict[str, Any]]:
        if job_id not in views:
            views[job_id] = read_state(job_dir(self.local_dir, job_id))
        return views[job_id]

    def _status(self, job_id: str, views: dict, visiting: set[str]) -> JobStatus:
        state, status = self._view(job_id, views)
        if state == QUEUED:
            # The executor marks a job whose dependency failed, but may not have yet (or may
            # be dead): say what will happen rather than PENDING.
            visiting = visiting | {job_id}
            try:
                spec = read_spec(job_dir(self.local_dir, job_id))
            except (OSError, UserError) as error:
                return JobStatus(state=JobState.FAILED, cause=str(error))
            for dep_id in spec.get("dependencies", []):
                if dep_id in visiting:
                    continue
                dep = self._status(dep_id, views, visiting)
                if dep.state.failed or dep.state is JobState.UNKNOWN:
                    why = dep.cause or failure(*self._view(dep_id, views)) or dep.state.value
                    if dep.state is JobState.DEPENDENCY_NEVER_SATISFIED:
                        why = "it never ran, as its own dependency failed"
                    return JobStatus(
                        state=JobState.DEPENDENCY_NEVER_SATISFIED,
                        cause=dependency_cause(dep_id, why),
                    )
            return JobStatus(state=JobState.PENDING)
        return _to_status(state, status)

    # --- cancel -----------------------------------------------------------------------------

    def cancel(self, handles: Sequence[JobHandle]) -> None:
        """Cancel jobs: queued ones never start, running ones are stopped (whole process
        group: SIGTERM, then SIGKILL); returns once they ended, or after a bounded wait."""
        pending: dict[Path, set[str]] = {}  # job folder -> what was done to it already
        for handle in handles:
            if handle.scheduler != self.name or not is_job_id(handle.id):
                continue
            directory = job_dir(self.local_dir, handle.id)
            state, _ = read_state(directory)
            if state in FINAL or state == MISSING:
                continue
            # The marker reaches a wrapper that has not recorded its pid yet, and stops an
            # executor from starting the job if we lose the race for its lock.
            write_atomic(directory / CANCEL, now_iso() + "\n")
            if not self._settle(directory):
                pending[directory] = set()
        deadline = time.monotonic() + CANCEL_WAIT_S
        kill_at = time.monotonic() + GRACE_S
        while pending:
            for directory, done in list(pending.items()):
                if self._settle(directory):
                    del pending[directory]
                else:
                    self._stop(directory, done, kill=time.monotonic() >= kill_at)
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(0.05)

    def _settle(self, directory: Path) -> bool:
        """Record a cancel where nobody holds the job's lock: a queued job, or a running one
        whose processes are gone. False while the job's processes still live."""
        with holding(directory / LOCK) as held:
            if not held:
                return False
            try:
                status = read_status(directory)
            except (OSError, UserError):
                status = {"state": QUEUED}  # unreadable, and nothing holds it: not running
            if status.get("state") == RUNNING and is_alive(directory, status):
                return False  # its lock file was deleted under it: it still runs
            if status.get("state") in (QUEUED, RUNNING):
                write_status(
                    directory,
                    {**status, "state": CANCELLED, "cause": "cancelled", "ended_at": now_iso()},
                )
            return True

    def _stop(self, directory: Path, done: set[str], *, kill: bool) -> None:
        """Signal a running job: its wrapper if alive, else its command's process group."""
        try:
            status = read_status(directory)
        except (OSError, UserError):
            return  # nothing to go by: the wrapper writes a whole status when it ends
        wrapper, pid = status.get("wrapper_pid"), status.get("pid")
        if wrapper and is_wrapper(wrapper, directory):
            if "wrapper" not in done:
                os.kill(wrapper, signal.SIGTERM)  # it stops the group and records the cancel
                done.add("wrapper")
        elif pid:
            # The wrapper was killed; the command still holds the lock. A process group's
            # id is not reused while any member lives, so this cannot hit a stranger.
            if "term" not in done:
                signal_group(pid, signal.SIGTERM)
                done.add("term")
            elif kill and "kill" not in done:
                signal_group(pid, signal.SIGKILL)
                done.add("kill")

    # --- find, preview ----------------------------------------------------------------------

    def find(self, names: Sequence[str]) -> dict[str, JobHandle]:
        """Job name -> handle of the newest job of that name."""
        wanted = set(names)
        newest: dict[str, tuple[tuple[int, int], str]] = {}
        for job_id in job_ids(self.local_dir):
            try:
                spec = read_spec(job_dir(self.local_dir, job_id))
            except (OSError, UserError):
                continue
            if not isinstance(spec, dict) or spec.get("name") not in wanted:
                continue
            key = (spec.get("submitted_ns", 0), spec.get("order", 0))
            if spec["name"] not in newest or key > newest[spec["name"]][0]:
                newest[spec["name"]] = (key, job_id)
        return {
            name: JobHandle(scheduler=self.name, id=job_id, name=name)
            for name, (_, job_id) in newest.items()
        }

    def preview(self, jobs: Sequence[JobSpec]) -> list[FileSpec]:
        """The local scheduler writes no scripts."""
        return []


def _to_status(state: str, status: dict[str, Any]) -> JobStatus:
    code = status.get("exit_code")
    if state == RUNNING:
        return JobStatus(state=JobState.RUNNING)
    if state == EXITED:
        if code == 0:
            return JobStatus(
                state=JobState.SUCCEEDED,
                exit_code=0,
                peak_memory_mb=status.get("peak_rss_mb"),
                wall_s=status.get("wall_s"),
            )
        return JobStatus(state=JobState.FAILED, exit_code=code, cause=exit_cause(status))
    if state == CANCELLED:
        return JobStatus(
            state=JobState.CANCELLED, exit_code=code, cause=status.get("cause") or "cancelled"
        )
    if state == DEPENDENCY_FAILED:
        return JobStatus(state=JobState.DEPENDENCY_NEVER_SATISFIED, cause=status.get("cause", ""))
    if state == LOST:
        return JobStatus(state=JobState.FAILED, cause="the job's process disappeared", lost=True)
    if state == BROKEN:
        return JobStatus(state=JobState.FAILED, cause=status.get("cause", "unreadable files"))
    if state == MISSING:
        return JobStatus(state=JobState.UNKNOWN, cause="the local scheduler has no such job")
    return JobStatus(state=JobState.UNKNOWN, cause=f"unexpected local state {state!r}")


def _dependency_order(jobs: Sequence[JobSpec]) -> list[int]:
    """Indexes of ``jobs``, each after the jobs of this batch it depends on or starts after
    (stable)."""
    index = {job.unit_id: i for i, job in enumerate(jobs)}
    order: list[int] = []
    seen: set[int] = set()

    def visit(i: int) -> None:
        if i in seen:
            return
        seen.add(i)
        for dep in (*jobs[i].depends_on, *jobs[i].after):
            if dep in index:
                visit(index[dep])
        order.append(i)

    for i in range(len(jobs)):
        visit(i)
    return order
