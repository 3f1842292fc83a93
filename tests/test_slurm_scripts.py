"""Batch scripts to read before submitting: ``cruijff scaffold`` writes the SLURM scripts that
``cruijff run`` submits (arrays included), and run submits exactly those files, edited or not,
choosing array members with ``--array=``. Against a fake SLURM; the real one is in
test_slurm_cluster.py."""

from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path

import pytest

from cruijff.errors import UserError
from cruijff.records import JobSpec, Resources
from cruijff.scheduler import LinkSpec, WritesScripts, scheduler_files
from cruijff.state import ExperimentState
from cruijff_slurm import plugin
from cruijff_slurm.profile import Profile, profiles_dir
from cruijff_slurm.scheduler import SlurmScheduler
from cruijff_slurm.scripts import EditedScript
from cruijff_slurm.testing import FakeSlurm

TRAINS = "slurm/rank4.train+2.slurm"  # rank4.train, rank8.train and base.eval.caps: one array
EVALS = "slurm/eval.caps.e1.slurm"


@pytest.fixture
def fake(monkeypatch, register_plugin) -> FakeSlurm:
    """The slurm plugin, registered, building its scheduler over a fake SLURM, with a profile."""
    slurm = FakeSlurm()
    monkeypatch.setattr(
        plugin,
        "factory",
        lambda e, o: SlurmScheduler(o, e.state_dir, paths=e.resolve, file=e.file, commands=slurm),
    )
    register_plugin(plugin, name="slurm")
    profiles_dir().mkdir(parents=True)
    (profiles_dir() / "default.yaml").write_text("poll_interval: 0\narray_throttle: 4\n")
    return slurm


@pytest.fixture
def path(fake, fake_tools, make_experiment) -> Path:
    return make_experiment({"scheduler": {"name": "slurm"}})


def sbatch_paths(fake: FakeSlurm) -> list[Path]:
    return [Path(call[-1]) for call in fake.named("sbatch")]


def option(call: tuple[str, ...], name: str) -> str | None:
    found = [arg.partition("=")[2] for arg in call if arg.startswith(f"--{name}=")]
    return found[-1] if found else None


def test_scaffold_writes_each_runs_script_before_anything_is_submitted(cli, fake, path, tmp_path):
    result = cli("scaffold", path)
    assert result.exit_code == 0, result.output
    assert fake.calls == []  # nothing submitted, nothing asked
    trains = tmp_path / TRAINS
    for run in ("rank4", "rank8"):
        own = tmp_path / run / "train" / "finetune.slurm"
        assert own.is_symlink() and own.resolve() == trains.resolve()  # the array's, not a copy
        assert not Path(own.readlink()).is_absolute()
    assert (tmp_path / "rank4" / "eval" / "caps_e1" / "job.slurm").resolve() == (
        tmp_path / EVALS
    ).resolve()
    text = trains.read_text()
    assert text.startswith("#!/bin/bash\n# Written by `cruijff scaffold`.")
    assert "# cruijff task 0: rank4.train\n# cruijff task 1: rank8.train\n" in text
    assert "# cruijff task 2: base.eval.caps\n" in text and "#SBATCH --array=0-2%4\n" in text
    scripts = sorted(tmp_path.rglob("*.slurm"))
    assert len(scripts) == 7
    for script in scripts:
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0, script
    again = cli("scaffold", path, "--json")
    assert json.loads(again.output)["written"] == []  # a second scaffold writes nothing


def test_scaffold_dry_run_names_the_scripts_and_writes_none(cli, fake, path, tmp_path):
    result = cli("scaffold", path, "--dry-run")
    assert f"would write {TRAINS}\n" in result.output
    assert "would write rank4/train/finetune.slurm\n" in result.output
    assert not (tmp_path / "slurm").exists() and fake.calls == []


def test_run_submits_those_very_files(cli, fake, path, tmp_path):
    cli("scaffold", path)
    texts = {p: (tmp_path / p).read_text() for p in (TRAINS, EVALS)}
    result = cli("run", path, "--detach")
    assert result.exit_code == 0, result.output
    assert sbatch_paths(fake) == [(tmp_path / p).resolve() for p in (TRAINS, EVALS)]
    assert fake.scripts == list(texts.values())  # as scaffold wrote them, not rendered again
    trains, evals = fake.named("sbatch")
    assert option(trains, "array") == "0-2%4" and option(evals, "array") == "0-1%4"
    assert option(evals, "dependency") == "aftercorr:100"
    # --chdir on the command line: the call's folder, by which a queued job is found again
    calls = tmp_path / ".cruijff" / "slurm" / "jobs"
    assert Path(option(trains, "chdir")).parent == calls
    assert fake.jobs["100_1"].workdir == option(trains, "chdir")
    tasks = json.loads((Path(option(trains, "chdir")) / "tasks.json").read_text())
    assert tasks["script"] == str((tmp_path / TRAINS).resolve())
    assert (Path(option(trains, "chdir")) / "job.sh").read_text() == texts[TRAINS]
    assert "edited" not in result.output


def test_run_without_scaffold_writes_the_scripts_first(cli, fake, path, tmp_path):
    assert cli("run", path, "--detach").exit_code == 0
    assert (tmp_path / "rank8" / "train" / "finetune.slurm").resolve() == (
        tmp_path / TRAINS
    ).resolve()
    assert sbatch_paths(fake)[0] == (tmp_path / TRAINS).resolve()


def test_an_edited_script_is_kept_and_submitted_as_edited(cli, fake, path, tmp_path):
    cli("scaffold", path)
    own = tmp_path / "rank4" / "train" / "finetune.slurm"
    edited = own.read_text().replace("\ncase ", "\nmodule load cuda/12.4\n\ncase ", 1)
    own.write_text(edited)  # through the link: the array's script
    assert own.is_symlink()
    result = cli("scaffold", path)
    assert f"kept {TRAINS}: edited since it was generated" in result.output
    assert "1 kept" in result.output and (tmp_path / TRAINS).read_text() == edited
    run = cli("run", path, "--detach")
    assert run.exit_code == 0, run.output
    assert f"submitting {TRAINS} as you edited it" in run.output
    assert fake.scripts[0] == edited and sbatch_paths(fake)[0] == (tmp_path / TRAINS).resolve()
    events = [e for e in ExperimentState(tmp_path / ".cruijff").events() if "edited" in e["event"]]
    assert [e["units"] for e in events] == [["rank4.train", "rank8.train", "base.eval.caps"]]
    forced = cli("scaffold", path, "--force")
    assert f"wrote {TRAINS}\n" in forced.output
    assert "module load" not in (tmp_path / TRAINS).read_text()


def test_a_run_whose_link_is_replaced_by_a_file_runs_from_that_file(cli, fake, path, tmp_path):
    cli("scaffold", path)
    own = tmp_path / "rank8" / "train" / "finetune.slurm"
    text = own.read_text().replace("\ncase ", "\nexport ONLY_RANK8=1\n\ncase ", 1)
    own.unlink()
    own.write_text(text)
    result = cli("scaffold", path)
    assert "kept rank8/train/finetune.slurm: edited" in result.output and not own.is_symlink()
    assert cli("run", path, "--detach").exit_code == 0
    calls = [
        (path, option(call, "array"), option(call, "dependency"))
        for path, call in zip(sbatch_paths(fake), fake.named("sbatch"), strict=True)
    ]
    trains, evals = (tmp_path / TRAINS).resolve(), (tmp_path / EVALS).resolve()
    assert calls == [
        (trains, "0,2%4", None),  # the others, from the array's script
        (own.resolve(), "1%4", None),  # rank8's task, from its own file
        (evals, "0%4", "aftercorr:100"),  # each evaluation waits for its own training
        (evals, "1%4", "aftercorr:101"),
    ]


def test_a_retry_of_one_failed_array_member_submits_the_same_file(cli, fake, path, tmp_path):
    assert cli("run", path, "--detach").exit_code == 0
    # rank8's training failed; everything else succeeded and left its outputs
    for epoch in (0, 1):
        (tmp_path / "rank4" / "train" / f"epoch_{epoch}").mkdir(parents=True)
        (tmp_path / "rank4" / "train" / f"epoch_{epoch}" / "model.json").write_text("{}")
    for folder in ("base/eval/caps", "rank4/eval/caps_e1"):
        (tmp_path / folder / "results.json").write_text('{"metrics": {"accuracy": 1.0}}')
    for job_id in ("100_0", "100_2", "101_0"):
        fake.set(job_id, "COMPLETED")
    fake.set("100_1", "FAILED", exit_code="1:0")
    fake.set("101_1", "FAILED", exit_code="1:0")
    assert cli("run", path, "--detach").exit_code == 0
    train, evaluation = fake.named("sbatch")[2:]
    assert sbatch_paths(fake)[2:] == [(tmp_path / p).resolve() for p in (TRAINS, EVALS)]
    assert option(train, "array") == "1%4" and option(train, "time") is None
    assert option(evaluation, "array") == "1%4"
    assert option(evaluation, "dependency") == "aftercorr:102"
    # --retry-failed: the fake trainer asks for twice the time; the same file, given more
    fake.set("102_1", "FAILED", exit_code="1:0")
    fake.set("103_1", "FAILED", exit_code="1:0")
    assert cli("run", path, "--detach", "--retry-failed").exit_code == 0
    train = fake.named("sbatch")[4]
    assert sbatch_paths(fake)[4] == (tmp_path / TRAINS).resolve()
    assert option(train, "array") == "1%4" and option(train, "time") == "00:20:00"


# --- the scheduler itself ---------------------------------------------------------------------


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


def scaffolded(tmp_path, jobs, fake=None) -> SlurmScheduler:
    """A scheduler whose scripts for ``jobs`` are written as scaffold writes them."""
    scheduler = SlurmScheduler(
        {}, tmp_path / ".cruijff", commands=fake or FakeSlurm(), profile=Profile(poll_interval=0)
    )
    assert isinstance(scheduler, WritesScripts)
    for spec in scheduler_files(scheduler, jobs):
        spec.path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(spec, LinkSpec):
            spec.path.symlink_to(spec.target)
        else:
            spec.path.write_text(spec.content)
    return scheduler


def test_the_scripts_are_the_same_every_time_and_named_after_what_jobs_make(tmp_path):
    scheduler = SlurmScheduler({}, tmp_path / ".cruijff", profile=Profile(poll_interval=0))
    jobs = [job(tmp_path, "solo", resources=Resources(gpus=1))]
    assert scheduler.scripts(jobs) == scheduler.scripts(jobs)
    files = {spec.path.relative_to(tmp_path) for spec in scheduler.scripts(jobs)}
    assert files == {Path("solo/job.slurm"), Path(".cruijff/slurm/scripts.json")}  # no array


def test_a_job_changed_since_scaffold_runs_from_a_script_rendered_for_it(tmp_path):
    fake = FakeSlurm()
    jobs = [job(tmp_path, "a"), job(tmp_path, "b")]
    scheduler = scaffolded(tmp_path, jobs, fake)
    script = tmp_path / "slurm" / "a+1.slurm"
    script.write_text(script.read_text().replace("\ncase ", "\n# mine\ncase ", 1))
    changed = job(tmp_path, "b", argv=("echo", "b", "batch_size=2"))  # a retry's new command
    with pytest.warns(EditedScript, match="b changed since it was scaffolded"):
        scheduler.submit([changed], {})
    (submitted,) = sbatch_paths(fake)
    assert submitted.name == "job.sh" and submitted.parent.parent == scheduler.jobs_dir
    assert "batch_size=2" in fake.scripts[0] and "# mine" not in fake.scripts[0]


def test_an_edited_script_that_no_longer_says_its_tasks_submits_nothing(tmp_path):
    fake = FakeSlurm()
    jobs = [job(tmp_path, "a"), job(tmp_path, "b")]
    scheduler = scaffolded(tmp_path, jobs, fake)
    script = tmp_path / "slurm" / "a+1.slurm"
    script.write_text(script.read_text().replace("# cruijff task 1: b\n", ""))
    with warnings.catch_warnings(), pytest.raises(UserError, match="no longer says it runs b"):
        warnings.simplefilter("ignore")
        scheduler.submit(jobs, {})
    assert fake.named("sbatch") == []


@pytest.mark.parametrize(
    "damage",
    [
        lambda entry: entry.pop("file"),
        lambda entry: entry.pop("text"),
        lambda entry: entry.pop("job"),
        lambda entry: entry.pop("index"),
        lambda entry: entry.pop("time"),
        lambda entry: entry.update(index="0"),
        lambda entry: entry.update(file=None),
        lambda entry: entry.clear(),
    ],
    ids=["no file", "no text", "no job", "no index", "no time", "index text", "file null", "{}"],
)
def test_a_damaged_scripts_record_means_no_scaffolded_script(tmp_path, damage):
    fake = FakeSlurm()
    jobs = [job(tmp_path, "a"), job(tmp_path, "b")]
    scheduler = scaffolded(tmp_path, jobs, fake)
    layout = tmp_path / ".cruijff" / "slurm" / "scripts.json"
    data = json.loads(layout.read_text())
    damage(data["units"]["a"])
    layout.write_text(json.dumps(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing edited: nothing to say
        scheduler.submit(jobs, {})
    submitted = sbatch_paths(fake)
    assert (tmp_path / "slurm" / "a+1.slurm").resolve() in submitted  # b, from its script
    assert any(path.name == "job.sh" for path in submitted)  # a, rendered anew
    assert len(fake.scripts) == 2


def test_a_scripts_record_without_units_renders_every_script(tmp_path):
    fake = FakeSlurm()
    jobs = [job(tmp_path, "a")]
    scheduler = scaffolded(tmp_path, jobs, fake)
    (tmp_path / ".cruijff" / "slurm" / "scripts.json").write_text('{"units": ["a"]}')
    scheduler.submit(jobs, {})
    (submitted,) = sbatch_paths(fake)
    assert submitted.name == "job.sh"
