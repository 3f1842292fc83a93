"""Learning from runs, with the fake tools on the local scheduler: a finished job's
measurement goes into the index next to its prediction and the next plan estimates from it;
``cruijff calibrate`` runs a short job of one run, waits (or detaches and is collected later)
and records what it used."""

from __future__ import annotations

import json

import pytest

from cruijff.calibrate import PENDING, calibrate
from cruijff.design import design
from cruijff.errors import UserError
from cruijff.measurements import Index
from cruijff.orchestrator import run_experiment
from cruijff.runner import RunOptions

FAST = RunOptions(jobs=2, poll_interval=0.05, max_interval=0.2)
KEY = {"tool": "fake", "hardware": "cpu", "batch_size": None}


def test_a_finished_job_is_measured_and_the_next_plan_estimates_from_it(
    plugin_manager, fake_tools, make_experiment
):
    path = make_experiment({"controls": {"sleep": 0.4}})
    before = design(plugin_manager, path)
    assert {before.estimates[u].source for u in ("rank4.train", "rank8.train")} == {"formula"}
    run_experiment(plugin_manager, path, FAST)
    found = {m.unit: m for m in Index().find(KEY)}
    assert sorted(found) == ["rank4.train", "rank8.train"]
    for measurement in found.values():
        assert measurement.source == "run" and measurement.experiment == "demo"
        assert measurement.measured["wall_s"] >= 0.4 and measurement.measured["epochs"] == 2
        assert 0 < measurement.measured["peak_rss_gb"] < 1  # a stdlib job's resident memory
        assert measurement.predicted["hours"] == pytest.approx(
            list(before.estimates[measurement.unit].hours), rel=1e-2
        )
    after = design(plugin_manager, path)
    estimate = after.estimates["rank4.train"]
    assert estimate.source == "measured" and estimate.facts["measurements"] == 2
    walls = sorted(m.measured["wall_s"] for m in found.values())
    assert estimate.hours.high * 3600 == pytest.approx(walls[-1], rel=1e-6)


def test_calibrate_runs_a_short_job_and_records_it(plugin_manager, fake_tools, make_experiment):
    path = make_experiment({"controls": {"sleep": 0.2}})
    plan = design(plugin_manager, path)
    said = []
    done = calibrate(plugin_manager, plan, "rank8", progress=said.append)
    assert done.unit == "rank8.train" and done.status.state.value == "SUCCEEDED"
    assert done.directory == plan.experiment.state_dir / "calibrate" / "rank8.train"
    assert (done.directory / "epoch_0" / "model.json").exists()
    assert not (plan.experiment.directory / "rank8").exists()  # the run itself is untouched
    assert done.measurement.source == "calibration" and done.measurement.measured["epochs"] == 1
    assert json.loads(done.recorded.read_text())["unit"] == "rank8.train"
    assert said[0].startswith("submitted rank8.train.calibrate (local job ")
    assert design(plugin_manager, path).estimates["rank4.train"].source == "calibration"


def test_a_detached_calibration_is_collected_by_the_next_one(
    plugin_manager, fake_tools, make_experiment, tmp_path, monkeypatch
):
    gate = tmp_path / "gate"
    monkeypatch.setenv("CRUIJFF_FAKE_GATE", str(gate))  # the job waits for this file
    path = make_experiment()
    plan = design(plugin_manager, path)
    first = calibrate(plugin_manager, plan, None, detach=True)
    assert not first.status.state.finished and (first.directory / PENDING).exists()
    assert first.measurement is None and not Index().find(KEY)
    gate.touch()
    # the file changes before the calibration is collected: it is kept under the key it ran
    # with, not the new one
    make_experiment({"controls": {"batch_size": 8}})
    said = []
    second = calibrate(plugin_manager, design(plugin_manager, path), None, progress=said.append)
    assert said[0].startswith("collecting rank4.train.calibrate")  # not submitted again
    assert second.status.state.value == "SUCCEEDED" and not (second.directory / PENDING).exists()
    assert [m.source for m in Index().find(KEY)] == ["calibration"]
    assert not Index().find({**KEY, "batch_size": 8})
    jobs = plan.experiment.state_dir / "local" / "jobs"
    assert [p.name for p in jobs.iterdir()] == ["rank4.train.calibrate.1"]


def test_calibrate_names_what_it_cannot_do(plugin_manager, fake_tools, make_experiment):
    plan = design(plugin_manager, make_experiment())
    with pytest.raises(UserError, match="no run is called 'rank9'") as error:
        calibrate(plugin_manager, plan, "rank9")
    assert "rank4" in error.value.hint or "rank8" in error.value.hint
    with pytest.raises(UserError, match="no unit of run 'base' can be calibrated"):
        calibrate(plugin_manager, plan, "base")


def test_the_calibrate_command(cruijff_cli, fake_tools, make_experiment):
    path = make_experiment()
    result = cruijff_cli("calibrate", str(path), "rank4", "--json")
    assert result.exit_code == 0, result.output
    done = json.loads(result.stdout)
    assert done["state"] == "SUCCEEDED" and done["measured"]["epochs"] == 1
    shown = cruijff_cli("calibrate", str(path), "rank8")
    assert shown.exit_code == 0, shown.output
    assert "rank8.train: calibrated" in shown.stdout and "recorded in " in shown.stdout
    wrong = cruijff_cli("calibrate", str(path), "base")
    assert wrong.exit_code == 1 and "Error: no unit of run 'base' can be calibrated" in wrong.output
