"""The SLURM scheduler against a real SLURM 22.05 cluster (:mod:`slurmcluster`).

The TIMEOUT test needs 60-90 s of SLURM's time: its job is submitted before the other tests of
this module and checked last, so the wait overlaps with them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import attrs
import pytest
import yaml
from slurmcluster import USER, accounted, cancel_leftovers, our_jobs, slurm

from cruijff import hookimpl
from cruijff.manager import PluginManager
from cruijff.orchestrator import run_experiment, status
from cruijff.records import (
    Generated,
    JobSpec,
    JobState,
    ParseReport,
    Resources,
    Role,
    Tool,
    Unit,
    Validation,
)
from cruijff.runner import RunOptions
from cruijff.state import ExperimentState
from cruijff.testing import DEFAULT_EXPERIMENT, merge
from cruijff.testing.contract import SchedulerContract
from cruijff_slurm import plugin as slurm_plugin
from cruijff_slurm.commands import Result, SlurmCommands
from cruijff_slurm.profile import Profile
from cruijff_slurm.scheduler import SlurmScheduler

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

FAST = RunOptions(poll_interval=0.2, max_interval=1.0)


@pytest.fixture
def manager(slurm_cluster, plugin_manager, register_plugin, fake_tools):
    register_plugin(slurm_plugin, name="slurm")
    return plugin_manager


@pytest.fixture
def experiment(make_experiment, isolated_config, tmp_path, slurm_cluster):
    """Write a cluster profile into the (isolated) config folder and an experiment that runs on
    slurm (``named=False``: that does not say so); cancels whatever of it is still queued at
    the end."""

    def make(changes=None, *, named=True, **profile) -> Path:
        folder = isolated_config / "cruijff" / "profiles"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "default.yaml").write_text(yaml.safe_dump({"poll_interval": 0, **profile}))
        scheduler = {"scheduler": {"name": "slurm"}} if named else {}
        return make_experiment(
            text=yaml.safe_dump(merge(DEFAULT_EXPERIMENT, {**scheduler, **(changes or {})}))
        )

    yield make
    cancel_leftovers(tmp_path)


def finished(scheduler: SlurmScheduler, handles, timeout: float = 60) -> dict:
    """Poll until every job has finished (or ``timeout`` seconds passed): their statuses."""
    deadline = time.monotonic() + timeout
    while True:
        states = scheduler.poll(handles)
        if all(s.state.finished for s in states.values()) or time.monotonic() >= deadline:
            return states
        time.sleep(0.3)


def trace_rows(trace: Path) -> list[tuple[str, str, float]]:
    if not trace.exists():
        return []
    return [
        (kind, unit, float(at))
        for kind, unit, _pid, at in (line.split() for line in trace.read_text().splitlines())
    ]


def most_at_once(rows, units) -> int:
    """The most of ``units`` running at the same moment, from the trace."""
    events = sorted((at, 1 if kind == "start" else -1) for kind, unit, at in rows if unit in units)
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


# --- a job that times out once: submitted first, checked last -------------------------------


class Sleepy:
    """A tool whose one job sleeps past its 1-minute limit the first time and finishes at once
    the second time (a marker file remembers the first)."""

    @hookimpl
    def cruijff_tools(self):
        yield Tool(name="sleepy", role=Role.PREPARATION, produces=("hf-model",))

    @hookimpl
    def cruijff_parse(self, experiment, keys):
        return ParseReport() if "sleepy" in experiment.tools.values() else None

    @hookimpl
    def cruijff_select(self, experiment, tool, upstream):
        if tool.name != "sleepy":
            return None
        return tuple(
            Unit(
                id=f"{run.name}.train",
                tool="sleepy",
                kind="train",
                run=run.name,
                directory=run.directory,
            )
            for run in experiment.runs
        )

    @hookimpl
    def cruijff_generate(self, experiment, unit):
        if unit.tool != "sleepy":
            return None
        script = "if [ -e first ]; then touch done; exit 0; fi; touch first; sleep 600"
        job = JobSpec(
            unit_id=unit.id,
            name=f"{experiment.name}.{unit.id}",
            argv=("bash", "-c", script),
            workdir=unit.directory,
            log=unit.directory / "job.log",
            resources=Resources(time_s=60),
        )
        return Generated(job=job)

    @hookimpl
    def cruijff_validate(self, experiment, unit, status):
        if unit.tool != "sleepy":
            return None
        return Validation(unit_id=unit.id, ok=(unit.directory / "done").exists())


TIMEOUT_TEST = "test_a_timeout_is_retried_with_more_time"


@pytest.fixture(scope="module", autouse=True)
def early_timeout(request, tmp_path_factory):
    """Submit the TIMEOUT experiment (detached) before this module's other tests run."""
    if not any(item.name == TIMEOUT_TEST for item in request.session.items):
        yield None
        return
    request.getfixturevalue("slurm_cluster")
    folder = tmp_path_factory.mktemp("timeout")
    (folder / "models" / "tiny").mkdir(parents=True)
    (folder / "models" / "tiny" / "config.json").write_text("{}")
    (folder / "data.json").write_text("{}")
    (folder / "cluster.yaml").write_text("poll_interval: 0\n")
    experiment = {
        "experiment": {"name": "slow"},
        "tools": {"preparation": "sleepy"},
        "models": {"base": [{"name": "tiny", "path": "models/tiny"}]},
        "data": {"training": {"path": "data.json"}},
        "runs": [{"name": "slow", "model": "tiny"}],
        "scheduler": {"name": "slurm", "profile": "cluster.yaml"},
    }
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))
    manager = PluginManager(entry_points=False)
    manager.register(Sleepy(), name="sleepy")
    manager.register(slurm_plugin, name="slurm")
    run_experiment(manager, path, attrs.evolve(FAST, detach=True))
    yield manager, path
    cancel_leftovers(folder)


# --- the tests --------------------------------------------------------------------------------


def test_an_experiment_runs_with_evaluations_after_their_trainings(
    manager, experiment, trace, cli, tmp_path
):
    path = experiment({"variables": {"lora_rank": [2, 4, 8]}}, named=False, array_throttle=8)
    run = cli("run", path, "--scheduler", "slurm")
    assert run.exit_code == 0, run.output
    assert "submitted 7 jobs to slurm" in run.output and "7 of 7 jobs succeeded" in run.output
    records = ExperimentState(tmp_path / ".cruijff").records()
    assert {u: r.state for u, r in records.items()} == dict.fromkeys(
        [
            *(f"rank{n}.train" for n in (2, 4, 8)),
            *(f"rank{n}.eval.caps.e1" for n in (2, 4, 8)),
            "base.eval.caps",
        ],
        JobState.SUCCEEDED,
    )
    times = {(kind, unit): at for kind, unit, at in trace_rows(trace)}
    for n in (2, 4, 8):
        assert times[("start", f"rank{n}.eval.caps.e1")] > times[("end", f"rank{n}.train")]
    # the three trainings and the control's evaluation were one array, the evaluations another
    calls = list((tmp_path / ".cruijff" / "slurm" / "jobs").iterdir())
    assert len(calls) == 2
    rows = accounted(tmp_path, 7)
    assert sorted(row["unit"] for row in rows) == sorted(records)
    assert {row["state"] for row in rows} == {"COMPLETED"}
    assert all("_" in row["id"] for row in rows)
    # sbatch on PATH and a profile: slurm is the default, so status needs no --scheduler
    shown = cli("status", path, "--json")
    assert shown.exit_code == 0 and shown.output.count('"SUCCEEDED"') == 7
    assert json.loads(shown.output)["scheduler"] == "slurm"


def test_a_failing_job_and_its_dependent(manager, experiment, trace, tmp_path):
    path = experiment({"variables": {"lora_rank": [4], "fail": [False, True]}})
    result = run_experiment(manager, path, FAST)
    records = result.records
    assert records["fail-true.train"].state is JobState.FAILED
    assert records["fail-true.train"].exit_code == 3
    assert records["fail-true.eval.caps.e1"].state is JobState.DEPENDENCY_NEVER_SATISFIED
    assert records["fail-false.eval.caps.e1"].state is JobState.SUCCEEDED
    assert "fail-true.eval.caps.e1" not in {unit for _, unit, _ in trace_rows(trace)}
    assert our_jobs(tmp_path) == []  # the dependent was not left pending for ever
    # the scheduler's own cause comes from the job's log, as SLURM says only "FAILED"
    scheduler = SlurmScheduler({}, tmp_path / ".cruijff", profile=Profile(poll_interval=0))
    handle = records["fail-true.train"].handle
    got = scheduler.poll([handle])[handle]
    assert got.state is JobState.FAILED and got.cause == "exit code 3: fake failure"


def test_an_array_throttle_bounds_how_many_tasks_run_at_once(manager, experiment, trace, tmp_path):
    path = experiment(
        {"variables": {"lora_rank": [1, 2, 3, 4, 5, 6]}, "controls": {"sleep": 1}},
        array_throttle=2,
    )
    result = run_experiment(manager, path, FAST)
    assert {r.state for r in result.records.values()} == {JobState.SUCCEEDED}
    trains = {f"rank{n}.train" for n in range(1, 7)}
    assert most_at_once(trace_rows(trace), trains) <= 2
    scripts = [p.read_text() for p in (tmp_path / ".cruijff" / "slurm" / "jobs").glob("*/job.sh")]
    assert any("#SBATCH --array=0-6%2\n" in text for text in scripts)


def test_a_queue_limit_smaller_than_the_experiment(manager, experiment, tmp_path):
    path = experiment({"variables": {"lora_rank": [1, 2, 3, 4]}}, max_jobs=3)
    seen: list[int] = []
    stop_sampling = threading.Event()

    def sample() -> None:  # how many of its jobs the queue holds, every 50 ms
        while not stop_sampling.is_set():
            seen.append(len(our_jobs(tmp_path)))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = run_experiment(manager, path, FAST)
    finally:
        stop_sampling.set()
        sampler.join()
    assert len(result.records) == 9
    assert {r.state for r in result.records.values()} == {JobState.SUCCEEDED}
    assert 0 < max(seen) <= 3
    events = ExperimentState(tmp_path / ".cruijff").events()
    assert any(event["event"] == "queue-full" for event in events)
    assert sorted(row["unit"] for row in accounted(tmp_path, 9)) == sorted(result.records)


def test_detach_status_and_cancel(manager, experiment, trace, cli, tmp_path):
    path = experiment({"controls": {"sleep": 120}})
    result = cli("run", path, "--detach")
    assert result.exit_code == 0, result.output
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        records = status(manager, path).records
        if records["rank4.train"] and records["rank4.train"].state is JobState.RUNNING:
            break
        time.sleep(0.2)
    assert records["rank4.train"].state is JobState.RUNNING
    result = cli("cancel", path)
    assert result.exit_code == 0, result.output
    flying = ("rank4.train", "rank8.train", "rank4.eval.caps.e1", "rank8.eval.caps.e1")
    deadline = time.monotonic() + 30  # accounting may lag a moment behind
    while time.monotonic() < deadline:
        records = status(manager, path).records
        if all(records[unit].state.finished for unit in flying):
            break
        time.sleep(0.2)
    assert {records[unit].state for unit in flying} == {JobState.CANCELLED}
    assert our_jobs(tmp_path) == []
    # (the record's cause is the tool's reading of the outputs; the scheduler's says who)
    scheduler = SlurmScheduler({}, tmp_path / ".cruijff", profile=Profile(poll_interval=0))
    handles = [records[unit].handle for unit in flying]
    assert {s.cause for s in scheduler.poll(handles).values()} == {f"cancelled by {USER}"}
    assert not [unit for kind, unit, _ in trace_rows(trace) if kind == "end" and "train" in unit]


def test_the_scaffolded_scripts_are_what_runs_edits_included(manager, experiment, cli, tmp_path):
    path = experiment()
    assert cli("scaffold", path).exit_code == 0
    script = tmp_path / "rank4" / "train" / "finetune.slurm"  # a link to the trainings' array
    edit = '\necho "edited by hand: task $SLURM_ARRAY_TASK_ID"\n\ncase '
    script.write_text(script.read_text().replace("\ncase ", edit, 1))
    run = cli("run", path)
    assert run.exit_code == 0, run.output
    assert "as you edited it" in run.output and "5 of 5 jobs succeeded" in run.output
    # --output on sbatch's command line still sends each task's output to its own log
    for n, name in enumerate(("rank4", "rank8")):
        assert f"edited by hand: task {n}\n" in (tmp_path / name / "train" / "job.log").read_text()
    assert "edited" not in (tmp_path / "rank4" / "eval" / "caps_e1" / "job.log").read_text()
    # --chdir too: the call folders are the jobs' WorkDir, by which they are found again
    assert sorted(row["unit"] for row in accounted(tmp_path, 5)) == sorted(
        ExperimentState(tmp_path / ".cruijff").records()
    )


def test_values_full_of_shell_metacharacters_are_submitted_as_data(slurm_cluster, tmp_path):
    nasty = ["$(touch pwned)", "`touch pwned`", "a; touch pwned", 'it\'s "q"', "b\\s #x", "50%j"]
    folder = tmp_path / "run $(touch pwned) `touch pwned`; 100%j"
    jobs = [
        JobSpec(
            unit_id=f"u{n}",
            name=f"{n} " + " ".join(nasty),
            argv=("printf", "[%s]\\n", *nasty, "$NASTY"),
            workdir=folder / f"u{n}",
            log=folder / f"u{n}" / "out $(touch pwned).log",
            env={"NASTY": " ".join(nasty)},
        )
        for n in range(3)
    ]
    jobs[2] = attrs.evolve(jobs[2], resources=Resources(cpus=2))  # a single job, not in the array
    scheduler = SlurmScheduler({}, tmp_path / ".cruijff", profile=Profile(poll_interval=0))
    handles = scheduler.submit(jobs, {})
    assert [h.id.count("_") for h in handles] == [1, 1, 0]
    states = finished(scheduler, handles)
    assert {s.state for s in states.values()} == {JobState.SUCCEEDED}
    for one, handle in zip(jobs, handles, strict=True):
        banner, text = Path(one.log).read_text().split("\n", 1)
        # the line `cruijff logs` finds the attempt by: the unit, and the job id as handled
        assert banner.startswith(f"--- cruijff: {one.unit_id} started ")
        assert banner.endswith(f" (SLURM job {handle.id}) ---")
        assert text == "".join(f"[{v}]\n" for v in nasty) + "[$NASTY]\n"
    assert not [p for p in tmp_path.rglob("*") if p.name == "pwned"], "a value was executed"
    names = slurm("squeue", "-h", "-t", "all", "-j", handles[2].id, "-o", "%j")
    assert names.strip() == jobs[2].name

    # find() asks sacct for what squeue no longer lists (here: pretends not to)
    class Forgetful(SlurmCommands):
        def run(self, argv):
            return Result(tuple(argv), 0, "", "") if argv[0] == "squeue" else super().run(argv)

    forgetful = Forgetful()
    later = SlurmScheduler({}, tmp_path / ".cruijff", commands=forgetful, profile=Profile())
    for _ in range(50):  # sacct lags
        found = later.find([one.name for one in jobs])
        if len(found) == 3:
            break
        time.sleep(0.2)
    assert {name: h.id for name, h in found.items()} == {
        j.name: h.id for j, h in zip(jobs, handles, strict=True)
    }
    assert forgetful.calls[-1][0] == "sacct"


def test_a_job_after_a_failed_one_runs_once_it_ended(slurm_cluster, tmp_path):
    """``JobSpec.after`` on SLURM is ``afterany``: the follower waits for the lead to end, and
    runs though it failed, where an ``afterok`` dependent would never run."""
    events = tmp_path / "events"

    def job(unit: str, body: str, **fields) -> JobSpec:
        script = f"echo {unit} start $(date +%s.%N) >> {events}; {body}"
        return JobSpec(
            unit_id=unit,
            name=f"after.{unit}",
            argv=(
                "sh",
                "-c",
                f"{script}; rc=$?; echo {unit} end $(date +%s.%N) >> {events}; exit $rc",
            ),
            workdir=tmp_path,
            log=tmp_path / f"{unit}.log",
            **fields,
        )

    jobs = [job("lead", "sleep 2; false"), job("follower", "true", after=("lead",))]
    scheduler = SlurmScheduler({}, tmp_path / ".cruijff", profile=Profile(poll_interval=0))
    handles = scheduler.submit(jobs, {})
    states = finished(scheduler, handles)
    lead, follower = (states[handle].state for handle in handles)
    assert (lead, follower) == (JobState.FAILED, JobState.SUCCEEDED)
    times = {
        tuple(line.split()[:2]): float(line.split()[2]) for line in events.read_text().splitlines()
    }
    assert times[("follower", "start")] >= times[("lead", "end")]


@pytest.mark.parametrize(
    ("arrays", "submitted_before_kill", "accounting"),
    [(True, 1, True), (False, 2, True), (False, 2, False)],
)
def test_kill_9_while_submitting_then_run_again_submits_each_job_once(
    slurm_cluster,
    make_experiment,
    isolated_config,
    tmp_path,
    request,
    arrays,
    submitted_before_kill,
    accounting,
):
    # without accounting (the bare cluster) only squeue can find what was submitted
    conf = slurm_cluster if accounting else request.getfixturevalue("bare_cluster")
    profiles = isolated_config / "cruijff" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "default.yaml").write_text(yaml.safe_dump({"poll_interval": 0, "arrays": arrays}))
    path = make_experiment({"controls": {"sleep": 0.5}, "scheduler": {"name": "slurm"}})
    # sbatch, slowed down at the Nth call: it submits, notes it, then takes 30 s to say the job
    # id, so cruijff can be killed with the job in SLURM's queue and no record of its id.
    shim = tmp_path / "bin"
    shim.mkdir()
    noted = tmp_path / "submitted.txt"
    (shim / "sbatch").write_text(
        f'#!/bin/bash\nout=$({shutil.which("sbatch")} "$@"); rc=$?\necho "$out" >> {noted}\n'
        f'[ "$(wc -l < {noted})" -ge {submitted_before_kill} ] && sleep 30\n'
        'echo "$out"\nexit $rc\n'
    )
    (shim / "sbatch").chmod(0o755)
    trace = tmp_path / "trace.txt"
    env = {
        **os.environ,
        "CRUIJFF_PLUGINS": "cruijff.testing.fake",
        "CRUIJFF_FAKE_TRACE": str(trace),
        "XDG_CONFIG_HOME": str(isolated_config),
        "SLURM_CONF": conf,
    }
    argv = [sys.executable, "-m", "cruijff", "run", str(path)]
    first = subprocess.Popen(
        argv,
        env={**env, "PATH": f"{shim}{os.pathsep}{env['PATH']}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if noted.exists() and len(noted.read_text().split()) >= submitted_before_kill:
            break
        time.sleep(0.02)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert len(noted.read_text().split()) == submitted_before_kill
    records = ExperimentState(tmp_path / ".cruijff").records()
    assert all(r.submitting and r.handle is None for r in records.values())  # no id was recorded

    # A run while SLURM does not answer the lookup submits nothing and keeps the records (the
    # final count in sacct shows that no job ran twice).
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("squeue", "sacct"):
        (broken / name).write_text(
            f'#!/bin/sh\necho "{name}: error: Unable to contact slurm controller" >&2\nexit 1\n'
        )
        (broken / name).chmod(0o755)
    env_broken = {**env, "PATH": f"{broken}{os.pathsep}{env['PATH']}"}
    failed = subprocess.run(argv, env=env_broken, capture_output=True, text=True, timeout=180)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Error: SLURM did not answer (squeue" in failed.stdout + failed.stderr
    assert "Traceback" not in failed.stdout + failed.stderr
    assert ExperimentState(tmp_path / ".cruijff").records() == records

    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stdout + second.stderr
    if accounting:
        rows = accounted(tmp_path, 5)
        per_unit = Counter(row["unit"] for row in rows)
        assert len(per_unit) == 5 and set(per_unit.values()) == {1}, rows  # none twice in sacct
        assert {row["state"] for row in rows} == {"COMPLETED"}
    starts = Counter(unit for kind, unit, _ in trace_rows(trace) if kind == "start")
    assert len(starts) == 5 and set(starts.values()) == {1}, starts
    recovered = [
        e for e in ExperimentState(tmp_path / ".cruijff").events() if e["event"] == "recovered"
    ]
    assert len([e for e in recovered if e["handle"]]) == (3 if arrays else 2)


def test_without_accounting_states_come_from_scontrol(
    bare_cluster, manager, experiment, monkeypatch, tmp_path
):
    monkeypatch.setenv("SLURM_CONF", bare_cluster)
    path = experiment({"variables": {"lora_rank": [4], "fail": [False, True]}})
    result = run_experiment(manager, path, FAST)
    records = result.records
    assert records["fail-true.train"].state is JobState.FAILED
    assert records["fail-true.train"].exit_code == 3  # the exit code squeue cannot give
    assert records["fail-true.eval.caps.e1"].state is JobState.DEPENDENCY_NEVER_SATISFIED
    assert records["fail-false.eval.caps.e1"].state is JobState.SUCCEEDED


def test_a_timeout_is_retried_with_more_time(early_timeout):
    """Keep this test last in the module: its job was submitted before the others ran."""
    manager, path = early_timeout
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        records = status(manager, path).records
        if records["slow.train"].state.finished:
            break
        time.sleep(1)
    first = records["slow.train"]
    assert first.state is JobState.TIMEOUT
    assert first.cause == "reached its time limit (00:01:00)"
    result = run_experiment(manager, path, attrs.evolve(FAST, retry_failed=True))
    again = result.records["slow.train"]
    assert again.state is JobState.SUCCEEDED and again.attempt == 2
    assert again.job.resources.time_s == 120
    rows = accounted(path.parent, 2)
    assert [(row["state"], row["limit"]) for row in rows] == [
        ("TIMEOUT", "00:01:00"),
        ("COMPLETED", "00:02:00"),
    ]


class TestSlurmContract(SchedulerContract):
    """The scheduler contract on the real cluster."""

    timeout = 120.0

    @pytest.fixture
    def contract_scheduler(self, slurm_cluster, tmp_path):
        scheduler = SlurmScheduler({}, tmp_path / ".cruijff", profile=Profile(poll_interval=0))
        yield scheduler
        cancel_leftovers(tmp_path)


def test_only_force_logs_and_cancel_only_on_the_cluster(
    manager, experiment, trace, cli, tmp_path, monkeypatch
):
    path = experiment()
    done = cli("run", path, "--only", "rank4.eval.*")
    assert done.exit_code == 0, done.output
    started = sorted(unit for kind, unit, _ in trace_rows(trace) if kind == "start")
    assert started == ["rank4.eval.caps.e1", "rank4.train"]  # it and what it needs, no more
    first_id = ExperimentState(tmp_path / ".cruijff").record("rank4.train").handle.id
    again = cli("run", path, "--only", "rank4.train", "--force")
    assert again.exit_code == 0, again.output
    record = ExperimentState(tmp_path / ".cruijff").record("rank4.train")
    assert record.attempt == 2 and record.handle.id != first_id
    # the batch script appends each attempt after a line naming its SLURM job
    latest = cli("logs", path, "rank4.train")
    assert latest.exit_code == 0, latest.output
    assert f"(SLURM job {record.handle.id})" in latest.output and "epoch 2/2" in latest.output
    assert f"SLURM job {first_id})" not in latest.output
    first = json.loads(cli("logs", path, "rank4.train", "--attempt", "1", "--json").output)
    assert first["attempt"] == 1 and f"(SLURM job {first_id})" in first["text"]
    shown = json.loads(cli("status", path, "--only", "rank4*", "--json").output)
    assert {row["unit"]: row["state"] for row in shown["jobs"]} == {
        "rank4.train": "SUCCEEDED",
        "rank4.eval.caps.e1": "OUTDATED",  # by the forced training: it runs again next time
    }
    # cancel one training of a detached run: its evaluation will not run, the rest goes on
    gate = tmp_path / "gate"
    monkeypatch.setenv("CRUIJFF_FAKE_GATE", str(gate))
    assert cli("run", path, "--only", "rank8", "--detach").exit_code == 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rank8 = status(manager, path, only=["rank8.train"]).records["rank8.train"]
        if rank8 is not None and rank8.state is JobState.RUNNING:
            break
        time.sleep(0.2)
    cancelled = cli("cancel", path, "--only", "rank8.train")
    assert cancelled.exit_code == 0, cancelled.output
    assert "rank8.train: CANCELLED" in cancelled.output
    assert "will now not run" in cancelled.output and "rank8.eval.caps.e1" in cancelled.output
    gate.touch()
    deadline = time.monotonic() + 30
    while our_jobs(tmp_path) and time.monotonic() < deadline:  # SLURM drops the dependent
        time.sleep(0.2)
    assert our_jobs(tmp_path) == []
    assert "rank8.eval.caps.e1" not in {unit for _, unit, _ in trace_rows(trace)}
    # rank4's first epoch serves no evaluation, its last one serves the outdated evaluation
    listed = json.loads(cli("clean", path, "--checkpoints", "--json").output)
    assert [(f["run"], f["epoch"]) for f in listed["folders"]] == [("rank4", 0)]
    assert cli("clean", path, "--checkpoints", "--yes").exit_code == 0
    assert json.loads(cli("clean", path, "--checkpoints", "--json").output)["folders"] == []
