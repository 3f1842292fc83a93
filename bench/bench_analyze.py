"""Benchmark: `cruijff analyze` on a synthetic experiment of 1,000 evaluation cells × 100
samples, with the real torchtune and inspect plugins: wall time and peak memory of reading,
statistics and tables (cold: no cache), the share spent reading the `.eval` logs, and the
plots and the rest of the report separately. Goal: under 10 s for reading, statistics and
tables.

The logs are real inspect logs (ten evaluations of a 100-sample task on inspect's offline
`cruijff-mock` model, which echoes each input: each template with its own right and wrong
samples, all of one data file, rewritten between them, so that every cell is on the same data
and is compared with the control), copied into every cell; the job records say every job
succeeded, as a finished `cruijff run` leaves them.

Memory is measured in a fresh subprocess that only designs the plan and analyses it (making
the templates runs inspect's evaluations, whose memory is no part of the analysis): its RSS
before the analysis, and its peak RSS (`ru_maxrss`) after the reading, statistics and tables,
and again after the plots and the report.

Run: .venv/bin/python bench/bench_analyze.py [--cells 1000] [--samples 100]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from models import SMOLLM2_135M  # bench/models.py, beside this script

TASK = """
from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.scorer import includes

@task
def bench(data_path: str, split: str = "test") -> Task:
    import json
    rows = json.load(open(data_path))[split]
    return Task(dataset=MemoryDataset([Sample(id=str(i), input=r["input"], target=r["output"])
                                        for i, r in enumerate(rows)]), scorer=includes())
"""


def templates(root: Path, samples: int, count: int = 10) -> list[Path]:
    """``count`` real .eval logs of ``samples`` samples, each right on its own samples."""
    from inspect_ai import eval as inspect_eval

    from cruijff_inspect import mock  # noqa: F401 -- registers the offline provider

    root.mkdir(parents=True)
    sys.path.insert(0, str(root))
    (root / "bench_task.py").write_text(TASK)
    from bench_task import bench  # type: ignore[import-not-found]

    logs = []
    data = root / "data.json"  # one file, as an experiment's cells share theirs
    for index in range(count):
        rng = random.Random(index)
        rows = [
            {"input": f"w{i}", "output": f"w{i}" if rng.random() < 0.3 + index / 20 else "x"}
            for i in range(samples)
        ]
        data.write_text(json.dumps({"test": rows}))
        (log,) = inspect_eval(
            bench(str(data)),
            model="cruijff-mock/any",
            log_dir=str(root / f"logs{index}"),
            display="none",
        )
        logs.append(Path(log.location.removeprefix("file://")))
    return logs


def experiment(root: Path, cells: int) -> Path:
    (root / "model").mkdir(parents=True)
    (root / "model" / "config.json").write_text(json.dumps(SMOLLM2_135M))
    (root / "model" / "model.safetensors").write_bytes(b"")
    rows = [{"input": f"w{i}", "output": f"W{i}"} for i in range(64)]
    (root / "data.json").write_text(json.dumps({"train": rows, "test": rows}))
    (root / "task.py").write_text(TASK)
    document = {
        "experiment": {"name": f"bench{cells}", "dir": "runs", "question": "Does rank matter?"},
        "tools": {"preparation": "torchtune", "evaluation": "inspect"},
        "variables": {"lora_rank": list(range(1, cells))},  # and the base model's cell
        "controls": {"epochs": 1, "dataset_type": "chat_completion", "num_warmup_steps": 0},
        "models": {"base": [{"name": "tiny", "path": "model"}]},
        "data": {"training": {"path": "data.json"}},
        "evaluation": {"tasks": [{"name": "bench", "script": "task.py"}]},
    }
    path = root / "experiment.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def finish(plan, logs: list[Path]) -> int:  # type: ignore[no-untyped-def]
    """Every job succeeded; every evaluation cell has one of the template logs."""
    from cruijff.records import JobState
    from cruijff.state import ExperimentState, JobRecord

    state = ExperimentState(plan.experiment.state_dir)
    count = 0
    for index, job in enumerate(plan.jobs):
        state.save(JobRecord(unit_id=job.unit_id, job=job, state=JobState.SUCCEEDED))
        unit = next(u for u in plan.units if u.id == job.unit_id)
        if unit.tool == "inspect":
            folder = unit.directory / "logs"
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(logs[index % len(logs)], folder / "cell.eval")
            count += 1
    return count


def _rss_mb() -> float:
    """The resident memory now (Linux), in MB."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(path: Path, out: Path) -> dict[str, float | int]:
    """Design the experiment at ``path`` and analyse it, timing each part (the subprocess)."""
    from cruijff.analysis import compare, plots, report, tables
    from cruijff.analysis.collect import collect
    from cruijff.design import design
    from cruijff.manager import PluginManager

    manager = PluginManager()
    plan = design(manager, path)
    found: dict[str, float | int] = {"rss_before": _rss_mb(), "peak_before": _peak_mb()}
    started = time.perf_counter()
    collected = collect(manager, plan)
    found["read"] = time.perf_counter() - started
    analysis = compare.analysis(
        plan.experiment.name, collected.scores, plan.experiment.runs, labels=collected.labels
    )
    tables.summary(analysis, plan.experiment)  # every table the terminal and report show
    found["total"] = time.perf_counter() - started
    found["peak_analysis"] = _peak_mb()
    found["cells"], found["comparisons"] = len(analysis.cells), len(analysis.comparisons)
    started = time.perf_counter()
    charts = plots.render(analysis, plan.experiment)
    found["plots"] = time.perf_counter() - started
    found["charts"] = len(charts[0])
    drawn = report.plots.render
    report.plots.render = lambda *args: charts  # the report without drawing them again
    try:
        started = time.perf_counter()
        report.write(analysis, plan.experiment, out, environment=collected.environment)
        found["report"] = time.perf_counter() - started
    finally:
        report.plots.render = drawn
    found["peak_report"] = _peak_mb()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the subprocess
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.out)))
        return
    from cruijff.design import design
    from cruijff.manager import PluginManager

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        logs = templates(root / "templates", args.samples)
        path = experiment(root / "exp", args.cells)
        plan = design(PluginManager(), path)
        cells = finish(plan, logs)
        print(f"{cells} cells × {args.samples} samples, {len(plan.jobs)} jobs")
        done = subprocess.run(
            [sys.executable, __file__, "--measure", str(path), "--out", str(root / "analysis")],
            check=True,
            capture_output=True,
            text=True,
        )
        found = json.loads(done.stdout.strip().splitlines()[-1])
    total, read = found["total"], found["read"]
    print(
        f"reading, statistics and tables: {total:.2f} s (reading the logs {read:.2f} s, "
        f"{read / total:.0%}); {found['cells']} cells, {found['comparisons']} comparisons"
    )
    print(
        f"memory (a fresh process that only analyses): {found['rss_before']:.0f} MB before the "
        f"analysis (imports and the plan; peak so far {found['peak_before']:.0f} MB), peak "
        f"{found['peak_analysis']:.0f} MB after reading, statistics and tables"
    )
    print(
        f"plots: {found['plots']:.2f} s ({found['charts']} charts); the rest of the report "
        f"(tables, HTML, Markdown, CSVs, files): {found['report']:.2f} s; peak "
        f"{found['peak_report']:.0f} MB after them"
    )


if __name__ == "__main__":
    main()
