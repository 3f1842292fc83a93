"""Design: check an experiment file through the core and every plugin, then plan its work.

``check`` loads the file and gathers every problem at once (the core's shape checks, the keys no
plugin claims, each plugin's own checks). ``plan`` then asks the tools, in role order, which
units exist and what each generates. Nothing here writes a file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from cruijff import stamps
from cruijff.errors import ProblemsFound, UserError
from cruijff.experiment import load_experiment
from cruijff.manager import PluginManager
from cruijff.measurements import Index
from cruijff.records import (
    Experiment,
    Plan,
    Problem,
    Role,
    SchedulerConfig,
    SchedulerInfo,
    Severity,
    Tool,
)
from cruijff.suggest import did_you_mean

LOCAL = "local"


@attrs.frozen(kw_only=True)
class Checked:
    """An experiment and what checking it found; ``ok`` when no problem is an error."""

    experiment: Experiment | None
    problems: tuple[Problem, ...]
    tools: tuple[Tool, ...] = ()

    @property
    def ok(self) -> bool:
        return self.experiment is not None and not any(
            problem.severity is Severity.ERROR for problem in self.problems
        )

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)


def load(manager: PluginManager, path: Path) -> Any:
    """The experiment file as the core reads it (run names with the tools' labels), not yet
    checked by any plugin: what ``status`` needs of it."""
    labels: dict[str, str] = {}
    for tool in manager.tools():
        labels.update(tool.labels)
    return load_experiment(path, labels=labels)


def with_scheduler(
    manager: PluginManager, experiment: Experiment, requested: str | None
) -> Experiment:
    """``experiment`` with the scheduler it runs on (:func:`choose_scheduler`)."""
    chosen = choose_scheduler(manager, experiment, requested)
    return attrs.evolve(
        experiment,
        scheduler=SchedulerConfig(
            name=chosen.name,
            options=experiment.scheduler.options,
            gpus=bool(chosen.gpus(experiment)),
            together=bool(chosen.together(experiment)),
        ),
    )


def check(manager: PluginManager, path: Path, *, scheduler: str | None = None) -> Checked:
    """Load ``path`` and check it through the core and every plugin; never raises for a
    mistake in the file (the problems say what is wrong)."""
    with stamps.steady():
        return _check(manager, path, scheduler)


def _check(manager: PluginManager, path: Path, scheduler: str | None) -> Checked:
    loaded = load(manager, path)
    experiment, problems = loaded.experiment, list(loaded.problems)
    if experiment is None:
        return Checked(experiment=None, problems=tuple(problems))

    tools = []
    for role, name in experiment.tools.items():
        try:
            tools.append(manager.tool(name))
        except UserError as error:
            problems.append(
                Problem(
                    where=experiment.locate(_tool_path(experiment, role)),
                    message=error.message,
                    hint=error.hint,
                )
            )
    experiment = with_scheduler(manager, experiment, scheduler)

    claimed: set[str] = set()
    vocabulary: dict[str, set[str]] = {}
    for plugin, report in manager.parse(experiment, loaded.keys):
        claimed |= report.claimed
        for section, names in report.vocabulary.items():
            vocabulary.setdefault(section, set()).update(names)
        problems += [attrs.evolve(p, plugin=p.plugin or plugin) for p in report.problems]
    for key in loaded.keys:
        if key.path not in claimed:
            known = vocabulary.get(key.section, set())
            problems.append(
                Problem(
                    where=experiment.locate(key.path),
                    message="unknown key"
                    if known or tools
                    else "no installed plugin uses this key",
                    hint=did_you_mean(key.name, known)
                    or f"no tool of this experiment ({_names(tools)}) knows it",
                )
            )
    problems.sort(key=lambda p: (p.where.line or 0, p.where.column or 0, p.where.path))
    return Checked(experiment=experiment, problems=tuple(problems), tools=tuple(tools))


def choose_scheduler(
    manager: PluginManager, experiment: Experiment, requested: str | None
) -> SchedulerInfo:
    """``--scheduler``, else the experiment's ``scheduler.name``, else the first installed
    scheduler that says it can be used here (a cluster's), else the built-in local one."""
    name = requested or experiment.scheduler.name
    if name:
        return manager.scheduler(name)
    for info in manager.schedulers():
        if info.name != LOCAL and info.available():
            return info
    return manager.scheduler(LOCAL)


def plan(manager: PluginManager, checked: Checked) -> Plan:
    """The units and jobs of a checked experiment; ProblemsFound if it has errors."""
    if not checked.ok:
        raise ProblemsFound(checked.errors)
    with stamps.steady():
        return _plan(manager, checked)


def _plan(manager: PluginManager, checked: Checked) -> Plan:
    experiment = checked.experiment
    assert experiment is not None
    roles = [role.value for role in Role]
    ordered = sorted(
        zip(experiment.tools, checked.tools, strict=True),
        key=lambda pair: roles.index(pair[0]) if pair[0] in roles else len(roles),
    )
    root = str(experiment.directory.resolve())
    units: list = []
    for _, tool in ordered:
        units += manager.select(experiment, tool, tuple(units))
    generated = {}
    seen: set[str] = set()
    for unit in units:
        if unit.id in seen:
            raise UserError(f"two units are called {unit.id!r}", hint="a tool plugin bug")
        missing = [dep for dep in unit.depends_on if dep not in seen]
        if missing:
            raise UserError(
                f"unit {unit.id!r} depends on {', '.join(missing)}, which come after it or do "
                "not exist",
                hint="a tool plugin bug: units must come in dependency order",
            )
        seen.add(unit.id)
        result = manager.generate(experiment, unit)
        for path in [unit.directory, *(spec.path for spec in result.files)]:
            _inside(root, path, unit.id)
        generated[unit.id] = result
    warnings = tuple(p for p in checked.problems if p.severity is Severity.WARNING)
    result_plan = estimated(
        manager,
        Plan(experiment=experiment, units=tuple(units), generated=generated, warnings=warnings),
    )
    manager.after_design(result_plan)
    return result_plan


def estimated(manager: PluginManager, plan: Plan, measurements: Index | None = None) -> Plan:
    """``plan`` with every job's estimate (from its tool) and every plugin's review (warnings,
    after the file's own, and notes)."""
    experiment = plan.experiment
    hardware = manager.scheduler(experiment.scheduler.name or LOCAL).hardware(experiment)
    index = measurements or Index()
    estimates = {
        unit.id: manager.estimate(experiment, unit, job, hardware, index)
        for unit in plan.units
        if (job := plan.generated[unit.id].job) is not None
    }
    plan = attrs.evolve(plan, hardware=hardware, estimates=estimates)
    warnings: list[Problem] = list(plan.warnings)
    notes: dict[str, object] = {}
    for plugin, review in manager.review(plan):
        warnings += [
            attrs.evolve(p, plugin=p.plugin or plugin, severity=Severity.WARNING)
            for p in review.problems
        ]
        notes.update(review.notes)
    return attrs.evolve(plan, warnings=tuple(warnings), notes=notes)


def design(manager: PluginManager, path: Path, *, scheduler: str | None = None) -> Plan:
    """Check and plan in one go."""
    return plan(manager, check(manager, path, scheduler=scheduler))


def _inside(root: str, path: Path, unit: str) -> None:
    # lexical: ".." and absolute paths are what a generated path could escape with (joined as
    # text, as root / path would be: a plan checks thousands, nearly all plainly inside)
    text = os.fspath(path)
    if ".." not in text and (text.startswith(root + os.sep) or not os.path.isabs(text)):
        return
    normal = os.path.normpath(os.path.join(root, text))
    if normal != root and not normal.startswith(root + os.sep):
        raise UserError(
            f"unit {unit!r} wants to write {path}, outside the experiment directory {root}",
            hint="cruijff writes only inside the experiment directory",
        )


def _tool_path(experiment: Experiment, role: str) -> str:
    """Where the file names the tool of ``role``: the generator may be named in its block."""
    written = experiment.document.get("tools")
    if role == Role.GENERATION.value and not (isinstance(written, Mapping) and role in written):
        return "data.data_generation.tool"
    return f"tools.{role}"


def _names(tools: tuple[Tool, ...] | list[Tool]) -> str:
    return ", ".join(tool.name for tool in tools) or "none"


def runs_table(plan: Plan) -> list[Mapping[str, object]]:
    """One row per run: its name, type, model, parameters and how many jobs it has."""
    jobs_per_run: dict[str, int] = {}
    for unit in plan.units:
        if plan.generated[unit.id].job is not None:
            jobs_per_run[unit.run] = jobs_per_run.get(unit.run, 0) + 1
    return [
        {
            "name": run.name,
            "type": run.type.value,
            "model": run.model,
            "parameters": dict(run.parameters),
            "directory": str(run.directory),
            "jobs": jobs_per_run.get(run.name, 0),
        }
        for run in plan.experiment.runs
    ]
