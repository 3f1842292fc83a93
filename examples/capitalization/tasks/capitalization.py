"""The inspect task of the capitalization example: ask for each held-out word in capitals.

cruijff passes the arguments this function declares: the experiment's data file, the split,
the prompt (task > run > controls) and the system prompt (task > controls, as cruijff_kit
reads them), so the model is asked exactly what it was trained on.
"""

from __future__ import annotations

import json
from pathlib import Path

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.scorer import match
from inspect_ai.solver import generate, system_message


@task
def capitalization(
    data_path: str, split: str = "test", prompt: str = "{input}", system_prompt: str = ""
) -> Task:
    """Exact, case-sensitive match of the answer with the word in capitals."""
    rows = json.loads(Path(data_path).read_text(encoding="utf-8"))[split]
    # replace, not format: the same substitution training made
    dataset = MemoryDataset(
        [
            Sample(id=index, input=prompt.replace("{input}", row["input"]), target=row["output"])
            for index, row in enumerate(rows)
        ]
    )
    solver = [system_message(system_prompt), generate()] if system_prompt else [generate()]
    return Task(dataset=dataset, solver=solver, scorer=match(location="exact", ignore_case=False))
