"""A stand-in for SLURM's commands, for unit tests and benchmarks without a cluster.

:class:`FakeSlurm` answers ``sbatch``, ``squeue``, ``sacct``, ``scontrol`` and ``scancel`` from
memory, in the formats the scheduler asks for, and counts every call (``calls``). Tests move
jobs along with :meth:`FakeSlurm.set`, and make a command fail with :meth:`FakeSlurm.fail`. It
is not a simulator: nothing runs by itself. ``sbatch`` reads ``--array``, ``--chdir`` and
``--job-name`` from its command line, else from the script's ``#SBATCH`` lines (as sbatch
does), and records each script's path (``paths``) and text (``scripts``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import attrs

from cruijff_slurm.commands import Result, SlurmCommands
from cruijff_slurm.states import expand_tasks


@attrs.define
class FakeJob:
    """One job (or array task) as the fake controller and accounting know it."""

    job_id: str
    state: str = "PENDING"
    reason: str = "None"
    exit_code: str = "0:0"
    workdir: str = ""
    name: str = ""
    in_queue: bool = True  # squeue still lists it (MinJobAge not passed)
    in_accounting: bool = True  # sacct has caught up with it
    end: str = "Unknown"
    elapsed: str = "0"  # sacct's ElapsedRaw, seconds
    max_rss: str = ""  # its batch step's MaxRSS (``2048K``): a step row where set


UNREACHABLE = "Unable to contact slurm controller (connect failure)"
"""SLURM's words when slurmctld does not answer (one of the transient ones)."""

_DIRECTIVE = re.compile(r"^#SBATCH --(array|chdir|job-name)=(.*)$", re.MULTILINE)


class FakeSlurm(SlurmCommands):
    """SLURM's client commands, answered from memory. ``refuse`` makes sbatch fail with that
    message; ``accounting=False`` makes sacct say accounting storage is disabled. Queries are
    not retried unless ``retries`` gives the pauses (0 waits for nothing)."""

    def __init__(
        self, *, accounting: bool = True, first_id: int = 100, retries: Sequence[float] = ()
    ) -> None:
        super().__init__(retries=retries)
        self.accounting = accounting
        self.next_id = first_id
        self.jobs: dict[str, FakeJob] = {}
        self.refuse: str = ""
        self.failing: dict[str, tuple[int | None, str]] = {}  # command -> (times left, message)
        self.scripts: list[str] = []
        self.paths: list[Path] = []
        self.cancelled: list[str] = []

    # --- driving it -------------------------------------------------------------------------

    def set(self, job_id: str, state: str, **changes: object) -> FakeJob:
        """Move a job to ``state`` (and change any other FakeJob field)."""
        job = self.jobs.setdefault(job_id, FakeJob(job_id=job_id))
        job.state = state
        for key, value in changes.items():
            setattr(job, key, value)
        return job

    def fail(self, command: str, times: int | None = None, message: str = UNREACHABLE) -> None:
        """Make ``command`` exit 1 with ``message`` (on stderr): its next ``times`` calls, or
        every call until ``fail(command, 0)``."""
        self.failing[command] = (times, message)

    def named(self, command: str) -> list[tuple[str, ...]]:
        """The calls of one command."""
        return [call for call in self.calls if call[0] == command]

    # --- the commands -----------------------------------------------------------------------

    def _once(self, argv: tuple[str, ...]) -> Result:
        self.calls.append(argv)
        times, message = self.failing.get(argv[0], (0, ""))
        if times is None or times > 0:
            if times is not None:
                self.failing[argv[0]] = (times - 1, message)
            return Result(argv, 1, "", f"{argv[0]}: error: {message}\n")
        return getattr(self, f"_{argv[0]}")(argv)

    def _sbatch(self, argv: tuple[str, ...]) -> Result:
        if self.refuse:
            return Result(argv, 1, "", f"sbatch: error: {self.refuse}\n")
        text = Path(argv[-1]).read_text()
        self.scripts.append(text)
        self.paths.append(Path(argv[-1]))
        found = {key: value.strip("'") for key, value in _DIRECTIVE.findall(text)}
        for option in argv[1:-1]:  # the command line wins over the script
            key, _, value = option.removeprefix("--").partition("=")
            if key in ("array", "chdir", "job-name"):
                found[key] = value
        job_id = str(self.next_id)
        self.next_id += 1
        spec = found.get("array")
        keys = [f"{job_id}_{task}" for task in sorted(expand_tasks(spec))] if spec else [job_id]
        for key in keys:
            self.jobs[key] = FakeJob(
                job_id=key, workdir=found.get("chdir", ""), name=found.get("job-name", "")
            )
        return Result(argv, 0, f"{job_id}\n", "")

    def _option(self, argv: Sequence[str], flag: str) -> str | None:
        return argv[argv.index(flag) + 1] if flag in argv else None

    def _squeue(self, argv: tuple[str, ...]) -> Result:
        wanted = self._option(argv, "-j")
        form = self._option(argv, "-o") or "%i"
        everything = "-t" in argv
        rows = []
        for job in self.jobs.values():
            if not job.in_queue or (wanted is not None and job.job_id not in wanted.split(",")):
                continue
            if not everything and job.state not in ("PENDING", "RUNNING"):
                continue
            fields = {
                "%i": job.job_id,
                "%T": job.state,
                "%r": job.reason,
                "%e": job.end,
                "%Z": job.workdir,
            }
            rows.append("|".join(fields[part] for part in form.split("|")))
        if wanted is not None and not rows:
            return Result(argv, 1, "", "slurm_load_jobs error: Invalid job id specified\n")
        return Result(argv, 0, "".join(row + "\n" for row in rows), "")

    def _sacct(self, argv: tuple[str, ...]) -> Result:
        if not self.accounting:
            return Result(argv, 1, "", "Slurm accounting storage is disabled\n")
        wanted = self._option(argv, "-j")
        ids = set(wanted.split(",")) if wanted else None
        rows = []
        for job in self.jobs.values():
            array = job.job_id.partition("_")[0]
            if not job.in_accounting or (ids is not None and not ids & {job.job_id, array}):
                continue
            if "JobID,WorkDir" in argv:
                rows.append(f"{job.job_id}|{job.workdir}")
            else:
                rows.append(
                    f"{job.job_id}|{job.state}|{job.exit_code}|{job.reason}|01:00:00|{job.end}|"
                    f"{job.elapsed}||n1"
                )
                if job.max_rss and "-X" not in argv:  # steps: only without -X
                    rows.append(
                        f"{job.job_id}.batch|{job.state}|{job.exit_code}||||{job.elapsed}|"
                        f"{job.max_rss}|n1"
                    )
        return Result(argv, 0, "".join(row + "\n" for row in rows), "")

    def _scontrol(self, argv: tuple[str, ...]) -> Result:
        lines = []
        for number, job in enumerate(self.jobs.values(), start=1):
            array, _, task = job.job_id.partition("_")
            ident = (
                f"JobId={number} ArrayJobId={array} ArrayTaskId={task}"
                if task
                else f"JobId={array}"
            )
            lines.append(
                f"{ident} JobName={job.name} UserId=u(1) QOS=normal JobState={job.state} "
                f"Reason={job.reason} Dependency=(null) ExitCode={job.exit_code} "
                f"RunTime=00:00:01 TimeLimit=01:00:00 TimeMin=N/A SubmitTime=x StartTime=x "
                f"EndTime={job.end} Deadline=N/A WorkDir={job.workdir}"
            )
        return Result(argv, 0, "".join(line + "\n" for line in lines), "")

    def _scancel(self, argv: tuple[str, ...]) -> Result:
        for job_id in argv[1:]:
            self.cancelled.append(job_id)
            job = self.jobs.get(job_id)
            if job is not None and job.state in ("PENDING", "RUNNING"):
                job.state = "CANCELLED by 0"
        return Result(argv, 0, "", "")
