"""torchtune recipes that also compute the validation loss during training.

torchtune 0.6.1's fine-tuning recipes have no validation pass. These are those recipes (LoRA
and full, single-device and distributed: torchtune's own classes) with :class:`Validating`
mixed in; the plugin runs them, by path, where an experiment asks for
``validation_during_training``: ``tune run cruijff_torchtune/validating/lora_single_device.py
--config finetune.yaml`` (``tune run`` turns the path into the module to run). It also runs the
LoRA single-device one for every LoRA run on the CPU, validating or not: it merges checkpoints
into copies of the weights, where torchtune's merges into the live model there
(:mod:`cruijff_torchtune.validating.lora_single_device`).

The config says what to validate on: ``dataset_val`` (the training dataset with split
``validation``, every row), ``run_val_every_n_steps`` (N) and ``batch_size_val`` (else
``batch_size``). The validation loss is the token-weighted mean cross-entropy over the
response tokens (labels that are not masked) of the whole validation split, computed in eval
mode without gradients after optimizer steps N, 2N, ... and after each epoch's last step
(once where that is a multiple of N), and logged as ``val_loss`` at that step, beside the
training loss (which ``metrics.csv`` then holds in a column of its own). Across ranks, each
computes the sums over its share of the rows and the sums are added before dividing.

Validation touches no random state and no gradient, so a run trains exactly as it would
without it; only the step that validated reports the pass's time in its throughput. The hooks
are the two statements every torchtune 0.6.1 training loop runs, once per optimizer step and
once per epoch: ``self.global_step += 1`` and ``self.epochs_run += 1``, which the mixin turns
into properties. Nothing here is imported at planning time: it imports torch and torchtune.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
import torchtune
from torchtune import config, utils
from torchtune.data import padded_collate_sft

log = utils.get_logger("INFO")

IGNORE = -100  # torchtune's CROSS_ENTROPY_IGNORE_IDX


def torchtune_recipe(name: str) -> ModuleType:
    """torchtune's recipe module ``name`` (``lora_finetune_single_device``), loaded from its
    file: torchtune installs its recipes beside the package, as a folder that refuses to be
    imported as one."""
    key = f"cruijff_torchtune.validating._torchtune_{name}"
    if key not in sys.modules:
        path = Path(torchtune.__file__).parent.parent / "recipes" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(key, path)
        assert spec is not None and spec.loader is not None, f"no torchtune recipe {path}"
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def token_loss_sums(
    logits: torch.Tensor | list[torch.Tensor], labels: torch.Tensor, ignore: int = IGNORE
) -> tuple[torch.Tensor, torch.Tensor]:
    """The summed cross-entropy of each next token whose label is not ``ignore``, and how
    many such tokens there are. ``logits`` is ``[batch, seq, vocab]``, or torchtune's chunks
    of it along ``seq`` (a model set to chunked output)."""
    targets = torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], ignore)], dim=1)
    chunks = logits if isinstance(logits, list) else [logits]
    total = torch.zeros((), dtype=torch.float64, device=targets.device)
    start = 0
    for chunk in chunks:
        part = targets[:, start : start + chunk.shape[1]]
        start += chunk.shape[1]
        total += F.cross_entropy(
            chunk.float().reshape(-1, chunk.shape[-1]),
            part.reshape(-1),
            ignore_index=ignore,
            reduction="sum",
        ).double()
    return total, (targets != ignore).sum().double()


def shares(rows: int, world: int, rank: int, batch: int) -> list[list[int]]:
    """The batches of row indices rank ``rank`` of ``world`` validates: rows ``rank``,
    ``rank + world``, ..., in batches of ``batch``, as many batches on every rank (an empty
    one where a rank has run out), so that every rank runs as many forward passes."""
    mine = list(range(rank, rows, world))
    per_rank = -(-rows // world)
    count = -(-per_rank // batch)
    return [mine[i * batch : (i + 1) * batch] for i in range(count)]


class Validating:
    """Mixed in before a torchtune recipe class: its ``setup`` also reads the validation data,
    and the validation loss is computed and logged at the steps the config asks for."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)  # type: ignore[misc]
        self._val_every = int(cfg.get("run_val_every_n_steps") or 0)
        self._val_batch = int(cfg.get("batch_size_val") or cfg.batch_size)
        section = cfg.get("dataset_val")
        self._val_data = config.instantiate(section, self._tokenizer) if section else None
        # torchtune's LoRA single-device recipe numbers the steps of a resumed run from 1
        # again: the cadence counts from the start of training all the same
        self._val_offset = self.epochs_run * self._steps_per_epoch - self.global_step
        self._validated_at: int | None = None
        if self._val_data is not None:
            log.info(
                f"Validation: {len(self._val_data)} rows, batches of {self._val_batch}, "
                f"every {self._val_every} steps and at each epoch's end"
            )

    def train(self) -> None:
        self.__dict__["_training"] = True
        try:
            super().train()  # type: ignore[misc]
        finally:
            self.__dict__["_training"] = False

    @property
    def global_step(self) -> int:
        return self.__dict__.get("_global_step", 0)

    @global_step.setter
    def global_step(self, value: int) -> None:
        before = self.__dict__.get("_global_step")
        self.__dict__["_global_step"] = value
        every = self.__dict__.get("_val_every")
        if (
            self.__dict__.get("_training")
            and before is not None
            and value == before + 1
            and every
            and (self._val_offset + value) % every == 0
        ):
            self.validation_pass()

    @property
    def epochs_run(self) -> int:
        return self.__dict__.get("_epochs_run", 0)

    @epochs_run.setter
    def epochs_run(self, value: int) -> None:
        before = self.__dict__.get("_epochs_run")
        self.__dict__["_epochs_run"] = value
        if (
            self.__dict__.get("_training")
            and before is not None
            and value == before + 1
            and self._validated_at != self.global_step
        ):
            self.validation_pass()

    def _val_batches(self) -> Iterator[dict[str, torch.Tensor]]:
        data = self._val_data
        world, rank = utils.get_world_size_and_rank()
        for indices in shares(len(data), world, rank, self._val_batch):
            if indices:
                items = [data[i] for i in indices]
            else:  # this rank has no rows left: a row that counts nothing
                first = data[0]
                items = [{"tokens": first["tokens"], "labels": [IGNORE] * len(first["labels"])}]
            yield padded_collate_sft(items, padding_idx=self._tokenizer.pad_id, ignore_idx=IGNORE)

    def validation_loss(self) -> float:
        """The token-weighted mean loss over the response tokens of the validation split
        (``inf`` where it has none), summed over every rank."""
        model = self._model
        was_training = model.training
        model.eval()
        total = torch.zeros((), dtype=torch.float64, device=self._device)
        count = torch.zeros((), dtype=torch.float64, device=self._device)
        try:
            with torch.no_grad():
                for batch in self._val_batches():
                    utils.batch_to_device(batch, self._device)
                    labels = batch.pop("labels")
                    part, tokens = token_loss_sums(model(**batch), labels)
                    total += part
                    count += tokens
        finally:
            model.train(was_training)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(total)
            torch.distributed.all_reduce(count)
        return (total / count).item() if count.item() > 0 else math.inf

    def validation_pass(self) -> None:
        """Compute the validation loss and log it at the current step (rank 0 logs)."""
        if self._val_data is None:
            return
        self._validated_at = self.global_step
        loss = self.validation_loss()
        if getattr(self, "_is_rank_zero", True):
            log.info(f"Validation loss: {loss:.4f}")
            self._metric_logger.log_dict({"val_loss": loss}, step=self.global_step)


def run(recipe_class: type, cfg: Any) -> None:
    """What torchtune's ``recipe_main`` does with its class, with ``recipe_class``."""
    config.log_config(recipe_name=recipe_class.__name__, cfg=cfg)
    recipe = recipe_class(cfg=cfg)
    recipe.setup(cfg=cfg)
    recipe.train()
    recipe.cleanup()
