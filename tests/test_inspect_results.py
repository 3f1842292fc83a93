"""A cell is complete only when its job read a ``success`` log that still exists under the
current settings and model; its results are tidy rows and flat metrics."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from cruijff.records import JobState, JobStatus, Unit
from cruijff_inspect.collect import collect
from cruijff_inspect.results import digest, model_fingerprint, validate


@pytest.fixture
def cell(tmp_path) -> tuple[Unit, Path]:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"weights")
    directory = tmp_path / "run" / "eval" / "caps" / "epoch_0"
    (directory / "logs").mkdir(parents=True)
    (directory / "eval_config.yaml").write_text("task: caps\n")
    unit = Unit(
        id="run.eval.caps.epoch_0", tool="inspect", kind="eval", run="run", directory=directory
    )
    return unit, model


def write_results(unit: Unit, model: Path, **changes) -> dict:
    log = unit.directory / "logs" / "x.eval"
    log.write_bytes(b"PK")
    results = {
        "status": "success",
        "log": "logs/x.eval",
        "run": "run",
        "task": "caps",
        "epoch": 0,
        "model": "hf/run/epoch_0",
        "samples": 6,
        "duration_s": 1.5,
        "metrics": {"match/accuracy": 0.5, "match/stderr": 0.1},
        "summary": ["match/accuracy"],
        "model_path": str(model),
        "model_fingerprint": model_fingerprint(model),
        "config_digest": digest((unit.directory / "eval_config.yaml").read_text()),
        **changes,
    }
    (unit.directory / "results.json").write_text(json.dumps(results))
    return results


def test_complete_cell_reports_metrics_and_its_log(cell):
    unit, model = cell
    write_results(unit, model)
    verdict = validate(unit, None)
    assert verdict.ok, verdict.cause
    assert verdict.metrics["match/accuracy"] == 0.5
    assert verdict.metrics["samples"] == 6 and verdict.metrics["epoch"] == 0
    assert verdict.metrics["model"] == "hf/run/epoch_0"
    assert verdict.summary == ("match/accuracy",)
    (artifact,) = verdict.artifacts
    assert artifact.kind == "inspect-log" and artifact.path == unit.directory / "logs" / "x.eval"


def test_not_yet_evaluated_and_stopped_early(cell):
    unit, _ = cell
    assert validate(unit, None).cause == "not evaluated yet (no results.json)"
    failed = validate(unit, JobStatus(state=JobState.FAILED, exit_code=1))
    assert not failed.ok and "job.log" in failed.cause


def test_an_errored_or_cancelled_log_is_a_failure_with_its_cause(cell):
    unit, model = cell
    write_results(unit, model, status="error", cause="inspect: RuntimeError: boom")
    verdict = validate(unit, JobStatus(state=JobState.FAILED, exit_code=1))
    assert not verdict.ok and verdict.cause == "inspect: RuntimeError: boom"
    write_results(unit, model, status="started", cause="")
    assert validate(unit, None).cause == "the evaluation ended with status started"


def test_a_missing_log_is_a_failure(cell):
    unit, model = cell
    write_results(unit, model)
    (unit.directory / "logs" / "x.eval").unlink()
    assert "is gone" in validate(unit, None).cause


def test_changed_settings_or_model_make_results_stale(cell):
    unit, model = cell
    write_results(unit, model)
    (unit.directory / "eval_config.yaml").write_text("task: caps\nlimit: 2\n")
    assert "settings (eval_config.yaml) changed" in validate(unit, None).cause

    write_results(unit, model)
    weights = model / "model.safetensors"
    weights.write_bytes(b"retrained")
    os.utime(weights, ns=(1, 1))
    assert "changed since it was evaluated" in validate(unit, None).cause

    write_results(unit, model)
    for path in model.iterdir():
        path.unlink()
    model.rmdir()
    assert validate(unit, None).ok  # a deleted checkpoint does not undo its evaluation


def test_collect_makes_tidy_rows_and_flat_metrics(tmp_path):
    metric = SimpleNamespace
    log = SimpleNamespace(
        status="success",
        error=None,
        location=f"file://{tmp_path}/logs/a.eval",
        results=SimpleNamespace(
            total_samples=4,
            completed_samples=4,
            scores=[
                SimpleNamespace(
                    name="match",
                    metrics={"accuracy": metric(value=0.75), "stderr": metric(value=0.25)},
                ),
                SimpleNamespace(name="includes", metrics={"accuracy": metric(value=1.0)}),
            ],
        ),
        stats=SimpleNamespace(
            started_at="2026-01-01T10:00:00+00:00", completed_at="2026-01-01T10:00:02.5+00:00"
        ),
        eval=SimpleNamespace(packages={"inspect_ai": "0.3.285"}),
    )
    base = {"run": "r", "task": "caps", "vis_label": "r1", "epoch": 1, "model": "hf/r/epoch_1"}
    results = collect(log, base, tmp_path)
    assert results["log"] == "logs/a.eval"
    assert results["duration_s"] == 2.5 and results["samples"] == 4
    assert results["metrics"] == {
        "match/accuracy": 0.75,
        "match/stderr": 0.25,
        "includes/accuracy": 1.0,
    }
    assert results["rows"][0] == {
        "run": "r",
        "task": "caps",
        "vis_label": "r1",
        "epoch": 1,
        "model": "hf/r/epoch_1",
        "scorer": "match",
        "metric": "accuracy",
        "value": 0.75,
    }
    assert len(results["rows"]) == 3 and results["cause"] == ""
    assert results["summary"] == ["match/accuracy", "includes/accuracy"]


def test_logs_of_other_settings_move_aside(tmp_path):
    from cruijff_inspect.job import identity, supersede

    config = {"task_args": {"split": "test"}, "model": {"name": "hf/x"}, "prompt": "A {input}"}
    logs = tmp_path / "logs"
    supersede(tmp_path, logs, identity(config, "weights-1"))  # first run: nothing to move
    logs.mkdir()
    (logs / "a.eval").write_bytes(b"PK")
    supersede(tmp_path, logs, identity(config, "weights-1"))  # same: a resume keeps its logs
    assert (logs / "a.eval").exists()
    for changed in ({**config, "prompt": "B {input}"}, config):
        fingerprint = "weights-2" if changed is config else "weights-1"
        supersede(tmp_path, logs, identity(changed, fingerprint))
        assert not logs.exists()
        logs.mkdir()
        (logs / "a.eval").write_bytes(b"PK")
    moved = sorted((tmp_path / "superseded").iterdir())
    assert len(moved) == 2 and all((folder / "a.eval").exists() for folder in moved)
    assert identity({**config, "batch_size": 1}, "w") == identity({**config, "batch_size": 8}, "w")


def test_the_identity_marker_is_replaced_whole_never_rewritten_in_place(tmp_path):
    from cruijff_inspect.job import IDENTITY, identity, supersede

    marker = tmp_path / IDENTITY
    marker.write_text("an older identity\n")
    kept = tmp_path / "kept"
    os.link(marker, kept)  # the old file, seen through another name
    current = identity({"prompt": "A {input}"}, "weights-1")
    supersede(tmp_path, tmp_path / "logs", current)
    assert marker.read_text() == current + "\n"
    # written beside it and renamed over it (a crash leaves the old or the new one whole):
    # the old file is untouched, and nothing temporary is left
    assert kept.read_text() == "an older identity\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([IDENTITY, "kept"])
