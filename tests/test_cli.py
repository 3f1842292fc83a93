"""The command line: help, exit codes, JSON output, errors without tracebacks, plugin commands."""

from __future__ import annotations

import json

import click
import pytest

from cruijff import hookimpl
from cruijff.cli import COMMANDS

BAD = """\
experiment:
  name: demo
tools:
  preparation: fake
evalution:
  tasks: []
models:
  base:
    - {name: tiny, path: models/tiny}
runs:
  - name: r1
    model: tiny-lama
controls:
  lora_rnk: 8
"""


def test_group_help_lists_every_command(cli):
    result = cli("--help")
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_explains_itself(cli, name):
    result = cli(name, "--help")
    assert result.exit_code == 0
    assert "Usage: cruijff" in result.output and len(result.output.splitlines()) > 4


def test_validate_ok_exits_0(cli, fake_tools, make_experiment):
    result = cli("validate", make_experiment())
    assert result.exit_code == 0, result.output
    assert "valid (3 runs, 5 jobs)" in result.output


def test_validate_reports_every_problem_with_place_and_exits_1(cli, fake_tools, make_experiment):
    path = make_experiment(text=BAD)
    result = cli("validate", path)
    assert result.exit_code == 1
    out = result.output
    assert "Traceback" not in out
    assert f"{path}:5:1: evalution" in out and "did you mean evaluation" in out
    assert "controls.lora_rnk" in out and "did you mean lora_rank" in out
    assert "runs[0].model" in out and "did you mean tiny" in out
    assert "Error:" in out


def test_validate_json(cli, fake_tools, make_experiment):
    result = cli("validate", make_experiment(text=BAD), "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["ok"] is False
    paths = {p["where"]["path"] for p in data["problems"]}
    assert {"evalution", "controls.lora_rnk", "runs[0].model"} <= paths


def test_missing_file_is_a_clear_error(cli, tmp_path):
    result = cli("validate", tmp_path / "nope.yaml")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "nope.yaml" in result.output


def test_unknown_tool_is_an_error_with_suggestion(cli, fake_tools, make_experiment):
    path = make_experiment({"tools": {"preparation": "fak"}})
    result = cli("validate", path)
    assert result.exit_code == 1
    assert "tools.preparation" in result.output and "did you mean fake" in result.output


def test_plan_json_lists_runs_and_jobs_and_writes_nothing(cli, fake_tools, make_experiment):
    path = make_experiment()
    result = cli("plan", path, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [r["name"] for r in data["runs"]] == ["rank4", "rank8", "base"]
    assert len(data["jobs"]) == 5 and data["scheduler"] == "local"
    assert sorted(p.name for p in path.parent.iterdir()) == ["data", "experiment.yaml", "models"]


def test_plan_table(cli, fake_tools, make_experiment):
    result = cli("plan", make_experiment())
    assert result.exit_code == 0
    assert "rank8" in result.output and "3 runs, 5 jobs" in result.output


def test_status_json_before_and_after_run(cli, fake_tools, make_experiment):
    path = make_experiment()
    before = json.loads(cli("status", path, "--json").output)
    assert {job["state"] for job in before["jobs"]} == {"NOT_SUBMITTED"}
    result = cli("run", path, "--jobs", "2")
    assert result.exit_code == 0, result.output
    assert "5 of 5 jobs succeeded" in result.output
    after = json.loads(cli("status", path, "--json").output)
    assert {job["state"] for job in after["jobs"]} == {"SUCCEEDED"}


def test_failed_run_exits_1_and_names_the_jobs(cli, fake_tools, make_experiment):
    path = make_experiment({"variables": {"lora_rank": [4], "fail": [True]}})
    result = cli("run", path)
    assert result.exit_code == 1
    assert "finetuned.train" in result.output and "Error: 2 jobs failed" in result.output


def test_run_dry_run_changes_nothing(cli, fake_tools, make_experiment):
    path = make_experiment()
    result = cli("run", path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "submit 5 of 5 jobs to local" in result.output
    assert not (path.parent / ".cruijff").exists() and not (path.parent / "rank4").exists()


def test_scaffold_json_and_idempotence(cli, fake_tools, make_experiment):
    path = make_experiment()
    first = json.loads(cli("scaffold", path, "--json").output)
    second = json.loads(cli("scaffold", path, "--json").output)
    assert len(first["written"]) == 5 and second["written"] == []


def test_plugins_json(cli, fake_tools):
    data = json.loads(cli("plugins", "--json").output)
    plugins = {p["name"]: p for p in data["plugins"]}
    assert {"local", "fake"} <= set(plugins)
    assert "cruijff_select" in plugins["fake"]["hooks"]
    assert {item["name"] for item in plugins["fake"]["provides"]} == {"fake", "fake-eval"}
    assert plugins["local"]["provides"][0]["kind"] == "scheduler"


class Hello:
    @hookimpl
    def cruijff_commands(self, cli):
        @cli.command()
        def hello():
            """Say hello from a plugin."""
            click.echo("hello from a plugin")


def test_plugins_add_commands(cli, register_plugin):
    register_plugin(Hello(), name="hello")
    assert "hello" in cli("--help").output
    result = cli("hello")
    assert result.exit_code == 0 and "hello from a plugin" in result.output


def test_a_bug_says_where_to_report_it(cli, fake_tools, make_experiment, monkeypatch):
    import cruijff.orchestrator

    def broken(*args, **kwargs):
        raise RuntimeError("oops")

    monkeypatch.setattr(cruijff.orchestrator, "design", broken)
    result = cli("plan", make_experiment())
    assert result.exit_code == 70 and "This is a bug in cruijff" in result.output


def test_version(cli):
    from cruijff import __version__

    result = cli("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_progress_reports_running_jobs_in_a_log(tmp_path):
    from rich.console import Console

    from cruijff.cli.render import Progress
    from cruijff.records import JobHandle, JobSpec, JobState
    from cruijff.state import JobRecord

    log = tmp_path / "train.log"
    log.write_text("loading\r1|12|Loss: 0.44:  60%|######    | 12/20 [00:49<00:29,  3.65s/it]")
    out = Console(file=(tmp_path / "out.txt").open("w"), width=200)
    progress = Progress(out)
    progress.report_every = 0.0
    job = JobSpec(unit_id="rank8.train", name="x", argv=("true",), workdir=tmp_path, log=log)
    running = JobRecord(
        unit_id="rank8.train",
        job=job,
        state=JobState.RUNNING,
        handle=JobHandle(scheduler="local", id="1"),
    )
    progress("state", running)
    progress("tick", None)
    out.file.close()
    text = (tmp_path / "out.txt").read_text()
    assert "running rank8.train" in text
    assert "rank8.train (0 s): 1|12|Loss: 0.44:  60%" in text and "<00:29" in text


def test_progress_line_skips_the_job_wrappers_own_lines(tmp_path):
    from cruijff.cli.render import last_line

    log = tmp_path / "train.log"
    log.write_text(
        "--- cruijff: rank8.train started 2026-11-23T10:00:00+00:00 ---\n"
        "1|20|Loss: 0.53: 100%|##########| 20/20\n"
        "--- cruijff: rank8.train ended with exit code 0 2026-11-23T10:01:00+00:00 ---\n\n"
    )
    assert last_line(log) == "1|20|Loss: 0.53: 100%|##########| 20/20"
    assert last_line(tmp_path / "missing.log") == ""


def test_scaffold_and_run_show_the_plans_warnings_before_anything_runs(
    cruijff_cli, fake_tools, make_experiment
):
    path = make_experiment({"experiment": {"seed": 3}})  # retired: a warning, not an error
    for command in ("scaffold", "run"):
        result = cruijff_cli(command, str(path))
        assert result.exit_code == 0, result.output
        assert "warning: " in result.stderr and "experiment.seed" in result.stderr


def test_plan_lists_the_first_rows_and_all_of_them_with_all(
    cruijff_cli, fake_tools, make_experiment
):
    path = make_experiment({"variables": {"lora_rank": list(range(1, 41))}})  # 41 runs
    shown = cruijff_cli("plan", str(path))
    assert shown.exit_code == 0, shown.output
    assert "Runs of demo: the first 30 of 41 (--all" in shown.stdout
    assert "rank30 " in shown.stdout and "rank31 " not in shown.stdout
    every = cruijff_cli("plan", str(path), "--all")
    assert "rank40 " in every.stdout and "the first" not in every.stdout
