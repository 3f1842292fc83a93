"""Benchmark: where a job's time goes before it does its work, with the real plugins.

1. Training start-up: the seconds from starting a training job to its first optimizer step,
   as cruijff starts it (the job's own command, ``python -m cruijff_torchtune.launch``) and as
   a bare ``tune run`` of the same recipe and config, alternately, each stopped at its first
   step. Goal: cruijff adds at most 0.5 s.
2. Evaluation share: for each evaluation cell of a finished demo (``scripts/demo``), the
   evaluation's own duration (inspect's log) against the job's wall time (the local
   scheduler's record). Goal: at least half.

Needs the demo's model (``scripts/demo`` fetches it). Run:
.venv/bin/python bench/bench_jobs.py [--repeat N] [--only startup,share]
Figures are medians of --repeat runs (default 5).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "capitalization"
FIRST_STEP = re.compile(rb"\|1\|Loss")  # torchtune's progress bar after its first step


def until_first_step(argv: list[str], cwd: Path, scaffolded: set[Path]) -> float:
    """Seconds from starting ``argv`` in the run folder ``cwd`` to its first training step,
    from a folder holding only what scaffold wrote; the run is then stopped."""
    for path in cwd.iterdir():
        if path not in scaffolded:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    began = time.perf_counter()
    child = subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    seen = b""
    assert child.stdout is not None
    try:
        while chunk := os.read(child.stdout.fileno(), 65536):
            seen = (seen + chunk)[-4096:]
            if FIRST_STEP.search(seen):
                return time.perf_counter() - began
        raise SystemExit(f"{' '.join(argv)} ended before a step:\n{seen.decode()[-3000:]}")
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def startup(repeat: int) -> dict[str, float]:
    """Median seconds to the first step: cruijff's training job and a bare ``tune run``."""
    from cruijff.manager import PluginManager
    from cruijff.orchestrator import design

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name in ("tasks", "data", "models"):
            (root / name).symlink_to(DEMO / name)
        document = yaml.safe_load((DEMO / "experiment.yaml").read_text())
        document["variables"] = {"lora_rank": [8]}
        del document["evaluation"], document["tools"]["evaluation"]
        path = root / "experiment.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        subprocess.run([sys.executable, "-m", "cruijff", "scaffold", str(path)], check=True)
        plan = design(PluginManager(), path)
        unit = next(u for u in plan.units if u.kind == "train")
        job = plan.generated[unit.id].job
        config = Path(job.argv[job.argv.index("--recipe") - 1])
        recipe = job.argv[job.argv.index("--recipe") + 1]
        scaffolded = set(job.workdir.iterdir())
        bare = [sys.executable, "-m", "torchtune._cli.tune", "run", recipe, "--config"]
        bare.append(str(config))
        times: dict[str, list[float]] = {"cruijff": [], "bare": []}
        for _ in range(repeat):
            times["cruijff"].append(until_first_step(list(job.argv), job.workdir, scaffolded))
            times["bare"].append(until_first_step(bare, job.workdir, scaffolded))
    return {name: statistics.median(values) for name, values in times.items()}


def share() -> list[tuple[str, float, float]]:
    """(cell, evaluation seconds, job wall seconds) of every cell of the finished demo."""
    found = []
    for results in sorted((DEMO / "runs").glob("**/results.json")):
        data = json.loads(results.read_text())
        unit = data.get("unit")
        jobs = DEMO / "runs" / ".cruijff" / "local" / "jobs"
        attempts = sorted(jobs.glob(f"{unit}.*/status.json"), key=lambda p: p.stat().st_mtime)
        walls = [json.loads(path.read_text()).get("wall_s") for path in attempts]
        walls = [w for w in walls if w]
        if walls and data.get("duration_s"):
            found.append((unit, float(data["duration_s"]), float(walls[-1])))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="startup,share")
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    if not (DEMO / "models").exists():
        raise SystemExit("run scripts/demo first: it fetches the model these jobs load")
    if "startup" in wanted:
        figures = startup(args.repeat)
        added = figures["cruijff"] - figures["bare"]
        print(f"{'training job to its first step':44} {'median':>8}")
        print(f"{'  bare tune run (baseline)':44} {figures['bare']:7.2f}s")
        print(f"{'  cruijff training job':44} {figures['cruijff']:7.2f}s")
        mark = "ok" if added <= 0.5 else "over"
        print(f"{'  added by cruijff (goal <= 0.50 s)':44} {added:7.2f}s  {mark}")
    if "share" in wanted:
        cells = share()
        if not cells:
            print("no finished demo cells: run scripts/demo first")
        for unit, evaluation, wall in cells:
            mark = "ok" if evaluation >= wall / 2 else "under"
            print(
                f"{unit:44} evaluation {evaluation:6.1f}s of {wall:6.1f}s "
                f"({evaluation / wall:4.0%}, goal >= 50%)  {mark}"
            )


if __name__ == "__main__":
    main()
