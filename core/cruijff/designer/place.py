"""Where a designed file goes: the experiment's name and the path ``NAME`` and ``-o`` give
(:func:`target`), and never over a file that exists unless ``--force`` says so
(:func:`refuse_overwrite`)."""

from __future__ import annotations

import os
from pathlib import Path

from cruijff.errors import UserError
from cruijff.records import NAME_PATTERN


def target(name: str, output: str | None) -> tuple[str, Path]:
    """The experiment's name and the file to write: ``NAME.yaml`` in the current folder, or
    ``output`` (a file, or a folder to put ``NAME.yaml`` in: one that exists, or a path that
    ends in ``/``). ``NAME.yaml`` names both."""
    stem = next((name[: -len(s)] for s in (".yaml", ".yml") if name.endswith(s)), name)
    if not NAME_PATTERN.fullmatch(stem):
        raise UserError(
            f"{name!r} is not a valid experiment name",
            hint="letters, digits, '.', '_' and '-', starting with a letter or digit, at most "
            "100 (e.g. cap_rank)",
        )
    file_name = name if stem != name else f"{name}.yaml"
    if output is None:
        return stem, Path(file_name)
    if Path(output).is_dir() or output.endswith(("/", os.sep)):
        return stem, Path(output) / file_name
    return stem, Path(output)


def refuse_overwrite(path: Path, force: bool) -> None:
    """UserError if ``path`` is a folder, or exists and ``force`` is not given."""
    if path.is_dir():
        raise UserError(f"{path} is a folder", hint="give -o a file name, or a folder to put it in")
    if path.exists() and not force:
        raise UserError(
            f"{path} already exists",
            hint="pass --force to replace it, or -o another path",
        )
