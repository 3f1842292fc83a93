"""The data a cell evaluates: which file, which split, and whether that file has the split.

The file follows cruijff_kit's precedence, first match wins: the task's ``eval_condition`` (the
one ``{cond}_test_*.json`` beside the training data), the task's ``dataset`` (``same`` is the
training file), the run's ``eval_dataset_path``, then its ``dataset_path``, then
``data.training.path``. The split is the task's ``split``, else the default its function
declares (read from the script: model_organism's is ``validation``), else ``test``; a task
function that takes no ``split`` gets none, and its split is not checked.

A split is checked where it can be known: a user's own file at parse time, from its top-level
keys (read without loading the rows); a file a generation tool writes at select time, from the
splits its ``dataset`` artifact declares.
"""

from __future__ import annotations

import functools
import json
import mmap
import re
from pathlib import Path
from typing import Any

import attrs

from cruijff import stamps
from cruijff.records import NAME_PATTERN, EvalTask, Experiment, Run
from cruijff.upstream import condition_file
from cruijff_inspect import introspect
from cruijff_inspect.settings import DEFAULT_SPLIT, SAME, run_setting

CONDITION_HINT = (
    "make it with cruijff_kit's convert-tabular-to-text skill (one {cond}_test_<hash>.json per "
    "condition, beside the training data), or give the task a dataset: path instead"
)


@attrs.frozen(kw_only=True)
class EvalData:
    """A cell's data file and split, each with where it comes from: ``source`` for ``plan
    --explain`` and ``where``, the YAML path a problem with it points at."""

    path: Path | None = None
    source: str = ""
    where: str = ""
    split: str | None = None
    split_source: str = ""
    split_where: str = ""
    problem: tuple[str, str] | None = None
    """(message, hint) when the file cannot be chosen (an eval_condition without its file)."""


def condition_files(folder: Path, condition: str) -> list[Path]:
    """The evaluation files of a generated condition: ``{cond}_test_*.json`` in ``folder``."""
    try:
        return list(_condition_files(str(folder), stamps.stat(folder).st_mtime_ns, condition))
    except OSError:
        return []


@functools.lru_cache(maxsize=256)
def _condition_files(folder: str, mtime_ns: int, condition: str) -> tuple[Path, ...]:
    # once per folder state: a grid of many runs asks for the same files many times
    return tuple(condition_file(Path(folder), condition, "test"))


def _file(experiment: Experiment, run: Run, task: EvalTask) -> EvalData:
    base = task.yaml_path
    condition = task.settings.get("eval_condition")
    if isinstance(condition, str) and condition:
        where = f"{base}.eval_condition"
        if not NAME_PATTERN.fullmatch(condition):
            return EvalData(
                where=where,
                problem=(
                    f"{condition!r} is not a condition name",
                    "a condition is named by letters, digits, '.', '_' and '-'",
                ),
            )
        if experiment.data is None:
            return EvalData(
                where=where,
                problem=(
                    "eval_condition names a file beside the training data, and there is none",
                    "add data: {training: {path: ...}}, or give the task a dataset: path",
                ),
            )
        folder = experiment.data.path.parent
        found = condition_files(folder, condition)
        if len(found) != 1:
            what = (
                f"no {condition}_test_*.json in {folder}"
                if not found
                else f"{len(found)} files match {condition}_test_*.json in {folder} "
                f"({', '.join(p.name for p in found)})"
            )
            return EvalData(
                where=where,
                problem=(
                    f"eval_condition {condition!r} needs exactly one evaluation file: {what}",
                    CONDITION_HINT if not found else "remove the stale ones (keep exactly one)",
                ),
            )
        return EvalData(path=found[0], source=where, where=where)
    dataset = task.settings.get("dataset")
    if isinstance(dataset, str) and dataset.strip():
        where = f"{base}.dataset"
        if dataset == SAME:
            if experiment.data is None:
                return EvalData(where=where)
            return EvalData(path=experiment.data.path, source=where, where=where)
        return EvalData(path=experiment.resolve(dataset), source=where, where=where)
    for key in RUN_KEYS:
        found_setting = run_setting(experiment, run, key)
        if found_setting is not None and isinstance(found_setting[0], str):
            value, source = found_setting
            where = (
                f"{run.yaml_path}.parameters.{key}"
                if source.startswith("runs.") and run.yaml_path
                else f"controls.{key}"
                if source == "controls"
                else base
            )
            return EvalData(path=experiment.resolve(value), source=f"{source}.{key}", where=where)
    if experiment.data is not None:
        return EvalData(path=experiment.data.path, source="data.training.path", where=base)
    return EvalData(where=base)


def _split(task: EvalTask, data: EvalData) -> EvalData:
    base = task.yaml_path
    explicit = task.settings.get("split")
    if isinstance(explicit, str) and explicit:
        return attrs.evolve(
            data, split=explicit, split_source=f"{base}.split", split_where=f"{base}.split"
        )
    function = task_function(task)
    if function is None or not function.accepts("split"):
        return data  # a registered task, or one that takes no split: its own business
    default = function.default("split")
    if function.declares("split") and isinstance(default, str):
        assert task.script is not None
        where = f"{task.script.name}:{function.line}"
        source = f"the task's default (split={default!r} in {where})"
        return attrs.evolve(data, split=default, split_source=source, split_where=base)
    return attrs.evolve(data, split=DEFAULT_SPLIT, split_source="default", split_where=base)


def task_function(task: EvalTask) -> introspect.Function | None:
    """The ``@task`` function of a task file (None: a registered task, or unreadable)."""
    if task.script is None:
        return None
    name = task.settings.get("function") or task.name
    try:
        return introspect.task_functions(task.script).get(name)
    except introspect.SourceError:
        return None


RUN_KEYS = ("eval_dataset_path", "dataset_path")
"""The run parameters that choose a cell's data file (else the task or the controls do)."""


def eval_data(experiment: Experiment, run: Run, task: EvalTask) -> EvalData:
    """The data file and split a cell of ``run`` on ``task`` evaluates (the same for every
    run that sets no :data:`RUN_KEYS`: made once per design for those)."""
    if any(run.parameters.get(key) is not None for key in RUN_KEYS):
        return _eval_data(experiment, run, task)
    return stamps.once(
        ("inspect.eval_data", id(experiment), id(task)),
        lambda: _eval_data(experiment, run, task),
        experiment,
        task,
    )


def _eval_data(experiment: Experiment, run: Run, task: EvalTask) -> EvalData:
    data = _file(experiment, run, task)
    if data.path is None:
        return data
    return _split(task, data)


def generated(experiment: Experiment, path: Path) -> bool:
    """Whether ``path`` is the training file a generation tool writes (checked at select
    time, against the splits it declares)."""
    data = experiment.data
    return data is not None and data.generation is not None and data.path == path


# --- a file's top-level keys, without loading its rows -----------------------------------

_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_COLON = re.compile(rb"\s*:")
_FIRST = re.compile(rb"(?:\xef\xbb\xbf)?\s*(\S)")


@functools.lru_cache(maxsize=64)
def _keys(path: str, size: int, mtime_ns: int) -> tuple[str, ...] | None:
    with open(path, "rb") as handle:
        if size == 0:
            return None
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as text:
            first = _FIRST.match(text)
            if first is None or first.group(1) != b"{":
                return None  # a list (every split is the list) or not JSON: the task decides
            depth, keys = 0, []
            for token in _TOKEN.finditer(text, first.start(1)):
                char = text[token.start()]
                if char == 0x22:  # a string: a key where a colon follows, at depth 1
                    if depth == 1 and _COLON.match(text, token.end()):
                        keys.append(json.loads(text[token.start() : token.end()]))
                elif char in b"[{":
                    depth += 1
                else:
                    depth -= 1
                    if depth == 0:
                        return tuple(keys)
            return None  # unterminated: not JSON, the task says so


def top_level_keys(path: Path) -> tuple[str, ...] | None:
    """The keys of a JSON file's top-level object (its splits), scanned without building its
    rows; None when it is not an object (a list serves every split) or cannot be read."""
    try:
        stat = stamps.stat(path)
        return _keys(str(path), stat.st_size, stat.st_mtime_ns)
    except (OSError, ValueError):
        return None


def missing_split(path: Path, split: str, splits: Any) -> tuple[str, str] | None:
    """(message, hint) when a file whose splits are ``splits`` has no ``split``."""
    names = [name for name in splits if name != "metadata"]
    if split in names:
        return None
    held_out = [name for name in names if name != "train"] or names
    suggestion = "validation" if "validation" in names else (held_out[0] if held_out else "")
    return (
        f"{path.name} has no split {split!r} (it has {', '.join(names) or 'none'})",
        f"set split: {suggestion} on the task" if suggestion else "check the data file",
    )
