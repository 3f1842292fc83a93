"""Batch scripts: what the template writes, and that no value can escape its quoting."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cruijff import logs
from cruijff.errors import UserError
from cruijff.records import JobSpec, Resources
from cruijff_slurm.arrays import plan_calls
from cruijff_slurm.profile import Profile, in_folder, resolve
from cruijff_slurm.render import (
    Renderer,
    array_spec,
    call_context,
    directive,
    quote,
    slurm_path,
    slurm_time,
)

NASTY = [
    "$(touch pwned)",
    "`touch pwned`",
    "a; touch pwned",
    'it\'s "quoted"',
    "back\\slash \\' \\\"",
    "# not a comment",
    "a && b || c | d > e < f",
    "${HOME} $HOME ~ * ? [a]",
    "tab\there",
    "100%j %a %%",
    "",
]


def sbatch_argument(line: str) -> str:
    """sbatch's own reading of one ``#SBATCH`` argument (src/sbatch/opt.c, _get_argument):
    quotes of either kind group, a backslash escapes the next character anywhere, an unquoted
    ``#`` ends the line, unquoted whitespace ends the argument."""
    out, quoted, escape, i = [], "", False, 0
    while i < len(line) and line[i].isspace():
        i += 1
    while i < len(line) and (quoted or not line[i].isspace()) and line[i] != "\n":
        char = line[i]
        i += 1
        if escape:
            escape = False
        elif char == "\\":
            escape = True
            continue
        elif quoted:
            if char == quoted:
                quoted = ""
                continue
        elif char in "\"'":
            quoted = char
            continue
        elif char == "#":
            break
        out.append(char)
    return "".join(out)


@pytest.mark.parametrize("value", NASTY)
def test_directive_quoting_reads_back_exactly_as_sbatch_parses_it(value):
    assert sbatch_argument(f"--job-name={directive(value)} trailing") == f"--job-name={value}"


@pytest.mark.parametrize("value", ["two\nlines", "cr\rhere", "nul\0here"])
def test_directive_refuses_what_an_sbatch_line_cannot_carry(value):
    with pytest.raises(ValueError):
        directive(value)


def test_plain_values_stay_readable():
    assert directive("gpu") == "gpu"
    assert directive("/scratch/me/run_1/job.log") == "/scratch/me/run_1/job.log"
    assert directive("demo.*.train") == "'demo.*.train'"
    assert quote("cuda/12.4") == "cuda/12.4"


def test_small_formatters():
    assert slurm_time(60) == "00:01:00"
    assert slurm_time(61) == "00:02:00"  # SLURM counts whole minutes: round up
    assert slurm_time(2 * 86400 + 3600) == "2-01:00:00"
    assert array_spec([0, 1, 2, 5, 7, 8], 4) == "0-2,5,7-8%4"
    assert array_spec([3], None) == "3"
    assert slurm_path(Path("/a/100%/b")) == "/a/100%%/b"
    with pytest.raises(ValueError):
        slurm_path(Path("/a\\b"))


def job(unit: str, tmp_path: Path, **changes) -> JobSpec:
    base = {
        "unit_id": unit,
        "name": f"demo.{unit}",
        "argv": ("printf", "%s\\n", "hello"),
        "workdir": tmp_path / unit,
        "log": tmp_path / unit / "job.log",
    }
    return JobSpec(**{**base, **changes})


def render(jobs, profile=None, folder=None, name="demo", throttle=None, template=None):
    call = plan_calls(jobs, {})[0]
    folder = folder or Path("/tmp/calls/x")
    context = call_context(call, profile or Profile(), folder, name, throttle)
    return Renderer(template).render(context)


def test_directives_cover_resources_and_profile(tmp_path):
    profile = Profile(
        account="lab",
        partition="gpu",
        constraint="a100",
        qos="short",
        mail_user="me@example.org",
        mail_type="END,FAIL",
        modules=("cuda/12.4", "anaconda3"),
        conda="train env",
        setup=("export HF_HOME=/scratch/hf",),
        directives=("--exclusive",),
        time_s=3600,
        mem_mb=2048,
    )
    resources = Resources(gpus=2, cpus=8, nodes=2, extras={"ntasks_per_node": 2, "qos": "long"})
    script = render([job("r.train", tmp_path, resources=resources)], profile)
    for line in (
        "#SBATCH --job-name=demo",
        f"#SBATCH --output={tmp_path}/r.train/job.log",
        "#SBATCH --time=01:00:00",
        "#SBATCH --mem=2048M",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --gres=gpu:2",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=2",
        "#SBATCH --account=lab",
        "#SBATCH --partition=gpu",
        "#SBATCH --constraint=a100",
        "#SBATCH --qos=long",  # the job's extras win over the profile
        "#SBATCH --mail-user=me@example.org",
        "#SBATCH --mail-type=END,FAIL",
        "#SBATCH --exclusive",
        "module load cuda/12.4",
        "conda activate 'train env'",
        "export HF_HOME=/scratch/hf",
    ):
        assert line + "\n" in script, line
    assert script.startswith("#!/bin/bash\n")


def test_a_job_without_limits_gets_the_profile_defaults_and_no_empty_lines(tmp_path):
    script = render([job("r", tmp_path)], Profile(time_s=600, cpus=4))
    assert "#SBATCH --time=00:10:00\n" in script and "#SBATCH --cpus-per-task=4\n" in script
    assert "--mem" not in script and "--account" not in script and "module" not in script


def run_script(
    script: str, tmp_path: Path, task: int | None = None, banner: bool = True
) -> subprocess.CompletedProcess:
    path = tmp_path / "job.sh"
    path.write_text(script)
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    if task is not None:
        env["SLURM_ARRAY_TASK_ID"] = str(task)
    done = subprocess.run(
        ["bash", str(path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30
    )
    # each task's output begins with the line `cruijff logs` finds its attempts by; the
    # tests below read what the command printed after it
    banners = [line for line in done.stdout.splitlines() if line.startswith("--- cruijff: ")]
    assert len(banners) == banner and all(logs.BANNER.match(b.encode()) for b in banners)
    if banner:
        done.stdout = done.stdout.replace(banners[0] + "\n", "", 1)
    return done


def test_metacharacters_everywhere_are_data_not_code(tmp_path):
    values = [v for v in NASTY if v]
    folder = tmp_path / "run $(touch pwned) `touch pwned` ; x"
    folder.mkdir()
    nasty_job = job(
        "r",
        tmp_path,
        name="; ".join(values),
        argv=("printf", "[%s]\\n", *values, "multi\nline"),
        workdir=folder,
        log=folder / "job.log",
        env={"NASTY": "; ".join(values), "NEWLINE": "a\nb"},
    )
    profile = Profile(modules=("$(touch pwned)",), conda="`touch pwned`")
    script = render([nasty_job], attrs_evolve(profile, modules=(), conda=None))
    done = run_script(script, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "".join(f"[{v}]\n" for v in values) + "[multi\nline]\n"
    assert not list(tmp_path.rglob("pwned")), "a value was executed"
    # the environment arrives intact too
    env_job = attrs_evolve(nasty_job, argv=("sh", "-c", 'printf "%s|%s" "$NASTY" "$NEWLINE"'))
    done = run_script(render([env_job]), tmp_path)
    assert done.stdout == "; ".join(values) + "|a\nb"
    # modules and conda are quoted as well (the lines fail, as there is no module command)
    script = render([nasty_job], profile)
    assert "module load '$(touch pwned)'" in script and "conda activate '`touch pwned`'" in script
    assert not list(tmp_path.rglob("pwned"))


def test_what_an_experiment_may_set_is_quoted_data(tmp_path, monkeypatch):
    hostile = ["x; touch pwned", "$(touch pwned)", "`touch pwned`", "a' ; touch pwned; '"]
    options = {
        "modules": hostile,
        "conda": hostile[1],
        "venv": hostile[0],
        **{key: hostile[n % 4] for n, key in enumerate(SBATCH_TEXT)},
        "mail_user": hostile[2],
    }
    profile = resolve(options, in_folder(tmp_path))
    (tmp_path / "r").mkdir()
    script = render([job("r", tmp_path, argv=("echo", "done"))], profile)
    for key in (*SBATCH_TEXT, "mail_user"):  # one sbatch argument each, exactly the value
        flag = f"--{key.replace('_', '-')}="
        line = next(line for line in script.splitlines() if line.startswith(f"#SBATCH {flag}"))
        assert sbatch_argument(line.removeprefix("#SBATCH ")) == flag + options[key]
    # stand-ins for `module` and `conda`, and the venv's activate script, note their arguments
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    note = '#!/bin/sh\n[ "$1" = shell.bash ] || printf "%s|" "$@" >> args\n'
    for name in ("module", "conda"):
        (bin_dir / name).write_text(note)
        (bin_dir / name).chmod(0o755)
    activate = tmp_path / hostile[0] / "bin" / "activate"
    activate.parent.mkdir(parents=True)
    activate.write_text("echo activated\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    done = run_script(script, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "activated\ndone\n"
    noted = "".join(f"load|{value}|" for value in hostile) + f"activate|{hostile[1]}|"
    assert (tmp_path / "args").read_text() == noted
    assert not list(tmp_path.rglob("pwned")), "a value was executed"


SBATCH_TEXT = ("account", "partition", "constraint", "qos", "reservation")
"""The profile's text values that go onto #SBATCH lines."""


def attrs_evolve(record, **changes):
    import attrs

    return attrs.evolve(record, **changes)


def test_the_script_exits_with_the_commands_exit_code(tmp_path):
    failing = job("r", tmp_path, argv=("sh", "-c", "echo out; exit 7"))
    (tmp_path / "r").mkdir()
    done = run_script(render([failing]), tmp_path)
    assert done.returncode == 7 and done.stdout == "out\n"


def test_an_array_script_runs_the_task_slurm_names(tmp_path):
    jobs = [job(f"r{i}", tmp_path, argv=("sh", "-c", f"echo task {i}; pwd")) for i in range(3)]
    for one in jobs:
        Path(one.workdir).mkdir()
    script = render(jobs, throttle=2)
    assert "#SBATCH --array=0-2%2\n" in script
    assert f"#SBATCH --output={Path('/tmp/calls/x')}/%a.log\n" in script
    done = run_script(script, tmp_path, task=1)
    assert done.stdout == f"task 1\n{tmp_path / 'r1'}\n"
    done = run_script(script, tmp_path, task=9, banner=False)
    assert done.returncode == 2 and "no task 9" in done.stderr


def test_a_newline_in_the_job_name_is_refused_naming_the_job(tmp_path):
    with pytest.raises(UserError, match=r"job r: cannot write .* into a batch script"):
        render([job("r", tmp_path)], name="two\nlines")


def test_a_bad_environment_variable_name_is_refused(tmp_path):
    with pytest.raises(UserError, match="not a valid environment variable name"):
        render([job("r", tmp_path, env={"A B": "x"})])


def test_a_users_template_is_used_and_its_mistakes_are_named(tmp_path):
    template = tmp_path / "mine.sh.j2"
    template.write_text(
        "#!/bin/sh\n#SBATCH --job-name={{ job_name | directive }}\n"
        "{{ tasks[0].argv | map('quote') | join(' ') }}\n"
    )
    assert (
        render([job("r", tmp_path)], template=template)
        == "#!/bin/sh\n#SBATCH --job-name=demo\nprintf '%s\\n' hello\n"
    )
    template.write_text("#!/bin/sh\n{{ job_nmae }}\n")
    with pytest.raises(UserError, match="'job_nmae' is undefined") as error:
        render([job("r", tmp_path)], template=template)
    assert "job_name" in error.value.hint
    template.write_text("#!/bin/sh\n\n{% if %}\n")
    with pytest.raises(UserError, match=rf"{template}:3: template syntax error"):
        render([job("r", tmp_path)], template=template)
    template.write_text("echo no shebang\n")
    with pytest.raises(UserError, match="must start with a #! line"):
        render([job("r", tmp_path)], template=template)
