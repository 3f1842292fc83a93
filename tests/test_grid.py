"""The run grid: without ``runs``, the product of ``variables`` over the base models, with names
made of the parameters that vary."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cruijff.design import check
from cruijff.experiment import MAX_RUNS, load_experiment
from cruijff.experiment.grid import MAX_GENERATED_NAME, run_directory, short_value, unique_names
from cruijff.records import NAME_PATTERN, Experiment, Run, RunType, Severity

LABELS = {"lora_rank": "rank", "batch_size": "bs", "gradient_accumulation_steps": "gas"}


def grid(
    tmp_path: Path, variables: str = "", *, models: int = 1, extra: str = "", labels=LABELS
) -> Experiment:
    """Load an experiment with ``variables`` (YAML under ``variables:``) over ``models`` base
    models; fail if the file has any problem."""
    names = ["SmolLM2-135M", "tiny-llama", "qwen"][:models]
    for name in names:
        (tmp_path / "models" / name).mkdir(parents=True, exist_ok=True)
    base = "".join(f"    - {{name: {name}, path: models/{name}}}\n" for name in names)
    text = "experiment: {name: demo}\nmodels:\n  base:\n" + base
    if variables:
        text += "variables:\n" + textwrap.indent(textwrap.dedent(variables).lstrip("\n"), "  ")
    text += textwrap.dedent(extra)
    path = tmp_path / "experiment.yaml"
    path.write_text(text)
    loaded = load_experiment(path, labels=labels)
    assert loaded.problems == (), [str(problem) for problem in loaded.problems]
    return loaded.experiment


def names(experiment: Experiment) -> list[str]:
    return [run.name for run in experiment.runs]


def test_product_order_and_names(tmp_path):
    experiment = grid(tmp_path, "lora_rank: [4, 8]\nlr: [1e-4, 3e-4]\n")
    assert names(experiment) == [
        "rank4_lr1e-4",
        "rank4_lr3e-4",
        "rank8_lr1e-4",
        "rank8_lr3e-4",
        "base",
    ]
    assert [run.index for run in experiment.runs] == [0, 1, 2, 3, 4]
    assert dict(experiment.run("rank8_lr1e-4").parameters) == {"lora_rank": 8, "lr": 1e-4}
    assert experiment.run("rank8_lr1e-4").type is RunType.FINE_TUNED
    assert experiment.run("rank8_lr1e-4").model == "SmolLM2-135M"


def test_control_run_per_model(tmp_path):
    control = grid(tmp_path, "lora_rank: [4, 8]\n").run("base")
    assert control == Run(
        name="base",
        type=RunType.CONTROL,
        model="SmolLM2-135M",
        parameters={},
        directory=tmp_path.resolve() / "base",
        index=2,
    )


def test_file_order_decides_the_name_and_the_nesting(tmp_path):
    experiment = grid(tmp_path, "lr: [1e-4, 3e-4]\nlora_rank: [4, 8]\n")
    assert names(experiment)[:2] == ["lr1e-4_rank4", "lr1e-4_rank8"]


def test_keys_without_labels_label_themselves(tmp_path):
    experiment = grid(tmp_path, "lora_rank: [4, 8]\n", labels=None)
    assert names(experiment) == ["lora_rank4", "lora_rank8", "base"]


def test_zip_group_varies_together(tmp_path):
    variables = """
    lora_rank: [4, 8]
    zip:
      - {batch_size: [4, 8], gradient_accumulation_steps: [2, 1]}
    """
    experiment = grid(tmp_path, variables)
    assert names(experiment) == [
        "rank4_bs4_gas2",
        "rank4_bs8_gas1",
        "rank8_bs4_gas2",
        "rank8_bs8_gas1",
        "base",
    ]
    assert dict(experiment.runs[1].parameters) == {
        "lora_rank": 4,
        "batch_size": 8,
        "gradient_accumulation_steps": 1,
    }


def test_zip_group_before_an_axis_is_outermost(tmp_path):
    variables = """
    zip:
      - {batch_size: [4, 8], gradient_accumulation_steps: [2, 1]}
    seed: [1, 2]
    """
    assert names(grid(tmp_path, variables))[:3] == [
        "bs4_gas2_seed1",
        "bs4_gas2_seed2",
        "bs8_gas1_seed1",
    ]


def test_zip_member_that_does_not_vary_is_not_in_the_name(tmp_path):
    variables = "zip:\n  - {batch_size: [4, 4], lr: [1e-4, 2e-4]}\n"
    experiment = grid(tmp_path, variables)
    assert names(experiment) == ["lr1e-4", "lr2e-4", "base"]
    assert experiment.runs[0].parameters["batch_size"] == 4


def test_seeds_axis(tmp_path):
    experiment = grid(tmp_path, "seed: [14, 15, 16]\n")
    assert names(experiment) == ["seed14", "seed15", "seed16", "base"]


def test_several_models(tmp_path):
    experiment = grid(tmp_path, "lora_rank: [4, 8]\nlr: [1e-4]\n", models=2)
    assert names(experiment) == [
        "SmolLM2-135M_rank4",
        "SmolLM2-135M_rank8",
        "tiny-llama_rank4",
        "tiny-llama_rank8",
        "SmolLM2-135M_base",
        "tiny-llama_base",
    ]
    assert [run.model for run in experiment.runs] == ["SmolLM2-135M"] * 2 + ["tiny-llama"] * 2 + [
        "SmolLM2-135M",
        "tiny-llama",
    ]
    assert [run.type for run in experiment.runs[-2:]] == [RunType.CONTROL] * 2


def test_single_valued_axis_is_a_parameter_but_not_in_the_name(tmp_path):
    experiment = grid(tmp_path, "lora_rank: [4, 8]\nepochs: [3]\n")
    assert names(experiment) == ["rank4", "rank8", "base"]
    assert experiment.run("rank4").parameters["epochs"] == 3


def test_nothing_varies(tmp_path):
    assert names(grid(tmp_path, "epochs: [3]\n")) == ["finetuned", "base"]
    assert names(grid(tmp_path)) == ["finetuned", "base"]


def test_nothing_varies_with_several_models(tmp_path):
    assert names(grid(tmp_path, models=2)) == [
        "SmolLM2-135M",
        "tiny-llama",
        "SmolLM2-135M_base",
        "tiny-llama_base",
    ]


def test_strings_and_booleans_in_names(tmp_path):
    variables = "dataset_type: [chat_completion, text_completion]\npacked: [true, false]\n"
    assert names(grid(tmp_path, variables))[:2] == [
        "dataset_type-chat_completion_packed-true",
        "dataset_type-chat_completion_packed-false",
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0001, "1e-4"),
        (0.0003, "3e-4"),
        (0.5, "0.5"),
        (2e-05, "2e-5"),
        (1.5e-05, "1.5e-5"),
        (0.001, "1e-3"),
        (0.01, "0.01"),
        (-0.0001, "-1e-4"),
        (100000.0, "1e5"),
        (2.0, "2.0"),
        (0.0, "0.0"),
        (0.1234, "0.1234"),
        (8, "8"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        ("x", "x"),
        ([1, 2], "1-2"),
    ],
)
def test_short_value(value, text):
    assert short_value(value) == text


def test_weird_string_values_are_sanitised(tmp_path):
    experiment = grid(tmp_path, "template: ['hello world!', 'a;rm -rf $HOME', 'ü']\n")
    assert names(experiment) == [
        "template-hello-world-",
        "template-a-rm--rf-HOME",
        "template--",
        "base",
    ]
    for run in experiment.runs:
        assert NAME_PATTERN.fullmatch(run.name)


@pytest.mark.parametrize("value", ["../../etc", "/", "..", "../", "~/x", "a/../../b"])
def test_names_never_escape_the_experiment_directory(tmp_path, value):
    labels = {"path": ""}  # an empty label: the value alone makes the name
    experiment = grid(tmp_path, f"path: ['{value}', other]\n", labels=labels)
    for run in experiment.runs:
        assert NAME_PATTERN.fullmatch(run.name), run.name
        assert run.directory.parent == experiment.directory
        assert run.directory.resolve().is_relative_to(experiment.directory)


def test_run_directory_refuses_a_way_out(tmp_path):
    assert run_directory(tmp_path, "rank4") == tmp_path / "rank4"
    for name in ["..", ".", "", "../x", "a/b", "/etc"]:
        with pytest.raises(ValueError, match="leave the experiment directory"):
            run_directory(tmp_path, name)


def test_collisions_are_made_unique_and_stable(tmp_path):
    experiment = grid(tmp_path, "style: ['a b', 'a/b', 'a-b']\n")
    generated = names(experiment)
    assert len(set(generated)) == 4
    assert all(
        name.startswith("style-a-b-") and len(name) == len("style-a-b-") + 6
        for name in generated[:3]
    )
    assert generated == names(grid(tmp_path, "style: ['a b', 'a/b', 'a-b']\n"))


def test_collision_with_the_control_name(tmp_path):
    experiment = grid(tmp_path, "mode: [base, other]\n", labels={"mode": ""})
    generated = names(experiment)
    assert len(set(generated)) == 3
    assert generated[1] == "other"
    assert generated[0] != generated[2] and generated[0].startswith("base-")
    assert experiment.runs[2].type is RunType.CONTROL


def test_unique_falls_back_to_a_counter_for_identical_parameters():
    first, second, other = unique_names(["a", "a", "b"], ["same", "same", "t"])
    assert other == "b"
    assert first.startswith("a-") and len(first) == 8
    assert second == f"{first}-2"


def test_long_names_are_capped_with_a_hash(tmp_path):
    long_a, long_b = "x" * 90 + "a", "x" * 90 + "b"
    experiment = grid(tmp_path, f"note: [{long_a}, {long_b}]\n")
    first, second = names(experiment)[:2]
    assert len(first) == len(second) == MAX_GENERATED_NAME
    assert first != second
    assert NAME_PATTERN.fullmatch(first) and NAME_PATTERN.fullmatch(second)


def test_names_are_deterministic(tmp_path):
    variables = "lora_rank: [4, 8]\nlr: [1e-4, 3e-4]\nzip:\n  - {a: [x, y], b: [1, 2]}\n"
    first = names(grid(tmp_path, variables, models=2))
    assert first == names(grid(tmp_path, variables, models=2))
    assert len(first) == 2 * 2 * 2 * 2 + 2


def test_run_directories_are_inside_the_experiment_directory(tmp_path):
    experiment = grid(tmp_path, "lora_rank: [4, 8]\n")
    for run in experiment.runs:
        assert run.directory == experiment.directory / run.name


def test_grid_runs_add_no_keys(tmp_path):
    path = tmp_path / "experiment.yaml"
    grid(tmp_path, "lora_rank: [4, 8]\n")
    keys = load_experiment(path, labels=LABELS).keys
    assert [key.path for key in keys] == ["variables.lora_rank"]


def test_explicit_runs_replace_the_grid(tmp_path):
    extra = """
    runs:
      - {name: only, model: SmolLM2-135M, parameters: {lora_rank: 16}}
      - {name: other, model: SmolLM2-135M, parameters: {lora_rank: 8}}
    """
    experiment = grid(tmp_path, "lora_rank: [8, 16]\n", extra=extra)
    assert names(experiment) == ["only", "other"]
    assert experiment.variables[0].values == (8, 16)


def test_with_explicit_runs_a_variable_value_no_run_has_is_a_warning(tmp_path):
    extra = """
    runs:
      - {name: only, model: SmolLM2-135M, parameters: {lora_rank: 16}}
      - {name: base, type: control, model: SmolLM2-135M, parameters: {lora_rank: 4}}
    """
    path = tmp_path / "experiment.yaml"
    grid(tmp_path, "lora_rank: [16]\n", extra=extra)  # every value run: no problem
    text = path.read_text().replace("lora_rank: [16]", "lora_rank: [4, 16]")
    path.write_text(text)
    loaded = load_experiment(path, labels=LABELS)
    (warning,) = loaded.problems  # a control's parameters train nothing: 4 is not run
    assert warning.severity is Severity.WARNING and warning.where.path == "variables.lora_rank"
    assert warning.message == "no run has lora_rank: 4, though variables lists it: it will not run"


def test_matrix_refers_to_generated_names(tmp_path):
    extra = """
    evaluation:
      tasks: [{name: caps}]
      matrix:
        - {run: epochs1, epochs: [0]}
        - {run: epochs2, epochs: [1]}
        - {run: base}
    """
    experiment = grid(tmp_path, "epochs: [1, 2]\n", extra=extra)
    assert [entry.run for entry in experiment.evaluation.matrix] == ["epochs1", "epochs2", "base"]


def test_matrix_epoch_range_uses_the_swept_epochs(tmp_path, plugin_manager, register_plugin):
    from cruijff_inspect import plugin

    register_plugin(plugin, name="inspect")  # the evaluator checks a matrix's epochs
    (tmp_path / "models" / "SmolLM2-135M").mkdir(parents=True)
    path = tmp_path / "experiment.yaml"
    path.write_text(
        textwrap.dedent(
            """
            experiment: {name: demo}
            tools: {evaluation: inspect}
            models:
              base: [{name: SmolLM2-135M, path: models/SmolLM2-135M}]
            variables:
              epochs: [1, 2]
            evaluation:
              matrix:
                - {run: epochs1, epochs: [1]}
                - {run: epochs2, epochs: [1]}
                - {run: epochs3}
            """
        )
    )
    checked = check(plugin_manager, path)
    problems = [p for p in checked.problems if p.where.path.startswith("evaluation.matrix")]
    assert [(p.where.path, p.message) for p in problems] == [
        ("evaluation.matrix[0].epochs[0]", "epoch 1 is out of range: epochs1 trains for 1 epoch"),
        ("evaluation.matrix[2].run", "'epochs3' is not a run"),
    ]
    assert problems[1].hint == "did you mean epochs1?"
    core = load_experiment(path).problems  # the core checks the run names only
    assert [(p.where.path, p.message) for p in core] == [
        ("evaluation.matrix[2].run", "'epochs3' is not a run")
    ]


def test_a_grid_of_max_runs_is_fine(tmp_path):
    assert MAX_RUNS >= 10_000  # the experiments of the scale benchmark
    experiment = grid(
        tmp_path, f"lora_rank: {list(range(10))}\nseed: {list(range(MAX_RUNS // 10))}\n"
    )
    assert len(experiment.runs) == MAX_RUNS + 1  # and the control


def test_a_grid_of_more_runs_is_refused_before_it_is_made(tmp_path):
    for name in ("a", "b"):
        (tmp_path / "models" / name).mkdir(parents=True)
    path = tmp_path / "experiment.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            experiment: {{name: demo}}
            models:
              base: [{{name: a, path: models/a}}, {{name: b, path: models/b}}]
            variables:
              lora_rank: {list(range(100))}
              zip:
                - {{lr: {list(range(100))}, seed: {list(range(100))}}}
            evaluation:
              tasks: [{{name: t}}]
              matrix: [{{run: a_rank1_lr1_seed1}}]
            """
        ).lstrip()
    )
    loaded = load_experiment(path)
    (problem,) = loaded.problems  # the matrix's run is not blamed: no run name is known
    assert (problem.where.path, problem.where.line) == ("variables", 4)
    assert problem.message.startswith("the grid has 20,000 fine-tuned runs (2 × 100 × 100: ")
    assert f"at most {MAX_RUNS:,}" in problem.hint
    assert loaded.experiment.runs == ()


def test_too_many_explicit_runs_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("cruijff.experiment.runs.MAX_RUNS", 3)
    (tmp_path / "models" / "m").mkdir(parents=True)
    runs = "".join(f"  - {{name: r{i}, model: m}}\n" for i in range(5))
    path = tmp_path / "experiment.yaml"
    path.write_text(
        "experiment: {name: demo}\nmodels:\n  base: [{name: m, path: models/m}]\n"
        "runs:\n  - {name: base, type: control, model: m}\n" + runs
    )
    (problem,) = load_experiment(path).problems
    assert (problem.where.path, problem.message) == ("runs[4]", "more than 3 fine-tuned runs")
