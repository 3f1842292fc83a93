"""Estimates as the core combines them (totals), the GPU table, the index of measurements,
and the torchtune tool's fit review: a run that cannot fit says what would."""

from __future__ import annotations

import json
import os
import re

import pytest
from test_torchtune_config import model_folder
from test_torchtune_estimate import LLAMA_3_2_1B

from cruijff.design import design
from cruijff.estimates import Estimate, Range, totals
from cruijff.hardware import GPUS, Hardware, gpu_from
from cruijff.measurements import Index, Measurement, data_dir, past_error
from cruijff_torchtune import plugin as torchtune_plugin

# --- the core's arithmetic ------------------------------------------------------------------


def test_totals_add_gpu_hours_job_hours_disk_and_samples_and_count_the_unknown():
    jobs = [
        (1, Estimate(hours=Range(1, 2, 3), disk_gb={"checkpoints": Range(1, 2, 4)}, samples=10)),
        (2, Estimate(hours=Range(0.5, 1, 2), disk_gb={"adapters": Range.of(0.5)})),
        (0, Estimate(hours=Range(0.1, 0.2, 0.3), samples=5)),
        (1, Estimate(memory_gb=Range(1, 2, 3))),  # no time
        (1, None),  # no estimate at all
    ]
    found = totals(jobs, runs=3)
    # GPU-hours: 1 × (1, 2, 3) + 2 × (0.5, 1, 2); the CPU job counts in job-hours only
    assert found["gpu_hours"] == [2.0, 4.0, 7.0]
    assert found["job_hours"] == [1.6, 3.2, 5.3]
    assert found["eval_samples"] == 15
    assert found["disk_gb"]["total"] == [1.5, 2.5, 4.5]
    assert found["disk_gb"]["logs"] == [0.0, 0.0, 0.0]
    assert found["unknown"] == {"hours": 2, "memory": 4}
    assert (found["runs"], found["jobs"]) == (3, 5)


def test_a_range_is_ordered():
    with pytest.raises(ValueError, match="ordered"):
        Range(2, 1, 3)
    assert 1.5 in Range(1, 2, 3) and 4 not in Range(1, 2, 3)


def test_gpu_types_and_figures():
    a100 = gpu_from("a100-80gb")
    assert (a100.memory_gb, a100.tflops("bf16"), a100.tflops("fp32")) == (80, 312, 19.5)
    assert gpu_from({"type": "h100-80gb", "memory_gb": 94}).memory_gb == 94
    custom = gpu_from({"memory_gb": 24, "tflops_bf16": 100})
    assert (custom.name, custom.tflops("fp32")) == ("24gb", 100 / 16)
    with pytest.raises(ValueError, match="not in cruijff's table") as error:
        gpu_from("b300")
    assert all(name in str(error.value) for name in GPUS)
    with pytest.raises(ValueError, match="memory_gb must be a positive number"):
        gpu_from({"memory_gb": -1, "tflops_bf16": 100})
    with pytest.raises(ValueError, match="no key speed"):
        gpu_from({"type": "l4", "speed": 3})
    assert Hardware(gpu=custom).device == "cuda" and Hardware().name == "cpu"


# --- the index of measurements ----------------------------------------------------------


def measurement(key, memory=2.0, predicted=(1.0, 1.5, 2.5), source="run", unit="a.train"):
    return Measurement(
        key=key,
        tool="t",
        source=source,
        measured={"memory_gb": memory, "step_s": 1.0},
        predicted={"memory_gb": list(predicted)},
        unit=unit,
    )


def test_the_index_keeps_measurements_by_key_newest_first(tmp_path):
    index = Index(tmp_path)
    key, other = {"model": "m", "seq_len": 64}, {"model": "m", "seq_len": 128}
    first = index.record(measurement(key, memory=1.0))
    index.record(measurement(key, memory=3.0, source="calibration", unit="a/b train"))
    index.record(measurement(other, memory=9.0))
    assert first.is_relative_to(tmp_path / "measurements" / "v1")
    fresh = Index(tmp_path)  # another process reads the same files
    found = fresh.find({"seq_len": 64, "model": "m"})  # key order does not matter
    assert sorted(m.measured["memory_gb"] for m in found) == [1.0, 3.0]
    assert [m.source for m in fresh.find(key, source="calibration")] == ["calibration"]
    assert [m.measured["memory_gb"] for m in fresh.find(other)] == [9.0]
    assert fresh.find({"model": "n"}) == ()
    # a half-copied or foreign file is skipped, not fatal
    (first.parent / "zzz-broken.json").write_text("{not json")
    assert len(Index(tmp_path).find(key)) == 2
    # keys equal to a dict but not to the index (1, 1.0 and True), asked of one index
    index.record(measurement({"model": "m", "seq_len": 1}, memory=5.0))
    assert [m.measured["memory_gb"] for m in fresh.find({"model": "m", "seq_len": 1})] == [5.0]
    assert fresh.find({"model": "m", "seq_len": 1.0}) == ()
    assert fresh.find({"model": "m", "seq_len": True}) == ()
    assert fresh.find({"model": "m", "seq_len": [64]}) == ()
    index.record(measurement({"model": "m", "seq_len": 0.0}, memory=7.0))
    assert fresh.find({"model": "m", "seq_len": -0.0}) == ()  # asked first: -0.0 is not 0.0
    assert [m.measured["memory_gb"] for m in fresh.find({"model": "m", "seq_len": 0.0})] == [7.0]


def test_past_error_is_measured_over_predicted():
    runs = (
        measurement({}, memory=3.0, predicted=(1.0, 2.0, 2.5)),  # 1.5×, above the high bound
        measurement({}, memory=2.0, predicted=(1.0, 2.0, 2.5)),  # 1.0×, inside
        measurement({}, memory=1.0, predicted=(0.5, 2.0, 2.5)),  # 0.5×, inside
    )
    found = past_error(runs, "memory_gb", "memory_gb")
    assert found == {
        "runs": 3,
        "ratio_median": 1.0,
        "ratio_range": [0.5, 1.5],
        "within_bounds": 2,
    }
    assert past_error(runs, "hours", "hours") is None


def test_the_data_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("CRUIJFF_DATA_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "mine"
    monkeypatch.delenv("CRUIJFF_DATA_DIR")
    assert data_dir() == tmp_path / "xdg" / "cruijff"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert data_dir() == __import__("pathlib").Path.home() / ".local" / "share" / "cruijff"


# --- torchtune: a run that cannot fit ---------------------------------------------------


@pytest.fixture
def on_gpu(gpu_scheduler_with):
    """Register a scheduler whose jobs get GPUs of the type asked for (it runs nothing)."""
    return lambda gpu: gpu_scheduler_with(Hardware(gpu=gpu_from(gpu)))


@pytest.fixture
def long_rows_experiment(make_experiment, tmp_path, plugin_manager, register_plugin):
    """A LoRA run of Llama-3.2-1B (config.json only) on rows of about 2,000 tokens."""
    register_plugin(torchtune_plugin, name="torchtune")
    row = {"input": "word " * 1600, "output": "WORD " * 400}  # 10,000 bytes: ~2,500 tokens
    data = tmp_path / "long.json"
    data.write_text(json.dumps({"train": [row] * 64}))

    def make(controls: dict) -> os.PathLike:
        base = {
            "tools": {"preparation": "torchtune", "evaluation": None},
            "evaluation": None,
            "variables": None,
            "runs": [{"name": "big", "model": "tiny", "parameters": {"lr": 1e-4}}],
            "scheduler": {"name": "gpus"},
            "data": {"training": {"path": str(data)}},
            "controls": {"dataset_type": "chat_completion", "num_warmup_steps": 0, **controls},
        }
        path = make_experiment(base)
        model_folder(tmp_path / "models", LLAMA_3_2_1B, "tiny")  # over the fake tools' model
        return path

    return make


def fit_warnings(plan):
    return [w for w in plan.warnings if "per device, more than" in w.message]


def test_a_run_that_cannot_fit_says_the_smallest_change_that_would(
    plugin_manager, on_gpu, long_rows_experiment
):
    on_gpu("l4")
    path = long_rows_experiment({"batch_size": 4})
    plan = design(plugin_manager, path)
    (warning,) = fit_warnings(plan)
    estimate = plan.estimates["big.train"]
    assert estimate.memory_gb.expected > 22.5
    assert warning.message.startswith("run 'big' needs about ")
    assert "more than the 22.5 GiB of the GPU (l4)" in warning.message
    assert warning.where.path == "runs[0]" and warning.where.line
    assert warning.hint.startswith("set enable_activation_checkpointing: true (about ")
    # the change it names does fit
    fixed = design(
        plugin_manager,
        long_rows_experiment({"batch_size": 4, "enable_activation_checkpointing": True}),
    )
    assert not fit_warnings(fixed)
    assert fixed.estimates["big.train"].memory_gb.expected <= 22.5


def test_when_checkpointing_is_on_already_a_smaller_micro_batch_is_next(
    plugin_manager, on_gpu, long_rows_experiment
):
    on_gpu("l4")
    controls = {"batch_size": 32, "enable_activation_checkpointing": True}
    plan = design(plugin_manager, long_rows_experiment(controls))
    (warning,) = fit_warnings(plan)
    assert "the same effective batch" in warning.hint
    found = re.search(r"batch_size: (\d+) with gradient_accumulation_steps: (\d+)", warning.hint)
    batch, accumulation = int(found.group(1)), int(found.group(2))
    assert batch * accumulation == 32  # the effective batch is kept
    smaller = {**controls, "batch_size": batch, "gradient_accumulation_steps": accumulation}
    assert not fit_warnings(design(plugin_manager, long_rows_experiment(smaller)))


def test_the_same_run_fits_a_bigger_gpu(plugin_manager, on_gpu, long_rows_experiment):
    on_gpu("a100-80gb")
    plan = design(plugin_manager, long_rows_experiment({"batch_size": 8, "epochs": 1}))
    assert not fit_warnings(plan)
    estimate = plan.estimates["big.train"]
    assert estimate.source == "formula" and estimate.hours is not None
    assert estimate.facts["parameters"] == 1_235_814_400
    assert estimate.facts["steps"] == 8  # 64 rows, batch 8, one epoch


def test_a_steps_time_is_read_from_the_training_loops_progress_bars(tmp_path):
    from cruijff_torchtune.sizing import _training_loop

    log = tmp_path / "train.log"
    # two epochs of 4 steps: 40 s and 44 s to the last step; after it, a checkpoint save
    # moves the clock on (never counted), and set-up printed before any bar
    bar = "1|{n}|Loss: 0.5: {p}%|##| {n}/4 [{t}<00:10,  9.50s/it]"
    lines = ["loading the model...", "Setting up"]
    lines += [bar.format(n=n, p=25 * n, t=f"00:{10 * n:02d}") for n in range(1, 5)]
    lines.append(bar.format(n=4, p=100, t="01:30"))  # the save, after the last step
    lines += [bar.format(n=n, p=25 * n, t=f"00:{11 * n:02d}") for n in range(1, 5)]
    log.write_text("\r".join(lines) + "\n")
    assert _training_loop(log) == pytest.approx((40 + 44) / 8)
    # a few fast steps: whole seconds say too little; tqdm's rate (here 4 steps a second)
    log.write_text("\r".join(["1|1|x: 3/3 [00:01<00:00,  4.00it/s]"]))
    assert _training_loop(log) == pytest.approx(0.25)
    log.write_text("no bar at all\n")
    assert _training_loop(log) is None


def test_the_key_separates_what_takes_different_time_or_memory(
    plugin_manager, on_gpu, long_rows_experiment
):
    on_gpu("a100-80gb")

    def key(controls):
        plan = design(plugin_manager, long_rows_experiment({"batch_size": 8, **controls}))
        return dict(plan.estimates["big.train"].key)

    base = key({})
    assert key({"lr": 3e-4}) == base  # a sweep over learning rates shares measurements
    assert key({"gradient_accumulation_steps": 4})["gradient_accumulation"] == 4
    assert key({"dataset.max_seq_len": 256})["longest"] == 256  # rows cut: a shorter peak
    assert base["device"] == "cuda" and base["hardware"] == "a100-80gb"


def test_a_gpu_of_unknown_type_gives_memory_but_no_time(
    plugin_manager, gpu_scheduler_with, long_rows_experiment
):
    gpu_scheduler_with(Hardware())  # GPUs, but of no known type
    plan = design(plugin_manager, long_rows_experiment({"batch_size": 2}))
    estimate = plan.estimates["big.train"]
    assert estimate.memory_gb is not None and estimate.hours is None
    assert estimate.key["hardware"] == "unknown-gpu" and estimate.key["device"] == "cuda"


def test_a_smaller_micro_batch_keeps_the_effective_batch_exactly(
    plugin_manager, on_gpu, long_rows_experiment
):
    on_gpu({"memory_gb": 10, "tflops_bf16": 100})
    controls = {"batch_size": 5, "enable_activation_checkpointing": True}
    (warning,) = fit_warnings(design(plugin_manager, long_rows_experiment(controls)))
    found = re.search(r"batch_size: (\d+) with gradient_accumulation_steps: (\d+)", warning.hint)
    assert (int(found.group(1)), int(found.group(2))) == (1, 5)  # not 2 × 2: 4 rows a step


def test_a_gpu_jobs_host_memory_is_not_taken_for_its_gpu_memory():
    from types import SimpleNamespace

    from cruijff.measurements import of_job
    from cruijff.records import JobState, JobStatus

    manager = SimpleNamespace(measure=lambda experiment, unit, status: {"steps": 3})
    unit = SimpleNamespace(tool="t", id="a.train")
    status = JobStatus(state=JobState.SUCCEEDED, peak_memory_mb=2048, wall_s=10)
    estimate = Estimate(memory_gb=Range(1, 2, 3), key={"k": 1})
    experiment = SimpleNamespace(name="e")
    on_cpu = of_job(manager, experiment, unit, status, estimate, gpus=0)
    on_gpu = of_job(manager, experiment, unit, status, estimate, gpus=1)
    assert on_cpu.measured["memory_gb"] == 2.0 and on_cpu.measured["hours"] == 10 / 3600
    assert "memory_gb" not in on_gpu.measured and on_gpu.measured["peak_rss_gb"] == 2.0
