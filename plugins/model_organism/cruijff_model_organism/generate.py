"""Generating a model-organism dataset from a checked block, as cruijff_kit 0.3.4 does.

:func:`generate` returns ``{"train": [...], "validation": [...], ["validation_ood_<i>": [...],]
"metadata": {...}}`` with rows ``{"input", "output", "metadata": {}}``: the same rows in the
same order as cruijff_kit for the same block, and the same metadata but for ``generator``.
Deterministic: the sequences come from ``Random(seed)`` (OOD entry i: ``Random(f"{seed}.ood.{i}")``)
and the labels depend only on the seed and the sequence, so a sequence keeps its label across
designs and splits.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from typing import Any

from cruijff_model_organism.rules import (
    ALPHABETS,
    DEFAULT_FORMAT,
    RULES,
    format_sequence,
    space_size,
)
from cruijff_model_organism.spec import DEFAULT_SPLIT_RATIO, require_valid

GENERATOR = "cruijff_model_organism"
"""The ``metadata.generator`` of the files made here (cruijff_kit names its own script)."""

ENUMERATION_CEILING = 1 << 20
"""Up to this many possible sequences, shuffle them all; above it, draw until N are new."""


def sample(input_type: str, k: int, n: int, rng: random.Random) -> list[tuple[str, ...]]:
    """``n`` distinct sequences of length ``k``, in cruijff_kit's order for the same ``rng``."""
    alphabet = ALPHABETS[input_type]
    if space_size(input_type, k, cap=ENUMERATION_CEILING) <= ENUMERATION_CEILING:
        population = list(itertools.product(alphabet, repeat=k))
        rng.shuffle(population)
        return population[:n]
    seen: set[tuple[str, ...]] = set()
    out = []
    while len(out) < n:
        candidate = tuple(rng.choices(alphabet, k=k))
        if candidate not in seen:
            seen.add(candidate)
            out.append(candidate)
    return out


def rows(
    sequences: Sequence[tuple[str, ...]], rule: str, kwargs: Mapping[str, Any], fmt: str
) -> list[dict[str, Any]]:
    """One row per sequence: its formatted input, its label, empty metadata."""
    label = RULES[rule].label
    return [
        {"input": format_sequence(seq, fmt), "output": label(seq, kwargs), "metadata": {}}
        for seq in sequences
    ]


def generate(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The dataset of the block ``spec`` (``output_path`` is not read).

    Raises :class:`cruijff_model_organism.spec.InvalidSpec` listing every error of the block.
    """
    require_valid(spec)
    input_type, rule_name, k, n, seed, design = (
        spec["input_type"],
        spec["rule"],
        spec["k"],
        spec["N"],
        spec["seed"],
        spec["design"],
    )
    fmt = spec.get("fmt", DEFAULT_FORMAT)
    rule = RULES[rule_name]
    given = dict(spec.get("rule_kwargs") or {})
    shown = {key: value for key, value in given.items() if key != "seed"}
    # an explicit rule_kwargs.seed labels the primary splits only; OOD entries use the seed
    kwargs = {"seed": seed, **given}
    sequences = sample(input_type, k, n, random.Random(seed))

    metadata: dict[str, Any] = {
        "generator": GENERATOR,
        "input_type": input_type,
        "rule": rule_name,
        "rule_kwargs": shown,
        "k": k,
        "format": fmt,
        "N": n,
        "seed": seed,
        "design": design,
    }
    if rule.prepare is not None:
        state = rule.prepare(input_type, k, seed, kwargs)
        kwargs.update(state)
        metadata.update(state)

    if design == "memorization":
        train = rows(sequences, rule_name, kwargs, fmt)
        # equal to train, but not the same objects: a caller editing one leaves the other
        validation = [{**row, "metadata": {}} for row in train]
        return {"train": train, "validation": validation, "metadata": metadata}

    split_ratio = spec.get("split_ratio", DEFAULT_SPLIT_RATIO)
    n_train = round(n * split_ratio)
    metadata["split_ratio"] = split_ratio
    data: dict[str, Any] = {
        "train": rows(sequences[:n_train], rule_name, kwargs, fmt),
        "validation": rows(sequences[n_train:], rule_name, kwargs, fmt),
    }
    if design == "ood":
        resolved = []
        for index, entry in enumerate(spec["ood_tests"]):
            ood = {
                "input_type": entry.get("input_type", input_type),
                "k": entry.get("k", k),
                "N": entry["N"],
                "format": entry.get("format", fmt),
                "rule_kwargs": {**shown, **entry.get("rule_kwargs", {})},
            }
            # per-index streams: adding an entry leaves the earlier ones' rows as they were
            rng = random.Random(f"{seed}.ood.{index}")
            ood_sequences = sample(ood["input_type"], ood["k"], ood["N"], rng)
            ood_kwargs = {"seed": seed, **ood["rule_kwargs"]}
            data[f"validation_ood_{index}"] = rows(
                ood_sequences, rule_name, ood_kwargs, ood["format"]
            )
            resolved.append(ood)
        metadata["ood_tests"] = resolved
    data["metadata"] = metadata
    return data
