"""The SLURM scheduler against a fake SLURM: the calls it makes, and what it makes of the
answers. The real cluster is in test_slurm_cluster.py."""

from __future__ import annotations

import pytest

from cruijff.errors import UserError
from cruijff.records import JobHandle, JobSpec, JobState, Resources
from cruijff.state import ExperimentState
from cruijff_slurm import plugin
from cruijff_slurm.profile import Profile
from cruijff_slurm.scheduler import SlurmScheduler
from cruijff_slurm.testing import FakeSlurm


def make(tmp_path, fake=None, **profile) -> SlurmScheduler:
    return SlurmScheduler(
        {},
        tmp_path / ".cruijff",
        commands=fake or FakeSlurm(),
        profile=Profile(poll_interval=0, **profile),
    )


def job(tmp_path, unit: str, *deps: str, **changes) -> JobSpec:
    fields = {
        "unit_id": unit,
        "name": f"demo.{unit}",
        "argv": ("echo", unit),
        "workdir": tmp_path / unit,
        "log": tmp_path / unit / "job.log",
        "depends_on": deps,
        "resources": Resources(time_s=600),
    }
    return JobSpec(**{**fields, **changes})


def batch(tmp_path, runs: int) -> list[JobSpec]:
    trains = [job(tmp_path, f"r{i}.train") for i in range(runs)]
    return trains + [job(tmp_path, f"r{i}.eval", f"r{i}.train") for i in range(runs)]


def test_submit_writes_scripts_and_calls_sbatch_without_a_shell(tmp_path):
    fake = FakeSlurm()
    scheduler = make(tmp_path, fake, array_throttle=2)
    handles = scheduler.submit(batch(tmp_path, 3), {})
    assert [h.id for h in handles] == ["100_0", "100_1", "100_2", "101_0", "101_1", "101_2"]
    assert [h.name for h in handles][:1] == ["demo.r0.train"]
    first, second = fake.named("sbatch")
    assert first[:2] == ("sbatch", "--parsable") and len(first) == 3
    assert second[2] == "--dependency=aftercorr:100"
    assert "#SBATCH --array=0-2%2\n" in fake.scripts[0]
    folder = scheduler.jobs_dir
    assert len(list(folder.iterdir())) == 2
    for n in range(3):  # logs' folders exist before submission; array logs link to them
        link = next(folder.glob("r0.train+2.*")) / f"{n}.log"
        assert link.is_symlink() and link.resolve() == (tmp_path / f"r{n}.train" / "job.log")
        assert (tmp_path / f"r{n}.train").is_dir()


def test_a_dependency_on_an_earlier_submission(tmp_path):
    fake = FakeSlurm()
    scheduler = make(tmp_path, fake)
    earlier = {"r0.train": JobHandle(scheduler="slurm", id="42", name="demo.r0.train")}
    scheduler.submit([job(tmp_path, "r0.eval", "r0.train")], earlier)
    assert fake.named("sbatch")[0][2] == "--dependency=afterok:42"


def test_the_queue_limit_takes_only_the_first_jobs_that_fit(tmp_path):
    fake = FakeSlurm()
    fake.set("90", "RUNNING", workdir="/elsewhere")  # another experiment's job: not counted
    scheduler = make(tmp_path, fake, max_jobs=4)
    jobs = batch(tmp_path, 3)
    handles = scheduler.submit(jobs, {})
    assert [h.name for h in handles] == [f"demo.{job.unit_id}" for job in jobs[:4]]
    earlier = {job.unit_id: h for job, h in zip(jobs, handles, strict=False)}
    assert scheduler.submit(jobs[4:], earlier) == []  # full: four of its jobs wait
    for handle in handles[:2]:
        fake.set(handle.id, "COMPLETED")
    assert len(scheduler.submit(jobs[4:], earlier)) == 2


def test_sbatch_errors_name_the_job_and_say_slurms_words(tmp_path):
    fake = FakeSlurm()
    fake.refuse = "Batch job submission failed: Invalid partition name specified"
    scheduler = make(tmp_path, fake, partition="gpu-typo")
    with pytest.raises(UserError) as error:
        scheduler.submit([job(tmp_path, "r0.train")], {})
    assert error.value.message == (
        "sbatch refused job r0.train: sbatch: error: Batch job submission failed: "
        "Invalid partition name specified"
    )
    assert "check `partition`" in error.value.hint


def test_a_value_that_cannot_be_written_submits_nothing(tmp_path):
    fake = FakeSlurm()
    # "b" needs a call of its own (a GPU), after "a" and "c"'s array: it still stops them all
    bad = job(tmp_path, "b", name="two\nlines", resources=Resources(gpus=1))
    jobs = [job(tmp_path, "a"), job(tmp_path, "c"), bad]
    with pytest.raises(UserError, match="job b: cannot write"):
        make(tmp_path, fake).submit(jobs, {})
    assert fake.named("sbatch") == []


def test_one_poll_of_a_thousand_jobs_is_one_squeue_and_at_most_one_sacct(tmp_path):
    fake = FakeSlurm()
    scheduler = make(tmp_path, fake, max_array_size=1000)
    handles = scheduler.submit(batch(tmp_path, 500), {})
    fake.calls.clear()
    statuses = scheduler.poll(handles)
    assert [call[0] for call in fake.calls] == ["squeue"]  # all pending: no need for sacct
    assert {s.state for s in statuses.values()} == {JobState.PENDING}
    for n, handle in enumerate(handles):
        fake.set(
            handle.id,
            "COMPLETED" if n % 2 else "FAILED",
            exit_code="0:0" if n % 2 else "2:0",
            in_queue=n % 3 == 0,
        )
    fake.calls.clear()
    statuses = scheduler.poll(handles)
    assert [call[0] for call in fake.calls] == ["squeue", "sacct"]
    assert sum(s.state is JobState.SUCCEEDED for s in statuses.values()) == 500
    assert {s.exit_code for s in statuses.values() if s.state is JobState.FAILED} == {2}


def test_poll_reads_the_cause_from_the_log(tmp_path):
    fake = FakeSlurm()
    scheduler = make(tmp_path, fake)
    (handle,) = scheduler.submit([job(tmp_path, "r0.train")], {})
    (tmp_path / "r0.train" / "job.log").write_text(
        "step 9\ntorch.OutOfMemoryError: CUDA out of memory.\n"
    )
    fake.set(handle.id, "FAILED", exit_code="1:0")
    status = scheduler.poll([handle])[handle]
    assert status.state is JobState.OUT_OF_MEMORY and "CUDA out of memory" in status.cause


def test_without_accounting_poll_falls_back_to_scontrol_once_and_for_all(tmp_path):
    fake = FakeSlurm(accounting=False)
    scheduler = make(tmp_path, fake)
    handles = scheduler.submit(batch(tmp_path, 2), {})
    for handle in handles:
        fake.set(handle.id, "FAILED", exit_code="4:0")
    statuses = scheduler.poll(handles)
    assert [call[0] for call in fake.calls[-3:]] == ["squeue", "sacct", "scontrol"]
    assert {(s.state, s.exit_code) for s in statuses.values()} == {(JobState.FAILED, 4)}
    fake.calls.clear()
    scheduler.poll(handles)
    assert [call[0] for call in fake.calls] == ["squeue", "scontrol"]


def test_a_job_gone_from_squeue_and_not_yet_final_in_sacct_is_still_running(tmp_path):
    fake = FakeSlurm()
    scheduler = make(tmp_path, fake)
    (handle,) = scheduler.submit([job(tmp_path, "a")], {})
    fake.set(handle.id, "RUNNING", in_queue=False)
    assert scheduler.poll([handle])[handle].state is JobState.RUNNING
    fake.set(handle.id, "COMPLETED", in_queue=False, in_accounting=False)
    assert scheduler.poll([handle])[handle].state is JobState.UNKNOWN


def test_squeue_failing_makes_states_unknown_not_an_error(tmp_path):
    class Broken(FakeSlurm):
        def _squeue(self, argv):
            from cruijff_slurm.commands import Result

            return Result(argv, 1, "", "squeue: error: Unable to contact slurm controller\n")

    scheduler = make(tmp_path, Broken())
    handle = JobHandle(scheduler="slurm", id="5")
    status = scheduler.poll([handle])[handle]
    assert status.state is JobState.UNKNOWN and "Unable to contact" in status.cause


def test_poll_interval_spares_the_controller(tmp_path):
    fake = FakeSlurm()
    scheduler = SlurmScheduler({}, tmp_path, commands=fake, profile=Profile(poll_interval=60))
    handles = scheduler.submit([job(tmp_path, "a")], {})
    scheduler.poll(handles)
    count = len(fake.calls)
    scheduler.poll(handles)
    assert len(fake.calls) == count


def test_find_recognises_jobs_by_their_call_folder_newest_first(tmp_path):
    fake = FakeSlurm()
    scheduler = make(tmp_path, fake)
    scheduler.submit(batch(tmp_path, 2), {})
    again = scheduler.submit([job(tmp_path, "r1.train")], {})  # a later attempt of r1.train
    fake.set("999", "RUNNING", workdir=str(tmp_path / "elsewhere"), name="demo.r0.train")
    fake.calls.clear()
    found = scheduler.find(["demo.r0.train", "demo.r1.train", "demo.r1.eval", "demo.never"])
    assert {name: h.id for name, h in found.items()} == {
        "demo.r0.train": "100_0",
        "demo.r1.train": again[0].id,
        "demo.r1.eval": "101_1",
    }
    assert [call[0] for call in fake.calls] == ["squeue"]  # squeue knew them all
    for key in fake.jobs:
        fake.jobs[key].in_queue = False
    fake.calls.clear()
    assert scheduler.find(["demo.r0.train"])["demo.r0.train"].id == "100_0"
    assert [call[0] for call in fake.calls] == ["squeue", "sacct"]
    fake.calls.clear()
    assert make(tmp_path, fake).find(["demo.never"]) == {}
    assert fake.calls == []  # never submitted: nothing to ask


def test_a_submission_that_never_reached_slurm_is_not_found(tmp_path):
    class Dies(FakeSlurm):
        def _sbatch(self, argv):
            raise KeyboardInterrupt  # killed while sbatch ran, before it submitted

    scheduler = make(tmp_path, Dies())
    with pytest.raises(KeyboardInterrupt):
        scheduler.submit([job(tmp_path, "a")], {})
    assert scheduler.find(["demo.a"]) == {}


def test_cancel_is_one_scancel_for_every_job(tmp_path):
    fake = FakeSlurm()
    scheduler = make(tmp_path, fake)
    handles = scheduler.submit(batch(tmp_path, 50), {})
    fake.calls.clear()
    scheduler.cancel(handles)
    assert len(fake.named("scancel")) == 1 and len(fake.cancelled) == 100
    assert {s.state for s in scheduler.poll(handles).values()} == {JobState.CANCELLED}


def test_preview_shows_the_scripts_without_submitting(tmp_path):
    fake = FakeSlurm()
    files = make(tmp_path, fake).preview(batch(tmp_path, 3))
    assert len(files) == 2 and all(f.path.name == "job.sh" and f.executable for f in files)
    assert "#SBATCH --array=0-2\n" in files[1].content
    assert fake.calls == [] and not (tmp_path / ".cruijff").exists()


# --- a lookup SLURM does not answer -----------------------------------------------------------


@pytest.mark.parametrize("broken", ["squeue", "sacct"])
def test_find_is_an_error_when_slurm_does_not_answer(tmp_path, broken):
    fake = FakeSlurm()
    scheduler = make(tmp_path, fake)
    handles = scheduler.submit(batch(tmp_path, 2), {})
    for key in fake.jobs:  # finished and aged out of squeue: only sacct still knows them
        fake.jobs[key].in_queue = False
    fake.fail(broken)
    names = [h.name for h in handles]
    fake.calls.clear()
    with pytest.raises(UserError) as error:
        scheduler.find(names)
    assert fake.named("sbatch") == []
    assert error.value.message == (
        f"SLURM did not answer ({broken}: error: Unable to contact slurm controller "
        "(connect failure)); nothing was submitted, and the records of the 4 jobs whose "
        "submission was interrupted are kept"
    )
    assert error.value.hint.startswith("run the command again in a moment")
    fake.fail(broken, 0)  # SLURM is back
    assert {n: h.id for n, h in scheduler.find(names).items()} == {h.name: h.id for h in handles}


def test_find_does_not_need_sacct_when_squeue_knew_every_job(tmp_path):
    fake = FakeSlurm()
    scheduler = make(tmp_path, fake)
    (handle,) = scheduler.submit([job(tmp_path, "a")], {})
    fake.fail("sacct")
    assert scheduler.find(["demo.a"]) == {"demo.a": handle}
    assert fake.named("sacct") == []


def test_find_without_accounting_trusts_squeue_but_not_its_silence(tmp_path):
    fake = FakeSlurm(accounting=False)
    scheduler = make(tmp_path, fake)
    single = job(tmp_path, "b", resources=Resources(cpus=2))  # a call of its own
    gone, queued = scheduler.submit([job(tmp_path, "a"), single], {})
    fake.jobs[gone.id].in_queue = False  # the controller forgot it; no accounting remembers
    assert scheduler.find(["demo.a", "demo.b"]) == {"demo.b": queued}
    assert scheduler.accounting is False
    fake.calls.clear()
    assert scheduler.find(["demo.a", "demo.b"]) == {"demo.b": queued}
    assert [call[0] for call in fake.calls] == ["squeue"]  # sacct is not asked again
    fake.fail("squeue")  # squeue alone failing is enough to stop
    with pytest.raises(UserError, match="SLURM did not answer"):
        scheduler.find(["demo.a", "demo.b"])


def test_a_query_is_retried_when_slurm_is_briefly_unreachable(tmp_path):
    fake = FakeSlurm(retries=(0, 0))
    scheduler = make(tmp_path, fake)
    (handle,) = scheduler.submit([job(tmp_path, "a")], {})
    fake.fail("squeue", 2)
    assert scheduler.find(["demo.a"]) == {"demo.a": handle}
    assert len(fake.named("squeue")) == 3
    fake.fail("squeue", 3)
    with pytest.raises(UserError, match="SLURM did not answer"):
        scheduler.find(["demo.a"])


class KilledAtSecondSbatch(FakeSlurm):
    """`cruijff run` killed while its second sbatch runs, before SLURM took that call."""

    kill = True

    def _sbatch(self, argv):
        if self.kill and len(self.named("sbatch")) == 2:
            raise KeyboardInterrupt
        return super()._sbatch(argv)


def test_a_run_after_a_kill_submits_nothing_until_slurm_answers(
    cli, fake_tools, register_plugin, make_experiment, monkeypatch, tmp_path
):
    fake = KilledAtSecondSbatch()
    monkeypatch.setattr(
        plugin, "factory", lambda e, o: SlurmScheduler(o, e.state_dir, commands=fake)
    )
    register_plugin(plugin, name="slurm")
    path = make_experiment({"scheduler": {"name": "slurm"}})
    state = ExperimentState(tmp_path / ".cruijff")
    assert cli("run", path).exit_code == 130  # killed: the trainings' array is queued
    assert len(fake.jobs) == 3
    assert all(r.submitting and r.handle is None for r in state.records().values())
    assert len(state.records()) == 5
    fake.kill = False

    # SLURM does not answer: an error, the records stay as they are, nothing is submitted
    fake.fail("squeue")
    fake.fail("sacct")
    for fixed in ("squeue", None):  # then squeue answers but sacct, still needed, does not
        if fixed:
            fake.fail(fixed, 0)
            for key in fake.jobs:
                fake.jobs[key].in_queue = False
        result = cli("run", path, "--detach")
        assert result.exit_code == 1
        assert "Error: SLURM did not answer" in result.output
        assert "records of the 5 jobs" in result.output and "Traceback" not in result.output
        assert all(r.submitting and r.handle is None for r in state.records().values())
        assert len(fake.named("sbatch")) == 2

    # SLURM answers: the queued array is recovered, only the call that never reached SLURM
    # is submitted, once
    fake.fail("sacct", 0)
    result = cli("run", path, "--detach")
    assert result.exit_code == 0, result.output
    assert len(fake.named("sbatch")) == 3 and len(fake.jobs) == 5
    records = state.records()
    assert sorted(r.handle.id for r in records.values()) == [
        "100_0", "100_1", "100_2", "101_0", "101_1"
    ]  # fmt: skip
    recovered = [e for e in state.events() if e["event"] == "recovered"]
    assert len([e for e in recovered if e["handle"]]) == 3

    # a poll SLURM does not answer leaves the jobs in flight (UNKNOWN), never "gone"
    fake.fail("squeue")
    assert cli("run", path, "--detach").exit_code == 0
    assert {r.state for r in state.records().values()} == {JobState.UNKNOWN}
    assert len(fake.named("sbatch")) == 3
    fake.fail("squeue", 0)
    for key in fake.jobs:
        fake.jobs[key].in_queue = True
    assert cli("run", path, "--detach").exit_code == 0
    assert {r.state for r in state.records().values()} == {JobState.PENDING}
    assert len(fake.named("sbatch")) == 3
