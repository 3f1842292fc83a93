"""``cruijff analyze`` end to end on the fake tools: jobs really run (in-process), the fake
evaluator's per-sample scores go through ``cruijff_observe``, and the statistics come out as
computed by hand here (the fake evaluator gets rank/16 of 20 samples right: s00... first,
shifted by the seed; the base model none)."""

from __future__ import annotations

import json
import math
import shutil

import attrs
import pytest

from cruijff.analysis.analyze import analyze, to_json
from cruijff.design import design

pytest.importorskip("scipy")


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson's interval by its closed form."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.fixture
def ran(cli, fake_tools, cruijff_inprocess, make_experiment, plugin_manager):
    """Run an experiment to the end with the in-process scheduler; returns its plan."""

    def run(changes=None):
        path = make_experiment(changes or {})
        result = cli("run", path, "--scheduler", cruijff_inprocess)
        return path, result, design(plugin_manager, path, scheduler=cruijff_inprocess)

    return run


def test_every_cell_has_its_interval_and_every_run_its_paired_comparison(ran, plugin_manager):
    _, result, plan = ran()
    assert result.exit_code == 0, result.output
    assert "Report:" in result.output  # the attached run ended with the analysis
    analysis, report = analyze(plugin_manager, plan)
    cells = {(c.run, c.epoch): c for c in analysis.cells}
    rank4 = cells[("rank4", 1)]
    assert (rank4.value, rank4.n, rank4.ci_method) == (0.25, 20, "wilson")
    assert rank4.ci_low == pytest.approx(wilson(5, 20)[0], abs=1e-9)
    assert rank4.ci_high == pytest.approx(wilson(5, 20)[1], abs=1e-9)
    base = cells[("base", None)]
    assert base.value == 0 and base.floor and not base.ceiling
    comparisons = {c.run: c for c in analysis.comparisons}
    four, eight = comparisons["rank4"], comparisons["rank8"]
    assert (four.control, four.delta, four.n) == ("base", 0.25, 20)
    assert four.flips_up_ids == ("s00", "s01", "s02", "s03", "s04") and four.flips_down == 0
    # McNemar exact: 5 discordant pairs, all one way: 2 × 0.5^5; 10 of them: 2 × 0.5^10
    assert four.p_value == pytest.approx(2 * 0.5**5)
    assert eight.p_value == pytest.approx(2 * 0.5**10)
    # Holm over the two: the smaller × 2, then the larger (kept monotone)
    assert eight.p_adjusted == pytest.approx(2 * 2 * 0.5**10)
    assert four.p_adjusted == pytest.approx(2 * 0.5**5)
    assert four.ci_low > 0 and four.ci_low <= 0.25 <= four.ci_high
    # rank 8 gets five more samples right than rank 4, none fewer: it is told apart
    (verdict,) = analysis.verdicts
    assert (verdict.best, verdict.runner_up) == ("rank8", "rank4")
    assert report.name == "report.html" and report.is_file()
    assert report.parent == plan.experiment.directory / "analysis"


def test_the_json_follows_the_documented_schema(ran, cli, plugin_manager, cruijff_inprocess):
    path, _, plan = ran()
    output = cli("analyze", path, "--scheduler", cruijff_inprocess, "--json").output
    document = json.loads(output)
    assert set(document) >= {"experiment", "cells", "comparisons", "missing", "report"}
    assert document["experiment"] == "demo"
    cell = document["cells"][0]
    assert set(cell) >= {
        "run",
        "task",
        "epoch",
        "metric",
        "value",
        "n",
        "ci_low",
        "ci_high",
        "ci_method",
        "log",
    }
    assert cell["metric"] == "fake/accuracy" and not cell["log"].startswith("/")
    comparison = document["comparisons"][0]
    assert set(comparison) >= {
        "run",
        "control",
        "task",
        "epoch",
        "metric",
        "n",
        "delta",
        "ci_low",
        "ci_high",
        "p_value",
        "p_adjusted",
        "flips_up",
        "flips_down",
        "flips_up_ids",
        "flips_down_ids",
    }
    analysis, report = analyze(plugin_manager, plan)
    assert document == json.loads(json.dumps(to_json(analysis, report)))


def test_a_partial_experiment_gives_a_partial_report_that_says_what_is_missing(ran, plugin_manager):
    zipped = [{"lora_rank": [4, 8], "fail": [False, True]}]
    changes = {"variables": {"lora_rank": None, "zip": zipped}}
    _, result, plan = ran(changes)
    assert result.exit_code == 1  # one training failed
    analysis, report = analyze(plugin_manager, plan)
    assert {c.run for c in analysis.cells} == {"rank4_failFalse", "base"} or len(
        analysis.cells
    ) == 2
    (missing,) = analysis.missing
    assert missing.task == "caps" and "dependency" in missing.cause.lower()
    assert missing.cause in report.read_text()


def test_seeds_are_pooled_and_a_second_analysis_changes_no_byte(ran, plugin_manager):
    _, result, plan = ran({"variables": {"lora_rank": [8], "seed": [1, 2]}})
    assert result.exit_code == 0, result.output
    analysis, report = analyze(plugin_manager, plan)
    (group,) = [g for g in analysis.groups if g.metric == "fake/accuracy"]
    assert len(group.runs) == 2 and group.mean == 0.5
    assert group.sd_between_seeds == 0  # both seeds get 10 of 20 right
    folder = report.parent
    before = {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    stamps = {p: p.stat().st_mtime_ns for p in before}
    analyze(plugin_manager, plan)
    after = {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    assert after == before
    assert {p: p.stat().st_mtime_ns for p in after} == stamps  # not even rewritten


def test_a_plugin_contributes_scores_and_report_sections(
    plugin_manager, fake_tools, make_experiment, register_plugin
):
    from cruijff import hookimpl
    from cruijff.analysis.model import Section
    from cruijff.testing.analysis import mark_succeeded, observe

    class Throughput:
        @hookimpl
        def cruijff_report(self, analysis, experiment):
            yield Section(
                title="Throughput",
                text="Tokens per second.",
                columns=("run", "tok/s"),
                rows=[("rank4", 1520.0)],
            )

    register_plugin(Throughput(), name="throughput")
    plan = design(plugin_manager, make_experiment())
    mark_succeeded(plan)
    for unit in plan.units:  # what the fake evaluator's job would have written
        if unit.tool == "fake-eval":
            unit.directory.mkdir(parents=True)
            scores = {"a": 1, "b": 0}
            (unit.directory / "results.json").write_text(
                json.dumps({"metrics": {"accuracy": 0.5}, "scores": scores})
            )
    collected = observe(plugin_manager, plan)
    assert [dict(s.samples) for s in collected.scores] == [{"a": 1.0, "b": 0.0}] * 3
    assert collected.missing == ()  # the training units are no evaluation cells
    analysis, report = analyze(plugin_manager, plan)
    (section,) = analysis.sections
    assert section.plugin == "throughput"
    html = report.read_text()
    assert "Throughput" in html and "1520" in html


# --- what the review asked for ----------------------------------------------------------------


def test_a_failing_analysis_warns_and_the_run_still_reports_its_failed_jobs(ran, monkeypatch):
    import cruijff.analysis.analyze

    def broken(manager, plan):
        raise RuntimeError("the disk is full [/b]")

    monkeypatch.setattr(cruijff.analysis.analyze, "analyze", broken)
    zipped = [{"lora_rank": [4, 8], "fail": [False, True]}]
    path, result, _ = ran({"variables": {"lora_rank": None, "zip": zipped}})
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "warning: the analysis failed: RuntimeError: the disk is full [/b]" in output
    assert f"retry with `cruijff analyze {path}`" in output
    assert "Error: 2 jobs failed: rank8_fail-true.train" in output


def test_a_plugin_that_fails_on_one_cell_makes_that_cell_missing(
    plugin_manager, fake_tools, make_experiment, monkeypatch
):
    from cruijff.errors import PluginError
    from cruijff.testing.analysis import mark_succeeded, observe

    plan = design(plugin_manager, make_experiment())
    mark_succeeded(plan)
    for unit in plan.units:
        if unit.tool == "fake-eval":
            unit.directory.mkdir(parents=True)
            (unit.directory / "results.json").write_text(
                json.dumps({"metrics": {"accuracy": 0.5}, "scores": {"a": 1, "b": 0}})
            )
    real = plugin_manager.observe

    def flaky(experiment, unit):
        if unit.run == "rank8":
            raise PluginError(
                plugin="fake", version="1", stage="analyze", run=unit.run, cause=KeyError("x")
            )
        return real(experiment, unit)

    monkeypatch.setattr(plugin_manager, "observe", flaky)
    collected = observe(plugin_manager, plan)
    assert {s.run for s in collected.scores} == {"rank4", "base"}
    (missing,) = collected.missing
    assert (missing.run, missing.task) == ("rank8", "caps")
    assert missing.cause == (
        "its tool could not read it: plugin fake 1 failed in analyze for rank8: KeyError: 'x'"
    )


def test_labels_are_kept_per_cell(plugin_manager, fake_tools, make_experiment):
    from cruijff.analysis.collect import collect
    from cruijff.testing.analysis import mark_succeeded

    changes = {"evaluation": {"tasks": [{"name": "caps"}, {"name": "lower"}]}}
    plan = design(plugin_manager, make_experiment(changes))
    mark_succeeded(plan)
    units = []
    for unit in plan.units:
        if unit.tool == "fake-eval":
            unit.directory.mkdir(parents=True)
            (unit.directory / "results.json").write_text(
                json.dumps({"metrics": {"accuracy": 1.0}, "scores": {"a": 1}})
            )
            label = f"{unit.run} on {unit.params['task']}"
            unit = attrs.evolve(unit, params={**unit.params, "vis_label": label})
        units.append(unit)
    collected = collect(plugin_manager, attrs.evolve(plan, units=units))
    assert collected.labels[("rank4", "caps", 1)] == "rank4 on caps"
    assert collected.labels[("rank4", "lower", 1)] == "rank4 on lower"
    analysis, _ = analyze(plugin_manager, attrs.evolve(plan, units=units))
    assert {(c.run, c.task): c.label for c in analysis.cells}[("rank4", "lower")] == (
        "rank4 on lower"
    )


def test_the_environment_names_the_data_file_relative_and_says_when_git_is_silent(
    plugin_manager, fake_tools, make_experiment, monkeypatch, tmp_path_factory
):
    import subprocess

    from cruijff.analysis import collect as collecting

    plan = design(plugin_manager, make_experiment())
    assert collecting.collect(plugin_manager, plan).environment["data_file"] == "data/words.json"
    runs = design(plugin_manager, make_experiment({"experiment": {"dir": "runs"}})).experiment
    assert collecting.data_file(runs.data.path, runs) == "data/words.json"  # beside the file
    outside = tmp_path_factory.mktemp("elsewhere") / "words.json"
    shutil.copy(plan.experiment.data.path, outside)
    plan = design(plugin_manager, make_experiment({"data": {"training": {"path": str(outside)}}}))
    assert collecting.collect(plugin_manager, plan).environment["data_file"] == str(outside)
    given = []

    def silent(*args, timeout=None, **kwargs):
        given.append(timeout)
        raise subprocess.TimeoutExpired(args[0], timeout)

    monkeypatch.setattr(collecting.subprocess, "run", silent)
    assert collecting.git_commit(plan.experiment.file.parent) == "unknown (git did not answer)"
    assert given == [30]


def test_an_unreadable_or_empty_training_curve_is_missing_with_its_cause(tmp_path):
    from cruijff.analysis.collect import read_curve

    (tmp_path / "run").mkdir()
    empty = tmp_path / "run" / "metrics.csv"
    empty.write_text("step,loss\n")
    assert read_curve("r", empty, tmp_path) == "its training curve run/metrics.csv has no rows"
    empty.write_bytes(b"step,loss\n1,\xff\xfe\n")
    assert read_curve("r", empty, tmp_path).startswith(
        "its training curve run/metrics.csv cannot be read: UnicodeDecodeError"
    )
    assert read_curve("r", tmp_path / "none.csv", tmp_path) is None  # its trainer wrote none
    empty.write_text("step,loss\n1,2.5\n")
    assert read_curve("r", empty, tmp_path).loss == (2.5,)
