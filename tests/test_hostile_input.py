"""Hostile input, end to end through ``cruijff validate``, ``plan`` and ``scaffold``: run
names, parameter values, prompts, system prompts, paths and cluster profile values holding
shell metacharacters (``$()``, backticks, ``;``, newlines, quotes, redirections), path
traversal, absolute paths where a name is expected, and YAML tags that would build objects.

Each is either refused with a clear error (exit 1, the file, line and field named, no
traceback) or taken with its value kept literally in the generated files. Either way nothing
runs (a canary file outside the experiment proves it), nothing is written outside the
experiment directory (``XDG_DATA_HOME`` excepted), and every generated shell script passes
``bash -n`` and ``shellcheck -S warning`` (required where ``CRUIJFF_REQUIRE_SHELLCHECK=1``, as
in CI). The set-up part of each SLURM script is run for real, with ``cd``, ``source``,
``module`` and ``conda`` replaced by stand-ins that note their arguments and stop before the
command, and with the fake tools the whole script runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cruijff.testing import merge

pytest.importorskip("cruijff_torchtune")
pytest.importorskip("cruijff_inspect")
pytest.importorskip("cruijff_slurm")

from test_plan_golden import TASK
from test_slurm_render import sbatch_argument
from test_torchtune_estimate import LLAMA_3_2_1B

from cruijff_slurm.profile import profiles_dir

PAYLOADS = {
    "substitution": "$(touch {canary})",
    "backticks": "`touch {canary}`",
    "semicolon": "x; touch {canary}",
    "and": "x && touch {canary} &",
    "redirect": "x > {canary}",
    "single-quote": "it's'; touch {canary}; '",
    "double-quote": 'say "hi"; touch {canary}; "',
    "variable": "${{IFS}}$(touch${{IFS}}{canary})",
    "newline": "line\ntouch {canary}",
}
"""Shell payloads, each of which would create the canary file if a shell ran it."""

ONE_LINE = {name: text for name, text in PAYLOADS.items() if "\n" not in text}

TAGS = {
    "apply": '!!python/object/apply:os.system ["touch {canary}"]',
    "name": "!!python/name:os.system",
    "new": '!!python/object/new:subprocess.Popen [["touch", "{canary}"]]',
    "long form": '!<tag:yaml.org,2002:python/object/apply:os.system> ["touch {canary}"]',
    "local": "!shell touch {canary}",
}
"""YAML tags that would build objects (or call functions) in a loader that honoured them."""

WORDS = ("apple", "pear", "fig", "plum", "kiwi", "lime", "lemon", "mango")
LOCATED = re.compile(r"^error: (?P<file>.+?):(?P<line>\d+):(?P<column>\d+): (?P<field>\S+): ")


# --- the world a test runs in ----------------------------------------------------------------


class Lab:
    """A test's folders: the experiment's (``folder``), one outside it holding only where the
    canary would appear, the working directory the commands run in, and XDG_DATA_HOME."""

    def __init__(self, root: Path, cli: Any) -> None:
        self.root, self._cli = root, cli
        self.outside = root / "outside"
        self.canary = self.outside / "CANARY"
        self.folder = root / "lab"
        self.data_home = root / "xdg-data"
        self.examples = 0  # hypothesis's examples so far, each in a folder of its own
        for folder in (self.outside, self.folder, root / "cwd", self.data_home):
            folder.mkdir(parents=True, exist_ok=True)

    def move(self, relative: str) -> Path:
        """Put the experiment file in ``relative`` (under the test's folder) from now on."""
        self.folder = self.root / relative
        self.folder.mkdir(parents=True)
        return self.folder

    def payload(self, name: str) -> str:
        return {**PAYLOADS, **TAGS}[name].format(canary=self.canary)

    def model(self, relative: str = "models/tiny") -> str:
        folder = self.folder / relative
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(LLAMA_3_2_1B))
        (folder / "model.safetensors").write_bytes(b"")
        return relative

    def data(self, relative: str = "words.json") -> str:
        rows = [{"input": word, "output": word.upper()} for word in WORDS]
        path = self.folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"train": rows, "validation": rows[:2], "test": rows[:4]}))
        return relative

    def document(self, **changes: Any) -> dict[str, Any]:
        """torchtune training and inspect evaluation on SLURM, ``changes`` merged in."""
        base = {
            "experiment": {"name": "hostile", "min_effect": 0.5},
            "tools": {"preparation": "torchtune", "evaluation": "inspect"},
            "variables": {"lora_rank": [4, 8]},
            "controls": {
                "epochs": 1,
                "num_warmup_steps": 1,
                "dataset_type": "chat_completion",
                "prompt": "Capitalize: {input}",
                "system_prompt": "Be brief.",
            },
            "models": {"base": [{"name": "tiny", "path": self.model()}]},
            "data": {"training": {"path": self.data()}},
            "evaluation": {
                "tasks": [{"name": "capitalization", "script": str(TASK), "dataset": "same"}]
            },
            "scheduler": {"name": "slurm"},
        }
        return merge(base, changes)

    def write(self, document: dict[str, Any] | None = None, *, text: str | None = None) -> Path:
        path = self.folder / "experiment.yaml"
        if text is None:
            text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
        path.write_text(text, encoding="utf-8")
        return path

    def profile(self, values: dict[str, Any] | str, name: str = "default") -> Path:
        """A cluster profile in the user's own folder."""
        path = profiles_dir() / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = values if isinstance(values, str) else yaml.safe_dump(values, allow_unicode=True)
        path.write_text(text, encoding="utf-8")
        return path

    def cli(self, *args: Any) -> Any:
        result = self._cli(*args)
        assert "Traceback" not in result.output, result.output
        assert result.exit_code in (0, 1), result.output  # 70 would be a bug
        return result

    def snapshot(self) -> dict[str, tuple]:
        """Every file, folder and link under the test's folders and the user's configuration."""
        roots = (
            self.root,
            Path(os.environ["XDG_CONFIG_HOME"]),
            Path(os.environ["CRUIJFF_DATA_DIR"]),
        )
        return {key: value for root in roots for key, value in tree(root).items()}


def tree(root: Path) -> dict[str, tuple]:
    found: dict[str, tuple] = {}
    for folder, folders, files in os.walk(root):
        for name in folders + files:
            path = Path(folder) / name
            if path.is_symlink():
                found[str(path)] = ("link", os.readlink(path))
            elif path.is_dir():
                found[str(path)] = ("dir",)
            else:
                found[str(path)] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def changed_outside(before: dict, after: dict, allowed: list[Path]) -> list[str]:
    """The paths that appeared, changed or went away outside the ``allowed`` folders (new
    folders above one of them excepted: making it makes them)."""
    changed = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    return sorted(
        path
        for path in changed
        if not any(Path(path).is_relative_to(folder) for folder in allowed)
        and not (
            path not in before
            and after[path] == ("dir",)
            and any(folder.is_relative_to(path) for folder in allowed)
        )
    )


@pytest.fixture
def lab(tmp_path, monkeypatch, register_plugin, cli) -> Lab:
    """The torchtune, inspect and slurm plugins (SLURM's commands faked: nothing is submitted),
    run from a working directory of their own, with XDG_DATA_HOME in the test's folder."""
    from cruijff_inspect import plugin as inspect_plugin
    from cruijff_slurm import plugin as slurm_plugin
    from cruijff_slurm.scheduler import SlurmScheduler
    from cruijff_slurm.testing import FakeSlurm
    from cruijff_torchtune import plugin as torchtune_plugin

    monkeypatch.setattr(
        slurm_plugin,
        "factory",
        lambda e, o: SlurmScheduler(
            o, e.state_dir, paths=e.resolve, file=e.file, commands=FakeSlurm()
        ),
    )
    register_plugin(torchtune_plugin, name="torchtune")
    register_plugin(inspect_plugin, name="inspect")
    register_plugin(slurm_plugin, name="slurm")
    result = Lab(tmp_path, cli)
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("XDG_DATA_HOME", str(result.data_home))
    return result


# --- what every test checks -----------------------------------------------------------------


def refused(
    lab: Lab,
    path: Path,
    field: str,
    words: str = "",
    *,
    file: Path | None = None,
    commands: tuple[str, ...] = ("validate", "plan", "scaffold"),
) -> None:
    """Each command exits 1 naming ``file`` (default: the experiment ``path``):line:column and
    ``field`` (its YAML path or the start of it), the message holding ``words``; nothing is
    written, nothing runs."""
    before = lab.snapshot()
    for command in commands:
        result = lab.cli(command, path)
        assert result.exit_code == 1, result.output
        located = [m for m in map(LOCATED.match, result.output.splitlines()) if m]
        assert any(
            m["file"] == str(file or path) and m["field"].startswith(field) for m in located
        ), result.output
        assert words in result.output, result.output
    assert not changed_outside(before, lab.snapshot(), [lab.data_home])
    assert_no_canary(lab)


def scaffolded(lab: Lab, path: Path, directory: Path | None = None) -> Path:
    """validate, plan and scaffold succeed, writing only in the experiment ``directory``
    (default: the file's folder); nothing runs; every script is sound. Returns the directory."""
    directory = directory or path.parent
    before = lab.snapshot()
    for command in ("validate", "plan", "scaffold"):
        result = lab.cli(command, path)
        assert result.exit_code == 0, result.output
    assert not changed_outside(before, lab.snapshot(), [directory, lab.data_home])
    assert_no_canary(lab)
    return directory


def assert_no_canary(lab: Lab) -> None:
    assert not lab.canary.exists(), "a value was run as a command"
    stray = [p for p in lab.root.rglob("CANARY") if p.is_file()]
    assert not stray, stray


def shell_scripts(directory: Path) -> list[Path]:
    """Every file scaffold wrote that is a shell script (links read through once)."""
    found = set()
    for path in directory.rglob("*"):
        if path.is_file() and path.read_bytes()[:2] == b"#!":
            found.add(path.resolve())
    return sorted(found)


def check_scripts(directory: Path, *, expected: bool = True) -> list[Path]:
    """``bash -n`` and ``shellcheck -S warning`` on every shell script scaffold wrote."""
    scripts = shell_scripts(directory)
    assert bool(scripts) == expected, scripts
    for script in scripts:
        checked = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert checked.returncode == 0, f"{script}: {checked.stderr}"
    if scripts:
        shellcheck(scripts)
    return scripts


def shellcheck(scripts: list[Path]) -> None:
    """Fails on any warning; without shellcheck, skips (fails under CRUIJFF_REQUIRE_SHELLCHECK=1).
    Call it last: a skip ends the test."""
    program = shutil.which("shellcheck")
    if program is None:
        if os.environ.get("CRUIJFF_REQUIRE_SHELLCHECK") == "1":
            pytest.fail("shellcheck is not installed, and CRUIJFF_REQUIRE_SHELLCHECK=1")
        pytest.skip("shellcheck is not installed")
    checked = subprocess.run(
        [program, "-S", "warning", "-s", "bash", "-f", "gcc", *map(str, scripts)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


STAND_INS = {
    # a function of the name, exported to the script: each notes its arguments in $NOTES
    "module": 'printf "%s|" module "$@" >> "$NOTES"',
    "conda": '[ "$1" = shell.bash ] || printf "%s|" conda "$@" >> "$NOTES"',
    "source": 'printf "%s|" source "$@" >> "$NOTES"',
    # the last step before the command: note the folder, and end the job there
    "cd": 'printf "%s|" cd "$@" >> "$NOTES"; exit 0',
}


def run_setup(script: Path, notes: Path, task: int | None = None) -> str:
    """Run ``script`` up to its ``cd`` into the job's folder (task ``task`` of an array): its
    set-up and banner for real, ``module``, ``conda``, ``source`` and ``cd`` as stand-ins.
    Returns what the stand-ins noted."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "BASH_FUNC_"))}
    env |= {f"BASH_FUNC_{name}%%": f"() {{ {body}; }}" for name, body in STAND_INS.items()}
    env["NOTES"] = str(notes)
    if task is not None:
        env["SLURM_ARRAY_TASK_ID"] = str(task)
    notes.unlink(missing_ok=True)
    done = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("--- cruijff: "), done.stdout
    return notes.read_text()


def task_folders(script: Path) -> dict[int | None, str]:
    """Task index (None: a single job) -> the folder the script's ``cd`` names, as bash reads
    the word (shlex: the script quotes with shlex.quote)."""
    found: dict[int | None, str] = {}
    index = None
    for line in script.read_text().splitlines():
        if m := re.fullmatch(r"  (\d+)\)", line):
            index = int(m[1])
        elif line.strip().startswith("cd -- "):
            words = shlex.split(line.strip().removesuffix(" || exit 1"))
            found[index] = words[2]
    return found


def config(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def values_of(data: Any, key: str) -> list[Any]:
    """Every value of ``key`` anywhere in ``data``."""
    if isinstance(data, dict):
        own = [data[key]] if key in data else []
        return own + [v for value in data.values() for v in values_of(value, key)]
    if isinstance(data, list):
        return [v for value in data for v in values_of(value, key)]
    return []


def sbatch_lines(script: Path, flag: str) -> list[str]:
    """The arguments of the script's ``#SBATCH`` lines for ``flag``, as sbatch reads them."""
    lines = script.read_text().splitlines()
    found = [
        sbatch_argument(line.removeprefix("#SBATCH "))
        for line in lines
        if line.startswith("#SBATCH ")
    ]
    return [arg.removeprefix(f"{flag}=") for arg in found if arg.startswith(f"{flag}=")]


def run_every_setup(scripts: list[Path], notes: Path) -> dict[str, str]:
    """:func:`run_setup` of every task of every script: folder -> what the stand-ins noted
    (each ``cd`` names exactly the folder the script was written for)."""
    noted = {}
    for script in scripts:
        for task, folder in task_folders(script).items():
            said = run_setup(script, notes, task)
            assert said.endswith(f"cd|--|{folder}|"), said
            noted[folder] = said
    return noted


# --- YAML tags --------------------------------------------------------------------------------

TAG_PLACES = {
    "experiment.name": ("experiment", "name"),
    "controls.prompt": ("controls", "prompt"),
    "models.base[0].path": ("models", "base", 0, "path"),
    "scheduler.partition": ("scheduler", "partition"),
}


def put(document: dict[str, Any], keys: tuple, value: Any) -> dict[str, Any]:
    place: Any = document
    for key in keys[:-1]:
        place = place[key]
    place[keys[-1]] = value
    return document


@pytest.mark.parametrize("tag", TAGS)
@pytest.mark.parametrize("field", TAG_PLACES)
def test_a_yaml_tag_is_refused_where_it_is_written(lab, tag, field):
    document = put(lab.document(), TAG_PLACES[field], "TAG-GOES-HERE")
    text = yaml.safe_dump(document, sort_keys=False).replace("TAG-GOES-HERE", lab.payload(tag))
    path = lab.write(text=text)
    refused(lab, path, field, "is not allowed")


@pytest.mark.parametrize("tag", TAGS)
def test_a_yaml_tag_in_a_cluster_profile_is_refused_in_the_profile(lab, tag):
    profile = lab.profile(f"partition: gpu\naccount: {lab.payload(tag)}\n")
    refused(lab, lab.write(lab.document()), "account", "is not allowed", file=profile)


# --- names: refused, never cleaned ------------------------------------------------------------


NAME_FIELDS = {
    "experiment.name": lambda doc, v: put(doc, ("experiment", "name"), v),
    "models.base[0].name": lambda doc, v: put(doc, ("models", "base", 0, "name"), v),
    "evaluation.tasks[0].name": lambda doc, v: put(doc, ("evaluation", "tasks", 0, "name"), v),
    "runs[0].name": lambda doc, v: {
        **doc,
        "variables": {},
        "runs": [{"name": v, "model": "tiny", "parameters": {"lora_rank": 4}}],
    },
    "data.training.dataset_label": lambda doc, v: put(
        doc, ("data", "training", "dataset_label"), v
    ),
}


@pytest.mark.parametrize("payload", [*PAYLOADS, "traversal", "absolute"])
@pytest.mark.parametrize("field", NAME_FIELDS)
def test_a_hostile_name_is_refused_with_its_place(lab, field, payload):
    value = {"traversal": "../../escape", "absolute": str(lab.outside / "escape")}.get(
        payload
    ) or lab.payload(payload)
    path = lab.write(NAME_FIELDS[field](lab.document(), value))
    refused(lab, path, field)


VALUE_FIELDS = {
    "variables.lora_rank": lambda doc, v: put(doc, ("variables", "lora_rank"), [4, v]),
    "controls.epochs": lambda doc, v: put(doc, ("controls", "epochs"), v),
    "controls.lr_scheduler": lambda doc, v: put(doc, ("controls", "lr_scheduler"), v),
    "controls.dataset_type": lambda doc, v: put(doc, ("controls", "dataset_type"), v),
    "scheduler.jobs": lambda doc, v: put(doc, ("scheduler", "jobs"), v),
}


@pytest.mark.parametrize("payload", ["substitution", "semicolon", "newline"])
@pytest.mark.parametrize("field", VALUE_FIELDS)
def test_a_payload_where_a_number_or_a_choice_goes_is_refused(lab, field, payload):
    path = lab.write(VALUE_FIELDS[field](lab.document(), lab.payload(payload)))
    refused(lab, path, field)


# --- prompts and other text: data, kept as written ------------------------------------------


@pytest.mark.parametrize("payload", PAYLOADS)
def test_prompts_and_system_prompts_are_kept_literally(lab, payload):
    value = lab.payload(payload)
    task = {"name": "capitalization", "script": str(TASK), "dataset": "same"}
    document = lab.document(
        controls={"prompt": f"{value} {{input}}", "system_prompt": value},
        evaluation={
            "tasks": [{**task, "prompt": f"task {value} {{input}}", "system_prompt": f"t {value}"}],
            "matrix": [
                {"run": "rank4", "vis_label": value, "tasks": ["capitalization"]},
                {"run": "rank8", "tasks": ["capitalization"]},
                {"run": "base", "tasks": ["capitalization"], "epochs": None},
            ],
        },
    )
    folder = scaffolded(lab, lab.write(document))
    trainings = sorted(folder.rglob("finetune.yaml"))
    evaluations = sorted(folder.rglob("eval_config.yaml"))
    assert len(trainings) == 2 and len(evaluations) == 3
    for path in trainings:
        assert set(values_of(config(path), "prompt")) == {f"{value} {{input}}"}
        assert set(values_of(config(path), "system_prompt")) == {value}
    for path in evaluations:
        assert set(values_of(config(path), "prompt")) == {f"task {value} {{input}}"}
        assert set(values_of(config(path), "system_prompt")) == {f"t {value}"}
    labels = [label for path in evaluations for label in values_of(config(path), "vis_label")]
    assert value in labels
    scripts = shell_scripts(folder)
    run_every_setup(scripts, lab.root / "notes")
    assert_no_canary(lab)
    check_scripts(folder)


def test_a_swept_system_prompt_names_runs_inside_the_experiment(lab):
    values = [lab.payload(name) for name in PAYLOADS] + ["../../escape", str(lab.outside)]
    document = lab.document(variables={"lora_rank": None, "system_prompt": values})
    folder = scaffolded(lab, lab.write(document))
    trainings = sorted(folder.rglob("finetune.yaml"))
    assert len(trainings) == len(values)
    kept = sorted(v for path in trainings for v in set(values_of(config(path), "system_prompt")))
    assert kept == sorted(values)  # each run has its own, as written
    for path in trainings:  # a folder of its own, one level down, whatever the value
        assert path.parent.parent == folder and path.parent.name.startswith("system_prompt")
    run_every_setup(shell_scripts(folder), lab.root / "notes")
    assert_no_canary(lab)
    check_scripts(folder)


# --- paths ------------------------------------------------------------------------------------


def test_hostile_folder_names_everywhere_are_quoted(lab):
    """The experiment's folder, the model, the data, the task file and the evaluation data
    all in folders named with payloads (and ``%``, which SLURM expands in log names)."""
    name = " ".join(lab.payload(payload) for payload in ONE_LINE) + " 100%j %a"
    folder = lab.move(f"exp {name}")
    model = lab.model(f"models/{lab.payload('double-quote')}")
    data = lab.data(f"data/{lab.payload('backticks')}.json")
    tests = lab.data(f"data/{lab.payload('single-quote')}.json")
    script = folder / "tasks" / f"{lab.payload('semicolon')}.py"
    script.parent.mkdir(parents=True)
    shutil.copy(TASK, script)
    document = lab.document(
        models={"base": [{"name": "tiny", "path": model}]},
        data={"training": {"path": data}},
        evaluation={
            "tasks": [
                {
                    "name": "capitalization",
                    "script": str(script.relative_to(folder)),
                    "dataset": tests,
                }
            ]
        },
    )
    scaffolded(lab, lab.write(document))
    for path in folder.rglob("finetune.yaml"):
        assert values_of(config(path), "source") == [str(folder / data)]
    scripts = shell_scripts(folder)
    for path in scripts:  # SLURM reads these itself
        assert sbatch_lines(path, "--chdir")[0].startswith(str(folder))
        logs = sbatch_lines(path, "--output")
        assert logs and all(log.startswith(str(folder).replace("%", "%%")) for log in logs)
    noted = run_every_setup(scripts, lab.root / "notes")
    assert all(path.startswith(f"{folder}/") for path in noted)
    assert len(noted) == 5  # 2 trainings, 3 evaluations
    assert_no_canary(lab)
    check_scripts(folder)


@pytest.mark.parametrize("where", ["inside", "up", "absolute"])
def test_the_experiment_directory_is_where_everything_is_written(lab, where):
    """``experiment.dir`` may name any folder (it is the user's choice): a hostile name below
    the file's, one above (``../``), an absolute one; scaffold writes there and nowhere else,
    not even beside the experiment file."""
    target = {
        "inside": f"runs/{lab.payload('substitution')}",
        "up": f"../escape {lab.payload('backticks')}",
        "absolute": str(lab.outside / "elsewhere"),
    }[where]
    path = lab.write(lab.document(experiment={"dir": target}))
    directory = Path(os.path.normpath(path.parent / target))
    scaffolded(lab, path, directory)
    assert len(list(directory.rglob("finetune.yaml"))) == 2
    run_every_setup(shell_scripts(directory), lab.root / "notes")
    assert_no_canary(lab)
    check_scripts(directory)


def test_a_line_break_in_the_experiment_directory_is_refused(lab):
    path = lab.write(lab.document(experiment={"dir": f"runs/x\n{lab.payload('semicolon')}"}))
    refused(lab, path, "experiment.dir", "line")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("models.base[0].path", "../../escape"),
        ("data.training.path", "../../escape.json"),
        ("evaluation.tasks[0].script", "../../escape.py"),
        ("evaluation.tasks[0].dataset", "/nonexistent/escape.json"),
    ],
)
def test_a_path_to_nothing_is_refused_with_its_place(lab, field, value):
    keys = {
        "models.base[0].path": ("models", "base", 0, "path"),
        "data.training.path": ("data", "training", "path"),
        "evaluation.tasks[0].script": ("evaluation", "tasks", 0, "script"),
        "evaluation.tasks[0].dataset": ("evaluation", "tasks", 0, "dataset"),
    }[field]
    refused(lab, lab.write(put(lab.document(), keys, value)), field)


TEXT = st.characters(exclude_categories=("Cc", "Cs"), include_characters="\n\t")
"""Any character a YAML file may hold as it is (the reader refuses control characters)."""
LINE = st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"))


@settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    prompt=st.text(TEXT, min_size=1, max_size=40),
    partition=st.text(LINE, min_size=1, max_size=30).filter(str.strip),
)
def test_any_text_is_kept_as_written(lab, prompt, partition):
    lab.examples += 1
    lab.move(f"example-{lab.examples}")
    document = lab.document(
        controls={"system_prompt": prompt}, scheduler={"name": "slurm", "partition": partition}
    )
    folder = scaffolded(lab, lab.write(document))
    for path in [*folder.rglob("finetune.yaml"), *folder.rglob("eval_config.yaml")]:
        assert set(values_of(config(path), "system_prompt")) == {prompt}
    scripts = shell_scripts(folder)
    assert all(sbatch_lines(script, "--partition") == [partition] for script in scripts)
    run_every_setup(scripts, lab.root / "notes")
    check_scripts(folder)


# --- cluster profiles and the scheduler section -----------------------------------------------

SBATCH_KEYS = ("account", "partition", "constraint", "qos", "reservation", "mail_user")
"""Profile keys written on #SBATCH lines."""


def hostile_settings(lab: Lab) -> dict[str, Any]:
    """A value with a payload for every profile key an experiment may set too."""
    payloads = list(ONE_LINE)
    settings: dict[str, Any] = {
        key: lab.payload(payloads[n % len(payloads)]) for n, key in enumerate(SBATCH_KEYS)
    }
    settings |= {
        "modules": [lab.payload(name) for name in payloads],
        "conda": lab.payload("backticks"),
        "venv": str(lab.outside / f"venv {lab.payload('substitution')}"),
    }
    return settings


def assert_settings_are_data(lab: Lab, folder: Path, settings: dict[str, Any]) -> list[Path]:
    """Each #SBATCH value reads back (as sbatch reads it) as written; the set-up lines give
    ``module``, ``conda`` and ``source`` the values as single words; nothing runs."""
    scripts = shell_scripts(folder)
    assert scripts
    for script in scripts:
        for key in SBATCH_KEYS:
            assert sbatch_lines(script, f"--{key.replace('_', '-')}") == [settings[key]], key
    expected = "".join(f"module|load|{module}|" for module in settings["modules"])
    expected += f"conda|activate|{settings['conda']}|source|{settings['venv']}/bin/activate|"
    for folder_noted, said in run_every_setup(scripts, lab.root / "notes").items():
        assert said == f"{expected}cd|--|{folder_noted}|"
    assert_no_canary(lab)
    return scripts


def test_hostile_values_in_the_users_profile_are_data(lab):
    settings = hostile_settings(lab)
    directives = [f"--comment={lab.payload(name)}" for name in ONE_LINE]
    lab.profile({**settings, "directives": directives, "mail_type": "END,FAIL"})
    folder = scaffolded(lab, lab.write(lab.document()))
    scripts = assert_settings_are_data(lab, folder, settings)
    for script in scripts:
        assert sbatch_lines(script, "--comment") == [
            d.removeprefix("--comment=") for d in directives
        ]
    check_scripts(folder)


def test_hostile_values_in_the_scheduler_section_are_data(lab):
    settings = hostile_settings(lab)
    folder = scaffolded(lab, lab.write(lab.document(scheduler={"name": "slurm", **settings})))
    assert_settings_are_data(lab, folder, settings)
    check_scripts(folder)


@pytest.mark.parametrize("key", [*SBATCH_KEYS, "modules", "conda", "venv"])
def test_a_line_break_in_a_profile_value_is_refused_in_the_profile(lab, key):
    value = lab.payload("newline")
    profile = lab.profile({"partition": "gpu", key: [value] if key == "modules" else value})
    refused(lab, lab.write(lab.document()), key, "one line", file=profile)


@pytest.mark.parametrize("key", [*SBATCH_KEYS, "conda"])
def test_a_line_break_in_the_scheduler_section_is_refused(lab, key):
    path = lab.write(lab.document(scheduler={"name": "slurm", key: lab.payload("newline")}))
    refused(lab, path, f"scheduler.{key}", "one line")


CODE = {
    "setup": ["touch {canary}"],
    "directives": ["--export=ALL,X=$(touch {canary})"],
    "template": "../outside/evil.sh.j2",
}
"""Keys whose values are code in the batch script, only taken from the user's own profiles."""


@pytest.mark.parametrize("key", CODE)
def test_code_from_the_experiment_file_is_refused(lab, key):
    (lab.outside / "evil.sh.j2").write_text(f"#!/bin/bash\ntouch {lab.canary}\n")
    value = json.loads(json.dumps(CODE[key]).replace("{canary}", str(lab.canary)))
    path = lab.write(lab.document(scheduler={"name": "slurm", key: value}))
    refused(lab, path, f"scheduler.{key}", "only your own cluster profile may set it")


@pytest.mark.parametrize("reference", ["relative", "absolute"])
def test_code_from_a_profile_outside_the_users_folder_is_refused(lab, reference):
    evil = lab.outside / "evil.yaml"
    evil.write_text(f"partition: gpu\nsetup: ['touch {lab.canary}']\n")
    named = "../outside/evil.yaml" if reference == "relative" else str(evil)
    path = lab.write(lab.document(scheduler={"name": "slurm", "profile": named}))
    refused(lab, path, "setup", "only your own cluster profile may set it", file=evil)


@pytest.mark.parametrize("payload", ["traversal", "absolute", "substitution", "semicolon"])
def test_a_profile_that_is_not_there_is_refused(lab, payload):
    named = {
        "traversal": "../../escape",
        "absolute": str(lab.outside / "escape.yaml"),
    }.get(payload) or lab.payload(payload)
    path = lab.write(lab.document(scheduler={"name": "slurm", "profile": named}))
    refused(lab, path, "scheduler.profile")


def test_a_profile_outside_the_users_folder_gives_data(lab):
    settings = hostile_settings(lab)
    (lab.outside / "shared.yaml").write_text(yaml.safe_dump(settings))
    path = lab.write(lab.document(scheduler={"name": "slurm", "profile": "../outside/shared.yaml"}))
    folder = scaffolded(lab, path)
    assert_settings_are_data(lab, folder, settings)
    check_scripts(folder)


# --- run parameters that reach the batch script -------------------------------------------


@pytest.mark.parametrize("payload", ONE_LINE)
def test_slurm_keys_in_a_runs_parameters_are_data(lab, payload):
    value = lab.payload(payload)
    runs = [
        {"name": "r1", "model": "tiny", "parameters": {"lora_rank": 4, "partition": value}},
        {"name": "base", "type": "control", "model": "tiny"},
    ]
    document = lab.document(
        variables=None, controls={"account": value, "constraint": value}, runs=runs
    )
    folder = scaffolded(lab, lab.write(document))
    (training,) = (path for path in shell_scripts(folder) if "r1.train" in path.read_text())
    for flag in ("--partition", "--account", "--constraint"):
        assert sbatch_lines(training, flag) == [value]
    run_every_setup([training], lab.root / "notes")
    assert_no_canary(lab)
    check_scripts(folder)


@pytest.mark.parametrize("field", ["controls.account", "runs[0].parameters.partition"])
def test_a_line_break_in_a_slurm_key_of_the_parameters_is_refused(lab, field):
    value = lab.payload("newline")
    runs = [{"name": "r1", "model": "tiny", "parameters": {"lora_rank": 4}}]
    if field == "controls.account":
        document = lab.document(variables=None, runs=runs, controls={"account": value})
    else:
        runs[0]["parameters"]["partition"] = value
        document = lab.document(variables=None, runs=runs)
    refused(lab, lab.write(document), field, "one line")


@pytest.mark.parametrize("key", ["dtype", "device"])
def test_a_hostile_dtype_or_device_is_refused_with_its_place(lab, key):
    path = lab.write(lab.document(controls={key: lab.payload("semicolon")}))
    result = lab.cli("validate", path)
    assert result.exit_code == 1 and f"controls.{key}: " in result.output, result.output
    assert "bug" not in result.output


# --- the scripts run -------------------------------------------------------------------------


def fake_experiment(lab: Lab, make_experiment: Any, scheduler: str) -> tuple[Path, str]:
    """The fake tools' experiment (fast stdlib jobs) in a folder named with every one-line
    payload, its prompts holding every payload."""
    value = "".join(lab.payload(name) for name in PAYLOADS)
    folder = lab.move(" ".join(lab.payload(name) for name in ONE_LINE))
    changes = {
        "controls": {"prompt": f"{value} {{input}}", "system_prompt": value},
        "scheduler": {"name": scheduler},
    }
    return make_experiment(changes, folder=folder), value


def test_the_scripts_of_the_fake_tools_run_in_hostile_folders(lab, fake_tools, make_experiment):
    """Every task of every batch script runs for real (SLURM's part played by the test): the
    trainings write their checkpoints where they belong, the evaluations read them."""
    path, _ = fake_experiment(lab, make_experiment, "slurm")
    folder = scaffolded(lab, path)
    scripts = shell_scripts(folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    ran = 0
    for script in sorted(scripts, key=lambda p: ".train" not in p.read_text()):  # trainings first
        for task, workdir in task_folders(script).items():
            extra = {} if task is None else {"SLURM_ARRAY_TASK_ID": str(task)}
            done = subprocess.run(
                ["bash", str(script)], env=env | extra, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, done.stdout + done.stderr
            assert Path(workdir).is_relative_to(folder)
            ran += 1
    assert ran == 5  # two trainings, their evaluations and the control's
    for run in ("rank4", "rank8"):
        assert (folder / run / "train" / "epoch_1" / "model.json").is_file()
    assert len(list(folder.rglob("results.json"))) == 3
    assert_no_canary(lab)
    check_scripts(folder)


def test_the_local_scheduler_writes_no_shell_script(lab, fake_tools, make_experiment):
    """Its job wrapper (:mod:`cruijff.local.job`) starts each command from its argv, with no
    shell between: there is nothing for bash or shellcheck to read."""
    path, value = fake_experiment(lab, make_experiment, "local")
    folder = scaffolded(lab, path)
    trainings = [json.loads(p.read_text()) for p in folder.glob("*/train/config.json")]
    assert len(trainings) == 2
    assert all(config["params"]["system_prompt"] == value for config in trainings)
    check_scripts(folder, expected=False)
