"""The results table: one row per run, the summary metrics of its units."""

from __future__ import annotations

import json

from cruijff.design import design
from cruijff.jobindex import jobs_of
from cruijff.records import JobSpec, JobState
from cruijff.results import format_value, results_table
from cruijff.state import JobRecord


def record(unit_id, metrics, summary=(), state=JobState.SUCCEEDED):
    job = JobSpec(unit_id=unit_id, name=unit_id, argv=("true",), workdir="/", log="/l")
    return JobRecord(unit_id=unit_id, job=job, state=state, metrics=metrics, summary=summary)


def test_one_row_per_run_with_each_units_summary(plugin_manager, fake_tools, make_experiment):
    plan = design(plugin_manager, make_experiment())
    records = {
        "rank4.train": record("rank4.train", {"final_loss": 0.5, "steps": 20}, ("final_loss",)),
        "rank4.eval.caps.e1": record("rank4.eval.caps.e1", {"accuracy": 0.25, "samples": 20}),
        "rank8.eval.caps.e1": record(
            "rank8.eval.caps.e1", {"accuracy": 0.5}, state=JobState.FAILED
        ),
        "base.eval.caps": record(
            "base.eval.caps", {"accuracy": 0.0, "task": "caps"}, ("accuracy",)
        ),
    }
    columns, rows = results_table(plan.experiment, jobs_of(plan), records)
    assert columns == ["run", "type", "final_loss", "accuracy", "samples"]
    assert rows == [
        {"run": "rank4", "type": "fine-tuned", "final_loss": 0.5, "accuracy": 0.25, "samples": 20},
        {"run": "base", "type": "control", "accuracy": 0.0},
    ]  # rank8's evaluation failed: no row


def test_a_metric_of_several_units_is_told_apart(plugin_manager, fake_tools, make_experiment):
    plan = design(
        plugin_manager,
        make_experiment({"evaluation": {"tasks": [{"name": "caps"}, {"name": "lower"}]}}),
    )
    records = {
        unit.id: record(unit.id, {"accuracy": 0.5}) for unit in plan.units if unit.run == "base"
    }
    columns, _ = results_table(plan.experiment, jobs_of(plan), records)
    assert columns == ["run", "type", "eval.caps accuracy", "eval.lower accuracy"]


def test_values_print_short():
    assert format_value(0.456789) == "0.457" and format_value(12345.6) == "12346"
    assert format_value(None) == "" and format_value(3) == "3"


def test_run_ends_with_the_results_table(cli, fake_tools, make_experiment):
    path = make_experiment()
    result = cli("run", path, "--jobs", "2")
    assert result.exit_code == 0, result.output
    table = result.output.split("Results", 1)[1]
    assert "rank8" in table and "0.5" in table and "accuracy" in table  # rank 8 / 16
    status = json.loads(cli("status", path, "--json").output)
    metrics = {job["unit"]: job["metrics"] for job in status["jobs"]}
    assert metrics["rank8.eval.caps.e1"]["accuracy"] == 0.5
