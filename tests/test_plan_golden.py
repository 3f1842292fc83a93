"""``cruijff plan --json`` of a multi-model, multi-axis experiment on SLURM, against a golden
file: two base models known from ``config.json`` alone (Llama-3.2-1B, Qwen2.5-7B), LoRA rank ×
learning rate, evaluated with inspect-ai, on a profile's A100s. Every figure the plan gives
(estimates, totals, arrays, warnings) is pinned: a change to a formula or to what plan shows
must be looked at, then written with ``CRUIJFF_UPDATE_GOLDEN=1 scripts/test -k golden``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_torchtune_estimate import LLAMA_3_2_1B, QWEN_2_5_7B

pytest.importorskip("cruijff_torchtune")
pytest.importorskip("cruijff_inspect")
pytest.importorskip("cruijff_slurm")

GOLDEN = Path(__file__).parent / "golden" / "plan.json"
TASK = Path(__file__).parent / "inspect_tasks" / "capitalization.py"
WORDS = ["apple", "pear", "fig", "plum", "kiwi", "lime", "lemon", "mango", "melon", "peach"]


def write_experiment(folder: Path) -> Path:
    for name, config in (("llama-1b", LLAMA_3_2_1B), ("qwen-7b", QWEN_2_5_7B)):
        (folder / "models" / name).mkdir(parents=True)
        (folder / "models" / name / "config.json").write_text(json.dumps(config))
    rows = [{"input": f"{w} " * 20, "output": f"{w.upper()} " * 20} for w in WORDS * 40]
    (folder / "words.json").write_text(json.dumps({"train": rows[:320], "test": rows[320:]}))
    document = {
        "experiment": {"name": "golden", "dir": "runs", "min_effect": 0.1},
        "tools": {"preparation": "torchtune", "evaluation": "inspect"},
        "variables": {"lora_rank": [8, 64], "lr": [1e-4, 3e-4]},
        "controls": {
            "epochs": 2,
            "batch_size": 16,
            "num_warmup_steps": 10,
            "dataset_type": "chat_completion",
            "prompt": "Capitalize: {input}",
            "time_minutes": 20,
        },
        "models": {
            "base": [
                {"name": "llama-1b", "path": "models/llama-1b"},
                {"name": "qwen-7b", "path": "models/qwen-7b"},
            ]
        },
        "data": {"training": {"path": "words.json"}},
        "evaluation": {
            "max_tokens": 48,
            "tasks": [{"name": "capitalization", "script": str(TASK), "dataset": "same"}],
        },
        "scheduler": {"name": "slurm", "gpu": "a100-80gb", "partition": "gpu", "jobs": 4},
    }
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def plan(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cruijff", "plan", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "CRUIJFF_PLUGINS": ""},
        cwd=cwd,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def planned(folder: Path) -> dict:
    text = plan("--json", str(write_experiment(folder)), cwd=folder)
    text = text.replace(str(folder), "<experiment>")
    text = text.replace(str(TASK.parent), "<tasks>").replace(sys.executable, "<python>")
    return json.loads(text)


def test_plan_json_of_a_multi_model_multi_axis_experiment(tmp_path):
    found = planned(tmp_path)
    if os.environ.get("CRUIJFF_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert found == golden
    # what the issue names, so a golden file written wrong cannot pass unseen
    assert set(found["totals"]) >= {"runs", "jobs", "eval_samples", "gpu_hours", "disk_gb"}
    assert set(found["totals"]["disk_gb"]) == {"checkpoints", "adapters", "logs", "total"}
    assert found["totals"]["runs"] == 10 and found["totals"]["jobs"] == 8 + 8 + 2
    train = [job for job in found["jobs"] if job["unit"].endswith(".train")]
    for job in found["jobs"]:
        estimate = job["estimate"]
        assert set(estimate) >= {"memory_gb", "hours", "source", "facts"}
        low, expected, high = estimate["memory_gb"]
        assert 0 < low <= expected <= high
    assert {job["estimate"]["source"] for job in train} == {"formula"}
    # models known from config.json alone are sized for GPUs, their evaluations too
    assert {job["gpus"] for job in found["jobs"]} == {1}
    assert found["notes"]["arrays"] and found["notes"]["evaluation_power"]
    qwen = next(job for job in train if job["unit"].startswith("qwen"))
    assert qwen["estimate"]["facts"]["parameters"] == 7_615_616_512
    # a person reads the same: the notes as tables, the totals in one line
    shown = plan("experiment.yaml", cwd=tmp_path)
    assert "Arrays" in shown and "Evaluation power" in shown
    gpu_hours = found["totals"]["gpu_hours"]
    assert f"{gpu_hours[1]:.3g} GPU-hours ({gpu_hours[0]:.3g} to {gpu_hours[2]:.3g})" in shown


def test_gpus_of_unknown_type_give_memory_but_no_time(tmp_path):
    path = write_experiment(tmp_path)
    document = yaml.safe_load(path.read_text())
    del document["scheduler"]["gpu"]  # the jobs get GPUs; nobody says which
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    found = json.loads(plan("--json", str(path), cwd=tmp_path))
    for job in found["jobs"]:
        assert job["gpus"] == 1 and job["estimate"]["memory_gb"]
        assert job["estimate"]["hours"] is None, job["unit"]  # never a CPU's time for a GPU job
    assert found["totals"]["unknown"]["hours"] == len(found["jobs"])


def test_a_plan_imports_no_scipy_torch_or_inspect(tmp_path):
    # planning is arithmetic on what the files say: the heavy libraries stay in the jobs
    path = write_experiment(tmp_path)
    code = (
        "import sys\n"
        "from cruijff.cli import main\n"
        f"sys.argv = ['cruijff', 'plan', '--json', {str(path)!r}]\n"
        "try:\n    main()\nexcept SystemExit as end:\n    assert not end.code, end.code\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'scipy', 'torch', 'torchtune', 'inspect_ai', 'transformers', 'matplotlib'})\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("HEAVY []")
