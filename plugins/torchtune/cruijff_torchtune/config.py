"""The ``finetune.yaml`` of one fine-tuning run, with where each of its values came from.

:func:`build` adds layers in precedence order, one named step each: the plugin's defaults
(cruijff_kit's, :data:`DEFAULTS`) < the nine values a ``base_recipe`` gives (:data:`RECIPE_VALUES`,
as cruijff_kit takes them) < what the model folder and the experiment imply < ``controls`` < the
run's parameters, then the values derived from the result (``lora_alpha`` = 2 × ``lora_rank``,
the validation dataset).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from cruijff import stamps
from cruijff.dumps import yaml_block
from cruijff.errors import UserError
from cruijff.records import freeze, thaw
from cruijff.yamlfile import load_yaml
from cruijff_torchtune import params, resolve
from cruijff_torchtune.models import ModelSpec
from cruijff_torchtune.recipes import find_config

COMPONENTS = "cruijff_torchtune.components"
ADAMW = "torch.optim.AdamW"
MISSING_WEIGHTS = "model.safetensors"
"""The checkpoint file a plan names for a model folder without weights yet (HF's name for a
single-file model); scaffolding refuses such a model, so no job ever reads this guess."""

DEFAULTS: dict[str, Any] = {
    "model": {"_component_": ""},  # the model folder's builder, first in its section
    "seed": 14,
    "shuffle": True,
    "batch_size": 4,
    "epochs": 1,
    "max_steps_per_epoch": None,
    "gradient_accumulation_steps": 1,
    "clip_grad_norm": None,
    "optimizer": {"_component_": ADAMW, "lr": 1e-4, "weight_decay": 0.01, "fused": True},
    "lr_scheduler": {
        "_component_": f"{params.LR_SCHEDULERS}get_cosine_schedule_with_warmup",
        "num_warmup_steps": 100,
    },
    "loss": {"_component_": "torchtune.modules.loss.CEWithChunkedOutputLoss"},
    "tokenizer": {"max_seq_len": 2048},  # read by nothing: rows are never cut to it
    "log_every_n_steps": 5,
    "compile": False,
    "enable_activation_checkpointing": False,
    "enable_activation_offloading": False,
    "save_adapter_weights_only": False,  # cruijff_kit's is true; evaluation reads merged models
}
"""The defaults of every run: cruijff_kit's (``setup_finetune.py``), except
``save_adapter_weights_only``."""

LORA_DEFAULTS = {
    "lora_attn_modules": ["q_proj", "v_proj", "output_proj"],
    "apply_lora_to_mlp": True,
    "apply_lora_to_output": False,
    "lora_rank": 64,
    "lora_dropout": 0.0,
}
"""cruijff_kit's LoRA: its targets, rank and dropout; ``lora_alpha`` is 2 × the rank."""

VALIDATION_EVERY = 50
"""Optimizer steps between validation passes where ``validation_during_training`` asks for
them and ``run_val_every_n_steps`` does not say (cruijff_kit's number)."""

RECIPE_VALUES = (
    "model.lora_rank",
    "model.lora_dropout",
    "optimizer.lr",
    "optimizer.weight_decay",
    "batch_size",
    "epochs",
    "gradient_accumulation_steps",
    "lr_scheduler.num_warmup_steps",
    "tokenizer.max_seq_len",
)
"""The only values a ``base_recipe`` gives, as in cruijff_kit (each where the experiment does
not set it); everything else stays the plugin's."""

RECIPES = {
    ("lora", False): "lora_finetune_single_device",
    ("full", False): "full_finetune_single_device",
    ("lora", True): "lora_finetune_distributed",
    ("full", True): "full_finetune_distributed",
}
"""torchtune's recipes, by (fine-tune, distributed)."""

VALIDATING = "cruijff_torchtune/validating/{finetune}_{where}.py"
"""The plugin's own recipes (torchtune's, computing the validation loss where the config asks;
:mod:`cruijff_torchtune.validating`), as ``tune run`` takes a recipe of one's own: a path it
turns into the module to run."""


def recipe_for(finetune: str, gpus: int, validating: bool) -> str:
    """What ``tune run`` starts: torchtune's recipe, or the plugin's validating one where the
    run asks for the validation loss, and for LoRA on the CPU (whose checkpoints torchtune's
    recipe merges into the live model: :mod:`cruijff_torchtune.validating.lora_single_device`)."""
    if validating or (finetune == "lora" and gpus == 0):
        where = "distributed" if gpus > 1 else "single_device"
        return VALIDATING.format(finetune=finetune, where=where)
    return RECIPES[finetune, gpus > 1]


@attrs.frozen(kw_only=True)
class RunConfig:
    """A run's training config (plain data, to dump), the recipe ``tune run`` starts, whether it
    trains LoRA, whether it computes the validation loss, and every leaf's
    ``(path, value, source)`` (made when first read)."""

    recipe: str
    frozen: Mapping[str, Any]
    """The config read-only (for the unit's plan)."""
    _settings: Callable[[], list[tuple[str, Any, str]]] = attrs.field(
        alias="settings", repr=False, eq=False
    )
    lora: bool
    validating: bool = False

    @property
    def config(self) -> dict[str, Any]:
        """The config as plain data (the same as :attr:`frozen`)."""
        return thaw(self.frozen)

    @property
    def settings(self) -> tuple[tuple[str, Any, str], ...]:
        return tuple(self._settings())

    @property
    def adapters_only(self) -> bool:
        """Whether the run keeps only LoRA adapters (``save_adapter_weights_only``)."""
        return self.lora and bool(self.frozen.get("save_adapter_weights_only"))


def dump_yaml(data: Any) -> str:
    """``data`` as block-style YAML, keys in their order."""
    return yaml_block(data, allow_unicode=True)


_RUN_NAME = "\x00run-name\x00"
_RUN_DIR = Path("/\x00run-dir\x00")
"""Stand-ins for a run's name and directory in the layers runs share (:class:`Shared`)."""

_SHARED_LAYERS = frozenset({"model.quantize_base", "run_val_every_n_steps"})
"""Config paths that decide more than their own value (QLoRA, the validation pass): a run
that sets one builds its shared layers itself."""


@attrs.define
class _Template:
    layered: params.Layered
    recipe: str
    lora: bool
    validating: bool
    stand_ins: tuple[str, ...]  # paths of the experiment layer's values that name the run
    frozen: Mapping[str, Any] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.frozen = freeze(self.layered.config)


class Shared:
    """The layers of a config that the runs of one sweep share, built once per distinct input
    (model, data, device, controls and the run's values that shape the config); each run then
    applies its own plain values (``lora_rank``, ``lr``, ``seed``) on a copy. The result is
    the config :func:`build` makes alone, value for value and source for source (a test
    builds both): only parameters whose paths no other of the run's parameters touch are
    applied late, and their layer (``run``) is the last but the derived values."""

    def __init__(self) -> None:
        self._made: dict[tuple, _Template] = {}
        self._late: dict[tuple, tuple[str, ...]] = {}
        self._controls: tuple[Mapping[str, Any], str] | None = None

    def late(self, run: Mapping[str, Any]) -> tuple[str, ...]:
        """:func:`_late` of ``run``, decided once per set of parameter names."""
        shape = tuple((name, isinstance(value, Mapping)) for name, value in run.items())
        known = self._late.get(shape)
        if known is None:
            known = self._late[shape] = _late(run)
        return known

    def text(self, controls: Mapping[str, Any]) -> str:
        """``controls`` as text for a template's key, made once for the experiment's."""
        if self._controls is None or self._controls[0] is not controls:
            self._controls = (controls, repr(sorted(controls.items())))
        return self._controls[1]

    def template(self, key: tuple, make: Callable[[], _Template]) -> _Template:
        known = self._made.get(key)
        if known is None:
            known = self._made[key] = make()
        return known


def build(
    *,
    run_name: str,
    output_dir: Path,
    model: ModelSpec,
    data: Path,
    controls: Mapping[str, Any],
    run: Mapping[str, Any],
    gpus: int,
    wandb_project: str | None = None,
    max_samples: int | None = None,
    shared: Shared | None = None,
) -> RunConfig:
    """The final config of a run: defaults < base recipe's values < model and experiment <
    controls < run < derived. ``max_samples`` keeps the first training rows only (cruijff_kit's
    ``data.training.splits.train``). With ``shared`` (one per experiment), the layers runs have
    in common are built once."""
    late = shared.late(run) if shared is not None else ()
    early = {name: value for name, value in run.items() if name not in late}

    def make() -> _Template:
        return _template(
            run_name=run_name,
            stand_ins=shared is not None,
            output_dir=output_dir,
            model=model,
            data=data,
            controls=controls,
            run=early,
            gpus=gpus,
            wandb_project=wandb_project,
            max_samples=max_samples,
        )

    if shared is None:
        template = make()
        layered = template.layered
        layered.changed = set()  # frozen anew from the template's, after the derived values
        _derive(layered, template, controls, run)
        return RunConfig(
            recipe=template.recipe,
            frozen=layered.frozen(template.frozen),
            settings=layered.settings,
            lora=template.lora,
            validating=template.validating,
        )
    key = (
        shared.text(controls),
        model.path,
        id(model),  # one spec per version of config.json (units._model)
        str(data),
        gpus,
        wandb_project,
        max_samples,
        repr(sorted(early.items())),
        tuple(late),
    )
    template = shared.template(key, make)
    names = {_RUN_NAME: run_name, str(_RUN_DIR): str(output_dir)}

    # the run's own values over the shared layers, then the derived ones
    target = params.Overlaid(template.frozen, template.layered.source)
    for path in template.stand_ins:
        value = target.get(path)
        for stand_in, real in names.items():
            value = value.replace(stand_in, real)
        target.put(path, value)
    for name in late:
        target.apply(params.expand(name, run[name]), "run")
    _derive(target, template, controls, run)
    return RunConfig(
        recipe=template.recipe,
        frozen=target.tree,
        settings=target.settings,
        lora=template.lora,
        validating=template.validating,
    )


def _derive(
    target: params.Layered | params.Overlaid, template: _Template, controls: Mapping, run: Mapping
) -> None:
    if template.lora:
        _derive_lora_alpha(target, controls, run)
    if template.validating:
        _add_validation_data(target)


def _late(run: Mapping[str, Any]) -> tuple[str, ...]:
    """The run's parameters that may be applied after the shared layers: plain config values
    (a friendly name, not a section) at paths no other parameter of the run touches and that
    shape nothing else."""
    paths = {name: params.FRIENDLY.get(name, name) for name in run if name not in params.TOOL}

    def alone(name: str) -> bool:
        mine = paths[name]
        return not any(
            other != name
            and (theirs == mine or theirs.startswith(f"{mine}.") or mine.startswith(f"{theirs}."))
            for other, theirs in paths.items()
        )

    return tuple(
        name
        for name, value in run.items()
        if name in params.FRIENDLY
        and name not in params.TOOL
        and paths[name] not in _SHARED_LAYERS
        and not isinstance(value, Mapping)
        and alone(name)
    )


def _template(
    *,
    run_name: str,
    stand_ins: bool,
    output_dir: Path,
    model: ModelSpec,
    data: Path,
    controls: Mapping[str, Any],
    run: Mapping[str, Any],
    gpus: int,
    wandb_project: str | None,
    max_samples: int | None,
) -> _Template:
    """Every layer up to the run's own values, and what the derived layers need; with
    ``stand_ins``, the run's name and directory are stand-ins a copy replaces."""
    layered = params.Layered()
    recipe_name, _ = resolve.tool_value("base_recipe", controls, run, None)
    finetune = resolve.finetune(controls, run)
    lora = finetune == "lora"
    on_gpu = gpus > 0
    _add_defaults(layered, lora)
    _add_recipe_values(layered, recipe_name, lora)
    _add_model(layered, model, lora)
    _add_quantized_base(layered, recipe_name, controls, run)
    dataset_type = resolve.tool_value("dataset_type", controls, run, None)[0]
    if dataset_type is None:  # parse says so; never guessed (cruijff_kit's rule)
        raise UserError(
            f"run {run_name!r} has no dataset_type: how its rows are formatted is never guessed",
            hint="add dataset_type: chat_completion or text_completion to controls",
        )
    _add_experiment(
        layered,
        run_name=_RUN_NAME if stand_ins else run_name,
        output_dir=_RUN_DIR if stand_ins else output_dir,
        model=model,
        data=data,
        dataset_type=dataset_type,
        wandb_project=wandb_project,
        on_gpu=on_gpu,
        max_samples=max_samples,
    )
    named = tuple(
        path
        for path, value, source in layered.settings()
        if source == "experiment"
        and isinstance(value, str)
        and (_RUN_NAME in value or str(_RUN_DIR) in value)
    )
    _add_prompts(layered, controls, run, dataset_type)
    _fit_to_device(layered, on_gpu)
    validating = resolve.validates(controls, run)
    if validating:
        layered.apply(
            {"run_val_every_n_steps": VALIDATION_EVERY}, "default (validation_during_training)"
        )
    _add_parameters(layered, controls, run)
    return _Template(
        layered=layered,
        recipe=recipe_for(finetune, gpus, validating),
        lora=lora,
        validating=validating,
        stand_ins=tuple(p for p in named if layered.source.get(p) == "experiment"),
    )


def _add_defaults(layered: params.Layered, lora: bool) -> None:
    """The base layer: cruijff_kit's defaults (and its LoRA), the full recipe's own key."""
    layered.apply(DEFAULTS, "default")
    if lora:
        layered.apply({"model": LORA_DEFAULTS}, "default")
    else:
        layered.apply({"optimizer_in_bwd": False}, "default")  # the full recipes read it


def recipe_values(name: str, lora: bool = True) -> dict[str, Any]:
    """The values config ``name`` gives a run, as nested config values: those of
    :data:`RECIPE_VALUES` it sets (the model's only for LoRA)."""
    return copy.deepcopy(_recipe_values(name, lora))


@functools.cache
def _recipe_values(name: str, lora: bool) -> dict[str, Any]:
    found = find_config(name)
    assert found is not None, "checked at validate time"
    config = load_yaml(found[1].path).data  # reads 2e-5 as a float, like OmegaConf
    values: dict[str, Any] = {}
    for path in RECIPE_VALUES:
        if path.startswith("model.") and not lora:
            continue
        *parents, last = path.split(".")
        node: Any = config
        for part in parents:
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping) and last in node:
            target = values
            for part in parents:
                target = target.setdefault(part, {})
            target[last] = thaw(node[last])
    return values


def planned(path: str, controls: Mapping, run: Mapping) -> Any:
    """Config value ``path`` as a run's config will have it, without building the config: the
    experiment's, else its ``base_recipe``'s (one of :data:`RECIPE_VALUES`), else the
    default; None where nothing sets it. For parse-time checks."""
    if type(controls) is not MappingProxyType:
        return _planned(path, controls, run)
    # the experiment's read-only controls: runs that agree on what bears on the path share
    # its value, found once per design
    key = ("torchtune.planned", path, id(controls), resolve.bearing(path, run))
    try:
        hash(key)
    except TypeError:  # a section given as a run's value
        return _planned(path, controls, run)
    return thaw(stamps.once(key, lambda: freeze(_planned(path, controls, run)), controls))


def _planned(path: str, controls: Mapping, run: Mapping) -> Any:
    value = resolve.given(path, controls, run)
    if value is not resolve.MISSING:
        return value
    recipe, _ = resolve.tool_value("base_recipe", controls, run, None)
    if isinstance(recipe, str) and path in RECIPE_VALUES and find_config(recipe) is not None:
        value = _lookup(_recipe_values(recipe, True), path)
        if value is not resolve.MISSING:
            return value
    if path == "run_val_every_n_steps":
        return VALIDATION_EVERY
    if path == "batch_size_val":
        return planned("batch_size", controls, run)
    value = _lookup(DEFAULTS, path)
    if value is resolve.MISSING and path.startswith("model."):
        value = LORA_DEFAULTS.get(path.removeprefix("model."), resolve.MISSING)
    return None if value is resolve.MISSING else value


def _lookup(tree: Mapping[str, Any], path: str) -> Any:
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return resolve.MISSING
        node = node[part]
    return node


def _add_recipe_values(layered: params.Layered, recipe_name: str | None, lora: bool) -> None:
    """The nine values of the ``base_recipe`` (:data:`RECIPE_VALUES`) over the defaults."""
    if recipe_name:
        layered.apply(recipe_values(recipe_name, lora), f"recipe {recipe_name}")


def _add_model(layered: params.Layered, model: ModelSpec, lora: bool) -> None:
    """The model folder's builder and dimensions."""
    layered.apply({"model": {"_component_": model.component(lora), **model.args}}, "model")


def _add_quantized_base(
    layered: params.Layered, recipe_name: str | None, controls: Mapping, run: Mapping
) -> None:
    """Keep a QLoRA recipe's quantized base: the model's own LoRA builder, which replaced the
    recipe's ``qlora_*`` one, quantizes only when told to. A ``model.quantize_base`` the
    experiment gives arrives with its own layer; :func:`resolve.quantizes_base` decides both."""
    if (
        resolve.quantizes_base(controls, run)
        and resolve.given("model.quantize_base", controls, run) is resolve.MISSING
    ):
        layered.apply({"model": {"quantize_base": True}}, f"recipe {recipe_name} (QLoRA)")


def _add_experiment(
    layered: params.Layered,
    *,
    run_name: str,
    output_dir: Path,
    model: ModelSpec,
    data: Path,
    dataset_type: str,
    wandb_project: str | None,
    on_gpu: bool,
    max_samples: int | None,
) -> None:
    """What the experiment implies: where the model, data and outputs are, and the device."""
    layered.apply(
        {
            "output_dir": str(output_dir),
            "tokenizer": {
                "_component_": f"{COMPONENTS}.chat_tokenizer",
                "path": str(model.path),
            },
            "checkpointer": {
                "_component_": "torchtune.training.FullModelHFCheckpointer",
                "checkpoint_dir": str(model.path),
                # before the weights are downloaded: the name a single-file HF model has
                "checkpoint_files": list(model.weights) or [MISSING_WEIGHTS],
                "recipe_checkpoint": None,
                "output_dir": str(output_dir),
                "model_type": model.model_type,
            },
            "resume_from_checkpoint": False,
            "dataset": {
                "_component_": f"{COMPONENTS}.prompt_dataset",
                "source": str(data),
                "split": "train",
                "dataset_type": dataset_type,
                "train_on_input": False,
            },
            "metric_logger": {
                "_component_": f"{COMPONENTS}.metric_logger",
                "log_dir": str(output_dir / "logs"),
                "run_name": run_name,
                "wandb_project": wandb_project,
            },
            "device": "cuda" if on_gpu else "cpu",
            "dtype": "bf16" if on_gpu else "fp32",
            "log_peak_memory_stats": on_gpu,
            "profiler": {
                "_component_": "torchtune.training.setup_torch_profiler",
                "enabled": False,
            },
        },
        "experiment",
    )
    if max_samples is not None:
        layered.apply({"dataset": {"max_samples": max_samples}}, "data.training.splits.train")


def _add_prompts(
    layered: params.Layered, controls: Mapping, run: Mapping, dataset_type: str
) -> None:
    """The dataset's prompt and system prompt, each with its own source. Text completion has
    no system prompt (cruijff_kit drops it too)."""
    prompt, prompt_source = resolve.tool_value("prompt", controls, run, resolve.TRAIN_PROMPT)
    layered.apply({"dataset": {"prompt": prompt}}, prompt_source)
    if dataset_type != "text_completion":
        system_prompt, system_source = resolve.tool_value("system_prompt", controls, run, "")
        layered.apply({"dataset": {"system_prompt": system_prompt}}, system_source)


def _fit_to_device(layered: params.Layered, on_gpu: bool) -> None:
    """Replace what cannot run here: a non-torch optimizer (bitsandbytes' paged AdamW is
    CUDA only) and, on the CPU, compiling, activation checkpointing and fused optimizers."""
    if not layered.get("optimizer._component_", "").startswith("torch."):
        layered.apply({"optimizer": {"_component_": ADAMW}}, "experiment")
    if not on_gpu:
        layered.apply({"enable_activation_checkpointing": False, "compile": False}, "experiment")
        if layered.get("optimizer.fused") is not None:
            layered.apply({"optimizer": {"fused": False}}, "experiment")


def _add_parameters(layered: params.Layered, controls: Mapping, run: Mapping) -> None:
    """``controls``, then the run's own parameters, as config values (the plugin's own
    parameters, such as ``base_recipe``, are not config values)."""
    for layer, values in (("controls", controls), ("run", run)):
        for name, value in values.items():
            if name not in params.TOOL:
                layered.apply(params.expand(name, value), layer)


def _derive_lora_alpha(
    layered: params.Layered | params.Overlaid, controls: Mapping, run: Mapping
) -> None:
    """``lora_alpha`` = 2 × the run's ``lora_rank`` (cruijff_kit's rule), unless the
    experiment sets the alpha itself."""
    if any("lora_alpha" in values or "model.lora_alpha" in values for values in (controls, run)):
        return
    rank = layered.get("model.lora_rank")
    if rank is not None:
        layered.apply({"model": {"lora_alpha": 2 * rank}}, "derived: 2 × lora_rank")


def _add_validation_data(layered: params.Layered | params.Overlaid) -> None:
    """The validation dataset: the training one (file, formatting, prompts) with split
    ``validation`` and every row (cruijff_kit's ``dataset_val``)."""
    section = dict(layered.get("dataset"))
    section.pop("max_samples", None)
    section["split"] = "validation"
    layered.apply({"dataset_val": section}, "validation: the training dataset's, split validation")
