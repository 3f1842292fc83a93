"""The training job: ``python -m cruijff_trl.launch trl_config.yaml --processes N [PATH=VALUE...]``.

Starts :mod:`cruijff_trl.train` (one process, or N under ``torchrun`` for N GPUs) unless every
epoch is already saved whole; the training resumes from TRL's last checkpoint by itself. Then
checks every epoch's weights and writes ``metrics.csv`` from the steps the training logged (a
step logged again after a resume keeps its latest values). ``PATH=VALUE`` overrides are passed
on (retries use them). Imports no torch: a finished job's rerun costs next to nothing.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from cruijff import rerun
from cruijff.fsutil import write_atomic
from cruijff_trl import outputs

TRAIN = "cruijff_trl.train"
COLUMNS = ("step", "epoch", "loss", "lr", "val_loss")


def read_steps(output_dir: Path) -> list[dict[str, Any]]:
    """Every logged step, in order, a step's records merged (loss, then its validation)."""
    steps: dict[int, dict[str, Any]] = {}
    try:
        lines = (output_dir / outputs.STEPS).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by a killed job
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            steps.setdefault(record["step"], {}).update(record)
    return [steps[step] for step in sorted(steps)]


def write_metrics(output_dir: Path, steps_per_epoch: int) -> Path:
    """The loss per logged step (and the validation loss where computed), as CSV."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in read_steps(output_dir):
        writer.writerow({**row, "epoch": (row["step"] - 1) // steps_per_epoch})
    path = output_dir / outputs.METRICS
    write_atomic(path, out.getvalue())
    return path


def load_config(path: Path, overrides: list[str]) -> dict[str, Any]:
    """The job's config, with ``PATH=VALUE`` overrides (retries use them; VALUE read as YAML)."""
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    for override in overrides:
        key, _, text = override.partition("=")
        *parents, last = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = yaml.safe_load(text)
    return config


def training_steps(config: dict[str, Any], processes: int) -> int:
    """Optimizer steps per epoch for this config's data over ``processes`` processes."""
    from cruijff_trl.rows import read_rows

    data, sft = config["data"], config["sft"]
    rows = len(read_rows(data["source"], "train"))
    if data.get("max_samples") is not None:
        rows = min(rows, int(data["max_samples"]))
    return outputs.steps_per_epoch(
        rows,
        int(sft["per_device_train_batch_size"]),
        int(sft["gradient_accumulation_steps"]),
        config["train"].get("max_steps_per_epoch"),
        processes,
    )


def start_over(output_dir: Path) -> None:
    """Remove what earlier attempts trained, so that a run asked to run again (``cruijff run
    --only RUN --force``) trains from the start instead of finding its epochs done."""
    print(f"cruijff: running again from the start ({rerun.ENV}=1)", flush=True)
    folders = [*output_dir.glob("epoch_*"), output_dir / "adapters", output_dir / "logs"]
    for path in [*folders, output_dir / outputs.CHECKPOINTS]:
        shutil.rmtree(path, ignore_errors=True)
    (output_dir / outputs.METRICS).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("overrides", nargs="*", help="PATH=VALUE config overrides")
    args = parser.parse_intermixed_args(argv)  # overrides come after --processes (retries)
    config = load_config(args.config, args.overrides)
    output_dir = Path(config["output_dir"])
    adapters_only = config["finetune"] == "lora" and bool(config["train"].get("adapters_only"))
    epochs = int(config["sft"]["num_train_epochs"])
    if rerun.asked():
        start_over(output_dir)
    done = all(outputs.complete_epoch(output_dir, e, adapters_only) for e in range(epochs))
    if done:
        print(f"cruijff: all {epochs} epochs are already trained", flush=True)
    else:
        command = [sys.executable, "-m", TRAIN, str(args.config), *args.overrides]
        if args.processes > 1:  # torchrun: one process per GPU
            torchrun = ["torch.distributed.run", "--standalone", "--nproc_per_node"]
            command[2:2] = [*torchrun, str(args.processes), "-m"]
        print("cruijff: " + " ".join(command), flush=True)
        code = subprocess.call(command)
        if code != 0:
            return code
    broken = [e for e in range(epochs) if not outputs.complete_epoch(output_dir, e, adapters_only)]
    if broken:
        print(f"cruijff: epochs {broken} have no whole checkpoint in {output_dir}", flush=True)
        return 1
    path = write_metrics(output_dir, training_steps(config, args.processes))
    # TRL's checkpoint (optimizer state too: several times the model) only served resuming
    shutil.rmtree(output_dir / outputs.CHECKPOINTS, ignore_errors=True)
    print(f"cruijff: training complete; loss per step in {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
