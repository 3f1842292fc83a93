"""Writing a new experiment file: what ``cruijff design NAME`` does once it knows the answers.

A :class:`Draft` holds what the user chose: the base models, the training data, the tasks, the
variables to sweep, the controls, a base recipe and a scheduler. :func:`document` turns it into
the plain data of an experiment file in cruijff_kit's form, :func:`render` into commented YAML,
and :func:`write_design` checks that text exactly as ``cruijff validate`` does (and that reading
it back gives the same data) before it writes it, atomically; a file with an error is never
written.

Values typed on the command line (``--vary lr=1e-4,3e-4``, ``--control epochs=2``) are read
with the experiment file's own YAML rules (:func:`parse_value`), so ``2`` is an int and ``1e-4``
a float, as they would be in the file. Task files are read with :mod:`ast`, never imported.
"""

from __future__ import annotations

import ast
import contextlib
import datetime
import json
import math
import os
import re
import tempfile
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import yaml

from cruijff.errors import ProblemsFound, UserError
from cruijff.manager import PluginManager
from cruijff.records import NAME_PATTERN, Problem, Role, Severity, Tool
from cruijff.suggest import did_you_mean

DATASET_TYPES = ("chat_completion", "text_completion")
"""How rows become prompts (cruijff_kit's closed set); the first is the default."""

DEFAULT_CONTROLS: Mapping[str, Any] = {
    "dataset_type": DATASET_TYPES[0],
    "system_prompt": "",
    "prompt": "{input}",
    "epochs": 1,
}
"""The controls every designed file writes out (cruijff_kit requires ``dataset_type``); an
option's value replaces the default."""

DESIGNED_ROLES = (Role.PREPARATION, Role.EVALUATION)
"""The roles a designed experiment fills: a trainer and an evaluator."""

SPLITS = ("train", "validation", "test")
WIDTH = 100

SECTION_COMMENTS: Mapping[str, str] = {
    "experiment": "What the experiment is: its name (its id), the question it asks, the day "
    "it was designed.",
    "tools": "Which installed tool does each part of the work (`cruijff plugins` lists them).",
    "variables": "The variables swept: one fine-tuned run for every combination of their "
    "values on every base model, plus one control run (the base model, untrained) per model.",
    "controls": "What every run shares; a swept variable overrides it. dataset_type: "
    "chat_completion or text_completion; the prompt must contain {input}.",
    "models": "The base models: Hugging Face folders (config.json, weights, tokenizer). "
    "Relative paths are relative to this file's folder.",
    "data": 'The training data: a JSON file of {"input": ..., "output": ...} rows, split into '
    "train, validation and test (counted when the file was designed).",
    "evaluation": "The tasks every run is evaluated on (a @task function in a script): each "
    "fine-tuned run at its last epoch, each base model once.",
    "scheduler": "Where the jobs run: the scheduler and its profile (without this section: "
    "SLURM where a cluster profile exists, else this machine).",
}

PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
"""A setting's name as ``--vary`` and ``--control`` take it, written unquoted."""
_BREAKS = re.compile("[\x85\u2028\u2029]")


# --- what the user chose ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TaskChoice:
    """A ``@task`` function of a task file: its name and the first line of its docstring."""

    script: Path
    name: str
    description: str = ""


@attrs.frozen(kw_only=True)
class Draft:
    """Everything a designed experiment file says; :func:`document` writes it out.

    ``tools`` maps a role to the tool's name as the file writes it; ``variables`` and
    ``controls`` keep the order they were given in (the run names follow it).
    """

    name: str
    date: str
    question: str = ""
    tools: Mapping[str, str] = attrs.field(factory=dict)
    models: tuple[Path, ...] = ()
    data: Path
    tasks: tuple[TaskChoice, ...] = ()
    variables: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    controls: tuple[tuple[str, Any], ...] = ()
    recipe: str | None = None
    scheduler: str | None = None
    profile: str | None = None


@attrs.frozen(kw_only=True)
class Designed:
    """What :func:`write_design` did: the file (``written`` false for a dry run), its text,
    the warnings checking it found, and the runs and jobs it makes."""

    path: Path
    text: str
    warnings: tuple[Problem, ...]
    runs: tuple[str, ...]
    jobs: int
    written: bool


def today() -> str:
    """Today's date as an experiment file writes it (``YYYY-MM-DD``)."""
    return datetime.date.today().isoformat()


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
    """UserError if ``path`` exists and ``force`` is not given."""
    if path.is_dir():
        raise UserError(f"{path} is a folder", hint="give -o a file name, or a folder to put it in")
    if path.exists() and not force:
        raise UserError(
            f"{path} already exists",
            hint="pass --force to replace it, or -o another path",
        )


# --- values typed on the command line --------------------------------------------------------


def parse_value(text: str) -> Any:
    """A value typed on the command line, read as the experiment file reads a scalar: ``2``
    is an int, ``1e-4`` a float, ``true`` a bool, ``null`` None, ``"8"`` the string 8. What
    does not read as a single YAML scalar (``{input}``, ``Say: {input}``) is the text itself,
    and so is an empty value."""
    from cruijff.yamlfile import YamlError
    from cruijff.yamlfile.build import Builder
    from cruijff.yamlfile.compose import compose_text

    if not text.strip():
        return text
    source = Path("<command line>")
    try:
        node = compose_text(source, text)
    except YamlError:
        return text
    if not isinstance(node, yaml.ScalarNode):
        return text
    builder = Builder(source)
    value = builder.build(node, "")
    return text if builder.problems else value


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


def parse_control(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` (``--control epochs=2``): the key and the value (:func:`parse_value`)."""
    key, value = _assignment(text, "--control", "epochs=2")
    return key, parse_value(value)


def parse_values(text: str, key: str = "KEY") -> tuple[Any, ...]:
    """The values of a swept variable: ``4,8`` or, for values holding commas, a YAML list
    (``["a, b", c]``); each value is read by :func:`parse_value`. UserError for no value, an
    empty one or one given twice."""
    example = f"--vary {key}=4,8"
    stripped = text.strip()
    if stripped.startswith("["):
        items = _flow_list(stripped, key)
    else:
        pieces = [piece.strip() for piece in stripped.split(",")]
        if not stripped or not all(pieces):
            raise UserError(
                f"--vary {key}={text}: {'an empty value' if stripped else 'no values'}",
                hint=f"values separated by commas, for example {example}",
            )
        items = [parse_value(piece) for piece in pieces]
    if not items:
        raise UserError(f"--vary {key}={text}: no values", hint=f"for example {example}")
    seen: list[Any] = []
    for item in items:
        if any(type(item) is type(other) and item == other for other in seen):
            raise UserError(
                f"--vary {key}={text}: {value_text(item)} is given twice",
                hint="each value makes its own runs: give it once",
            )
        seen.append(item)
    return tuple(items)


def _flow_list(text: str, key: str) -> list[Any]:
    from cruijff.yamlfile import YamlError
    from cruijff.yamlfile.build import Builder
    from cruijff.yamlfile.compose import compose_text

    source = Path("<command line>")
    hint = f'a YAML list of plain values, for example --vary {key}=\'["a, b", "c"]\''
    try:
        node = compose_text(source, text)
    except YamlError as error:
        raise UserError(f"--vary {key}={text}: {error.problems[0].message}", hint=hint) from None
    if not isinstance(node, yaml.SequenceNode) or not all(
        isinstance(item, yaml.ScalarNode) for item in node.value
    ):
        raise UserError(f"--vary {key}={text}: not a list of plain values", hint=hint)
    builder = Builder(source)
    items = builder.build(node, "")
    if builder.problems:
        raise UserError(f"--vary {key}={text}: {builder.problems[0].message}", hint=hint)
    return list(items)


def parse_vary(text: str) -> tuple[str, tuple[Any, ...]]:
    """``KEY=V1,V2,...`` (``--vary lora_rank=4,8``): the variable and its values."""
    key, values = _assignment(text, "--vary", "lora_rank=4,8")
    return key, parse_values(values, key)


def values_text(values: Sequence[Any]) -> str:
    """Values as ``--vary`` takes them back (``4,8``; a YAML list where one holds a comma)."""
    shown = [value_text(value) for value in values]
    if any("," in piece or piece.startswith("[") for piece in shown):
        return "[" + ", ".join(_flow(value) for value in values) + "]"
    return ",".join(shown)


def value_text(value: Any) -> str:
    """A value as :func:`parse_value` reads it back: plain where that gives the same value."""
    if isinstance(value, str) and value and parse_value(value) == value:
        return value
    return _flow(value)


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


def split_task(text: str) -> tuple[Path, str | None]:
    """``FILE[:NAME]`` (``--task tasks.py:capitalization``): the file and the task's name."""
    if Path(text).is_file() or ":" not in text:
        return Path(text), None
    file, _, name = text.rpartition(":")
    return Path(file), name or None


# --- tools, tasks and guesses ---------------------------------------------------------------


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


def tools_of(manager: PluginManager, role: Role) -> list[Tool]:
    """The installed tools of ``role``, by name."""
    return [tool for tool in manager.tools() if tool.role is role]


def spelling(tool: Tool) -> str:
    """How a designed file names a tool: its first alias where it has one (the spelling of
    files written before, cruijff_kit's ``inspect-ai``), else its name."""
    return tool.aliases[0] if tool.aliases else tool.name


def choose_tools(manager: PluginManager, given: Mapping[str, str]) -> dict[str, str]:
    """The tool of each designed role: the one given (checked), else the first installed."""
    chosen = {}
    for role in DESIGNED_ROLES:
        installed = tools_of(manager, role)
        if role.value in given:
            tool = manager.tool(given[role.value])
            if tool.role is not role:
                raise UserError(
                    f"--tool {role.value}={given[role.value]}: {tool.name} is a "
                    f"{tool.role.value} tool",
                    hint=f"{role.value} tools: {', '.join(t.name for t in installed) or 'none'}",
                )
            chosen[role.value] = spelling(tool)
        elif installed:
            chosen[role.value] = spelling(installed[0])
        else:
            raise UserError(
                f"no {role.value} tool is installed",
                hint="install a tool plugin for it (cruijff-torchtune trains, cruijff-inspect "
                "evaluates); `cruijff plugins` lists what is installed",
            )
    return chosen


def task_functions(path: Path) -> tuple[TaskChoice, ...]:
    """The top-level ``@task`` functions of a Python file (``@task``, ``@task(...)``,
    ``@inspect_ai.task``), found by parsing it, never importing it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read the task file {path}: {error}") from None
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as error:
        raise UserError(
            f"{path}:{error.lineno}: {error.msg}", hint="a task file is a Python file"
        ) from None
    found = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_task(node):
            doc = (ast.get_docstring(node) or "").strip().splitlines()
            found.append(TaskChoice(script=path, name=node.name, description=doc[0] if doc else ""))
    return tuple(found)


def _is_task(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Name) and target.id == "task":
            return True
        if isinstance(target, ast.Attribute) and target.attr == "task":
            return True
    return False


def resolve_task(path: Path, name: str | None) -> TaskChoice:
    """The task ``name`` of the file ``path``; without a name, its only task. UserError for a
    missing file, no task, an unknown name, or several tasks and no name (listing them)."""
    check_file(path, "--task")
    found = task_functions(path)
    names = [task.name for task in found]
    if not found:
        raise UserError(
            f"{path} has no @task function",
            hint="an inspect task file defines `@task def my_task(...) -> Task`",
        )
    if name is None:
        if len(found) > 1:
            raise UserError(
                f"{path} has {len(found)} @task functions: {', '.join(names)}",
                hint=f"choose one: --task {path}:{names[0]}",
            )
        return found[0]
    for task in found:
        if task.name == name:
            return task
    raise UserError(
        f"{path} has no @task {name!r} (it has {', '.join(names)})",
        hint=did_you_mean(name, names) or f"for example --task {path}:{names[0]}",
    )


def guess_models(folder: Path) -> list[Path]:
    """Folders under ``folder`` (and its ``models/``) that hold a ``config.json``."""
    found = []
    for parent in (folder / "models", folder):
        with contextlib.suppress(OSError):
            found += sorted(p for p in parent.iterdir() if (p / "config.json").is_file())
    return [_shown(path, folder) for path in found]


def guess_data(folder: Path) -> list[Path]:
    """JSON files in ``folder``'s ``data/`` and in ``folder`` itself."""
    found = []
    for parent in (folder / "data", folder):
        with contextlib.suppress(OSError):
            found += sorted(p for p in parent.glob("*.json") if p.is_file())
    return [_shown(path, folder) for path in found]


def guess_tasks(folder: Path) -> list[Path]:
    """Python files in ``folder``'s ``tasks/`` and in ``folder`` with a ``@task`` function."""
    found = []
    for parent in (folder / "tasks", folder):
        with contextlib.suppress(OSError):
            for path in sorted(parent.glob("*.py")):
                with contextlib.suppress(UserError, OSError):
                    if path.stat().st_size < 1_000_000 and task_functions(path):
                        found.append(path)
    return [_shown(path, folder) for path in found]


def _shown(path: Path, folder: Path) -> Path:
    with contextlib.suppress(ValueError):
        return path.relative_to(folder)
    return path


# --- the document -----------------------------------------------------------------------------


def document(draft: Draft, folder: Path) -> dict[str, Any]:
    """The plain data of the experiment file ``draft`` describes, for a file in ``folder``
    (paths inside that folder are written relative to it, others absolute)."""
    from cruijff.experiment.grid import clean_name

    varied = dict(draft.variables)
    controls = dict(DEFAULT_CONTROLS)
    for key, value in draft.controls:
        controls[key] = value
    if draft.recipe:
        controls["base_recipe"] = draft.recipe
    for key in varied:
        controls.pop(key, None)

    models = []
    for path in draft.models:
        name = clean_name(Path(os.path.abspath(path)).name)
        if any(model["name"] == name for model in models):
            raise UserError(
                f"two model folders are called {name}",
                hint="rename one of the folders: a base model's name is its folder's",
            )
        models.append({"name": name, "path": written_path(path, folder)})

    training: dict[str, Any] = {
        "path": written_path(draft.data, folder),
        "format": "json",
        "dataset_label": draft.data.stem,
    }
    with contextlib.suppress(OSError):
        training["size_kb"] = max(1, math.ceil(draft.data.stat().st_size / 1024))
    splits = count_splits(draft.data)
    if splits:
        training["splits"] = splits

    tasks = []
    for task in draft.tasks:
        entry = {"name": task.name, "script": written_path(task.script, folder)}
        entry["description"] = task.description or f"{task.name} in {task.script.name}"
        tasks.append(entry)

    data: dict[str, Any] = {
        "experiment": {"name": draft.name, "question": draft.question, "date": draft.date},
        "tools": dict(draft.tools),
    }
    if varied:
        data["variables"] = {key: list(values) for key, values in draft.variables}
    data["controls"] = controls
    data["models"] = {"base": models}
    data["data"] = {"training": training}
    data["evaluation"] = {"tasks": tasks}
    if draft.scheduler:
        data["scheduler"] = {"name": draft.scheduler}
        if draft.profile:
            data["scheduler"]["profile"] = draft.profile
    return data


def written_path(path: Path, folder: Path) -> str:
    """``path`` as the file writes it: relative to ``folder`` when it lies inside, else
    absolute (a file moved with its folder still finds what is beside it)."""
    absolute = Path(path).expanduser().resolve()
    with contextlib.suppress(ValueError, OSError):
        return absolute.relative_to(folder.resolve()).as_posix()
    return str(absolute)


def count_splits(path: Path) -> dict[str, int]:
    """The rows of each split of a JSON data file (``{"train": [...], ...}``); empty when it
    is a bare list or cannot be read (checking the file says why)."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    if not isinstance(rows, dict):
        return {}
    return {split: len(rows[split]) for split in SPLITS if isinstance(rows.get(split), list)}


# --- the text ---------------------------------------------------------------------------------


def render(data: Mapping[str, Any], file_name: str) -> str:
    """The commented YAML of an experiment file: a header, then each section with a comment
    line above it saying what it is. Strings are double-quoted; lists of plain values and
    small mappings are written on one line."""
    lines = [f"# {file_name}: an experiment, designed with `cruijff design`."]
    lines += textwrap.wrap(
        f"Check it with `cruijff validate {file_name}`; `cruijff plan {file_name}` shows its "
        f"runs and jobs, `cruijff run {file_name}` runs them.",
        WIDTH,
        initial_indent="# ",
        subsequent_indent="# ",
        break_on_hyphens=False,
        break_long_words=False,
    )
    for section, value in data.items():
        lines.append("")
        comment = SECTION_COMMENTS.get(section, "")
        lines += textwrap.wrap(
            comment, WIDTH, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False
        )
        lines += _mapping_lines({section: value}, 0)
    return "\n".join(lines) + "\n"


def _mapping_lines(mapping: Mapping[str, Any], depth: int) -> list[str]:
    pad = "  " * depth
    lines = []
    for key, value in mapping.items():
        head = f"{pad}{_key(key)}:"
        if isinstance(value, Mapping) and value and (depth < 2 or not _all_plain(value)):
            lines.append(head)
            lines += _mapping_lines(value, depth + 1)
        elif isinstance(value, list) and value and any(isinstance(v, Mapping) for v in value):
            lines.append(head)
            for item in value:
                inner = _mapping_lines(item, 0) if isinstance(item, Mapping) else [_flow(item)]
                lines.append(f"{pad}  - {inner[0]}")
                lines += [f"{pad}    {line}" for line in inner[1:]]
        else:
            lines.append(f"{head} {_flow(value)}")
    return lines


def _all_plain(mapping: Mapping[str, Any]) -> bool:
    return not any(isinstance(value, (Mapping, list, tuple)) for value in mapping.values())


def _flow(value: Any) -> str:
    """``value`` in YAML's flow style, as the experiment file's loader reads it back."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(item) for item in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, int):
        return str(value)
    return _string(str(value))


def _float(value: float) -> str:
    from cruijff.experiment.grid import short_value

    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = short_value(value)  # 1e-4, 0.5, 2.0: the loader reads each as a float
    return text if any(c in text for c in ".e") else f"{text}.0"


def _string(value: str) -> str:
    """A double-quoted YAML string (JSON's escapes are YAML's), with what YAML does not
    allow in a file, and the line breaks JSON leaves alone (NEL, LS, PS), escaped too."""
    from cruijff.yamlfile.tags import NOT_PRINTABLE

    text = json.dumps(value, ensure_ascii=False)
    text = NOT_PRINTABLE.sub(lambda m: _escape(m.group()), text)
    return _BREAKS.sub(lambda m: _escape(m.group()), text)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _key(key: str) -> str:
    from cruijff.yamlfile.tags import PLAIN_RESOLVER, STR

    plain = PLAIN_KEY.fullmatch(key) and (
        PLAIN_RESOLVER.resolve(yaml.ScalarNode, key, (True, False)) == STR
    )
    return key if plain else json.dumps(key, ensure_ascii=False)


# --- checking and writing ---------------------------------------------------------------------


def write_design(
    manager: PluginManager, draft: Draft, path: Path, *, force: bool = False, dry_run: bool = False
) -> Designed:
    """Write ``draft`` to ``path``, atomically, after checking the text as ``cruijff
    validate`` does: ProblemsFound (nothing written) if it has an error; warnings are
    returned. With ``dry_run``, check but write nothing. UserError if ``path`` exists and
    ``force`` is not given."""
    from cruijff.fsutil import write_atomic

    refuse_overwrite(path, force)
    if draft.scheduler:
        manager.scheduler(draft.scheduler)  # UserError listing the installed ones
    folder = Path(os.path.abspath(path)).parent
    data = document(draft, folder)
    text = render(data, path.name)
    problems, runs, jobs = _check(manager, text, data, path, folder)
    if any(problem.severity is Severity.ERROR for problem in problems):
        error = ProblemsFound(problems)
        error.hint = f"nothing was written: fix the options and design {path.name} again"
        raise error
    if not dry_run:
        write_atomic(path, text)
    return Designed(
        path=path, text=text, warnings=problems, runs=runs, jobs=jobs, written=not dry_run
    )


def _check(
    manager: PluginManager, text: str, data: Mapping[str, Any], path: Path, folder: Path
) -> tuple[tuple[Problem, ...], tuple[str, ...], int]:
    """Check ``text`` as the file ``path`` (written beside it for a moment, so its relative
    paths mean what they will mean): every problem, with its place in ``path``, the run
    names and the number of jobs."""
    from cruijff import orchestrator
    from cruijff.yamlfile import load_yaml

    with _scratch(folder) as where:
        fd, name = tempfile.mkstemp(dir=where, prefix=f".{path.name}.", suffix=".design")
        scratch = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            if load_yaml(scratch).data != data:
                raise AssertionError(f"the designed file does not read back as written:\n{text}")
            checked, plan = orchestrator.validate(manager, scratch)
        finally:
            scratch.unlink(missing_ok=True)
    problems = tuple(_moved(problem, scratch, path) for problem in checked.problems)
    if plan is None:
        return problems, (), 0
    return problems, tuple(run.name for run in plan.experiment.runs), len(plan.jobs)


@contextlib.contextmanager
def _scratch(folder: Path) -> Iterator[Path]:
    """``folder`` when it exists; else a temporary one (every path the file gives is then
    absolute, since nothing lies inside a folder that does not exist yet)."""
    if folder.is_dir():
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="cruijff-design-") as where:
        yield Path(where)


def _moved(problem: Problem, scratch: Path, path: Path) -> Problem:
    if problem.where.file is not None and Path(problem.where.file).name == scratch.name:
        return attrs.evolve(problem, where=attrs.evolve(problem.where, file=path))
    return problem
