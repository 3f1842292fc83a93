"""Plain data from a composed node tree: dicts, lists and scalars, with every duplicate key,
tag and bad merge collected as a Problem on the way.

Mapping keys stay strings exactly as written (``on:`` is ``"on"``, not ``True``) and dates
(``2026-11-22``) stay strings, so the data is JSON-ready. ``<<`` merges work as in PyYAML,
explicit keys winning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cruijff.records import Problem
from cruijff.yamlfile.errors import mark_where, node_kind
from cruijff.yamlfile.tags import (
    BOOL,
    FLOAT,
    INT,
    MAP,
    MERGE,
    NULL,
    SCALARS,
    SEQ,
    STD,
    STR,
    TIMESTAMP,
    VALUE,
)
from cruijff.yamlfile.text import yaml_text


class Builder:
    """Turns a node tree into plain data, collecting every duplicate key and tag on the way."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.constructor = yaml.constructor.SafeConstructor()
        self.problems: list[Problem] = []
        self._done: dict[int, Any] = {}  # an alias is built once and shared, like PyYAML does

    def error(self, node: yaml.Node, path: str, message: str, hint: str = "") -> None:
        where = mark_where(self.file, node.start_mark, path)
        self.problems.append(Problem(where=where, message=message, hint=hint))

    def build(self, node: yaml.Node, path: str) -> Any:
        """Plain data for ``node``; the composer has ruled out cycles and limited the depth."""
        key = id(node)
        if key not in self._done:
            if isinstance(node, yaml.MappingNode):
                value = self._mapping(node, path)
            elif isinstance(node, yaml.SequenceNode):
                value = self._sequence(node, path)
            else:
                value = self._scalar(node, path)
            self._done[key] = value
        return self._done[key]

    def _tag_allowed(self, node: yaml.Node, path: str, allowed: str | set[str]) -> bool:
        if node.tag == allowed or (isinstance(allowed, set) and node.tag in allowed):
            return True
        tag = node.tag.replace(STD, "!!", 1) if node.tag.startswith(STD) else node.tag
        self.error(
            node,
            path,
            f"tag {tag} is not allowed",
            "an experiment file holds plain values only: remove the tag",
        )
        return False

    def _scalar(self, node: yaml.Node, path: str) -> Any:
        if not self._tag_allowed(node, path, SCALARS):
            return None
        if node.tag == NULL:
            return None
        if node.tag in (STR, TIMESTAMP, VALUE):
            return node.value
        construct = {
            BOOL: self.constructor.construct_yaml_bool,
            INT: self.constructor.construct_yaml_int,
            FLOAT: self.constructor.construct_yaml_float,
        }[node.tag]
        try:
            return construct(node)
        except (ValueError, KeyError, TypeError, yaml.YAMLError):
            # Only an explicit !!int/!!float/!!bool on text that is not one gets here.
            self.error(
                node, path, f"{yaml_text(node.value)} is not a valid {node.tag.rsplit(':', 1)[1]}"
            )
            return None

    def _sequence(self, node: yaml.Node, path: str) -> list[Any]:
        self._tag_allowed(node, path, SEQ)
        return [self.build(item, f"{path}[{index}]") for index, item in enumerate(node.value)]

    def _mapping(self, node: yaml.Node, path: str) -> dict[str, Any]:
        self._tag_allowed(node, path, MAP)
        merged: dict[str, Any] = {}
        explicit: dict[str, Any] = {}
        first_seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == MERGE:
                merged = {**self._merge_sources(value_node, path), **merged}
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.error(key_node, path, f"a key must be a plain name, not {node_kind(key_node)}")
                continue
            key = key_node.value
            child = f"{path}.{key}" if path else key
            self._tag_allowed(key_node, child, SCALARS)
            if key in first_seen:
                line = first_seen[key].start_mark.line + 1
                self.error(
                    key_node,
                    child,
                    f"duplicate key {yaml_text(key)}: also on line {line}",
                    "YAML would silently keep only the last one: remove or rename one",
                )
            else:
                first_seen[key] = key_node
            explicit[key] = self.build(value_node, child)
        return {**merged, **explicit}

    def _merge_sources(self, node: yaml.Node, path: str) -> dict[str, Any]:
        """What ``<<: *anchor`` (or a list of anchors, earlier ones winning) brings in."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):
            if not isinstance(source, yaml.MappingNode):
                self.error(source, path, f"<< merges mappings only, not {node_kind(source)}")
                continue
            value = self.build(source, path)
            if isinstance(value, dict):
                merged.update(value)
        return merged
