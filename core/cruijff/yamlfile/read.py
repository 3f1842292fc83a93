"""A YAML file's text, read with a size limit and checked before parsing: UTF-8, and no
character YAML forbids, each refusal a YamlError at its line."""

from __future__ import annotations

from pathlib import Path

from cruijff.records import Where
from cruijff.yamlfile.errors import DATA_HINT, fail, position
from cruijff.yamlfile.tags import NOT_PRINTABLE

MAX_BYTES = 16 * 2**20
"""Largest file read (16 MiB): a guard against reading a huge or endless file whole. libyaml
scans that much text in under a second; an experiment file of 10,000 explicit runs is 1 MB."""

_CONTROL_NAMES = {0: "NUL", 0x1B: "ESC", 0x7F: "DEL"}


def read_text(path: Path) -> str:
    """The text of ``path``; YamlError when it cannot be read, is too big, is not UTF-8 or
    holds a control character (checked here, before parsing, so the error has a line)."""
    text = _decode(path, _read(path))
    bad = NOT_PRINTABLE.search(text)
    if bad is not None:
        code = ord(bad.group())
        name = f"U+{code:04X}" + (f" ({_CONTROL_NAMES[code]})" if code in _CONTROL_NAMES else "")
        raise fail(
            position(path, text, bad.start()),
            f"the control character {name} is not allowed in YAML",
            'remove it; inside "double quotes" an escape such as \\x1b writes one',
        )
    return text


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_BYTES + 1)  # never more: the file may be huge, or endless
    except FileNotFoundError:
        raise fail(Where(file=path), "file not found") from None
    except IsADirectoryError:
        raise fail(Where(file=path), "is a folder, not a file") from None
    except OSError as error:
        raise fail(Where(file=path), f"cannot read the file: {error.strerror or error}") from None
    if len(raw) > MAX_BYTES:
        line = raw.count(b"\n", 0, MAX_BYTES) + 1  # where the limit is crossed
        raise fail(
            Where(file=path, line=line), f"the file has more than {MAX_BYTES:,} bytes", DATA_HINT
        )
    return raw


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        where = position(path, error.object.decode("utf-8", "replace"), error.start)
        message = f"not UTF-8 text (byte 0x{error.object[error.start]:02x})"
        raise fail(where, message) from None
