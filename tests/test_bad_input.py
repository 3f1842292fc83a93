"""Bad input that used to crash or stall: each is a clear problem with file:line, found fast,
and messages show values as YAML writes them, cut to a line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from types import MappingProxyType

import pytest

from cruijff.experiment import MAX_EPOCHS, MAX_PATH_PART, Loaded, load_experiment
from cruijff.experiment.reader import MAX_PATH
from cruijff.experiment.sections import MAX_SIZE_GB
from cruijff.hookspecs import hookimpl
from cruijff.records import ParseReport, Problem
from cruijff.yamlfile import (
    MAX_DEPTH,
    MAX_TEXT,
    MAX_VALUES,
    SHOWN_WIDTH,
    YamlError,
    compose,
    load_yaml,
    read,
    yaml_text,
)

BASE = """
experiment:
  name: demo
controls:
  epochs: 2
models:
  base:
    - name: tiny
      path: models/tiny
"""


def write(tmp_path: Path, text: str, name: str = "experiment.yaml") -> Path:
    """``text`` (dedented; its first line is line 1) beside a model folder."""
    (tmp_path / "models" / "tiny").mkdir(parents=True, exist_ok=True)
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> Loaded:
    return load_experiment(write(tmp_path, text))


def only_problem(loaded: Loaded) -> Problem:
    assert len(loaded.problems) == 1, [str(problem) for problem in loaded.problems]
    return loaded.problems[0]


def yaml_problem(path: Path) -> Problem:
    with pytest.raises(YamlError) as caught:
        load_yaml(path)
    (problem,) = caught.value.problems
    return problem


# --- control characters -------------------------------------------------------------------


@pytest.mark.parametrize(("char", "name"), [("\x00", "NUL"), ("\x1b", "ESC"), ("\x7f", "DEL")])
def test_a_control_character_is_a_problem_at_its_place(tmp_path, char, name):
    loaded = load(tmp_path, BASE.replace("name: demo", f"name: de{char}mo"))
    problem = only_problem(loaded)
    assert loaded.experiment is None
    assert (problem.where.line, problem.where.column) == (2, 11)
    assert f"control character U+{ord(char):04X} ({name})" in problem.message
    assert str(problem).startswith(f"{tmp_path / 'experiment.yaml'}:2:11: ")


def test_an_escaped_control_character_in_double_quotes_is_fine(tmp_path):
    assert load_yaml(write(tmp_path, 'a: "x\\x1by"\n')).data == {"a": "x\x1by"}


# --- names too long for the file system -----------------------------------------------------


@pytest.mark.parametrize(
    ("replace", "path"),
    [
        ("path: models/tiny", "models.base[0].path"),
        ("name: demo", "experiment.dir"),
        ("epochs: 2", "data.training.path"),
        ("epochs: 2", "evaluation.tasks[0].script"),
    ],
)
def test_a_name_too_long_in_a_path_is_a_problem_of_its_field(tmp_path, replace, path):
    long = "a" * 300
    extra = {
        "models.base[0].path": f"path: models/{long}",
        "experiment.dir": f"name: demo\n  dir: runs/{long}/x",
        "data.training.path": f"epochs: 2\ndata:\n  training: {{path: data/{long}}}",
        "evaluation.tasks[0].script": f"epochs: 2\nevaluation:\n"
        f"  tasks: [{{name: t, script: tasks/{long}}}]",
    }[path]
    loaded = load(tmp_path, BASE.replace(replace, extra))
    problem = next(problem for problem in loaded.problems if problem.where.path == path)
    assert problem.where.line is not None
    assert "has 300 bytes" in problem.message
    assert f"at most {MAX_PATH_PART}" in problem.hint
    assert len(problem.message) < 2 * SHOWN_WIDTH  # the long name is cut


def test_an_experiment_file_name_too_long_is_a_problem(tmp_path):
    loaded = load_experiment(tmp_path / ("a" * 300 + ".yaml"))
    problem = only_problem(loaded)
    assert "cannot read the file" in problem.message


def test_an_unknown_home_folder_in_the_file_name_is_a_problem():
    loaded = load_experiment(Path("~no-such-user-here/experiment.yaml"))
    assert "not a usable path" in only_problem(loaded).message


# --- sizes ----------------------------------------------------------------------------------


def test_too_many_epochs_is_a_problem_that_says_what_is_valid(tmp_path):
    problem = only_problem(load(tmp_path, BASE.replace("epochs: 2", "epochs: 10000000")))
    assert (problem.where.path, problem.where.line) == ("controls.epochs", 4)
    assert "10000000 epochs" in problem.message
    assert problem.hint == f"epochs is a whole number from 1 to {MAX_EPOCHS}"


def test_too_many_epochs_in_an_axis_or_a_run(tmp_path):
    text = BASE + "variables:\n  epochs: [1, 5000]\n"
    assert only_problem(load(tmp_path, text)).where.path == "variables.epochs[1]"
    text = BASE + "runs:\n  - {name: r, model: tiny, parameters: {epochs: 5000}}\n"
    assert only_problem(load(tmp_path, text)).where.path == "runs[0].parameters.epochs"


def test_a_realistic_number_of_epochs_is_fine(tmp_path):
    assert load(tmp_path, BASE.replace("epochs: 2", f"epochs: {MAX_EPOCHS}")).ok


def test_a_huge_file_stops_at_the_value_where_it_crosses_the_limit(tmp_path):
    # Twice the limit, then broken YAML: the error is the limit, so the rest was never read.
    values = ", ".join(["1"] * (2 * MAX_VALUES))
    path = write(tmp_path, f"experiment: {{name: demo}}\ndata:\n  rows: [{values}\n  - broken")
    problem = yaml_problem(path)
    assert problem.message == f"the file has more than {MAX_VALUES} values"  # no aliases here
    assert problem.where.line == 3 and problem.where.path.startswith("data.rows[")
    assert "data file" in problem.hint


def test_the_value_limit_counts_what_aliases_stand_for(tmp_path, monkeypatch):
    monkeypatch.setattr(compose, "MAX_VALUES", 100)
    text = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n" + "".join(f"b{i}: *a\n" for i in range(20))
    problem = yaml_problem(write(tmp_path, text))
    assert problem.message == "the file expands to more than 100 values through aliases"
    assert (problem.where.line, problem.where.path) == (10, "b8")


def test_a_file_larger_than_the_limit_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(read, "MAX_BYTES", 1000)
    problem = yaml_problem(write(tmp_path, "a: 1\n" + "# comment\n" * 200))
    assert problem.message == "the file has more than 1,000 bytes"
    assert problem.where.line == 101  # byte 1,001: "a: 1" and 99 comments come first


# --- nesting --------------------------------------------------------------------------------


def test_nesting_too_deep_is_a_problem_with_its_line_and_path(tmp_path):
    deep = "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5)
    problem = yaml_problem(write(tmp_path, f"a: 1\nb: {deep}\n"))
    assert "nested too deeply" in problem.message
    assert (problem.where.line, problem.where.column) == (2, 3 + MAX_DEPTH)
    assert problem.where.path == "b" + "[0]" * (MAX_DEPTH - 1)


def test_nesting_deep_enough_is_fine(tmp_path):
    deep = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)  # the root mapping is one level
    expected: list = []
    for _ in range(MAX_DEPTH - 2):
        expected = [expected]
    assert load_yaml(write(tmp_path, f"b: {deep}\n")).data["b"] == expected


def test_nesting_through_aliases_counts_too(tmp_path):
    half = MAX_DEPTH // 2 + 2
    text = f"a: &a {'[' * half}{']' * half}\nb: {'[' * half}*a{']' * half}\n"
    problem = yaml_problem(write(tmp_path, text))
    assert problem.message.endswith("through aliases")
    assert problem.where.line == 2


def test_libyamls_own_depth_limit_reads_the_same(tmp_path):
    problem = yaml_problem(write(tmp_path, "a: " + "[" * 5000 + "\n"))
    assert "nested too deeply" in problem.message
    assert problem.where.line == 1


# --- values in messages ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (MappingProxyType({"value": 14}), "{value: 14}"),
        ({"a": (1, 2.5, None, True)}, "{a: [1, 2.5, null, true]}"),
        ({"k": "two words", "n": "12", "t": "true", "q": "it's"}, "{k: two words, n: '12', "),
        ("text", "'text'"),
        ("it's", "'it''s'"),
        ("line\nbreak", '"line\\nbreak"'),
        (1e-05, "1e-5"),
        (float("inf"), ".inf"),
        ([], "[]"),
    ],
)
def test_yaml_text_writes_values_as_yaml_does(value, shown):
    assert yaml_text(value).startswith(shown)


def test_yaml_text_cuts_a_long_value_to_a_line_without_rendering_it_all():
    value = {"rows": list(range(1_000_000))}
    text = yaml_text(value)
    assert len(text) == SHOWN_WIDTH and text.endswith("...")
    assert text.startswith("{rows: [0, 1, 2, ")
    assert yaml_text("a" * 300, width=20) == "'aaaaaaaaaaaaaaaa..."


def test_a_core_message_shows_the_value_as_written(tmp_path):
    text = BASE.replace("name: demo", "name: demo\n  date: {year: 2026}")
    assert only_problem(load(tmp_path, text)).message == "{year: 2026} is not a date"


def test_a_long_value_in_a_core_message_is_cut(tmp_path):
    text = BASE + "runs:\n  - {name: " + "x y " * 400 + ", model: tiny}\n"
    problem = only_problem(load(tmp_path, text))
    assert problem.message.endswith("... is not a valid name")
    assert len(problem.message) < 2 * SHOWN_WIDTH


# --- a plugin that raises on a value --------------------------------------------------------


class ChokesOnMappings:
    """Parses by hashing every value, as a careless plugin might."""

    @hookimpl
    def cruijff_parse(self, experiment, keys):
        return ParseReport(claimed={key.path for key in keys if hash(key.value) is not None})


class Fine:
    @hookimpl
    def cruijff_parse(self, experiment, keys):
        return ParseReport(problems=(Problem(message="fine was asked"),))


def test_a_plugin_that_raises_in_parse_becomes_a_problem_naming_it(
    fake_tools, register_plugin, make_experiment, cli
):
    register_plugin(ChokesOnMappings(), name="choker", version="1.2")
    register_plugin(Fine(), name="fine")
    path = make_experiment({"controls": {"choker_setting": {"value": 14}}})
    result = cli("validate", path)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "plugin choker 1.2 could not check the file" in result.output
    assert "TypeError: unhashable type" in result.output
    assert "fine was asked" in result.output  # the other plugins still ran
    assert "unknown key" not in result.output  # its keys are not blamed on top


def test_many_unknown_sections_are_each_located_and_hinted(tmp_path):
    # Locating each key used to scan its mapping: quadratic in the number of keys.
    sections = "".join(f"sec{i}: {i}\n" for i in range(5000)) + "modles: {}\n"
    loaded = load(tmp_path, BASE + sections)
    assert len(loaded.problems) == 5001
    assert [problem.where.line for problem in loaded.problems[:3]] == [9, 10, 11]
    assert loaded.problems[-1].hint == "did you mean models?"


# --- found by the corpus of malformed files (tests/corpus.py) ------------------------------


def test_a_value_longer_than_the_limit_is_a_problem_at_its_field(tmp_path):
    # a 10 MB prompt was accepted, and written into every run's configs
    text = BASE.replace("epochs: 2", f'epochs: 2\n  prompt: "{{input}} {"x" * MAX_TEXT}"')
    problem = yaml_problem(write(tmp_path, text))
    assert (
        problem.message == f"a value of {MAX_TEXT + 8:,} characters: more than the 100,000 allowed"
    )
    assert (problem.where.line, problem.where.path) == (5, "controls.prompt")
    assert "data file" in problem.hint


def test_a_value_as_long_as_the_limit_is_fine(tmp_path):
    text = BASE.replace("epochs: 2", f"epochs: 2\n  system_prompt: {'x' * MAX_TEXT}")
    assert load(tmp_path, text).ok


@pytest.mark.parametrize("size", ["1e308", ".inf", ".nan", "10001"])
def test_a_model_size_beyond_reason_is_a_problem_that_names_the_limit(tmp_path, size):
    # 1e308 GB reached the evaluation plugin's estimate as infinity: OverflowError
    text = BASE.replace("path: models/tiny", f"path: models/tiny\n      size_gb: {size}")
    problem = only_problem(load(tmp_path, text))
    assert (problem.where.path, problem.where.line) == ("models.base[0].size_gb", 9)
    assert problem.hint == f"size_gb is a number of GB from 0 to {MAX_SIZE_GB:,}"


def test_a_model_folder_that_is_a_file_is_a_problem_of_its_path(tmp_path):
    # a plugin used to fail on it ("Not a directory: .../config.json"), with no line
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "file").write_text("{}")
    problem = only_problem(load(tmp_path, BASE.replace("models/tiny", "models/file")))
    assert (problem.where.path, problem.where.line) == ("models.base[0].path", 8)
    assert problem.message.endswith("is a file")


def test_a_path_too_long_in_all_is_a_problem_that_names_the_limit(tmp_path):
    # experiment.dir is not looked for: only scaffold found out, with an OS error and no line
    text = BASE.replace("name: demo", "name: demo\n  dir: " + "ab/" * 1500)
    problem = only_problem(load(tmp_path, text))
    assert (problem.where.path, problem.where.line) == ("experiment.dir", 3)
    assert problem.hint == f"a path has at most {MAX_PATH:,}"


def test_a_run_that_makes_no_step_is_a_problem_at_its_batch_size(
    make_experiment, register_plugin, cli
):
    # it was an error without a file or line
    from corpus import MODEL_CONFIG

    from cruijff_torchtune import plugin as torchtune_plugin

    register_plugin(torchtune_plugin, name="torchtune")
    changes = {
        "tools": {"preparation": "torchtune", "evaluation": None},
        "evaluation": None,
        "controls": {"dataset_type": "chat_completion", "batch_size": 1000},
    }
    path = make_experiment(changes)
    (path.parent / "models" / "tiny" / "config.json").write_text(json.dumps(MODEL_CONFIG))
    (path.parent / "models" / "tiny" / "model.safetensors").write_bytes(b"")
    result = cli("validate", path)
    assert result.exit_code == 1
    line = next(line for line in result.output.splitlines() if "would train nothing" in line)
    assert line.startswith(f"error: {path}:")
    assert ": controls.batch_size: run 'rank4' would train nothing" in line
    assert "batch_size 1000 × gradient_accumulation_steps 1" in line


def test_a_task_script_that_is_a_folder_is_a_problem_of_its_script(tmp_path):
    # the evaluation plugin used to fail on it ("Is a directory"), with no line
    text = BASE + "evaluation:\n  tasks: [{name: t, script: ../..}]\n"
    problem = only_problem(load(tmp_path, text))
    assert (problem.where.path, problem.where.line) == ("evaluation.tasks[0].script", 10)
    assert problem.message.endswith("is a folder")
