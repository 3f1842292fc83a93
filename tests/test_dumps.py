"""cruijff.dumps writes, entry by entry and from its cache, the bytes one ``yaml.dump`` or
``json.dumps(indent=2)`` of the whole would: for random nested configs, frozen or plain, and
again when the same entries come back (a second run of a sweep)."""

from __future__ import annotations

import json
import random

import pytest
import yaml

from cruijff.dumps import json_object, json_sourced, yaml_block
from cruijff.records import freeze

DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
STRINGS = [
    "plain",
    "",
    "yes",
    "null",
    "1e-4",
    "0123",
    "a: b",
    "- item",
    "#comment",
    "multi\nline\n",
    "trailing ",
    "é ünïcode ✓",
    "tab\there",
    "quote ' and \"",
    "long " * 40,
    "/abs/path/to/model",
    # plain-looking words, some of which YAML 1.1 reads as something else
    "/tmp/x/runs/rank1_lr1e-5_seed0/epoch_0",
    "rank8_lr1e-4",
    "model.safetensors",
    "0x1F",
    "1_000",
    "0o17",
    "1.",
    "1e5",
    "1.0e+5",
    "2001-12-14",
    "True",
    "NULL",
    "on",
    "y",
    "inf",
    "nan",
    "_leading",
    "trailing-",
    "a/b/",
    "x" * 300,
    "12:30",
    "~",
]
SCALARS = [0, 1, -7, 2**70, -(10**30), 1.0, 1e-5, 3e-4, 0.1, 1e17, 1e-300, -0.0, 1.5e300]
SCALARS += [float("inf"), float("-inf"), float("nan"), True, False, None, *STRINGS]


def value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.random()
    if depth < 3 and kind < 0.2:
        return {rng.choice(STRINGS) or "k": value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if depth < 3 and kind < 0.35:
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return rng.choice(SCALARS)


def config(rng: random.Random) -> dict:
    keys = ["model", "lr", "seed", "output_dir", "dataset", "épochs", "a key", "optimizer"]
    return {key: value(rng) for key in rng.sample(keys, rng.randint(1, len(keys)))}


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("frozen", [False, True])
def test_an_entry_by_entry_dump_is_the_dump_of_the_whole(seed: int, frozen: bool) -> None:
    rng = random.Random(seed)
    for _ in range(3):  # the later ones find earlier entries in the cache
        data = config(rng)
        given = freeze(data) if frozen else data
        for unicode in (False, True):
            whole = yaml.dump(
                data, Dumper=DUMPER, sort_keys=False, width=100, allow_unicode=unicode
            )
            assert yaml_block(given, allow_unicode=unicode) == whole
        assert json_object(given) == json.dumps(data, indent=2)


def test_values_the_writers_tell_apart_are_not_confused_by_the_cache() -> None:
    for one in (1, 1.0, True, "1", [1], {"x": 1}, None):
        data = {"v": one}
        assert yaml_block(freeze(data)) == yaml.dump(data, Dumper=DUMPER, sort_keys=False)
        assert json_object(freeze(data)) == json.dumps(data, indent=2)


def test_keys_that_are_not_strings_are_written_as_the_writers_do() -> None:
    for key in (1, True, 1.0, None, 10**130):
        data = {key: "on", "x": {10**130: 1, "y": [1]}}
        assert yaml_block(freeze(data)) == yaml.dump(data, Dumper=DUMPER, sort_keys=False)
        assert json_object(freeze(data)) == json.dumps(data, indent=2)
    long_key = {"k" * 130: 1, "n": {"m" * 125: True}}
    assert yaml_block(long_key) == yaml.dump(long_key, Dumper=DUMPER, sort_keys=False)


def test_empty_mappings_are_written_as_the_writers_do() -> None:
    assert yaml_block({}) == yaml.dump({}, Dumper=DUMPER, sort_keys=False)
    assert json_object({}) == json.dumps({}, indent=2)


PLAIN = ["plain", "/abs/path/to/model", "rank8_lr1e-4", "model.safetensors", "_x", "a/b/", "yes"]
PLAIN += [0, 7, -3, 1e-5, 0.1, 1.0, 2**70, True, False, None, "x" * 150, "True", "1e5"]


def plain_value(rng: random.Random, depth: int = 0) -> object:
    """Mostly what generated configs hold: sections of plain words and numbers, lists of
    them, nested a few deep, with now and then a value the dumper writes otherwise."""
    kind = rng.random()
    if depth < 4 and kind < 0.3:
        keys = ["a", "lr", "output_dir", "lora_attn_modules", "k" * 121, "null", "x y", "é"]
        return {rng.choice(keys): plain_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if depth < 4 and kind < 0.45:
        return [rng.choice(PLAIN) for _ in range(rng.randint(0, 3))]
    if kind > 0.97:
        return rng.choice(["a: b", "two words", "", [{"a": 1}], {}])
    return rng.choice(PLAIN)


@pytest.mark.parametrize("seed", range(60))
def test_sections_written_directly_are_the_dumpers_text(seed: int) -> None:
    rng = random.Random(seed)
    data = {name: plain_value(rng) for name in ("model", "checkpointer", "seed", "dataset")}
    for given in (data, freeze(data)):
        assert yaml_block(given) == yaml.dump(data, Dumper=DUMPER, sort_keys=False, width=100)


@pytest.mark.parametrize("seed", range(20))
def test_a_provenance_is_the_json_of_its_settings(seed: int) -> None:
    rng = random.Random(seed)
    settings = [
        (rng.choice(["model.lora_rank", "lr", "é.path", "seed"]), value(rng), rng.choice(STRINGS))
        for _ in range(rng.randint(0, 8))
    ]
    settings += [("resources.gpus", 0, "default"), ("data.file", "/x/data.json", "data")]
    expected = {path: {"value": v, "source": source} for path, v, source in settings}
    assert json_sourced(settings) == json.dumps(expected, indent=2)
    assert json_sourced(settings) == json_object(expected)
    assert json_sourced([]) == json.dumps({}, indent=2)
