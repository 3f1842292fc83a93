"""``cruijff_parse`` for the inspect tool: claim its keys and check them, every problem at once.

Beyond each value's type: every prompt has ``{input}``, the task functions named exist in their
scripts (read with ``ast``; a task file runs only inside a job), registered tasks and scorers
come from installed packages, scorer names and parameters are inspect's (a name it does not know
is a warning: only tasks that build their scorers read them), datasets and
checkpoints (model folders, or LoRA adapters whose recorded base exists) exist, each cell's data
file has the split it reads, decoding settings agree with each other as cruijff_kit requires,
every evaluated run has a ``dataset_type`` (the training tool says it of the runs it
fine-tunes, once), and a matrix entry's epochs are below its run's ``epochs`` where the file
gives them. Keys cruijff_kit retired or ignores are warnings that say so, as are
``evaluation.scorers`` where a task does not read them (it takes no ``config_path``) and a
run's ``system_prompt`` where its evaluation uses another (the task's or the controls'). Each
problem points at its key (file:line, through the records' ``yaml_path``), with a "did you
mean" where a name is close.
"""

from __future__ import annotations

from collections.abc import Mapping

from cruijff.records import (
    EvalTask,
    Experiment,
    Key,
    ParseReport,
    Problem,
    Run,
    RunType,
    Scorer,
    Severity,
)
from cruijff.suggest import did_you_mean, one_of
from cruijff_inspect import adapter, introspect
from cruijff_inspect.data import (
    EvalData,
    eval_data,
    generated,
    missing_split,
    task_function,
    top_level_keys,
)
from cruijff_inspect.matrix import out_of_range
from cruijff_inspect.settings import (
    CHAT,
    DATASET_TYPES,
    DEFAULT_PROVIDER,
    EVALUATION,
    LEGACY_SCORER,
    MOCK_PROVIDER,
    PARAMETERS,
    PLUGIN,
    RETIRED_SYSTEM_PROMPT,
    SAME,
    TASK,
    assistant_prefix,
    chosen,
    decoding_problems,
    evaluation_setting,
    run_setting,
)

OWN_PACKAGE = "cruijff_inspect"
"""This package's own ``inspect_ai`` entry point (the offline provider)."""
NAMES = ("inspect", "inspect-ai")
"""The tool's name and alias, as an experiment's ``tools`` section may write them."""

VOCABULARY = {"parameters": tuple(PARAMETERS), "evaluation": tuple(EVALUATION), "task": tuple(TASK)}
RETIRED = {
    "system_prompt": (
        RETIRED_SYSTEM_PROMPT,
        "move it to controls.system_prompt (or a task's system_prompt)",
    ),
    "scorer": (LEGACY_SCORER, "rename it to scorers to score with it"),
}
"""``evaluation.<key>`` that cruijff_kit 0.3.4 ignores with a warning: ignored here too."""
CHECKING_TRAINERS = ("torchtune", "trl")
"""Preparation tools that report a missing ``dataset_type`` of every run they fine-tune
(cruijff_torchtune, cruijff_trl): for those runs the error is theirs, said once."""
COMPUTE = {
    # evaluation.<key>: (the evaluation.compute key, its Compute field, what it sets)
    "gpus": ("gpus", "gpus", "GPUs"),
    "cpus": ("cpus_per_task", "cpus", "CPUs"),
    "mem_gb": ("mem", "mem_mb", "memory"),
    "time_minutes": ("time", "time_s", "time limit"),
}


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
            if key.section == "evaluation" and key.name in RETIRED:
                self.add(key.path, *RETIRED[key.name], warning=True)
            if key.name == "checkpoint_path" and not key.path.startswith("runs["):
                self.add(
                    key.path,
                    "checkpoint_path belongs to one run",
                    "set it in the parameters of a run of type eval-only",
                )
        return claimed

    def decoding(self) -> None:
        settings = self.experiment.evaluation.settings if self.experiment.evaluation else {}
        for key, message, hint, warning in decoding_problems(settings):
            self.add(f"evaluation.{key}", message, hint, warning=warning)

    def resources(self) -> None:
        """One value per resource: ``evaluation.gpus`` or ``evaluation.compute.gpus``...; one
        batch ceiling: ``max_connections`` or ``batch_size``."""
        evaluation = self.experiment.evaluation
        if evaluation is None:
            return
        for key, (kit_key, field, what) in COMPUTE.items():
            if evaluation.settings.get(key) is not None and getattr(evaluation.compute, field):
                self.add(
                    f"evaluation.{key}",
                    f"evaluation.{key} and evaluation.compute.{kit_key} both set the {what}",
                    f"keep one (compute.{kit_key} is cruijff_kit's key)",
                )
        if all(evaluation.settings.get(k) is not None for k in ("batch_size", "max_connections")):
            self.add(
                "evaluation.batch_size",
                "batch_size and max_connections are the same setting (the most samples "
                "generated at once), given twice",
                "keep max_connections (cruijff_kit's name)",
            )

    def dataset_types(self, pairs: list[tuple[Run, EvalTask]]) -> None:
        """Every evaluated run has a ``dataset_type`` (cruijff_kit never guesses it), and a
        system prompt is said to be unused where it is ``text_completion``. A run that a
        training tool of :data:`CHECKING_TRAINERS` fine-tunes is that tool's to check (it
        checks every such run, evaluated or not): one error either way."""
        experiment = self.experiment
        evaluated_runs = list({run.name: run for run, _ in pairs}.values())
        runs = evaluated_runs
        if any(name in CHECKING_TRAINERS for name in experiment.tools.values()):
            trained = [run for run in experiment.runs if run.type is RunType.FINE_TUNED]
            if any(run_setting(experiment, run, "dataset_type") is None for run in trained):
                runs = []  # the trainer reports controls.dataset_type, which covers these too
            runs = [run for run in runs if run.type is not RunType.FINE_TUNED]
        missing = [run.name for run in runs if run_setting(experiment, run, "dataset_type") is None]
        if missing:
            some = (
                ""
                if len(missing) == len(evaluated_runs)
                else f" (runs without one: {', '.join(missing[:5])})"
            )
            self.add(
                "controls.dataset_type",
                f"dataset_type is required to evaluate{some}: it says whether each model is "
                "asked in a chat (cruijff_kit never guesses it)",
                f"add controls: {{dataset_type: {CHAT}}} for chat-trained (instruct) models, or "
                "text_completion for plain text",
            )
        said = set()
        for run, task in pairs:
            found = run_setting(experiment, run, "dataset_type")
            if found is None or found[0] == CHAT or found[0] not in DATASET_TYPES:
                continue
            for path, value in self.system_prompts(task):
                if value and path not in said:
                    said.add(path)
                    self.add(
                        path,
                        "not used by the evaluation: a text_completion model is asked without a "
                        "system prompt (as in cruijff_kit)",
                        "leave it out, or use dataset_type: chat_completion",
                        warning=True,
                    )

    def system_prompts(self, task: EvalTask) -> list[tuple[str, object]]:
        """Where the system prompt a task's cells are asked with is written, and its value:
        the task's, else the controls' (a run's is for its training)."""
        if task.settings.get("system_prompt") is not None:
            return [(f"{task.yaml_path}.system_prompt", task.settings["system_prompt"])]
        if self.experiment.controls.get("system_prompt") is not None:
            return [("controls.system_prompt", self.experiment.controls["system_prompt"])]
        return []

    def run_system_prompts(self, pairs: list[tuple[Run, EvalTask]]) -> None:
        """A run's ``parameters.system_prompt`` is for its training: cruijff_kit evaluates
        with the task's, else the controls'. Said where the two differ (a text_completion
        model is asked without one anyway)."""
        said: set[str] = set()
        for run, task in pairs:
            value = run.parameters.get("system_prompt")
            if value is None:
                continue
            where = (
                f"{run.yaml_path}.parameters.system_prompt"
                if run.yaml_path
                else "variables.system_prompt"  # a run of the grid
            )
            found_type = run_setting(self.experiment, run, "dataset_type")
            if where in said or (found_type is not None and found_type[0] != CHAT):
                continue
            used, source = chosen(self.experiment, run, task, "system_prompt") or ("", "")
            if value == used:
                continue
            said.add(where)
            evaluated_with = (
                f"the task {task.name}'s system_prompt ({used!r})"
                if source.startswith("evaluation.tasks")
                else f"controls.system_prompt ({used!r})"
                if source
                else "no system prompt (neither the task nor controls sets one)"
            )
            trains = (
                "trained with, not evaluated with"
                if run.type is RunType.FINE_TUNED
                else f"not read (a {run.type.value} run trains nothing)"
            )
            self.add(
                where,
                f"{trains}: the evaluation of {run.name} uses {evaluated_with}, as in cruijff_kit",
                "set the task's system_prompt (or controls.system_prompt) to evaluate with it",
                warning=True,
            )

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

    def scorers(self, pairs: list[tuple[Run, EvalTask]], *, installed: bool = True) -> None:
        """``evaluation.scorers`` reach only the tasks that build their scorers from the cell's
        config (they declare ``config_path``, as cruijff_kit's do); any other task scores with
        its own and does not read them (a warning says so, as cruijff_kit ignores them there).
        A name inspect does not know is a warning: the tasks that read it make their scorers
        themselves, and must know it."""
        evaluation = self.experiment.evaluation
        if evaluation is None or not evaluation.scorers:
            return
        names = {task.name for _, task in pairs}
        tasks = [task for task in evaluation.tasks if task.name in names]
        readers = [task for task in tasks if builds_own_scorers(task)]
        for task in tasks:
            if task not in readers:
                self.add(
                    "evaluation.scorers",
                    f"not read by the task {task.name}: it takes no config_path, so it scores "
                    "with its own scorers (as in cruijff_kit)",
                    "give the task a config_path parameter that builds its scorers from "
                    "eval_config.yaml, or leave scorers out",
                    warning=True,
                )
        if not readers or not installed:
            return
        builtin = introspect.scorers()
        local: dict[str, introspect.Function] = {}
        for task in readers:
            if task.script is not None and task.script.exists():
                try:
                    found = introspect.functions(task.script, "scorer")
                except introspect.SourceError:
                    continue  # reported with the task
                local.update({f.name: f for f in found if f.decorated})
        for scorer in evaluation.scorers:
            self.scorer(scorer, builtin, local, readers=[task.name for task in readers])

    def scorer(
        self,
        scorer: Scorer,
        builtin: Mapping[str, introspect.Function],
        local: Mapping[str, introspect.Function],
        *,
        readers: list[str],
    ) -> None:
        """One scorer, as the tasks ``readers`` get it."""
        name = scorer.name
        they = (
            f"the task {readers[0]} builds" if len(readers) == 1 else "the tasks build"
        ) + " its scorers from eval_config.yaml (config_path) and must know it"
        if "/" in name:
            self.package(name, scorer.name_path, "scorer", warning=f": {they}")
            return
        function = local.get(name) or builtin.get(name)
        if function is None:
            self.add(
                scorer.name_path,
                f"inspect has no scorer {name!r}: {they}",
                did_you_mean(name, {*builtin, *local}),
                warning=True,
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

    def package(self, name: str, path: str, what: str, *, warning: str = "") -> None:
        """``package/name``: the package must be an installed inspect extension (a warning,
        saying ``warning`` after the message, where it is one)."""
        package = name.split("/", 1)[0]
        installed = introspect.extension_packages()
        if package not in installed:
            self.add(
                path,
                f"no installed package registers inspect {what}s as {package}/...{warning}",
                did_you_mean(package, installed)
                or f"install the package that provides {name} (installed extensions: "
                f"{', '.join(installed) or 'none'})",
                warning=bool(warning),
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
            self.prefix(task)

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

    def prefix(self, task: EvalTask) -> None:
        """An assistant prefix reaches tasks that take it; said where a task does not."""
        found = assistant_prefix(self.experiment, task)
        function = task_function(task)
        if found is None or function is None or function.accepts("assistant_prefix"):
            return
        where = (
            f"{task.yaml_path}.assistant_prefix"
            if found[1].startswith("evaluation.tasks")
            else "evaluation.assistant_prefix"
        )
        self.add(
            where,
            f"not used by the task {task.name}: its function takes no assistant_prefix "
            "(inspect drops it there too)",
            "add an assistant_prefix parameter to the task, or leave the prefix out",
            warning=True,
        )

    def dataset(self, task: EvalTask, base: str) -> None:
        dataset = task.settings.get("dataset")
        if isinstance(dataset, str) and task.settings.get("eval_condition") is not None:
            self.add(
                f"{base}.dataset",
                "not read: the task's eval_condition names its data (it comes first, as in "
                "cruijff_kit)",
                "give a task one of dataset and eval_condition",
                warning=True,
            )
            return
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

    def cell_data(self, pairs: list[tuple[Run, EvalTask]]) -> None:
        """Each evaluated (run, task) pair's data: an eval_condition's file, a run's
        eval_dataset_path, and the split it reads, which a user's own file must have (a
        generated file's splits are checked when the generator's units are known)."""
        said: set[tuple[str, str]] = set()
        for run, task in pairs:
            data = eval_data(self.experiment, run, task)
            for where, message, hint in self.data_problems(data):
                if (where, message) not in said:
                    said.add((where, message))
                    self.add(where, message, hint)

    def data_problems(self, data: EvalData) -> list[tuple[str, str, str]]:
        if data.problem is not None:
            return [(data.where, *data.problem)]
        path = data.path
        if path is None or generated(self.experiment, path):
            return []
        if not path.is_file():
            if data.source.endswith(("eval_dataset_path", "dataset_path")):
                return [(data.where, f"evaluation data not found: {path}", PATH_HINT)]
            return []  # a task's dataset and the training data: said at their keys
        if data.split is None:
            return []
        keys = top_level_keys(path)
        found = missing_split(path, data.split, keys) if keys is not None else None
        if found is None:
            return []
        message, hint = found
        return [
            (data.split_where, f"{message}; the task reads {data.split!r}, {describe(data)}", hint)
        ]

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
            elif adapter.is_adapter(folder):
                problem = adapter.check(folder)
                if problem:
                    self.add(path, problem, ADAPTER_HINT)
            elif not (folder / "config.json").is_file():
                self.add(
                    path,
                    f"{folder} holds no config.json: not a model folder transformers loads",
                    "point at the folder with config.json, the weights and the tokenizer, or "
                    "at a LoRA adapter (adapter_config.json and adapter_model.safetensors)",
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
        if introspect.installed():  # not its scorers: reading them takes a tenth of a second
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


PATH_HINT = "paths are relative to the experiment file's folder"
ADAPTER_HINT = (
    "an adapter folder needs adapter_config.json (whose base_model_name_or_path is the base "
    "model's folder) and adapter_model.safetensors; or point at a merged model folder"
)


def describe(data: EvalData) -> str:
    """Where a cell's split comes from, in words."""
    if data.split_source == "default":
        return "the default when a task declares none"
    if data.split_source.startswith("the task's default"):
        return data.split_source
    return f"from {data.split_source}"


def builds_own_scorers(task: EvalTask) -> bool:
    """Whether a task builds its scorers from the cell's config (it declares
    ``config_path``, as cruijff_kit's tasks do): the only tasks ``evaluation.scorers``
    reach. A registered task gets no ``config_path``."""
    function = task_function(task)
    return function is not None and function.declares("config_path")


def evaluated(experiment: Experiment) -> list[tuple[Run, EvalTask]]:
    """The (run, task) pairs the matrix evaluates (every run on every task without one)."""
    evaluation = experiment.evaluation
    if evaluation is None:
        return []
    tasks = {task.name: task for task in evaluation.tasks}
    runs = {run.name: run for run in experiment.runs}
    if evaluation.matrix is None:
        return [(run, task) for run in experiment.runs for task in evaluation.tasks]
    pairs = []
    for entry in evaluation.matrix:
        run = runs.get(entry.run)
        if run is None:
            continue  # the core reports it
        names = [name for name in entry.tasks if name in tasks] or list(tasks)
        pairs += [(run, tasks[name]) for name in names]
    unique: dict[tuple[str, str], tuple[Run, EvalTask]] = {}
    for run, task in pairs:
        unique.setdefault((run.name, task.name), (run, task))
    return list(unique.values())


def parse(experiment: Experiment, keys: tuple[Key, ...]) -> ParseReport:
    """Claim and check the inspect tool's keys of an experiment that uses it."""
    checker = _Checker(experiment)
    claimed = checker.keys(keys)
    pairs = evaluated(experiment)
    checker.decoding()
    checker.resources()
    checker.provider()
    checker.tasks()
    checker.dataset_types(pairs)
    checker.run_system_prompts(pairs)
    checker.cell_data(pairs)
    checker.checkpoints()
    checker.matrix_epochs()
    checker.scorers(pairs, installed=checker.inspect_installed())
    return ParseReport(claimed=claimed, vocabulary=VOCABULARY, problems=checker.problems)
