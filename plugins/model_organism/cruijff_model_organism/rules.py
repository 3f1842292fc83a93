"""The vocabulary of a model-organism spec: alphabets, formats, designs and the rules table.

A sequence is a tuple of one-character tokens from an alphabet; a format joins them into the
row's ``input``; a rule maps the sequence to the row's ``output`` string. Each :class:`Rule`
says which alphabets it applies to, which ``rule_kwargs`` it needs and reads, and, for the
weighted-sum family, how its dataset-level state is resolved (:mod:`.weights`). Labels are
those of cruijff_kit 0.3.4; a label function receives the sequence and the rule's keyword
arguments, ``seed`` always among them.
"""

from __future__ import annotations

import random
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from cruijff_model_organism import weights

ALPHABETS: Mapping[str, tuple[str, ...]] = {
    "bits": ("0", "1"),
    "digits": tuple(string.digits),
    "letters": tuple(string.ascii_lowercase),
}
"""``input_type`` → its tokens, in the order ``itertools.product`` enumerates them."""

FORMATS: Mapping[str, str] = {
    "spaced": " ",
    "dense": "",
    "comma": ",",
    "tab": "\t",
    "pipe": "|",
}
"""``fmt`` (``format`` in an OOD entry) → the separator between tokens."""

DEFAULT_FORMAT = "spaced"

DESIGNS = ("memorization", "in_distribution", "ood")

Label = Callable[[Sequence[str], Mapping[str, Any]], str]
Prepare = Callable[[str, int, int, Mapping[str, Any]], dict[str, Any]]


@attrs.frozen(kw_only=True)
class Rule:
    """One rule: what it applies to, the ``rule_kwargs`` it needs and reads, how it labels."""

    name: str
    inputs: frozenset[str]
    label: Label
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    prepare: Prepare | None = None
    """Resolves dataset-level state once (input_type, k, seed, rule_kwargs); what it returns is
    merged into the label's keyword arguments and into the file's metadata."""

    @property
    def supports_ood(self) -> bool:
        """Weighted rules do not: their resolved weights are tied to one k and input type."""
        return self.prepare is None

    @property
    def kwargs(self) -> tuple[str, ...]:
        """Every ``rule_kwargs`` key the rule reads (``seed`` is read by all)."""
        return (*self.required, *self.optional, "seed")


def space_size(input_type: str, k: int, *, cap: int) -> int:
    """How many sequences of length ``k`` exist, or ``cap + 1`` if more than ``cap``: a huge
    ``k`` is never raised to its power."""
    size = 1
    for _ in range(k):
        size *= len(ALPHABETS[input_type])
        if size > cap:
            return cap + 1
    return size


def format_sequence(seq: Sequence[str], fmt: str) -> str:
    """The row ``input`` of ``seq`` in format ``fmt``."""
    return FORMATS[fmt].join(seq)


def _majority(seq: Sequence[str], kwargs: Mapping[str, Any]) -> str:
    counts = Counter(seq)
    top = max(counts.values())
    # a tie goes to the smallest token, so even k still has one label
    return min(token for token, count in counts.items() if count == top)


def _coin(seq: Sequence[str], kwargs: Mapping[str, Any]) -> str:
    # keyed on (seed, sequence) through repr: the label of a sequence is the same in every
    # design and split, and on every Python (3.13 no longer seeds Random with tuples)
    draw = random.Random(repr((kwargs["seed"], tuple(seq)))).random()
    return "1" if draw < kwargs["p"] else "0"


def _nth(seq: Sequence[str], kwargs: Mapping[str, Any]) -> str:
    x = kwargs["x"]
    if not -len(seq) <= x < len(seq):
        raise ValueError(f"nth(x={x}) is out of range for a sequence of length {len(seq)}")
    return seq[x]


def _weighted(binary: bool) -> Prepare:
    def prepare(input_type: str, k: int, seed: int, rule_kwargs: Mapping[str, Any]) -> dict:
        alphabet = ALPHABETS[input_type]
        return weights.resolve(input_type, alphabet, k, seed, rule_kwargs, binary=binary)

    return prepare


_ALL = frozenset(ALPHABETS)
_WEIGHTED_KWARGS = ("weights", "weight_max", "sparsity", "weight_seed", "intercept")

RULES: Mapping[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule(
            name="parity",
            inputs=frozenset({"bits"}),
            label=lambda seq, kw: "1" if seq.count("1") % 2 == 1 else "0",
        ),
        Rule(name="majority", inputs=frozenset({"bits"}), label=_majority),
        Rule(name="first", inputs=_ALL, label=lambda seq, kw: seq[0]),
        Rule(name="last", inputs=_ALL, label=lambda seq, kw: seq[-1]),
        Rule(name="nth", inputs=_ALL, label=_nth, required=("x",)),
        Rule(name="length", inputs=_ALL, label=lambda seq, kw: str(len(seq))),
        Rule(name="constant", inputs=_ALL, label=lambda seq, kw: kw["v"], required=("v",)),
        Rule(name="coin", inputs=_ALL, label=_coin, required=("p",)),
        Rule(name="min", inputs=frozenset({"digits", "letters"}), label=lambda seq, kw: min(seq)),
        Rule(name="max", inputs=frozenset({"digits", "letters"}), label=lambda seq, kw: max(seq)),
        Rule(
            name="weighted_sum",
            inputs=frozenset(weights.EXPECTED),
            label=weights.weighted_sum,
            optional=_WEIGHTED_KWARGS,
            prepare=_weighted(binary=False),
        ),
        Rule(
            name="weighted_sum_binary",
            inputs=frozenset(weights.EXPECTED),
            label=weights.weighted_sum_binary,
            optional=(*_WEIGHTED_KWARGS, "noise_scale"),
            prepare=_weighted(binary=True),
        ),
    )
}
"""Every rule by name."""
