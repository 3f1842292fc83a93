"""inspect tasks for the inspect plugin's tests, in the style of cruijff_kit's task files.

``capitalization`` reads ``{"train": [...], "test": [...]}`` rows of ``{"input", "output"}``
(the experiment's data file) and asks for each word capitalized; ``exploding`` fails inside
inspect on every sample; ``not_a_task`` lacks the ``@task`` decorator.
"""

from __future__ import annotations

import json
from pathlib import Path

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import GenerateConfig
from inspect_ai.scorer import (
    Score,
    Target,
    accuracy,
    includes,
    match,
    scorer,
)
from inspect_ai.solver import TaskState, generate, solver, system_message


def samples(data_path: str, split: str, prompt: str) -> MemoryDataset:
    rows = json.loads(Path(data_path).read_text(encoding="utf-8"))[split]
    return MemoryDataset(
        [
            Sample(id=index, input=prompt.format(input=row["input"]), target=row["output"])
            for index, row in enumerate(rows)
        ]
    )


@task
def capitalization(
    data_path: str, split: str = "test", prompt: str = "{input}", system_prompt: str = ""
) -> Task:
    """Capitalize each word; exact match and inclusion, case-sensitive."""
    solver = [system_message(system_prompt), generate()] if system_prompt else [generate()]
    return Task(
        dataset=samples(data_path, split, prompt),
        solver=solver,
        scorer=[match(location="exact", ignore_case=False), includes(ignore_case=False)],
        # a capitalized word takes a few tokens; evaluation.max_tokens overrides this cap
        config=GenerateConfig(max_tokens=32),
    )


@scorer(metrics=[accuracy()])
def shouted():
    """Whether the answer is all capitals (a scorer defined in a task file)."""

    async def score(state: TaskState, target: Target) -> Score:
        answer = state.output.completion
        return Score(value=1.0 if answer and answer == answer.upper() else 0.0, answer=answer)

    return score


@solver
def explode():
    async def solve(state, generate):
        raise RuntimeError("the task exploded")

    return solve


@task
def exploding(data_path: str, split: str = "test") -> Task:
    """Fails inside inspect on every sample."""
    return Task(dataset=samples(data_path, split, "{input}"), solver=explode(), scorer=match())


def not_a_task(data_path: str) -> Task:
    return capitalization(data_path)
