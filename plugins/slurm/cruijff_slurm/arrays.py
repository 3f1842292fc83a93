"""Grouping a batch of jobs into as few ``sbatch`` calls as possible.

Jobs that ask for the same resources and depend on the same things become one job array.
An evaluation depends on its own training run: where the trainings of a batch form array ``A``
and each evaluation depends on one of its tasks, the evaluations become an array with the same
task indices and ``--dependency=aftercorr:A`` (task i starts once task i of ``A`` succeeded).
Two hundred runs with an evaluation each are then two ``sbatch`` calls, not four hundred.

Calls come in dependency order: every call's dependencies are earlier calls of the batch or
jobs submitted before it (as JobHandles).

A job with a script scaffold wrote (a :class:`Source`, :mod:`.scripts`) keeps that script's task
index: it shares a call only with jobs of the same file, and the call picks its tasks with
``--array=`` instead of rendering a script of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from cruijff.errors import UserError
from cruijff.records import JobHandle, JobSpec


@attrs.frozen
class Ref:
    """What a call depends on: an earlier call of the batch (by position) or a job submitted
    before the batch (by SLURM id), and the array task where it is one."""

    call: int | None = None
    job_id: str | None = None
    task: int | None = None

    def resolve(self, ids: Sequence[str], *, whole: bool = False) -> str:
        """The SLURM id this refers to, once the calls before it have ids; ``whole``: the
        array itself rather than the task (for ``aftercorr``)."""
        base = ids[self.call] if self.call is not None else self.job_id
        assert base is not None
        return base if whole or self.task is None else f"{base}_{self.task}"


@attrs.frozen
class Task:
    """A job in a call, and its array index (None: the call is a single job)."""

    job: JobSpec
    index: int | None = None


@attrs.frozen
class Source:
    """The scaffolded file a job is submitted from: its task there (None: the file is one
    job's, not an array's), and sbatch options to add (``--time`` for a retry given more)."""

    path: Path
    index: int | None
    options: tuple[str, ...] = ()


@attrs.frozen
class Call:
    """One ``sbatch``: a single job or an array, and what it waits for.

    ``corr`` set: an array whose task i waits for task i of that array (``aftercorr``);
    otherwise every task waits for all of ``after`` (``afterok``). Every task waits too for
    the end of each of ``ended`` however it ended (``afterany``: a ``JobSpec.after``).
    ``script`` set: the call submits that scaffolded file with ``options``; otherwise a script
    is rendered for it.
    """

    tasks: tuple[Task, ...]
    after: tuple[Ref, ...] = ()
    corr: Ref | None = None
    ended: tuple[Ref, ...] = ()
    script: Path | None = None
    options: tuple[str, ...] = ()

    @property
    def array(self) -> bool:
        return self.tasks[0].index is not None

    @property
    def units(self) -> list[str]:
        return [task.job.unit_id for task in self.tasks]

    def waits(self) -> list[tuple[str, tuple[Ref, ...]]]:
        """Each way the call waits, as SLURM names it, with what it waits for."""
        found = []
        if self.corr is not None:
            found.append(("aftercorr", (self.corr,)))
        elif self.after:
            found.append(("afterok", self.after))
        if self.ended:
            found.append(("afterany", self.ended))
        return found

    def dependency(self, ids: Sequence[str]) -> str:
        """The ``--dependency`` value ("" for none), with the ids of the earlier calls."""
        return ",".join(  # "," is SLURM's "and"
            f"{kind}:" + ":".join(ref.resolve(ids, whole=kind == "aftercorr") for ref in refs)
            for kind, refs in self.waits()
        )


def signature(job: JobSpec) -> tuple[Any, ...]:
    """What must be equal for two jobs to share an array: everything but the command, its
    folder, environment, name and log (which the script picks per task)."""
    res = job.resources
    extras = tuple(sorted((key, repr(value)) for key, value in res.extras.items()))
    return (res.gpus, res.cpus, res.mem_mb, res.time_s, res.nodes, extras)


def shared_name(names: Sequence[str]) -> str:
    """An array's job name from its jobs' names: the dotted parts they share, ``*`` for the
    rest (``demo.rank4.train``, ``demo.rank8.train`` -> ``demo.*.train``)."""
    split = [name.split(".") for name in names]
    shortest = min(len(parts) for parts in split)
    head = 0
    while head < shortest and len({parts[head] for parts in split}) == 1:
        head += 1
    tail = 0
    while tail < shortest - head and len({parts[-1 - tail] for parts in split}) == 1:
        tail += 1
    parts = split[0][:head] + ["*"] + (split[0][len(split[0]) - tail :] if tail else [])
    return ".".join(parts)


def parse_handle(unit: str, handle: JobHandle, scheduler: str) -> Ref:
    """A dependency on a job submitted before: ``123`` or an array task ``123_4``."""
    array, _, task = handle.id.partition("_")
    if handle.scheduler != scheduler or not array.isdigit() or (task and not task.isdigit()):
        raise UserError(
            f"job {unit} is {handle.scheduler} job {handle.id!r}, which SLURM cannot wait for",
            hint="run the whole experiment with one scheduler",
        )
    return Ref(job_id=array, task=int(task) if task else None)


def plan_calls(
    jobs: Sequence[JobSpec],
    handles: Mapping[str, JobHandle],
    *,
    arrays: bool = True,
    max_array_size: int = 1000,
    scheduler: str = "slurm",
    sources: Mapping[str, Source] | None = None,
) -> list[Call]:
    """The ``sbatch`` calls that submit ``jobs`` (in dependency order), fewest first; a job in
    ``sources`` (unit id -> scaffolded file) is submitted from its file, as its task there.

    A dependency in neither the batch nor ``handles`` has already succeeded and is dropped.
    """
    sources = sources or {}
    position = {job.unit_id: n for n, job in enumerate(jobs)}
    level: dict[str, int] = {}
    for job in jobs:
        inside = [dep for dep in (*job.depends_on, *job.after) if dep in position]
        if any(dep not in level for dep in inside):
            raise UserError(
                f"job {job.unit_id} comes before a job it depends on or starts after",
                hint="a tool plugin bug: jobs must come in dependency order",
            )
        level[job.unit_id] = 1 + max((level[dep] for dep in inside), default=-1)

    calls: list[Call] = []
    placed: dict[str, Ref] = {}  # unit id -> where it was submitted in this batch
    for depth in sorted(set(level.values())):
        groups: dict[tuple[Any, ...], list[tuple[JobSpec, tuple[Ref, ...]]]] = {}
        for job in jobs:
            if level[job.unit_id] != depth:
                continue

            def refs_to(units: Sequence[str], job: JobSpec = job) -> list[Ref]:
                found = [
                    placed[unit]
                    if unit in placed
                    else parse_handle(job.unit_id, handles[unit], scheduler)
                    for unit in units
                    if unit in placed or unit in handles
                ]
                return sorted(set(found), key=_ref_key)

            refs = refs_to(job.depends_on)
            ended = tuple(refs_to(job.after))
            if ended:  # a job to start after others is a call of its own, from its file if any
                own = sources.get(job.unit_id)
                task = Task(job, index=own.index if own else None)
                script = {"script": own.path, "options": own.options} if own else {}
                calls.append(Call(tasks=(task,), after=tuple(refs), ended=ended, **script))
                placed[job.unit_id] = Ref(call=len(calls) - 1, task=task.index)
                continue
            source = sources.get(job.unit_id)
            if source is not None:
                # aftercorr only where task i waits for task i: the scaffolded indices are fixed
                corr = source.index is not None and len(refs) == 1 and refs[0].task == source.index
                # a file of one job (no index) is one call per job, whatever links point at it
                where = (source.path, source.options, source.index is None and job.unit_id)
                if corr:
                    key = ("file", where, "corr", refs[0].call, refs[0].job_id)
                else:
                    key = ("file", where, "ok", tuple(refs))
                groups.setdefault(key, []).append((job, tuple(refs)))
                continue
            if not arrays:
                calls.append(Call(tasks=(Task(job),), after=tuple(refs)))
                placed[job.unit_id] = Ref(call=len(calls) - 1)
                continue
            if len(refs) == 1 and refs[0].task is not None:
                key = (signature(job), "corr", refs[0].call, refs[0].job_id)
            else:
                key = (signature(job), "ok", tuple(refs))
            groups.setdefault(key, []).append((job, tuple(refs)))
        for key, members in groups.items():
            if key[0] == "file":
                made = [_file_call(members, sources, corr=key[2] == "corr")]
            else:
                chunks = _split(members, corr=key[1] == "corr", size=max_array_size)
                made = [_call(chunk, corr=key[1] == "corr") for chunk in chunks]
            for call in made:
                calls.append(call)
                for task in call.tasks:
                    placed[task.job.unit_id] = Ref(call=len(calls) - 1, task=task.index)
    return calls


def _ref_key(ref: Ref) -> tuple[int, str, int]:
    return (
        -1 if ref.call is None else ref.call,
        ref.job_id or "",
        -1 if ref.task is None else ref.task,
    )


def _split(
    members: list[tuple[JobSpec, tuple[Ref, ...]]], *, corr: bool, size: int
) -> list[list[tuple[JobSpec, tuple[Ref, ...]]]]:
    """Chunks of at most ``size`` jobs; with ``corr``, no two jobs of a chunk may wait for the
    same task (two evaluations of one run go to two arrays)."""
    chunks: list[list[tuple[JobSpec, tuple[Ref, ...]]]] = []
    used: list[set[int]] = []
    for member in members:
        task = member[1][0].task if corr else None
        for chunk, indices in zip(chunks, used, strict=True):
            if len(chunk) < size and (task is None or task not in indices):
                chunk.append(member)
                if task is not None:
                    indices.add(task)
                break
        else:
            chunks.append([member])
            used.append({task} if task is not None else set())
    return chunks


def _call(members: list[tuple[JobSpec, tuple[Ref, ...]]], *, corr: bool) -> Call:
    refs = members[0][1]
    if len(members) == 1:
        return Call(tasks=(Task(members[0][0]),), after=refs)
    if corr:
        tasks = tuple(Task(job, index=deps[0].task) for job, deps in members)
        return Call(tasks=tasks, corr=attrs.evolve(refs[0], task=None))
    return Call(tasks=tuple(Task(job, index=n) for n, (job, _) in enumerate(members)), after=refs)


def _file_call(
    members: list[tuple[JobSpec, tuple[Ref, ...]]], sources: Mapping[str, Source], *, corr: bool
) -> Call:
    """The call of jobs from one scaffolded file, each as the task the file makes it."""
    refs = members[0][1]
    first = sources[members[0][0].unit_id]
    tasks = tuple(Task(job, index=sources[job.unit_id].index) for job, _ in members)
    if corr:
        return Call(
            tasks=tasks,
            corr=attrs.evolve(refs[0], task=None),
            script=first.path,
            options=first.options,
        )
    return Call(tasks=tasks, after=refs, script=first.path, options=first.options)
