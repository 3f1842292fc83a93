"""The weighted-sum rules' dataset-level state, and their labels.

``weighted_sum`` labels a sequence with z = Σ wᵢ·int(xᵢ) + intercept, written signed, zero-padded
to a width fixed for the dataset and space-joined (``+ 4 2``); ``weighted_sum_binary`` with
``"1"`` when z > 0, or, with ``noise_scale`` > 0, a coin of probability sigmoid(z / noise_scale)
drawn from ``Random(repr((weight_seed, seq)))``. The weights, intercept and width are resolved
once per dataset by :func:`resolve`, exactly as cruijff_kit 0.3.4 does (the same RNG streams,
Python's half-to-even ``round``), so the labels and the metadata match its files.

:func:`resolve` assumes a checked spec (:func:`cruijff_model_organism.spec.check`): it does
not validate again.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

EXPECTED = {"bits": 0.5, "digits": 4.5}
"""E[int(x)] of a uniform token: what the ``"balanced"`` intercept cancels."""

TOKEN_MAX = {"bits": 1, "digits": 9}
"""The largest int(x): what the output width must hold."""

WEIGHT_MAX = 3
"""``weight_max`` when not given: weights are drawn from ±1..±3."""

ENUMERATION_CAP = 1 << 20
"""Up to this many sequences, ``bayes_accuracy`` is exact; above it, a Monte Carlo mean."""

MC_SAMPLES = 20_000


def draw_weights(k: int, weight_max: int, sparsity: float, weight_seed: int) -> list[int]:
    """``k`` weights from ±1..±``weight_max``, each then zeroed with probability ``sparsity``.

    Two streams, so that changing ``sparsity`` masks the same magnitudes rather than drawing
    new ones.
    """
    magnitudes = random.Random(repr(("weighted_sum:weights", weight_seed)))
    mask = random.Random(repr(("weighted_sum:sparsity", weight_seed)))
    choices = _NonZero(weight_max)
    weights = []
    for _ in range(k):
        weight = magnitudes.choice(choices)
        # the mask stream is only drawn from when sparsity > 0, as cruijff_kit does
        if sparsity > 0 and mask.random() < sparsity:
            weight = 0
        weights.append(weight)
    return weights


class _NonZero(Sequence[int]):
    """-m..-1, 1..m without building the list: ``Random.choice`` only takes its length and
    one item, so it draws what it would from the list, and a huge ``weight_max`` costs
    nothing."""

    def __init__(self, m: int) -> None:
        self.m = m

    def __len__(self) -> int:
        return 2 * self.m

    def __getitem__(self, index):  # type: ignore[override]
        if not 0 <= index < 2 * self.m:
            raise IndexError(index)
        return index - self.m if index < self.m else index - self.m + 1


def format_width(weights: Sequence[int], intercept: int, token_max: int) -> int:
    """Digits needed for the largest |z| (cruijff_kit's float formula, kept for equal output)."""
    largest = sum(abs(weight) for weight in weights) * token_max + abs(intercept)
    if largest == 0:
        return 1
    return max(1, math.ceil(math.log10(largest + 1)))


def signed_spaced(z: int, width: int) -> str:
    """``z`` as sign + ``width`` zero-padded digits, characters space-joined: ``- 0 7``."""
    return " ".join(f"{z:+0{width + 1}d}")


def sigmoid(z: float) -> float:
    """The logistic function, without overflow for large |z|."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    ez = math.exp(z)
    return ez / (1.0 + ez)


def linear(seq: Sequence[str], weights: Sequence[int], intercept: int) -> int:
    """z = Σ wᵢ·int(xᵢ) + intercept."""
    return sum(weight * int(token) for weight, token in zip(weights, seq, strict=True)) + intercept


def bayes_accuracy(
    alphabet: Sequence[str],
    k: int,
    weights: Sequence[int],
    intercept: int,
    noise_scale: float,
    seed: int,
) -> float:
    """The best accuracy any classifier can reach on the noisy binary labels: the mean of
    max(p, 1 - p) over uniform sequences, exact up to :data:`ENUMERATION_CAP` sequences."""
    # k > 20 is past the cap for any alphabet: a huge k is never raised to its power
    if k <= 20 and len(alphabet) ** k <= ENUMERATION_CAP:
        sequences: Any = itertools.product(alphabet, repeat=k)
        count = len(alphabet) ** k
    else:
        rng = random.Random(repr(("bayes_acc", seed, k)))
        sequences = (rng.choices(alphabet, k=k) for _ in range(MC_SAMPLES))
        count = MC_SAMPLES
    total = 0.0
    for seq in sequences:
        p = sigmoid(linear(seq, weights, intercept) / noise_scale)
        total += max(p, 1.0 - p)
    return total / count


def resolve(
    input_type: str,
    alphabet: Sequence[str],
    k: int,
    seed: int,
    rule_kwargs: Mapping[str, Any],
    *,
    binary: bool,
) -> dict[str, Any]:
    """The dataset-level state of a weighted rule, keys in the order of cruijff_kit's metadata:
    ``resolved_weights, intercept, weight_seed[, noise_scale], format_width[, bayes_accuracy]``.

    ``seed`` is the spec's seed: the default ``weight_seed`` and the Monte Carlo stream of
    ``bayes_accuracy``.
    """
    weight_seed = rule_kwargs.get("weight_seed")
    weight_seed = seed if weight_seed is None else int(weight_seed)
    explicit = rule_kwargs.get("weights")
    if explicit is not None:
        weights = [int(weight) for weight in explicit]
    else:
        weights = draw_weights(
            k,
            rule_kwargs.get("weight_max", WEIGHT_MAX),
            float(rule_kwargs.get("sparsity", 0.0)),
            weight_seed,
        )
    intercept = rule_kwargs.get("intercept", 0)
    if intercept == "balanced":
        intercept = round(-sum(weights) * EXPECTED[input_type])
    state: dict[str, Any] = {
        "resolved_weights": weights,
        "intercept": int(intercept),
        "weight_seed": weight_seed,
    }
    if not binary:
        state["format_width"] = format_width(weights, state["intercept"], TOKEN_MAX[input_type])
        return state
    noise_scale = float(rule_kwargs.get("noise_scale", 0.0))
    state["noise_scale"] = noise_scale
    state["format_width"] = 1  # the label is one character
    if noise_scale > 0:
        state["bayes_accuracy"] = bayes_accuracy(
            alphabet, k, weights, state["intercept"], noise_scale, seed
        )
    return state


def weighted_sum(seq: Sequence[str], kwargs: Mapping[str, Any]) -> str:
    """The ``weighted_sum`` label of ``seq``, given the state :func:`resolve` made."""
    z = linear(seq, kwargs["resolved_weights"], kwargs["intercept"])
    return signed_spaced(z, kwargs["format_width"])


def weighted_sum_binary(seq: Sequence[str], kwargs: Mapping[str, Any]) -> str:
    """The ``weighted_sum_binary`` label of ``seq``: a threshold, or a coin keyed on
    (weight_seed, seq) so that the same DGP gives the same noise whatever the dataset seed."""
    z = linear(seq, kwargs["resolved_weights"], kwargs["intercept"])
    noise_scale = kwargs["noise_scale"]
    if noise_scale == 0:
        return "1" if z > 0 else "0"
    draw = random.Random(repr((kwargs["weight_seed"], tuple(seq)))).random()
    return "1" if draw < sigmoid(z / noise_scale) else "0"
