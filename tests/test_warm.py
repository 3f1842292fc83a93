"""Warm processes (cruijff.warm): a job's work in a fork of a process that imported what it
needs once, with the job's streams, directory, environment, exit code, signals and memory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cruijff import warm

TARGET = textwrap.dedent(
    """
    import os, signal, sys, time
    with open(os.environ["WT_LOG"], "a") as f:
        f.write(f"imported in {os.getpid()}\\n")

    def main(argv):
        print("cwd", os.getcwd(), "server", os.getppid(), "x", os.environ.get("X"), flush=True)
        print("to stderr", file=sys.stderr, flush=True)
        if argv[0] == "sleep":
            def stop(*_):
                with open(os.environ["WT_LOG"], "a") as f:
                    f.write("terminated\\n")
                sys.exit(130)
            signal.signal(signal.SIGTERM, stop)
            print("sleeping", flush=True)
            time.sleep(60)
        if argv[0] == "grow":
            block = bytearray(300 * 2**20)  # touched: resident
            return len(block) and 0
        return int(argv[0])
    """
)
CLIENT = (
    "import sys\n"
    "from cruijff import warm\n"
    "code = warm.call('warmtarget:main', sys.argv[2:], sys.argv[1].split(','))\n"
    "print('served' if code is not None else 'not served', file=sys.stderr)\n"
    "sys.exit(0 if code is None else code)\n"
)


@pytest.fixture
def scope(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "warmtarget.py").write_text(TARGET)
    monkeypatch.setenv("PYTHONPATH", str(code))
    monkeypatch.setenv("WT_LOG", str(tmp_path / "imports.log"))
    monkeypatch.setenv(warm.ENV, str(tmp_path / "queue"))
    monkeypatch.setenv(warm.IDLE, "1")  # servers of a test do not outlive it for long
    monkeypatch.delenv(warm.WORKER, raising=False)
    monkeypatch.delenv("CRUIJFF_LOCAL_JOB", raising=False)
    return tmp_path


def client(folder: Path, *argv: str, modules: str = "warmtarget", **env: str) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "out", "w") as out, open(folder / "err", "w") as err:
        return subprocess.Popen(
            [sys.executable, "-c", CLIENT, modules, *argv],
            cwd=folder,
            stdout=out,
            stderr=err,
            env={**os.environ, **env},
        )


def finished(process: subprocess.Popen) -> int:
    return process.wait(timeout=60)


def imports(scope: Path) -> list[str]:
    path = scope / "imports.log"
    return path.read_text().splitlines() if path.exists() else []


def test_jobs_share_a_warm_process_each_with_its_own_streams_directory_and_exit_code(scope):
    a = client(scope / "a", "3", CRUIJFF_LOCAL_JOB=str(scope / "job-a"))
    assert finished(a) == 3
    b = client(scope / "b", "0", CRUIJFF_LOCAL_JOB=str(scope / "job-b"))
    assert finished(b) == 0
    out_a, out_b = (scope / "a" / "out").read_text(), (scope / "b" / "out").read_text()
    assert f"cwd {scope / 'a'} " in out_a and f"cwd {scope / 'b'} " in out_b
    assert "to stderr" in (scope / "a" / "err").read_text()
    assert "served" in (scope / "b" / "err").read_text()
    # the module was imported once, in the server, which forked both workers
    assert len(imports(scope)) == 1
    server = imports(scope)[0].split()[-1]
    assert f"server {server} " in out_a and f"server {server} " in out_b
    assert list((scope / "queue" / "warm").glob("*.log"))

    # an environment the imports may read (not a per-job variable) gets its own server
    c = client(scope / "c", "0", X="other")
    assert finished(c) == 0
    assert "x other" in (scope / "c" / "out").read_text()
    assert len(imports(scope)) == 2


def test_a_cancelled_or_killed_client_stops_its_worker(scope):
    for number, expected in ((signal.SIGTERM, 130), (signal.SIGKILL, -signal.SIGKILL)):
        folder = scope / f"job-{number}"
        job = client(folder, "sleep")
        deadline = time.monotonic() + 60
        while "sleeping" not in (folder / "out").read_text():
            assert time.monotonic() < deadline and job.poll() is None
            time.sleep(0.05)
        job.send_signal(number)
        assert finished(job) == expected
        deadline = time.monotonic() + 10
        while imports(scope).count("terminated") < (1 if number == signal.SIGTERM else 2):
            assert time.monotonic() < deadline, "the worker was not stopped"
            time.sleep(0.05)


def test_the_job_runs_its_work_itself_where_no_warm_process_can_be_had(scope, monkeypatch):
    assert finished(client(scope / "a", "0", CRUIJFF_WARM="")) == 0
    assert "not served" in (scope / "a" / "err").read_text()
    assert finished(client(scope / "b", "0", CRUIJFF_WARM_WORKER="1")) == 0
    assert "not served" in (scope / "b" / "err").read_text()
    # a server that cannot import what the work needs serves nothing, and says why
    assert finished(client(scope / "c", "5", modules="warmtarget,no_such_module")) == 0
    assert "not served" in (scope / "c" / "err").read_text()
    logs = "".join(p.read_text() for p in (scope / "queue" / "warm").glob("*.log"))
    assert "No module named 'no_such_module'" in logs
    monkeypatch.delenv(warm.ENV)
    assert warm.call("warmtarget:main", ["0"], ["warmtarget"]) is None


def test_an_idle_server_exits(scope):
    assert finished(client(scope / "a", "0")) == 0
    server = int(imports(scope)[0].split()[-1])
    deadline = time.monotonic() + 15
    while Path(f"/proc/{server}").exists() and _running(server):
        assert time.monotonic() < deadline, "the idle server is still there"
        time.sleep(0.1)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_workers_peak_memory_is_what_the_local_job_reports(scope):
    folder = scope / "jobs" / "unit.1"
    folder.mkdir(parents=True)
    assert finished(client(scope / "a", "grow", CRUIJFF_LOCAL_JOB=str(folder))) == 0
    peak = json.loads((folder / warm.USAGE).read_text())["peak_rss_mb"]
    assert peak >= 300
    # the job wrapper's own children are small: it reports the worker's peak (asked in a
    # fresh process: this one's children are the whole suite's)
    assert reported_peak(folder) == peak
    (folder / warm.USAGE).write_text("not json")
    assert reported_peak(folder) < 300


def reported_peak(folder: Path) -> float:
    code = (
        "import pathlib, sys; from cruijff.local import job;"
        " print(job._peak_rss_mb(pathlib.Path(sys.argv[1])))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(folder)], capture_output=True, text=True, check=True
    )
    return float(run.stdout)


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_server_started_early_runs_no_work_and_waits_while_its_executor_lives(scope):
    executor = subprocess.Popen(["sleep", "60"])  # stands for the local executor
    try:
        early = client(scope / "early", "5", **{warm.PREPARE: str(executor.pid)})
        assert finished(early) == 0  # prepared: the work (which would exit 5) did not run
        assert "cwd" not in (scope / "early" / "out").read_text()
        wait_until(lambda: len(imports(scope)) == 1, 30, "the early server's imports")
        server = int(imports(scope)[0].split()[-1])
        time.sleep(2.5)  # well past its idle time (1 s): it waits for the job
        assert _running(server)
        job = client(scope / "job", "0")
        assert finished(job) == 0
        assert f"server {server} " in (scope / "job" / "out").read_text()
        assert len(imports(scope)) == 1  # the job's work ran in it: nothing imported again
        # told again that a job is coming, the server that served one waits again
        again = client(scope / "again", "5", **{warm.PREPARE: str(executor.pid)})
        assert finished(again) == 0
        time.sleep(2.5)
        assert _running(server) and len(imports(scope)) == 1
    finally:
        executor.kill()
        executor.wait()
    wait_until(lambda: not _running(server), 15, "the server to end with its executor")


def test_the_local_executor_starts_a_waiting_jobs_warm_process_while_its_dependency_runs(scope):
    from cruijff.local.scheduler import LocalScheduler
    from cruijff.records import JobSpec, JobState

    log = scope / "imports.log"
    # A ends only once B's warm process has imported (it waits up to 30 s for that), then
    # runs 2.5 s more: B's process must be started early, and wait for B beyond its idle time
    watch = f"for i in $(seq 300); do [ -s {log} ] && sleep 2.5 && exit 0; sleep 0.1; done; exit 1"
    a = JobSpec(unit_id="a", name="a", argv=("sh", "-c", watch), workdir=scope, log=scope / "a.log")
    (scope / "b").mkdir()
    b = JobSpec(
        unit_id="b",
        name="b",
        argv=(sys.executable, "-c", CLIENT, "warmtarget", "0"),
        workdir=scope / "b",
        log=scope / "b.log",
        env={warm.WARMS: "1"},
        depends_on=("a",),
    )
    # a job its tool does not mark is never run early: its command may do its work at once
    marker = scope / "c-ran"
    c = JobSpec(
        unit_id="c",
        name="c",
        argv=("sh", "-c", f"echo ran >> {marker}"),
        workdir=scope,
        log=scope / "c.log",
        depends_on=("a",),
    )
    scheduler = LocalScheduler({"jobs": 1}, scope / "state")
    handles = scheduler.submit([a, b, c], handles={})
    deadline = time.monotonic() + 60
    while True:
        statuses = scheduler.poll(handles)
        if all(status.state.finished for status in statuses.values()):
            break
        assert time.monotonic() < deadline, statuses
        scheduler.resume(handles)
        time.sleep(0.1)
    assert [s.state for s in statuses.values()] == [JobState.SUCCEEDED] * 3
    assert "served" in (scope / "b.log").read_text()
    assert len(imports(scope)) == 1  # B's work ran in the process started early
    assert marker.read_text() == "ran\n"
