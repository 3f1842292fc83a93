"""Real TRL runs on the CPU, through `cruijff run` and the local scheduler, on the tiny Llama built
at test time: LoRA and full fine-tunes with the validation loss, their checkpoints and metrics;
the inspect plugin evaluating a TRL checkpoint unchanged; a run interrupted after its first
epoch that continues from there when run again."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("trl")
pytestmark = pytest.mark.slow

from test_torchtune_validation import HELD_OUT, PROMPT, WORDS, reference_loss  # noqa: E402

TASKS = Path(__file__).parent / "inspect_tasks" / "capitalization.py"


def write_experiment(folder: Path, model: Path, changes: dict) -> Path:
    rows = {
        "train": [{"input": w, "output": w.upper()} for w in WORDS],
        "validation": [{"input": w, "output": w.upper()} for w in HELD_OUT],
    }
    (folder / "words.json").write_text(json.dumps(rows))
    document = {
        "experiment": {"name": "trl", "dir": "runs"},
        "tools": {"preparation": "trl"},
        "controls": {
            "epochs": 2,
            "batch_size": 2,
            "gradient_accumulation_steps": 2,
            "lr": 1e-3,
            "prompt": PROMPT,
            "dataset_type": "chat_completion",
            "log_every_n_steps": 1,
            "num_warmup_steps": 0,
        },
        "models": {"base": [{"name": "tiny", "path": str(model)}]},
        # 22 of the 24 rows: 11 batches of 2, 5 whole accumulations (torchtune's count); TRL
        # would make a 6th step of the last batch alone
        "data": {"training": {"path": "words.json", "splits": {"train": 22, "validation": 6}}},
        **changes,
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


def test_lora_and_full_runs_with_the_validation_loss(tmp_path, tiny_model):
    runs = [
        {
            "name": "lora",
            "model": "tiny",
            "parameters": {
                "lora_rank": 4,
                "validation_during_training": True,
                "run_val_every_n_steps": 2,
            },
        },
        {
            "name": "full",
            "model": "tiny",
            "parameters": {
                "finetune": "full",
                "lr": 0.0,  # the weights stay the base model's
                "epochs": 1,
                "validation_during_training": True,
                "run_val_every_n_steps": 2,
            },
        },
    ]
    path = write_experiment(tmp_path, tiny_model, {"runs": runs})
    began = time.monotonic()
    result = cruijff("run", str(path), "--jobs", "2")
    wall = time.monotonic() - began
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    root = tmp_path / "runs"
    from transformers import AutoModelForCausalLM

    lora = metrics(root / "lora")
    assert list(lora[0]) == ["step", "epoch", "loss", "lr", "val_loss"]
    assert [int(r["step"]) for r in lora] == list(range(1, 11))  # 5 steps an epoch
    assert [r["epoch"] for r in lora] == ["0"] * 5 + ["1"] * 5
    assert all(float(r["loss"]) > 0 for r in lora)
    validated = {int(r["step"]): float(r["val_loss"]) for r in lora if r["val_loss"]}
    assert sorted(validated) == [2, 4, 5, 6, 8, 10]  # every 2 steps and each epoch's end
    # the loss of the merged model each epoch saved, computed independently (as for torchtune)
    for step, epoch in ((5, 0), (10, 1)):
        expected = reference_loss(root / "lora" / f"epoch_{epoch}", tiny_model, HELD_OUT)
        assert validated[step] == pytest.approx(expected, rel=1e-4), (step, expected)
    for epoch in (0, 1):
        folder = root / "lora" / f"epoch_{epoch}"
        assert not (folder / "adapter_config.json").exists()  # merged: never applied twice
        assert (folder / "tokenizer.json").exists()  # the evaluation loads the folder alone
        adapter = json.loads(
            (root / "lora" / "adapters" / f"epoch_{epoch}" / "adapter_config.json").read_text()
        )
        assert adapter["base_model_name_or_path"] == str(tiny_model) and adapter["r"] == 4
    model = AutoModelForCausalLM.from_pretrained(root / "lora" / "epoch_1")
    assert model.config.num_hidden_layers == 2
    assert not (root / "lora" / "checkpoints").exists()  # resume state, gone once done

    # lr 0: each validation is the base model's loss, the value torchtune's run reports too
    full = metrics(root / "full")
    validated = {int(r["step"]): float(r["val_loss"]) for r in full if r["val_loss"]}
    base = reference_loss(tiny_model, tiny_model, HELD_OUT)
    assert sorted(validated) == [2, 4, 5]
    assert all(value == pytest.approx(base, rel=1e-4) for value in validated.values())
    assert not (root / "full" / "adapters").exists()

    status = json.loads(cruijff("status", str(path), "--json").stdout)
    assert sorted(job["state"] for job in status["jobs"]) == ["SUCCEEDED", "SUCCEEDED"]
    print(f"\ntrl: LoRA 2 epochs + full 1 epoch (--jobs 2) in {wall:.1f} s")


def test_the_inspect_plugin_evaluates_a_trl_checkpoint(tmp_path, tiny_model):
    changes = {
        "tools": {"preparation": "trl", "evaluation": "inspect"},
        "variables": {"lora_rank": [4]},
        "evaluation": {
            "max_tokens": 4,
            "tasks": [{"name": "capitalization", "script": str(TASKS), "split": "validation"}],
        },
    }
    path = write_experiment(tmp_path, tiny_model, changes)
    document = yaml.safe_load(path.read_text())
    document["controls"]["epochs"] = 1
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    result = cruijff("run", str(path), "--jobs", "2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    cell = tmp_path / "runs" / "finetuned" / "eval" / "capitalization" / "epoch_0"
    results = json.loads((cell / "results.json").read_text())
    assert results["model"] == "hf/finetuned/epoch_0" and results["samples"] > 0
    # the analysis reads the TRL run's loss as any trainer's (the core's train-metrics columns)
    from cruijff.analysis.collect import read_curve

    curve = read_curve("finetuned", tmp_path / "runs" / "finetuned" / "metrics.csv", tmp_path)
    assert curve.steps == (1, 2, 3, 4, 5) and all(loss > 0 for loss in curve.loss)
    analysis = tmp_path / "runs" / "analysis"
    assert (analysis / "plots" / "loss.png").exists()
    assert "finetuned" in (analysis / "results.csv").read_text()


def test_an_interrupted_run_resumes_after_its_last_epoch(tmp_path, tiny_model):
    changes = {"variables": {"lora_rank": [4]}}
    path = write_experiment(tmp_path, tiny_model, changes)
    document = yaml.safe_load(path.read_text())
    document["controls"]["epochs"] = 3
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    run_dir = tmp_path / "runs" / "finetuned"
    first = subprocess.Popen(
        [sys.executable, "-m", "cruijff", "run", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(
        run_dir.glob("checkpoints/checkpoint-*/trainer_state.json")
    ):
        time.sleep(0.05)
    # frozen where it is (an epoch here is quicker than a cancel): the cancel's SIGKILL ends
    # the job part-way
    status = tmp_path / "runs" / ".cruijff" / "local" / "jobs" / "finetuned.train.1"
    os.killpg(json.loads((status / "status.json").read_text())["pid"], signal.SIGSTOP)
    cancelled = cruijff("cancel", str(path))
    assert cancelled.returncode == 0 and "CANCELLED" in cancelled.stdout, cancelled.stdout
    first.wait(timeout=60)
    assert not (run_dir / "epoch_2").exists()  # it really stopped part-way

    again = cruijff("run", str(path), timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    log = (run_dir / "train.log").read_text(errors="replace")
    second = log.split("attempt 2 started", 1)[1]
    assert "cruijff: resuming from" in second
    assert "Step 1 |" not in second  # the first epoch was not trained again
    assert [int(r["step"]) for r in metrics(run_dir)] == list(range(1, 16))
    assert all((run_dir / f"epoch_{e}" / "config.json").exists() for e in range(3))


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "capitalization"


def test_the_trl_example_beats_the_base_model(tmp_path):
    """The README's demo trained with TRL (examples/capitalization/experiment_trl.yaml),
    shortened as tests/test_demo.py shortens the torchtune one."""
    for script in ("get_model.py", "make_data.py"):
        extra = () if script == "get_model.py" else ("--out", str(tmp_path / "words.json"))
        made = subprocess.run(
            [sys.executable, str(EXAMPLE / script), *extra], capture_output=True, text=True
        )
        assert made.returncode == 0, made.stderr[-2000:]
    document = yaml.safe_load((EXAMPLE / "experiment_trl.yaml").read_text())
    assert document["tools"]["preparation"] == "trl"
    document["experiment"]["dir"] = str(tmp_path / "runs")
    document["variables"] = {"lora_rank": [16]}
    document["controls"]["max_steps_per_epoch"] = 12
    document["models"]["base"][0]["path"] = str(EXAMPLE / "models" / "SmolLM2-135M-Instruct")
    document["data"]["training"]["path"] = str(tmp_path / "words.json")
    document["evaluation"]["tasks"][0]["script"] = str(EXAMPLE / "tasks" / "capitalization.py")
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    result = cruijff("run", str(path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "3 of 3 jobs succeeded" in result.stdout
    analysis = json.loads(cruijff("analyze", str(path), "--json").stdout)
    (comparison,) = [c for c in analysis["comparisons"] if c["metric"] == "match/accuracy"]
    assert (comparison["run"], comparison["control"]) == ("finetuned", "base")
    assert comparison["delta"] > 0 and comparison["flips_up"] > 0
    rows = metrics(tmp_path / "runs" / "finetuned")
    assert [int(r["step"]) for r in rows] == list(range(1, 13))


def test_both_trainers_see_the_same_first_batch(tmp_path, tiny_model):
    """LoRA starts as the base model (B = 0), so the first step's loss is the base model's on
    the first batch: equal for both trainers only if they read the same rows, in the same
    order, as the same tokens and labels, and average the loss alike."""
    losses = {}
    for tool in ("torchtune", "trl"):
        folder = tmp_path / tool
        folder.mkdir()
        changes = {"tools": {"preparation": tool}, "variables": {"lora_rank": [4]}}
        path = write_experiment(folder, tiny_model, changes)
        document = yaml.safe_load(path.read_text())
        document["controls"].update(epochs=1, max_steps_per_epoch=2)
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        result = cruijff("run", str(path))
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        losses[tool] = [float(r["loss"]) for r in metrics(folder / "runs" / "finetuned")]
    assert len(losses["torchtune"]) == len(losses["trl"]) == 2
    assert losses["trl"][0] == pytest.approx(losses["torchtune"][0], rel=1e-4)
