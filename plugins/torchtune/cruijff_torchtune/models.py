"""From a model folder's ``config.json`` to torchtune's builder, checkpointer settings and the
resources training it needs. Any size of a supported architecture works: the builders are
torchtune's component builders, given every dimension from the config.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

BUILDERS = "torchtune.models.{family}._component_builders.{name}"


NF4_BLOCK = 64 * 256
"""torchao's NF4 quantizes a weight in blocks of 64 values whose scales go in blocks of 256:
a weight QLoRA quantizes must hold a multiple of this many values."""


class ModelError(ValueError):
    """The folder is not a model this plugin can train; the message says why."""


@attrs.frozen(kw_only=True)
class ModelSpec:
    """How torchtune builds and checkpoints one model folder."""

    path: Path
    architecture: str
    builder: str
    lora_builder: str
    model_type: str
    args: dict[str, Any]
    weights: tuple[str, ...]
    parameters: int
    config: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)
    """The folder's ``config.json`` as read."""

    @property
    def has_weights(self) -> bool:
        """Whether the folder holds the weights, not only their description."""
        return bool(self.weights)

    def component(self, lora: bool) -> str:
        return self.lora_builder if lora else self.builder

    def nf4_misfits(self) -> list[str]:
        """The attention and MLP weights (what QLoRA quantizes) that NF4 cannot split into
        blocks, as ``name (rows×cols)``; empty when QLoRA can train this model."""
        hidden, heads = self.args["embed_dim"], self.args["num_heads"]
        shapes = {
            "attention": (hidden, hidden),
            "key/value": (self.args["num_kv_heads"] * hidden // heads, hidden),
            "MLP": (self.args["intermediate_dim"], hidden),
        }
        return [
            f"{name} ({rows}×{cols})"
            for name, (rows, cols) in shapes.items()
            if rows * cols % NF4_BLOCK
        ]


def rope(config: dict[str, Any], default_base: float) -> tuple[float, dict[str, Any]]:
    """The RoPE base and scaling of a config, in transformers 4's shape (``rope_theta``,
    ``rope_scaling``) or 5's (``rope_parameters``); a wrong base silently changes the logits."""
    parameters = dict(config.get("rope_parameters") or {})
    base = config.get("rope_theta", parameters.get("rope_theta", default_base))
    scaling = dict(config.get("rope_scaling") or {})
    if not scaling and parameters.get("rope_type", "default") != "default":
        scaling = parameters
    return float(base), scaling


def _llama(config: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    base, scaling = rope(config, 10_000.0)
    kind = scaling.get("rope_type", scaling.get("type"))
    if scaling and kind != "llama3":
        raise ModelError(f"rope scaling of type {kind!r} is not supported (only llama3's)")
    tied = bool(config.get("tie_word_embeddings", False))
    args = {
        **_decoder_args(config),
        "rope_base": base,
        # torchtune's default (32) rescales RoPE; a model with plain RoPE needs 1
        "scale_factor": int(scaling.get("factor", 1)) if scaling else 1,
        "tie_word_embeddings": tied,
    }
    return "llama3_2", "LLAMA3_2" if tied else "LLAMA3", args


def _qwen2(config: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    args = {
        **_decoder_args(config),
        "rope_base": rope(config, 1_000_000.0)[0],
        "tie_word_embeddings": bool(config.get("tie_word_embeddings", False)),
    }
    return "qwen2", "QWEN2", args


def _mistral(config: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    return (
        "mistral",
        "MISTRAL",
        {**_decoder_args(config), "rope_base": rope(config, 10_000.0)[0]},
    )


ARCHITECTURES: dict[str, tuple[str, Callable[[dict[str, Any]], tuple[str, str, dict]]]] = {
    "LlamaForCausalLM": ("llama3_2", _llama),
    "Qwen2ForCausalLM": ("qwen2", _qwen2),
    "MistralForCausalLM": ("mistral", _mistral),
}


def _decoder_args(config: dict[str, Any]) -> dict[str, Any]:
    heads = config["num_attention_heads"]
    hidden = config["hidden_size"]
    head_dim = config.get("head_dim")
    if head_dim and head_dim != hidden // heads:
        raise ModelError(
            f"head_dim {head_dim} differs from hidden_size / heads, which "
            "torchtune's builders assume"
        )
    return {
        "vocab_size": config["vocab_size"],
        "num_layers": config["num_hidden_layers"],
        "num_heads": heads,
        "num_kv_heads": config.get("num_key_value_heads") or heads,
        "embed_dim": hidden,
        "intermediate_dim": config["intermediate_size"],
        "max_seq_len": config.get("max_position_embeddings", 2048),
        "norm_eps": config.get("rms_norm_eps", 1e-5),
    }


def parameter_count(args: dict[str, Any]) -> int:
    """Roughly how many weights the model has (enough to size its resources)."""
    d, layers, vocab = args["embed_dim"], args["num_layers"], args["vocab_size"]
    kv = d * args["num_kv_heads"] // args["num_heads"]
    per_layer = 2 * d * d + 2 * d * kv + 3 * d * args["intermediate_dim"]
    embeddings = vocab * d * (1 if args.get("tie_word_embeddings", True) else 2)
    return layers * per_layer + embeddings


def weight_files(folder: Path) -> tuple[str, ...]:
    """The safetensors files of a model folder, from its index where there is one."""
    index = folder / "model.safetensors.index.json"
    if index.exists():
        return tuple(sorted(set(json.loads(index.read_text())["weight_map"].values())))
    return tuple(sorted(path.name for path in folder.glob("*.safetensors")))


def read_model(folder: Path) -> ModelSpec:
    """The torchtune view of a model folder; ModelError saying what is wrong otherwise."""
    config_path = folder / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{folder} has no config.json: not a Hugging Face model folder") from None
    except json.JSONDecodeError as error:
        raise ModelError(f"{config_path} is not valid JSON: {error}") from None
    architectures = config.get("architectures") or []
    known = [name for name in architectures if name in ARCHITECTURES]
    if not known:
        supported = ", ".join(ARCHITECTURES)
        raise ModelError(
            f"architecture {', '.join(architectures) or 'unknown'} is not "
            f"supported (supported: {supported})"
        )
    family, describe = ARCHITECTURES[known[0]]
    try:
        family, model_type, args = describe(config)
    except KeyError as missing:
        raise ModelError(f"{config_path} lacks {missing}") from None
    # Without weights (config.json and tokenizer only) a model can be designed and planned, so
    # a sweep is sized before gigabytes are downloaded; scaffolding refuses it (plugin.py).
    weights = weight_files(folder)
    return ModelSpec(
        path=folder,
        architecture=known[0],
        builder=BUILDERS.format(family=family, name=family),
        lora_builder=BUILDERS.format(family=family, name=f"lora_{family}"),
        model_type=model_type,
        args=args,
        weights=weights,
        parameters=parameter_count(args),
        config=config,
    )


# Resource defaults by size, for GPU schedulers: (at most this many weights, GPUs, memory GB,
# hours). LoRA on one GPU up to ~8B; full fine-tunes of larger models want more.
SIZES = (
    (1.5e9, 1, 16, 2),
    (4e9, 1, 32, 4),
    (9e9, 1, 64, 8),
    (15e9, 2, 128, 12),
    (float("inf"), 4, 256, 24),
)


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
