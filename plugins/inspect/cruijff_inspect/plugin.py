"""The inspect-ai tool's registration."""

from __future__ import annotations

from cruijff import hookimpl
from cruijff.records import Role, Tool

TOOL = Tool(
    name="inspect",
    role=Role.EVALUATION,
    description="evaluates checkpoints and base models with inspect-ai",
    aliases=("inspect-ai",),
    consumes=("hf-model",),
    produces=("inspect-log",),
    requires=("inspect_ai",),
)


@hookimpl
def cruijff_tools():
    yield TOOL
