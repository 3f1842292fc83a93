"""Benchmark: the SLURM scheduler's submissions and polls.

- 200 runs each with an evaluation (400 jobs): ``sbatch`` calls and wall time to submit them
  grouped into job arrays, against one job per ``sbatch`` call (``arrays: false``).
- A status poll of 1,000 jobs: how many SLURM commands it costs (and how long), while they wait
  and once they have ended.

Against the local cluster when ``SLURM_CONF`` points at one that answers (start it with
``../shared/slurm/start-local-slurm --cpus 8`` and ``. /tmp/local-slurm/env``): jobs are
submitted held (``--hold``), so nothing runs, and cancelled afterwards. Otherwise against the
in-memory FakeSlurm, which counts the same calls but times only cruijff's side.

Run: .venv/bin/python bench/bench_slurm.py
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from cruijff.records import JobSpec, JobState, Resources
from cruijff_slurm.commands import SlurmCommands
from cruijff_slurm.profile import Profile
from cruijff_slurm.scheduler import SlurmScheduler
from cruijff_slurm.testing import FakeSlurm


def cluster_answers() -> bool:
    if shutil.which("sinfo") is None:
        return False
    return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30).returncode == 0


def experiment_jobs(folder: Path, runs: int) -> list[JobSpec]:
    """``runs`` trainings and an evaluation of each, in dependency order."""
    jobs = []
    for kind in ("train", "eval"):
        for n in range(runs):
            unit = f"run{n}.{kind}"
            jobs.append(
                JobSpec(
                    unit_id=unit,
                    name=f"bench.{unit}",
                    argv=("true",),
                    workdir=folder / f"run{n}",
                    log=folder / f"run{n}" / f"{kind}.log",
                    resources=Resources(time_s=600, mem_mb=100),
                    depends_on=(f"run{n}.train",) if kind == "eval" else (),
                )
            )
    return jobs


def scheduler(folder: Path, real: bool, *, arrays: bool) -> SlurmScheduler:
    commands = SlurmCommands() if real else FakeSlurm()
    profile = Profile(arrays=arrays, directives=("--hold",), poll_interval=0)
    return SlurmScheduler({}, folder / ".cruijff", commands=commands, profile=profile)


def submit(folder: Path, real: bool, runs: int, *, arrays: bool):
    sched = scheduler(folder, real, arrays=arrays)
    jobs = experiment_jobs(folder, runs)
    began = time.perf_counter()
    handles = sched.submit(jobs, {})
    took = time.perf_counter() - began
    calls = len([call for call in sched.commands.calls if call[0] == "sbatch"])
    return sched, handles, calls, took


def main() -> None:
    real = cluster_answers()
    where = "the SLURM cluster of SLURM_CONF" if real else "FakeSlurm (no cluster answers)"
    print(f"against: {where}")
    with tempfile.TemporaryDirectory(prefix="bench-slurm-") as tmp:
        root = Path(tmp)
        results = {}
        for arrays in (True, False):
            folder = root / ("arrays" if arrays else "singles")
            sched, handles, calls, took = submit(folder, real, 200, arrays=arrays)
            results[arrays] = (calls, took)
            sched.cancel(handles)
        (a_calls, a_time), (s_calls, s_time) = results[True], results[False]
        print("submit 200 runs + 200 evaluations (400 jobs):")
        print(f"  job arrays            {a_calls:4d} sbatch calls  {a_time:6.2f} s")
        print(f"  one job per sbatch    {s_calls:4d} sbatch calls  {s_time:6.2f} s")
        print(f"  -> {s_calls / a_calls:.0f}x fewer calls, {s_time / a_time:.1f}x faster")

        folder = root / "poll"
        sched, handles, _, _ = submit(folder, real, 500, arrays=True)
        for label in ("waiting", "ended"):
            if label == "ended":
                sched.cancel(handles)
                if not real:
                    for handle in handles:
                        sched.commands.set(handle.id, "CANCELLED by 0", in_queue=False)
            before = len(sched.commands.calls)
            began = time.perf_counter()
            statuses = sched.poll(handles)
            took = time.perf_counter() - began
            commands = [call[0] for call in sched.commands.calls[before:]]
            states = sorted({s.state.value for s in statuses.values()})
            print(
                f"poll of {len(handles)} jobs ({label}): {len(commands)} commands "
                f"({', '.join(commands)}) in {took:.2f} s -> {', '.join(states)}"
            )
            assert len(commands) <= 2 and len(statuses) == len(handles)
        assert all(s.state is JobState.CANCELLED for s in statuses.values())


if __name__ == "__main__":
    main()
