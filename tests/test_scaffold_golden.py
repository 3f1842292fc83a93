"""What ``cruijff scaffold`` writes, byte for byte, for a representative experiment (two base
models, LoRA rank × learning rate, inspect evaluations, SLURM batch scripts): a digest of
every file against a golden manifest. Making scaffolds faster must not change one byte; a
change meant to change them is written with ``CRUIJFF_UPDATE_GOLDEN=1 scripts/test -k golden``
after reading the diff of a scaffold.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_plan_golden import TASK, write_experiment

pytest.importorskip("cruijff_torchtune")

GOLDEN = Path(__file__).parent / "golden" / "scaffold.json"
DIGEST = re.compile(r"\b[0-9a-f]{64}\b")
VOLATILE = {"events.jsonl"}  # the log of what happened when: times, not generated files


def manifest(folder: Path, root: Path) -> dict[str, str]:
    """Each file under ``root`` -> the digest of its text with the test's own paths named."""
    found = {}
    files = (p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    for path in sorted(p for p in files if p.name not in VOLATILE):
        text = path.read_text(encoding="utf-8")
        for real, name in ((str(folder), "<experiment>"), (str(TASK.parent), "<tasks>")):
            text = text.replace(real, name)
        text = text.replace(sys.executable, "<python>")
        if path.suffix == ".json" and ".cruijff" in path.parts:
            # cruijff's own manifests hold digests of the files with their real paths in them
            text = DIGEST.sub("<digest>", text)
        found[str(path.relative_to(root))] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return found


def test_a_scaffold_is_the_same_byte_for_byte(tmp_path):
    path = write_experiment(tmp_path)
    for model in ("llama-1b", "qwen-7b"):
        (tmp_path / "models" / model / "model.safetensors").write_bytes(b"")
    result = subprocess.run(
        [sys.executable, "-m", "cruijff", "scaffold", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "CRUIJFF_PLUGINS": ""},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = manifest(tmp_path, tmp_path / "runs")
    if os.environ.get("CRUIJFF_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    changed = sorted(
        name for name in golden.keys() | found.keys() if golden.get(name) != found.get(name)
    )
    assert not changed, f"{len(changed)} files differ: {changed[:10]}"
    assert len(found) > 30 and any(name.endswith(".slurm") for name in found)
