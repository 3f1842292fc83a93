"""Loading an experiment file: the records it gives, the plugin keys, and every shape problem
with its line, column and dotted path."""

from __future__ import annotations

import copy
import random
import textwrap
from pathlib import Path

import attrs
import pytest
import yaml

from cruijff.design import Checked, check
from cruijff.experiment import PLACEHOLDER_NAME, Loaded, load_experiment
from cruijff.records import (
    Axis,
    Experiment,
    MatrixEntry,
    Problem,
    RunType,
    Scorer,
    Severity,
    ZipGroup,
)

MINIMAL = """
experiment:
  name: demo
models:
  base:
    - name: tiny-llama
      path: models/tiny-llama
"""

FULL = """
experiment:
  name: "cap_rank_2026-11-22"
  project: "capitalization"
  question: "Does LoRA rank matter for capitalization?"
  hypothesis: "Rank 8 beats rank 4."
  date: "2026-11-22"
  purpose: "..."
  dir: "runs/cap_rank"

tools:
  preparation: "torchtune"
  evaluation: "inspect-ai"

variables:
  lora_rank: [4, 8]
  lr: [1.0e-4, 3e-4]
  zip:
    - {batch_size: [4, 8], gradient_accumulation_steps: [2, 1]}

controls:
  base_recipe: "llama3_2/1B_lora_single_device"
  dataset_type: "chat_completion"
  system_prompt: "You are a helpful assistant."
  prompt: "Capitalize the given word: {input}\\n"
  epochs: 2
  batch_size: 4
  seed: 14

models:
  base:
    - name: "SmolLM2-135M-Instruct"
      path: "models/SmolLM2-135M-Instruct"
      size_gb: 0.5

data:
  training:
    path: "data/words.json"
    format: "json"
    dataset_label: "words"
    splits: {train: 160, validation: 20, test: 20}

output:
  wandb_project: "capitalization"

scheduler:
  name: "slurm"
  profile: "della"

runs:
  - name: "rank4"
    type: "fine-tuned"
    model: "SmolLM2-135M-Instruct"
    parameters: {lora_rank: 4}
  - name: "base"
    type: "control"
    model: "SmolLM2-135M-Instruct"
    parameters: {}
  - name: "older"
    type: "eval-only"
    model: "SmolLM2-135M-Instruct"
    parameters: {checkpoint_path: "/abs/path/to/epoch_1"}

evaluation:
  temperature: 0.0
  max_tokens: 16
  seed: 14
  scorers:
    - name: "match"
    - name: "includes"
  tasks:
    - name: "capitalization"
      script: "tasks/capitalization.py"
      dataset: "same"
      prompt: "Word: {input}"
      system_prompt: "..."
  matrix:
    - run: "rank4"
      tasks: ["capitalization"]
      epochs: [0, 1]
    - run: "base"
      tasks: ["capitalization"]
      epochs: null
"""


def write_experiment(tmp_path: Path, text: str = MINIMAL) -> Path:
    """Write ``text`` (dedented; its first line is line 1) as ``experiment.yaml`` beside two
    model folders, a data file and a task script."""
    for model in ("tiny-llama", "SmolLM2-135M-Instruct"):
        (tmp_path / "models" / model).mkdir(parents=True, exist_ok=True)
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "words.json").write_text('{"train": [], "test": []}')
    (tmp_path / "tasks").mkdir(exist_ok=True)
    (tmp_path / "tasks" / "capitalization.py").write_text("")
    path = tmp_path / "experiment.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str = MINIMAL, **kwargs) -> Loaded:
    return load_experiment(write_experiment(tmp_path, text), **kwargs)


def extend(text: str, extra: str) -> str:
    return textwrap.dedent(text).lstrip("\n") + textwrap.dedent(extra).lstrip("\n")


@pytest.fixture
def inspected(plugin_manager, register_plugin):
    """Check a file as :func:`load` loads it, with the inspect tool as the evaluator: the
    plugin that checks prompts and matrix epochs. Its ``tools`` section comes last, so the
    lines of ``text`` stay where they are."""
    from cruijff_inspect import plugin

    register_plugin(plugin, name="inspect")

    def run(tmp_path: Path, text: str) -> Checked:
        whole = textwrap.dedent(text).lstrip("\n") + "tools: {evaluation: inspect}\n"
        return check(plugin_manager, write_experiment(tmp_path, whole))

    return run


def problem_at(loaded: Loaded | Checked, path: str) -> Problem:
    """The one problem whose dotted path is ``path``."""
    found = [problem for problem in loaded.problems if problem.where.path == path]
    assert len(found) == 1, f"{path}: {[str(p) for p in loaded.problems]}"
    return found[0]


def place(problem: Problem) -> tuple[int | None, int | None]:
    return problem.where.line, problem.where.column


# --- a valid file ---------------------------------------------------------------------------


def test_the_documented_example_loads_without_errors(tmp_path):
    loaded = load(tmp_path, FULL)
    # its variables document a grid its three explicit runs do not all cover: warnings only
    assert {p.severity for p in loaded.problems} <= {Severity.WARNING}
    assert all(p.where.path.startswith("variables.") for p in loaded.problems)
    said = [problem.message for problem in loaded.problems]
    assert "no run has lora_rank: 8, though variables lists it: it will not run" in said
    assert not any("lora_rank: 4" in message for message in said)  # the run rank4 has it
    assert loaded.ok
    experiment = loaded.experiment
    assert isinstance(experiment, Experiment)
    assert experiment.name == "cap_rank_2026-11-22"
    assert experiment.file == tmp_path / "experiment.yaml"
    assert experiment.directory == (tmp_path / "runs" / "cap_rank").resolve()
    assert experiment.meta["project"] == "capitalization"
    assert experiment.meta["date"] == "2026-11-22"
    assert "name" not in experiment.meta and "dir" not in experiment.meta
    assert dict(experiment.tools) == {"preparation": "torchtune", "evaluation": "inspect-ai"}
    assert experiment.variables == (
        Axis(key="lora_rank", values=(4, 8)),
        Axis(key="lr", values=(1e-4, 3e-4)),
        ZipGroup(
            axes=(
                Axis(key="batch_size", values=(4, 8)),
                Axis(key="gradient_accumulation_steps", values=(2, 1)),
            )
        ),
    )
    assert experiment.controls["epochs"] == 2
    (model,) = experiment.models
    assert model.name == "SmolLM2-135M-Instruct"
    assert model.path == (tmp_path / "models" / "SmolLM2-135M-Instruct").resolve()
    assert model.size_gb == 0.5
    assert experiment.data.path == (tmp_path / "data" / "words.json").resolve()
    assert experiment.data.label == "words"
    assert dict(experiment.data.splits) == {"train": 160, "validation": 20, "test": 20}
    assert experiment.output["wandb_project"] == "capitalization"
    assert experiment.scheduler.name == "slurm"
    assert dict(experiment.scheduler.options) == {"profile": "della"}


def test_explicit_runs_are_used_as_written(tmp_path):
    experiment = load(tmp_path, FULL).experiment
    assert [(run.name, run.type, run.index) for run in experiment.runs] == [
        ("rank4", RunType.FINE_TUNED, 0),
        ("base", RunType.CONTROL, 1),
        ("older", RunType.EVAL_ONLY, 2),
    ]
    assert dict(experiment.run("rank4").parameters) == {"lora_rank": 4}
    assert experiment.run("older").directory == experiment.directory / "older"


def test_evaluation_records(tmp_path):
    evaluation = load(tmp_path, FULL).experiment.evaluation
    assert dict(evaluation.settings) == {"temperature": 0.0, "max_tokens": 16, "seed": 14}
    assert evaluation.scorers == (Scorer(name="match"), Scorer(name="includes"))
    (task,) = evaluation.tasks
    assert task.name == "capitalization"
    assert task.script == (tmp_path / "tasks" / "capitalization.py").resolve()
    assert dict(task.settings) == {
        "dataset": "same",
        "prompt": "Word: {input}",
        "system_prompt": "...",
    }
    assert evaluation.matrix == (
        MatrixEntry(run="rank4", tasks=("capitalization",), epochs=(0, 1)),
        MatrixEntry(run="base", tasks=("capitalization",), epochs=None, base=True),
    )


def test_document_and_locate(tmp_path):
    experiment = load(tmp_path, FULL).experiment
    assert experiment.document["controls"]["seed"] == 14
    where = experiment.locate("controls.seed")
    assert (where.file, where.line, where.column) == (experiment.file, 27, 3)


def test_records_keep_where_the_file_writes_them(tmp_path):
    experiment = load(tmp_path, FULL).experiment
    (model,) = experiment.models
    assert model.yaml_path == "models.base[0]"
    assert experiment.data.yaml_path == "data.training"
    assert [axis.yaml_path for axis in experiment.variables] == [
        "variables.lora_rank",
        "variables.lr",
        "variables.zip[0]",
    ]
    steps = experiment.variables[2].axes[1]
    assert steps.yaml_path == "variables.zip[0].gradient_accumulation_steps"
    assert [run.yaml_path for run in experiment.runs] == ["runs[0]", "runs[1]", "runs[2]"]
    evaluation = experiment.evaluation
    assert [(s.yaml_path, s.name_path) for s in evaluation.scorers] == [
        ("evaluation.scorers[0]", "evaluation.scorers[0].name"),
        ("evaluation.scorers[1]", "evaluation.scorers[1].name"),
    ]
    assert evaluation.tasks[0].yaml_path == "evaluation.tasks[0]"
    assert [entry.yaml_path for entry in evaluation.matrix] == [
        "evaluation.matrix[0]",
        "evaluation.matrix[1]",
    ]
    lines = textwrap.dedent(FULL).lstrip("\n").splitlines()
    where = experiment.locate(experiment.run("base").yaml_path)
    assert lines[where.line - 1] == '  - name: "base"'
    # a place is not a value: a record equals one built without it
    assert model == attrs.evolve(model, yaml_path="")


def test_paths_skip_nothing_when_an_item_is_invalid(tmp_path):
    text = extend(
        MINIMAL,
        """
        runs:
          - 3
          - {name: a, model: tiny-llama}
        evaluation:
          scorers: [7, match]
          tasks: [{name: "b c"}, {name: t}]
        """,
    )
    experiment = load(tmp_path, text).experiment
    assert [(run.name, run.yaml_path, run.index) for run in experiment.runs] == [
        ("a", "runs[1]", 0)
    ]
    (scorer,) = experiment.evaluation.scorers
    assert scorer.yaml_path == scorer.name_path == "evaluation.scorers[1]"  # a bare name
    assert [task.yaml_path for task in experiment.evaluation.tasks] == ["evaluation.tasks[1]"]


def test_a_grid_run_is_written_nowhere(tmp_path):
    experiment = load(tmp_path, extend(MINIMAL, "variables:\n  lr: [1, 2]\n")).experiment
    assert [run.yaml_path for run in experiment.runs] == ["", "", ""]


def test_tasks_written_tells_no_task_from_no_valid_task(tmp_path):
    written = load(tmp_path, extend(MINIMAL, "evaluation:\n  tasks: [{name: 'b c'}]\n"))
    assert written.experiment.evaluation.tasks == ()
    assert written.experiment.evaluation.tasks_written
    none = load(tmp_path, extend(MINIMAL, "evaluation:\n  max_tokens: 3\n"))
    assert not none.experiment.evaluation.tasks_written


def test_relative_paths_resolve_against_the_files_folder(tmp_path, monkeypatch):
    experiment = load(tmp_path, FULL).experiment
    monkeypatch.chdir(tmp_path / "models")
    assert experiment.resolve("data/words.json") == (tmp_path / "data" / "words.json").resolve()
    assert experiment.resolve(Path("/abs/x")) == Path("/abs/x")
    assert experiment.resolve("~/x") == Path("~/x").expanduser().resolve()
    assert experiment.data.path == experiment.resolve("data/words.json")  # the core's too


def test_plugin_keys(tmp_path):
    keys = {(key.section, key.path, key.name) for key in load(tmp_path, FULL).keys}
    assert ("parameters", "controls.base_recipe", "base_recipe") in keys
    assert ("parameters", "variables.lora_rank", "lora_rank") in keys
    assert ("parameters", "variables.zip[0].batch_size", "batch_size") in keys
    assert ("parameters", "runs[0].parameters.lora_rank", "lora_rank") in keys
    assert ("parameters", "runs[2].parameters.checkpoint_path", "checkpoint_path") in keys
    assert ("output", "output.wandb_project", "wandb_project") in keys
    assert ("scheduler", "scheduler.profile", "profile") in keys
    assert ("evaluation", "evaluation.temperature", "temperature") in keys
    assert ("task", "evaluation.tasks[0].dataset", "dataset") in keys
    paths = {path for _, path, _ in keys}
    assert not paths & {"scheduler.name", "evaluation.tasks", "evaluation.scorers"}
    assert not paths & {"evaluation.matrix", "evaluation.tasks[0].name", "experiment.name"}
    assert len(keys) == 21
    axis = next(key for key in load(tmp_path, FULL).keys if key.path == "variables.lora_rank")
    assert axis.value == (4, 8)


def test_minimal_file(tmp_path):
    loaded = load(tmp_path)
    assert loaded.problems == ()
    experiment = loaded.experiment
    assert experiment.directory == tmp_path.resolve()
    assert experiment.evaluation is None and experiment.data is None
    assert experiment.scheduler.name is None
    assert loaded.keys == ()


def test_empty_optional_sections(tmp_path):
    loaded = load(tmp_path, extend(MINIMAL, "controls:\noutput:\nvariables:\nevaluation: {}\n"))
    assert loaded.problems == ()
    assert loaded.experiment.evaluation.matrix is None


def test_relative_file_path_is_resolved(tmp_path, monkeypatch):
    write_experiment(tmp_path)
    monkeypatch.chdir(tmp_path)
    experiment = load_experiment(Path("experiment.yaml")).experiment
    assert experiment.file == (tmp_path / "experiment.yaml").resolve()
    assert experiment.file.is_absolute() and experiment.directory.is_absolute()


# --- errors, each with its place --------------------------------------------------------------


def test_unknown_section_with_did_you_mean(tmp_path):
    loaded = load(tmp_path, MINIMAL.replace("models:", "modles:"))
    problem = problem_at(loaded, "modles")
    assert problem.message == "unknown section"
    assert problem.hint == "did you mean models?"
    assert place(problem) == (3, 1)
    assert problem.severity is Severity.ERROR and not loaded.ok
    assert (
        str(problem) == f"{tmp_path / 'experiment.yaml'}:3:1: modles: unknown section "
        "(did you mean models?)"
    )


def test_unknown_section_far_from_any_lists_the_valid_ones(tmp_path):
    problem = problem_at(load(tmp_path, extend(MINIMAL, "zzz: 1\n")), "zzz")
    assert problem.hint.startswith("valid: controls, data, evaluation")


RUNS = """
experiment:
  name: demo
models:
  base:
    - name: tiny-llama
      path: models/tiny-llama
runs:
  - name: first
    typ: control
    model: tiny-llama
  - name: second
    model: "tiny-lama"
  - name: third
    type: fine-tunned
    model: tiny-llama
"""


def test_unknown_run_key_with_did_you_mean(tmp_path):
    problem = problem_at(load(tmp_path, RUNS), "runs[0].typ")
    assert (problem.message, problem.hint) == ("unknown key", "did you mean type?")
    assert place(problem) == (9, 5)


def test_unknown_base_model_with_did_you_mean(tmp_path):
    problem = problem_at(load(tmp_path, RUNS), "runs[1].model")
    assert problem.message == "'tiny-lama' is not a base model"
    assert problem.hint == "did you mean tiny-llama?"
    assert place(problem) == (12, 5)


def test_unknown_run_type_with_did_you_mean(tmp_path):
    problem = problem_at(load(tmp_path, RUNS), "runs[2].type")
    assert problem.message == "unknown run type 'fine-tunned'"
    assert problem.hint == "did you mean fine-tuned?"
    assert place(problem) == (14, 5)


def test_invalid_explicit_run_name_is_an_error_not_cleaned(tmp_path):
    loaded = load(tmp_path, RUNS.replace("name: first", 'name: "my first run"'))
    problem = problem_at(loaded, "runs[0].name")
    assert problem.message == "'my first run' is not a valid name"
    assert "letters, digits" in problem.hint
    assert place(problem) == (8, 5)
    names = [run.name for run in loaded.experiment.runs]
    assert "my-first-run" not in names and "my_first_run" not in names
    assert "second" in names


def test_duplicate_and_missing_run_names(tmp_path):
    loaded = load(
        tmp_path, RUNS.replace("name: second", "name: first").replace("- name: third", "- kind: x")
    )
    assert problem_at(loaded, "runs[1].name").message == "a second run is called 'first'"
    assert problem_at(loaded, "runs[2].name").message == "name is required"
    assert place(problem_at(loaded, "runs[2].name")) == (13, 5)


def test_run_without_model(tmp_path):
    loaded = load(tmp_path, extend(MINIMAL, "runs:\n  - name: a\n"))
    problem = problem_at(loaded, "runs[0].model")
    assert (problem.message, place(problem)) == ("model is required", (8, 5))


def test_empty_runs_list(tmp_path):
    problem = problem_at(load(tmp_path, extend(MINIMAL, "runs: []\n")), "runs")
    assert problem.message == "the list of runs is empty"


def test_experiment_name(tmp_path):
    loaded = load(tmp_path, MINIMAL.replace("name: demo", 'name: "my experiment!"'))
    problem = problem_at(loaded, "experiment.name")
    assert problem.message == "'my experiment!' is not a valid name"
    assert place(problem) == (2, 3)
    assert loaded.experiment.name == PLACEHOLDER_NAME  # still an experiment, for the plugins


def test_experiment_name_missing(tmp_path):
    loaded = load(tmp_path, MINIMAL.replace("  name: demo\n", "  project: x\n"))
    problem = problem_at(loaded, "experiment.name")
    assert problem.message == "name is required"
    assert place(problem) == (1, 1)


def test_experiment_section_missing(tmp_path):
    loaded = load(tmp_path, MINIMAL.replace("experiment:\n  name: demo\n", ""))
    assert problem_at(loaded, "experiment").message == "the experiment section is missing"
    assert loaded.experiment.name == PLACEHOLDER_NAME


def test_experiment_name_must_be_a_string(tmp_path):
    problem = problem_at(
        load(tmp_path, MINIMAL.replace("name: demo", "name: 2024")), "experiment.name"
    )
    assert problem.message == "expected a string, not a number"


@pytest.mark.parametrize("date", ["2026-13-01", "22/11/2026", "2026-11-22T10:00:00", "2026"])
def test_bad_date(tmp_path, date):
    loaded = load(tmp_path, MINIMAL.replace("name: demo", f"name: demo\n  date: {date}"))
    problem = problem_at(loaded, "experiment.date")
    assert problem.hint == "write YYYY-MM-DD"
    assert place(problem) == (3, 3)


def test_unquoted_date_is_fine(tmp_path):
    loaded = load(tmp_path, MINIMAL.replace("name: demo", "name: demo\n  date: 2026-11-22"))
    assert loaded.problems == ()
    assert loaded.experiment.meta["date"] == "2026-11-22"


def test_tools(tmp_path):
    text = extend(MINIMAL, "tools:\n  preparaton: torchtune\n  evaluation: [inspect]\n")
    loaded = load(tmp_path, text)
    problem = problem_at(loaded, "tools.preparaton")
    assert (problem.message, problem.hint, place(problem)) == (
        "unknown role",
        "did you mean preparation?",
        (8, 3),
    )
    assert problem_at(loaded, "tools.evaluation").message == "expected a tool name, not a list"
    assert dict(loaded.experiment.tools) == {}


def test_model_problems(tmp_path):
    text = """
    experiment: {name: demo}
    models:
      base:
        - name: tiny-llama
          path: models/nowhere
          size: 1
        - name: tiny-llama
          path: models/tiny-llama
          size_gb: big
        - path: models/tiny-llama
    """
    loaded = load(tmp_path, text)
    missing = problem_at(loaded, "models.base[0].path")
    assert (
        missing.message == f"model folder not found: {(tmp_path / 'models' / 'nowhere').resolve()}"
    )
    assert place(missing) == (5, 7)
    assert problem_at(loaded, "models.base[0].size").hint == "did you mean size_gb?"
    duplicate = problem_at(loaded, "models.base[1].name")
    assert (duplicate.message, place(duplicate)) == (
        "a second base model is called 'tiny-llama'",
        (7, 7),
    )
    assert (
        problem_at(loaded, "models.base[1].size_gb").message
        == "expected a size in GB, not a string"
    )
    assert problem_at(loaded, "models.base[2].name").message == "name is required"


def test_models_missing(tmp_path):
    loaded = load(tmp_path, "experiment: {name: demo}\n")
    assert problem_at(loaded, "models").message == "the models section is missing"
    assert loaded.experiment.runs == ()


def test_models_typo_in_section(tmp_path):
    loaded = load(tmp_path, MINIMAL.replace("base:", "bse:"))
    assert problem_at(loaded, "models.bse").hint == "did you mean base?"
    assert problem_at(loaded, "models.base").message.startswith("expected a list of base models")


def test_data(tmp_path):
    text = extend(
        MINIMAL,
        """
        data:
          training:
            path: data/missing.json
            formt: json
            splits: {train: many}
        """,
    )
    loaded = load(tmp_path, text)
    assert problem_at(loaded, "data.training.path").message.startswith("data file not found:")
    assert place(problem_at(loaded, "data.training.path")) == (9, 5)
    assert problem_at(loaded, "data.training.formt").hint == "did you mean format?"
    assert (
        problem_at(loaded, "data.training.splits.train").message == "expected a count, not a string"
    )


def test_data_defaults(tmp_path):
    loaded = load(tmp_path, extend(MINIMAL, "data:\n  training: {path: data/words.json}\n"))
    assert loaded.problems == ()
    assert loaded.experiment.data.format == "json"
    assert loaded.experiment.data.label == ""


def test_data_without_training(tmp_path):
    loaded = load(tmp_path, extend(MINIMAL, "data:\n  trainin: {path: data/words.json}\n"))
    assert problem_at(loaded, "data.trainin").hint == "did you mean training?"
    assert problem_at(loaded, "data.training").message == "training is required"


def test_variable_must_be_a_list(tmp_path):
    loaded = load(tmp_path, extend(MINIMAL, "variables:\n  lora_rank: 8\n  lr: []\n"))
    problem = problem_at(loaded, "variables.lora_rank")
    assert problem.message == "expected a list of values, not a number"
    assert "write [8]" in problem.hint
    assert place(problem) == (8, 3)
    assert problem_at(loaded, "variables.lr").message == "an axis needs at least one value"


def test_zip_group_lengths_must_match(tmp_path):
    text = extend(MINIMAL, "variables:\n  zip:\n    - {batch_size: [4, 8], steps: [2, 1, 3]}\n")
    problem = problem_at(load(tmp_path, text), "variables.zip[0]")
    assert problem.message == (
        "the lists of a zip group must have one length: batch_size has 2, steps has 3"
    )
    assert place(problem) == (9, 7)


def test_parameter_swept_twice(tmp_path):
    text = extend(MINIMAL, "variables:\n  batch_size: [1, 2]\n  zip:\n    - {batch_size: [4, 8]}\n")
    problem = problem_at(load(tmp_path, text), "variables.zip[0].batch_size")
    assert problem.message == "batch_size is already swept at variables.batch_size"


def test_repeated_value_in_an_axis(tmp_path):
    text = extend(MINIMAL, "variables:\n  lora_rank: [4, 8, 4]\n")
    problem = problem_at(load(tmp_path, text), "variables.lora_rank")
    assert problem.message == "lora_rank=4 appears twice"


def test_zip_must_be_a_list_of_mappings(tmp_path):
    loaded = load(tmp_path, extend(MINIMAL, "variables:\n  zip: {a: [1]}\n"))
    assert problem_at(loaded, "variables.zip").message == "expected a list of groups, not a mapping"
    loaded = load(tmp_path, extend(MINIMAL, "variables:\n  zip: [[1], {}]\n"))
    assert problem_at(loaded, "variables.zip[0]").message.endswith("lists, not a list")
    assert problem_at(loaded, "variables.zip[1]").message.endswith("not an empty mapping")


@pytest.mark.parametrize(
    ("extra", "path", "line"),
    [
        ("controls:\n  prompt: 'Capitalize: {word}'\n", "controls.prompt", 8),
        ("variables:\n  prompt: ['{input}', 'no input']\n", "variables.prompt[1]", 8),
        (
            "variables:\n  zip:\n    - {prompt: ['a {input}', 'b'], seed: [1, 2]}\n",
            "variables.zip[0].prompt[1]",
            9,
        ),
        (
            "runs:\n  - name: a\n    model: tiny-llama\n    parameters: {prompt: x}\n",
            "runs[0].parameters.prompt",
            10,
        ),
        (
            "evaluation:\n  tasks:\n    - name: t\n      prompt: x\n",
            "evaluation.tasks[0].prompt",
            10,
        ),
    ],
)
def test_prompt_must_contain_input(tmp_path, inspected, extra, path, line):
    problem = problem_at(inspected(tmp_path, extend(MINIMAL, extra)), path)
    assert problem.message == "the prompt does not contain {input}"
    assert "{input}" in problem.hint
    assert problem.where.line == line
    assert problem.plugin == "inspect"  # the evaluator formats every prompt: it checks them
    assert not [p for p in load(tmp_path, extend(MINIMAL, extra)).problems if "{input}" in str(p)]


def test_prompt_that_is_not_a_string_is_left_to_the_plugins(tmp_path):
    assert load(tmp_path, extend(MINIMAL, "controls:\n  prompt: {chat: x}\n")).problems == ()


def test_scheduler(tmp_path):
    loaded = load(tmp_path, extend(MINIMAL, "scheduler:\n  name: 3\n  partition: gpu\n"))
    assert problem_at(loaded, "scheduler.name").message == "expected a string, not a number"
    assert dict(loaded.experiment.scheduler.options) == {"partition": "gpu"}


def test_type_errors_are_problems(tmp_path):
    text = """
    experiment: [demo]
    tools: preparation
    controls: [1, 2]
    models: {base: {name: x}}
    data: 3
    output: text
    scheduler: [slurm]
    runs: {name: a}
    evaluation: [x]
    variables: 1
    """
    loaded = load(tmp_path, text)
    paths = {problem.where.path for problem in loaded.problems}
    assert paths >= {
        "experiment",
        "tools",
        "controls",
        "models.base",
        "data",
        "output",
        "scheduler",
        "runs",
        "evaluation",
        "variables",
    }
    assert (
        problem_at(loaded, "controls").message
        == "expected a mapping (key: value lines), not a list"
    )
    assert problem_at(loaded, "runs").message == "expected a list of runs, not a mapping"
    assert loaded.experiment is not None and loaded.experiment.name == PLACEHOLDER_NAME


def test_every_problem_is_reported_at_once_in_file_order(tmp_path):
    text = """
    experiment: {name: "bad name"}
    modles: {}
    models:
      base:
        - {name: tiny-llama, path: models/none}
    variables:
      lr: 0.1
    runs:
      - {name: a, model: tiny-lama, typ: x}
    evaluation:
      tasks: [{name: t, script: missing.py}]
      matrix:
        - {run: b, tasks: [u]}
    """
    loaded = load(tmp_path, text)
    paths = [problem.where.path for problem in loaded.problems]
    assert paths == [
        "experiment.name",
        "modles",
        "models.base[0].path",
        "variables.lr",
        "runs[0].model",
        "runs[0].typ",
        "evaluation.tasks[0].script",
        "evaluation.matrix[0].run",
        "evaluation.matrix[0].tasks[0]",
    ]


def test_yaml_errors_become_problems(tmp_path):
    loaded = load(
        tmp_path, extend(MINIMAL, "controls:\n  seed: 1\n  seed: 2\n  x: !!python/none ''\n")
    )
    assert loaded.experiment is None and not loaded.ok
    assert [(p.where.line, p.where.path) for p in loaded.problems] == [
        (9, "controls.seed"),
        (10, "controls.x"),
    ]


def test_syntax_error_becomes_a_problem(tmp_path):
    loaded = load(tmp_path, "experiment:\n  name: [demo\n")
    (problem,) = loaded.problems
    assert loaded.experiment is None
    assert problem.message.startswith("YAML syntax error")
    assert problem.where.file == (tmp_path / "experiment.yaml").resolve()


def test_missing_file_is_a_problem(tmp_path):
    loaded = load_experiment(tmp_path / "nope.yaml")
    assert loaded.experiment is None
    assert loaded.problems[0].message == "file not found"


# --- evaluation cross-references --------------------------------------------------------------

EVAL = """
experiment: {name: demo}
models:
  base:
    - {name: tiny-llama, path: models/tiny-llama}
controls:
  epochs: 2
runs:
  - {name: rank4, model: tiny-llama}
  - {name: long, model: tiny-llama, parameters: {epochs: 5}}
  - {name: base, type: control, model: tiny-llama}
  - {name: old, type: eval-only, model: tiny-llama}
evaluation:
  scorers: [match, {name: includes, params: {ignore_case: true}}, {nme: x}]
  tasks:
    - {name: capitalization, script: tasks/capitalization.py}
    - {name: spelling, dataset: same}
  matrix:
"""


def matrix(tmp_path: Path, entries: str, base: str = EVAL) -> Loaded:
    """Load EVAL with ``entries`` as the items of its ``evaluation.matrix`` (line 18 on)."""
    return load(tmp_path, matrix_text(entries, base))


def test_scorers(tmp_path):
    loaded = matrix(tmp_path, "- {run: rank4}\n")
    assert loaded.experiment.evaluation.scorers[:2] == (
        Scorer(name="match"),
        Scorer(name="includes", params={"ignore_case": True}),
    )
    assert problem_at(loaded, "evaluation.scorers[2].nme").hint == "did you mean name?"
    assert problem_at(loaded, "evaluation.scorers[2].name").message == "name is required"


def test_valid_matrix(tmp_path):
    loaded = matrix(
        tmp_path,
        """
        - {run: rank4, tasks: [capitalization], epochs: [0, 1]}
        - {run: long, epochs: [4]}
        - {run: rank4, epochs: all}
        - {run: base, tasks: [spelling, capitalization], epochs: null}
        - {run: old}
        """,
    )
    assert [p for p in loaded.problems if p.where.path.startswith("evaluation.matrix")] == []
    entries = loaded.experiment.evaluation.matrix
    assert entries[0] == MatrixEntry(run="rank4", tasks=("capitalization",), epochs=(0, 1))
    assert entries[1].tasks == () and entries[1].epochs == (4,)
    assert entries[2].epochs == "all"
    assert entries[4] == MatrixEntry(run="old")
    # epochs: null (the model as it is) is not epochs left out (the last)
    assert [entry.base for entry in entries] == [False, False, False, True, False]
    assert entries[3].epochs is None and entries[4].epochs is None


def test_an_entry_with_bad_epochs_is_left_out_and_the_others_keep_their_place(tmp_path):
    loaded = matrix(
        tmp_path, "- {run: rank4, epochs: [0, last]}\n- 7\n- {run: long, epochs: [1]}\n"
    )
    (entry,) = loaded.experiment.evaluation.matrix
    assert (entry.run, entry.epochs, entry.yaml_path) == ("long", (1,), "evaluation.matrix[2]")


def test_matrix_unknown_run_and_task(tmp_path):
    loaded = matrix(tmp_path, "- {run: rank5, tasks: [capitalisation, zzz]}\n")
    run = problem_at(loaded, "evaluation.matrix[0].run")
    assert (run.message, run.hint, place(run)) == (
        "'rank5' is not a run",
        "did you mean rank4?",
        (18, 8),
    )
    task = problem_at(loaded, "evaluation.matrix[0].tasks[0]")
    assert (task.message, task.hint) == (
        "'capitalisation' is not a task",
        "did you mean capitalization?",
    )
    assert (
        problem_at(loaded, "evaluation.matrix[0].tasks[1]").hint
        == "valid: capitalization, spelling"
    )


def matrix_text(entries: str, base: str = EVAL) -> str:
    items = textwrap.indent(textwrap.dedent(entries).lstrip("\n"), "    ")
    return textwrap.dedent(base).lstrip("\n") + items


def test_epoch_beyond_the_controls_epochs(tmp_path, inspected):
    checked = inspected(tmp_path, matrix_text("- {run: rank4, epochs: [1, 2]}\n"))
    problem = problem_at(checked, "evaluation.matrix[0].epochs[1]")
    assert problem.message == "epoch 2 is out of range: rank4 trains for 2 epochs"
    assert problem.hint == "epochs are 0-based: 0 to 1"
    assert place(problem) == (18, 32)
    assert problem.plugin == "inspect"  # the evaluator reads the epochs of the matrix
    loaded = matrix(tmp_path, "- {run: rank4, epochs: [1, 2]}\n")
    assert not [p for p in loaded.problems if p.where.path.startswith("evaluation.matrix")]


def test_epoch_range_uses_the_runs_own_epochs(tmp_path, inspected):
    checked = inspected(tmp_path, matrix_text("- {run: long, epochs: [4, 5]}\n"))
    assert [p.where.path for p in checked.problems if "out of range" in p.message] == [
        "evaluation.matrix[0].epochs[1]"
    ]


def test_epochs_unknown_without_a_count(tmp_path, inspected):
    base = EVAL.replace("  epochs: 2\n", "  seed: 1\n")
    checked = inspected(tmp_path, matrix_text("- {run: rank4, epochs: [9]}\n", base))
    assert not [p for p in checked.problems if p.where.path.startswith("evaluation.matrix")]


@pytest.mark.parametrize("run", ["base", "old"])
def test_control_and_eval_only_runs_have_no_epochs(tmp_path, run):
    loaded = matrix(tmp_path, f"- {{run: {run}, epochs: [0]}}\n")
    problem = problem_at(loaded, "evaluation.matrix[0].epochs")
    assert "has no epochs" in problem.message
    assert problem.hint == "write epochs: null or leave it out"


@pytest.mark.parametrize(
    ("epochs", "path"),
    [
        ("[-1]", "evaluation.matrix[0].epochs[0]"),
        ("[true]", "evaluation.matrix[0].epochs[0]"),
        ("[0, last]", "evaluation.matrix[0].epochs[1]"),
        ("last", "evaluation.matrix[0].epochs"),
        ("1", "evaluation.matrix[0].epochs"),
    ],
)
def test_bad_epochs(tmp_path, epochs, path):
    problem = problem_at(matrix(tmp_path, f"- {{run: rank4, epochs: {epochs}}}\n"), path)
    assert '"all", or null' in problem.hint


def test_matrix_entry_problems(tmp_path):
    loaded = matrix(tmp_path, "- {tasks: capitalization, epoch: [0]}\n- rank4\n")
    assert problem_at(loaded, "evaluation.matrix[0].run").message == "run is required"
    assert problem_at(loaded, "evaluation.matrix[0].tasks").hint == "write [capitalization]"
    assert problem_at(loaded, "evaluation.matrix[0].epoch").hint == "did you mean epochs?"
    assert problem_at(loaded, "evaluation.matrix[1]").message.startswith("expected a mapping")


def test_task_problems(tmp_path):
    text = extend(
        MINIMAL,
        """
        evaluation:
          tasks:
            - {name: a, script: tasks/missing.py}
            - {name: a}
            - {name: "b c"}
            - just_a_name
        """,
    )
    loaded = load(tmp_path, text)
    assert problem_at(loaded, "evaluation.tasks[0].script").message.startswith(
        "task script not found"
    )
    assert problem_at(loaded, "evaluation.tasks[1].name").message == "a second task is called 'a'"
    assert problem_at(loaded, "evaluation.tasks[2].name").message == "'b c' is not a valid name"
    assert problem_at(loaded, "evaluation.tasks[3]").hint == "write - name: just_a_name"
    assert [task.name for task in loaded.experiment.evaluation.tasks] == ["a"]


# --- robustness -------------------------------------------------------------------------------

ODD_VALUES = [
    None,
    0,
    -1,
    1.5,
    True,
    "",
    "x",
    "../..",
    "\x00",
    [],
    [1, "a"],
    {},
    {"a": [1]},
    [[{}]],
]


def test_wrong_types_anywhere_never_raise(tmp_path):
    """Replace random parts of a valid document by odd values: problems, never exceptions."""
    write_experiment(tmp_path)
    base = yaml.safe_load(textwrap.dedent(FULL))
    path = tmp_path / "fuzz.yaml"
    chooser = random.Random(1234)
    for _ in range(40):
        document = copy.deepcopy(base)
        for _ in range(chooser.randint(1, 4)):
            parent, key = _random_slot(document, chooser)
            parent[key] = copy.deepcopy(chooser.choice(ODD_VALUES))
        path.write_text(yaml.dump(document, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper)))
        loaded = load_experiment(path)
        assert loaded.experiment is not None
        assert all(isinstance(problem, Problem) for problem in loaded.problems)


def _random_slot(document, chooser):
    """A random (container, key or index) inside ``document``."""
    parent, key = document, chooser.choice(list(document))
    while isinstance(parent[key], (dict, list)) and parent[key] and chooser.random() < 0.7:
        parent = parent[key]
        key = (
            chooser.choice(list(parent))
            if isinstance(parent, dict)
            else chooser.randrange(len(parent))
        )
    return parent, key


def test_broken_text_never_raises(tmp_path):
    """Cut the example anywhere or splice in odd characters: problems, never exceptions."""
    write_experiment(tmp_path)
    text = textwrap.dedent(FULL)
    path = tmp_path / "broken.yaml"
    chooser = random.Random(99)
    for _ in range(30):
        at = chooser.randrange(len(text))
        path.write_text(
            text[:at] + chooser.choice(["", ":", "- ", "{", "'", "\t", "&a", "*a", "!x"])
        )
        loaded = load_experiment(path)
        assert loaded.experiment is not None or loaded.problems
