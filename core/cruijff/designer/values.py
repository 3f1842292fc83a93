"""Values typed on the command line, read with the experiment file's own YAML rules
(:func:`parse_value`, :func:`parse_values`) and written back as the options take them
(:func:`value_text`, :func:`values_text`): ``2`` is an int and ``1e-4`` a float, as they would be
in the file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from cruijff.designer.flow import flow
from cruijff.errors import UserError
from cruijff.records import Problem

_SOURCE = Path("<command line>")
"""The file a problem in a typed value names."""


def parse_value(text: str) -> Any:
    """A value typed on the command line, read as the experiment file reads a scalar: ``2``
    is an int, ``1e-4`` a float, ``true`` a bool, ``null`` None, ``"8"`` the string 8. What
    does not read as a single YAML scalar (``{input}``, ``Say: {input}``) is the text itself,
    and so is an empty value."""
    from cruijff.yamlfile import YamlError

    if not text.strip():
        return text
    try:
        node = _compose(text)
    except YamlError:
        return text
    if not isinstance(node, yaml.ScalarNode):
        return text
    value, problems = _build(node)
    return text if problems else value


def parse_values(text: str, key: str = "KEY") -> tuple[Any, ...]:
    """The values of a swept variable: ``4,8`` or, for values holding commas, a YAML list
    (``["a, b", c]``); each value is read by :func:`parse_value`. UserError for no value, an
    empty one or one given twice."""
    example = f"--vary {key}=4,8"
    stripped = text.strip()
    if stripped.startswith("["):
        items = _flow_list(stripped, key)
    else:
        pieces = [piece.strip() for piece in stripped.split(",")]
        if not stripped or not all(pieces):
            raise UserError(
                f"--vary {key}={text}: {'an empty value' if stripped else 'no values'}",
                hint=f"values separated by commas, for example {example}",
            )
        items = [parse_value(piece) for piece in pieces]
    if not items:
        raise UserError(f"--vary {key}={text}: no values", hint=f"for example {example}")
    seen: list[Any] = []
    for item in items:
        # By type too: 1 and 1.0 and true are three values, and three runs.
        if any(type(item) is type(other) and item == other for other in seen):
            raise UserError(
                f"--vary {key}={text}: {value_text(item)} is given twice",
                hint="each value makes its own runs: give it once",
            )
        seen.append(item)
    return tuple(items)


def values_text(values: Sequence[Any]) -> str:
    """Values as ``--vary`` takes them back (``4,8``; a YAML list where one holds a comma)."""
    shown = [value_text(value) for value in values]
    if any("," in piece or piece.startswith("[") for piece in shown):
        return "[" + ", ".join(flow(value) for value in values) + "]"
    return ",".join(shown)


def value_text(value: Any) -> str:
    """A value as :func:`parse_value` reads it back: plain where that gives the same value."""
    if isinstance(value, str) and value and parse_value(value) == value:
        return value
    return flow(value)


def _flow_list(text: str, key: str) -> list[Any]:
    from cruijff.yamlfile import YamlError

    hint = f'a YAML list of plain values, for example --vary {key}=\'["a, b", "c"]\''
    try:
        node = _compose(text)
    except YamlError as error:
        raise UserError(f"--vary {key}={text}: {error.problems[0].message}", hint=hint) from None
    if not isinstance(node, yaml.SequenceNode) or not all(
        isinstance(item, yaml.ScalarNode) for item in node.value
    ):
        raise UserError(f"--vary {key}={text}: not a list of plain values", hint=hint)
    items, problems = _build(node)
    if problems:
        raise UserError(f"--vary {key}={text}: {problems[0].message}", hint=hint)
    return list(items)


def _compose(text: str) -> yaml.Node | None:
    """The node ``text`` composes to, by the experiment file's limits; YamlError if none."""
    from cruijff.yamlfile.compose import compose_text

    return compose_text(_SOURCE, text)


def _build(node: yaml.Node) -> tuple[Any, list[Problem]]:
    """The value the experiment file's loader builds from ``node``, and what it found wrong."""
    from cruijff.yamlfile.build import Builder

    builder = Builder(_SOURCE)
    value = builder.build(node, "")
    return value, builder.problems
