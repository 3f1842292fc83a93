"""``cruijff design NAME``: a new experiment file, from options or from answers, that passes
``cruijff validate`` and reads back as the experiment it was designed to be."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cruijff import designer
from cruijff.design import check
from cruijff.yamlfile import load_yaml

TASKS = Path(__file__).parent / "inspect_tasks"
MODEL = "Llama-3.2-1B-Instruct"
DATE = "2026-11-22"
RUNS = ["rank4_lr1e-4", "rank4_lr3e-4", "rank8_lr1e-4", "rank8_lr3e-4", "base"]


@pytest.fixture
def kit(plugin_manager, register_plugin):
    """The real torchtune and inspect plugins (nothing of torchtune runs: design reads no
    weights)."""
    pytest.importorskip("torchtune")
    from cruijff_inspect import plugin as inspect_plugin
    from cruijff_torchtune import plugin as torchtune_plugin

    register_plugin(torchtune_plugin, name="torchtune")
    register_plugin(inspect_plugin, name="inspect")
    return plugin_manager


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A folder with what an experiment needs, and the current folder: a Llama model folder
    (config.json and empty weights), a JSON data file and two task files, one with two @task
    functions (capitalization, exploding) and one with a single one (ck_style)."""
    from test_torchtune_config import LLAMA

    model = tmp_path / "models" / MODEL
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps(LLAMA))
    (model / "model.safetensors").write_bytes(b"")
    rows = [{"input": w, "output": w.upper()} for w in ("fig", "kiwi", "lime", "plum")] * 10
    data = tmp_path / "data" / "words.json"
    data.parent.mkdir()
    data.write_text(json.dumps({"train": rows, "validation": rows[:3], "test": rows[:5]}))
    (tmp_path / "tasks").mkdir()
    shutil.copy(TASKS / "capitalization.py", tmp_path / "tasks" / "capitalization.py")
    shutil.copy(TASKS / "ck_style_task.py", tmp_path / "tasks" / "ck_style.py")
    monkeypatch.chdir(tmp_path)
    return tmp_path


OPTIONS = (
    "--model",
    f"models/{MODEL}",
    "--data",
    "data/words.json",
    "--task",
    "tasks/capitalization.py:capitalization",
    "--vary",
    "lora_rank=4,8",
    "--vary",
    "lr=1e-4,3e-4",
    "--control",
    "epochs=2",
    "--control",
    "prompt=Capitalize: {input}",
    "--question",
    "Does LoRA rank matter for capitalization?",
    "--date",
    DATE,
)

EXPECTED = {
    "experiment": {
        "name": "cap",
        "question": "Does LoRA rank matter for capitalization?",
        "date": DATE,
    },
    "tools": {"preparation": "torchtune", "evaluation": "inspect-ai"},
    "variables": {"lora_rank": [4, 8], "lr": [1e-4, 3e-4]},
    "controls": {
        "dataset_type": "chat_completion",
        "system_prompt": "",
        "prompt": "Capitalize: {input}",
        "epochs": 2,
    },
    "models": {"base": [{"name": MODEL, "path": f"models/{MODEL}"}]},
    "data": {
        "training": {
            "path": "data/words.json",
            "format": "json",
            "dataset_label": "words",
            "size_kb": 2,
            "splits": {"train": 40, "validation": 3, "test": 5},
        }
    },
    "evaluation": {
        "tasks": [
            {
                "name": "capitalization",
                "script": "tasks/capitalization.py",
                "description": "Capitalize each word; exact match and inclusion, case-sensitive.",
            }
        ]
    },
}


def _clean_error(result, *texts):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "Error:" in result.output and "Hint:" in result.output
    for text in texts:
        assert text in result.output, result.output


# --- from options ------------------------------------------------------------------------------


def test_design_from_options_validates_and_round_trips(kit, cli, project):
    result = cli("design", "cap", "--yes", *OPTIONS)
    assert result.exit_code == 0, result.output
    path = project / "cap.yaml"
    assert f"Wrote cap.yaml: 5 runs ({', '.join(RUNS)}), 9 jobs." in result.output

    # it passes `cruijff validate`
    validated = cli("validate", path)
    assert validated.exit_code == 0, validated.output
    assert "valid (5 runs, 9 jobs)" in validated.output

    # reading it back gives the experiment designed: the values with their types
    data = load_yaml(path).data
    assert data == EXPECTED
    assert type(data["variables"]["lr"][0]) is float and type(data["controls"]["epochs"]) is int
    checked = check(kit, path)
    assert checked.ok, checked.problems
    experiment = checked.experiment
    assert [run.name for run in experiment.runs] == RUNS
    assert experiment.run("rank8_lr3e-4").parameters == {"lora_rank": 8, "lr": 3e-4}
    assert experiment.controls["epochs"] == 2
    assert experiment.tools == {"preparation": "torchtune", "evaluation": "inspect-ai"}

    # designing again from the same options gives the same bytes
    first = path.read_bytes()
    again = cli("design", "cap", "--yes", "--force", *OPTIONS)
    assert again.exit_code == 0, again.output
    assert path.read_bytes() == first


def test_every_section_has_a_comment_above_it(kit, cli, project):
    assert cli("design", "cap", "--yes", *OPTIONS, "--scheduler", "local").exit_code == 0
    lines = (project / "cap.yaml").read_text().splitlines()
    sections = [i for i, line in enumerate(lines) if line and line[0] not in "# "]
    names = [lines[i].split(":")[0] for i in sections]
    assert names == [*EXPECTED, "scheduler"]
    for index in sections:
        assert lines[index - 1].startswith("# "), lines[index]
    assert load_yaml(project / "cap.yaml").data["scheduler"] == {"name": "local"}


def test_refuses_to_overwrite_without_force(kit, cli, project):
    path = project / "cap.yaml"
    path.write_text("# mine\n")
    result = cli("design", "cap", "--yes", *OPTIONS)
    _clean_error(result, "cap.yaml already exists", "--force")
    assert path.read_text() == "# mine\n"
    # asked interactively, it refuses before the first question
    result = cli("design", "cap", input="\n" * 30)
    _clean_error(result, "already exists")
    assert "Question" not in result.output
    assert path.read_text() == "# mine\n"

    assert cli("design", "cap", "--yes", "--force", *OPTIONS).exit_code == 0
    assert load_yaml(path).data == EXPECTED


def test_output_elsewhere_writes_outside_paths_absolute(kit, cli, project):
    result = cli("design", "cap", "--yes", *OPTIONS, "-o", "elsewhere/")
    assert result.exit_code == 0, result.output
    path = project / "elsewhere" / "cap.yaml"
    data = load_yaml(path).data
    assert data["models"]["base"][0]["path"] == str(project / "models" / MODEL)
    assert data["data"]["training"]["path"] == str(project / "data" / "words.json")
    assert cli("validate", path).exit_code == 0


def test_dry_run_prints_the_file_and_writes_nothing(kit, cli, project):
    result = cli("design", "cap", "--yes", "--dry-run", *OPTIONS)
    assert result.exit_code == 0, result.output
    assert not (project / "cap.yaml").exists()
    assert cli("design", "cap", "--yes", *OPTIONS).exit_code == 0
    assert result.stdout == (project / "cap.yaml").read_text()


def test_a_file_with_an_error_is_not_written(kit, cli, project):
    result = cli("design", "cap", "--yes", *OPTIONS, "--recipe", "llama3_2/1B_lora_singel")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "base_recipe" in result.output and "nothing was written" in result.output
    assert "cap.yaml:" in result.output  # the problem points at the file it would have been
    assert not (project / "cap.yaml").exists()
    assert not [p for p in project.iterdir() if p.name.startswith(".cap.yaml")]


def test_a_valid_recipe_goes_to_controls(kit, cli, project):
    result = cli("design", "cap", "--yes", *OPTIONS, "--recipe", "llama3_2/1B_lora_single_device")
    assert result.exit_code == 0, result.output
    controls = load_yaml(project / "cap.yaml").data["controls"]
    assert controls["base_recipe"] == "llama3_2/1B_lora_single_device"


def test_another_trainer_and_evaluator_are_taken_from_the_plugins(fake_tools, cli, project):
    result = cli(
        "design",
        "cap",
        "--yes",
        "--model",
        f"models/{MODEL}",
        "--data",
        "data/words.json",
        "--task",
        "tasks/ck_style.py",  # its only @task: no NAME needed
        "--vary",
        "lora_rank=4,8",
        "--date",
        DATE,
    )
    assert result.exit_code == 0, result.output
    data = load_yaml(project / "cap.yaml").data
    assert data["tools"] == {"preparation": "fake", "evaluation": "fake-evaluator"}
    assert data["evaluation"]["tasks"][0]["name"] == "ck_style"
    assert cli("validate", project / "cap.yaml").exit_code == 0


# --- mistakes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vary", "says"),
    [
        ("lora_rank", "expected KEY=VALUE"),
        ("=4,8", "expected KEY=VALUE"),
        ("lora_rank=", "no values"),
        ("lora_rank=4,,8", "an empty value"),
        ("lora_rank=4,4", "4 is given twice"),
        ("lora rank=4,8", "is not a setting's name"),
        ("prompt=[a, {b: 1}]", "not a list of plain values"),
    ],
)
def test_bad_vary_is_an_error_with_a_hint(kit, cli, project, vary, says):
    result = cli("design", "cap", "--yes", *OPTIONS, "--vary", vary)
    _clean_error(result, says, "--vary")
    assert not (project / "cap.yaml").exists()


def test_a_variable_swept_and_fixed_is_an_error(kit, cli, project):
    result = cli("design", "cap", "--yes", *OPTIONS, "--control", "lora_rank=16")
    _clean_error(result, "lora_rank is both swept (--vary) and held fixed (--control)")


def test_several_tasks_and_no_name_lists_them(kit, cli, project):
    options = list(OPTIONS)
    options[options.index("tasks/capitalization.py:capitalization")] = "tasks/capitalization.py"
    result = cli("design", "cap", "--yes", *options)
    _clean_error(result, "2 @task functions: capitalization, exploding")
    assert "--task tasks/capitalization.py:capitalization" in result.output


def test_an_unknown_task_name_suggests_one(kit, cli, project):
    options = [o.replace(":capitalization", ":capitalisation") for o in OPTIONS]
    result = cli("design", "cap", "--yes", *options)
    _clean_error(result, "no @task 'capitalisation'", "did you mean capitalization?")


def test_yes_names_every_missing_option(kit, cli, project):
    result = cli("design", "cap", "--yes", "--vary", "lora_rank=4,8")
    _clean_error(result, "missing --model, --data, --task")


@pytest.mark.parametrize(
    ("option", "says"),
    [
        (("--model", "models/nope"), "--model models/nope: no such folder"),
        (("--data", "data/nope.json"), "--data data/nope.json: no such file"),
        (("--scheduler", "slurmm:della"), "unknown scheduler 'slurmm'"),
        (("--tool", "training=torchtune"), "expected ROLE=NAME"),
        (("--date", "22/11/2026"), "is not a date"),
    ],
)
def test_other_mistakes_are_clean_errors(kit, cli, project, option, says):
    result = cli("design", "cap", "--yes", *OPTIONS, *option)
    _clean_error(result, says)


def test_a_bad_name_is_a_clean_error(kit, cli, project):
    _clean_error(cli("design", "my experiment", "--yes", *OPTIONS), "not a valid experiment name")


# --- interactively -----------------------------------------------------------------------------

ANSWERS = [
    "Does LoRA rank matter for capitalization?",  # the question
    "models/nope",  # not a folder: asked again
    "",  # the model folder found under models/
    "",  # no other model
    "",  # the data file found under data/
    "",  # the task file found under tasks/ (capitalization.py, the first)
    "capitalization",  # which of its two tasks
    "",  # no other task file
    "lora_rank",
    "4,8",
    "lr",
    "1e-4,3e-4",
    "",  # no other variable
    "",  # dataset type: chat_completion
    "Capitalize: {input}",  # the prompt
    "",  # no system prompt
    "2",  # epochs
    "",  # no other control
    "",  # no base recipe
    "",  # scheduler: auto, no section
]


def test_interactive_design_with_scripted_answers(kit, cli, project):
    result = cli("design", "cap", "--date", DATE, input="\n".join(ANSWERS) + "\n")
    assert result.exit_code == 0, result.output
    out = result.output
    assert (
        f"Base model folder (Hugging Face: config.json, weights, tokenizer) [models/{MODEL}]"
        in (out)
    )
    assert "model folder models/nope: no such folder" in out  # and asked again
    assert "Task in tasks/capitalization.py (capitalization, exploding) [capitalization]" in out
    assert "(chat_completion, text_completion) [chat_completion]" in out
    assert "Scheduler (auto: chosen when it runs) (auto, local) [auto]" in out
    path = project / "cap.yaml"
    assert load_yaml(path).data == EXPECTED
    assert cli("validate", path).exit_code == 0

    # the same answers as options give the same file, byte for byte
    answered = path.read_bytes()
    assert cli("design", "cap", "--yes", "--force", *OPTIONS).exit_code == 0
    assert path.read_bytes() == answered


def test_interactive_defaults_are_the_options(kit, cli, project):
    # every option given: Enter to each question keeps it
    result = cli("design", "cap", *OPTIONS, input="\n" * 40)
    assert result.exit_code == 0, result.output
    assert "Values of lora_rank, comma-separated [4,8]" in result.output
    assert "Values of lr, comma-separated [1e-4,3e-4]" in result.output
    assert "Epochs [2]" in result.output
    assert load_yaml(project / "cap.yaml").data == EXPECTED


def test_interactive_input_that_ends_aborts_and_writes_nothing(kit, cli, project):
    result = cli("design", "cap", input="A question?\n")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert not (project / "cap.yaml").exists()


# --- the pieces --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2", 2),
        ("1e-4", 1e-4),
        ("3.0e-4", 3e-4),
        ("0.5", 0.5),
        ("true", True),
        ("null", None),
        ('"8"', "8"),
        ("llama3_2/1B_lora_single_device", "llama3_2/1B_lora_single_device"),
        ("{input}", "{input}"),
        ("Capitalize: {input}", "Capitalize: {input}"),
        ("", ""),
        ("'unclosed", "'unclosed"),
    ],
)
def test_values_are_read_as_the_file_reads_them(text, value):
    parsed = designer.parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_values_with_commas_go_through_a_yaml_list():
    assert designer.parse_values('["a, b", c, 1e-4]') == ("a, b", "c", 1e-4)
    assert designer.values_text(("a, b", "c")) == '["a, b", "c"]'
    assert designer.values_text((4, 8)) == "4,8"
    assert designer.values_text((1e-4, "8")) == '1e-4,"8"'


def test_rendered_values_read_back_unchanged(tmp_path):
    values = {
        "floats": [1e-4, 3e-4, 0.5, 2.0, 1e16, -2.5e-7, float("inf")],
        "strings": [
            "",
            "8",
            "true",
            "null",
            "a: b",
            "{input}\n",
            "tab\there",
            "é ü",
            "\x85 \u2028",
            "\x7f\x00",
        ],
        "odd keys": {"on": 1, "1": 2, "a b": 3},
        "plain": [True, False, None, 0, -3],
    }
    path = tmp_path / "x.yaml"
    path.write_text(designer.render({"controls": values}, "x.yaml"))
    assert load_yaml(path).data == {"controls": values}


def test_task_functions_are_found_without_importing(tmp_path):
    script = tmp_path / "t.py"
    script.write_text(
        "import sys\nsys.exit('imported!')\nfrom inspect_ai import task\nimport inspect_ai\n"
        "@task\ndef one():\n    '''The first.\n\n    More.'''\n"
        "@inspect_ai.task(name='x')\nasync def two():\n    pass\n"
        "def helper():\n    pass\n"
    )
    found = designer.task_functions(script)
    assert [(t.name, t.description) for t in found] == [("one", "The first."), ("two", "")]
