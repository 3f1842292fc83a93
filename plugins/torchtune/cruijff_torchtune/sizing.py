"""Design for the torchtune tool: what each training job will take (memory, hours, disk), the
review that warns where a run cannot fit (naming the smallest change that would), what a
finished job measured, and the short job ``cruijff calibrate`` runs. The formulas are in
:mod:`cruijff_torchtune.estimate`; this module chooses their inputs and their source.

Sequence length
    A batch is padded to its longest row, and rows are cut only by ``dataset.max_seq_len``.
    Tokens are bounded by the training file's text: a byte-level tokenizer (Llama 3, Qwen2,
    SmolLM2) makes at most one token a byte, English prose about one per four bytes, and
    no tokenizer fewer than one per six. Memory takes the longest row (low: bytes/6,
    expected: bytes/4, high: bytes, plus :data:`TEMPLATE_TOKENS` for the chat template);
    time the middle of the mean and the longest row, per step.

Time, in order of preference
    ``measured``: the seconds per step of earlier runs with the same :func:`key` (model,
    method, dtype, micro-batch, sequence length, activation checkpointing, GPUs and their
    type) in the cross-experiment index; ``calibration``: the same from ``cruijff
    calibrate``'s short jobs; ``formula``: FLOPs ÷ (peak × utilisation), on the CPU at
    :data:`CPU_GFLOPS` a core. Each adds the fixed part (:func:`fixed_seconds`): start-up
    (:data:`STARTUP_S`: the interpreter, torch and torchtune, the process group) and
    reading the checkpoint once and writing one per epoch at :data:`DISK_GBPS`.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from cruijff.estimates import Estimate, Range, Review
from cruijff.hardware import Hardware
from cruijff.measurements import Index, Measurement, past_error
from cruijff.records import (
    Experiment,
    JobSpec,
    JobStatus,
    Plan,
    Problem,
    Severity,
    Unit,
)
from cruijff_torchtune import NAME, estimate, outputs
from cruijff_torchtune.models import ModelError
from cruijff_torchtune.units import TrainingPlan

TEMPLATE_TOKENS = (8, 16, 32)
"""Tokens a chat template and the prompt's markers add to a row (low, expected, high)."""
BYTES_PER_TOKEN = (6.0, 4.0, 1.0)
"""Text bytes a token (for the low, expected, high token counts)."""
UNKNOWN_SEQ = (64, 512, 2048)
"""Sequence lengths taken when the training file is not there yet."""
STARTUP_S = {"cpu": (5.0, 12.0, 40.0), "cuda": (20.0, 45.0, 120.0)}
"""Seconds before the first step, besides reading the checkpoint (a judgment: 7 to 12 s are
measured for the tiny model on this project's 2-core CI machine)."""
DISK_GBPS = (2.0, 0.8, 0.2)
"""Reading and writing checkpoints, GB/s (fast, expected, slow: a local NVMe to a busy
network file system)."""
CPU_GFLOPS = (40.0, 15.0, 4.0)
"""Sustained training GFLOP/s a CPU core (fast, expected, slow): fp32 matrix products on
AVX2/AVX-512 reach 30 to 60; small models stay far below."""
RUNTIME_GIB = (0.15, 0.2, 0.3)
"""What a CPU job's resident memory holds that :func:`estimate.training_memory` leaves out:
the interpreter with torch imported (0.2 GiB of the 0.43 GiB measured with torch 2.13,
torchtune and transformers imported; the rest is in its CPU overhead). A GPU job's host
memory is not its peak."""
CALIBRATION_STEPS = 5
LOG_GB = 0.001
"""torchtune's logs and cruijff's metrics: a few hundred bytes a step."""


@attrs.frozen(kw_only=True)
class Inputs:
    """What an estimate of one training unit is made of."""

    plan: TrainingPlan
    config: Mapping[str, Any]
    args: Mapping[str, Any]
    seq: tuple[int, int, int]
    seq_time: tuple[int, int, int]
    steps: int
    ranks: int


def inputs(unit: Unit) -> Inputs | None:
    """The inputs of a training unit's estimate; None where the model cannot be sized."""
    plan: TrainingPlan = unit.payload
    finetune = plan.config  # read-only mappings: read as they are
    try:
        estimate.parameter_count(plan.model_config)
    except (ModelError, ValueError, TypeError, KeyError, ZeroDivisionError):
        return None  # parse says what is wrong with the folder
    args = estimate.memory_arguments(finetune)
    ranks = plan.nproc
    cap = (finetune.get("dataset") or {}).get("max_seq_len")
    if plan.row_bytes is None:
        seq, seq_time = UNKNOWN_SEQ, UNKNOWN_SEQ
    else:
        longest, mean = plan.row_bytes
        seq = _tokens(longest)
        middle = _tokens((longest + mean) / 2)
        seq_time = (middle[0], middle[1], seq[2])
    if cap:
        seq = tuple(min(int(cap), s) for s in seq)  # type: ignore[assignment]
        seq_time = tuple(min(int(cap), s) for s in seq_time)  # type: ignore[assignment]
    batch, accumulation = outputs.step_size(finetune)
    rows = plan.train_rows
    steps = 0
    if rows:
        steps = estimate.training_steps(
            rows,
            batch,
            accumulation,
            int(finetune.get("epochs") or 1),
            finetune.get("max_steps_per_epoch"),
            ranks,
        )
    return Inputs(
        plan=plan,
        config=plan.model_config,
        args=args,
        seq=seq,
        seq_time=seq_time,
        steps=steps,
        ranks=ranks,
    )


def _tokens(text_bytes: float) -> tuple[int, int, int]:
    return tuple(  # type: ignore[return-value]
        max(1, math.ceil(text_bytes / per) + extra)
        for per, extra in zip(BYTES_PER_TOKEN, TEMPLATE_TOKENS, strict=True)
    )


def key(found: Inputs, hardware: Hardware) -> dict[str, Any]:
    """What makes two training jobs' measurements comparable: the model, the method and its
    numerics, the micro-batch and accumulation (a step's work), the typical and the longest
    sequence (rounded up to powers of two: time and peak memory), the device, the GPUs and
    their type (or the CPU's cores). Not the learning rate, seed, rank or epochs: a sweep
    over them shares one figure."""
    on_gpu = found.args["device"] == "cuda"
    return {
        "tool": NAME,
        "architecture": str((found.config.get("architectures") or ["?"])[0]),
        "parameters": estimate.parameter_count(found.config),
        "method": found.args["method"],
        "dtype": found.args["dtype"],
        "micro_batch": found.args["micro_batch"],
        "gradient_accumulation": found.args["gradient_accumulation"],
        "seq_len": _bucket(found.seq_time[1]),
        "longest": _bucket(found.seq[2]),  # what the peak memory depends on
        "activation_checkpointing": found.args["activation_checkpointing"],
        "device": found.args["device"],
        "gpus": found.ranks if on_gpu else 0,
        "hardware": (hardware.name if hardware.gpu else "unknown-gpu") if on_gpu else "cpu",
        "cpus": None if on_gpu else hardware.cpus,
    }


def _bucket(tokens: int) -> int:
    """``tokens`` rounded up to a power of two."""
    return 1 << max(0, tokens - 1).bit_length()


def memory(found: Inputs, **changes: Any) -> Range:
    """Peak GiB per device (the host's resident memory on the CPU): the low bound at the
    shortest sequence, the high at the longest."""
    args = {**found.args, **changes}
    ends = [
        estimate.training_memory(found.config, seq_len=seq, ranks=found.ranks, **args)
        for seq in found.seq
    ]
    peak = Range(ends[0].low, ends[1].expected, ends[2].high)
    return peak + Range(*RUNTIME_GIB) if args["device"] == "cpu" else peak


def fixed_seconds(found: Inputs, device: str) -> Range:
    """Start-up and checkpoint reading and writing (low, expected, high)."""
    weights = estimate.parameter_count(found.config) * estimate._file_bytes(found.config) / 1e9
    epochs = int(found.plan.config.get("epochs") or 1)
    moved = weights * (1 + epochs)  # read once, one checkpoint an epoch
    startup = STARTUP_S[device]
    return Range(*(s + moved / rate for s, rate in zip(startup, DISK_GBPS, strict=True)))


def formula_step_seconds(found: Inputs, hardware: Hardware, cpus: int) -> Range | None:
    """Seconds an optimizer step takes by FLOPs; None where the GPU's type is unknown."""
    args = found.args
    tokens = [
        estimate.tokens_per_step(args["micro_batch"], seq, args["gradient_accumulation"], 1)
        for seq in found.seq_time
    ]
    lora = {
        name: args[name]
        for name in ("lora_rank", "lora_targets", "lora_mlp", "lora_output")
        if name in args
    }
    per_token = [
        estimate.flops_per_token(
            found.config,
            method=args["method"],
            seq_len=seq,
            activation_checkpointing=args["activation_checkpointing"],
            **lora,
        )
        for seq in found.seq_time
    ]
    if args["device"] == "cuda":
        if hardware.gpu is None:
            return None
        peak = hardware.gpu.tflops(args["dtype"]) * 1e12
        rates = [peak * u for u in sorted(estimate.UTILISATION, reverse=True)]
    else:
        rates = [g * 1e9 * max(1, cpus) for g in CPU_GFLOPS]
    seconds = [f * t / r for f, t, r in zip(per_token, tokens, rates, strict=True)]
    return Range(*sorted(seconds))


_made: dict[str, Any] = {"index": None, "estimates": {}}
"""The estimates made for the current plan (its index of measurements), by what they are made
of: a sweep of a thousand runs over learning rates and seeds has a handful of distinct ones."""


def training_estimate(
    unit: Unit, job: JobSpec, hardware: Hardware, measurements: Index
) -> Estimate | None:
    """The estimate of one training job (module docstring), made once per distinct input."""
    found = inputs(unit)
    if found is None:
        return None
    if _made["index"] is not measurements:
        _made.update(index=measurements, estimates={})
    signature = (
        id(found.config),
        tuple(sorted(found.args.items())),
        found.seq,
        found.seq_time,
        found.steps,
        found.ranks,
        found.plan.adapters_only,
        found.plan.config.get("epochs"),
        bool(found.plan.train_rows),
        hardware,
        job.resources.cpus,
    )
    known = _made["estimates"].get(signature)
    if known is not None and known[0] is found.config:  # the same model config, not its id's heir
        return known[1]
    made = _training_estimate(found, job, hardware, measurements)
    _made["estimates"][signature] = (found.config, made)
    return made


def _training_estimate(
    found: Inputs, job: JobSpec, hardware: Hardware, measurements: Index
) -> Estimate:
    device = found.args["device"]
    mem = memory(found)
    fixed = fixed_seconds(found, device)
    facts: dict[str, Any] = {
        "parameters": estimate.parameter_count(found.config),
        "method": found.args["method"],
        "micro_batch": found.args["micro_batch"],
        "gradient_accumulation": found.args["gradient_accumulation"],
        "seq_len": list(found.seq),
        "steps": found.steps,
        "tokens": estimate.tokens_per_step(
            found.args["micro_batch"],
            found.seq_time[1],
            found.args["gradient_accumulation"],
            found.ranks,
        )
        * found.steps,
        "device": device if device == "cpu" else (hardware.name if hardware.gpu else "unknown-gpu"),
        "gpus": found.ranks if device == "cuda" else 0,
        "fixed_s": fixed.rounded(),
    }
    the_key = key(found, hardware)
    step, source, measured_memory = _measured_step(the_key, measurements, facts)
    if step is None:
        step = formula_step_seconds(found, hardware, job.resources.cpus or 1)
        if step is not None:
            facts["utilisation"] = list(sorted(estimate.UTILISATION)) if device == "cuda" else None
            facts["cpu_gflops_per_core"] = list(CPU_GFLOPS) if device == "cpu" else None
    if measured_memory is not None:
        facts["memory_formula_gb"] = mem.rounded()
        mem = measured_memory
    hours = None
    if step is not None:
        facts["step_s"] = step.rounded()
        if found.plan.train_rows:  # unknown rows (a job writes the file): steps are unknown
            hours = (fixed + step * found.steps) * (1 / 3600)
    return Estimate(
        memory_gb=mem,
        hours=hours,
        disk_gb=disk(found),
        source=source,
        facts=facts,
        key=the_key,
    )


def _measured_step(
    the_key: Mapping[str, Any], index: Index, facts: dict[str, Any]
) -> tuple[Range | None, str, Range | None]:
    """Seconds a step from the index (runs first, then calibrations), the source they came
    from and, where measured, the peak memory."""
    for source, label in (("run", "measured"), ("calibration", "calibration")):
        found = [m for m in index.find(the_key, source=source) if _step_s(m) is not None]
        if not found:
            continue
        steps = sorted(_step_s(m) for m in found)  # type: ignore[type-var]
        facts["measurements"] = len(found)
        facts["past_error"] = {
            "hours": past_error(tuple(found), "hours", "hours"),
            "memory_gb": past_error(tuple(found), "memory_gb", "memory_gb"),
        }
        peaks = sorted(m.measured["memory_gb"] for m in found if m.measured.get("memory_gb"))
        # the allocator's high-water mark moves a little with the data's order
        memory = Range(peaks[0] * 0.9, statistics.median(peaks), peaks[-1] * 1.1) if peaks else None
        return Range(steps[0], statistics.median(steps), steps[-1] * 1.25), label, memory
    return None, "formula", None


def _step_s(measurement: Measurement) -> float | None:
    value = measurement.measured.get("step_s")
    return float(value) if isinstance(value, int | float) and value > 0 else None


def disk(found: Inputs) -> dict[str, Range]:
    """GB the run leaves: a merged model an epoch (unless adapters only), an adapter an epoch
    (LoRA), the optimizer's state for resuming (kept for the last epoch only), and logs."""
    epochs = int(found.plan.config.get("epochs") or 1)
    parameters = estimate.parameter_count(found.config)
    p = estimate._file_bytes(found.config)
    checkpoints = 0.0 if found.plan.adapters_only else parameters * p * epochs / 1e9
    adapters = 0.0
    trainable = parameters
    if found.args["method"] != "full":
        trainable = estimate.lora_parameters(
            found.config,
            found.args["lora_rank"],
            found.args["lora_targets"],
            found.args["lora_mlp"],
            found.args["lora_output"],
        )
        adapters = trainable * p * epochs / 1e9
    state = trainable * 2 * estimate.DTYPE_BYTES.get(found.args["dtype"], 2) / 1e9
    logs = LOG_GB + found.steps * 300 / 1e9
    return {
        # the tokenizer's and config files beside each checkpoint: a few MB
        "checkpoints": Range(checkpoints, checkpoints + state, checkpoints + state + 0.05),
        "adapters": Range.of(adapters),
        "logs": Range(logs / 2, logs, logs * 4),
    }


# --- review -----------------------------------------------------------------------------


def review(plan: Plan) -> Review | None:
    """A warning for every training job that cannot fit in the memory it runs in (the GPU's,
    or the host's on the CPU), with the smallest change that would fit."""
    experiment = plan.experiment
    hardware = plan.hardware or Hardware()
    problems = []
    for unit in plan.units:
        if unit.tool != NAME or unit.kind != "train":
            continue
        estimated = plan.estimates.get(unit.id)
        if estimated is None or estimated.memory_gb is None:
            continue
        on_gpu = estimate.device(unit.payload.config) == "cuda"
        capacity = hardware.gpu.memory_gb if on_gpu and hardware.gpu else None
        if not on_gpu:
            capacity = hardware.host_memory_gb
            if unit.payload.resources.mem_mb and hardware.gpu is None:
                capacity = min(capacity or math.inf, unit.payload.resources.mem_mb / 1024)
        if capacity is None or estimated.memory_gb.expected <= capacity:
            continue
        found = inputs(unit)
        if found is None:
            continue
        where = "GPU" if on_gpu else "memory the job has"
        fix = smallest_fix(found, capacity)
        problems.append(
            Problem(
                where=experiment.locate(experiment.run(unit.run).yaml_path),
                message=f"run {unit.run!r} needs about {estimated.memory_gb.text('GiB')} "
                f"per device, more than the {capacity:.3g} GiB of the {where}"
                + (f" ({hardware.gpu.name})" if on_gpu and hardware.gpu else ""),
                hint=fix,
                severity=Severity.WARNING,
                plugin=NAME,
            )
        )
    return Review(problems=problems) if problems else None


def smallest_fix(found: Inputs, capacity: float) -> str:
    """The first change, smallest first, after which the expected peak fits: activation
    checkpointing, then a smaller micro-batch (a divisor of it, with as much more accumulation:
    exactly the same effective batch), then both, then QLoRA for LoRA or LoRA for a full
    fine-tune."""
    args = found.args
    batch, accumulation = args["micro_batch"], args["gradient_accumulation"]
    candidates: list[tuple[str, dict[str, Any]]] = []
    if not args["activation_checkpointing"]:
        candidates.append(
            ("set enable_activation_checkpointing: true", {"activation_checkpointing": True})
        )
    for smaller in sorted((d for d in range(1, batch) if batch % d == 0), reverse=True):
        factor = batch // smaller  # a divisor keeps the effective batch exactly
        change = {"micro_batch": smaller, "gradient_accumulation": accumulation * factor}
        text = f"batch_size: {smaller} with gradient_accumulation_steps: {accumulation * factor}"
        candidates.append((f"set {text} (the same effective batch)", change))
        if not args["activation_checkpointing"]:
            candidates.append(
                (
                    f"set {text} and enable_activation_checkpointing: true",
                    {**change, "activation_checkpointing": True},
                )
            )
    if args["method"] == "lora":
        candidates.append(("train QLoRA: set quantize_base: true", {"method": "qlora"}))
    if args["method"] == "full":
        lora = {
            "method": "lora",
            "lora_rank": 8,
            "lora_targets": estimate.LORA_TARGETS,
            "lora_mlp": True,
            "lora_output": False,
            "lora_dropout": 0.0,
            "optimizer_in_bwd": False,
        }
        candidates.append(("train LoRA instead: finetune: lora", lora))
    for text, change in candidates:
        try:
            needed = memory(found, **change)
        except ValueError:
            continue
        if needed.expected <= capacity:
            return f"{text} (about {needed.text('GiB')})"
    return "no single change fits: use a GPU with more memory, or more GPUs (set gpus)"


# --- measure and calibrate --------------------------------------------------------------


def measure(unit: Unit, status: JobStatus) -> dict[str, Any] | None:
    """What a finished training job did: its optimizer steps, the seconds a step took, the
    peak GPU memory torchtune logged (reserved by the allocator, GiB; CUDA only) and its
    median tokens per second (torchtune's, of label tokens). A step's time comes from the
    training loop's progress bars in the job's log (:func:`_training_loop`)."""
    found = inputs(unit)
    rows = outputs.read_metrics(unit.directory)
    if found is None or not rows:
        return None
    measured: dict[str, Any] = {"steps": int(float(rows[-1]["step"]))}
    loop = _training_loop(unit.directory / outputs.LOG)
    if loop is not None:
        measured["step_s"] = loop
    peaks = [float(r["peak_memory_reserved"]) for r in rows if r.get("peak_memory_reserved")]
    if peaks:
        measured["peak_memory_gb"] = max(peaks)
    rates = [
        float(r["tokens_per_second_per_gpu"]) for r in rows if r.get("tokens_per_second_per_gpu")
    ]
    if rates:
        measured["tokens_per_s"] = statistics.median(rates)
    return measured


TQDM = re.compile(r"(\d+)/(\d+) \[(?:(\d+):)?(\d+):(\d+)<[^,\]]*,\s*([\d.]+)(s/it|it/s)")
"""A progress line of torchtune's training loop: steps done of the epoch's, the time since the
epoch's first step, and tqdm's smoothed rate."""


def _training_loop(log: Path) -> float | None:
    """Seconds an optimizer step takes, from the progress bars of the training loop in the job's
    log: the time each epoch's bar took to reach its last step (set-up before the first step
    and the checkpoint after the last are not in it), over the steps; tqdm's own rate where
    the bars' whole seconds are too coarse. None where the log has no bar."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    bars: list[tuple[int, float, float]] = []  # per epoch: steps, seconds, seconds a step
    for line in re.split(r"[\r\n]", text):
        found = TQDM.search(line)
        if not found:
            continue
        done = int(found.group(1))
        seconds = int(found.group(3) or 0) * 3600 + int(found.group(4)) * 60 + int(found.group(5))
        rate = float(found.group(6))
        per_step = rate if found.group(7) == "s/it" else 1 / rate if rate else 0.0
        if not bars or done < bars[-1][0]:
            bars.append((done, seconds, per_step))  # a new epoch's bar
        elif done > bars[-1][0]:
            bars[-1] = (done, seconds, per_step)  # later updates of the last step: a save
    steps = sum(bar[0] for bar in bars)
    if not steps:
        return None
    seconds = sum(bar[1] for bar in bars)
    if seconds >= 10 * len(bars):
        return seconds / steps
    return bars[-1][2] or None


def calibration(experiment: Experiment, unit: Unit, directory: Path) -> Unit:
    """The unit trained for :data:`CALIBRATION_STEPS` optimizer steps of one epoch, at its
    real micro-batch and sequence length, writing under ``directory``."""
    from cruijff_torchtune import units

    run = experiment.run(unit.run)
    short = attrs.evolve(
        run,
        directory=directory,
        parameters={**run.parameters, "epochs": 1, "max_steps_per_epoch": CALIBRATION_STEPS},
    )
    return units.training_unit(experiment, short)
