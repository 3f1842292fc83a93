"""The truth about an experiment's jobs, kept in plain files in its ``.cruijff`` folder.

- ``events.jsonl``: an append-only log, one JSON object per line (what happened, when).
- ``jobs/<unit id>.json``: one small record per job, replaced atomically on every change.
- ``run.lock``: held (``flock``) by the ``cruijff run`` that is driving the experiment.

No database and no server: HPC home folders are NFS or Lustre. Killing a command at any moment
leaves every file either as it was or as it became.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from cruijff.convert import from_plain, to_plain
from cruijff.errors import UserError
from cruijff.fsutil import read_json, write_json
from cruijff.records import JobHandle, JobSpec, JobState


def now() -> str:
    """The current time, ISO 8601 in UTC, to the second."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@attrs.frozen(kw_only=True)
class JobRecord:
    """What cruijff knows of one unit's job: the spec it submitted, the scheduler's handle and
    the last state seen. ``submitting`` is True between "about to submit" and "got a handle",
    so a crash in between is detected and the job looked up by name instead of resubmitted.
    ``metrics`` and ``summary`` are what the tool's validation measured once it finished;
    ``outdated`` marks a success whose files have changed since (it runs again)."""

    unit_id: str
    job: JobSpec
    attempt: int = 0
    state: JobState | None = None
    handle: JobHandle | None = None
    submitting: bool = False
    exit_code: int | None = None
    cause: str = ""
    metrics: dict[str, Any] = attrs.field(factory=dict)
    summary: tuple[str, ...] = ()
    outdated: bool = False
    updated: str = ""

    @property
    def in_flight(self) -> bool:
        """Submitted (or possibly submitted) and not finished."""
        return self.submitting or (self.handle is not None and not self.finished)

    @property
    def done(self) -> bool:
        """Succeeded, and still stands for the unit's current files."""
        return self.state is JobState.SUCCEEDED and not self.outdated

    @property
    def finished(self) -> bool:
        return self.state is not None and self.state.finished


class ExperimentState:
    """Reads and writes the files of an experiment's ``.cruijff`` folder."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.events_path = state_dir / "events.jsonl"
        self.jobs_dir = state_dir / "jobs"

    # --- event log -------------------------------------------------------------------------

    def log(self, event: str, **fields: Any) -> None:
        """Append one event; a single ``write`` on an O_APPEND file, so lines never interleave."""
        self.dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"time": now(), "event": event, **to_plain(fields)}, sort_keys=True)
        fd = os.open(self.events_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def events(self) -> list[dict[str, Any]]:
        """Every event so far; a line cut short by a crash is skipped."""
        try:
            lines = self.events_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        events = []
        for line in lines:
            with contextlib.suppress(json.JSONDecodeError):
                events.append(json.loads(line))
        return events

    # --- job records -----------------------------------------------------------------------

    def save(self, record: JobRecord) -> JobRecord:
        """Write a job's record atomically, stamped with the time; returns what was written."""
        record = attrs.evolve(record, updated=now())
        write_json(self.jobs_dir / f"{record.unit_id}.json", to_plain(record))
        return record

    def forget(self, unit_id: str) -> None:
        """Remove a job's record: it was never submitted after all."""
        (self.jobs_dir / f"{unit_id}.json").unlink(missing_ok=True)

    def record(self, unit_id: str) -> JobRecord | None:
        """The record of one job, or None if it was never submitted."""
        data = read_json(self.jobs_dir / f"{unit_id}.json")
        return from_plain(JobRecord, data) if data else None

    def records(self) -> dict[str, JobRecord]:
        """Every job record, by unit id."""
        if not self.jobs_dir.is_dir():
            return {}
        found = {}
        for path in sorted(self.jobs_dir.glob("*.json")):
            data = read_json(path)
            if data:
                found[data["unit_id"]] = from_plain(JobRecord, data)
        return found

    # --- who drives the experiment ---------------------------------------------------------

    @contextlib.contextmanager
    def driving(self) -> Iterator[None]:
        """Hold the experiment's run lock; UserError if another ``cruijff run`` holds it.

        The lock dies with its process, so a killed ``cruijff run`` never leaves it stuck.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / "run.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = path.read_text().strip() or "another process"
                raise UserError(
                    f"the experiment is busy: cruijff run ({holder}) is already driving it",
                    hint="wait for it, watch it with `cruijff status`, or stop it with "
                    "`cruijff cancel`",
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()}".encode())
            yield
        finally:
            os.close(fd)
