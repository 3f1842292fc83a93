"""The text of generated YAML and JSON files, each distinct top-level entry rendered once.

The runs of a sweep write configs that differ in a few values (a learning rate, a seed, their
paths) and share the rest. A block-style mapping is the concatenation of its entries, each
written as it would be alone, so an entry is rendered the first time its key and value are
seen and found again for every other run: the same bytes as one ``yaml.dump`` or
``json.dumps(indent=2)`` of the whole (tests check it), a fraction of the time. An entry is
known by its key and the ``repr`` of its value, which tells apart what the writers tell apart
(``1``, ``1.0``, ``True`` and ``"1"``; a path and a string).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import yaml

from cruijff.records import thaw

# libyaml's emitter where PyYAML has it (the pure-Python one is slow); the same text either way
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

_CACHED = 4096
"""Entries kept per writer: every run's shared ones stay, its own (its paths) come and go."""


def yaml_block(data: Mapping[str, Any], *, width: int = 100, allow_unicode: bool = False) -> str:
    """``yaml.dump(data, sort_keys=False, width=width, allow_unicode=allow_unicode)`` with the
    safe dumper, for a mapping, frozen (:func:`cruijff.records.freeze`) or plain."""
    if not data:
        return _yaml({}, width, allow_unicode)
    return "".join(
        _yaml_entry(key, repr(value), _Unhashed(value), width, allow_unicode)
        for key, value in data.items()
    )


def json_object(data: Mapping[str, Any]) -> str:
    """``json.dumps(data, indent=2)`` (keys in their order), for a mapping, frozen or plain."""
    if not data:
        return "{}"
    entries = ",\n".join(
        _json_entry(key, repr(value), _Unhashed(value)) for key, value in data.items()
    )
    return "{\n" + entries + "\n}"


def _yaml(data: Any, width: int, allow_unicode: bool) -> str:
    return yaml.dump(
        data, Dumper=_DUMPER, sort_keys=False, width=width, allow_unicode=allow_unicode
    )


@functools.lru_cache(maxsize=_CACHED)
def _yaml_entry(key: str, shown: str, value: _Unhashed, width: int, allow_unicode: bool) -> str:
    # thawed: fresh objects, so no entry refers to another's (a whole dump would anchor them)
    return _yaml({key: thaw(value.value)}, width, allow_unicode)


@functools.lru_cache(maxsize=_CACHED)
def _json_entry(key: str, shown: str, value: _Unhashed) -> str:
    # one level in: every line of the value's own text two spaces further right (JSON
    # strings hold no raw newline, so each one is a line of the layout)
    text = json.dumps(thaw(value.value), indent=2).replace("\n", "\n  ")
    return f"  {json.dumps(key)}: {text}"


class _Unhashed:
    """A value carried through a cache whose key is its ``repr``: it is not part of the key
    (a mapping cannot be hashed), only what is rendered on a miss."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Unhashed)
