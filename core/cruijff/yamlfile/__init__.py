"""A safe YAML loader that remembers where everything is written.

:func:`load_yaml` composes the node tree itself (never constructs Python objects) and turns it
into plain dicts, lists and scalars; :meth:`YamlDoc.where` maps a dotted path such as
``runs[2].model`` back to a file, line and column. What PyYAML lets pass silently is an error
here: duplicate keys, tags, a file that is not a mapping. Differences from PyYAML's
``safe_load``, chosen for an experiment file:

- ``1e-4``, ``3E5`` and ``1.0e4`` are floats (YAML 1.2); PyYAML's 1.1 rules make them strings.
- Mapping keys are always strings, exactly as written (``on:`` is ``"on"``, not ``True``).
- Dates (``2026-11-22``) stay strings, so the data is JSON-ready.

One module a step: :mod:`~cruijff.yamlfile.read` reads the text within MAX_BYTES,
:mod:`~cruijff.yamlfile.compose` builds the node tree within MAX_VALUES, MAX_DEPTH and
MAX_TEXT (so a huge or deep file stops early, at the line where it crosses them),
:mod:`~cruijff.yamlfile.build` turns it into plain data and :mod:`~cruijff.yamlfile.where` finds
positions.
:func:`yaml_text` shows a value in a message the way YAML writes it, cut to one line.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from cruijff.records import Where
from cruijff.yamlfile.build import Builder
from cruijff.yamlfile.compose import MAX_DEPTH, MAX_TEXT, MAX_VALUES, compose_text
from cruijff.yamlfile.errors import YamlError, fail, mark_where, node_kind
from cruijff.yamlfile.read import MAX_BYTES, read_text
from cruijff.yamlfile.text import SHOWN_WIDTH, yaml_text
from cruijff.yamlfile.where import YamlDoc, split_path

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_TEXT",
    "MAX_VALUES",
    "SHOWN_WIDTH",
    "YamlDoc",
    "YamlError",
    "load_yaml",
    "split_path",
    "yaml_text",
]

_MAPPING_HINT = "an experiment file is a YAML mapping: one `key: value` per line"


def load_yaml(path: Path) -> YamlDoc:
    """Read ``path`` as one YAML mapping; YamlError lists every reason it cannot be used."""
    path = Path(path)
    root = compose_text(path, read_text(path))
    if root is None:
        raise fail(Where(file=path, line=1, column=1), "the file is empty", _MAPPING_HINT)
    if not isinstance(root, yaml.MappingNode):
        raise fail(
            mark_where(path, root.start_mark, ""),
            f"the top level must be a mapping, not {node_kind(root)}",
            _MAPPING_HINT,
        )
    builder = Builder(path)
    data = builder.build(root, "")
    if builder.problems:
        raise YamlError(tuple(builder.problems))
    return YamlDoc(data=data, file=path, root=root)
