"""Contract suites: the promises every tool plugin and every scheduler plugin keeps, as test
classes a plugin's own test suite subclasses and runs against itself (like pytest's plugin
tests or Hydra's ``LauncherTestSuite``).

A tool plugin::

    from cruijff.testing.contract import ToolContract

    class TestMyTool(ToolContract):
        tool = "mytool"

        @pytest.fixture
        def contract_manager(self, cruijff_plugin_manager):
            cruijff_plugin_manager.register(my_plugin, name="mytool")
            return cruijff_plugin_manager

        @pytest.fixture
        def contract_experiment(self, cruijff_make_experiment):
            return cruijff_make_experiment({"tools": {"preparation": "mytool"}})

A scheduler plugin subclasses :class:`SchedulerContract` and gives ``contract_scheduler``
(built with a state folder under ``tmp_path``). Needs pytest; nothing else of cruijff's
tests.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from cruijff.design import check, design
from cruijff.records import JobHandle, JobSpec, JobState, JobStatus, Resources


class ToolContract:
    """What every tool plugin promises, for the units of ``tool`` in ``contract_experiment``
    (a valid experiment that uses it) under ``contract_manager`` (with the plugin, and any
    tool the experiment also needs, registered)."""

    tool: str = ""

    @pytest.fixture
    def contract_manager(self) -> Any:
        raise NotImplementedError("give the plugin manager with your plugin registered")

    @pytest.fixture
    def contract_experiment(self) -> Path:
        raise NotImplementedError("give the path of a valid experiment that uses your tool")

    def units(self, manager: Any, path: Path) -> tuple[Any, list[Any]]:
        plan = design(manager, path)
        mine = [unit for unit in plan.units if unit.tool == self.tool]
        assert mine, f"the experiment has no unit of tool {self.tool!r}"
        return plan, mine

    def test_parse_claims_every_key_of_a_valid_experiment(
        self, contract_manager: Any, contract_experiment: Path
    ) -> None:
        checked = check(contract_manager, contract_experiment)
        assert checked.ok, "\n".join(str(problem) for problem in checked.problems)

    def test_select_is_deterministic(self, contract_manager: Any, contract_experiment: Path):
        def shape(plan: Any) -> list[tuple[Any, ...]]:
            return [
                (u.id, u.run, u.kind, u.depends_on, u.produces)
                for u in plan.units
                if u.tool == self.tool
            ]

        first, _ = self.units(contract_manager, contract_experiment)
        second, _ = self.units(contract_manager, contract_experiment)
        assert shape(first) == shape(second)

    def test_generate_writes_only_inside_the_experiment_and_its_jobs_depend_on_units(
        self, contract_manager: Any, contract_experiment: Path
    ) -> None:
        plan, mine = self.units(contract_manager, contract_experiment)
        root = plan.experiment.directory.resolve()
        ids = {unit.id for unit in plan.units}
        for unit in mine:
            generated = plan.generated[unit.id]
            for spec in generated.files:
                assert spec.path.resolve().is_relative_to(root), f"{unit.id} writes {spec.path}"
            job = generated.job
            assert job.unit_id == unit.id and job.argv, f"{unit.id}: a job with a command"
            assert set(job.depends_on) <= ids, f"{unit.id} depends on units that do not exist"
            assert Path(job.workdir).resolve().is_relative_to(root)

    def test_validate_reports_a_missing_output_as_a_failure(
        self, contract_manager: Any, contract_experiment: Path
    ) -> None:
        plan, mine = self.units(contract_manager, contract_experiment)
        for unit in mine:  # nothing has run: every output is missing
            for status in (None, JobStatus(state=JobState.SUCCEEDED, exit_code=0)):
                validation = contract_manager.validate(plan.experiment, unit, status)
                assert not validation.ok, f"{unit.id} validated without its outputs"
                assert validation.cause, f"{unit.id}: a failed validation says why"


class SchedulerContract:
    """What every scheduler promises: submit, poll (read-only), resume, find and cancel, on
    small ``sh -c`` jobs. ``contract_scheduler`` is the scheduler under test; ``timeout`` how
    long a job may take to finish there."""

    timeout: float = 60.0

    @pytest.fixture
    def contract_scheduler(self) -> Any:
        raise NotImplementedError("give your scheduler, with its state folder under tmp_path")

    def job(self, folder: Path, unit: str, command: str, *depends_on: str) -> JobSpec:
        workdir = folder / unit
        workdir.mkdir(parents=True, exist_ok=True)
        return JobSpec(
            unit_id=unit,
            name=f"contract.{unit}",
            argv=("sh", "-c", command),
            workdir=workdir,
            log=workdir / "job.log",
            depends_on=depends_on,
            resources=Resources(time_s=300),
        )

    def wait(self, scheduler: Any, handles: Sequence[JobHandle]) -> dict[JobHandle, JobStatus]:
        """Drive the jobs as ``cruijff run`` does (resume, then poll) until all finished."""
        deadline = time.monotonic() + self.timeout
        while True:
            scheduler.resume(handles)
            statuses = scheduler.poll(handles)
            if all(status.state.finished for status in statuses.values()):
                return statuses
            assert time.monotonic() < deadline, f"jobs unfinished: {statuses}"
            time.sleep(0.2)

    def test_a_job_succeeds_and_one_fails_with_its_exit_code(
        self, contract_scheduler: Any, tmp_path: Path
    ) -> None:
        jobs = [
            self.job(tmp_path, "ok", "echo done > out"),
            self.job(tmp_path, "bad", "exit 3"),
        ]
        ok, bad = contract_scheduler.submit(jobs, {})
        assert (ok.name, bad.name) == ("contract.ok", "contract.bad")
        statuses = self.wait(contract_scheduler, [ok, bad])
        assert statuses[ok].state is JobState.SUCCEEDED
        assert (tmp_path / "ok" / "out").read_text() == "done\n"
        assert statuses[bad].state is JobState.FAILED and statuses[bad].exit_code == 3

    def test_a_dependent_waits_for_its_dependency_and_never_runs_after_a_failure(
        self, contract_scheduler: Any, tmp_path: Path
    ) -> None:
        first = self.job(tmp_path, "first", "sleep 1; echo 1 > out")
        after = self.job(tmp_path, "after", "cp ../first/out out", "first")
        broken = self.job(tmp_path, "broken", "exit 1")
        never = self.job(tmp_path, "never", "touch ran", "broken")
        handles = contract_scheduler.submit([first, after, broken, never], {})
        statuses = self.wait(contract_scheduler, handles)
        assert [statuses[h].state for h in handles] == [
            JobState.SUCCEEDED,
            JobState.SUCCEEDED,
            JobState.FAILED,
            JobState.DEPENDENCY_NEVER_SATISFIED,
        ]
        assert (tmp_path / "after" / "out").read_text() == "1\n"
        assert not (tmp_path / "never" / "ran").exists()

    def test_find_gives_the_submitted_jobs_by_name_and_nothing_else(
        self, contract_scheduler: Any, tmp_path: Path
    ) -> None:
        (handle,) = contract_scheduler.submit([self.job(tmp_path, "found", "true")], {})
        self.wait(contract_scheduler, [handle])
        assert contract_scheduler.find(["contract.found", "contract.nope"]) == {
            "contract.found": handle
        }

    def test_cancel_stops_a_running_job_and_one_waiting_for_it(
        self, contract_scheduler: Any, tmp_path: Path
    ) -> None:
        long = self.job(tmp_path, "long", "touch started; sleep 120; touch finished")
        waiting = self.job(tmp_path, "waiting", "touch ran", "long")
        handles = contract_scheduler.submit([long, waiting], {})
        deadline = time.monotonic() + self.timeout
        while not (tmp_path / "long" / "started").exists():
            assert time.monotonic() < deadline, "the long job never started"
            contract_scheduler.resume(handles)
            time.sleep(0.2)
        contract_scheduler.cancel(handles)
        statuses = self.wait(contract_scheduler, handles)
        assert statuses[handles[0]].state is JobState.CANCELLED
        assert statuses[handles[1]].state in (
            JobState.CANCELLED,
            JobState.DEPENDENCY_NEVER_SATISFIED,
        )
        assert not (tmp_path / "long" / "finished").exists()
        assert not (tmp_path / "waiting" / "ran").exists()
