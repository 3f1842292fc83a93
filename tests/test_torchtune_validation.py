"""The validation loss during training (``validation_during_training``), computed by the
plugin's own recipes (cruijff_torchtune.validating): at steps N, 2N, ... and at each epoch's
end, into metrics.csv's ``val_loss`` column, equal to an independent computation with
transformers, without changing what is trained; on one process and on two (gloo, CPU). Also
what the checkpoints are: adapters that PEFT's arithmetic applies over the local base model,
and merged models that leave the training run's weights alone."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("torchtune")

import torch
import torch.nn.functional as F

from cruijff_torchtune.validating import shares, token_loss_sums

PROMPT = "Capitalize the word: {input}"
WORDS = [f"{a}{b}" for a in ("ap", "pe", "fi", "pl", "ki", "li") for b in ("ple", "ar", "g", "m")]
HELD_OUT = ["mango", "melon", "lemon", "peach", "grape", "cherry"]


# --- the arithmetic, without training -------------------------------------------------------


def test_token_loss_sums_are_a_cross_entropy_over_the_unmasked_next_tokens():
    torch.manual_seed(0)
    logits = torch.randn(3, 7, 11)
    labels = torch.randint(0, 11, (3, 7))
    labels[:, :3] = -100  # a masked prompt
    labels[2, 5:] = -100  # padding
    total, count = token_loss_sums(logits, labels)
    targets = labels[:, 1:]
    mask = targets != -100
    expected = F.cross_entropy(logits[:, :-1][mask], targets[mask], reduction="sum")
    assert count.item() == mask.sum().item() == 10
    assert torch.isclose(total.float(), expected)
    # torchtune's chunked output gives the same sums
    chunked, chunked_count = token_loss_sums(list(logits.chunk(3, dim=1)), labels)
    assert torch.isclose(chunked, total) and chunked_count == count
    empty = torch.full_like(labels, -100)
    assert token_loss_sums(logits, empty)[1].item() == 0


@pytest.mark.parametrize("world", [1, 2, 3])
def test_every_rank_runs_as_many_batches_and_every_row_is_counted_once(world):
    for rows in range(0, 10):
        for batch in (1, 2, 4):
            plans = [shares(rows, world, rank, batch) for rank in range(world)]
            assert len({len(plan) for plan in plans}) == 1, (rows, world, batch)
            seen = sorted(i for plan in plans for indices in plan for i in indices)
            assert seen == list(range(rows))
            assert all(len(indices) <= batch for plan in plans for indices in plan)


# --- real training on the CPU ---------------------------------------------------------------


def write_experiment(folder: Path, model: Path, runs: list[dict], controls: dict) -> Path:
    rows = {
        "train": [{"input": w, "output": w.upper()} for w in WORDS],
        "validation": [{"input": w, "output": w.upper()} for w in HELD_OUT],
    }
    (folder / "words.json").write_text(json.dumps(rows))
    document = {
        "experiment": {"name": "val", "dir": "runs"},
        "tools": {"preparation": "torchtune"},
        "controls": {
            "dataset_type": "chat_completion",
            "prompt": PROMPT,
            "batch_size": 4,
            "epochs": 2,
            "lr": 1e-3,
            "num_warmup_steps": 0,
            "log_every_n_steps": 1,
            **controls,
        },
        "models": {"base": [{"name": "tiny", "path": str(model)}]},
        "data": {"training": {"path": "words.json", "splits": {"train": 24, "validation": 6}}},
        "runs": [{"model": "tiny", **run} for run in runs],
    }
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def cruijff(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cruijff", *args], capture_output=True, text=True, timeout=timeout
    )


def metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def reference_loss(model_dir: Path, tokenizer_dir: Path, rows: list[str]) -> float:
    """The token-weighted mean cross-entropy of the answers, computed here with transformers
    and the folder's chat template, not with the plugin's dataset or recipe."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()

    def ids(messages, generation_prompt):
        out = tokenizer.apply_chat_template(
            messages, add_generation_prompt=generation_prompt, tokenize=True
        )
        return list(out["input_ids"] if hasattr(out, "keys") else out)

    total, count = 0.0, 0
    with torch.no_grad():
        for word in rows:
            messages = [{"role": "user", "content": PROMPT.format(input=word)}]
            prompt = ids(messages, True)
            full = ids([*messages, {"role": "assistant", "content": word.upper()}], False)
            assert full[: len(prompt)] == prompt
            logits = model(torch.tensor([full])).logits[0, :-1]
            targets = torch.tensor(full[1:])
            answer = torch.arange(len(full) - 1) >= len(prompt) - 1  # predicts an answer token
            total += F.cross_entropy(logits[answer], targets[answer], reduction="sum").item()
            count += int(answer.sum())
    return total / count


@pytest.mark.slow
def test_validation_loss_during_training(tmp_path, tiny_model):
    runs = [
        {
            "name": "val",
            "parameters": {
                "lora_rank": 4,
                "lora_dropout": 0.1,  # random, so that a validation pass that drew would show
                "validation_during_training": True,
                "run_val_every_n_steps": 4,
                "batch_size_val": 4,  # 6 rows: a last partial batch, counted
            },
        },
        {"name": "noval", "parameters": {"lora_rank": 4, "lora_dropout": 0.1}},
        {
            "name": "full",
            "parameters": {
                "finetune": "full",
                "lr": 0.0,  # the weights stay the base model's
                "epochs": 1,
                "gradient_accumulation_steps": 2,
                "validation_during_training": True,
                "run_val_every_n_steps": 2,
            },
        },
        {
            "name": "adapters",
            "parameters": {"lora_rank": 4, "epochs": 1, "save_adapter_weights_only": True},
        },
    ]
    path = write_experiment(tmp_path, tiny_model, runs, {})
    result = cruijff("run", str(path), "--jobs", "2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    root = tmp_path / "runs"

    # 24 rows, batches of 4: 6 steps an epoch; validation after steps 4, 8 and each epoch's end
    val = metrics(root / "val")
    assert list(val[0]) == ["step", "epoch", "loss", "lr", "tokens_per_second_per_gpu", "val_loss"]
    assert [int(r["step"]) for r in val] == list(range(1, 13))
    validated = {int(r["step"]): float(r["val_loss"]) for r in val if r["val_loss"]}
    assert sorted(validated) == [4, 6, 8, 12]
    assert validated[12] < validated[4]  # it learns
    # the loss of the merged model each epoch saved, computed independently
    for step, epoch in ((6, 0), (12, 1)):
        expected = reference_loss(root / "val" / f"epoch_{epoch}", tiny_model, HELD_OUT)
        assert validated[step] == pytest.approx(expected, rel=1e-4), (step, expected)
    # validating changes nothing of the training: the same losses, digit for digit
    assert [r["loss"] for r in val] == [r["loss"] for r in metrics(root / "noval")]
    log = (root / "val" / "train.log").read_text(errors="replace")
    assert (
        "Validation loss: " in log and "cruijff_torchtune/validating/lora_single_device.py" in log
    )

    # a full fine-tune with gradient accumulation: 3 steps, validation after 2 and 3; lr 0,
    # so each is the base model's loss
    full = metrics(root / "full")
    validated = {int(r["step"]): float(r["val_loss"]) for r in full if r["val_loss"]}
    base = reference_loss(tiny_model, tiny_model, HELD_OUT)
    assert sorted(validated) == [2, 3]
    assert all(value == pytest.approx(base, rel=1e-4) for value in validated.values())

    # adapters only: no merged model, an adapter PEFT loads over the local base model
    adapters = root / "adapters"
    assert not list((adapters / "epoch_0").glob("*.safetensors"))
    settings = json.loads((adapters / "adapters" / "epoch_0" / "adapter_config.json").read_text())
    assert settings["base_model_name_or_path"] == str(tiny_model)
    status = json.loads(cruijff("status", str(path), "--json").stdout)
    assert {job["state"] for job in status["jobs"]} == {"SUCCEEDED"}

    # the adapter is the merged model's difference from the base, in PEFT's names and scale
    check_adapter_is_the_merge(root / "val", tiny_model, epoch=1)


def check_adapter_is_the_merge(run_dir: Path, base_dir: Path, epoch: int) -> None:
    from safetensors.torch import load_file

    adapter_dir = run_dir / "adapters" / f"epoch_{epoch}"
    settings = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert settings["peft_type"] == "LORA" and settings["base_model_name_or_path"] == str(base_dir)
    scale = settings["lora_alpha"] / settings["r"]
    adapter = load_file(adapter_dir / "adapter_model.safetensors")
    base = load_file(base_dir / "model.safetensors")
    merged_dir = run_dir / f"epoch_{epoch}"
    merged = {}
    for file in merged_dir.glob("model*.safetensors"):
        merged.update(load_file(file))
    changed = 0
    for name, weight in base.items():
        stem = "base_model.model." + name.removesuffix(".weight")
        a, b = adapter.get(f"{stem}.lora_A.weight"), adapter.get(f"{stem}.lora_B.weight")
        expected = weight if a is None else weight + scale * b @ a
        assert torch.allclose(merged[name], expected, atol=1e-6), name
        changed += a is not None
    assert changed == 2 * 6  # q, v, o and the three MLP projections of both layers
    try:
        import peft  # noqa: F401
    except Exception:  # not installed, or not for this torchao: the arithmetic above stands
        return
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), adapter_dir)
    reference = AutoModelForCausalLM.from_pretrained(merged_dir)
    tokens = torch.tensor([[1, 5, 9, 30, 41, 7]])
    assert torch.allclose(model(tokens).logits, reference(tokens).logits, atol=1e-5)


SHIM = '''
"""Run a module as torchrun's worker on a CPU-only torch: torchtune 0.6.1's distributed
recipes ask the device for memory statistics and caches a CPU build does not have."""
import runpy
import sys

import torch
import torchtune.training as training
import torchtune.training.memory as memory

for name in ("empty_cache", "reset_peak_memory_stats", "synchronize"):
    if not hasattr(torch.cpu, name):
        setattr(torch.cpu, name, lambda *args, **kwargs: None)
stats = memory.get_memory_stats


def cpu_stats(device, reset_stats=True):
    if str(getattr(device, "type", device)) != "cpu":
        return stats(device, reset_stats)
    return {"peak_memory_active": 0.0, "peak_memory_alloc": 0.0, "peak_memory_reserved": 0.0}


training.get_memory_stats = memory.get_memory_stats = cpu_stats
runpy.run_module(sys.argv.pop(1), run_name="__main__", alter_sys=True)
'''


@pytest.mark.slow
def test_distributed_validation_adds_the_sums_of_every_rank(tmp_path, tiny_model):
    # 5 validation rows in batches of 2 over 2 ranks: rank 0 validates rows 0 2 | 4, rank 1
    # rows 1 3 | nothing (a batch that counts no token); lr 0 keeps the base model's loss
    controls = {
        "lr": 0.0,
        "epochs": 1,
        "lora_rank": 4,
        "validation_during_training": True,
        "run_val_every_n_steps": 1,
        "batch_size_val": 2,
    }
    path = write_experiment(tmp_path, tiny_model, [{"name": "dist", "parameters": {}}], controls)
    rows = json.loads((tmp_path / "words.json").read_text())
    rows["validation"] = rows["validation"][:5]
    (tmp_path / "words.json").write_text(json.dumps(rows))
    scaffolded = cruijff("scaffold", str(path))
    assert scaffolded.returncode == 0, scaffolded.stdout + scaffolded.stderr
    config = tmp_path / "runs" / "dist" / "finetune.yaml"
    (tmp_path / "cpu_worker.py").write_text(SHIM)
    out = tmp_path / "two"
    worker = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(tmp_path / "cpu_worker.py"),
            "cruijff_torchtune.validating.lora_distributed",
            "--config",
            str(config),
            f"output_dir={out}",
            f"checkpointer.output_dir={out}",
            f"metric_logger.log_dir={out / 'logs'}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]
    from cruijff_torchtune.outputs import read_steps

    steps = read_steps(out / "logs")
    validated = {row["step"]: row["val_loss"] for row in steps if "val_loss" in row}
    # 24 rows over 2 ranks in batches of 4: 3 steps, each validated once (the last also
    # ends the epoch)
    assert sorted(validated) == [1, 2, 3]
    base = reference_loss(tiny_model, tiny_model, HELD_OUT[:5])
    assert all(value == pytest.approx(base, rel=1e-4) for value in validated.values())
