"""Shared pieces of the inspect plugin's tests: the example task file, experiment changes that
switch the fake experiment to the inspect evaluator, and a stand-in preparation tool whose
"training" copies a model folder into each epoch's checkpoint (the artifact shape of
DESIGN.md §4), so an evaluation can depend on a real model without torchtune.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cruijff import hookimpl
from cruijff.records import (
    Artifact,
    FileSpec,
    Generated,
    JobSpec,
    ParseReport,
    Resources,
    Role,
    RunType,
    Tool,
    Unit,
    Validation,
)

TASKS = Path(__file__).parent / "inspect_tasks" / "capitalization.py"
WORDS = ["apple", "pear", "fig", "plum", "kiwi", "lime", "lemon", "mango", "melon", "peach"]


def inspect_changes(**evaluation: Any) -> dict[str, Any]:
    """Changes to ``make_experiment``'s default: the inspect evaluator on the example task."""
    section = {"tasks": [{"name": "capitalization", "script": str(TASKS)}], **evaluation}
    return {"tools": {"evaluation": "inspect"}, "evaluation": section}


def write_words(folder: Path, count: int) -> Path:
    """A data file with ``count`` test rows (and as many train rows)."""
    rows = [{"input": word, "output": word.upper()} for word in (WORDS * 4)[:count]]
    path = folder / "words.json"
    path.write_text(json.dumps({"train": rows, "validation": rows[:1], "test": rows}))
    return path


class CopyTrainer:
    """A preparation tool ``copytrain``: ``epochs`` checkpoints per fine-tuned run, each a copy
    of the run's base model folder (whatever ``controls.epochs`` says)."""

    NAME = "copytrain"

    def __init__(self, epochs: int = 2) -> None:
        self.epochs = epochs

    @hookimpl
    def cruijff_tools(self):
        yield Tool(
            name=self.NAME,
            role=Role.PREPARATION,
            labels={"lora_rank": "rank"},
            produces=("hf-model",),
        )

    @hookimpl
    def cruijff_parse(self, experiment, keys):
        if self.NAME not in experiment.tools.values():
            return None
        known = ("lora_rank", "epochs")
        mine = {k.path for k in keys if k.section == "parameters" and k.name in known}
        return ParseReport(claimed=mine, vocabulary={"parameters": known})

    @hookimpl
    def cruijff_select(self, experiment, tool, upstream):
        if tool.name != self.NAME:
            return None
        return tuple(
            Unit(
                id=f"{run.name}.train",
                tool=self.NAME,
                kind="train",
                run=run.name,
                directory=run.directory / "train",
                params={"model": str(experiment.model(run.model).path)},
                produces=[
                    Artifact(
                        kind="hf-model",
                        run=run.name,
                        epoch=epoch,
                        path=run.directory / "train" / f"epoch_{epoch}",
                    )
                    for epoch in range(self.epochs)
                ],
            )
            for run in experiment.runs
            if run.type is RunType.FINE_TUNED
        )

    @hookimpl
    def cruijff_generate(self, experiment, unit):
        if unit.tool != self.NAME:
            return None
        copy = (
            "import shutil, sys\n"
            "for target in sys.argv[2:]:\n"
            "    shutil.copytree(sys.argv[1], target, dirs_exist_ok=True)\n"
        )
        targets = [str(a.path) for a in unit.produces]
        script = unit.directory / "copy.py"
        return Generated(
            files=[FileSpec(path=script, content=copy)],
            job=JobSpec(
                unit_id=unit.id,
                name=f"{experiment.name}.{unit.id}",
                argv=(sys.executable, str(script), unit.params["model"], *targets),
                workdir=unit.directory,
                log=unit.directory / "job.log",
                resources=Resources(),
                produces=unit.produces,
            ),
        )

    @hookimpl
    def cruijff_validate(self, experiment, unit, status):
        if unit.tool != self.NAME:
            return None
        ok = all((a.path / "config.json").exists() for a in unit.produces)
        return Validation(unit_id=unit.id, ok=ok, cause="" if ok else "no checkpoint")
