"""Batch scripts: the values of a call (jobs, resources, profile) and the jinja2 template that
writes them.

Every value reaches the script through a filter: ``directive`` on ``#SBATCH`` lines (sbatch
parses those itself: quotes group, a backslash escapes, an unquoted ``#`` starts a comment, and a
newline cannot be carried at all), ``quote`` on shell lines (:func:`shlex.quote`). Templates are
rendered with StrictUndefined, so a misspelt variable is an error, not an empty string.
"""

from __future__ import annotations

import re
import shlex
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from cruijff.errors import UserError
from cruijff.records import Resources
from cruijff_slurm.arrays import Call
from cruijff_slurm.profile import (
    BadValue,
    Profile,
    parse_count,
    parse_directives,
    parse_mail_type,
    parse_text,
)

DEFAULT_TEMPLATE = "batch.sh.j2"

_PLAIN = re.compile(r"[A-Za-z0-9_./:=,+@%-]+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class UnsafeValue(ValueError):
    """A value that cannot be written into a batch script safely."""


def quote(value: Any) -> str:
    """A shell word that stands for ``value`` exactly (NUL cannot be carried by bash)."""
    text = str(value)
    if "\0" in text:
        raise UnsafeValue(f"{text!r} contains a NUL character")
    return shlex.quote(text)


def directive(value: Any) -> str:
    """``value`` as sbatch reads it on an ``#SBATCH`` line: plain words as they are, anything
    else in single quotes with ``\\`` and ``'`` escaped (sbatch's parser, not the shell's)."""
    text = str(value)
    if any(char in text for char in "\n\r\0"):
        raise UnsafeValue(f"{text!r} spans lines, which an #SBATCH line cannot carry")
    if _PLAIN.fullmatch(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def identifier(value: Any) -> str:
    """A shell variable name, checked."""
    text = str(value)
    if not _IDENTIFIER.fullmatch(text):
        raise UnsafeValue(f"{text!r} is not a valid environment variable name")
    return text


def slurm_path(path: Path) -> str:
    """A path for ``--output``: SLURM expands ``%`` patterns there, so a literal one is ``%%``."""
    text = str(path)
    if "\\" in text:
        raise UnsafeValue(f"{text!r} contains a backslash, which SLURM's file names cannot carry")
    return text.replace("%", "%%")


def slurm_time(seconds: int) -> str:
    """Seconds as ``--time`` takes them, rounded up to whole minutes: 90 -> ``00:02:00``."""
    minutes = -(-seconds // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    clock = f"{hours:02d}:{minutes:02d}:00"
    return f"{days}-{clock}" if days else clock


def array_spec(indices: list[int], throttle: int | None) -> str:
    """``--array`` for these indices, ranges compacted: [0, 1, 2, 5] -> ``0-2,5%4``."""
    parts: list[str] = []
    ordered = sorted(indices)
    start = previous = ordered[0]
    for index in [*ordered[1:], None]:
        if index is not None and index == previous + 1:
            previous = index
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if index is not None:
            start = previous = index
    return ",".join(parts) + (f"%{throttle}" if throttle else "")


# --- the values of one call -----------------------------------------------------------------

EXTRAS = {
    # Resources.extras keys a job may set, over the profile's
    "account": parse_text,
    "partition": parse_text,
    "constraint": parse_text,
    "qos": parse_text,
    "reservation": parse_text,
    "mail_user": parse_text,
    "mail_type": parse_mail_type,
    "ntasks": parse_count(1),
    "ntasks_per_node": parse_count(1),
    "directives": parse_directives,
}
"""The scheduler-specific settings a job may carry in ``Resources.extras``; other keys belong
to other schedulers and are left alone."""


def describe(call: Call) -> str:
    """The jobs of a call, for messages: ``rank4.train`` or ``rank4.train (and 9 more)``."""
    units = call.units
    return units[0] if len(units) == 1 else f"{units[0]} (and {len(units) - 1} more in one array)"


def limits(res: Resources, profile: Profile) -> tuple[str, str]:
    """``--time`` and ``--mem`` of a job ("" for none): its own, else the profile's."""
    time_s = res.time_s or profile.time_s
    mem_mb = res.mem_mb or profile.mem_mb
    return (slurm_time(time_s) if time_s else "", f"{mem_mb}M" if mem_mb else "")


def call_context(
    call: Call, profile: Profile, folder: Path, job_name: str, throttle: int | None
) -> dict[str, Any]:
    """Everything the template may use for one call; UserError names the job of a bad value."""
    first = call.tasks[0].job
    res = first.resources
    extras: dict[str, Any] = {}
    for key, parse in EXTRAS.items():
        if key in res.extras:
            try:
                extras[key] = parse(res.extras[key], folder)
            except BadValue as error:
                raise UserError(
                    f"job {first.unit_id}: resources extra {key} {error}",
                    hint="a tool plugin or the experiment set it",
                ) from None
    try:
        output = (
            slurm_path(folder) + "/%a.log" if call.array else slurm_path(Path(first.log).absolute())
        )
    except UnsafeValue as error:
        raise UserError(f"job {first.unit_id}: its log path {error}") from None
    cpus = res.cpus if res.cpus != 1 else (profile.cpus or 1)
    time, mem = limits(res, profile)
    tasks = []
    for task in call.tasks:
        job = task.job
        if not job.argv:
            raise UserError(f"job {job.unit_id} has no command to run")
        tasks.append(
            {
                "index": task.index,
                "unit_id": job.unit_id,
                "name": job.name,
                "workdir": str(Path(job.workdir).absolute()),
                "log": str(Path(job.log).absolute()),
                "env": sorted((str(k), str(v)) for k, v in job.env.items()),
                "argv": [str(arg) for arg in job.argv],
            }
        )
    indices = [task.index for task in call.tasks if task.index is not None]
    return {
        "job_name": job_name,
        "output": output,
        "error": output,
        "chdir": str(folder),
        "array": array_spec(indices, throttle) if call.array else "",
        "time": time,
        "mem": mem,
        "cpus": cpus,
        "gpus": res.gpus,
        "nodes": res.nodes,
        "ntasks": extras.get("ntasks"),
        "ntasks_per_node": extras.get("ntasks_per_node"),
        "account": extras.get("account", profile.account),
        "partition": extras.get("partition", profile.partition),
        "constraint": extras.get("constraint", profile.constraint),
        "qos": extras.get("qos", profile.qos),
        "reservation": extras.get("reservation", profile.reservation),
        "mail_user": extras.get("mail_user", profile.mail_user),
        "mail_type": extras.get("mail_type", profile.mail_type),
        "directives": [*profile.directives, *extras.get("directives", ())],
        "modules": list(profile.modules),
        "conda": profile.conda or "",
        "venv": str(profile.venv) if profile.venv else "",
        "setup": list(profile.setup),
        "tasks": tasks,
        "units": call.units,
    }


TEMPLATE_VARIABLES = (
    "job_name",
    "output",
    "error",
    "chdir",
    "array",
    "time",
    "mem",
    "cpus",
    "gpus",
    "nodes",
    "ntasks",
    "ntasks_per_node",
    "account",
    "partition",
    "constraint",
    "qos",
    "reservation",
    "mail_user",
    "mail_type",
    "directives",
    "modules",
    "conda",
    "venv",
    "setup",
    "tasks",
    "units",
)
"""What a template can use (each task: index, unit_id, name, workdir, log, env, argv)."""


@attrs.define
class Renderer:
    """Renders batch scripts from the shipped template, or from the profile's ``template``."""

    template: Path | None = None

    @cached_property
    def _compiled(self) -> Any:
        import jinja2

        env = jinja2.Environment(
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters.update(quote=quote, directive=directive, identifier=identifier)
        if self.template is None:
            source = resources.files("cruijff_slurm").joinpath("templates", DEFAULT_TEMPLATE)
            text, name = source.read_text(encoding="utf-8"), DEFAULT_TEMPLATE
        else:
            try:
                text, name = self.template.read_text(encoding="utf-8"), str(self.template)
            except (OSError, UnicodeDecodeError) as error:
                raise UserError(
                    f"cannot read the batch script template {self.template}: {error}",
                    hint="fix `template:` in your cluster profile",
                ) from None
        try:
            return env.from_string(text), name
        except jinja2.TemplateSyntaxError as error:
            raise UserError(
                f"{name}:{error.lineno}: template syntax error: {error.message}",
                hint="fix the template named by `template:` in your cluster profile",
            ) from None

    def render(self, context: dict[str, Any]) -> str:
        """The script for ``context``; UserError names the jobs when a value is unsafe or the
        template is wrong."""
        import jinja2

        template, name = self._compiled
        units = context.get("units") or ["?"]
        who = units[0] if len(units) == 1 else f"{units[0]} (and {len(units) - 1} more)"
        try:
            text = template.render(**context)
        except UnsafeValue as error:
            raise UserError(
                f"job {who}: cannot write {error} into a batch script",
                hint="rename it, or remove the line break",
            ) from None
        except jinja2.UndefinedError as error:
            raise UserError(
                f"{name}: {error.message}",
                hint="variables: " + ", ".join(TEMPLATE_VARIABLES),
            ) from None
        except jinja2.TemplateError as error:
            raise UserError(f"{name}: template error: {error}") from None
        if not text.startswith("#!"):
            raise UserError(
                f"{name}: a batch script must start with a #! line (sbatch refuses it otherwise)"
            )
        return text
