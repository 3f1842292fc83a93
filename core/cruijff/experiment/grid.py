"""The run grid and run names, as pure functions: without ``runs``, the runs are the product
of the ``variables`` over the base models, each named after the parameters that vary.

A factor is one axis or zip group, as the rows of parameters it contributes
(``[{"lr": 1e-4}, {"lr": 3e-4}]``). Names join the tool's short label of each varying
parameter with its value in its shortest form (``rank8_lr1e-4``); a name that would repeat gets
a hash of its run's parameters, so the same file always gives the same names.
"""

from __future__ import annotations

import decimal
import hashlib
import itertools
import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cruijff.records import Run, RunType

MAX_GENERATED_NAME = 64
"""Longest generated run name; shorter than NAME_PATTERN allows, so that ids built from a run
name (``<run>_<task>_epoch1``) still fit."""

Factor = Sequence[Mapping[str, Any]]
"""The rows of parameters an axis or zip group contributes, one per value."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_LEADING = re.compile(r"^[^A-Za-z0-9]+")


def grid_size(models: int, factors: Sequence[Factor]) -> tuple[int, list[int]]:
    """How many fine-tuned runs the grid has, and the sizes it is the product of."""
    sizes = [models] + [len(factor) for factor in factors]
    return math.prod(sizes), sizes


def grid_runs(
    models: Sequence[str], factors: Sequence[Factor], labels: Mapping[str, str], directory: Path
) -> list[Run]:
    """The product of the factors (first outermost) over the base models (outermost), then
    one control run per base model; count them first (:func:`grid_size`): a slip can make the
    product astronomical."""
    varying = {
        key
        for factor in factors
        for key in factor[0]
        if len({canonical(row[key]) for row in factor}) > 1
    }
    several = len(models) > 1
    # each row's part of the names, made once (not once per run it appears in)
    parts_of = [
        [[label(key, row[key], labels) for key in factor[0] if key in varying] for row in factor]
        for factor in factors
    ]
    planned: list[tuple[str, RunType, str, dict[str, Any]]] = []
    for model in models:
        for point in itertools.product(*(range(len(factor)) for factor in factors)):
            rows = [factor[i] for factor, i in zip(factors, point, strict=True)]
            parameters = {key: value for row in rows for key, value in row.items()}
            parts = [model] if several else []
            for factor_parts, i in zip(parts_of, point, strict=True):
                parts += factor_parts[i]
            planned.append(("_".join(parts) or "finetuned", RunType.FINE_TUNED, model, parameters))
    for model in models:
        planned.append((f"{model}_base" if several else "base", RunType.CONTROL, model, {}))
    names = unique_names(
        [clean_name(name) for name, *_ in planned],
        # a function of the index, called only for a name that repeats
        lambda i: canonical([planned[i][1].value, planned[i][2], planned[i][3]]),
    )
    return [
        Run(
            name=name,
            type=kind,
            model=model,
            parameters=parameters,
            directory=run_directory(directory, name),
            index=index,
        )
        for index, (name, (_, kind, model, parameters)) in enumerate(
            zip(names, planned, strict=True)
        )
    ]


def label(key: str, value: Any, labels: Mapping[str, str]) -> str:
    """A parameter's part of a run name: its label (``labels``, else its key), then its value;
    a ``-`` between them unless the value is a number (``rank8``, ``optimizer-adamw``)."""
    text = str(labels.get(key, key))
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f"{text}{short_value(value)}" if number else f"{text}-{short_value(value)}"


def short_value(value: Any) -> str:
    """A value as it appears in a run name: floats in their shortest form (``1e-4``, ``0.5``),
    booleans as ``true``/``false``, lists and mappings flattened with ``-``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return _short_float(value)
    if isinstance(value, Mapping):
        return "-".join(f"{key}-{short_value(item)}" for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return "-".join(short_value(item) for item in value)
    return str(value)


def run_directory(directory: Path, name: str) -> Path:
    """``directory / name``, refusing a name that would lead outside ``directory``."""
    candidate = directory / name
    if name in ("", ".", "..") or os.sep in name or (os.altsep and os.altsep in name):
        raise ValueError(f"run name {name!r} would leave the experiment directory {directory}")
    return candidate


def canonical(value: Any) -> str:
    """A stable text for a value: equal values give equal texts, across runs of the program."""
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def clean_name(name: str) -> str:
    """A name safe in a path and a shell word: other characters become ``-``, it starts with a
    letter or digit, and a long one is cut and given a hash of the whole."""
    cleaned = _LEADING.sub("", _UNSAFE.sub("-", name)) or "run"
    if len(cleaned) > MAX_GENERATED_NAME:
        cleaned = _fit(cleaned, _hash(name))
    return cleaned


def unique_names(names: list[str], seeds: list[str] | Callable[[int], str]) -> list[str]:
    """``names`` with each shared name given a hash of its run's ``seed`` (its parameters;
    ``seeds`` may be a function of the name's index, asked only for names that repeat)."""
    counts = Counter(names)
    taken = {name for name in names if counts[name] == 1}
    seed_of = seeds if callable(seeds) else seeds.__getitem__
    result = []
    for index, name in enumerate(names):
        if counts[name] == 1:
            result.append(name)
            continue
        seed = seed_of(index)
        candidate, number = _fit(name, _hash(seed)), 2
        while candidate in taken:  # identical parameters: only a counter tells them apart
            candidate, number = _fit(name, f"{_hash(seed)}-{number}"), number + 1
        taken.add(candidate)
        result.append(candidate)
    return result


def _short_float(value: float) -> str:
    text = repr(value)
    if not math.isfinite(value) or value == 0:
        return text
    sign, digits, exponent = decimal.Decimal(text).as_tuple()
    power = exponent + len(digits) - 1  # the exponent with one digit before the point
    significant = "".join(map(str, digits)).rstrip("0")
    mantissa = significant[0] + (f".{significant[1:]}" if len(significant) > 1 else "")
    compact = f"{'-' if sign else ''}{mantissa}e{power}"
    return compact if len(compact) < len(text) else text


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def _fit(base: str, suffix: str) -> str:
    """``base-suffix``, cutting ``base`` so that the whole fits a generated name."""
    room = MAX_GENERATED_NAME - len(suffix) - 1
    return f"{base[:room].rstrip('-._')}-{suffix}"
