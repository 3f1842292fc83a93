"""`cruijff run` with the fake tools and the real local scheduler: order, resume, failure,
retry, detach, cancel, the busy lock and the lifecycle hooks."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import attrs
import pytest

from cruijff import hookimpl, hookspecs
from cruijff.errors import UserError
from cruijff.orchestrator import cancel, design, run_experiment, status
from cruijff.records import JobState
from cruijff.runner import RunOptions
from cruijff.state import ExperimentState

FAST = RunOptions(jobs=2, poll_interval=0.05, max_interval=0.2)


def events(trace: Path) -> list[tuple[str, str, float]]:
    if not trace.exists():
        return []
    rows = [line.split() for line in trace.read_text().splitlines()]
    return [(kind, unit, float(at)) for kind, unit, _pid, at in rows]


def starts(trace: Path) -> list[str]:
    return [unit for kind, unit, _ in events(trace) if kind == "start"]


def states(result) -> dict[str, JobState]:
    return {unit: record.state for unit, record in result.records.items()}


def test_run_finishes_everything_in_dependency_order(
    plugin_manager, fake_tools, make_experiment, trace
):
    result = run_experiment(plugin_manager, make_experiment(), FAST)
    assert set(states(result).values()) == {JobState.SUCCEEDED}
    assert len(result.records) == 5  # two trainings, two evaluations, the control's
    times = {(kind, unit): at for kind, unit, at in events(trace)}
    for run in ("rank4", "rank8"):
        assert times[("start", f"{run}.eval.caps.e1")] > times[("end", f"{run}.train")]
    kinds = [event["event"] for event in ExperimentState(result.plan.experiment.state_dir).events()]
    assert kinds.count("submitted") == 5 and "scaffolded" in kinds


def test_second_run_starts_nothing_again(plugin_manager, fake_tools, make_experiment, trace):
    path = make_experiment()
    run_experiment(plugin_manager, path, FAST)
    first = starts(trace)
    again = run_experiment(plugin_manager, path, FAST)
    assert starts(trace) == first
    assert set(states(again).values()) == {JobState.SUCCEEDED}


def test_lost_records_are_recognised_from_the_outputs(
    plugin_manager, fake_tools, make_experiment, trace
):
    path = make_experiment()
    result = run_experiment(plugin_manager, path, FAST)
    for record_file in (result.plan.experiment.state_dir / "jobs").glob("*.json"):
        record_file.unlink()
    before = starts(trace)
    again = run_experiment(plugin_manager, path, FAST)
    assert starts(trace) == before
    assert {r.cause for r in again.records.values()} == {"found complete"}


def test_failed_job_fails_its_dependents_and_is_rerun_unchanged(
    plugin_manager, fake_tools, make_experiment, trace
):
    path = make_experiment({"variables": {"lora_rank": [4], "fail": [False, True]}})
    result = run_experiment(plugin_manager, path, FAST)
    got = states(result)
    assert got["fail-true.train"] is JobState.FAILED
    assert result.records["fail-true.train"].exit_code == 3
    assert got["fail-true.eval.caps.e1"] is JobState.DEPENDENCY_NEVER_SATISFIED
    assert got["fail-false.train"] is JobState.SUCCEEDED
    assert "fail-true.eval.caps.e1" not in starts(trace)

    again = run_experiment(plugin_manager, path, FAST)
    assert again.records["fail-true.train"].attempt == 2
    assert again.records["fail-true.eval.caps.e1"].attempt == 2
    assert again.records["fail-false.train"].attempt == 1
    assert starts(trace).count("fail-false.train") == 1


def test_exit_zero_without_outputs_is_a_failure(plugin_manager, fake_tools, make_experiment):
    path = make_experiment({"variables": {"lora_rank": [4]}, "controls": {"lie": True}})
    result = run_experiment(plugin_manager, path, FAST)
    record = result.records["finetuned.train"]
    assert record.state is JobState.FAILED and "no checkpoint" in record.cause


class Intruder:
    """A plugin that would adjust every job, its own or not."""

    @hookimpl
    def cruijff_retry(self, experiment, unit, job, status):
        return attrs.evolve(job, resources=attrs.evolve(job.resources, time_s=1))


def test_retry_failed_reruns_only_failed_jobs_adjusted(
    plugin_manager, fake_tools, make_experiment, trace
):
    # Only the plugin that provides a unit's tool adjusts its retry (the fake trainer doubles
    # the time): another plugin is never asked.
    plugin_manager.register(Intruder(), name="intruder")
    path = make_experiment({"variables": {"lora_rank": [4], "fail": [False, True]}})
    run_experiment(plugin_manager, path, FAST)
    before = starts(trace)
    again = run_experiment(plugin_manager, path, attrs.evolve(FAST, retry_failed=True))
    new = starts(trace)[len(before) :]
    assert new == ["fail-true.train"]  # its evaluation waits on it and fails with it
    record = again.records["fail-true.train"]
    assert record.attempt == 2 and record.job.resources.time_s == 1200


def test_detach_returns_at_once_and_status_follows(
    plugin_manager, fake_tools, make_experiment, trace, monkeypatch
):
    gate = trace.parent / "gate"
    monkeypatch.setenv("CRUIJFF_FAKE_GATE", str(gate))  # no training ends before we say so
    path = make_experiment()
    result = run_experiment(plugin_manager, path, attrs.evolve(FAST, detach=True))
    # It returned although no job can have finished: it did not wait for them.
    assert {r.state for r in result.records.values()} <= {JobState.PENDING, JobState.RUNNING}
    assert not any(kind == "end" for kind, _, _ in events(trace))
    gate.touch()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = status(plugin_manager, path).records
        if all(r and r.state is JobState.SUCCEEDED for r in now.values()):
            break
        time.sleep(0.2)
    assert all(r and r.state is JobState.SUCCEEDED for r in now.values())


def test_a_run_after_a_detached_one_attaches_and_counts_what_it_found(
    plugin_manager, fake_tools, make_experiment, trace, monkeypatch, cli
):
    gate = trace.parent / "gate"
    monkeypatch.setenv("CRUIJFF_FAKE_GATE", str(gate))  # the trainings end when we say so
    path = make_experiment({"variables": {"lora_rank": [4, 8]}})
    first = run_experiment(plugin_manager, path, attrs.evolve(FAST, detach=True))
    assert first.resumed is None  # nothing before it
    state = ExperimentState(first.plan.experiment.state_dir)
    # one evaluation's record lost while its job waits in the queue: found there and watched
    # with the others, not submitted a second time
    (lost,) = [u for u in first.records if u.endswith(".eval.caps.e1") and "rank8" in u]
    state.forget(lost)
    gate.touch()
    again = run_experiment(plugin_manager, path, FAST)
    assert set(states(again).values()) == {JobState.SUCCEEDED}
    assert (again.resumed.skipped, again.resumed.watched, again.resumed.submitted) == (0, 5, 0)
    assert sorted(starts(trace)) == sorted(first.records)  # each job ran once
    assert again.records[lost].handle == first.records[lost].handle
    kinds = [e["event"] for e in state.events()]
    assert kinds.count("adopted") == 1
    (event,) = [e for e in state.events() if e["event"] == "resumed"]
    assert (event["skipped"], event["watched"], event["submitted"]) == (0, 5, 0)

    shown = cli("run", str(path))
    assert shown.exit_code == 0, shown.output
    assert "5 of 5 jobs succeeded" in shown.output
    assert "(resumed: 5 skipped, 0 watched, 0 submitted)" in shown.output


def test_cancel_stops_running_and_waiting_jobs(plugin_manager, fake_tools, make_experiment, trace):
    path = make_experiment({"controls": {"sleep": 60}})
    run_experiment(plugin_manager, path, attrs.evolve(FAST, detach=True, jobs=1))
    deadline = time.monotonic() + 20
    while not starts(trace) and time.monotonic() < deadline:
        time.sleep(0.1)
    cancelled = cancel(plugin_manager, path).records
    assert {r.state for r in cancelled} == {JobState.CANCELLED}
    assert len(cancelled) == 5
    now = status(plugin_manager, path).records
    assert {r.state for r in now.values()} == {JobState.CANCELLED}
    assert len(starts(trace)) == 1  # nothing started after the cancel


def test_a_second_run_says_the_experiment_is_busy(plugin_manager, fake_tools, make_experiment, cli):
    path = make_experiment()
    from cruijff.design import design

    state = ExperimentState(design(plugin_manager, path).experiment.state_dir)
    with state.driving():
        with pytest.raises(UserError, match="busy"):
            run_experiment(plugin_manager, path, FAST)
        result = cli("run", path)
    assert result.exit_code == 1 and "busy" in result.output


ORCHESTRATION = sorted(
    name
    for name in dir(hookspecs)
    if name.startswith("cruijff_")
    and name
    not in {
        "cruijff_tools",
        "cruijff_schedulers",
        "cruijff_parse",
        "cruijff_select",
        "cruijff_generate",
        "cruijff_validate",
        "cruijff_retry",  # dispatched to the unit's owner, like generate: see the retry test
        "cruijff_commands",
        "cruijff_observe",  # analysis: dispatched to the unit's owner, see test_analysis.py
        "cruijff_report",  # analysis: called by `cruijff analyze`, see test_analysis.py
        # design: dispatched to the unit's owner, see test_estimates.py
        "cruijff_estimate",
        "cruijff_measure",
        "cruijff_calibration",
    }
)


class Recorder:
    """Implements every orchestration hook and records the calls (kedro's logging plugin)."""

    def __init__(self):
        self.calls: list[str] = []
        for name in ORCHESTRATION:
            setattr(self, name, hookimpl(self._recorder(name)))

    def _recorder(self, name):
        def record(**kwargs):
            self.calls.append(name)

        spec = getattr(hookspecs, name)
        import inspect

        record.__signature__ = inspect.signature(spec)
        return record


def test_every_orchestration_hook_is_called(
    plugin_manager, fake_tools, make_experiment, monkeypatch
):
    recorder = Recorder()
    plugin_manager.register(recorder, name="recorder")
    path = make_experiment({"variables": {"lora_rank": [4], "fail": [False, True]}})
    run_experiment(plugin_manager, path, FAST)
    run_experiment(plugin_manager, path, attrs.evolve(FAST, retry_failed=True))
    import cruijff.runner

    def broken_submit(self, jobs, records):
        raise OSError("disk full")

    monkeypatch.setattr(cruijff.runner.Runner, "submit", broken_submit)
    with pytest.raises(OSError):
        run_experiment(plugin_manager, path, FAST)
    import cruijff.scaffold

    def broken_write(path, text, **options):
        raise OSError("read-only file system")

    monkeypatch.setattr(cruijff.scaffold, "write_atomic", broken_write)
    path.write_text(path.read_text().replace("epochs: 2", "epochs: 3"))
    with pytest.raises(OSError, match="read-only"):
        run_experiment(plugin_manager, path, FAST)
    assert sorted(set(recorder.calls)) == ORCHESTRATION
    first = recorder.calls.index
    assert (
        first("cruijff_after_design")
        < first("cruijff_before_scaffold")
        < first("cruijff_after_scaffold")
        < first("cruijff_before_run")
        < first("cruijff_after_submit")
        < first("cruijff_on_job_error")
        < first("cruijff_after_run")
    )


def test_retry_failed_brings_along_a_dependency_that_never_ran(
    plugin_manager, fake_tools, make_experiment, trace
):
    path = make_experiment({"variables": {"lora_rank": [4], "fail": [True]}})
    first = run_experiment(plugin_manager, path, FAST)
    # as if the training's submission had never been recorded
    (first.plan.experiment.state_dir / "jobs" / "finetuned.train.json").unlink()
    before = len(starts(trace))
    run_experiment(plugin_manager, path, attrs.evolve(FAST, retry_failed=True))
    assert starts(trace)[before:] == ["finetuned.train"]  # the dependency ran again first


def test_the_experiment_sets_local_concurrency_unless_the_cli_does(
    plugin_manager, fake_tools, make_experiment
):
    import json

    path = make_experiment({"scheduler": {"name": "local", "jobs": 3}})
    result = run_experiment(plugin_manager, path, attrs.evolve(FAST, jobs=None))
    config = result.plan.experiment.state_dir / "local" / "config.json"
    assert json.loads(config.read_text())["jobs"] == 3
    path.write_text(path.read_text().replace("epochs: 2", "epochs: 3"))
    run_experiment(plugin_manager, path, attrs.evolve(FAST, jobs=1))
    assert json.loads(config.read_text())["jobs"] == 1


def test_a_failed_job_carries_the_tools_cause(plugin_manager, fake_tools, make_experiment):
    path = make_experiment({"variables": {"lora_rank": [4], "fail": [True]}})
    result = run_experiment(plugin_manager, path, FAST)
    record = result.records["finetuned.train"]
    assert record.exit_code == 3
    # the fake tool's validation reads what is missing; the scheduler only knew "exit code 3"
    assert record.cause.startswith("no checkpoint in")


def test_a_changed_experiment_reruns_what_changed_and_what_follows(
    plugin_manager, fake_tools, make_experiment, trace
):
    path = make_experiment()
    run_experiment(plugin_manager, path, FAST)
    before = len(starts(trace))
    # the trainings' configs change (sleep is theirs); the base model's evaluation does not
    path.write_text(path.read_text().replace("epochs: 2", "epochs: 2\n  sleep: 0.1"))
    again = run_experiment(plugin_manager, path, FAST)
    rerun = sorted(starts(trace)[before:])
    assert rerun == ["rank4.eval.caps.e1", "rank4.train", "rank8.eval.caps.e1", "rank8.train"]
    assert again.records["rank4.train"].attempt == 2
    assert again.records["base.eval.caps"].attempt == 1
    assert all(record.done for record in again.records.values())
    events = [e["event"] for e in ExperimentState(again.plan.experiment.state_dir).events()]
    assert events.count("outdated") == 2


def test_an_unchanged_scaffold_outdates_nothing(plugin_manager, fake_tools, make_experiment):
    from cruijff.design import design
    from cruijff.scaffold import scaffold

    path = make_experiment()
    first = run_experiment(plugin_manager, path, FAST)
    scaffold(plugin_manager, design(plugin_manager, path))
    records = ExperimentState(first.plan.experiment.state_dir).records()
    assert not any(record.outdated for record in records.values())


def test_status_reads_the_scaffolds_job_index_and_plans_only_when_the_file_changed(
    plugin_manager, fake_tools, make_experiment, monkeypatch
):
    import cruijff.orchestrator

    path = make_experiment()
    run_experiment(plugin_manager, path, FAST)
    planned = []
    real = cruijff.orchestrator.design
    monkeypatch.setattr(
        cruijff.orchestrator, "design", lambda *a, **k: planned.append(1) or real(*a, **k)
    )
    found = status(plugin_manager, path)
    assert not planned  # the index stands for the file as it is
    assert [job.unit_id for job in found.jobs] == [
        "rank4.train",
        "rank8.train",
        "rank4.eval.caps.e1",
        "rank8.eval.caps.e1",
        "base.eval.caps",
    ]
    assert all(r.state is JobState.SUCCEEDED for r in found.records.values())
    # an edit that changes the grid: the index no longer stands, status plans again
    make_experiment({"variables": {"lora_rank": [4, 8, 16]}})
    again = status(plugin_manager, path)
    assert planned == [1] and "rank16.train" in again.records
    assert again.records["rank16.train"] is None  # never submitted


def test_brief_records_say_what_full_ones_say_of_state_and_results(
    plugin_manager, fake_tools, make_experiment
):
    from cruijff.state import ExperimentState

    path = make_experiment({"variables": {"lora_rank": [4], "fail": [False, True]}})
    run_experiment(plugin_manager, path, FAST)
    state = ExperimentState(design(plugin_manager, path).experiment.state_dir)
    full, brief = state.records(), state.records(brief=True)
    assert full.keys() == brief.keys() and len(full) >= 4
    for unit, record in full.items():
        short = brief[unit]
        assert attrs.evolve(short, job=record.job) == record  # everything but the job
        job = (record.job.unit_id, record.job.name, record.job.workdir, record.job.log)
        assert (short.job.unit_id, short.job.name, short.job.workdir, short.job.log) == job
    assert {r.state for r in brief.values()} >= {JobState.SUCCEEDED, JobState.FAILED}


def test_brief_records_are_read_again_only_where_a_record_changed(
    plugin_manager, fake_tools, make_experiment, monkeypatch
):
    import cruijff.briefs
    import cruijff.state
    from cruijff.state import ExperimentState

    path = make_experiment({"variables": {"lora_rank": [4, 8]}})
    run_experiment(plugin_manager, path, FAST)
    state = ExperimentState(design(plugin_manager, path).experiment.state_dir)
    read: list[str] = []
    real = cruijff.state._read_data
    monkeypatch.setattr(cruijff.state, "_read_data", lambda p: read.append(p) or real(p))
    first = state.records(brief=True)
    assert (state.dir / cruijff.briefs.NAME).is_file()
    # records changed just before a status are read again by the next, however they look:
    # on a filesystem of coarse times that reuses inodes, another version could look the same
    read.clear()
    assert state.records(brief=True) == first and len(read) == len(first)
    past = time.time_ns() - 10 * 10**9  # as if they had been written a while ago
    for record in (state.dir / "jobs").iterdir():
        os.utime(record, ns=(past, past))
    state.records(brief=True)
    read.clear()
    assert state.records(brief=True) == first and read == []  # all from the cache
    # a record saved again, within the same second and at the same size: still seen
    changed = attrs.evolve(state.record("rank8.train"), cause="x" * 5)
    state.save(changed)
    read.clear()
    again = state.records(brief=True)
    assert [Path(p).name for p in read] == ["rank8.train.json"]
    assert again["rank8.train"].cause == "xxxxx" and again["rank4.train"] == first["rank4.train"]
    # a version written just now with a stamp the cache holds (an inode reused within one
    # tick of a coarse clock): the cache's fields are not taken for it
    cache = json.loads((state.dir / cruijff.briefs.NAME).read_text())
    cache["records"]["rank8.train.json"][3]["cause"] = "stale"
    (state.dir / cruijff.briefs.NAME).write_text(json.dumps(cache))
    assert state.records(brief=True)["rank8.train"].cause == "xxxxx"
    # a damaged cache is no cache, and one that cannot be written is no error
    (state.dir / cruijff.briefs.NAME).write_text('{"format": 3, "records": [')
    assert state.records(brief=True) == again
    # an entry whose stamp matches but whose fields do not decode: the record file is read
    cache = json.loads((state.dir / cruijff.briefs.NAME).read_text())
    cache["records"]["rank4.train.json"][3] = {"unit_id": "rank4.train"}
    cache["records"]["rank8.train.json"][0] = float("inf")
    (state.dir / cruijff.briefs.NAME).write_text(json.dumps(cache))
    assert state.records(brief=True) == again
    # or whose numbers no int can hold (JSON's Infinity)
    cache = json.loads((state.dir / cruijff.briefs.NAME).read_text())
    for entry in cache["records"].values():
        entry[3]["attempt"] = float("inf")
    (state.dir / cruijff.briefs.NAME).write_text(json.dumps(cache))
    assert state.records(brief=True) == again
    (state.dir / cruijff.briefs.NAME).unlink()

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cruijff.briefs, "write_atomic", full)
    assert state.records(brief=True) == again


def test_a_brief_leaves_out_only_what_it_can_tell_again():
    import cruijff.briefs
    from cruijff.state import _brief

    record = {
        "unit_id": "r.train",
        "attempt": 0,
        "state": "SUCCEEDED",
        "handle": {"scheduler": "slurm", "id": "42", "name": "other name"},
        "submitting": False,
        "exit_code": 0,  # not the default (none)
        "cause": "",
        "metrics": {},
        "summary": [],
        "outdated": False,
        "updated": "",
        "job": {"unit_id": "r.train", "name": "x.r.train", "workdir": "/w", "log": "/w/l/t.log"},
    }
    short = cruijff.briefs.brief(record)
    assert short == {
        "unit_id": "r.train",
        "state": "SUCCEEDED",
        "handle": {"scheduler": "slurm", "id": "42", "name": "other name"},
        "exit_code": 0,
        "job": {"name": "x.r.train", "workdir": "/w", "log": "/w/l/t.log"},
    }
    full = _brief(record)
    assert _brief(short) == full and full.exit_code == 0 and full.job.workdir == Path("/w")
    # a folder that is the log's, and a handle named as the job, are told again
    record["job"]["workdir"], record["handle"]["name"] = "/w/l", "x.r.train"
    short = cruijff.briefs.brief(record)
    assert short["job"] == {"name": "x.r.train", "log": "/w/l/t.log"}
    assert "name" not in short["handle"] and _brief(short) == _brief(record)
    # what a record lacks is never told again: a handle's name, a job's folder
    del record["handle"]["name"], record["job"]["workdir"]
    short = cruijff.briefs.brief(record)
    assert short["handle"]["name"] == "" and short["job"]["workdir"] is None
