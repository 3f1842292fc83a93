"""A model folder as the TRL tool reads it without transformers: its ``config.json``, its
weights, the number of weights it has and the LoRA weights a run trains, and what training it
asks of the machine.

The counts are those of a decoder of transformers' Llama shape (Llama, Qwen2, Mistral,
SmolLM...): attention projections q, k, v, o; MLP projections gate, up, down; an embedding and
an output head, tied or not.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import attrs

SIZES = (
    (1.5e9, 1, 16, 2),
    (4e9, 1, 32, 4),
    (9e9, 1, 64, 8),
    (15e9, 2, 128, 12),
    (float("inf"), 4, 256, 24),
)
"""(up to this many weights, GPUs, memory GB, hours): cruijff_kit's MODEL_CONFIGS, as the
torchtune tool has them, so that a run asks the same of a cluster with either trainer."""


class ModelError(ValueError):
    """The folder is not a model this plugin can train; the message says why."""


@attrs.frozen(kw_only=True)
class ModelSpec:
    """One model folder: its config and the shapes LoRA adapts."""

    path: Path
    config: dict[str, Any] = attrs.field(eq=False, repr=False)
    weights: tuple[str, ...]

    @property
    def has_weights(self) -> bool:
        return bool(self.weights)

    def _dims(self) -> tuple[int, int, int, int, int, int]:
        c = self.config
        hidden, heads = int(c["hidden_size"]), int(c["num_attention_heads"])
        head_dim = int(c.get("head_dim") or hidden // heads)
        kv = int(c.get("num_key_value_heads") or heads)
        return hidden, int(c["intermediate_size"]), int(c["num_hidden_layers"]), heads, kv, head_dim

    def shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each projection of one layer, and of the output head."""
        hidden, inter, _, heads, kv, head_dim = self._dims()
        return {
            "q_proj": (hidden, heads * head_dim),
            "k_proj": (hidden, kv * head_dim),
            "v_proj": (hidden, kv * head_dim),
            "o_proj": (heads * head_dim, hidden),
            "gate_proj": (hidden, inter),
            "up_proj": (hidden, inter),
            "down_proj": (inter, hidden),
            "lm_head": (hidden, int(self.config["vocab_size"])),
        }

    @property
    def parameters(self) -> int:
        """The model's weights: embedding, layers (projections and two norms), final norm,
        and an output head where it is not tied to the embedding."""
        hidden, _, layers, *_ = self._dims()
        shapes = self.shapes()
        vocab = shapes["lm_head"][1]
        layer = sum(i * o for name, (i, o) in shapes.items() if name != "lm_head") + 2 * hidden
        head = 0 if self.config.get("tie_word_embeddings", False) else vocab * hidden
        return vocab * hidden + layers * layer + hidden + head

    def lora_parameters(self, rank: int, targets: list[str]) -> int:
        """The weights LoRA trains: rank × (in + out) for each targeted projection of every
        layer (the head once)."""
        _, _, layers, *_ = self._dims()
        shapes = self.shapes()
        return sum(
            rank * sum(shapes[name]) * (1 if name == "lm_head" else layers)
            for name in targets
            if name in shapes
        )


def read_model(path: Path) -> ModelSpec:
    """The spec of a model folder; ModelError when it has no readable ``config.json`` of a
    decoder this plugin counts."""
    try:
        stat = (path / "config.json").stat()
    except OSError:
        raise ModelError(f"{path} has no config.json") from None
    return _read(path, stat.st_mtime_ns, stat.st_size)


@functools.cache
def _read(path: Path, mtime_ns: int, size: int) -> ModelSpec:
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelError(f"{path / 'config.json'} cannot be read: {error}") from None
    missing = [
        key
        for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
        if not isinstance(config.get(key), int)
    ]
    if not isinstance(config, dict) or missing or not isinstance(config.get("vocab_size"), int):
        raise ModelError(
            f"{path / 'config.json'} is not a decoder's config (it lacks "
            f"{', '.join(missing) or 'vocab_size'})"
        )
    return ModelSpec(path=path, config=config, weights=weight_files(path))


def weight_files(path: Path) -> tuple[str, ...]:
    """The folder's safetensors files, from its index where there is one (empty before the
    weights are downloaded)."""
    index = path / "model.safetensors.index.json"
    if index.exists():
        return tuple(sorted(set(json.loads(index.read_text())["weight_map"].values())))
    return tuple(sorted(p.name for p in path.glob("*.safetensors")))


def training_resources(parameters: int, *, on_gpu: bool) -> dict[str, int]:
    """GPUs, memory (MB) and time (s) a training job of a model of this size asks for."""
    if not on_gpu:
        # fp32 weights, gradients and Adam state of what trains, plus activations
        mem_gb = max(4, int(parameters * 4 * 5 / 1e9) + 2)
        return {"gpus": 0, "mem_mb": mem_gb * 1024, "time_s": 4 * 3600}
    for limit, gpus, mem_gb, hours in SIZES:
        if parameters <= limit:
            return {"gpus": gpus, "mem_mb": mem_gb * 1024, "time_s": hours * 3600}
    raise AssertionError("unreachable")
