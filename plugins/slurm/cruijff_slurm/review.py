"""What SLURM will make of a plan, before anything is submitted (``cruijff_review``).

- ``notes["arrays"]``: the ``sbatch`` calls the plan's jobs become, one row per call, from
  :func:`.arrays.plan_calls` with the profile's settings, as ``submit`` and ``scaffold`` call it.
- a warning per job whose time limit is below its expected wall time: SLURM would end it.
- a warning where the profile's queue limits (``max_jobs``, ``array_throttle``) make the jobs
  wait in waves, with the experiment's expected wall time under them.

Fit in GPU memory is the tools' to check (they know what a job holds); not done here.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from cruijff.estimates import Estimate, Range, Review
from cruijff.records import Experiment, JobSpec, Plan, Problem, Severity, Where
from cruijff.yamlfile import YamlError, load_yaml
from cruijff_slurm.arrays import Call, Ref, plan_calls, shared_name
from cruijff_slurm.profile import PLUGIN, Profile, lenient
from cruijff_slurm.render import array_spec, slurm_time

NAME = "slurm"
SHOWN_UNITS = 5
"""How many unit ids a row of the arrays note lists (``jobs`` counts them all)."""
TIME_STEP_MIN = 15
"""A suggested time limit is rounded up to this many minutes."""
_FILE_PATH = re.compile(r"^(?:runs\[\d+\]|controls|evaluation|variables)(?:[.\[]|$)")
"""A setting's source that is a place in the experiment file (not "model size", "default")."""


def review(plan: Plan) -> Review:
    """The plan as SLURM will take it: its calls (a note) and what would go wrong (warnings)."""
    experiment = plan.experiment
    profile = lenient(experiment.scheduler.options, experiment.resolve)
    jobs = list(plan.jobs)
    if not jobs:
        return Review(notes={"arrays": []})
    calls = calls_of(jobs, profile)
    problems = [
        *time_limits(plan, profile),
        *queue_limits(plan, jobs, calls, profile),
    ]
    return Review(problems=problems, notes={"arrays": arrays_note(calls, profile)})


def calls_of(jobs: Sequence[JobSpec], profile: Profile) -> list[Call]:
    """The ``sbatch`` calls of a whole plan, grouped as ``submit`` and ``scaffold`` group it."""
    return plan_calls(
        list(jobs),
        {},
        arrays=profile.arrays,
        max_array_size=profile.max_array_size,
        scheduler=NAME,
    )


# --- the arrays note ------------------------------------------------------------------------


def call_name(call: Call) -> str:
    """The job name SLURM shows for a call: its job's, or what an array's names share."""
    names = [task.job.name for task in call.tasks]
    return names[0] if len(names) == 1 else shared_name(names)


def arrays_note(calls: Sequence[Call], profile: Profile) -> list[dict[str, Any]]:
    """One row per ``sbatch`` call, in submission order: its job name, how many jobs (and the
    first units), what it waits for, and what each of its jobs asks for (the profile's
    defaults where the job asks for none, as the batch script gets them)."""
    names = [call_name(call) for call in calls]
    rows = []
    for number, call in enumerate(calls):
        res = call.tasks[0].job.resources
        units = call.units
        indices = [task.index for task in call.tasks if task.index is not None]
        rows.append(
            {
                "call": number + 1,
                "name": names[number],
                "jobs": len(units),
                "units": units[:SHOWN_UNITS],
                "array": array_spec(indices, profile.array_throttle) if call.array else None,
                "depends_on": depends_on(call, calls, names),
                "dependency": ",".join(kind for kind, _ in call.waits()) or None,
                "gpus": res.gpus,
                "cpus": res.cpus if res.cpus != 1 else (profile.cpus or 1),
                "mem_mb": res.mem_mb or profile.mem_mb,
                "time_s": time_limit(res.time_s, profile),
            }
        )
    return rows


def depends_on(call: Call, calls: Sequence[Call], names: Sequence[str]) -> list[str]:
    """What a call waits for: a whole call by its name, an array task by its unit."""
    return [_ref_name(ref, calls, names) for _, refs in call.waits() for ref in refs]


def _ref_name(ref: Ref, calls: Sequence[Call], names: Sequence[str]) -> str:
    if ref.call is None:  # a job submitted before: none at plan time
        return ref.job_id if ref.task is None else f"{ref.job_id}_{ref.task}"
    if ref.task is None:
        return names[ref.call]
    task = next(t for t in calls[ref.call].tasks if t.index == ref.task)
    return task.job.unit_id


def time_limit(asked: int | None, profile: Profile) -> int | None:
    """A job's time limit in seconds as SLURM gets it: its own, else the profile's, rounded up
    to whole minutes (``--time``); None: the partition's default."""
    seconds = asked or profile.time_s
    return -(-seconds // 60) * 60 if seconds else None


# --- time limits ----------------------------------------------------------------------------


def time_limits(plan: Plan, profile: Profile) -> list[Problem]:
    """A warning per job whose time limit is below its expected wall time."""
    experiment = plan.experiment
    units = {unit.id: unit for unit in plan.units}
    problems = []
    for job in plan.jobs:
        estimate: Estimate | None = plan.estimates.get(job.unit_id)
        limit = time_limit(job.resources.time_s, profile)
        if estimate is None or estimate.hours is None or limit is None:
            continue
        hours = estimate.hours
        if limit >= hours.expected * 3600:
            continue
        unit = units[job.unit_id]
        where, place = _time_place(plan, experiment, unit.id, unit.run, unit.tool, job, profile)
        needed = _rounded_up(hours.high * 3600)
        problems.append(
            Problem(
                where=where,
                message=f"{job.unit_id}: time limit {duration(limit)} is likely too short: "
                f"expected {hours_text(hours)}",
                hint=f"give it at least {duration(needed)}, the high estimate rounded up: "
                + place.replace("{time}", slurm_time(needed)).replace(
                    "{minutes}", str(needed // 60)
                ),
                plugin=PLUGIN,
                severity=Severity.WARNING,
            )
        )
    return problems


def _time_place(
    plan: Plan,
    experiment: Experiment,
    unit_id: str,
    run_name: str,
    tool: str,
    job: JobSpec,
    profile: Profile,
) -> tuple[Where, str]:
    """Where a job's time limit is set, and the hint's fix there (the caller fills in
    ``{time}`` and ``{minutes}``)."""
    if job.resources.time_s is None:  # the profile's default
        where = _profile_key(experiment, profile, "time")
        return where, '`time: "{time}"` in ' + _key_place(experiment, profile, "time")
    try:
        run = experiment.run(run_name)
    except KeyError:
        run = None
    source = _setting_source(plan, unit_id, "resources.time_s")
    evaluation = experiment.tools.get("evaluation") == tool or source.startswith("evaluation")
    if evaluation:
        compute = experiment.evaluation.compute if experiment.evaluation else None
        if compute is not None and compute.time_s is not None and compute.yaml_path:
            source = f"{compute.yaml_path}.time"
        where = experiment.locate(source if _FILE_PATH.match(source) else "evaluation")
        fix = '`time: "{time}"` in evaluation.compute, or `time_minutes: {minutes}` in evaluation'
        return where, fix
    if run is not None and run.yaml_path:
        if run.compute.time_s is not None and run.compute.yaml_path:
            source = f"{run.compute.yaml_path}.time"
        where = experiment.locate(source if source.startswith(run.yaml_path) else run.yaml_path)
        fix = (
            f'`time: "{{time}}"` in {run.yaml_path}.compute, or `time_minutes: {{minutes}}` '
            "in controls for every run"
        )
        return where, fix
    # a run of the grid of variables, which no line writes: the controls set it for all
    where = experiment.locate(source if _FILE_PATH.match(source) else "controls")
    return where, "`time_minutes: {minutes}` in controls"


def _setting_source(plan: Plan, unit_id: str, path: str) -> str:
    generated = plan.generated.get(unit_id)
    for setting in generated.settings if generated is not None else ():
        if setting.path == path:
            return str(setting.source)
    return ""


def _rounded_up(seconds: float) -> int:
    step = TIME_STEP_MIN * 60
    return max(step, math.ceil(seconds / step) * step)


def hours_text(hours: Range) -> str:
    """``1.2 h (0.8 to 2.1)``, or ``3 h`` where the bounds are one."""
    if hours.low == hours.high:
        return Range.of(hours.expected).text("h").partition(" (")[0]
    return hours.text("h")


def duration(seconds: float) -> str:
    """A time limit as people say it: ``30 min``, ``2 h``, ``1 h 15 min``."""
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h" + (f" {minutes} min" if minutes else "")


# --- queue limits ---------------------------------------------------------------------------


def queue_limits(
    plan: Plan, jobs: Sequence[JobSpec], calls: Sequence[Call], profile: Profile
) -> list[Problem]:
    """A warning per queue limit the plan's jobs exceed: ``max_jobs`` (this experiment's jobs
    queued or running at once) and ``array_throttle`` (tasks of one array running at once)."""
    experiment = plan.experiment
    throttled = [
        len(call.tasks)
        for call in calls
        if call.array and profile.array_throttle and len(call.tasks) > profile.array_throttle
    ]
    over = profile.max_jobs is not None and len(jobs) > profile.max_jobs
    if not over and not throttled:
        return []
    wall, free, unknown = expected_wall(plan, jobs, calls, profile)
    then = _wall_text(wall, free, unknown)
    hint = (
        "run fewer runs at a time, or raise {key} in {place} if your site allows more; "
        "otherwise ask the site for a higher limit"
    )
    problems = []
    if over:
        assert profile.max_jobs is not None
        waves = math.ceil(len(jobs) / profile.max_jobs)
        problems.append(
            Problem(
                where=_profile_key(experiment, profile, "max_jobs"),
                message=f"the plan has {len(jobs)} jobs and max_jobs is {profile.max_jobs}: at "
                f"most {profile.max_jobs} of them are queued or running at once, so they go in "
                f"{waves} waves; {then}",
                hint=hint.format(key="max_jobs", place=_key_place(experiment, profile, "max_jobs")),
                plugin=PLUGIN,
                severity=Severity.WARNING,
            )
        )
    if throttled:
        throttle = profile.array_throttle
        assert throttle is not None
        waves = math.ceil(max(throttled) / throttle)
        arrays = f"{len(throttled)} arrays" if len(throttled) > 1 else "an array"
        key = "jobs" if _throttle_key(experiment) == "jobs" else "array_throttle"
        problems.append(
            Problem(
                where=_profile_key(experiment, profile, key),
                message=f"{key} is {throttle}: at most {throttle} tasks of an array run at "
                f"once, and the plan has {arrays} of up to {max(throttled)} jobs, so they run "
                f"in {waves} waves; {then}",
                hint=hint.format(key=key, place=_key_place(experiment, profile, key)),
                plugin=PLUGIN,
                severity=Severity.WARNING,
            )
        )
    return problems


def expected_wall(
    plan: Plan, jobs: Sequence[JobSpec], calls: Sequence[Call], profile: Profile
) -> tuple[Range | None, Range | None, int]:
    """The experiment's wall time in hours under the profile's queue limits and without them
    (None: no job has a time estimate), and how many jobs have none (counted as 0 h)."""
    hours: dict[str, Range] = {}
    for job in jobs:
        estimate = plan.estimates.get(job.unit_id)
        if estimate is not None and estimate.hours is not None:
            hours[job.unit_id] = estimate.hours
    unknown = len(jobs) - len(hours)
    if not hours:
        return None, None, unknown

    def simulated(max_jobs: int | None, throttle: int | None) -> Range:
        ends = []
        for part in ("low", "expected", "high"):
            taken = {unit: getattr(value, part) for unit, value in hours.items()}
            ends.append(wall_hours(jobs, calls, taken, max_jobs=max_jobs, throttle=throttle))
        return Range(*sorted(ends))

    limited = simulated(profile.max_jobs, profile.array_throttle)
    return limited, simulated(None, None), unknown


def wall_hours(
    jobs: Sequence[JobSpec],
    calls: Sequence[Call],
    hours: Mapping[str, float],
    *,
    max_jobs: int | None,
    throttle: int | None,
) -> float:
    """When the last job ends, the jobs taking ``hours`` (0 where missing): the runner submits
    them in plan order as the queue has room (``max_jobs`` queued or running at once), a job
    starts once what it depends on ended and its array runs fewer than ``throttle`` tasks.
    Roughly SLURM's: the cluster is taken to start every job it is given at once."""
    array_of = {}
    for number, call in enumerate(calls):
        if call.array:
            array_of.update({task.job.unit_id: number for task in call.tasks})
    ends: dict[str, float] = {}
    held: list[float] = []  # when each job holding a place in the queue ends
    running: dict[int, list[float]] = {}  # per array, when its started tasks end
    submitted = 0.0
    for job in jobs:
        if max_jobs is not None and len(held) >= max_jobs:
            submitted = max(submitted, heapq.heappop(held))
        waits = (*job.depends_on, *job.after)
        start = max([submitted, *(ends[dep] for dep in waits if dep in ends)])
        array = array_of.get(job.unit_id)
        if throttle and array is not None:
            tasks = [end for end in running.get(array, []) if end > start]
            heapq.heapify(tasks)
            while len(tasks) >= throttle:
                start = max(start, heapq.heappop(tasks))
            running[array] = tasks
        end = start + hours.get(job.unit_id, 0.0)
        ends[job.unit_id] = end
        heapq.heappush(held, end)
        if throttle and array is not None:
            heapq.heappush(running[array], end)
    return max(ends.values(), default=0.0)


def _wall_text(wall: Range | None, free: Range | None, unknown: int) -> str:
    if wall is None or free is None:
        return "no job has a time estimate, so how long that takes is unknown"
    text = f"the experiment takes about {hours_text(wall)}"
    if wall.expected > free.expected:
        text += f", against {hours_text(free)} without the limit"
    if unknown:
        text += f" ({unknown} jobs without a time estimate counted as 0 h)"
    return text


# --- where a profile key is set ---------------------------------------------------------------


def _throttle_key(experiment: Experiment) -> str:
    """Which key sets the array throttle: the section's ``array_throttle``, else its ``jobs``,
    else the profile's ``array_throttle``."""
    options = experiment.scheduler.options
    return "jobs" if "jobs" in options and "array_throttle" not in options else "array_throttle"


def _profile_key(experiment: Experiment, profile: Profile, key: str) -> Where:
    """Where ``key`` is set: the experiment's ``scheduler`` section if it sets it, else the
    profile's file (its line where it can be read), else the section."""
    if key in experiment.scheduler.options or profile.source is None:
        return experiment.locate(f"scheduler.{key}")
    try:
        return load_yaml(profile.source).where(key)
    except (OSError, YamlError):
        return Where(file=profile.source, path=key)


def _key_place(experiment: Experiment, profile: Profile, key: str) -> str:
    if key in experiment.scheduler.options or profile.source is None:
        return "the experiment's scheduler section"
    return f"the cluster profile {profile.source}"
