"""Benchmark: the everyday commands at scale with the real plugins (torchtune training, one
inspect-ai evaluation task, the local scheduler), each figure printed beside its goal.

A sweep of lora_rank (10) × lr (10) × seed (N/100) on a SmolLM2-135M-shaped model folder
(config.json and an empty weights file: nothing here loads a model). Measured, in fresh
processes, as a user types them: `cruijff plan`, `cruijff status` (records of every job, as a
finished local run leaves them; timed after a first status, which reads them all), `cruijff
scaffold` and a second scaffold that changes nothing, `cruijff --help`, `cruijff validate` of a
10-run file; and the peak resident memory of the plan of 10,000 runs. Beside them, baselines
from the same run: Python starting and importing cruijff's CLI, and a 1,000-run scaffold's
files written as bare as can be (the disk's share of a scaffold).

Run: .venv/bin/python bench/bench_scale.py [--repeat N] [--only plan1000,...]
Figures are medians of --repeat runs (default 5; 1 for the 10,000-run scaffold).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from models import SMOLLM2_135M  # bench/models.py, beside this script

from cruijff.briefs import MARGIN_NS

TASK = Path(__file__).resolve().parents[1] / "tests" / "inspect_tasks" / "capitalization.py"
SMOL = {**SMOLLM2_135M, "torch_dtype": "bfloat16"}
CRUIJFF = [sys.executable, "-m", "cruijff"]


def experiment(root: Path, runs: int) -> Path:
    (root / "model").mkdir(parents=True)
    (root / "model" / "config.json").write_text(json.dumps(SMOL))
    (root / "model" / "model.safetensors").write_bytes(b"")
    rows = [{"input": f"word{i}", "output": f"WORD{i}"} for i in range(64)]
    (root / "data.json").write_text(json.dumps({"train": rows, "test": rows[:20]}))
    seeds = max(1, runs // 100)
    document = {
        "experiment": {"name": f"scale{runs}", "dir": "runs"},
        "tools": {"preparation": "torchtune", "evaluation": "inspect"},
        "variables": {
            "lora_rank": list(range(1, 11)) if runs >= 100 else list(range(1, runs + 1)),
            "lr": [i * 1e-5 for i in range(1, 11)] if runs >= 100 else [1e-4],
            **({"seed": list(range(seeds))} if runs >= 100 else {}),
        },
        "controls": {
            "epochs": 1,
            "batch_size": 4,
            "num_warmup_steps": 0,
            "dataset_type": "chat_completion",
        },
        "models": {"base": [{"name": "smol", "path": "model"}]},
        "data": {"training": {"path": "data.json"}},
        "evaluation": {
            "max_tokens": 8,
            "tasks": [{"name": "capitalization", "script": str(TASK), "dataset": "same"}],
        },
    }
    path = root / "experiment.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def timed(argv: list[str], repeat: int, env: dict[str, str]) -> tuple[float, float]:
    """Median wall seconds of ``repeat`` runs, and the largest peak RSS (MB) of one."""
    times, peak = [], 0.0
    for _ in range(repeat):
        with tempfile.TemporaryFile() as out:
            began = time.perf_counter()
            child = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(child.pid, 0)
            times.append(time.perf_counter() - began)
            if os.waitstatus_to_exitcode(status):
                out.seek(0)
                raise SystemExit(f"{' '.join(argv)} failed:\n{out.read().decode()[-3000:]}")
        peak = max(peak, usage.ru_maxrss / 1024)
    return statistics.median(times), peak


def finished(path: Path, env: dict[str, str]) -> None:
    """Records for every job of the experiment as a finished run leaves them (succeeded,
    validated), and the job index its scaffold left: what `cruijff status` reads every few
    minutes."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from cruijff import jobindex\n"
        "from cruijff.manager import PluginManager\n"
        "from cruijff.orchestrator import design\n"
        "from cruijff.records import JobHandle, JobState\n"
        "from cruijff.state import ExperimentState, JobRecord\n"
        "plan = design(PluginManager(), Path(sys.argv[1]))\n"
        "state = ExperimentState(plan.experiment.state_dir)\n"
        "for job in plan.jobs:\n"
        "    state.save(JobRecord(unit_id=job.unit_id, job=job, attempt=1,\n"
        "        state=JobState.SUCCEEDED, exit_code=0,\n"
        "        handle=JobHandle(scheduler='local', id=f'{job.unit_id}.1', name=job.name)))\n"
        "jobindex.write(plan)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], env=env, check=True)


BARE_WRITES = (
    "import json, os, sys\n"
    "root, files = sys.argv[1], json.load(open(sys.argv[2]))\n"
    "for name, size in files:\n"
    "    path = os.path.join(root, name)\n"
    "    os.makedirs(os.path.dirname(path), exist_ok=True)\n"
    "    tmp = path + '.tmp'\n"
    "    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)\n"
    "    os.write(fd, b'x' * size)\n"
    "    os.close(fd)\n"
    "    os.replace(tmp, path)\n"
)
"""The disk's part of a scaffold: the same files, of the same sizes, written as bare as can be
(a temporary file and a rename each, as cruijff writes them)."""


def scaffolded(path: Path) -> list[tuple[str, int]]:
    """The files a scaffold of ``path`` wrote (outside its .cruijff folder), with their sizes."""
    runs = path.parent / "runs"
    return [
        (str(file.relative_to(runs)), file.stat().st_size)
        for file in sorted(runs.rglob("*"))
        if file.is_file() and ".cruijff" not in file.parts
    ]


BASELINES = {
    "startup": "baseline: python starting, importing cruijff's CLI",
    "writes1000": "baseline: writing a 1,000-run scaffold's files, bare",
}

GOALS = {
    "plan1000": ("cruijff plan, 1,000 runs", 0.5),
    "plan10000": ("cruijff plan, 10,000 runs", 3.0),
    "status_first": ("cruijff status, 20,001 jobs, the first (no goal)", float("inf")),
    "status10000": ("cruijff status, 10,000 runs (20,001 jobs)", 1.0),
    "scaffold1000": ("cruijff scaffold, 1,000 runs", 2.0),
    "rescaffold1000": ("cruijff scaffold again, 1,000 runs, nothing changed", 1.0),
    "scaffold10000": ("cruijff scaffold, 10,000 runs", 15.0),
    "rescaffold10000": ("cruijff scaffold again, 10,000 runs, nothing changed", 10.0),
    "help": ("cruijff --help", 0.3),
    "validate10": ("cruijff validate, 10 runs", 1.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated names: " + ", ".join(GOALS))
    args = parser.parse_args()
    wanted = set(filter(None, args.only.split(","))) or set(GOALS)
    env = {**os.environ, "CRUIJFF_PLUGINS": "", "NO_COLOR": "1", "COLUMNS": "120"}
    figures: dict[str, tuple[float, float]] = {}
    baselines: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        env["CRUIJFF_DATA_DIR"] = str(Path(folder) / "data")
        startup = [sys.executable, "-c", "import cruijff.cli"]
        baselines["startup"] = timed(startup, args.repeat, env)[0]
        for runs in (10, 1_000, 10_000):
            names = {f"plan{runs}", f"scaffold{runs}", f"rescaffold{runs}", f"status{runs}"}
            if runs == 10:
                names = {"validate10"}
            if not names & wanted:
                continue
            path = experiment(Path(folder) / str(runs), runs)
            repeat = args.repeat if runs < 10_000 else max(1, args.repeat // 2)
            if f"plan{runs}" in wanted:
                figures[f"plan{runs}"] = timed([*CRUIJFF, "plan", str(path)], repeat, env)
            if "validate10" in wanted and runs == 10:
                figures["validate10"] = timed([*CRUIJFF, "validate", str(path)], repeat, env)
            if f"scaffold{runs}" in wanted or f"rescaffold{runs}" in wanted:
                walls, peak = [], 0.0
                # each into a new folder: one just emptied is slow to fill while the disk
                # catches up with the deletion
                for copy in range(1 if runs == 10_000 else repeat):
                    path = experiment(Path(folder) / f"{runs}-{copy}", runs)
                    wall, high = timed([*CRUIJFF, "scaffold", str(path)], 1, env)
                    walls.append(wall)
                    peak = max(peak, high)
                figures[f"scaffold{runs}"] = (statistics.median(walls), peak)
                figures[f"rescaffold{runs}"] = timed([*CRUIJFF, "scaffold", str(path)], repeat, env)
                if runs == 1_000:
                    listing = Path(folder) / "files.json"
                    listing.write_text(json.dumps(scaffolded(path)))
                    walls = [
                        timed(
                            [sys.executable, "-c", BARE_WRITES, str(target), str(listing)], 1, env
                        )[0]
                        for target in (Path(folder) / f"bare-{n}" for n in range(repeat))
                    ]
                    baselines["writes1000"] = statistics.median(walls)
            if f"status{runs}" in wanted:
                finished(path, env)
                # status trusts its cache only for records older than a margin: as a user's
                # status finds them, written a while before
                time.sleep(MARGIN_NS / 1e9 + 0.1)
                # the first status reads every record and keeps what it read (.cruijff/
                # briefs.json); the ones a user runs every few minutes read only what changed
                first = timed([*CRUIJFF, "status", str(path)], 1, env)
                figures["status_first"] = first
                figures[f"status{runs}"] = timed([*CRUIJFF, "status", str(path)], repeat, env)
        if "help" in wanted:
            figures["help"] = timed([*CRUIJFF, "--help"], args.repeat, env)
    print(f"{'what':58} {'median':>8} {'goal':>7} {'peak RSS':>9}")
    for name, what in BASELINES.items():
        if name in baselines:
            print(f"{what:58} {baselines[name]:7.2f}s")
    for name, (what, goal) in GOALS.items():
        if name in figures:
            wall, peak = figures[name]
            mark = "" if goal == float("inf") else "ok" if wall <= goal else "over"
            shown = "-" if goal == float("inf") else f"{goal:.1f}s"
            print(f"{what:58} {wall:7.2f}s {shown:>7} {peak:7.0f}MB  {mark}")


if __name__ == "__main__":
    main()
