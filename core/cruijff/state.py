"""The truth about an experiment's jobs, kept in plain files in its ``.cruijff`` folder.

- ``events.jsonl``: an append-only log, one JSON object per line (what happened, when).
- ``jobs/<unit id>.json``: one small record per job, replaced atomically on every change.
- ``run.lock``: held (``flock``) by the ``cruijff run`` that is driving the experiment.
- ``briefs.json``: what ``status`` last read of each record (:mod:`cruijff.briefs`); a cache,
  checked against each record file before use.
- ``format.json``: ``{"format": N}``, the layout of these files. A folder without it was made
  before it existed (format 1, which 2 reads as it is); one from a newer cruijff is refused.

No database and no server: HPC home folders are NFS or Lustre. Killing a command at any moment
leaves every file either as it was or as it became, except the last line of the event log, which
a kill can cut short: the next append starts on a fresh line and readers skip a torn one. A job
record that cannot be read (a full disk, an edit by hand) is an error naming it, never a guess.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from cruijff import briefs
from cruijff.convert import from_plain, to_plain
from cruijff.errors import UserError
from cruijff.fsutil import read_json, write_json
from cruijff.gcpause import paused_gc
from cruijff.records import JobHandle, JobSpec, JobState, Resources

FORMAT = 2
"""The layout of the ``.cruijff`` folder this cruijff writes (1: before format.json existed)."""


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
        self._lock_fd: int | None = None  # held while driving
        self._folder: tuple[int, int] | None = None  # the state folder driven, while driving
        self._format_checked = False

    # --- the layout's version --------------------------------------------------------------

    def check_format(self, *, write: bool = False) -> None:
        """Refuse a folder written by a newer cruijff; with ``write``, stamp ours on it."""
        if self._format_checked:
            return
        path = self.dir / "format.json"
        stamp = read_json(path, fix="remove it: cruijff writes it again")
        found = stamp.get("format", 1) if isinstance(stamp, dict) else 1
        if not isinstance(found, int) or found > FORMAT:
            raise UserError(
                f"{self.dir} was written by a newer cruijff (format {found}; this one reads up "
                f"to {FORMAT})",
                hint="upgrade cruijff (`pip install -U cruijff`) to work on this experiment",
            )
        if write:
            self.dir.mkdir(parents=True, exist_ok=True)
            if found < FORMAT:
                write_json(path, {"format": FORMAT})
        self._format_checked = write or found == FORMAT

    # --- event log -------------------------------------------------------------------------

    def log(self, event: str, **fields: Any) -> None:
        """Append one event; a single ``write`` on an O_APPEND file, so lines never interleave.

        After a line torn by a kill, the event starts on a line of its own, so it is not
        swallowed with the torn one."""
        self.check_format(write=True)
        line = json.dumps({"time": now(), "event": event, **to_plain(fields)}, sort_keys=True)
        fd = os.open(self.events_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
            os.write(fd, ("\n" if torn else "").encode() + (line + "\n").encode())
        finally:
            os.close(fd)

    def events(self) -> list[dict[str, Any]]:
        """Every event so far; a line cut short by a crash is skipped with a warning."""
        try:
            lines = self.events_path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        events = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line.decode("utf-8"))
            except ValueError:
                event = None
            if isinstance(event, dict):
                events.append(event)
            else:
                warnings.warn(
                    f"{self.events_path}:{number}: skipped a line that is not a whole event "
                    "(cut short by a crash?)",
                    stacklevel=2,
                )
        return events

    # --- job records -----------------------------------------------------------------------

    def save(self, record: JobRecord) -> JobRecord:
        """Write a job's record atomically, stamped with the time; returns what was written."""
        self.check_format(write=True)
        record = attrs.evolve(record, updated=now())
        write_json(self.jobs_dir / f"{record.unit_id}.json", to_plain(record))
        return record

    def forget(self, unit_id: str) -> None:
        """Remove a job's record: it was never submitted after all."""
        (self.jobs_dir / f"{unit_id}.json").unlink(missing_ok=True)

    def record(self, unit_id: str) -> JobRecord | None:
        """The record of one job, or None if it was never submitted."""
        return _read_record(self.jobs_dir / f"{unit_id}.json")

    def records(self, *, brief: bool = False) -> dict[str, JobRecord]:
        """Every job record, by unit id. ``brief`` records hold of their job only its unit,
        name, folder and log (:func:`_brief`): for reading, as ``status`` does, never to be
        saved back."""
        if not self.jobs_dir.is_dir():
            return {}
        self.check_format()
        with paused_gc():
            if brief:
                return self._briefs()
            found = {}
            names = sorted(e.name for e in os.scandir(self.jobs_dir) if e.name.endswith(".json"))
            for name in names:
                record = _read_record(self.jobs_dir / name)
                if record is not None:
                    found[record.unit_id] = record
            return found

    def _briefs(self) -> dict[str, JobRecord]:
        """Brief records, from :mod:`cruijff.briefs` where a record has not changed since."""
        began = time.time_ns()
        cached = briefs.load(self.dir)
        kept: dict[str, tuple[briefs.Stamp, dict[str, Any]]] = {}
        found = {}
        folder = str(self.jobs_dir)  # joined as text: twenty thousand Paths cost a second
        entries = (e for e in os.scandir(folder) if e.name.endswith(".json"))
        for entry in sorted(entries, key=lambda e: e.name):
            try:
                stamp = briefs.stamp(entry)
            except FileNotFoundError:  # forgotten meanwhile
                continue
            hit = cached.get(entry.name)
            record = None
            if hit is not None and hit[0] == stamp:
                data = hit[1]
                with contextlib.suppress(
                    KeyError, TypeError, ValueError, AttributeError, OverflowError
                ):
                    record = _brief(data)  # a cache entry that does not decode: read the file
            if record is None:
                data = _read_data(entry.path)
                if data is None:
                    continue
                data = _decoded(entry.path, briefs.brief, data)
                record = _decoded(entry.path, _brief, data)
            kept[entry.name] = (stamp, data)
            found[record.unit_id] = record
        if kept != cached:
            briefs.save(self.dir, kept, began)
        return found

    # --- who drives the experiment ---------------------------------------------------------

    @contextlib.contextmanager
    def driving(self) -> Iterator[None]:
        """Hold the experiment's run lock; UserError if another ``cruijff run`` holds it.

        The lock dies with its process, so a killed ``cruijff run`` never leaves it stuck. A
        lock counts only while ``run.lock`` still names the file we locked: a driver checks it
        with :meth:`check_driving` before it submits, so a lock file deleted or replaced under
        it cannot let a second driver in unnoticed.
        """
        self.check_format(write=True)
        fd = self._take_lock()
        if fd is None:
            raise UserError(
                f"the experiment is busy: cruijff run ({self._holder()}) is already driving it",
                hint="wait for it, watch it with `cruijff status`, or stop it with "
                "`cruijff cancel`",
            )
        self._lock_fd = fd
        self._folder = _identity(self.dir)
        try:
            yield
        finally:
            fd, self._lock_fd = self._lock_fd, None  # check_driving may have retaken it
            if fd is not None:
                os.close(fd)

    def check_driving(self) -> None:
        """While :meth:`driving`: make sure ``run.lock`` is still ours, taking it again if it
        was deleted; UserError if another ``cruijff run`` has taken it meanwhile, or if the
        whole state folder was removed."""
        fd = self._lock_fd
        if fd is not None and _identity(self.dir) != self._folder:
            # every record and the local queue went with it: writing on would start a picture
            # of nothing, and watching would wait for jobs no one can find
            raise UserError(
                f"{self.dir} was removed while this cruijff run drove the experiment: it stops "
                "here, writing and submitting nothing more (jobs already running go on)",
                hint="let running jobs end, then `cruijff run` again: what finished is found "
                "from its outputs, the rest runs",
            )
        if fd is None or _names(self.lock_path, fd):
            return
        taken = self._take_lock()
        if taken is None:
            raise UserError(
                f"{self.lock_path} was deleted or replaced while this cruijff run held it, and "
                f"another cruijff run ({self._holder()}) now drives the experiment: this one "
                "stops here, submitting nothing more",
                hint="leave .cruijff/run.lock alone; the jobs go on under the other run",
            )
        os.close(fd)
        self._lock_fd = taken

    @property
    def lock_path(self) -> Path:
        return self.dir / "run.lock"

    def _take_lock(self) -> int | None:
        """An fd holding the flock of the file ``run.lock`` names now, or None if it is held."""
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            if _names(self.lock_path, fd):
                os.ftruncate(fd, 0)
                os.write(fd, f"pid {os.getpid()}".encode())
                return fd
            os.close(fd)  # the file was replaced between open and flock: lock the new one

    def _holder(self) -> str:
        try:
            return self.lock_path.read_text().strip() or "another process"
        except OSError:
            return "another process"


def _identity(folder: Path) -> tuple[int, int] | None:
    """The folder's device and inode (None once it is gone): a folder made again is another."""
    try:
        found = os.stat(folder)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open on ``fd``."""
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    there = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


_UNREAD = Resources()
"""The resources of every brief record's job: not read (the record on disk has them)."""


def _brief(data: dict[str, Any]) -> JobRecord:
    """A record for reading only (``status``): its job holds its unit, name, folder and log,
    not its command, resources or artifacts. Built by hand: twenty thousand of them must
    decode in a second, which the general :func:`from_plain` does not."""
    job, handle, state = data["job"], data.get("handle"), data.get("state")
    log = Path(job["log"])
    return JobRecord(
        unit_id=data["unit_id"],
        job=JobSpec(
            # left out of a brief (cruijff.briefs.brief): the record's unit, the log's folder
            unit_id=job["unit_id"] if "unit_id" in job else data["unit_id"],
            name=job["name"],
            argv=(),
            workdir=Path(job["workdir"]) if "workdir" in job else log.parent,
            log=log,
            resources=_UNREAD,
        ),
        attempt=int(data.get("attempt", 0)),
        state=JobState(state) if state is not None else None,
        handle=JobHandle(**{"name": job["name"], **handle}) if handle is not None else None,
        submitting=bool(data.get("submitting", False)),
        exit_code=data.get("exit_code"),
        cause=str(data.get("cause", "")),
        metrics=dict(data.get("metrics") or {}),
        summary=tuple(data.get("summary") or ()),
        outdated=bool(data.get("outdated", False)),
        updated=str(data.get("updated", "")),
    )


def _read_record(path: Path) -> JobRecord | None:
    data = _read_data(path)
    return None if data is None else _decoded(path, lambda d: from_plain(JobRecord, d), data)


def _read_data(path: Path | str) -> dict[str, Any] | None:
    data = read_json(
        path,
        fix="if its job may still be queued or running, let it finish (or cancel it on the "
        "scheduler), then remove the file: cruijff then checks that unit's outputs and runs it "
        "again only if they are incomplete",
    )
    return data or None


def _decoded(path: Path | str, decode: Any, data: Any) -> Any:
    """``decode(data)``, or an error naming the record file it came from."""
    try:
        return decode(data)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
        raise UserError(
            f"{path} is not a job record cruijff can read ({type(error).__name__}: {error})",
            hint="remove it: cruijff then checks that unit's outputs and runs it again only if "
            "they are incomplete",
        ) from None
