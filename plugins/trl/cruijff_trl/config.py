"""The ``trl_config.yaml`` of one fine-tuning run, with where each of its values came from.

:func:`build` adds layers in precedence order, as the torchtune tool does: the plugin's defaults
(cruijff_kit's, :data:`DEFAULTS`, in TRL's names) < what the model folder and the experiment
imply (paths, the device, the data's formatting) < ``controls`` < the run's parameters, then
the values derived from the result (``lora_alpha`` = 2 × ``lora_rank``; the validation batch).
Every leaf is a dotted path (``sft.learning_rate``); a value that is a mapping (an
``sft.lr_scheduler_kwargs``) is one leaf.

The file's sections: ``model`` (the base model folder), ``output_dir``, ``finetune`` (``lora``
or ``full``), ``data`` (the rows and how they become tokens), ``train`` (what cruijff's loop
decides: data order, epoch length, quantized base, validation, which weights are kept),
``sft`` (TRL's ``SFTConfig``), ``peft`` (PEFT's ``LoraConfig``; LoRA only).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from cruijff.errors import UserError
from cruijff.records import freeze, thaw
from cruijff_trl import params

TRAIN_PROMPT = "{input}\n"
"""The training prompt where the experiment gives none (cruijff_kit's)."""

VALIDATION_EVERY = 50
"""Optimizer steps between validation passes (cruijff_kit's number)."""

DEFAULTS: dict[str, Any] = {
    "train.shuffle": True,
    "train.max_steps_per_epoch": None,
    "train.adapters_only": False,  # cruijff_kit's is true; evaluation reads merged models
    "train.max_seq_len": 2048,  # read by estimates only: rows are never cut (as for torchtune)
    "train.quantize_base": False,
    "sft.seed": 14,
    "sft.per_device_train_batch_size": 4,
    "sft.num_train_epochs": 1,
    "sft.gradient_accumulation_steps": 1,
    "sft.max_grad_norm": 0.0,  # no clipping (torchtune's clip_grad_norm: null)
    "sft.optim": "adamw_torch",  # torch's AdamW, as torchtune's config names it
    "sft.learning_rate": 1e-4,
    "sft.weight_decay": 0.01,
    "sft.lr_scheduler_type": "cosine",
    "sft.warmup_steps": 100,
    "sft.logging_steps": 5,
    "sft.torch_compile": False,
    "sft.activation_checkpointing": False,  # TRL's default is true; torchtune's is off
    "sft.max_length": None,  # TRL cuts at 1,024 tokens by default; cruijff never cuts rows
    "sft.packing": False,
    "sft.dataloader_drop_last": True,  # torchtune drops the last partial batch
    "sft.report_to": "none",
    "sft.disable_tqdm": True,  # a job's log is read by people and by cruijff, not a terminal
    "sft.save_total_limit": 1,  # TRL's checkpoint to resume from; epochs are saved apart
}
"""The defaults of every run: cruijff_kit's, as the torchtune tool has them, in TRL's names;
and what makes TRL train as torchtune does (no clipping, no cut, no partial batch)."""

LORA_DEFAULTS: dict[str, Any] = {
    "peft.r": 64,
    "peft.lora_dropout": 0.0,
    "peft.target_modules": params.target_modules(
        params.LORA_TARGETS["lora_attn_modules"],
        params.LORA_TARGETS["apply_lora_to_mlp"],
        params.LORA_TARGETS["apply_lora_to_output"],
    ),
    "peft.bias": "none",
    "peft.task_type": "CAUSAL_LM",
}
"""cruijff_kit's LoRA: its targets, rank and dropout; ``lora_alpha`` is 2 × the rank."""

ORDER = ("model", "output_dir", "finetune", "data", "train", "sft", "peft")


@attrs.frozen(kw_only=True)
class RunConfig:
    """A run's training config (read-only, nested), every leaf's (path, value, source) in
    config order, and the choices that shape the job."""

    config: Mapping[str, Any]
    sourced: tuple[tuple[str, Any, str], ...]
    lora: bool
    quantized: bool
    validating: bool

    @property
    def adapters_only(self) -> bool:
        """Whether the run keeps only LoRA adapters (``save_adapter_weights_only``)."""
        return self.lora and bool(self.config["train"]["adapters_only"])


def tool_value(name: str, controls: Mapping, run: Mapping, default: Any) -> tuple[Any, str]:
    """A plugin-level parameter, the run's over the controls', and where it came from."""
    if name in run:
        return thaw(run[name]), "run"
    if name in controls:
        return thaw(controls[name]), "controls"
    return default, "default"


def finetune(controls: Mapping, run: Mapping) -> str:
    """``lora`` or ``full``: the run's ``finetune``, else ``lora``."""
    return tool_value("finetune", controls, run, None)[0] or "lora"


def quantizes_base(controls: Mapping, run: Mapping) -> bool:
    """Whether a LoRA run trains over a 4-bit NF4 base (QLoRA): ``model.quantize_base``'s
    truth, as for torchtune."""
    value, _ = tool_value(params.QUANTIZE, controls, run, False)
    return finetune(controls, run) == "lora" and bool(value)


def validates(controls: Mapping, run: Mapping) -> bool:
    """Whether the run asks for the validation loss (``validation_during_training: true``);
    ``run_val_every_n_steps: 0`` turns it off again."""
    asked, _ = tool_value("validation_during_training", controls, run, False)
    every, _ = tool_value("run_val_every_n_steps", controls, run, None)
    return bool(asked) and (every is None or bool(every))


def build(
    *,
    run_name: str,
    output_dir: Path,
    model: Path,
    data: Path,
    controls: Mapping[str, Any],
    run: Mapping[str, Any],
    gpus: int,
    max_samples: int | None = None,
    wandb_project: str | None = None,
) -> RunConfig:
    """The final config of a run: defaults < model and experiment < controls < run <
    derived. ``max_samples`` keeps the first training rows only (cruijff_kit's
    ``data.training.splits.train``)."""
    kind = finetune(controls, run)
    lora = kind == "lora"
    dataset_type = tool_value("dataset_type", controls, run, None)[0]
    if dataset_type is None:  # parse says so; never guessed (cruijff_kit's rule)
        raise UserError(
            f"run {run_name!r} has no dataset_type: how its rows are formatted is never guessed",
            hint="add dataset_type: chat_completion or text_completion to controls",
        )
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def put(path: str, value: Any, source: str) -> None:
        for leaf in [p for p in values if p.startswith(f"{path}.")]:
            del values[leaf], sources[leaf]  # a whole mapping replaces what was inside it
        values[path], sources[path] = thaw(value), source

    for path, value in {**DEFAULTS, **(LORA_DEFAULTS if lora else {})}.items():
        put(path, value, "default")
    on_gpu = gpus > 0
    experiment = {
        "model": str(model),
        "output_dir": str(output_dir),
        "finetune": kind,
        "data.source": str(data),
        "data.split": "train",
        "data.dataset_type": dataset_type,
        "data.train_on_input": False,
        "sft.bf16": on_gpu,  # bf16 on a GPU, fp32 on the CPU (the torchtune tool's dtype)
        "sft.use_cpu": not on_gpu,
    }
    for path, value in experiment.items():
        put(path, value, "experiment")
    if wandb_project:  # W&B beside the metrics file, offline (the job's environment says so)
        put("sft.report_to", "wandb", "output.wandb_project")
        put("train.wandb_project", wandb_project, "output.wandb_project")
    if max_samples is not None:
        put("data.max_samples", max_samples, "data.training.splits.train")
    prompt, prompt_source = tool_value("prompt", controls, run, TRAIN_PROMPT)
    put("data.prompt", prompt, prompt_source)
    if dataset_type != "text_completion":  # text completion has no system prompt (cruijff_kit)
        put("data.system_prompt", *tool_value("system_prompt", controls, run, ""))
    targets = dict(params.LORA_TARGETS)
    for layer, given in (("controls", controls), ("run", run)):
        for name, value in given.items():
            if name in params.TOOL:
                continue
            if name in params.LORA_TARGETS:
                targets[name] = thaw(value)
                if lora:
                    put("peft.target_modules", params.target_modules(*targets.values()), layer)
                continue
            if name == params.QUANTIZE:
                put("train.quantize_base", bool(value), layer)
                continue
            path = params.FRIENDLY.get(name, name)
            if path.startswith("peft.") and not lora:
                continue  # parse warns: a full fine-tune has no adapter
            translate = params.TRANSLATE.get(name)
            put(path, translate(value) if translate else value, layer)
    validating = validates(controls, run)
    if validating:
        if "train.validate_every" not in values:
            put("train.validate_every", VALIDATION_EVERY, "default (validation_during_training)")
        put("train.validation_split", "validation", "validation: the training file's split")
        if "sft.per_device_eval_batch_size" not in values:
            batch = values["sft.per_device_train_batch_size"]
            put("sft.per_device_eval_batch_size", batch, "derived: batch_size")
    else:
        values.pop("train.validate_every", None)
        values.pop("sft.per_device_eval_batch_size", None)
    if lora and "peft.lora_alpha" not in values:
        put("peft.lora_alpha", 2 * values["peft.r"], "derived: 2 × lora_rank")
    order = {section: i for i, section in enumerate(ORDER)}
    paths = sorted(values, key=lambda path: order.get(path.split(".", 1)[0], len(ORDER)))
    return RunConfig(
        config=freeze(nest({path: values[path] for path in paths})),
        sourced=tuple((path, values[path], sources[path]) for path in paths),
        lora=lora,
        quantized=lora and bool(values["train.quantize_base"]),
        validating=validating,
    )


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"sft.seed": 1}`` -> ``{"sft": {"seed": 1}}``; a mapping leaf merges with the leaves
    under it."""
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, last = path.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        if isinstance(value, Mapping) and isinstance(node.get(last), dict):
            node[last].update(value)
        else:
            node[last] = value
    return tree
