"""A value in a message, shown the way YAML writes it, on one line: :func:`yaml_text`."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from cruijff.yamlfile.tags import NOT_PRINTABLE, PLAIN_RESOLVER, STR

SHOWN_WIDTH = 60
"""How many characters of a value :func:`yaml_text` shows before it cuts it with ``...``."""

# A string yaml_text may show unquoted inside a list or mapping (if it does not read as a
# number, bool or null): no indicator first, nothing that ends a flow value inside.
_PLAIN = re.compile(r"[A-Za-z0-9_./~$(][^:#,\[\]{}\x00-\x1f\x7f-\x9f]*(?<! )")


def yaml_text(value: Any, width: int = SHOWN_WIDTH, *, quote: bool = True) -> str:
    """``value`` on one line as YAML writes it in flow style (``{value: 14}``, ``[1, 2.5]``,
    ``null``), cut after ``width`` characters with ``...``; for a message about a value.

    A string on its own is quoted (``'rank 8'``) so that it stands out in a sentence, unless
    ``quote`` is false (for a hint that shows what to write) and YAML can do without. Frozen
    mappings and tuples show as mappings and lists. Only what is shown is rendered, so a
    huge value costs no more than a small one.
    """
    shown, length = [], 0
    for piece in _flow(value, quote=quote):
        shown.append(piece)
        length += len(piece)
        if length > width:
            return "".join(shown)[: max(width - 3, 1)] + "..."
    return "".join(shown)


def _flow(value: Any, *, quote: bool = False) -> Iterator[str]:
    if isinstance(value, Mapping):
        yield "{"
        for index, (key, item) in enumerate(value.items()):
            yield ", " if index else ""
            yield from _flow(key)
            yield ": "
            yield from _flow(item)
        yield "}"
    elif isinstance(value, (list, tuple)):
        yield "["
        for index, item in enumerate(value):
            yield ", " if index else ""
            yield from _flow(item)
        yield "]"
    elif value is None:
        yield "null"
    elif isinstance(value, bool):
        yield "true" if value else "false"
    elif isinstance(value, float):
        yield _float_text(value)
    elif isinstance(value, str):
        yield _string_text(value, quote=quote)
    else:
        yield str(value)


def _float_text(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    mantissa, _, exponent = text.partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else text  # 1e-05 -> 1e-5


def _string_text(value: str, *, quote: bool) -> str:
    plain = _PLAIN.fullmatch(value) and PLAIN_RESOLVER.resolve(
        yaml.ScalarNode, value, (True, False)
    )
    if plain == STR and not quote:
        return value
    if "\n" in value or NOT_PRINTABLE.search(value):
        return json.dumps(value, ensure_ascii=False)  # a double-quoted YAML string
    return "'" + value.replace("'", "''") + "'"
