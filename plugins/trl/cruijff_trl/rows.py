"""How a row of cruijff_kit's ``{input, output}`` data becomes the tokens TRL trains on: the rule
the torchtune tool follows (``cruijff_torchtune.components``), so that either trainer learns
exactly what the evaluation later sends (a test compares their token ids and labels).

``chat_completion`` goes through the model folder's own chat template (a system turn only when
the system prompt is not empty): the prompt's tokens are the template's with the generation
prompt, the answer's what the template adds after them. ``text_completion`` tokenizes
``prompt + output`` as one text with the tokenizer's special tokens, no system prompt and no
EOS. The prompt's tokens are not trained on (label -100) unless ``train_on_input``.
Runs inside training jobs only (the tokenizer is a transformers one).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

IGNORE = -100
"""The label of a token not trained on (torch's cross-entropy ``ignore_index``)."""


def read_rows(path: str | Path, split: str) -> list[dict[str, Any]]:
    """The rows of one split: a ``{"train": [...], ...}`` file or a bare list (all of it)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, list):
        return data
    if split not in data:
        raise ValueError(f"{path} has no {split!r} split (it has: {', '.join(data)})")
    return data[split]


def format_prompt(prompt: str, row: Mapping[str, Any]) -> str:
    """The user text of a row: ``prompt.format(**row)``, as cruijff_kit formats it; a prompt
    that this cannot format (other braces, a field the row lacks) gets its ``{input}``
    replaced instead."""
    try:
        return prompt.format(**row)
    except (KeyError, IndexError, ValueError, AttributeError):
        return prompt.replace("{input}", str(row["input"]))


def _chat(tokenizer: Any, messages: list[dict[str, str]], *, generation_prompt: bool) -> list:
    encoded = tokenizer.apply_chat_template(
        messages, add_generation_prompt=generation_prompt, tokenize=True
    )
    return list(encoded["input_ids"] if isinstance(encoded, Mapping) else encoded)


def prompt_and_answer(
    tokenizer: Any, prompt: str, answer: str, *, system_prompt: str, dataset_type: str
) -> tuple[list[int], list[int]]:
    """The tokens of the prompt as evaluation sends it, and of the answer to learn."""
    if dataset_type == "text_completion":
        full = list(tokenizer.encode(prompt + answer, add_special_tokens=True))
        prompt_ids = list(tokenizer.encode(prompt, add_special_tokens=True))
        # the prompt's tokens are those it shares with the whole text (BPE may merge across
        # the boundary); what follows is the answer
        shared = 0
        for mine, theirs in zip(prompt_ids, full, strict=False):
            if mine != theirs:
                break
            shared += 1
        return full[:shared], full[shared:]
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": prompt})
    prompt_ids = _chat(tokenizer, messages, generation_prompt=True)
    full = _chat(
        tokenizer, [*messages, {"role": "assistant", "content": answer}], generation_prompt=False
    )
    if full[: len(prompt_ids)] != prompt_ids:
        # a template that renders the turns differently once an answer follows
        answer_ids = list(tokenizer.encode(answer, add_special_tokens=False))
        return prompt_ids, [*answer_ids, tokenizer.eos_token_id]
    return prompt_ids, full[len(prompt_ids) :]


def tokenize(tokenizer: Any, rows: list[Mapping[str, Any]], data: Mapping[str, Any]) -> list[dict]:
    """Every row as ``{"input_ids", "labels"}`` (a tokenized dataset TRL trains on as it is;
    labels of tokens not trained on are -100), formatted as the ``data`` section of a
    ``trl_config.yaml`` says."""
    made = []
    for row in rows:
        prompt_ids, answer_ids = prompt_and_answer(
            tokenizer,
            format_prompt(data.get("prompt", "{input}"), row),
            str(row["output"]),
            system_prompt=data.get("system_prompt", ""),
            dataset_type=data["dataset_type"],
        )
        shown = prompt_ids if data.get("train_on_input") else [IGNORE] * len(prompt_ids)
        made.append({"input_ids": prompt_ids + answer_ids, "labels": shown + answer_ids})
    return made
