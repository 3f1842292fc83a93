"""Reading the values of a YAML document by their dotted paths, each checked for its shape.

A :class:`Reader` gives what it is asked for or records a Problem at the value's file, line and
column and gives what a later check can live with (``{}``, None): a mapping, a string, a valid
name, a path that exists, the items of a list of mappings. It never raises for a mistake in the
file, so every problem is reported at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

from cruijff.records import NAME_PATTERN, Problem, Severity, resolve_path
from cruijff.suggest import did_you_mean, one_of
from cruijff.yamlfile import YamlDoc, yaml_text

MAX_PATH_PART = 255
"""Longest file or folder name, in bytes, in a path the file gives (NAME_MAX on Linux and
macOS file systems): longer ones cannot exist, and the operating system's error is cryptic."""

MAX_PATH = 4096
"""Longest path, in bytes, the file may give (PATH_MAX on Linux): the operating system refuses
a longer one, with a cryptic error, only when something is written there."""

NAME_HINT = (
    "a name has letters, digits, '.', '_' and '-', starts with a letter or digit and has at "
    "most 100 characters"
)


def kind(value: Any) -> str:
    """What a value is, for a message: ``a string``, ``a list``, ``nothing (null)``..."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def join(path: str, key: str) -> str:
    """The dotted path of ``key`` inside ``path``."""
    return f"{path}.{key}" if path else key


def present(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the keys set to null: cruijff_kit reads ``seed: null`` as no seed (its
    default), so plugins never see such a key. A dotted config path (``model.quantize_base``)
    keeps its null, which is a value there."""
    return {key: value for key, value in values.items() if value is not None or "." in key}


def is_count(value: Any) -> bool:
    """A non-negative int that is not a bool (YAML's ``true`` is an int to Python)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@attrs.frozen(kw_only=True)
class ListOf:
    """How a list of mappings is written, for what :meth:`Reader.items` says about a wrong one:
    ``expected a list of <plural>`` (with ``hint``), ``expected <item>``.

    ``optional``: null is an empty list; ``nonempty``: an empty list is wrong too; ``names``: an
    item may also be a bare name (a string); ``name_hint``: for a string where a mapping is
    expected, a hint with ``{}`` standing for the string.
    """

    plural: str
    item: str
    hint: str = ""
    optional: bool = False
    nonempty: bool = False
    names: bool = False
    name_hint: str = ""


class Reader:
    """Reads one YAML document; ``problems`` collects what is wrong with it."""

    def __init__(self, doc: YamlDoc) -> None:
        self.doc = doc
        self.folder = doc.file.parent
        self.problems: list[Problem] = []

    def error(self, path: str, message: str, hint: str = "") -> None:
        self.problems.append(Problem(where=self.doc.where(path), message=message, hint=hint))

    def warning(self, path: str, message: str, hint: str = "") -> None:
        self.problems.append(
            Problem(
                severity=Severity.WARNING, where=self.doc.where(path), message=message, hint=hint
            )
        )

    def mapping(self, value: Any, path: str) -> dict[str, Any]:
        """``value`` if it is a mapping; ``{}`` for null (an empty section) or after an error."""
        if value is None:
            return {}
        if isinstance(value, dict):
            return value
        self.error(path, f"expected a mapping (key: value lines), not {kind(value)}")
        return {}

    def known_keys(self, data: dict[str, Any], path: str, valid: Iterable[str]) -> None:
        """An error for each key of ``data`` that is not ``valid``, with a "did you mean"."""
        valid = tuple(valid)
        for key in data:
            if key not in valid:
                self.error(
                    join(path, key), "unknown key", did_you_mean(key, valid) or one_of(valid)
                )

    def items(self, value: Any, path: str, form: ListOf) -> Iterator[tuple[str, Any]]:
        """Each mapping (or bare name, where ``form`` allows) of the list ``value``, with its
        dotted path; an error for a value that is not such a list and for each other item."""
        if value is None and form.optional:
            return
        if not isinstance(value, list) or (form.nonempty and not value):
            self.error(path, f"expected a list of {form.plural}, not {kind(value)}", form.hint)
            return
        for index, item in enumerate(value):
            at = f"{path}[{index}]"
            if isinstance(item, dict) or (form.names and isinstance(item, str) and item):
                yield at, item
                continue
            hint = ""
            if form.name_hint and isinstance(item, str):
                hint = form.name_hint.format(yaml_text(item, quote=False))
            self.error(at, f"expected {form.item}, not {kind(item)}", hint)

    def string(
        self, data: dict[str, Any], key: str, path: str, *, required: bool = False
    ) -> str | None:
        """The string at ``data[key]``; None (with an error if required) when absent."""
        value = data.get(key)
        if value is None:
            if required:
                self.error(join(path, key), f"{key} is required")
            return None
        if not isinstance(value, str):
            self.error(join(path, key), f"expected a string, not {kind(value)}")
            return None
        return value

    def name(self, data: dict[str, Any], path: str, *, required: bool = True) -> str | None:
        """``data["name"]`` as written, with an error if it is not a valid name (never
        cleaned: the user chose it and other places may refer to it)."""
        value = data.get("name")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.error(join(path, "name"), "expected a string, not a number", "quote it")
            return str(value)
        value = self.string(data, "name", path, required=required)
        if value is not None and not NAME_PATTERN.fullmatch(value):
            self.error(join(path, "name"), f"{yaml_text(value)} is not a valid name", NAME_HINT)
        return value

    def file_path(
        self,
        data: dict[str, Any],
        key: str,
        path: str,
        *,
        required: bool,
        what: str,
        folder: bool | None = None,
    ) -> Path | None:
        """``data[key]`` resolved against the file's folder; an error if it does not exist, or
        if it is a file where ``folder`` is True, a folder where it is False."""
        value = self.string(data, key, path, required=required)
        if value is None:
            return None
        if not value:
            self.error(join(path, key), "the path is empty")
            return None
        resolved = self.resolve(value, join(path, key))
        if resolved is None:
            return None
        try:
            exists = resolved.exists()
        except OSError as error:  # a path too long in all, no permission to look
            self.error(join(path, key), f"cannot look for the {what}: {error.strerror or error}")
            return None
        if not exists:
            self.error(
                join(path, key),
                f"{what} not found: {resolved}",
                "paths are relative to the experiment file's folder",
            )
        elif folder is not None and resolved.is_dir() != folder:
            self.error(
                join(path, key),
                f"the {what} {resolved} is a {'file' if folder else 'folder'}",
                f"{key} names a {'folder' if folder else 'file'}",
            )
            return None
        return resolved

    def resolve(self, value: str, path: str) -> Path | None:
        """``value`` as an absolute path, as :meth:`Experiment.resolve` reads it; None, with an
        error, for one that cannot exist."""
        try:
            resolved = resolve_path(self.folder, value)
            longest = max(resolved.parts, key=lambda part: len(os.fsencode(part)))
            size = len(os.fsencode(longest))
        except (OSError, ValueError, RuntimeError) as error:  # a NUL byte, an unknown ~user
            self.error(path, f"{yaml_text(value)} is not a usable path: {error}")
            return None
        if size > MAX_PATH_PART:
            self.error(
                path,
                f"the name {yaml_text(longest)} in the path has {size} bytes",
                f"a file or folder name has at most {MAX_PATH_PART}",
            )
            return None
        size = len(os.fsencode(resolved))
        if size > MAX_PATH:
            self.error(path, f"the path has {size:,} bytes", f"a path has at most {MAX_PATH:,}")
            return None
        return resolved
