"""The README's demo, shortened: the real SmolLM2-135M-Instruct (from PyPI, converted once),
one LoRA run of a few steps against the base model, evaluated with inspect-ai, all through
`cruijff run` on the CPU, whose driver is killed while the real training runs: the next run
attaches to the three jobs, none runs twice. Its output must show fine-tuning beating the base
model."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("torchtune")
pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "capitalization"


def run(*argv: str, cwd: Path | None = None, timeout: int = 900) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def _running(job: Path) -> bool:
    try:
        return json.loads((job / "status.json").read_text())["state"] == "running"
    except (OSError, ValueError, KeyError):
        return False


def test_a_short_demo_beats_the_base_model_through_a_kill(tmp_path):
    run(sys.executable, str(EXAMPLE / "get_model.py"))  # cached beside the example
    run(sys.executable, str(EXAMPLE / "make_data.py"), "--out", str(tmp_path / "words.json"))
    document = yaml.safe_load((EXAMPLE / "experiment.yaml").read_text())
    document["experiment"]["dir"] = str(tmp_path / "runs")
    document["variables"] = {"lora_rank": [16]}
    document["controls"]["max_steps_per_epoch"] = 12  # instead of 20
    document["models"]["base"][0]["path"] = str(EXAMPLE / "models" / "SmolLM2-135M-Instruct")
    document["data"]["training"]["path"] = str(tmp_path / "words.json")
    document["evaluation"]["tasks"][0]["script"] = str(EXAMPLE / "tasks" / "capitalization.py")
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))

    # the driver killed (SIGKILL) while the real training runs: the next run attaches to it
    jobs = tmp_path / "runs" / ".cruijff" / "local" / "jobs"
    first = subprocess.Popen(
        [sys.executable, "-m", "cruijff", "run", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    while not _running(jobs / "finetuned.train.1"):
        assert first.poll() is None and time.monotonic() < deadline, "training never started"
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait()
    output = run(sys.executable, "-m", "cruijff", "run", str(path))
    assert "3 of 3 jobs succeeded" in output
    assert "(resumed: 0 skipped, 3 watched, 0 submitted)" in output.replace("\n", "")
    assert sorted(p.name for p in jobs.iterdir()) == [  # each job ran once: no second attempt
        "base.eval.capitalization.base.1",
        "finetuned.eval.capitalization.epoch_0.1",
        "finetuned.train.1",
    ]
    table = output.split("Results", 1)[1]
    assert "finetuned" in table and "base" in table and "match/accuracy" in table
    # the run ends with the analysis: the fine-tuned model against its base, sample by sample
    report = tmp_path / "runs" / "analysis" / "report.html"
    assert f"Report: {report}" in output.replace("\n", "")
    analysis = json.loads(run(sys.executable, "-m", "cruijff", "analyze", str(path), "--json"))
    (comparison,) = [c for c in analysis["comparisons"] if c["metric"] == "match/accuracy"]
    assert (comparison["run"], comparison["control"]) == ("finetuned", "base")
    assert comparison["delta"] > 0 and comparison["flips_up"] > 0
    assert "finetuned" in report.read_text() and "base" in report.read_text()

    runs = tmp_path / "runs"
    assert (runs / "finetuned" / "epoch_0" / "model-00001-of-00001.safetensors").exists()
    assert len((runs / "finetuned" / "metrics.csv").read_text().splitlines()) == 13
    for cell in (
        runs / "finetuned" / "eval" / "capitalization" / "epoch_0",
        runs / "base" / "eval" / "capitalization" / "base",
    ):
        assert list((cell / "logs").glob("*.eval")), f"no .eval log in {cell}"
        assert json.loads((cell / "results.json").read_text())["status"] == "success"

    status = json.loads(run(sys.executable, "-m", "cruijff", "status", str(path), "--json"))
    accuracy = {
        job["unit"].split(".")[0]: job["metrics"].get("match/accuracy")
        for job in status["jobs"]
        if ".eval." in job["unit"]
    }
    assert accuracy["finetuned"] > accuracy["base"], accuracy  # fine-tuning taught it something

    again = run(sys.executable, "-m", "cruijff", "run", str(path), timeout=120)
    assert "3 of 3 jobs succeeded" in again  # nothing ran again
    assert "(resumed: 3 skipped, 0 watched, 0 submitted)" in again.replace("\n", "")
