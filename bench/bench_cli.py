"""Benchmark: `cruijff --help` wall time, and `cruijff plan` on generated experiments of
1,000 and 10,000 runs (fake tools: the figures are the core's, not a tool's).

Run: .venv/bin/python bench/bench_cli.py [--repeat N]
Prints one line per measurement: median and best wall time, and peak memory of the command.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def measure(argv: list[str], env: dict[str, str], repeat: int) -> tuple[float, float, float]:
    """Median and best wall seconds over ``repeat`` runs, and the peak RSS in MB."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - began)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return statistics.median(times), min(times), peak


def experiment(folder: Path, runs: int) -> Path:
    """An experiment whose grid has ``runs`` fine-tuned runs (plus one control)."""
    (folder / "models" / "tiny").mkdir(parents=True)
    (folder / "models" / "tiny" / "config.json").write_text("{}")
    (folder / "data").mkdir()
    (folder / "data" / "words.json").write_text(json.dumps({"train": []}))
    axes = {
        "lora_rank": list(range(1, 11)),
        "lr": [i * 1e-5 for i in range(1, 11)],
        "seed": list(range(runs // 100)),
    }
    document = {
        "experiment": {"name": f"bench{runs}"},
        "tools": {"preparation": "fake", "evaluation": "fake-eval"},
        "variables": axes,
        "controls": {"epochs": 1},
        "models": {"base": [{"name": "tiny", "path": "models/tiny"}]},
        "data": {"training": {"path": "data/words.json"}},
        "evaluation": {"tasks": [{"name": "caps"}]},
    }
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    env = {**os.environ, "CRUIJFF_PLUGINS": "cruijff.testing.fake"}
    cruijff = [sys.executable, "-m", "cruijff"]

    median, best, _ = measure([sys.executable, "-c", "pass"], env, args.repeat)
    print(
        f"python startup (baseline)     median {median * 1000:6.0f} ms  best {best * 1000:6.0f} ms"
    )
    median, best, _ = measure([*cruijff, "--help"], env, args.repeat)
    print(
        f"cruijff --help                median {median * 1000:6.0f} ms  best {best * 1000:6.0f} ms"
    )
    for runs in (1_000, 10_000):
        with tempfile.TemporaryDirectory() as folder:
            path = experiment(Path(folder), runs)
            repeat = max(1, args.repeat // (1 if runs < 10_000 else 3))
            median, best, peak = measure([*cruijff, "plan", str(path), "--json"], env, repeat)
            print(
                f"cruijff plan, {runs:>6,} runs   median {median:6.2f} s   best {best:6.2f} s"
                f"   ({runs * 2 + 1:,} jobs; peak RSS so far {peak:.0f} MB)"
            )


if __name__ == "__main__":
    main()
