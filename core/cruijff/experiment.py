"""Load an experiment file into an :class:`~cruijff.records.Experiment` and check its shape.

The core checks only what it owns: the sections, names, models, data, variables, runs and the
evaluation's cross-references. The keys that belong to plugins (``controls``, ``output``...)
are returned as :class:`~cruijff.records.Key` records for the plugins to claim. Every problem is
reported at once, each with file, line, column and dotted path; a mistake in the file never
raises. Without ``runs``, the runs are the grid of ``variables`` over the base models.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import itertools
import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from cruijff.records import (
    NAME_PATTERN,
    Axis,
    DataRef,
    EvalTask,
    Evaluation,
    Experiment,
    Key,
    MatrixEntry,
    ModelRef,
    Problem,
    Role,
    Run,
    RunType,
    SchedulerConfig,
    Scorer,
    Severity,
    Where,
    ZipGroup,
)
from cruijff.suggest import did_you_mean, one_of
from cruijff.yamlfile import YamlDoc, YamlError, load_yaml, yaml_text

SECTIONS = (
    "experiment",
    "tools",
    "variables",
    "controls",
    "models",
    "data",
    "output",
    "runs",
    "evaluation",
    "scheduler",
)
"""The top-level sections of an experiment file, in the order they are usually written."""

MAX_GENERATED_NAME = 64
"""Longest generated run name; shorter than NAME_PATTERN allows, so that ids built from a run
name (``<run>_<task>_epoch1``) still fit."""

MAX_RUNS = 10_000
"""Most fine-tuned runs an experiment may have (a grid's product over the base models, or the
explicit runs): 10,000 plan in seconds; a slip such as one axis too many multiplies that into
minutes and gigabytes, and is refused before the grid is expanded."""

MAX_EPOCHS = 1_000
"""Most epochs a run may train for. Each epoch makes checkpoints and evaluation cells, so a
typo such as ``epochs: 10000000`` would otherwise plan for minutes; fine-tuning takes a few."""

MAX_PATH_PART = 255
"""Longest file or folder name, in bytes, in a path the file gives (NAME_MAX on Linux and
macOS file systems): longer ones cannot exist, and the operating system's error is cryptic."""

PLACEHOLDER_NAME = "unnamed"
"""The experiment's name while the file's own is missing or invalid (an error says so)."""

_NAME_HINT = (
    "a name has letters, digits, '.', '_' and '-', starts with a letter or digit and has at "
    "most 100 characters"
)
_PROMPT_HINT = 'write {input} where each example goes, e.g. "Capitalize: {input}"'
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_LEADING = re.compile(r"^[^A-Za-z0-9]+")


@attrs.frozen(kw_only=True)
class Loaded:
    """What :func:`load_experiment` found: the experiment (None only when the YAML could not be
    read), the keys that belong to plugins, and every problem in the file."""

    experiment: Experiment | None
    keys: tuple[Key, ...] = ()
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        """True when there is an experiment and no problem is an error."""
        return self.experiment is not None and not any(
            problem.severity is Severity.ERROR for problem in self.problems
        )


def load_experiment(path: Path, *, labels: Mapping[str, str] | None = None) -> Loaded:
    """Load and check the experiment file at ``path``.

    ``labels`` gives short labels of parameters for generated run names (``lora_rank`` ->
    ``rank``), as the tool plugins declare them. Never raises for a mistake in the file.
    """
    try:
        file = Path(path).expanduser().resolve()
    except (OSError, RuntimeError) as error:  # an unknown ~user, a loop of links
        problem = Problem(where=Where(file=Path(path)), message=f"not a usable path: {error}")
        return Loaded(experiment=None, problems=(problem,))
    try:
        doc = load_yaml(file)
    except YamlError as error:
        return Loaded(experiment=None, problems=error.problems)
    return _Checker(doc, dict(labels or {})).check()


def short_value(value: Any) -> str:
    """A value as it appears in a run name: floats in their shortest form (``1e-4``, ``0.5``),
    booleans as ``true``/``false``, lists and mappings flattened with ``-``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return _short_float(value)
    if isinstance(value, Mapping):
        return "-".join(f"{key}-{short_value(item)}" for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return "-".join(short_value(item) for item in value)
    return str(value)


def run_directory(directory: Path, name: str) -> Path:
    """``directory / name``, refusing a name that would lead outside ``directory``."""
    candidate = directory / name
    if name in ("", ".", "..") or Path(os.path.normpath(candidate)).parent != directory:
        raise ValueError(f"run name {name!r} would leave the experiment directory {directory}")
    return candidate


def _short_float(value: float) -> str:
    text = repr(value)
    if not math.isfinite(value) or value == 0:
        return text
    sign, digits, exponent = decimal.Decimal(text).as_tuple()
    power = exponent + len(digits) - 1  # the exponent with one digit before the point
    significant = "".join(map(str, digits)).rstrip("0")
    mantissa = significant[0] + (f".{significant[1:]}" if len(significant) > 1 else "")
    compact = f"{'-' if sign else ''}{mantissa}e{power}"
    return compact if len(compact) < len(text) else text


def _canonical(value: Any) -> str:
    """A stable text for a value: equal values give equal texts, across runs of the program."""
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def _fit(base: str, suffix: str) -> str:
    """``base-suffix``, cutting ``base`` so that the whole fits a generated name."""
    room = MAX_GENERATED_NAME - len(suffix) - 1
    return f"{base[:room].rstrip('-._')}-{suffix}"


def _clean(name: str) -> str:
    """A name safe in a path and a shell word: other characters become ``-``, it starts with a
    letter or digit, and a long one is cut and given a hash of the whole."""
    cleaned = _LEADING.sub("", _UNSAFE.sub("-", name)) or "run"
    if len(cleaned) > MAX_GENERATED_NAME:
        cleaned = _fit(cleaned, _hash(name))
    return cleaned


def _unique(names: list[str], seeds: list[str]) -> list[str]:
    """``names`` with each shared name given a hash of its run's ``seed`` (its parameters)."""
    counts = Counter(names)
    taken = {name for name in names if counts[name] == 1}
    result = []
    for name, seed in zip(names, seeds, strict=True):
        if counts[name] == 1:
            result.append(name)
            continue
        candidate, number = _fit(name, _hash(seed)), 2
        while candidate in taken:  # identical parameters: only a counter tells them apart
            candidate, number = _fit(name, f"{_hash(seed)}-{number}"), number + 1
        taken.add(candidate)
        result.append(candidate)
    return result


def _kind(value: Any) -> str:
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


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_count(value: Any) -> bool:
    """A non-negative int that is not a bool (YAML's ``true`` is an int to Python)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class _Checker:
    """One pass over a loaded file: builds the records and collects every problem."""

    def __init__(self, doc: YamlDoc, labels: dict[str, str]) -> None:
        self.doc = doc
        self.labels = labels
        self.folder = doc.file.parent
        self.problems: list[Problem] = []
        self.keys: list[Key] = []
        self.directory = self.folder
        self.model_names: list[str] = []  # every declared name, valid or not: no cascades
        self.run_names: list[str] = []
        self.task_names: list[str] = []
        self.factors: list[list[dict[str, Any]]] = []  # the grid's factors, as written
        self.runs_refused = False  # too many runs: no run name is known, none is wrong

    # --- reporting and types ------------------------------------------------------------

    def error(self, path: str, message: str, hint: str = "") -> None:
        self.problems.append(Problem(where=self.doc.where(path), message=message, hint=hint))

    def mapping(self, value: Any, path: str) -> dict[str, Any]:
        """``value`` if it is a mapping; ``{}`` for null (an empty section) or after an error."""
        if value is None:
            return {}
        if isinstance(value, dict):
            return value
        self.error(path, f"expected a mapping (key: value lines), not {_kind(value)}")
        return {}

    def known_keys(self, data: dict[str, Any], path: str, valid: Iterable[str]) -> None:
        valid = tuple(valid)
        for key in data:
            if key not in valid:
                hint = did_you_mean(key, valid) or one_of(valid)
                self.error(_join(path, key), "unknown key", hint)

    def string(
        self, data: dict[str, Any], key: str, path: str, *, required: bool = False
    ) -> str | None:
        """The string at ``data[key]``; None (with an error if required) when absent."""
        value = data.get(key)
        if value is None:
            if required:
                self.error(_join(path, key), f"{key} is required")
            return None
        if not isinstance(value, str):
            self.error(_join(path, key), f"expected a string, not {_kind(value)}")
            return None
        return value

    def name(self, data: dict[str, Any], path: str, *, required: bool = True) -> str | None:
        """``data["name"]`` as written, with an error if it is not a valid name (never
        cleaned: the user chose it and other places may refer to it)."""
        value = data.get("name")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.error(_join(path, "name"), "expected a string, not a number", "quote it")
            return str(value)
        value = self.string(data, "name", path, required=required)
        if value is not None and not NAME_PATTERN.fullmatch(value):
            self.error(_join(path, "name"), f"{yaml_text(value)} is not a valid name", _NAME_HINT)
        return value

    def file_path(
        self, data: dict[str, Any], key: str, path: str, *, required: bool, what: str
    ) -> Path | None:
        """``data[key]`` resolved against the file's folder; an error if it does not exist."""
        value = self.string(data, key, path, required=required)
        if value is None:
            return None
        if not value:
            self.error(_join(path, key), "the path is empty")
            return None
        resolved = self.resolve(value, _join(path, key))
        if resolved is None:
            return None
        try:
            exists = resolved.exists()
        except OSError as error:  # a path too long in all, no permission to look
            self.error(_join(path, key), f"cannot look for the {what}: {error.strerror or error}")
            return None
        if not exists:
            self.error(
                _join(path, key),
                f"{what} not found: {resolved}",
                "paths are relative to the experiment file's folder",
            )
        return resolved

    def resolve(self, value: str, path: str) -> Path | None:
        """``value`` as an absolute path, relative ones against the experiment file's folder."""
        try:
            resolved = (self.folder / Path(value).expanduser()).resolve()
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
        return resolved

    def check_epochs(self, value: Any, path: str) -> None:
        """At most MAX_EPOCHS; what else epochs must be is the training tool's to check."""
        if _is_count(value) and value > MAX_EPOCHS:
            self.error(
                path,
                f"{value} epochs is more than the {MAX_EPOCHS} a run may train for",
                f"epochs is a whole number from 1 to {MAX_EPOCHS}",
            )

    def check_prompt(self, value: Any, path: str) -> None:
        if isinstance(value, str) and "{input}" not in value:
            self.error(path, "the prompt does not contain {input}", _PROMPT_HINT)

    # --- the file -----------------------------------------------------------------------

    def check(self) -> Loaded:
        data = self.doc.data
        for key in data:
            if key not in SECTIONS:
                self.error(key, "unknown section", did_you_mean(key, SECTIONS) or one_of(SECTIONS))
        name, meta = self.experiment(data)
        tools = self.tools(self.mapping(data.get("tools"), "tools"))
        variables = self.variables(self.mapping(data.get("variables"), "variables"))
        controls = self.plugin_keys(data, "controls", "parameters")
        self.check_prompt(controls.get("prompt"), "controls.prompt")
        self.check_epochs(controls.get("epochs"), "controls.epochs")
        models = self.models(data)
        training = self.data(data)
        output = self.plugin_keys(data, "output", "output")
        scheduler = self.scheduler(self.mapping(data.get("scheduler"), "scheduler"))
        explicit = data.get("runs") is not None
        runs = self.runs(data["runs"]) if explicit else self.grid(models)
        evaluation = None
        if data.get("evaluation") is not None:
            evaluation = self.evaluation(
                self.mapping(data["evaluation"], "evaluation"), runs, controls
            )
        experiment = Experiment(
            name=name,
            file=self.doc.file,
            directory=self.directory,
            meta=meta,
            tools=tools,
            variables=variables,
            controls=controls,
            models=models,
            data=training,
            output=output,
            runs=runs,
            evaluation=evaluation,
            scheduler=scheduler,
            document=data,
            locate=self.doc.where,
        )
        problems = sorted(
            self.problems, key=lambda p: (p.where.line or 0, p.where.column or 0, p.where.path)
        )
        return Loaded(experiment=experiment, keys=tuple(self.keys), problems=tuple(problems))

    def experiment(self, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The name and free-form metadata; sets the experiment directory."""
        if "experiment" not in data:
            self.error(
                "experiment",
                "the experiment section is missing",
                'add experiment: {name: "my_experiment"}',
            )
        section = self.mapping(data.get("experiment"), "experiment")
        name = self.name(section, "experiment", required="experiment" in data)
        if section.get("date") is not None:
            date = section["date"]
            try:
                valid = isinstance(date, str) and bool(_DATE.fullmatch(date))
                valid = valid and bool(datetime.date.fromisoformat(date))
            except ValueError:
                valid = False
            if not valid:
                self.error(
                    "experiment.date", f"{yaml_text(date)} is not a date", "write YYYY-MM-DD"
                )
        directory = self.string(section, "dir", "experiment")
        if directory == "":
            self.error("experiment.dir", "the path is empty", "leave dir out for the file's folder")
        elif directory is not None:
            self.directory = self.resolve(directory, "experiment.dir") or self.folder
        meta = {key: value for key, value in section.items() if key not in ("name", "dir")}
        valid_name = name is not None and NAME_PATTERN.fullmatch(name)
        return (name if valid_name else PLACEHOLDER_NAME), meta

    def tools(self, section: dict[str, Any]) -> dict[str, str]:
        roles = [role.value for role in Role]
        tools = {}
        for role, tool in section.items():
            if role not in roles:
                self.error(
                    f"tools.{role}", "unknown role", did_you_mean(role, roles) or one_of(roles)
                )
            elif not isinstance(tool, str) or not tool:
                self.error(f"tools.{role}", f"expected a tool name, not {_kind(tool)}")
            else:
                tools[role] = tool  # as written: the plugin manager resolves names and aliases
        return tools

    def plugin_keys(self, data: dict[str, Any], section: str, namespace: str) -> dict[str, Any]:
        """A section whose keys belong to plugins: each one becomes a Key."""
        values = self.mapping(data.get(section), section)
        for key, value in values.items():
            self.keys.append(Key(section=namespace, path=f"{section}.{key}", name=key, value=value))
        return values

    def scheduler(self, section: dict[str, Any]) -> SchedulerConfig:
        name = self.string(section, "name", "scheduler")
        options = {key: value for key, value in section.items() if key != "name"}
        for key, value in options.items():
            self.keys.append(
                Key(section="scheduler", path=f"scheduler.{key}", name=key, value=value)
            )
        return SchedulerConfig(name=name, options=options)

    # --- variables ----------------------------------------------------------------------

    def variables(self, section: dict[str, Any]) -> list[Axis | ZipGroup]:
        """The axes and zip groups in file order; records the grid's factors as written."""
        axes: list[Axis | ZipGroup] = []
        swept: dict[str, str] = {}  # parameter -> where it is swept first
        for key, value in section.items():
            if key == "zip":
                axes += self.zip_groups(value, swept)
                continue
            path = f"variables.{key}"
            self.keys.append(Key(section="parameters", path=path, name=key, value=value))
            values = self.values(value, path, key)
            if values is not None and self.sweep(key, path, swept):
                axes.append(Axis(key=key, values=values))
                self.add_factor([{key: item} for item in values], path)
        return axes

    def zip_groups(self, value: Any, swept: dict[str, str]) -> list[ZipGroup]:
        if not isinstance(value, list):
            self.error(
                "variables.zip",
                f"expected a list of groups, not {_kind(value)}",
                "write - {batch_size: [4, 8], gradient_accumulation_steps: [2, 1]}",
            )
            return []
        groups = []
        for index, group in enumerate(value):
            path = f"variables.zip[{index}]"
            if not isinstance(group, dict) or not group:
                found = "an empty mapping" if group == {} else _kind(group)
                self.error(path, f"expected a mapping of parameters to lists, not {found}")
                continue
            axes = []
            for key, item in group.items():
                axis_path = f"{path}.{key}"
                self.keys.append(Key(section="parameters", path=axis_path, name=key, value=item))
                values = self.values(item, axis_path, key)
                if values is not None and self.sweep(key, axis_path, swept):
                    axes.append(Axis(key=key, values=values))
            lengths = {axis.key: len(axis.values) for axis in axes}
            if len(set(lengths.values())) > 1:
                counts = ", ".join(f"{key} has {count}" for key, count in lengths.items())
                self.error(
                    path,
                    f"the lists of a zip group must have one length: {counts}",
                    "the i-th values of every list go into one run",
                )
            elif axes:
                groups.append(ZipGroup(axes=axes))
                rows = [
                    {axis.key: group[axis.key][i] for axis in axes}
                    for i in range(len(axes[0].values))
                ]
                self.add_factor(rows, path)
        return groups

    def values(self, value: Any, path: str, key: str) -> list[Any] | None:
        if isinstance(value, list) and value:
            for index, item in enumerate(value):
                if key == "prompt":
                    self.check_prompt(item, f"{path}[{index}]")
                elif key == "epochs":
                    self.check_epochs(item, f"{path}[{index}]")
            return value
        if isinstance(value, list):
            self.error(path, "an axis needs at least one value")
        elif isinstance(value, dict):
            self.error(path, "expected a list of values, not a mapping")
        else:
            self.error(
                path,
                f"expected a list of values, not {_kind(value)}",
                f"write {yaml_text([value])} for one value, or set it in controls",
            )
        return None

    def sweep(self, key: str, path: str, swept: dict[str, str]) -> bool:
        if key in swept:
            self.error(
                path,
                f"{key} is already swept at {swept[key]}",
                "a parameter belongs to one axis or zip group",
            )
            return False
        swept[key] = path
        return True

    def add_factor(self, rows: list[dict[str, Any]], path: str) -> None:
        seen: set[str] = set()
        for row in rows:
            text = _canonical(row)
            if text in seen:
                shown = ", ".join(f"{key}={yaml_text(value)}" for key, value in row.items())
                self.error(path, f"{shown} appears twice", "the two runs would be identical")
                return
            seen.add(text)
        self.factors.append(rows)

    # --- models and data ----------------------------------------------------------------

    def models(self, data: dict[str, Any]) -> list[ModelRef]:
        if "models" not in data:
            self.error(
                "models",
                "the models section is missing",
                "add models: {base: [{name: ..., path: ...}]}",
            )
            return []
        section = self.mapping(data["models"], "models")
        self.known_keys(section, "models", ["base"])
        base = section.get("base")
        if not isinstance(base, list) or not base:
            self.error(
                "models.base",
                "expected a list of base models, not " + _kind(base),
                "write - {name: my-model, path: models/my-model}",
            )
            return []
        models = []
        for index, item in enumerate(base):
            path = f"models.base[{index}]"
            if not isinstance(item, dict):
                self.error(path, f"expected a mapping (name, path), not {_kind(item)}")
                continue
            self.known_keys(item, path, ["name", "path", "size_gb"])
            name = self.name(item, path)
            if name is not None and name in self.model_names:
                self.error(
                    f"{path}.name",
                    f"a second base model is called {yaml_text(name)}",
                    "model names must be unique",
                )
            elif name is not None:
                self.model_names.append(name)
            folder = self.file_path(item, "path", path, required=True, what="model folder")
            size = item.get("size_gb")
            if size is not None and (
                isinstance(size, bool) or not isinstance(size, (int, float)) or size < 0
            ):
                self.error(f"{path}.size_gb", f"expected a size in GB, not {_kind(size)}")
                size = None
            if name and NAME_PATTERN.fullmatch(name) and folder is not None:
                models.append(ModelRef(name=name, path=folder, size_gb=size))
        return models

    def data(self, data: dict[str, Any]) -> DataRef | None:
        if data.get("data") is None:
            return None
        section = self.mapping(data["data"], "data")
        self.known_keys(section, "data", ["training"])
        if "training" not in section:
            self.error("data.training", "training is required", "add training: {path: ...}")
            return None
        training = self.mapping(section["training"], "data.training")
        path = "data.training"
        self.known_keys(training, path, ["path", "format", "dataset_label", "splits"])
        file = self.file_path(training, "path", path, required=True, what="data file")
        splits = self.mapping(training.get("splits"), f"{path}.splits")
        for split, count in splits.items():
            if not _is_count(count):
                self.error(f"{path}.splits.{split}", f"expected a count, not {_kind(count)}")
        if file is None:
            return None
        return DataRef(
            path=file,
            format=self.string(training, "format", path) or "json",
            label=self.string(training, "dataset_label", path) or "",
            splits={split: count for split, count in splits.items() if _is_count(count)},
        )

    # --- runs ---------------------------------------------------------------------------

    def runs(self, value: Any) -> list[Run]:
        """Explicit runs, used as written."""
        if not isinstance(value, list):
            self.error("runs", f"expected a list of runs, not {_kind(value)}")
            return []
        if not value:
            self.error(
                "runs",
                "the list of runs is empty",
                "leave runs out for the grid of variables over the base models",
            )
        types = [kind.value for kind in RunType]
        runs = []
        trained = 0
        for index, item in enumerate(value):
            path = f"runs[{index}]"
            if not isinstance(item, dict):
                self.error(path, f"expected a mapping (name, type, model...), not {_kind(item)}")
                continue
            trained += item.get("type") in (None, RunType.FINE_TUNED.value)
            if trained > MAX_RUNS:
                self.error(
                    path,
                    f"more than {MAX_RUNS:,} fine-tuned runs",
                    f"an experiment has at most {MAX_RUNS:,}: split it into several files",
                )
                self.runs_refused = True
                break
            self.known_keys(item, path, ["name", "type", "model", "parameters"])
            name = self.name(item, path)
            if name is not None and name in self.run_names:
                self.error(
                    f"{path}.name",
                    f"a second run is called {yaml_text(name)}",
                    "run names must be unique",
                )
                name = None
            elif name is not None:
                self.run_names.append(name)
            kind = RunType.FINE_TUNED
            written = self.string(item, "type", path)
            if written is not None and written not in types:
                self.error(
                    f"{path}.type",
                    f"unknown run type {yaml_text(written)}",
                    did_you_mean(written, types) or one_of(types),
                )
            elif written is not None:
                kind = RunType(written)
            model = self.string(item, "model", path, required=True)
            if model is not None and self.model_names and model not in self.model_names:
                self.error(
                    f"{path}.model",
                    f"{yaml_text(model)} is not a base model",
                    did_you_mean(model, self.model_names) or one_of(self.model_names),
                )
            parameters = self.mapping(item.get("parameters"), f"{path}.parameters")
            for key, setting in parameters.items():
                self.keys.append(
                    Key(
                        section="parameters",
                        path=f"{path}.parameters.{key}",
                        name=key,
                        value=setting,
                    )
                )
            self.check_prompt(parameters.get("prompt"), f"{path}.parameters.prompt")
            self.check_epochs(parameters.get("epochs"), f"{path}.parameters.epochs")
            if name and NAME_PATTERN.fullmatch(name) and model is not None:
                runs.append(
                    Run(
                        name=name,
                        type=kind,
                        model=model,
                        parameters=parameters,
                        directory=run_directory(self.directory, name),
                        index=index,
                    )
                )
        return runs

    def grid(self, models: list[ModelRef]) -> list[Run]:
        """The product of the factors (first outermost) over the base models (outermost),
        then one control run per base model. No runs at all (and an error) when there would be
        more than MAX_RUNS: they are counted before they are made, as a slip can make the
        product astronomical."""
        sizes = [len(models)] + [len(factor) for factor in self.factors]
        if math.prod(sizes) > MAX_RUNS:
            product = " × ".join(str(size) for size in sizes)
            self.error(
                "variables",
                f"the grid has {math.prod(sizes):,} fine-tuned runs ({product}: base models "
                "× the values of each axis or zip group)",
                f"an experiment has at most {MAX_RUNS:,}: sweep fewer values, or split it into "
                "several files",
            )
            self.runs_refused = True
            return []
        keys = [key for factor in self.factors for key in factor[0]]
        varying = {
            key
            for factor in self.factors
            for key in factor[0]
            if len({_canonical(row[key]) for row in factor}) > 1
        }
        several = len(models) > 1
        planned: list[tuple[str, RunType, str, dict[str, Any]]] = []
        for model in models:
            for point in itertools.product(*self.factors):
                parameters = {key: value for row in point for key, value in row.items()}
                parts = [model.name] if several else []
                parts += [self.label(key, parameters[key]) for key in keys if key in varying]
                name = "_".join(parts) or "finetuned"
                planned.append((name, RunType.FINE_TUNED, model.name, parameters))
        for model in models:
            name = f"{model.name}_base" if several else "base"
            planned.append((name, RunType.CONTROL, model.name, {}))
        names = _unique(
            [_clean(name) for name, *_ in planned],
            [_canonical([kind.value, model, parameters]) for _, kind, model, parameters in planned],
        )
        self.run_names = names
        return [
            Run(
                name=name,
                type=kind,
                model=model,
                parameters=parameters,
                directory=run_directory(self.directory, name),
                index=index,
            )
            for index, (name, (_, kind, model, parameters)) in enumerate(
                zip(names, planned, strict=True)
            )
        ]

    def label(self, key: str, value: Any) -> str:
        label = str(self.labels.get(key, key))
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return f"{label}{short_value(value)}" if number else f"{label}-{short_value(value)}"

    # --- evaluation ---------------------------------------------------------------------

    def evaluation(
        self, section: dict[str, Any], runs: list[Run], controls: dict[str, Any]
    ) -> Evaluation:
        settings = {}
        for key, value in section.items():
            if key not in ("scorers", "tasks", "matrix"):
                settings[key] = value
                self.keys.append(
                    Key(section="evaluation", path=f"evaluation.{key}", name=key, value=value)
                )
        scorers = self.scorers(section.get("scorers"))
        tasks = self.tasks(section.get("tasks"))
        matrix = None
        if section.get("matrix") is not None:
            runs_by_name = {run.name: run for run in runs}
            matrix = tuple(self.matrix(section["matrix"], runs_by_name, controls))
        return Evaluation(settings=settings, scorers=scorers, tasks=tasks, matrix=matrix)

    def scorers(self, value: Any) -> list[Scorer]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(
                "evaluation.scorers",
                f"expected a list of scorers, not {_kind(value)}",
                "write - name: match",
            )
            return []
        scorers = []
        for index, item in enumerate(value):
            path = f"evaluation.scorers[{index}]"
            if isinstance(item, str) and item:
                scorers.append(Scorer(name=item))
                continue
            if not isinstance(item, dict):
                self.error(path, f"expected a scorer name or mapping, not {_kind(item)}")
                continue
            self.known_keys(item, path, ["name", "params"])
            name = self.string(item, "name", path, required=True)
            params = self.mapping(item.get("params"), f"{path}.params")
            if name:
                scorers.append(Scorer(name=name, params=params))
        return scorers

    def tasks(self, value: Any) -> list[EvalTask]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(
                "evaluation.tasks",
                f"expected a list of tasks, not {_kind(value)}",
                "write - name: my_task",
            )
            return []
        tasks = []
        for index, item in enumerate(value):
            path = f"evaluation.tasks[{index}]"
            if not isinstance(item, dict):
                self.error(
                    path,
                    f"expected a mapping (name, script...), not {_kind(item)}",
                    f"write - name: {yaml_text(item, quote=False)}"
                    if isinstance(item, str)
                    else "",
                )
                continue
            name = self.name(item, path)
            if name is not None and name in self.task_names:
                self.error(
                    f"{path}.name",
                    f"a second task is called {yaml_text(name)}",
                    "task names must be unique",
                )
                name = None
            elif name is not None:
                self.task_names.append(name)
            script = None
            if item.get("script") is not None:
                script = self.file_path(item, "script", path, required=False, what="task script")
            settings = {
                key: setting for key, setting in item.items() if key not in ("name", "script")
            }
            for key, setting in settings.items():
                self.keys.append(Key(section="task", path=f"{path}.{key}", name=key, value=setting))
            self.check_prompt(settings.get("prompt"), f"{path}.prompt")
            if name and NAME_PATTERN.fullmatch(name):
                tasks.append(EvalTask(name=name, script=script, settings=settings))
        return tasks

    def matrix(
        self, value: Any, runs: dict[str, Run], controls: dict[str, Any]
    ) -> list[MatrixEntry]:
        if not isinstance(value, list):
            self.error(
                "evaluation.matrix",
                f"expected a list of entries, not {_kind(value)}",
                "write - {run: ..., tasks: [...], epochs: [0]}",
            )
            return []
        entries = []
        for index, item in enumerate(value):
            path = f"evaluation.matrix[{index}]"
            if not isinstance(item, dict):
                self.error(path, f"expected a mapping (run, tasks, epochs), not {_kind(item)}")
                continue
            self.known_keys(item, path, ["run", "tasks", "epochs"])
            name = self.string(item, "run", path, required=True)
            if name is not None and name not in self.run_names and not self.runs_refused:
                self.error(
                    f"{path}.run",
                    f"{yaml_text(name)} is not a run",
                    did_you_mean(name, self.run_names) or one_of(self.run_names),
                )
            tasks = self.matrix_tasks(item.get("tasks"), f"{path}.tasks")
            epochs = self.epochs(item.get("epochs"), f"{path}.epochs")
            run = runs.get(name) if name is not None else None
            if run is not None and epochs is not None:
                self.epoch_range(run, item["epochs"], f"{path}.epochs", controls)
            if name is not None:
                entries.append(MatrixEntry(run=name, tasks=tasks, epochs=epochs))
        return entries

    def matrix_tasks(self, value: Any, path: str) -> list[str]:
        if value is None:
            return []  # every task
        if not isinstance(value, list):
            hint = f"write {yaml_text([value])}" if isinstance(value, str) else ""
            self.error(path, f"expected a list of task names, not {_kind(value)}", hint)
            return []
        tasks = []
        for index, task in enumerate(value):
            if not isinstance(task, str):
                self.error(f"{path}[{index}]", f"expected a task name, not {_kind(task)}")
            elif task not in self.task_names:
                self.error(
                    f"{path}[{index}]",
                    f"{yaml_text(task)} is not a task",
                    did_you_mean(task, self.task_names) or one_of(self.task_names),
                )
            else:
                tasks.append(task)
        return tasks

    def epochs(self, value: Any, path: str) -> tuple[int, ...] | str | None:
        hint = 'write a list of 0-based epochs such as [0, 1], "all", or null'
        if value is None or value == "all":
            return value
        if not isinstance(value, list):
            self.error(path, f"expected a list of epochs, not {_kind(value)}", hint)
            return None
        for index, epoch in enumerate(value):
            if not _is_count(epoch):
                self.error(f"{path}[{index}]", f"{yaml_text(epoch)} is not an epoch", hint)
        return tuple(epoch for epoch in value if _is_count(epoch))

    def epoch_range(self, run: Run, written: Any, path: str, controls: dict[str, Any]) -> None:
        """Epochs only for a fine-tuned run, and each below its number of epochs when known."""
        if run.type is not RunType.FINE_TUNED:
            self.error(
                path,
                f"{run.name} is a {run.type.value} run: it has no epochs",
                "write epochs: null or leave it out",
            )
            return
        total = run.parameters.get("epochs", controls.get("epochs"))
        if not isinstance(written, list) or not _is_count(total) or total == 0:
            return
        for index, epoch in enumerate(written):
            if _is_count(epoch) and epoch >= total:
                self.error(
                    f"{path}[{index}]",
                    f"epoch {epoch} is out of range: {run.name} trains for {total} epochs",
                    f"epochs are 0-based: 0 to {total - 1}",
                )
