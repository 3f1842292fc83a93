"""``cruijff_parse`` for the inspect tool: claim its keys and check them, every problem at once.

Beyond each value's type: every prompt has ``{input}``, the task functions named exist in their
scripts (read with ``ast``; a task file runs only inside a job), registered tasks and scorers
come from installed packages, scorer names and parameters are inspect's, datasets and
checkpoints exist, decoding settings agree with each other, and a matrix entry's epochs are
below its run's ``epochs`` where the file gives them. Each problem points at its key
(file:line, through the records' ``yaml_path``) with a "did you mean".
"""

from __future__ import annotations

from collections.abc import Mapping

from cruijff.records import (
    EvalTask,
    Experiment,
    Key,
    ParseReport,
    Problem,
    RunType,
    Scorer,
    Severity,
)
from cruijff.suggest import did_you_mean, one_of
from cruijff_inspect import introspect
from cruijff_inspect.matrix import out_of_range
from cruijff_inspect.settings import (
    DEFAULT_PROVIDER,
    EVALUATION,
    MOCK_PROVIDER,
    PARAMETERS,
    PLUGIN,
    SAME,
    TASK,
    decoding_problem,
    evaluation_setting,
)

OWN_PACKAGE = "cruijff_inspect"
"""This package's own ``inspect_ai`` entry point (the offline provider)."""
NAMES = ("inspect", "inspect-ai")
"""The tool's name and alias, as an experiment's ``tools`` section may write them."""

VOCABULARY = {"parameters": tuple(PARAMETERS), "evaluation": tuple(EVALUATION), "task": tuple(TASK)}


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
                found = checks[key.name](value)
                if found:
                    message, hint = (found, "") if isinstance(found, str) else found
                    self.add(f"{key.path}[{index}]" if swept else key.path, message, hint)
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
        evaluation = self.experiment.evaluation
        if evaluation is None or not evaluation.scorers:
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
        for scorer in evaluation.scorers:
            self.scorer(scorer, builtin, local)

    def scorer(
        self,
        scorer: Scorer,
        builtin: Mapping[str, introspect.Function],
        local: Mapping[str, introspect.Function],
    ) -> None:
        name = scorer.name
        if "/" in name:
            self.package(name, scorer.name_path, "scorer")
            return
        function = local.get(name) or builtin.get(name)
        if function is None:
            names = {*builtin, *local}
            self.add(
                scorer.name_path,
                f"inspect has no scorer {name!r}",
                did_you_mean(name, names) or one_of(names),
            )
            return
        for key in scorer.params:
            if not function.accepts(key):
                self.add(
                    f"{scorer.yaml_path}.params.{key}",
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
        evaluation = self.experiment.evaluation
        if evaluation is None or not evaluation.tasks_written:  # invalid ones: the core's
            self.add(
                "evaluation" if evaluation else "tools.evaluation",
                "the inspect tool has no task to evaluate",
                "add evaluation: {tasks: [{name: my_task, script: tasks/my_task.py}]}",
            )
        for task in evaluation.tasks if evaluation else ():
            if task.script is not None:
                self.script_task(task, task.yaml_path)
            else:
                self.registered_task(task, task.yaml_path)
            self.dataset(task, task.yaml_path)

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
        path = self.experiment.resolve(dataset)
        if not path.exists():
            self.add(
                f"{base}.dataset",
                f"dataset not found: {path}",
                f"paths are relative to the experiment file's folder; {SAME} is the training data",
            )

    # --- runs ---------------------------------------------------------------------------

    def checkpoints(self) -> None:
        for run in self.experiment.runs:
            if not run.yaml_path:
                continue  # a run of the grid: a swept checkpoint_path is reported at its key
            value = run.parameters.get("checkpoint_path")
            path = f"{run.yaml_path}.parameters.checkpoint_path"
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
                    run.yaml_path,
                    f"the eval-only run {run.name} has no checkpoint_path",
                    "add parameters: {checkpoint_path: path/to/checkpoint} (a model folder)",
                )
                continue
            if not isinstance(value, str) or not value.strip():
                continue  # the type check reports it
            folder = self.experiment.resolve(value)
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

    def matrix_epochs(self) -> None:
        """A matrix entry's epochs below the number its run trains for, where the file says it
        (the run's ``epochs``, else ``controls.epochs``). Select checks them again against the
        checkpoints the training tool makes."""
        evaluation = self.experiment.evaluation
        runs = {run.name: run for run in self.experiment.runs}
        for entry in (evaluation.matrix or ()) if evaluation else ():
            run = runs.get(entry.run)  # None: the core reports it
            if run is None or run.type is not RunType.FINE_TUNED:
                continue
            total = run.parameters.get("epochs", self.experiment.controls.get("epochs"))
            if not isinstance(entry.epochs, tuple):
                continue  # all, or the last: whatever the training makes
            if isinstance(total, bool) or not isinstance(total, int) or total < 1:
                continue  # unknown here, or wrong: the training tool says so
            for position, epoch in enumerate(entry.epochs):
                if epoch >= total:
                    where = f"{entry.yaml_path}.epochs[{position}]"
                    self.add(where, *out_of_range(run.name, epoch, range(total)))

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
    checker.matrix_epochs()
    if checker.inspect_installed():
        checker.scorers()
    return ParseReport(claimed=claimed, vocabulary=VOCABULARY, problems=checker.problems)
