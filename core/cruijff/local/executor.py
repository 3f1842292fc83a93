"""The executor of a local queue: ``python -m cruijff.local.executor <local_dir>``.

A small detached process that starts queued jobs in submission order once their dependencies
succeeded and the jobs they start after ended (however they did), at most ``jobs`` (from
``config.json``) at a time, and marks the jobs whose dependencies failed. It holds
``executor.lock`` for its life, so at most one serves a queue, and exits when nothing is queued
or running. Killing it loses nothing: running jobs go on under their own wrappers, and the next
submit or driving ``cruijff run`` starts a new executor. A job whose spec or status it cannot
read is failed, naming the file; the rest are served.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cruijff import warm
from cruijff.errors import UserError
from cruijff.fsutil import read_json, try_lock
from cruijff.local.job import command_env
from cruijff.local.store import (
    BROKEN,
    CANCEL,
    CANCELLED,
    CONFIG,
    DEPENDENCY_FAILED,
    EXECUTOR_LOCK,
    EXITED,
    FINAL,
    LOCK,
    LOST,
    MISSING,
    QUEUED,
    RUNNING,
    dependency_cause,
    failure,
    holding,
    is_alive,
    is_locked,
    job_dir,
    job_ids,
    now_iso,
    read_spec,
    read_state,
    read_status,
    write_status,
)

POLL_S = 0.1
PREPARE_EVERY_S = 10.0
"""How often a waiting job's warm process is asked to wait on (the executor's own clock): a
server that served the job before it goes back to waiting for the next, not to idling out."""
LOCK_PATIENCE_S = 0.5
"""How long to keep trying for ``executor.lock``: a status probe holds it for an instant, and
an executor that gave up because of one would leave the queue unserved."""


def try_start(directory: Path) -> subprocess.Popen | None:
    """Start the queued job in ``directory`` under its wrapper; None if it is not startable.

    The job's lock is taken first and its status read again under it, so two executors (or an
    executor and a cancel) can never both act on the same job: a job never runs twice.
    """
    fd = try_lock(directory / LOCK)
    if fd is None:
        return None
    try:
        try:
            status = read_status(directory)
        except (OSError, UserError) as error:
            _write_failed(directory, {}, str(error))
            return None
        if status.get("state") != QUEUED:
            return None
        if (directory / CANCEL).exists():
            write_status(directory, {**status, "state": CANCELLED, "ended_at": now_iso()})
            return None
        try:
            # The wrapper inherits the held lock (closing our copy below leaves it held) and
            # writes "running" itself: until then the job reads as queued-and-locked, and an
            # executor killed before this point leaves it queued, to be started by the next.
            return subprocess.Popen(
                [sys.executable, "-m", "cruijff.local.job", str(directory), str(fd)],
                cwd=directory,
                stdin=subprocess.DEVNULL,
                pass_fds=(fd,),
                start_new_session=True,
            )
        except OSError as error:
            _write_failed(
                directory,
                {**status, "started_at": now_iso()},
                f"could not start the job wrapper: {error}",
            )
            return None
    finally:
        os.close(fd)


def _write_failed(directory: Path, status: dict[str, Any], cause: str) -> None:
    """Record that a job failed before its command ran (the caller holds its lock)."""
    write_status(
        directory,
        {**status, "state": EXITED, "exit_code": None, "cause": cause, "ended_at": now_iso()},
    )


def _fail_unreadable(directory: Path, cause: str) -> bool:
    """Fail a job whose files cannot be read, unless its processes hold its lock; whether
    it was failed."""
    with holding(directory / LOCK) as held:
        if not held:
            return False
        try:
            status = read_status(directory)
        except (OSError, UserError):
            status = {}
        if status.get("state") not in (None, QUEUED, RUNNING):
            return False  # it ended meanwhile, with a whole status
        if status.get("state") == RUNNING and is_alive(directory, status):
            return False  # readable again, and alive under a deleted lock file: as cancel does
        _write_failed(directory, status, cause)
        return True


ENDED = FINAL | {LOST, MISSING, BROKEN}
"""The states of a job that will not run (again) by itself: one to start after has ended."""


class Executor:
    """Serves the queue in one ``local`` folder."""

    def __init__(self, local_dir: Path) -> None:
        self.local_dir = local_dir
        self.specs: dict[str, dict[str, Any]] = {}  # never change once written
        self.finished: dict[str, tuple[str, dict[str, Any]]] = {}  # final states never change
        self.wrappers: dict[str, subprocess.Popen] = {}  # job id -> its wrapper, until reaped
        self.prepared: dict[tuple, float] = {}  # command and environment -> last run early
        self.preparing: list[subprocess.Popen] = []  # until reaped

    def serve(self) -> int:
        """Run until the queue is empty, without losing a job submitted as we stop."""
        while True:
            fd = self._acquire()
            if fd is None:
                return 0  # another executor serves this queue
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                self._log("serving")
                while self.tick():
                    time.sleep(POLL_S)
            finally:
                os.close(fd)
            # A submitter that saw our lock held trusts us to start its job: look again now
            # that the lock is free, so the job is ours or the next executor's, never no one's.
            if not any(state == QUEUED for state, _ in self._scan().values()):
                self._log("idle, exiting")
                return 0

    def _acquire(self) -> int | None:
        deadline = time.monotonic() + LOCK_PATIENCE_S
        while (fd := try_lock(self.local_dir / EXECUTOR_LOCK)) is None:
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)
        return fd

    def tick(self) -> bool:
        """Mark doomed jobs, start what may start; False once nothing is queued or running."""
        for job_id, wrapper in list(self.wrappers.items()):
            if wrapper.poll() is not None:
                del self.wrappers[job_id]
                self._check_started(job_id, wrapper.returncode)
        self.preparing = [early for early in self.preparing if early.poll() is None]
        jobs = self._scan()
        running = sum(
            state == RUNNING
            # A queued job whose lock is held is being started (or, for an instant, cancelled
            # or probed): count it, or a slow wrapper start could let one job too many in.
            or (state == QUEUED and is_locked(job_dir(self.local_dir, job_id) / LOCK))
            for job_id, (state, _) in jobs.items()
        )
        queued = sorted(
            (job_id for job_id, (state, _) in jobs.items() if state == QUEUED),
            key=lambda job_id: (self._order(job_id), job_id),
        )
        limit = self._limit()
        for job_id in queued:
            directory = job_dir(self.local_dir, job_id)
            waiting = far = False  # far: a dependency of it has not even started
            for dep_id in self.specs[job_id].get("dependencies", []):
                dep_state, dep_status = jobs.get(dep_id) or read_state(
                    job_dir(self.local_dir, dep_id)
                )
                why = failure(dep_state, dep_status)
                if why is not None:
                    cause = dependency_cause(dep_id, why)
                    if self._mark_failed(directory, cause):
                        jobs[job_id] = (DEPENDENCY_FAILED, {"cause": cause})
                        self._log(f"{job_id}: {cause}")
                    break
                if dep_state != EXITED:
                    waiting = True
                    far = far or dep_state != RUNNING
            else:
                # a job to start after need only have ended, however it did (or be gone)
                waiting = waiting or any(
                    (jobs.get(before) or read_state(job_dir(self.local_dir, before)))[0]
                    not in ENDED
                    for before in self.specs[job_id].get("after", [])
                )
                if waiting or running >= limit:
                    if not far:
                        self._prepare(job_id)
                    continue
                wrapper = try_start(directory)
                if wrapper is not None:
                    self.wrappers[job_id] = wrapper
                    jobs[job_id] = (RUNNING, {})
                    running += 1
                    self._log(f"{job_id}: started (wrapper pid {wrapper.pid})")
        return running > 0 or any(state == QUEUED for state, _ in jobs.values())

    def _prepare(self, job_id: str) -> None:
        """Run early the command of a job that waits only for running ones, where its tool
        says that prepares its warm process (:data:`cruijff.warm.WARMS`): the process imports
        while they run, and waits for a job while this executor lives. At most every
        :data:`PREPARE_EVERY_S` per command and environment (the jobs of a sweep share one)."""
        job = self.specs[job_id]["job"]
        own = job.get("env") or {}
        if not own.get(warm.WARMS):
            return
        key = (tuple(job["argv"][:3]), tuple(sorted(own.items())))
        now, last = time.monotonic(), self.prepared.get(key)
        if last is not None and now - last < PREPARE_EVERY_S:
            return
        self.prepared[key] = now
        env = {**command_env(job, self.local_dir), warm.PREPARE: str(os.getpid())}
        try:
            early = subprocess.Popen(
                list(job["argv"]),
                cwd=job["workdir"],
                env=env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except (OSError, ValueError, TypeError, KeyError) as error:
            self._log(f"{job_id}: cannot prepare its warm process: {error}")
            return
        self.preparing.append(early)
        self._log(f"{job_id}: preparing its warm process (pid {early.pid})")

    def _scan(self) -> dict[str, tuple[str, dict[str, Any]]]:
        jobs = {}
        for job_id in job_ids(self.local_dir):
            if job_id in self.finished:
                jobs[job_id] = self.finished[job_id]
                continue
            directory = job_dir(self.local_dir, job_id)
            state, status = read_state(directory)
            if state == MISSING:
                continue  # its submitter has not written its status yet
            if state == QUEUED and job_id not in self.specs:
                try:
                    self.specs[job_id] = read_spec(directory)
                except (OSError, UserError) as error:
                    state, status = BROKEN, {"cause": str(error)}
            if state == BROKEN:
                if not _fail_unreadable(directory, status["cause"]):
                    continue  # alive or ended after all: look again next tick
                self._log(f"{job_id}: failed: {status['cause']}")
                state, status = EXITED, {"exit_code": None, "cause": status["cause"]}
            if state in FINAL:
                self.finished[job_id] = (state, status)
            jobs[job_id] = (state, status)
        return jobs

    def _order(self, job_id: str) -> tuple[int, int]:
        spec = self.specs[job_id]
        return spec.get("submitted_ns", 0), spec.get("order", 0)

    def _limit(self) -> int:
        try:
            jobs = (read_json(self.local_dir / CONFIG) or {}).get("jobs", 1)
        except (OSError, ValueError, AttributeError, UserError):
            return 1
        return jobs if isinstance(jobs, int) and jobs >= 1 else 1

    def _mark_failed(self, directory: Path, cause: str) -> bool:
        with holding(directory / LOCK) as held:
            if not held:
                return False  # being cancelled right now: look again next tick
            try:
                status = read_status(directory)
            except (OSError, UserError):
                return False  # the next scan fails it as broken
            if status.get("state") != QUEUED:
                return False
            write_status(
                directory,
                {**status, "state": DEPENDENCY_FAILED, "cause": cause, "ended_at": now_iso()},
            )
            return True

    def _check_started(self, job_id: str, returncode: int) -> None:
        """Fail a job whose wrapper ended without taking it on (it crashed before marking it
        running): left queued, it would be started again and again."""
        directory = job_dir(self.local_dir, job_id)
        with holding(directory / LOCK) as held:
            if not held:
                return
            try:
                status = read_status(directory)
            except (OSError, UserError):
                return  # the next scan fails it as broken
            if status.get("state") != QUEUED:
                return
            cause = f"its wrapper ended with code {returncode} before starting it"
            _write_failed(directory, status, cause)
        self._log(f"{job_id}: {cause} (see above)")

    def _log(self, message: str) -> None:
        print(f"{now_iso()} executor {os.getpid()}: {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m cruijff.local.executor LOCAL_DIR", file=sys.stderr)
        return 2
    return Executor(Path(args[0])).serve()


if __name__ == "__main__":
    sys.exit(main())
