"""What goes wrong reading a YAML file: :class:`YamlError`, and how a place in the text (a
parser's mark, an offset) becomes a :class:`~cruijff.records.Where`."""

from __future__ import annotations

from pathlib import Path

import yaml

from cruijff.errors import UserError
from cruijff.records import Problem, Where
from cruijff.yamlfile.text import yaml_text

DATA_HINT = "an experiment file holds settings, not data: put data in a data file"


class YamlError(UserError):
    """An experiment file that cannot be read as YAML; ``problems`` says every reason found."""

    def __init__(self, problems: tuple[Problem, ...]) -> None:
        first = problems[0]
        if len(problems) == 1:
            super().__init__(f"{first.where}: {first.message}", hint=first.hint)
        else:
            super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


def fail(where: Where, message: str, hint: str = "") -> YamlError:
    """A YamlError of one problem, to raise."""
    return YamlError((Problem(where=where, message=message, hint=hint),))


def mark_where(file: Path, mark: yaml.Mark | None, path: str) -> Where:
    """The place of a parser's mark (0-based) as a Where (1-based)."""
    if mark is None:
        return Where(file=file, path=path)
    return Where(file=file, line=mark.line + 1, column=mark.column + 1, path=path)


def position(file: Path, text: str, offset: int) -> Where:
    """The line and column of ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Where(file=file, line=line, column=column)


def node_kind(node: yaml.Node) -> str:
    """What a node is, for a message: ``a mapping``, ``a list``, ``a single value (3)``."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"a single value ({yaml_text(node.value)})"
