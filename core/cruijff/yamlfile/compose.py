"""The node tree of a YAML text, composed from the parser's events within limits.

PyYAML's composer recurses and counts nothing. This one loops, counting values and depth
(aliases expanded) on the way, so that a huge, deep or alias-bombed file stops at once, at the
line where it crosses a limit. Nothing is constructed: :mod:`cruijff.yamlfile.build` turns the
tree into plain data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import yaml

from cruijff.records import Problem, Where
from cruijff.yamlfile import tags
from cruijff.yamlfile.errors import DATA_HINT, YamlError, mark_where
from cruijff.yamlfile.tags import STR

MAX_VALUES = 100_000
"""How many values (not counting keys) a document may hold, each alias counting as the values
it stands for: a guard against alias bombs and against data pasted into the file. A file of
10,000 explicit runs with three parameters each holds 70,000 (a grid of 10,000 runs, a few
dozen); composing 100,000 takes well under a second, so even a huge file fails fast."""

MAX_DEPTH = 50
"""How deeply lists and mappings may nest. An experiment file needs about 6 levels; the limit
keeps every recursive walk over the values (here, in the core and in plugins) far from
Python's recursion limit."""

MAX_TEXT = 100_000
"""Most characters a single value (or key) may have. The longest settings are prompts and
system prompts: 100,000 characters is some 25,000 tokens, more than the models fine-tuned here
read at once, and each run's configs repeat them, so a pasted data file would be written once
per run and evaluation."""

TOO_DEEP = f"the YAML is nested too deeply (more than {MAX_DEPTH} levels of lists and mappings)"


def compose_text(path: Path, text: str) -> yaml.Node | None:
    """The root node of ``text`` (None when it holds no document); YamlError for a syntax
    error or a limit crossed."""
    loader = tags.FAST_LOADER(text)
    try:
        return Composer(path, loader).compose()
    except TooBig as error:
        raise YamlError((error.problem,)) from None
    except yaml.MarkedYAMLError as error:
        raise YamlError((syntax_problem(path, error),)) from None
    except yaml.reader.ReaderError as error:  # what read_text's check missed: no position
        raise YamlError((Problem(where=Where(file=path), message=str(error.reason)),)) from None
    except yaml.YAMLError as error:
        raise YamlError((Problem(where=Where(file=path), message=str(error)),)) from None
    finally:
        loader.dispose()


class TooBig(Exception):
    """A limit crossed while composing: ``problem`` says which and where."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@attrs.define
class _Open:
    """A list or mapping being composed: its items so far and what they add up to."""

    node: yaml.CollectionNode
    path: str
    anchor: str | None
    is_map: bool
    size: int = 1  # values, aliases expanded
    height: int = 1  # levels of lists and mappings, aliases expanded
    key: yaml.Node | None = None  # a mapping's key waiting for its value

    @property
    def wants_value(self) -> bool:
        """Whether the next node is a value rather than a mapping's key (keys are not
        counted as values)."""
        return not self.is_map or self.key is not None


class Composer:
    """Builds the node tree from the parser's events, as PyYAML's composer does but with a
    loop instead of recursion, counting values and depth (aliases expanded) on the way: a
    limit crossed stops the parse at once, at the line where it happens."""

    def __init__(self, file: Path, loader: Any) -> None:
        self.file = file
        self.loader = loader
        self.anchors: dict[str, yaml.Node] = {}
        self.expanded: dict[int, tuple[int, int]] = {}  # finished anchored node: size, height
        self.values = 0
        self.plain_tags: dict[str, str] = {}  # the tag of a plain scalar depends on its text

    def compose(self) -> yaml.Node | None:
        """The single document's root node; None for an empty stream."""
        loader = self.loader
        loader.get_event()  # stream start
        root = None
        if not loader.check_event(yaml.StreamEndEvent):
            loader.get_event()  # document start
            root = self._document()
            loader.get_event()  # document end
            if not loader.check_event(yaml.StreamEndEvent):
                event = loader.get_event()
                raise yaml.composer.ComposerError(
                    "expected a single document in the stream",
                    root.start_mark,
                    "but found another document",
                    event.start_mark,
                )
        loader.get_event()  # stream end
        return root

    def _document(self) -> yaml.Node:
        # This loop runs once per value of the file: scalars, by far the most, stay inline.
        get_event = self.loader.get_event
        stack: list[_Open] = []
        while True:
            event = get_event()
            kind = type(event)
            if kind is yaml.ScalarEvent:
                node, size, height = self._scalar(event, stack), 1, 0
            elif kind is yaml.SequenceStartEvent or kind is yaml.MappingStartEvent:
                self._open(event, stack)
                continue
            elif kind is yaml.AliasEvent:
                node, size, height = self._alias(event, stack)
            else:  # the end of a list or mapping
                done = stack.pop()
                node, size, height = done.node, done.size, done.height
                node.end_mark = event.end_mark
                if done.anchor is not None:
                    self.expanded[id(node)] = (size, height)
            if not stack:
                return node
            parent = stack[-1]
            if height >= parent.height:
                parent.height = height + 1
            if not parent.is_map:
                parent.node.value.append(node)
                parent.size += size
            elif parent.key is None:
                parent.key = node
            else:
                parent.node.value.append((parent.key, node))
                parent.key = None
                parent.size += size

    def _scalar(self, event: yaml.ScalarEvent, stack: list[_Open]) -> yaml.ScalarNode:
        tag, value = event.tag, event.value
        if not stack or stack[-1].key is not None or not stack[-1].is_map:  # a value, not a key
            self.values += 1
            if self.values > MAX_VALUES:
                self._stop(event, stack, f"the file has more than {MAX_VALUES} values", DATA_HINT)
        if len(value) > MAX_TEXT:
            message = f"a value of {len(value):,} characters: more than the {MAX_TEXT:,} allowed"
            self._stop(event, stack, message, DATA_HINT)
        if tag is None or tag == "!":
            if event.implicit[0]:  # plain: the resolver decides by the text alone
                tag = self.plain_tags.get(value)
                if tag is None:
                    tag = self._resolve_plain(value)
                    self.plain_tags[value] = tag
            else:
                tag = STR
        node = yaml.ScalarNode(tag, value, event.start_mark, event.end_mark, style=event.style)
        if event.anchor is not None:
            self._anchor(event, node)
        return node

    def _resolve_plain(self, value: str) -> str:
        """What ``loader.resolve`` says for a plain scalar, without its generality (path
        resolvers, wildcard resolvers: neither is used here), which costs time per value."""
        for tag, pattern in self.loader.yaml_implicit_resolvers.get(value[:1], ()):
            if pattern.match(value):
                return tag
        return STR

    def _open(self, event: yaml.CollectionStartEvent, stack: list[_Open]) -> None:
        if not stack or stack[-1].wants_value:
            self._count(event, stack, 1, f"the file has more than {MAX_VALUES} values")
        if len(stack) >= MAX_DEPTH:
            self._stop(event, stack, TOO_DEEP)
        is_map = isinstance(event, yaml.MappingStartEvent)
        kind = yaml.MappingNode if is_map else yaml.SequenceNode
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(kind, None, event.implicit)
        node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
        if event.anchor is not None:
            self._anchor(event, node)
        stack.append(_Open(node=node, path=self._path(stack), anchor=event.anchor, is_map=is_map))

    def _anchor(self, event: yaml.NodeEvent, node: yaml.Node) -> None:
        if event.anchor in self.anchors:
            first = self.anchors[event.anchor].start_mark.line + 1
            message = f"the anchor &{event.anchor} is defined twice (first on line {first})"
            raise yaml.composer.ComposerError(None, None, message, event.start_mark)
        self.anchors[event.anchor] = node

    def _alias(self, event: yaml.AliasEvent, stack: list[_Open]) -> tuple[yaml.Node, int, int]:
        """The node an alias refers to, with its size and height."""
        node = self.anchors.get(event.anchor)
        if node is None:
            raise yaml.composer.ComposerError(
                None, None, f"found undefined alias {event.anchor!r}", event.start_mark
            )
        if isinstance(node, yaml.ScalarNode):
            size, height = 1, 0
        elif id(node) in self.expanded:
            size, height = self.expanded[id(node)]
        else:  # still open: the alias is inside it
            self._stop(event, stack, "an alias refers to a value that contains it")
        if len(stack) + height > MAX_DEPTH:
            self._stop(event, stack, f"{TOO_DEEP} through aliases")
        if not stack or stack[-1].wants_value:
            message = f"the file expands to more than {MAX_VALUES} values through aliases"
            self._count(event, stack, size, message)
        return node, size, height

    def _count(self, event: yaml.Event, stack: list[_Open], size: int, message: str) -> None:
        self.values += size
        if self.values > MAX_VALUES:
            self._stop(event, stack, message, DATA_HINT)

    def _stop(self, event: yaml.Event, stack: list[_Open], message: str, hint: str = "") -> None:
        where = mark_where(self.file, event.start_mark, self._path(stack))
        raise TooBig(Problem(where=where, message=message, hint=hint))

    @staticmethod
    def _path(stack: list[_Open]) -> str:
        """The dotted path of the next item of the innermost open collection."""
        if not stack:
            return ""
        parent = stack[-1]
        if not parent.is_map:
            return f"{parent.path}[{len(parent.node.value)}]"
        key = parent.key.value if isinstance(parent.key, yaml.ScalarNode) else "?"
        return f"{parent.path}.{key}" if parent.path else key


def syntax_problem(file: Path, error: yaml.MarkedYAMLError) -> Problem:
    """A parser's error as a Problem at its line, with the construct it was in as the hint."""
    mark = error.problem_mark or error.context_mark
    message = f"YAML syntax error: {error.problem or error.context or 'cannot parse'}"
    if "maximum nesting depth" in (error.problem or ""):  # libyaml's own limit, 1000 levels
        return Problem(where=mark_where(file, mark, ""), message=TOO_DEEP)
    hint = ""
    if error.context and error.problem:
        hint = error.context
        if error.context_mark is not None and error.context_mark is not mark:
            hint += f" (line {error.context_mark.line + 1}, column {error.context_mark.column + 1})"
    return Problem(where=mark_where(file, mark, ""), message=message, hint=hint)
