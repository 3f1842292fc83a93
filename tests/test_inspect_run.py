"""Real inspect-ai evaluations through ``cruijff run`` and the local scheduler: the offline mock
provider, a tiny Hugging Face model on the CPU, an error inside inspect, and resuming an
evaluation interrupted part-way (cancelled, or its job killed outright).

The mock provider is ``cruijff-mock`` (:mod:`cruijff_inspect.mock`): inspect's ``mockllm``
downloads a tokenizer file to count tokens, so offline it ends every evaluation in error.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import attrs
import pytest
import yaml
from inspect_helpers import TASKS, CopyTrainer, write_words

from cruijff.orchestrator import cancel, design, run_experiment
from cruijff.records import JobState, JobStatus
from cruijff.runner import RunOptions
from cruijff_inspect import plugin as inspect_plugin

pytestmark = pytest.mark.slow
FAST = RunOptions(jobs=2, poll_interval=0.1, max_interval=0.5)


@pytest.fixture(autouse=True)
def _isolated_inspect_data(tmp_path, monkeypatch):
    """inspect keeps sample buffers and traces in the user's data folder: use a fresh one."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def inspect_only(register_plugin):
    return register_plugin(inspect_plugin, name="inspect")


def control_experiment(folder: Path, model: Path, words: int, **evaluation) -> Path:
    """One control run of ``model`` evaluated on ``words`` capitalization samples."""
    write_words(folder, words)
    doc = {
        "experiment": {"name": "evals"},
        "tools": {"evaluation": "inspect-ai"},
        "models": {"base": [{"name": "tiny", "path": str(model)}]},
        "data": {"training": {"path": "words.json"}},
        "controls": {"prompt": "Capitalize: {input}", "dataset_type": "chat_completion"},
        "runs": [{"name": "base", "type": "control", "model": "tiny"}],
        "evaluation": {"tasks": [{"name": "capitalization", "script": str(TASKS)}], **evaluation},
    }
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def fake_model(folder: Path) -> Path:
    model = folder / "models" / "tiny"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    return model


def header(path: Path):
    from inspect_ai.log import read_eval_log

    return read_eval_log(str(path), header_only=True)


def the_log(cell: Path) -> Path:
    (log,) = sorted((cell / "logs").glob("*.eval"))
    return log


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_mock_evaluation_through_cruijff_run(plugin_manager, inspect_only, tmp_path, cli):
    path = control_experiment(
        tmp_path,
        fake_model(tmp_path),
        6,
        provider="cruijff-mock",
        model_args={"reply": "upper"},
        # not read: the task takes no config_path, so it scores with its own (as in
        # cruijff_kit), never with these
        scorers=["match", "shouted"],
    )
    result = cli("run", path)
    assert result.exit_code == 0, result.output
    assert "1 of 1 jobs succeeded" in result.output
    cell = tmp_path / "base" / "eval" / "capitalization" / "base"
    log = header(the_log(cell))
    assert log.status == "success"
    assert log.eval.model == "cruijff-mock/tiny"
    assert log.results.total_samples == 6
    assert {score.name for score in log.results.scores} == {"match", "includes"}  # its own
    results = json.loads((cell / "results.json").read_text())
    assert results["status"] == "success" and results["samples"] == 6
    assert results["metrics"]["match/accuracy"] == 1.0
    assert results["metrics"]["includes/accuracy"] == 1.0
    assert results["log"] == str(the_log(cell).relative_to(cell))
    planned = design(plugin_manager, path)
    verdict = plugin_manager.validate(planned.experiment, planned.units[0], None)
    assert verdict.ok and verdict.metrics["match/accuracy"] == 1.0

    again = cli("run", path)  # nothing runs twice
    assert again.exit_code == 0
    assert len(list((cell / "logs").glob("*.eval"))) == 1
    from inspect_ai.log import list_eval_logs

    # native logs: what `inspect view --log-dir <experiment dir>` lists
    assert [Path(info.name.removeprefix("file://")) for info in list_eval_logs(str(tmp_path))] == [
        the_log(cell)
    ]


def test_the_cells_of_one_model_are_evaluated_in_one_process_and_a_failed_one_retries_alone(
    plugin_manager, inspect_only, tmp_path
):
    """Three tasks of one model: the first cell's job evaluates all three (one import of
    inspect, one model); the others' jobs start after it and find their results standing,
    except the one that failed there, which its own job evaluates again, alone."""
    path = control_experiment(tmp_path, fake_model(tmp_path), 3, provider="cruijff-mock")
    document = yaml.safe_load(path.read_text())
    task = document["evaluation"]["tasks"][0]
    document["evaluation"]["tasks"] = [
        {**task, "name": "first", "function": "capitalization"},
        {**task, "name": "second", "function": "exploding"},
        {**task, "name": "third", "function": "capitalization"},
    ]
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    plan = design(plugin_manager, path)
    first, second, third = (plan.generated[unit.id].job for unit in plan.units)
    assert first.argv[-3:] == ("--together", str(second.argv[3]), str(third.argv[3]))
    assert second.argv[-1] == third.argv[-1] == "--unless-current"
    assert second.after == third.after == (first.unit_id,) and first.after == ()

    result = run_experiment(plugin_manager, path, attrs.evolve(FAST, jobs=3))
    states = {unit: record.state for unit, record in result.records.items()}
    assert states == {
        first.unit_id: JobState.SUCCEEDED,
        second.unit_id: JobState.FAILED,
        third.unit_id: JobState.SUCCEEDED,
    }
    cells = {job.unit_id: job.workdir for job in (first, second, third)}
    lead_log = (cells[first.unit_id] / "job.log").read_text()
    assert lead_log.count("] evaluating ") == 3  # its own cell, then both others
    third_results = json.loads((cells[third.unit_id] / "results.json").read_text())
    assert third_results["status"] == "success" and third_results["samples"] == 3
    assert third_results["evaluated_by"] == first.unit_id and third_results["job_s"] > 0
    assert "] evaluating " not in (cells[third.unit_id] / "job.log").read_text()
    assert "its results stand" in (cells[third.unit_id] / "job.log").read_text()
    # the failed cell: evaluated again by its own job, which fails with the task's own cause
    assert "] evaluating " in (cells[second.unit_id] / "job.log").read_text()
    assert "the task exploded" in result.records[second.unit_id].cause
    assert "evaluated_by" not in json.loads((cells[second.unit_id] / "results.json").read_text())

    again = run_experiment(plugin_manager, path, attrs.evolve(FAST, retry_failed=True))
    # measured for the estimates: each cell's own time, not its job's
    units = {unit.id: unit for unit in result.plan.units}
    timed = JobStatus(state=JobState.SUCCEEDED, exit_code=0, wall_s=100.0)
    lead_results = json.loads((cells[first.unit_id] / "results.json").read_text())
    assert lead_results["together_s"] >= third_results["job_s"]  # the others' time, both
    lead = inspect_plugin.cruijff_measure(plan.experiment, units[first.unit_id], timed)
    assert lead["wall_s"] == pytest.approx(100.0 - lead_results["together_s"])
    other = inspect_plugin.cruijff_measure(plan.experiment, units[third.unit_id], timed)
    assert other["wall_s"] == third_results["job_s"]

    before = {unit: record.handle for unit, record in result.records.items()}
    resubmitted = {unit for unit, record in again.records.items() if record.handle != before[unit]}
    assert resubmitted == {second.unit_id}  # only the failed cell, alone
    assert (cells[first.unit_id] / "job.log").read_text().count("] evaluating ") == 3


def test_an_error_inside_inspect_fails_the_job_with_its_cause(
    plugin_manager, inspect_only, tmp_path
):
    path = control_experiment(tmp_path, fake_model(tmp_path), 2, provider="cruijff-mock")
    text = path.read_text().replace(
        "name: capitalization\n", "name: capitalization\n    function: exploding\n"
    )
    path.write_text(text)
    result = run_experiment(plugin_manager, path, FAST)
    (record,) = result.records.values()
    assert record.state is JobState.FAILED and record.exit_code == 1
    assert "the task exploded" in record.cause
    cell = tmp_path / "base" / "eval" / "capitalization" / "base"
    assert header(the_log(cell)).status == "error"  # a native log, kept for inspect view
    assert json.loads((cell / "results.json").read_text())["status"] == "error"


def test_a_cancelled_evaluation_continues_from_its_finished_samples(
    plugin_manager, inspect_only, tmp_path
):
    trace = tmp_path / "answers.txt"
    total = 12
    path = control_experiment(
        tmp_path,
        fake_model(tmp_path),
        total,
        provider="cruijff-mock",
        batch_size=1,  # one sample at a time: the cancel lands part-way
        model_args={"reply": "upper", "delay": 0.3, "trace": str(trace)},
    )
    run_experiment(plugin_manager, path, attrs.evolve(FAST, detach=True))
    deadline = time.monotonic() + 60
    while lines(trace) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lines(trace) >= 4, "the evaluation did not start"
    (cancelled,) = cancel(plugin_manager, path).records
    assert cancelled.state is JobState.CANCELLED
    cell = tmp_path / "base" / "eval" / "capitalization" / "base"
    interrupted = header(the_log(cell))
    assert interrupted.status == "cancelled"
    from inspect_ai.log import read_eval_log

    finished = [s for s in read_eval_log(str(the_log(cell))).samples if s.error is None]
    assert 0 < len(finished) < total
    before = lines(trace)

    result = run_experiment(plugin_manager, path, FAST)
    (record,) = result.records.values()
    assert record.state is JobState.SUCCEEDED, record.cause
    assert lines(trace) - before == total - len(finished)  # only the rest was generated
    log = header(the_log(cell))  # inspect removed the cancelled log: one log, complete
    assert log.status == "success" and log.results.completed_samples == total
    assert json.loads((cell / "results.json").read_text())["samples"] == total


def test_a_killed_job_resumes_and_leaves_one_log(plugin_manager, inspect_only, tmp_path):
    """SIGKILL leaves a ``started`` log; running the job again reuses its flushed samples and
    removes it once the evaluation succeeded."""
    trace = tmp_path / "answers.txt"
    total = 12
    path = control_experiment(
        tmp_path,
        fake_model(tmp_path),
        total,
        provider="cruijff-mock",
        batch_size=1,
        model_args={"reply": "upper", "delay": 0.2, "trace": str(trace)},
    )
    from cruijff.orchestrator import scaffold_experiment

    plan, _ = scaffold_experiment(plugin_manager, path)
    (job,) = plan.jobs
    child = subprocess.Popen(
        list(job.argv),
        cwd=job.workdir,
        env={**os.environ, **job.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while lines(trace) < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    cell = job.workdir
    assert header(the_log(cell)).status == "started"
    before = lines(trace)
    done = subprocess.run(
        [*job.argv, "--batch-size", "2"],  # as a retry after running out of memory
        cwd=job.workdir,
        capture_output=True,
        text=True,
        env={**os.environ, **job.env},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert lines(trace) - before < total  # flushed samples were reused
    log = header(the_log(cell))  # the started log is gone: one log, complete
    assert log.status == "success" and log.results.completed_samples == total
    assert log.plan.config.max_connections == 2


def test_tiny_hf_model_after_training_and_as_base_model(
    plugin_manager, register_plugin, tmp_path, tiny_model, cli
):
    """The real hf provider on the CPU: a fine-tuned run's last checkpoint (made by a stand-in
    trainer) and the base model, through ``cruijff run`` with the local scheduler."""
    register_plugin(CopyTrainer(epochs=2), name="copytrain")
    register_plugin(inspect_plugin, name="inspect")
    write_words(tmp_path, 6)
    doc = {
        "experiment": {"name": "tiny_hf"},
        "tools": {"preparation": "copytrain", "evaluation": "inspect"},
        "models": {"base": [{"name": "tiny", "path": str(tiny_model)}]},
        "data": {"training": {"path": "words.json"}},
        "controls": {
            "prompt": "Capitalize the word: {input}",
            "system_prompt": "You answer.",
            "dataset_type": "chat_completion",
        },
        "evaluation": {
            "max_tokens": 4,
            "seed": 7,
            "tasks": [{"name": "capitalization", "script": str(TASKS)}],
        },
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    began = time.monotonic()
    result = cli("run", path, "--jobs", "2")
    wall = time.monotonic() - began
    assert result.exit_code == 0, result.output
    assert "3 of 3 jobs succeeded" in result.output

    tuned = tmp_path / "finetuned" / "eval" / "capitalization" / "epoch_1"
    base = tmp_path / "base" / "eval" / "capitalization" / "base"
    for cell, model, model_path in (
        (tuned, "hf/finetuned/epoch_1", tmp_path / "finetuned" / "train" / "epoch_1"),
        (base, "hf/tiny", tiny_model),
    ):
        log = header(the_log(cell))
        assert log.status == "success"
        assert log.eval.model == model
        assert log.eval.model_args["model_path"] == str(model_path)
        assert log.eval.model_args["do_sample"] is False  # greedy by default
        assert log.plan.config.max_tokens == 4 and log.plan.config.seed == 7
        assert log.results.total_samples == log.results.completed_samples == 6
        results = json.loads((cell / "results.json").read_text())
        expected = {
            f"{score.name}/{name}": metric.value
            for score in log.results.scores
            for name, metric in score.metrics.items()
        }
        assert results["metrics"] == expected
        assert set(expected) >= {"match/accuracy", "match/stderr", "includes/accuracy"}
        assert results["model"] == model and results["samples"] == 6
        assert results["duration_s"] > 0
        assert "no chat template" not in (cell / "job.log").read_text()
    print(
        f"\ntiny hf: 1 copy + 2 evaluations (--jobs 2) in {wall:.1f} s; "
        f"evaluation durations {json.loads((base / 'results.json').read_text())['duration_s']} s"
    )


def test_mock_provider_is_visible_to_inspect_itself(tmp_path):
    """Registered through the ``inspect_ai`` entry point: ``get_model`` finds it without an
    import of ours, as ``inspect eval --model cruijff-mock/x`` would."""
    code = (
        "from inspect_ai.model import get_model\n"
        "print(type(get_model('cruijff-mock/x', reply='upper').api).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "MockModel"
