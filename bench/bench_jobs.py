"""Benchmark: where a job's time goes before it does its work, with the real plugins.

1. Training start-up: the seconds from starting a training job to its first optimizer step,
   as cruijff starts it (the job's own command, ``python -m cruijff_torchtune.launch``) and as
   a bare ``tune run`` of the same recipe and config, alternately, each stopped at its first
   step. Goal: cruijff adds at most 0.5 s.
2. Evaluation share: three tasks of the demo's model, each cell in a process of its own (the
   baseline) against each in its own job served by one warm process (how the local scheduler
   runs cells of different models) and against the cells of one model in one process: the
   jobs' seconds and the share of them spent evaluating (inspect's own durations). And for each
   evaluation cell of a finished demo (``scripts/demo``), the evaluation's own duration against
   the job's wall time (the local scheduler's record). Goal: at least half.

Needs the demo's model (``scripts/demo`` fetches it). Run:
.venv/bin/python bench/bench_jobs.py [--repeat N] [--only startup,together,share]
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
from collections.abc import Mapping, Sequence
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


def scratch(document: dict) -> tuple[tempfile.TemporaryDirectory, Path]:
    """A folder with the demo's tasks, data and model and ``document`` as its experiment."""
    folder = tempfile.TemporaryDirectory()
    root = Path(folder.name)
    for name in ("tasks", "data", "models"):
        (root / name).symlink_to(DEMO / name)
    path = root / "experiment.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return folder, path


def timed(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> float:
    """Seconds ``argv`` ran in ``cwd``; it must succeed."""
    began = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env={**os.environ, **env}, capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout.decode()[-3000:]}")
    return time.perf_counter() - began


def together(repeat: int, tasks: int = 3) -> dict[str, float]:
    """The demo's base model on ``tasks`` tasks: the seconds its cells' jobs take and the
    share of them spent evaluating, each cell in a process of its own (the baseline), each in
    its own job served by a warm process (as the local scheduler runs the demo's cells, which
    evaluate different models: the first starts it) and as cruijff runs cells of one model
    (the first cell's job evaluating all, the others' finding them done); medians of
    ``repeat`` runs, alternately. A warm process left idle exits before the next round."""
    from cruijff.manager import PluginManager
    from cruijff.orchestrator import design
    from cruijff.warm import ENV, IDLE

    document = yaml.safe_load((DEMO / "experiment.yaml").read_text())
    document.update(runs=[{"name": "base", "type": "control", "model": "SmolLM2-135M-Instruct"}])
    del document["variables"], document["tools"]["preparation"]
    keep = ("prompt", "dataset_type")  # the evaluation's; the rest are training's
    document["controls"] = {k: v for k, v in document["controls"].items() if k in keep}
    task = document["evaluation"]["tasks"][0]
    document["evaluation"]["tasks"] = [
        {**task, "name": f"cap{n}", "function": "capitalization"} for n in range(tasks)
    ]
    folder, path = scratch(document)
    with folder:
        subprocess.run([sys.executable, "-m", "cruijff", "scaffold", str(path)], check=True)
        plan = design(PluginManager(), path)
        jobs = [plan.generated[unit.id].job for unit in plan.units]
        ways = ("alone", "warm", "together")
        figures: dict[str, list[float]] = {name: [] for name in ways}
        figures.update({f"share_{way}": [] for way in ways}, one=[], one_warm=[])
        warm_env = {ENV: str(Path(folder.name) / "queue"), IDLE: "3"}
        for _ in range(repeat):
            for way in ways:
                for job in jobs:
                    for name in ("logs", "results.json", ".cruijff-identity"):
                        target = job.workdir / name
                        shutil.rmtree(target) if target.is_dir() else target.unlink(True)
                walls = []
                for job in jobs:
                    argv = list(job.argv) if way == "together" else list(job.argv[:4])
                    env = {**job.env, **(warm_env if way == "warm" else {ENV: ""})}
                    walls.append(timed(argv, job.workdir, env))
                figures[way].append(sum(walls))
                spent = sum(
                    json.loads((job.workdir / "results.json").read_text())["duration_s"]
                    for job in jobs
                )
                figures[f"share_{way}"].append(spent / sum(walls))
                if way == "alone":
                    figures["one"].append(statistics.median(walls))
                if way == "warm":
                    figures["one_warm"].append(statistics.median(walls[1:]))
                    time.sleep(4)  # its warm process exits: each round starts one
    return {name: statistics.median(values) for name, values in figures.items()}


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
    parser.add_argument("--only", default="startup,together,share")
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
    if "together" in wanted:
        figures = together(args.repeat)
        print(f"{'3 tasks of one model (the demo model)':44} {'median':>8} {'evaluating':>11}")
        rows = (
            ("each cell in its own process (baseline)", "alone"),
            ("each in its own job, one warm process", "warm"),
            ("cells of one model in one process", "together"),
        )
        for what, way in rows:
            mark = "ok" if figures[f"share_{way}"] >= 0.5 else "under"
            shown = f"{figures[f'share_{way}']:.0%}"
            print(f"  {what:42} {figures[way]:7.1f}s {shown:>11}  {mark if way != 'alone' else ''}")
        print(f"{'  one cell alone':44} {figures['one']:7.1f}s")
        print(f"{'  one cell served warm (not the first)':44} {figures['one_warm']:7.1f}s")
        print("  (evaluating: inspect's own durations, of the jobs' seconds; goal >= 50%)")
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
