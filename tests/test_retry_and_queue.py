"""The general retry policy, and schedulers whose queue takes only part of a batch."""

from __future__ import annotations

import attrs

from cruijff import hookimpl
from cruijff.local.scheduler import LocalScheduler
from cruijff.orchestrator import run_experiment
from cruijff.records import JobSpec, JobState, JobStatus, Resources, SchedulerInfo
from cruijff.retry import default_retry
from cruijff.runner import RunOptions
from cruijff.state import ExperimentState

JOB = JobSpec(
    unit_id="u",
    name="u",
    argv=("true",),
    workdir="/tmp",
    log="/tmp/u.log",
    resources=Resources(mem_mb=1000, time_s=600),
)


def test_timeout_gets_twice_the_time():
    retried = default_retry(JOB, JobStatus(state=JobState.TIMEOUT))
    assert retried.resources.time_s == 1200 and retried.resources.mem_mb == 1000


def test_out_of_memory_gets_twice_the_memory():
    retried = default_retry(JOB, JobStatus(state=JobState.OUT_OF_MEMORY))
    assert retried.resources.mem_mb == 2000 and retried.resources.time_s == 600


def test_other_failures_are_retried_unchanged():
    assert default_retry(JOB, JobStatus(state=JobState.FAILED, exit_code=1)) is JOB
    no_limit = attrs.evolve(JOB, resources=Resources())
    assert default_retry(no_limit, JobStatus(state=JobState.TIMEOUT)) is no_limit


class Limited(LocalScheduler):
    """The local scheduler with a queue that holds at most LIMIT unfinished jobs."""

    LIMIT = 2
    most = 0

    def __init__(self, options, state_dir):
        super().__init__(options, state_dir)
        self.mine: list = []

    def submit(self, jobs, handles):
        statuses = self.poll(self.mine) if self.mine else {}
        queued = sum(1 for status in statuses.values() if not status.state.finished)
        room = max(0, self.LIMIT - queued)
        taken = super().submit(list(jobs)[:room], handles) if room else []
        self.mine += taken
        Limited.most = max(Limited.most, queued + len(taken))
        return taken


class LimitedPlugin:
    @hookimpl
    def cruijff_schedulers(self):
        yield SchedulerInfo(name="limited", factory=lambda e, o: Limited(o, e.state_dir))


def test_a_full_queue_gets_the_rest_as_room_frees_up(plugin_manager, fake_tools, make_experiment):
    plugin_manager.register(LimitedPlugin(), name="limited")
    path = make_experiment()
    options = RunOptions(jobs=2, poll_interval=0.05, max_interval=0.2)
    result = run_experiment(plugin_manager, path, options, scheduler="limited")
    assert {r.state for r in result.records.values()} == {JobState.SUCCEEDED}
    assert len(result.records) == 5
    assert Limited.most == Limited.LIMIT  # the queue was full, and never more than full
    events = ExperimentState(result.plan.experiment.state_dir).events()
    assert any(event["event"] == "queue-full" for event in events)
