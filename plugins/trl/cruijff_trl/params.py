"""The parameters an experiment gives the TRL tool, and where each goes in the job's config.

The names are the torchtune tool's, with the same meaning (``lr``, ``lora_rank``, ``batch_size``,
``epochs``...): :data:`FRIENDLY` maps each to its place in the job's ``trl_config.yaml``, whose
sections are ``sft`` (TRL's ``SFTConfig``), ``peft`` (PEFT's ``LoraConfig``), ``data`` (how rows
become tokens) and ``train`` (what cruijff's training loop decides: the data order, the
epochs' length, which weights are kept). Dotted ``sft.FIELD`` and ``peft.FIELD`` are taken as
they are, checked against :mod:`cruijff_trl.fields`. :data:`TOOL` lists the plugin's own
parameters, :data:`TORCHTUNE` the torchtune names that have no place here, each with what to
write instead. :data:`TRANSLATE` turns a value into TRL's where the two differ.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cruijff import quantities
from cruijff.suggest import did_you_mean
from cruijff.yamlfile import yaml_text
from cruijff_trl.fields import LORA_FIELDS, SFT_FIELDS

FRIENDLY: dict[str, str] = {
    "lora_rank": "peft.r",
    "lora_alpha": "peft.lora_alpha",
    "lora_dropout": "peft.lora_dropout",
    "lr": "sft.learning_rate",
    "weight_decay": "sft.weight_decay",
    "lr_scheduler": "sft.lr_scheduler_type",
    "num_warmup_steps": "sft.warmup_steps",
    "batch_size": "sft.per_device_train_batch_size",
    "batch_size_val": "sft.per_device_eval_batch_size",
    "gradient_accumulation_steps": "sft.gradient_accumulation_steps",
    "epochs": "sft.num_train_epochs",
    "seed": "sft.seed",
    "clip_grad_norm": "sft.max_grad_norm",
    "log_every_n_steps": "sft.logging_steps",
    "enable_activation_checkpointing": "sft.activation_checkpointing",
    "compile": "sft.torch_compile",
    "dtype": "sft.bf16",
    "max_seq_len": "train.max_seq_len",
    "max_steps_per_epoch": "train.max_steps_per_epoch",
    "shuffle": "train.shuffle",
    "save_adapter_weights_only": "train.adapters_only",
    "run_val_every_n_steps": "train.validate_every",
    "train_on_input": "data.train_on_input",
    "lora_attn_modules": "peft.target_modules",
    "apply_lora_to_mlp": "peft.target_modules",
    "apply_lora_to_output": "peft.target_modules",
}
"""Parameter name -> config path (the three LoRA target keys make ``peft.target_modules``)."""

TYPES: dict[str, tuple[type, ...]] = {
    "lora_rank": (int,),
    "lora_alpha": (int, float),
    "lora_dropout": (int, float),
    "lr": (int, float),
    "weight_decay": (int, float),
    "lr_scheduler": (str,),
    "num_warmup_steps": (int,),
    "batch_size": (int,),
    "batch_size_val": (int,),
    "gradient_accumulation_steps": (int,),
    "epochs": (int,),
    "seed": (int,),
    "clip_grad_norm": (int, float, type(None)),
    "log_every_n_steps": (int,),
    "enable_activation_checkpointing": (bool,),
    "compile": (bool,),
    "dtype": (str,),
    "max_seq_len": (int, type(None)),
    "max_steps_per_epoch": (int, type(None)),
    "shuffle": (bool,),
    "save_adapter_weights_only": (bool,),
    "run_val_every_n_steps": (int,),
    "train_on_input": (bool,),
    "lora_attn_modules": (list, tuple),
    "apply_lora_to_mlp": (bool,),
    "apply_lora_to_output": (bool,),
}

TOOL: dict[str, tuple[type, ...]] = {
    "finetune": (str,),  # lora | full
    "dataset_type": (str,),
    "prompt": (str,),
    "system_prompt": (str,),
    "validation_during_training": (bool,),
    "dataset_path": (str,),  # cruijff_kit's retired literal training file
    # what the training job asks of the machine (cruijff's names, then cruijff_kit's)
    "gpus": (int,),
    "cpus": (int,),
    "mem_gb": (int, float),
    "time_minutes": (int,),
    "time": (int, str),
    "mem": (int, str),
    "cpus_per_task": (int,),
    "partition": (str,),
    "constraint": (str,),
    "account": (str,),
}
"""Parameters the plugin itself uses (not config values)."""

POSITIVE = {
    "lora_rank",
    "batch_size",
    "batch_size_val",
    "epochs",
    "gradient_accumulation_steps",
    "max_seq_len",
    "log_every_n_steps",
    "max_steps_per_epoch",
    "cpus",
    "cpus_per_task",
}
AT_LEAST_0 = {"num_warmup_steps", "run_val_every_n_steps", "gpus", "seed"}

SCHEDULERS = {
    "get_cosine_schedule_with_warmup": "cosine",
    "get_linear_schedule_with_warmup": "linear",
    "get_constant_schedule_with_warmup": "constant_with_warmup",
}
"""cruijff_kit's (torchtune's) schedule names -> transformers' ``lr_scheduler_type``: the same
curves (warmup, then cosine with half a cycle, linear to 0, or constant)."""

CHOICES: dict[str, tuple[Any, ...]] = {
    "finetune": ("lora", "full"),
    "dataset_type": ("chat_completion", "text_completion"),
    "lr_scheduler": tuple(SCHEDULERS),
    "dtype": ("bf16", "fp32"),
}
"""The values a parameter may take, where they are few."""

ATTENTION = {"q_proj": "q_proj", "k_proj": "k_proj", "v_proj": "v_proj", "output_proj": "o_proj"}
"""torchtune's attention projections -> their names in a transformers model."""
MLP = ("gate_proj", "up_proj", "down_proj")
"""A transformers model's MLP projections (torchtune's w1, w3, w2)."""
LORA_TARGETS = {
    "lora_attn_modules": ["q_proj", "v_proj", "output_proj"],
    "apply_lora_to_mlp": True,
    "apply_lora_to_output": False,
}
"""The torchtune tool's LoRA targets (cruijff_kit's), in torchtune's words."""


def target_modules(attention: list, mlp: bool, output: bool) -> list[str]:
    """PEFT's ``target_modules`` for torchtune's three LoRA keys: the same layers."""
    return (
        [ATTENTION[name] for name in attention]
        + (list(MLP) if mlp else [])
        + (["lm_head"] if output else [])
    )


TRANSLATE: dict[str, Callable[[Any], Any]] = {
    "lr_scheduler": SCHEDULERS.__getitem__,
    "dtype": lambda dtype: dtype == "bf16",
    "clip_grad_norm": lambda norm: 0.0 if norm is None else norm,  # 0: transformers' "none"
}
"""A parameter's value -> its config value, where TRL spells it otherwise."""

READERS = {"time": quantities.seconds, "mem": quantities.megabytes}
"""Parameters written as a cluster writes them (``"1:00:00"``, ``"80G"``): seconds, MB."""

TORCHTUNE: dict[str, str] = {
    "base_recipe": "TRL has no recipes: set lr, batch_size, epochs... (or sft.FIELD) yourself",
    "custom_recipe": "TRL has no recipes: leave custom_recipe out",
    "packed": "write sft.packing: true to pack rows (TRL's own packing), or leave packed out",
    "device": "TRL trains where the job runs: gpus: 0 trains on the CPU",
    "model.lora_rank": "write lora_rank (peft.r)",
    "model.lora_alpha": "write lora_alpha (peft.lora_alpha)",
    "model.lora_dropout": "write lora_dropout (peft.lora_dropout)",
    "model.lora_attn_modules": "write lora_attn_modules, or peft.target_modules",
    "model.apply_lora_to_mlp": "write apply_lora_to_mlp, or peft.target_modules",
    "model.apply_lora_to_output": "write apply_lora_to_output, or peft.target_modules",
    "optimizer.lr": "write lr (sft.learning_rate)",
    "optimizer.weight_decay": "write weight_decay (sft.weight_decay)",
    "optimizer": "write sft.optim (transformers' optimizer name) and sft.adam_beta1...",
    "lr_scheduler.num_warmup_steps": "write num_warmup_steps (sft.warmup_steps)",
    "lr_scheduler": "write lr_scheduler, or sft.lr_scheduler_type",
    "tokenizer.max_seq_len": "write max_seq_len",
    "tokenizer": "the tokenizer is the model folder's own",
    "dataset.train_on_input": "write train_on_input",
    "dataset": "write prompt, system_prompt, dataset_type or train_on_input",
    "checkpointer": "the model folder is the model's path under models",
    "model": "write peft.FIELD for LoRA, sft.model_init_kwargs for loading the model",
}
"""torchtune's own keys and config paths (a key, or the section it is in) -> what to write
for TRL instead. ``model.quantize_base`` is not here: it chooses QLoRA for both tools."""

QUANTIZE = "model.quantize_base"
"""The one ``model.*`` key TRL reads: QLoRA (a 4-bit NF4 base, through bitsandbytes; CUDA)."""

SECTIONS = {"sft": SFT_FIELDS, "peft": LORA_FIELDS}
"""Dotted parameters taken as they are: the section and the fields it has."""

RESERVED = {
    "sft.output_dir": "the run's directory is the output directory",
    "sft.resume_from_checkpoint": "an interrupted job resumes from its last checkpoint itself",
    "sft.save_strategy": "checkpoints are saved once an epoch (each a model to evaluate)",
    "sft.num_train_epochs": "write epochs",
    "sft.max_steps": "write max_steps_per_epoch",
    "sft.push_to_hub": "jobs never reach the Hub (HF_HUB_OFFLINE=1)",
    "peft.task_type": "always CAUSAL_LM",
    "peft.base_model_name_or_path": "the base model is the run's model folder",
    "peft.peft_type": "always LORA",
}
"""Fields cruijff sets itself: writing one is an error saying why."""

KNOWN = tuple(sorted({*FRIENDLY, *TOOL, QUANTIZE}))


def is_config_path(name: str) -> bool:
    """A dotted name is a config path (``sft.adam_beta2``), a torchtune path, or a mistake."""
    return "." in name


def check_name(name: str) -> tuple[str, str] | None:
    """What is wrong with a parameter's name, as (message, hint), or None."""
    if name in TORCHTUNE:
        return f"{name} is torchtune's, not TRL's", TORCHTUNE[name]
    if name in RESERVED:
        return f"{name} is set by cruijff", RESERVED[name]
    if not is_config_path(name) or name == QUANTIZE:
        return None
    section, field = name.split(".", 1)
    field = field.split(".", 1)[0]
    if section not in SECTIONS:
        if section in TORCHTUNE:
            return f"{name} is a torchtune config path, not TRL's", TORCHTUNE[section]
        return (
            f"{name} is not a TRL setting: dotted parameters are sft.FIELD or peft.FIELD",
            did_you_mean(section, tuple(SECTIONS)) or "sft.FIELD sets SFTConfig's FIELD",
        )
    if field not in SECTIONS[section]:
        kind = "SFTConfig" if section == "sft" else "LoraConfig"
        return (
            f"{kind} has no field {field!r}",
            did_you_mean(field, tuple(SECTIONS[section])) or f"see {kind}'s documentation",
        )
    return None


def check_value(name: str, value: Any) -> str | None:
    """What is wrong with a value of a known parameter, or None."""
    kinds = TYPES.get(name) or TOOL.get(name)
    if name == QUANTIZE:
        kinds = (bool, type(None))
    if kinds is None:
        return None
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        return f"{name} must be {_kinds(kinds)}, not {yaml_text(value)}"
    if value is None or isinstance(value, (bool, str, list, tuple)):
        pass
    elif name in POSITIVE and value < 1:
        return f"{name} must be at least 1, not {yaml_text(value)}"
    elif name in AT_LEAST_0 and value < 0:
        return f"{name} must be at least 0, not {yaml_text(value)}"
    if name in CHOICES and value not in CHOICES[name]:
        choices = ", ".join(yaml_text(choice, quote=False) for choice in CHOICES[name])
        return f"{name} must be one of {choices}, not {yaml_text(value)}"
    if name == "lora_attn_modules":
        wrong = [item for item in value if item not in ATTENTION]
        if wrong:
            return (
                f"lora_attn_modules names {yaml_text(wrong[0])}; it takes "
                f"{', '.join(ATTENTION)} (torchtune's names)"
            )
    if name in READERS:
        try:
            READERS[name](value)
        except ValueError as error:
            return f"{name} {error}"
    return None


def _kinds(kinds: tuple[type, ...]) -> str:
    names = {
        int: "an integer",
        float: "a number",
        bool: "true or false",
        str: "a string",
        list: "a list",
        tuple: "a list",
        type(None): "null",
    }
    return " or ".join(dict.fromkeys(names[kind] for kind in kinds))
