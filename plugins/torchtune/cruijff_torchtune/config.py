"""The ``finetune.yaml`` of one fine-tuning run, with where each of its values came from.

:func:`build` adds layers in precedence order, one named step each: the recipe's config (or
the plugin's defaults) < what the model folder and the experiment imply < ``controls`` < the
run's parameters, then the values derived from the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import yaml

from cruijff.yamlfile import load_yaml
from cruijff_torchtune import params, resolve
from cruijff_torchtune.models import ModelSpec
from cruijff_torchtune.recipes import distributed_variant, find_config

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
    """A run's training config (plain data, to dump), the recipe ``tune run`` starts, whether it
    trains LoRA, and every leaf's ``(path, value, source)``."""

    recipe: str
    config: dict[str, Any]
    settings: tuple[tuple[str, Any, str], ...]
    lora: bool


# libyaml's emitter where PyYAML has it: the pure-Python one is most of a big scaffold's time
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_yaml(data: Any) -> str:
    """``data`` as block-style YAML, keys in their order."""
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, width=100, allow_unicode=True)


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
    recipe_name, _ = resolve.tool_value("base_recipe", controls, run, None)
    lora = resolve.finetune(controls, run) == "lora"
    on_gpu = gpus > 0
    recipe = _add_recipe_or_defaults(layered, recipe_name, lora)
    _add_model(layered, model, lora)
    _add_quantized_base(layered, recipe_name, controls, run)
    _add_experiment(
        layered,
        run_name=run_name,
        output_dir=output_dir,
        model=model,
        data=data,
        dataset_type=resolve.tool_value("dataset_type", controls, run, "chat_completion")[0],
        wandb_project=wandb_project,
        on_gpu=on_gpu,
    )
    _add_prompts(layered, controls, run)
    _fit_to_device(layered, on_gpu)
    _add_parameters(layered, controls, run)
    if lora:
        _derive_lora_alpha(layered, controls, run)
    _share_max_seq_len(layered)
    return RunConfig(
        recipe=recipe if gpus <= 1 else distributed_variant(recipe),
        config=layered.config,
        settings=tuple(layered.settings()),
        lora=lora,
    )


def _add_recipe_or_defaults(layered: params.Layered, recipe_name: str | None, lora: bool) -> str:
    """The base layer: the ``base_recipe``'s config less the sections the plugin writes whole,
    or the plugin's defaults. Returns the single-device recipe that runs it."""
    if recipe_name:
        found = find_config(recipe_name)
        assert found is not None, "checked at validate time"
        recipe, config = found
        base = dict(load_yaml(config.path).data)  # reads 2e-5 as a float, like OmegaConf
        for key in REPLACED:
            base.pop(key, None)
        layered.apply(base, f"recipe {recipe_name}")
        return recipe.name
    layered.apply(DEFAULTS, "default")
    if not lora:
        layered.apply({"optimizer_in_bwd": False}, "default")  # the full recipe reads it
    return RECIPES["lora" if lora else "full"]


def _add_model(layered: params.Layered, model: ModelSpec, lora: bool) -> None:
    """The model folder's builder and dimensions, over the recipe's (which are another
    model's), and the LoRA settings the recipe leaves unset."""
    section: dict[str, Any] = {"_component_": model.component(lora), **model.args}
    if lora:
        given = layered.get("model") or {}
        section.update({k: v for k, v in LORA_DEFAULTS.items() if k not in given})
    layered.apply({"model": section}, "model")


def _add_quantized_base(
    layered: params.Layered, recipe_name: str | None, controls: Mapping, run: Mapping
) -> None:
    """Keep a QLoRA recipe's quantized base: the model's own LoRA builder, which replaced the
    recipe's ``qlora_*`` one, quantizes only when told to. A ``model.quantize_base`` the
    experiment gives arrives with its own layer; :func:`resolve.quantizes_base` decides both."""
    if (
        resolve.quantizes_base(controls, run)
        and resolve.given("model.quantize_base", controls, run) is resolve.MISSING
    ):
        layered.apply({"model": {"quantize_base": True}}, f"recipe {recipe_name} (QLoRA)")


def _add_experiment(
    layered: params.Layered,
    *,
    run_name: str,
    output_dir: Path,
    model: ModelSpec,
    data: Path,
    dataset_type: str,
    wandb_project: str | None,
    on_gpu: bool,
) -> None:
    """What the experiment implies: where the model, data and outputs are, and the device."""
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


def _add_prompts(layered: params.Layered, controls: Mapping, run: Mapping) -> None:
    """The dataset's prompt and system prompt, each with its own source."""
    prompt, prompt_source = resolve.tool_value("prompt", controls, run, "{input}")
    system_prompt, system_source = resolve.tool_value("system_prompt", controls, run, "")
    layered.apply({"dataset": {"prompt": prompt}}, prompt_source)
    layered.apply({"dataset": {"system_prompt": system_prompt}}, system_source)


def _fit_to_device(layered: params.Layered, on_gpu: bool) -> None:
    """Replace what cannot run here: a non-torch optimizer (bitsandbytes' paged AdamW is
    CUDA only) and, on the CPU, compiling, activation checkpointing and fused optimizers."""
    if not layered.get("optimizer._component_", "").startswith("torch."):
        layered.apply({"optimizer": {"_component_": ADAMW}}, "experiment")
    if not on_gpu:
        layered.apply({"enable_activation_checkpointing": False, "compile": False}, "experiment")
        if layered.get("optimizer.fused") is not None:
            layered.apply({"optimizer": {"fused": False}}, "experiment")


def _add_parameters(layered: params.Layered, controls: Mapping, run: Mapping) -> None:
    """``controls``, then the run's own parameters, as config values (the plugin's own
    parameters, such as ``base_recipe``, are not config values)."""
    for layer, values in (("controls", controls), ("run", run)):
        for name, value in values.items():
            if name not in params.TOOL:
                layered.apply(params.expand(name, value), layer)


def _derive_lora_alpha(layered: params.Layered, controls: Mapping, run: Mapping) -> None:
    """``lora_alpha`` = 2 × a ``lora_rank`` the experiment chose, unless it sets the alpha too."""
    if any("lora_alpha" in values or "model.lora_alpha" in values for values in (controls, run)):
        return
    rank = layered.get("model.lora_rank")
    if rank is not None and layered.source.get("model.lora_rank") in ("controls", "run"):
        layered.apply({"model": {"lora_alpha": 2 * rank}}, "derived: 2 × lora_rank")


def _share_max_seq_len(layered: params.Layered) -> None:
    """The tokenizer's ``max_seq_len`` also cuts the dataset's rows."""
    max_seq_len = layered.get("tokenizer.max_seq_len")
    if max_seq_len:
        layered.apply(
            {"dataset": {"max_seq_len": max_seq_len}}, layered.source["tokenizer.max_seq_len"]
        )
