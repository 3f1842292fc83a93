"""What a fine-tune will take, estimated at plan time from the model folder's ``config.json``
alone (this module never imports torch): the model's parameters, the memory of training it
(full, LoRA or QLoRA), its optimizer steps and its time. Memory and time are
:class:`Bounds` (low, expected, high) whose ``facts`` say how they were reached.

Parameters (:func:`parameter_count`)
    The weights Hugging Face's ``LlamaForCausalLM``, ``Qwen2ForCausalLM`` and
    ``MistralForCausalLM`` hold, each tensor once (a tied output layer is the embedding), per
    layer: q ``h·n·d``, k and v ``h·k·d`` each, o ``n·d·h``, the MLP's three ``h·I``, two RMSNorm
    scales ``h``; Qwen2's q, k and v biases (``n·d + 2·k·d``); Llama's and Mistral's
    ``attention_bias`` / ``mlp_bias`` where a config sets them. Then the embedding ``V·h``, the
    output layer ``V·h`` unless ``tie_word_embeddings``, the final norm ``h``. (h hidden size,
    I intermediate size, n heads, k key/value heads, d head size, V vocabulary, L layers.)
    :func:`safetensors_parameters` counts what the weight files hold, from their headers only.

LoRA (:func:`lora_parameters`)
    torchtune's ``LoRALinear`` adds A (r × in) and B (out × r) to each adapted linear: q, k, v
    and o (``lora_attn_modules``), the MLP's w1, w2, w3 (``apply_lora_to_mlp``) and the output
    layer (``apply_lora_to_output``, untied models only). Only these train.

Training memory (:func:`training_memory`), per device, in GiB (2^30 bytes)
    p is the bytes of ``dtype`` (bf16 2, fp32 4): torchtune's single-device and FSDP recipes
    build the model under ``set_default_dtype(dtype)`` and keep no fp32 master copy.

    weights    N·p; LoRA adds its adapters (N_a·p); QLoRA keeps the layers' linear weights in
               torchao's NF4: 0.5 byte a value, one int8 scaler per 64 values, one p-byte
               factor per 256 scalers (0.5 + 1/64 + p/16384 B, measured on torchao 0.15's
               ``to_nf4``); embeddings, norms, biases and the output layer stay in p bytes.
    gradients  T·p, T the trainable parameters (N full, N_a LoRA); with ``optimizer_in_bwd``
               (full only) the optimizer steps each tensor as its gradient is ready, so only
               the largest gradient is held.
    optimizer  T·2·p for AdamW: ``torch.optim.AdamW`` creates ``exp_avg`` and ``exp_avg_sq``
               with ``zeros_like(param)``, in the parameter's dtype (torch/optim/adam.py).
    activations, per token (tokens = micro_batch × seq_len, seq_len the longest row of a
               batch: torchtune's collate pads to it), counted as Korthikanti et al. 2022
               ("Reducing Activation Recomputation in Large Transformer Models",
               arXiv:2205.05198, section 4.1) count a GPT layer (34·s·b·h + 5·a·s²·b bytes in
               16 bits, with dropout and unfused attention), but for torchtune 0.6.1's
               layer: each tensor autograd keeps for the backward pass, per layer:
                 two RMSNorms, computed in fp32: the fp32 copy of the input (4h B; in fp32
                 the input itself) and, full only, the normalised fp32 value the scale's
                 gradient needs (4h B), plus 4 B of rstd;
                 the norms' outputs (p·h each) where a linear that trains reads them;
                 fused SDPA (flash or memory-efficient kernels, on CUDA and the CPU): q, k, v
                 (k and v repeated to all n heads for GQA) and the output, 4·p·n·d, plus an
                 fp32 logsumexp per head; no s² term (that is unfused attention's);
                 the SwiGLU MLP: w1's output, its SiLU and w3's output (3·p·I) and their
                 product where w2 trains (p·I);
                 LoRA: A's output (p·r) per adapted linear; with dropout, each adapted
                 linear keeps its dropped input and mask (2·p·in, counted at p bytes the mask
                 as on the CPU) instead of the shared input;
                 Qwen2's RoPE: cos and sin cast to bf16 for q and for k, 4·d·p per sequence
                 position whatever the batch (fp32 keeps views of the cache: nothing).
               Full, bf16: 28h + 8I bytes a token a layer (60h for Llama's I = 4h, against
               Korthikanti's 34h for GPT); LoRA: 20h + 8I + 2r per adapted linear (LoRA's
               first layer keeps 4h less, its input needing no gradient: not taken off). With
               activation
               checkpointing (torchtune wraps each layer) a layer keeps its input only (p·h)
               and the layer being differentiated is recomputed whole. Outside the layers:
               the final norm (8h B full, 4h B LoRA), the output layer's input (p·h where its
               weight trains) and token ids and labels (16 B). ``seq_len`` is the caller's
               bound on the longest row: ``dataset.max_seq_len`` where the config cuts rows
               (nothing else does: ``tokenizer.max_seq_len`` is read by nothing).
               These counts are what ``torch.autograd.graph.saved_tensors_hooks`` sees on
               torchtune 0.6.1's builders (tests/test_torchtune_estimate.py checks them).
    loss       torchtune's ``CEWithChunkedOutputLoss`` (cruijff's default; 8 chunks) upcasts
               one chunk at a time, but ``log_softmax`` keeps every chunk's fp32 output for the
               backward pass: 4·V B a token kept, plus the logits themselves (p·V) and one
               chunk's fp32 copy while the loss is computed. An unchunked cross-entropy keeps
               p·V instead.
    transients the backward pass of one layer holds the gradients of that layer's
               activations (taken as one layer's activations); the CPU's AdamW (for-loop)
               two temporaries of its largest tensor, CUDA's fused AdamW none, its foreach
               AdamW one copy of what trains; QLoRA one dequantised weight.

    The peak is the largest of three moments, each on top of weights + optimizer states:
    the end of the forward pass (activations + loss), the start of the layers' backward pass
    (activations without the loss's, the output layer's gradient, one layer's working set)
    and the optimizer step (all gradients + its temporaries). Gradients replace activations
    as the backward pass runs, so they are only added to activations when gradient
    accumulation keeps them across micro-batches. On the CPU, setting up also holds the
    checkpoint as read (N × its ``torch_dtype`` bytes) beside the model.

    With ``ranks`` > 1 (torchtune's FSDP recipes), weights, gradients and optimizer states
    are sharded; a device also holds two layers gathered whole (the one computing, the next
    prefetched) and one layer's unsharded gradients.

    low, expected and high take the ends and middle of each uncertain term:
    activations × (0.9, 1.0, 1.15) (:data:`ACTIVATION_FACTOR`: kernels keeping less, such as a
    fused RMSNorm keeping only its input, against workspace and allocator rounding this count
    leaves out; a judgment, not a published figure); fragmentation (0, 10, 20)% of what is
    allocated (:data:`FRAGMENTATION`: PyTorch's caching allocator, or glibc's malloc on the
    CPU, holds freed blocks it cannot reuse; on the CPU, glibc kept 10% over the live peak of
    a full fp32 run of a 76M model, 17% of a bf16 one, measured with and without
    ``MALLOC_MMAP_THRESHOLD_=65536``); a fixed overhead
    (:data:`OVERHEAD_GIB`): CUDA 0.5, 1.0, 1.5 GiB (the CUDA context, loaded kernels,
    cuBLAS workspaces; the issue's range), CPU 0.15, 0.3, 0.6 GiB (torchtune, the tokenizer
    and the data loader in a process that has imported torch: 0.25 GiB measured with torch
    2.13; the interpreter and torch itself, about 0.2 GiB more, are not counted).

Steps (:func:`training_steps`)
    epochs × :func:`cruijff_torchtune.outputs.steps_per_epoch`, as torchtune counts them.

Time (:func:`training_hours`)
    FLOPs per token (PaLM's model FLOPs, Chowdhery et al. 2022, arXiv:2204.02311, appendix B):
    forward 2·N_m + 4·L·n·d·s, N_m the weights of matrix products (the layers' linears and the
    output layer, counted when tied too; not the embedding lookup or the norms), s the
    sequence length (attention's QKᵀ and AV, without a causal discount). Full: the backward
    pass costs twice the forward (gradients for activations and for weights): 6·N_m +
    12·L·n·d·s. LoRA and QLoRA: the forward pass 2·(N_m + N_a), the backward pass the
    activations' gradients through every layer (2·N_m + 2·N_a, attention's 8·L·n·d·s) and the
    adapters' weight gradients (2·N_a), no gradient for frozen weights: 4·N_m + 6·N_a +
    12·L·n·d·s. Activation checkpointing adds one forward pass. Time = FLOPs ÷ (peak TFLOPS ×
    GPUs × utilisation), utilisation (0.2, 0.35, 0.5) (:data:`UTILISATION`): PaLM trained at
    46% model FLOPs utilisation and Megatron-LM (Narayanan et al. 2021, arXiv:2104.04473) at
    up to 52% of peak, both with large batches; small-batch fine-tuning of padded rows runs
    lower (a judgment). QLoRA dequantises its weights in every product, which these FLOPs do
    not count: give it a lower utilisation.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from cruijff.records import freeze
from cruijff_torchtune import outputs
from cruijff_torchtune.models import ARCHITECTURES, ModelError, weight_files

GIB = 2**30
DTYPE_BYTES = {"bf16": 2, "fp32": 4}
"""Bytes of a value in the dtypes torchtune's recipes train in (``dtype`` in the config)."""

FILE_DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}
"""Bytes of a value in a checkpoint, by the config's ``torch_dtype`` (or ``dtype``)."""

NF4_BLOCK, NF4_SCALER_BLOCK = 64, 256
"""torchao's ``to_nf4`` defaults: values per int8 scaler, scalers per quantisation factor."""

OPTIMIZER_STATES = {"adamw": 2, "adam": 2, "sgd": 0}
"""Tensors the optimizer keeps per parameter, each in the parameter's dtype."""

LORA_TARGETS = ("q_proj", "v_proj", "output_proj")
"""cruijff's ``lora_attn_modules`` (cruijff_kit's)."""
ATTENTION = ("q_proj", "k_proj", "v_proj", "output_proj")
MLP = ("w1", "w2", "w3")

LOSS_CHUNKS = 8
"""``CEWithChunkedOutputLoss``'s ``num_output_chunks``."""

ACTIVATION_FACTOR = (0.9, 1.0, 1.15)
FRAGMENTATION = (0.0, 0.1, 0.2)
OVERHEAD_GIB = {"cuda": (0.5, 1.0, 1.5), "cpu": (0.15, 0.3, 0.6)}
UTILISATION = (0.2, 0.35, 0.5)

Method = Literal["full", "lora", "qlora"]


@attrs.frozen(kw_only=True)
class Bounds:
    """An estimate and its range, in ``unit``; ``facts`` holds each term it was made of.
    Unpacks as ``low, expected, high``."""

    low: float
    expected: float
    high: float
    unit: str = "GiB"
    facts: Mapping[str, Any] = attrs.field(factory=dict, converter=freeze, hash=False)

    def __iter__(self) -> Iterator[float]:
        return iter((self.low, self.expected, self.high))

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int | float) and self.low <= value <= self.high

    def __str__(self) -> str:
        return f"{self.expected:.3g} {self.unit} ({self.low:.3g} to {self.high:.3g})"


@attrs.frozen(kw_only=True)
class Dims:
    """A decoder's dimensions, from its ``config.json``."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    qkv_bias: bool
    o_bias: bool
    mlp_bias: bool
    rope_casts: bool = False
    """Qwen2's RoPE casts its cos and sin to the activations' dtype in every layer, for q and
    for k, and the products keep them: 4 × d values per position a layer (in bf16)."""

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def linears(self) -> dict[str, tuple[int, int]]:
        """Each linear of a layer, by torchtune's name: (in, out)."""
        h, i = self.hidden, self.intermediate
        return {
            "q_proj": (h, self.q_dim),
            "k_proj": (h, self.kv_dim),
            "v_proj": (h, self.kv_dim),
            "output_proj": (self.q_dim, h),
            "w1": (h, i),
            "w2": (i, h),
            "w3": (h, i),
        }

    def linear_weights(self) -> int:
        """The weights of one layer's linears (what QLoRA quantises)."""
        return sum(i * o for i, o in self.linears().values())

    def layer_parameters(self) -> int:
        """One layer's parameters: linears, biases, the two norms' scales."""
        biases = (self.q_dim + 2 * self.kv_dim) * self.qkv_bias + self.hidden * self.o_bias
        biases += (2 * self.intermediate + self.hidden) * self.mlp_bias
        return self.linear_weights() + biases + 2 * self.hidden


def dims(config: Mapping[str, Any]) -> Dims:
    """The dimensions of a supported architecture's config; ModelError otherwise."""
    architecture = _architecture(config)
    try:
        hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        qwen = architecture == "Qwen2ForCausalLM"
        return Dims(
            hidden=hidden,
            intermediate=int(config["intermediate_size"]),
            layers=int(config["num_hidden_layers"]),
            heads=heads,
            kv_heads=int(config.get("num_key_value_heads") or heads),
            head_dim=int(config.get("head_dim") or hidden // heads),
            vocab=int(config["vocab_size"]),
            # the default of each of these architectures' config classes: untied
            tied=bool(config.get("tie_word_embeddings", False)),
            qkv_bias=qwen or bool(config.get("attention_bias", False)),
            o_bias=not qwen and bool(config.get("attention_bias", False)),
            mlp_bias=not qwen and bool(config.get("mlp_bias", False)),
            rope_casts=qwen,
        )
    except KeyError as missing:
        raise ModelError(f"config.json lacks {missing}") from None


MODEL_TYPES = {
    "llama": "LlamaForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "mistral": "MistralForCausalLM",
}


def _architecture(config: Mapping[str, Any]) -> str:
    names = list(config.get("architectures") or [])
    known = [name for name in names if name in ARCHITECTURES]
    if known:
        return known[0]
    if not names and config.get("model_type") in MODEL_TYPES:
        return MODEL_TYPES[config["model_type"]]
    raise ModelError(
        f"architecture {', '.join(names) or config.get('model_type') or 'unknown'} is not "
        f"supported (supported: {', '.join(ARCHITECTURES)})"
    )


def parameter_count(config: Mapping[str, Any]) -> int:
    """The model's parameters, each tensor once (a tied output layer is the embedding)."""
    d = dims(config)
    embeddings = d.vocab * d.hidden * (1 if d.tied else 2)
    return d.layers * d.layer_parameters() + embeddings + d.hidden


def safetensors_parameters(folder: Path | str) -> int | None:
    """The values the folder's weight files hold (those its index names, else its
    ``*.safetensors``), read from their headers only; None without weights, or when a file
    the index names is missing. ModelError when a header does not parse."""
    folder = Path(folder)
    names = weight_files(folder) if folder.is_dir() else ()
    if not names or not all((folder / name).is_file() for name in names):
        return None
    total = 0
    for name in names:
        path = folder / name
        try:
            with open(path, "rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                header = json.loads(handle.read(length))
            total += sum(
                math.prod(entry["shape"]) for key, entry in header.items() if key != "__metadata__"
            )
        except (OSError, struct.error, ValueError, KeyError, TypeError) as error:
            raise ModelError(f"{path} is not a readable safetensors file: {error}") from None
    return total


def parameter_mismatch(folder: Path | str, config: Mapping[str, Any]) -> str | None:
    """Why the folder's weights and its ``config.json`` disagree on the parameters; None
    when they agree or there are no weights to compare."""
    held = safetensors_parameters(folder)
    counted = parameter_count(config)
    if held is None or held == counted:
        return None
    return f"config.json describes {counted:,} parameters but the weights hold {held:,}"


def lora_parameters(
    config: Mapping[str, Any],
    rank: int,
    targets: Sequence[str] = LORA_TARGETS,
    mlp: bool = True,
    output: bool = False,
) -> int:
    """The parameters torchtune's LoRA adds (what trains): r × (in + out) per adapted linear."""
    d = dims(config)
    unknown = sorted(set(targets) - set(ATTENTION))
    if unknown:
        raise ValueError(f"unknown lora_attn_modules {unknown} (known: {', '.join(ATTENTION)})")
    if output and d.tied:
        raise ValueError("apply_lora_to_output needs an untied output layer")
    shapes = d.linears()
    adapted = [*dict.fromkeys(targets), *(MLP if mlp else ())]
    per_layer = sum(rank * sum(shapes[name]) for name in adapted)
    return d.layers * per_layer + (rank * (d.hidden + d.vocab) if output else 0)


def nf4_bytes(p: int) -> float:
    """Bytes a value takes in torchao's NF4 (its scalers and factors included)."""
    return 0.5 + 1 / NF4_BLOCK + p / (NF4_BLOCK * NF4_SCALER_BLOCK)


def layer_activation_bytes(
    config: Mapping[str, Any],
    *,
    method: Method,
    dtype: str = "bf16",
    lora_rank: int = 64,
    lora_targets: Sequence[str] = LORA_TARGETS,
    lora_mlp: bool = True,
    lora_dropout: float = 0.0,
) -> int:
    """Bytes one layer keeps for the backward pass, per token (module docstring)."""
    d, p = dims(config), _bytes(dtype)
    _check_method(method)
    h, i, q = d.hidden, d.intermediate, d.q_dim
    full = method == "full"
    norms = 2 * (4 * h + (4 * h if full else 0) + 4)  # fp32 input (+ normalised value), rstd
    attention = 4 * p * q + 4 * d.heads  # SDPA's q, k, v, output; logsumexp
    mlp = 3 * p * i  # w1's output, its SiLU, w3's output
    if full:
        return norms + attention + mlp + 2 * p * h + p * i  # norm outputs, the product
    shapes = d.linears()
    adapted = [*dict.fromkeys(lora_targets), *(MLP if lora_mlp else ())]
    kept = norms + attention + mlp + p * lora_rank * len(adapted)  # A's outputs
    if lora_dropout > 0:
        return kept + sum(2 * p * shapes[name][0] for name in adapted)
    # the inputs LoRA's A reads: the attention norm's output, the MLP norm's and the product
    reads_norm = any(name in ("q_proj", "k_proj", "v_proj") for name in adapted)
    return kept + p * h * reads_norm + (p * h + p * i) * lora_mlp


def rope_bytes_per_position(config: Mapping[str, Any], *, dtype: str = "bf16") -> int:
    """Bytes one layer keeps per sequence position (whatever the batch) for RoPE: Qwen2's cos
    and sin cast to bf16 for q and for k; nothing where RoPE keeps views of its fp32 cache."""
    d, p = dims(config), _bytes(dtype)
    return 4 * d.head_dim * p if d.rope_casts and p != 4 else 0


def training_memory(
    config: Mapping[str, Any],
    *,
    method: Method,
    micro_batch: int,
    seq_len: int,
    dtype: str = "bf16",
    activation_checkpointing: bool,
    lora_rank: int = 64,
    lora_targets: Sequence[str] = LORA_TARGETS,
    lora_mlp: bool = True,
    lora_output: bool = False,
    lora_dropout: float = 0.0,
    optimizer: str = "adamw",
    optimizer_in_bwd: bool = False,
    fused_optimizer: bool = True,
    gradient_accumulation: int = 1,
    loss_chunks: int = LOSS_CHUNKS,
    device: str = "cuda",
    ranks: int = 1,
) -> Bounds:
    """Peak memory of one device training the model, in GiB (module docstring: the formula,
    its constants and their sources). ``micro_batch`` is torchtune's ``batch_size`` (per
    device), ``seq_len`` the longest row of a batch in tokens, ``loss_chunks`` 0 for an
    unchunked cross-entropy, ``fused_optimizer`` the optimizer's ``fused`` on CUDA."""
    _check_method(method)
    if optimizer not in OPTIMIZER_STATES:
        raise ValueError(f"optimizer {optimizer!r} unknown (known: {', '.join(OPTIMIZER_STATES)})")
    if device not in OVERHEAD_GIB:
        raise ValueError(f"device {device!r} unknown (known: {', '.join(OVERHEAD_GIB)})")
    if optimizer_in_bwd and (method != "full" or gradient_accumulation > 1):
        raise ValueError("optimizer_in_bwd is for full fine-tunes without gradient accumulation")
    d, p = dims(config), _bytes(dtype)
    full = method == "full"
    parameters = parameter_count(config)
    adapters = (
        0 if full else lora_parameters(config, lora_rank, lora_targets, lora_mlp, lora_output)
    )
    trainable = parameters if full else adapters
    quantized = d.layers * d.linear_weights() if method == "qlora" else 0
    per_weight = nf4_bytes(p) if method == "qlora" else p
    weights = (parameters - quantized) * p + quantized * per_weight + adapters * p
    largest = _largest_trainable(d, method, lora_rank, lora_targets, lora_mlp, lora_output)
    gradients = trainable * p
    gradients_held = largest * p if optimizer_in_bwd else gradients
    states = trainable * OPTIMIZER_STATES[optimizer] * p
    gathered = 0.0
    if ranks > 1:  # FSDP: all sharded, but two layers gathered whole and one's gradients
        weights, gradients, gradients_held, states = (
            value / ranks for value in (weights, gradients, gradients_held, states)
        )
        layer = d.layer_parameters()
        layer_weights = (layer - quantized // d.layers) * p + quantized // d.layers * per_weight
        layer_adapters = adapters / d.layers * p
        gathered = 2 * (layer_weights + layer_adapters) + (layer * p if full else layer_adapters)

    tokens = micro_batch * seq_len
    per_layer = layer_activation_bytes(
        config,
        method=method,
        dtype=dtype,
        lora_rank=lora_rank,
        lora_targets=lora_targets,
        lora_mlp=lora_mlp,
        lora_dropout=lora_dropout,
    )
    output_trains = full or lora_output
    outside = (8 if full else 4) * d.hidden + p * d.hidden * output_trains + 16
    if lora_output:
        outside += p * lora_rank
    rope = seq_len * rope_bytes_per_position(config, dtype=dtype)  # a layer's, all rows'
    kept_per_layer = p * d.hidden if activation_checkpointing else per_layer
    layer_activations = tokens * (d.layers * kept_per_layer + outside)
    layer_activations += 0 if activation_checkpointing else d.layers * rope
    working = (tokens * per_layer + rope) * (2 if activation_checkpointing else 1)
    if loss_chunks:
        log_probs = tokens * d.vocab * 4
        loss_transient = tokens * d.vocab * (p + (4 / loss_chunks if p != 4 else 0))
    else:
        log_probs = tokens * d.vocab * p
        loss_transient = tokens * d.vocab * p
    output_gradient = d.vocab * d.hidden * p if full else 0
    if lora_output:
        output_gradient = lora_rank * (d.hidden + d.vocab) * p
    accumulated = gradients if gradient_accumulation > 1 else 0
    # AdamW's temporaries: the CPU's for-loop two of a tensor, CUDA's foreach one of all
    fused = 0 if fused_optimizer else gradients
    step_transient = 2 * largest * p if device == "cpu" else fused
    dequantised = max(i * o for i, o in d.linears().values()) * p if method == "qlora" else 0
    checkpoint = parameters * _file_bytes(config) if device == "cpu" else 0

    static = weights + states + gathered

    def peak(factor: float) -> tuple[float, str]:
        moments = {
            "forward": static
            + factor * (layer_activations + log_probs)
            + loss_transient
            + accumulated
            + dequantised,
            "backward": static
            + factor * (layer_activations + working)
            + max(output_gradient, accumulated)
            + dequantised,
            "optimizer step": static + gradients_held + step_transient,
        }
        if checkpoint:  # the checkpoint as read, beside the model, before any optimizer state
            moments["setup"] = weights + checkpoint
        moment = max(moments, key=lambda name: moments[name])
        return moments[moment], moment

    overhead = OVERHEAD_GIB[device]
    totals, moments = [], []
    for factor, fragmentation, fixed in zip(
        ACTIVATION_FACTOR, FRAGMENTATION, overhead, strict=True
    ):
        allocated, moment = peak(factor)
        totals.append(allocated * (1 + fragmentation) / GIB + fixed)
        moments.append(moment)
    facts = {
        "method": method,
        "dtype": dtype,
        "device": device,
        "ranks": ranks,
        "parameters": parameters,
        "trainable": trainable,
        "adapter_parameters": adapters,
        "quantized_parameters": quantized,
        "bytes_per_weight": per_weight,
        "bytes_per_value": p,
        "tokens_per_micro_batch": tokens,
        "activation_bytes_per_token_per_layer": per_layer,
        "activation_checkpointing": activation_checkpointing,
        "weights_gib": weights / GIB,
        "gradients_gib": gradients_held / GIB,
        "optimizer_states_gib": states / GIB,
        "activations_gib": layer_activations / GIB,
        "layer_working_set_gib": working / GIB,
        "loss_kept_gib": log_probs / GIB,
        "loss_transient_gib": loss_transient / GIB,
        "optimizer_step_transient_gib": step_transient / GIB,
        "gathered_gib": gathered / GIB,
        "checkpoint_gib": checkpoint / GIB,
        "peak_moment": moments[1],
        "activation_factor": ACTIVATION_FACTOR,
        "fragmentation": FRAGMENTATION,
        "overhead_gib": overhead,
    }
    return Bounds(low=totals[0], expected=totals[1], high=totals[2], facts=facts)


def device(finetune: Mapping[str, Any]) -> str:
    """Where a built ``finetune.yaml`` trains: ``cpu``, else ``cuda``."""
    return "cpu" if str(finetune.get("device", "cuda")) == "cpu" else "cuda"


def memory_arguments(finetune: Mapping[str, Any]) -> dict[str, Any]:
    """The :func:`training_memory` arguments a built ``finetune.yaml`` (as a mapping) sets:
    everything but ``seq_len`` and ``ranks``."""
    model = finetune.get("model") or {}
    lora = "lora_" in str(model.get("_component_", ""))
    method: Method = ("qlora" if model.get("quantize_base") else "lora") if lora else "full"
    optimizer = finetune.get("optimizer") or {}
    component = str(optimizer.get("_component_", "torch.optim.AdamW")).rsplit(".", 1)[-1]
    loss = finetune.get("loss") or {}
    chunked = str(loss.get("_component_", "")).endswith("CEWithChunkedOutputLoss")
    arguments: dict[str, Any] = {
        "method": method,
        "micro_batch": int(finetune.get("batch_size") or 1),
        "dtype": str(finetune.get("dtype") or "bf16"),
        "activation_checkpointing": bool(finetune.get("enable_activation_checkpointing")),
        "optimizer": component.lower() if component.lower() in OPTIMIZER_STATES else "adamw",
        "optimizer_in_bwd": bool(finetune.get("optimizer_in_bwd")) and not lora,
        "fused_optimizer": bool(optimizer.get("fused", False)),
        "gradient_accumulation": int(finetune.get("gradient_accumulation_steps") or 1),
        "loss_chunks": int(loss.get("num_output_chunks", LOSS_CHUNKS)) if chunked else 0,
        "device": device(finetune),
    }
    if lora:
        arguments.update(
            lora_rank=int(model.get("lora_rank", 64)),
            lora_targets=tuple(model.get("lora_attn_modules") or LORA_TARGETS),
            lora_mlp=bool(model.get("apply_lora_to_mlp", True)),
            lora_output=bool(model.get("apply_lora_to_output", False)),
            lora_dropout=float(model.get("lora_dropout") or 0.0),
        )
    return arguments


def training_steps(
    rows: int,
    batch_size: int,
    accumulation: int,
    epochs: int,
    max_steps_per_epoch: int | None = None,
    ranks: int = 1,
) -> int:
    """Optimizer steps of the whole run, as torchtune counts them (per epoch:
    :func:`cruijff_torchtune.outputs.steps_per_epoch`)."""
    return epochs * outputs.steps_per_epoch(
        rows, batch_size, accumulation, max_steps_per_epoch, ranks
    )


def tokens_per_step(micro_batch: int, seq_len: int, accumulation: int = 1, ranks: int = 1) -> int:
    """Tokens (padding included: it is computed too) one optimizer step processes, all
    devices together."""
    return micro_batch * seq_len * accumulation * ranks


def flops_per_token(
    config: Mapping[str, Any],
    *,
    method: Method = "full",
    seq_len: int | None = None,
    activation_checkpointing: bool = False,
    lora_rank: int = 64,
    lora_targets: Sequence[str] = LORA_TARGETS,
    lora_mlp: bool = True,
    lora_output: bool = False,
) -> float:
    """Training FLOPs per token: forward and backward passes (module docstring)."""
    _check_method(method)
    d = dims(config)
    matrices = d.layers * d.linear_weights() + d.vocab * d.hidden
    attention = 4 * d.layers * d.q_dim * seq_len if seq_len else 0
    if method == "full":
        adapters, forward, backward = 0, 2 * matrices + attention, 4 * matrices + 2 * attention
    else:
        adapters = lora_parameters(config, lora_rank, lora_targets, lora_mlp, lora_output)
        forward = 2 * (matrices + adapters) + attention
        backward = 2 * matrices + 4 * adapters + 2 * attention
    return float(forward * (2 if activation_checkpointing else 1) + backward)


def training_hours(
    config: Mapping[str, Any],
    *,
    tokens_per_step: int,
    steps: int,
    tflops: float,
    utilisation: tuple[float, float, float] = UTILISATION,
    gpus: int = 1,
    method: Method = "full",
    seq_len: int | None = None,
    activation_checkpointing: bool = False,
    lora_rank: int = 64,
    lora_targets: Sequence[str] = LORA_TARGETS,
    lora_mlp: bool = True,
    lora_output: bool = False,
) -> Bounds:
    """Hours of training ``steps`` optimizer steps of ``tokens_per_step`` tokens (all
    devices') on ``gpus`` devices of ``tflops`` peak each; unpacks as low, expected, high
    (the low from the highest utilisation)."""
    if tflops <= 0 or not all(0 < u <= 1 for u in utilisation):
        raise ValueError("tflops must be positive and each utilisation in (0, 1]")
    per_token = flops_per_token(
        config,
        method=method,
        seq_len=seq_len,
        activation_checkpointing=activation_checkpointing,
        lora_rank=lora_rank,
        lora_targets=lora_targets,
        lora_mlp=lora_mlp,
        lora_output=lora_output,
    )
    flops = per_token * tokens_per_step * steps
    rate = tflops * 1e12 * gpus
    low, expected, high = (flops / (rate * u) / 3600 for u in sorted(utilisation, reverse=True))
    facts = {
        "flops_per_token": per_token,
        "flops": flops,
        "tokens": tokens_per_step * steps,
        "peak_tflops": tflops,
        "gpus": gpus,
        "utilisation": tuple(sorted(utilisation)),
    }
    return Bounds(low=low, expected=expected, high=high, unit="h", facts=facts)


def _largest_trainable(
    d: Dims,
    method: str,
    rank: int,
    targets: Sequence[str],
    mlp: bool,
    output: bool,
) -> int:
    """Values of the largest tensor that trains: a weight (full) or an adapter's A or B."""
    if method == "full":
        return max(*(i * o for i, o in d.linears().values()), d.vocab * d.hidden)
    shapes = d.linears()
    adapted = [shapes[name] for name in [*targets, *(MLP if mlp else ())]]
    if output:
        adapted.append((d.hidden, d.vocab))
    return max((rank * max(shape) for shape in adapted), default=0)


def _bytes(dtype: str) -> int:
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise ValueError(f"dtype {dtype!r} unknown (known: {', '.join(DTYPE_BYTES)})") from None


def _file_bytes(config: Mapping[str, Any]) -> int:
    return FILE_DTYPE_BYTES.get(str(config.get("torch_dtype") or config.get("dtype")), 2)


def _check_method(method: str) -> None:
    if method not in ("full", "lora", "qlora"):
        raise ValueError(f"method {method!r} unknown (known: full, lora, qlora)")
