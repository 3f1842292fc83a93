"""What a scheduler's jobs run on, for estimates: a GPU type with its memory and peak
throughput, or the host's CPU and memory.

A scheduler says it with ``SchedulerInfo.hardware(experiment)``; a SLURM profile names its GPU
as ``gpu: {type: a100-80gb}`` (a row of :data:`GPUS`) or describes one the table lacks as
``gpu: {memory_gb: 80, tflops_bf16: 312}`` (:func:`gpu_from`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import attrs

GPUS: dict[str, tuple[float, float, float]] = {
    # type: (memory GiB as nvidia-smi reports it, dense bf16 TFLOP/s, fp32 TFLOP/s without TF32)
    "a100-40gb": (40.0, 312, 19.5),
    "a100-80gb": (80.0, 312, 19.5),
    "h100-80gb": (79.6, 989, 67),
    "h100-pcie": (79.6, 756, 51),
    "h200": (140.4, 989, 67),
    "l40s": (45.0, 362, 91.6),
    "l4": (22.5, 121, 30.3),
    "a40": (45.0, 150, 37.4),
    "a6000": (48.0, 155, 38.7),
    "v100-32gb": (32.0, 125, 15.7),
}
"""Memory as ``nvidia-smi`` totals it (MiB / 1024: an "80 GB" H100 holds 81,559 MiB, an L4's
"24 GB" are 23,034 MiB); peaks from NVIDIA's data sheets (SXM parts unless named; bf16 tensor
cores without sparsity; V100 has no bf16 and is given its fp16 figure). PyTorch does not allow
TF32 in matrix products by default, so fp32 training runs at the plain FP32 rate."""


@attrs.frozen(kw_only=True)
class Gpu:
    """One GPU type: its memory in GiB and peak dense throughput in TFLOP/s."""

    name: str
    memory_gb: float
    tflops_bf16: float
    tflops_fp32: float | None = None

    def tflops(self, dtype: str) -> float:
        """Peak TFLOP/s in ``dtype`` (fp32 falls back to a sixteenth of bf16 where unknown)."""
        if dtype == "fp32":
            return self.tflops_fp32 or self.tflops_bf16 / 16
        return self.tflops_bf16


@attrs.frozen(kw_only=True)
class Hardware:
    """What one job runs on: a GPU (None: the CPU) and the host's memory in GiB (None:
    unknown), with the host's cores."""

    gpu: Gpu | None = None
    host_memory_gb: float | None = None
    cpus: int | None = None

    @property
    def device(self) -> str:
        return "cuda" if self.gpu is not None else "cpu"

    @property
    def name(self) -> str:
        return self.gpu.name if self.gpu is not None else "cpu"

    def describe(self) -> dict[str, Any]:
        """As the estimates' facts and the measurements' keys name it."""
        if self.gpu is None:
            return {"device": "cpu", "memory_gb": self.host_memory_gb}
        return {"device": "cuda", "gpu": self.gpu.name, "memory_gb": self.gpu.memory_gb}


def this_machine() -> Hardware:
    """The CPU and memory of the machine cruijff runs on (the local scheduler's jobs')."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (OSError, ValueError):
        memory = None
    return Hardware(gpu=None, host_memory_gb=memory, cpus=os.cpu_count())


def gpu_from(spec: Mapping[str, Any] | str) -> Gpu:
    """A Gpu from a profile's ``gpu`` value: a type of :data:`GPUS` (``a100-80gb`` or
    ``{type: a100-80gb}``, its figures overridable) or ``{memory_gb, tflops_bf16}`` for a
    type the table lacks. ValueError says what is valid."""
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, Mapping):
        raise ValueError("gpu must be a type (e.g. a100-80gb) or {memory_gb, tflops_bf16}")
    unknown = sorted(set(spec) - {"type", "memory_gb", "tflops_bf16", "tflops_fp32"})
    if unknown:
        raise ValueError(
            f"gpu has no key {', '.join(unknown)} (keys: type, memory_gb, tflops_bf16, tflops_fp32)"
        )
    name = str(spec.get("type") or "").lower()
    if name and name not in GPUS and not {"memory_gb", "tflops_bf16"} <= set(spec):
        raise ValueError(
            f"gpu type {name!r} is not in cruijff's table (known: {', '.join(GPUS)}); "
            "describe it with memory_gb and tflops_bf16"
        )
    memory, bf16, fp32 = GPUS.get(name, (None, None, None))
    figures = {
        "memory_gb": spec.get("memory_gb", memory),
        "tflops_bf16": spec.get("tflops_bf16", bf16),
        "tflops_fp32": spec.get("tflops_fp32", fp32),
    }
    for key, value in figures.items():
        if value is None and key != "tflops_fp32":
            raise ValueError(f"gpu needs {key} (or a type: {', '.join(GPUS)})")
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
        ):
            raise ValueError(f"gpu {key} must be a positive number, not {value!r}")
    return Gpu(
        name=name or f"{figures['memory_gb']:g}gb",
        memory_gb=float(figures["memory_gb"]),
        tflops_bf16=float(figures["tflops_bf16"]),
        tflops_fp32=None if figures["tflops_fp32"] is None else float(figures["tflops_fp32"]),
    )
