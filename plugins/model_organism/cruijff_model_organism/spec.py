"""Checking a ``tool: model_organism`` block, and the row counts it will give.

:func:`check` lists every problem of a block (``data.data_generation`` of an experiment file)
without generating anything, and never raises, whatever YAML value it is given. The errors are
those cruijff_kit 0.3.4 raises while generating (unknown design, input, rule or format, missing
keys, inapplicable rule, unsampleable N, bad ``split_ratio``, bad ``rule_kwargs``, ``ood``
without ``ood_tests`` or with a weighted rule, ...) plus its type errors, and a few it lets
through that would make a broken file (a non-string ``constant`` label, a float ``k``). The
warnings are what cruijff_kit ignores silently or with a log line: the legacy ``split`` key,
``fmt`` in an OOD entry (it reads ``format``), unknown keys, keys the design or rule does not
read. ``bool`` is never an integer here.

:func:`split_sizes` gives the rows of each split from the block alone, for the plan and for
validation before the file exists.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from cruijff.errors import UserError
from cruijff.suggest import did_you_mean, one_of
from cruijff_model_organism.rules import (
    ALPHABETS,
    DEFAULT_FORMAT,
    DESIGNS,
    FORMATS,
    RULES,
    Rule,
    space_size,
)

TOOL = "model_organism"

REQUIRED = ("input_type", "rule", "k", "N", "seed", "design", "output_path")
"""What cruijff_kit's ``prepare_data`` requires, in the order it lists them."""

OPTIONAL = ("tool", "name", "fmt", "rule_kwargs", "split_ratio", "ood_tests", "split")

OOD_KEYS = ("N", "input_type", "k", "format", "rule_kwargs")
"""What an ``ood_tests`` entry may set; ``N`` is required, the others default to the block's."""

DEFAULT_SPLIT_RATIO = 0.8

ERROR = "error"
WARNING = "warning"

_KWARG_HINTS = {
    "x": "the position of the token to copy, 0-based, negative from the end, e.g. x: -1",
    "v": 'the label of every row, a string, e.g. v: "1"',
    "p": "the probability of label 1, e.g. p: 0.3",
}


@attrs.frozen(kw_only=True)
class SpecProblem:
    """Something wrong (or doubtful) in a block.

    ``key`` is the dotted path inside the block (``rule_kwargs.x``, ``ood_tests[1].N``; ``""``
    for the block itself), ``hint`` what would be valid, ``severity`` ``"error"`` (generation
    would fail or make a broken file) or ``"warning"`` (the key has no effect).
    """

    key: str
    message: str
    hint: str = ""
    severity: str = ERROR

    def __str__(self) -> str:
        text = f"{self.key}: {self.message}" if self.key else self.message
        if self.hint:
            text += f" ({self.hint})"
        return f"warning: {text}" if self.severity == WARNING else text


class InvalidSpec(UserError, ValueError):
    """A block has errors; ``problems`` lists every one of them."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        count = len(problems)
        listed = "; ".join(str(problem) for problem in problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the {TOOL} spec: {listed}")
        self.problems = problems


def check(spec: Any, *, require_output_path: bool = True) -> list[SpecProblem]:
    """Every problem of the block ``spec``, errors and warnings, in the order of its keys.

    ``require_output_path=False`` when the caller names the output file itself (the job).
    """
    if not isinstance(spec, Mapping):
        return [
            SpecProblem(
                key="",
                message=f"a {TOOL} block is a mapping of keys, got {_show(spec)}",
                hint="it needs " + ", ".join(REQUIRED),
            )
        ]
    checker = _Checker(spec)
    checker.block(require_output_path)
    return checker.problems


def require_valid(spec: Any, *, require_output_path: bool = False) -> list[SpecProblem]:
    """The warnings of ``spec``; raises :class:`InvalidSpec` if it has errors."""
    problems = check(spec, require_output_path=require_output_path)
    errors = [problem for problem in problems if problem.severity == ERROR]
    if errors:
        raise InvalidSpec(errors)
    return [problem for problem in problems if problem.severity == WARNING]


def split_sizes(spec: Mapping[str, Any]) -> dict[str, int]:
    """Rows per split (``train``, ``validation``, ``validation_ood_<i>``), without generating.

    memorization: both N (the same rows); in_distribution and ood: train = round(N ×
    split_ratio), validation = the rest; ood: each entry's N. Raises :class:`InvalidSpec`.
    """
    require_valid(spec)
    n = spec["N"]
    if spec["design"] == "memorization":
        return {"train": n, "validation": n}
    n_train = round(n * spec.get("split_ratio", DEFAULT_SPLIT_RATIO))
    sizes = {"train": n_train, "validation": n - n_train}
    if spec["design"] == "ood":
        for index, entry in enumerate(spec["ood_tests"]):
            sizes[f"validation_ood_{index}"] = entry["N"]
    return sizes


def is_int(value: Any) -> bool:
    """An integer, and not a bool (YAML's ``yes`` is not a count)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float, not a bool."""
    # ints are finite, and isfinite would overflow on a huge one
    return is_int(value) or (isinstance(value, float) and math.isfinite(value))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _choices(word: Any, choices: Any) -> str:
    near = did_you_mean(word, choices) if isinstance(word, str) else ""
    return " ".join(part for part in (near, one_of(choices)) if part)


class _Checker:
    """One pass over a block; the parsed values are kept for the checks that combine them."""

    def __init__(self, spec: Mapping[Any, Any]) -> None:
        self.spec = spec
        self.problems: list[SpecProblem] = []

    def add(self, key: str, message: str, hint: str = "", severity: str = ERROR) -> None:
        self.problems.append(SpecProblem(key=key, message=message, hint=hint, severity=severity))

    # --- values ---------------------------------------------------------------------------

    def choice(self, where: Mapping, key: str, path: str, choices: Any, default: Any) -> Any:
        """The value of ``key`` if it is one of ``choices``; ``default`` if absent; else None."""
        if key not in where:
            return default
        value = where[key]
        what = key.replace("fmt", "format")
        if not isinstance(value, str):
            self.add(path, f"{what} must be a name, got {_show(value)}", one_of(choices))
        elif value not in choices:
            self.add(path, f"unknown {what} {value!r}", _choices(value, choices))
        else:
            return value
        return None

    def integer(self, where: Mapping, key: str, path: str, *, positive: bool) -> int | None:
        """The value of ``key`` if it is an int (positive if asked); None otherwise."""
        if key not in where:
            return None
        value = where[key]
        if is_int(value) and (value > 0 or not positive):
            return value
        kind = "a positive integer" if positive else "an integer"
        self.add(path, f"{key} must be {kind}, got {_show(value)}")
        return None

    def mapping(self, value: Any, path: str, *, none_ok: bool) -> Mapping | None:
        if value is None and none_ok:
            return {}
        if isinstance(value, Mapping):
            return value
        self.add(path, f"{path.rpartition('.')[2]} must be a mapping, got {_show(value)}")
        return None

    # --- the block ------------------------------------------------------------------------

    def block(self, require_output_path: bool) -> None:
        spec = self.spec
        known = (*REQUIRED, *OPTIONAL)
        for key in spec:
            if key == "format":
                self.add(
                    "format",
                    "format has no effect here: the block's format is fmt",
                    f"rename it to fmt (now {spec.get('fmt', DEFAULT_FORMAT)!r})",
                    WARNING,
                )
            elif key not in known:
                message = f"unknown key {str(key)!r}, ignored"
                # the legacy split is known but never suggested
                suggested = [name for name in known if name != "split"]
                self.add(str(key), message, _choices(key, suggested), WARNING)
        if "tool" in spec and spec["tool"] != TOOL:
            self.add("tool", f"this block is for tool {TOOL}, got {_show(spec['tool'])}")
        needed = [key for key in REQUIRED if require_output_path or key != "output_path"]
        missing = [key for key in needed if key not in spec]
        if missing:
            self.add(
                "",
                f"missing required key{'s' if len(missing) > 1 else ''}: {', '.join(missing)}",
                "optional: " + ", ".join(name for name in OPTIONAL if name != "split"),
            )
        if "output_path" in spec and not (
            isinstance(spec["output_path"], str) and spec["output_path"].strip()
        ):
            self.add(
                "output_path",
                f"output_path must be a file path, got {_show(spec['output_path'])}",
                "relative to experiment.dir unless absolute, e.g. data/parity.json",
            )

        design = self.choice(spec, "design", "design", DESIGNS, None)
        input_type = self.choice(spec, "input_type", "input_type", ALPHABETS, None)
        rule_name = self.choice(spec, "rule", "rule", RULES, None)
        fmt = self.choice(spec, "fmt", "fmt", FORMATS, DEFAULT_FORMAT)
        k = self.integer(spec, "k", "k", positive=True)
        n = self.integer(spec, "N", "N", positive=True)
        self.integer(spec, "seed", "seed", positive=False)
        kwargs = self.mapping(spec.get("rule_kwargs"), "rule_kwargs", none_ok=True)
        rule = RULES.get(rule_name) if rule_name else None

        if rule and input_type and input_type not in rule.inputs:
            self.add("rule", *_not_applicable(rule, input_type))
        if rule and kwargs is not None:
            self.rule_kwargs(rule, kwargs, k)
        if input_type and k and n:
            self.sampleable(input_type, k, n, "N")
        self.split_ratio(design, n)
        if "split" in spec:
            ratio = spec.get("split_ratio", DEFAULT_SPLIT_RATIO)
            self.add(
                "split",
                f"split was renamed to split_ratio: it is ignored, split_ratio {_show(ratio)} "
                "is used",
                "rename split to split_ratio",
                WARNING,
            )
        if design == "ood":
            self.ood(spec, rule, input_type, k, fmt, kwargs)
        elif design and spec.get("ood_tests"):
            self.add(
                "ood_tests",
                f"ood_tests is ignored by design {design}",
                "design ood adds a validation_ood_<i> split per entry",
                WARNING,
            )

    def sampleable(self, input_type: str, k: int, n: int, path: str) -> None:
        size = space_size(input_type, k, cap=n)
        if size < n:
            tokens = len(ALPHABETS[input_type])
            self.add(
                path,
                f"cannot sample {n} unique sequences: only {tokens}^{k} = {size} exist for "
                f"{input_type} with k={k}",
                f"N at most {size}, or a larger k",
            )

    def split_ratio(self, design: str | None, n: int | None) -> None:
        spec = self.spec
        if design == "memorization":
            if "split_ratio" in spec:
                self.add(
                    "split_ratio",
                    "split_ratio is ignored by design memorization: train and validation are "
                    "the same rows",
                    severity=WARNING,
                )
            return
        if design is None:
            return
        ratio = spec.get("split_ratio", DEFAULT_SPLIT_RATIO)
        if not (is_number(ratio) and 0 < ratio < 1):
            self.add(
                "split_ratio",
                f"split_ratio must be a number between 0 and 1 (exclusive), got {_show(ratio)}",
                "the fraction of the N rows that train on, e.g. 0.8",
            )
            return
        if n is None:
            return
        try:
            n_train = round(n * ratio)
        except OverflowError:  # an N past float range; cruijff_kit would fail the same way
            self.add("N", f"N={n} is too large to split", "a row count that fits in memory")
            return
        if n_train in (0, n):
            side = "train" if n_train == 0 else "validation"
            self.add(
                "split_ratio",
                f"split_ratio {ratio} with N={n} leaves the {side} split empty",
                f"round(N × split_ratio) must be between 1 and {n - 1}",
            )

    # --- rule_kwargs ----------------------------------------------------------------------

    def rule_kwargs(self, rule: Rule, kwargs: Mapping, k: int | None) -> None:
        for name in rule.required:
            if name not in kwargs:
                self.add(
                    "rule_kwargs",
                    f"rule {rule.name} needs rule_kwargs.{name}",
                    _KWARG_HINTS.get(name, ""),
                )
        explicit = kwargs.get("weights") is not None
        for name, value in kwargs.items():
            path = f"rule_kwargs.{name}"
            if name not in rule.kwargs:
                self.unread(rule, name, path)
            elif explicit and name in ("weight_max", "sparsity"):
                self.add(path, f"{name} has no effect when weights is given", severity=WARNING)
            else:
                self.kwarg(rule, name, value, path, k)

    def unread(self, rule: Rule, name: Any, path: str) -> None:
        reads = ", ".join(rule.kwargs)
        near = did_you_mean(name, rule.kwargs) if isinstance(name, str) else ""
        self.add(
            path,
            f"rule {rule.name} does not read {name!s}, ignored",
            " ".join(part for part in (near, f"it reads {reads}") if part),
            WARNING,
        )

    def kwarg(self, rule: Rule, name: str, value: Any, path: str, k: int | None) -> None:
        """One ``rule_kwargs`` value, for a rule that reads it."""
        problem = _KWARG_CHECKS[name](value, k)
        if problem:
            message, hint, *severity = problem
            self.add(path, f"{name} {message}", hint, *severity)

    # --- ood ------------------------------------------------------------------------------

    def ood(
        self,
        spec: Mapping,
        rule: Rule | None,
        input_type: str | None,
        k: int | None,
        fmt: str | None,
        kwargs: Mapping | None,
    ) -> None:
        if rule and not rule.supports_ood:
            self.add(
                "design",
                f"design ood does not work with rule {rule.name}",
                "its weights are resolved for one k and input type: use in_distribution",
            )
        tests = spec.get("ood_tests")
        if not tests:
            where = "ood_tests" if "ood_tests" in spec else "design"
            self.add(
                where,
                "design ood needs a non-empty ood_tests list",
                "one entry per OOD split, each with N and optionally input_type, k, format, "
                "rule_kwargs, e.g. ood_tests: [{N: 50, k: 12}]",
            )
            return
        if not isinstance(tests, list):
            self.add("ood_tests", f"ood_tests must be a list of entries, got {_show(tests)}")
            return
        base = {key: value for key, value in (kwargs or {}).items() if key != "seed"}
        for index, entry in enumerate(tests):
            self.ood_entry(index, entry, rule, input_type, k, fmt, base, kwargs is not None)

    def ood_entry(
        self,
        index: int,
        entry: Any,
        rule: Rule | None,
        input_type: str | None,
        k: int | None,
        fmt: str | None,
        base: Mapping,
        base_ok: bool,
    ) -> None:
        prefix = f"ood_tests[{index}]"
        if not isinstance(entry, Mapping):
            self.add(
                prefix,
                f"an ood_tests entry is a mapping, got {_show(entry)}",
                "N and optionally input_type, k, format, rule_kwargs",
            )
            return
        for key in entry:
            if key == "fmt":
                self.add(
                    f"{prefix}.fmt",
                    "fmt has no effect in an ood_tests entry: cruijff_kit reads format",
                    f"rename it to format (the entry now uses {fmt or DEFAULT_FORMAT!r})",
                    WARNING,
                )
            elif key not in OOD_KEYS:
                self.add(
                    f"{prefix}.{key!s}",
                    f"unknown key {str(key)!r} in an ood_tests entry, ignored",
                    _choices(key, OOD_KEYS),
                    WARNING,
                )
        if "N" not in entry:
            self.add(prefix, "an ood_tests entry needs N", "the rows of its validation split")
        n = self.integer(entry, "N", f"{prefix}.N", positive=True)
        own_input = self.choice(entry, "input_type", f"{prefix}.input_type", ALPHABETS, input_type)
        own_k = self.integer(entry, "k", f"{prefix}.k", positive=True) if "k" in entry else k
        self.choice(entry, "format", f"{prefix}.format", FORMATS, fmt)
        own = self.mapping(entry.get("rule_kwargs", {}), f"{prefix}.rule_kwargs", none_ok=False)
        if rule and own_input and "input_type" in entry and own_input not in rule.inputs:
            self.add(f"{prefix}.input_type", *_not_applicable(rule, own_input))
        if own_input and own_k and n:
            self.sampleable(own_input, own_k, n, f"{prefix}.N")
        if not rule or own is None or not rule.supports_ood:
            return
        for name, value in own.items():
            path = f"{prefix}.rule_kwargs.{name!s}"
            if name not in rule.kwargs:
                self.unread(rule, name, path)
            else:
                self.kwarg(rule, name, value, path, own_k)
        # x from the block's rule_kwargs must still fit this entry's k
        if base_ok and "x" in rule.kwargs and "x" not in own and "x" in base and own_k:
            problem = _check_x(base["x"], own_k)
            if problem and is_int(base["x"]):
                where = f"{prefix}.k" if "k" in entry else prefix
                self.add(where, f"rule_kwargs.x {problem[0]} of this entry", problem[1])


def _not_applicable(rule: Rule, input_type: str) -> tuple[str, str]:
    others = sorted(name for name, other in RULES.items() if input_type in other.inputs)
    return (
        f"rule {rule.name} does not apply to {input_type} inputs",
        f"it applies to {', '.join(sorted(rule.inputs))}; rules for {input_type}: "
        + ", ".join(others),
    )


# --- one rule_kwargs value each: None when fine, else (message, hint[, severity]) ----------


def _check_x(value: Any, k: int | None) -> tuple[str, ...] | None:
    if not is_int(value):
        return (f"must be an integer, got {_show(value)}", _KWARG_HINTS["x"])
    if k is not None and not -k <= value < k:
        return (f"{value} is out of range for k={k}", f"from {-k} to {k - 1}")
    return None


def _check_v(value: Any, k: int | None) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return None
    return (f"must be a string (the label), got {_show(value)}", 'quote it, e.g. v: "1"')


def _check_p(value: Any, k: int | None) -> tuple[str, ...] | None:
    if not is_number(value):
        return (f"must be a number, got {_show(value)}", _KWARG_HINTS["p"])
    if not 0 <= value <= 1:
        label = "1" if value > 1 else "0"
        return (f"{value} is outside [0, 1]: every label is {label}", "", WARNING)
    return None


def _check_seed(value: Any, k: int | None) -> tuple[str, ...] | None:
    if is_int(value):
        return None
    return (f"must be an integer, got {_show(value)}", "it replaces the block's seed in labels")


def _check_weights(value: Any, k: int | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not (isinstance(value, list | tuple) and all(is_int(weight) for weight in value)):
        return (f"must be a list of k integers, got {_show(value)}", "e.g. weights: [2, -1, 3]")
    if k is not None and len(value) != k:
        return (f"has {len(value)} weights but k is {k}", "one weight per position")
    return None


def _check_weight_max(value: Any, k: int | None) -> tuple[str, ...] | None:
    if is_int(value) and value >= 1:
        return None
    return (f"must be an integer of at least 1, got {_show(value)}", "the default is 3")


def _check_sparsity(value: Any, k: int | None) -> tuple[str, ...] | None:
    if is_number(value) and 0 <= value <= 1:
        return None
    return (f"must be a number in [0, 1], got {_show(value)}", "the chance that a weight is 0")


def _check_weight_seed(value: Any, k: int | None) -> tuple[str, ...] | None:
    if value is None or is_int(value):
        return None
    return (f"must be an integer, got {_show(value)}", "it defaults to the block's seed")


def _check_intercept(value: Any, k: int | None) -> tuple[str, ...] | None:
    if value == "balanced" or is_int(value):
        return None
    return (f'must be an integer or "balanced", got {_show(value)}', "")


def _check_noise_scale(value: Any, k: int | None) -> tuple[str, ...] | None:
    if is_number(value) and value >= 0:
        return None
    return (f"must be a number of at least 0, got {_show(value)}", "0 gives z > 0 labels")


_KWARG_CHECKS = {
    "x": _check_x,
    "v": _check_v,
    "p": _check_p,
    "seed": _check_seed,
    "weights": _check_weights,
    "weight_max": _check_weight_max,
    "sparsity": _check_sparsity,
    "weight_seed": _check_weight_seed,
    "intercept": _check_intercept,
    "noise_scale": _check_noise_scale,
}
