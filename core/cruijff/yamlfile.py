"""A safe YAML loader that remembers where everything is written.

:func:`load_yaml` composes the node tree itself (never constructs Python objects) and turns it
into plain dicts, lists and scalars; :meth:`YamlDoc.where` maps a dotted path such as
``runs[2].model`` back to a file, line and column. What PyYAML lets pass silently is an error
here: duplicate keys, tags, a file that is not a mapping. Differences from PyYAML's
``safe_load``, chosen for an experiment file:

- ``1e-4``, ``3E5`` and ``1.0e4`` are floats (YAML 1.2); PyYAML's 1.1 rules make them strings.
- Mapping keys are always strings, exactly as written (``on:`` is ``"on"``, not ``True``).
- Dates (``2026-11-22``) stay strings, so the data is JSON-ready.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs
import yaml

from cruijff.errors import UserError
from cruijff.records import Problem, Where

MAX_VALUES = 100_000
"""How many values a document may expand to through aliases (a guard against alias bombs)."""

_STD = "tag:yaml.org,2002:"
_NULL, _BOOL, _INT, _FLOAT, _STR = (
    f"{_STD}{name}" for name in ("null", "bool", "int", "float", "str")
)
_TIMESTAMP, _VALUE, _MERGE = (f"{_STD}{name}" for name in ("timestamp", "value", "merge"))
_SEQ, _MAP = f"{_STD}seq", f"{_STD}map"
_SCALAR_TAGS = {_NULL, _BOOL, _INT, _FLOAT, _STR, _TIMESTAMP, _VALUE}

_PATH_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


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


_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


@attrs.frozen(kw_only=True)
class YamlDoc:
    """A loaded YAML file: its plain ``data`` and the node tree that knows positions."""

    data: Any
    file: Path
    root: yaml.Node | None = attrs.field(default=None, eq=False, repr=False)

    def where(self, path: str) -> Where:
        """Where the dotted ``path`` (``controls.lr``, ``runs[2].model``) is written: the key of
        a mapping entry, the item of a list, or the nearest existing parent of a missing path."""
        node, mark = self.root, self.root.start_mark if self.root is not None else None
        for part in split_path(path):
            found = _child(node, part)
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
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise YamlError((Problem(where=Where(file=path), message="file not found"),)) from None
    except IsADirectoryError:
        raise YamlError(
            (Problem(where=Where(file=path), message="is a folder, not a file"),)
        ) from None
    except OSError as error:
        message = f"cannot read the file: {error.strerror or error}"
        raise YamlError((Problem(where=Where(file=path), message=message),)) from None
    except UnicodeDecodeError as error:
        where = _position(path, error.object.decode("utf-8", "replace"), error.start)
        message = f"not UTF-8 text (byte 0x{error.object[error.start]:02x})"
        raise YamlError((Problem(where=where, message=message),)) from None

    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        raise YamlError((_syntax_problem(path, error),)) from None
    except yaml.reader.ReaderError as error:
        problem = Problem(where=_position(path, text, error.position), message=str(error.reason))
        raise YamlError((problem,)) from None
    except yaml.YAMLError as error:
        raise YamlError((Problem(where=Where(file=path), message=str(error)),)) from None
    except RecursionError:
        problem = Problem(where=Where(file=path), message="the YAML is nested too deeply")
        raise YamlError((problem,)) from None
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
    try:
        data = builder.build(root, "")
    except RecursionError:
        builder.problems.append(
            Problem(where=Where(file=path), message="the YAML is nested too deeply")
        )
    if not builder.problems and builder.size(root) > MAX_VALUES:
        builder.problems.append(
            Problem(
                where=Where(file=path, line=1, column=1),
                message=f"the file expands to more than {MAX_VALUES} values through aliases",
            )
        )
    if builder.problems:
        raise YamlError(tuple(builder.problems))
    return YamlDoc(data=data, file=path, root=root)


class _Builder:
    """Turns a node tree into plain data, collecting every duplicate key and tag on the way."""

    def __init__(self, file: Path, loader: _Loader) -> None:
        self.file = file
        self.loader = loader
        self.problems: list[Problem] = []
        self._done: dict[int, Any] = {}  # an alias is built once and shared, like PyYAML does
        self._active: set[int] = set()  # nodes being built: meeting one again means recursion
        self._sizes: dict[int, int] = {}

    def error(self, node: yaml.Node, path: str, message: str, hint: str = "") -> None:
        where = _where(self.file, node.start_mark, path)
        self.problems.append(Problem(where=where, message=message, hint=hint))

    def build(self, node: yaml.Node, path: str) -> Any:
        key = id(node)
        if key in self._done:
            return self._done[key]
        if key in self._active:
            self.error(node, path, "an alias refers to a value that contains it")
            return None
        self._active.add(key)
        try:
            if isinstance(node, yaml.MappingNode):
                value = self._mapping(node, path)
            elif isinstance(node, yaml.SequenceNode):
                value = self._sequence(node, path)
            else:
                value = self._scalar(node, path)
        finally:
            self._active.discard(key)
        self._done[key] = value
        return value

    def size(self, node: yaml.Node) -> int:
        """How many values ``node`` stands for once every alias is expanded."""
        key = id(node)
        if key not in self._sizes:
            children: list[yaml.Node] = []
            if isinstance(node, yaml.MappingNode):
                children = [value for _, value in node.value]
            elif isinstance(node, yaml.SequenceNode):
                children = node.value
            self._sizes[key] = 1 + sum(self.size(child) for child in children)
        return self._sizes[key]

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
            self.error(node, path, f"{node.value!r} is not a valid {node.tag.rsplit(':', 1)[1]}")
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
                    f"duplicate key {key!r}: also on line {line}",
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


def _child(node: yaml.Node | None, part: str | int) -> tuple[yaml.Mark, yaml.Node] | None:
    """The mark and node of ``part`` under ``node``: a key (also through ``<<`` merges, explicit
    keys first) or a list index."""
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
        if 0 <= part < len(node.value):
            item = node.value[part]
            return item.start_mark, item
        return None
    if not isinstance(node, yaml.MappingNode) or not isinstance(part, str):
        return None
    merges: list[yaml.Node] = []
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            continue
        if key_node.tag == _MERGE:
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            merges += sources
        elif key_node.value == part:
            return key_node.start_mark, value_node
    for source in merges:
        found = _child(source, part)
        if found is not None:
            return found
    return None


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"a single value ({node.value!r})"


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
    hint = ""
    if error.context and error.problem:
        hint = error.context
        if error.context_mark is not None and error.context_mark is not mark:
            hint += f" (line {error.context_mark.line + 1}, column {error.context_mark.column + 1})"
    return Problem(where=_where(file, mark, ""), message=message, hint=hint)
