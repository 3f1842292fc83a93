"""The text of a designed experiment file (:func:`render`): commented YAML, a header saying what
to do with it, then each section under a comment saying what it is."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from cruijff.designer.flow import flow, key_text

WIDTH = 100
"""The width the comments are wrapped to."""

SECTION_COMMENTS: Mapping[str, str] = {
    "experiment": "What the experiment is: its name (its id), the question it asks, the day "
    "it was designed.",
    "tools": "Which installed tool does each part of the work (`cruijff plugins` lists them).",
    "variables": "The variables swept: one fine-tuned run for every combination of their "
    "values on every base model, plus one control run (the base model, untrained) per model.",
    "controls": "What every run shares; a swept variable overrides it. dataset_type: "
    "chat_completion or text_completion; the prompt must contain {input}.",
    "models": "The base models: Hugging Face folders (config.json, weights, tokenizer). "
    "Relative paths are relative to this file's folder.",
    "data": 'The training data: a JSON file of {"input": ..., "output": ...} rows, split into '
    "train, validation and test (counted when the file was designed).",
    "evaluation": "The tasks every run is evaluated on (a @task function in a script): each "
    "fine-tuned run at its last epoch, each base model once.",
    "scheduler": "Where the jobs run: the scheduler and its profile (without this section: "
    "SLURM where a cluster profile exists, else this machine).",
}
"""The comment above each section."""


def render(data: Mapping[str, Any], file_name: str) -> str:
    """The commented YAML of an experiment file: a header, then each section with a comment
    line above it saying what it is. Strings are double-quoted; lists of plain values and
    small mappings are written on one line."""
    lines = [f"# {file_name}: an experiment, designed with `cruijff design`."]
    lines += _comment(
        f"Check it with `cruijff validate {file_name}`; `cruijff plan {file_name}` shows its "
        f"runs and jobs, `cruijff run {file_name}` runs them."
    )
    for section, value in data.items():
        lines.append("")
        lines += _comment(SECTION_COMMENTS.get(section, ""))
        lines += _mapping_lines({section: value}, 0)
    return "\n".join(lines) + "\n"


def _comment(text: str) -> list[str]:
    # A long file name stays whole: a comment line may run past WIDTH, never split a word.
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent="# ",
        subsequent_indent="# ",
        break_on_hyphens=False,
        break_long_words=False,
    )


def _mapping_lines(mapping: Mapping[str, Any], depth: int) -> list[str]:
    pad = "  " * depth
    lines = []
    for key, value in mapping.items():
        head = f"{pad}{key_text(key)}:"
        # Sections and their parts are blocks; a deeper mapping of plain values (the splits)
        # fits on one line.
        if isinstance(value, Mapping) and value and (depth < 2 or not _all_plain(value)):
            lines.append(head)
            lines += _mapping_lines(value, depth + 1)
        elif isinstance(value, list) and value and any(isinstance(v, Mapping) for v in value):
            lines.append(head)
            for item in value:
                inner = _mapping_lines(item, 0) if isinstance(item, Mapping) else [flow(item)]
                lines.append(f"{pad}  - {inner[0]}")
                lines += [f"{pad}    {line}" for line in inner[1:]]
        else:
            lines.append(f"{head} {flow(value)}")
    return lines


def _all_plain(mapping: Mapping[str, Any]) -> bool:
    return not any(isinstance(value, (Mapping, list, tuple)) for value in mapping.values())
