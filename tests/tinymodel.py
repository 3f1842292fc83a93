"""A tiny Llama-architecture HF model folder, built at test time: random weights and a byte-level
BPE tokenizer trained here, with a ChatML chat template (SmolLM2's). No download, nothing binary
committed. Tests that need torch and transformers import this; others never do.
"""

from __future__ import annotations

import json
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
WORDS = [
    "apple",
    "pear",
    "fig",
    "plum",
    "kiwi",
    "lime",
    "lemon",
    "mango",
    "melon",
    "peach",
    "grape",
    "cherry",
    "berry",
    "date",
    "olive",
    "capitalize",
    "the",
    "given",
    "word",
    "answer",
    "you",
    "are",
    "a",
    "helpful",
    "assistant",
    "system",
    "user",
]


def corpus() -> list[str]:
    lines = []
    for word in WORDS:
        lines += [word, word.upper(), word.capitalize(), f"Capitalize the word: {word}"]
    return lines * 4


def build_tokenizer(folder: Path):
    """Train a small byte-level BPE tokenizer and save it as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(folder)
    return fast


def build_tiny_llama(
    folder: Path, *, layers: int = 2, hidden: int = 64, seed: int = 0, rope_theta: float = 1e4
) -> Path:
    """Write a tiny Llama model folder (config.json, model.safetensors, tokenizer files)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rope_theta=rope_theta,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder, safe_serialization=True)
    # generation defaults that keep evaluations deterministic and short
    generation = folder / "generation_config.json"
    settings = json.loads(generation.read_text()) if generation.exists() else {}
    settings.update(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    generation.write_text(json.dumps(settings, indent=2))
    return folder
