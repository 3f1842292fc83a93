"""The everyday commands on part of an experiment, with the fake tools and the real local
scheduler: ``run/cancel/status --only``, ``run --only --force``, ``cruijff logs`` and
``cruijff clean``. (The same against the real SLURM cluster: tests/test_slurm_cluster.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import attrs
import pytest
from test_broken_state import starts

from cruijff import clean, logs, selection
from cruijff.errors import UserError
from cruijff.orchestrator import design, run_experiment, status
from cruijff.records import JobState
from cruijff.runner import RunOptions
from cruijff.state import ExperimentState
from cruijff.testing.fake_job import WEIGHT_BYTES

FAST = RunOptions(jobs=2, poll_interval=0.05, max_interval=0.2)
ALL = {"rank4.train", "rank8.train", "rank4.eval.caps.e1", "rank8.eval.caps.e1", "base.eval.caps"}


def records(tmp_path: Path):
    return ExperimentState(tmp_path / ".cruijff").records()


# --- choosing units --------------------------------------------------------------------------


JOBS = [(unit, unit.split(".")[0]) for unit in sorted(ALL)]


@pytest.mark.parametrize(
    ("patterns", "chosen"),
    [
        (["rank4"], {"rank4.train", "rank4.eval.caps.e1"}),
        (["rank4.train"], {"rank4.train"}),
        (["rank*"], ALL - {"base.eval.caps"}),
        (["*.eval.*"], {"rank4.eval.caps.e1", "rank8.eval.caps.e1", "base.eval.caps"}),
        (["rank8.train", "base"], {"rank8.train", "base.eval.caps"}),
    ],
)
def test_patterns_name_runs_units_or_globs(patterns, chosen):
    assert selection.select(patterns, JOBS) == chosen


def test_a_pattern_that_matches_nothing_names_the_near_ones():
    with pytest.raises(UserError, match="'rank5' matches no run or job") as error:
        selection.select(["rank4", "rank5"], JOBS)
    assert "rank4" in error.value.hint and "rank8" in error.value.hint
    with pytest.raises(UserError) as error:
        selection.select(["zzzz"], JOBS)
    assert "runs: base, rank4, rank8" in error.value.hint  # nothing near: what there is


def test_run_only_runs_the_chosen_and_their_unfinished_dependencies(
    plugin_manager, fake_tools, make_experiment, trace, tmp_path
):
    path = make_experiment()
    result = run_experiment(plugin_manager, path, FAST, only=["rank4.eval.*"])
    assert sorted(starts(trace)) == ["rank4.eval.caps.e1", "rank4.train"]
    assert result.chosen == {"rank4.eval.caps.e1", "rank4.train"}
    assert set(records(tmp_path)) == {"rank4.train", "rank4.eval.caps.e1"}
    # what succeeded is not run again; the rest of the experiment runs with a plain run
    run_experiment(plugin_manager, path, FAST, only=["rank4"])
    assert len(starts(trace)) == 2
    run_experiment(plugin_manager, path, FAST)
    assert sorted(starts(trace)) == sorted(
        ["rank4.eval.caps.e1", "rank4.train", *ALL - {"rank4.eval.caps.e1", "rank4.train"}]
    )


def test_force_reruns_a_success_and_outdates_what_depends_on_it(
    plugin_manager, fake_tools, make_experiment, trace, tmp_path, cli
):
    path = make_experiment()
    run_experiment(plugin_manager, path, FAST)
    before = len(starts(trace))
    forced = cli("run", path, "--only", "rank4.train", "--force")
    assert forced.exit_code == 0, forced.output
    assert "1 of 1 chosen jobs succeeded" in forced.output
    assert starts(trace)[before:] == ["rank4.train"]  # the training alone, again
    now = records(tmp_path)
    assert now["rank4.train"].attempt == 2 and now["rank4.train"].done
    assert now["rank4.eval.caps.e1"].outdated and not now["rank4.eval.caps.e1"].done
    assert now["rank8.eval.caps.e1"].done  # nothing of another run
    assert "CRUIJFF_RERUN" in now["rank4.train"].job.env
    shown = cli("status", path, "--only", "rank4*", "--json")
    assert [row["state"] for row in json.loads(shown.output)["jobs"]] == ["SUCCEEDED", "OUTDATED"]
    again = run_experiment(plugin_manager, path, FAST)
    assert starts(trace)[before + 1 :] == ["rank4.eval.caps.e1"]
    assert {r.state for r in again.records.values()} == {JobState.SUCCEEDED}
    # --force without --only is refused: it would rerun everything
    refused = cli("run", path, "--force")
    assert refused.exit_code == 2 and "--only" in refused.output


def test_the_cli_says_near_names_for_an_unknown_run(
    plugin_manager, fake_tools, make_experiment, cli
):
    path = make_experiment()
    for command in ("run", "status", "cancel"):
        result = cli(command, path, "--only", "rank5")
        assert result.exit_code == 1, result.output
        assert "--only 'rank5' matches no run or job" in result.output
        assert "near names: " in result.output
        assert {"rank4", "rank8"} <= set(result.output.split("near names: ")[1].split(", "))
        assert "Traceback" not in result.output


def test_cancel_only_stops_the_chosen_and_names_what_will_not_run(
    plugin_manager, fake_tools, make_experiment, trace, tmp_path, cli, monkeypatch
):
    gate = tmp_path / "gate"
    monkeypatch.setenv("CRUIJFF_FAKE_GATE", str(gate))  # the trainings wait for it
    path = make_experiment()
    run_experiment(plugin_manager, path, attrs.evolve(FAST, detach=True))
    deadline = time.monotonic() + 30
    while len(starts(trace)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    would = cli("cancel", path, "--only", "rank4.train", "--dry-run", "--json")
    assert json.loads(would.output)["will_not_run"] == ["rank4.eval.caps.e1"]
    done = cli("cancel", path, "--only", "rank4.train")
    assert done.exit_code == 0, done.output
    assert "rank4.train: CANCELLED" in done.output and "cancelled 1 jobs" in done.output
    assert "1 jobs that depend on them will now not run" in done.output
    assert "rank4.eval.caps.e1" in done.output and "rank8" not in done.output
    gate.touch()  # rank8 goes on to the end
    finished = run_experiment(plugin_manager, path, FAST, only=["rank8", "base"])
    states = {u: r.state for u, r in finished.records.items()}
    assert states["rank8.eval.caps.e1"] is JobState.SUCCEEDED
    assert states["rank4.train"] is JobState.CANCELLED
    assert states["rank4.eval.caps.e1"] is not JobState.SUCCEEDED
    assert "rank4.eval.caps.e1" not in starts(trace)


def test_status_only_filters(plugin_manager, fake_tools, make_experiment, cli):
    path = make_experiment()
    run_experiment(plugin_manager, path, FAST, only=["rank8.train"])
    shown = cli("status", path, "--only", "rank8", "--json")
    assert shown.exit_code == 0, shown.output
    rows = {row["unit"]: row["state"] for row in json.loads(shown.output)["jobs"]}
    assert rows == {"rank8.train": "SUCCEEDED", "rank8.eval.caps.e1": "NOT_SUBMITTED"}
    table = cli("status", path, "--only", "*.eval.*")
    assert "rank8.train" not in table.output and "base.eval.caps" in table.output
    assert len(status(plugin_manager, path, only=["rank4*"]).jobs) == 2


# --- logs ------------------------------------------------------------------------------------


def test_sections_split_a_log_by_attempt():
    text = (
        b"old text\n"
        b"--- cruijff: r.train attempt 1 started 2026-12-03T10:00:00+00:00 ---\none\n"
        b"--- cruijff: r.train attempt 1 ended with exit code 3 2026-12-03T10:00:01+00:00 ---\n"
        b"--- cruijff: r.train started 2026-12-03T10:00:02+00:00 (SLURM job 41_2) ---\ntwo\n"
    )
    found = logs.sections(text, {"41_2": 2})
    assert [s.attempt for s in found] == [None, 1, 2]
    assert text[found[1].start : found[1].end].endswith(
        b"exit code 3 2026-12-03T10:00:01+00:00 ---\n"
    )
    assert text[found[2].start : found[2].end].endswith(b"two\n")
    assert logs.tail(b"a\nb\nc\n", 2) == b"b\nc\n" and logs.tail(b"a\n", 0) == b""


def test_logs_shows_the_latest_attempt_or_another(
    plugin_manager, fake_tools, make_experiment, cli, tmp_path
):
    path = make_experiment()
    run_experiment(plugin_manager, path, FAST, only=["rank4.train"])
    assert cli("run", path, "--only", "rank4.train", "--force").exit_code == 0
    latest = cli("logs", path, "rank4.train")
    assert latest.exit_code == 0, latest.output
    assert "rank4.train attempt 2 started" in latest.output and "attempt 1" not in latest.output
    assert "epoch 2/2 | loss" in latest.output
    first = cli("logs", path, "rank4.train", "--attempt", "1")
    assert "rank4.train attempt 1 started" in first.output and "attempt 2" not in first.output
    last_line = cli("logs", path, "rank4.train", "--tail", "1")
    assert last_line.output.count("\n") == 1 and "ended with exit code 0" in last_line.output
    as_json = json.loads(cli("logs", path, "rank4.train", "--json").output)
    assert as_json["attempt"] == 2 and as_json["attempts"] == 2 and "epoch 1/2" in as_json["text"]
    assert cli("logs", path, "rank4.train", "--attempt", "3").exit_code == 1
    # a run with several jobs is not one job; one never submitted has no log
    several = cli("logs", path, "rank4")
    assert (
        several.exit_code == 1 and "names 2 jobs: rank4.train, rank4.eval.caps.e1" in several.output
    )
    never = cli("logs", path, "rank8.train")
    assert never.exit_code == 1 and "has not been submitted" in never.output
    (tmp_path / "rank4" / "train" / "job.log").unlink()
    gone = cli("logs", path, "rank4.train")
    assert gone.exit_code == 1 and "has been removed" in gone.output


def test_logs_of_a_waiting_job_and_follow_until_it_ends(
    plugin_manager, fake_tools, make_experiment, cli, tmp_path, monkeypatch
):
    gate = tmp_path / "gate"
    monkeypatch.setenv("CRUIJFF_FAKE_GATE", str(gate))
    path = make_experiment()
    run_experiment(plugin_manager, path, attrs.evolve(FAST, detach=True, jobs=1))
    waiting = cli("logs", path, "base.eval.caps")  # queued behind the training: no log yet
    assert waiting.exit_code == 1 and "is pending: its log" in waiting.output
    assert "not there yet" in waiting.output
    follower = subprocess.Popen(
        [sys.executable, "-m", "cruijff", "logs", str(path), "rank4.train", "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "CRUIJFF_PLUGINS": "cruijff.testing.fake"},
    )
    time.sleep(1.5)
    gate.touch()  # the training goes on and ends; --follow prints it and stops
    out, _ = follower.communicate(timeout=60)
    assert follower.returncode == 0, out
    assert b"epoch 2/2" in out and b"ended with exit code 0" in out


# --- clean -----------------------------------------------------------------------------------


def test_clean_removes_weights_no_evaluation_needs_and_keeps_results(
    plugin_manager, fake_tools, make_experiment, cli, trace, tmp_path
):
    path = make_experiment()
    run_experiment(plugin_manager, path, FAST)
    weights = sorted(tmp_path.glob("rank*/train/epoch_*/model.safetensors"))
    assert len(weights) == 4
    listed = cli("clean", path, "--checkpoints", "--json")
    assert listed.exit_code == 0, listed.output
    plan = json.loads(listed.output)
    assert plan["removed"] is False and plan["bytes"] == 4 * WEIGHT_BYTES
    assert all(p.exists() for p in weights)  # a listing removes nothing
    kept = json.loads(cli("clean", path, "--checkpoints", "--keep-last", "--json").output)
    assert sorted((f["run"], f["epoch"]) for f in kept["folders"]) == [("rank4", 0), ("rank8", 0)]
    shown = cli("clean", path, "--checkpoints", "--keep-last")
    assert "--yes removes them" in shown.output and "8.2 KB in 2 folders" in shown.output
    done = cli("clean", path, "--checkpoints", "--keep-last", "--yes")
    assert done.exit_code == 0 and "freed 8.2 KB in 2 folders" in done.output
    assert [p.exists() for p in weights] == [False, True, False, True]
    assert (tmp_path / "rank4" / "train" / "epoch_0" / "model.json").exists()  # config stays
    noted = json.loads((tmp_path / ".cruijff" / clean.NAME).read_text())
    assert set(noted) == {"rank4/train/epoch_0", "rank8/train/epoch_0"}
    # status, a later run and the analysis see the experiment as it was
    before = len(starts(trace))
    again = run_experiment(plugin_manager, path, FAST)
    assert len(starts(trace)) == before
    assert {r.state for r in again.records.values()} == {JobState.SUCCEEDED}
    assert cli("status", path).output.count("SUCCEEDED") == 5
    assert cli("analyze", path).exit_code == 0


def test_a_job_that_needs_cleaned_weights_names_the_run_to_retrain(
    plugin_manager, fake_tools, make_experiment, cli, trace, tmp_path
):
    path = make_experiment()
    run_experiment(plugin_manager, path, FAST)
    assert cli("clean", path, "--all-weights", "--yes").exit_code == 0
    assert not list(tmp_path.glob("rank4/train/epoch_*/model.safetensors"))
    refused = cli("run", path, "--only", "rank4.eval.caps.e1", "--force")
    assert refused.exit_code == 1
    assert "needs the weights of run rank4 epoch 1, which `cruijff clean` removed" in refused.output
    assert "--only rank4.train --force" in refused.output
    retrained = cli("run", path, "--only", "rank4", "--force")
    assert retrained.exit_code == 0, retrained.output
    assert len(list(tmp_path.glob("rank4/train/epoch_*/model.safetensors"))) == 2
    still = clean.cleaned(design(plugin_manager, path))  # rank4's weights are back
    assert {entry["run"] for entry in still.values()} == {"rank8"}
