"""Grouping jobs into sbatch calls: arrays of uniform jobs, aftercorr for evaluations."""

from __future__ import annotations

import pytest

from cruijff.errors import UserError
from cruijff.records import JobHandle, JobSpec, Resources
from cruijff_slurm.arrays import Ref, plan_calls
from cruijff_slurm.scheduler import shared_name


def job(unit: str, *deps: str, gpus: int = 0) -> JobSpec:
    return JobSpec(
        unit_id=unit,
        name=f"demo.{unit}",
        argv=("true",),
        workdir="/tmp",
        log=f"/tmp/{unit}.log",
        depends_on=deps,
        resources=Resources(gpus=gpus),
    )


def trains_and_evals(runs: int) -> list[JobSpec]:
    trains = [job(f"r{i}.train") for i in range(runs)]
    return trains + [job(f"r{i}.eval", f"r{i}.train") for i in range(runs)]


def layout(calls):
    return [
        ([(t.job.unit_id, t.index) for t in call.tasks], call.dependency(["A", "B", "C", "D"]))
        for call in calls
    ]


def test_trainings_form_an_array_and_their_evaluations_wait_task_by_task():
    calls = plan_calls(trains_and_evals(3), {})
    assert layout(calls) == [
        ([("r0.train", 0), ("r1.train", 1), ("r2.train", 2)], ""),
        ([("r0.eval", 0), ("r1.eval", 1), ("r2.eval", 2)], "aftercorr:A"),
    ]


def test_two_hundred_runs_with_an_evaluation_each_are_two_calls():
    assert len(plan_calls(trains_and_evals(200), {})) == 2
    assert len(plan_calls(trains_and_evals(200), {}, arrays=False)) == 400


def test_two_evaluations_of_one_run_go_to_two_arrays():
    jobs = [job("r0.train"), job("r1.train")]
    jobs += [job(f"r{i}.eval.{task}", f"r{i}.train") for i in range(2) for task in ("a", "b")]
    calls = plan_calls(jobs, {})
    assert [len(call.tasks) for call in calls] == [2, 2, 2]
    assert {t.index for t in calls[1].tasks} == {t.index for t in calls[2].tasks} == {0, 1}
    assert (
        calls[1].dependency(["7", "8", "9"])
        == calls[2].dependency(["7", "8", "9"])
        == "aftercorr:7"
    )


def test_different_resources_make_different_calls():
    calls = plan_calls([job("a"), job("b", gpus=1), job("c"), job("d", gpus=1)], {})
    assert layout(calls) == [([("a", 0), ("c", 1)], ""), ([("b", 0), ("d", 1)], "")]


def test_a_lone_job_is_a_plain_job_and_its_dependent_waits_for_it_with_afterok():
    calls = plan_calls([job("r0.train"), job("r0.eval", "r0.train")], {})
    assert layout(calls) == [([("r0.train", None)], ""), ([("r0.eval", None)], "afterok:A")]


def test_without_arrays_every_job_is_its_own_call():
    calls = plan_calls(trains_and_evals(2), {}, arrays=False)
    assert [call.dependency(["1", "2", "3", "4"]) for call in calls] == [
        "",
        "",
        "afterok:1",
        "afterok:2",
    ]


def test_dependencies_on_earlier_submissions():
    handles = {
        "r0.train": JobHandle(scheduler="slurm", id="55_0", name="demo.r0.train"),
        "r1.train": JobHandle(scheduler="slurm", id="55_3", name="demo.r1.train"),
        "solo": JobHandle(scheduler="slurm", id="60", name="demo.solo"),
    }
    jobs = [job("r0.eval", "r0.train"), job("r1.eval", "r1.train"), job("x", "solo", "done")]
    calls = plan_calls(jobs, handles)
    assert layout(calls) == [
        ([("r0.eval", 0), ("r1.eval", 3)], "aftercorr:55"),  # same task numbers as array 55
        ([("x", None)], "afterok:60"),  # "done" is neither here nor in flight: it succeeded
    ]
    assert calls[0].corr == Ref(job_id="55")


def test_a_job_waiting_for_several_jobs_uses_afterok_on_each():
    jobs = [job("a"), job("b"), job("c", "a", "b")]
    assert layout(plan_calls(jobs, {})) == [
        ([("a", 0), ("b", 1)], ""),
        ([("c", None)], "afterok:A_0:A_1"),
    ]


def test_a_job_to_start_after_others_waits_for_their_end_with_afterany():
    """The cells of one model in one job: the others' jobs start once it ended, however it
    ended (``afterany``), beside their own dependencies (``afterok``), each a call of its own;
    one after a job submitted before waits for that job's id."""
    import attrs

    lead = job("base.eval.a", "train")
    others = [attrs.evolve(job(f"base.eval.{n}", "train"), after=(lead.unit_id,)) for n in "bc"]
    earlier = {"old.eval.a": JobHandle(scheduler="slurm", id="70_2", name="demo.old.eval.a")}
    late = attrs.evolve(job("old.eval.b"), after=("old.eval.a", "gone"))
    calls = plan_calls([job("train"), lead, *others, late], earlier)
    assert layout(calls) == [
        ([("old.eval.b", None)], "afterany:70_2"),  # "gone" is neither here nor in flight
        ([("train", None)], ""),
        ([("base.eval.a", None)], "afterok:B"),
        ([("base.eval.b", None)], "afterok:B,afterany:C"),
        ([("base.eval.c", None)], "afterok:B,afterany:C"),
    ]
    with pytest.raises(UserError, match="starts after"):
        plan_calls([others[0], lead], {})


def test_arrays_are_cut_at_the_largest_size_allowed():
    calls = plan_calls([job(f"j{i}") for i in range(5)], {}, max_array_size=2)
    assert [[t.index for t in call.tasks] for call in calls] == [[0, 1], [0, 1], [None]]


def test_a_dependency_on_another_schedulers_job_is_refused():
    handles = {"a": JobHandle(scheduler="local", id="a.1")}
    with pytest.raises(UserError, match=r"job b is local job 'a\.1'"):
        plan_calls([job("b", "a")], handles)


def test_an_array_is_named_after_what_its_jobs_share():
    assert shared_name(["demo.rank4.train", "demo.rank8.train"]) == "demo.*.train"
    assert shared_name(["demo.a", "demo.b.c"]) == "demo.*"
    assert shared_name(["x", "y"]) == "*"
