"""The TRL plugin without training: parameters and their meaning (the torchtune tool's), precedence
and provenance, what only torchtune has, TRL's and PEFT's fields checked without importing them,
the generated files and job, and retries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_torchtune_config import LLAMA, model_folder

from cruijff.design import check, design
from cruijff.records import JobState, JobStatus
from cruijff.testing import merge
from cruijff_trl import plugin as trl_plugin
from cruijff_trl.config import build
from cruijff_trl.models import read_model
from cruijff_trl.retry import smaller_batch


@pytest.fixture
def trl(plugin_manager, register_plugin):
    return register_plugin(trl_plugin, name="trl")


@pytest.fixture
def experiment_file(make_experiment, tmp_path):
    def make(changes=None):
        base = {
            "tools": {"preparation": "trl", "evaluation": None},
            "evaluation": None,
            "controls": {"dataset_type": "chat_completion"},
        }
        path = make_experiment(merge(base, changes or {}))
        model_folder(tmp_path / "models", LLAMA, "tiny")
        return path

    return make


def build_config(tmp_path, controls=None, run=None, gpus=0):
    return build(
        run_name="r",
        output_dir=tmp_path / "out",
        model=tmp_path / "model",
        data=tmp_path / "data.json",
        controls={"dataset_type": "chat_completion", **(controls or {})},
        run=run or {},
        gpus=gpus,
    )


def sources(result):
    return {path: (value, source) for path, value, source in result.sourced}


# --- names, meanings and precedence --------------------------------------------------------


def test_the_torchtune_names_set_trl_and_peft_fields_with_their_sources(tmp_path):
    result = build_config(
        tmp_path,
        controls={"lr": 1e-3, "epochs": 3, "batch_size": 8, "clip_grad_norm": None},
        run={"lr": 5e-4, "lora_rank": 4, "lr_scheduler": "get_linear_schedule_with_warmup"},
    )
    got = sources(result)
    assert got["sft.learning_rate"] == (5e-4, "run")
    assert got["sft.num_train_epochs"] == (3, "controls")
    assert got["sft.per_device_train_batch_size"] == (8, "controls")
    assert got["sft.weight_decay"] == (0.01, "default")
    assert got["sft.lr_scheduler_type"] == ("linear", "run")
    assert got["sft.max_grad_norm"] == (0.0, "controls")  # null: no clipping, as in torchtune
    assert got["peft.r"] == (4, "run")
    assert got["peft.lora_alpha"] == (8, "derived: 2 × lora_rank")
    assert got["sft.bf16"] == (False, "experiment") and got["sft.use_cpu"][0] is True
    # what makes TRL train as torchtune does: no cut rows, no partial batch, no checkpointing
    assert got["sft.max_length"] == (None, "default")
    assert got["sft.dataloader_drop_last"] == (True, "default")
    assert got["sft.activation_checkpointing"] == (False, "default")
    # the torchtune tool's LoRA layers, in a transformers model's names
    assert got["peft.target_modules"][0] == [
        "q_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    ]
    assert result.config["sft"]["learning_rate"] == 5e-4  # the file says what the table says
    on_gpu = sources(build_config(tmp_path, gpus=1))
    assert on_gpu["sft.bf16"] == (True, "experiment") and on_gpu["sft.use_cpu"][0] is False


def test_lora_targets_in_torchtunes_words_and_dotted_fields_as_they_are(tmp_path):
    got = sources(
        build_config(
            tmp_path,
            controls={"lora_attn_modules": ["q_proj", "k_proj"], "apply_lora_to_mlp": False},
            run={"apply_lora_to_output": True, "sft.adam_beta2": 0.95, "lora_alpha": 3},
        )
    )
    assert got["peft.target_modules"] == (["q_proj", "k_proj", "lm_head"], "run")
    assert got["sft.adam_beta2"] == (0.95, "run")
    assert got["peft.lora_alpha"] == (3, "run")  # set: kept as written
    later = sources(build_config(tmp_path, run={"peft.target_modules": ["v_proj"]}))
    assert later["peft.target_modules"] == (["v_proj"], "run")


def test_a_full_fine_tune_has_no_adapter_and_validation_adds_its_batch(tmp_path):
    full = build_config(tmp_path, controls={"finetune": "full", "lora_rank": 8})
    assert "peft" not in full.config and not full.lora
    validating = sources(
        build_config(tmp_path, controls={"validation_during_training": True, "batch_size": 2})
    )
    assert validating["train.validate_every"] == (50, "default (validation_during_training)")
    assert validating["sft.per_device_eval_batch_size"] == (2, "derived: batch_size")
    off = sources(build_config(tmp_path, controls={"run_val_every_n_steps": 5}))
    assert "train.validate_every" not in off and "sft.per_device_eval_batch_size" not in off


def test_the_field_lists_are_trls_and_pefts(tmp_path):
    """Validation reads static lists; they must be the pinned versions' fields."""
    pytest.importorskip("trl")
    script = (
        "import dataclasses, json; from trl import SFTConfig; from peft import LoraConfig; "
        "print(json.dumps([sorted(f.name for f in dataclasses.fields(c) if f.init) "
        "for c in (SFTConfig, LoraConfig)]))"
    )
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    sft, lora = json.loads(found.stdout.strip().splitlines()[-1])
    from cruijff_trl.fields import LORA_FIELDS, SFT_FIELDS

    assert sorted(SFT_FIELDS) == sft and sorted(LORA_FIELDS) == lora
    # and every default the plugin sets is one of them
    made = build_config(tmp_path).config
    assert set(made["sft"]) <= SFT_FIELDS and set(made["peft"]) <= LORA_FIELDS


# --- through the core ------------------------------------------------------------------------


def errors(manager, path):
    return {p.where.path: p for p in check(manager, path).errors}


def test_torchtunes_own_keys_name_what_to_write_for_trl(plugin_manager, trl, experiment_file):
    path = experiment_file(
        {
            "controls": {
                "base_recipe": "llama3_2/1B_lora_single_device",
                "packed": False,
                "model.lora_rank": 8,
                "optimizer.lr": 1e-4,
                "sft.learnin_rate": 1e-4,
                "peft.rank": 4,
                "sft.output_dir": "elsewhere",
                "trainer.lr": 1,
                "epochs": "two",
            }
        }
    )
    found = errors(plugin_manager, path)
    assert "TRL has no recipes" in found["controls.base_recipe"].hint
    assert "sft.packing" in found["controls.packed"].hint
    assert found["controls.model.lora_rank"].hint == "write lora_rank (peft.r)"
    assert found["controls.optimizer.lr"].hint == "write lr (sft.learning_rate)"
    assert found["controls.sft.learnin_rate"].message == "SFTConfig has no field 'learnin_rate'"
    assert "did you mean learning_rate" in found["controls.sft.learnin_rate"].hint
    assert found["controls.peft.rank"].message == "LoraConfig has no field 'rank'"
    assert "set by cruijff" in found["controls.sft.output_dir"].message
    assert "sft.FIELD or peft.FIELD" in found["controls.trainer.lr"].message
    assert found["controls.epochs"].message == "epochs must be an integer, not 'two'"
    assert all(p.where.line for p in found.values())
    # an unknown plain name gets the core's suggestion from the plugin's vocabulary
    typo = errors(plugin_manager, experiment_file({"controls": {"lora_rnk": 8}}))
    assert "did you mean lora_rank" in typo["controls.lora_rnk"].hint
    assert check(plugin_manager, experiment_file()).ok


def test_qlora_needs_a_gpu(plugin_manager, trl, experiment_file, gpu_scheduler_with):
    path = experiment_file({"controls": {"model.quantize_base": True}})
    (problem,) = errors(plugin_manager, path).values()
    assert "QLoRA" in problem.message and "needs a CUDA GPU" in problem.message
    gpus = gpu_scheduler_with()
    on_gpus = experiment_file(
        {"controls": {"model.quantize_base": True}, "scheduler": {"name": gpus}}
    )
    checked = check(plugin_manager, on_gpus)
    assert checked.ok, checked.problems
    plan = design(plugin_manager, on_gpus)
    assert plan.units[0].payload.config["train"]["quantize_base"] is True


def test_validating_never_imports_trl_or_torch(experiment_file, tmp_path):
    path = experiment_file()
    script = (
        "import sys; from cruijff.manager import PluginManager; from cruijff.design import check; "
        f"c = check(PluginManager(), __import__('pathlib').Path({str(path)!r})); "
        "assert c.ok, c.problems; "
        "print(sorted(m for m in ('torch', 'trl', 'peft', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_plan_explain_shows_every_value_with_its_source(cli, trl, experiment_file):
    result = cli("plan", experiment_file(), "--explain", "rank4", "--json")
    assert result.exit_code == 0, result.output
    settings = {s["path"]: s for s in json.loads(result.output)["rank4.train"]}
    assert settings["peft.r"]["value"] == 4 and settings["peft.r"]["source"] == "run"
    assert settings["sft.num_train_epochs"]["source"] == "controls"
    assert settings["resources.mem_mb"]["source"] == "model size"


def test_generated_files_and_job(plugin_manager, trl, experiment_file, tmp_path):
    plan = design(plugin_manager, experiment_file({"controls": {"batch_size": 2}}))
    unit = next(u for u in plan.units if u.id == "rank8.train")
    generated = plan.generated[unit.id]
    files = {spec.path.name: spec.content for spec in generated.files}
    config = yaml.safe_load(files["trl_config.yaml"])
    assert config["peft"]["r"] == 8 and config["sft"]["per_device_train_batch_size"] == 2
    assert config["model"] == str(tmp_path / "models" / "tiny")
    assert json.loads(files["provenance.json"])["peft.r"] == {"value": 8, "source": "run"}
    job = generated.job
    assert job.argv[1:4] == ("-m", "cruijff_trl.launch", str(unit.directory / "trl_config.yaml"))
    assert job.argv[-2:] == ("--processes", "1")
    assert job.env["HF_HUB_OFFLINE"] == "1"
    assert job.env["HF_HOME"].startswith(str(plan.experiment.directory))
    # the torchtune tool's artifacts at the same paths: evaluation reads either trainer's runs
    kinds = sorted((str(a.kind), a.epoch, a.path.name) for a in unit.produces)
    assert kinds == [
        ("hf-model", 0, "epoch_0"),
        ("hf-model", 1, "epoch_1"),
        ("lora-adapter", 0, "epoch_0"),
        ("lora-adapter", 1, "epoch_1"),
        ("train-metrics", None, "metrics.csv"),
    ]
    assert unit.payload.steps_per_epoch == 4  # 8 rows, batches of 2
    assert unit.payload.trainable == read_model(tmp_path / "models" / "tiny").lora_parameters(
        8, list(config["peft"]["target_modules"])
    )


def test_several_gpus_start_torchrun(plugin_manager, trl, experiment_file, gpu_scheduler_with):
    gpus = gpu_scheduler_with()
    plan = design(
        plugin_manager, experiment_file({"controls": {"gpus": 2}, "scheduler": {"name": gpus}})
    )
    job = plan.generated["rank4.train"].job
    assert job.argv[-2:] == ("--processes", "2") and job.resources.gpus == 2
    from cruijff_trl import launch

    seen = []
    config = yaml.safe_load(next(iter(plan.generated["rank4.train"].files)).content)
    path = Path(plan.experiment.directory) / "trl_config.yaml"
    path.write_text(yaml.safe_dump(config))
    launch.subprocess.call, real = (
        (lambda command: seen.append(command) or 1),
        launch.subprocess.call,
    )
    try:
        assert launch.main([str(path), "--processes", "2", "sft.seed=3"]) == 1
    finally:
        launch.subprocess.call = real
    (command,) = seen
    assert command[1:8] == [
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "cruijff_trl.train",
    ]
    assert command[8:] == [str(path), "sft.seed=3"]


def test_out_of_memory_halves_the_micro_batch(plugin_manager, trl, experiment_file):
    plan = design(plugin_manager, experiment_file({"controls": {"batch_size": 4}}))
    unit = plan.units[0]
    job = plan.generated[unit.id].job
    failed = JobStatus(state=JobState.OUT_OF_MEMORY, exit_code=137)
    once = smaller_batch(unit, job, failed)
    assert once.argv[-2:] == (
        "sft.per_device_train_batch_size=2",
        "sft.gradient_accumulation_steps=2",
    )
    twice = smaller_batch(unit, once, failed)
    assert twice.argv[-2:] == (
        "sft.per_device_train_batch_size=1",
        "sft.gradient_accumulation_steps=4",
    )
    assert smaller_batch(unit, twice, failed) is None
    assert smaller_batch(unit, job, JobStatus(state=JobState.FAILED, exit_code=1)) is None


def test_a_slurm_script_of_a_multi_gpu_run(plugin_manager, trl, register_plugin, experiment_file):
    """On SLURM the run's job asks for its GPUs and starts one process per GPU (torchrun)."""
    import shlex

    from cruijff_slurm import plugin as slurm_plugin
    from cruijff_slurm.profile import profiles_dir
    from cruijff_slurm.scheduler import SlurmScheduler
    from cruijff_slurm.testing import FakeSlurm

    register_plugin(slurm_plugin, name="slurm")
    profile = profiles_dir() / "default.yaml"
    profile.parent.mkdir(parents=True, exist_ok=True)
    profile.write_text("partition: gpu\ngpu: h100-80gb\ntime: '1:00:00'\n")
    changes = {"controls": {"gpus": 2}, "variables": {"lora_rank": [4]}}
    path = experiment_file({**changes, "scheduler": {"name": "slurm"}})
    plan = design(plugin_manager, path)
    fake_slurm = FakeSlurm()
    scheduler = SlurmScheduler(
        {}, plan.experiment.state_dir, paths=plan.experiment.resolve, commands=fake_slurm
    )
    scheduler.submit(plan.jobs, {})
    (script,) = fake_slurm.scripts
    assert "#SBATCH --gres=gpu:2\n" in script and "#SBATCH --cpus-per-task=8\n" in script
    assert "#SBATCH --partition=gpu\n" in script
    (command,) = [line for line in script.splitlines() if "cruijff_trl.launch" in line]
    words = shlex.split(command)
    assert words[words.index("--processes") + 1] == "2"
    assert "export HF_HUB_OFFLINE=1\n" in script  # never the Hub, from a cluster's node
    checked = subprocess.run(["bash", "-n"], input=script, text=True)
    assert checked.returncode == 0


def test_failure_causes_come_from_the_log(tmp_path):
    from cruijff_trl.validate import failure_cause

    log = tmp_path / "train.log"
    log.write_text("Step 1 | loss:1.0\ntorch.OutOfMemoryError: CUDA out of memory. Tried...\n")
    assert failure_cause(log, 1) == "out of memory"
    log.write_text("Traceback (most recent call last):\nValueError: bad dataset row 3\n")
    assert failure_cause(log, 1) == "exit code 1: ValueError: bad dataset row 3"
    assert failure_cause(tmp_path / "none.log", None) == "no output"


def test_a_time_limit_gets_twice_the_time_and_the_job_resumes(plugin_manager, trl, experiment_file):
    """After a time limit the core's policy doubles the limit; the job itself resumes from its
    last checkpoint (tests/test_trl_train.py), so nothing trained is trained again."""
    plan = design(plugin_manager, experiment_file())
    unit = plan.units[0]
    job = plan.generated[unit.id].job
    retried = plugin_manager.retry(
        plan.experiment, unit, job, JobStatus(state=JobState.TIMEOUT, exit_code=None)
    )
    assert retried.resources.time_s == 2 * job.resources.time_s
    assert retried.argv == job.argv
    smaller = plugin_manager.retry(
        plan.experiment, unit, job, JobStatus(state=JobState.OUT_OF_MEMORY, exit_code=137)
    )
    assert smaller.argv[-1] == "sft.gradient_accumulation_steps=2"
