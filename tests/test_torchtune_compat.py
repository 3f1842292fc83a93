"""cruijff_kit's experiment files mean the same thing to the torchtune plugin (issue 10): its
defaults, the nine values a base recipe gives, lora_alpha = 2 × rank, the training file of a
run (splits.train, training conditions, dataset_path, a generated file), dataset_type, the
compute block, adapters only, and the warnings where cruijff keeps a meaning of its own.
No torch: configs and plans only."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from test_torchtune_config import LLAMA, build_config, model_folder, sources

from cruijff.design import check, design
from cruijff.errors import ProblemsFound
from cruijff.records import (
    Artifact,
    ArtifactKind,
    Generated,
    JobSpec,
    ParseReport,
    Role,
    Severity,
    Tool,
    Unit,
)
from cruijff.testing import merge
from cruijff_torchtune import outputs
from cruijff_torchtune import plugin as torchtune_plugin
from cruijff_torchtune.config import LORA_DEFAULTS, RECIPE_VALUES, build
from cruijff_torchtune.models import read_model
from cruijff_torchtune.validate import validate

RECIPE = "llama3_2/1B_lora_single_device"


def no_step(plugin_manager, path: Path, says: str, field: str) -> None:
    """Designing ``path`` fails with one problem: a run that would train nothing, at ``field``."""
    with pytest.raises(ProblemsFound) as caught:
        design(plugin_manager, path)
    (problem,) = caught.value.problems
    assert re.search(says, problem.message), problem
    assert f"{field}: " in str(problem) and f"{path}:" in str(problem), problem


@pytest.fixture
def torchtune(plugin_manager, register_plugin):
    return register_plugin(torchtune_plugin, name="torchtune")


@pytest.fixture
def experiment_file(make_experiment, tmp_path):
    """A torchtune-only experiment (the default grid: rank4, rank8 and a base run) over a
    model folder torchtune can read; no warmup (its 8 rows make a few steps)."""

    def make(changes=None):
        base = {
            "tools": {"preparation": "torchtune", "evaluation": None},
            "evaluation": None,
            "controls": {"dataset_type": "chat_completion", "num_warmup_steps": 0},
        }
        path = make_experiment(merge(base, changes or {}))
        model_folder(tmp_path / "models", LLAMA, "tiny")
        return path

    return make


def problems_at(checked, severity=Severity.WARNING):
    return {p.where.path: p for p in checked.problems if p.severity is severity}


def finetune_yaml(plan, unit_id):
    files = {spec.path.name: spec.content for spec in plan.generated[unit_id].files}
    return yaml.safe_load(files["finetune.yaml"])


# --- defaults and base recipes -------------------------------------------------------------


def test_without_a_base_recipe_the_defaults_are_cruijff_kits(tmp_path):
    got = sources(build_config(tmp_path))
    expected = {
        "seed": 14,
        "optimizer.lr": 1e-4,
        "optimizer.weight_decay": 0.01,
        "lr_scheduler._component_": (
            "torchtune.training.lr_schedulers.get_cosine_schedule_with_warmup"
        ),
        "lr_scheduler.num_warmup_steps": 100,
        "tokenizer.max_seq_len": 2048,
        "model.lora_rank": 64,
        "model.lora_dropout": 0.0,
        "model.lora_attn_modules": ["q_proj", "v_proj", "output_proj"],
        "model.apply_lora_to_mlp": True,
        "batch_size": 4,
        "gradient_accumulation_steps": 1,
        "epochs": 1,
        "log_every_n_steps": 5,
        "shuffle": True,
        "clip_grad_norm": None,
        "max_steps_per_epoch": None,
        # the one deliberate difference: cruijff_kit keeps adapters only
        "save_adapter_weights_only": False,
    }
    for path, value in expected.items():
        assert got[path] == (value, "default"), path
    assert got["model.lora_alpha"] == (128, "derived: 2 × lora_rank")
    assert got["dataset.prompt"] == ("{input}\n", "default")  # cruijff_kit's training prompt
    assert got["dataset.system_prompt"] == ("", "default")
    assert got["dataset.train_on_input"][0] is False
    assert "dataset.max_seq_len" not in got  # max_seq_len cuts no row, as in cruijff_kit


def test_a_base_recipe_gives_only_its_nine_values_and_the_experiment_wins(tmp_path):
    result = build_config(tmp_path, controls={"base_recipe": RECIPE, "epochs": 2})
    got = sources(result)
    from_recipe = {path for path, (_, source) in got.items() if source == f"recipe {RECIPE}"}
    assert from_recipe == set(RECIPE_VALUES) - {"epochs"}
    assert got["optimizer.lr"] == (3e-4, f"recipe {RECIPE}")
    assert got["gradient_accumulation_steps"] == (8, f"recipe {RECIPE}")
    assert got["tokenizer.max_seq_len"] == (None, f"recipe {RECIPE}")
    assert got["epochs"] == (2, "controls")
    # everything else stays cruijff_kit's, though the recipe says otherwise
    assert got["seed"] == (14, "default")  # the recipe: null
    assert got["log_every_n_steps"] == (5, "default")  # the recipe: 1
    assert got["model.lora_alpha"] == (128, "derived: 2 × lora_rank")  # the recipe: 128 too
    assert got["model.lora_attn_modules"] == (LORA_DEFAULTS["lora_attn_modules"], "default")
    assert got["lr_scheduler._component_"][1] == "default"
    assert "output_dir" not in from_recipe and "profiler.enabled" not in from_recipe


def test_lora_alpha_is_twice_the_rank_wherever_the_rank_comes_from(tmp_path):
    got = sources(build_config(tmp_path, controls={"lora_rank": 4}))
    assert got["model.lora_alpha"] == (8, "derived: 2 × lora_rank")
    recipe = sources(
        build_config(tmp_path, controls={"base_recipe": "llama3_2/1B_qlora_single_device"})
    )
    assert recipe["model.lora_alpha"][0] == 2 * recipe["model.lora_rank"][0]


def test_an_explicit_lora_alpha_is_kept_with_a_warning(plugin_manager, torchtune, experiment_file):
    checked = check(plugin_manager, experiment_file({"controls": {"lora_alpha": 7}}))
    assert checked.ok
    warning = problems_at(checked)["controls.lora_alpha"]
    assert "cruijff_kit ignores lora_alpha and trains with 2 × lora_rank" in warning.message
    assert warning.where.line is not None


def test_full_and_qlora_recipes_train_their_kind_with_a_warning(
    plugin_manager, torchtune, experiment_file
):
    full = check(
        plugin_manager,
        experiment_file({"controls": {"base_recipe": "llama3_2/1B_full_single_device"}}),
    )
    (warning,) = problems_at(full).values()
    assert "cruijff trains a full fine-tune, where cruijff_kit trains LoRA" in warning.message
    assert "finetune: lora" in warning.hint
    said = experiment_file(
        {"controls": {"base_recipe": "llama3_2/1B_full_single_device", "finetune": "full"}}
    )
    assert not problems_at(check(plugin_manager, said))


def test_text_completion_trains_without_a_system_prompt(plugin_manager, torchtune, experiment_file):
    changes = {"controls": {"dataset_type": "text_completion", "system_prompt": "Be brief."}}
    path = experiment_file(changes)
    checked = check(plugin_manager, path)
    assert "has no system prompt" in problems_at(checked)["controls.system_prompt"].message
    config = finetune_yaml(design(plugin_manager, path), "rank4.train")
    assert config["dataset"]["dataset_type"] == "text_completion"
    assert "system_prompt" not in config["dataset"]


def test_a_run_that_ends_before_its_warmup_is_a_warning(plugin_manager, torchtune, experiment_file):
    path = experiment_file({"controls": {"num_warmup_steps": None, "epochs": 2}})
    (warning,) = problems_at(check(plugin_manager, path)).values()  # the grid's runs: one
    assert warning.where.path == "controls"
    assert warning.message == (
        "4 optimizer steps, no more than num_warmup_steps 100: the learning rate is still "
        "warming up when training ends"
    )
    short = experiment_file({"controls": {"num_warmup_steps": 3, "epochs": 2}})
    assert not problems_at(check(plugin_manager, short))
    # warming up for every step trains at no step at the full learning rate either
    equal = experiment_file({"controls": {"num_warmup_steps": 4, "epochs": 2}})
    assert "controls.num_warmup_steps" in problems_at(check(plugin_manager, equal))


# --- bad values: file:line and a hint -------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "dataset_type",
            "chat",
            "dataset_type must be one of chat_completion, text_completion, not 'chat'",
        ),
        ("validation_during_training", "yes", "must be true or false, not 'yes'"),
        ("run_val_every_n_steps", -1, "run_val_every_n_steps must be at least 0"),
        ("batch_size_val", 0, "batch_size_val must be at least 1"),
        ("save_adapter_weights_only", 1, "must be true or false, not 1"),
        ("lr_scheduler", "cosine", "lr_scheduler must be one of get_cosine_schedule_with_warmup"),
        ("packed", True, "packed must be one of false, not true"),
        ("time", "soon", "time must be minutes or a SLURM time"),
        ("mem", "lots", "mem must be MB or a size like '16G'"),
        ("num_warmup_steps", -5, "num_warmup_steps must be at least 0"),
        ("seed", 10**27, "seed must be at most 2,147,483,647"),  # torchtune's would fail the job
        ("lora_rank", 10**9, "lora_rank must be at most 65,536"),
        ("max_seq_len", 10**9, "max_seq_len must be at most 10,000,000"),
        ("lr", float("nan"), "lr must be a finite number, not .nan"),
        ("dtype", "fp8", "dtype must be one of bf16, fp32, fp16, fp64, not 'fp8'"),
    ],
)
def test_a_wrong_value_is_an_error_at_its_line(
    plugin_manager, torchtune, experiment_file, key, value, message
):
    problems = {
        p.where.path: p
        for p in check(plugin_manager, experiment_file({"controls": {key: value}})).errors
    }
    problem = problems[f"controls.{key}"]
    assert message in problem.message and problem.where.line is not None


def test_a_scheduler_torchtune_lacks_is_an_error(plugin_manager, torchtune, experiment_file):
    path = experiment_file({"controls": {"lr_scheduler": "get_linear_schedule_with_warmup"}})
    (problem,) = check(plugin_manager, path).errors
    assert problem.message == "the installed torchtune has no get_linear_schedule_with_warmup"
    cosine = experiment_file({"controls": {"lr_scheduler": "get_cosine_schedule_with_warmup"}})
    assert check(plugin_manager, cosine).ok


def test_dataset_type_is_required_for_fine_tuning(plugin_manager, torchtune, experiment_file):
    path = experiment_file()
    document = yaml.safe_load(path.read_text())
    del document["controls"]["dataset_type"]
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    (problem,) = check(plugin_manager, path).errors
    assert problem.where.path == "controls.dataset_type" and problem.where.line
    assert "dataset_type is missing" in problem.message and "chat_completion" in problem.hint


def test_cruijff_kits_other_training_keys_are_accepted(plugin_manager, torchtune, experiment_file):
    controls = {"custom_recipe": "lora_finetune_single_device_nightly", "packed": False}
    checked = check(plugin_manager, experiment_file({"controls": controls}))
    assert checked.ok
    assert "cruijff runs torchtune's" in problems_at(checked)["controls.custom_recipe"].message


# --- the training data ----------------------------------------------------------------------


def write_rows(path: Path, **splits: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = {
        split: [{"input": f"w{i}", "output": f"W{i}"} for i in range(n)]
        for split, n in splits.items()
    }
    path.write_text(json.dumps(rows))
    return path


def test_splits_train_keeps_the_first_rows_and_counts_are_checked(
    plugin_manager, torchtune, experiment_file, tmp_path
):
    # the data file holds 8 train rows, 1 validation and 1 test row
    splits = {"train": 5, "validation": 3, "test": 1}
    training = {"splits": splits, "dataset_label": "words", "size_kb": 1.5}
    path = experiment_file({"data": {"training": training}})
    checked = check(plugin_manager, path)
    assert checked.ok
    warnings = problems_at(checked)
    train = warnings["data.training.splits.train"]
    assert train.message == (
        "words.json has 8 train rows, splits.train says 5: training uses the first 5 "
        "(as cruijff_kit does)"
    )
    assert train.where.line is not None
    assert "words.json has 1 validation rows, splits.validation says 3" in (
        warnings["data.training.splits.validation"].message
    )
    assert "data.training.splits.test" not in warnings
    plan = design(plugin_manager, path)
    config = finetune_yaml(plan, "rank4.train")
    assert config["dataset"]["max_samples"] == 5
    explained = {s.path: s for s in plan.generated["rank4.train"].settings}
    assert explained["dataset.max_samples"].source == "data.training.splits.train"
    files = {spec.path.name: spec.content for spec in plan.generated["rank4.train"].files}
    provenance = json.loads(files["provenance.json"])
    assert provenance["data.label"] == {"value": "words", "source": "data.training.dataset_label"}
    assert provenance["data.size_kb"] == {"value": 1.5, "source": "data.training.size_kb"}
    # the optimizer-step check counts the 5 rows training reads, not the file's 8
    few = experiment_file({"data": {"training": {"splits": splits}}, "controls": {"batch_size": 6}})
    no_step(
        plugin_manager, few, "its 5 training rows make no optimizer step", "controls.batch_size"
    )


def test_a_training_condition_names_its_file(plugin_manager, torchtune, experiment_file, tmp_path):
    runs = [
        {
            "name": "a",
            "model": "tiny",
            "training_condition": "narrative",
            "parameters": {"lr": 1e-4},
        }
    ]
    path = experiment_file({"variables": None, "runs": runs})
    (problem,) = check(plugin_manager, path).errors
    assert problem.where.path == "runs[0].training_condition" and problem.where.line
    assert "no training file of condition 'narrative'" in problem.message
    assert "narrative_train_*.json" in problem.message
    assert "convert-tabular-to-text" in problem.hint
    data = tmp_path / "data"
    write_rows(data / "narrative_train_0a1b2c3d.json", train=4, validation=2)
    plan = design(plugin_manager, path)
    config = finetune_yaml(plan, "a.train")
    assert config["dataset"]["source"] == str(data / "narrative_train_0a1b2c3d.json")
    assert "max_samples" not in config["dataset"]  # cruijff_kit cuts nothing there
    write_rows(data / "narrative_train_ffffffff.json", train=4)
    (several,) = check(plugin_manager, path).errors
    assert "several training files of condition 'narrative'" in several.message
    assert "narrative_train_0a1b2c3d.json, narrative_train_ffffffff.json" in several.message


def test_a_runs_dataset_path_is_its_training_file(
    plugin_manager, torchtune, experiment_file, tmp_path
):
    write_rows(tmp_path / "other.json", train=6)
    runs = [
        {"name": "a", "model": "tiny", "parameters": {"dataset_path": "other.json"}},
        {"name": "b", "model": "tiny", "parameters": {"dataset_path": "missing.json"}},
    ]
    path = experiment_file({"variables": None, "runs": runs})
    (problem,) = check(plugin_manager, path).errors
    assert problem.where.path == "runs[1].parameters.dataset_path"
    assert "does not exist" in problem.message
    runs.pop()
    plan = design(plugin_manager, experiment_file({"variables": None, "runs": runs}))
    assert finetune_yaml(plan, "a.train")["dataset"]["source"] == str(tmp_path / "other.json")


class Generator:
    """A fake data-generation tool: one unit that writes data/words.json with 8 train rows."""

    TOOL = Tool(name="gen", role=Role.GENERATION, produces=(ArtifactKind.DATASET,))

    def __init__(self, root: Path, train: int = 8) -> None:
        self.root, self.train = root, train

    from cruijff.hookspecs import hookimpl

    @hookimpl
    def cruijff_tools(self):
        yield self.TOOL

    @hookimpl
    def cruijff_parse(self, experiment, keys):
        if "gen" not in experiment.tools.values():
            return None
        return ParseReport(claimed={k.path for k in keys if k.section == "generation"})

    @hookimpl
    def cruijff_generate(self, experiment, unit):
        if unit.tool != "gen":
            return None
        job = JobSpec(
            unit_id=unit.id,
            name=unit.id,
            argv=("true",),
            workdir=unit.directory,
            log=unit.directory / "log",
            produces=unit.produces,
        )
        return Generated(job=job)

    @hookimpl
    def cruijff_select(self, experiment, tool, upstream):
        if tool.name != "gen":
            return None
        dataset = Artifact(
            kind=ArtifactKind.DATASET,
            path=experiment.data.path,
            splits={"train": self.train, "validation": 2},
        )
        return (
            Unit(
                id="data.generate",
                tool="gen",
                kind="generate",
                run="data",
                directory=self.root / "gen",
                produces=(dataset,),
            ),
        )


def test_a_generated_training_file_makes_training_wait_for_it(
    plugin_manager, torchtune, register_plugin, experiment_file, tmp_path
):
    register_plugin(Generator(tmp_path), name="gen")
    changes = {
        "data": {
            "training": {"path": "data/generated.json", "splits": {"train": 8}},
            "data_generation": {"tool": "gen", "N": 10},
        }
    }
    path = experiment_file(changes)
    assert not (tmp_path / "data" / "generated.json").exists()  # not made yet, and no error
    checked = check(plugin_manager, path)
    assert checked.ok, checked.problems
    plan = design(plugin_manager, path)
    unit = next(u for u in plan.units if u.id == "rank4.train")
    assert unit.depends_on == ("data.generate",)
    assert [a.kind for a in unit.consumes] == [ArtifactKind.DATASET]
    assert plan.generated[unit.id].job.depends_on == ("data.generate",)
    # rows come from what the generator declares: 8 rows in batches of 9 make no step
    few = experiment_file({**changes, "controls": {"batch_size": 9}})
    no_step(
        plugin_manager, few, "its 8 training rows make no optimizer step", "controls.batch_size"
    )


# --- what the job asks of the machine -------------------------------------------------------


@pytest.fixture
def gpu_scheduler(gpu_scheduler_with):
    """A scheduler whose jobs get GPUs (it runs nothing)."""
    return gpu_scheduler_with()


def test_a_runs_compute_block_sets_its_resources_with_their_source(
    plugin_manager, torchtune, gpu_scheduler, experiment_file
):
    runs = [
        {
            "name": "big",
            "model": "tiny",
            "parameters": {"lr": 1e-4},
            "compute": {"time": "1:30:00", "gpus": 2, "mem": "80G", "cpus_per_task": 8},
        },
        {"name": "small", "model": "tiny", "parameters": {"lr": 1e-4}},
    ]
    changes = {"variables": None, "runs": runs, "scheduler": {"name": "gpus"}}
    changes["controls"] = {"partition": "gpu", "time": 30}
    plan = design(plugin_manager, experiment_file(changes))
    big = plan.generated["big.train"]
    assert big.job.resources.gpus == 2 and big.job.resources.mem_mb == 80 * 1024
    assert big.job.resources.time_s == 5400 and big.job.resources.cpus == 8
    assert big.job.resources.extras == {"partition": "gpu"}
    explained = {s.path: s.source for s in big.settings}
    assert explained["resources.gpus"] == "runs[0].compute"
    assert explained["resources.time_s"] == "runs[0].compute"
    assert explained["resources.partition"] == "controls"
    assert "--nproc" in big.job.argv and big.job.argv[big.job.argv.index("--nproc") + 1] == "2"
    recipe = big.job.argv[big.job.argv.index("--recipe") + 1]
    assert recipe == "lora_finetune_distributed"  # gpus > 1
    small = plan.generated["small.train"]
    assert small.job.resources.gpus == 1 and small.job.resources.time_s == 1800
    assert {s.path: s.source for s in small.settings}["resources.time_s"] == "controls"


def test_gpus_asked_of_a_scheduler_without_them_are_a_warning(
    plugin_manager, torchtune, experiment_file
):
    runs = [{"name": "a", "model": "tiny", "parameters": {"lr": 1e-4}, "compute": {"gpus": 2}}]
    path = experiment_file({"variables": None, "runs": runs})
    checked = check(plugin_manager, path)
    assert checked.ok
    assert "trains on the CPU" in problems_at(checked)["runs[0].compute.gpus"].message
    job = design(plugin_manager, path).generated["a.train"].job
    assert job.resources.gpus == 0


# --- checkpoints ----------------------------------------------------------------------------


def test_adapters_only_produce_adapters_and_validate_on_them(
    plugin_manager, torchtune, experiment_file, tmp_path
):
    path = experiment_file({"controls": {"save_adapter_weights_only": True, "epochs": 1}})
    plan = design(plugin_manager, path)
    unit = next(u for u in plan.units if u.id == "rank4.train")
    assert [(a.kind, a.epoch) for a in unit.produces] == [
        ("lora-adapter", 0),
        ("train-metrics", None),
    ]
    adapter = outputs.adapter_dir(unit.directory, 0)
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(
        (2).to_bytes(8, "little") + b"{}"  # an empty, whole safetensors file
    )
    (unit.directory / outputs.METRICS).write_text("step,epoch,loss\n1,0,2.5\n")
    verdict = validate(unit, None)
    assert verdict.ok and verdict.metrics["epochs"] == 1
    full = experiment_file({"controls": {"save_adapter_weights_only": True, "finetune": "full"}})
    (problem,) = check(plugin_manager, full).errors
    assert "a full fine-tune has no adapter to keep alone" in problem.message


def test_adapters_point_at_the_local_base_model(tmp_path):
    epoch = tmp_path / "epoch_0"
    epoch.mkdir()
    (epoch / "adapter_config.json").write_text(json.dumps({"r": 8, "peft_type": "LORA"}))
    (epoch / "adapter_model.safetensors").write_bytes(b"x")
    outputs.separate_adapters(tmp_path, Path("/models/base"))
    moved = outputs.adapter_dir(tmp_path, 0)
    assert not (epoch / "adapter_config.json").exists()
    settings = json.loads((moved / "adapter_config.json").read_text())
    assert settings == {
        "r": 8,
        "peft_type": "LORA",
        "base_model_name_or_path": "/models/base",
        "task_type": "CAUSAL_LM",
    }


# --- validation settings --------------------------------------------------------------------


def test_validation_during_training_uses_the_validating_recipe(
    plugin_manager, torchtune, experiment_file
):
    changes = {"controls": {"validation_during_training": True, "batch_size_val": 2}}
    path = experiment_file(changes)
    assert check(plugin_manager, path).ok
    plan = design(plugin_manager, path)
    config = finetune_yaml(plan, "rank4.train")
    assert config["run_val_every_n_steps"] == 50 and config["batch_size_val"] == 2
    assert config["dataset_val"] == {**config["dataset"], "split": "validation"}
    job = plan.generated["rank4.train"].job
    assert job.argv[job.argv.index("--recipe") + 1] == (
        "cruijff_torchtune/validating/lora_single_device.py"
    )
    full = design(
        plugin_manager, experiment_file(merge(changes, {"controls": {"finetune": "full"}}))
    )
    job = full.generated["rank4.train"].job
    assert job.argv[job.argv.index("--recipe") + 1].endswith("validating/full_single_device.py")


def test_validation_is_over_every_row_and_says_where_cruijff_kit_drops_some(
    plugin_manager, torchtune, experiment_file, tmp_path
):
    changes = {"controls": {"validation_during_training": True, "batch_size": 2}}
    path = experiment_file(changes)
    write_rows(tmp_path / "data" / "words.json", train=8, validation=5)
    checked = check(plugin_manager, path)
    (warning,) = problems_at(checked).values()
    assert warning.message == (
        "words.json: the validation loss is over all 5 validation rows; cruijff_kit's "
        "validation loss leaves out the last partial batch (1 left over from batches of 2)"
    )
    write_rows(tmp_path / "data" / "words.json", train=8)
    (problem,) = check(plugin_manager, path).errors
    assert "has no 'validation' split" in problem.message


def test_validation_keys_without_validation_change_nothing_and_say_so(
    plugin_manager, torchtune, experiment_file
):
    checked = check(plugin_manager, experiment_file({"controls": {"run_val_every_n_steps": 10}}))
    assert "changes nothing without validation_during_training: true" in (
        problems_at(checked)["controls.run_val_every_n_steps"].message
    )
    off = {"controls": {"validation_during_training": True, "run_val_every_n_steps": 0}}
    checked = check(plugin_manager, experiment_file(off))
    assert (
        "turns the validation loss off"
        in problems_at(checked)["controls.run_val_every_n_steps"].message
    )
    config = finetune_yaml(design(plugin_manager, experiment_file(off)), "rank4.train")
    assert "dataset_val" not in config


# --- metrics --------------------------------------------------------------------------------


def test_the_validation_loss_shares_its_steps_row(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "log_1000.txt").write_text(
        "Step 1 | loss:3.0 lr:0.1 \nStep 2 | loss:2.5 lr:0.1 \nStep 2 | val_loss:2.75 \n"
        "Step 3 | val_loss:2.25 \n"
    )
    outputs.write_metrics(tmp_path, steps_per_epoch=3)
    rows = outputs.read_metrics(tmp_path)
    assert list(rows[0]) == ["step", "epoch", "loss", "lr", "val_loss"]
    assert [(r["step"], r["loss"], r["val_loss"]) for r in rows] == [
        ("1", "3.0", ""),
        ("2", "2.5", "2.75"),
        ("3", "", "2.25"),  # the epoch's end, where nothing else was logged
    ]


def test_a_resumed_run_that_logs_every_5_steps_is_numbered_from_the_start(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "log_1000.txt").write_text("Step 5 | loss:2.0 \nStep 10 | loss:1.5 \n")
    outputs.record_resume(tmp_path, 0, renumbered=True)  # LoRA single-device: from 1 again
    resumed = logs / "log_9999999999.txt"
    resumed.write_text("Step 5 | loss:1.0 \n")
    steps = [row["step"] for row in outputs.read_steps(logs, steps_per_epoch=10)]
    assert steps == [5, 10, 15]


# --- the GPUs a job gets, and what each of them trains on ---------------------------------

LLAMA_70B = {
    **LLAMA,
    "vocab_size": 128256,
    "hidden_size": 8192,
    "intermediate_size": 28672,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "tie_word_embeddings": False,
}
"""Llama-3.3-70B's shape (its config.json's sizes; no weights: planning reads none)."""


def test_a_70b_model_gets_four_gpus_as_in_cruijff_kit(
    plugin_manager, torchtune, gpu_scheduler, experiment_file, tmp_path
):
    # cruijff_kit's MODEL_CONFIGS: 1 GPU up to 8B, 4 for Llama-3.3-70B-Instruct
    changes = {"variables": None, "scheduler": {"name": "gpus"}}
    changes["runs"] = [{"name": "big", "model": "tiny", "parameters": {"lr": 1e-4}}]
    changes["controls"] = {"batch_size": 1}  # 8 rows over 4 GPUs: 2 steps on each
    path = experiment_file(changes)
    model_folder(tmp_path / "models", LLAMA_70B, "tiny")
    plan = design(plugin_manager, path)
    job = plan.generated["big.train"].job
    assert job.resources.gpus == 4
    assert job.argv[job.argv.index("--nproc") + 1] == "4"
    assert job.argv[job.argv.index("--recipe") + 1] == "lora_finetune_distributed"
    explained = {s.path: s.source for s in plan.generated["big.train"].settings}
    assert explained["resources.gpus"] == "model size"
    # asked for: what is asked wins; a scheduler without GPUs gives none
    asked = experiment_file({**changes, "controls": {"batch_size": 1, "gpus": 2}})
    model_folder(tmp_path / "models", LLAMA_70B, "tiny")
    assert design(plugin_manager, asked).generated["big.train"].job.resources.gpus == 2
    local = experiment_file({**changes, "scheduler": None})
    model_folder(tmp_path / "models", LLAMA_70B, "tiny")
    assert design(plugin_manager, local).generated["big.train"].job.resources.gpus == 0
    # the small model: one GPU
    small = experiment_file(changes)
    assert design(plugin_manager, small).generated["big.train"].job.resources.gpus == 1


def test_each_gpu_trains_on_its_share_of_the_rows(
    plugin_manager, torchtune, gpu_scheduler, experiment_file
):
    # torchtune's DistributedSampler gives each of N processes ceil(rows / N) rows
    runs = [{"name": "a", "model": "tiny", "parameters": {"lr": 1e-4}}]
    changes = {"variables": None, "runs": runs, "scheduler": {"name": "gpus"}}
    # 8 rows, batch 4: two steps on one GPU, one on each of two, none on three (3 rows each)
    assert design(plugin_manager, experiment_file({**changes, "controls": {"gpus": 2}}))
    three = experiment_file({**changes, "controls": {"gpus": 3}})
    no_step(
        plugin_manager,
        three,
        r"its 8 training rows \(3 on each of 3 GPUs\) make no",
        "data.training",
    )
    # the warmup warning counts the steps each GPU makes: 2 epochs of 8 on one GPU, of 4 on
    # each of two
    controls = {"batch_size": 1, "num_warmup_steps": 10}
    one = check(plugin_manager, experiment_file({**changes, "controls": controls}))
    assert "controls.num_warmup_steps" not in problems_at(one)
    two = check(plugin_manager, experiment_file({**changes, "controls": {**controls, "gpus": 2}}))
    warned = problems_at(two)["controls.num_warmup_steps"]
    assert warned.message.startswith("8 optimizer steps, no more than num_warmup_steps 10")


# --- dataset_type: never guessed, said once -------------------------------------------------


@pytest.fixture
def with_inspect(plugin_manager, register_plugin, torchtune):
    from cruijff_inspect import plugin as inspect_plugin

    register_plugin(inspect_plugin, name="inspect")
    return plugin_manager


def evaluated(runs, matrix, controls=None):
    """Changes for torchtune and inspect-ai, evaluating ``matrix`` of ``runs``."""
    from inspect_helpers import TASKS

    return {
        "tools": {"preparation": "torchtune", "evaluation": "inspect-ai"},
        "variables": None,
        "runs": runs,
        "controls": {"num_warmup_steps": 0, "dataset_type": None, **(controls or {})},
        "evaluation": {
            "tasks": [{"name": "capitalization", "script": str(TASKS)}],
            "matrix": matrix,
        },
    }


TUNED = {"name": "tuned", "model": "tiny", "parameters": {"lr": 1e-4}}
BASE = {"name": "base", "type": "control", "model": "tiny", "parameters": {}}


def dataset_type_errors(manager, path):
    return [
        p
        for p in check(manager, path).errors
        if "dataset_type" in p.message or "dataset_type" in p.where.path
    ]


def test_a_fine_tuned_run_the_evaluation_leaves_out_still_needs_a_dataset_type(
    with_inspect, experiment_file
):
    # the control has its own; the fine-tuned run, which no matrix entry evaluates, has none:
    # it must not train with a guessed format
    base = {**BASE, "parameters": {"dataset_type": "chat_completion"}}
    path = experiment_file(evaluated([TUNED, base], [{"run": "base", "epochs": None}]))
    (problem,) = dataset_type_errors(with_inspect, path)
    assert problem.plugin == "torchtune" and problem.where.path == "controls.dataset_type"
    assert "dataset_type is missing" in problem.message


def test_a_missing_dataset_type_is_one_error_whoever_reports_it(with_inspect, experiment_file):
    # fine-tuned and control runs, all evaluated: torchtune's error alone
    matrix = [{"run": "tuned"}, {"run": "base", "epochs": None}]
    path = experiment_file(evaluated([TUNED, BASE], matrix))
    (problem,) = dataset_type_errors(with_inspect, path)
    assert problem.plugin == "torchtune"
    # nothing fine-tuned: the evaluator's
    path = experiment_file(evaluated([BASE], [{"run": "base", "epochs": None}]))
    (problem,) = dataset_type_errors(with_inspect, path)
    assert problem.plugin == "inspect" and problem.where.path == "controls.dataset_type"
    assert problem.message.startswith("dataset_type is required to evaluate")
    # the fine-tuned run has one, the control none: the evaluator says it of the control
    tuned = {**TUNED, "parameters": {"lr": 1e-4, "dataset_type": "chat_completion"}}
    path = experiment_file(evaluated([tuned, BASE], matrix))
    (problem,) = dataset_type_errors(with_inspect, path)
    assert problem.plugin == "inspect" and "(runs without one: base)" in problem.message


def test_the_config_builder_never_guesses_a_dataset_type(tmp_path):
    from cruijff.errors import UserError

    model = read_model(model_folder(tmp_path, LLAMA))
    with pytest.raises(UserError, match="run 'r' has no dataset_type"):
        build(
            run_name="r",
            output_dir=tmp_path / "out",
            model=model,
            data=tmp_path / "data.json",
            controls={},
            run={},
            gpus=0,
        )
