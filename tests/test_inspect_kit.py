"""cruijff_kit's evaluation keys mean the same thing to the inspect plugin (../shared/CRUIJFF_KIT.md
§1, §4, §6): each is read, translated (``plan --explain`` says where each value comes from),
checked with file:line, or reported where it is ignored, as cruijff_kit ignores it. Planned
in-process: no job runs here (the real evaluations are in test_inspect_kit_run.py)."""

from __future__ import annotations

import json

import pytest
import yaml
from inspect_helpers import CK_TASK, TASKS, AdapterTrainer, FakeGenerator, inspect_changes

from cruijff.design import check, design
from cruijff.errors import ProblemsFound, UserError
from cruijff.records import Severity
from cruijff_inspect import plugin as inspect_plugin
from cruijff_inspect.data import top_level_keys
from cruijff_inspect.settings import LEGACY_SCORER, RETIRED_SYSTEM_PROMPT


@pytest.fixture
def inspect_tools(register_plugin, fake_tools):
    """The fake trainer (two epochs by default) and the inspect evaluator."""
    return register_plugin(inspect_plugin, name="inspect")


def problems(manager, path, severity=Severity.ERROR):
    return {p.where.path: p for p in check(manager, path).problems if p.severity is severity}


def planned(manager, path):
    plan = design(manager, path)
    return plan, {unit.id: unit for unit in plan.units if unit.tool == "inspect"}


def config_of(plan, unit_id):
    (spec,) = plan.generated[unit_id].files
    return yaml.safe_load(spec.content)


def settings_of(plan, unit_id):
    return {s.path: s for s in plan.generated[unit_id].settings}


def ck_changes(**evaluation):
    """The example experiment evaluated with the cruijff_kit-style task (split: validation)."""
    changes = inspect_changes(**evaluation)
    changes["evaluation"]["tasks"] = [{"name": "organism", "script": str(CK_TASK)}]
    changes["evaluation"]["tasks"][0]["function"] = "ck_style"
    return changes


# --- keys: kept, translated, shown with their source ---------------------------------------


def test_kit_keys_are_translated_and_explained(plugin_manager, inspect_tools, make_experiment):
    changes = ck_changes(
        max_connections=16,
        assistant_prefix="Answer:",
        compute={"time": "0:10:00", "mem": "40G", "gpus": 0},
        matrix=[{"run": "rank4", "vis_label": "r4", "epochs": [0, 1]}, {"run": "base"}],
    )
    changes["evaluation"]["tasks"][0]["description"] = "Word capitalization accuracy"
    plan, cells = planned(plugin_manager, make_experiment(changes))
    assert list(cells) == [
        "rank4.eval.organism.epoch_0",
        "rank4.eval.organism.epoch_1",
        "base.eval.organism.base",
    ]
    cell = "rank4.eval.organism.epoch_1"
    config = config_of(plan, cell)
    settings = settings_of(plan, cell)
    # evaluation.compute: the job's resources
    resources = plan.generated[cell].job.resources
    assert (resources.time_s, resources.mem_mb, resources.gpus) == (600, 40 * 1024, 0)
    assert settings["resources.time_s"].source == "evaluation.compute.time"
    assert settings["resources.cpus"].source.startswith("default")
    # max_connections: the batch ceiling
    assert config["batch_size"] == 16
    assert settings["batch_size"].source == "evaluation.max_connections"
    # vis_label: the cell's label, passed to a task that declares it
    assert cells[cell].params["vis_label"] == "r4"
    assert config["task_args"]["vis_label"] == "r4"
    assert settings["vis_label"].source == "evaluation.matrix[0].vis_label"
    assert config_of(plan, "base.eval.organism.base")["vis_label"] == "base"  # the run's name
    # assistant_prefix: the evaluation's reaches no task that does not declare it (ck_style
    # does not: a warning says so)
    assert "assistant_prefix" not in config["task_args"]
    assert settings["assistant_prefix"].value == "Answer:"
    # description: informational, kept
    assert settings["description"].value == "Word capitalization accuracy"
    # max_tokens and the seed: the task's default and cruijff_kit's 14
    assert "max_tokens" not in config["task_args"] and "max_tokens" not in config["generate"]
    assert (settings["max_tokens"].value, settings["max_tokens"].source) == (
        5,
        "the task's default",
    )
    assert config["generate"] == {"seed": 14}
    # cruijff_kit's eval.yaml at the top of the cell's config, read through config_path
    assert config["task_args"]["config_path"] == str(cells[cell].directory / "eval_config.yaml")
    assert list(config)[:4] == ["prompt", "system_prompt", "dataset_type", "use_chat_template"]
    assert config["prompt"] == "Capitalize: {input}\n" and config["system_prompt"] == ""
    assert config["task_args"]["use_chat_template"] is True
    assert config["metadata"] == {
        "is_finetuned": True,
        "source_model": "tiny",
        "vis_label": "r4",
        "epoch": 1,
    }
    warned = problems(plugin_manager, plan.experiment.file, Severity.WARNING)
    assert "takes no assistant_prefix" in warned["evaluation.assistant_prefix"].message


def test_plan_explain_shows_where_each_value_came_from(
    plugin_manager, inspect_tools, make_experiment, cli
):
    changes = ck_changes(max_connections=16, compute={"time": "0:10:00"})
    changes["evaluation"]["matrix"] = [{"run": "rank4", "vis_label": "r4"}]
    result = cli("plan", make_experiment(changes), "--explain", "rank4")
    assert result.exit_code == 0, result.output
    for shown in (
        "evaluation.compute.time",
        "evaluation.max_connections",
        "evaluation.matrix[0].vis_label",
        "controls.dataset_type",
        "the task's default",
    ):
        assert shown in result.output, shown


def test_an_entry_of_several_tasks_labels_each_cell_with_its_task(
    plugin_manager, inspect_tools, make_experiment
):
    changes = ck_changes(matrix=[{"run": "base", "vis_label": "1B", "tasks": ["organism", "b"]}])
    changes["evaluation"]["tasks"].append(
        {"name": "b", "script": str(CK_TASK), "function": "ck_style"}
    )
    plan, cells = planned(plugin_manager, make_experiment(changes))
    labels = [config_of(plan, unit)["task_args"]["vis_label"] for unit in cells]
    assert labels == ["1B (organism)", "1B (b)"]


def test_assistant_prefix_of_the_task_wins_and_reaches_a_task_that_takes_it(
    plugin_manager, inspect_tools, make_experiment, tmp_path
):
    script = tmp_path / "prefixed.py"
    script.write_text(
        "from inspect_ai import task\n\n@task\n"
        "def prefixed(data_path, split='test', assistant_prefix=''):\n    pass\n"
    )
    changes = inspect_changes(assistant_prefix="E:")
    changes["evaluation"]["tasks"] = [
        {"name": "prefixed", "script": str(script), "assistant_prefix": 'T: "quoted"'}
    ]
    path = make_experiment(changes)
    plan, _ = planned(plugin_manager, path)
    config = config_of(plan, "base.eval.prefixed.base")
    assert config["task_args"]["assistant_prefix"] == 'T: "quoted"'  # verbatim
    assert settings_of(plan, "base.eval.prefixed.base")["assistant_prefix"].source == (
        "evaluation.tasks.prefixed"
    )
    assert not problems(plugin_manager, path, Severity.WARNING)


def test_compute_gpus_above_one_spread_the_model(plugin_manager, inspect_tools, make_experiment):
    plan, _ = planned(plugin_manager, make_experiment(inspect_changes(compute={"gpus": 2})))
    config = config_of(plan, "base.eval.capitalization.base")
    assert config["model"]["args"]["device"] == "auto"  # cruijff_kit's -M device="auto"
    assert plan.generated["base.eval.capitalization.base"].job.resources.gpus == 2


# --- data: which file, which split, checked where it can be ---------------------------------


def test_dataset_same_reads_the_tasks_own_default_split(
    plugin_manager, inspect_tools, make_experiment
):
    changes = ck_changes()
    changes["evaluation"]["tasks"][0]["dataset"] = "same"
    plan, _ = planned(plugin_manager, make_experiment(changes))
    config = config_of(plan, "base.eval.organism.base")
    assert config["task_args"]["split"] == "validation"  # ck_style's default, like model_organism
    source = settings_of(plan, "base.eval.organism.base")["split"].source
    assert source.startswith("the task's default (split='validation' in ck_style_task.py:")
    # a task that declares none reads test
    plan, _ = planned(plugin_manager, make_experiment(inspect_changes()))
    assert config_of(plan, "base.eval.capitalization.base")["task_args"]["split"] == "test"


def test_a_split_the_users_file_lacks_is_an_error_at_parse_time(
    plugin_manager, inspect_tools, make_experiment, tmp_path
):
    organism = tmp_path / "organism.json"
    rows = [{"input": "0 1", "output": "1", "metadata": {}}]
    organism.write_text(json.dumps({"train": rows, "validation": rows, "metadata": {"k": 2}}))
    changes = inspect_changes()
    changes["evaluation"]["tasks"][0]["dataset"] = str(organism)
    path = make_experiment(changes)
    found = problems(plugin_manager, path)["evaluation.tasks[0]"]
    assert found.message.startswith(
        "organism.json has no split 'test' (it has train, validation); the task reads 'test', "
        "the task's default (split='test' in capitalization.py:"
    )
    assert found.hint == "set split: validation on the task"
    assert found.where.file == path and found.where.line

    changes["evaluation"]["tasks"][0]["split"] = "valid"
    found = problems(plugin_manager, make_experiment(changes))["evaluation.tasks[0].split"]
    assert "has no split 'valid'" in found.message and "from evaluation.tasks[0].split" in (
        found.message
    )
    changes["evaluation"]["tasks"][0]["split"] = "validation"
    assert check(plugin_manager, make_experiment(changes)).ok


def test_top_level_keys_are_read_without_the_rows(tmp_path):
    path = tmp_path / "data.json"
    text = (
        '\ufeff {"train": [{"input": "a \\" { [ b", "output": "}"}, {"metadata": {"x": [1]}}],'
        '\n "validation_ood_0": [], "metadata": {"rule": "parity"}}'
    )
    path.write_text(text)
    assert top_level_keys(path) == ("train", "validation_ood_0", "metadata")
    path.write_text('[{"input": "a", "output": "b"}]')
    assert top_level_keys(path) is None  # a list serves every split
    path.write_text('{"train": [')
    assert top_level_keys(path) is None


def test_eval_condition_names_exactly_one_test_file_beside_the_training_data(
    plugin_manager, inspect_tools, make_experiment, tmp_path
):
    changes = inspect_changes()
    changes["evaluation"]["tasks"][0]["eval_condition"] = "narrative"
    path = make_experiment(changes)
    found = problems(plugin_manager, path)["evaluation.tasks[0].eval_condition"]
    assert "no narrative_test_*.json in" in found.message
    assert "convert-tabular-to-text" in found.hint

    data = tmp_path / "data"
    rows = [{"input": "pear", "output": "PEAR"}]
    (data / "narrative_test_1a2b3c4d.json").write_text(json.dumps({"test": rows}))
    changes["evaluation"]["tasks"][0]["dataset"] = "same"  # eval_condition comes first
    path = make_experiment(changes)
    assert (
        "not read"
        in problems(plugin_manager, path, Severity.WARNING)["evaluation.tasks[0].dataset"].message
    )
    plan, _ = planned(plugin_manager, path)
    config = config_of(plan, "base.eval.capitalization.base")
    assert config["task_args"]["data_path"] == str(data / "narrative_test_1a2b3c4d.json")
    source = settings_of(plan, "base.eval.capitalization.base")["dataset"].source
    assert source == "evaluation.tasks[0].eval_condition"

    (data / "narrative_test_99999999.json").write_text(json.dumps({"test": rows}))
    found = problems(plugin_manager, path)["evaluation.tasks[0].eval_condition"]
    assert "2 files match narrative_test_*.json" in found.message


@pytest.mark.parametrize("condition", ["../elsewhere/narrative", "/tmp/narrative", "nar*", "a b"])
def test_an_eval_condition_is_a_plain_name_and_reads_nothing_outside_the_data_folder(
    plugin_manager, inspect_tools, make_experiment, tmp_path, condition
):
    # a file the name would reach as a path or a pattern: never read
    for folder in (tmp_path / "elsewhere", tmp_path / "data"):
        folder.mkdir(exist_ok=True)
        rows = [{"input": "pear", "output": "PEAR"}]
        (folder / "narrative_test_1a2b3c4d.json").write_text(json.dumps({"test": rows}))
    changes = inspect_changes()
    changes["evaluation"]["tasks"][0]["eval_condition"] = condition
    found = problems(plugin_manager, make_experiment(changes))["evaluation.tasks[0].eval_condition"]
    assert found.message == f"{condition!r} is not a condition name"
    assert found.where.line is not None


def test_condition_files_are_matched_by_name_in_their_folder(tmp_path):
    from cruijff.upstream import condition_file

    for name in (
        "c1_test_00000002.json",
        "c1_test_00000001.json",
        "c1_train_00000001.json",
        "c1_test_x.txt",
        "c10_test_00000001.json",
        "xc1_test_00000001.json",
    ):
        (tmp_path / name).write_text("{}")
    (tmp_path / "c1_test_folder.json").mkdir()
    assert [p.name for p in condition_file(tmp_path, "c1", "test")] == [
        "c1_test_00000001.json",
        "c1_test_00000002.json",
    ]
    assert [p.name for p in condition_file(tmp_path, "c1", "train")] == ["c1_train_00000001.json"]
    assert condition_file(tmp_path, "c*", "test") == []  # a name, never a pattern
    assert condition_file(tmp_path, "../" + tmp_path.name + "/c1", "test") == []
    assert condition_file(tmp_path / "missing", "c1", "test") == []
    with pytest.raises(ValueError, match="kind must be one of train, test"):
        condition_file(tmp_path, "c1", "validation")


def test_a_runs_eval_dataset_path_comes_after_the_tasks_dataset(
    plugin_manager, inspect_tools, make_experiment, tmp_path
):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"test": [{"input": "fig", "output": "FIG"}]}))
    changes = inspect_changes()
    changes["variables"] = None
    changes["runs"] = [
        {
            "name": "base",
            "type": "control",
            "model": "tiny",
            "parameters": {"eval_dataset_path": str(other)},
        },
        {"name": "plain", "type": "control", "model": "tiny"},
    ]
    plan, _ = planned(plugin_manager, make_experiment(changes))
    assert config_of(plan, "base.eval.capitalization.base")["task_args"]["data_path"] == str(other)
    assert config_of(plan, "plain.eval.capitalization.base")["task_args"]["data_path"] == str(
        tmp_path / "data" / "words.json"
    )
    changes["evaluation"]["tasks"][0]["dataset"] = "same"
    plan, _ = planned(plugin_manager, make_experiment(changes))
    assert config_of(plan, "base.eval.capitalization.base")["task_args"]["data_path"] == str(
        tmp_path / "data" / "words.json"
    )
    changes["runs"][0]["parameters"]["eval_dataset_path"] = "missing.json"
    del changes["evaluation"]["tasks"][0]["dataset"]
    found = problems(plugin_manager, make_experiment(changes))
    assert "evaluation data not found" in found["runs[0].parameters.eval_dataset_path"].message


def generated_experiment(make_experiment, register_plugin, task, splits):
    register_plugin(FakeGenerator(splits), name="gen")
    changes = inspect_changes()
    changes["evaluation"]["tasks"] = [task]
    changes["data"] = {
        "training": {"path": "data/organism.json"},
        "data_generation": {"tool": "gen", "rows": 8},
    }
    return make_experiment(changes)


def test_a_cell_depends_on_the_unit_that_generates_its_data(
    plugin_manager, inspect_tools, register_plugin, make_experiment
):
    task = {"name": "organism", "script": str(CK_TASK), "function": "ck_style"}
    path = generated_experiment(
        make_experiment, register_plugin, task, {"train": 6, "validation": 2}
    )
    assert check(plugin_manager, path).ok  # the file does not exist yet
    plan, cells = planned(plugin_manager, path)
    assert cells["rank4.eval.organism.epoch_1"].depends_on == ("data.generate", "rank4.train")
    assert cells["base.eval.organism.base"].depends_on == ("data.generate",)
    order = [unit.id for unit in plan.units]
    assert order.index("data.generate") < order.index("base.eval.organism.base")


def test_a_split_the_generated_data_lacks_is_an_error_at_select_time(
    plugin_manager, inspect_tools, register_plugin, make_experiment
):
    task = {"name": "capitalization", "script": str(TASKS)}  # reads test by default
    path = generated_experiment(
        make_experiment, register_plugin, task, {"train": 6, "validation": 2}
    )
    with pytest.raises(ProblemsFound) as caught:
        design(plugin_manager, path)
    assert isinstance(caught.value, UserError)
    (problem,) = caught.value.problems
    assert problem.where.path == "evaluation.tasks[0]"
    assert problem.where.file == path and problem.where.line is not None
    assert problem.message.startswith(
        "organism.json has no split 'test' (it has train, validation), as gen generates it; "
        "the task capitalization reads 'test' (the task's default (split='test' in "
        "capitalization.py:"
    )
    assert problem.hint == "set split: validation on the task"


# --- same meaning: decoding, scorers, chat template, retired keys ---------------------------


def test_a_temperature_without_do_sample_is_inert_and_said_so(
    plugin_manager, inspect_tools, make_experiment
):
    path = make_experiment(inspect_changes(temperature=0.7))
    warned = problems(plugin_manager, path, Severity.WARNING)["evaluation.temperature"]
    assert warned.message == (
        "temperature 0.7 has no effect: decoding is greedy unless do_sample: true (as in "
        "cruijff_kit)"
    )
    assert check(plugin_manager, path).ok
    # cruijff_kit's schema fixture: temperature 0.0, no do_sample: nothing to say
    assert not problems(
        plugin_manager, make_experiment(inspect_changes(temperature=0.0)), Severity.WARNING
    )


def test_retired_system_prompt_and_scorer_are_ignored_with_a_warning(
    plugin_manager, inspect_tools, make_experiment
):
    changes = inspect_changes(system_prompt="Ignored.", scorer=[{"name": "match"}])
    changes["controls"] |= {"system_prompt": "Kept."}
    path = make_experiment(changes)
    warned = problems(plugin_manager, path, Severity.WARNING)
    assert warned["evaluation.system_prompt"].message == RETIRED_SYSTEM_PROMPT
    assert warned["evaluation.scorer"].message == LEGACY_SCORER
    assert check(plugin_manager, path).ok
    plan, _ = planned(plugin_manager, path)
    config = config_of(plan, "base.eval.capitalization.base")
    assert config["system_prompt"] == "Kept." and config["task_args"]["system_prompt"] == "Kept."
    assert "scorers" not in config and "replace_scorers" not in config  # the task's own


def test_a_clean_kit_file_gives_no_warning(plugin_manager, inspect_tools, make_experiment):
    changes = ck_changes(do_sample=False, seed=0, max_connections=32, scorers=["match"])
    changes["controls"] |= {"system_prompt": ""}
    path = make_experiment(changes)
    assert check(plugin_manager, path).problems == ()
    plan, _ = planned(plugin_manager, path)
    config = config_of(plan, "base.eval.organism.base")
    assert config["generate"] == {"seed": 0}  # 0 is a seed
    assert "replace_scorers" not in config  # the task builds its own from the config
    assert config["scorers"] == [
        {"name": "match", "params": {"location": "exact", "ignore_case": False}}
    ]
    source = settings_of(plan, "base.eval.organism.base")["scorers"].source
    assert source == "evaluation.tasks.organism (config_path)"


def test_scorer_params_are_passed_as_written(plugin_manager, inspect_tools, make_experiment):
    changes = ck_changes(scorers=[{"name": "match", "params": {"location": "exact"}}, "includes"])
    plan, _ = planned(plugin_manager, make_experiment(changes))
    config = config_of(plan, "base.eval.organism.base")
    assert config["scorers"] == [
        {"name": "match", "params": {"location": "exact"}},  # inspect's default: ignore_case
        {"name": "includes", "params": {"ignore_case": False}},
    ]
    settings = settings_of(plan, "base.eval.organism.base")
    assert settings["scorers[1]"].value == "includes(ignore_case=False)"
    assert "exact and case-sensitive, as in cruijff_kit" in settings["scorers[1]"].source


def test_a_scorer_only_kit_tasks_know_is_a_warning_for_them(
    plugin_manager, inspect_tools, make_experiment
):
    path = make_experiment(ck_changes(scorers=[{"name": "risk_scorer"}]))
    warned = problems(plugin_manager, path, Severity.WARNING)["evaluation.scorers[0].name"]
    assert "must know it" in warned.message
    assert check(plugin_manager, path).ok
    # a task without config_path never gets them: nothing to know, it scores with its own
    path = make_experiment(inspect_changes(scorers=[{"name": "risk_scorer"}]))
    assert check(plugin_manager, path).ok
    warned = problems(plugin_manager, path, Severity.WARNING)
    assert "evaluation.scorers[0].name" not in warned
    assert "not read by the task capitalization" in warned["evaluation.scorers"].message


def test_a_missing_dataset_type_is_an_error_when_the_experiment_evaluates(
    plugin_manager, inspect_tools, make_experiment
):
    changes = inspect_changes()
    changes["controls"] = {"epochs": 2, "prompt": "Capitalize: {input}"}
    path = make_experiment(changes)
    found = problems(plugin_manager, path)["controls.dataset_type"]
    assert found.message.startswith("dataset_type is required to evaluate")
    assert found.where.line is not None and found.plugin == "inspect"
    assert "chat_completion" in found.hint


def test_text_completion_asks_without_a_chat_system_prompt(
    plugin_manager, inspect_tools, make_experiment
):
    changes = inspect_changes()
    changes["controls"] |= {"dataset_type": "text_completion", "system_prompt": "Be brief."}
    path = make_experiment(changes)
    warned = problems(plugin_manager, path, Severity.WARNING)["controls.system_prompt"]
    assert "asked without a system prompt" in warned.message
    plan, _ = planned(plugin_manager, path)
    config = config_of(plan, "base.eval.capitalization.base")
    assert config["use_chat_template"] is False and config["dataset_type"] == "text_completion"
    assert config["system_prompt"] == "Be brief."  # as cruijff_kit's eval.yaml holds it
    assert config["task_args"]["system_prompt"] == ""  # but the model is not sent it


# --- eval-only runs and adapters -------------------------------------------------------------


def eval_only(make_experiment, checkpoint, task=None, **controls):
    changes = ck_changes() if task is None else inspect_changes()
    changes["variables"] = None
    changes["controls"] |= controls
    changes["runs"] = [
        {
            "name": "older",
            "type": "eval-only",
            "model": "tiny",
            "parameters": {"checkpoint_path": str(checkpoint)},
        }
    ]
    return make_experiment(changes)


def test_an_eval_only_run_keeps_cruijff_kits_invariants(
    plugin_manager, inspect_tools, make_experiment, tmp_path
):
    real = tmp_path / "store" / "epoch_3"
    real.mkdir(parents=True)
    (real / "config.json").write_text("{}")
    link = tmp_path / "checkpoint"
    link.symlink_to(real)
    path = eval_only(make_experiment, link, prompt="Q: {input} A:", dataset_type="text_completion")
    plan, cells = planned(plugin_manager, path)
    (cell,) = cells.values()
    config = config_of(plan, cell.id)
    assert config["model"]["path"] == str(link)  # verbatim: the link is not resolved
    assert config["prompt"] == "Q: {input} A:" and config["prompt"] != "{input}"
    assert config["dataset_type"] == "text_completion"
    assert config["use_chat_template"] is False
    assert config["task_args"]["use_chat_template"] is False
    assert config["model"]["args"]["do_sample"] is False
    assert config["metadata"]["is_finetuned"] is True and "epoch" not in config["metadata"]
    assert cell.depends_on == ()
    assert not any("setup_finetune" in str(value) for value in config.values())


def test_an_eval_only_adapter_folder_needs_its_recorded_base(
    plugin_manager, inspect_tools, make_experiment, tmp_path
):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(b"")
    config = {"peft_type": "LORA", "r": 4, "base_model_name_or_path": str(tmp_path / "gone")}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    path = eval_only(make_experiment, folder)
    found = problems(plugin_manager, path)["runs[0].parameters.checkpoint_path"]
    assert "recorded base model" in found.message and str(tmp_path / "gone") in found.message

    base = tmp_path / "models" / "tiny"
    (folder / "adapter_config.json").write_text(
        json.dumps({**config, "base_model_name_or_path": str(base)})
    )
    (folder / "config.json").write_text("{}")  # torchtune copies the base's beside the adapter
    plan, cells = planned(plugin_manager, eval_only(make_experiment, folder))
    (cell,) = cells.values()
    model = config_of(plan, cell.id)["model"]
    assert model["path"] == str(base) and model["adapter"] == str(folder)
    assert cell.consumes[0].kind == "lora-adapter"


def test_a_trainer_that_keeps_adapters_only_is_evaluated_as_base_plus_adapter(
    plugin_manager, register_plugin, make_experiment, tmp_path
):
    register_plugin(AdapterTrainer(epochs=2), name="adaptertrain")
    register_plugin(inspect_plugin, name="inspect")
    changes = inspect_changes(matrix=[{"run": "rank4", "epochs": [0, 1]}])
    changes["tools"]["preparation"] = "adaptertrain"
    changes["controls"] |= {"epochs": None}
    plan, cells = planned(plugin_manager, make_experiment(changes))
    cell = cells["rank4.eval.capitalization.epoch_1"]
    assert cell.depends_on == ("rank4.train",)
    model = config_of(plan, cell.id)["model"]
    assert model["path"] == str(tmp_path / "models" / "tiny")  # the run's base model
    assert model["adapter"] == str(tmp_path / "rank4" / "train" / "adapters" / "epoch_1")
    assert settings_of(plan, cell.id)["adapter"].value == model["adapter"]
