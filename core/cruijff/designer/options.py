"""The forms ``cruijff design`` takes its options in, read and checked: ``--vary KEY=V1,V2``,
``--control KEY=VALUE``, ``--tool ROLE=NAME``, ``--scheduler NAME[:PROFILE]``,
``--task FILE[:NAME]``, ``--model FOLDER`` and ``--data FILE``; and :func:`settings`, which
checks the variables and controls against each other. Each bad value is a UserError that
names the option."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cruijff.designer.draft import DESIGNED_ROLES
from cruijff.designer.flow import PLAIN_KEY
from cruijff.designer.values import parse_value, parse_values
from cruijff.errors import UserError
from cruijff.suggest import did_you_mean


def parse_control(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` (``--control epochs=2``): the key and the value (:func:`parse_value`)."""
    key, value = _assignment(text, "--control", "epochs=2")
    return key, parse_value(value)


def parse_vary(text: str) -> tuple[str, tuple[Any, ...]]:
    """``KEY=V1,V2,...`` (``--vary lora_rank=4,8``): the variable and its values."""
    key, values = _assignment(text, "--vary", "lora_rank=4,8")
    return key, parse_values(values, key)


def _assignment(text: str, option: str, example: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    key = key.strip()
    if not equals or not key:
        raise UserError(
            f"{option} {text!r}: expected KEY=VALUE",
            hint=f"for example {option} {example}",
        )
    if not PLAIN_KEY.fullmatch(key):
        raise UserError(
            f"{option} {text!r}: {key!r} is not a setting's name",
            hint=f"a name of letters, digits and '_', for example {option} {example}",
        )
    return key, value


def parse_scheduler(text: str) -> tuple[str, str | None]:
    """``NAME[:PROFILE]`` (``--scheduler slurm:della``)."""
    name, _, profile = text.partition(":")
    if not name.strip():
        raise UserError(f"--scheduler {text!r}: no scheduler name", hint="e.g. --scheduler slurm")
    return name.strip(), profile.strip() or None


def parse_tool(text: str) -> tuple[str, str]:
    """``ROLE=NAME`` (``--tool preparation=torchtune``)."""
    role, equals, name = text.partition("=")
    roles = [r.value for r in DESIGNED_ROLES]
    if not equals or role not in roles or not name:
        raise UserError(
            f"--tool {text!r}: expected ROLE=NAME with ROLE one of {', '.join(roles)}",
            hint=did_you_mean(role, roles) or "for example --tool preparation=torchtune",
        )
    return role, name


def split_task(text: str) -> tuple[Path, str | None]:
    """``FILE[:NAME]`` (``--task tasks.py:capitalization``): the file and the task's name."""
    # A file whose own name holds a colon is the file, not FILE:NAME.
    if Path(text).is_file() or ":" not in text:
        return Path(text), None
    file, _, name = text.rpartition(":")
    return Path(file), name or None


def check_folder(path: Path, what: str = "--model") -> Path:
    """``path``, or UserError if it is not a folder."""
    if not Path(path).expanduser().is_dir():
        raise UserError(f"{what} {path}: no such folder", hint="give a Hugging Face model folder")
    return Path(path)


def check_file(path: Path, what: str = "--data") -> Path:
    """``path``, or UserError if it is not a file."""
    if not Path(path).expanduser().is_file():
        raise UserError(f"{what} {path}: no such file", hint="give the path of a file")
    return Path(path)


def settings(
    variables: Sequence[tuple[str, tuple[Any, ...]]],
    controls: Sequence[tuple[str, Any]],
    recipe: str | None = None,
) -> tuple[tuple[tuple[str, tuple[Any, ...]], ...], tuple[tuple[str, Any], ...]]:
    """The variables and controls as given, checked: UserError for a variable given twice, a
    control given twice with two values, or a setting both swept and held fixed."""
    swept: dict[str, tuple[Any, ...]] = {}
    for key, values in variables:
        if key in swept:
            raise UserError(
                f"--vary {key} is given twice",
                hint=f"give all its values at once: --vary {key}=...",
            )
        swept[key] = values
    fixed: dict[str, Any] = {}
    for key, value in controls:
        if key in fixed and fixed[key] != value:
            raise UserError(f"--control {key} is given twice, with two values", hint="give it once")
        if key in swept:
            raise UserError(
                f"{key} is both swept (--vary) and held fixed (--control)",
                hint=f"drop one of --vary {key}=... and --control {key}=...",
            )
        fixed[key] = value
    if recipe and "base_recipe" in fixed and fixed["base_recipe"] != recipe:
        raise UserError(
            "--recipe and --control base_recipe=... name two recipes", hint="give --recipe only"
        )
    return tuple(swept.items()), tuple(fixed.items())
