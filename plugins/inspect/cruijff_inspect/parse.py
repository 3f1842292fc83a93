"""``cruijff_parse`` for the inspect tool: claim its keys and check them, every problem at once.

Beyond each value's type: the task functions named exist in their scripts (read with ``ast``;
a task file runs only inside a job), registered tasks and scorers come from installed packages,
scorer names and parameters are inspect's, datasets and checkpoints exist, and decoding settings
agree with each other. Each problem points at its key (file:line) with a "did you mean".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cruijff.records import EvalTask, Experiment, Key, ParseReport, Problem, RunType, Severity
from cruijff.suggest import did_you_mean, one_of
from cruijff_inspect import introspect
from cruijff_inspect.settings import (
    DEFAULT_PROVIDER,
    EVALUATION,
    MOCK_PROVIDER,
    PARAMETERS,
    SAME,
    TASK,
    decoding_problem,
    evaluation_setting,
)

PLUGIN = "inspect"
OWN_PACKAGE = "cruijff_inspect"
"""This package's own ``inspect_ai`` entry point (the offline provider)."""
NAMES = ("inspect", "inspect-ai")
"""The tool's name and alias, as an experiment's ``tools`` section may write them."""

VOCABULARY = {"parameters": tuple(PARAMETERS), "evaluation": tuple(EVALUATION), "task": tuple(TASK)}


def resolve(experiment: Experiment, value: str) -> Path:
    """A path as written in the experiment file: relative ones against its folder."""
    return (experiment.file.parent / Path(value).expanduser()).resolve()


def written_tasks(experiment: Experiment) -> Iterator[tuple[int, EvalTask]]:
    """Each task with its index in the file (the core drops invalid ones from its records)."""
    tasks = (
        {task.name: task for task in experiment.evaluation.tasks} if (experiment.evaluation) else {}
    )
    section = experiment.document.get("evaluation") or {}
    items = section.get("tasks") if isinstance(section, Mapping) else None
    for index, item in enumerate(items if isinstance(items, (list, tuple)) else ()):
        if isinstance(item, Mapping) and item.get("name") in tasks:
            yield index, tasks[item["name"]]


class _Checker:
    """Collects the problems of one experiment."""

    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment
        self.problems: list[Problem] = []

    def add(self, path: str, message: str, hint: str = "", *, warning: bool = False) -> None:
        self.problems.append(
            Problem(
                where=self.experiment.locate(path),
                message=message,
                hint=hint,
                plugin=PLUGIN,
                severity=Severity.WARNING if warning else Severity.ERROR,
            )
        )

    # --- values -------------------------------------------------------------------------

    def keys(self, keys: tuple[Key, ...]) -> set[str]:
        """Claim the keys of our vocabulary and check each value; the claimed paths."""
        claimed = set()
        for key in keys:
            checks = {"parameters": PARAMETERS, "evaluation": EVALUATION, "task": TASK}.get(
                key.section, {}
            )
            if key.name not in checks:
                continue
            claimed.add(key.path)
            swept = key.path.startswith("variables.") and isinstance(key.value, tuple)
            for index, value in enumerate(key.value if swept else (key.value,)):
                message = checks[key.name](value)
                if message:
                    self.add(f"{key.path}[{index}]" if swept else key.path, message)
            if key.name == "checkpoint_path" and not key.path.startswith("runs["):
                self.add(
                    key.path,
                    "checkpoint_path belongs to one run",
                    "set it in the parameters of a run of type eval-only",
                )
        return claimed

    def decoding(self) -> None:
        settings = self.experiment.evaluation.settings if self.experiment.evaluation else {}
        if evaluation_setting(self.experiment, "provider", DEFAULT_PROVIDER) != DEFAULT_PROVIDER:
            return
        found = decoding_problem(settings)
        if found:
            key, message, hint = found
            self.add(f"evaluation.{key}", message, hint)

    def provider(self) -> None:
        name = evaluation_setting(self.experiment, "provider")
        if not isinstance(name, str) or name in (DEFAULT_PROVIDER, MOCK_PROVIDER):
            return
        known = (*introspect.providers(), MOCK_PROVIDER)
        if name in known:
            self.add(
                "evaluation.provider",
                f"cruijff evaluates model folders with hf; the {name} provider gets the "
                "folder as model_path and may not understand it",
                warning=True,
            )
        elif others := [p for p in introspect.extension_packages() if p != OWN_PACKAGE]:
            self.add(
                "evaluation.provider",
                f"{name!r} is not a provider of inspect-ai itself; it must come from an "
                f"installed extension ({', '.join(others)})",
                warning=True,
            )
        else:
            self.add(
                "evaluation.provider",
                f"unknown model provider {name!r}",
                did_you_mean(name, known)
                or f"cruijff uses {DEFAULT_PROVIDER} (or {MOCK_PROVIDER} to try it offline)",
            )

    # --- scorers ------------------------------------------------------------------------

    def scorers(self) -> None:
        section = self.experiment.document.get("evaluation") or {}
        written = section.get("scorers") if isinstance(section, Mapping) else None
        if not isinstance(written, (list, tuple)):
            return
        builtin = introspect.scorers()
        local: dict[str, introspect.Function] = {}
        for task in self.experiment.evaluation.tasks if self.experiment.evaluation else ():
            if task.script is not None and task.script.exists():
                try:
                    found = introspect.functions(task.script, "scorer")
                except introspect.SourceError:
                    continue  # reported with the task
                local.update({f.name: f for f in found if f.decorated})
        for index, item in enumerate(written):
            path = f"evaluation.scorers[{index}]"
            if isinstance(item, str):
                name, params = item, {}
            elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
                name, params, path = item["name"], item.get("params") or {}, f"{path}.name"
            else:
                continue  # the core reports it
            self.scorer(name, params if isinstance(params, Mapping) else {}, path, builtin, local)

    def scorer(
        self,
        name: str,
        params: Mapping[str, Any],
        path: str,
        builtin: Mapping[str, introspect.Function],
        local: Mapping[str, introspect.Function],
    ) -> None:
        if "/" in name:
            self.package(name, path, "scorer")
            return
        function = local.get(name) or builtin.get(name)
        if function is None:
            names = {*builtin, *local}
            self.add(
                path,
                f"inspect has no scorer {name!r}",
                did_you_mean(name, names) or one_of(names),
            )
            return
        base = path.removesuffix(".name")
        for key in params:
            if not function.accepts(key):
                self.add(
                    f"{base}.params.{key}",
                    f"the scorer {name} has no parameter {key!r}",
                    did_you_mean(key, function.params)
                    or one_of(function.params)
                    or f"{name} takes no parameters",
                )

    def package(self, name: str, path: str, what: str) -> None:
        """``package/name``: the package must be an installed inspect extension."""
        package = name.split("/", 1)[0]
        installed = introspect.extension_packages()
        if package not in installed:
            self.add(
                path,
                f"no installed package registers inspect {what}s as {package}/...",
                did_you_mean(package, installed)
                or f"install the package that provides {name} (installed extensions: "
                f"{', '.join(installed) or 'none'})",
            )

    # --- tasks --------------------------------------------------------------------------

    def tasks(self) -> None:
        found = list(written_tasks(self.experiment))
        if not found and not self._any_task_written():
            where = "evaluation" if self.experiment.evaluation else "tools.evaluation"
            self.add(
                where,
                "the inspect tool has no task to evaluate",
                "add evaluation: {tasks: [{name: my_task, script: tasks/my_task.py}]}",
            )
        for index, task in found:
            base = f"evaluation.tasks[{index}]"
            if task.script is not None:
                self.script_task(task, base)
            else:
                self.registered_task(task, base)
            self.dataset(task, base)

    def _any_task_written(self) -> bool:
        section = self.experiment.document.get("evaluation") or {}
        return bool(isinstance(section, Mapping) and section.get("tasks"))

    def script_task(self, task: EvalTask, base: str) -> None:
        assert task.script is not None
        if task.settings.get("task") is not None:
            self.add(
                f"{base}.task",
                "a task comes from a script or from an installed package, not both",
                "leave out task: (a registered name) or script:",
            )
        if not task.script.is_file():
            return  # the core reports a missing script
        try:
            functions = introspect.task_functions(task.script)
        except introspect.SourceError as error:
            self.add(f"{base}.script", f"cannot read the task file: {error}")
            return
        chosen = task.settings.get("function")
        name = chosen if isinstance(chosen, str) else task.name
        where = f"{base}.function" if isinstance(chosen, str) else f"{base}.name"
        function = functions.get(name)
        if function is None:
            plain = {f.name for f in introspect.functions(task.script, "task")}
            if name in plain:
                self.add(
                    where,
                    f"{name} in {task.script.name} is not an inspect task",
                    "decorate it with @task (from inspect_ai import task)",
                )
            else:
                self.add(
                    where,
                    f"{task.script.name} has no @task function {name!r}",
                    did_you_mean(name, functions)
                    or one_of(functions)
                    or "the file defines no @task function",
                )
            return
        args = task.settings.get("args")
        for key in args if isinstance(args, Mapping) else ():
            if not function.accepts(key):
                self.add(
                    f"{base}.args.{key}",
                    f"the task {name} has no parameter {key!r}",
                    did_you_mean(key, function.params)
                    or one_of(function.params)
                    or f"{name} takes no parameters",
                )

    def registered_task(self, task: EvalTask, base: str) -> None:
        if task.settings.get("function") is not None:
            self.add(
                f"{base}.function",
                "function names a function of a task file, and this task has no script",
                "add script: tasks/my_task.py, or use task: package/name",
            )
        registered = task.settings.get("task")
        if registered is not None and not isinstance(registered, str):
            return  # the type check reports it
        name = registered or task.name
        where = f"{base}.task" if registered else f"{base}.name"
        if "/" not in name:
            self.add(
                where,
                f"{name!r} is neither a task file's function nor a registered task",
                f"add script: tasks/{name}.py (with an @task function {name}), or "
                f"task: package/{name} for a task an installed package registers",
            )
            return
        self.package(name, where, "task")

    def dataset(self, task: EvalTask, base: str) -> None:
        dataset = task.settings.get("dataset")
        if not isinstance(dataset, str) or not dataset.strip():
            return
        if dataset == SAME:
            if self.experiment.data is None:
                self.add(
                    f"{base}.dataset",
                    "dataset: same means the training data, and there is none",
                    "add data: {training: {path: ...}} or give the evaluation data's path",
                )
            return
        path = resolve(self.experiment, dataset)
        if not path.exists():
            self.add(
                f"{base}.dataset",
                f"dataset not found: {path}",
                f"paths are relative to the experiment file's folder; {SAME} is the training data",
            )

    # --- runs ---------------------------------------------------------------------------

    def checkpoints(self) -> None:
        for run in self.experiment.runs:
            value = run.parameters.get("checkpoint_path")
            path = f"runs[{run.index}].parameters.checkpoint_path"
            if run.type is not RunType.EVAL_ONLY:
                if value is not None:
                    self.add(
                        path,
                        f"ignored: {run.name} is a {run.type.value} run",
                        "only eval-only runs evaluate an existing checkpoint",
                        warning=True,
                    )
                continue
            if value is None:
                self.add(
                    f"runs[{run.index}]",
                    f"the eval-only run {run.name} has no checkpoint_path",
                    "add parameters: {checkpoint_path: path/to/checkpoint} (a model folder)",
                )
                continue
            if not isinstance(value, str) or not value.strip():
                continue  # the type check reports it
            folder = resolve(self.experiment, value)
            if not folder.is_dir():
                self.add(
                    path,
                    f"checkpoint not found: {folder}",
                    "paths are relative to the experiment file's folder",
                )
            elif not (folder / "config.json").is_file():
                self.add(
                    path,
                    f"{folder} holds no config.json: not a model folder transformers loads",
                    "point at the folder with config.json, the weights and the tokenizer",
                )

    def inspect_installed(self) -> bool:
        if introspect.scorers():
            return True
        self.add(
            next(
                (f"tools.{role}" for role, name in self.experiment.tools.items() if name in NAMES),
                "tools",
            ),
            "inspect-ai is not installed",
            "pip install cruijff-inspect (it brings inspect-ai)",
        )
        return False


def parse(experiment: Experiment, keys: tuple[Key, ...]) -> ParseReport:
    """Claim and check the inspect tool's keys of an experiment that uses it."""
    checker = _Checker(experiment)
    claimed = checker.keys(keys)
    checker.decoding()
    checker.provider()
    checker.tasks()
    checker.checkpoints()
    if checker.inspect_installed():
        checker.scorers()
    return ParseReport(claimed=claimed, vocabulary=VOCABULARY, problems=checker.problems)
