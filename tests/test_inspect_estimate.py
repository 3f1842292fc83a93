"""The inspect plugin's design hooks: each evaluation cell's estimate (samples, memory, hours,
logs; from earlier cells' measurements where the index has them), what a finished cell
measured, and the review of a plan (answers nothing caps, test splits too small for the effect
looked for). Planned in-process; no job runs. Expected figures are worked out here from the
formulas of :mod:`cruijff_inspect.estimate`'s docstring, never copied from its output."""

from __future__ import annotations

import json
import math

import attrs
import pytest
from inspect_helpers import CK_TASK, FakeGenerator, inspect_changes, write_words

from cruijff.design import design
from cruijff.estimates import Estimate
from cruijff.hardware import Hardware, gpu_from
from cruijff.measurements import Index, Measurement
from cruijff.records import JobState, JobStatus, Severity
from cruijff_inspect import estimate as estimates
from cruijff_inspect import plugin as inspect_plugin
from cruijff_inspect import review as reviews

GIB = 2**30
BASE = "base.eval.capitalization.base"

# A Llama of 8 layers, h 1024, I 4096, 8 heads of 128, 2 key/value heads (256 values), a
# vocabulary of 32000, untied. Per layer: q 1024·1024 = 1_048_576, k and v 2·1024·256 =
# 524_288, o 1_048_576, the MLP 3·1024·4096 = 12_582_912, two norms 2048: 15_206_400; eight
# layers 121_651_200; the embedding and the output layer 2·32000·1024 = 65_536_000; the final
# norm 1024.
CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 8,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "vocab_size": 32000,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
}
PARAMETERS = 121_651_200 + 65_536_000 + 1024
assert PARAMETERS == 187_188_224


@pytest.fixture
def inspect_tools(register_plugin, fake_tools):
    return register_plugin(inspect_plugin, name="inspect")


@pytest.fixture
def index(tmp_path, monkeypatch):
    """The cross-experiment index, in a folder of the test's own (design() opens Index())."""
    monkeypatch.setenv("CRUIJFF_DATA_DIR", str(tmp_path / "cruijff-data"))
    return Index()


def experiment(make_experiment, tmp_path, *, rows=40, config=CONFIG, **evaluation):
    """The inspect experiment with the model of CONFIG and ``rows`` test rows."""
    path = make_experiment(inspect_changes(**evaluation))
    (tmp_path / "models" / "tiny" / "config.json").write_text(json.dumps(config))
    write_words(tmp_path / "data", rows)
    return path


def cell_estimate(plan, unit_id, hardware, index, *, gpus=0):
    """The plugin's estimate of one cell of ``plan`` on ``hardware`` (a job with ``gpus``)."""
    unit = next(u for u in plan.units if u.id == unit_id)
    job = plan.generated[unit_id].job
    job = attrs.evolve(job, resources=attrs.evolve(job.resources, gpus=gpus))
    return estimates.estimate(plan.experiment, unit, job, hardware, index)


# --- estimates ------------------------------------------------------------------------------


def test_a_cells_estimate_on_the_cpu_by_hand(
    plugin_manager, inspect_tools, make_experiment, tmp_path, index
):
    path = experiment(make_experiment, tmp_path, max_tokens=16)
    plan = design(plugin_manager, path)
    assert set(plan.estimates) >= {BASE, "rank4.eval.capitalization.epoch_1"}
    assert all(
        isinstance(plan.estimates[u.id], Estimate) for u in plan.units if u.tool == "inspect"
    )
    found = cell_estimate(plan, BASE, Hardware(cpus=2, host_memory_gb=16), index)

    assert found.samples == 40 and found.source == "formula"
    assert found.facts["parameters"] == PARAMETERS and found.facts["max_tokens"] == 16
    assert found.facts["dtype"] == "float32"
    assert found.key == {
        "tool": "inspect",
        "model": f"LlamaForCausalLM/{PARAMETERS}",
        "dtype": "float32",
        "device": "cpu",
        "hardware": "cpu",
        "gpus": 0,
        "max_tokens": 16,
        "batch": 32,
    }
    # The prompt: "Capitalize: {input}\n" is 13 characters and the words (apple, pear, fig,
    # plum, kiwi, lime, lemon, mango, melon, peach, four times) 4.4 on average, 5 at most;
    # at 4 a token, plus 15 for the chat template: 19.35 tokens on average, 19.5 the longest.
    mean_prompt, longest_prompt = 13 / 4 + 4.4 / 4 + 15, 13 / 4 + 5 / 4 + 15
    # Expected hours: start-up 12 s plus 0.749 GB of fp32 weights read at 0.5 GB/s; each
    # sample's prompt and three quarters of 16 tokens at 2 FLOPs a parameter a token, at 25
    # GFLOP/s on each of 2 cores; 2 batches of 32 decoding 12 steps through 8 layers at 1.5 ms.
    startup = 12 + PARAMETERS * 4 / 1e9 / 0.5
    flops = 2 * PARAMETERS * 40 * (mean_prompt + 0.75 * 16)
    expected_s = startup + flops / (2 * 25e9) + 2 * 12 * 8 * 1.5e-3
    assert found.hours.expected == pytest.approx(expected_s / 3600, rel=1e-9)
    assert expected_s / 3600 in found.hours and found.hours.low < found.hours.high
    # the high bound: every sample generates all 16 tokens, at 10 GFLOP/s a core
    high_flops = 2 * PARAMETERS * 40 * (13 / 3 + 5 / 3 + 40 + 16)
    assert found.hours.high * 3600 > high_flops / (2 * 10e9)
    # Memory: the fp32 weights; the KV cache, 2 · 8 layers · 256 · 4 bytes a token, for 32
    # sequences of the longest prompt and 16 tokens; the fp32 logits (4 · 32000 bytes) and one
    # layer's prefill ((4·1024 + 2·4096) · 4 bytes a token) of the batch; 10% more for the
    # allocator; 0.5 GiB for the runtime.
    weights = PARAMETERS * 4
    kv = 2 * 8 * 256 * 4 * 32 * (longest_prompt + 16)
    work = 32 * (4 * 32000 + (4 * 1024 + 2 * 4096) * 4 * longest_prompt)
    expected_gib = (weights + kv + work) / GIB * 1.1 + 0.5
    assert found.memory_gb.expected == pytest.approx(expected_gib, rel=1e-9)
    assert weights / GIB < found.memory_gb.low < expected_gib < found.memory_gb.high
    # the .eval log: 2.5 KB a sample and 10 KB
    assert found.disk_gb["logs"].expected == pytest.approx((10 + 40 * 2.5) * 1e3 / 1e9)  # GB


def test_a_cells_estimate_on_a_gpu_uses_its_peak_and_the_dtype_it_loads(
    plugin_manager, inspect_tools, make_experiment, tmp_path, index
):
    path = experiment(make_experiment, tmp_path, max_tokens=16, model_args={"dtype": "bfloat16"})
    plan = design(plugin_manager, path)
    found = cell_estimate(plan, BASE, Hardware(gpu=gpu_from("a100-80gb")), index, gpus=1)
    assert (found.facts["dtype"], found.facts["dtype_from"]) == (
        "bfloat16",
        "evaluation.model_args.dtype",
    )
    assert found.key["hardware"] == "a100-80gb" and found.key["dtype"] == "bfloat16"
    mean_prompt, longest_prompt = 13 / 4 + 4.4 / 4 + 15, 13 / 4 + 5 / 4 + 15
    # A100: 312 TFLOP/s in bf16 at a tenth; 0.25 ms a layer a step; 20 s of CUDA start-up
    startup = 20 + PARAMETERS * 2 / 1e9 / 0.5
    flops = 2 * PARAMETERS * 40 * (mean_prompt + 12)
    expected_s = startup + flops / (312e12 * 0.1) + 2 * 12 * 8 * 0.25e-3
    assert found.hours.expected == pytest.approx(expected_s / 3600, rel=1e-9)
    kv = 2 * 8 * 256 * 2 * 32 * (longest_prompt + 16)
    work = 32 * (4 * 32000 + (4 * 1024 + 2 * 4096) * 2 * longest_prompt)
    expected_gib = (PARAMETERS * 2 + kv + work) / GIB * 1.1 + 1.0  # 1 GiB of CUDA context
    assert found.memory_gb.expected == pytest.approx(expected_gib, rel=1e-9)


def test_max_tokens_comes_from_the_task_where_the_evaluation_sets_none(
    plugin_manager, inspect_tools, make_experiment, tmp_path, index
):
    plan = design(plugin_manager, experiment(make_experiment, tmp_path))
    found = plan.estimates[BASE]
    # the demo task's Task(config=GenerateConfig(max_tokens=32))
    assert found.facts["max_tokens"] == 32 and found.key["max_tokens"] == 32
    assert found.facts["max_tokens_from"].startswith("GenerateConfig(max_tokens=32) in ")
    settings = {s.path: s for s in plan.generated[BASE].settings}
    assert settings["max_tokens"].value == 32  # plan --explain says the same


def test_samples_are_the_split_the_cell_reads_at_most_its_limit(
    plugin_manager, inspect_tools, make_experiment, tmp_path, index
):
    plan = design(plugin_manager, experiment(make_experiment, tmp_path, rows=23))
    assert plan.estimates[BASE].samples == 23
    plan = design(plugin_manager, experiment(make_experiment, tmp_path, rows=23, limit=5))
    assert plan.estimates[BASE].samples == 5
    found = plan.estimates[BASE]
    assert found.key["batch"] == 5  # the batch is at most the samples


def test_samples_of_generated_data_are_the_splits_its_job_declares(
    plugin_manager, inspect_tools, register_plugin, make_experiment, index
):
    register_plugin(FakeGenerator({"train": 6, "validation": 3}), name="gen")
    changes = inspect_changes()
    changes["evaluation"]["tasks"] = [
        {"name": "organism", "script": str(CK_TASK), "function": "ck_style"}
    ]
    changes["data"] = {
        "training": {"path": "data/organism.json"},
        "data_generation": {"tool": "gen", "rows": 8},
    }
    plan = design(plugin_manager, make_experiment(changes))
    found = plan.estimates["base.eval.organism.base"]
    assert found.samples == 3  # ck_style reads validation, which the generator makes 3 rows
    assert found.facts["max_tokens"] == 5 and found.facts["max_tokens_from"] == "the task's default"


def test_a_model_without_dimensions_has_no_memory_or_hours_but_its_samples(
    plugin_manager, inspect_tools, make_experiment, tmp_path, index
):
    config = {"architectures": ["LlamaForCausalLM"]}
    plan = design(plugin_manager, experiment(make_experiment, tmp_path, config=config))
    found = plan.estimates[BASE]
    assert found.samples == 40 and found.memory_gb is None and found.hours is None
    assert "config.json lacks" in found.facts["parameters_from"]


def test_parameters_from_safetensors_headers_where_the_config_lacks_them(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"]}))
    header = {
        "a": {"dtype": "BF16", "shape": [3, 4], "data_offsets": [0, 24]},
        "b": {"dtype": "BF16", "shape": [5], "data_offsets": [24, 34]},
        "__metadata__": {"format": "pt"},
    }
    text = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(len(text).to_bytes(8, "little") + text + bytes(34))
    model = estimates.read_model(folder)
    assert (model.parameters, model.counted_from, model.dtype) == (
        17,
        "safetensors headers",
        "bfloat16",
    )
    assert model.fingerprint == "GPT2LMHeadModel/17"


def test_measured_cells_of_the_same_key_give_the_hours(
    plugin_manager, inspect_tools, make_experiment, tmp_path, index
):
    path = experiment(make_experiment, tmp_path, max_tokens=16)
    formula = design(plugin_manager, path).estimates[BASE]
    # two earlier cells of the same model, hardware, cap and batch: 50 s for 20 samples
    # (2.5 s each) in a job of 70 s, and 60 s for 40 samples (1.5 s each) in one of 75 s
    for samples, own, wall in ((20, 50.0, 70.0), (40, 60.0, 75.0)):
        index.record(
            Measurement(
                key=formula.key,
                tool="inspect",
                source="run",
                measured={"samples": samples, "eval_s": own, "wall_s": wall, "hours": wall / 3600},
                predicted={"hours": [0.01, 0.02, 0.04]},
                unit=BASE,
            )
        )
    found = design(plugin_manager, path).estimates[BASE]
    assert found.source == "measured" and found.samples == 40
    # 40 samples at 1.5, 2.0 (the median) and 2.5 s, after 15, 17.5 and 20 s of start-up
    assert found.hours.low == pytest.approx((15 + 40 * 1.5) / 3600)
    assert found.hours.expected == pytest.approx((17.5 + 40 * 2.0) / 3600)
    assert found.hours.high == pytest.approx((20 + 40 * 2.5) / 3600)
    # how far off the predictions were: 70 s and 75 s measured against 72 s expected
    error = found.facts["past_error"]["hours"]
    assert error["runs"] == 2 and error["within_bounds"] == 2
    assert error["ratio_range"] == pytest.approx([70 / 72, 75 / 72])
    # a measurement of another cap is not this cell's
    other = design(plugin_manager, experiment(make_experiment, tmp_path, max_tokens=64))
    assert other.estimates[BASE].source == "formula"


def test_alike_cells_share_an_estimate_until_the_hardware_or_measurements_differ(
    plugin_manager, inspect_tools, make_experiment, tmp_path, index
):
    # two ranks' epochs: the same model and task, sized once; the base model's cell is alike
    # too, but another cap or other hardware is another estimate
    path = experiment(make_experiment, tmp_path, max_tokens=16)
    plan = design(plugin_manager, path)
    cpu = Hardware(cpus=2, host_memory_gb=16)
    first = cell_estimate(plan, "rank4.eval.capitalization.epoch_1", cpu, index)
    again = cell_estimate(plan, "rank8.eval.capitalization.epoch_1", cpu, index)
    assert again is first
    smaller = cell_estimate(plan, BASE, Hardware(cpus=1, host_memory_gb=16), index)
    assert smaller.hours.expected > first.hours.expected and smaller.facts["cpus"] == 1
    # a measurement recorded in the same index meanwhile: the next estimate is measured
    measured = {"samples": 40, "eval_s": 20.0, "wall_s": 30.0, "hours": 30 / 3600}
    index.record(
        Measurement(key=first.key, tool="inspect", source="run", measured=measured, unit=BASE)
    )
    after = cell_estimate(plan, "rank8.eval.capitalization.epoch_1", cpu, index)
    assert after.source == "measured" and first.source == "formula"
    assert after.hours.expected == pytest.approx(30 / 3600)


def test_measure_reads_the_cells_results_and_feeds_the_next_estimate(
    plugin_manager, inspect_tools, make_experiment, tmp_path, index
):
    path = experiment(make_experiment, tmp_path, max_tokens=16)
    plan = design(plugin_manager, path)
    unit = next(u for u in plan.units if u.id == BASE)
    done = JobStatus(state=JobState.SUCCEEDED, exit_code=0)
    assert inspect_plugin.cruijff_measure(plan.experiment, unit, done) is None  # not run yet
    unit.directory.mkdir(parents=True, exist_ok=True)
    results = {"status": "success", "samples": 40, "duration_s": 36.0, "log": "logs/x.eval"}
    (unit.directory / "results.json").write_text(json.dumps(results))
    measured = inspect_plugin.cruijff_measure(plan.experiment, unit, done)
    assert measured["samples"] == 40 and measured["wall_s"] == 36.0 == measured["eval_s"]
    index.record(
        Measurement(key=plan.estimates[BASE].key, tool="inspect", source="run", measured=measured)
    )
    found = design(plugin_manager, path).estimates[BASE]
    # 0.9 s a sample; no job wall time beside the evaluation's own: the formula's start-up
    startup = estimates.startup_s(
        estimates.read_model(tmp_path / "models" / "tiny"), 4, "cpu", False
    )
    assert found.source == "measured"
    assert found.hours.expected == pytest.approx((startup.expected + 40 * 0.9) / 3600)
    # where the scheduler timed the job, 50 s: 14 s of start-up around the 36 s evaluation
    timed = inspect_plugin.cruijff_measure(plan.experiment, unit, attrs.evolve(done, wall_s=50.0))
    assert (timed["wall_s"], timed["eval_s"], timed["hours"]) == (50.0, 36.0, 50.0 / 3600)
    index.record(
        Measurement(key=plan.estimates[BASE].key, tool="inspect", source="run", measured=timed)
    )
    found = design(plugin_manager, path).estimates[BASE]
    # two runs: 0.9 s a sample each; start-up measured once, 14 s
    assert found.hours.expected == pytest.approx((14 + 40 * 0.9) / 3600)
    assert found.facts["startup_from"] == "measured"
    (unit.directory / "results.json").write_text(json.dumps({**results, "status": "error"}))
    assert inspect_plugin.cruijff_measure(plan.experiment, unit, done) is None
    assert (
        inspect_plugin.cruijff_measure(plan.experiment, attrs.evolve(unit, tool="x"), done) is None
    )


# --- review: max_tokens ---------------------------------------------------------------------


def uncapped_task(tmp_path, body="    return Task(dataset=[], solver=[generate()])\n", extra=""):
    script = tmp_path / "plain_task.py"
    script.write_text(
        "from inspect_ai import Task, task\n"
        "from inspect_ai.solver import generate\n\n"
        f"{extra}"
        "@task\n"
        "def plain(data_path, split='test'):\n"
        f"{body}"
    )
    return script


def with_task(make_experiment, tmp_path, script, **evaluation):
    changes = inspect_changes(**evaluation)
    changes["evaluation"]["tasks"] = [{"name": "plain", "script": str(script)}]
    path = make_experiment(changes)
    write_words(tmp_path / "data", 40)
    return path


def cap_warnings(plan):
    return [w for w in plan.warnings if "max_tokens" in w.message]


def test_a_task_that_caps_nothing_is_a_warning_at_its_entry(
    plugin_manager, inspect_tools, make_experiment, tmp_path, index
):
    path = with_task(make_experiment, tmp_path, uncapped_task(tmp_path))
    plan = design(plugin_manager, path)
    (warning,) = cap_warnings(plan)
    assert warning.severity is Severity.WARNING and warning.plugin == "inspect"
    assert warning.message.startswith("the task plain sets no max_tokens: inspect's default")
    assert "lets an untrained or wandering model generate for minutes per sample" in warning.message
    assert warning.where.path == "evaluation.tasks[0]"
    line = path.read_text().splitlines()[warning.where.line - 1]
    assert "plain" in line or "name" in line  # the task's entry in the experiment file
    assert "evaluation.max_tokens" in warning.hint and "plain_task.py" in warning.hint
    found = plan.estimates["base.eval.plain.base"]
    assert found.facts["max_tokens"] is None and found.hours is None  # no cap: no time to give
    assert found.memory_gb is None or found.memory_gb.high > 0


@pytest.mark.parametrize(
    ("evaluation", "body", "extra", "expected"),
    [
        ({"max_tokens": 8}, None, "", 8),  # the evaluation's setting
        ({}, "    return Task(dataset=[], solver=[generate(max_tokens=20)])\n", "", 20),
        (
            {},
            "    return Task(dataset=[], solver=[answer()])\n",  # a helper of the module
            "def answer():\n    return generate(max_tokens=12)\n\n",
            12,
        ),
        (
            {"max_tokens": 8},  # a solver's literal wins over the evaluation's
            "    return Task(dataset=[], solver=[generate(max_tokens=20)])\n",
            "",
            20,
        ),
    ],
)
def test_a_cap_anywhere_inspect_reads_it_silences_the_warning(
    plugin_manager,
    inspect_tools,
    make_experiment,
    tmp_path,
    index,
    evaluation,
    body,
    extra,
    expected,
):
    script = uncapped_task(tmp_path, body, extra) if body else uncapped_task(tmp_path)
    plan = design(plugin_manager, with_task(make_experiment, tmp_path, script, **evaluation))
    assert cap_warnings(plan) == []
    assert plan.estimates["base.eval.plain.base"].facts["max_tokens"] == expected


def test_the_demo_task_plans_without_a_max_tokens_warning(
    plugin_manager, inspect_tools, make_experiment, tmp_path, index
):
    plan = design(plugin_manager, experiment(make_experiment, tmp_path))
    assert cap_warnings(plan) == []


def test_no_cap_warning_with_the_offline_mock_provider(
    plugin_manager, inspect_tools, make_experiment, tmp_path, index
):
    path = with_task(make_experiment, tmp_path, uncapped_task(tmp_path), provider="cruijff-mock")
    assert cap_warnings(design(plugin_manager, path)) == []


# --- review: power --------------------------------------------------------------------------


def power_warnings(plan):
    return [w for w in plan.warnings if "80% power" in w.message]


def with_min_effect(make_experiment, tmp_path, min_effect, rows=40):
    changes = inspect_changes()
    changes["experiment"] = {"name": "demo", "min_effect": min_effect}
    path = make_experiment(changes)
    (tmp_path / "models" / "tiny" / "config.json").write_text(json.dumps(CONFIG))
    write_words(tmp_path / "data", rows)
    return path


def test_min_effect_needs_more_samples_than_the_test_split_has(
    plugin_manager, inspect_tools, make_experiment, tmp_path, index
):
    plan = design(plugin_manager, with_min_effect(make_experiment, tmp_path, 0.05))
    # From 0.5 to 0.55: p-bar 0.525, (1.959964 · sqrt(2 · 0.525 · 0.475) + 0.841621 ·
    # sqrt(0.25 + 0.2475))² / 0.05² = (1.384170 + 0.593627)² / 0.0025 = 1564.7: 1565 samples.
    (warning,) = power_warnings(plan)
    assert warning.message == (
        "the task capitalization evaluates 40 samples: detecting min_effect (5 points) from an "
        "accuracy of 50% at 80% power needs 1565"
    )
    assert "a larger test split (at least 1565 samples)" in warning.hint
    assert "larger min_effect" in warning.hint
    assert warning.where.path == "evaluation.tasks[0]"
    (row,) = plan.notes["evaluation_power"]
    assert dict(row) | {"min_detectable": None} == {
        "task": "capitalization",
        "samples": 40,
        "baseline": 0.5,
        "min_detectable": None,
        "min_effect": 0.05,
        "samples_needed": 1565,
    }


def test_min_effect_from_the_controls_accuracy_in_an_earlier_analysis(
    plugin_manager, inspect_tools, make_experiment, tmp_path, index
):
    path = with_min_effect(make_experiment, tmp_path, 0.1)
    analysis = tmp_path / "analysis"
    analysis.mkdir()
    (analysis / "results.csv").write_text(
        "run,label,task,epoch,metric,value,n,ci_low,ci_high,ci_method,floor,ceiling,log\n"
        "base,base,capitalization,,match/accuracy,0.8,40,0.6,0.9,wilson,false,false,a\n"
        "base,base,capitalization,,includes/accuracy,0.9,40,0.7,0.95,wilson,false,false,a\n"
        "rank4,rank4,capitalization,1,match/accuracy,0.3,40,0.2,0.4,wilson,false,false,b\n"
    )
    plan = design(plugin_manager, path)
    # the control's match/accuracy, 0.8, to 0.9: p-bar 0.85, (1.959964 · sqrt(2 · 0.85 ·
    # 0.15) + 0.841621 · sqrt(0.16 + 0.09))² / 0.1² = (0.989733 + 0.420811)² / 0.01 = 199.0
    (warning,) = power_warnings(plan)
    assert "from a control at 80% (the last analysis)" in warning.message
    assert warning.message.endswith("needs 199")
    (row,) = plan.notes["evaluation_power"]
    assert (row["baseline"], row["samples_needed"]) == (0.8, 199)


def test_enough_samples_for_min_effect_is_no_warning(
    plugin_manager, inspect_tools, make_experiment, tmp_path, index
):
    # from 0.5 to 0.8: (1.959964 · sqrt(2 · 0.65 · 0.35) + 0.841621 · sqrt(0.25 + 0.16))² /
    # 0.3² = (1.322068 + 0.538901)² / 0.09 = 38.5: 39 samples, of 40
    plan = design(plugin_manager, with_min_effect(make_experiment, tmp_path, 0.3))
    assert power_warnings(plan) == []
    assert plan.notes["evaluation_power"][0]["samples_needed"] == 39


def test_without_min_effect_a_split_too_small_for_ten_points_is_a_warning(
    plugin_manager, inspect_tools, make_experiment, tmp_path, index
):
    plan = design(plugin_manager, experiment(make_experiment, tmp_path))
    (warning,) = power_warnings(plan)
    (row,) = plan.notes["evaluation_power"]
    d = row["min_detectable"]
    # 40 samples: 0.5 to 0.8 needs 39 (above), 0.5 to 0.75 needs (1.959964 · sqrt(2 · 0.625 ·
    # 0.375) + 0.841621 · sqrt(0.25 + 0.1875))² / 0.25² = (1.341895 + 0.556681)² / 0.0625 =
    # 57.7, 58: the smallest detectable difference lies between 25 and 30 points
    assert 0.25 < d <= 0.3
    assert warning.message == (
        f"the task capitalization: differences under {d * 100:.3g} points cannot be told from "
        "noise at 80% power with 40 samples"
    )
    assert "set experiment.min_effect" in warning.hint and "evaluate more samples" in warning.hint
    assert "388 detect 10 points" in warning.hint  # 387.3 by hand (test_analysis_stats)
    assert (row["min_effect"], row["samples_needed"]) == (None, 388)


def test_without_min_effect_enough_samples_for_ten_points_is_no_warning(
    plugin_manager, inspect_tools, make_experiment, tmp_path, index
):
    path = experiment(make_experiment, tmp_path)
    rows = [{"input": f"word{i}", "output": f"WORD{i}"} for i in range(400)]
    (tmp_path / "data" / "words.json").write_text(json.dumps({"train": rows, "test": rows}))
    plan = design(plugin_manager, path)
    assert power_warnings(plan) == []
    (row,) = plan.notes["evaluation_power"]
    assert row["samples"] == 400 and row["min_detectable"] <= 0.1  # 388 are enough


def test_the_baseline_reader_takes_the_control_runs_proportions_only(tmp_path):
    analysis = tmp_path / "analysis"
    analysis.mkdir()
    (analysis / "results.csv").write_text(
        "run,label,task,epoch,metric,value,n,ci_low,ci_high,ci_method,floor,ceiling,log\n"
        "base,base,caps,,loss/mean,2.5,40,,,t,false,false,a\n"
        "base,base,caps,,match/accuracy,0.6,40,,,wilson,false,false,a\n"
        "base,base,caps,,includes/accuracy,0.9,40,,,wilson,false,false,a\n"
        "other,other,caps,,match/accuracy,0.8,40,,,wilson,false,false,a\n"
        "rank4,rank4,caps,1,match/accuracy,0.1,40,,,wilson,false,false,b\n"
    )

    class Run:
        def __init__(self, name, control):
            from cruijff.records import RunType

            self.name = name
            self.type = RunType.CONTROL if control else RunType.FINE_TUNED

    class Experiment:
        directory = tmp_path
        runs = (Run("base", True), Run("other", True), Run("rank4", False))

    # the mean of the two controls' first proportion, match/accuracy (not includes, listed
    # after it); never the fine-tuned run, never a mean of scores that are not proportions
    assert reviews.baselines(Experiment()) == {"caps": (pytest.approx(0.7), "match/accuracy")}
    assert math.isclose(reviews.baselines(Experiment())["caps"][0], 0.7)
