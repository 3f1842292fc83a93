"""The torchtune tool's registration."""

from __future__ import annotations

from cruijff import hookimpl
from cruijff.records import Role, Tool

TOOL = Tool(
    name="torchtune",
    role=Role.PREPARATION,
    description="fine-tunes models with torchtune recipes (LoRA and full)",
    labels={
        "lora_rank": "rank",
        "lr": "lr",
        "batch_size": "bs",
        "epochs": "ep",
        "gradient_accumulation_steps": "ga",
        "lora_alpha": "alpha",
        "seed": "seed",
    },
    produces=("hf-model", "lora-adapter", "train-metrics"),
    requires=("torch", "torchtune", "torchao"),
)


@hookimpl
def cruijff_tools():
    yield TOOL
