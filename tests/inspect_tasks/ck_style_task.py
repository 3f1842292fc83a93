"""An inspect task written as cruijff_kit 0.3.4 writes its tasks (model_organism's shape), for the
tests that run cruijff_kit's task files unchanged.

It reads ``prompt``, ``system_prompt`` and ``scorers`` from the ``eval.yaml`` at ``config_path``
(``yaml.safe_load``), builds its scorers from them with cruijff_kit's registry (a bare ``match``
is ``match(location="exact", ignore_case=False)``, a bare ``includes`` is
``includes(ignore_case=False)``; with ``params``, exactly those), prepends
``system_message(system_prompt)`` (even when empty) when ``use_chat_template``, and renames
itself ``ck_style_<vis_label>``. It reads the split ``split`` of the JSON file at ``data_path``
(``validation`` by default, as model_organism does). cruijff imports nothing of it at design
time; it never imports cruijff.
"""

from __future__ import annotations

import json

import yaml
from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.scorer import includes, match
from inspect_ai.solver import chain, generate, system_message

SCORER_REGISTRY = {
    "match": lambda params: (
        match(**params) if params else match(location="exact", ignore_case=False)
    ),
    "includes": lambda params: includes(**params) if params else includes(ignore_case=False),
}
DEFAULT_SCORERS = [match(location="exact", ignore_case=False), includes(ignore_case=False)]


def build_scorers(config: dict) -> list:
    entries = config.get("scorers")
    if not entries:
        return list(DEFAULT_SCORERS)
    scorers = []
    for entry in entries:
        name = entry["name"]
        if name not in SCORER_REGISTRY:
            raise ValueError(f"Unknown scorer '{name}'. Available: {list(SCORER_REGISTRY)}")
        scorers.append(SCORER_REGISTRY[name](entry.get("params", {})))
    return scorers


@task
def ck_style(
    data_path: str,
    config_path: str = "",
    split: str = "validation",
    temperature: float = 1e-7,
    max_tokens: int = 5,
    use_chat_template: bool = True,
    vis_label: str = "",
) -> Task:
    prompt = "{input}"
    system_prompt = ""
    config: dict = {}
    if config_path:
        with open(config_path) as handle:
            config = yaml.safe_load(handle) or {}
        prompt = config.get("prompt", "{input}")
        system_prompt = config.get("system_prompt", "")

    with open(data_path) as handle:
        rows = json.load(handle)[split]
    dataset = MemoryDataset(
        [
            Sample(
                input=prompt.format(input=row["input"]),
                target=row["output"],
                metadata=row.get("metadata", {}),
            )
            for row in rows
        ]
    )
    if use_chat_template:
        solver = chain(
            system_message(system_prompt),
            generate(temperature=temperature, max_tokens=max_tokens),
        )
    else:
        solver = chain(generate(temperature=temperature, max_tokens=max_tokens))
    return Task(
        name=f"ck_style_{vis_label}" if vis_label else "ck_style",
        dataset=dataset,
        solver=solver,
        scorer=build_scorers(config),
    )
