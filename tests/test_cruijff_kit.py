"""cruijff_kit's experiment files, accepted as they are and read with cruijff_kit's meaning
(../shared/CRUIJFF_KIT.md): the core's part, with the fake tools. The tools' translations of
each key are checked in the conformance table further down."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from cruijff.design import check, design
from cruijff.records import Compute, Severity


def kit_experiment(root: Path, **changes) -> dict:
    """An experiment in cruijff_kit's own style: every key its template marks REQUIRED,
    explicit runs, a control, a matrix with vis_label (the fake tools stand in for torchtune
    and inspect-ai)."""
    model = root / "models" / "Llama-3.2-1B-Instruct"
    model.mkdir(parents=True, exist_ok=True)
    (model / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    data = root / "data" / "words.json"
    data.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"input": w, "output": w.upper()} for w in ("fig", "kiwi", "lime", "plum")]
    data.write_text(json.dumps({"train": rows, "validation": rows[:2], "test": rows[:2]}))
    document = {
        "experiment": {
            "name": "cap_rank_2026-11-22",
            "project": "capitalization",
            "question": "Does LoRA rank matter for capitalization?",
            "date": "2026-11-22",
            "dir": str(root / "ck-projects" / "capitalization" / "cap_rank"),
        },
        "tools": {"preparation": "fake", "evaluation": "fake-eval"},
        "variables": {"lora_rank": [4, 8]},
        "controls": {
            "system_prompt": "",
            "prompt": "Capitalize: {input}",
            "dataset_type": "chat_completion",
            "epochs": 2,
            "batch_size": 2,
            "gradient_accumulation_steps": 1,
            "validation_during_training": True,
        },
        "models": {"base": [{"name": "Llama-3.2-1B-Instruct", "path": str(model), "size_gb": 2.5}]},
        "data": {
            "training": {
                "path": str(data),
                "dataset_label": "words",
                "format": "json",
                "size_kb": 1,
                "splits": {"train": 4, "validation": 2, "test": 2},
            }
        },
        "output": {"wandb_project": "capitalization"},
        "runs": [
            {
                "name": "rank4",
                "type": "fine-tuned",
                "model": "Llama-3.2-1B-Instruct",
                "parameters": {"lora_rank": 4},
                "compute": {"time": "0:30:00", "gpus": 1, "mem": "80G"},
            },
            {
                "name": "rank8",
                "type": "fine-tuned",
                "model": "Llama-3.2-1B-Instruct",
                "parameters": {"lora_rank": 8},
            },
            {"name": "base", "type": "control", "model": "Llama-3.2-1B-Instruct", "parameters": {}},
        ],
        "evaluation": {
            "do_sample": False,
            "max_connections": 16,
            "scorers": [{"name": "match"}, {"name": "includes"}],
            "compute": {"time": "0:10:00", "mem": "40G"},
            "tasks": [
                {
                    "name": "capitalization",
                    "script": str(root / "inspect_task.py"),
                    "description": "Word capitalization accuracy",
                    "dataset": "same",
                }
            ],
            "matrix": [
                {"run": "rank4", "vis_label": "r4", "tasks": ["capitalization"], "epochs": [0, 1]},
                {"run": "rank8", "vis_label": "r8", "tasks": ["capitalization"], "epochs": [1]},
                {"run": "base", "tasks": ["capitalization"], "epochs": None},
            ],
        },
    }
    (root / "inspect_task.py").write_text("from inspect_ai import task\n")
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = copy.deepcopy(value)  # the caller's dict stays as it is
    return document


def write(root: Path, document: dict) -> Path:
    path = root / "experiment_summary.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def problems(plugin_manager, path: Path, severity: Severity = Severity.ERROR) -> list[str]:
    checked = check(plugin_manager, path)
    return [f"{p.where.path}: {p.message}" for p in checked.problems if p.severity is severity]


def test_a_kit_file_with_every_required_key_validates_and_its_keys_are_read(
    plugin_manager, fake_tools, tmp_path
):
    path = write(tmp_path, kit_experiment(tmp_path))
    assert problems(plugin_manager, path) == []
    plan = design(plugin_manager, path)
    experiment = plan.experiment
    assert experiment.directory == tmp_path / "ck-projects" / "capitalization" / "cap_rank"
    assert experiment.data.size_kb == 1 and experiment.data.label == "words"
    assert experiment.meta["project"] == "capitalization"  # informational, kept
    rank4 = experiment.run("rank4")
    assert rank4.compute == Compute(
        time_s=1800, gpus=1, mem_mb=80 * 1024, yaml_path="runs[0].compute"
    )
    assert experiment.run("rank8").compute.time_s is None
    assert experiment.evaluation.compute.mem_mb == 40 * 1024
    labels = [entry.vis_label for entry in experiment.evaluation.matrix]
    assert labels == ["r4", "r8", None]
    # compute reaches the jobs: the run's for its training, the evaluation's for every cell
    train = plan.generated["rank4.train"].job.resources
    assert (train.time_s, train.gpus, train.mem_mb) == (1800, 1, 80 * 1024)
    assert plan.generated["rank8.train"].job.resources.time_s == 600  # the tool's own
    cell = next(job for unit, g in plan.generated.items() if (job := g.job) and ".eval." in unit)
    assert (cell.resources.time_s, cell.resources.mem_mb) == (600, 40 * 1024)


@pytest.mark.parametrize(
    ("dotted", "value", "severity", "expected"),
    [
        ("experiment.directory", "/x", Severity.ERROR, "experiment.directory was renamed to dir"),
        ("experiment.type", "sweep", Severity.ERROR, "experiment.type was removed"),
        ("experiment.seed", 3, Severity.WARNING, "experiment.seed is not read"),
        ("output.base_directory", "/x", Severity.WARNING, "output.base_directory is not read"),
        ("output.checkpoint_pattern", "x", Severity.WARNING, "checkpoint_pattern is not read"),
        ("data.training.label", "words", Severity.ERROR, "renamed to dataset_label"),
        ("data.training.dataset_label", "other", Severity.ERROR, "is not the name of the data"),
        ("data.training.format", "csv", Severity.ERROR, "unknown data format 'csv'"),
        ("data.training.size_kb", "big", Severity.ERROR, "expected a size in KB"),
        ("runs.0.compute", {"time": "soon"}, Severity.ERROR, "time must be minutes or a SLURM"),
        ("runs.0.compute", {"gpus": -1}, Severity.ERROR, "gpus must be a whole number"),
        ("runs.0.compute", {"memory": "8G"}, Severity.ERROR, "runs[0].compute.memory: unknown"),
        ("evaluation.compute", {"mem": "lots"}, Severity.ERROR, "mem must be MB or a size"),
        ("runs.2.training_condition", "c1", Severity.ERROR, "a control run trains nothing"),
        ("runs.0.slurm_overrides", {"qos": "x"}, Severity.ERROR, "slurm_overrides.qos: unknown"),
    ],
)
def test_retired_and_wrong_kit_keys_get_what_cruijff_kit_gives_them(
    plugin_manager, fake_tools, tmp_path, dotted, value, severity, expected
):
    path = write(tmp_path, kit_experiment(tmp_path, **{dotted: value}))
    found = problems(plugin_manager, path, severity)
    assert any(expected in line for line in found), found
    if severity is Severity.WARNING:
        assert problems(plugin_manager, path) == []  # ignored, as there: nothing else changes


def test_a_runs_retired_dataset_path_and_slurm_overrides_are_read(
    plugin_manager, fake_tools, tmp_path
):
    changes = {
        "runs.0.dataset_path": str(tmp_path / "data" / "words.json"),
        "runs.0.slurm_overrides": {"partition": "gpu-short", "constraint": "a100"},
    }
    path = write(tmp_path, kit_experiment(tmp_path, **changes))
    plan = design(plugin_manager, path)
    run = plan.experiment.run("rank4")
    assert run.parameters["dataset_path"] == str(tmp_path / "data" / "words.json")
    extras = plan.generated["rank4.train"].job.resources.extras
    assert dict(extras) == {"partition": "gpu-short", "constraint": "a100"}


def test_the_data_generation_block_names_the_generation_tool(plugin_manager, fake_tools, tmp_path):
    block = {"tool": "model_organism", "input_type": "bits", "rule": "parity"}
    changes = {"data.data_generation": block, "data.training.path": str(tmp_path / "gen.json")}
    changes["data.training.dataset_label"] = "gen"
    path = write(tmp_path, kit_experiment(tmp_path, **changes))
    checked = check(plugin_manager, path)
    assert checked.experiment.tools["generation"] == "model_organism"
    assert checked.experiment.data.generation["rule"] == "parity"
    errors = [p for p in checked.problems if p.severity is Severity.ERROR]
    # no plugin here provides model_organism: said where the file names it; the data file
    # the generator would write need not exist
    assert [p.where.path for p in errors][:1] == ["data.data_generation.tool"]
    assert not any("data file not found" in p.message for p in errors)


def test_a_kit_file_validates_plans_scaffolds_and_runs_with_the_fake_tools(
    cli, fake_tools, cruijff_inprocess, tmp_path
):
    path = write(tmp_path, kit_experiment(tmp_path))
    assert cli("validate", path).exit_code == 0
    planned = json.loads(cli("plan", path, "--json").output)
    assert {run["name"] for run in planned["runs"]} == {"rank4", "rank8", "base"}
    assert cli("scaffold", path).exit_code == 0
    result = cli("run", path, "--scheduler", cruijff_inprocess)
    assert result.exit_code == 0, result.output
    status = json.loads(cli("status", path, "--json").output)
    states = {job["unit"]: job["state"] for job in status["jobs"]}
    assert states and set(states.values()) == {"SUCCEEDED"}, states


MEMORIZE = {
    "tool": "model_organism",
    "name": "parity8",
    "input_type": "bits",
    "rule": "parity",
    "k": 8,
    "N": 40,
    "seed": 3,
    "design": "memorization",
    "output_path": "data/parity.json",
}


def organism_experiment(root: Path, **changes) -> dict:
    """The kit experiment, its data made by the model_organism generator."""
    directory = root / "ck-projects" / "capitalization" / "cap_rank"
    changes = {
        "data.data_generation": MEMORIZE,
        "data.training.path": str(directory / "data" / "parity.json"),
        "data.training.dataset_label": "parity",
        "data.training.splits": {"train": 40, "validation": 40},
        **changes,
    }
    return kit_experiment(root, **changes)


@pytest.fixture
def organism(register_plugin):
    from cruijff_model_organism import plugin

    return register_plugin(plugin, name="model_organism")


def test_generation_is_a_stage_before_training_and_checked_at_validation(
    plugin_manager, fake_tools, organism, tmp_path
):
    path = write(tmp_path, organism_experiment(tmp_path))
    assert problems(plugin_manager, path) == []
    plan = design(plugin_manager, path)
    first = plan.units[0]
    assert first.id == "data.generate" and first.id.endswith(".generate")
    (dataset,) = first.produces
    assert dataset.kind == "dataset" and dict(dataset.splits) == {"train": 40, "validation": 40}
    assert dataset.path == plan.experiment.data.path
    job = plan.generated[first.id].job
    assert job.argv[-1] == str(plan.experiment.data.path)
    # output_path is relative to experiment.dir; it must be the training file
    moved = organism_experiment(tmp_path, **{"data.data_generation.output_path": "elsewhere.json"})
    found = problems(plugin_manager, write(tmp_path, moved))
    assert any("data.data_generation.output_path: the generator writes" in p for p in found)
    # the spec's own errors, at their keys
    wrong = organism_experiment(tmp_path, **{"data.data_generation.N": 300})
    found = problems(plugin_manager, write(tmp_path, wrong))
    assert any(p.startswith("data.data_generation.N:") for p in found), found
    # declared splits that the spec does not make: a warning naming both counts
    counted = organism_experiment(tmp_path, **{"data.training.splits": {"train": 32}})
    warned = problems(plugin_manager, write(tmp_path, counted), Severity.WARNING)
    assert any("says 32 rows, but the spec makes 40" in p for p in warned), warned


def test_the_generation_job_writes_the_dataset_and_is_validated(
    cli, fake_tools, organism, cruijff_inprocess, tmp_path
):
    path = write(tmp_path, organism_experiment(tmp_path))
    result = cli("run", path, "--scheduler", cruijff_inprocess)
    assert result.exit_code == 0, result.output
    made = json.loads(
        (tmp_path / "ck-projects/capitalization/cap_rank/data/parity.json").read_text()
    )
    assert len(made["train"]) == len(made["validation"]) == 40
    status = json.loads(cli("status", path, "--json").output)
    states = {job["unit"]: job["state"] for job in status["jobs"]}
    assert states["data.generate"] == "SUCCEEDED"


def test_scorers_as_a_plain_string_is_one_scorer_of_that_name(plugin_manager, fake_tools, tmp_path):
    path = write(tmp_path, kit_experiment(tmp_path, **{"evaluation.scorers": "includes"}))
    assert problems(plugin_manager, path) == []
    (scorer,) = check(plugin_manager, path).experiment.evaluation.scorers
    assert scorer.name == "includes" and dict(scorer.params) == {}
