"""The inspect plugin's evaluation matrix and generated cells, planned in-process (no job runs):
default and explicit matrices, ``all``, controls, eval-only runs, dependencies, prompt
precedence, decoding, task arguments and resources."""

from __future__ import annotations

import json
import sys

import attrs
import pytest
import yaml
from inspect_helpers import TASKS, CopyTrainer, inspect_changes

from cruijff import hookimpl
from cruijff.design import design
from cruijff.errors import ProblemsFound
from cruijff.orchestrator import scaffold_experiment
from cruijff.records import JobState, JobStatus
from cruijff.retry import default_retry
from cruijff_inspect import plugin as inspect_plugin
from cruijff_inspect.matrix import unit_id


@pytest.fixture
def inspect_tools(register_plugin, fake_tools):
    """The fake trainer (two epochs by default) and the inspect evaluator."""
    return register_plugin(inspect_plugin, name="inspect")


def planned(manager, path):
    plan = design(manager, path)
    return plan, {unit.id: unit for unit in plan.units if unit.tool == "inspect"}


def config_of(plan, unit_id):
    (spec,) = plan.generated[unit_id].files
    return yaml.safe_load(spec.content)


def test_default_matrix_is_every_run_at_its_last_epoch_and_the_base_model_once(
    plugin_manager, inspect_tools, make_experiment
):
    plan, cells = planned(plugin_manager, make_experiment(inspect_changes()))
    assert list(cells) == [
        "rank4.eval.capitalization.epoch_1",
        "rank8.eval.capitalization.epoch_1",
        "base.eval.capitalization.base",
    ]
    rank4 = cells["rank4.eval.capitalization.epoch_1"]
    root = plan.experiment.directory
    assert rank4.directory == root / "rank4" / "eval" / "capitalization" / "epoch_1"
    assert rank4.depends_on == ("rank4.train",)
    assert rank4.consumes[0].path == root / "rank4" / "train" / "epoch_1"
    assert rank4.produces[0].kind == "inspect-log"
    base = cells["base.eval.capitalization.base"]
    assert base.depends_on == ()
    assert base.directory == root / "base" / "eval" / "capitalization" / "base"
    assert config_of(plan, base.id)["model"]["path"] == str(root / "models" / "tiny")
    # an evaluation comes after the training it depends on
    order = [unit.id for unit in plan.units]
    assert order.index("rank4.train") < order.index(rank4.id)


def test_explicit_matrix_epochs_all_lists_last_and_null(
    plugin_manager, inspect_tools, make_experiment
):
    changes = inspect_changes(
        matrix=[
            {"run": "rank4", "epochs": "all"},
            {"run": "rank8", "tasks": ["capitalization"], "epochs": [0]},
            {"run": "rank8"},  # epochs left out: the last
            {"run": "rank8", "epochs": None},  # the run's base model
            {"run": "rank4", "epochs": [1]},  # already listed: once
        ]
    )
    changes["controls"] |= {"epochs": 3}
    _, cells = planned(plugin_manager, make_experiment(changes))
    assert list(cells) == [
        "rank4.eval.capitalization.epoch_0",
        "rank4.eval.capitalization.epoch_1",
        "rank4.eval.capitalization.epoch_2",
        "rank8.eval.capitalization.epoch_0",
        "rank8.eval.capitalization.epoch_2",
        "rank8.eval.capitalization.base",
    ]
    assert cells["rank8.eval.capitalization.epoch_0"].depends_on == ("rank8.train",)
    assert cells["rank8.eval.capitalization.base"].depends_on == ()


def test_matrix_restricted_to_some_tasks_and_a_control(
    plugin_manager, inspect_tools, make_experiment
):
    changes = inspect_changes(
        matrix=[{"run": "base", "tasks": ["second"]}, {"run": "rank4", "tasks": ["second"]}]
    )
    changes["evaluation"]["tasks"].append(
        {"name": "second", "script": str(TASKS), "function": "capitalization"}
    )
    plan, cells = planned(plugin_manager, make_experiment(changes))
    assert list(cells) == ["base.eval.second.base", "rank4.eval.second.epoch_1"]
    assert config_of(plan, "base.eval.second.base")["task_source"] == {
        "script": str(TASKS),
        "function": "capitalization",
    }


def test_eval_only_run_evaluates_its_checkpoint_without_dependency(
    plugin_manager, inspect_tools, make_experiment, tmp_path
):
    checkpoint = tmp_path / "old" / "epoch_3"
    checkpoint.mkdir(parents=True)
    (checkpoint / "config.json").write_text("{}")
    changes = inspect_changes()
    changes["variables"] = None
    changes["runs"] = [
        {
            "name": "older",
            "type": "eval-only",
            "model": "tiny",
            "parameters": {"checkpoint_path": "old/epoch_3"},
        },
        {"name": "base", "type": "control", "model": "tiny"},
    ]
    plan, cells = planned(plugin_manager, make_experiment(changes))
    assert list(cells) == ["older.eval.capitalization.checkpoint", "base.eval.capitalization.base"]
    older = cells["older.eval.capitalization.checkpoint"]
    assert older.depends_on == ()
    config = config_of(plan, older.id)
    assert config["model"]["path"] == str(checkpoint)
    assert config["model"]["name"] == "hf/older"
    assert config["source"] == "checkpoint" and config["epoch"] is None


def test_epochs_follow_the_training_tools_artifacts(
    plugin_manager, register_plugin, make_experiment
):
    register_plugin(CopyTrainer(epochs=3), name="copytrain")
    register_plugin(inspect_plugin, name="inspect")
    changes = inspect_changes(matrix=[{"run": "rank4", "epochs": "all"}])
    changes["tools"]["preparation"] = "copytrain"
    changes["controls"] |= {"epochs": None}  # the tool decides
    _, cells = planned(plugin_manager, make_experiment(changes))
    assert [cell.params["epoch"] for cell in cells.values()] == [0, 1, 2]


def test_an_epoch_beyond_training_is_an_error_at_its_line(
    plugin_manager, register_plugin, make_experiment
):
    register_plugin(CopyTrainer(epochs=2), name="copytrain")
    register_plugin(inspect_plugin, name="inspect")
    changes = inspect_changes(matrix=[{"run": "rank4", "epochs": [0, 5]}])
    changes["tools"]["preparation"] = "copytrain"
    changes["controls"] |= {"epochs": None}  # unknown to the core: the trainer's artifacts tell
    path = make_experiment(changes)
    with pytest.raises(ProblemsFound) as caught:
        design(plugin_manager, path)
    (problem,) = caught.value.problems
    assert problem.plugin == "inspect"
    assert problem.where.path == "evaluation.matrix[0].epochs[1]"
    assert problem.where.file == path and problem.where.line is not None
    assert "epoch 5 is out of range: rank4 trains for 2 epochs" in problem.message
    assert problem.hint == "epochs are 0-based: 0 to 1"


def test_validate_command_reports_an_epoch_beyond_training(
    plugin_manager, register_plugin, make_experiment, cli
):
    register_plugin(CopyTrainer(epochs=1), name="copytrain")
    register_plugin(inspect_plugin, name="inspect")
    changes = inspect_changes(matrix=[{"run": "rank8", "epochs": [1]}])
    changes["tools"]["preparation"] = "copytrain"
    changes["controls"] |= {"epochs": None}
    path = make_experiment(changes)
    result = cli("validate", path)
    assert result.exit_code == 1
    assert "evaluation.matrix[0].epochs[0]" in result.output
    assert "epoch 1 is out of range" in result.output
    assert "Traceback" not in result.output


def test_a_fine_tuned_run_without_a_trainer_is_an_error(
    plugin_manager, register_plugin, make_experiment
):
    register_plugin(inspect_plugin, name="inspect")
    changes = inspect_changes()
    changes["tools"] = {"preparation": None, "evaluation": "inspect"}
    changes["variables"] = None
    changes["controls"] |= {"epochs": None}
    changes["runs"] = [{"name": "rank4", "model": "tiny"}, {"name": "rank8", "model": "tiny"}]
    with pytest.raises(ProblemsFound) as caught:
        design(plugin_manager, make_experiment(changes))
    problems = caught.value.problems
    assert [p.where.path for p in problems] == ["runs[0]", "runs[1]"]  # once per run
    assert "no preparation tool of this experiment produces its model" in problems[0].message


def test_long_ids_are_shortened_with_a_hash():
    long = unit_id("r" * 64, "t" * 60, "epoch_10")
    assert len(long) <= 100 and long.startswith("r" * 20)
    assert long != unit_id("r" * 64, "t" * 59 + "u", "epoch_10")
    assert unit_id("rank4", "caps", "base") == "rank4.eval.caps.base"


# --- precedence and the generated config ---------------------------------------------------


def precedence_experiment(make_experiment, *, task=None, run=None, evaluation=None):
    changes = inspect_changes(**(evaluation or {}))
    changes["evaluation"]["tasks"][0].update(task or {})
    changes["variables"] = None
    changes["runs"] = [
        {"name": "tuned", "model": "tiny", "parameters": run or {}},
        {"name": "base", "type": "control", "model": "tiny"},
    ]
    changes["controls"] |= {"epochs": 1, "prompt": "C: {input}", "system_prompt": "controls"}
    return make_experiment(changes)


@pytest.mark.parametrize(
    ("task", "run", "evaluation", "prompt", "system", "source"),
    [
        ({}, {}, {}, "C: {input}", "controls", "controls"),
        (  # evaluation.system_prompt is retired (cruijff_kit ignores it): controls' applies
            {},
            {},
            {"prompt": "E: {input}", "system_prompt": "eval"},
            "E: {input}",
            "controls",
            "evaluation",
        ),
        (  # a run's system prompt is for its training: evaluated with the controls'
            {},
            {"prompt": "R: {input}", "system_prompt": "run"},
            {"prompt": "E: {input}", "system_prompt": "eval"},
            "R: {input}",
            "controls",
            "runs.tuned",
        ),
        (
            {"prompt": "T: {input}", "system_prompt": "task"},
            {"prompt": "R: {input}", "system_prompt": "run"},
            {"prompt": "E: {input}"},
            "T: {input}",
            "task",
            "evaluation.tasks.capitalization",
        ),
    ],
)
def test_prompt_precedence_task_then_run_then_evaluation_then_controls(
    plugin_manager, inspect_tools, make_experiment, task, run, evaluation, prompt, system, source
):
    path = precedence_experiment(make_experiment, task=task, run=run, evaluation=evaluation)
    plan, _ = planned(plugin_manager, path)
    config = config_of(plan, "tuned.eval.capitalization.epoch_0")
    assert config["prompt"] == prompt and config["system_prompt"] == system
    assert config["task_args"]["prompt"] == prompt
    assert config["task_args"]["system_prompt"] == system
    settings = {s.path: s for s in plan.generated["tuned.eval.capitalization.epoch_0"].settings}
    assert settings["prompt"].value == prompt and settings["prompt"].source == source
    # the control run has no parameters of its own: the run level is skipped
    base = config_of(plan, "base.eval.capitalization.base")
    assert base["prompt"] == (task or {}).get(
        "prompt", (evaluation or {}).get("prompt", "C: {input}")
    )


def test_a_runs_system_prompt_is_for_its_training_and_warned_where_evaluation_differs(
    plugin_manager, inspect_tools, make_experiment
):
    from cruijff.design import check
    from cruijff.records import Severity

    def warned(path):
        checked = check(plugin_manager, path)
        assert checked.ok
        return {p.where.path: p for p in checked.problems if p.severity is Severity.WARNING}

    path = precedence_experiment(make_experiment, run={"system_prompt": "run"})
    found = warned(path)["runs[0].parameters.system_prompt"]
    assert found.message == (
        "trained with, not evaluated with: the evaluation of tuned uses "
        "controls.system_prompt ('controls'), as in cruijff_kit"
    )
    assert found.where.line is not None
    plan, _ = planned(plugin_manager, path)
    config = config_of(plan, "tuned.eval.capitalization.epoch_0")
    assert config["system_prompt"] == "controls" == config["task_args"]["system_prompt"]
    settings = {s.path: s for s in plan.generated["tuned.eval.capitalization.epoch_0"].settings}
    assert settings["system_prompt"].source == "controls"
    # the task's own is what the evaluation uses, and is said so
    path = precedence_experiment(
        make_experiment, task={"system_prompt": "task"}, run={"system_prompt": "run"}
    )
    assert "the task capitalization's system_prompt ('task')" in (
        warned(path)["runs[0].parameters.system_prompt"].message
    )
    # the same as what the evaluation uses: nothing to say
    path = precedence_experiment(make_experiment, run={"system_prompt": "controls"})
    assert "runs[0].parameters.system_prompt" not in warned(path)
    # a swept system prompt: said once, at the variable
    changes = inspect_changes()
    changes["variables"] = {"system_prompt": ["A.", "B."]}
    changes["controls"] |= {"system_prompt": "A."}
    found = warned(make_experiment(changes))
    assert "trained with, not evaluated with" in found["variables.system_prompt"].message


def test_decoding_is_greedy_unless_do_sample_and_the_seed_defaults_to_14(
    plugin_manager, inspect_tools, make_experiment
):
    plan, _ = planned(plugin_manager, make_experiment(inspect_changes(max_tokens=12, seed=3)))
    config = config_of(plan, "base.eval.capitalization.base")
    assert config["model"]["args"]["do_sample"] is False
    assert config["generate"] == {"max_tokens": 12, "seed": 3}  # no temperature 0 for hf

    # a temperature alone does not sample (cruijff_kit drops it under greedy decoding)
    plan, _ = planned(plugin_manager, make_experiment(inspect_changes(temperature=0.7)))
    config = config_of(plan, "base.eval.capitalization.base")
    assert config["model"]["args"]["do_sample"] is False
    assert config["generate"] == {"seed": 14}
    settings = {s.path: s for s in plan.generated["base.eval.capitalization.base"].settings}
    assert "not used" in settings["temperature"].source
    assert settings["seed"].source == "default"

    changes = inspect_changes(temperature=0.7, do_sample=True)
    plan, _ = planned(plugin_manager, make_experiment(changes))
    config = config_of(plan, "base.eval.capitalization.base")
    assert config["model"]["args"]["do_sample"] is True
    assert config["generate"] == {"seed": 14, "temperature": 0.7}

    changes = inspect_changes(
        temperature=0.0, provider="cruijff-mock", model_args={"reply": "upper"}
    )
    plan, _ = planned(plugin_manager, make_experiment(changes))
    config = config_of(plan, "base.eval.capitalization.base")
    assert config["generate"] == {"seed": 14, "temperature": 0.0}  # greedy, in other terms
    assert config["model"] == {
        "name": "cruijff-mock/tiny",
        "path": str(plan.experiment.directory / "models" / "tiny"),
        "provider": "cruijff-mock",
        "args": {
            "model_path": str(plan.experiment.directory / "models" / "tiny"),
            "reply": "upper",
        },
    }


def test_task_arguments_are_those_the_function_takes(
    plugin_manager, inspect_tools, make_experiment, tmp_path
):
    script = tmp_path / "kit_task.py"
    script.write_text(
        "from inspect_ai import task\n\n"
        "@task\n"
        "def kit(data_path, config_path='', split='test', max_tokens=20, **extra):\n"
        "    raise RuntimeError('never imported at design time')\n"
    )
    changes = inspect_changes(max_tokens=9, scorers=["match"])
    changes["evaluation"]["tasks"] = [
        {"name": "kit", "script": str(script), "split": "validation", "args": {"level": 2}},
        {"name": "capitalization", "script": str(TASKS), "dataset": "data/words.json"},
    ]
    plan, _ = planned(plugin_manager, make_experiment(changes))
    kit = config_of(plan, "base.eval.kit.base")
    folder = plan.experiment.directory
    assert kit["task_args"] == {
        "data_path": str(folder / "data" / "words.json"),
        "split": "validation",
        "prompt": "Capitalize: {input}\n",  # **extra takes everything offered
        "system_prompt": "",
        "config_path": str(folder / "base" / "eval" / "kit" / "base" / "eval_config.yaml"),
        "use_chat_template": True,
        "vis_label": "base (kit)",  # an entry of two tasks: each cell's label is its own
        "max_tokens": 9,
        "level": 2,
    }
    # it declares config_path: it builds its scorers from the config, where a bare match
    # means cruijff_kit's (exact and case-sensitive)
    assert kit["scorers"] == [
        {"name": "match", "params": {"location": "exact", "ignore_case": False}}
    ]
    caps = config_of(plan, "base.eval.capitalization.base")
    assert set(caps["task_args"]) == {"data_path", "split", "prompt", "system_prompt"}
    # scorers are never replaced: capitalization takes no config_path and scores with its own
    assert "replace_scorers" not in caps and "replace_scorers" not in kit
    settings = {s.path: s for s in plan.generated["base.eval.capitalization.base"].settings}
    assert settings["scorers"].value == "the task's own"
    assert "evaluation.scorers is not read" in settings["scorers"].source


def test_job_spec_runs_the_job_module_offline_inside_the_cell(
    plugin_manager, inspect_tools, make_experiment
):
    plan, cells = planned(plugin_manager, make_experiment(inspect_changes()))
    cell = cells["rank4.eval.capitalization.epoch_1"]
    job = plan.generated[cell.id].job
    config = cell.directory / "eval_config.yaml"
    assert job.argv == (sys.executable, "-m", "cruijff_inspect.job", str(config))
    assert job.env["HF_HUB_OFFLINE"] == "1"
    assert job.log == cell.directory / "job.log" and job.workdir == cell.directory
    assert job.depends_on == ("rank4.train",)
    assert job.produces == cell.produces
    text = plan.generated[cell.id].files[0].content
    assert text.startswith("# Evaluation rank4.eval.capitalization.epoch_1")


def test_out_of_memory_retry_halves_the_batch(plugin_manager, inspect_tools, make_experiment):
    plan, _ = scaffold_experiment(plugin_manager, make_experiment(inspect_changes(batch_size=8)))
    job = plan.generated["base.eval.capitalization.base"].job  # its config says batch_size 8
    oom = JobStatus(state=JobState.OUT_OF_MEMORY, exit_code=137)
    cell = next(u for u in plan.units if u.id == "base.eval.capitalization.base")
    smaller = plugin_manager.retry(plan.experiment, cell, job, oom)
    assert smaller.argv == (*job.argv, "--batch-size", "4")
    cuda = JobStatus(state=JobState.FAILED, exit_code=1, cause="inspect: CUDA out of memory")
    assert plugin_manager.retry(plan.experiment, cell, smaller, cuda).argv == (
        *job.argv,
        "--batch-size",
        "2",
    )
    other = JobStatus(state=JobState.FAILED, exit_code=1, cause="inspect: KeyError: 'input'")
    # not ours to change: the general policy
    assert plugin_manager.retry(plan.experiment, cell, job, other) == default_retry(job, other)
    one = attrs.evolve(job, argv=(*job.argv, "--batch-size", "1"))
    assert plugin_manager.retry(plan.experiment, cell, one, oom) == default_retry(one, oom)


def test_resources_come_from_the_model_size_and_can_be_set(
    plugin_manager, inspect_tools, make_experiment
):
    plan, _ = planned(plugin_manager, make_experiment(inspect_changes()))
    job = plan.generated["base.eval.capitalization.base"].job
    assert (job.resources.gpus, job.resources.cpus, job.resources.mem_mb) == (0, 2, 4096)
    assert config_of(plan, "base.eval.capitalization.base")["model"]["args"]["device"] == "cpu"

    changes = inspect_changes()
    changes["models"] = {"base": [{"name": "tiny", "path": "models/tiny", "size_gb": 2.5}]}
    plan, _ = planned(plugin_manager, make_experiment(changes))
    job = plan.generated["base.eval.capitalization.base"].job
    assert (job.resources.gpus, job.resources.mem_mb) == (0, 10 * 1024)  # local: the CPU

    from cruijff.records import SchedulerInfo

    class Cluster:
        @hookimpl
        def cruijff_schedulers(self):
            yield SchedulerInfo(
                name="cluster", factory=lambda experiment, options: None, gpus=lambda e: True
            )

    plugin_manager.register(Cluster(), name="cluster")
    plan, _ = planned(
        plugin_manager, make_experiment({**changes, "scheduler": {"name": "cluster"}})
    )
    job = plan.generated["base.eval.capitalization.base"].job
    assert (job.resources.gpus, job.resources.mem_mb, job.resources.time_s) == (1, 8192, 3600)
    assert "device" not in config_of(plan, "base.eval.capitalization.base")["model"]["args"]
    # a 70B model (140 GB in bf16): four GPUs, as cruijff_kit's MODEL_CONFIGS ask, the model
    # spread over them
    changes["models"] = {"base": [{"name": "tiny", "path": "models/tiny", "size_gb": 140}]}
    plan, _ = planned(
        plugin_manager, make_experiment({**changes, "scheduler": {"name": "cluster"}})
    )
    job = plan.generated["base.eval.capitalization.base"].job
    assert job.resources.gpus == 4
    assert config_of(plan, "base.eval.capitalization.base")["model"]["args"]["device"] == "auto"
    settings = {s.path: s for s in plan.generated["base.eval.capitalization.base"].settings}
    assert settings["resources.gpus"].source == "default (from the model's size)"
    # an 8B one (16 GB): one
    changes["models"] = {"base": [{"name": "tiny", "path": "models/tiny", "size_gb": 16}]}
    plan, _ = planned(
        plugin_manager, make_experiment({**changes, "scheduler": {"name": "cluster"}})
    )
    assert plan.generated["base.eval.capitalization.base"].job.resources.gpus == 1

    changes = inspect_changes(gpus=2, cpus=8, mem_gb=20, time_minutes=15)
    plan, _ = planned(plugin_manager, make_experiment(changes))
    resources = plan.generated["base.eval.capitalization.base"].job.resources
    assert (resources.gpus, resources.cpus, resources.mem_mb, resources.time_s) == (
        2,
        8,
        20 * 1024,
        900,
    )


def test_planning_imports_no_task_file_and_nothing_heavy(tmp_path):
    """Design reads task files with ast: a task file's side effects never happen."""
    import subprocess

    script = tmp_path / "task.py"
    marker = tmp_path / "imported"
    script.write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "from inspect_ai import task\n\n@task\ndef caps(data_path):\n    pass\n"
    )
    code = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from cruijff.manager import PluginManager\n"
        "from cruijff.design import design\n"
        "from cruijff_inspect import plugin\n"
        "manager = PluginManager(entry_points=False)\n"
        "manager.register(plugin, name='inspect')\n"
        f"plan = design(manager, Path({str(tmp_path / 'e.yaml')!r}))\n"
        "print(json.dumps([len(plan.units), sorted(m for m in sys.modules if m.split('.')[0] in "
        "('inspect_ai', 'torch', 'transformers'))]))\n"
    )
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    (tmp_path / "e.yaml").write_text(
        yaml.safe_dump(
            {
                "experiment": {"name": "light"},
                "tools": {"evaluation": "inspect"},
                "models": {"base": [{"name": "m", "path": "m"}]},
                "controls": {"dataset_type": "chat_completion"},
                "runs": [{"name": "base", "type": "control", "model": "m"}],
                "evaluation": {
                    "tasks": [{"name": "caps", "script": "task.py"}],
                    "scorers": ["match"],
                },
            }
        )
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    units, heavy = json.loads(out.stdout.splitlines()[-1])
    assert units == 1 and heavy == []
    assert not marker.exists()
