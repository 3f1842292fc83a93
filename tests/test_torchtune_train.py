"""Real `tune run`s on the CPU, through `cruijff run` and the local scheduler, on a tiny Llama
built at test time: LoRA and full fine-tunes, their checkpoints and metrics, and a run
interrupted after its first epoch that continues from there when run again."""

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

pytest.importorskip("torchtune")
pytestmark = pytest.mark.slow

WORDS = [f"{a}{b}" for a in ("ap", "pe", "fi", "pl", "ki", "li") for b in ("ple", "ar", "g", "m")]


def write_experiment(folder: Path, model: Path, changes: dict) -> Path:
    data = {"train": [{"input": w, "output": w.upper()} for w in WORDS]}
    (folder / "words.json").write_text(json.dumps(data))
    document = {
        "experiment": {"name": "tt", "dir": "runs"},
        "tools": {"preparation": "torchtune"},
        "controls": {
            "epochs": 2,
            "batch_size": 4,
            "lr": 1e-3,
            "max_seq_len": 64,
            "prompt": "Capitalize the word: {input}",
            "system_prompt": "You are a helpful assistant.",
            "dataset_type": "chat_completion",
            "log_every_n_steps": 1,  # the steps below count every step
            "num_warmup_steps": 0,
        },
        "models": {"base": [{"name": "tiny", "path": str(model)}]},
        "data": {"training": {"path": "words.json"}},
        **changes,
    }
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def cruijff(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cruijff", *args], capture_output=True, text=True, **kwargs
    )


def steps(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_lora_and_full_runs(tmp_path, tiny_model):
    path = write_experiment(tmp_path, tiny_model, {"variables": {"finetune": ["lora", "full"]}})
    result = cruijff("run", str(path), "--jobs", "2", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    from transformers import AutoModelForCausalLM

    for run in ("finetune-lora", "finetune-full"):
        run_dir = tmp_path / "runs" / run
        for epoch in (0, 1):
            folder = run_dir / f"epoch_{epoch}"
            assert (folder / "config.json").exists()
            assert not (folder / "adapter_config.json").exists()  # never applied twice
        model = AutoModelForCausalLM.from_pretrained(run_dir / "epoch_1")
        assert model.config.num_hidden_layers == 2
        rows = steps(run_dir)
        assert [int(r["step"]) for r in rows] == list(range(1, 13))  # 24 rows / 4 = 6 a epoch
        assert {r["epoch"] for r in rows} == {"0", "1"} and all(float(r["loss"]) > 0 for r in rows)
        check = subprocess.run(
            [
                sys.executable,
                "-m",
                "torchtune._cli.tune",
                "validate",
                str(run_dir / "finetune.yaml"),
            ],
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0 and "Config is well-formed" in check.stdout, check.stderr
    adapters = tmp_path / "runs" / "finetune-lora" / "adapters" / "epoch_1"
    assert (adapters / "adapter_config.json").exists()
    assert not (tmp_path / "runs" / "finetune-full" / "adapters").exists()
    status = cruijff("status", str(path), "--json")
    assert status.stdout.count('"SUCCEEDED"') == 2
    # each finished job's peak resident memory (the local job wrapper's) and wall time went
    # into the index beside its prediction, and the CPU bounds held what the real run used
    found = measured_jobs()
    assert sorted(found) == ["finetune-full.train", "finetune-lora.train"]
    for unit, measurement in found.items():
        low, _, high = measurement.predicted["memory_gb"]
        assert low <= measurement.measured["peak_rss_gb"] <= high, (unit, measurement)
        assert measurement.measured["steps"] == 12 and measurement.measured["wall_s"] > 1
    # the next plan estimates these jobs from what they measured
    plan = json.loads(cruijff("plan", str(path), "--json").stdout)
    assert {job["estimate"]["source"] for job in plan["jobs"]} == {"measured"}
    for job in plan["jobs"]:
        assert job["estimate"]["facts"]["past_error"]["memory_gb"]["within_bounds"] == 1
    shown = cruijff("plan", str(path)).stdout
    assert "2 of 2 jobs estimated from earlier measurements (measured ÷ predicted" in shown


def measured_jobs() -> dict:
    """unit -> its latest measurement in the test's own index (CRUIJFF_DATA_DIR)."""
    from cruijff.measurements import Index

    root = Index().root
    found = {}
    for path in sorted(root.glob("*/*.json")):
        data = json.loads(path.read_text())
        found[data["unit"]] = Index().find(data["key"])[0]
    return found


def test_calibrate_measures_a_few_real_steps_and_the_next_plan_uses_them(tmp_path, tiny_model):
    path = write_experiment(tmp_path, tiny_model, {"variables": {"lora_rank": [4]}})
    before = json.loads(cruijff("plan", str(path), "--json").stdout)
    assert before["jobs"][0]["estimate"]["source"] == "formula"
    result = cruijff("calibrate", str(path), "--json", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    done = json.loads(result.stdout)
    assert done["state"] == "SUCCEEDED" and done["measured"]["steps"] == 5  # of 6 an epoch
    assert Path(done["recorded"]).exists()
    folder = Path(done["directory"])
    assert (folder / "finetune.yaml").exists() and not list(folder.rglob("*.safetensors"))
    assert not (tmp_path / "runs" / "lora_rank4").exists()  # the run itself is untouched
    after = json.loads(cruijff("plan", str(path), "--json").stdout)
    estimate = after["jobs"][0]["estimate"]
    assert estimate["source"] == "calibration"
    measured = done["measured"]
    # the loop's own time: set-up (imports, model, data) and the checkpoint are not in it
    assert 0 < measured["step_s"] * measured["steps"] < 0.8 * measured["wall_s"]
    # plan --json gives three significant digits
    assert estimate["facts"]["step_s"][1] == pytest.approx(measured["step_s"], rel=6e-3)
    assert estimate["memory_gb"][1] == pytest.approx(measured["memory_gb"], rel=6e-3)


@pytest.mark.parametrize("finetune", ["lora", "full"])
def test_an_interrupted_run_resumes_after_its_last_epoch(tmp_path, tiny_model, finetune):
    path = write_experiment(
        tmp_path,
        tiny_model,
        {
            "controls": {
                "epochs": 3,
                "batch_size": 2,
                "lr": 1e-3,
                "finetune": finetune,
                "prompt": "Capitalize the word: {input}",
                "dataset_type": "chat_completion",
                "log_every_n_steps": 1,
            }
        },
    )
    log = tmp_path / "runs" / "finetuned" / "train.log"
    first = subprocess.Popen(
        [sys.executable, "-m", "cruijff", "run", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if log.exists() and "Recipe checkpoint of size" in log.read_text(errors="replace"):
            break
        time.sleep(0.05)
    # frozen where it is (an epoch takes a tenth of a second here, a cancel seconds): the
    # cancel's SIGTERM waits, and its SIGKILL ends the job part-way
    status = tmp_path / "runs" / ".cruijff" / "local" / "jobs" / "finetuned.train.1"
    os.killpg(json.loads((status / "status.json").read_text())["pid"], signal.SIGSTOP)
    cancelled = cruijff("cancel", str(path))
    assert cancelled.returncode == 0 and "CANCELLED" in cancelled.stdout, cancelled.stdout
    first.wait(timeout=60)
    run_dir = tmp_path / "runs" / "finetuned"
    assert not (run_dir / "epoch_2").exists()  # it really stopped part-way

    again = cruijff("run", str(path), timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    text = log.read_text(errors="replace")
    assert "cruijff: resuming after epoch 0" in text or "resuming after epoch 1" in text
    second_attempt = text.split("attempt 2 started", 1)[1]
    assert "1|1|Loss" not in second_attempt  # the first epoch was not trained again
    assert [int(r["step"]) for r in steps(run_dir)] == list(range(1, 37))
    assert all((run_dir / f"epoch_{e}" / "config.json").exists() for e in range(3))


def test_a_qlora_recipe_trains_over_an_nf4_base(tmp_path):
    from tinymodel import build_tiny_llama

    # hidden 256: every attention and MLP weight splits into NF4's blocks of 16,384 values
    model = build_tiny_llama(tmp_path / "tiny256", hidden=256)
    controls = {
        "base_recipe": "llama3_2/1B_qlora_single_device",
        "epochs": 1,
        "batch_size": 4,
        "gradient_accumulation_steps": 1,
        "max_seq_len": 64,
        "prompt": "Capitalize the word: {input}",
        "dataset_type": "chat_completion",
        "log_every_n_steps": 1,
    }
    path = write_experiment(tmp_path, model, {"controls": controls})
    result = cruijff("run", str(path), timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    run_dir = tmp_path / "runs" / "finetuned"
    config = yaml.safe_load((run_dir / "finetune.yaml").read_text())
    assert config["model"]["quantize_base"] is True
    assert len(steps(run_dir)) == 6  # 24 words, batches of 4
    assert (run_dir / "epoch_0" / "config.json").exists()
