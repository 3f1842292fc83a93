"""SLURM's words for a job's state, parsed from its text output and mapped onto cruijff's."""

from __future__ import annotations

import datetime as dt

import pytest

from cruijff.records import JobState, JobStatus
from cruijff_slurm.states import (
    Row,
    combine,
    expand_tasks,
    log_cause,
    parse_sacct,
    parse_scontrol,
    parse_squeue,
    row_for,
    with_log,
)

# Seen on SLURM 22.05 (`squeue -h -r -t all -o '%i|%T|%r|%e'`, `sacct -X -P -n -o ...`, with the
# ElapsedRaw and MaxRSS columns since added; steps' rows, which carry MaxRSS, are tested in
# test_slurm_design.py).
SQUEUE = """\
12_1|COMPLETED|None|2026-11-23T08:52:26
12_3|FAILED|NonZeroExitCode|2026-11-23T08:52:26
13_3|CANCELLED|DependencyNeverSatisfied|2026-11-23T08:52:30
3|PENDING|DependencyNeverSatisfied|N/A
4_2|PENDING|JobArrayTaskLimit|N/A
19|COMPLETING|None|2026-11-23T08:52:38
"""
SACCT = """\
12_1|COMPLETED|0:0|None|UNLIMITED|2026-11-23T08:52:26|5||localhost
12_3|FAILED|1:0|None|UNLIMITED|2026-11-23T08:52:26|5||localhost
13_3|CANCELLED|0:0|Dependency|UNLIMITED|2026-11-23T08:52:30|0||None assigned
19|CANCELLED by 0|0:0|None|UNLIMITED|2026-11-23T08:52:38|5||localhost
20|CANCELLED by 0|0:0|Dependency|UNLIMITED|2026-11-23T08:52:38|0||None assigned
21_[1,3,5%2]|CANCELLED by 0|0:0|JobHeldUser|UNLIMITED|2026-11-23T08:56:11|0||None assigned
30|TIMEOUT|0:0|None|00:01:00|2026-11-23T09:30:00|5||localhost
31|OUT_OF_MEMORY|0:125|None|01:00:00|2026-11-23T09:30:00|5||localhost
32|NODE_FAIL|0:0|None|01:00:00|2026-11-23T09:30:00|5||node7
33|PREEMPTED|0:15|None|01:00:00|2026-11-23T09:30:00|5||node7
34|FAILED|0:9|None|01:00:00|2026-11-23T09:30:00|5||node7
35|RUNNING|0:0|None|01:00:00|Unknown|5||node7
"""
SCONTROL = (
    "JobId=18 ArrayJobId=12 ArrayTaskId=3 ArrayTaskThrottle=2 JobName=a QOS=x JobState=x Reason=y "
    "UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901751 Nice=0 Account=root "
    "QOS=normal JobState=FAILED Reason=NonZeroExitCode Dependency=(null) Requeue=1 Restarts=0 "
    "BatchFlag=1 Reboot=0 ExitCode=1:0 RunTime=00:00:01 TimeLimit=UNLIMITED TimeMin=N/A "
    "SubmitTime=2026-11-23T08:52:24 EligibleTime=2026-11-23T08:52:25 "
    "StartTime=2026-11-23T08:52:25 EndTime=2026-11-23T08:52:26 Deadline=N/A\n"
    "JobId=20 JobName=pend UserId=root(0) QOS=normal JobState=CANCELLED Reason=Dependency "
    "Dependency=afterok:19(unfulfilled) ExitCode=0:0 RunTime=00:00:00 TimeLimit=UNLIMITED "
    "TimeMin=N/A StartTime=2026-11-23T08:52:38 EndTime=2026-11-23T08:52:38 Deadline=N/A\n"
)
NOW = dt.datetime(2026, 11, 23, 9, 31)


def status(job_id: str, *, accounting_on: bool = True):
    queue, acct = parse_squeue(SQUEUE), parse_sacct(SACCT)
    return combine(
        job_id, queue.get(job_id), row_for(job_id, acct), accounting_on=accounting_on, now=NOW
    )


def test_parsers_read_the_text_formats():
    queue = parse_squeue(SQUEUE)
    assert queue["3"] == Row(
        job_id="3", state="PENDING", reason="DependencyNeverSatisfied", end="N/A"
    )
    acct = parse_sacct(SACCT)
    assert acct["19"].state == "CANCELLED" and acct["19"].by == "0"
    assert acct["13_3"].nodes == "None assigned"
    control = parse_scontrol(SCONTROL)
    assert control["12_3"].state == "FAILED" and control["12_3"].exit_code == "1:0"
    assert control["20"].reason == "Dependency"


def test_array_specs_expand():
    assert expand_tasks("1,3,5%2") == {1, 3, 5}
    assert expand_tasks("0-6:2,9") == {0, 2, 4, 6, 9}
    acct = parse_sacct(SACCT)
    assert row_for("21_3", acct).state == "CANCELLED"  # an array cancelled before it started
    assert row_for("21_4", acct) is None
    # an array cancelled before it started may also be one plain row under the array's id,
    # but while an array ends, sacct shows some task under that id: not to be taken blindly
    plain = parse_sacct("48|CANCELLED by 0|0:0|None|UNLIMITED|x|0||n\n")
    assert row_for("48_1", plain).state == "CANCELLED"
    assert row_for("48_1", plain, bare=False) is None


@pytest.mark.parametrize(
    ("job_id", "state", "exit_code", "cause"),
    [
        ("12_1", JobState.SUCCEEDED, 0, ""),
        ("12_3", JobState.FAILED, 1, "exit code 1"),
        ("13_3", JobState.DEPENDENCY_NEVER_SATISFIED, None, "did not succeed"),
        ("3", JobState.DEPENDENCY_NEVER_SATISFIED, None, "did not succeed"),
        ("4_2", JobState.PENDING, None, ""),
        ("19", JobState.RUNNING, None, ""),  # squeue still has it completing
        ("20", JobState.CANCELLED, 0, "cancelled by root"),  # the user, not SLURM
        ("21_5", JobState.CANCELLED, 0, "cancelled by root"),
        ("30", JobState.TIMEOUT, 0, "reached its time limit (00:01:00)"),
        ("31", JobState.OUT_OF_MEMORY, 0, "ran out of memory"),
        ("32", JobState.NODE_FAIL, 0, "its node failed (node7)"),
        ("33", JobState.PREEMPTED, 0, "preempted"),
        ("34", JobState.FAILED, 0, "killed by signal 9 (SIGKILL)"),
        ("35", JobState.RUNNING, None, ""),  # gone from squeue, sacct not final yet
        ("99", JobState.UNKNOWN, None, "SLURM no longer knows job 99"),
    ],
)
def test_states_map_onto_cruijffs(job_id, state, exit_code, cause):
    got = status(job_id)
    assert got.state is state
    assert got.exit_code == exit_code
    assert cause in got.cause


def test_accounting_lags_squeue_so_a_just_finished_job_is_still_running():
    queue = Row(job_id="7", state="FAILED", reason="NonZeroExitCode", end="2026-11-23T09:30:59")
    lagging = Row(job_id="7", state="RUNNING", exit_code="0:0")
    assert combine("7", queue, lagging, accounting_on=True, now=NOW).state is JobState.RUNNING
    assert combine("7", queue, None, accounting_on=True, now=NOW).state is JobState.RUNNING
    # ... but not for ever: a minute later squeue's final state is taken as it is
    later = NOW + dt.timedelta(minutes=2)
    assert combine("7", queue, None, accounting_on=True, now=later).state is JobState.FAILED
    # and where there is no accounting at all, squeue's word is final at once
    assert combine("7", queue, None, accounting_on=False, now=NOW).state is JobState.FAILED


def test_log_causes():
    cuda = "step 3\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n"
    assert log_cause(cuda) == (
        JobState.OUT_OF_MEMORY,
        f"CUDA out of memory: {cuda.splitlines()[1]}",
    )
    traceback = (
        'epoch 1\nTraceback (most recent call last):\n  File "x.py", line 3, in <module>\n'
        "    main()\nValueError: learning rate must be positive\n"
    )
    assert log_cause(traceback) == (None, "ValueError: learning rate must be positive")
    host = "slurmstepd: error: Detected 1 oom_kill event in StepId=5.batch.\n"
    assert log_cause(host)[0] is JobState.OUT_OF_MEMORY
    assert log_cause("working\nfake failure\n") == (None, "fake failure")
    assert log_cause("") == (None, "")


def test_with_log_completes_a_failure_from_the_log(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("Traceback (most recent call last):\n  x\nKeyError: 'lora_rank'\n")
    failed = JobStatus(state=JobState.FAILED, exit_code=1, cause="exit code 1")
    assert with_log(failed, log).cause == "exit code 1: KeyError: 'lora_rank'"
    log.write_text("RuntimeError: CUDA error: out of memory\n")
    assert with_log(failed, log).state is JobState.OUT_OF_MEMORY
    timeout = JobStatus(state=JobState.TIMEOUT, cause="reached its time limit")
    assert with_log(timeout, log) is timeout  # SLURM said why already
    assert with_log(failed, tmp_path / "missing.log") is failed
