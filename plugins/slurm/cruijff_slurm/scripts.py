"""Batch scripts written by ``cruijff scaffold``, to read (and edit) before anything is
submitted, and the choice ``submit`` makes of them.

In the experiment directory::

    slurm/<group>.slurm          the script of a job array: the plan's jobs that ask for the same
                                 resources and wait alike (:func:`.arrays.plan_calls`)
    <job folder>/finetune.slurm  each job's script (``eval.slurm`` for an evaluation): a link to
                                 its array's script, or the script itself for a job in no array
    .cruijff/slurm/scripts.json  each unit's file and task there, and what cruijff wrote

A link, not a copy: an array is one ``sbatch`` of one file, so a copy per run would be a file
that never runs. Through the link a user reads, and edits, exactly what runs; the script says at
the top which unit each of its tasks is. To make one run differ, replace its link with a file:
that run's task is then submitted from that file, alone.

``submit`` hands sbatch these files as they stand, edited or not (an edit is said), choosing the
tasks with ``--array=`` on the command line and adding there ``--chdir`` and ``--output`` (a
call folder of its own: how a queued job is known to be this experiment's, and how each task's
output reaches its log), and ``--time`` or ``--mem`` for a retry given more. A job changed in
any other way since scaffold (a retry with another command) gets a script rendered for it, as
in a submission without scaffold.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from cruijff.convert import to_plain
from cruijff.errors import UserError
from cruijff.fsutil import read_json
from cruijff.records import ArtifactKind, FileSpec, JobSpec
from cruijff.scheduler import LinkSpec
from cruijff.state import ExperimentState
from cruijff_slurm.arrays import Call, Source, plan_calls, shared_name
from cruijff_slurm.profile import Profile
from cruijff_slurm.render import Renderer, call_context, limits, slurm_path

FOLDER = "slurm"
"""The arrays' scripts' folder in the experiment directory (the layout's in ``.cruijff``)."""
LAYOUT = "scripts.json"
STEMS = {
    ArtifactKind.HF_MODEL: "finetune",
    ArtifactKind.LORA_ADAPTER: "finetune",
    ArtifactKind.DATASET: "data",
}
"""A job's script is named after what it makes; a job that makes something else is "eval"."""
_TASK = re.compile(r"^# cruijff task (\d+): (\S+)$", re.MULTILINE)
_JOB = re.compile(r"^# cruijff job: (\S+)$", re.MULTILINE)


class EditedScript(UserWarning):
    """A scaffolded batch script is submitted as the user edited it (or passed over)."""


@attrs.frozen
class Choice:
    """What ``submit`` takes from scaffold: each unit's file, the edited files it submits
    (with their units), and units whose edited file it cannot use (changed since)."""

    sources: dict[str, Source]
    edited: dict[Path, list[str]]
    passed_over: dict[str, Path]


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def job_key(job: JobSpec) -> str:
    """What must be unchanged for a job to run from its scaffolded script: all of it but its
    time and memory limits, which sbatch's command line can raise."""
    resources = attrs.evolve(job.resources, time_s=None, mem_mb=None)
    return digest(json.dumps(to_plain(attrs.evolve(job, resources=resources)), sort_keys=True))


def job_file(job: JobSpec, directory: Path, taken: set[Path]) -> Path | None:
    """Where a job's script (or link) goes in its folder: ``finetune.slurm`` for a job that
    makes a model (cruijff_kit's name), ``data.slurm`` for a dataset, ``eval.slurm`` for other
    outputs, ``job.slurm`` for none; None for a folder outside the experiment."""
    workdir = Path(job.workdir).absolute()
    if not workdir.is_relative_to(directory):
        return None
    kinds = [artifact.kind for artifact in job.produces]
    stem = next((STEMS[kind] for kind in kinds if kind in STEMS), "eval" if kinds else "job")
    path = workdir / f"{stem}.slurm"
    if path in taken:  # two jobs in one folder
        path = workdir / f"{job.unit_id}.slurm"
    taken.add(path)
    return path


def group_name(units: Sequence[str], taken: set[str]) -> str:
    """An array script's name: what its units' ids share (``rank4.train``, ``rank8.train`` ->
    ``train``), else the first and a count; ``-2``... where two would share one."""
    name = ".".join(part for part in shared_name(units).split(".") if part != "*")
    name = name or f"{units[0]}+{len(units) - 1}"
    unique, number = name, 1
    while unique in taken:
        number += 1
        unique = f"{name}-{number}"
    taken.add(unique)
    return unique


def header(call: Call) -> str:
    """The comment under the ``#!`` line: what the file is, and which unit each task is (in a
    form :func:`check_tasks` reads back)."""
    lines = [
        "# Written by `cruijff scaffold`. `cruijff run` submits this file as it stands, adding",
        "# on sbatch's command line the tasks to run (--array), what they wait for",
        "# (--dependency), and --chdir and --output (a folder of its own in .cruijff/slurm/jobs).",
        "# Your edits are kept (`cruijff scaffold --force` rewrites it); keep these lines:",
    ]
    if call.array:
        lines += [f"# cruijff task {task.index}: {task.job.unit_id}" for task in call.tasks]
    else:
        lines.append(f"# cruijff job: {call.tasks[0].job.unit_id}")
    return "".join(line + "\n" for line in lines)


def build(
    jobs: Sequence[JobSpec], profile: Profile, renderer: Renderer, directory: Path, state: Path
) -> list[FileSpec | LinkSpec]:
    """Every job's script (arrays as ``plan_calls`` groups the whole plan), the links to the
    arrays' scripts, and the layout ``submit`` reads (``state``: the ``.cruijff`` folder)."""
    calls = plan_calls(list(jobs), {}, arrays=profile.arrays, max_array_size=profile.max_array_size)
    folder = directory / FOLDER
    files: list[FileSpec | LinkSpec] = []
    layout: dict[str, Any] = {}
    names: set[str] = set()
    taken: set[Path] = set()
    for call in calls:
        job_names = [task.job.name for task in call.tasks]
        job_name = job_names[0] if len(job_names) == 1 else shared_name(job_names)
        context = call_context(call, profile, folder, job_name, profile.array_throttle)
        own = {task.job.unit_id: job_file(task.job, directory, taken) for task in call.tasks}
        if call.array:
            name = group_name(call.units, names)
            script = folder / f"{name}.slurm"
            # by hand, sbatch writes task i's output there; cruijff run sends it to the log
            context["output"] = context["error"] = slurm_path(folder) + f"/{name}.%a.log"
        else:
            script = own[call.units[0]] or folder / f"{group_name(call.units, names)}.slurm"
            context["chdir"] = str(script.parent)  # a folder that exists, for sbatch by hand
        first, _, rest = renderer.render(context).partition("\n")
        text = f"{first}\n{header(call)}{rest}"
        files.append(FileSpec(path=script, content=text, executable=True))
        for task in call.tasks:
            job, path = task.job, own[task.job.unit_id]
            if call.array and path is not None:
                files.append(LinkSpec(path=path, target=script))
            time, mem = limits(job.resources, profile)
            layout[job.unit_id] = {
                "file": str((path or script).relative_to(directory)),
                "index": task.index,
                "job": job_key(job),
                "text": digest(text),
                "time": time,
                "mem": mem,
            }
    content = json.dumps({"units": layout}, indent=2, sort_keys=True) + "\n"
    files.append(FileSpec(path=state / FOLDER / LAYOUT, content=content))
    return files


def choose(jobs: Sequence[JobSpec], profile: Profile, directory: Path, state: Path) -> Choice:
    """The scaffolded file each job is submitted from, where it has one it can run from.

    Raises UserError when an edited file no longer says it runs a job as the task the
    experiment makes it: submitting it could run another unit's command under this one's name.
    """
    data = read_json(state / FOLDER / LAYOUT, fix="run `cruijff scaffold` to write it again")
    layout = data.get("units") if isinstance(data, dict) else None
    if not isinstance(layout, Mapping):
        layout = {}  # no scaffold, or a damaged record of it: every script rendered anew
    sources: dict[str, Source] = {}
    edited: dict[Path, list[str]] = {}
    passed_over: dict[str, Path] = {}
    texts: dict[Path, str] = {}  # an array's file is read once, not once per task
    for job in jobs:
        entry = layout.get(job.unit_id)
        if not well_formed(entry):
            continue  # no scaffolded script (or a damaged record of one): rendered anew
        own = directory / entry["file"]
        try:
            path = own.resolve(strict=True)
            if path not in texts:
                texts[path] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # gone since scaffold: rendered anew, as without scaffold
        text = texts[path]
        changed = digest(text) != entry["text"]
        options = _raised(entry, job, profile)
        if entry["job"] != job_key(job) or options is None:
            if changed:
                passed_over[job.unit_id] = own
            continue
        if changed:
            check_tasks(text, path, job.unit_id, entry["index"])
            edited.setdefault(path, []).append(job.unit_id)
        sources[job.unit_id] = Source(path=path, index=entry["index"], options=options)
    return Choice(sources=sources, edited=edited, passed_over=passed_over)


ENTRY = {"file": (str,), "text": (str,), "job": (str,), "index": (int, type(None))}
ENTRY |= {"time": (str, type(None)), "mem": (str, type(None))}
"""What a unit's entry in ``scripts.json`` holds, and the types of each."""


def well_formed(entry: Any) -> bool:
    """Whether a unit's entry in ``scripts.json`` is one :func:`scaffold_files` writes: a
    file edited by hand or cut short counts as no scaffolded script, never a KeyError."""
    return (
        isinstance(entry, dict)
        and all(
            key in entry and isinstance(entry[key], kinds) and not isinstance(entry[key], bool)
            for key, kinds in ENTRY.items()
        )
        and bool(entry["file"])
    )


def _raised(entry: Mapping[str, Any], job: JobSpec, profile: Profile) -> tuple[str, ...] | None:
    """sbatch options for the limits a job has now but not in its script (a retry given more
    time); None where an option cannot say it (a limit taken away)."""
    time, mem = limits(job.resources, profile)
    options = []
    for flag, now, then in (("--time", time, entry["time"]), ("--mem", mem, entry["mem"])):
        if now != then:
            if not now:
                return None
            options.append(f"{flag}={now}")
    return tuple(options)


def check_tasks(text: str, path: Path, unit: str, index: int | None) -> None:
    """An edited file must still say it runs ``unit`` as task ``index`` (its header lines)."""
    if index is None:
        ok = _JOB.findall(text) == [unit]
    else:
        ok = {found: int(number) for number, found in _TASK.findall(text)}.get(unit) == index
    if not ok:
        task = f"as task {index} " if index is not None else ""
        raise UserError(
            f"{path} was edited and no longer says it runs {unit} {task}(its '# cruijff "
            f"{'task N' if index is not None else 'job'}: UNIT' lines); nothing was submitted",
            hint="put those lines back, or move the file aside and run `cruijff scaffold` for "
            "one that matches the experiment (`cruijff scaffold --force` drops your edit)",
        )


def tell(choice: Choice, state: Path) -> None:
    """Say (a warning, which the command line prints) and log in the experiment's events which
    edited scripts are submitted, and which are passed over."""
    if not (choice.edited or choice.passed_over):
        return
    events = ExperimentState(state)
    for path, units in choice.edited.items():
        warnings.warn(
            EditedScript(
                f"submitting {_shown(path, state)} as you edited it ({', '.join(units)}); "
                "`cruijff scaffold --force` rewrites it"
            ),
            stacklevel=3,
        )
        events.log("slurm-script-edited", script=str(path), units=units)
    for unit, path in choice.passed_over.items():
        warnings.warn(
            EditedScript(
                f"{unit} changed since it was scaffolded (a retry adjusted it), so it runs from "
                f"a script rendered for it, without your edits to {_shown(path, state)}"
            ),
            stacklevel=3,
        )
        events.log("slurm-script-passed-over", script=str(path), unit=unit)


def _shown(path: Path, state: Path) -> str:
    """``path`` from the experiment directory, where it is inside."""
    directory = state.parent.resolve()
    return str(path.relative_to(directory)) if path.is_relative_to(directory) else str(path)
