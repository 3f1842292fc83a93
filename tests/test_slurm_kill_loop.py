"""Kill anywhere on a real SLURM cluster (:mod:`slurmcluster`), with exact counts.

Each trial runs the fake tools' five jobs with ``cruijff run`` and, at a random moment, either
SIGKILLs it (while it submits, or while it watches) or restarts slurmctld under it (by its pid
file, then ``slurmctld -f`` with the cluster's config), then runs ``cruijff run`` again until it
succeeds. Asserted, as :mod:`killloop` does for the local scheduler: each job started exactly
once (the trace) and SLURM ran it once (sacct, where the cluster keeps accounts); every job id
recorded before the rerun is the one the rerun watched (Cromwell's: picked up, not
resubmitted); the rerun's counts add up and it submitted exactly what it said (Nextflow's).
The same without accounting (``--no-accounting``: squeue and scontrol only), where a squeue
outage during recovery submits nothing; and kills during ``cruijff cancel``.
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

import pytest
import yaml
from killloop import RESUMED, events, spawn, trace
from slurmcluster import BARE_DIR, CLUSTER_DIR, accounted, cancel_leftovers, our_jobs

from cruijff.testing import DEFAULT_EXPERIMENT, merge

pytestmark = [pytest.mark.slurm]

UNITS = {"rank1.train", "rank2.train", "rank1.eval.caps.e0", "rank2.eval.caps.e0"}
UNITS |= {"base.eval.caps"}
MOMENTS = ("submitting", "watching", "restart-slurmctld")
SHORT, LONG = 3, 20


def experiment(folder: Path, profile: dict) -> Path:
    (folder / "models" / "tiny").mkdir(parents=True)
    (folder / "data").mkdir()
    rows = [{"input": "a", "output": "A"}]
    (folder / "data" / "words.json").write_text(json.dumps({"train": rows, "test": rows}))
    (folder / "cluster.yaml").write_text(yaml.safe_dump({"poll_interval": 0, **profile}))
    changes = {
        "variables": {"lora_rank": [1, 2]},
        "controls": {"epochs": 1, "sleep": 0.5},
        "scheduler": {"name": "slurm", "profile": "cluster.yaml"},
    }
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(merge(DEFAULT_EXPERIMENT, changes)))
    return path


def environment(folder: Path, conf: str, path_first: Path | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "SLURM_CONF": conf,
        "CRUIJFF_PLUGINS": "cruijff.testing.fake",
        "CRUIJFF_FAKE_TRACE": str(folder / "trace.txt"),
    }
    if path_first is not None:
        env["PATH"] = f"{path_first}{os.pathsep}{env['PATH']}"
    return env


def cruijff(*argv: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cruijff", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def restart_slurmctld(cluster: Path) -> None:
    """Stop slurmctld alone (SIGTERM: it saves its state) and start it again."""
    pid = int((cluster / "run" / "slurmctld.pid").read_text().strip())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.05)
    subprocess.run(["slurmctld", "-f", str(cluster / "slurm.conf")], check=True, timeout=60)
    while time.monotonic() < deadline:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
        if "UP" in ping.stdout:
            return
        time.sleep(0.2)
    raise AssertionError("slurmctld did not come back")


def records(folder: Path) -> dict[str, dict]:
    jobs = folder / ".cruijff" / "jobs"
    return {f.stem: json.loads(f.read_text()) for f in jobs.glob("*.json")} if jobs.is_dir() else {}


def submitted_ids(folder: Path) -> set[str]:
    """The SLURM job ids cruijff recorded (one per job; an array's tasks share its id)."""
    return {r["handle"]["id"] for r in records(folder).values() if r.get("handle")}


def trial(folder: Path, seed: int, conf: str, cluster: Path, moment: str) -> dict:
    """One trial (module docstring); what it did, for the figures: whether the kill landed
    on a live driver, the job ids recorded before the rerun, the rerun's counts."""
    rng = random.Random(seed)
    arrays = bool(seed % 2)
    path = experiment(folder, {"arrays": arrays})
    env = environment(folder, conf)
    driver = spawn("run", str(path), env=env)
    log = folder / ".cruijff" / "events.jsonl"
    deadline = time.monotonic() + 90
    waited = rng.uniform(0.0, 1.0)
    while driver.poll() is None and time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ""
        if moment == "submitting" and '"submitting"' in text:
            time.sleep(waited * 0.3)  # somewhere in the batch
            break
        if moment in ("watching", "restart-slurmctld") and '"submitted"' in text:
            time.sleep(waited * 2)
            break
        time.sleep(0.01)
    if moment == "restart-slurmctld":
        restart_slurmctld(cluster)
    killed = moment == "restart-slurmctld" or driver.poll() is None
    if moment != "restart-slurmctld" and killed:
        os.killpg(driver.pid, signal.SIGKILL)
    driver.wait(timeout=180)
    before = {u: r["handle"]["id"] for u, r in records(folder).items() if r.get("handle")}

    for _ in range(3):
        last = cruijff("run", str(path), env=env)
        if last.returncode == 0:
            break
    assert last.returncode == 0, last.stdout + last.stderr
    assert "Traceback" not in last.stdout + last.stderr
    after = records(folder)
    assert {u for u, r in after.items() if r.get("state") == "SUCCEEDED"} == UNITS
    for unit, job_id in before.items():  # Cromwell's: the same ids, watched
        assert after[unit]["handle"]["id"] == job_id, (unit, before, after[unit]["handle"])
    starts = Counter(unit for kind, unit, _ in trace(folder) if kind == "start")
    assert starts == Counter(dict.fromkeys(UNITS, 1)), starts  # each job ran once
    log_events = events(folder)
    resumed = [i for i, e in enumerate(log_events) if e["event"] == "resumed"]
    last_resumed = log_events[resumed[-1]] if resumed else None
    if last_resumed is not None:  # the first run was cut short with records left
        total = sum(last_resumed[k] for k in ("skipped", "watched", "submitted"))
        assert total == len(UNITS)
        tail = log_events[resumed[-1] :]
        assert sum(e["event"] == "submitting" for e in tail) == last_resumed["submitted"]
        assert RESUMED in last.stdout
    if cluster == CLUSTER_DIR:  # SLURM's own count: no job ran twice
        rows = accounted(folder, len(submitted_ids(folder)))
        per_unit = Counter(row["unit"] for row in rows)
        assert per_unit == Counter(dict.fromkeys(UNITS, 1)), rows
    return {"killed": killed, "recorded": len(before), "resumed": last_resumed}


@pytest.mark.parametrize("seed", range(SHORT))
def test_a_kill_or_a_controller_restart_on_slurm_runs_each_job_once(slurm_cluster, tmp_path, seed):
    try:
        done = trial(tmp_path, seed, slurm_cluster, CLUSTER_DIR, MOMENTS[seed % len(MOMENTS)])
        assert done["killed"] and done["resumed"] is not None  # the kill landed mid-run
    finally:
        cancel_leftovers(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(SHORT, LONG))
def test_the_long_slurm_kill_loop(slurm_cluster, bare_cluster, tmp_path, seed):
    # every fourth trial on the cluster without accounting
    bare = seed % 4 == 0
    conf, cluster = (bare_cluster, BARE_DIR) if bare else (slurm_cluster, CLUSTER_DIR)
    moment = MOMENTS[seed % len(MOMENTS)]
    if bare and moment == "restart-slurmctld":
        moment = "submitting"
    try:
        trial(tmp_path, seed, conf, cluster, moment)
    finally:
        cancel_leftovers(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(("accounting", "after"), [(True, 0.0), (True, 0.4), (False, 0.2)])
def test_a_cancel_killed_midway_then_cancelled_again_leaves_nothing_cancelled_twice(
    slurm_cluster, request, tmp_path, accounting, after
):
    conf = slurm_cluster if accounting else request.getfixturevalue("bare_cluster")
    path = experiment(tmp_path, {"arrays": False})
    text = path.read_text().replace("sleep: 0.5", "sleep: 300")
    path.write_text(text)
    # scancel, noting each job id it is asked to cancel
    shim = tmp_path / "bin"
    shim.mkdir()
    noted = tmp_path / "scancelled.txt"
    real = subprocess.run(["which", "scancel"], capture_output=True, text=True).stdout.strip()
    (shim / "scancel").write_text(f'#!/bin/bash\necho "$@" >> {noted}\nexec {real} "$@"\n')
    (shim / "scancel").chmod(0o755)
    env = environment(tmp_path, conf, shim)
    try:
        detached = cruijff("run", str(path), "--detach", env=env)
        assert detached.returncode == 0, detached.stdout + detached.stderr
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            kind == "start" for kind, _, _ in trace(tmp_path)
        ):
            time.sleep(0.1)
        first = spawn("cancel", str(path), env=env)
        time.sleep(after)
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        again = cruijff("cancel", str(path), env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "Traceback" not in again.stdout + again.stderr
        deadline = time.monotonic() + 30
        while our_jobs(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert our_jobs(tmp_path) == []  # nothing left queued or running
        ids = [i for line in noted.read_text().splitlines() for i in line.split()]
        assert len(ids) == len(set(ids)), ids  # no job was cancelled twice
        states = {u: r.get("state") for u, r in records(tmp_path).items()}
        assert set(states) == UNITS, states
        assert states.pop("base.eval.caps") in ("SUCCEEDED", "CANCELLED")  # quick, no upstream
        assert set(states.values()) <= {"CANCELLED", "DEPENDENCY_NEVER_SATISFIED"}, states
        assert "CANCELLED" in states.values()
    finally:
        cancel_leftovers(tmp_path)


def test_two_runs_started_together_on_slurm_one_drives_and_the_other_says_busy(
    slurm_cluster, tmp_path
):
    path = experiment(tmp_path, {"arrays": True})
    env = environment(tmp_path, slurm_cluster)
    argv = [sys.executable, "-m", "cruijff", "run", str(path)]
    try:
        runs = [
            subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=180)[0].decode() for run in runs]
        assert sorted(run.returncode for run in runs) == [0, 1], outputs
        loser = next(out for run, out in zip(runs, outputs, strict=True) if run.returncode)
        assert "the experiment is busy" in loser and "Traceback" not in loser
        starts = Counter(unit for kind, unit, _ in trace(tmp_path) if kind == "start")
        assert starts == Counter(dict.fromkeys(UNITS, 1)), starts
        rows = accounted(tmp_path, len(submitted_ids(tmp_path)))
        assert Counter(row["unit"] for row in rows) == Counter(dict.fromkeys(UNITS, 1)), rows
    finally:
        cancel_leftovers(tmp_path)
