"""What a TRL training run leaves in its directory, read without torch: the epochs' merged
models and adapters, the checkpoint to resume from, and the loss per step.

Per epoch E (0-based): ``epoch_E/`` a whole transformers model folder (weights merged with the
adapter, the tokenizer beside them; what the evaluation loads), ``adapters/epoch_E/`` the LoRA
adapter alone (a PEFT folder naming the local base model). ``checkpoints/`` holds TRL's last
checkpoint (optimizer and scheduler state too), from which an interrupted job resumes.
``metrics.csv`` has a row per logged step, the columns the core's analysis reads
(``cruijff.analysis.model.CURVE_COLUMNS``): ``step`` (1-based, counted from the start of
training), ``epoch`` (0-based), ``loss``, ``lr``, and ``val_loss`` where the run computes it.
"""

from __future__ import annotations

import csv
import json
import struct
from pathlib import Path

METRICS = "metrics.csv"
LOG = "train.log"
"""The training job's stdout and stderr, in the run's directory."""
STEPS = "logs/steps.jsonl"
"""The job's record of every logged step (one JSON object a line, appended as it trains)."""
CHECKPOINTS = "checkpoints"


def epoch_dir(output_dir: Path, epoch: int) -> Path:
    return output_dir / f"epoch_{epoch}"


def adapter_dir(output_dir: Path, epoch: int) -> Path:
    return output_dir / "adapters" / f"epoch_{epoch}"


def weights_ok(path: Path) -> bool:
    """A safetensors file is whole: its header parses and its data reaches the end."""
    try:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"]
        return path.stat().st_size == 8 + length + max(ends, default=0)
    except (OSError, struct.error, ValueError, KeyError, TypeError, AttributeError):
        return False


def model_files(folder: Path) -> list[Path]:
    """The weight files of a saved model folder (from its index where there is one)."""
    index = folder / "model.safetensors.index.json"
    if index.exists():
        names = set(json.loads(index.read_text())["weight_map"].values())
        return sorted(folder / name for name in names)
    return sorted(folder.glob("model*.safetensors"))


def complete_epoch(output_dir: Path, epoch: int, adapters_only: bool = False) -> bool:
    """The epoch's model folder holds a config and whole weights (and no adapter config, which
    transformers would apply again over merged weights); with ``adapters_only``, its adapter
    is whole instead."""
    if adapters_only:
        folder = adapter_dir(output_dir, epoch)
        return (folder / "adapter_config.json").exists() and weights_ok(
            folder / "adapter_model.safetensors"
        )
    folder = epoch_dir(output_dir, epoch)
    files = model_files(folder) if folder.is_dir() else []
    return (
        (folder / "config.json").exists()
        and not (folder / "adapter_config.json").exists()
        and bool(files)
        and all(map(weights_ok, files))
    )


def steps_per_epoch(
    rows: int, batch_size: int, accumulation: int, cap: int | None, ranks: int = 1
) -> int:
    """Optimizer steps in one epoch, counted as the torchtune tool counts them (and as this
    plugin's sampler makes them): each of ``ranks`` processes reads ⌈rows / ranks⌉ rows, the
    last partial batch is dropped, the last partial accumulation makes no step."""
    share = -(-rows // max(1, ranks))
    steps = share // batch_size // accumulation
    return min(steps, cap) if cap else steps


def read_metrics(output_dir: Path) -> list[dict[str, str]]:
    try:
        with open(output_dir / METRICS, newline="") as handle:
            return list(csv.DictReader(handle))
    except (FileNotFoundError, UnicodeDecodeError, csv.Error):
        return []
