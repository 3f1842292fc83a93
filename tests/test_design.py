"""Design: which scheduler, which keys are claimed, the plan's units and their order."""

from __future__ import annotations

import pytest

from cruijff import hookimpl
from cruijff.design import check, choose_scheduler, design
from cruijff.errors import ProblemsFound, UserError
from cruijff.records import ParseReport, Problem, SchedulerInfo


class Cluster:
    """A scheduler plugin that says whether it can be used here."""

    def __init__(self, available):
        self.available = available

    @hookimpl
    def cruijff_schedulers(self):
        yield SchedulerInfo(
            name="cluster",
            factory=lambda experiment, options: None,
            available=lambda: self.available,
        )


def test_local_is_the_default(plugin_manager, fake_tools, make_experiment):
    experiment = check(plugin_manager, make_experiment()).experiment
    assert experiment.scheduler.name == "local"


def test_an_available_cluster_scheduler_becomes_the_default(
    plugin_manager, fake_tools, make_experiment
):
    plugin_manager.register(Cluster(available=True), name="cluster")
    path = make_experiment()
    assert check(plugin_manager, path).experiment.scheduler.name == "cluster"
    assert check(plugin_manager, path, scheduler="local").experiment.scheduler.name == "local"


def test_an_unavailable_cluster_scheduler_is_not_chosen(
    plugin_manager, fake_tools, make_experiment
):
    plugin_manager.register(Cluster(available=False), name="cluster")
    assert check(plugin_manager, make_experiment()).experiment.scheduler.name == "local"


def test_the_experiment_names_its_scheduler(plugin_manager, fake_tools, make_experiment):
    plugin_manager.register(Cluster(available=False), name="cluster")
    experiment = check(plugin_manager, make_experiment({"scheduler": {"name": "cluster"}}))
    assert experiment.experiment.scheduler.name == "cluster"
    with pytest.raises(UserError, match="unknown scheduler 'slurmm'"):
        choose_scheduler(plugin_manager, experiment.experiment, "slurmm")


class Claimer:
    """Claims `special` under controls and complains about its value."""

    @hookimpl
    def cruijff_parse(self, experiment, keys):
        mine = [k for k in keys if k.section == "parameters" and k.name == "special"]
        return ParseReport(
            claimed={k.path for k in mine},
            vocabulary={"parameters": ("special",)},
            problems=[
                Problem(where=experiment.locate(k.path), message="too special")
                for k in mine
                if k.value == 13
            ],
        )


def test_keys_are_claimed_across_plugins_and_suggested_from_all(
    plugin_manager, fake_tools, make_experiment
):
    plugin_manager.register(Claimer(), name="claimer")
    checked = check(
        plugin_manager, make_experiment({"controls": {"special": 13, "specal": 1, "lr": 0.1}})
    )
    by_path = {p.where.path: p for p in checked.problems}
    assert set(by_path) == {"controls.special", "controls.specal"}
    assert by_path["controls.special"].plugin == "claimer"
    assert by_path["controls.special"].where.line is not None
    assert "did you mean special" in by_path["controls.specal"].hint


def test_plugin_type_checks_reach_the_user(plugin_manager, fake_tools, make_experiment):
    checked = check(plugin_manager, make_experiment({"variables": {"lora_rank": [4, "big"]}}))
    assert [p.message for p in checked.errors] == ["lora_rank must be int, not 'big'"]
    assert checked.errors[0].where.path == "variables.lora_rank"
    with pytest.raises(ProblemsFound):
        design(plugin_manager, make_experiment({"variables": {"lora_rank": [4, "big"]}}))


def test_plan_units_come_in_role_order_with_dependencies(
    plugin_manager, fake_tools, make_experiment
):
    # evaluation written first in the file: preparation still comes first
    path = make_experiment({"tools": {"evaluation": "fake-eval", "preparation": "fake"}})
    plan = design(plugin_manager, path)
    kinds = [unit.kind for unit in plan.units]
    assert kinds == ["train", "train", "eval", "eval", "eval"]
    eval_rank8 = next(u for u in plan.units if u.id == "rank8.eval.caps.e1")
    assert eval_rank8.depends_on == ("rank8.train",)
    assert all(job.workdir.is_relative_to(plan.experiment.directory) for job in plan.jobs)


def test_design_is_deterministic(plugin_manager, fake_tools, make_experiment):
    path = make_experiment({"variables": {"lr": [3e-4, 1e-4], "seed": [2, 1]}})
    first = design(plugin_manager, path)
    second = design(plugin_manager, path)
    assert [u.id for u in first.units] == [u.id for u in second.units]
    assert [r.name for r in first.experiment.runs][:2] == [
        "rank4_lr3e-4_seed2",
        "rank4_lr3e-4_seed1",
    ]


def test_local_scheduler_claims_and_checks_jobs(plugin_manager, fake_tools, make_experiment):
    good = check(plugin_manager, make_experiment({"scheduler": {"name": "local", "jobs": 2}}))
    assert good.ok, good.problems
    bad = check(plugin_manager, make_experiment({"scheduler": {"jobs": 0, "job": 1}}))
    messages = {p.where.path: (p.message, p.hint) for p in bad.errors}
    assert messages["scheduler.jobs"][0].startswith("jobs must be a whole number")
    assert "did you mean jobs" in messages["scheduler.job"][1]
