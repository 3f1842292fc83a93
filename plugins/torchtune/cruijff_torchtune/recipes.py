"""torchtune's recipes and their configs, read from its files without importing it.

Importing torchtune costs seconds (it imports torch); listing recipes, checking a
``base_recipe`` name and reading its YAML need only the package's files: the registry
(``torchtune/_recipe_registry.py``) is parsed, not imported, and the configs sit in the
``recipes/configs`` folder installed beside ``torchtune/``.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path

import attrs


@attrs.frozen
class RecipeConfig:
    """One of a recipe's configs: its name (``llama3_2/1B_lora_single_device``) and file."""

    name: str
    path: Path


@attrs.frozen
class Recipe:
    """A torchtune recipe, the configs it ships with, and whether it runs on several GPUs."""

    name: str
    configs: tuple[RecipeConfig, ...]
    distributed: bool


@functools.cache
def torchtune_folder() -> Path | None:
    """Where the torchtune package is installed, or None if it is not."""
    spec = importlib.util.find_spec("torchtune")
    return Path(spec.origin).parent if spec and spec.origin else None


@functools.cache
def recipes() -> tuple[Recipe, ...]:
    """Every recipe of the registry, in its order (empty when torchtune is not installed)."""
    folder = torchtune_folder()
    if folder is None:
        return ()
    configs_root = folder.parent / "recipes" / "configs"
    tree = ast.parse((folder / "_recipe_registry.py").read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Recipe":
            fields = {kw.arg: kw.value for kw in node.keywords}
            configs = tuple(
                RecipeConfig(
                    name=ast.literal_eval(_keyword(call, "name")),
                    path=configs_root / ast.literal_eval(_keyword(call, "file_path")),
                )
                for call in getattr(fields.get("configs"), "elts", ())
                if isinstance(call, ast.Call)
            )
            found.append(
                Recipe(
                    name=ast.literal_eval(fields["name"]),
                    configs=configs,
                    distributed=bool(ast.literal_eval(fields["supports_distributed"])),
                )
            )
    return tuple(found)


def _keyword(call: ast.Call, name: str) -> ast.expr:
    return next(kw.value for kw in call.keywords if kw.arg == name)


def find_config(name: str) -> tuple[Recipe, RecipeConfig] | None:
    """The recipe that ships config ``name``, and the config; None if no recipe does."""
    for recipe in recipes():
        for config in recipe.configs:
            if config.name == name:
                return recipe, config
    return None


@functools.cache
def recipe_quantizes_base(name: str) -> bool:
    """Whether config ``name``'s own model quantizes its base weights to NF4: the
    ``quantize_base`` of its model section where it sets one (``llama3/8B_qdora_single_device``),
    else whether its builder is a ``qlora_*`` one (torchtune's ``partial(lora_*,
    quantize_base=True)``). False for an unknown name. Whether a run quantizes is
    :func:`cruijff_torchtune.resolve.quantizes_base`'s to say."""
    from cruijff.yamlfile import load_yaml

    found = find_config(name)
    if found is None:
        return False
    model = load_yaml(found[1].path).data.get("model") or {}
    if "quantize_base" in model:
        return bool(model["quantize_base"])
    return str(model.get("_component_", "")).rpartition(".")[2].startswith("qlora_")


def config_names() -> list[str]:
    """Every config name, for "did you mean"."""
    return [config.name for recipe in recipes() for config in recipe.configs]
