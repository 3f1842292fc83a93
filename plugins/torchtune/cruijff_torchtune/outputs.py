"""What a training run leaves in its directory, read without torch: finished epochs, the
integrity of their weights, the adapters kept apart from merged models (each a PEFT folder
that names the local base model), and the loss per step.

``metrics.csv`` has a row per logged step: ``step`` (1-based, counted from the start of
training), ``epoch`` (0-based), then torchtune's values in name order (``loss``, ``lr``,
``tokens_per_second_per_gpu``...) and ``val_loss`` where the run computes the validation loss
(:mod:`cruijff_torchtune.validating`): the loss on the validation split after that step, at
steps N, 2N, ... and at each epoch's last step. A step that has one of them only leaves the
other cell empty.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import struct
import time
from pathlib import Path
from typing import Any

from cruijff.fsutil import write_atomic

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.pt")
STEP_LINE = re.compile(r"^Step (\d+) \| (.*)$")
METRICS = "metrics.csv"
LOG = "train.log"
"""The training job's stdout and stderr, in the run's directory."""


def epoch_dir(output_dir: Path, epoch: int) -> Path:
    return output_dir / f"epoch_{epoch}"


def adapter_dir(output_dir: Path, epoch: int) -> Path:
    return output_dir.joinpath("adapters", f"epoch_{epoch}")


def weights_ok(path: Path) -> bool:
    """A safetensors file is whole: its header parses and its data reaches the end."""
    try:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
    except (OSError, struct.error, ValueError):
        return False
    ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"]
    return path.stat().st_size == 8 + length + max(ends, default=0)


def model_files(folder: Path) -> list[Path]:
    """The weight files of a saved model folder (from its index where there is one)."""
    index = folder / "model.safetensors.index.json"
    if index.exists():
        names = set(json.loads(index.read_text())["weight_map"].values())
        return sorted(folder / name for name in names)
    return sorted(folder.glob("model*.safetensors"))


def complete_epoch(output_dir: Path, epoch: int, adapters_only: bool = False) -> bool:
    """The epoch's model folder holds a config and whole weights; with ``adapters_only``,
    the epoch's adapter is whole instead (in the model folder, or moved beside it)."""
    if adapters_only:
        return any(
            (folder / "adapter_config.json").exists()
            and weights_ok(folder / "adapter_model.safetensors")
            for folder in (epoch_dir(output_dir, epoch), adapter_dir(output_dir, epoch))
        )
    folder = epoch_dir(output_dir, epoch)
    files = model_files(folder) if folder.is_dir() else []
    return (folder / "config.json").exists() and bool(files) and all(map(weights_ok, files))


def finished_epochs(output_dir: Path, adapters_only: bool = False) -> list[int]:
    found = []
    for folder in output_dir.glob("epoch_*"):
        suffix = folder.name.removeprefix("epoch_")
        if suffix.isdigit() and complete_epoch(output_dir, int(suffix), adapters_only):
            found.append(int(suffix))
    return sorted(found)


def separate_adapters(output_dir: Path, base_model: Path | None = None) -> None:
    """Move LoRA adapter files out of the merged model folders (with peft installed,
    transformers would apply adapter_config.json on top of the already merged weights), and
    point each adapter's ``base_model_name_or_path`` at the local base model (and name its
    ``task_type``), so that PEFT (or transformers) loads the folder over it."""
    for folder in output_dir.glob("epoch_*"):
        suffix = folder.name.removeprefix("epoch_")
        if not suffix.isdigit():
            continue
        for name in ADAPTER_FILES:
            source = folder / name
            if source.exists():
                target = adapter_dir(output_dir, int(suffix)) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(source, target)
        config = adapter_dir(output_dir, int(suffix)) / "adapter_config.json"
        if base_model is not None and config.exists():
            settings = json.loads(config.read_text(encoding="utf-8"))
            wanted = {"base_model_name_or_path": str(base_model), "task_type": "CAUSAL_LM"}
            if any(settings.get(key) != value for key, value in wanted.items()):
                settings.update(wanted)
                write_atomic(config, json.dumps(settings, indent=2) + "\n")


RESUMES = "cruijff_resumes.jsonl"


def record_resume(output_dir: Path, after_epoch: int, renumbered: bool | None = None) -> None:
    """Note that the next torchtune log continues after ``after_epoch``, and whether it
    numbers its steps from 1 again (torchtune 0.6.1's LoRA single-device recipe does, its
    other recipes do not; None: unknown, the log's first step tells)."""
    path = output_dir / "logs" / RESUMES
    path.parent.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"time": time.time(), "after_epoch": after_epoch}
    if renumbered is not None:
        record["renumbered"] = renumbered
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _log_time(path: Path) -> float:
    suffix = path.stem.removeprefix("log_")
    return float(suffix) if suffix.isdigit() else path.stat().st_mtime


def read_steps(log_dir: Path, steps_per_epoch: int | None = None) -> list[dict[str, Any]]:
    """Every ``Step N | name:value ...`` line of torchtune's disk logs, numbered from the
    start of training: the lines of one step in one log (the training loss, the validation
    loss) make one row; a step logged again after a resume keeps its latest values."""
    resumes = []
    if (log_dir / RESUMES).exists():
        lines = (log_dir / RESUMES).read_text(encoding="utf-8").splitlines()
        resumes = [json.loads(line) for line in lines if line.strip()]
    steps: dict[int, dict[str, Any]] = {}
    previous = float("-inf")
    for log in sorted(log_dir.glob("log_*.txt"), key=_log_time):
        started = _log_time(log)
        # the resume recorded between the previous log and this one, if any
        resumed = [r for r in resumes if previous - 1 < r["time"] <= started + 1]
        previous = started
        renumbered = resumed[-1].get("renumbered") if resumed else None
        offset = 0
        if resumed and steps_per_epoch and renumbered is not False:
            offset = (resumed[-1]["after_epoch"] + 1) * steps_per_epoch
        rows: dict[int, dict[str, Any]] = {}
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            match = STEP_LINE.match(line.strip())
            if not match:
                continue
            step = int(match.group(1))
            row = rows.setdefault(step, {"step": step})
            for item in match.group(2).split():
                name, _, value = item.partition(":")
                try:
                    row[name] = float(value)
                except ValueError:
                    continue
        if renumbered is None and rows and min(rows) > offset:
            offset = 0  # numbered from the start of training already
        for row in rows.values():
            row["step"] += offset
            steps[row["step"]] = row
    return [steps[step] for step in sorted(steps)]


def write_metrics(output_dir: Path, steps_per_epoch: int | None) -> Path:
    """The loss (and whatever else torchtune logged) per step, one row each, as CSV."""
    rows = read_steps(output_dir / "logs", steps_per_epoch)
    for row in rows:
        if steps_per_epoch:
            row["epoch"] = (row["step"] - 1) // steps_per_epoch
    columns = ["step", "epoch"] if steps_per_epoch else ["step"]
    columns += sorted({key for row in rows for key in row} - set(columns))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = output_dir / METRICS
    write_atomic(path, out.getvalue())
    return path


def read_metrics(output_dir: Path) -> list[dict[str, str]]:
    try:
        with open(output_dir / METRICS, newline="") as handle:
            return list(csv.DictReader(handle))
    except FileNotFoundError:
        return []


def step_size(config: dict[str, Any]) -> tuple[int, int]:
    """A finetune config's batch size and gradient accumulation steps (1 where unset)."""
    return int(config.get("batch_size") or 1), int(config.get("gradient_accumulation_steps") or 1)


def steps_per_epoch(
    rows: int, batch_size: int, accumulation: int, cap: int | None, ranks: int = 1
) -> int:
    """Optimizer steps in one epoch, as torchtune counts them: with ``ranks`` processes (one
    per GPU) each reads ⌈rows / ranks⌉ rows (its DistributedSampler pads the rows to equal
    shares, repeating some), its data loader drops the last partial batch, and the last
    partial accumulation makes no step. 0 when an epoch has fewer rows than one step takes."""
    share = -(-rows // max(1, ranks))
    steps = share // batch_size // accumulation
    return min(steps, cap) if cap else steps
