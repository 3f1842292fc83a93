"""The ``finetune.yaml`` of one fine-tuning run, with where each of its values came from."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import yaml

from cruijff.yamlfile import load_yaml
from cruijff_torchtune import params
from cruijff_torchtune.models import ModelSpec
from cruijff_torchtune.recipes import distributed_variant, find_config, quantizes_base

COMPONENTS = "cruijff_torchtune.components"
ADAMW = "torch.optim.AdamW"

DEFAULTS: dict[str, Any] = {
    "seed": 42,
    "shuffle": True,
    "batch_size": 4,
    "epochs": 1,
    "max_steps_per_epoch": None,
    "gradient_accumulation_steps": 1,
    "clip_grad_norm": None,
    "optimizer": {"_component_": ADAMW, "lr": 3e-4, "weight_decay": 0.01},
    "lr_scheduler": {
        "_component_": "torchtune.training.lr_schedulers.get_cosine_schedule_with_warmup",
        "num_warmup_steps": 0,
    },
    "loss": {"_component_": "torchtune.modules.loss.CEWithChunkedOutputLoss"},
    "log_every_n_steps": 1,
    "compile": False,
    "enable_activation_checkpointing": False,
    "enable_activation_offloading": False,
    "save_adapter_weights_only": False,
}
"""The plugin's own defaults, used when the experiment names no ``base_recipe``."""

LORA_DEFAULTS = {
    "lora_attn_modules": ["q_proj", "v_proj", "output_proj"],
    "apply_lora_to_mlp": True,
    "apply_lora_to_output": False,
    "lora_rank": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.0,
}
RECIPES = {"lora": "lora_finetune_single_device", "full": "full_finetune_single_device"}
REPLACED = ("tokenizer", "checkpointer", "dataset", "metric_logger", "profiler")
"""Sections the plugin writes whole: a recipe's version names files of another model."""


@attrs.frozen(kw_only=True)
class RunConfig:
    """A run's training config, its recipe and how many GPUs it uses."""

    recipe: str
    config: dict[str, Any]
    settings: list[tuple[str, Any, str]]
    gpus: int
    lora: bool

    def yaml(self) -> str:
        return dump_yaml(self.config)


# libyaml's emitter where PyYAML has it: the pure-Python one is most of a big scaffold's time
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_yaml(data: Any) -> str:
    """``data`` as block-style YAML, keys in their order."""
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, width=100, allow_unicode=True)


def tool_value(name: str, controls: Mapping, run: Mapping, default: Any) -> tuple[Any, str]:
    """A plugin-level parameter, the run's over the controls', and where it came from."""
    if name in run:
        return params.thaw(run[name]), "run"
    if name in controls:
        return params.thaw(controls[name]), "controls"
    return default, "default"


def build(
    *,
    run_name: str,
    output_dir: Path,
    model: ModelSpec,
    data: Path,
    controls: Mapping[str, Any],
    run: Mapping[str, Any],
    gpus: int,
    wandb_project: str | None = None,
) -> RunConfig:
    """The final config of a run: recipe (or defaults) < model and experiment < controls < run."""
    layered = params.Layered()
    recipe_name, _ = tool_value("base_recipe", controls, run, None)
    finetune, _ = tool_value("finetune", controls, run, None)
    if recipe_name:
        recipe, config = find_config(recipe_name) or (None, None)
        assert recipe is not None and config is not None, "checked at validate time"
        base = dict(load_yaml(config.path).data)  # reads 2e-5 as a float, like OmegaConf
        # the model's own builder replaces the recipe's: a QLoRA one's quantized base must stay
        quantized = quantizes_base(recipe_name)
        for key in REPLACED:
            base.pop(key, None)
        layered.apply(base, f"recipe {recipe_name}")
        recipe_file = recipe.name
        finetune = finetune or ("lora" if "lora" in recipe_file else "full")
    else:
        quantized = False
        finetune = finetune or "lora"
        layered.apply(DEFAULTS, "default")
        if finetune == "full":
            layered.apply({"optimizer_in_bwd": False}, "default")  # the full recipe reads it
        recipe_file = RECIPES[finetune]
    lora = finetune == "lora"
    on_gpu = gpus > 0

    # what the model folder implies
    model_section: dict[str, Any] = {"_component_": model.component(lora), **model.args}
    if lora:
        given = layered.get("model") or {}
        model_section.update({k: v for k, v in LORA_DEFAULTS.items() if k not in given})
    layered.apply({"model": model_section}, "model")
    if lora and quantized:
        layered.apply({"model": {"quantize_base": True}}, f"recipe {recipe_name} (QLoRA)")

    # what the experiment implies: where things are, how to run here
    dataset_type, _ = tool_value("dataset_type", controls, run, "chat_completion")
    prompt, prompt_source = tool_value("prompt", controls, run, "{input}")
    system_prompt, system_source = tool_value("system_prompt", controls, run, "")
    layered.apply(
        {
            "output_dir": str(output_dir),
            "tokenizer": {
                "_component_": f"{COMPONENTS}.chat_tokenizer",
                "path": str(model.path),
                "max_seq_len": None,
            },
            "checkpointer": {
                "_component_": "torchtune.training.FullModelHFCheckpointer",
                "checkpoint_dir": str(model.path),
                "checkpoint_files": list(model.weights),
                "recipe_checkpoint": None,
                "output_dir": str(output_dir),
                "model_type": model.model_type,
            },
            "resume_from_checkpoint": False,
            "dataset": {
                "_component_": f"{COMPONENTS}.prompt_dataset",
                "source": str(data),
                "split": "train",
                "dataset_type": dataset_type,
                "train_on_input": False,
            },
            "metric_logger": {
                "_component_": f"{COMPONENTS}.metric_logger",
                "log_dir": str(output_dir / "logs"),
                "run_name": run_name,
                "wandb_project": wandb_project,
            },
            "device": "cuda" if on_gpu else "cpu",
            "dtype": "bf16" if on_gpu else "fp32",
            "log_peak_memory_stats": on_gpu,
            "profiler": {
                "_component_": "torchtune.training.setup_torch_profiler",
                "enabled": False,
            },
        },
        "experiment",
    )
    layered.apply({"dataset": {"prompt": prompt}}, prompt_source)
    layered.apply({"dataset": {"system_prompt": system_prompt}}, system_source)
    optimizer = layered.get("optimizer._component_", "")
    if not optimizer.startswith("torch."):  # e.g. bitsandbytes' paged AdamW: CUDA only
        layered.apply({"optimizer": {"_component_": ADAMW}}, "experiment")
    if not on_gpu:
        layered.apply({"enable_activation_checkpointing": False, "compile": False}, "experiment")
        if layered.get("optimizer.fused") is not None:
            layered.apply({"optimizer": {"fused": False}}, "experiment")

    for layer, values in (("controls", controls), ("run", run)):
        for name, value in values.items():
            if name in params.TOOL:
                continue
            layered.apply(params.expand(name, value), layer)
    if lora and not any(
        "lora_alpha" in values or "model.lora_alpha" in values for values in (controls, run)
    ):
        rank = layered.get("model.lora_rank")
        if rank is not None and layered.source.get("model.lora_rank") in ("controls", "run"):
            layered.apply({"model": {"lora_alpha": 2 * rank}}, "derived: 2 × lora_rank")
    max_seq_len = layered.get("tokenizer.max_seq_len")
    if max_seq_len:
        layered.apply(
            {"dataset": {"max_seq_len": max_seq_len}}, layered.source["tokenizer.max_seq_len"]
        )
    recipe = recipe_file if gpus <= 1 else distributed_variant(recipe_file)
    return RunConfig(
        recipe=recipe, config=layered.config, settings=layered.settings(), gpus=gpus, lora=lora
    )
