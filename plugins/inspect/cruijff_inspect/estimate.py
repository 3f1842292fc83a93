"""What an evaluation cell will take, estimated at plan time (``cruijff_estimate``), and what a
finished one did (``cruijff_measure``). Nothing here imports torch, transformers or inspect_ai:
the model is read from its folder's ``config.json`` (or its ``*.safetensors`` headers), the
data from its file (or the splits its generation job declares), the task from its source.

Samples
    The rows of the split the cell evaluates (:mod:`cruijff_inspect.data` chooses file and
    split; a generated file's rows are the ones its ``dataset`` artifact declares), at most the
    ``limit``; None when they cannot be known (a registered task, a file that is not there).

max_tokens (:func:`max_tokens`)
    What caps each answer, as inspect resolves it: a literal ``max_tokens`` a ``generate()``
    call of the task gives (a solver's own config wins over the evaluation's), else
    ``evaluation.max_tokens`` (it reaches the evaluation's config, and a task that declares
    ``max_tokens`` as its argument), else the task's default for that argument, else a literal
    in another call (``Task(config=GenerateConfig(max_tokens=...))``, which the evaluation's
    would override). Calls in the module's own functions that the task calls count too.
    Without any, inspect's hf provider generates up to 2048 tokens (:data:`PROVIDER_DEFAULT`).

Parameters (:func:`parameter_count`)
    A Llama-shaped decoder from ``config.json`` (L layers, h hidden, I intermediate, n heads,
    k key/value heads, d = ``head_dim`` or h/n, V vocabulary): per layer q ``h·n·d``, k and v
    ``h·k·d`` each, o ``n·d·h``, a gated MLP ``3·h·I``, two norms ``2h`` (and Qwen2's q, k, v
    biases); then the embedding ``V·h``, the output layer ``V·h`` unless
    ``tie_word_embeddings``, the final norm ``h``. Where the config lacks a figure, the values
    the ``*.safetensors`` headers declare. A fine-tuned checkpoint that does not exist yet is
    its base model's size. The dtype the job loads it in is ``evaluation.model_args``'
    ``dtype`` (or ``torch_dtype``), else the checkpoint's (transformers 5 loads ``dtype="auto"``:
    the config's ``dtype`` / ``torch_dtype``, else the weights'), else torch's float32.

Memory (GiB per GPU, or of the host on the CPU)
    weights ``N·p`` (p the dtype's bytes; spread over the job's GPUs with ``device="auto"``);
    the KV cache ``2·L·k·d·p`` a token for the batch (B = the batch size, at most the samples)
    × (the longest prompt, to which the batch is left-padded, + max_tokens: one wandering
    sample holds its batch to the cap); the working set of the forward pass, the batch's fp32
    logits of the last position ``4·V`` and one layer's prefill ``(4h + 2I)·p`` a prompt
    token; (0, 10, 20)% of that for the allocator (:data:`FRAGMENTATION`); the runtime
    (:data:`OVERHEAD_GIB`: CUDA context and kernels; on the CPU, torch, transformers and
    inspect_ai imported: 0.3 GiB resident, measured). low takes the mean prompt and a quarter
    of the cap, expected the longest prompt and the cap, high the longest prompt at the most
    tokens a character (:data:`CHARS_PER_TOKEN`) and the cap. Without a cap, the provider's
    2048.

Hours
    start-up (:data:`STARTUP_S`: the interpreter, inspect_ai and transformers imported, the
    task and the provider set up; the demo measures 10-20 s on a 2-core CPU) + the weights
    read at :data:`LOAD_GB_PER_S` (an adapter cell also merges a copy: reads and writes them
    once more) + per sample ``2·N`` FLOPs a token for the prompt and the generated tokens
    (:data:`GENERATED`: a quarter, three quarters, all of max_tokens; the high bound assumes
    every sample generates max_tokens) at ``utilisation`` × the GPU's peak in the dtype
    (:data:`GPU_UTILISATION`), or :data:`CPU_GFLOPS` a core × the job's cores, + a latency
    floor for each decoding step of a batch, ``L`` × :data:`LAYER_STEP_S` (transformers'
    ``generate`` runs each layer's kernels one by one: small models are bound by it, not by
    FLOPs). On the CPU a 135M Llama (SmolLM2-135M's shape) generated at 8 GFLOP/s a core
    with a batch of 1 and 30 at 8, 85 ms a decoding step (2.8 ms a layer; torch 2.13, one
    thread of a shared 2-core machine). None without samples or a cap.

    Checked against the demo's base cell (SmolLM2-135M-Instruct in fp32, 20 samples, max_tokens
    8, 2 cores): estimated 16 s (9 to 37) and 1.09 GiB (0.82 to 1.49); the job took 16.0 s
    (3.0 s of them the evaluation itself) and peaked at 1.11 GiB resident.

    Measured instead (``source`` measured) where the index holds earlier cells of the same
    ``key`` (model, dtype, hardware, max_tokens, batch) with their samples and time: the
    samples × their seconds a sample (median, over the range of runs) + their start-up (the
    job's wall time beyond the evaluation's own, where both are known), with how far off
    past predictions were in ``facts``.

Disk
    ``logs``: the ``.eval`` log, :data:`LOG_KB_PER_SAMPLE` a sample (compressed messages,
    events and scores) and :data:`LOG_BASE_KB`.
"""

from __future__ import annotations

import functools
import json
import math
import os
import statistics
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from cruijff import stamps
from cruijff.estimates import Estimate, Range
from cruijff.hardware import Hardware
from cruijff.measurements import Index, Measurement, past_error
from cruijff.records import EvalTask, Experiment, JobSpec, JobStatus, Run, Unit
from cruijff_inspect import introspect
from cruijff_inspect.data import EvalData, eval_data, task_function
from cruijff_inspect.results import SUCCESS, read_results
from cruijff_inspect.settings import (
    CHAT,
    DEFAULT_PROVIDER,
    batch_size,
    chosen,
    evaluation_setting,
    run_setting,
)

TOOL = "inspect"
GIB = 2**30
PROVIDER_DEFAULT = 2048
"""The tokens inspect's hf provider generates when nothing sets ``max_tokens``
(``inspect_ai._util.constants.DEFAULT_MAX_TOKENS``)."""

DTYPE_BYTES = {"float32": 4, "float": 4, "float64": 8, "bfloat16": 2, "float16": 2, "half": 2}
SAFETENSORS_DTYPES = {"F32": "float32", "F64": "float64", "BF16": "bfloat16", "F16": "float16"}

CHARS_PER_TOKEN = (5.0, 4.0, 3.0)
"""Characters a token for (low, expected, high) prompt tokens: English text in a BPE
vocabulary is about four (a judgment)."""
CHAT_TOKENS = (5, 15, 40)
"""Tokens a chat template adds around a prompt (role markers, a default system prompt)."""
INPUT_TOKENS = (8, 32, 128)
"""A row's input where the data cannot be read yet (a file a generation job writes)."""
GENERATED = (0.25, 0.75, 1.0)
"""The share of max_tokens each sample generates (low, expected, high): a batch decodes until
its last answer ends, and one untrained or wandering sample holds it to the cap."""

FRAGMENTATION = (0.0, 0.1, 0.2)
OVERHEAD_GIB = {"cuda": (0.5, 1.0, 1.5), "cpu": (0.3, 0.5, 0.8)}
STARTUP_S = {"cpu": (8.0, 12.0, 18.0), "cuda": (12.0, 20.0, 40.0)}
"""Seconds before the first sample, without reading the weights (CUDA adds its context)."""
LOAD_GB_PER_S = (2.0, 0.5, 0.2)
"""How fast the weights are read, for the low, expected and high start-up (a judgment:
a local SSD, a busy shared file system)."""
GPU_UTILISATION = (0.3, 0.1, 0.03)
"""The share of the GPU's peak the FLOPs run at, for the low, expected and high hours:
decoding reads every weight for each token of a batch, so it is bound by memory bandwidth
(a batch of 32 in bf16 reaches at most 32 FLOPs a byte, about a tenth of an H100's or a fifth
of an A100's ratio of peak FLOP/s to bandwidth); a judgment, not a measurement."""
CPU_GFLOPS = (60.0, 25.0, 10.0)
"""GFLOP/s a core on the CPU, for the low, expected and high hours (8 to 30 measured, module
docstring; a machine with AVX-512 or AMX does better)."""
LAYER_STEP_S = {"cpu": (0.8e-3, 1.5e-3, 3.0e-3), "cuda": (0.1e-3, 0.25e-3, 0.5e-3)}
"""Seconds a decoder layer takes per decoding step whatever the batch (kernel launches and
Python in transformers' ``generate``): 2.8 ms measured on one CPU thread; on a GPU a
judgment."""
LOG_KB_PER_SAMPLE = (1.0, 2.5, 16.0)
LOG_BASE_KB = 10.0
"""The ``.eval`` log's size: the demo's base cell (20 samples of a few tokens) wrote 44 KB."""


# --- max_tokens ------------------------------------------------------------------------------


@attrs.frozen
class Cap:
    """What caps a cell's answers: ``value`` tokens (None where something sets a cap this
    reading cannot evaluate), set at ``source``; ``capped`` False when nothing sets one
    (inspect's default applies), ``known`` False when the task cannot be read (a registered
    task: its own business)."""

    value: int | None
    source: str
    capped: bool = True
    known: bool = True


def _reached(functions: Mapping[str, introspect.Function], start: str) -> list[introspect.Function]:
    """``start`` and the module's functions it calls, transitively, in that order."""
    order, queue, seen = [], [start], set()
    while queue:
        name = queue.pop(0)
        if name in seen or name not in functions:
            continue
        seen.add(name)
        order.append(functions[name])
        queue += functions[name].calls
    return order


def max_tokens(experiment: Experiment, task: EvalTask) -> Cap:
    """The ``max_tokens`` of ``task``'s cells and where it comes from (module docstring);
    once per design."""
    return stamps.once(
        ("inspect.max_tokens", id(experiment), id(task)),
        lambda: _max_tokens(experiment, task),
        experiment,
        task,
    )


def _max_tokens(experiment: Experiment, task: EvalTask) -> Cap:
    setting = evaluation_setting(experiment, "max_tokens")
    if task.script is None:
        if setting is not None:
            return Cap(setting, "evaluation.max_tokens")
        return Cap(None, "the registered task's own (not read)", capped=False, known=False)
    function = task_function(task)
    try:
        every = {f.name: f for f in introspect.functions(task.script)}
    except introspect.SourceError:
        every = {}
    if function is None:
        if setting is not None:
            return Cap(setting, "evaluation.max_tokens")
        unread = f"unknown (no readable @task function in {task.script.name})"
        return Cap(None, unread, capped=False, known=False)
    name = task.script.name
    reached = _reached(every, function.name)
    given = [(f, g) for f in reached for g in f.max_tokens]
    for _, found in given:  # a solver's generate(max_tokens=N) wins over everything
        if found.call == "generate" and found.literal and _whole(found.value):
            return Cap(found.value, f"generate(max_tokens={found.value}) in {name}:{found.line}")
    if setting is not None:
        return Cap(setting, "evaluation.max_tokens")
    default = function.default("max_tokens")
    if function.declares("max_tokens") and _whole(default):
        return Cap(default, "the task's default")
    for owner, found in given:
        value = found.value
        if found.parameter is not None:
            value = owner.default(found.parameter)
            if owner is function or value is None:
                continue  # the task's own argument: its default (none) is read above
        elif not found.literal:
            return Cap(None, f"{found.call}(max_tokens=...) in {name}:{found.line}")
        if _whole(value):
            return Cap(value, f"{found.call}(max_tokens={value}) in {name}:{found.line}")
    return Cap(None, "", capped=False)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


# --- the model -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Model:
    """What an estimate needs of a model folder: its architecture, parameters (and where they
    were counted), the checkpoint's dtype, and the dimensions of its KV cache and forward
    pass where its ``config.json`` gives them; ``why`` says what could not be read."""

    architecture: str = "unknown"
    parameters: int | None = None
    counted_from: str = ""
    dtype: str | None = None
    layers: int | None = None
    hidden: int | None = None
    intermediate: int | None = None
    kv_dim: int | None = None
    vocab: int | None = None
    why: str = ""

    @property
    def fingerprint(self) -> str:
        """Its architecture and parameter count, as the measurements' key names it."""
        return f"{self.architecture}/{self.parameters if self.parameters else 'unknown'}"


def parameter_count(config: Mapping[str, Any]) -> int:
    """A Llama-shaped decoder's parameters from its ``config.json`` (module docstring);
    KeyError for a figure it lacks."""
    h, layers = int(config["hidden_size"]), int(config["num_hidden_layers"])
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or h // heads)
    vocab, intermediate = int(config["vocab_size"]), int(config["intermediate_size"])
    q, kv = heads * head_dim, kv_heads * head_dim
    layer = h * q + 2 * h * kv + q * h + 3 * h * intermediate + 2 * h
    if "Qwen2ForCausalLM" in (config.get("architectures") or ()) or config.get("attention_bias"):
        layer += q + 2 * kv
    tied = bool(config.get("tie_word_embeddings", False))
    return layers * layer + vocab * h * (1 if tied else 2) + h


def safetensors_values(folder: Path) -> tuple[int, str | None] | None:
    """The values the folder's ``*.safetensors`` files declare, from their headers alone, and
    the dtype of their first floating tensor; None without such files or when one is not
    readable."""
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix == ".safetensors")
    except OSError:
        return None
    if not files:
        return None
    total, dtype = 0, None
    for path in files:
        try:
            with open(path, "rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                header = json.loads(handle.read(length))
            for key, entry in header.items():
                if key == "__metadata__":
                    continue
                total += math.prod(entry["shape"])
                dtype = dtype or SAFETENSORS_DTYPES.get(entry["dtype"])
        except (OSError, struct.error, ValueError, KeyError, TypeError, AttributeError):
            return None
    return total, dtype


def read_model(folder: Path) -> Model:
    """The :class:`Model` of a folder (read once per version of the folder and its
    ``config.json``)."""
    text = os.fspath(folder)  # joined and stat-ed as text: a plan asks for every cell
    versions = []
    for path in (text, os.path.join(text, "config.json")):
        try:
            versions.append(stamps.stat(path).st_mtime_ns)
        except OSError:
            versions.append(0)
    return _read_model(text, *versions)


@functools.lru_cache(maxsize=64)
def _read_model(folder: str, *stamps: int) -> Model:
    path = Path(folder)
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        if not isinstance(config, dict):
            raise ValueError("not an object")
    except (OSError, ValueError) as error:
        config, why = {}, f"no readable config.json in {path} ({error})"
    else:
        why = ""
    names = config.get("architectures")
    architecture = (names[0] if isinstance(names, list) and names else None) or str(
        config.get("model_type") or "unknown"
    )
    dtype = config.get("dtype") or config.get("torch_dtype")
    dims: dict[str, Any] = {}
    try:
        heads = int(config["num_attention_heads"])
        hidden = int(config["hidden_size"])
        dims = {
            "layers": int(config["num_hidden_layers"]),
            "hidden": hidden,
            "intermediate": int(config["intermediate_size"]),
            "kv_dim": int(config.get("num_key_value_heads") or heads)
            * int(config.get("head_dim") or hidden // heads),
            "vocab": int(config["vocab_size"]),
        }
        parameters, counted = parameter_count(config), "config.json"
    except KeyError as error:
        parameters, counted = None, ""
        why = why or f"config.json lacks {error}"
    except (TypeError, ValueError, ZeroDivisionError) as error:
        parameters, counted = None, ""
        why = why or f"config.json's dimensions cannot be read ({error})"
    if parameters is None:
        held = safetensors_values(path)
        if held is not None:
            parameters, counted, dtype = held[0], "safetensors headers", dtype or held[1]
            why = ""
    return Model(
        architecture=architecture,
        parameters=parameters,
        counted_from=counted,
        dtype=str(dtype).removeprefix("torch.") if dtype else None,
        why=why if parameters is None else "",
        **dims,
    )


def model_folder(experiment: Experiment, unit: Unit) -> Path:
    """The folder whose config describes the cell's model: the one it evaluates, else (a
    checkpoint not trained yet) its run's base model."""
    folder = unit.params["model"]
    if os.path.isfile(os.path.join(folder, "config.json")):
        return Path(folder)
    try:
        return experiment.model(experiment.run(unit.run).model).path
    except KeyError:  # the core reports an unknown model
        return Path(folder)


def loaded_dtype(experiment: Experiment, model: Model) -> tuple[str, str]:
    """The dtype the job loads the model in, and where that comes from."""
    args = evaluation_setting(experiment, "model_args", {}) or {}
    for key in ("dtype", "torch_dtype"):
        value = args.get(key)
        if isinstance(value, str) and value != "auto":
            return value.removeprefix("torch."), f"evaluation.model_args.{key}"
    if model.dtype:
        return model.dtype, "the checkpoint's (dtype auto)"
    return "float32", "torch's default (the checkpoint names none)"


# --- the data --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _input_lengths(path: str, mtime_ns: int, size: int) -> Mapping[str, tuple[int, ...]] | None:
    """Characters of each row's input, by split (``""``: a bare list, every split)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        if path.endswith(".jsonl"):
            data: Any = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            data = json.loads(text)
    except (OSError, ValueError):
        return None

    def lengths(rows: list) -> tuple[int, ...]:
        return tuple(
            len(row["input"])
            if isinstance(row, dict) and isinstance(row.get("input"), str)
            else len(json.dumps(row))
            for row in rows
        )

    if isinstance(data, list):
        return {"": lengths(data)}
    if isinstance(data, dict):
        return {k: lengths(v) for k, v in data.items() if isinstance(v, list)}
    return None


def split_inputs(path: Path, split: str | None) -> tuple[int, ...] | None:
    """The input lengths of the rows of ``split`` in the file at ``path`` (a bare list: all of
    it); None when the file cannot be read, lacks the split, or the task reads no split of an
    object of splits."""
    try:
        stat = stamps.stat(path)
        found = _input_lengths(str(path), stat.st_mtime_ns, stat.st_size)
    except OSError:
        return None
    if found is None:
        return None
    if "" in found and len(found) == 1:
        return found[""]
    return found.get(split) if split is not None else None


@attrs.frozen(kw_only=True)
class Inputs:
    """A cell's samples, where their count comes from, and the characters of its rows'
    inputs (None: unknown)."""

    samples: int | None
    source: str
    lengths: tuple[int, ...] | None = None


def cell_inputs(experiment: Experiment, unit: Unit, run: Run, task: EvalTask) -> Inputs:
    """The samples a cell evaluates: its split's rows, at most the ``limit``."""
    data: EvalData = eval_data(experiment, run, task)
    artifact = getattr(unit.payload, "data_artifact", None)
    lengths, count, source = None, None, ""
    if data.path is not None:
        if artifact is not None:
            count = artifact.splits.get(data.split) if data.split is not None else None
            source = f"the {data.split} split the generation job declares"
        else:
            lengths = split_inputs(data.path, data.split)
            count = len(lengths) if lengths is not None else None
            source = f"{data.path.name}" + (f"[{data.split!r}]" if data.split else "")
    limit = task.settings.get("limit") or evaluation_setting(experiment, "limit")
    if limit is not None and count is not None and limit < count:
        return Inputs(samples=int(limit), source="limit", lengths=(lengths or ())[:limit] or None)
    return Inputs(samples=count, source=source if count is not None else "", lengths=lengths)


def prompt_tokens(
    experiment: Experiment, run: Run, task: EvalTask, lengths: tuple[int, ...] | None
) -> tuple[Range, Range]:
    """A sample's prompt tokens, the mean and the longest, each (low, expected, high)."""
    found = chosen(experiment, run, task, "prompt")
    template = str(found[0]) if found else "{input}"
    dataset_type = run_setting(experiment, run, "dataset_type")
    chat = dataset_type is not None and dataset_type[0] == CHAT
    system = chosen(experiment, run, task, "system_prompt") if chat else None
    fixed = len(template.replace("{input}", "")) + (len(str(system[0])) if system else 0)
    extra = CHAT_TOKENS if chat else (0, 0, 0)
    if lengths:
        mean, longest = statistics.fmean(lengths), max(lengths)
        inputs = [(mean / c, longest / c) for c in CHARS_PER_TOKEN]
    else:
        inputs = [(float(t), float(t)) for t in INPUT_TOKENS]
    bounds = [
        (fixed / chars + m + x, fixed / chars + top + x)
        for chars, (m, top), x in zip(CHARS_PER_TOKEN, inputs, extra, strict=True)
    ]
    return Range(*(b[0] for b in bounds)), Range(*(b[1] for b in bounds))


# --- the formula -----------------------------------------------------------------------------


def memory_gib(
    model: Model,
    *,
    bytes_per_value: int,
    batch: int,
    prompt_mean: Range,
    prompt_longest: Range,
    tokens: int,
    device: str,
    gpus: int = 1,
) -> tuple[Range, dict[str, Any]] | None:
    """Peak memory of the cell (module docstring), and its terms; None without parameters."""
    if model.parameters is None:
        return None
    p, spread = bytes_per_value, max(1, gpus)
    weights = model.parameters * p / spread / GIB
    kv_tokens = (
        prompt_mean.low + GENERATED[0] * tokens,
        prompt_longest.expected + tokens,
        prompt_longest.high + tokens,
    )
    if model.layers is not None and model.kv_dim is not None:
        per_token = 2 * model.layers * model.kv_dim * p
        kv = Range(*(per_token * batch * t / spread / GIB for t in kv_tokens))
    else:
        kv = None
    if model.vocab is not None and model.hidden is not None and model.intermediate is not None:
        layer = (4 * model.hidden + 2 * model.intermediate) * p
        work = Range(*(batch * (4 * model.vocab + layer * t) / GIB for t in prompt_longest))
    else:
        work = None
    zero = (0.0, 0.0, 0.0)
    held = [weights + k + w for k, w in zip(kv or zero, work or zero, strict=True)]
    overhead = OVERHEAD_GIB[device]
    total = Range(*(held[i] * (1 + FRAGMENTATION[i]) + overhead[i] for i in range(3)))
    terms = {
        "weights_gib": weights,
        "kv_cache_gib": kv,
        "working_set_gib": work,
        "kv_tokens_per_sequence": [round(t, 1) for t in kv_tokens],
        "fragmentation": list(FRAGMENTATION),
        "overhead_gib": list(overhead),
    }
    if kv is None:
        terms["kv_cache_gib"] = f"unknown ({model.why or 'config.json gives no dimensions'})"
    return total, terms


def startup_s(model: Model, bytes_per_value: int, device: str, adapter: bool) -> Range:
    """Seconds before the first sample: set-up plus reading the weights (twice more to merge
    an adapter into a copy)."""
    gigabytes = (model.parameters or 0) * bytes_per_value / 1e9 * (3 if adapter else 1)
    pairs = zip(STARTUP_S[device], LOAD_GB_PER_S, strict=True)
    return Range(*(seconds + gigabytes / rate for seconds, rate in pairs))


def compute_s(
    model: Model,
    *,
    samples: int,
    batch: int,
    prompt_mean: Range,
    prompt_longest: Range,
    tokens: int,
    device: str,
    flops_per_s: tuple[float, float, float],
) -> tuple[Range, dict[str, Any]]:
    """Seconds of generation for ``samples`` (module docstring): FLOPs at ``flops_per_s``
    (the rates of the low, expected and high hours: fastest first) plus each batch's decoding
    steps' latency floor."""
    assert model.parameters is not None
    generated = [share * tokens for share in GENERATED]
    per_sample = (
        prompt_mean.low + generated[0],
        prompt_mean.expected + generated[1],
        prompt_longest.high + generated[2],
    )
    flops = [2 * model.parameters * samples * t for t in per_sample]
    seconds = [f / rate for f, rate in zip(flops, flops_per_s, strict=True)]
    batches = math.ceil(samples / batch)
    if model.layers is not None:
        floor = [
            batches * g * model.layers * step
            for g, step in zip(generated, LAYER_STEP_S[device], strict=True)
        ]
    else:
        floor = [0.0, 0.0, 0.0]
    facts = {
        "tokens_per_sample": [round(t, 1) for t in per_sample],
        "flops": flops[1],
        "batches": batches,
        "latency_floor_s": floor if model.layers is not None else "unknown (no num_hidden_layers)",
    }
    return Range(*(s + f for s, f in zip(seconds, floor, strict=True))), facts


def _three(values: Iterable[float]) -> tuple[float, float, float]:
    low, expected, high = values
    return low, expected, high


# --- measurements ----------------------------------------------------------------------------


def _usable(entries: tuple[Measurement, ...]) -> list[Measurement]:
    found = []
    for entry in entries:
        samples = entry.measured.get("samples")
        spent = entry.measured.get("eval_s") or entry.measured.get("wall_s")
        if isinstance(samples, int | float) and samples > 0 and isinstance(spent, int | float):
            found.append(entry)
    return found


def measured_hours(
    entries: list[Measurement], samples: int, fallback_startup: Range
) -> tuple[Range, dict[str, Any]]:
    """Hours from earlier cells of the same key: ``samples`` × their seconds a sample plus
    their start-up (the job's wall time beyond the evaluation's own, where the scheduler's
    wall time was recorded beside it; else ``fallback_startup``)."""
    per_sample, startups = [], []
    for entry in entries:
        measured = entry.measured
        own = measured.get("eval_s")
        wall = measured.get("wall_s")
        spent = own if isinstance(own, int | float) else wall
        per_sample.append(float(spent) / float(measured["samples"]))
        if isinstance(own, int | float) and isinstance(wall, int | float) and wall > own:
            startups.append(float(wall) - float(own))
    per_sample.sort()
    rate = Range(per_sample[0], statistics.median(per_sample), per_sample[-1])
    startup = (
        Range(min(startups), statistics.median(startups), max(startups))
        if startups
        else fallback_startup
    )
    hours = Range(*(s + samples * r for s, r in zip(startup, rate, strict=True))) * (1 / 3600)
    facts = {
        "measured_runs": len(entries),
        "seconds_per_sample": rate,
        "startup_s": startup,
        "startup_from": "measured" if startups else "formula",
    }
    return hours, facts


# --- the estimate ----------------------------------------------------------------------------


def _task(experiment: Experiment, unit: Unit) -> EvalTask:
    assert experiment.evaluation is not None
    return {t.name: t for t in experiment.evaluation.tasks}[unit.params["task"]]


def estimate(
    experiment: Experiment, unit: Unit, job: JobSpec, hardware: Hardware, measurements: Index
) -> Estimate:
    """``cruijff_estimate`` for an evaluation cell (module docstring)."""
    run, task = experiment.run(unit.run), _task(experiment, unit)
    inputs = cell_inputs(experiment, unit, run, task)
    cap = max_tokens(experiment, task)
    batch_setting, _ = batch_size(experiment)
    batch = max(1, min(int(batch_setting), inputs.samples or int(batch_setting)))
    provider = evaluation_setting(experiment, "provider", DEFAULT_PROVIDER)
    gpus = job.resources.gpus
    # a job with GPUs runs on them, whether or not the scheduler knows their type
    device = "cuda" if gpus > 0 else "cpu"
    cpus = min(job.resources.cpus or hardware.cpus or 1, hardware.cpus or job.resources.cpus or 1)
    facts: dict[str, Any] = {
        "samples": inputs.samples,
        "samples_from": inputs.source or "unknown",
        "max_tokens": cap.value,
        "max_tokens_from": cap.source or f"none: inspect's default ({PROVIDER_DEFAULT} with hf)",
        "batch": batch,
        "provider": provider,
        "device": device,
    }
    logs = Range(
        *((LOG_BASE_KB + (inputs.samples or 0) * kb) * 1e3 / 1e9 for kb in LOG_KB_PER_SAMPLE)
    )
    disk = {"logs": logs}
    if provider != DEFAULT_PROVIDER:  # no model of ours: nothing to size
        facts["note"] = f"the {provider} provider: no model is loaded"
        key = {"tool": TOOL, "provider": provider, "max_tokens": cap.value}
        return Estimate(samples=inputs.samples, disk_gb=disk, facts=facts, key=key)

    model = read_model(model_folder(experiment, unit))
    dtype, dtype_from = loaded_dtype(experiment, model)
    mean, longest = prompt_tokens(experiment, run, task, inputs.lengths)
    cell = _Cell(
        samples=inputs.samples,
        samples_from=inputs.source,
        cap=cap,
        batch=batch,
        provider=provider,
        device=device,
        gpus=gpus,
        cpus=cpus,
        model=model,
        dtype=dtype,
        dtype_from=dtype_from,
        mean=mean,
        longest=longest,
        adapter=bool(unit.params.get("adapter")),
    )
    key = {
        "tool": TOOL,
        "model": model.fingerprint,
        "dtype": dtype,
        "device": device,
        "hardware": (hardware.name if hardware.gpu else "unknown-gpu")
        if device == "cuda"
        else "cpu",
        "gpus": gpus,
        "max_tokens": cap.value,
        "batch": batch,
    }
    usable = _usable(measurements.find(key))
    # the cells of a sweep are alike: each distinct one is sized once, on the same hardware
    # and from the same measurements (held beside it, so that their ids stay theirs)
    memo = (cell, hardware, *map(id, usable))
    known = _SIZED.get(memo)
    if known is None:
        if len(_SIZED) >= 4096:
            _SIZED.clear()
        known = _SIZED[memo] = (usable, _sized(cell, facts, disk, hardware, key, usable))
    return known[1]


@attrs.frozen(kw_only=True)
class _Cell:
    """What sizing a cell depends on, gathered from the experiment and the unit."""

    samples: int | None
    samples_from: str
    cap: Cap
    batch: int
    provider: str
    device: str
    gpus: int
    cpus: int
    model: Model
    dtype: str
    dtype_from: str
    mean: Range
    longest: Range
    adapter: bool


_SIZED: dict[tuple, tuple[list[Measurement], Estimate]] = {}


def _sized(
    cell: _Cell,
    facts: dict[str, Any],
    disk: dict[str, Range],
    hardware: Hardware,
    key: dict[str, Any],
    usable: list[Measurement],
) -> Estimate:
    """The estimate of a cell of the default provider, from what it depends on and the
    measurements of cells like it."""
    model, device, gpus, cap, batch = cell.model, cell.device, cell.gpus, cell.cap, cell.batch
    mean, longest = cell.mean, cell.longest
    p = DTYPE_BYTES.get(cell.dtype, 2)
    tokens = cap.value if cap.value is not None else PROVIDER_DEFAULT
    facts.update(
        architecture=model.architecture,
        parameters=model.parameters,
        parameters_from=model.counted_from or f"unknown ({model.why})",
        dtype=cell.dtype,
        dtype_from=cell.dtype_from,
        prompt_tokens_mean=mean,
        prompt_tokens_longest=longest,
    )
    memory = memory_gib(
        model,
        bytes_per_value=p,
        batch=batch,
        prompt_mean=mean,
        prompt_longest=longest,
        tokens=tokens,
        device=device,
        gpus=gpus if device == "cuda" else 1,
    )
    if memory is not None:
        facts["memory"] = memory[1]
    startup = startup_s(model, p, device, adapter=cell.adapter)
    hours, source = None, "formula"
    if usable and cell.samples is not None:
        hours, found = measured_hours(usable, cell.samples, startup)
        source = "measured"
        facts.update(found)
        facts["past_error"] = {
            "hours": past_error(tuple(usable), "hours", "hours"),
            "memory_gb": past_error(tuple(usable), "memory_gb", "memory_gb"),
        }
    elif device == "cuda" and hardware.gpu is None:
        facts["note"] = "the GPU's type is unknown (a profile's gpu: names it): no time"
    elif model.parameters is not None and cell.samples is not None and cap.value is not None:
        if device == "cuda":
            assert hardware.gpu is not None
            peak = hardware.gpu.tflops("fp32" if p >= 4 else "bf16") * 1e12
            rates = _three(peak * u for u in GPU_UTILISATION)
            facts.update(peak_tflops=peak / 1e12, utilisation=list(GPU_UTILISATION))
        else:
            rates = _three(cell.cpus * g * 1e9 for g in CPU_GFLOPS)
            facts.update(cpus=cell.cpus, gflops_per_core=list(CPU_GFLOPS))
        generation, found = compute_s(
            model,
            samples=cell.samples,
            batch=batch,
            prompt_mean=mean,
            prompt_longest=longest,
            tokens=cap.value,
            device=device,
            flops_per_s=rates,
        )
        facts.update(found, startup_s=startup)
        hours = (startup + generation) * (1 / 3600)
    return Estimate(
        memory_gb=memory[0] if memory is not None else None,
        hours=hours,
        disk_gb=disk,
        samples=cell.samples,
        source=source,
        facts=facts,
        key=key,
    )


# --- measure ---------------------------------------------------------------------------------


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def measure(unit: Unit, status: JobStatus) -> dict[str, Any] | None:
    """``cruijff_measure``: the samples a finished cell evaluated (``samples``), the
    evaluation's own duration (``eval_s``: its log's start to its end), the job's (``wall_s``:
    the scheduler's where it knows it, else the evaluation's; for a job that evaluated its
    model's other cells too, without their time, which is theirs) and that in ``hours`` (what
    the estimate predicts), from the ``results.json`` the job wrote from its ``.eval`` log (the
    log itself needs inspect_ai to read); None without a successful one."""
    results = read_results(unit.directory)
    if results is None or results.get("status") != SUCCESS:
        return None
    found: dict[str, Any] = {}
    samples = results.get("samples")
    if isinstance(samples, int) and not isinstance(samples, bool):
        found["samples"] = samples
    duration = results.get("duration_s")
    if _number(duration):
        found["eval_s"] = float(duration)
    wall = status.wall_s if _number(status.wall_s) else found.get("eval_s")
    if _number(results.get("job_s")) and results.get("evaluated_by"):
        wall = results["job_s"]  # what it took in the job that evaluated its model's cells
    elif _number(status.wall_s) and _number(results.get("together_s")):
        wall = max(0.0, status.wall_s - results["together_s"])  # the others' time is theirs
    if wall is not None:
        found.update(wall_s=float(wall), hours=wall / 3600)
    return found or None
