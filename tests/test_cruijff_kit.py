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
        ("experiment.type", "sweep", Severity.WARNING, "experiment.type is not read"),
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
        ("runs.2.training_condition", "c1", Severity.WARNING, "a control run trains nothing"),
        ("runs.0.training_condition", "../x", Severity.ERROR, "is not a condition name"),
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


# --- conformance: every template key, with the real plugins --------------------------------

RANK4 = "rank4"


def _finetune(root: Path) -> dict:
    return yaml.safe_load((root / RANK4 / "finetune.yaml").read_text())


def _cell(root: Path) -> dict:
    return yaml.safe_load(
        (root / RANK4 / "eval" / "ck_style" / "epoch_0" / "eval_config.yaml").read_text()
    )


def _dig(document: dict, dotted: str):
    node = document
    for part in dotted.split("."):
        node = node[part]
    return node


def finetune(dotted: str):
    """Where a training key lands: a path in rank4's finetune.yaml."""
    return lambda root, plan: _dig(_finetune(root), dotted)


def cell(dotted: str):
    """Where an evaluation key lands: a path in rank4's epoch-0 cell's eval_config.yaml."""
    return lambda root, plan: _dig(_cell(root), dotted)


def job(unit: str, field: str):
    """What a job asks of the machine."""
    return lambda root, plan: getattr(plan.generated[unit].job.resources, field)


def kept(root, plan):
    """An informational key: accepted and kept (the same files, nothing translated)."""
    return True


EVAL_CELL = "rank4.eval.ck_style.epoch_0"
CONFORMANCE = [
    # (template key, value written, where it must land, what it must be there)
    ("experiment.question", "Other?", kept, True),
    ("experiment.hypothesis", "Rank helps.", kept, True),
    ("experiment.purpose", "A test.", kept, True),
    ("experiment.date", "2026-12-01", kept, True),
    ("models.base.0.size_gb", 9.5, kept, True),
    ("data.training.size_kb", 99, kept, True),
    ("evaluation.tasks.0.description", "Something else", kept, True),
    ("controls.epochs", 3, finetune("epochs"), 3),
    ("controls.batch_size", 1, finetune("batch_size"), 1),
    ("controls.gradient_accumulation_steps", 2, finetune("gradient_accumulation_steps"), 2),
    ("controls.weight_decay", 0.05, finetune("optimizer.weight_decay"), 0.05),
    ("controls.lora_dropout", 0.1, finetune("model.lora_dropout"), 0.1),
    ("controls.seed", 7, finetune("seed"), 7),
    ("controls.seed", 7, cell("generate.seed"), 14),  # the evaluation's seed is its own
    ("evaluation.seed", 0, cell("generate.seed"), 0),
    ("evaluation.seed", 0, finetune("seed"), 14),
    ("controls.system_prompt", "Be brief.", finetune("dataset.system_prompt"), "Be brief."),
    ("controls.system_prompt", "Be brief.", cell("system_prompt"), "Be brief."),
    ("controls.prompt", "Say {input}", finetune("dataset.prompt"), "Say {input}"),
    ("controls.prompt", "Say {input}", cell("prompt"), "Say {input}"),
    ("controls.dataset_type", "text_completion", cell("use_chat_template"), False),
    (
        "controls.dataset_type",
        "text_completion",
        finetune("dataset.dataset_type"),
        "text_completion",
    ),
    ("controls.validation_during_training", True, finetune("run_val_every_n_steps"), 50),
    ("controls.validation_during_training", True, finetune("dataset_val.split"), "validation"),
    ("controls.batch_size_val", 1, finetune("batch_size_val"), 1),
    ("runs.0.parameters.lora_rank", 16, finetune("model.lora_rank"), 16),
    ("runs.0.parameters.lora_rank", 16, finetune("model.lora_alpha"), 32),  # 2 × rank
    ("controls.lr", 3e-4, finetune("optimizer.lr"), 3e-4),
    ("controls.num_warmup_steps", 10, finetune("lr_scheduler.num_warmup_steps"), 10),
    ("controls.max_seq_len", 512, finetune("tokenizer.max_seq_len"), 512),
    ("controls.log_every_n_steps", 1, finetune("log_every_n_steps"), 1),
    ("controls.save_adapter_weights_only", True, finetune("save_adapter_weights_only"), True),
    ("controls.base_recipe", "llama3_2/1B_lora_single_device", finetune("optimizer.lr"), 3e-4),
    ("data.training.splits.train", 3, finetune("dataset.max_samples"), 3),
    ("output.wandb_project", "other", finetune("metric_logger.wandb_project"), "other"),
    ("runs.0.parameters.prompt", "Run {input}", finetune("dataset.prompt"), "Run {input}"),
    ("runs.0.parameters.prompt", "Run {input}", cell("prompt"), "Run {input}"),
    ("evaluation.tasks.0.prompt", "Task {input}", cell("prompt"), "Task {input}"),
    (
        "evaluation.tasks.0.prompt",
        "Task {input}",
        finetune("dataset.prompt"),
        "Capitalize: {input}",
    ),
    ("evaluation.tasks.0.system_prompt", "Judge.", cell("system_prompt"), "Judge."),
    # a run's system prompt trains it; its evaluation uses the task's or the controls' (warned)
    ("runs.0.parameters.system_prompt", "Run.", finetune("dataset.system_prompt"), "Run."),
    ("runs.0.parameters.system_prompt", "Run.", cell("system_prompt"), ""),
    ("evaluation.system_prompt", "Retired.", cell("system_prompt"), ""),  # warned, ignored
    ("evaluation.temperature", 0.7, cell("model.args.do_sample"), False),  # inert
    ("evaluation.temperature", -1, cell("generate"), {"seed": 14}),  # greedy: dropped, no error
    (
        "evaluation.temperature",
        -1,
        lambda root, plan: "temperature" in _cell(root)["task_args"],
        False,
    ),
    ("evaluation.do_sample", True, cell("model.args.do_sample"), True),  # with a temperature
    ("evaluation.do_sample", True, cell("task_args.temperature"), 0.7),
    ("evaluation.max_tokens", 7, cell("task_args.max_tokens"), 7),
    ("evaluation.max_connections", 1, cell("batch_size"), 1),
    (
        "evaluation.scorers",
        [{"name": "match"}],
        cell("scorers"),
        [{"name": "match", "params": {"location": "exact", "ignore_case": False}}],
    ),
    (
        "evaluation.scorers",
        [{"name": "match", "params": {"location": "exact"}}],
        cell("scorers"),
        [{"name": "match", "params": {"location": "exact"}}],
    ),
    ("evaluation.matrix.0.vis_label", "four", cell("task_args.vis_label"), "four"),
    ("runs.0.compute", {"time": "1:00:00"}, job("rank4.train", "time_s"), 3600),
    ("runs.0.compute", {"mem": "8G"}, job("rank4.train", "mem_mb"), 8192),
    ("runs.0.compute", {"cpus_per_task": 3}, job("rank4.train", "cpus"), 3),
    ("evaluation.compute", {"time": "0:05:00"}, job(EVAL_CELL, "time_s"), 300),
]


@pytest.fixture
def kit_plugins(plugin_manager, register_plugin):
    pytest.importorskip("torchtune")
    from cruijff_inspect import plugin as inspect_plugin
    from cruijff_torchtune import plugin as torchtune_plugin

    register_plugin(torchtune_plugin, name="torchtune")
    register_plugin(inspect_plugin, name="inspect")
    return plugin_manager


def real_kit_experiment(root: Path, **changes) -> dict:
    """The kit experiment for torchtune and inspect-ai: a Llama config (scaffolding reads no
    weights) and a task written in cruijff_kit's style."""
    from test_torchtune_config import LLAMA

    document = kit_experiment(root, **changes)
    document["tools"] = {"preparation": "torchtune", "evaluation": "inspect-ai"}
    model = Path(document["models"]["base"][0]["path"])
    (model / "config.json").write_text(json.dumps(LLAMA))
    (model / "model.safetensors").write_bytes(b"")
    task = Path(__file__).parent / "inspect_tasks" / "ck_style_task.py"
    (root / "inspect_task.py").write_text(task.read_text())
    for what in [document["evaluation"]["tasks"][0], *document["evaluation"]["matrix"]]:
        if "tasks" in what:
            what["tasks"] = ["ck_style"]
        else:
            what["name"] = "ck_style"
    return document


@pytest.mark.parametrize(
    ("key", "value", "where", "expected"),
    CONFORMANCE,
    ids=[f"{row[0]}={row[1]!r}"[:60] for row in CONFORMANCE],
)
def test_every_template_key_is_accepted_translated_and_honoured(
    kit_plugins, tmp_path, key, value, where, expected
):
    from cruijff.orchestrator import scaffold_experiment

    changes = {key: value}
    if key == "evaluation.do_sample":  # sampling needs a temperature, as in cruijff_kit
        changes["evaluation.temperature"] = 0.7
    path = write(tmp_path, real_kit_experiment(tmp_path, **changes))
    assert problems(kit_plugins, path) == []
    plan, _ = scaffold_experiment(kit_plugins, path)
    root = plan.experiment.directory
    assert where(root, plan) == expected
    if where is kept:  # informational: every config is that of the file without the key
        baseline = tmp_path / "baseline"
        baseline.mkdir()
        plain, _ = scaffold_experiment(kit_plugins, write(baseline, real_kit_experiment(baseline)))
        assert _configs(root, tmp_path) == _configs(plain.experiment.directory, baseline)


def _configs(root: Path, folder: Path) -> dict[str, str]:
    """The configs scaffolding wrote under ``root``, with ``folder`` written as <root>."""
    return {
        str(path.relative_to(root)): path.read_text().replace(str(folder), "<root>")
        for pattern in ("*/finetune.yaml", "*/eval/*/*/eval_config.yaml")
        for path in sorted(root.glob(pattern))
    }


def test_generated_data_flows_generate_then_train_then_evaluate(
    kit_plugins, organism, tmp_path, cli
):
    document = real_kit_experiment(tmp_path)
    directory = Path(document["experiment"]["dir"])
    document["data"]["data_generation"] = dict(MEMORIZE)
    document["data"]["training"].update(
        path=str(directory / "data" / "parity.json"),
        dataset_label="parity",
        splits={"train": 40, "validation": 40},
    )
    path = write(tmp_path, document)
    assert problems(kit_plugins, path) == []
    planned = json.loads(cli("plan", path, "--json").output)
    jobs = {job["unit"]: job for job in planned["jobs"]}
    assert "data.generate" in jobs
    assert "data.generate" in jobs["rank4.train"]["depends_on"]
    assert "data.generate" in jobs["rank4.eval.ck_style.epoch_0"]["depends_on"]
    # the generated file has no test split: an evaluation of it is refused before any job
    document["evaluation"]["tasks"][0]["split"] = "test"
    result = cli("validate", write(tmp_path, document))
    assert result.exit_code == 1 and "parity.json has no split 'test'" in result.output


def test_cruijff_kits_schema_fixture_shape_validates_with_warnings_only(kit_plugins, tmp_path):
    # what cruijff_kit's own schema fixture carries (CRUIJFF_KIT.md §6.6): a retired
    # evaluation.system_prompt, temperature 0.0, a bare match, validation during training
    changes = {
        "evaluation.system_prompt": "You are terse.",
        "evaluation.temperature": 0.0,
        "evaluation.scorers": [{"name": "match"}],
        "controls.validation_during_training": True,
    }
    path = write(tmp_path, real_kit_experiment(tmp_path, **changes))
    assert problems(kit_plugins, path) == []
    warned = problems(kit_plugins, path, Severity.WARNING)
    assert any(line.startswith("evaluation.system_prompt:") for line in warned), warned
    from cruijff.orchestrator import scaffold_experiment

    plan, _ = scaffold_experiment(kit_plugins, path)
    config = _cell(plan.experiment.directory)
    assert config["system_prompt"] == ""  # controls.system_prompt, not the retired key
    assert config["model"]["args"]["do_sample"] is False
    assert "temperature" not in config["task_args"]  # greedy: the temperature is dropped


def test_null_values_mean_what_absent_keys_mean(kit_plugins, tmp_path):
    # cruijff_kit skips a null (seed: null is seed 14): so do the plugins, which never see it
    document = real_kit_experiment(tmp_path)
    document["controls"].update(seed=None, system_prompt=None, lr=None)
    document["evaluation"].update(temperature=None, seed=None)
    document["runs"][0]["parameters"]["prompt"] = None
    path = write(tmp_path, document)
    assert problems(kit_plugins, path) == []
    from cruijff.orchestrator import scaffold_experiment

    plan, _ = scaffold_experiment(kit_plugins, path)
    config = _finetune(plan.experiment.directory)
    assert config["seed"] == 14 and config["optimizer"]["lr"] == 1e-4
    assert config["dataset"]["prompt"] == "Capitalize: {input}"  # the controls' prompt
    assert _cell(plan.experiment.directory)["generate"]["seed"] == 14


def test_a_model_folder_with_only_config_json_plans_but_is_not_scaffolded(
    kit_plugins, tmp_path, cli
):
    # size a sweep of a model before downloading it: validate and plan warn, scaffold refuses
    document = real_kit_experiment(tmp_path)
    (Path(document["models"]["base"][0]["path"]) / "model.safetensors").unlink()
    path = write(tmp_path, document)
    assert problems(kit_plugins, path) == []
    warned = problems(kit_plugins, path, Severity.WARNING)
    assert any("holds no .safetensors weights yet" in line for line in warned), warned
    assert cli("plan", path, "--json").exit_code == 0
    for command in ("scaffold", "run"):
        result = cli(command, path)
        assert result.exit_code == 1 and "no weights yet in" in result.output
    assert not Path(document["experiment"]["dir"]).exists()  # nothing written
