"""The inspect plugin's checks of an experiment file: every mistake an error at its file:line with
a "did you mean", never a traceback, found without importing inspect_ai or the task files."""

from __future__ import annotations

import os
import time

import pytest
from inspect_helpers import TASKS, inspect_changes

from cruijff.design import check, plan
from cruijff.errors import UserError
from cruijff.records import Severity
from cruijff_inspect import introspect
from cruijff_inspect import plugin as inspect_plugin


@pytest.fixture
def inspect_tools(register_plugin, fake_tools):
    return register_plugin(inspect_plugin, name="inspect")


def problems(manager, path, severity=Severity.ERROR):
    checked = check(manager, path)
    return {p.where.path: p for p in checked.problems if p.severity is severity}


READER = """from inspect_ai import task
from inspect_ai.scorer import accuracy, scorer


@scorer(metrics=[accuracy()])
def shouted():
    raise RuntimeError("never imported at design time")


@task
def kit(data_path, config_path="", split="test"):
    raise RuntimeError("never imported at design time")
"""
"""A task file in cruijff_kit's style: its task builds its scorers from ``config_path``, and it
defines a scorer of its own."""


def reader_task(folder) -> dict:
    """A task entry whose task reads ``evaluation.scorers`` (it declares ``config_path``)."""
    script = folder / "kit_task.py"
    script.write_text(READER)
    return {"name": "kit", "script": str(script)}


def test_a_valid_experiment_has_no_problem(
    plugin_manager, inspect_tools, make_experiment, tmp_path
):
    changes = inspect_changes(temperature=0, max_tokens=16, seed=14, batch_size=8, limit=4)
    changes["evaluation"]["tasks"][0].update(
        dataset="same",
        split="test",
        prompt="Caps: {input}",
        system_prompt="Be brief.",
        description="Capitalizes words",
        args={"split": "train"},
    )
    assert check(plugin_manager, make_experiment(changes)).problems == ()
    # scorers, for a task that reads them (inspect's, with their parameters, and its own)
    changes["evaluation"]["scorers"] = [
        "match",
        {"name": "includes", "params": {"ignore_case": False}},
        "shouted",
    ]
    changes["evaluation"]["tasks"] = [{**reader_task(tmp_path), "dataset": "same"}]
    assert check(plugin_manager, make_experiment(changes)).problems == ()


def test_unknown_keys_get_a_did_you_mean_from_the_vocabulary(
    plugin_manager, inspect_tools, make_experiment
):
    changes = inspect_changes(max_token=16, temprature=0)
    changes["evaluation"]["tasks"][0]["datset"] = "same"
    found = problems(plugin_manager, make_experiment(changes))
    assert found["evaluation.max_token"].hint == "did you mean max_tokens?"
    assert found["evaluation.temprature"].hint == "did you mean temperature?"
    assert found["evaluation.tasks[0].datset"].hint == "did you mean dataset?"
    assert found["evaluation.max_token"].where.line is not None


def test_keys_are_claimed_only_when_the_experiment_uses_inspect(
    plugin_manager, inspect_tools, make_experiment
):
    # the fake evaluator does not know batch_size; inspect must not claim it for fake-eval
    path = make_experiment({"evaluation": {"batch_size": 4, "tasks": [{"name": "caps"}]}})
    assert "evaluation.batch_size" in problems(plugin_manager, path)
    assert inspect_plugin.cruijff_parse(check(plugin_manager, path).experiment, ()) is None


def test_unknown_task_function_points_at_its_name_with_a_suggestion(
    plugin_manager, inspect_tools, make_experiment
):
    changes = inspect_changes()
    changes["evaluation"]["tasks"] = [
        {"name": "capitalisation", "script": str(TASKS)},
        {"name": "other", "script": str(TASKS), "function": "exploding_"},
        {"name": "plain", "script": str(TASKS), "function": "not_a_task"},
    ]
    path = make_experiment(changes)
    found = problems(plugin_manager, path)
    first = found["evaluation.tasks[0].name"]
    assert first.message == "capitalization.py has no @task function 'capitalisation'"
    assert first.hint == "did you mean capitalization?"
    assert first.plugin == "inspect" and first.where.file == path and first.where.line
    assert found["evaluation.tasks[1].function"].hint == "did you mean exploding?"
    assert "is not an inspect task" in found["evaluation.tasks[2].function"].message
    assert "@task" in found["evaluation.tasks[2].function"].hint


def test_a_task_file_with_a_syntax_error_is_reported_not_raised(
    plugin_manager, inspect_tools, make_experiment, tmp_path
):
    broken = tmp_path / "broken.py"
    broken.write_text("from inspect_ai import task\n\n@task\ndef caps(:\n")
    changes = inspect_changes()
    changes["evaluation"]["tasks"] = [{"name": "caps", "script": str(broken)}]
    found = problems(plugin_manager, make_experiment(changes))
    assert "cannot read the task file: broken.py:4" in found["evaluation.tasks[0].script"].message


def test_task_arguments_must_be_parameters_of_the_task(
    plugin_manager, inspect_tools, make_experiment
):
    changes = inspect_changes()
    changes["evaluation"]["tasks"][0]["args"] = {"splt": "train"}
    found = problems(plugin_manager, make_experiment(changes))
    problem = found["evaluation.tasks[0].args.splt"]
    assert problem.message == "the task capitalization has no parameter 'splt'"
    assert problem.hint == "did you mean split?"


def test_registered_tasks_need_an_installed_package(plugin_manager, inspect_tools, make_experiment):
    changes = inspect_changes()
    changes["evaluation"]["tasks"] = [
        {"name": "gsm8k", "task": "inspect_evalz/gsm8k"},
        {"name": "lonely"},
        {"name": "mixed", "function": "caps"},
    ]
    found = problems(plugin_manager, make_experiment(changes))
    assert "no installed package registers inspect tasks as inspect_evalz/" in (
        found["evaluation.tasks[0].task"].message
    )
    assert "neither a task file's function nor a registered task" in (
        found["evaluation.tasks[1].name"].message
    )
    assert "script:" in found["evaluation.tasks[1].name"].hint
    assert "has no script" in found["evaluation.tasks[2].function"].message


def test_scorer_names_and_parameters_are_inspects(
    plugin_manager, inspect_tools, make_experiment, tmp_path
):
    changes = inspect_changes(
        scorers=[
            "mach",
            {"name": "includes", "params": {"ignore_cas": True}},
            {"name": "nope/scorer"},
            "shouted",  # a @scorer of the task file
        ]
    )
    changes["evaluation"]["tasks"] = [reader_task(tmp_path)]
    path = make_experiment(changes)
    found = problems(plugin_manager, path)
    warned = problems(plugin_manager, path, Severity.WARNING)
    # the task builds its scorers itself: a name inspect does not know is its business
    assert list(found) == ["evaluation.scorers[1].params.ignore_cas"]
    assert found["evaluation.scorers[1].params.ignore_cas"].hint == "did you mean ignore_case?"
    assert warned["evaluation.scorers[0]"].message == (
        "inspect has no scorer 'mach': the task kit builds its scorers from eval_config.yaml "
        "(config_path) and must know it"
    )
    assert warned["evaluation.scorers[0]"].hint == "did you mean match?"
    assert "no installed package registers inspect scorers as nope/" in (
        warned["evaluation.scorers[2].name"].message
    )
    assert not [path for path in warned if path.startswith("evaluation.scorers[3]")]
    assert "evaluation.scorers" not in warned  # the task reads them


def test_scorers_are_not_read_by_a_task_without_config_path(
    plugin_manager, inspect_tools, make_experiment, tmp_path
):
    # cruijff_kit's capitalization task scores with its own scorers: evaluation.scorers, even
    # a name nobody knows, changes nothing for it
    changes = inspect_changes(scorers=["mach", {"name": "nope/scorer"}])
    path = make_experiment(changes)
    assert problems(plugin_manager, path) == {}
    warned = problems(plugin_manager, path, Severity.WARNING)
    assert list(warned) == ["evaluation.scorers"]
    assert warned["evaluation.scorers"].message == (
        "not read by the task capitalization: it takes no config_path, so it scores with its "
        "own scorers (as in cruijff_kit)"
    )
    assert warned["evaluation.scorers"].where.line is not None
    # a task that reads them and one that does not: said of the one that does not
    changes["evaluation"]["tasks"].append(reader_task(tmp_path))
    checked = check(plugin_manager, make_experiment(changes))
    said = [p for p in checked.problems if p.where.path == "evaluation.scorers"]
    assert [p.message.split(":")[0] for p in said] == ["not read by the task capitalization"]
    assert checked.ok  # 'mach' reaches only kit, which must know it: a warning
    unknown = [p for p in checked.problems if p.where.path == "evaluation.scorers[0]"]
    assert "the task kit builds its scorers" in unknown[0].message


def test_inspects_scorers_and_providers_are_read_from_its_source():
    scorers = introspect.scorers()
    assert {"match", "includes", "exact", "f1", "pattern", "model_graded_qa"} <= set(scorers)
    assert "accuracy" not in scorers  # a metric, not a scorer
    assert scorers["match"].params == ("location", "ignore_case", "numeric")
    assert {"hf", "vllm", "mockllm"} <= set(introspect.providers())
    assert "cruijff_inspect" in introspect.extension_packages()  # the mock provider's entry point


@pytest.mark.parametrize(
    ("settings", "path", "message"),
    [
        ({"temperature": "hot"}, "evaluation.temperature", "expected a number"),
        ({"max_tokens": 0}, "evaluation.max_tokens", "must be at least 1"),
        ({"do_sample": "yes"}, "evaluation.do_sample", "expected true or false"),
        ({"batch_size": 2.5}, "evaluation.batch_size", "expected a whole number"),
        ({"prompt": "no placeholder"}, "evaluation.prompt", "does not contain {input}"),
        ({"model_args": [1]}, "evaluation.model_args", "expected a mapping"),
        ({"mem_gb": 0}, "evaluation.mem_gb", "must be greater than 0"),
        (
            {"do_sample": True, "temperature": 0},
            "evaluation.do_sample",
            "temperature 0 is an error",
        ),
        ({"do_sample": True}, "evaluation.do_sample", "needs a temperature"),
        ({"seed": True}, "evaluation.seed", "expected a whole number"),
        ({"seed": "14"}, "evaluation.seed", "expected a whole number"),
        ({"max_connections": 0}, "evaluation.max_connections", "must be at least 1"),
        ({"assistant_prefix": 3}, "evaluation.assistant_prefix", "expected a string"),
        (
            {"max_connections": 8, "batch_size": 8},
            "evaluation.batch_size",
            "the same setting",
        ),
        (
            {"gpus": 1, "compute": {"gpus": 2}},
            "evaluation.gpus",
            "evaluation.gpus and evaluation.compute.gpus both set the GPUs",
        ),
        ({"provider": "hugginface"}, "evaluation.provider", "unknown model provider"),
    ],
)
def test_evaluation_settings_are_checked(
    plugin_manager, inspect_tools, make_experiment, settings, path, message
):
    found = problems(plugin_manager, make_experiment(inspect_changes(**settings)))
    assert message in found[path].message
    assert found[path].where.line is not None


@pytest.mark.parametrize("temperature", [-1, 0, 0.0, -0.5])
def test_any_temperature_is_dropped_without_error_under_greedy_decoding(
    plugin_manager, inspect_tools, make_experiment, temperature
):
    # cruijff_kit removes the temperature unless do_sample: true, even <= 0, without error
    for do_sample in (None, False):
        settings = {"temperature": temperature}
        if do_sample is not None:
            settings["do_sample"] = do_sample
        path = make_experiment(inspect_changes(**settings))
        checked = check(plugin_manager, path)
        assert checked.problems == (), (settings, checked.problems)
    found = problems(
        plugin_manager, make_experiment(inspect_changes(temperature=temperature, do_sample=True))
    )
    assert "needs a temperature above 0" in found["evaluation.do_sample"].message


def test_provider_suggestion_and_other_providers_warn(
    plugin_manager, inspect_tools, make_experiment
):
    found = problems(plugin_manager, make_experiment(inspect_changes(provider="hff")))
    assert found["evaluation.provider"].hint == "did you mean hf?"
    path = make_experiment(inspect_changes(provider="vllm"))
    assert "evaluation.provider" in problems(plugin_manager, path, Severity.WARNING)
    assert "evaluation.provider" not in problems(plugin_manager, path)


def test_run_parameters_are_claimed_and_checked(plugin_manager, register_plugin, make_experiment):
    register_plugin(inspect_plugin, name="inspect")
    changes = inspect_changes()
    changes["tools"] = {"preparation": None, "evaluation": "inspect"}
    changes["variables"] = None
    changes["controls"] = {"epochs": None, "system_prompt": 3, "dataset_type": "chat"}
    changes["runs"] = [
        {
            "name": "base",
            "type": "control",
            "model": "tiny",
            "parameters": {"prompt": "P: {input}", "checkpoint_path": "x"},
        }
    ]
    path = make_experiment(changes)
    found = problems(plugin_manager, path)
    assert found["controls.system_prompt"].message == "expected a string, not 3"
    assert found["controls.dataset_type"].message == (
        "dataset_type must be one of chat_completion, text_completion, not 'chat'"
    )
    assert "runs[0].parameters.prompt" not in found  # claimed by inspect alone
    warned = problems(plugin_manager, path, Severity.WARNING)
    assert "ignored: base is a control run" in warned["runs[0].parameters.checkpoint_path"].message


def test_eval_only_runs_need_an_existing_model_folder(
    plugin_manager, inspect_tools, make_experiment, tmp_path
):
    (tmp_path / "not_a_model").mkdir()
    changes = inspect_changes()
    changes["variables"] = None
    changes["runs"] = [
        {"name": "a", "type": "eval-only", "model": "tiny"},
        {
            "name": "b",
            "type": "eval-only",
            "model": "tiny",
            "parameters": {"checkpoint_path": "missing/epoch_0"},
        },
        {
            "name": "c",
            "type": "eval-only",
            "model": "tiny",
            "parameters": {"checkpoint_path": "not_a_model"},
        },
        {
            "name": "d",
            "type": "eval-only",
            "model": "tiny",
            "parameters": {"checkpoint_path": "models/tiny"},
        },
    ]
    found = problems(plugin_manager, make_experiment(changes))
    assert "has no checkpoint_path" in found["runs[0]"].message
    assert "checkpoint not found" in found["runs[1].parameters.checkpoint_path"].message
    assert "holds no config.json" in found["runs[2].parameters.checkpoint_path"].message
    assert "runs[3].parameters.checkpoint_path" not in found


def test_datasets_must_exist(plugin_manager, inspect_tools, make_experiment):
    changes = inspect_changes()
    changes["evaluation"]["tasks"][0]["dataset"] = "data/word.json"
    found = problems(plugin_manager, make_experiment(changes))
    assert "dataset not found" in found["evaluation.tasks[0].dataset"].message

    changes = inspect_changes()
    changes["data"] = None
    changes["evaluation"]["tasks"][0]["dataset"] = "same"
    found = problems(plugin_manager, make_experiment(changes))
    assert "there is none" in found["evaluation.tasks[0].dataset"].message


def test_an_evaluation_without_tasks_is_an_error(plugin_manager, inspect_tools, make_experiment):
    changes = inspect_changes()
    changes["evaluation"] = {"tasks": None, "max_tokens": 4}
    found = problems(plugin_manager, make_experiment(changes))
    assert found["evaluation"].message == "the inspect tool has no task to evaluate"


def test_the_cli_prints_problems_with_file_and_line(
    plugin_manager, inspect_tools, make_experiment, cli
):
    changes = inspect_changes(max_tokens=0)
    path = make_experiment(changes)
    result = cli("validate", path)
    assert result.exit_code == 1
    assert f"{path}:" in result.output
    assert "evaluation.max_tokens: must be at least 1, not 0" in result.output
    assert "Traceback" not in result.output


def test_a_prompt_without_input_is_said_once_with_its_line(
    plugin_manager, inspect_tools, make_experiment, cli
):
    changes = inspect_changes()
    changes["controls"] |= {"epochs": 2, "prompt": "Capitalize:"}
    path = make_experiment(changes)
    result = cli("validate", path)
    assert result.exit_code == 1
    said = [line for line in result.output.splitlines() if "does not contain {input}" in line]
    assert len(said) == 1, result.output  # by inspect alone, not the core or the trainer too
    assert said[0].startswith(f"error: {path}:") and "controls.prompt" in said[0]


def test_matrix_epochs_are_checked_where_each_entry_is_written(
    plugin_manager, inspect_tools, make_experiment
):
    changes = inspect_changes(matrix=[7, {"run": "rank4", "epochs": [0, 5]}, {"run": "rank8"}])
    found = problems(plugin_manager, make_experiment(changes))
    assert found["evaluation.matrix[0]"].plugin == ""  # not a mapping: the core's
    problem = found["evaluation.matrix[1].epochs[1]"]  # controls.epochs is 2
    assert problem.plugin == "inspect"
    assert problem.message == "epoch 5 is out of range: rank4 trains for 2 epochs"
    assert problem.hint == "epochs are 0-based: 0 to 1"


def test_without_inspect_ai_installed_the_evaluation_tool_is_an_error(
    plugin_manager, inspect_tools, make_experiment, tmp_path, monkeypatch
):
    path = make_experiment(inspect_changes())
    assert "tools.evaluation" not in problems(plugin_manager, path)
    monkeypatch.setattr(introspect, "_package_folder", lambda package: None)
    found = problems(plugin_manager, path)["tools.evaluation"]
    assert found.message == "inspect-ai is not installed"
    assert "pip install cruijff-inspect" in found.hint


def test_a_task_file_changed_after_its_check_is_an_error_of_the_plan(
    plugin_manager, inspect_tools, make_experiment, tmp_path
):
    changes = inspect_changes()
    changes["evaluation"]["tasks"] = [{**reader_task(tmp_path), "dataset": "same"}]
    checked = check(plugin_manager, make_experiment(changes))
    assert checked.ok
    script = tmp_path / "kit_task.py"
    script.write_text(READER.replace("def kit(", "def renamed("))
    os.utime(script, ns=(time.time_ns() + 10**9,) * 2)  # another version, whatever the clock
    with pytest.raises(UserError, match="has no @task function 'kit'"):
        plan(plugin_manager, checked)  # before any file is written
