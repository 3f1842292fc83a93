"""A harness that kills cruijff at random moments and checks, from the jobs' own side effects
and the event log, that nothing ran twice, nothing was lost and nothing started early.

One trial: write an experiment of the fake tools (two trainings, their evaluations and the
control's: five jobs, two at a time), start ``cruijff run``, SIGKILL one process at a random
moment — the driver (``cruijff run``), the local executor, or a running job's wrapper (the
moment being the first instant one runs) — then run ``cruijff run`` again until it succeeds.
The fake jobs append ``start``/``end`` lines to a trace (:mod:`cruijff.testing.fake_job`).

What a trial asserts (Toil's, Nextflow's and Cromwell's checks, see :func:`check`):

- every job succeeded in the end, and its outputs stand;
- a job started at most as often as it was submitted (an attempt in the event log); killing
  only the driver or the executor restarts nothing: each job started exactly once;
- no dependent started before an end of each job it depends on;
- the resumed run's counts add up to every job, and it submitted exactly what it said;
- every job record and every complete line of the event log parses.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import attrs
import yaml

from cruijff.testing import DEFAULT_EXPERIMENT, merge

TARGETS = ("driver", "executor", "wrapper")
RUNS = [1, 2]
RESUMED = "(resumed: "


@attrs.frozen
class Outcome:
    """What one trial did: whom it killed, whether the kill landed (the target was alive),
    how many reruns it took, and every start of every unit."""

    seed: int
    target: str
    killed: bool
    reruns: int
    starts: Counter
    duplicates: int
    """Starts beyond the attempts recorded for a unit (none may happen)."""


def experiment(folder: Path) -> Path:
    (folder / "models" / "tiny").mkdir(parents=True)
    (folder / "data").mkdir()
    rows = [{"input": "a", "output": "A"}]
    (folder / "data" / "words.json").write_text(json.dumps({"train": rows, "test": rows}))
    changes = {
        "variables": {"lora_rank": RUNS},
        "controls": {"epochs": 1, "sleep": 0.2},
        "scheduler": {"jobs": 2},
    }
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(merge(DEFAULT_EXPERIMENT, changes)))
    return path


def environment(folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CRUIJFF_PLUGINS": "cruijff.testing.fake",
        "CRUIJFF_FAKE_TRACE": str(folder / "trace.txt"),
    }


def trace(folder: Path) -> list[tuple[str, str, float]]:
    path = folder / "trace.txt"
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return [(kind, unit, float(at)) for kind, unit, _pid, at in rows]


def events(folder: Path) -> list[dict]:
    """The event log's complete lines (a kill may tear the last one: it is left out)."""
    path = folder / ".cruijff" / "events.jsonl"
    if not path.exists():
        return []
    text = path.read_text()
    lines = text.split("\n")[:-1]  # what follows the last newline is torn or empty
    return [json.loads(line) for line in lines if line.strip()]


def running_wrapper(folder: Path) -> int | None:
    """The pid of a job wrapper that is running now, if any."""
    jobs = folder / ".cruijff" / "local" / "jobs"
    for status in sorted(jobs.glob("*/status.json")) if jobs.is_dir() else ():
        try:
            data = json.loads(status.read_text())
        except (OSError, ValueError):
            continue
        if data.get("state") == "running" and data.get("wrapper_pid"):
            return int(data["wrapper_pid"])
    return None


def executor(folder: Path) -> int | None:
    try:
        return int((folder / ".cruijff" / "local" / "executor.lock").read_text().strip())
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def spawn(*argv: str, env: dict[str, str]) -> subprocess.Popen:
    """``cruijff ARGV`` in the background, in a session of its own, its output dropped: a
    process to kill."""
    return subprocess.Popen(
        [sys.executable, "-m", "cruijff", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def run(path: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "cruijff", "run", str(path)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)


def trial(folder: Path, seed: int, target: str | None = None) -> Outcome:
    """Run one trial in ``folder`` (empty); the kill's moment (and target, unless given)
    come from ``seed``."""
    rng = random.Random(seed)
    target = target or rng.choice(TARGETS)
    path = experiment(folder)
    env = environment(folder)
    driver = spawn("run", str(path), env=env)
    # the driver: anywhere from designing to watching; the others once they exist
    moment = time.monotonic() + rng.uniform(0.0, 2.5 if target == "driver" else 1.5)
    victim = None
    while victim is None and driver.poll() is None:
        if time.monotonic() >= moment:
            if target == "driver":
                victim = driver.pid
            elif target == "executor":
                victim = executor(folder)
            else:
                victim = running_wrapper(folder)
        if victim is None:
            time.sleep(0.01)
    killed = victim is not None and alive(victim)
    if killed:
        os.kill(victim, signal.SIGKILL)
    driver.wait(timeout=120)
    jobs = folder / ".cruijff" / "jobs"
    earlier = len(list(jobs.glob("*.json"))) if jobs.is_dir() else 0

    reruns, last = 0, None
    while reruns < 4:
        reruns += 1
        last = run(path, env)
        if last.returncode == 0:
            break
    assert last is not None and last.returncode == 0, (target, last.stdout, last.stderr)
    return check(folder, seed, target, killed, reruns, last.stdout, earlier)


def check(
    folder: Path, seed: int, target: str, killed: bool, reruns: int, output: str, earlier: int
) -> Outcome:
    """The trial's assertions (module docstring), ``earlier`` being the job records the kill
    left; the outcome, for the figures."""
    rows = trace(folder)
    log = events(folder)
    starts = Counter(unit for kind, unit, _ in rows if kind == "start")
    ends: dict[str, list[float]] = {}
    for kind, unit, at in rows:
        if kind == "end":
            ends.setdefault(unit, []).append(at)
    units = {f"rank{r}.train" for r in RUNS} | {f"rank{r}.eval.caps.e0" for r in RUNS}
    units |= {"base.eval.caps"}
    assert set(starts) == units, starts  # every job ran
    attempts = Counter(e["unit"] for e in log if e["event"] == "submitting")
    duplicates = sum(max(0, starts[u] - attempts[u]) for u in units)
    assert duplicates == 0, (starts, attempts)  # no start without an attempt of its own
    if target != "wrapper":  # no job's own process died: none may have run twice
        assert set(starts.values()) == {1}, (target, starts)
    for kind, unit, at in rows:  # Toil's: no dependent before its upstream
        if kind == "start" and ".eval." in unit and not unit.startswith("base."):
            upstream = unit.split(".")[0] + ".train"
            assert any(end < at for end in ends.get(upstream, [])), (unit, rows)
    records = {}
    for file in (folder / ".cruijff" / "jobs").glob("*.json"):
        records[file.stem] = json.loads(file.read_text())  # none is corrupt
    assert {u for u, r in records.items() if r.get("state") == "SUCCEEDED"} == units
    resumed = [i for i, e in enumerate(log) if e["event"] == "resumed"]
    if not earlier and reruns == 1:  # killed before it submitted: the rerun was a first run
        assert not resumed and RESUMED not in output, output
        return Outcome(seed, target, killed, reruns, starts, duplicates)
    assert resumed, f"the last run found the first one's records: {output}"
    last = log[resumed[-1]]
    assert last["skipped"] + last["watched"] + last["submitted"] == len(units)
    submitted = sum(1 for e in log[resumed[-1] :] if e["event"] == "submitting")
    assert submitted == last["submitted"]  # Nextflow's: exactly what it said
    shown = f"{RESUMED}{last['skipped']} skipped, {last['watched']} watched, "
    assert shown in output, output
    return Outcome(seed, target, killed, reruns, starts, duplicates)
