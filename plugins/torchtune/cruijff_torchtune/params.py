"""The parameters an experiment gives the torchtune tool, and how they become config values.

Every parameter is a row of the tables here: FRIENDLY maps a name to its config path (``lr`` ->
``optimizer.lr``; dotted config paths are taken as they are), TOOL lists the plugin's own
parameters (not config values), TYPES and TOOL give the types a value may have, and POSITIVE,
AT_LEAST_0, AT_MOST, CHOICES, READERS and PREFIX the rest of what is checked or converted. The
final config is built in layers, each value remembering the layer it came from: the plugin's
defaults (and a ``base_recipe``'s values) < what the model folder and the experiment imply
(paths, model dimensions, device) < ``controls`` < the run's own parameters. Dicts merge
recursively; scalars and lists replace.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from cruijff import quantities
from cruijff.records import SCALARS, freeze, thaw
from cruijff.yamlfile import yaml_text
from cruijff_torchtune.components import DATASET_TYPES

FRIENDLY: dict[str, str] = {
    "lora_rank": "model.lora_rank",
    "lora_alpha": "model.lora_alpha",
    "lora_dropout": "model.lora_dropout",
    "lora_attn_modules": "model.lora_attn_modules",
    "apply_lora_to_mlp": "model.apply_lora_to_mlp",
    "apply_lora_to_output": "model.apply_lora_to_output",
    "lr": "optimizer.lr",
    "weight_decay": "optimizer.weight_decay",
    "lr_scheduler": "lr_scheduler._component_",
    "num_warmup_steps": "lr_scheduler.num_warmup_steps",
    "batch_size": "batch_size",
    "batch_size_val": "batch_size_val",
    "run_val_every_n_steps": "run_val_every_n_steps",
    "epochs": "epochs",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "max_steps_per_epoch": "max_steps_per_epoch",
    "max_seq_len": "tokenizer.max_seq_len",
    "seed": "seed",
    "shuffle": "shuffle",
    "clip_grad_norm": "clip_grad_norm",
    "train_on_input": "dataset.train_on_input",
    "save_adapter_weights_only": "save_adapter_weights_only",
    "compile": "compile",
    "dtype": "dtype",
    "device": "device",
    "enable_activation_checkpointing": "enable_activation_checkpointing",
    "log_every_n_steps": "log_every_n_steps",
}
"""Parameter name -> config path."""

TYPES: dict[str, tuple[type, ...]] = {
    "lora_rank": (int,),
    "lora_alpha": (int, float),
    "lora_dropout": (int, float),
    "lr": (int, float),
    "weight_decay": (int, float),
    "lr_scheduler": (str,),
    "num_warmup_steps": (int,),
    "batch_size": (int,),
    "batch_size_val": (int,),
    "run_val_every_n_steps": (int,),
    "epochs": (int,),
    "gradient_accumulation_steps": (int,),
    "max_steps_per_epoch": (int, type(None)),
    "max_seq_len": (int, type(None)),
    "seed": (int,),
    "shuffle": (bool,),
    "train_on_input": (bool,),
    "save_adapter_weights_only": (bool,),
    "compile": (bool,),
    "clip_grad_norm": (int, float, type(None)),
    "lora_attn_modules": (list, tuple),
    "apply_lora_to_mlp": (bool,),
    "apply_lora_to_output": (bool,),
    "log_every_n_steps": (int,),
    "enable_activation_checkpointing": (bool,),
    "dtype": (str,),
    "device": (str,),
}

TOOL: dict[str, tuple[type, ...]] = {
    "base_recipe": (str,),
    "finetune": (str,),  # lora | full
    "dataset_type": (str,),
    "prompt": (str,),
    "system_prompt": (str,),
    "validation_during_training": (bool,),
    "dataset_path": (str,),  # cruijff_kit's retired literal training file
    "packed": (bool,),
    "custom_recipe": (str,),
    # what the training job asks of the machine (cruijff's names, then cruijff_kit's)
    "gpus": (int,),
    "cpus": (int,),
    "mem_gb": (int, float),
    "time_minutes": (int,),
    "time": (int, str),
    "mem": (int, str),
    "cpus_per_task": (int,),
    "partition": (str,),
    "constraint": (str,),
    "account": (str,),
}
"""Parameters the plugin itself uses (not config paths)."""

POSITIVE = {
    "lora_rank",
    "batch_size",
    "batch_size_val",
    "epochs",
    "gradient_accumulation_steps",
    "max_seq_len",
    "log_every_n_steps",
    "max_steps_per_epoch",
    "cpus",
    "cpus_per_task",
}
AT_LEAST_0 = {"num_warmup_steps", "run_val_every_n_steps", "gpus", "seed"}
AT_MOST = {
    "seed": 2**31 - 1,  # torchtune seeds each process from it, within an unsigned 32 bits
    "lora_rank": 65_536,
    "batch_size": 1_000_000,
    "batch_size_val": 1_000_000,
    "gradient_accumulation_steps": 1_000_000,
    "max_seq_len": 10_000_000,
    "max_steps_per_epoch": 1_000_000_000,
}
"""Sizes beyond reason, refused where they are written rather than in the job."""

LR_SCHEDULERS = "torchtune.training.lr_schedulers."
FINETUNE = ("lora", "full")
CHOICES: dict[str, tuple[Any, ...]] = {
    "finetune": FINETUNE,
    "dataset_type": DATASET_TYPES,
    # cruijff_kit's names; torchtune must have the one chosen (parse checks it)
    "lr_scheduler": (
        "get_cosine_schedule_with_warmup",
        "get_linear_schedule_with_warmup",
        "get_constant_schedule_with_warmup",
        "get_exponential_schedule_with_warmup",
    ),
    "packed": (False,),  # cruijff_kit's is fixed too; the rows are never packed
    "dtype": ("bf16", "fp32", "fp16", "fp64"),  # torchtune's precision names
    "device": ("cuda", "cpu", "mps", "npu", "xpu"),  # the recipe picks the index per rank
}
"""The values a parameter may take, where they are few."""

READERS = {"time": quantities.seconds, "mem": quantities.megabytes}
"""Parameters written as a cluster writes them (``"1:00:00"``, ``"80G"``): seconds, MB."""

PREFIX = {"lr_scheduler": LR_SCHEDULERS}
"""Parameters whose config value is their value after a prefix (a scheduler's module)."""

KNOWN = tuple(sorted({*FRIENDLY, *TOOL}))


def is_config_path(name: str) -> bool:
    """A dotted name is a config path, taken as it is (``optimizer.fused``)."""
    return "." in name


def check_value(name: str, value: Any) -> str | None:
    """What is wrong with a value of a known parameter, or None."""
    kinds = TYPES.get(name) or TOOL.get(name)
    if kinds is None:
        return None
    if isinstance(value, bool) and bool not in kinds:
        return f"{name} must be {_kinds(kinds)}, not {yaml_text(value)}"
    if not isinstance(value, kinds):
        return f"{name} must be {_kinds(kinds)}, not {yaml_text(value)}"
    if value is None or isinstance(value, (bool, str, list, tuple)):
        pass
    elif not math.isfinite(value):  # .nan or .inf: no step size, no count
        return f"{name} must be a finite number, not {yaml_text(value)}"
    elif name in POSITIVE and value < 1:
        return f"{name} must be at least 1, not {yaml_text(value)}"
    elif name in AT_LEAST_0 and value < 0:
        return f"{name} must be at least 0, not {yaml_text(value)}"
    elif name in AT_MOST and value > AT_MOST[name]:
        return f"{name} must be at most {AT_MOST[name]:,}, not {yaml_text(value)}"
    if name in CHOICES and value not in CHOICES[name]:
        choices = ", ".join(yaml_text(choice, quote=False) for choice in CHOICES[name])
        return f"{name} must be one of {choices}, not {yaml_text(value)}"
    if name in READERS:
        try:
            READERS[name](value)
        except ValueError as error:
            return f"{name} {error}"
    return None


def _kinds(kinds: tuple[type, ...]) -> str:
    names = {
        int: "an integer",
        float: "a number",
        bool: "true or false",
        str: "a string",
        list: "a list",
        tuple: "a list",
        type(None): "null",
    }
    return " or ".join(dict.fromkeys(names[kind] for kind in kinds))


def expand(name: str, value: Any) -> dict[str, Any]:
    """A parameter as nested config values (``lr: 1e-4`` -> ``{optimizer: {lr: 1e-4}}``)."""
    path = FRIENDLY.get(name, name)
    tree: Any = thaw(value)  # new dicts and lists: YAML's scalars are immutable
    if name in PREFIX:
        tree = f"{PREFIX[name]}{tree}"
    for part in reversed(path.split(".")):
        tree = {part: tree}
    return tree


class Layered:
    """A config built from layers, with the source of every leaf value."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.source: dict[str, str] = {}
        self.changed: set[tuple[str, ...]] = set()
        """The paths set or removed since this config was made or copied."""

    def apply(self, values: Mapping[str, Any], source: str) -> None:
        """Merge ``values`` in: dicts recursively, scalars and lists replace."""
        self._merge(self.config, thaw(values), "", source)

    def _merge(
        self, into: dict[str, Any], values: dict[str, Any], prefix: str, source: str
    ) -> None:
        for key, value in values.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                self._merge(into[key], value, f"{path}.", source)
                continue
            if key in into:  # only what it replaces loses its sources (not a scan of all)
                for leaf, _ in _leaves(into[key], path):
                    self.source.pop(leaf, None)
            into[key] = value  # thawed by apply: a copy of the caller's, shared by no one
            self.changed.add(tuple(path.split(".")))
            for leaf, _ in _leaves(value, path):
                self.source[leaf] = source

    def put(self, path: str, value: Any) -> None:
        """Set the existing leaf ``path`` to ``value``, keeping its source."""
        *parents, last = path.split(".")
        node: Any = self.config
        for part in parents:
            node = node[part]
        node[last] = value
        self.changed.add((*parents, last))

    def frozen(self, copied: Mapping[str, Any]) -> Mapping[str, Any]:
        """The config read-only, sharing with ``copied`` (the config it was copied from,
        frozen) every section nothing has changed since."""
        return _patched(copied, self.config, self.changed)

    def _forget(self, path: str) -> None:
        for leaf in [p for p in self.source if p == path or p.startswith(f"{path}.")]:
            del self.source[leaf]

    def remove(self, path: str) -> None:
        """Drop ``path`` (a leaf or a section) and its sources."""
        *parents, last = path.split(".")
        node: Any = self.config
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and last in node:
            del node[last]
            self._forget(path)
            self.changed.add((*parents, last))

    def get(self, path: str, default: Any = None) -> Any:
        return _get(self.config, path, default)

    def settings(self) -> list[tuple[str, Any, str]]:
        """Every leaf as (path, value, source), in config order."""
        return [
            (path, value, self.source.get(path, "?")) for path, value in _leaves(self.config, "")
        ]


class Overlaid:
    """A frozen config with values merged in as :meth:`Layered.apply` and :meth:`Layered.put`
    merge them (dicts recursively, anything else replaces), copying only the sections on
    their paths, once each: :attr:`tree` shares the rest with the config it started from.
    Its leaves' sources are those of the layers it started from (``sources``), but where it
    set them: what a :class:`Layered` doing the same would hold."""

    def __init__(self, tree: Mapping[str, Any], sources: Mapping[str, str]) -> None:
        self._root = dict(tree)  # the plain dicts are this one's copies; the rest is frozen
        self._sources = sources
        self._set: dict[str, str] = {}

    def apply(self, values: Mapping[str, Any], source: str) -> None:
        _merge_into(self._root, values)
        for leaf, _ in _leaves(values, ""):
            self._set[leaf] = source

    def put(self, path: str, value: Any) -> None:
        """Set the existing leaf ``path`` to ``value``, keeping its source."""
        for part in reversed(path.split(".")):
            value = {part: value}
        _merge_into(self._root, value)

    def get(self, path: str, default: Any = None) -> Any:
        return _get(self._root, path, default)

    @property
    def tree(self) -> Mapping[str, Any]:
        return _sealed(self._root)

    def settings(self) -> list[tuple[str, Any, str]]:
        """Every leaf as (path, value, source), in config order, as :meth:`Layered.settings`
        gives them."""
        mine, theirs = self._set, self._sources
        return [
            (path, thaw(value), mine[path] if path in mine else theirs.get(path, "?"))
            for path, value in _leaves(self._root, "")
        ]


def _get(tree: Mapping[str, Any], path: str, default: Any) -> Any:
    """The value at dotted ``path`` in a config, plain or frozen; ``default`` where none."""
    node: Any = tree
    for part in path.split("."):
        if not _is_section(node) or part not in node:
            return default
        node = node[part]
    return node


def _is_section(value: Any) -> bool:
    """A mapping, plain or frozen (their types first: a config has 10^5 leaves a plan)."""
    kind = type(value)
    return (
        kind is dict
        or kind is MappingProxyType
        or (kind not in SCALARS and isinstance(value, Mapping))
    )


def _merge_into(into: dict[str, Any], values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        below = into.get(key)
        if _is_section(value) and _is_section(below):
            if type(below) is not dict:  # a shared section: copied before it changes
                below = into[key] = dict(below)
            _merge_into(below, value)
        else:
            into[key] = freeze(value)


def _sealed(node: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(
        {key: _sealed(value) if type(value) is dict else value for key, value in node.items()}
    )


def _patched(
    frozen: Mapping[str, Any], config: dict[str, Any], changed: set[tuple[str, ...]]
) -> Mapping[str, Any]:
    under: dict[str, set[tuple[str, ...]]] = {}
    for path in changed:
        under.setdefault(path[0], set()).add(path[1:])
    made = {}
    for key, value in config.items():
        below = under.get(key, set())  # nothing recorded: the template's section, if it has one
        if not below and key in frozen:
            made[key] = frozen[key]
        elif () not in below and isinstance(value, dict) and isinstance(frozen.get(key), Mapping):
            made[key] = _patched(frozen[key], value, below)
        else:
            made[key] = freeze(value)
    return MappingProxyType(made)


def _leaves(value: Any, path: str) -> list[tuple[str, Any]]:
    """Every leaf under ``value`` as (dotted path, value), in config order (an empty section
    is a leaf)."""
    found: list[tuple[str, Any]] = []
    _gather(value, path, found)
    return found


def _gather(value: Any, path: str, found: list[tuple[str, Any]]) -> None:
    if _is_section(value) and value:  # plain or frozen
        for key, item in value.items():
            _gather(item, f"{path}.{key}" if path else key, found)
    else:
        found.append((path, value))
