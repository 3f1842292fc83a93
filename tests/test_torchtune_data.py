"""The training data as the model sees it: the folder's own chat template, masked prompts,
truncation; exactly the prompt that evaluation later sends."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")

from cruijff_torchtune.components import CROSS_ENTROPY_IGNORE_IDX, ChatTokenizer, PromptDataset


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "words.json"
    rows = [{"input": "apple", "output": "APPLE"}, {"input": "fig", "output": "FIG"}]
    path.write_text(json.dumps({"train": rows, "test": rows[:1]}))
    return path


def dataset(tokenizer, data, **settings):
    settings.setdefault("prompt", "Capitalize the word: {input}")
    settings.setdefault("system_prompt", "You are a helpful assistant.")
    return PromptDataset(tokenizer, source=str(data), **settings)


def test_chat_rows_use_the_folders_template_and_mask_the_prompt(tiny_model, data):
    tokenizer = ChatTokenizer(str(tiny_model))
    sample = dataset(tokenizer, data)[0]
    text = tokenizer.decode(sample["tokens"], skip_special_tokens=False)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nCapitalize the word: apple<|im_end|>\n"
        "<|im_start|>assistant\nAPPLE<|im_end|>\n"
    )
    # what evaluation sends: the same template with the generation prompt
    prompt = tokenizer.hf.apply_chat_template(
        [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Capitalize the word: apple"},
        ],
        add_generation_prompt=True,
        tokenize=True,
    )["input_ids"]
    assert sample["tokens"][: len(prompt)] == list(prompt)
    labels = sample["labels"]
    assert labels[: len(prompt)] == [CROSS_ENTROPY_IGNORE_IDX] * len(prompt)
    learned = [t for t in labels if t != CROSS_ENTROPY_IGNORE_IDX]
    assert tokenizer.decode(learned, skip_special_tokens=False) == "APPLE<|im_end|>\n"


def test_train_on_input_learns_the_prompt_too(tiny_model, data):
    tokenizer = ChatTokenizer(str(tiny_model))
    sample = dataset(tokenizer, data, train_on_input=True)[0]
    assert sample["labels"] == sample["tokens"]


def test_text_completion_is_one_text_without_eos_and_braces_in_prompts(tiny_model, data):
    # cruijff_kit's text completion: encode(prompt + output) with the tokenizer's special
    # tokens (this one adds none), no system prompt, no EOS
    tokenizer = ChatTokenizer(str(tiny_model))
    sample = dataset(
        tokenizer, data, dataset_type="text_completion", prompt="{input} -> {not a field} "
    )[1]
    text = tokenizer.decode(sample["tokens"], skip_special_tokens=False)
    assert text == "fig -> {not a field} FIG"  # no field of that name: {input} replaced
    assert sample["tokens"] == tokenizer.hf.encode(text, add_special_tokens=True)
    learned = [t for t in sample["labels"] if t != CROSS_ENTROPY_IGNORE_IDX]
    assert tokenizer.decode(learned).strip() == "FIG"
    # a prompt that format(**row) reads, as cruijff_kit formats it: {{ is a brace
    braces = dataset(tokenizer, data, dataset_type="text_completion", prompt="{{x}} {input}:")[0]
    assert tokenizer.decode(braces["tokens"]) == "{x} apple:APPLE"


def test_max_samples_keeps_the_first_rows_and_the_tokenizer_cuts_nothing(tiny_model, data):
    tokenizer = ChatTokenizer(str(tiny_model), max_seq_len=3)  # cruijff_kit's: no effect
    first = dataset(tokenizer, data, max_samples=1)
    assert len(first) == 1 and first.rows[0]["input"] == "apple"
    assert len(first[0]["tokens"]) > 3


def test_max_seq_len_really_truncates(tiny_model, data):
    tokenizer = ChatTokenizer(str(tiny_model))
    full = dataset(tokenizer, data)[0]
    cut = dataset(tokenizer, data, max_seq_len=7)[0]
    assert len(full["tokens"]) > 7 and len(cut["tokens"]) == len(cut["labels"]) == 7
    assert cut["tokens"] == full["tokens"][:7]


def test_splits_and_bare_lists(tiny_model, data, tmp_path):
    tokenizer = ChatTokenizer(str(tiny_model))
    assert len(dataset(tokenizer, data, split="test")) == 1
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps([{"input": "a", "output": "A"}] * 3))
    assert len(dataset(tokenizer, bare)) == 3
    with pytest.raises(ValueError, match="no 'validation' split"):
        dataset(tokenizer, data, split="validation")
