"""The text of generated YAML and JSON files, each distinct top-level entry rendered once.

The runs of a sweep write configs that differ in a few values (a learning rate, a seed, their
paths) and share the rest. A block-style mapping is the concatenation of its entries, each
written as it would be alone, so an entry is rendered the first time its key and value are
seen and found again for every other run: the same bytes as one ``yaml.dump`` or
``json.dumps(indent=2)`` of the whole (tests check it), a fraction of the time. An entry is
known by its key and the ``repr`` of its value, which tells apart what the writers tell apart
(``1``, ``1.0``, ``True`` and ``"1"``; a path and a string). What the runs differ in is mostly
a plain word, a number or a section of them: such an entry is written here directly, as the
dumper writes it, without a dump or a ``repr``. A mapping with keys other than strings is
dumped whole.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from cruijff.records import SCALARS, thaw

# libyaml's emitter where PyYAML has it (the pure-Python one is slow); the same text either way
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

_CACHED = 4096
"""Entries kept per writer: every run's shared ones stay, its own (its paths) come and go."""


def yaml_block(data: Mapping[str, Any], *, width: int = 100, allow_unicode: bool = False) -> str:
    """``yaml.dump(data, sort_keys=False, width=width, allow_unicode=allow_unicode)`` with the
    safe dumper, for a mapping, frozen (:func:`cruijff.records.freeze`) or plain."""
    if not data or not all(type(key) is str for key in data):
        # other keys (1, True, 1.0: equal to a cache, not to the dumper): the whole at once
        return _yaml(thaw(data), width, allow_unicode)
    return "".join(_yaml_item(key, value, width, allow_unicode) for key, value in data.items())


def _yaml_item(key: str, value: Any, width: int, allow_unicode: bool) -> str:
    # what a sweep's runs differ in (a seed, a path, a section holding a learning rate or a
    # run's folder) is written here where the dumper would write it plain; the rest comes
    # from the cache
    text = _block(key, value, "")
    if text is not None:
        return text
    return _yaml_entry(key, repr(value), _Unhashed(value), width, allow_unicode)


def _block(key: Any, value: Any, indent: str) -> str | None:
    """The dumper's block-style text of ``key: value`` at ``indent`` where every key and
    scalar in it is written plain (sections of them, lists of scalars); None otherwise."""
    name = _plain(key, 120) if type(key) is str else None
    if name is None:
        return None
    text = _plain(value)
    if text is not None:
        return f"{indent}{name}: {text}\n"
    if isinstance(value, Mapping):
        if not value:
            return None
        inner = indent + "  "
        parts = [f"{indent}{name}:\n"]
        for k, v in value.items():
            part = _block(k, v, inner)
            if part is None:
                return None
            parts.append(part)
        return "".join(parts)
    if isinstance(value, (list, tuple)) and value:
        items = [_plain(item) for item in value]
        if None in items:
            return None
        # the dumper writes a mapping's list at the key's own indent
        return f"{indent}{name}:\n" + "".join(f"{indent}- {item}\n" for item in items)
    return None


def json_object(data: Mapping[str, Any]) -> str:
    """``json.dumps(data, indent=2)`` (keys in their order), for a mapping, frozen or plain."""
    if not data or not all(type(key) is str for key in data):
        return json.dumps(thaw(data), indent=2)  # json.dumps writes other keys as strings
    entries = ",\n".join(_json_item(key, value) for key, value in data.items())
    return "{\n" + entries + "\n}"


def _json_item(key: str, value: Any) -> str:
    if type(value) in SCALARS:
        return f"  {_ENCODE(key)}: {_json_scalar(value)}"
    items = value.items() if isinstance(value, Mapping) and value else ()
    if items and all(type(k) is str and type(v) in SCALARS for k, v in items):
        inner = ",\n".join(f"    {_ENCODE(k)}: {_json_scalar(v)}" for k, v in items)
        return f"  {_ENCODE(key)}: {{\n{inner}\n  }}"
    return _json_entry(key, repr(value), _Unhashed(value))


def json_sourced(settings: Iterable[tuple[str, Any, str]]) -> str:
    """:func:`json_object` of ``{path: {"value": value, "source": source}}`` for (path, value,
    source) triples (a provenance file), the later of two for one path winning, each written
    here directly."""
    found = {path: (value, source) for path, value, source in settings}
    if not found:
        return "{}"
    entries = [
        f'  {_ENCODE(path)}: {{\n    "value": {_json_scalar(value)},\n'
        f'    "source": {_ENCODE(source)}\n  }}'
        if type(value) in SCALARS and type(source) is str
        else _json_item(path, {"value": value, "source": source})
        for path, (value, source) in found.items()
    ]
    return "{\n" + ",\n".join(entries) + "\n}"


_ENCODE = json.encoder.encode_basestring_ascii  # json.dumps's, for a string


def _json_scalar(value: Any) -> str:
    """``json.dumps(value)`` of a scalar, as its encoder writes one."""
    kind = type(value)
    if kind is str:
        return _ENCODE(value)
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    if kind is int:
        return int.__repr__(value)
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


_KINDS = {str: "str", int: "int", float: "float", bool: "bool", type(None): "null"}
_RESOLVER = yaml.resolver.Resolver()
_PLAIN_TEXT = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./-]*\Z")
_TAG = {kind: f"tag:yaml.org,2002:{name}" for kind, name in _KINDS.items()}


def _plain(value: Any, longest: int = 4096) -> str | None:
    """The text the safe dumper writes for a scalar it writes plain and never folds (a string
    of letters, digits and ``_./-``, a number, a boolean, null), where it reads back as the
    same kind; None for any other value (the dumper's own output is used)."""
    kind = type(value)
    if kind is str:
        if not _PLAIN_TEXT.match(value):
            return None
        text = value
    elif kind is bool:
        text = "true" if value else "false"
    elif kind is int:
        text = str(value)
    elif kind is float:
        text = _float(value)
    elif value is None:
        text = "null"
    else:
        return None
    if len(text) > longest:  # a key this long is written as a complex one ("? key")
        return None
    return text if _read_as(text) == _TAG[kind] else None


@functools.lru_cache(maxsize=_CACHED)
def _read_as(text: str) -> str:
    """The kind a plain scalar ``text`` reads back as (YAML 1.1, as PyYAML resolves it)."""
    return _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))


def _float(value: float) -> str:
    """PyYAML's text of a float (``SafeRepresenter.represent_float``)."""
    if value != value:
        return ".nan"
    if value in (math.inf, -math.inf):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value).lower()
    return text.replace("e", ".0e", 1) if "." not in text and "e" in text else text


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
