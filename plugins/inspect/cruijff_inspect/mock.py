"""``cruijff-mock``: an offline inspect model provider for trying a pipeline without a model.

inspect's own ``mockllm/model`` counts tokens with a tiktoken file it downloads, so offline every
evaluation with it ends in status ``error``. This provider answers from the prompt alone and
reports its own token usage, so it never touches the network. Use it in an experiment with::

    evaluation:
      provider: cruijff-mock
      model_args: {reply: upper}

``model_args``: ``reply`` is ``echo`` (the last word of the last user message, the default),
``upper`` or ``lower`` (that word changed in case) or ``fixed`` (then ``text`` is the answer);
``delay`` waits that many seconds per answer (to watch progress or interrupt an evaluation);
``trace`` names a file to which each answer is appended as one line (to count generations).

It is registered for inspect through the ``inspect_ai`` entry point of ``cruijff-inspect``
(so ``inspect eval --model cruijff-mock/any`` works too) and imported by the evaluation job.
Importing this module imports inspect_ai: only the job and inspect itself do.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from inspect_ai.model import (
    ChatMessage,
    GenerateConfig,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    modelapi,
)
from inspect_ai.tool import ToolChoice, ToolInfo

from cruijff_inspect.settings import MOCK_PROVIDER as NAME

REPLIES = ("echo", "upper", "lower", "fixed")


class MockModel(ModelAPI):
    """Answers each prompt with its last word (or a fixed text), after an optional delay."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),  # noqa: B008 -- inspect's own signature
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url, api_key, [], config)
        self.reply = str(model_args.get("reply", "echo"))
        if self.reply not in REPLIES:
            choices = ", ".join(REPLIES)
            raise ValueError(f"{NAME}: reply must be one of {choices}, not {self.reply!r}")
        self.text = str(model_args.get("text", ""))
        self.delay = float(model_args.get("delay", 0))
        self.trace = model_args.get("trace")

    def answer(self, prompt: str) -> str:
        """What this model says to ``prompt``."""
        if self.reply == "fixed":
            return self.text
        words = prompt.split()
        last = words[-1] if words else ""
        return {"upper": last.upper(), "lower": last.lower()}.get(self.reply, last)

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> ModelOutput:
        if self.delay:
            await asyncio.sleep(self.delay)
        users = [message for message in input if message.role == "user"]
        prompt = users[-1].text if users else ""
        answer = self.answer(prompt)
        if self.trace:
            # one write of one line: safe with concurrent samples
            fd = os.open(str(self.trace), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(fd, f"{answer}\n".encode())
            os.close(fd)
        output = ModelOutput.from_content(model=self.model_name, content=answer)
        used, said = sum(len(message.text.split()) for message in input), len(answer.split())
        output.usage = ModelUsage(input_tokens=used, output_tokens=said, total_tokens=used + said)
        return output

    def max_connections(self) -> int:
        return 32


@modelapi(name=NAME)
def cruijff_mock() -> type[ModelAPI]:
    """The provider's registration: ``--model cruijff-mock/<any name>``."""
    return MockModel
