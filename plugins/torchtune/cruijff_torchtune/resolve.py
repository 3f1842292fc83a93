"""The run's choices that shape its whole config, decided in one place from ``controls`` and the
run's parameters: LoRA or full, whether the base model is quantized to NF4, whether the
validation loss is computed during training, and the training prompt.

Parsing reads them to check a run (QLoRA needs weights NF4 can split), the config builder to
write it: both ask the same functions, so what is checked is what is trained.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from cruijff import stamps
from cruijff.records import thaw
from cruijff_torchtune import params
from cruijff_torchtune.recipes import find_config, recipe_quantizes_base

MISSING = object()
"""What :func:`given` returns for a config path neither ``controls`` nor the run sets."""

TRAIN_PROMPT = "{input}\n"
"""The training prompt where the experiment gives none (cruijff_kit's)."""


def tool_value(name: str, controls: Mapping, run: Mapping, default: Any) -> tuple[Any, str]:
    """A plugin-level parameter, the run's over the controls', and where it came from."""
    if name in run:
        return thaw(run[name]), "run"
    if name in controls:
        return thaw(controls[name]), "controls"
    return default, "default"


def given(path: str, controls: Mapping, run: Mapping) -> Any:
    """The value the experiment gives config ``path`` (``model.quantize_base``), the run's over
    the controls', whether as that dotted name or inside a section; MISSING where neither does."""
    found = _in_layer(path, run)
    if found is not MISSING:
        return found
    if type(controls) is not MappingProxyType:
        return _in_layer(path, controls)
    # the experiment's read-only controls: the same for every run, each path looked up once
    # per design
    found = stamps.once(
        ("torchtune.given", path, id(controls)), lambda: _in_layer(path, controls), controls
    )
    return thaw(found) if found is not MISSING else MISSING


def bearing(path: str, run: Mapping) -> tuple[tuple[str, Any], ...]:
    """The run's parameters that :func:`given` or a ``base_recipe`` could take config ``path``
    from: runs that agree on these agree on the path's value (a sweep's seeds and ranks bear
    on few paths)."""
    found = []
    for name, value in run.items():
        if name == "base_recipe":
            found.append((name, value))
        elif name not in params.TOOL:
            root = params.FRIENDLY.get(name, name)
            if root == path or path.startswith(f"{root}."):
                found.append((name, value))
    return tuple(found)


def _in_layer(path: str, layer: Mapping) -> Any:
    found = MISSING
    for name, value in layer.items():
        if name in params.TOOL:
            continue
        # later keys win within a layer, as they do when the config is built
        found = _inside(params.FRIENDLY.get(name, name), value, path, found)
    return found


def _inside(name: str, value: Any, path: str, otherwise: Any) -> Any:
    if name == path:
        return thaw(value)
    if not path.startswith(f"{name}."):
        return otherwise
    node = value
    for part in path[len(name) + 1 :].split("."):
        if not isinstance(node, Mapping) or part not in node:
            return otherwise
        node = node[part]
    return thaw(node)


def finetune(controls: Mapping, run: Mapping) -> str:
    """``lora`` or ``full``: the run's ``finetune``, else what its ``base_recipe``'s recipe does
    (a recipe named for LoRA trains LoRA), else ``lora``."""
    chosen, _ = tool_value("finetune", controls, run, None)
    if chosen:
        return chosen
    recipe, _ = tool_value("base_recipe", controls, run, None)
    found = find_config(recipe) if isinstance(recipe, str) else None
    if found is not None:
        return "lora" if "lora" in found[0].name else "full"
    return "lora"


def quantizes_base(controls: Mapping, run: Mapping) -> bool:
    """Whether the run trains LoRA over base weights quantized to NF4 (QLoRA).

    Only a LoRA run can (torchtune's full builders take no ``quantize_base``). Where the
    experiment gives ``model.quantize_base``, its truth decides: ``null`` reaches the builder
    as ``quantize_base=None``, which torchtune's LoRA layers test for truth, so null is no
    quantization, like false. Otherwise the ``base_recipe`` decides (a ``qlora_*`` builder,
    or a ``quantize_base`` in its model section); without one, no quantization.
    """
    if finetune(controls, run) != "lora":
        return False
    value = given("model.quantize_base", controls, run)
    if value is not MISSING:
        return bool(value)
    recipe, _ = tool_value("base_recipe", controls, run, None)
    return isinstance(recipe, str) and recipe_quantizes_base(recipe)


def validates(controls: Mapping, run: Mapping) -> bool:
    """Whether the run asks for the validation loss during training
    (``validation_during_training: true``); ``run_val_every_n_steps: 0`` turns it off again."""
    asked, _ = tool_value("validation_during_training", controls, run, False)
    every = given("run_val_every_n_steps", controls, run)
    return bool(asked) and (every is MISSING or bool(every))
