"""Damaged state, a full or read-only disk, deleted locks: the errors a person gets and the
promises that hold ("nothing runs twice, nothing is lost"), through the CLI and the runner with
the fake tools and the real local scheduler."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import attrs
import pytest
from killloop import environment, experiment, trace

from cruijff import hookimpl
from cruijff.errors import UserError
from cruijff.local.scheduler import LocalScheduler
from cruijff.local.store import (
    EXECUTOR_LOCK,
    QUEUED,
    executor_alive,
    job_dir,
    job_ids,
    read_state,
)
from cruijff.orchestrator import run_experiment, status
from cruijff.records import JobState, SchedulerInfo
from cruijff.runner import RunOptions
from cruijff.state import ExperimentState

FAST = RunOptions(jobs=2, poll_interval=0.05, max_interval=0.2)


def starts(trace: Path) -> list[str]:
    if not trace.exists():
        return []
    return [line.split()[1] for line in trace.read_text().splitlines() if line.startswith("start")]


def wait_for(condition, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


# --- unreadable state files ----------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncate", "empty"])
def test_a_cut_short_job_record_is_an_error_that_names_it(
    plugin_manager, fake_tools, make_experiment, cli, damage
):
    path = make_experiment()
    run_experiment(plugin_manager, path, FAST)
    record = path.parent / ".cruijff" / "jobs" / "rank4.train.json"
    record.write_text(record.read_text()[:30] if damage == "truncate" else "")
    for command in ("status", "run", "cancel"):
        result = cli(command, path)
        assert result.exit_code == 1, (command, result.output)
        assert f"Error: {record} is not valid JSON (line " in result.output
        assert "remove the file" in result.output and "Traceback" not in result.output


def test_a_cut_short_scaffold_manifest_is_an_error_that_names_it(
    plugin_manager, fake_tools, make_experiment, cli
):
    path = make_experiment()
    assert cli("scaffold", path).exit_code == 0
    manifest = path.parent / ".cruijff" / "scaffold.json"
    manifest.write_text(manifest.read_text()[:10])
    result = cli("scaffold", path)
    assert result.exit_code == 1
    assert f"Error: {manifest} is not valid JSON (line" in result.output


def test_a_torn_last_event_does_not_swallow_the_next(tmp_path):
    state = ExperimentState(tmp_path / ".cruijff")
    state.log("first")
    with open(state.events_path, "a") as log:
        log.write('{"event": "torn", "ti')  # a kill in the middle of a write
    state.log("second")
    with pytest.warns(UserWarning, match=r"events.jsonl:2: skipped a line"):
        events = state.events()
    assert [event["event"] for event in events] == ["first", "second"]


# --- the layout's version ------------------------------------------------------------------


def test_an_experiment_from_before_the_format_stamp_resumes(
    plugin_manager, fake_tools, make_experiment, trace
):
    path = make_experiment()
    run_experiment(plugin_manager, path, FAST)
    stamp = path.parent / ".cruijff" / "format.json"
    assert json.loads(stamp.read_text()) == {"format": 2}
    stamp.unlink()  # as a folder made before format.json existed
    before = starts(trace)
    again = run_experiment(plugin_manager, path, FAST)
    assert starts(trace) == before and len(again.records) == 5
    assert json.loads(stamp.read_text()) == {"format": 2}


def test_an_experiment_from_a_newer_cruijff_is_refused(
    plugin_manager, fake_tools, make_experiment, cli
):
    path = make_experiment()
    run_experiment(plugin_manager, path, FAST)
    (path.parent / ".cruijff" / "format.json").write_text('{"format": 99}')
    for command in ("status", "run"):
        result = cli(command, path)
        assert result.exit_code == 1
        assert "was written by a newer cruijff (format 99" in result.output


# --- liveness: a deleted lock, a wrapper killed after its command succeeded ------------------


def test_a_job_lost_after_its_command_succeeded_is_not_run_again(
    plugin_manager, fake_tools, make_experiment, trace
):
    path = make_experiment()
    first = run_experiment(plugin_manager, path, FAST)
    # What a wrapper killed between its command's exit 0 and its last write leaves behind:
    # the job's status says running, and nothing of it is alive.
    state = ExperimentState(first.plan.experiment.state_dir)
    record = state.record("rank4.train")
    status_file = state.dir / "local" / "jobs" / record.handle.id / "status.json"
    written = json.loads(status_file.read_text())
    status_file.write_text(json.dumps({**written, "state": "running", "exit_code": None}))
    state.save(attrs.evolve(record, state=JobState.RUNNING))
    before = starts(trace)
    again = run_experiment(plugin_manager, path, FAST)
    assert starts(trace) == before  # its outputs are complete: nothing ran again
    recovered = again.records["rank4.train"]
    assert recovered.state is JobState.SUCCEEDED and "outputs are complete" in recovered.cause


def test_a_deleted_run_lock_is_taken_back_by_its_driver(tmp_path):
    driver = ExperimentState(tmp_path / ".cruijff")
    with driver.driving():
        driver.lock_path.unlink()
        driver.check_driving()  # it notices, and locks the file anew
        with pytest.raises(UserError, match="busy"), ExperimentState(driver.dir).driving():
            pass


def test_a_state_folder_removed_while_running_stops_the_run_and_the_next_one_finishes(tmp_path):
    path = experiment(tmp_path)
    path.write_text(path.read_text().replace("sleep: 0.2", "sleep: 1.5"))
    env = environment(tmp_path)
    argv = [sys.executable, "-m", "cruijff", "run", str(path)]
    first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not any(kind == "start" for kind, _, _ in trace(tmp_path)):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    shutil.rmtree(tmp_path / ".cruijff")
    out, _ = first.communicate(timeout=60)  # it stops, never waits for ever
    assert first.returncode == 1, out
    assert b"was removed while this cruijff run drove the experiment" in out
    assert b"Traceback" not in out
    while sum(kind == "end" for kind, _, _ in trace(tmp_path)) < 2:  # the running ones end
        assert time.monotonic() < deadline
        time.sleep(0.05)
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    starts = Counter(unit for kind, unit, _ in trace(tmp_path) if kind == "start")
    assert len(starts) == 5 and set(starts.values()) == {1}, starts  # nothing done is redone


def test_a_driver_whose_lock_was_taken_stops_submitting(tmp_path):
    driver = ExperimentState(tmp_path / ".cruijff")
    with driver.driving():
        driver.lock_path.unlink()
        second = ExperimentState(driver.dir)  # a second run, in the gap
        with second.driving(), pytest.raises(UserError, match="another cruijff run"):
            driver.check_driving()


def test_status_only_reads_and_says_no_executor_serves_the_queue(
    plugin_manager, fake_tools, make_experiment, trace, cli
):
    path = make_experiment({"controls": {"sleep": 0.4}})
    run_experiment(plugin_manager, path, attrs.evolve(FAST, detach=True, jobs=1))
    local = path.parent / ".cruijff" / "local"
    wait_for(lambda: starts(trace), what="a job to start")
    os.kill(int((local / EXECUTOR_LOCK).read_text()), 9)
    wait_for(lambda: not executor_alive(local), what="the executor's death")
    # how many are left queued depends on when the kill landed (one job started, or two)
    queued = sum(read_state(job_dir(local, job_id))[0] == QUEUED for job_id in job_ids(local))
    assert queued >= 3
    spawned = []
    with pytest.MonkeyPatch.context() as patch:  # status must start no process at all
        patch.setattr(subprocess, "Popen", lambda *a, **k: spawned.append(a))
        result = cli("status", path)
    assert result.exit_code == 0 and spawned == []
    expected = f"No executor is serving {queued} queued jobs: run `cruijff run` to resume"
    assert expected in result.output
    assert not executor_alive(local)
    finished = run_experiment(plugin_manager, path, FAST)  # the driver resumes the queue
    assert {r.state for r in finished.records.values()} == {JobState.SUCCEEDED}
    assert sorted(starts(trace)) == sorted(set(starts(trace)))  # nothing ran twice


# --- cancel says what it changed ------------------------------------------------------------


class Stubborn(LocalScheduler):
    """A scheduler whose cancel changes nothing (a controller that ignores scancel)."""

    def cancel(self, handles):
        return None


class StubbornPlugin:
    @hookimpl
    def cruijff_schedulers(self):
        yield SchedulerInfo(
            name="stubborn", factory=lambda e, o: Stubborn(o, e.state_dir), available=lambda: False
        )


def test_cancel_reports_only_what_it_changed(
    plugin_manager, fake_tools, make_experiment, trace, cli
):
    plugin_manager.register(StubbornPlugin(), name="stubborn")
    path = make_experiment({"controls": {"sleep": 30}})
    run_experiment(plugin_manager, path, attrs.evolve(FAST, detach=True, jobs=1))
    try:
        result = cli("cancel", path, "--scheduler", "stubborn")
        assert result.exit_code == 0
        assert "cancelled 0 jobs, 5 not" in result.output
        assert result.output.count("still in flight") == 5
    finally:
        assert "cancelled 5 jobs" in cli("cancel", path).output


# --- the machine's errors: full disk, read-only folder ---------------------------------------


def test_a_read_only_experiment_can_be_inspected_but_not_run(
    plugin_manager, fake_tools, make_experiment, cli, tmp_path, mount
):
    path = make_experiment(folder=tmp_path / "mine")
    run_experiment(plugin_manager, path, FAST)
    view = mount("--bind", str(path.parent), at=tmp_path / "view")
    subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
    before = {p: p.stat().st_mtime_ns for p in path.parent.rglob("*")}
    result = cli("status", view / path.name)  # another user's folder, a snapshot
    assert result.exit_code == 0, result.output
    assert "5 succeeded" in result.output
    make_experiment({"controls": {"epochs": 3}}, folder=tmp_path / "mine")
    before = {p: p.stat().st_mtime_ns for p in path.parent.rglob("*")}
    result = cli("run", view / path.name)  # it has changed, so it has files to write
    assert result.exit_code == 1, result.output
    assert "Error: cannot write" in result.output and "Read-only file system" in result.output
    assert "Hint: the file system is read-only" in result.output
    assert "Traceback" not in result.output
    assert {p: p.stat().st_mtime_ns for p in path.parent.rglob("*")} == before


def test_a_full_disk_is_an_error_and_leaves_the_state_as_it_was(
    plugin_manager, fake_tools, make_experiment, cli, tmp_path, mount
):
    disk = mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", at=tmp_path / "disk")
    path = make_experiment(folder=disk)
    assert cli("run", path, "--jobs", "2").exit_code == 0
    snapshot = {p: p.read_bytes() for p in (disk / ".cruijff").rglob("*.json")}
    make_experiment({"controls": {"epochs": 3}}, folder=disk)  # everything must be redone
    with open(disk / "filler", "wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC
    result = cli("run", path, "--jobs", "2")
    assert result.exit_code == 1, result.output
    assert "Error: cannot write" in result.output and "No space left on device" in result.output
    assert "Hint: the disk is full" in result.output and "Traceback" not in result.output
    for file in snapshot:  # nothing half-written: each file whole
        json.loads(file.read_text())
    (disk / "filler").unlink()
    assert cli("run", path, "--jobs", "2").exit_code == 0  # and it carries on from there
    assert all(r.state is JobState.SUCCEEDED for r in status(plugin_manager, path).records.values())


# --- bug reports ------------------------------------------------------------------------------


class Buggy:
    @hookimpl
    def cruijff_commands(self, cli):
        @cli.command("crash")
        def crash():
            raise RuntimeError("boom")


def test_a_bug_report_says_what_to_include_and_names_no_address(plugin_manager, cli):
    plugin_manager.register(Buggy(), name="buggy")
    result = cli("crash")
    assert result.exit_code == 70  # a bug, not click's usage error (2)
    assert "RuntimeError: boom" in result.output
    for part in ("cruijff --version", "cruijff plugins --json", "the command you ran", "-v"):
        assert part in result.output
    assert "http" not in result.output


def test_the_handled_os_errors_name_the_file(tmp_path):
    from cruijff.fsutil import write_atomic

    target = tmp_path / ("x" * 300)
    with pytest.raises(OSError) as caught:
        write_atomic(target, "text")
    assert caught.value.errno == errno.ENAMETOOLONG and caught.value.filename == str(target)
