"""The training process: ``python -m cruijff_trl.train trl_config.yaml [PATH=VALUE...]``, started
by :mod:`cruijff_trl.launch` (under ``torchrun`` for several GPUs). Imports torch, transformers,
trl and peft; nothing imports it at planning time.

It trains as the torchtune tool does, with TRL's ``SFTTrainer``:

- the seed (``sft.seed``) is set before the model and its LoRA weights are made;
- LoRA wraps the layers ``peft.target_modules`` names (the torchtune tool's by default);
- each epoch reads the rows in torchtune's order (its ``DistributedSampler`` with seed 0, set to
  the epoch) and only as many as make whole optimizer steps (:class:`EpochOrder`), so that an
  epoch has the steps ``cruijff_trl.outputs.steps_per_epoch`` counts;
- the loss of every ``sft.logging_steps``-th step is that step's own (TRL logs each step here
  and the job keeps every N-th, as torchtune logs), in ``logs/steps.jsonl``;
- with ``train.validate_every`` N, the validation loss (the token-weighted mean cross-entropy
  over the answer tokens of the whole validation split, in eval mode, without gradients) after
  steps N, 2N... and each epoch's last step;
- after each epoch, the adapter goes to ``adapters/epoch_E`` and the merged model (a fresh base
  with the adapter merged in, and the tokenizer) to ``epoch_E``, each written beside and renamed
  into place; TRL's own checkpoint (``checkpoints/``) lets an interrupted job resume.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Sampler

from cruijff_trl import outputs
from cruijff_trl.launch import load_config
from cruijff_trl.rows import IGNORE, read_rows, tokenize


class EpochOrder(Sampler):
    """The rows of each epoch in torchtune's order: ``torch.randperm`` seeded with 0 + the
    epoch (its DistributedSampler's), padded to equal shares over ``ranks`` processes; each
    share cut to whole optimizer steps; batches dealt to the processes in turn (as accelerate
    shards them), so that each reads the rows its torchtune rank would."""

    def __init__(self, rows: int, *, batch: int, take: int, shuffle: bool, ranks: int = 1):
        self.rows, self.batch, self.take, self.shuffle, self.ranks = (
            rows,
            batch,
            take,
            shuffle,
            ranks,
        )
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> list[int]:
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.epoch)
            indices = torch.randperm(self.rows, generator=generator).tolist()
        else:
            indices = list(range(self.rows))
        total = -(-self.rows // self.ranks) * self.ranks
        indices += indices[: total - self.rows]
        shares = [indices[rank :: self.ranks][: self.take] for rank in range(self.ranks)]
        dealt = []
        for start in range(0, self.take, self.batch):
            for share in shares:
                dealt += share[start : start + self.batch]
        return dealt

    def __iter__(self):
        return iter(self.order())

    def __len__(self) -> int:
        return self.take * self.ranks


def build_model(config: dict[str, Any]):
    """The model to train: the base in the run's dtype (a 4-bit NF4 base for QLoRA), wrapped in
    LoRA where the run trains LoRA; the seed set first, so that LoRA starts the same."""
    from transformers import AutoModelForCausalLM, set_seed

    set_seed(int(config["sft"]["seed"]))
    dtype = torch.bfloat16 if config["sft"].get("bf16") else torch.float32
    kwargs: dict[str, Any] = {"dtype": dtype}
    if config["train"].get("quantize_base"):
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        )
    kwargs.update(config["sft"].get("model_init_kwargs") or {})
    model = AutoModelForCausalLM.from_pretrained(config["model"], **kwargs)
    model.config.use_cache = False
    if config["finetune"] != "lora":
        return model
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if config["train"].get("quantize_base"):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return get_peft_model(model, LoraConfig(**config["peft"]))


def trainable_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def dataset_rows(config: dict[str, Any], split: str) -> list[dict[str, Any]]:
    data = config["data"]
    rows = read_rows(data["source"], split)
    if split == "train" and data.get("max_samples") is not None:
        rows = rows[: int(data["max_samples"])]
    return rows


def validation_loss(model, examples: list[dict], batch: int, pad_id: int) -> float:
    """The token-weighted mean cross-entropy over the answer tokens of ``examples``, in eval
    mode, without gradients; over several processes, each adds up its share."""
    ranks, rank = 1, 0
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        ranks, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
    mine = examples[rank::ranks]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=device)
    with torch.no_grad():
        for start in range(0, len(mine), batch):
            chunk = mine[start : start + batch]
            width = max(len(e["input_ids"]) for e in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            labels = torch.full((len(chunk), width), IGNORE, dtype=torch.long)
            attention = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, example in enumerate(chunk):
                n = len(example["input_ids"])
                ids[i, :n] = torch.tensor(example["input_ids"])
                attention[i, :n] = 1
                labels[i, :n] = torch.tensor(example["labels"])
            logits = model(input_ids=ids.to(device), attention_mask=attention.to(device)).logits
            shifted = labels[:, 1:].to(device)
            loss = torch.nn.functional.cross_entropy(
                logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                shifted.reshape(-1),
                ignore_index=IGNORE,
                reduction="sum",
            )
            total += torch.stack([loss.double(), (shifted != IGNORE).sum().double()])
    if ranks > 1:
        torch.distributed.all_reduce(total)
    if was_training:
        model.train()
    return float(total[0] / total[1]) if total[1] else math.nan


def _write_folder(target: Path, write) -> None:
    """``write(folder)`` into a folder beside ``target``, then renamed into its place."""
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    write(partial)
    old = target.with_name(f".{target.name}.old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    partial.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def save_epoch(model, tokenizer, config: dict[str, Any], epoch: int) -> None:
    """The epoch's adapter (LoRA) and merged model (unless only adapters are kept)."""
    from transformers import AutoModelForCausalLM

    output_dir = Path(config["output_dir"])
    base = config["model"]
    lora = config["finetune"] == "lora"
    if lora:

        def adapter(folder: Path) -> None:
            model.save_pretrained(folder)
            settings_path = folder / "adapter_config.json"
            settings = json.loads(settings_path.read_text(encoding="utf-8"))
            settings.update({"base_model_name_or_path": base, "task_type": "CAUSAL_LM"})
            settings_path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")

        _write_folder(outputs.adapter_dir(output_dir, epoch), adapter)
    if lora and config["train"].get("adapters_only"):
        return

    def merged(folder: Path) -> None:
        if lora:
            from peft import PeftModel

            dtype = torch.bfloat16 if config["sft"].get("bf16") else torch.float32
            fresh = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
            adapted = PeftModel.from_pretrained(fresh, outputs.adapter_dir(output_dir, epoch))
            whole = adapted.merge_and_unload()
        else:
            whole = model
        whole.config.use_cache = True
        whole.save_pretrained(folder, safe_serialization=True)
        whole.config.use_cache = False
        tokenizer.save_pretrained(folder)

    _write_folder(outputs.epoch_dir(output_dir, epoch), merged)


def resumable(folder: Path) -> str | None:
    """TRL's latest whole checkpoint in ``folder`` (None: none). A checkpoint is whole once
    its ``trainer_state.json``, which transformers writes last, is there; one cut by a killed
    job is removed, so that the run resumes from the one before or starts over."""
    found = []
    for path in folder.glob("checkpoint-*") if folder.is_dir() else ():
        suffix = path.name.removeprefix("checkpoint-")
        if suffix.isdigit():
            found.append((int(suffix), path))
    for _, path in sorted(found, reverse=True):
        if (path / "trainer_state.json").exists():
            return str(path)
        shutil.rmtree(path, ignore_errors=True)
    return None


def _log(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("overrides", nargs="*", help="PATH=VALUE config overrides")
    args = parser.parse_args(argv)
    config = load_config(args.config, args.overrides)

    from transformers import AutoTokenizer, PrinterCallback, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    output_dir = Path(config["output_dir"])
    sft, train = dict(config["sft"]), config["train"]
    log_every = int(sft.pop("logging_steps", 1) or 1)
    tokenizer = AutoTokenizer.from_pretrained(config["model"])
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    examples = tokenize(tokenizer, dataset_rows(config, "train"), config["data"])
    ranks = int(os.environ.get("WORLD_SIZE", "1"))
    batch, accumulation = (
        int(sft["per_device_train_batch_size"]),
        int(sft["gradient_accumulation_steps"]),
    )
    steps = outputs.steps_per_epoch(
        len(examples), batch, accumulation, train.get("max_steps_per_epoch"), ranks
    )
    if steps == 0:
        print(f"cruijff: {len(examples)} rows make no optimizer step", flush=True)
        return 1
    order = EpochOrder(
        len(examples),
        batch=batch,
        take=steps * batch * accumulation,
        shuffle=bool(train.get("shuffle", True)),
        ranks=ranks,
    )
    every = int(train.get("validate_every") or 0)
    validation = (
        tokenize(tokenizer, dataset_rows(config, train["validation_split"]), config["data"])
        if every
        else []
    )
    steps_log = output_dir / outputs.STEPS
    steps_log.parent.mkdir(parents=True, exist_ok=True)
    model = build_model(config)
    main_process = int(os.environ.get("RANK", "0")) == 0
    if main_process:
        print(f"cruijff: {trainable_parameters(model):,} trainable parameters", flush=True)

    class Cruijff(TrainerCallback):
        """Keeps the loss of every N-th step, validates, saves each epoch."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            step = state.global_step
            if main_process and logs and "loss" in logs and step % log_every == 0:
                record = {"step": step, "loss": logs["loss"]}
                if "learning_rate" in logs:
                    record["lr"] = logs["learning_rate"]
                _log(steps_log, record)
                shown = " ".join(f"{k}:{v:.6g}" for k, v in record.items() if k != "step")
                print(f"Step {step} | {shown}", flush=True)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            step = state.global_step
            if every and (step % every == 0 or step % steps == 0):
                loss = validation_loss(
                    model, validation, int(sft["per_device_eval_batch_size"]), pad_id
                )
                if main_process:
                    _log(steps_log, {"step": step, "val_loss": loss})

        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            if main_process:
                save_epoch(model, tokenizer, config, round(state.global_step / steps) - 1)
            if ranks > 1:
                torch.distributed.barrier()

    from datasets import Dataset

    class Trainer(SFTTrainer):
        def _get_train_sampler(self, train_dataset=None):
            return order

    arguments = SFTConfig(
        **sft,
        output_dir=str(output_dir / outputs.CHECKPOINTS),
        save_strategy="epoch",
        logging_steps=1,
        completion_only_loss=False,  # the labels say what is trained on
        dataset_kwargs={"skip_prepare_dataset": True},
        remove_unused_columns=False,
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=Dataset.from_list(examples),
        processing_class=tokenizer,
        callbacks=[Cruijff()],
    )
    trainer.remove_callback(PrinterCallback)  # a dict a step; the callback prints every N-th
    last = resumable(output_dir / outputs.CHECKPOINTS)
    if last and main_process:
        print(f"cruijff: resuming from {last}", flush=True)
    started = time.monotonic()
    trainer.train(resume_from_checkpoint=last)
    if main_process:
        print(f"cruijff: trained in {time.monotonic() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
