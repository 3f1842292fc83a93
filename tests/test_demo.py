"""The README's demo, shortened: the real SmolLM2-135M-Instruct (from PyPI, converted once),
one LoRA run of a few steps against the base model, evaluated with inspect-ai, all through
`cruijff run` on the CPU. Its real output must show fine-tuning beating the base model."""

from __future__ import annotations

import json
import subprocess
import sys
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


def test_a_short_demo_beats_the_base_model(tmp_path):
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

    output = run(sys.executable, "-m", "cruijff", "run", str(path))
    assert "3 of 3 jobs succeeded" in output
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
    assert "3 of 3 jobs succeeded" in again and "submitted" not in again  # nothing ran again
