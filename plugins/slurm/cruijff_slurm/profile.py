"""Cluster profiles: where a cluster's settings live, and how they are read and checked.

A profile is a small YAML file, one per cluster, in ``$XDG_CONFIG_HOME/cruijff/profiles``
(``~/.config/cruijff/profiles`` by default)::

    # ~/.config/cruijff/profiles/della.yaml
    account: mylab
    partition: gpu
    modules: [anaconda3/2024.6, cudatoolkit/12.4]
    conda: cruijff
    time: "4:00:00"         # default for jobs that ask for no time limit
    mem: 32G                # default for jobs that ask for no memory
    max_jobs: 200           # the most jobs of one experiment in the queue at once
    array_throttle: 20      # at most this many tasks of one array run at once
    gpu: a100-80gb          # what the jobs run on, for estimates (or {memory_gb, tflops_bf16})

The experiment picks one with ``scheduler: {name: slurm, profile: della}`` (a name in that
folder, or a path relative to the experiment file); without one, ``default.yaml`` or the only
profile there is used. Keys written in the experiment's ``scheduler`` section override the
profile's, but those that are code in the batch script (``setup``, ``template``,
``directives``) come only from a profile in that folder. Nothing cluster-specific lives in
code.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from cruijff import quantities
from cruijff.errors import ProblemsFound, UserError
from cruijff.hardware import Gpu, gpu_from
from cruijff.records import Problem, Where, resolve_path
from cruijff.suggest import did_you_mean, one_of
from cruijff.yamlfile import YamlError, load_yaml

PLUGIN = "slurm"
SUFFIXES = (".yaml", ".yml")
DEFAULT_NAME = "default"

MAIL_TYPES = (
    "NONE",
    "BEGIN",
    "END",
    "FAIL",
    "REQUEUE",
    "ALL",
    "INVALID_DEPEND",
    "STAGE_OUT",
    "TIME_LIMIT",
    "TIME_LIMIT_90",
    "TIME_LIMIT_80",
    "TIME_LIMIT_50",
    "ARRAY_TASKS",
)

Resolver = Callable[[str], Path]
"""How a source reads its relative paths: the experiment's :meth:`Experiment.resolve` for the
``scheduler`` section, :func:`in_folder` of a profile's folder for the profile's own."""


def in_folder(folder: Path) -> Resolver:
    """The resolver of paths written in a file in ``folder`` (as the core resolves them)."""
    return functools.partial(resolve_path, Path(folder))


@attrs.frozen(kw_only=True)
class Profile:
    """A cluster's settings, checked; paths are absolute, durations in seconds, memory in MB.

    ``source`` is the file it came from (None: built-in defaults only).
    """

    source: Path | None = None
    account: str | None = None
    partition: str | None = None
    constraint: str | None = None
    qos: str | None = None
    reservation: str | None = None
    modules: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()
    conda: str | None = None
    venv: Path | None = None
    time_s: int | None = None
    mem_mb: int | None = None
    cpus: int | None = None
    max_jobs: int | None = None
    array_throttle: int | None = None
    arrays: bool = True
    max_array_size: int = 1000
    together: bool = False
    """Let a tool give one job the work of several (the evaluation cells of one model in one
    process), the others' jobs waiting for it (``afterany``) instead of running beside it."""
    mail_user: str | None = None
    mail_type: str | None = None
    directives: tuple[str, ...] = ()
    template: Path | None = None
    poll_interval: float = 2.0
    gpus: bool = True
    gpu: Gpu | None = None


class BadValue(ValueError):
    """A profile value that cannot be used; the message says what would be valid."""


# --- value parsers: (value, how relative paths are read) -> checked value ------------------


def parse_text(value: Any, paths: Resolver) -> str:
    """One line of text (a number is taken as its text: an account may be numeric)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadValue(f"must be text, not {value!r}")
    text = str(value)
    if not text.strip():
        raise BadValue("must not be empty")
    if any(char in text for char in "\n\r\0"):
        raise BadValue("must be one line")
    return text


def parse_texts(value: Any, paths: Resolver) -> tuple[str, ...]:
    """One line of text, or a list of them."""
    items = value if isinstance(value, (list, tuple)) else [value]
    return tuple(parse_text(item, paths) for item in items)


def parse_lines(value: Any, paths: Resolver) -> tuple[str, ...]:
    """Shell lines, written into the batch script as they are (the profile is the user's own
    script, like a ``.bashrc``): a list, or one block of text."""
    if isinstance(value, str):
        return tuple(line for line in value.splitlines() if line.strip())
    if not isinstance(value, (list, tuple)) or not all(isinstance(line, str) for line in value):
        raise BadValue(f"must be a list of shell lines, not {value!r}")
    if any("\0" in line for line in value):
        raise BadValue("must not contain NUL characters")
    return tuple(value)


def parse_count(least: int) -> Callable[[Any, Resolver], int]:
    """A parser of whole numbers of at least ``least``."""

    def parse(value: Any, paths: Resolver) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise BadValue(f"must be a whole number of at least {least}, not {value!r}")
        return value

    return parse


def parse_seconds(value: Any, paths: Resolver) -> float:
    """A number of seconds, 0 or more."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise BadValue(f"must be a number of seconds (0 or more), not {value!r}")
    return float(value)


def parse_flag(value: Any, paths: Resolver) -> bool:
    """true or false."""
    if not isinstance(value, bool):
        raise BadValue(f"must be true or false, not {value!r}")
    return value


def parse_path(value: Any, paths: Resolver) -> Path:
    """A path; ``~`` is the home folder, and a relative one means what its source means."""
    return paths(parse_text(value, paths))


def parse_template(value: Any, paths: Resolver) -> Path:
    """The path of a batch script template that exists."""
    path = parse_path(value, paths)
    if not path.is_file():
        raise BadValue(f"template {path} does not exist")
    return path


def parse_time(value: Any, paths: Resolver | None = None) -> int:
    """A SLURM time limit in seconds (:func:`cruijff.quantities.seconds`)."""
    try:
        return quantities.seconds(value)
    except ValueError as error:
        raise BadValue(str(error)) from None


def parse_mem(value: Any, paths: Resolver | None = None) -> int:
    """Memory in MB (:func:`cruijff.quantities.megabytes`)."""
    try:
        return quantities.megabytes(value)
    except ValueError as error:
        raise BadValue(str(error)) from None


def parse_mail_type(value: Any, paths: Resolver) -> str:
    """SLURM mail types, a list or comma-separated: ``[END, FAIL]`` -> ``END,FAIL``."""
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    names = [str(item).strip().upper() for item in items]
    for name in names:
        if name not in MAIL_TYPES:
            hint = did_you_mean(name, MAIL_TYPES) or one_of(MAIL_TYPES)
            raise BadValue(f"unknown mail type {name!r} ({hint})")
    return ",".join(names)


def parse_directives(value: Any, paths: Resolver) -> tuple[str, ...]:
    """Extra sbatch options, one per ``#SBATCH`` line: ``--exclusive``, ``--gpus-per-task=1``."""
    items = parse_texts(value, paths)
    for item in items:
        if not item.startswith("-"):
            raise BadValue(
                f"each directive is an sbatch option such as '--exclusive', not {item!r}"
            )
    return items


def parse_gpu(value: Any, paths: Resolver) -> Gpu:
    """The jobs' GPU, for estimates: a type of :data:`cruijff.hardware.GPUS` (``a100-80gb``,
    ``{type: h100-80gb}``, its figures overridable) or ``{memory_gb, tflops_bf16}`` for one the
    table lacks (:func:`cruijff.hardware.gpu_from`)."""
    try:
        return gpu_from(value)
    except ValueError as error:
        raise BadValue(str(error).removeprefix("gpu ")) from None


KEYS: dict[str, tuple[str, Callable[[Any, Resolver], Any]]] = {
    # key in the file: (field of Profile, parser)
    "account": ("account", parse_text),
    "partition": ("partition", parse_text),
    "constraint": ("constraint", parse_text),
    "qos": ("qos", parse_text),
    "reservation": ("reservation", parse_text),
    "modules": ("modules", parse_texts),
    "setup": ("setup", parse_lines),
    "conda": ("conda", parse_text),
    "venv": ("venv", parse_path),
    "time": ("time_s", parse_time),
    "mem": ("mem_mb", parse_mem),
    "cpus": ("cpus", parse_count(1)),
    "max_jobs": ("max_jobs", parse_count(1)),
    "array_throttle": ("array_throttle", parse_count(1)),
    "arrays": ("arrays", parse_flag),
    "max_array_size": ("max_array_size", parse_count(1)),
    "together": ("together", parse_flag),
    "mail_user": ("mail_user", parse_text),
    "mail_type": ("mail_type", parse_mail_type),
    "directives": ("directives", parse_directives),
    "template": ("template", parse_template),
    "poll_interval": ("poll_interval", parse_seconds),
    "gpus": ("gpus", parse_flag),
    "gpu": ("gpu", parse_gpu),
}
"""Every key a profile may hold; the experiment's ``scheduler`` section may hold them too,
except the CODE_KEYS."""

CODE_KEYS = ("setup", "template", "directives")
"""Keys whose values reach the batch script as code: shell lines, a template, any sbatch option
(``--export``, ``--output`` can run or write anything). They are taken only from a profile in
the user's own folder: an experiment file, and a profile shipped beside one, may come from
anyone, and every value they set is quoted data."""

EXPERIMENT_KEYS = ("profile", "jobs")
"""Keys only the experiment's ``scheduler`` section holds: which profile, and ``jobs`` (how
many run at once, as for the local scheduler: here the array throttle, unless the section sets
``array_throttle`` itself)."""


def check_values(
    values: Mapping[str, Any],
    paths: Resolver,
    where: Callable[[str], Where],
    *,
    untrusted: str = "",
) -> tuple[dict[str, Any], list[Problem]]:
    """Parse profile keys; returns the Profile fields they set and a Problem per bad or
    unknown key (placed by ``where(key)``). ``untrusted`` names a source that may not set
    CODE_KEYS ("the experiment file")."""
    fields: dict[str, Any] = {}
    problems: list[Problem] = []
    for key, value in values.items():
        if key not in KEYS:
            problems.append(
                Problem(
                    where=where(key),
                    message="unknown key in the cluster profile",
                    hint=did_you_mean(key, KEYS) or one_of(KEYS),
                    plugin=PLUGIN,
                )
            )
            continue
        if untrusted and key in CODE_KEYS:
            problems.append(
                Problem(
                    where=where(key),
                    message=f"{key} is not taken from {untrusted}: it would run as code on "
                    "the cluster, so only your own cluster profile may set it",
                    hint=f"put it in a profile, {profiles_dir() / 'NAME.yaml'}, and name that "
                    "in the experiment with `scheduler: {profile: NAME}`",
                    plugin=PLUGIN,
                )
            )
            continue
        field, parse = KEYS[key]
        try:
            fields[field] = parse(value, paths)
        except BadValue as error:
            problems.append(Problem(where=where(key), message=f"{key} {error}", plugin=PLUGIN))
    return fields, problems


def load_profile(path: Path) -> tuple[Profile, list[Problem]]:
    """Read and check a profile file: the Profile, and every problem with its file:line.

    A profile outside the user's folder (a path an experiment names) may not set CODE_KEYS.
    """
    path = Path(path)
    try:
        document = load_yaml(path)
    except YamlError as error:
        if [problem.message for problem in error.problems] == ["the file is empty"]:
            return Profile(source=path), []  # an empty profile: the cluster's defaults
        problems = [attrs.evolve(problem, plugin=PLUGIN, hint="") for problem in error.problems]
        return Profile(source=path), problems
    untrusted = "" if is_users(path) else f"a profile outside {profiles_dir()}"
    fields, problems = check_values(
        document.data, in_folder(path.parent), document.where, untrusted=untrusted
    )
    return Profile(source=path, **fields), problems


# --- which profile -------------------------------------------------------------------------


def profiles_dir() -> Path:
    """Where the user's cluster profiles live: ``$XDG_CONFIG_HOME/cruijff/profiles``."""
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(config) / "cruijff" / "profiles"


def installed_profiles() -> dict[str, Path]:
    """The profiles in the user's folder, by name."""
    folder = profiles_dir()
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return {}
    return {entry.stem: entry for entry in entries if entry.suffix in SUFFIXES and entry.is_file()}


def is_users(path: Path) -> bool:
    """Whether ``path`` is in the user's profiles folder (``..`` taken as written: a link the
    user put there is theirs)."""
    folder = os.path.normpath(profiles_dir().absolute())
    return os.path.normpath(Path(path).absolute()).startswith(folder + os.sep)


def any_profile() -> bool:
    """Whether the user has at least one cluster profile (cheap: one folder listing)."""
    return bool(installed_profiles())


def is_path(reference: str) -> bool:
    """Whether ``profile:`` names a file (``../della.yaml``) rather than a profile name."""
    return "/" in reference or reference.endswith(SUFFIXES) or reference.startswith("~")


class ProfileNotFound(ValueError):
    """The profile asked for does not exist; the message and hint say what does."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def find_profile(reference: Any, paths: Resolver) -> Path | None:
    """The profile file for the experiment's ``profile:`` value (None: not named), relative
    as ``paths`` reads it for a path; without one, ``default.yaml`` or the only profile there is.
    Raises ProfileNotFound when it names nothing, or several profiles leave it open."""
    installed = installed_profiles()
    if reference is None:
        if DEFAULT_NAME in installed:
            return installed[DEFAULT_NAME]
        if len(installed) > 1:
            raise ProfileNotFound(
                f"there are several cluster profiles ({', '.join(installed)}) and none is "
                f"called {DEFAULT_NAME}",
                hint="name one in the experiment (scheduler: {profile: NAME}), or rename one "
                f"to {DEFAULT_NAME}.yaml in {profiles_dir()}",
            )
        return next(iter(installed.values()), None)
    if not isinstance(reference, str) or not reference.strip():
        raise ProfileNotFound(f"profile must be a name or a path, not {reference!r}")
    if is_path(reference):
        path = paths(reference)
        if not path.is_file():
            raise ProfileNotFound(f"profile file {path} does not exist")
        return path
    if reference in installed:
        return installed[reference]
    hint = did_you_mean(reference, installed)
    if not hint:
        hint = f"installed: {', '.join(installed)}" if installed else "there are none yet"
    raise ProfileNotFound(
        f"no cluster profile called {reference!r} in {profiles_dir()}",
        hint=f"{hint}; a profile is a file NAME.yaml there, or give a path",
    )


def resolve(options: Mapping[str, Any], paths: Resolver, file: Path | None = None) -> Profile:
    """The profile the experiment's scheduler options name, with the options' own profile
    keys over it (their paths read by ``paths``; ``file`` is the experiment file, where their
    problems are placed); ProblemsFound lists every problem (the profile's with its file and
    line)."""
    problems, profile = profile_problems(
        options, paths, lambda key: Where(file=file, path=f"scheduler.{key}")
    )
    if problems:
        error = ProblemsFound(tuple(problems))
        count = len(problems)
        error.message = (
            f"{count} problem{'s' if count > 1 else ''} in the slurm scheduler's settings"
        )
        error.hint = "fix them, then check with `cruijff validate`"
        raise error
    return profile


def profile_problems(
    options: Mapping[str, Any], paths: Resolver, locate: Callable[[str], Where]
) -> tuple[list[Problem], Profile]:
    """Check the scheduler options (``locate`` places their keys) and the profile they name."""
    problems: list[Problem] = []
    profile = Profile()
    try:
        path = find_profile(options.get("profile"), paths)
    except ProfileNotFound as missing:
        where = locate("profile") if "profile" in options else locate("")
        problems.append(
            Problem(where=where, message=missing.message, hint=missing.hint, plugin=PLUGIN)
        )
        path = None
    if path is not None:
        profile, found = load_profile(path)
        problems += found
    inline = {key: value for key, value in options.items() if key not in EXPERIMENT_KEYS}
    fields, found = check_values(inline, paths, locate, untrusted="the experiment file")
    problems += found
    jobs = options.get("jobs")
    if jobs is not None:
        try:
            jobs = parse_count(1)(jobs, paths)
            fields.setdefault("array_throttle", jobs)
        except BadValue as error:
            problems.append(Problem(where=locate("jobs"), message=f"jobs {error}", plugin=PLUGIN))
    return problems, attrs.evolve(profile, **fields)


def lenient(options: Mapping[str, Any], paths: Resolver) -> Profile:
    """The profile as :func:`resolve` reads it, but with what is valid of it where it has
    problems (which validation reports), and the built-in defaults where it cannot be read:
    for what a plan only shows (hardware, reviews), never raising."""
    try:
        return profile_problems(options, paths, lambda key: Where(path=f"scheduler.{key}"))[1]
    except (OSError, ValueError, UserError):
        return Profile()
