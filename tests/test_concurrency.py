"""Several commands on one experiment at once: `cruijff status` in a loop while a run goes on
reads a consistent picture and changes nothing (it reads through a read-only bind mount of the
experiment, so a single write would fail it); two `cruijff run` started together, one drives
and the other says the experiment is busy; the lock of a driver killed with SIGKILL is taken
over by the next run, which finishes the work without running anything twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter

from killloop import environment, experiment, trace

ORDER = {"NOT_SUBMITTED": 0, "PENDING": 1, "RUNNING": 2, "SUCCEEDED": 3}
"""How far a job of a run that goes well has come: a later status never shows less."""


def cruijff(*argv: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cruijff", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_status_in_a_loop_during_a_run_reads_a_consistent_picture_and_writes_nothing(
    tmp_path, mount
):
    folder = tmp_path / "mine"
    folder.mkdir()
    path = experiment(folder)
    env = environment(folder)
    view = mount("--bind", str(folder), at=tmp_path / "view")
    subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
    run = cruijff("run", str(path), env=env)
    seen: dict[str, int] = {}
    looks = 0
    while True:
        ended = run.poll() is not None
        shown = subprocess.run(
            [sys.executable, "-m", "cruijff", "status", "--json", str(view / path.name)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.returncode == 0, shown.stdout + shown.stderr
        looks += 1
        for job in json.loads(shown.stdout)["jobs"]:
            assert job["state"] in ORDER, job  # nothing failed, nothing lost
            assert ORDER[job["state"]] >= seen.get(job["unit"], 0), (job, seen)  # no step back
            seen[job["unit"]] = ORDER[job["state"]]
        if ended:
            break
    assert run.returncode == 0, run.stderr
    assert looks >= 3
    assert set(seen.values()) == {ORDER["SUCCEEDED"]} and len(seen) == 5
    starts = Counter(unit for kind, unit, _ in trace(folder) if kind == "start")
    assert set(starts.values()) == {1}  # status started nothing, and nothing twice


def test_two_runs_started_together_one_drives_and_the_other_says_busy(tmp_path):
    path = experiment(tmp_path)
    env = environment(tmp_path)
    runs = [cruijff("run", str(path), env=env) for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    codes = sorted(run.returncode for run in runs)
    assert codes == [0, 1], outputs
    loser = next(out + err for run, (out, err) in zip(runs, outputs, strict=True) if run.returncode)
    assert "the experiment is busy" in loser and "Traceback" not in loser
    starts = Counter(unit for kind, unit, _ in trace(tmp_path) if kind == "start")
    assert len(starts) == 5 and set(starts.values()) == {1}


def test_the_lock_of_a_killed_driver_is_taken_over_and_nothing_runs_twice(tmp_path):
    path = experiment(tmp_path)
    env = environment(tmp_path)
    first = cruijff("run", str(path), env=env)
    deadline = time.monotonic() + 60
    while not any(kind == "start" for kind, _, _ in trace(tmp_path)):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    lock = tmp_path / ".cruijff" / "run.lock"
    assert lock.exists()  # left behind, naming a dead process
    again = subprocess.run(
        [sys.executable, "-m", "cruijff", "run", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "busy" not in again.stdout + again.stderr
    starts = Counter(unit for kind, unit, _ in trace(tmp_path) if kind == "start")
    assert len(starts) == 5 and set(starts.values()) == {1}
