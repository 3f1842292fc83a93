"""The top-level sections of an experiment file, each with the parser that turns it into
fields of the :class:`~cruijff.records.Experiment`, and :func:`read`, which runs them in order.

:data:`SECTIONS` is the table: a parser takes the section's value (None when it is left out)
and returns the Experiment fields it gives. The sections whose keys belong to plugins
(``controls``, ``output``) only offer their keys, as :class:`~cruijff.records.Key` records.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping
from typing import Any

from cruijff.experiment.context import Context
from cruijff.experiment.evaluation import evaluation
from cruijff.experiment.reader import ListOf, is_count, kind, present
from cruijff.experiment.retired import retire
from cruijff.experiment.runs import runs, variables
from cruijff.records import (
    NAME_PATTERN,
    DataRef,
    Experiment,
    Key,
    ModelRef,
    Problem,
    Role,
    SchedulerConfig,
)
from cruijff.suggest import did_you_mean, one_of
from cruijff.yamlfile import YamlDoc, yaml_text

PLACEHOLDER_NAME = "unnamed"
"""The experiment's name while the file's own is missing or invalid (an error says so)."""

MODEL_KEYS = ("name", "path", "size_gb")
DATA_KEYS = ("path", "format", "dataset_label", "splits", "size_kb")
GENERATION_ROLE = Role.GENERATION.value
MAX_SIZE_GB = 10_000
"""Largest ``size_gb`` of a base model: the largest open models are under 2,000 GB; a typo such
as ``1e308`` would otherwise reach the estimates as infinity."""
MODELS = ListOf(
    plural="base models",
    item="a mapping (name, path)",
    hint="write - {name: my-model, path: models/my-model}",
    nonempty=True,
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

Parser = Callable[[Context, Any], Mapping[str, Any]]
"""A section's parser: (what parsing found so far, the section's value) -> Experiment fields."""


def experiment(ctx: Context, value: Any) -> dict[str, Any]:
    """The name and free-form metadata; sets the experiment directory."""
    section = retire(ctx, ctx.mapping(value, "experiment"), "experiment")
    name = ctx.name(section, "experiment")
    if section.get("date") is not None:
        date = section["date"]
        try:
            valid = isinstance(date, str) and bool(_DATE.fullmatch(date))
            valid = valid and bool(datetime.date.fromisoformat(date))
        except ValueError:
            valid = False
        if not valid:
            ctx.error("experiment.date", f"{yaml_text(date)} is not a date", "write YYYY-MM-DD")
    directory = ctx.string(section, "dir", "experiment")
    if directory == "":
        ctx.error("experiment.dir", "the path is empty", "leave dir out for the file's folder")
    elif directory is not None:
        ctx.directory = ctx.resolve(directory, "experiment.dir") or ctx.folder
    effect = section.get("min_effect")
    if effect is not None and (
        isinstance(effect, bool) or not isinstance(effect, int | float) or not 0 < effect < 1
    ):
        ctx.error(
            "experiment.min_effect",
            f"{yaml_text(effect)} is not a difference in accuracy",
            "absolute accuracy points as a fraction, e.g. 0.05 for five points",
        )
    meta = {key: item for key, item in section.items() if key not in ("name", "dir")}
    valid_name = name is not None and NAME_PATTERN.fullmatch(name)
    return {"name": name if valid_name else PLACEHOLDER_NAME, "meta": meta}


def tools(ctx: Context, value: Any) -> dict[str, Any]:
    """Which tool plays each role, as written: the plugin manager resolves names and aliases."""
    roles = [role.value for role in Role]
    found = ctx.tools
    for role, tool in ctx.mapping(value, "tools").items():
        if role not in roles:
            ctx.error(f"tools.{role}", "unknown role", did_you_mean(role, roles) or one_of(roles))
        elif not isinstance(tool, str) or not tool:
            ctx.error(f"tools.{role}", f"expected a tool name, not {kind(tool)}")
        else:
            found[role] = tool
    return {"tools": found}


def offered(section: str, namespace: str) -> Parser:
    """The parser of a section whose keys all belong to plugins: each is offered to them in
    ``namespace`` (but retired ones); the section becomes the Experiment field of its name."""

    def parse(ctx: Context, value: Any) -> dict[str, Any]:
        values = present(retire(ctx, ctx.mapping(value, section), section))
        for key, item in values.items():
            ctx.offer(namespace, f"{section}.{key}", key, item)
        return {section: values}

    return parse


def models(ctx: Context, value: Any) -> dict[str, Any]:
    """The base models; their names go to ``ctx`` for runs to refer to."""
    section = ctx.mapping(value, "models")
    ctx.known_keys(section, "models", ["base"])
    for path, item in ctx.items(section.get("base"), "models.base", MODELS):
        ctx.known_keys(item, path, MODEL_KEYS)
        name = ctx.name(item, path)
        ctx.first(ctx.model_names, name, path, "base model")  # its model is kept all the same
        folder = ctx.file_path(item, "path", path, required=True, what="model folder", folder=True)
        size = item.get("size_gb")
        if size is not None and (isinstance(size, bool) or not isinstance(size, (int, float))):
            ctx.error(f"{path}.size_gb", f"expected a size in GB, not {kind(size)}")
            size = None
        elif size is not None and not 0 <= size <= MAX_SIZE_GB:  # NaN too
            ctx.error(
                f"{path}.size_gb",
                f"{yaml_text(size)} GB is not the size of a model",
                f"size_gb is a number of GB from 0 to {MAX_SIZE_GB:,}",
            )
            size = None
        if name and NAME_PATTERN.fullmatch(name) and folder is not None:
            ctx.models.append(ModelRef(name=name, path=folder, size_gb=size, yaml_path=path))
    return {"models": ctx.models}


def data(ctx: Context, value: Any) -> dict[str, Any]:
    """The training data (none without the section), and the block that generates it."""
    if value is None:
        return {}
    section = ctx.mapping(value, "data")
    ctx.known_keys(section, "data", ["training", "data_generation"])
    generation = _generation(ctx, section.get("data_generation"))
    if "training" not in section:
        ctx.error("data.training", "training is required", "add training: {path: ...}")
        return {}
    path = "data.training"
    training = retire(ctx, ctx.mapping(section["training"], path), path)
    ctx.known_keys(training, path, DATA_KEYS)
    if generation is None:
        file = ctx.file_path(training, "path", path, required=True, what="data file")
    else:  # the generation job writes it: it need not exist yet
        written = ctx.string(training, "path", path, required=True)
        file = ctx.resolve(written, f"{path}.path") if written else None
    splits = ctx.mapping(training.get("splits"), f"{path}.splits")
    for split, count in splits.items():
        if not is_count(count):
            ctx.error(f"{path}.splits.{split}", f"expected a count, not {kind(count)}")
    label = ctx.string(training, "dataset_label", path) or ""
    if label and file is not None and label != file.stem:
        # cruijff_kit trains on {folder}/{dataset_label}.json: another stem is another file
        ctx.error(
            f"{path}.dataset_label",
            f"{yaml_text(label)} is not the name of the data file {file.name}",
            f"cruijff_kit reads {label}.json beside it: write dataset_label: {file.stem}, "
            "or point path at that file",
        )
    data_format = ctx.string(training, "format", path) or "json"
    if data_format != "json":
        ctx.error(f"{path}.format", f"unknown data format {yaml_text(data_format)}", 'write "json"')
    size = training.get("size_kb")
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, float))):
        ctx.error(f"{path}.size_kb", f"expected a size in KB, not {kind(size)}")
        size = None
    if file is None:
        return {}
    return {
        "data": DataRef(
            path=file,
            format=data_format,
            label=label,
            splits={split: count for split, count in splits.items() if is_count(count)},
            size_kb=size,
            generation=generation,
            yaml_path=path,
        )
    }


def _generation(ctx: Context, value: Any) -> dict[str, Any] | None:
    """The ``data_generation`` block: its ``tool`` plays the generation role, and its other
    keys are that tool's (offered to the plugins)."""
    if value is None:
        return None
    path = "data.data_generation"
    block = ctx.mapping(value, path)
    tool = ctx.string(block, "tool", path, required=True)
    if tool:
        named = ctx.tools.get(GENERATION_ROLE)
        if named is not None and named != tool:
            ctx.error(
                f"{path}.tool",
                f"tools.generation names {yaml_text(named)}, this block {yaml_text(tool)}",
                "name one generator",
            )
        ctx.tools[GENERATION_ROLE] = tool
    for key, item in block.items():
        if key != "tool":
            ctx.offer("generation", f"{path}.{key}", key, item)
    return block


def scheduler(ctx: Context, value: Any) -> dict[str, Any]:
    """Which scheduler (None: the default) and its options, which belong to it."""
    section = ctx.mapping(value, "scheduler")
    name = ctx.string(section, "name", "scheduler")
    options = {key: item for key, item in section.items() if key != "name"}
    for key, item in options.items():
        ctx.offer("scheduler", f"scheduler.{key}", key, item)
    return {"scheduler": SchedulerConfig(name=name, options=options)}


SECTIONS: dict[str, Parser] = {
    "experiment": experiment,  # first: the experiment directory, where runs live
    "tools": tools,
    "variables": variables,  # the grid's axes, before runs
    "controls": offered("controls", "parameters"),
    "models": models,  # the names runs refer to, before runs
    "data": data,
    "output": offered("output", "output"),
    "runs": runs,  # the names the matrix refers to, before evaluation
    "evaluation": evaluation,
    "scheduler": scheduler,
}
"""Every top-level section and its parser, in the order they are parsed (and usually
written): a section refers only to names found in those before it."""

REQUIRED = {
    "experiment": 'add experiment: {name: "my_experiment"}',
    "models": "add models: {base: [{name: ..., path: ...}]}",
}
"""The sections a file must have, and the hint when one is missing."""


def read(
    doc: YamlDoc, labels: Mapping[str, str]
) -> tuple[Experiment, tuple[Key, ...], tuple[Problem, ...]]:
    """The experiment of a loaded file, the keys that belong to plugins, and every problem
    with its shape, in file order."""
    ctx = Context(doc, labels)
    document = doc.data
    for key in document:
        if key not in SECTIONS:
            ctx.error(key, "unknown section", did_you_mean(key, SECTIONS) or one_of(SECTIONS))
    fields: dict[str, Any] = {"name": PLACEHOLDER_NAME}
    for section, parse in SECTIONS.items():
        if section in document or section not in REQUIRED:
            fields.update(parse(ctx, document.get(section)))
        else:
            ctx.error(section, f"the {section} section is missing", REQUIRED[section])
    experiment = Experiment(
        file=doc.file, directory=ctx.directory, document=document, locate=doc.where, **fields
    )
    problems = sorted(
        ctx.problems, key=lambda p: (p.where.line or 0, p.where.column or 0, p.where.path)
    )
    return experiment, tuple(ctx.keys), tuple(problems)
