"""What the SLURM plugin adds to a plan: the profile's GPU for estimates, how the jobs become
``sbatch`` calls (the ``arrays`` note), warnings for time limits and queue limits, and what
accounting measured of a finished job. Against a fake SLURM."""

from __future__ import annotations

import re
import types
from pathlib import Path

import attrs
import pytest

from cruijff import hookimpl
from cruijff.design import check, design
from cruijff.estimates import Estimate, Range
from cruijff.hardware import GPUS
from cruijff.records import JobState, Severity
from cruijff.testing import fake
from cruijff_slurm import plugin
from cruijff_slurm.arrays import plan_calls
from cruijff_slurm.profile import in_folder, lenient, load_profile, profiles_dir, resolve
from cruijff_slurm.review import expected_wall, review, wall_hours
from cruijff_slurm.scheduler import SlurmScheduler
from cruijff_slurm.states import combine, memory_mb, parse_sacct, parse_scontrol, row_for
from cruijff_slurm.testing import FakeSlurm

HOURS: dict[str, Range] = {}
"""The estimate of each unit's wall time, as the test sets it (units not named: none)."""


@hookimpl
def cruijff_estimate(experiment, unit, job, hardware, measurements):
    hours = HOURS.get(unit.id) or HOURS.get(unit.kind)
    return Estimate(hours=hours) if hours is not None else None


@pytest.fixture
def tools(register_plugin):
    """The fake tools, with estimates from HOURS (by unit id or kind)."""
    HOURS.clear()
    module = types.ModuleType("estimating_fake")
    for name in dir(fake):
        if name.startswith("cruijff_"):
            setattr(module, name, getattr(fake, name))
    module.cruijff_estimate = cruijff_estimate
    yield register_plugin(module, name="fake")
    HOURS.clear()


@pytest.fixture
def slurm(register_plugin):
    return register_plugin(plugin, name="slurm")


def write_profile(text: str, name: str = "default") -> Path:
    path = profiles_dir() / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


RUNS = {
    "variables": None,
    "runs": [
        {
            "name": "rank4",
            "model": "tiny",
            "parameters": {"lora_rank": 4},
            "compute": {"time": "0:30:00"},
        },
        {"name": "rank8", "model": "tiny", "parameters": {"lora_rank": 8}},
        {"name": "base", "type": "control", "model": "tiny"},
    ],
    "scheduler": {"name": "slurm"},
}
"""Two fine-tuned runs (rank4 with a 30 minute limit, rank8 with the fake tool's 10) and a
control: five jobs, trains before their evaluations."""


# --- the gpu key ------------------------------------------------------------------------------


def test_a_profile_names_its_gpu_by_type_or_by_figures():
    profile, problems = load_profile(write_profile("gpu: a100-80gb\n"))
    assert problems == []
    assert profile.gpu.name == "a100-80gb"
    assert profile.gpu.memory_gb == GPUS["a100-80gb"][0] == 80
    assert profile.gpu.tflops_bf16 == 312
    # a known type with a figure of its own (a 94 GB H100 NVL)
    profile, _ = load_profile(write_profile("gpu: {type: h100-80gb, memory_gb: 94}\n"))
    assert (profile.gpu.name, profile.gpu.memory_gb, profile.gpu.tflops_bf16) == (
        "h100-80gb",
        94,
        989,
    )
    # a GPU the table lacks, by its figures
    profile, problems = load_profile(write_profile("gpu: {memory_gb: 24, tflops_bf16: 100}\n"))
    assert problems == []
    assert (profile.gpu.memory_gb, profile.gpu.tflops_bf16, profile.gpu.tflops_fp32) == (
        24,
        100,
        None,
    )


def test_a_bad_gpu_is_reported_at_its_line_with_the_known_types():
    path = write_profile("partition: gpu\ngpu: b300\n")
    profile, problems = load_profile(path)
    assert profile.gpu is None and profile.partition == "gpu"
    (problem,) = problems
    assert problem.where.file == path and problem.where.line == 2
    assert problem.message.startswith("gpu type 'b300' is not in cruijff's table (known: ")
    assert all(name in problem.message for name in GPUS)
    assert "memory_gb and tflops_bf16" in problem.message
    _, (half,) = load_profile(write_profile("gpu: {memory_gb: 24}\n"))
    assert half.message.startswith("gpu needs tflops_bf16")
    _, (wrong,) = load_profile(write_profile("gpu: {type: a40, memory: 48}\n"))
    assert wrong.message.startswith("gpu has no key memory")
    _, (negative,) = load_profile(write_profile("gpu: {memory_gb: -1, tflops_bf16: 10}\n"))
    assert negative.message == "gpu memory_gb must be a positive number, not -1"


def test_the_experiments_scheduler_section_may_name_the_gpu(tmp_path):
    write_profile("gpu: a100-40gb\n")
    paths = in_folder(tmp_path)
    assert resolve({}, paths).gpu.name == "a100-40gb"
    assert resolve({"gpu": "l40s"}, paths).gpu.name == "l40s"  # the section's wins
    assert resolve({"gpu": {"memory_gb": 16, "tflops_bf16": 65}}, paths).gpu.memory_gb == 16


def test_validate_reports_a_bad_gpu_in_the_experiment(
    plugin_manager, tools, slurm, make_experiment
):
    write_profile("partition: gpu\n")
    path = make_experiment({"scheduler": {"name": "slurm", "gpu": "tpu-v5"}})
    checked = check(plugin_manager, path)
    (problem,) = [p for p in checked.errors if p.where.path == "scheduler.gpu"]
    assert "gpu type 'tpu-v5' is not in cruijff's table" in problem.message
    assert problem.where.line is not None


# --- hardware -----------------------------------------------------------------------------------


def hardware_of(plugin_manager, path):
    experiment = check(plugin_manager, path).experiment
    return plugin_manager.scheduler("slurm").hardware(experiment)


def test_the_schedulers_hardware_is_the_profiles_gpu(plugin_manager, tools, slurm, make_experiment):
    path = make_experiment({"scheduler": {"name": "slurm"}})
    write_profile("partition: gpu\ngpu: h100-80gb\n")
    hardware = hardware_of(plugin_manager, path)
    assert hardware.gpu.name == "h100-80gb" and hardware.device == "cuda"
    assert (hardware.host_memory_gb, hardware.cpus) == (None, None)
    override = make_experiment({"scheduler": {"name": "slurm", "gpu": "l4"}}, name="l4.yaml")
    assert hardware_of(plugin_manager, override).gpu.name == "l4"
    write_profile("partition: gpu\n")  # a profile that names no GPU: estimates cannot say
    assert hardware_of(plugin_manager, path).gpu is None
    write_profile("partition: cpu\ngpu: h100-80gb\ngpus: false\n")  # jobs get no GPU
    assert hardware_of(plugin_manager, path).device == "cpu"


def test_hardware_never_raises_for_a_bad_profile(plugin_manager, tools, slurm, make_experiment):
    path = make_experiment({"scheduler": {"name": "slurm"}})
    write_profile("gpu: tpu\nmem: lots\n")
    assert hardware_of(plugin_manager, path).gpu is None
    write_profile("gpu: l40s\nmem: lots\n")  # what is valid of a profile with problems
    assert hardware_of(plugin_manager, path).gpu.name == "l40s"
    write_profile("gpu: [\n")  # not YAML
    assert hardware_of(plugin_manager, path).gpu is None
    missing = make_experiment({"scheduler": {"name": "slurm", "profile": "nowhere"}}, name="m.yaml")
    assert hardware_of(plugin_manager, missing).gpu is None


# --- the arrays note ----------------------------------------------------------------------------


def directive(script: str, name: str) -> str | None:
    found = re.search(rf"^#SBATCH --{name}=(.*)$", script, re.MULTILINE)
    return found[1] if found else None


def test_the_arrays_note_is_what_the_scheduler_submits(
    plugin_manager, tools, slurm, make_experiment, tmp_path
):
    write_profile("array_throttle: 3\ntime: '1:00:00'\nmem: 4G\ncpus: 2\n")
    path = make_experiment(
        {"variables": {"lora_rank": [1, 2, 3, 4, 5, 6, 7]}, "scheduler": {"name": "slurm"}}
    )
    plan = design(plugin_manager, path)
    rows = plan.notes["arrays"]
    # the same grouping, from the same function, as what submit sends to sbatch
    fake_slurm = FakeSlurm()
    scheduler = SlurmScheduler(
        {}, plan.experiment.state_dir, paths=plan.experiment.resolve, commands=fake_slurm
    )
    handles = scheduler.submit(plan.jobs, {})
    sbatch = fake_slurm.named("sbatch")
    assert len(rows) == len(sbatch) == 2
    submitted: dict[str, list[str]] = {}
    for job, handle in zip(plan.jobs, handles, strict=True):
        submitted.setdefault(handle.id.partition("_")[0], []).append(job.unit_id)
    for row, call, script, units in zip(
        rows, sbatch, fake_slurm.scripts, submitted.values(), strict=True
    ):
        assert row["jobs"] == len(units) and list(row["units"]) == units[:5]
        assert row["array"] == directive(script, "array")
        assert row["name"] == directive(script, "job-name").strip("'")
        assert row["cpus"] == int(directive(script, "cpus-per-task"))
        assert f"{row['mem_mb']}M" == directive(script, "mem")
        assert row["time_s"] == 600  # the fake tool's 10 minutes, over the profile's hour
        assert directive(script, "time") == "00:10:00"
        said = [arg for arg in call if arg.startswith("--dependency=")]
        assert (row["dependency"] or None) == (
            said[0].split("=")[1].split(":")[0] if said else None
        )
    trains, evals = rows
    # seven trainings and the control's evaluation share one array; each run's evaluation
    # waits for its own training, task by task
    assert trains["jobs"] == 8 and trains["array"] == "0-7%3"
    assert list(trains["units"]) == [f"rank{n}.train" for n in range(1, 6)]
    assert list(trains["depends_on"]) == [] and trains["dependency"] is None
    assert evals["jobs"] == 7 and evals["dependency"] == "aftercorr"
    assert list(evals["depends_on"]) == [trains["name"]] == ["demo.*"]
    assert (evals["gpus"], evals["cpus"], evals["mem_mb"]) == (0, 2, 100)
    # no estimates: no time limit to doubt; only the throttle makes the arrays wait
    assert [w.message.split(",")[0] for w in plan.warnings] == [
        "array_throttle is 3: at most 3 tasks of an array run at once"
    ]


def test_the_arrays_note_follows_the_profiles_arrays_setting(
    plugin_manager, tools, slurm, make_experiment
):
    write_profile("arrays: false\n")
    plan = design(plugin_manager, make_experiment({"scheduler": {"name": "slurm"}}))
    rows = plan.notes["arrays"]
    assert [row["jobs"] for row in rows] == [1] * len(plan.jobs)
    calls = plan_calls(list(plan.jobs), {}, arrays=False)
    assert [list(row["units"]) for row in rows] == [call.units for call in calls]
    assert [list(row["depends_on"]) for row in rows] == [
        [rows[ref.call]["name"] for ref in call.after] for call in calls
    ]
    assert any(row["depends_on"] for row in rows)  # evaluations wait for their training


def test_no_review_for_another_scheduler(plugin_manager, tools, slurm, make_experiment):
    write_profile("max_jobs: 1\n")
    plan = design(plugin_manager, make_experiment({"scheduler": {"name": "local"}}))
    assert "arrays" not in plan.notes and plan.warnings == ()


# --- time limits --------------------------------------------------------------------------------


def test_a_time_limit_below_the_expected_time_is_a_warning_at_the_run(
    plugin_manager, tools, slurm, make_experiment
):
    write_profile("partition: gpu\n")
    path = make_experiment(RUNS)
    HOURS["rank4.train"] = Range(0.8, 1.2, 2.1)  # over its 30 minutes
    HOURS["rank8.train"] = Range(0.05, 0.15, 0.4)  # 9 minutes of its 10: fine
    HOURS["eval"] = Range(0.01, 0.1, 0.2)  # 6 minutes of 10: fine
    plan = design(plugin_manager, path)
    warnings = [w for w in plan.warnings if "time limit" in w.message]
    assert [w.message for w in warnings] == [
        "rank4.train: time limit 30 min is likely too short: expected 1.2 h (0.8 to 2.1)",
    ]
    (warning,) = warnings
    assert warning.severity is Severity.WARNING and warning.plugin == "slurm"
    assert warning.where.path == "runs[0].compute.time"  # where that limit is written
    lines = path.read_text().splitlines()
    assert lines[warning.where.line - 1].strip() == "time: 0:30:00"
    # the high bound, rounded up to a quarter of an hour, where this run sets its limit
    assert "at least 2 h 15 min" in warning.hint
    assert '`time: "02:15:00"` in runs[0].compute' in warning.hint
    assert "time_minutes: 135" in warning.hint


def test_an_estimate_just_under_the_limit_says_nothing_and_just_over_does(
    plugin_manager, tools, slurm, make_experiment
):
    write_profile("partition: gpu\n")
    path = make_experiment(RUNS)
    HOURS["rank8.train"] = Range(0.1, 9.9 / 60, 0.3)  # 9.9 of its 10 minutes
    assert not [w for w in design(plugin_manager, path).warnings if "time limit" in w.message]
    HOURS["rank8.train"] = Range(0.1, 10.2 / 60, 0.3)
    (warning,) = [w for w in design(plugin_manager, path).warnings if "time limit" in w.message]
    assert warning.message.startswith("rank8.train: time limit 10 min is likely too short")
    assert warning.where.path == "runs[1]"


def test_an_evaluation_too_long_for_its_limit_points_at_the_evaluation(
    plugin_manager, tools, slurm, make_experiment
):
    write_profile("partition: gpu\n")
    path = make_experiment(
        {**RUNS, "evaluation": {"tasks": [{"name": "caps"}], "compute": {"time": 5}}}
    )
    HOURS["eval"] = Range(0.1, 0.2, 0.3)  # 12 minutes of 5
    warnings = [w for w in design(plugin_manager, path).warnings if "time limit" in w.message]
    assert len(warnings) == 3  # one per evaluation cell
    assert all(
        w.message.endswith("time limit 5 min is likely too short: expected 0.2 h (0.1 to 0.3)")
        for w in warnings
    )
    assert {w.where.path for w in warnings} == {"evaluation.compute.time"}
    assert "in evaluation.compute" in warnings[0].hint and "00:30:00" in warnings[0].hint


def test_the_profiles_default_limit_counts_where_a_job_asks_for_none(tmp_path):
    plan = hand_plan(tmp_path, time_s=None, hours=Range(1, 2, 3))
    profile = write_profile("time: '1:00:00'\n")
    (warning,) = review(plan).problems
    assert "time limit 1 h is likely too short: expected 2 h (1 to 3)" in warning.message
    assert warning.where.file == profile and warning.where.line == 1
    assert f"the cluster profile {profile}" in warning.hint and "03:00:00" in warning.hint
    write_profile("partition: gpu\n")  # no limit at all: the partition's, which nobody knows
    assert review(plan).problems == ()


# --- queue limits -------------------------------------------------------------------------------


def waves(plan):
    return [w for w in plan.warnings if "waves" in w.message]


def test_more_jobs_than_max_jobs_go_in_waves(plugin_manager, tools, slurm, make_experiment):
    profile = write_profile("partition: gpu\nmax_jobs: 2\n")
    path = make_experiment(
        {**RUNS, "runs": [{**RUNS["runs"][0], "compute": {}}, *RUNS["runs"][1:]]}
    )
    HOURS["train"] = Range(0.5, 1, 2)
    HOURS["eval"] = Range(0.25, 0.5, 1)
    plan = design(plugin_manager, path)
    (warning,) = waves(plan)
    # trains 0-1 h; the evaluations wait for a place in the queue, the control's for the last
    assert warning.message == (
        "the plan has 5 jobs and max_jobs is 2: at most 2 of them are queued or running at "
        "once, so they go in 3 waves; the experiment takes about 2 h (1 to 4), against 1.5 h "
        "(0.75 to 3) without the limit"
    )
    assert warning.severity is Severity.WARNING
    assert warning.where.file == profile and warning.where.line == 2
    assert "run fewer runs" in warning.hint and "raise max_jobs" in warning.hint
    assert "ask the site" in warning.hint
    write_profile("partition: gpu\nmax_jobs: 5\n")  # all fit: no waves
    assert waves(design(plugin_manager, path)) == []


def test_an_array_throttle_runs_an_array_in_waves(plugin_manager, tools, slurm, make_experiment):
    write_profile("partition: gpu\n")
    path = make_experiment(
        {"variables": {"lora_rank": [1, 2, 3, 4, 5, 6]}, "scheduler": {"name": "slurm", "jobs": 2}}
    )
    HOURS["train"] = Range.of(1)
    plan = design(plugin_manager, path)
    (warning,) = waves(plan)
    # seven tasks (six trainings and the control's evaluation) two at a time; the
    # evaluations have no estimate
    assert warning.message == (
        "jobs is 2: at most 2 tasks of an array run at once, and the plan has 2 arrays of up "
        "to 7 jobs, so they run in 4 waves; the experiment takes about 3 h, against 1 h "
        "without the limit (7 jobs without a time estimate counted as 0 h)"
    )
    assert warning.where.path == "scheduler.jobs" and warning.where.line is not None
    assert "the experiment's scheduler section" in warning.hint


def test_without_estimates_the_waves_are_still_said(tmp_path):
    write_profile("max_jobs: 1\n")
    plan = hand_plan(tmp_path, time_s=600, hours=None)
    (warning,) = review(plan).problems
    assert "2 jobs and max_jobs is 1" in warning.message and "in 2 waves" in warning.message
    assert "no job has a time estimate" in warning.message


def test_the_wall_time_follows_dependencies_and_limits(tmp_path):
    plan = hand_plan(tmp_path, time_s=600, hours=None)
    jobs = list(plan.jobs)  # a.train, then a.eval after it
    calls = plan_calls(jobs, {})
    hours = {"a.train": 2.0, "a.eval": 1.0}
    assert wall_hours(jobs, calls, hours, max_jobs=None, throttle=None) == 3.0
    assert wall_hours(jobs, calls, hours, max_jobs=1, throttle=None) == 3.0
    independent = [attrs.evolve(job, depends_on=()) for job in jobs]
    calls = plan_calls(independent, {})
    assert wall_hours(independent, calls, hours, max_jobs=None, throttle=None) == 2.0
    assert wall_hours(independent, calls, hours, max_jobs=1, throttle=None) == 3.0
    assert wall_hours(independent, calls, hours, max_jobs=None, throttle=1) == 3.0  # one array
    lenient_profile = lenient({}, in_folder(tmp_path))
    wall, free, unknown = expected_wall(plan, jobs, plan_calls(jobs, {}), lenient_profile)
    assert (wall, free, unknown) == (None, None, 2)


def hand_plan(tmp_path, *, time_s, hours):
    """A plan of two jobs built by hand: a training and its evaluation, on slurm."""
    from cruijff.records import (
        Experiment,
        Generated,
        JobSpec,
        Plan,
        Resources,
        SchedulerConfig,
        Unit,
    )

    experiment = Experiment(
        name="demo",
        file=tmp_path / "experiment.yaml",
        directory=tmp_path,
        scheduler=SchedulerConfig(name="slurm"),
    )
    units, generated, estimates = [], {}, {}
    for unit_id, deps in (("a.train", ()), ("a.eval", ("a.train",))):
        unit = Unit(
            id=unit_id,
            tool="fake",
            kind=unit_id.split(".")[1],
            run="a",
            directory=tmp_path / unit_id,
            depends_on=deps,
        )
        job = JobSpec(
            unit_id=unit_id,
            name=f"demo.{unit_id}",
            argv=("true",),
            workdir=tmp_path / unit_id,
            log=tmp_path / unit_id / "job.log",
            depends_on=deps,
            resources=Resources(time_s=time_s),
        )
        units.append(unit)
        generated[unit_id] = Generated(job=job)
        estimates[unit_id] = Estimate(hours=hours) if hours is not None and deps == () else None
    return Plan(experiment=experiment, units=units, generated=generated, estimates=estimates)


# --- what accounting measured -------------------------------------------------------------------

SACCT_STEPS = """\
200_1|COMPLETED|0:0|None|04:00:00|2026-11-23T09:30:00|3725||gpu7
200_1.batch|COMPLETED|0:0|||2026-11-23T09:30:00|3725|18874368K|gpu7
200_1.extern|COMPLETED|0:0|||2026-11-23T09:30:00|3725|1024K|gpu7
200_1.0|COMPLETED|0:0|||2026-11-23T09:30:00|3700|20.5G|gpu7
201|FAILED|1:0|None|01:00:00|2026-11-23T09:31:00|12||gpu2
201.batch|FAILED|1:0|||2026-11-23T09:31:00|12|512M|gpu2
202|CANCELLED by 0|0:0|None|01:00:00|2026-11-23T09:32:00|0||None assigned
203|RUNNING|0:0|None|01:00:00|Unknown|60||gpu3
203.batch|RUNNING|0:0|||Unknown|60||gpu3
"""


def test_sacct_steps_give_the_jobs_peak_memory_and_wall_time():
    rows = parse_sacct(SACCT_STEPS)
    assert set(rows) == {"200_1", "201", "202", "203"}  # steps are no jobs of their own
    assert rows["200_1"].peak_memory_mb == 20.5 * 1024  # the largest step, in MB
    assert rows["200_1"].wall_s == 3725
    assert rows["201"].peak_memory_mb == 512 and rows["201"].wall_s == 12
    assert rows["202"].peak_memory_mb is None and rows["202"].wall_s == 0
    assert rows["203"].peak_memory_mb is None  # an empty MaxRSS
    status = combine("200_1", None, rows["200_1"], accounting_on=True)
    assert status.state is JobState.SUCCEEDED
    assert (status.peak_memory_mb, status.wall_s) == (20992.0, 3725.0)
    failed = combine("201", None, rows["201"], accounting_on=True)
    assert failed.state is JobState.FAILED and failed.peak_memory_mb == 512
    running = combine("203", None, rows["203"], accounting_on=True)
    assert running.state is JobState.RUNNING and running.wall_s is None


@pytest.mark.parametrize(
    ("text", "mb"),
    [
        ("18874368K", 18432.0),
        ("2048M", 2048.0),
        ("1.5G", 1536.0),
        ("1T", 1024.0**2),
        ("1048576", 1.0),  # bytes
        ("0", None),  # a step too short to be sampled: nothing measured, not 0 MB
        ("", None),
        ("  ", None),
        ("n/a", None),
        ("12X", None),
    ],
)
def test_maxrss_units(text, mb):
    assert memory_mb(text) == mb


def test_an_unreadable_elapsed_time_is_none():
    rows = parse_sacct(
        "7|COMPLETED|0:0|None|01:00:00|x|||n1\n8|COMPLETED|0:0|None|01:00:00|x|?|1K|n1\n"
    )
    assert rows["7"].wall_s is None and rows["7"].peak_memory_mb is None
    assert rows["8"].wall_s is None and rows["8"].peak_memory_mb == 1 / 1024


def test_scontrol_gives_the_run_time_where_accounting_is_off():
    line = (
        "JobId=20 JobName=x UserId=u(1) QOS=normal JobState=COMPLETED Reason=None "
        "Dependency=(null) ExitCode=0:0 RunTime=1-02:03:04 TimeLimit=2-00:00:00 TimeMin=N/A "
        "StartTime=x EndTime=2026-11-23T09:30:00 Deadline=N/A\n"
    )
    row = row_for("20", parse_scontrol(line))
    assert row.wall_s == ((24 + 2) * 60 + 3) * 60 + 4
    assert combine("20", None, row, accounting_on=False).wall_s == row.wall_s


def test_a_poll_reports_what_sacct_measured(tmp_path):
    from cruijff.records import JobHandle

    fake_slurm = FakeSlurm()
    fake_slurm.set("300", "COMPLETED", in_queue=False, elapsed="42", max_rss="3G")
    scheduler = SlurmScheduler(
        {}, tmp_path / ".cruijff", commands=fake_slurm, profile=lenient({}, in_folder(tmp_path))
    )
    handle = JobHandle(scheduler="slurm", id="300", name="demo.a.train")
    status = scheduler.poll([handle])[handle]
    assert status.state is JobState.SUCCEEDED
    assert (status.peak_memory_mb, status.wall_s) == (3072.0, 42.0)
    (sacct,) = fake_slurm.named("sacct")
    assert "-X" not in sacct  # the steps' rows are where MaxRSS is
