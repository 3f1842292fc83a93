"""Where a dotted path is written: :class:`YamlDoc` keeps a file's node tree beside its data and
maps ``runs[2].model`` back to a file, line and column."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs
import yaml

from cruijff.records import Where
from cruijff.yamlfile.errors import mark_where
from cruijff.yamlfile.tags import MERGE

_PATH_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


@attrs.frozen(kw_only=True)
class YamlDoc:
    """A loaded YAML file: its plain ``data`` and the node tree that knows positions."""

    data: Any
    file: Path
    root: yaml.Node | None = attrs.field(default=None, eq=False, repr=False)
    _keys: dict[int, _Keys] = attrs.field(factory=dict, init=False, eq=False, repr=False)

    def where(self, path: str) -> Where:
        """Where the dotted ``path`` (``controls.lr``, ``runs[2].model``) is written: the key of
        a mapping entry, the item of a list, or the nearest existing parent of a missing path."""
        node, mark = self.root, self.root.start_mark if self.root is not None else None
        for part in split_path(path):
            found = _child(node, part, self._keys)
            if found is None:
                break
            mark, node = found
        return mark_where(self.file, mark, path)


def split_path(path: str) -> list[str | int]:
    """``"runs[2].model"`` -> ``["runs", 2, "model"]``."""
    return [int(index) if index else key for index, key in _PATH_PART.findall(path) if index or key]


_Keys = tuple[dict[str, tuple[yaml.Mark, yaml.Node]], list[yaml.Node]]


def _child(
    node: yaml.Node | None, part: str | int, index: dict[int, _Keys]
) -> tuple[yaml.Mark, yaml.Node] | None:
    """The mark and node of ``part`` under ``node``: a key (also through ``<<`` merges, explicit
    keys first) or a list index. ``index`` keeps each mapping's keys once looked up, so that
    locating every key of a mapping of many takes linear time, not quadratic."""
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
        if 0 <= part < len(node.value):
            item = node.value[part]
            return item.start_mark, item
        return None
    if not isinstance(node, yaml.MappingNode) or not isinstance(part, str):
        return None
    if id(node) not in index:
        keys: dict[str, tuple[yaml.Mark, yaml.Node]] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            if key_node.tag == MERGE:
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                merges += sources
            else:
                keys.setdefault(key_node.value, (key_node.start_mark, value_node))
        index[id(node)] = (keys, merges)
    keys, merges = index[id(node)]
    if part in keys:
        return keys[part]
    for source in merges:
        found = _child(source, part, index)
        if found is not None:
            return found
    return None
