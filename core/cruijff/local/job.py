"""The wrapper around one job: ``python -m cruijff.local.job <job_dir> <lock_fd>``.

Started by the executor with the job's lock already held on ``lock_fd``, on a queued job which it
marks running. It runs the command in a process group of its own with output appended to the
job's log, records how it ended (with the command's wall time and the peak resident memory
of its largest process, ``wall_s`` and ``peak_rss_mb``, what estimates are checked against),
and on SIGTERM (or a ``cancel`` file) stops the whole group: SIGTERM, then SIGKILL after a
grace period. The command inherits the lock fd too, so the job counts as running for as long
as its command lives, even if this wrapper is killed. Stdlib imports only: it starts once
per job.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cruijff.errors import UserError
from cruijff.fsutil import read_json
from cruijff.local.store import (
    CANCEL,
    CANCELLED,
    EXITED,
    GRACE_S,
    JOB_ENV,
    LOG_MARK,
    QUEUED,
    RUNNING,
    now_iso,
    read_spec,
    read_status,
    signal_group,
    write_status,
)
from cruijff.signals import signal_name
from cruijff.warm import ENV as WARM_ENV
from cruijff.warm import USAGE as WARM_USAGE

POLL_S = 0.05
_cancel_requested = False


def command_env(job: dict[str, Any], queue: Path) -> dict[str, str]:
    """The environment a job of the local queue ``queue`` runs in, bar its own folder: the
    wrapper's, the job's own, and the queue's warm processes (cruijff.warm). The executor runs
    a marked job early in it too: the same environment is what names the same warm process."""
    return {
        **os.environ,
        **{str(k): str(v) for k, v in (job.get("env") or {}).items()},
        # its work may run in a warm process of this queue
        WARM_ENV: str(queue.absolute()),
    }


def _on_sigterm(signum: int, frame: Any) -> None:
    global _cancel_requested
    _cancel_requested = True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m cruijff.local.job JOB_DIR LOCK_FD", file=sys.stderr)
        return 2
    directory, lock_fd = Path(args[0]), int(args[1])
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        status = read_status(directory)
    except (OSError, UserError) as error:
        # The executor reads it as broken and fails it, naming the file.
        print(f"{directory}: {error}, not starting", file=sys.stderr)
        return 1
    if status.get("state") != QUEUED:
        print(f"{directory}: not queued but {status.get('state')}, not starting", file=sys.stderr)
        return 1
    # We hold the lock: from here on this process is the only writer of the status.
    status.update(state=RUNNING, started_at=now_iso(), wrapper_pid=os.getpid())
    write_status(directory, status)

    def finish(**fields: Any) -> int:
        write_status(directory, {**status, **fields, "ended_at": now_iso()})
        return 0

    if _cancelled(directory):
        return finish(state=CANCELLED, cause="cancelled before it started")
    try:
        spec = read_spec(directory)
        job = spec["job"]
        workdir = Path(job["workdir"])
        log = Path(job["log"])
        if not log.is_absolute():
            log = workdir / log
        title = f"{job['unit_id']} attempt {spec['attempt']}"
        log.parent.mkdir(parents=True, exist_ok=True)
        out = open(log, "ab", buffering=0)  # noqa: SIM115 -- kept open for the whole run
    except OSError as error:
        return finish(state=EXITED, exit_code=None, cause=f"cannot open the log: {error}")
    except UserError as error:
        return finish(state=EXITED, exit_code=None, cause=error.message)
    except (TypeError, KeyError, ValueError) as error:
        return finish(state=EXITED, exit_code=None, cause=f"unreadable spec.json: {error!r}")
    with out:
        out.write(f"{LOG_MARK} {title} started {now_iso()} ---\n".encode())
        try:
            child = subprocess.Popen(
                list(job["argv"]),
                cwd=workdir,
                env={
                    **command_env(job, directory.parent.parent),
                    JOB_ENV: str(directory.absolute()),
                },
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # The command holds the lock too: a killed wrapper must not make a live
                # command look finished, or its dependents could start under it.
                pass_fds=(lock_fd,),
            )
        except (OSError, ValueError) as error:  # ValueError: a NUL byte in argv or env
            code = 126 if isinstance(error, PermissionError) else 127
            out.write(f"{LOG_MARK} {title} could not start: {error} ---\n".encode())
            return finish(state=EXITED, exit_code=code, cause=f"could not start: {error}")
        status["pid"] = child.pid
        write_status(directory, status)
        began = time.monotonic()
        returncode, cancelled = _supervise(child, directory)
        fields: dict[str, Any] = {
            "exit_code": returncode,
            "wall_s": round(time.monotonic() - began, 3),
            "peak_rss_mb": _peak_rss_mb(directory),
        }
        if returncode < 0:
            fields.update(signal=-returncode, exit_code=128 - returncode)
        ended = "cancelled" if cancelled else f"ended with exit code {fields['exit_code']}"
        if returncode < 0:
            ended += f" (signal {signal_name(-returncode)})"
        out.write(f"{LOG_MARK} {title} {ended} {now_iso()} ---\n".encode())
    if cancelled:
        return finish(state=CANCELLED, cause="cancelled", **fields)
    return finish(state=EXITED, **fields)


def _peak_rss_mb(directory: Path) -> float:
    """The peak resident memory of the largest process of the command's tree: Linux reports
    the largest of the waited-for children and, through them, of their own waited-for
    children (in KiB). Not a sum: processes that run side by side count one at a time. Work
    done in a warm process, outside the tree, is reported by the command (``usage.json``)."""
    own = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    try:
        reported = read_json(directory / WARM_USAGE) or {}
        worker = float(reported.get("peak_rss_mb") or 0)
    except (UserError, AttributeError, TypeError, ValueError):
        worker = 0.0
    return round(max(own, worker), 1)


def _cancelled(directory: Path) -> bool:
    return _cancel_requested or (directory / CANCEL).exists()


def _supervise(child: subprocess.Popen, directory: Path) -> tuple[int, bool]:
    """Wait for the command, stopping its group once a cancel is asked for.

    Returns its return code and whether it was cancelled.
    """
    kill_at: float | None = None
    while True:
        if os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            # It exited but is not reaped yet, so its pid (the group's id) cannot have been
            # reused: stop what it left in the background, which would hold the job's lock
            # (and maybe a GPU), then reap it.
            signal_group(child.pid, signal.SIGTERM)
            return child.wait(), kill_at is not None
        if kill_at is None and _cancelled(directory):
            signal_group(child.pid, signal.SIGTERM)
            kill_at = time.monotonic() + GRACE_S
        elif kill_at is not None and time.monotonic() >= kill_at:
            signal_group(child.pid, signal.SIGKILL)
            kill_at = float("inf")
        time.sleep(POLL_S)


if __name__ == "__main__":
    sys.exit(main())
