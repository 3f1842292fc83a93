"""One value or key written in YAML's flow style, so that the experiment file's loader reads it
back as the same value: :func:`flow` and :func:`key_text`."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

import yaml

PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
"""A setting's name as ``--vary`` and ``--control`` take it, written unquoted."""

# Line breaks YAML knows but JSON's escaping leaves alone.
_BREAKS = re.compile("[\x85\u2028\u2029]")


def flow(value: Any) -> str:
    """``value`` in YAML's flow style, as the experiment file's loader reads it back."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key_text(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(item) for item in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, int):
        return str(value)
    return _string(str(value))


def key_text(key: str) -> str:
    """A mapping key: plain where the loader reads it back as that string, else quoted."""
    from cruijff.yamlfile.tags import PLAIN_RESOLVER, STR

    plain = PLAIN_KEY.fullmatch(key) and (
        PLAIN_RESOLVER.resolve(yaml.ScalarNode, key, (True, False)) == STR
    )
    return key if plain else json.dumps(key, ensure_ascii=False)


def _float(value: float) -> str:
    from cruijff.experiment.grid import short_value

    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = short_value(value)  # 1e-4, 0.5, 2.0: the loader reads each as a float
    return text if any(c in text for c in ".e") else f"{text}.0"


def _string(value: str) -> str:
    """A double-quoted YAML string (JSON's escapes are YAML's), with what YAML does not
    allow in a file, and the line breaks JSON leaves alone (NEL, LS, PS), escaped too."""
    from cruijff.yamlfile.tags import NOT_PRINTABLE

    text = json.dumps(value, ensure_ascii=False)
    text = NOT_PRINTABLE.sub(lambda m: _escape(m.group()), text)
    return _BREAKS.sub(lambda m: _escape(m.group()), text)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
