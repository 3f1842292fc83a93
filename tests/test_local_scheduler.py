"""The local scheduler: a file queue served by a detached executor, one wrapper per job.

The jobs are tiny ``sh -c`` commands that append ``<name> start|end <time>`` lines to an events
file, so the tests can see what ran, when, and how often.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Sequence
from pathlib import Path

import pytest

from cruijff.errors import UserError
from cruijff.fsutil import write_json
from cruijff.local import cruijff_schedulers
from cruijff.local.executor import try_start
from cruijff.local.scheduler import LocalScheduler
from cruijff.local.store import (
    CANCELLED,
    DEPENDENCY_FAILED,
    EXECUTOR_LOCK,
    EXITED,
    QUEUED,
    executor_alive,
    job_dir,
    read_state,
)
from cruijff.records import JobHandle, JobSpec, JobState, JobStatus
from cruijff.scheduler import Scheduler

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the local scheduler is Linux only")


def wait_until_finished(
    scheduler: LocalScheduler, handles: Sequence[JobHandle], timeout: float = 10.0
) -> dict[JobHandle, JobStatus]:
    """Poll until every job has finished, as a driving ``cruijff run`` does (resume, then
    poll); fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        scheduler.resume(handles)
        statuses = scheduler.poll(handles)
        if all(status.state.finished for status in statuses.values()):
            return statuses
        if time.monotonic() > deadline:
            pytest.fail(f"jobs still unfinished after {timeout} s: {statuses}")
        time.sleep(0.05)


def wait_for(condition, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie nobody reaped yet counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


class Lab:
    """Makes schedulers and jobs in one test's folder, and reads what the jobs did."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state_dir = root / "state"
        self.local_dir = self.state_dir / "local"
        self.events = root / "events"

    def scheduler(self, jobs: int = 1) -> LocalScheduler:
        return LocalScheduler({"jobs": jobs}, self.state_dir)

    def job(self, name: str, body: str = "true", **fields) -> JobSpec:
        """A job that records its start and end around ``body`` and exits as ``body`` did."""
        script = (
            f'echo "{name} start $(date +%s.%N)" >> {self.events}; {body}\n'
            f'rc=$?; echo "{name} end $(date +%s.%N)" >> {self.events}; exit $rc'
        )
        fields.setdefault("workdir", self.root)
        fields.setdefault("log", self.root / "logs" / f"{name}.log")
        return JobSpec(unit_id=name, name=name, argv=("sh", "-c", script), **fields)

    def spans(self) -> dict[str, list[tuple[float, float | None]]]:
        """Job name -> (start, end) of each time it ran."""
        spans: dict[str, list] = {}
        if not self.events.exists():
            return spans
        for line in self.events.read_text().splitlines():
            name, what, at = line.split()
            if what == "start":
                spans.setdefault(name, []).append((float(at), None))
            else:
                start, _ = spans[name][-1]
                spans[name][-1] = (start, float(at))
        return spans

    def executor_pid(self) -> int:
        return int((self.local_dir / EXECUTOR_LOCK).read_text())


@pytest.fixture
def lab(tmp_path: Path):
    lab = Lab(tmp_path)
    yield lab
    # Leave nothing running behind a failed test.
    jobs_dir = lab.local_dir / "jobs"
    if jobs_dir.exists():
        handles = [JobHandle(scheduler="local", id=name) for name in os.listdir(jobs_dir)]
        LocalScheduler({}, lab.state_dir).cancel(handles)


def test_the_plugin_registers_a_local_scheduler(lab: Lab) -> None:
    (info,) = list(cruijff_schedulers())
    assert info.name == "local"
    experiment = types.SimpleNamespace(state_dir=lab.state_dir)
    scheduler = info.factory(experiment, {"jobs": 2})
    assert isinstance(scheduler, Scheduler) and scheduler.local_dir == lab.state_dir / "local"
    assert scheduler.name == "local"
    assert scheduler.preview([lab.job("a")]) == []
    with pytest.raises(UserError, match="jobs"):
        LocalScheduler({"jobs": 0}, lab.state_dir)


def test_a_dependent_starts_only_after_its_dependency_ended(lab: Lab) -> None:
    scheduler = lab.scheduler(jobs=2)  # room for both: only the dependency holds B back
    handles = scheduler.submit(
        [lab.job("a", "sleep 0.4"), lab.job("b", depends_on=("a",))], handles={}
    )
    assert [handle.id for handle in handles] == ["a.1", "b.1"]
    statuses = wait_until_finished(scheduler, handles)
    assert {status.state for status in statuses.values()} == {JobState.SUCCEEDED}
    spans = lab.spans()
    assert spans["b"][0][0] >= spans["a"][0][1]


@pytest.mark.parametrize("jobs", [1, 2])
def test_at_most_jobs_run_at_once(lab: Lab, jobs: int) -> None:
    scheduler = lab.scheduler(jobs=jobs)
    handles = scheduler.submit([lab.job(name, "sleep 0.4") for name in "abc"], handles={})
    wait_until_finished(scheduler, handles)
    spans = sorted(span for runs in lab.spans().values() for span in runs)
    assert len(spans) == 3
    starts = [start for start, _ in spans]
    if jobs == 1:
        # One at a time, in submission order.
        assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans))
        assert [name for name, runs in lab.spans().items() for _ in runs] == ["a", "b", "c"]
    else:
        assert spans[1][0] < spans[0][1], "the first two should overlap"
        at_once = max(sum(start <= at < end for start, end in spans) for at in starts)
        assert at_once == 2


def test_a_failed_job_fails_its_dependents_which_never_run(lab: Lab) -> None:
    scheduler = lab.scheduler(jobs=2)
    handles = scheduler.submit(
        [
            lab.job("a", "exit 3"),
            lab.job("b", depends_on=("a",)),
            lab.job("c", depends_on=("b",)),
            lab.job("d", "kill -9 $$"),
            JobSpec(
                unit_id="e",
                name="e",
                argv=("no-such-command",),
                workdir=lab.root,
                log=lab.root / "e.log",
            ),
        ],
        handles={},
    )
    a, b, c, d, e = (wait_until_finished(scheduler, handles)[handle] for handle in handles)
    assert a == JobStatus(state=JobState.FAILED, exit_code=3, cause="exit code 3")
    assert b.state is JobState.DEPENDENCY_NEVER_SATISFIED
    assert "a.1" in b.cause and "exit code 3" in b.cause
    assert c.state is JobState.DEPENDENCY_NEVER_SATISFIED
    assert "b.1" in c.cause
    assert d.state is JobState.FAILED and d.exit_code == 128 + 9
    assert "signal 9 (SIGKILL)" in d.cause
    assert e.state is JobState.FAILED and e.exit_code == 127
    assert "could not start" in e.cause and "no-such-command" in e.cause
    # b and c never started, and never will: their failure is final on disk (poll says so
    # from their dependencies at once; the executor writes it on its next round)
    assert set(lab.spans()) == {"a", "d"}
    for name in ("b.1", "c.1"):
        folder = job_dir(lab.local_dir, name)
        wait_for(lambda f=folder: read_state(f)[0] == DEPENDENCY_FAILED, what=f"{name} failed")
    assert set(lab.spans()) == {"a", "d"}


def test_env_workdir_and_log(lab: Lab) -> None:
    scheduler = lab.scheduler()
    workdir = lab.root / "work"
    workdir.mkdir()
    log = lab.root / "deep" / "folder" / "x.log"
    body = 'echo "$FOO" > foo.txt; pwd > pwd.txt; echo to-stdout; echo to-stderr >&2'
    job = lab.job("x", body, workdir=workdir, env={"FOO": "bar"}, log=log)
    statuses = wait_until_finished(scheduler, scheduler.submit([job], handles={}))
    assert [status.state for status in statuses.values()] == [JobState.SUCCEEDED]
    assert (workdir / "foo.txt").read_text() == "bar\n"
    assert (workdir / "pwd.txt").read_text().strip() == str(workdir)
    text = log.read_text()
    assert text.startswith("--- cruijff: x attempt 1 started ")
    assert "to-stdout\nto-stderr\n" in text
    # A second attempt gets the next id and appends to the same log.
    (handle,) = scheduler.submit([job], handles={})
    assert handle.id == "x.2"
    wait_until_finished(scheduler, [handle])
    assert "--- cruijff: x attempt 2 started " in log.read_text()
    assert text in log.read_text()


def test_cancel_a_running_job_kills_its_whole_process_group(lab: Lab) -> None:
    scheduler = lab.scheduler()
    body = "sleep 30 & echo $! > child.pid; echo $$ > shell.pid; wait"
    (handle,) = scheduler.submit([lab.job("x", body)], handles={})
    child_pid_file = lab.root / "child.pid"
    wait_for(lambda: child_pid_file.exists() and child_pid_file.read_text().strip(), what="x")
    pids = [int((lab.root / name).read_text()) for name in ("child.pid", "shell.pid")]
    assert scheduler.poll([handle])[handle].state is JobState.RUNNING
    scheduler.cancel([handle])
    assert scheduler.poll([handle])[handle].state is JobState.CANCELLED
    # Stopped by SIGTERM, not by the SIGKILL that follows the grace period.
    assert read_state(job_dir(lab.local_dir, handle.id))[1]["signal"] == signal.SIGTERM
    wait_for(lambda: all(gone(pid) for pid in pids), timeout=2, what="the job's processes")


def test_cancel_a_job_whose_wrapper_was_killed(lab: Lab) -> None:
    scheduler = lab.scheduler()
    body = "sleep 30 & echo $! > child.pid; wait"
    (handle,) = scheduler.submit([lab.job("x", body)], handles={})
    directory = job_dir(lab.local_dir, handle.id)
    wait_for(lambda: "pid" in read_state(directory)[1], what="the job's pids")
    wait_for(lambda: (lab.root / "child.pid").exists(), what="the job's child")
    status = read_state(directory)[1]
    os.kill(status["wrapper_pid"], signal.SIGKILL)
    wait_for(lambda: gone(status["wrapper_pid"]), what="the wrapper's death")
    # The command still holds the job's lock: the job is still running.
    assert scheduler.poll([handle])[handle].state is JobState.RUNNING
    scheduler.cancel([handle])
    assert scheduler.poll([handle])[handle].state is JobState.CANCELLED
    child = int((lab.root / "child.pid").read_text())
    wait_for(lambda: gone(status["pid"]) and gone(child), timeout=2, what="the processes")


def test_a_running_job_whose_processes_vanished_failed(lab: Lab) -> None:
    scheduler = lab.scheduler()
    directory = job_dir(lab.local_dir, "x.1")
    write_json(directory / "spec.json", {"name": "x", "dependencies": []})
    write_json(directory / "status.json", {"state": "running"})  # and nobody holds the lock
    status = scheduler.poll([JobHandle(scheduler="local", id="x.1")])
    assert list(status.values()) == [
        JobStatus(state=JobState.FAILED, cause="the job's process disappeared", lost=True)
    ]
    unknown = JobHandle(scheduler="local", id="nope.1")
    assert scheduler.poll([unknown])[unknown].state is JobState.UNKNOWN


def test_cancel_a_queued_job_it_never_starts(lab: Lab) -> None:
    scheduler = lab.scheduler(jobs=1)
    a, b = scheduler.submit([lab.job("a", "sleep 0.5"), lab.job("b")], handles={})
    wait_for(lambda: scheduler.poll([a])[a].state is JobState.RUNNING, what="a to run")
    scheduler.cancel([b])
    assert scheduler.poll([b])[b] == JobStatus(state=JobState.CANCELLED, cause="cancelled")
    statuses = wait_until_finished(scheduler, [a, b])
    assert statuses[a].state is JobState.SUCCEEDED
    scheduler.cancel([a])  # a finished job stays as it ended
    assert scheduler.poll([a])[a].state is JobState.SUCCEEDED
    # b never started, and never will: its cancel is final on disk.
    assert set(lab.spans()) == {"a"}
    assert read_state(job_dir(lab.local_dir, b.id))[0] == CANCELLED


def test_a_job_after_another_waits_for_it_to_end_however_it_ends(lab: Lab) -> None:
    """``after`` is an order, not a dependency: b and c start only once a ended (failed, here),
    though there is room for all three at once and c comes first in the batch; d, after a job
    of an earlier batch, waits for it too; e, after a unit with no job, starts at once."""
    scheduler = lab.scheduler(jobs=3)
    (early,) = scheduler.submit([lab.job("early", "sleep 0.6")], handles={})
    handles = scheduler.submit(
        [
            lab.job("c", after=("a",)),
            lab.job("a", "sleep 0.4; (exit 3)"),
            lab.job("b", after=("a",), depends_on=("c",)),
            lab.job("d", after=("early",)),
            lab.job("e", after=("evaluated-last-week",)),
        ],
        handles={"early": early},
    )
    statuses = wait_until_finished(scheduler, [early, *handles])
    c, a, b, d, e = (statuses[handle] for handle in handles)
    assert a.state is JobState.FAILED
    assert {c.state, b.state, d.state, e.state} == {JobState.SUCCEEDED}
    spans = lab.spans()
    assert spans["c"][0][0] >= spans["a"][0][1] and spans["b"][0][0] >= spans["a"][0][1]
    assert spans["d"][0][0] >= spans["early"][0][1]
    assert spans["e"][0][0] < spans["a"][0][1]


def test_a_dependency_from_an_earlier_batch(lab: Lab) -> None:
    scheduler = lab.scheduler(jobs=2)
    (a,) = scheduler.submit([lab.job("a", "sleep 0.4")], handles={})
    # A new scheduler object, as a later `cruijff run` would make.
    later = lab.scheduler(jobs=2)
    (b,) = later.submit([lab.job("b", depends_on=("a",))], handles={"a": a})
    statuses = wait_until_finished(later, [a, b])
    assert {status.state for status in statuses.values()} == {JobState.SUCCEEDED}
    spans = lab.spans()
    assert spans["b"][0][0] >= spans["a"][0][1]
    with pytest.raises(UserError, match="does not know"):
        later.submit(
            [lab.job("c", depends_on=("a",))],
            handles={"a": JobHandle(scheduler="local", id="a.7")},
        )


def test_a_dependency_with_no_job_counts_as_succeeded(lab: Lab) -> None:
    scheduler = lab.scheduler()
    handles = scheduler.submit([lab.job("b", depends_on=("trained-last-week",))], handles={})
    statuses = wait_until_finished(scheduler, handles)
    assert [status.state for status in statuses.values()] == [JobState.SUCCEEDED]


def test_find_gives_the_newest_job_of_each_name(lab: Lab) -> None:
    scheduler = lab.scheduler()
    first = scheduler.submit([lab.job("x"), lab.job("y")], handles={})
    (second,) = scheduler.submit([lab.job("x")], handles={})
    wait_until_finished(scheduler, [*first, second])
    found = scheduler.find(["x", "y", "nope"])
    assert found == {"x": second, "y": first[1]}
    assert found["x"].id == "x.2"


def test_an_executor_killed_midway_loses_nothing(lab: Lab) -> None:
    scheduler = lab.scheduler(jobs=1)
    a, b = scheduler.submit([lab.job("a", "sleep 0.6; exit 5"), lab.job("b")], handles={})
    wait_for(lambda: scheduler.poll([a])[a].state is JobState.RUNNING, what="a to run")
    os.kill(lab.executor_pid(), signal.SIGKILL)
    wait_for(lambda: not executor_alive(lab.local_dir), what="the executor's death")
    # Read the files directly: a poll would revive the executor.
    directory = job_dir(lab.local_dir, a.id)
    wait_for(lambda: read_state(directory)[0] == EXITED, what="a to end")
    assert read_state(directory)[1]["exit_code"] == 5
    time.sleep(0.3)
    assert read_state(job_dir(lab.local_dir, b.id))[0] == QUEUED
    # A poll only reads (cruijff status polls too): it says nobody serves b, and starts none.
    spawned = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess, "Popen", lambda *a, **k: spawned.append(a))
        unserved = scheduler.poll([b])[b]
    assert unserved.state is JobState.PENDING and "no executor is serving" in unserved.cause
    assert spawned == [] and not executor_alive(lab.local_dir)
    assert read_state(job_dir(lab.local_dir, b.id))[0] == QUEUED
    statuses = wait_until_finished(scheduler, [a, b])
    assert statuses[a] == JobStatus(state=JobState.FAILED, exit_code=5, cause="exit code 5")
    assert statuses[b].state is JobState.SUCCEEDED


def test_no_job_runs_twice_with_several_executors(lab: Lab, monkeypatch) -> None:
    monkeypatch.setattr(LocalScheduler, "_ensure_executor", lambda self: None)
    scheduler = lab.scheduler(jobs=3)
    handles = scheduler.submit([lab.job(f"j{i}", "sleep 0.1") for i in range(6)], handles={})
    executors = [
        subprocess.Popen(
            [sys.executable, "-m", "cruijff.local.executor", str(lab.local_dir)],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(4)
    ]
    statuses = wait_until_finished(scheduler, handles)
    for executor in executors:
        executor.wait(timeout=5)
    assert {status.state for status in statuses.values()} == {JobState.SUCCEEDED}
    assert {name: len(runs) for name, runs in lab.spans().items()} == {f"j{i}": 1 for i in range(6)}


def test_a_job_is_started_once_however_many_try(lab: Lab, monkeypatch) -> None:
    monkeypatch.setattr(LocalScheduler, "_ensure_executor", lambda self: None)
    scheduler = lab.scheduler()
    (handle,) = scheduler.submit([lab.job("x", "sleep 0.2")], handles={})
    directory = job_dir(lab.local_dir, handle.id)
    barrier = threading.Barrier(8)
    started = []

    def start() -> None:
        barrier.wait()
        started.append(try_start(directory))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wrappers = [wrapper for wrapper in started if wrapper is not None]
    assert len(wrappers) == 1
    wrappers[0].wait(timeout=5)
    assert try_start(directory) is None  # it ran: not queued any more
    assert scheduler.poll([handle])[handle].state is JobState.SUCCEEDED
    assert len(lab.spans()["x"]) == 1


def test_a_submission_cut_short_leaves_nothing_submitted(lab: Lab, monkeypatch) -> None:
    import cruijff.local.scheduler as module

    calls = []

    def killed_after_one_file(real):
        def write(*args, **kwargs):
            calls.append(args)
            # submit writes config.json, then the job's two files: die before the second
            if len(calls) == 3:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        return write

    scheduler = lab.scheduler()
    for name in ("write_json", "write_status"):
        monkeypatch.setattr(module, name, killed_after_one_file(getattr(module, name)))
    with pytest.raises(KeyboardInterrupt):
        scheduler.submit([lab.job("a")], {})
    monkeypatch.undo()
    assert scheduler.find(["a"]) == {}  # nothing to adopt after the crash
    handles = scheduler.submit([lab.job("a"), lab.job("b", depends_on=("a",))], {})
    assert handles[0].id.endswith(".2")  # the cut-short attempt keeps its number
    finished = wait_until_finished(scheduler, handles, timeout=20)
    assert {status.state for status in finished.values()} == {JobState.SUCCEEDED}


# --- damaged files and deleted locks (the "broken promises" regressions) ---------------------


def hold_executor(monkeypatch) -> None:
    """Submit without starting an executor, so a test can damage a queued job's files first."""
    monkeypatch.setattr(LocalScheduler, "_ensure_executor", lambda self: None)


def test_the_executor_fails_a_job_whose_spec_is_cut_short_and_serves_the_rest(
    lab: Lab, monkeypatch
) -> None:
    scheduler = lab.scheduler(jobs=1)
    with monkeypatch.context() as patch:
        hold_executor(patch)
        a, b = scheduler.submit([lab.job("a"), lab.job("b")], handles={})
    spec = job_dir(lab.local_dir, a.id) / "spec.json"
    spec.write_text(spec.read_text()[:40])
    statuses = wait_until_finished(scheduler, [a, b])
    assert statuses[a].state is JobState.FAILED
    assert f"{spec} is not valid JSON (line" in statuses[a].cause
    assert statuses[b].state is JobState.SUCCEEDED
    assert "a" not in lab.spans()  # its command never ran
    # The failure is on disk, not only derived: a later reader sees the same.
    assert read_state(job_dir(lab.local_dir, a.id))[0] == EXITED


@pytest.mark.parametrize("damage", ["truncate", "empty"])
def test_a_queued_job_whose_status_is_unreadable_fails_naming_it(
    lab: Lab, monkeypatch, damage: str
) -> None:
    scheduler = lab.scheduler(jobs=1)
    with monkeypatch.context() as patch:
        hold_executor(patch)
        a, b = scheduler.submit([lab.job("a"), lab.job("b", depends_on=("a",))], handles={})
    status_file = job_dir(lab.local_dir, a.id) / "status.json"
    status_file.write_text(status_file.read_text()[:5] if damage == "truncate" else "")
    # Read-only, and final at once: `cruijff run` never waits for it.
    polled = scheduler.poll([a, b])
    assert polled[a].state is JobState.FAILED and str(status_file) in polled[a].cause
    assert polled[b].state is JobState.DEPENDENCY_NEVER_SATISFIED
    statuses = wait_until_finished(scheduler, [a, b])
    assert statuses[a].state is JobState.FAILED and str(status_file) in statuses[a].cause
    assert statuses[b].state is JobState.DEPENDENCY_NEVER_SATISFIED
    assert lab.spans() == {}


def test_cancel_settles_a_job_whose_status_is_unreadable(lab: Lab, monkeypatch) -> None:
    scheduler = lab.scheduler()
    with monkeypatch.context() as patch:
        hold_executor(patch)
        (a,) = scheduler.submit([lab.job("a")], handles={})
    (job_dir(lab.local_dir, a.id) / "status.json").write_text("{")
    scheduler.cancel([a])
    assert scheduler.poll([a])[a].state is JobState.CANCELLED


def test_a_running_job_whose_lock_file_was_deleted_still_runs(lab: Lab) -> None:
    scheduler = lab.scheduler(jobs=2)
    a, b = scheduler.submit([lab.job("a", "sleep 1.5"), lab.job("b", depends_on=("a",))], {})
    wait_for(lambda: scheduler.poll([a])[a].state is JobState.RUNNING, what="a to run")
    (job_dir(lab.local_dir, a.id) / "lock").unlink()
    # Its pid and identity say it lives: not lost, its dependent waits, a cancel would stop it.
    assert scheduler.poll([a, b])[b].state is JobState.PENDING
    statuses = wait_until_finished(scheduler, [a, b])
    assert statuses[a].state is JobState.SUCCEEDED and statuses[b].state is JobState.SUCCEEDED
    assert len(lab.spans()["a"]) == 1 and lab.spans()["a"][0][1] < lab.spans()["b"][0][0]


def test_cancel_stops_a_job_whose_lock_file_was_deleted(lab: Lab) -> None:
    scheduler = lab.scheduler()
    (a,) = scheduler.submit([lab.job("a", "sleep 30")], {})
    directory = job_dir(lab.local_dir, a.id)
    wait_for(lambda: "pid" in read_state(directory)[1], what="a's command to start")
    pid = read_state(directory)[1]["pid"]
    (job_dir(lab.local_dir, a.id) / "lock").unlink()
    scheduler.cancel([a])
    assert scheduler.poll([a])[a].state is JobState.CANCELLED
    wait_for(lambda: gone(pid), what="the command to be stopped")


def test_local_jobs_get_gpus_only_where_the_driver_lists_visible_devices(monkeypatch) -> None:
    from cruijff.local import has_cuda_devices

    listed = Path("/proc/driver/nvidia/gpus")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert has_cuda_devices() == (listed.is_dir() and any(listed.iterdir()))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert has_cuda_devices() is False
    (info,) = list(cruijff_schedulers())
    assert info.gpus(None) is False


def test_a_finished_job_reports_its_peak_resident_memory_and_wall_time(lab: Lab) -> None:
    # a child of a child holds 200 MiB (touched, so resident) for 0.3 s: the wrapper's
    # peak is the largest process of the command's tree, however deep
    hold = "import time; b = bytearray(200 * 2**20); time.sleep(0.3)"
    body = f"{sys.executable} -c {hold!r}"
    job = JobSpec(
        unit_id="big",
        name="big",
        argv=("sh", "-c", f"{body}; true"),
        workdir=lab.root,
        log=lab.root / "big.log",
    )
    small = lab.job("small")
    scheduler = lab.scheduler(jobs=1)
    handles = scheduler.submit([job, small], {})
    statuses = wait_until_finished(scheduler, handles)
    big, little = (statuses[h] for h in handles)
    assert big.state is JobState.SUCCEEDED
    assert 200 <= big.peak_memory_mb < 400
    assert little.peak_memory_mb is not None and little.peak_memory_mb < 100
    assert big.wall_s >= 0.3 and little.wall_s < big.wall_s
