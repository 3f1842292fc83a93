"""What SLURM says about jobs, parsed, and mapped onto cruijff's job states.

Sources, in the order a poll asks them: ``squeue`` (the controller's live view, which also keeps
finished jobs for ``MinJobAge``), ``sacct`` (accounting: the final word, with exit codes, who
cancelled, peak memory and wall time), and ``scontrol show job`` where accounting is off (its
run time, no memory). All are parsed from text
(``-P``/``-o``): SLURM 22.05's JSON reports exit code 0 for a job that exited 1.
"""

from __future__ import annotations

import datetime as dt
import pwd
import re
from pathlib import Path

import attrs

from cruijff.records import JobState, JobStatus
from cruijff.signals import killed_by

SQUEUE_FORMAT = "%i|%T|%r|%e"
"""squeue's columns: job id (``123`` or ``123_4``), state, reason, end time."""

SACCT_FIELDS = "JobID,State,ExitCode,Reason,Timelimit,End,ElapsedRaw,MaxRSS,NodeList"
"""sacct's columns; the free-text one (node list) last. Asked without ``-X``: MaxRSS is
measured per step (``123.batch``, ``123_4.0``), whose rows add the job's peak memory."""

MEMORY_UNITS = {"": 1 / 2**20, "K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2, "P": 1024.0**3}
"""MB per unit of sacct's memory figures (binary units; a bare number is bytes)."""

PENDING_STATES = frozenset(
    {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD", "SPECIAL_EXIT"}
)
RUNNING_STATES = frozenset(
    {
        "RUNNING",
        "CONFIGURING",
        "COMPLETING",
        "STAGE_OUT",
        "SIGNALING",
        "RESIZING",
        "SUSPENDED",
        "STOPPED",
        "POWER_UP_NODE",
        "UPDATE_DB",
    }
)
FINAL_STATES = {
    "COMPLETED": JobState.SUCCEEDED,
    "FAILED": JobState.FAILED,
    "TIMEOUT": JobState.TIMEOUT,
    "OUT_OF_MEMORY": JobState.OUT_OF_MEMORY,
    "NODE_FAIL": JobState.NODE_FAIL,
    "BOOT_FAIL": JobState.NODE_FAIL,
    "PREEMPTED": JobState.PREEMPTED,
    "CANCELLED": JobState.CANCELLED,
    "REVOKED": JobState.CANCELLED,
    "DEADLINE": JobState.FAILED,
}
NEVER_SATISFIED = "DependencyNeverSatisfied"

LAG_S = 60.0
"""How long after a job's end squeue's final state is trusted while sacct has not caught up
(sacct lags by a fraction of a second; this only matters where accounting is broken)."""


@attrs.frozen(kw_only=True)
class Row:
    """One job (or array task) as a SLURM command reports it."""

    job_id: str
    state: str
    reason: str = ""
    exit_code: str = ""
    by: str = ""  # who cancelled it: a uid, as ``CANCELLED by 1234`` says
    time_limit: str = ""
    end: str = ""
    nodes: str = ""
    peak_memory_mb: float | None = None  # the largest MaxRSS of its steps
    wall_s: float | None = None  # how long it ran (ElapsedRaw, scontrol's RunTime)

    @property
    def active(self) -> bool:
        """Still pending or running."""
        return self.state in PENDING_STATES or self.state in RUNNING_STATES

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


def split_state(text: str) -> tuple[str, str]:
    """``"CANCELLED by 1234"`` -> ``("CANCELLED", "1234")``; ``"FAILED"`` -> ``("FAILED", "")``."""
    state, _, by = text.strip().partition(" by ")
    return state.rstrip("+"), by.strip()


# --- parsers ------------------------------------------------------------------------------


def parse_squeue(text: str) -> dict[str, Row]:
    """Rows of ``squeue -h -r -o SQUEUE_FORMAT``, by job id."""
    rows = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 4 or not parts[0]:
            continue
        state, by = split_state(parts[1])
        rows[parts[0]] = Row(job_id=parts[0], state=state, by=by, reason=parts[2], end=parts[3])
    return rows


def parse_sacct(text: str) -> dict[str, Row]:
    """Rows of ``sacct -P -n -o SACCT_FIELDS``, by job id (``123``, ``123_4``, or an array
    that never started, ``123_[1-5%2]``); a step's row (``123_4.batch``) is no row of its own
    but gives its job's peak memory (the largest over the steps, in MB)."""
    rows: dict[str, Row] = {}
    peaks: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.strip().split("|", 8)
        if len(parts) < 9 or not parts[0]:
            continue
        job_id, state_text, exit_code, reason, time_limit, end, elapsed, rss, nodes = parts
        peak = memory_mb(rss)
        job_id, dot, _ = job_id.partition(".")
        if peak is not None:
            peaks[job_id] = max(peak, peaks.get(job_id, 0.0))
        if dot:
            continue
        state, by = split_state(state_text)
        rows[job_id] = Row(
            job_id=job_id,
            state=state,
            by=by,
            exit_code=exit_code,
            reason=reason,
            time_limit=time_limit,
            end=end,
            nodes=nodes,
            wall_s=whole_number(elapsed),
        )
    return {
        job_id: attrs.evolve(row, peak_memory_mb=peaks[job_id]) if job_id in peaks else row
        for job_id, row in rows.items()
    }


def memory_mb(text: str) -> float | None:
    """sacct's ``MaxRSS`` in MB: ``"2097152K"`` -> 2048.0, ``"1.5G"`` -> 1536.0; None for an
    empty or unreadable field, and for 0 (a step too short to be sampled measured nothing)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGTP]?)", text.strip().upper())
    if not match:
        return None
    return float(match[1]) * MEMORY_UNITS[match[2]] or None


def whole_number(text: str) -> float | None:
    """``"3600"`` -> 3600.0; None for an empty or unreadable field."""
    text = text.strip()
    return float(text) if text.isdigit() else None


def run_time(text: str) -> float | None:
    """scontrol's ``RunTime`` in seconds (``[D-]HH:MM:SS``); None where unreadable."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+):(\d{2}):(\d{2})", text.strip())
    if not match:
        return None
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


_SCONTROL_ID = re.compile(
    r"^JobId=(?P<raw>\d+)(?: ArrayJobId=(?P<array>\d+) ArrayTaskId=(?P<task>\S+))?"
)
# Anchored on the fields around each value, so a job name that contains "JobState=" cannot
# pass for the real one (the name comes before QOS=, the paths after EndTime=).
_SCONTROL_FIELDS = re.compile(
    r" QOS=\S* JobState=(?P<state>\S+) Reason=(?P<reason>\S+) Dependency="
    r".*? ExitCode=(?P<exit>\d+:\d+) RunTime=(?P<run>\S+).*? TimeLimit=(?P<limit>\S+) TimeMin="
    r".*? EndTime=(?P<end>\S+) Deadline="
)


def parse_scontrol(text: str) -> dict[str, Row]:
    """Rows of ``scontrol -o show job`` (one line per job), by job id as squeue writes it."""
    rows = {}
    for line in text.splitlines():
        ident, fields = _SCONTROL_ID.match(line.strip()), _SCONTROL_FIELDS.search(line)
        if not ident or not fields:
            continue
        job_id = ident["raw"]
        if ident["array"]:
            task = ident["task"]
            job_id = f"{ident['array']}_{task}" if task.isdigit() else f"{ident['array']}_[{task}]"
        match = fields
        state, by = split_state(match["state"])
        rows[job_id] = Row(
            job_id=job_id,
            state=state,
            by=by,
            reason=match["reason"],
            exit_code=match["exit"],
            time_limit=match["limit"],
            end=match["end"],
            wall_s=run_time(match["run"]),
        )
    return rows


def expand_tasks(spec: str) -> set[int]:
    """The task indices of an array spec: ``"1-5:2,8%3"`` -> {1, 3, 5, 8}."""
    tasks: set[int] = set()
    for part in spec.split("%", 1)[0].split(","):
        if not part:
            continue
        bounds, _, step = part.partition(":")
        low, _, high = bounds.partition("-")
        if not low.isdigit() or (high and not high.isdigit()) or (step and not step.isdigit()):
            continue
        tasks.update(range(int(low), int(high or low) + 1, int(step or 1)))
    return tasks


def row_for(job_id: str, rows: dict[str, Row], *, bare: bool = True) -> Row | None:
    """The row of ``job_id``. An array task without a row of its own takes its array's: an
    array cancelled before it started is one row, ``123_[1-5%2]`` or plain ``123``.

    ``bare=False`` refuses a plain ``123`` row for a task: while an array's tasks end, sacct
    briefly shows one of them (any one) under the array's id, so accounting's plain row is
    taken only when squeue has no row of the task's own.
    """
    if job_id in rows:
        return rows[job_id]
    array, _, task = job_id.partition("_")
    if not task.isdigit():
        return None
    if bare and array in rows:
        return rows[array]
    index = int(task)
    for key, row in rows.items():
        if key.startswith(f"{array}_[") and index in expand_tasks(key[len(array) + 2 : -1]):
            return row
    return None


# --- mapping -------------------------------------------------------------------------------


def user_name(uid: str) -> str:
    """A uid as a user name where this machine knows it."""
    try:
        return pwd.getpwuid(int(uid)).pw_name
    except (ValueError, KeyError):
        return uid


def exit_status(text: str) -> tuple[int | None, int]:
    """``"3:0"`` -> (3, 0); ``"0:9"`` -> (0, 9) (the signal that ended it); ``""`` -> (None, 0)."""
    code, _, sig = text.partition(":")
    if not code.isdigit():
        return None, 0
    return int(code), int(sig) if sig.isdigit() else 0


def active_status(row: Row) -> JobStatus:
    """A pending or running job; a pending one whose dependency failed never runs."""
    if row.state in PENDING_STATES:
        if row.reason == NEVER_SATISFIED:
            return JobStatus(
                state=JobState.DEPENDENCY_NEVER_SATISFIED,
                cause="a job it depends on did not succeed (DependencyNeverSatisfied)",
            )
        return JobStatus(state=JobState.PENDING)
    cause = "suspended" if row.state in ("SUSPENDED", "STOPPED") else ""
    return JobStatus(state=JobState.RUNNING, cause=cause)


def final_status(row: Row, queue: Row | None = None) -> JobStatus:
    """A finished job: its state, exit code and SLURM's reason (the log adds detail later).

    ``queue`` is squeue's row for it, which still says DependencyNeverSatisfied where
    accounting says only "Dependency".
    """
    state = FINAL_STATES[row.state]
    code, sig = exit_status(row.exit_code)
    if state is JobState.CANCELLED:
        reasons = {row.reason, queue.reason if queue else ""}
        if not row.by and (NEVER_SATISFIED in reasons or "Dependency" in reasons):
            # --kill-on-invalid-dep: SLURM itself cancelled a job whose dependency failed.
            return JobStatus(
                state=JobState.DEPENDENCY_NEVER_SATISFIED,
                cause="a job it depends on did not succeed (SLURM cancelled it)",
            )
        by = row.by or (queue.by if queue else "")
        cause = f"cancelled by {user_name(by)}" if by else "cancelled"
        return JobStatus(state=state, exit_code=code, cause=cause)
    if state is JobState.SUCCEEDED:
        return JobStatus(state=state, exit_code=0 if code is None else code)
    cause = {
        JobState.TIMEOUT: "reached its time limit"
        + (f" ({row.time_limit})" if row.time_limit not in ("", "UNLIMITED") else ""),
        JobState.OUT_OF_MEMORY: "ran out of memory",
        JobState.NODE_FAIL: "its node failed" + (f" ({row.nodes})" if row.nodes else ""),
        JobState.PREEMPTED: "preempted by a job of higher priority",
    }.get(state, "")
    if row.state == "DEADLINE":
        cause = "reached its deadline"
    elif row.state == "BOOT_FAIL":
        cause = "its node failed to boot"
    elif state is JobState.FAILED and not cause:
        cause = killed_by(sig) if sig else f"exit code {code}"
    return JobStatus(state=state, exit_code=code, cause=cause)


def combine(
    job_id: str,
    queue: Row | None,
    accounting: Row | None,
    *,
    accounting_on: bool,
    now: dt.datetime | None = None,
) -> JobStatus:
    """One job's status from squeue's row and accounting's (sacct, or scontrol where
    accounting is off). Accounting has the final word, but lags squeue: a job squeue no longer
    runs that accounting does not yet call finished is still running, not unknown."""
    if queue is not None and queue.active:
        return active_status(queue)
    if accounting is not None and accounting.final:
        return measured(final_status(accounting, queue), accounting)
    if queue is not None and queue.final:
        if not accounting_on or _ended_before(queue.end, LAG_S, now):
            return final_status(queue, queue)
        return JobStatus(state=JobState.RUNNING, cause="ending")
    if accounting is not None and accounting.active:
        return active_status(accounting)
    if accounting is not None:
        return JobStatus(state=JobState.UNKNOWN, cause=f"SLURM state {accounting.state}")
    return JobStatus(
        state=JobState.UNKNOWN,
        cause=f"SLURM no longer knows job {job_id}"
        + ("" if accounting_on else " (accounting is off on this cluster)"),
    )


def measured(status: JobStatus, row: Row) -> JobStatus:
    """``status`` with what accounting measured of the job: its peak memory and wall time."""
    if row.peak_memory_mb is None and row.wall_s is None:
        return status
    return attrs.evolve(status, peak_memory_mb=row.peak_memory_mb, wall_s=row.wall_s)


def _ended_before(end: str, seconds: float, now: dt.datetime | None) -> bool:
    try:
        ended = dt.datetime.fromisoformat(end)
    except ValueError:
        return False
    return ((now or dt.datetime.now()) - ended).total_seconds() > seconds


# --- the cause, from the job's log ----------------------------------------------------------

TAIL_BYTES = 64 * 1024
CUDA_OOM = re.compile(
    r"CUDA out of memory|torch\.(?:cuda\.)?OutOfMemoryError|CUDA error: out of memory"
)
HOST_OOM = re.compile(
    r"Exceeded job memory limit|oom[-_ ]kill|Out Of Memory|^MemoryError\b", re.MULTILINE
)
TRACEBACK = "Traceback (most recent call last):"
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Warning)\b.*")
LONGEST = 300


def read_tail(path: Path, size: int = TAIL_BYTES) -> str:
    """The end of a log ("" when it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - size))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _short(line: str) -> str:
    line = line.strip()
    return line if len(line) <= LONGEST else line[: LONGEST - 3] + "..."


def log_cause(text: str) -> tuple[JobState | None, str]:
    """What a failed job's log says went wrong: (a better state or None, the cause).

    CUDA running out of memory is OUT_OF_MEMORY (a retry may shrink the batch); otherwise the
    last exception of a Python traceback, else the last line.
    """
    lines = [line for line in text.replace("\r", "\n").splitlines() if line.strip()]
    for line in reversed(lines):
        if CUDA_OOM.search(line):
            return JobState.OUT_OF_MEMORY, f"CUDA out of memory: {_short(line)}"
    for line in reversed(lines):
        if HOST_OOM.search(line):
            return JobState.OUT_OF_MEMORY, f"out of memory: {_short(line)}"
    if TRACEBACK in text:
        block = text[text.rindex(TRACEBACK) :].splitlines()[1:]
        for line in reversed(block):
            if EXCEPTION_LINE.match(line):
                return None, _short(line)
    slurm = [line for line in lines if not line.startswith("slurmstepd")]
    return None, _short(slurm[-1]) if slurm else ""


def with_log(status: JobStatus, log: Path | None) -> JobStatus:
    """``status`` completed from the job's log where SLURM gives no cause of its own."""
    if log is None or status.state not in (JobState.FAILED, JobState.NODE_FAIL):
        return status
    better, detail = log_cause(read_tail(log))
    if not detail:
        return status
    if better is not None:
        return attrs.evolve(status, state=better, cause=detail)
    return attrs.evolve(status, cause=f"{status.cause}: {detail}" if status.cause else detail)
