"""Every shipped plugin against the contract suites of cruijff.testing.contract: the same
promises a third-party tool or scheduler proves of itself."""

from __future__ import annotations

import json
import os

import pytest
from test_torchtune_config import LLAMA

from cruijff.local.scheduler import LocalScheduler
from cruijff.orchestrator import run_experiment, status
from cruijff.records import JobState
from cruijff.runner import RunOptions
from cruijff.testing import fake
from cruijff.testing.contract import SchedulerContract, ToolContract
from cruijff.testing.inprocess import InProcessScheduler


class TestFakeTrainer(ToolContract):
    tool = fake.TRAIN

    @pytest.fixture
    def contract_manager(self, plugin_manager, fake_tools):
        return plugin_manager

    @pytest.fixture
    def contract_experiment(self, make_experiment):
        return make_experiment()


class TestFakeEvaluator(TestFakeTrainer):
    tool = fake.EVAL


class TestTorchtune(ToolContract):
    tool = "torchtune"

    @pytest.fixture
    def contract_manager(self, plugin_manager, register_plugin):
        from cruijff_torchtune import plugin

        register_plugin(plugin, name="torchtune")
        return plugin_manager

    @pytest.fixture
    def contract_experiment(self, make_experiment, tmp_path):
        path = make_experiment(
            {
                "tools": {"preparation": "torchtune", "evaluation": None},
                "evaluation": None,
                "controls": {"dataset_type": "chat_completion"},
            }
        )
        model = tmp_path / "models" / "tiny"
        (model / "config.json").write_text(json.dumps(LLAMA))
        (model / "model.safetensors").write_bytes(b"")
        return path


class TestTRL(TestTorchtune):
    tool = "trl"

    @pytest.fixture
    def contract_manager(self, plugin_manager, register_plugin):
        from cruijff_trl import plugin

        register_plugin(plugin, name="trl")
        return plugin_manager

    @pytest.fixture
    def contract_experiment(self, make_experiment, tmp_path):
        path = make_experiment(
            {
                "tools": {"preparation": "trl", "evaluation": None},
                "evaluation": None,
                "controls": {"dataset_type": "chat_completion"},
            }
        )
        model = tmp_path / "models" / "tiny"
        (model / "config.json").write_text(json.dumps(LLAMA))
        (model / "model.safetensors").write_bytes(b"")
        return path


class TestInspect(ToolContract):
    tool = "inspect"

    @pytest.fixture
    def contract_manager(self, plugin_manager, register_plugin, fake_tools):
        from cruijff_inspect import plugin

        register_plugin(plugin, name="inspect")
        return plugin_manager

    @pytest.fixture
    def contract_experiment(self, make_experiment):
        from inspect_helpers import inspect_changes

        return make_experiment(inspect_changes())


class TestLocalScheduler(SchedulerContract):
    timeout = 30.0

    @pytest.fixture
    def contract_scheduler(self, tmp_path):
        scheduler = LocalScheduler({"jobs": 2}, tmp_path / ".cruijff")
        yield scheduler
        jobs = tmp_path / ".cruijff" / "local" / "jobs"
        if jobs.is_dir():  # leave nothing running behind a failed test
            from cruijff.records import JobHandle

            scheduler.cancel([JobHandle(scheduler="local", id=n) for n in os.listdir(jobs)])


class TestInProcessScheduler(SchedulerContract):
    timeout = 30.0

    @pytest.fixture
    def contract_scheduler(self, tmp_path):
        return InProcessScheduler({}, tmp_path / ".cruijff")

    def test_cancel_stops_a_running_job_and_one_waiting_for_it(self, contract_scheduler, tmp_path):
        # Jobs run only inside resume, one after another: a cancel finds them all waiting.
        long = self.job(tmp_path, "long", "touch ran")
        waiting = self.job(tmp_path, "waiting", "touch ran", "long")
        handles = contract_scheduler.submit([long, waiting], {})
        contract_scheduler.cancel(handles)
        statuses = self.wait(contract_scheduler, handles)
        assert {s.state for s in statuses.values()} == {JobState.CANCELLED}
        assert not any((tmp_path / unit / "ran").exists() for unit in ("long", "waiting"))


def test_the_loop_runs_in_process(plugin_manager, fake_tools, cruijff_inprocess, make_experiment):
    path = make_experiment()
    options = RunOptions(poll_interval=0.01, max_interval=0.05)
    result = run_experiment(plugin_manager, path, options, scheduler=cruijff_inprocess)
    assert {r.state for r in result.records.values()} == {JobState.SUCCEEDED}
    assert len(result.records) == 5
    assert not (path.parent / ".cruijff" / "local").exists()  # no executor was ever involved
    now = status(plugin_manager, path, scheduler=cruijff_inprocess).records
    assert all(r.state is JobState.SUCCEEDED for r in now.values())
