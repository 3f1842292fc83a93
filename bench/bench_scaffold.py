"""Benchmark: scaffolding 1,000 and 10,000 torchtune runs with `cruijff scaffold` (one process),
next to generating the same configs one fresh Python process per run, the way a tool that
drives its config generator once per run does.

Run: .venv/bin/python bench/bench_scaffold.py [--sample N]
The per-process figure is measured on N runs (default 40) and scaled to the run count.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from models import SMOLLM2_135M  # bench/models.py, beside this script

ONE_RUN = """
import sys, yaml
from pathlib import Path
from cruijff_torchtune.config import build, dump_yaml
from cruijff_torchtune.models import read_model
root, rank, lr, seed = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
out = root / "per-process" / f"rank{rank}_lr{lr}_seed{seed}"
config = build(run_name=out.name, output_dir=out, model=read_model(root / "model"),
               data=root / "data.json", controls={"epochs": 1}, gpus=0,
               run={"lora_rank": rank, "lr": lr, "seed": seed})
out.mkdir(parents=True, exist_ok=True)
(out / "finetune.yaml").write_text(dump_yaml(config.config))
"""


def experiment(root: Path, runs: int) -> Path:
    (root / "model").mkdir(parents=True)
    (root / "model" / "config.json").write_text(json.dumps(SMOLLM2_135M))
    (root / "model" / "model.safetensors").write_bytes(b"")
    # enough rows for an optimizer step at the default batch size (else: "would train nothing")
    rows = [{"input": f"w{i}", "output": f"W{i}"} for i in range(64)]
    (root / "data.json").write_text(json.dumps({"train": rows}))
    document = {
        "experiment": {"name": f"bench{runs}", "dir": "runs"},
        "tools": {"preparation": "torchtune"},
        "variables": {
            "lora_rank": list(range(1, 11)),
            "lr": [i * 1e-5 for i in range(1, 11)],
            "seed": list(range(runs // 100)),
        },
        "controls": {"epochs": 1},
        "models": {"base": [{"name": "smol", "path": "model"}]},
        "data": {"training": {"path": "data.json"}},
    }
    path = root / "experiment.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", type=int, default=40)
    args = parser.parse_args()
    per_process = None
    for runs in (1_000, 10_000):
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            path = experiment(root, runs)
            began = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-m", "cruijff", "scaffold", str(path), "--json"],
                check=True,
                capture_output=True,
                text=True,
            )
            took = time.perf_counter() - began
            written = len(json.loads(result.stdout)["written"])
            if per_process is None:
                began = time.perf_counter()
                for i in range(args.sample):
                    subprocess.run(
                        [
                            sys.executable,
                            "-c",
                            ONE_RUN,
                            str(root),
                            str(i % 10 + 1),
                            str((i % 7 + 1) * 1e-5),
                            str(i),
                        ],
                        check=True,
                    )
                per_process = (time.perf_counter() - began) / args.sample
            print(
                f"{runs:>6,} runs: cruijff scaffold {took:7.1f} s, {written:,} files "
                f"({took / runs * 1000:.2f} ms a run); one process per run "
                f"~{per_process * runs:7.0f} s ({per_process * 1000:.0f} ms a run, measured "
                f"on {args.sample}); {per_process * runs / took:.0f}x"
            )


if __name__ == "__main__":
    main()
