"""The evaluation job's way through the cells of one model (``--together``), without inspect:
``evaluate_cell`` is replaced by a stand-in that writes the results a real evaluation would,
so these check only which cells the job takes, skips or leaves to their own jobs."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from cruijff.fsutil import try_lock
from cruijff_inspect import job
from cruijff_inspect.results import digest


def cell(root: Path, name: str) -> Path:
    """A cell folder with its config; returns the config's path."""
    folder = root / name
    folder.mkdir()
    config = folder / "eval_config.yaml"
    config.write_text(f"unit: {name}\nmodel: {{name: m, path: {root}}}\n")
    return config


def results(config: Path) -> dict:
    path = config.parent / "results.json"
    return json.loads(path.read_text()) if path.exists() else {}


@pytest.fixture(autouse=True)
def _job_process_settings(monkeypatch):
    """The job sets its environment and a SIGTERM handler for its process: not pytest's."""
    monkeypatch.setattr(job, "JOB_ENV", {})
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


@pytest.fixture
def evaluated(monkeypatch) -> list[str]:
    """The cells the stand-in evaluated, in order; a cell named ``boom`` raises, ``oom`` runs
    out of memory, ``stop`` is interrupted."""
    seen: list[str] = []

    def stand_in(config_path: Path, batch, merged, merge_into) -> int:
        name = config_path.parent.name
        seen.append(name)
        if name.startswith("boom"):
            raise OSError("the disk is full")
        if name == "stop":
            raise KeyboardInterrupt
        status = "error" if name == "oom" else "success"
        log = config_path.parent / "logs" / "x.eval"
        log.parent.mkdir(exist_ok=True)
        log.write_text("")
        (config_path.parent / "results.json").write_text(
            json.dumps(
                {
                    "unit": name,
                    "status": status,
                    "cause": "CUDA out of memory" if name == "oom" else "",
                    "log": "logs/x.eval",
                    "config_digest": digest(config_path.read_text()),
                    "model_path": str(config_path.parent.parent),
                }
            )
        )
        return 1 if status == "error" else 0

    monkeypatch.setattr(job, "evaluate_cell", stand_in)
    return seen


def test_the_lead_evaluates_the_others_and_they_then_find_their_results_standing(
    tmp_path, evaluated
):
    lead, one, two = (cell(tmp_path, name) for name in ("lead", "one", "two"))
    assert job.main([str(lead), "--together", str(one), str(two)]) == 0
    assert evaluated == ["lead", "one", "two"]
    assert results(one)["evaluated_by"] == "lead" and results(two)["job_s"] >= 0
    assert results(lead)["together_s"] >= 0
    # their own jobs, started after it, end at once; without the flag a cell is evaluated anew
    assert job.main([str(one), "--unless-current"]) == 0
    assert evaluated == ["lead", "one", "two"]
    one.write_text(one.read_text() + "limit: 3\n")  # its settings changed: not standing
    assert job.main([str(one), "--unless-current"]) == 0
    assert evaluated[-1] == "one"


def test_a_cell_its_own_job_holds_or_that_fails_is_left_to_it_and_the_rest_go_on(
    tmp_path, evaluated
):
    lead, held, boom, last = (cell(tmp_path, n) for n in ("lead", "held", "boom", "last"))
    fd = try_lock(held.parent / job.LOCK)  # its own job evaluates it now
    assert fd is not None
    try:
        code = job.main([str(lead), "--together", str(held), str(boom), str(last)])
    finally:
        os.close(fd)
    assert code == 0  # the lead's own cell succeeded: the others' trouble is theirs
    assert evaluated == ["lead", "boom", "last"]
    assert results(held) == {} and "evaluated_by" in results(last)


def test_a_lead_out_of_memory_leaves_the_others_and_an_interrupted_one_stops(tmp_path, evaluated):
    oom, other = cell(tmp_path, "oom"), cell(tmp_path, "other")
    assert job.main([str(oom), "--together", str(other)]) == 1
    assert evaluated == ["oom"]  # the others would run out of memory too: alone, they retry
    lead, stop, after = (cell(tmp_path, name) for name in ("lead", "stop", "after"))
    assert job.main([str(lead), "--together", str(stop), str(after)]) == 130
    assert evaluated[-2:] == ["lead", "stop"]


def test_a_missing_config_is_a_clear_error(tmp_path, capsys):
    assert job.main([str(tmp_path / "nowhere" / "eval_config.yaml")]) == 2
    assert "cannot read the evaluation config" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("scheduler", "together"), [("local", True), ("slurm", False), ("slurm", True)]
)
def test_a_models_cells_share_a_job_where_the_scheduler_keeps_the_order(
    plugin_manager, register_plugin, tmp_path, scheduler, together, cli
):
    """The local scheduler always; SLURM where its profile says ``together: true``, its
    others then waiting with ``afterany``; never two models in one job."""
    import yaml
    from inspect_helpers import TASKS, write_words

    from cruijff.orchestrator import design
    from cruijff_inspect import plugin as inspect_plugin
    from cruijff_slurm import plugin as slurm_plugin
    from cruijff_slurm.arrays import plan_calls

    register_plugin(inspect_plugin, name="inspect")
    register_plugin(slurm_plugin, name="slurm")
    write_words(tmp_path, 3)
    models = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
        models.append({"name": name, "path": name})
    task = {"script": str(TASKS), "function": "capitalization"}
    document = {
        "experiment": {"name": "grouped"},
        "tools": {"evaluation": "inspect-ai"},
        "models": {"base": models},
        "data": {"training": {"path": "words.json"}},
        "controls": {"prompt": "Capitalize: {input}", "dataset_type": "chat_completion"},
        "runs": [{"name": m["name"], "type": "control", "model": m["name"]} for m in models],
        "evaluation": {
            "provider": "cruijff-mock",
            "tasks": [{**task, "name": "a"}, {**task, "name": "b"}],
        },
        "scheduler": {"name": scheduler, **({"together": True} if together else {})},
    }
    if scheduler == "local":
        del document["scheduler"]["together"]
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    plan = design(plugin_manager, path, scheduler=scheduler)
    jobs = {unit.id: plan.generated[unit.id].job for unit in plan.units}
    assert sorted(jobs) == [
        "one.eval.a.base",
        "one.eval.b.base",
        "two.eval.a.base",
        "two.eval.b.base",
    ]
    for model in ("one", "two"):
        lead, other = jobs[f"{model}.eval.a.base"], jobs[f"{model}.eval.b.base"]
        if together:
            assert lead.argv[4:] == ("--together", other.argv[3]) and lead.after == ()
            assert other.argv[4:] == ("--unless-current",) and other.after == (lead.unit_id,)
        else:
            assert len(lead.argv) == len(other.argv) == 4 and other.after == ()
    shown = cli("plan", path, "--scheduler", scheduler, "--json")
    assert shown.exit_code == 0, shown.output
    listed = {j["unit"]: j["starts_after"] for j in json.loads(shown.output)["jobs"]}
    assert listed == {unit: list(each.after) for unit, each in jobs.items()}
    if scheduler == "local":
        table = cli("plan", path, "--scheduler", scheduler)
        assert "one.eval.a.base (ended)" in table.output
    if scheduler == "slurm":
        kinds = {
            call.dependency(["A", "B", "C", "D"]) for call in plan_calls(list(jobs.values()), {})
        }
        # the two leads are one array; each other cell waits for its own lead's task
        assert kinds == ({"", "afterany:A_0", "afterany:A_1"} if together else {""})
