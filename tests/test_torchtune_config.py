"""The torchtune plugin without torch: parameters, precedence and provenance, model detection,
recipes, generated files, validation and retries."""

from __future__ import annotations

import ast
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cruijff.design import check, design
from cruijff.records import JobSpec, JobState, JobStatus, Resources, Unit, thaw
from cruijff.testing import merge
from cruijff_torchtune import plugin as torchtune_plugin
from cruijff_torchtune.config import Shared, build
from cruijff_torchtune.models import ModelError, read_model, training_resources
from cruijff_torchtune.params import expand
from cruijff_torchtune.recipes import find_config, recipes, torchtune_folder
from cruijff_torchtune.resolve import quantizes_base
from cruijff_torchtune.units import TrainingPlan
from cruijff_torchtune.validate import failure_cause

LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "vocab_size": 1000,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
    "rope_theta": 100000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
}


CPU_LORA = "cruijff_torchtune/validating/lora_single_device.py"


def model_folder(root: Path, config: dict, name: str = "m") -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes(b"")
    return folder


@pytest.fixture
def torchtune(plugin_manager, register_plugin):
    return register_plugin(torchtune_plugin, name="torchtune")


@pytest.fixture
def experiment_file(make_experiment, tmp_path):
    def make(changes=None):
        base = {
            "tools": {"preparation": "torchtune", "evaluation": None},
            "evaluation": None,
            "controls": {"dataset_type": "chat_completion"},  # required, as in cruijff_kit
        }
        path = make_experiment(merge(base, changes or {}))
        model_folder(tmp_path / "models", LLAMA, "tiny")  # a real config.json
        return path

    return make


# --- names and precedence ------------------------------------------------------------------


def test_friendly_names_map_to_config_paths():
    assert expand("lr", 1e-4) == {"optimizer": {"lr": 1e-4}}
    assert expand("lora_rank", 8) == {"model": {"lora_rank": 8}}
    assert expand("max_seq_len", 64) == {"tokenizer": {"max_seq_len": 64}}
    assert expand("optimizer.fused", False) == {"optimizer": {"fused": False}}


def build_config(tmp_path, controls=None, run=None, gpus=0, **more):
    model = read_model(model_folder(tmp_path, LLAMA))
    return build(
        run_name="r",
        output_dir=tmp_path / "out",
        model=model,
        data=tmp_path / "data.json",
        controls={"dataset_type": "chat_completion", **(controls or {})},
        run=run or {},
        gpus=gpus,
        **more,
    )


def sources(result):
    return {path: (value, source) for path, value, source in result.settings}


def test_defaults_controls_run_precedence_with_sources(tmp_path):
    result = build_config(
        tmp_path,
        controls={"lr": 1e-3, "epochs": 3, "batch_size": 8},
        run={"lr": 5e-4, "lora_rank": 4},
    )
    got = sources(result)
    assert got["optimizer.lr"] == (5e-4, "run")
    assert got["epochs"] == (3, "controls")
    assert got["batch_size"] == (8, "controls")
    assert got["optimizer.weight_decay"] == (0.01, "default")
    assert got["model.lora_rank"] == (4, "run")
    assert got["model.lora_alpha"] == (8, "derived: 2 × lora_rank")
    assert got["model.embed_dim"] == (64, "model")
    assert got["device"] == ("cpu", "experiment") and got["dtype"] == ("fp32", "experiment")
    # LoRA on the CPU: the plugin's recipe, whose checkpoints leave the live weights alone
    assert result.recipe == CPU_LORA
    assert build_config(tmp_path, gpus=1).recipe == "lora_finetune_single_device"


def test_explicit_lora_alpha_is_kept(tmp_path):
    got = sources(build_config(tmp_path, controls={"lora_alpha": 7}, run={"lora_rank": 4}))
    assert got["model.lora_alpha"] == (7, "controls")


def test_dicts_merge_and_scalars_replace(tmp_path):
    result = build_config(
        tmp_path,
        controls={"optimizer": {"weight_decay": 0.1}, "lora_attn_modules": ["q_proj"]},
        run={"optimizer.betas": [0.8, 0.9]},
    )
    optimizer = result.config["optimizer"]
    assert optimizer == {
        "_component_": "torch.optim.AdamW",
        "lr": 1e-4,
        "weight_decay": 0.1,
        "fused": False,  # cruijff_kit's fused AdamW, on the CPU
        "betas": [0.8, 0.9],
    }
    assert result.config["model"]["lora_attn_modules"] == ["q_proj"]
    assert sources(result)["optimizer.betas"] == ([0.8, 0.9], "run")


def test_recipe_values_are_the_base_layer(tmp_path):
    result = build_config(
        tmp_path, controls={"base_recipe": "llama3_2/1B_lora_single_device", "lr": 1e-3}
    )
    got = sources(result)
    assert got["gradient_accumulation_steps"] == (8, "recipe llama3_2/1B_lora_single_device")
    assert got["optimizer.weight_decay"][1] == "recipe llama3_2/1B_lora_single_device"
    assert got["optimizer.lr"] == (1e-3, "controls")
    assert got["model.lora_rank"][1] == "recipe llama3_2/1B_lora_single_device"
    # the recipe's model builder, tokenizer and checkpointer are for another folder
    assert result.config["model"]["_component_"].endswith("lora_llama3_2")
    assert result.config["tokenizer"]["_component_"].startswith("cruijff_torchtune")
    assert result.config["device"] == "cpu"  # the recipe says cuda


def test_a_qlora_recipe_keeps_its_quantized_base_under_the_models_builder(tmp_path):
    qlora = "llama3_2/1B_qlora_single_device"
    result = build_config(tmp_path, controls={"base_recipe": qlora})
    assert result.recipe == CPU_LORA and result.lora
    assert result.config["model"]["_component_"].endswith("lora_llama3_2")
    assert sources(result)["model.quantize_base"] == (True, f"recipe {qlora} (QLoRA)")
    plain = build_config(tmp_path, controls={"base_recipe": "llama3_2/1B_lora_single_device"})
    assert "quantize_base" not in plain.config["model"]
    mine = build_config(tmp_path, controls={"base_recipe": qlora, "model.quantize_base": False})
    assert sources(mine)["model.quantize_base"] == (False, "controls")


ABSENT = object()


def builder_quantizes(model: dict) -> bool:
    """Whether torchtune's builder named by a config's model section quantizes its base, read
    from torchtune's source (importing it would import torch): the section's
    ``quantize_base``, else the builder's default; a builder without one never quantizes."""
    module, _, name = model["_component_"].rpartition(".")
    source = torchtune_folder().parent / (module.replace(".", "/") + ".py")
    tree = ast.parse(source.read_text(encoding="utf-8"))
    function = next(
        node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name
    )
    args = function.args
    defaults = dict(zip([a.arg for a in args.args][::-1], args.defaults[::-1], strict=False))
    defaults.update((a.arg, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True))
    if "quantize_base" not in defaults:
        return False
    # the value reaches the builder as it is, and its LoRA layers test it for truth
    return bool(model.get("quantize_base", ast.literal_eval(defaults["quantize_base"])))


@pytest.mark.parametrize(
    "recipe",
    [
        None,
        "llama3_2/1B_lora_single_device",
        "llama3_2/1B_qlora_single_device",
        "llama3/8B_qdora_single_device",  # a LoRA builder with quantize_base: true
    ],
)
def test_parse_time_quantization_is_what_the_built_config_does(tmp_path, recipe):
    model = read_model(model_folder(tmp_path, LLAMA))
    values = (ABSENT, True, False, None)
    for finetune, in_controls, in_run in itertools.product(
        (ABSENT, "lora", "full"), values, values
    ):
        controls = {"base_recipe": recipe} if recipe else {}
        controls["dataset_type"] = "chat_completion"
        if finetune is not ABSENT:
            controls["finetune"] = finetune
        if in_controls is not ABSENT:
            controls["model.quantize_base"] = in_controls
        run = {} if in_run is ABSENT else {"model.quantize_base": in_run}
        built = build(
            run_name="r",
            output_dir=tmp_path / "out",
            model=model,
            data=tmp_path / "data.json",
            controls=controls,
            run=run,
            gpus=0,
        )
        case = f"controls {controls}, run {run}"
        assert quantizes_base(controls, run) == builder_quantizes(built.config["model"]), case


def test_quantize_base_null_means_no_quantization(tmp_path):
    qlora = {"base_recipe": "llama3_2/1B_qlora_single_device"}
    for controls, run in (
        ({**qlora, "model.quantize_base": None}, {}),
        (qlora, {"model.quantize_base": None}),
    ):
        assert not quantizes_base(controls, run)
        built = build_config(tmp_path, controls=controls, run=run)
        assert built.config["model"]["quantize_base"] is None
        assert not builder_quantizes(built.config["model"])
    assert quantizes_base(qlora, {}) and quantizes_base({}, {"model.quantize_base": True})
    assert not quantizes_base({**qlora, "finetune": "full"}, {})


def test_a_full_recipe_gets_torch_adamw_instead_of_bitsandbytes(tmp_path):
    result = build_config(tmp_path, controls={"base_recipe": "llama3_2/1B_full_single_device"})
    assert result.recipe == "full_finetune_single_device" and not result.lora
    assert result.config["optimizer"]["_component_"] == "torch.optim.AdamW"
    assert isinstance(result.config["optimizer"]["lr"], float)  # 2e-5 in the YAML
    assert result.config["model"]["_component_"].endswith("._component_builders.llama3_2")


def test_several_gpus_choose_the_distributed_recipe(tmp_path):
    result = build_config(tmp_path, run={"finetune": "full"}, gpus=4)
    assert result.recipe == "full_finetune_distributed"
    assert result.config["device"] == "cuda" and result.config["dtype"] == "bf16"


# --- models ----------------------------------------------------------------------------------


def test_llama_with_plain_rope_gets_scale_factor_1(tmp_path):
    spec = read_model(model_folder(tmp_path, LLAMA))
    assert spec.args["scale_factor"] == 1 and spec.args["rope_base"] == 100000.0
    assert spec.model_type == "LLAMA3_2" and spec.args["tie_word_embeddings"] is True
    assert spec.args["num_kv_heads"] == 2 and spec.weights == ("model.safetensors",)


def test_llama3_rope_scaling_and_untied_output(tmp_path):
    config = {
        **LLAMA,
        "tie_word_embeddings": False,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0},
    }
    spec = read_model(model_folder(tmp_path, config))
    assert spec.args["scale_factor"] == 8 and spec.model_type == "LLAMA3"


def test_qwen2_and_mistral(tmp_path):
    qwen = read_model(model_folder(tmp_path, {**LLAMA, "architectures": ["Qwen2ForCausalLM"]}, "q"))
    assert qwen.builder == "torchtune.models.qwen2._component_builders.qwen2"
    assert qwen.model_type == "QWEN2"
    mistral = read_model(
        model_folder(tmp_path, {**LLAMA, "architectures": ["MistralForCausalLM"]}, "mi")
    )
    assert mistral.lora_builder.endswith("lora_mistral") and "scale_factor" not in mistral.args


def test_unsupported_models_say_why(tmp_path):
    with pytest.raises(ModelError, match="GPT2LMHeadModel is not supported"):
        read_model(model_folder(tmp_path, {**LLAMA, "architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(ModelError, match=r"no config\.json"):
        read_model(tmp_path / "empty")
    # a folder without weights is described (plans are sized from config.json alone)
    folder = model_folder(tmp_path, LLAMA, "noweights")
    (folder / "model.safetensors").unlink()
    spec = read_model(folder)
    assert not spec.has_weights and spec.parameters > 0


def test_resources_grow_with_the_model():
    small = training_resources(135_000_000, on_gpu=True)
    big = training_resources(8_000_000_000, on_gpu=True)
    assert small["gpus"] == 1 and big["mem_mb"] > small["mem_mb"]
    assert training_resources(135_000_000, on_gpu=False)["gpus"] == 0


# --- recipes ---------------------------------------------------------------------------------


def test_recipes_are_read_without_importing_torch():
    code = (
        "import sys; from cruijff_torchtune.recipes import recipes; "
        "print(len(recipes()), 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert int(out[0]) > 10 and out[1] == "False"


def test_recipes_command_lists_configs(cli, torchtune):
    result = cli("recipes", "--json")
    assert result.exit_code == 0
    listed = {r["recipe"]: r["configs"] for r in json.loads(result.output)}
    assert "llama3_2/1B_lora_single_device" in listed["lora_finetune_single_device"]
    assert find_config("llama3_2/1B_lora_single_device")[0].name == "lora_finetune_single_device"
    assert len(recipes()) == len(listed)


# --- through the core ------------------------------------------------------------------------


def test_unknown_parameter_and_recipe_get_suggestions(plugin_manager, torchtune, experiment_file):
    path = experiment_file(
        {
            "controls": {
                "lora_rnk": 8,
                "epochs": "two",
                "base_recipe": "llama3_2/1B_lora_single_devise",
            }
        }
    )
    problems = {p.where.path: p for p in check(plugin_manager, path).errors}
    assert "did you mean lora_rank" in problems["controls.lora_rnk"].hint
    assert problems["controls.epochs"].message == "epochs must be an integer, not 'two'"
    assert "llama3_2/1B_lora_single_device" in problems["controls.base_recipe"].hint
    assert problems["controls.epochs"].where.line is not None


def test_without_an_evaluator_torchtune_checks_the_prompt_itself(
    plugin_manager, torchtune, experiment_file
):
    path = experiment_file({"controls": {"prompt": "Capitalize the word"}})
    (problem,) = [
        p for p in check(plugin_manager, path).errors if p.where.path == "controls.prompt"
    ]
    assert problem.message == "the prompt does not contain {input}" and problem.where.line
    assert check(plugin_manager, experiment_file({"controls": {"prompt": "Say {input}"}})).ok


def test_a_wrong_prompt_is_reported_once_with_an_evaluator(
    plugin_manager, torchtune, register_plugin, experiment_file
):
    from inspect_helpers import TASKS

    from cruijff_inspect import plugin as inspect_plugin

    register_plugin(inspect_plugin, name="inspect")
    changes = {
        "tools": {"preparation": "torchtune", "evaluation": "inspect"},
        "evaluation": {"tasks": [{"name": "capitalization", "script": str(TASKS)}]},
        "controls": {"prompt": 3},
    }
    problems = [p for p in check(plugin_manager, experiment_file(changes)).errors]
    assert [p.plugin for p in problems if p.where.path == "controls.prompt"] == ["inspect"]


def test_a_wrong_value_is_shown_as_the_yaml_it_was_written_as(
    plugin_manager, torchtune, experiment_file
):
    deep = {"a": {"b": {"c": list(range(400))}}}
    path = experiment_file({"controls": {"seed": {"value": 14}, "lora_rank": deep}})
    problems = {p.where.path: p for p in check(plugin_manager, path).errors}
    assert problems["controls.seed"].message == "seed must be an integer, not {value: 14}"
    long = problems["controls.lora_rank"].message
    assert long.startswith("lora_rank must be an integer, not {a: {b: {c: [0, 1, 2")
    assert long.endswith("...") and len(long) < 120 and "mappingproxy" not in long


def test_unsupported_architecture_is_a_validation_error(
    plugin_manager, torchtune, experiment_file, tmp_path
):
    path = experiment_file()
    (tmp_path / "models" / "tiny" / "config.json").write_text(
        json.dumps({**LLAMA, "architectures": ["FalconForCausalLM"]})
    )
    problems = check(plugin_manager, path).errors
    assert [p.where.path for p in problems] == ["models.base[0].path"]
    assert "FalconForCausalLM is not supported" in problems[0].message


def test_qlora_on_weights_nf4_cannot_split_is_a_validation_error(
    plugin_manager, torchtune, experiment_file, tmp_path
):
    qlora = {"controls": {"base_recipe": "llama3_2/1B_qlora_single_device"}}
    problems = check(plugin_manager, experiment_file(qlora)).errors
    assert [p.where.path for p in problems] == ["models.base[0].path"]
    assert "attention (64×64), key/value (32×64), MLP (128×64)" in problems[0].message
    assert "LoRA recipe" in problems[0].hint
    # the user turned quantization off, or the run is no QLoRA at all: nothing to say
    off = {"controls": {**qlora["controls"], "model.quantize_base": False}}
    assert check(plugin_manager, experiment_file(off)).ok
    lora = {"controls": {"base_recipe": "llama3_2/1B_lora_single_device"}}
    assert check(plugin_manager, experiment_file(lora)).ok
    # null reaches the builder as None: no quantization, as the built config does (written
    # into the file: make_experiment takes None for "remove the key")
    path = experiment_file(qlora)
    document = yaml.safe_load(path.read_text())
    document["controls"]["model.quantize_base"] = None
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    assert check(plugin_manager, path).ok
    # the runs' own values count too: one run that quantizes is enough for the error
    off_or_null = {**qlora, "variables": {"model.quantize_base": [False, None]}}
    assert check(plugin_manager, experiment_file(off_or_null)).ok
    one_on = {**qlora, "variables": {"model.quantize_base": [None, True]}}
    assert [p.where.path for p in check(plugin_manager, experiment_file(one_on)).errors] == [
        "models.base[0].path"
    ]
    # Llama 3.2 1B's shapes split into NF4 blocks
    path = experiment_file(qlora)
    big = {**LLAMA, "hidden_size": 2048, "intermediate_size": 8192, "num_attention_heads": 32}
    (tmp_path / "models" / "tiny" / "config.json").write_text(json.dumps(big))
    assert check(plugin_manager, path).ok


def test_steps_per_epoch_counts_as_torchtune_does():
    from cruijff_torchtune.outputs import steps_per_epoch

    assert steps_per_epoch(160, 8, 1, None) == 20
    assert steps_per_epoch(23, 4, 1, None) == 5  # the last partial batch is dropped
    assert steps_per_epoch(24, 4, 4, None) == 1  # and the last partial accumulation
    assert steps_per_epoch(24, 4, 8, None) == 0
    assert steps_per_epoch(160, 8, 1, 5) == 5
    # over N GPUs each process reads ceil(rows / N) rows (torchtune's DistributedSampler pads
    # the rows to equal shares), then drops its last partial batch
    assert steps_per_epoch(160, 8, 1, None, 4) == 5
    assert steps_per_epoch(23, 4, 1, None, 2) == 3  # 12 rows each
    assert steps_per_epoch(25, 4, 1, None, 3) == 2  # 9 rows each
    assert steps_per_epoch(8, 4, 1, None, 3) == 0  # 3 rows each
    assert steps_per_epoch(160, 8, 1, 3, 4) == 3
    assert steps_per_epoch(160, 8, 1, None, 0) == 20  # the CPU: one process


def test_the_job_counts_the_steps_of_one_process_of_several(tmp_path):
    from cruijff_torchtune.launch import training_steps

    data = tmp_path / "rows.json"
    data.write_text(json.dumps({"train": [{"input": "a", "output": "A"}] * 23}))
    config = {"dataset": {"source": str(data), "split": "train"}, "batch_size": 4}
    assert training_steps(config) == 5
    assert training_steps(config, 2) == 3


def test_a_run_that_would_make_no_optimizer_step_is_an_error_before_anything_runs(
    cli, torchtune, experiment_file
):
    # the recipe's gradient_accumulation_steps (8) × batch_size 4 > the 8 rows of the data
    recipe = {"base_recipe": "llama3_2/1B_lora_single_device", "batch_size": 4}
    result = cli("validate", experiment_file({"controls": recipe}))
    assert result.exit_code == 1
    assert "run 'rank4' would train nothing: its 8 training rows make no optimizer step" in (
        result.output
    )
    assert "batch_size 4 × gradient_accumulation_steps 8 = 32 rows a step" in result.output
    fixed = {"controls": {**recipe, "gradient_accumulation_steps": 2}}
    assert cli("validate", experiment_file(fixed)).exit_code == 0


def test_generate_writes_a_config_that_runs_as_it_stands(
    plugin_manager, torchtune, experiment_file
):
    plan = design(plugin_manager, experiment_file({"controls": {"epochs": 2, "lr": 1e-3}}))
    unit = next(u for u in plan.units if u.id == "rank8.train")
    generated = plan.generated[unit.id]
    files = {spec.path.name: spec.content for spec in generated.files}
    config = yaml.safe_load(files["finetune.yaml"])
    assert config["output_dir"] == str(unit.directory)
    assert config["model"]["lora_rank"] == 8 and config["optimizer"]["lr"] == 1e-3
    assert f"tune run {CPU_LORA} --config finetune.yaml" in files["finetune.yaml"]
    assert json.loads(files["provenance.json"])["model.lora_rank"] == {"value": 8, "source": "run"}
    job = generated.job
    assert job.argv[1:4] == (
        "-m",
        "cruijff_torchtune.launch",
        str(unit.directory / "finetune.yaml"),
    )
    assert job.env["HF_HUB_OFFLINE"] == "1" and job.resources.gpus == 0
    kinds = [(a.kind, a.epoch) for a in unit.produces]
    assert kinds == [
        ("hf-model", 0),
        ("hf-model", 1),
        ("lora-adapter", 0),
        ("lora-adapter", 1),
        ("train-metrics", None),
    ]
    assert [u.id for u in plan.units] == ["rank4.train", "rank8.train"]  # no job for the base


def test_a_full_fine_tune_that_asks_to_quantize_is_an_error_before_any_job(
    plugin_manager, torchtune, experiment_file
):
    wrong = {"controls": {"finetune": "full", "model.quantize_base": True}}
    (problem,) = check(plugin_manager, experiment_file(wrong)).errors
    assert "is a full fine-tune, which cannot quantize its base model" in problem.message
    assert problem.where.path == "controls" and "finetune: lora" in problem.hint
    off = {"controls": {"finetune": "full", "model.quantize_base": False}}
    assert check(plugin_manager, experiment_file(off)).ok


def test_the_job_is_told_lora_or_full_by_the_plan_not_by_the_recipe_name(
    plugin_manager, torchtune, experiment_file, monkeypatch, tmp_path
):
    from cruijff_torchtune import launch

    for finetune in ("lora", "full"):
        plan = design(plugin_manager, experiment_file({"controls": {"finetune": finetune}}))
        argv = plan.generated["rank8.train"].job.argv
        assert argv[argv.index("--finetune") + 1] == finetune
    # a full fine-tune whose recipe name says lora still resumes as a full one
    seen = []
    monkeypatch.setattr(
        launch, "resume_overrides", lambda out, lora, *rest: seen.append(lora) or []
    )
    monkeypatch.setattr(launch, "run_tune", lambda command, output_dir: 1)
    config = tmp_path / "finetune.yaml"
    (tmp_path / "rows.json").write_text('[{"input": "a", "output": "A"}]')
    config.write_text(
        f"output_dir: {tmp_path}\nepochs: 1\ndataset: {{source: {tmp_path / 'rows.json'}}}\n"
    )
    assert launch.main([str(config), "--recipe", "my_lora_recipe", "--finetune", "full"]) == 1
    assert seen == [False]
    # a retry's overrides follow the options, and reach tune run
    commands = []
    monkeypatch.setattr(
        launch, "run_tune", lambda command, output_dir: commands.append(command) or 1
    )
    retried = [str(config), "--recipe", "r", "--finetune", "lora", "batch_size=2"]
    assert launch.main(retried) == 1
    assert commands[-1][-1] == "batch_size=2"


def test_explain_shows_sources(cli, torchtune, experiment_file):
    result = cli("plan", experiment_file(), "--explain", "rank4", "--json")
    assert result.exit_code == 0, result.output
    settings = {s["path"]: s for s in json.loads(result.output)["rank4.train"]}
    assert settings["model.lora_rank"]["source"] == "run"
    assert settings["epochs"]["source"] == "controls"
    wrong = cli("plan", experiment_file(), "--explain", "rank5")
    assert wrong.exit_code == 1 and "did you mean rank4" in wrong.output


# --- validation and retries ------------------------------------------------------------------


def test_failure_causes_come_from_the_log(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("Step 1 | loss:1.0\ntorch.OutOfMemoryError: CUDA out of memory. Tried...\n")
    assert failure_cause(log, 1) == "out of memory"
    log.write_text("Traceback (most recent call last):\nValueError: bad dataset row 3\n")
    assert failure_cause(log, 1) == "exit code 1: ValueError: bad dataset row 3"


def test_out_of_memory_retry_halves_the_batch(tmp_path):
    plan = TrainingPlan(
        recipe="x",
        lora=True,
        config={"batch_size": 8, "gradient_accumulation_steps": 2},
        settings=(),
        resources=Resources(),
    )
    unit = Unit(
        id="r.train", tool="torchtune", kind="train", run="r", directory=tmp_path, payload=plan
    )
    config = tmp_path / "finetune.yaml"
    job = JobSpec(
        unit_id="r.train",
        name="r",
        workdir=tmp_path,
        log=tmp_path / "l",
        argv=("python", "-m", "cruijff_torchtune.launch", str(config), "--recipe", "x"),
        resources=Resources(),
    )
    retried = torchtune_plugin.cruijff_retry(
        None, unit, job, JobStatus(state=JobState.OUT_OF_MEMORY)
    )
    assert retried.argv[-2:] == ("batch_size=4", "gradient_accumulation_steps=4")
    again = torchtune_plugin.cruijff_retry(
        None, unit, retried, JobStatus(state=JobState.OUT_OF_MEMORY)
    )
    assert again.argv[-2:] == ("batch_size=2", "gradient_accumulation_steps=8")
    assert (
        torchtune_plugin.cruijff_retry(None, unit, job, JobStatus(state=JobState.TIMEOUT)) is None
    )


def test_dotted_error_names_are_found_in_the_log(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("omegaconf.errors.ConfigAttributeError: Missing key optimizer_in_bwd\n")
    assert failure_cause(log, 1).endswith("Missing key optimizer_in_bwd")


def test_the_full_recipe_gets_every_key_it_reads(tmp_path):
    result = build_config(tmp_path, run={"finetune": "full"})
    assert result.recipe == "full_finetune_single_device"
    assert result.config["optimizer_in_bwd"] is False


def test_logs_of_a_resumed_run_are_numbered_from_the_start(tmp_path):
    from cruijff_torchtune import outputs

    logs = tmp_path / "logs"
    logs.mkdir()
    first = [f"Step {n} | loss:{10 - n / 10} lr:0.1" for n in range(1, 6)]  # killed in epoch 1
    (logs / "log_1000.txt").write_text("\n".join(first) + "\n")
    (logs / outputs.RESUMES).write_text('{"time": 1500.0, "after_epoch": 0}\n')
    second = [f"Step {n} | loss:{5 - n / 10} lr:0.1" for n in range(1, 7)]  # epochs 1 and 2
    (logs / "log_1501.txt").write_text("\n".join(second) + "\n")
    rows = outputs.read_steps(logs, steps_per_epoch=3)
    assert [row["step"] for row in rows] == list(range(1, 10))
    assert rows[3]["loss"] == 4.9  # step 4 is the resumed run's first, not the killed run's
    written = outputs.write_metrics(tmp_path, steps_per_epoch=3)
    assert written.read_text().splitlines()[0] == "step,epoch,loss,lr"
    assert [r["epoch"] for r in outputs.read_metrics(tmp_path)] == list("000111222")


# a stand-in for tune run: saves epoch 0's state, says so in two pieces (as tqdm's unbroken
# lines reach a pipe), then is killed while it rewrites the state in place after epoch 1
FAKE_TUNE = """
import shutil, sys, time
whole, state = sys.argv[1], sys.argv[2]
shutil.copy(whole, state)
sys.stdout.write("1|12|Loss: 5.8 Recipe checkpoint"); sys.stdout.flush(); time.sleep(0.3)
sys.stdout.write(" of size 0.00 GiB saved to " + state + "\\n"); sys.stdout.flush()
time.sleep(0.3)
open(state, "wb").write(open(whole, "rb").read()[:100])
sys.exit(137)
"""


def test_a_job_killed_while_torchtune_rewrites_its_state_resumes_from_the_last_whole_one(
    tmp_path, capfdbinary
):
    import torch

    from cruijff_torchtune import launch

    whole = tmp_path / "whole.pt"
    torch.save({"epochs_run": 1, "optimizer": torch.zeros(1000)}, whole)
    state, kept = launch.state_paths(tmp_path)
    state.parent.mkdir()
    command = [sys.executable, "-c", FAKE_TUNE, str(whole), str(state)]
    assert launch.run_tune(command, tmp_path) == 137
    output = capfdbinary.readouterr().out
    assert b"Recipe checkpoint of size 0.00 GiB saved to" in output  # passed through whole
    assert launch.saved_epoch(state) is None and kept.exists()  # torn, and the last one kept
    assert launch.restore_state(tmp_path) == (state, 0)
    assert launch.saved_epoch(state) == 0 and not kept.exists()  # back where torchtune reads
    # a whole state written after the kept one is the newer: it stays
    torch.save({"epochs_run": 2}, state)
    torch.save({"epochs_run": 1}, kept)
    assert launch.restore_state(tmp_path) == (state, 1)


def test_transformers_5_rope_parameters_are_read(tmp_path):
    config = {k: v for k, v in LLAMA.items() if k != "rope_theta"}
    plain = {**config, "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"}}
    spec = read_model(model_folder(tmp_path, plain, "plain"))
    assert spec.args["rope_base"] == 100000.0 and spec.args["scale_factor"] == 1
    scaled = {
        **config,
        "rope_parameters": {"rope_theta": 500000.0, "rope_type": "llama3", "factor": 32.0},
    }
    spec = read_model(model_folder(tmp_path, scaled, "scaled"))
    assert spec.args["rope_base"] == 500000.0 and spec.args["scale_factor"] == 32
    yarn = {**config, "rope_parameters": {"rope_theta": 1e4, "rope_type": "yarn"}}
    with pytest.raises(ModelError, match="'yarn' is not supported"):
        read_model(model_folder(tmp_path, yarn, "yarn"))


def test_wandb_project_is_claimed_and_reaches_the_logger(
    plugin_manager, torchtune, experiment_file
):
    path = experiment_file({"output": {"wandb_project": "capitalization"}})
    plan = design(plugin_manager, path)
    config = yaml.safe_load(
        next(
            spec.content
            for spec in plan.generated["rank4.train"].files
            if spec.path.name == "finetune.yaml"
        )
    )
    assert config["metric_logger"] == {
        "_component_": "cruijff_torchtune.components.metric_logger",
        "log_dir": str(plan.experiment.directory / "rank4" / "logs"),
        "run_name": "rank4",
        "wandb_project": "capitalization",
    }
    bad = check(plugin_manager, experiment_file({"output": {"wandb_projekt": "x"}}))
    assert "did you mean wandb_project" in bad.errors[0].hint


def test_wandb_logs_offline_beside_the_disk_log(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    pytest.importorskip("torchtune")
    from cruijff_torchtune.components import metric_logger

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    logger = metric_logger(
        log_dir=str(tmp_path / "logs"), run_name="rank8", wandb_project="capitalization"
    )
    logger.log_dict({"loss": 1.25, "lr": 0.001}, step=1)
    logger.close()
    disk = next((tmp_path / "logs").glob("log_*.txt")).read_text()
    assert "Step 1 | loss:1.25 lr:0.001" in disk  # cruijff's metrics still come from here
    runs = list((tmp_path / "logs" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1  # offline: nothing sent anywhere
    # wandb's service process may still be flushing the run file after finish() returns
    deadline = time.monotonic() + 30
    while not (b"rank8" in runs[0].read_bytes() and b"capitalization" in runs[0].read_bytes()):
        assert time.monotonic() < deadline, runs[0].read_bytes()[:200]
        time.sleep(0.2)


def test_a_shared_build_is_the_build_of_each_run_alone(tmp_path):
    """Runs built through one Shared (the layers a sweep shares built once) get the config,
    the read-only config and every source that building each alone gives, whatever their
    parameters touch: plain values, sections, values that overlap, paths the experiment
    layer names the run in, and the ones that decide QLoRA and the validation pass."""
    model = read_model(model_folder(tmp_path, LLAMA))
    controls = {"dataset_type": "chat_completion", "lr": 1e-3, "metric_logger.log_dir": "/logs"}
    runs = [
        {"lora_rank": 4, "lr": 5e-4, "seed": 1},
        {"lora_rank": 8, "lr": 5e-4, "seed": 2},
        {"lora_rank": 8, "lora_alpha": 3, "train_on_input": True},
        {"lora_rank": 2, "model.lora_rank": 6},  # two names of one path: the later wins
        {"optimizer": {"lr": 1e-2, "fused": False}, "lr": 2e-3},
        {"model.quantize_base": True, "validation_during_training": True, "lora_rank": 2},
        {"run_val_every_n_steps": 0, "validation_during_training": True, "epochs": 2},
        {"finetune": "full", "lr": 3e-5},
        {"lora_attn_modules": ["q_proj"], "checkpointer.output_dir": "/elsewhere"},
    ]
    shared = Shared()
    for index, run in enumerate(runs * 2):  # the second time from made templates
        kwargs = dict(
            run_name=f"run{index}",
            output_dir=tmp_path / f"out{index}",
            model=model,
            data=tmp_path / "data.json",
            controls=controls,
            run=run,
            gpus=0,
        )
        alone, together = build(**kwargs), build(**kwargs, shared=shared)
        assert together.config == alone.config, run
        assert thaw(together.frozen) == alone.config, run
        assert together.settings == alone.settings, run
        assert (together.recipe, together.lora, together.validating) == (
            alone.recipe,
            alone.lora,
            alone.validating,
        )
    assert together.config["metric_logger"]["run_name"] == f"run{index}"
    assert together.config["checkpointer"]["output_dir"] == "/elsewhere"
    assert together.config["output_dir"] == str(tmp_path / f"out{index}")
