"""A safe YAML loader that remembers where everything is written.

:func:`load_yaml` composes the node tree itself (never constructs Python objects) and turns it
into plain dicts, lists and scalars; :meth:`YamlDoc.where` maps a dotted path such as
``runs[2].model`` back to a file, line and column. What PyYAML lets pass silently is an error
here: duplicate keys, tags, a file that is not a mapping. Differences from PyYAML's
``safe_load``, chosen for an experiment file:

- ``1e-4``, ``3E5`` and ``1.0e4`` are floats (YAML 1.2); PyYAML's 1.1 rules make them strings.
- Mapping keys are always strings, exactly as written (``on:`` is ``"on"``, not ``True``).
- Dates (``2026-11-22``) stay strings, so the data is JSON-ready.

A file is parsed by libyaml when PyYAML has it (PyYAML's own parser needs half a minute for a
6 MB file), and the tree is composed from the parser's events without recursion, so that the
limits below stop a huge or deep file early, at the line where it crosses them. :func:`yaml_text`
shows a value in a message the way YAML writes it, cut to one line.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import yaml

from cruijff.errors import UserError
from cruijff.records import Problem, Where

MAX_BYTES = 16 * 2**20
"""Largest file read (16 MiB): a guard against reading a huge or endless file whole. libyaml
scans that much text in under a second; an experiment file of 10,000 explicit runs is 1 MB."""

MAX_VALUES = 100_000
"""How many values (not counting keys) a document may hold, each alias counting as the values
it stands for: a guard against alias bombs and against data pasted into the file. A file of
10,000 explicit runs with three parameters each holds 70,000 (a grid of 10,000 runs, a few
dozen); composing 100,000 takes well under a second, so even a huge file fails fast."""

MAX_DEPTH = 50
"""How deeply lists and mappings may nest. An experiment file needs about 6 levels; the limit
keeps every recursive walk over the values (here, in the core and in plugins) far from
Python's recursion limit."""

SHOWN_WIDTH = 60
"""How many characters of a value :func:`yaml_text` shows before it cuts it with ``...``."""

_STD = "tag:yaml.org,2002:"
_NULL, _BOOL, _INT, _FLOAT, _STR = (
    f"{_STD}{name}" for name in ("null", "bool", "int", "float", "str")
)
_TIMESTAMP, _VALUE, _MERGE = (f"{_STD}{name}" for name in ("timestamp", "value", "merge"))
_SEQ, _MAP = f"{_STD}seq", f"{_STD}map"
_SCALAR_TAGS = {_NULL, _BOOL, _INT, _FLOAT, _STR, _TIMESTAMP, _VALUE}

_PATH_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")
_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
# What YAML allows in a file (PyYAML's rule), checked before parsing so the error has a line.
_NOT_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE
_CONTROL_NAMES = {0: "NUL", 0x1B: "ESC", 0x7F: "DEL"}
# A string yaml_text may show unquoted inside a list or mapping (if it does not read as a
# number, bool or null): no indicator first, nothing that ends a flow value inside.
_PLAIN = re.compile(r"[A-Za-z0-9_./~$(][^:#,\[\]{}\x00-\x1f\x7f-\x9f]*(?<! )")


class YamlError(UserError):
    """An experiment file that cannot be read as YAML; ``problems`` says every reason found."""

    def __init__(self, problems: tuple[Problem, ...]) -> None:
        first = problems[0]
        if len(problems) == 1:
            super().__init__(f"{first.where}: {first.message}", hint=first.hint)
        else:
            super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats; the resolver is added to this class only, so other
    users of PyYAML in the same process keep their behaviour."""


class _Resolver(yaml.resolver.Resolver):
    """The same tag rules, for :func:`yaml_text` to tell a plain string from a number."""


_LOADERS: list[type] = [_Loader, _Resolver]
if yaml.__with_libyaml__:

    class _CLoader(yaml.CSafeLoader):
        """libyaml's parser with the same rules as :class:`_Loader`."""

    _LOADERS.append(_CLoader)
for _cls in _LOADERS:
    _cls.add_implicit_resolver(_FLOAT, _EXPONENT_FLOAT, list("-+0123456789."))
_FAST_LOADER: type = _LOADERS[-1]
_PLAIN_RESOLVER = _Resolver()


class _TooBig(Exception):
    """A limit crossed while composing: ``problem`` says which and where."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


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
        if mark is None:
            return Where(file=self.file, path=path)
        return Where(file=self.file, line=mark.line + 1, column=mark.column + 1, path=path)


def split_path(path: str) -> list[str | int]:
    """``"runs[2].model"`` -> ``["runs", 2, "model"]``."""
    return [int(index) if index else key for index, key in _PATH_PART.findall(path) if index or key]


def load_yaml(path: Path) -> YamlDoc:
    """Read ``path`` as one YAML mapping; YamlError lists every reason it cannot be used."""
    path = Path(path)
    text = _read(path)
    bad = _NOT_PRINTABLE.search(text)
    if bad is not None:
        code = ord(bad.group())
        name = f"U+{code:04X}" + (f" ({_CONTROL_NAMES[code]})" if code in _CONTROL_NAMES else "")
        problem = Problem(
            where=_position(path, text, bad.start()),
            message=f"the control character {name} is not allowed in YAML",
            hint='remove it; inside "double quotes" an escape such as \\x1b writes one',
        )
        raise YamlError((problem,))

    loader = _FAST_LOADER(text)
    try:
        root = _Composer(path, loader).compose()
    except _TooBig as error:
        raise YamlError((error.problem,)) from None
    except yaml.MarkedYAMLError as error:
        raise YamlError((_syntax_problem(path, error),)) from None
    except yaml.reader.ReaderError as error:  # what the check above missed: no position
        raise YamlError((Problem(where=Where(file=path), message=str(error.reason)),)) from None
    except yaml.YAMLError as error:
        raise YamlError((Problem(where=Where(file=path), message=str(error)),)) from None
    finally:
        loader.dispose()

    if root is None:
        raise YamlError(
            (
                Problem(
                    where=Where(file=path, line=1, column=1),
                    message="the file is empty",
                    hint="an experiment file is a YAML mapping: one `key: value` per line",
                ),
            )
        )
    if not isinstance(root, yaml.MappingNode):
        raise YamlError(
            (
                Problem(
                    where=_where(path, root.start_mark, ""),
                    message=f"the top level must be a mapping, not {_kind(root)}",
                    hint="an experiment file is a YAML mapping: one `key: value` per line",
                ),
            )
        )
    builder = _Builder(path, loader)
    data = builder.build(root, "")
    if builder.problems:
        raise YamlError(tuple(builder.problems))
    return YamlDoc(data=data, file=path, root=root)


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
    plain = _PLAIN.fullmatch(value) and _PLAIN_RESOLVER.resolve(
        yaml.ScalarNode, value, (True, False)
    )
    if plain == _STR and not quote:
        return value
    if "\n" in value or _NOT_PRINTABLE.search(value):
        return json.dumps(value, ensure_ascii=False)  # a double-quoted YAML string
    return "'" + value.replace("'", "''") + "'"


def _read(path: Path) -> str:
    """The text of ``path``; YamlError when it cannot be read, is too big or is not UTF-8."""
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_BYTES + 1)  # never more: the file may be huge, or endless
    except FileNotFoundError:
        raise YamlError((Problem(where=Where(file=path), message="file not found"),)) from None
    except IsADirectoryError:
        raise YamlError(
            (Problem(where=Where(file=path), message="is a folder, not a file"),)
        ) from None
    except OSError as error:
        message = f"cannot read the file: {error.strerror or error}"
        raise YamlError((Problem(where=Where(file=path), message=message),)) from None
    if len(raw) > MAX_BYTES:
        line = raw.count(b"\n", 0, MAX_BYTES) + 1  # where the limit is crossed
        problem = Problem(
            where=Where(file=path, line=line),
            message=f"the file has more than {MAX_BYTES:,} bytes",
            hint=_DATA_HINT,
        )
        raise YamlError((problem,))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        where = _position(path, error.object.decode("utf-8", "replace"), error.start)
        message = f"not UTF-8 text (byte 0x{error.object[error.start]:02x})"
        raise YamlError((Problem(where=where, message=message),)) from None


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


class _Composer:
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
        if not stack or stack[-1].key is not None or not stack[-1].is_map:  # a value, not a key
            self.values += 1
            if self.values > MAX_VALUES:
                self._stop(event, stack, f"the file has more than {MAX_VALUES} values", _DATA_HINT)
        tag, value = event.tag, event.value
        if tag is None or tag == "!":
            if event.implicit[0]:  # plain: the resolver decides by the text alone
                tag = self.plain_tags.get(value)
                if tag is None:
                    tag = self._resolve_plain(value)
                    self.plain_tags[value] = tag
            else:
                tag = _STR
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
        return _STR

    def _open(self, event: yaml.CollectionStartEvent, stack: list[_Open]) -> None:
        if not stack or stack[-1].wants_value:
            self._count(event, stack, 1, f"the file has more than {MAX_VALUES} values")
        if len(stack) >= MAX_DEPTH:
            self._stop(event, stack, _TOO_DEEP)
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
            self._stop(event, stack, f"{_TOO_DEEP} through aliases")
        if not stack or stack[-1].wants_value:
            message = f"the file expands to more than {MAX_VALUES} values through aliases"
            self._count(event, stack, size, message)
        return node, size, height

    def _count(self, event: yaml.Event, stack: list[_Open], size: int, message: str) -> None:
        self.values += size
        if self.values > MAX_VALUES:
            self._stop(event, stack, message, _DATA_HINT)

    def _stop(self, event: yaml.Event, stack: list[_Open], message: str, hint: str = "") -> None:
        where = _where(self.file, event.start_mark, self._path(stack))
        raise _TooBig(Problem(where=where, message=message, hint=hint))

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


_DATA_HINT = "an experiment file holds settings, not data: put data in a data file"
_TOO_DEEP = f"the YAML is nested too deeply (more than {MAX_DEPTH} levels of lists and mappings)"


class _Builder:
    """Turns a node tree into plain data, collecting every duplicate key and tag on the way."""

    def __init__(self, file: Path, loader: Any) -> None:
        self.file = file
        self.loader = loader
        self.problems: list[Problem] = []
        self._done: dict[int, Any] = {}  # an alias is built once and shared, like PyYAML does

    def error(self, node: yaml.Node, path: str, message: str, hint: str = "") -> None:
        where = _where(self.file, node.start_mark, path)
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
        tag = node.tag.replace(_STD, "!!", 1) if node.tag.startswith(_STD) else node.tag
        self.error(
            node,
            path,
            f"tag {tag} is not allowed",
            "an experiment file holds plain values only: remove the tag",
        )
        return False

    def _scalar(self, node: yaml.Node, path: str) -> Any:
        if not self._tag_allowed(node, path, _SCALAR_TAGS):
            return None
        if node.tag == _NULL:
            return None
        if node.tag in (_STR, _TIMESTAMP, _VALUE):
            return node.value
        construct = {
            _BOOL: self.loader.construct_yaml_bool,
            _INT: self.loader.construct_yaml_int,
            _FLOAT: self.loader.construct_yaml_float,
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
        self._tag_allowed(node, path, _SEQ)
        return [self.build(item, f"{path}[{index}]") for index, item in enumerate(node.value)]

    def _mapping(self, node: yaml.Node, path: str) -> dict[str, Any]:
        self._tag_allowed(node, path, _MAP)
        merged: dict[str, Any] = {}
        explicit: dict[str, Any] = {}
        first_seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _MERGE:
                merged = {**self._merge_sources(value_node, path), **merged}
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.error(key_node, path, f"a key must be a plain name, not {_kind(key_node)}")
                continue
            key = key_node.value
            child = f"{path}.{key}" if path else key
            self._tag_allowed(key_node, child, _SCALAR_TAGS)
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
                self.error(source, path, f"<< merges mappings only, not {_kind(source)}")
                continue
            value = self.build(source, path)
            if isinstance(value, dict):
                merged.update(value)
        return merged


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
            if key_node.tag == _MERGE:
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


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"a single value ({yaml_text(node.value)})"


def _where(file: Path, mark: yaml.Mark | None, path: str) -> Where:
    if mark is None:
        return Where(file=file, path=path)
    return Where(file=file, line=mark.line + 1, column=mark.column + 1, path=path)


def _position(file: Path, text: str, offset: int) -> Where:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Where(file=file, line=line, column=column)


def _syntax_problem(file: Path, error: yaml.MarkedYAMLError) -> Problem:
    mark = error.problem_mark or error.context_mark
    message = f"YAML syntax error: {error.problem or error.context or 'cannot parse'}"
    if "maximum nesting depth" in (error.problem or ""):  # libyaml's own limit, 1000 levels
        return Problem(where=_where(file, mark, ""), message=_TOO_DEEP)
    hint = ""
    if error.context and error.problem:
        hint = error.context
        if error.context_mark is not None and error.context_mark is not mark:
            hint += f" (line {error.context_mark.line + 1}, column {error.context_mark.column + 1})"
    return Problem(where=_where(file, mark, ""), message=message, hint=hint)
