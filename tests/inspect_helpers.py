"""Shared pieces of the inspect plugin's tests: the example task files, experiment changes that
switch the fake experiment to the inspect evaluator, a stand-in preparation tool whose
"training" copies a model folder (or a LoRA adapter) into each epoch's checkpoint (the artifact
shapes of DESIGN.md §4), so an evaluation can depend on a real model without torchtune, and a
stand-in generation tool that writes the data file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cruijff import hookimpl
from cruijff.records import (
    Artifact,
    ArtifactKind,
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
CK_TASK = Path(__file__).parent / "inspect_tasks" / "ck_style_task.py"
"""A task in cruijff_kit's style: reads prompt, system prompt and scorers from config_path."""
WORDS = ["apple", "pear", "fig", "plum", "kiwi", "lime", "lemon", "mango", "melon", "peach"]


def inspect_changes(**evaluation: Any) -> dict[str, Any]:
    """Changes to ``make_experiment``'s default: the inspect evaluator on the example task, the
    models trained and asked as chats (``dataset_type``, which an evaluation requires)."""
    section = {"tasks": [{"name": "capitalization", "script": str(TASKS)}], **evaluation}
    return {
        "tools": {"evaluation": "inspect"},
        "controls": {"dataset_type": "chat_completion"},
        "evaluation": section,
    }


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


class AdapterTrainer(CopyTrainer):
    """A preparation tool ``adaptertrain`` that keeps LoRA adapters only (as a trainer with
    ``save_adapter_weights_only: true`` does): each epoch's ``lora-adapter`` artifact is a copy
    of the folder ``adapter``, and there is no ``hf-model``."""

    NAME = "adaptertrain"

    def __init__(self, adapter: Path | None = None, epochs: int = 2) -> None:
        super().__init__(epochs)
        self.adapter = adapter

    @hookimpl
    def cruijff_tools(self):
        yield Tool(
            name=self.NAME,
            role=Role.PREPARATION,
            labels={"lora_rank": "rank"},
            produces=(ArtifactKind.LORA_ADAPTER,),
        )

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
                params={"model": str(self.adapter)},
                produces=[
                    Artifact(
                        kind=ArtifactKind.LORA_ADAPTER,
                        run=run.name,
                        epoch=epoch,
                        path=run.directory / "train" / "adapters" / f"epoch_{epoch}",
                    )
                    for epoch in range(self.epochs)
                ],
            )
            for run in experiment.runs
            if run.type is RunType.FINE_TUNED
        )

    @hookimpl
    def cruijff_validate(self, experiment, unit, status):
        if unit.tool != self.NAME:
            return None
        ok = all((a.path / "adapter_config.json").exists() for a in unit.produces)
        return Validation(unit_id=unit.id, ok=ok, cause="" if ok else "no adapter")


class FakeGenerator:
    """A generation tool ``gen``: one unit writing the experiment's data file, whose
    ``dataset`` artifact declares ``splits`` (rows per split) before the file exists."""

    NAME = "gen"

    def __init__(self, splits: dict[str, int]) -> None:
        self.splits = splits

    @hookimpl
    def cruijff_tools(self):
        yield Tool(name=self.NAME, role=Role.GENERATION, produces=(ArtifactKind.DATASET,))

    @hookimpl
    def cruijff_parse(self, experiment, keys):
        if experiment.tools.get("generation") != self.NAME:
            return None
        mine = {k.path for k in keys if k.section == "generation"}
        return ParseReport(claimed=mine, vocabulary={"generation": ("rows",)})

    @hookimpl
    def cruijff_select(self, experiment, tool, upstream):
        if tool.name != self.NAME:
            return None
        return (
            Unit(
                id="data.generate",
                tool=self.NAME,
                kind="generate",
                run="",
                directory=experiment.directory / "data_generation",
                produces=[
                    Artifact(
                        kind=ArtifactKind.DATASET, path=experiment.data.path, splits=self.splits
                    )
                ],
            ),
        )

    @hookimpl
    def cruijff_generate(self, experiment, unit):
        if unit.tool != self.NAME:
            return None
        rows = {
            split: [{"input": w, "output": w.upper()} for w in WORDS[:count]]
            for split, count in self.splits.items()
        }
        script = unit.directory / "write.py"
        code = f"import json, sys\nopen(sys.argv[1], 'w').write(json.dumps({rows!r}))\n"
        return Generated(
            files=[FileSpec(path=script, content=code)],
            job=JobSpec(
                unit_id=unit.id,
                name=f"{experiment.name}.{unit.id}",
                argv=(sys.executable, str(script), str(experiment.data.path)),
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
        ok = experiment.data.path.exists()
        return Validation(unit_id=unit.id, ok=ok, cause="" if ok else "no data")


def write_adapter(folder: Path, base: Path, *, rank: int = 2, scale: float = 0.5) -> Path:
    """A PEFT-format LoRA adapter (q_proj and v_proj of every layer) for the model folder
    ``base``, with random weights, recording ``base`` as its base model; beside it the base's
    config and tokenizer files, as torchtune leaves them in an adapter-only checkpoint."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    folder.mkdir(parents=True, exist_ok=True)
    for item in base.iterdir():
        if item.is_file() and item.suffix != ".safetensors":
            shutil.copy2(item, folder / item.name)
    weights = {}
    for shard in sorted(base.glob("*.safetensors")):
        weights.update(load_file(str(shard)))
    generator = torch.Generator().manual_seed(3)
    tensors = {}
    for key, weight in sorted(weights.items()):
        if not key.endswith(("q_proj.weight", "v_proj.weight")):
            continue
        module = key.removesuffix(".weight")
        out_features, in_features = weight.shape
        tensors[f"base_model.model.{module}.lora_A.weight"] = torch.randn(
            rank, in_features, generator=generator
        )
        tensors[f"base_model.model.{module}.lora_B.weight"] = (
            torch.randn(out_features, rank, generator=generator) * scale
        )
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    config = {
        "peft_type": "LORA",
        "r": rank,
        "lora_alpha": 2 * rank,
        "target_modules": ["q_proj", "v_proj"],
        "base_model_name_or_path": str(base),
        "task_type": "CAUSAL_LM",
    }
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder
