"""Killing `cruijff run` with SIGKILL at any moment loses nothing: a second run finishes the
work, starts no job that had succeeded, and no job ever runs twice at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from cruijff.testing import DEFAULT_EXPERIMENT, merge

pytestmark = pytest.mark.slow


def read_trace(path):
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines()]


def cruijff(path, env):
    return subprocess.Popen(
        [sys.executable, "-m", "cruijff", "run", str(path), "--jobs", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("moment", ["submitting", "first-start", "first-end"])
def test_kill_9_then_run_again_finishes_everything_once(make_experiment, tmp_path, moment):
    import yaml

    changes = {"variables": {"lora_rank": [2, 4, 8]}, "controls": {"sleep": 0.6}}
    path = make_experiment(text=yaml.safe_dump(merge(DEFAULT_EXPERIMENT, changes)))
    trace = tmp_path / "trace.txt"
    env = {
        **os.environ,
        "CRUIJFF_PLUGINS": "cruijff.testing.fake",
        "CRUIJFF_FAKE_TRACE": str(trace),
    }

    first = cruijff(path, env)
    deadline = time.monotonic() + 30
    while True:
        events = [row[0] for row in read_trace(trace)]
        if moment == "submitting" and (path.parent / ".cruijff" / "jobs").exists():
            break
        if moment == "first-start" and "start" in events:
            break
        if moment == "first-end" and "end" in events:
            break
        if time.monotonic() > deadline or first.poll() is not None:
            first.kill()
            pytest.fail(f"the moment {moment!r} never came: {first.communicate()[0]}")
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()
    succeeded_before = {row[1] for row in read_trace(trace) if row[0] == "end"}

    second = cruijff(path, env)
    output, _ = second.communicate(timeout=90)
    assert second.returncode == 0, output

    rows = read_trace(trace)
    starts = Counter(row[1] for row in rows if row[0] == "start")
    units = {f"{run}.train" for run in ("rank2", "rank4", "rank8")}
    units |= {f"{run}.eval.caps.e1" for run in ("rank2", "rank4", "rank8")} | {"base.eval.caps"}
    assert set(starts) == units  # everything ran
    assert all(count == 1 for count in starts.values()), starts  # and only once
    assert not succeeded_before - {row[1] for row in rows if row[0] == "end"}
    # every job's start and end bracket each other: no unit ever had two runs overlapping
    open_runs: Counter = Counter()
    for kind, unit, *_ in rows:
        open_runs[unit] += 1 if kind == "start" else -1
        assert open_runs[unit] in (0, 1)
    status = subprocess.run(
        [sys.executable, "-m", "cruijff", "status", str(path), "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout.count('"SUCCEEDED"') == len(units)
