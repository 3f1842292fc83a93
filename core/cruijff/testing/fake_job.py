"""The job the fake tools run: stdlib only, so it starts fast.

``train CONFIG`` writes ``epoch_N/model.json`` (and a ``model.safetensors`` of zeros) per
epoch (sleeping ``sleep`` seconds first; exiting 3 when ``fail`` is set; exiting 0 without
writing anything when ``lie`` is set);
``eval CONFIG`` reads a model and writes ``results.json``.
With ``CRUIJFF_FAKE_TRACE`` set, each job appends ``start``/``end`` lines to that file, so
tests can prove no job ran twice or overlapped itself; with ``CRUIJFF_FAKE_GATE`` set, a
training waits (a minute at most) until that file exists, so a test decides when it ends.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

WEIGHT_BYTES = 4096
"""The size of the weights file a fake training writes per epoch."""


def trace(event: str, unit: str) -> None:
    path = os.environ.get("CRUIJFF_FAKE_TRACE")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, f"{event} {unit} {os.getpid()} {time.time():.6f}\n".encode())
        os.close(fd)


def write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def wait_for_gate() -> None:
    gate = os.environ.get("CRUIJFF_FAKE_GATE")
    deadline = time.monotonic() + 60
    while gate and not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.02)


def train(config: dict) -> int:
    wait_for_gate()
    if config.get("lie"):
        return 0
    out = Path(config["output_dir"])
    for epoch in range(config["epochs"]):
        time.sleep(float(config.get("sleep", 0)) / max(1, config["epochs"]))
        print(f"epoch {epoch + 1}/{config['epochs']} | loss {1 / (epoch + 2):.3f}", flush=True)
        if config.get("fail"):
            print("fake failure", file=sys.stderr)
            return 3
        write(out / f"epoch_{epoch}" / "model.json", {"params": config["params"], "epoch": epoch})
        # weights, as a real trainer leaves them (what `cruijff clean` frees)
        (out / f"epoch_{epoch}" / "model.safetensors").write_bytes(bytes(WEIGHT_BYTES))
    # the loss per step, as a train-metrics CSV (two steps an epoch)
    rows = ["step,epoch,loss"]
    for step in range(1, 2 * config["epochs"] + 1):
        rows.append(f"{step},{(step - 1) // 2},{1 / (step + 1):.4f}")
    (out / "metrics.csv").write_text("\n".join(rows) + "\n")
    return 0


def evaluate(config: dict) -> int:
    model = json.loads(Path(config["model"]).read_text()) if config["model"] else {"params": {}}
    rank = model["params"].get("lora_rank", 0)
    score = {"accuracy": min(1.0, rank / 16), "samples": 20}
    # which of the 20 samples are right: the first rank/16 of them, shifted by the seed, so
    # runs of one rank and several seeds get the same accuracy on different samples
    right = round(20 * score["accuracy"])
    seed = int(model["params"].get("seed", 0))
    scores = {f"s{i:02d}": int((i + seed) % 20 < right) for i in range(20)}
    write(Path(config["output"]), {"task": config["task"], "metrics": score, "scores": scores})
    print(f"accuracy {score['accuracy']:.2f}", flush=True)
    return 0


def main() -> int:
    kind, config_path = sys.argv[1], Path(sys.argv[2])
    config = json.loads(config_path.read_text())
    trace("start", config["unit"])
    code = train(config) if kind == "train" else evaluate(config)
    trace("end", config["unit"])
    return code


if __name__ == "__main__":
    sys.exit(main())
