"""Plan-time estimates (:mod:`cruijff_torchtune.estimate`): parameter counts of published
configs, LoRA's adapters, safetensors headers, memory bounds computed by hand for full, LoRA
and QLoRA, steps and hours; then, with torch, the activation counts against what autograd
really keeps on torchtune's builders, and the CPU bounds against a real training run's
memory."""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from cruijff_torchtune import estimate
from cruijff_torchtune.estimate import (
    GIB,
    Bounds,
    lora_parameters,
    parameter_count,
    safetensors_parameters,
    training_memory,
)
from cruijff_torchtune.models import ModelError


def llama(**changes) -> dict:
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", **changes}


# The published config.json values (the keys that count).
LLAMA_3_2_1B = llama(
    hidden_size=2048,
    intermediate_size=8192,
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    vocab_size=128256,
    tie_word_embeddings=True,
    torch_dtype="bfloat16",
)
LLAMA_3_1_8B = llama(
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    vocab_size=128256,
    tie_word_embeddings=False,
    attention_bias=False,
    mlp_bias=False,
    torch_dtype="bfloat16",
)
QWEN_2_5_7B = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "vocab_size": 152064,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}
SMOLLM2_135M = llama(
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    vocab_size=49152,
    tie_word_embeddings=True,
    head_dim=64,
)
MISTRAL_7B = {
    "architectures": ["MistralForCausalLM"],
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 32000,
}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        # 16 layers × (q 2048² + k, v 2048·512 each + o 2048² = 10,485,760; MLP 3·2048·8192
        # = 50,331,648; norms 2·2048) = 16 × 60,821,504 = 973,144,064; embedding (tied, once)
        # 128256·2048 = 262,668,288; final norm 2048: 1,235,814,400
        (LLAMA_3_2_1B, 1_235_814_400),
        # 32 × (q, o 4096² each, k, v 4096·1024 each = 41,943,040; MLP 3·4096·14336 =
        # 176,160,768; norms 8192) = 32 × 218,112,000 = 6,979,584,000; embedding and output
        # 2·128256·4096 = 1,050,673,152; final norm 4096: 8,030,261,248
        (LLAMA_3_1_8B, 8_030_261_248),
        # 28 × (q, o 3584² each, k, v 3584·512 each = 29,360,128; q, k, v biases 3584 + 2·512
        # = 4608; MLP 3·3584·18944 = 203,685,888; norms 7168) = 28 × 233,057,792 =
        # 6,525,618,176; embedding and output 2·152064·3584 = 1,089,994,752; final norm 3584:
        # 7,615,616,512
        (QWEN_2_5_7B, 7_615_616_512),
        # 30 × (q, o 576² each, k, v 576·192 each = 884,736; MLP 3·576·1536 = 2,654,208; norms
        # 1152) = 30 × 3,540,096 = 106,202,880; embedding (tied) 49152·576 = 28,311,552; final
        # norm 576: 134,515,008
        (SMOLLM2_135M, 134_515_008),
        # 32 × (41,943,040 + 176,160,768 + 8192) = 6,979,584,000; 2·32000·4096 = 262,144,000;
        # 4096: 7,241,732,096 (Mistral-7B-v0.1's published count)
        (MISTRAL_7B, 7_241_732_096),
    ],
)
def test_parameter_counts_of_published_configs(config, expected):
    assert parameter_count(config) == expected


def test_unsupported_or_incomplete_configs_say_why():
    with pytest.raises(ModelError, match="GPT2LMHeadModel is not supported"):
        parameter_count({"architectures": ["GPT2LMHeadModel"], "n_embd": 768})
    incomplete = dict(LLAMA_3_2_1B)
    del incomplete["intermediate_size"]
    with pytest.raises(ModelError, match="lacks 'intermediate_size'"):
        parameter_count(incomplete)
    # without architectures, the model type names it
    bare = {k: v for k, v in QWEN_2_5_7B.items() if k != "architectures"}
    assert parameter_count(bare) == 7_615_616_512


def test_lora_parameters():
    # r·(in + out) per adapted linear, rank 64, cruijff's targets (q, v, o) and the MLP:
    # q 64·(2048 + 2048) = 262,144; v 64·(2048 + 512) = 163,840; o 262,144; w1, w2, w3
    # 64·(2048 + 8192) = 655,360 each: 2,654,208 a layer, × 16 layers
    assert lora_parameters(LLAMA_3_2_1B, 64) == 42_467_328
    # attention only, q and v at rank 8 on the 8B: 32 × 8·((4096 + 4096) + (4096 + 1024))
    assert lora_parameters(LLAMA_3_1_8B, 8, ("q_proj", "v_proj"), mlp=False) == 3_407_872
    # the output layer adds r·(h + V)
    with_output = lora_parameters(LLAMA_3_1_8B, 8, ("q_proj", "v_proj"), mlp=False, output=True)
    assert with_output == 3_407_872 + 8 * (4096 + 128256)
    with pytest.raises(ValueError, match="untied"):
        lora_parameters(LLAMA_3_2_1B, 8, output=True)
    with pytest.raises(ValueError, match="gate_proj"):
        lora_parameters(LLAMA_3_2_1B, 8, ("gate_proj",))


def write_safetensors(path: Path, shapes: dict[str, list[int]], data: bool = True) -> None:
    """A safetensors file of zeros (bf16) with these tensors."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in shapes.items():
        size = 2 * math.prod(shape)
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + b"\0" * (offset if data else 0))


def test_safetensors_parameters_read_the_headers(tmp_path):
    assert safetensors_parameters(tmp_path) is None  # no weights
    write_safetensors(tmp_path / "model.safetensors", {"a": [3, 4], "b": [5], "c": []})
    assert safetensors_parameters(tmp_path) == 12 + 5 + 1
    # sharded: the index's files, which must all be there
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    write_safetensors(sharded / "model-1.safetensors", {"a": [10, 10]})
    index = {"weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    assert safetensors_parameters(sharded) is None
    write_safetensors(sharded / "model-2.safetensors", {"b": [7, 3]}, data=False)
    assert safetensors_parameters(sharded) == 121
    (tmp_path / "model.safetensors").write_bytes(b"\x05\0\0\0\0\0\0\0{oops")
    with pytest.raises(ModelError, match="not a readable safetensors"):
        safetensors_parameters(tmp_path)


def test_a_folder_whose_weights_disagree_with_its_config(tmp_path):
    config = llama(
        hidden_size=8,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        vocab_size=10,
        tie_word_embeddings=True,
    )
    # 8·8·4 + 3·8·16 + 2·8 = 656 a layer; 10·8 embedding; 8 final norm: 744
    assert parameter_count(config) == 744
    write_safetensors(tmp_path / "model.safetensors", {"w": [744]})
    assert estimate.parameter_mismatch(tmp_path, config) is None
    write_safetensors(tmp_path / "model.safetensors", {"w": [744], "lm_head.weight": [10, 8]})
    assert estimate.parameter_mismatch(tmp_path, config) == (
        "config.json describes 744 parameters but the weights hold 824"
    )


# A small untied model, for memory worked out by hand: h 256, I 512, 2 layers, 4 heads of 64,
# 2 key/value heads (k, v 128 wide), V 1000. Per layer: q, o 65,536 each, k, v 32,768 each,
# MLP 3·256·512 = 393,216, norms 512: 590,336; × 2 = 1,180,672; embedding and output
# 2·1000·256 = 512,000; final norm 256: N = 1,692,928.
SMALL = llama(
    hidden_size=256,
    intermediate_size=512,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=1000,
)
TOKENS = 2 * 64  # micro-batch 2, rows of 64 tokens


def gib(allocated: float, fragmentation: float, overhead: float) -> float:
    return allocated * (1 + fragmentation) / GIB + overhead


def test_full_memory_by_hand():
    assert parameter_count(SMALL) == 1_692_928
    bounds = training_memory(
        SMALL, method="full", micro_batch=2, seq_len=64, activation_checkpointing=False
    )
    weights = gradients = 1_692_928 * 2  # bf16
    states = 2 * weights  # AdamW's two, in bf16
    # a layer keeps, per token: norms 2·(4·256 fp32 input + 4·256 normalised + 4 rstd) = 4104;
    # SDPA's q, k, v, output 4·2·256 + logsumexp 4·4 = 2064; MLP 3·2·512 = 3072; the norms'
    # outputs 2·2·256 = 1024; the product 2·512 = 1024: 11,288 (= 28h + 8I + 24)
    per_layer = 4104 + 2064 + 3072 + 1024 + 1024
    assert bounds.facts["activation_bytes_per_token_per_layer"] == per_layer == 11_288
    outside = 8 * 256 + 2 * 256 + 16  # final norm, output layer's input, ids and labels
    activations = TOKENS * (2 * per_layer + outside)  # 3,219,456
    log_probs = TOKENS * 1000 * 4  # fp32, every chunk
    loss_transient = TOKENS * 1000 * (2 + 4 / 8)  # bf16 logits, one fp32 chunk
    working = TOKENS * per_layer  # one layer's gradients in the backward pass
    output_gradient = 1000 * 256 * 2

    def allocated(factor):
        forward = factor * (activations + log_probs) + loss_transient
        backward = factor * (activations + working) + output_gradient
        step = gradients  # fused AdamW: no temporaries
        return weights + states + max(forward, backward, step)

    assert allocated(1.0) == weights + states + activations + working + output_gradient
    assert bounds.low == pytest.approx(gib(allocated(0.9), 0.0, 0.5))
    assert bounds.expected == pytest.approx(gib(allocated(1.0), 0.1, 1.0))
    assert bounds.high == pytest.approx(gib(allocated(1.15), 0.2, 1.5))
    assert bounds.facts["peak_moment"] == "backward"
    assert tuple(bounds) == (bounds.low, bounds.expected, bounds.high)


def test_lora_memory_by_hand():
    bounds = training_memory(
        SMALL,
        method="lora",
        micro_batch=2,
        seq_len=64,
        activation_checkpointing=False,
        lora_rank=8,
    )
    # rank 8 on q (256 + 256), v (256 + 128), o (256 + 256), w1, w2, w3 (256 + 512): 29,696 a
    # layer, 59,392 in all
    adapters = 8 * (512 + 384 + 512 + 3 * 768) * 2
    assert bounds.facts["trainable"] == adapters == 59_392
    weights = (1_692_928 + adapters) * 2
    gradients, states = adapters * 2, adapters * 4
    # norms keep their fp32 input only (their scales are frozen): 2·(1024 + 4) = 2056; SDPA
    # 2064; MLP 3072; A's outputs 6·2·8 = 96; what A reads: the attention norm's output 512,
    # the MLP norm's 512 and the product 1024: 9336 (= 20h + 8I + 12r + 24)
    per_layer = 2056 + 2064 + 3072 + 96 + 512 + 512 + 1024
    assert bounds.facts["activation_bytes_per_token_per_layer"] == per_layer == 9336
    activations = TOKENS * (2 * per_layer + 4 * 256 + 16)  # the final norm's fp32 input
    log_probs, loss_transient = TOKENS * 1000 * 4, TOKENS * 1000 * 2.5
    working = TOKENS * per_layer

    def allocated(factor):
        forward = factor * (activations + log_probs) + loss_transient
        backward = factor * (activations + working)  # the output layer is frozen
        return weights + states + max(forward, backward, gradients)

    assert bounds.low == pytest.approx(gib(allocated(0.9), 0.0, 0.5))
    assert bounds.expected == pytest.approx(gib(allocated(1.0), 0.1, 1.0))
    assert bounds.high == pytest.approx(gib(allocated(1.15), 0.2, 1.5))


def test_qlora_memory_by_hand():
    bounds = training_memory(
        SMALL,
        method="qlora",
        micro_batch=2,
        seq_len=64,
        activation_checkpointing=False,
        lora_rank=8,
    )
    quantized = 2 * (65_536 * 2 + 32_768 * 2 + 393_216)  # every linear of the layers
    assert bounds.facts["quantized_parameters"] == quantized == 1_179_648
    nf4 = 0.5 + 1 / 64 + 2 / (64 * 256)  # 4 bits, an int8 scaler per 64, a bf16 per 256
    adapters = 59_392
    weights = (1_692_928 - quantized) * 2 + quantized * nf4 + adapters * 2
    assert weights == 1_026_560 + 608_400 + 118_784
    states = adapters * 4
    per_layer = 9336  # as LoRA's
    activations = TOKENS * (2 * per_layer + 4 * 256 + 16)
    log_probs, loss_transient = TOKENS * 1000 * 4, TOKENS * 1000 * 2.5
    working = TOKENS * per_layer
    dequantised = 256 * 512 * 2  # the largest linear, w1, in bf16 while it computes

    def allocated(factor):
        forward = factor * (activations + log_probs) + loss_transient + dequantised
        backward = factor * (activations + working) + dequantised
        return weights + states + max(forward, backward, adapters * 2)

    assert bounds.low == pytest.approx(gib(allocated(0.9), 0.0, 0.5))
    assert bounds.expected == pytest.approx(gib(allocated(1.0), 0.1, 1.0))
    assert bounds.high == pytest.approx(gib(allocated(1.15), 0.2, 1.5))
    lora = training_memory(
        SMALL,
        method="lora",
        micro_batch=2,
        seq_len=64,
        activation_checkpointing=False,
        lora_rank=8,
    )
    assert bounds.expected < lora.expected


def test_checkpointing_accumulation_and_the_optimizer_change_the_peak():
    common = {"micro_batch": 4, "seq_len": 2048, "lora_rank": 64}
    plain = training_memory(LLAMA_3_2_1B, method="lora", activation_checkpointing=False, **common)
    checkpointed = training_memory(
        LLAMA_3_2_1B, method="lora", activation_checkpointing=True, **common
    )
    # a layer keeps its bf16 input only: 2·2048 bytes a token
    assert checkpointed.facts["activations_gib"] == pytest.approx(
        4 * 2048 * (16 * 2 * 2048 + 4 * 2048 + 16) / GIB
    )
    assert checkpointed.expected < plain.expected
    # full fine-tune of the 1B at a small batch: the gradients dominate the optimizer step;
    # accumulating keeps them through the next forward pass
    small = {"micro_batch": 1, "seq_len": 128, "activation_checkpointing": True}
    one = training_memory(LLAMA_3_2_1B, method="full", **small)
    two = training_memory(LLAMA_3_2_1B, method="full", gradient_accumulation=2, **small)
    assert one.facts["peak_moment"] == "optimizer step"
    assert two.facts["peak_moment"] == "forward"
    assert two.expected > one.expected
    in_backward = training_memory(LLAMA_3_2_1B, method="full", optimizer_in_bwd=True, **small)
    assert in_backward.facts["gradients_gib"] == pytest.approx(128256 * 2048 * 2 / GIB)
    assert in_backward.expected < one.expected
    sgd = training_memory(LLAMA_3_2_1B, method="full", optimizer="sgd", **small)
    assert sgd.facts["optimizer_states_gib"] == 0
    # fp32 doubles weights, gradients and states
    fp32 = training_memory(LLAMA_3_2_1B, method="full", dtype="fp32", **small)
    assert fp32.facts["weights_gib"] == pytest.approx(2 * one.facts["weights_gib"])
    # FSDP over 4 GPUs shards them
    sharded = training_memory(LLAMA_3_2_1B, method="full", ranks=4, **small)
    assert sharded.facts["weights_gib"] == pytest.approx(one.facts["weights_gib"] / 4)
    assert sharded.expected < one.expected
    with pytest.raises(ValueError, match="optimizer_in_bwd"):
        training_memory(LLAMA_3_2_1B, method="lora", optimizer_in_bwd=True, **small)
    with pytest.raises(ValueError, match="dtype 'fp16'"):
        training_memory(LLAMA_3_2_1B, method="full", dtype="fp16", **small)
    with pytest.raises(ValueError, match="method 'dora'"):
        training_memory(LLAMA_3_2_1B, method="dora", **small)


def test_lora_on_the_cpu_peaks_while_setting_up():
    # the checkpoint as read (bf16) beside the fp32 model outweighs LoRA's training
    bounds = training_memory(
        SMOLLM2_135M,
        method="lora",
        micro_batch=1,
        seq_len=32,
        dtype="fp32",
        activation_checkpointing=False,
        device="cpu",
        fused_optimizer=False,
    )
    assert bounds.facts["peak_moment"] == "setup"
    assert bounds.facts["checkpoint_gib"] == pytest.approx(134_515_008 * 2 / GIB)


def test_memory_arguments_from_a_finetune_config():
    config = {
        "model": {
            "_component_": "torchtune.models.qwen2._component_builders.lora_qwen2",
            "lora_attn_modules": ["q_proj", "k_proj", "v_proj"],
            "apply_lora_to_mlp": False,
            "lora_rank": 16,
            "quantize_base": True,
        },
        "batch_size": 8,
        "gradient_accumulation_steps": 4,
        "dtype": "bf16",
        "device": "cuda",
        "enable_activation_checkpointing": True,
        "optimizer": {"_component_": "torch.optim.AdamW", "fused": True},
        "loss": {"_component_": "torchtune.modules.loss.CEWithChunkedOutputLoss"},
    }
    arguments = estimate.memory_arguments(config)
    assert arguments == {
        "method": "qlora",
        "micro_batch": 8,
        "dtype": "bf16",
        "activation_checkpointing": True,
        "optimizer": "adamw",
        "optimizer_in_bwd": False,
        "fused_optimizer": True,
        "gradient_accumulation": 4,
        "loss_chunks": 8,
        "device": "cuda",
        "lora_rank": 16,
        "lora_targets": ("q_proj", "k_proj", "v_proj"),
        "lora_mlp": False,
        "lora_output": False,
        "lora_dropout": 0.0,
    }
    assert training_memory(QWEN_2_5_7B, seq_len=512, **arguments).expected > 0


def test_training_steps_as_torchtune_counts_them():
    assert estimate.training_steps(24, 4, 1, 2) == 12  # 6 an epoch
    assert estimate.training_steps(25, 4, 2, 3) == 9  # 6 batches, 3 steps an epoch
    assert estimate.training_steps(24, 4, 1, 2, max_steps_per_epoch=2) == 4
    assert estimate.training_steps(24, 4, 1, 1, ranks=2) == 3  # 12 rows a GPU
    assert estimate.training_steps(3, 4, 1, 5) == 0


def test_training_hours_by_hand():
    # matrix-product weights of the 1B: 16 × (10,485,760 + 50,331,648) = 973,078,528, and
    # the (tied) output layer's 262,668,288: 1,235,746,816
    n = 1_235_746_816
    full = estimate.training_hours(
        LLAMA_3_2_1B, tokens_per_step=4 * 512, steps=100, tflops=312, seq_len=512
    )
    per_token = 6 * n + 12 * 16 * 2048 * 512
    assert full.facts["flops_per_token"] == per_token
    flops = per_token * 2048 * 100
    assert tuple(full) == pytest.approx(
        (flops / (312e12 * 0.5) / 3600, flops / (312e12 * 0.35) / 3600, flops / 312e12 / 0.2 / 3600)
    )
    assert full.unit == "h" and str(full).endswith(f"h ({full.low:.3g} to {full.high:.3g})")
    lora = estimate.training_hours(
        LLAMA_3_2_1B,
        tokens_per_step=4 * 512,
        steps=100,
        tflops=312,
        seq_len=512,
        method="lora",
        gpus=2,
    )
    adapters = 42_467_328
    assert lora.facts["flops_per_token"] == 4 * n + 6 * adapters + 12 * 16 * 2048 * 512
    assert lora.expected < full.expected / 2  # two GPUs, and fewer FLOPs
    checkpointed = estimate.flops_per_token(LLAMA_3_2_1B, activation_checkpointing=True)
    assert checkpointed == 8 * n  # one forward pass more, no attention term without seq_len


def test_bounds_contain_and_print():
    bounds = Bounds(low=1.0, expected=2.0, high=3.0, facts={"a": [1]})
    assert 2.5 in bounds and 3.5 not in bounds and "x" not in bounds
    assert str(bounds) == "2 GiB (1 to 3)"
    assert bounds.facts["a"] == (1,)  # frozen


def test_the_module_never_imports_torch():
    code = (
        "import sys, cruijff_torchtune.estimate as e\n"
        "e.training_memory({'model_type': 'llama', 'hidden_size': 8, 'intermediate_size': 8,"
        " 'num_hidden_layers': 1, 'num_attention_heads': 2, 'vocab_size': 8},"
        " method='lora', micro_batch=1, seq_len=8, activation_checkpointing=False)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- with torch: the counts against torchtune itself ---------------------------------------


def torchtune_model(config: dict, *, lora: bool, layers: int, **lora_settings):
    """torchtune's model for a config, as cruijff builds it (models.py's arguments)."""
    from cruijff_torchtune.models import ARCHITECTURES, BUILDERS

    config = {**config, "num_hidden_layers": layers}
    family, describe = ARCHITECTURES[config["architectures"][0]]
    family, _, args = describe(config)
    path = BUILDERS.format(family=family, name=f"lora_{family}" if lora else family)
    module, name = path.rsplit(".", 1)
    builder = getattr(importlib.import_module(module), name)
    if lora:
        settings = {
            "lora_attn_modules": ["q_proj", "v_proj", "output_proj"],
            "apply_lora_to_mlp": True,
            "lora_rank": 8,
            "lora_alpha": 16,
            **lora_settings,
        }
        return builder(**args, **settings)
    return builder(**args)


TINY = {
    "llama tied": llama(
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=500,
        tie_word_embeddings=True,
    ),
    "qwen2": {
        **QWEN_2_5_7B,
        "hidden_size": 256,
        "intermediate_size": 512,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 1000,
    },
    "mistral": {
        **MISTRAL_7B,
        "hidden_size": 256,
        "intermediate_size": 512,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "vocab_size": 300,
    },
}


@pytest.mark.parametrize("name", TINY)
def test_counts_match_torchtune_builders(name):
    pytest.importorskip("torchtune")
    from torchtune.modules.peft import get_adapter_params

    config = TINY[name]
    model = torchtune_model(config, lora=False, layers=config["num_hidden_layers"])
    assert sum(p.numel() for p in model.parameters()) == parameter_count(config)
    lora = torchtune_model(config, lora=True, layers=config["num_hidden_layers"])
    adapters = sum(p.numel() for p in get_adapter_params(lora).values())
    assert adapters == lora_parameters(config, 8)


def saved_bytes(config: dict, *, layers: int, method: str, dtype: str, checkpointing=False, **lora):
    """Bytes autograd keeps after the forward pass and the loss (outside the parameters), for
    2 rows of 32 tokens, as torchtune's recipes compute them."""
    import torch
    from torchtune import modules, training
    from torchtune.modules.loss import CEWithChunkedOutputLoss
    from torchtune.modules.peft import get_adapter_params, set_trainable_params

    torch.manual_seed(0)
    if method != "full":
        lora = {**lora, "quantize_base": method == "qlora"}
    with training.set_default_dtype(training.get_dtype(dtype, torch.device("cpu"))):
        model = torchtune_model(config, lora=method != "full", layers=layers, **lora)
    if method != "full":
        set_trainable_params(model, get_adapter_params(model))
    if checkpointing:
        training.set_activation_checkpointing(
            model, auto_wrap_policy={modules.TransformerSelfAttentionLayer}
        )
    loss_fn = CEWithChunkedOutputLoss()
    model.set_num_output_chunks(loss_fn.num_output_chunks)
    parameters, kept = set(), {}  # the model's own tensors (the RoPE cache too): not kept
    for parameter in [*model.parameters(), *model.buffers()]:
        with contextlib.suppress(RuntimeError):  # an NF4 weight has no plain storage
            parameters.add(parameter.untyped_storage().data_ptr())

    def pack(tensor):
        try:
            storage = tensor.untyped_storage()
            pointer = storage.data_ptr()
        except RuntimeError:
            return tensor
        if pointer not in parameters:
            kept[pointer] = storage.nbytes()
        return tensor

    vocab = config["vocab_size"]
    tokens = torch.randint(0, vocab, (2, 32))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss_fn(model(tokens), torch.randint(0, vocab, (2, 32)))
    return sum(kept.values())


CASES = [
    ("llama tied", "full", "fp32", {}),
    ("llama tied", "full", "bf16", {}),
    ("llama tied", "lora", "fp32", {}),
    ("llama tied", "lora", "bf16", {"lora_dropout": 0.1}),
    ("llama tied", "qlora", "bf16", {}),
    ("qwen2", "full", "bf16", {}),
    ("qwen2", "lora", "bf16", {"lora_attn_modules": ["k_proj"], "apply_lora_to_mlp": False}),
    ("mistral", "lora", "fp32", {"lora_attn_modules": ["output_proj"]}),
]


@pytest.mark.parametrize(("name", "method", "dtype", "lora"), CASES)
def test_activations_are_what_autograd_keeps(name, method, dtype, lora):
    pytest.importorskip("torchtune")
    config = TINY[name]
    one = saved_bytes(config, layers=1, method=method, dtype=dtype, **lora)
    two = saved_bytes(config, layers=2, method=method, dtype=dtype, **lora)
    expected = estimate.layer_activation_bytes(
        config,
        method=method,
        dtype=dtype,
        lora_rank=8,
        lora_targets=lora.get("lora_attn_modules", estimate.LORA_TARGETS),
        lora_mlp=lora.get("apply_lora_to_mlp", True),
        lora_dropout=lora.get("lora_dropout", 0.0),
    )
    rope = estimate.rope_bytes_per_position(config, dtype=dtype)  # Qwen2's, in bf16
    assert (two - one - 32 * rope) / 64 == expected  # a layer's, per token
    if method == "full":
        # the whole: every layer, the final norm and output layer's input, the fp32 log-probs
        bounds = training_memory(
            {**config, "num_hidden_layers": 2},
            method=method,
            micro_batch=2,
            seq_len=32,
            dtype=dtype,
            activation_checkpointing=False,
        )
        counted = (bounds.facts["activations_gib"] + bounds.facts["loss_kept_gib"]) * GIB
        assert counted == pytest.approx(two, rel=0.01)


def test_checkpointed_layers_keep_their_input():
    pytest.importorskip("torchtune")
    config = TINY["llama tied"]
    for dtype, p in (("fp32", 4), ("bf16", 2)):
        one = saved_bytes(config, layers=1, method="lora", dtype=dtype, checkpointing=True)
        two = saved_bytes(config, layers=2, method="lora", dtype=dtype, checkpointing=True)
        assert (two - one) / 64 == p * 256


def test_a_model_folder_holds_what_its_config_counts(tiny_model):
    config = json.loads((tiny_model / "config.json").read_text())
    assert safetensors_parameters(tiny_model) == parameter_count(config)  # tied: once
    assert estimate.parameter_mismatch(tiny_model, config) is None


# --- a real run on the CPU --------------------------------------------------------------------

RUNNER = r"""
import json, runpy, sys
from pathlib import Path

def status(key):  # bytes; VmHWM is this program's peak: ru_maxrss would keep the parent's
    with open("/proc/self/status") as lines:
        return next(int(l.split()[1]) * 1024 for l in lines if l.startswith(key + ":"))

import torch
base = status("VmRSS")
import torchtune
from omegaconf import OmegaConf

config, recipe = OmegaConf.load(sys.argv[1]), sys.argv[2]
path = Path(torchtune.__file__).parent.parent / "recipes" / f"{recipe}.py"
found = runpy.run_path(str(path), run_name="recipe")
cls = next(v for k, v in found.items() if isinstance(v, type) and k.endswith("SingleDevice"))
recipe = cls(cfg=config)
recipe.save_checkpoint = lambda *args, **kwargs: None  # training's memory, not saving's
recipe.setup(cfg=config)
recipe.train()
peak = status("VmHWM")
dataset = recipe._dataloader.dataset
longest = max(len(dataset[i]["tokens"]) for i in range(len(dataset)))
print("RESULT " + json.dumps({"base": base, "peak": peak, "longest": longest}))
"""

WORDS = [f"{a}{b}" for a in ("ap", "pe", "fi", "pl", "ki", "li") for b in ("ple", "ar", "g", "m")]


def train_on_the_cpu(tmp_path: Path, model: Path, finetune: str) -> tuple[dict, dict, Path]:
    """Two optimizer steps of a cruijff-built config on the CPU, in a process of its own:
    the config, its peak RSS and the RSS it had once torch was imported, the rows' longest."""
    import yaml

    from cruijff_torchtune.config import build
    from cruijff_torchtune.models import read_model

    data = tmp_path / "words.json"
    data.write_text(json.dumps({"train": [{"input": w, "output": w.upper()} for w in WORDS]}))
    built = build(
        run_name="estimate",
        output_dir=tmp_path / f"run-{model.name}",
        model=read_model(model),
        data=data,
        controls={
            "finetune": finetune,
            "batch_size": 4,
            "epochs": 1,
            "max_steps_per_epoch": 2,
            "prompt": "Capitalize the word: {input}",
            "system_prompt": "You are a helpful assistant.",
            "dataset_type": "chat_completion",
            "log_every_n_steps": 1,
        },
        run={},
        gpus=0,
    )
    config_path = tmp_path / f"{model.name}.yaml"
    config_path.write_text(yaml.safe_dump(built.config))
    assert built.recipe == f"{finetune}_finetune_single_device"  # torchtune's own
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(config_path), built.recipe],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    return built.config, json.loads(line.removeprefix("RESULT ")), model / "config.json"


@pytest.mark.slow
def test_cpu_bounds_contain_a_real_runs_memory(tmp_path, tiny_model):
    pytest.importorskip("torchtune")
    from tinymodel import build_tiny_llama

    # 76M parameters (h 1024, 8 layers): a full fp32 fine-tune with AdamW holds 16 B each,
    # 1.13 GiB, well above the framework's own (bf16 on the CPU is too slow for a test)
    big = build_tiny_llama(tmp_path / "big", hidden=1024, layers=8)
    measured, estimates = {}, {}
    for name, model in (("tiny", tiny_model), ("big", big)):
        config, run, model_config = train_on_the_cpu(tmp_path, model, "full")
        arguments = estimate.memory_arguments(config)
        assert arguments["device"] == "cpu" and arguments["dtype"] == "fp32"
        estimates[name] = training_memory(
            json.loads(model_config.read_text()), seq_len=run["longest"], **arguments
        )
        measured[name] = (run["peak"] - run["base"]) / GIB
    report = {name: (round(measured[name], 3), str(estimates[name])) for name in measured}
    for name in measured:
        assert measured[name] in estimates[name], report
    # the model's own terms, the framework's overhead taken away (the tiny model's run is
    # nearly all overhead): inside the bounds without their overhead
    low, high = estimate.OVERHEAD_GIB["cpu"][0], estimate.OVERHEAD_GIB["cpu"][2]
    own = measured["big"] - measured["tiny"]
    assert estimates["big"].low - low <= own <= estimates["big"].high - high, report
