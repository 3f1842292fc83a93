"""LoRA adapters: a checkpoint that is an adapter over a base model, evaluated as base plus
adapter.

A trainer that keeps adapter weights only (``save_adapter_weights_only: true``) produces
``lora-adapter`` artifacts and no merged ``hf-model``; an eval-only run may point at such a
folder too (``adapter_config.json`` with ``base_model_name_or_path``, which must exist, and
``adapter_model.safetensors`` in PEFT's key layout). transformers loads an adapter only through
``peft``, which cruijff does not require, so the evaluation job merges the adapter into a copy of
the base model's weights (``W + alpha/r * B @ A``, in float32, then the base's dtype) and
evaluates that folder, removed afterwards.

Reading an adapter's config needs the standard library only; merging (:func:`merge`) imports
torch and safetensors, in the job.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_KEY = re.compile(
    r"(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<which>[AB])(?:\.default)?\.weight"
)


class AdapterError(Exception):
    """An adapter folder that cannot be evaluated; the message says why."""


def is_adapter(folder: Path) -> bool:
    """Whether ``folder`` holds a LoRA adapter rather than a whole model: an
    ``adapter_config.json`` and no model weights (torchtune copies the base model's
    ``config.json`` and tokenizer beside the adapter it saves; they do not make a model)."""
    if not (folder / CONFIG).is_file():
        return False
    try:
        return not any(
            path.suffix in WEIGHT_SUFFIXES and not path.name.startswith("adapter_")
            for path in folder.iterdir()
        )
    except OSError:
        return False


def read_config(folder: Path) -> dict[str, Any]:
    try:
        config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise AdapterError(f"cannot read {folder / CONFIG}: {error}") from None
    if not isinstance(config, dict):
        raise AdapterError(f"{folder / CONFIG} is not a JSON object")
    return config


def recorded_base(folder: Path) -> Path:
    """The base model an adapter folder records (``base_model_name_or_path``; a relative path
    is read against the adapter's folder). AdapterError when it names none or no folder."""
    config = read_config(folder)
    value = config.get("base_model_name_or_path")
    if not isinstance(value, str) or not value:
        raise AdapterError(f"{folder / CONFIG} records no base_model_name_or_path")
    base = Path(value).expanduser()
    if not base.is_absolute():
        base = folder / base
    return base


def check(folder: Path) -> str:
    """What keeps an adapter folder from being evaluated ("" when nothing does): its config,
    its weights and its recorded base model."""
    try:
        config = read_config(folder)
        base = recorded_base(folder)
    except AdapterError as error:
        return str(error)
    problem = _unsupported(folder, config)
    if problem:
        return problem
    if not (base / "config.json").is_file():
        return (
            f"the adapter's recorded base model {base} (base_model_name_or_path in "
            f"{CONFIG}) is not a model folder here"
        )
    return ""


def _unsupported(folder: Path, config: dict[str, Any]) -> str:
    if config.get("peft_type", "LORA") != "LORA":
        return f"{folder} holds a {config.get('peft_type')} adapter; only LoRA is evaluated"
    if config.get("use_dora"):
        return f"{folder} holds a DoRA adapter; only plain LoRA is merged"
    if config.get("modules_to_save"):
        return f"{folder}: an adapter with modules_to_save is not merged"
    rank = config.get("r")
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        return f"{folder / CONFIG}: r must be the LoRA rank, not {rank!r}"
    if not (folder / WEIGHTS).is_file():
        return f"{folder} has no {WEIGHTS} (the PEFT-format adapter weights)"
    return ""


def _weight_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.exists():
        names = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        return sorted(folder / name for name in names)
    return sorted(folder.glob("*.safetensors"))


def merge(base: Path, adapter: Path, target: Path) -> Path:
    """Write ``target``: the base model folder with the adapter merged into its weights (its
    config, tokenizer and other files copied). One weight file is in memory at a time."""
    import torch
    from safetensors.torch import load_file, save_file

    config = read_config(adapter)
    problem = _unsupported(adapter, config)
    if problem:
        raise AdapterError(problem)
    rank = config["r"]
    alpha = float(config.get("lora_alpha", rank))
    scale = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
    pairs: dict[str, dict[str, Any]] = {}
    for key, tensor in load_file(str(adapter / WEIGHTS)).items():
        found = _KEY.fullmatch(key)
        if found is None:
            raise AdapterError(f"{adapter / WEIGHTS}: {key!r} is not a LoRA weight")
        pairs.setdefault(found["module"], {})[found["which"]] = tensor
    shards = _weight_files(base)
    if not shards:
        raise AdapterError(f"{base} has no .safetensors weights to merge the adapter into")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for item in base.iterdir():
        if item.is_file() and item.suffix not in WEIGHT_SUFFIXES:
            shutil.copy2(item, target / item.name)
    remaining = dict(pairs)
    for shard in shards:
        tensors = load_file(str(shard))
        for module in [m for m in remaining if f"{m}.weight" in tensors]:
            lora = remaining.pop(module)
            if set(lora) != {"A", "B"}:
                raise AdapterError(f"{adapter}: {module} lacks lora_A or lora_B")
            weight = tensors[f"{module}.weight"]
            delta = lora["B"].to(torch.float32) @ lora["A"].to(torch.float32)
            if config.get("fan_in_fan_out"):
                delta = delta.T
            if delta.shape != weight.shape:
                raise AdapterError(
                    f"{adapter}: {module} is {tuple(weight.shape)} in the base model, "
                    f"{tuple(delta.shape)} in the adapter (another base model?)"
                )
            tensors[f"{module}.weight"] = (weight.to(torch.float32) + scale * delta).to(
                weight.dtype
            )
        save_file(tensors, str(target / shard.name), metadata={"format": "pt"})
    if remaining:
        shutil.rmtree(target, ignore_errors=True)
        names = ", ".join(sorted(remaining)[:3])
        raise AdapterError(f"{adapter} adapts modules {base} does not have ({names}...)")
    return target
