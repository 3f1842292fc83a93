"""The SLURM scheduler: batch scripts submitted with ``sbatch``, watched with ``squeue`` and
``sacct``.

The batch scripts are written by ``cruijff scaffold`` (:mod:`.scripts`: ``slurm/<group>.slurm``
and each job's ``finetune.slurm``...), and ``submit`` submits those files, choosing an array's
tasks with ``--array=``. Files, under the experiment's ``.cruijff/slurm/jobs/<call>/`` (one
folder per ``sbatch``)::

    tasks.json   which jobs the call holds (array index, unit, job name, log, the scaffolded
                 script); written before sbatch runs, so a job found in the queue can be told
                 apart after a crash
    job.sh       the batch script as submitted: a copy of the scaffolded one (which may be
                 edited later), or one rendered for jobs scaffold wrote none for
    <i>.log      (arrays) a link to task i's log, so SLURM writes each task's output into
                 its own run directory through one ``--output`` pattern

Every job runs with ``--chdir`` set to its call's folder (the script then ``cd``s to the job's
own folder; for a scaffolded script, on sbatch's command line, which wins over the file): SLURM
remembers that as the job's WorkDir, which ties a job in the queue to this experiment and to
one call, whatever its name.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import pwd
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from cruijff.errors import UserError
from cruijff.fsutil import read_json, write_atomic, write_json
from cruijff.records import FileSpec, JobHandle, JobSpec, JobState, JobStatus
from cruijff.scheduler import LinkSpec
from cruijff_slurm import scripts
from cruijff_slurm.arrays import Call, plan_calls, shared_name
from cruijff_slurm.commands import Result, SlurmCommands
from cruijff_slurm.profile import Profile, Resolver, in_folder, resolve
from cruijff_slurm.render import (
    Renderer,
    UnsafeValue,
    array_spec,
    call_context,
    describe,
    slurm_path,
)
from cruijff_slurm.states import (
    SACCT_FIELDS,
    SQUEUE_FORMAT,
    Row,
    combine,
    parse_sacct,
    parse_scontrol,
    parse_squeue,
    row_for,
    with_log,
)

NAME = "slurm"
JOB_ID = re.compile(r"\d+(?:_\d+)?")
SCRIPT, TASKS = "job.sh", "tasks.json"
ACCOUNTING_OFF = "accounting storage is disabled"
"""What sacct says (lowered) on a cluster without accounting."""
CANCEL_WAIT_S = 10.0
"""How long ``cancel`` waits for SLURM to report the cancelled jobs ended."""

ALL_STATES = "PD,R,S,CD,CA,F,TO,PR,NF,BF,DL,OOM,RQ,RS,RV"
"""sacct --state: every state sacct accepts, so that a query over a time window lists jobs
whatever became of them (without --state it lists only jobs that ran in the window)."""


@attrs.frozen
class Intent:
    """One job of a call, as ``tasks.json`` records it before the call is submitted."""

    folder: str
    index: int | None
    name: str
    log: str
    created_ns: int


@attrs.frozen
class Prepared:
    """A call made ready: its folder, script text, ``tasks.json`` and the sbatch options that
    go with a scaffolded script."""

    call: Call
    folder: Path
    script: str
    tasks: dict[str, Any]
    options: tuple[str, ...] = ()


class SlurmScheduler:
    """Submits jobs to SLURM with the settings of a cluster profile (:mod:`.profile`)."""

    name = NAME

    def __init__(
        self,
        options: Mapping[str, Any],
        state_dir: Path,
        *,
        paths: Resolver | None = None,
        file: Path | None = None,
        commands: SlurmCommands | None = None,
        profile: Profile | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.jobs_dir = self.state_dir / "slurm" / "jobs"
        if profile is None:  # paths in the options: without a reader, from the experiment's
            paths = paths or in_folder(self.state_dir.parent)
            profile = resolve(options, paths, file)
        self.profile = profile
        self.commands = commands or SlurmCommands()
        self.renderer = Renderer(self.profile.template)
        self.accounting: bool | None = None  # unknown until sacct first answers
        self._seen: dict[str, tuple[float, JobStatus]] = {}  # last poll, for poll_interval
        self._intents: dict[str, Intent] | None = None

    # --- submit -----------------------------------------------------------------------------

    def submit(self, jobs: Sequence[JobSpec], handles: Mapping[str, JobHandle]) -> list[JobHandle]:
        """Submit a batch in as few ``sbatch`` calls as arrays allow; with a queue limit
        (``max_jobs``), only the first jobs that fit (the runner offers the rest later).

        A job submits the script scaffold wrote for it (:func:`.scripts.choose`), as it
        stands; the others get one rendered. Every call is made ready before the first, so a
        bad value submits nothing. A call SLURM refuses raises UserError with its message;
        calls before it stay submitted (the runner finds them by name on the next run).
        """
        jobs = list(jobs)
        units = [job.unit_id for job in jobs]
        if len(set(units)) != len(units):
            twice = next(unit for unit in units if units.count(unit) > 1)
            raise UserError(f"job {twice} appears twice in one submission")
        jobs = jobs[: self._room(len(jobs))]
        if not jobs:
            return []
        calls, choice = self._calls(jobs, handles)
        prepared = [self._prepare(call) for call in calls]
        scripts.tell(choice, self.state_dir)
        ids: list[str] = []
        for ready in prepared:
            ids.append(self._sbatch(ready, ids))
        self._seen.clear()
        where = {
            task.job.unit_id: (ids[number], task.index)
            for number, call in enumerate(calls)
            for task in call.tasks
        }
        result = []
        for job in jobs:
            job_id, index = where[job.unit_id]
            handle_id = job_id if index is None else f"{job_id}_{index}"
            result.append(JobHandle(scheduler=self.name, id=handle_id, name=job.name))
        return result

    def _room(self, wanted: int) -> int:
        """How many jobs fit under the profile's queue limit: ``max_jobs`` less this
        experiment's jobs in the queue (array tasks counted one by one, as SLURM counts them).

        The experiment's own jobs, not all the user's: the runner offers the rest again as
        this experiment's jobs finish, so a queue filled by other work would wait for ever.
        """
        if self.profile.max_jobs is None:
            return wanted
        result = self.commands.run(["squeue", "-h", "-r", "-u", user(), "-o", "%i|%Z"])
        if not result.ok:
            raise UserError(
                f"cannot count this experiment's jobs in the queue: squeue said: {result.message}",
                hint="is SLURM reachable from here?",
            )
        queued = sum(1 for folder in _workdirs(result.stdout) if folder.parent == self.jobs_dir)
        return max(0, min(wanted, self.profile.max_jobs - queued))

    def _calls(
        self, jobs: Sequence[JobSpec], handles: Mapping[str, JobHandle]
    ) -> tuple[list[Call], scripts.Choice]:
        """The sbatch calls for a batch, from the scaffolded scripts where they serve."""
        directory = self.state_dir.parent
        choice = scripts.choose(jobs, self.profile, directory, self.state_dir)
        calls = plan_calls(
            jobs,
            handles,
            arrays=self.profile.arrays,
            max_array_size=self.profile.max_array_size,
            scheduler=self.name,
            sources=choice.sources,
        )
        return calls, choice

    def scripts(self, jobs: Sequence[JobSpec]) -> list[FileSpec | LinkSpec]:
        """The batch scripts of these jobs (every job of the plan), the links to them, and the
        layout ``submit`` reads: what ``cruijff scaffold`` writes (:mod:`.scripts`)."""
        return scripts.build(
            jobs, self.profile, self.renderer, self.state_dir.parent, self.state_dir
        )

    def _prepare(self, call: Call) -> Prepared:
        """Make a call ready in a fresh folder, named after its first job: its scaffolded
        script and the options that go with it, or a script rendered for it."""
        names = [task.job.name for task in call.tasks]
        count = f"+{len(names) - 1}" if len(names) > 1 else ""
        folder = self.jobs_dir / f"{call.units[0]}{count}.{secrets.token_hex(3)}"
        tasks = {
            "created_ns": time.time_ns(),
            "tasks": [
                {
                    "index": task.index,
                    "unit": task.job.unit_id,
                    "name": task.job.name,
                    "log": str(Path(task.job.log).absolute()),
                }
                for task in call.tasks
            ],
        }
        if call.script is None:
            job_name = names[0] if len(names) == 1 else shared_name(names)
            context = call_context(
                call, self.profile, folder, job_name, self.profile.array_throttle
            )
            return Prepared(
                call=call, folder=folder, script=self.renderer.render(context), tasks=tasks
            )
        tasks["script"] = str(call.script)
        first = call.tasks[0].job
        try:
            # sbatch's command line wins over the file's #SBATCH lines
            output = (
                slurm_path(folder) + "/%a.log"
                if call.array
                else slurm_path(Path(first.log).absolute())
            )
            text = call.script.read_text(encoding="utf-8")
        except UnsafeValue as error:
            raise UserError(f"job {first.unit_id}: its log path {error}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"cannot read the batch script {call.script}: {error}") from None
        options = []
        if call.array:
            indices = [task.index for task in call.tasks if task.index is not None]
            options.append(f"--array={array_spec(indices, self.profile.array_throttle)}")
        options += [f"--chdir={folder}", f"--output={output}", f"--error={output}"]
        return Prepared(
            call=call,
            folder=folder,
            script=text,
            tasks=tasks,
            options=(*options, *call.options),
        )

    def _sbatch(self, ready: Prepared, ids: Sequence[str]) -> str:
        """Write the call's folder and logs' folders, then submit it; returns the job id."""
        ready.folder.mkdir(parents=True, exist_ok=True)
        for task in ready.call.tasks:
            log = Path(task.job.log).absolute()
            log.parent.mkdir(parents=True, exist_ok=True)
            if task.index is not None:
                link = ready.folder / f"{task.index}.log"
                link.unlink(missing_ok=True)
                link.symlink_to(log)
        # tasks.json first: from here on a job in the queue can be recognised as this call.
        write_json(ready.folder / TASKS, ready.tasks)
        script = ready.folder / SCRIPT
        write_atomic(script, ready.script, executable=True)
        argv = ["sbatch", "--parsable", *ready.options]
        dependency = ready.call.dependency(ids)
        if dependency:
            argv.append(f"--dependency={dependency}")
        script = ready.call.script or script  # the scaffolded file itself, not the copy
        argv.append(str(script))
        result = self.commands.run(argv)
        lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
        job_id = lines[-1].split(";")[0] if lines else ""
        if not result.ok or not job_id.isdigit():
            message = result.message or f"exit status {result.returncode}"
            raise UserError(
                f"sbatch refused job {describe(ready.call)}: {message}",
                hint=submit_hint(message, self.profile, script),
            )
        return job_id

    # --- poll -------------------------------------------------------------------------------

    def poll(self, handles: Sequence[JobHandle]) -> dict[JobHandle, JobStatus]:
        """Every job's status from one ``squeue`` and at most one ``sacct`` call (``scontrol
        show job`` where accounting is off), whatever the number of jobs. Read-only."""
        result: dict[JobHandle, JobStatus] = {}
        mine = []
        for handle in handles:
            if handle.scheduler != self.name or not JOB_ID.fullmatch(handle.id):
                result[handle] = JobStatus(
                    state=JobState.UNKNOWN, cause=f"not a SLURM job: {handle.scheduler}"
                )
            else:
                mine.append(handle)
        if not mine:
            return result
        ids = sorted({handle.id for handle in mine}, key=_id_order)
        now = time.monotonic()
        if all(now - self._seen.get(i, (-1e9, None))[0] < self.profile.poll_interval for i in ids):
            # Asked again within poll_interval: SLURM's answer cannot have changed much, and a
            # busy controller thanks us for not asking.
            return {**result, **{h: self._seen[h.id][1] for h in mine}}
        queue, trouble = self._squeue(ids)
        if queue is None:
            status = JobStatus(state=JobState.UNKNOWN, cause=f"squeue failed: {trouble}")
            return {**result, **{handle: status for handle in mine}}
        rows = {i: row_for(i, queue) for i in ids}
        need = [i for i in ids if rows[i] is None or not rows[i].active]
        accounting, trouble = self._accounting(need) if need else ({}, "")
        wall = dt.datetime.now()
        for handle in mine:
            status = combine(
                handle.id,
                rows[handle.id],
                row_for(handle.id, accounting, bare=handle.id not in queue),
                accounting_on=self.accounting is not False,
                now=wall,
            )
            if status.state is JobState.UNKNOWN and trouble:
                status = attrs.evolve(status, cause=f"{status.cause}; {trouble}")
            if status.state.failed:
                status = with_log(status, self._log_of(handle))
            result[handle] = status
            self._seen[handle.id] = (now, status)
        return result

    def _squeue(self, ids: Sequence[str]) -> tuple[dict[str, Row] | None, str]:
        """squeue's rows for these jobs, and their arrays' (an array cancelled before it
        started soon shows as one row under the array's id, its tasks no longer listed)."""
        wanted = [*ids, *sorted({i.partition("_")[0] for i in ids if "_" in i}, key=int)]
        argv = ["squeue", "-h", "-r", "-t", "all", "-j", ",".join(wanted), "-o", SQUEUE_FORMAT]
        result = self.commands.run(argv)
        if result.ok:
            return parse_squeue(result.stdout), ""
        if "Invalid job id" in result.message:  # every one of them has left the queue
            return {}, ""
        return None, result.message

    def _accounting(self, ids: Sequence[str]) -> tuple[dict[str, Row], str]:
        """Accounting's rows for jobs squeue no longer runs: one sacct call (with the arrays
        of array tasks, whose tasks sacct lists as one row if the array never started)."""
        if self.accounting is not False:
            wanted = list(ids) + sorted({i.partition("_")[0] for i in ids if "_" in i})
            # without -X: the steps' rows carry the jobs' peak memory (MaxRSS)
            argv = ["sacct", "-P", "-n", "-o", SACCT_FIELDS, "-j", ",".join(wanted)]
            result = self.commands.run(argv)
            if result.ok:
                self.accounting = True
                return parse_sacct(result.stdout), ""
            if ACCOUNTING_OFF not in result.message.lower():
                return {}, f"sacct failed: {result.message}"
            self.accounting = False
        result = self.commands.run(["scontrol", "-o", "show", "job"])
        if not result.ok and "Invalid job id" not in result.message:
            return {}, f"scontrol failed: {result.message}"
        return parse_scontrol(result.stdout), ""

    def _log_of(self, handle: JobHandle) -> Path | None:
        intent = self._intent_of(handle.name)
        return Path(intent.log) if intent else None

    # --- what was submitted -----------------------------------------------------------------

    def _scan(self) -> dict[str, Intent]:
        """Job name -> the newest call that holds it, from every ``tasks.json``."""
        newest: dict[str, Intent] = {}
        try:
            folders = list(self.jobs_dir.iterdir())
        except OSError:
            folders = []
        for folder in folders:
            try:
                data = read_json(folder / TASKS)
            except (OSError, ValueError):
                continue
            if not isinstance(data, dict):
                continue
            for task in data.get("tasks", []):
                intent = Intent(
                    folder=folder.name,
                    index=task.get("index"),
                    name=task.get("name", ""),
                    log=task.get("log", ""),
                    created_ns=data.get("created_ns", 0),
                )
                known = newest.get(intent.name)
                if known is None or (intent.created_ns, intent.folder) > (
                    known.created_ns,
                    known.folder,
                ):
                    newest[intent.name] = intent
        self._intents = newest
        return newest

    def _intent_of(self, name: str) -> Intent | None:
        if self._intents is None or name not in self._intents:
            self._scan()
        assert self._intents is not None
        return self._intents.get(name)

    def find(self, names: Sequence[str]) -> dict[str, JobHandle]:
        """Job name -> handle of the job from the newest submission of that name, if SLURM has
        it: one ``squeue`` call, and one ``sacct`` call for what squeue has forgotten.

        A name missing from the answer was never submitted, and the runner submits it again;
        so a query that fails raises UserError instead of answering "not found".
        """
        intents = self._scan()
        wanted = {name: intents[name] for name in names if name in intents}
        folders = {intent.folder for intent in wanted.values()}
        if not folders:
            return {}
        argv = ["squeue", "-h", "-r", "-t", "all", "-u", user(), "-o", "%i|%Z"]
        queue = self.commands.run(argv)
        if not queue.ok:
            raise no_answer(queue, len(names))
        ids = self._match(queue.stdout, folders)
        missing = folders - ids.keys()
        if missing and self.accounting is not False:
            oldest = min(i.created_ns for i in wanted.values() if i.folder in missing)
            start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(oldest / 1e9 - 300))
            argv = [
                "sacct",
                "-X",
                "-P",
                "-n",
                "-u",
                user(),
                "-S",
                start,
                "-E",
                "now",
                "-s",
                ALL_STATES,
                "-o",
                "JobID,WorkDir",
            ]
            result = self.commands.run(argv)
            if result.ok:
                self.accounting = True
                ids.update(self._match(result.stdout, missing))
            elif ACCOUNTING_OFF in result.message.lower():
                # Without accounting the controller is all there is, and `squeue -t all`
                # already listed every job it remembers (scontrol would list the same).
                self.accounting = False
            else:
                raise no_answer(result, len(names))
        return {
            name: JobHandle(
                scheduler=self.name,
                id=ids[i.folder] if i.index is None else f"{ids[i.folder]}_{i.index}",
                name=name,
            )
            for name, i in wanted.items()
            if i.folder in ids
        }

    def _match(self, text: str, folders: set[str]) -> dict[str, str]:
        """Call folder -> SLURM job id (of the array, for arrays), from ``ID|WORKDIR`` lines."""
        found: dict[str, str] = {}
        for job_id, folder in _workdirs(text, with_ids=True):
            if folder.parent != self.jobs_dir or folder.name not in folders:
                continue
            base = job_id.partition("_")[0]
            if base.isdigit() and (folder.name not in found or int(base) > int(found[folder.name])):
                found[folder.name] = base
        return found

    # --- resume, cancel, preview ------------------------------------------------------------

    def resume(self, handles: Sequence[JobHandle]) -> None:
        """Nothing to do: SLURM serves its queue whether or not a ``cruijff run`` watches."""

    def cancel(self, handles: Sequence[JobHandle]) -> None:
        """Cancel jobs with one ``scancel``; returns once SLURM says they ended (or after
        CANCEL_WAIT_S)."""
        ids = sorted(
            {h.id for h in handles if h.scheduler == self.name and JOB_ID.fullmatch(h.id)},
            key=_id_order,
        )
        if not ids:
            return
        result = self.commands.run(["scancel", *ids])
        benign = ("already completing or completed", "Invalid job id")
        if not result.ok and not all(
            any(b in line for b in benign) for line in result.stderr.splitlines() if line.strip()
        ):
            raise UserError(f"scancel failed: {result.message}")
        mine = [h for h in handles if h.id in ids]
        deadline = time.monotonic() + CANCEL_WAIT_S
        while time.monotonic() < deadline:
            self._seen.clear()
            # Until accounting has caught up too, a poll right after would still say RUNNING.
            if all(s.state.finished for s in self.poll(mine).values()):
                break
            time.sleep(0.25)
        self._seen.clear()

    def preview(self, jobs: Sequence[JobSpec]) -> list[FileSpec]:
        """The batch scripts submitting ``jobs`` would write in its call folders (array
        grouping included; the folders get a fresh random suffix when really submitted): a
        copy of the scaffolded script where it serves, else one rendered."""
        calls, _ = self._calls(list(jobs), {})
        files = []
        for call in calls:
            ready = self._prepare(call)
            files.append(
                FileSpec(path=ready.folder / SCRIPT, content=ready.script, executable=True)
            )
        return files


# --- helpers --------------------------------------------------------------------------------


def user() -> str:
    """The user whose jobs are ours."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return getpass.getuser()


def submit_hint(message: str, profile: Profile, script: Path) -> str:
    """What to check, given sbatch's complaint."""
    where = f"your cluster profile ({profile.source})" if profile.source else "a cluster profile"
    lowered = message.lower()
    for words, what in (
        ("partition", "partition"),
        ("account", "account"),
        ("qos", "qos"),
        ("constraint", "constraint"),
        ("feature", "constraint"),
        ("reservation", "reservation"),
    ):
        if words in lowered:
            return f"check `{what}` in {where}; the batch script is {script}"
    if "maxsubmit" in lowered or "job limit" in lowered:
        return f"set max_jobs in {where} below your cluster's limit"
    if "node configuration" in lowered or "memory" in lowered or "gres" in lowered:
        return f"the job asks for more than the cluster has; the batch script is {script}"
    return f"the batch script is {script}; settings come from {where}"


def no_answer(result: Result, count: int) -> UserError:
    """The error for a lookup SLURM did not answer: taking it for "never submitted" would
    submit again jobs that are queued or ran already."""
    command = result.argv[0]
    said = result.message or f"exit status {result.returncode}"
    said = said if said.startswith(f"{command}:") else f"{command}: {said}"
    jobs = f"{count} job{'s' if count != 1 else ''}"
    return UserError(
        f"SLURM did not answer ({said}); "
        f"nothing was submitted, and the records of the {jobs} whose submission was "
        "interrupted are kept",
        hint="run the command again in a moment: those jobs are looked up in SLURM before "
        "anything is submitted, so none runs twice",
    )


def _workdirs(text: str, *, with_ids: bool = False) -> list[Any]:
    """The WorkDir of each ``ID|WORKDIR`` line (with the id: ``(id, Path)`` pairs)."""
    pairs = []
    for line in text.splitlines():
        job_id, _, workdir = line.strip().partition("|")
        if job_id:
            pairs.append((job_id, Path(workdir)))
    return pairs if with_ids else [folder for _, folder in pairs]


def _id_order(job_id: str) -> tuple[int, int]:
    base, _, task = job_id.partition("_")
    return int(base), int(task) if task else -1
