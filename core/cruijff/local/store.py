"""The local scheduler's queue on disk: where its files are, what a job's status says, and the
locks that make "running" a fact any process can check.

Layout of ``<state_dir>/local``::

    config.json          {"jobs": N}: how many jobs run at once (the latest submit wins)
    executor.lock        flock held by the live executor, which writes its pid into it
    executor.log         what executors and job wrappers print
    jobs/<unit>.<n>/     one folder per attempt of a unit
        spec.json        the JobSpec, the local ids of its dependencies, its place in the queue
        status.json      queued -> running -> exited | cancelled, or dependency-failed
                         (the executor starts a queued job's wrapper, which marks it running)
        lock             flock held by the job's wrapper and command for as long as either lives
        cancel           present once a cancel was asked for
        usage.json       the peak memory of the command's work where a warm process did it
    warm/                the logs of the warm processes jobs used (cruijff.warm)

Only the process holding a job's lock writes its status (the submitter writes the first one,
before anyone can see the job). A status that says running while nobody holds the lock, and
whose recorded wrapper and command are both gone (checked by pid and identity, since a lock file
can be deleted under a live job), belongs to a job whose processes vanished (killed with -9,
the machine rebooted): it is reported LOST. A job with a spec whose status cannot be read, or
whose spec cannot be read, is BROKEN: it has failed, naming the file, and never waits for ever.
Readers open locks read-only and create nothing, so a read-only experiment can be inspected.
Stdlib only (plus :mod:`cruijff.fsutil`), since the job wrapper imports it on every start.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from cruijff.errors import UserError
from cruijff.fsutil import read_json, try_lock, write_json
from cruijff.signals import killed_by

JOBS = "jobs"
SPEC = "spec.json"
STATUS = "status.json"
LOCK = "lock"
CANCEL = "cancel"
CONFIG = "config.json"
EXECUTOR_LOCK = "executor.lock"
EXECUTOR_LOG = "executor.log"

# States written in status.json.
QUEUED = "queued"
RUNNING = "running"
EXITED = "exited"
CANCELLED = "cancelled"
DEPENDENCY_FAILED = "dependency-failed"
FINAL = frozenset({EXITED, CANCELLED, DEPENDENCY_FAILED})
# States only ever derived, never written.
LOST = "lost"  # status says running, but the job's processes are gone
MISSING = "missing"  # no such job (or no status yet: its submission is still being written)
BROKEN = "broken"  # its spec or status file cannot be read: it failed, the file is named

JOB_ENV = "CRUIJFF_LOCAL_JOB"
"""Set to the job's folder in its command's environment: how a live command is told apart from
a stranger that got its pid."""

GRACE_S = 5.0
"""How long a cancelled command gets between SIGTERM and SIGKILL."""

LOG_MARK = "--- cruijff:"
"""How the lines the job wrapper writes into a job's log begin (start, end, cause)."""


def now_iso() -> str:
    """The local time with its offset, to the second."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def is_job_id(job_id: str) -> bool:
    """Whether ``job_id`` can name a job folder (and not climb out of ``jobs/``)."""
    return bool(job_id) and "/" not in job_id and "\0" not in job_id and job_id[0] != "."


def unit_of(job_id: str) -> str:
    """The unit id in a job id ``<unit>.<n>``."""
    return job_id.rsplit(".", 1)[0]


# --- locks ----------------------------------------------------------------------------------


def is_locked(path: Path) -> bool:
    """Whether some process holds the flock on ``path``. Probes it with a shared lock on a
    read-only fd, released at once, so it writes nothing: a missing file is not held."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


@contextlib.contextmanager
def holding(path: Path) -> Iterator[bool]:
    """Hold the flock on ``path`` for the block if it is free; yields whether it was."""
    fd = try_lock(path)
    try:
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)


def executor_alive(local_dir: Path) -> bool:
    """Whether an executor serves this queue (it holds ``executor.lock`` for its life)."""
    return (local_dir / EXECUTOR_LOCK).exists() and is_locked(local_dir / EXECUTOR_LOCK)


# --- job records ----------------------------------------------------------------------------


def job_dir(local_dir: Path, job_id: str) -> Path:
    return local_dir / JOBS / job_id


def job_ids(local_dir: Path) -> list[str]:
    """Every job folder's name (including ones still being written)."""
    try:
        return [name for name in os.listdir(local_dir / JOBS) if is_job_id(name)]
    except FileNotFoundError:
        return []


BROKEN_FIX = "the job counts as failed; `cruijff run` runs it again"


def read_status(directory: Path) -> dict[str, Any]:
    """A job's status record; UnreadableFile (a UserError naming it) when it is damaged."""
    status = read_json(directory / STATUS, fix=BROKEN_FIX)
    if status is None:
        return {}
    if not isinstance(status, dict):
        raise UserError(f"{directory / STATUS} is not a job status (not a JSON object)")
    return status


def read_spec(directory: Path) -> dict[str, Any]:
    """A job's spec; UserError naming the file when it is damaged."""
    spec = read_json(directory / SPEC, fix=BROKEN_FIX)
    if not isinstance(spec, dict) or not isinstance(spec.get("job"), dict):
        raise UserError(f"{directory / SPEC} is not a job spec (no job in it)")
    return spec


def read_state(directory: Path) -> tuple[str, dict[str, Any]]:
    """A job's state (a written one, LOST, BROKEN or MISSING) and its status record. A job
    without its spec is MISSING: its submission was cut short (the spec is written last)."""
    if not (directory / SPEC).exists():
        return MISSING, {}
    try:
        status = read_status(directory)
    except (OSError, UserError) as error:
        # Alive under its lock, it will write a whole status when it ends; else it is lost.
        if is_locked(directory / LOCK):
            return RUNNING, {}
        return BROKEN, {"cause": _message(error)}
    if not status:
        return MISSING, {}
    state = status.get("state", MISSING)
    if state != RUNNING or is_locked(directory / LOCK) or is_alive(directory, status):
        return state, status
    # The wrapper writes its final status before it lets the lock go: a job that ended
    # between our two reads must not be taken for one that vanished.
    try:
        again = read_status(directory)
    except (OSError, UserError) as error:
        return BROKEN, {"cause": _message(error)}
    if again.get("state") != RUNNING:
        return again.get("state", MISSING), again
    return LOST, again


def _message(error: Exception) -> str:
    return getattr(error, "message", None) or str(error)


def write_status(directory: Path, status: dict[str, Any]) -> None:
    write_json(directory / STATUS, status)


def failure(state: str, status: dict[str, Any]) -> str | None:
    """Why a job in this state will never succeed, or None if it did or still may."""
    if state == EXITED:
        return None if status.get("exit_code") == 0 else exit_cause(status)
    if state == CANCELLED:
        return "it was cancelled"
    if state == DEPENDENCY_FAILED:
        return "it never ran, as its own dependency failed"
    if state == LOST:
        return "its process disappeared"
    if state == BROKEN:
        return status.get("cause") or "its files cannot be read"
    if state == MISSING:
        return "the local scheduler has no record of it"
    return None


def exit_cause(status: dict[str, Any]) -> str:
    """How an exited job ended, in words."""
    if status.get("cause"):
        return status["cause"]
    if status.get("signal"):
        return killed_by(status["signal"])
    return f"exit code {status.get('exit_code')}"


def dependency_cause(dep_id: str, why: str) -> str:
    return f"dependency {unit_of(dep_id)} (local job {dep_id}) did not succeed: {why}"


# --- processes ------------------------------------------------------------------------------


def is_alive(directory: Path, status: dict[str, Any]) -> bool:
    """Whether the wrapper or the command that ``status`` records still runs, checked by pid
    and identity (the lock says so too, unless its file was deleted)."""
    wrapper, pid = status.get("wrapper_pid"), status.get("pid")
    if isinstance(wrapper, int) and is_wrapper(wrapper, directory):
        return True
    return isinstance(pid, int) and is_command(pid, directory)


def is_command(pid: int, directory: Path) -> bool:
    """Whether ``pid`` is the live command of the job in ``directory`` (or a process it
    started): its environment names the job's folder."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    tail = os.fsencode(f"{JOBS}/{directory.name}")
    prefix = os.fsencode(f"{JOB_ENV}=")
    return any(entry.startswith(prefix) and entry.endswith(tail) for entry in environ)


def is_wrapper(pid: int, directory: Path) -> bool:
    """Whether ``pid`` is the live wrapper of the job in ``directory``: guards against a pid
    that was reused after the wrapper died (a zombie's cmdline is empty, so it is not one)."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    # By the folder's last two parts: another process may spell the path differently.
    tail = os.fsencode(f"{JOBS}/{directory.name}")
    return b"cruijff.local.job" in words and any(word.endswith(tail) for word in words)


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to a process group, if it still exists."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
