"""Records to plain data (JSON/YAML-ready) and back. The one place that knows both shapes."""

from __future__ import annotations

import enum
import functools
import math
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs


def to_plain(value: Any) -> Any:
    """Turn records, enums, paths, tuples and read-only mappings into dicts, lists and strings.

    Fields that hold callables (a scheduler's factory, an experiment's locator) are left out.
    """
    if attrs.has(type(value)):
        return {
            field.name: to_plain(getattr(value, field.name))
            for field in attrs.fields(type(value))
            if not callable(getattr(value, field.name))
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, frozenset, set)):
        items = [to_plain(item) for item in value]
        return sorted(items) if isinstance(value, (set, frozenset)) else items
    return value


def finite(value: Any) -> Any:
    """Plain data with every float that is not finite (NaN, infinities) as None, recursively:
    JSON has no such numbers, and ``--json`` output must always parse."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def from_plain(cls: type, data: Any) -> Any:
    """Build a record of type ``cls`` from what :func:`to_plain` made of one."""
    return _builder(cls)(data)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    import cruijff.records as records_module

    return typing.get_type_hints(cls, vars(records_module))


def _nullable(build: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda data: None if data is None else build(data)


@functools.cache
def _builder(kind: Any) -> Callable[[Any], Any]:
    """The function that builds a ``kind`` from plain data, worked out once per type (status
    reads twenty thousand records)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [_builder(arg) for arg in typing.get_args(kind) if arg is not type(None)]

        def union(data: Any) -> Any:
            for option in options:
                try:
                    return option(data)
                except (TypeError, ValueError, KeyError):
                    continue
            return data

        return _nullable(union)
    if origin is tuple:
        args = typing.get_args(kind)
        item = _builder(args[0] if args else Any)
        return _nullable(lambda data: tuple(item(element) for element in data))
    if origin in (frozenset, set):
        return _nullable(frozenset)
    if kind is Any or kind is typing.Any or origin is not None:
        return lambda data: data
    if attrs.has(kind):
        hints = _hints(kind)
        fields = {field.name: _builder(hints[field.name]) for field in attrs.fields(kind)}

        def record(data: Any) -> Any:
            return kind(
                **{name: fields[name](item) for name, item in data.items() if name in fields}
            )

        return _nullable(record)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return _nullable(kind)
    if kind is Path:

        def path(data: Any) -> Path:
            if not isinstance(data, str):
                raise TypeError(f"expected a path, got {data!r}")
            return Path(data)

        return _nullable(path)
    if kind in (int, float, str, bool):

        def scalar(data: Any) -> Any:
            if isinstance(data, kind):
                return data
            if kind is float and isinstance(data, int):
                return float(data)
            raise TypeError(f"expected {kind.__name__}, got {data!r}")

        return _nullable(scalar)
    return lambda data: data
