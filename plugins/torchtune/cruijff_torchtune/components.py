"""The torchtune components a generated ``finetune.yaml`` names: a tokenizer that uses the model
folder's own tokenizer and chat template, and a dataset of cruijff_kit's ``{input, output}`` rows.

They run inside training jobs (torch and transformers are there); nothing imports this module
at planning time. Formatting follows cruijff_kit's: ``chat_completion`` goes through the folder's
chat template (a system turn only when the system prompt is not empty), the same template that
evaluation later applies, so what is trained is exactly what the evaluated model is sent;
``text_completion`` tokenizes ``prompt + output`` as one text with the tokenizer's special
tokens, no system prompt and no EOS. Rows are never cut to ``tokenizer.max_seq_len`` (cruijff_kit
does not cut them either); ``dataset.max_seq_len`` cuts them where a config asks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

CROSS_ENTROPY_IGNORE_IDX = -100  # torchtune's value: labels here are not trained on
DATASET_TYPES = ("chat_completion", "text_completion")


class ChatTokenizer:
    """A torchtune model tokenizer backed by the model folder's transformers tokenizer."""

    def __init__(self, path: str, max_seq_len: int | None = None) -> None:
        from transformers import AutoTokenizer

        self.hf = AutoTokenizer.from_pretrained(path)
        self.max_seq_len = max_seq_len
        self.eos_id: int = self.hf.eos_token_id
        self.bos_id: int | None = self.hf.bos_token_id
        self.pad_id: int = self.hf.pad_token_id if self.hf.pad_token_id is not None else self.eos_id
        self.stop_tokens = [self.eos_id]
        self.vocab_size = len(self.hf)

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        ids = list(self.hf.encode(text, add_special_tokens=False))
        if add_bos and self.bos_id is not None:
            ids = [self.bos_id, *ids]
        return [*ids, self.eos_id] if add_eos else ids

    def decode(self, token_ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self.hf.decode(list(token_ids), skip_special_tokens=skip_special_tokens)

    def chat(self, messages: list[dict[str, str]], *, generation_prompt: bool) -> list[int]:
        """Token ids of ``messages`` through the folder's chat template."""
        encoded = self.hf.apply_chat_template(
            messages, add_generation_prompt=generation_prompt, tokenize=True
        )
        ids = encoded["input_ids"] if isinstance(encoded, Mapping) else encoded
        return list(ids)

    def prompt_and_answer(
        self, prompt: str, answer: str, *, system_prompt: str, dataset_type: str
    ) -> tuple[list[int], list[int]]:
        """The tokens of the prompt as evaluation sends it, and of the answer to learn."""
        if dataset_type == "text_completion":
            # one text, as cruijff_kit encodes it: special tokens, no system prompt, no EOS
            full = list(self.hf.encode(prompt + answer, add_special_tokens=True))
            prompt_ids = list(self.hf.encode(prompt, add_special_tokens=True))
            # the prompt's tokens are those it shares with the whole text (BPE may merge
            # across the boundary); the templated tokens that follow are the answer
            shared = 0
            for mine, theirs in zip(prompt_ids, full, strict=False):
                if mine != theirs:
                    break
                shared += 1
            return full[:shared], full[shared:]
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        messages.append({"role": "user", "content": prompt})
        prompt_ids = self.chat(messages, generation_prompt=True)
        full = self.chat(
            [*messages, {"role": "assistant", "content": answer}], generation_prompt=False
        )
        if full[: len(prompt_ids)] != prompt_ids:
            # a template that renders the turns differently once an answer follows
            return prompt_ids, self.encode(answer, add_eos=True)
        return prompt_ids, full[len(prompt_ids) :]


def chat_tokenizer(path: str, max_seq_len: int | None = None) -> ChatTokenizer:
    """Builder named in ``finetune.yaml``: ``cruijff_torchtune.components.chat_tokenizer``."""
    return ChatTokenizer(path, max_seq_len)


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


class PromptDataset:
    """``{input, output}`` rows formatted with ``prompt`` and tokenized; the prompt's labels
    are masked unless ``train_on_input``. ``max_samples`` keeps the first rows only (cruijff_kit's
    ``splits.train``); ``max_seq_len`` cuts each row (never the tokenizer's)."""

    def __init__(
        self,
        tokenizer: ChatTokenizer,
        *,
        source: str,
        split: str = "train",
        dataset_type: str = "chat_completion",
        prompt: str = "{input}",
        system_prompt: str = "",
        train_on_input: bool = False,
        max_seq_len: int | None = None,
        max_samples: int | None = None,
    ) -> None:
        if dataset_type not in DATASET_TYPES:
            raise ValueError(f"dataset_type must be one of {DATASET_TYPES}, not {dataset_type!r}")
        self.tokenizer, self.rows = tokenizer, read_rows(source, split)
        if max_samples is not None:
            self.rows = self.rows[:max_samples]
        self.dataset_type, self.prompt, self.system_prompt = dataset_type, prompt, system_prompt
        self.train_on_input = train_on_input
        self.max_seq_len = max_seq_len

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        row = self.rows[index]
        prompt = format_prompt(self.prompt, row)
        prompt_ids, answer_ids = self.tokenizer.prompt_and_answer(
            prompt,
            str(row["output"]),
            system_prompt=self.system_prompt,
            dataset_type=self.dataset_type,
        )
        tokens = prompt_ids + answer_ids
        masked = [CROSS_ENTROPY_IGNORE_IDX] * len(prompt_ids)
        labels = (prompt_ids if self.train_on_input else masked) + answer_ids
        if self.max_seq_len:
            tokens, labels = tokens[: self.max_seq_len], labels[: self.max_seq_len]
        return {"tokens": tokens, "labels": labels}


def prompt_dataset(tokenizer: ChatTokenizer, **settings: Any) -> PromptDataset:
    """Builder named in ``finetune.yaml``: ``cruijff_torchtune.components.prompt_dataset``."""
    return PromptDataset(tokenizer, **settings)


class BothLoggers:
    """torchtune's disk log (which cruijff reads back) and a W&B logger, side by side."""

    def __init__(self, *loggers: Any) -> None:
        self.loggers = loggers

    def log(self, name: str, data: Any, step: int) -> None:
        for logger in self.loggers:
            logger.log(name, data, step)

    def log_dict(self, payload: Mapping[str, Any], step: int) -> None:
        for logger in self.loggers:
            logger.log_dict(payload, step)

    def log_config(self, config: Any) -> None:
        for logger in self.loggers:
            if hasattr(logger, "log_config"):
                logger.log_config(config)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


def metric_logger(
    log_dir: str, run_name: str | None = None, wandb_project: str | None = None
) -> Any:
    """Builder named in ``finetune.yaml``: always torchtune's disk logger; with a W&B project
    and wandb installed, also W&B in offline mode, the run named after the cruijff run."""
    import importlib.util
    import os

    from torchtune.training.metric_logging import DiskLogger

    disk = DiskLogger(log_dir=log_dir)
    if not wandb_project or importlib.util.find_spec("wandb") is None:
        return disk
    from torchtune.training.metric_logging import WandBLogger

    os.environ.setdefault("WANDB_MODE", "offline")  # clusters' nodes rarely reach the internet
    return BothLoggers(
        disk, WandBLogger(project=wandb_project, log_dir=log_dir, name=run_name, mode="offline")
    )
