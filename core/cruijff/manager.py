"""The plugin manager: loads plugins and gives the rest of cruijff a typed facade over the hooks.

Nothing outside this module calls ``pm.hook``. Plugins come from the ``cruijff`` entry-point
group (one at a time: a broken one is skipped with a warning naming its distribution, or is
fatal with ``CRUIJFF_STRICT_PLUGINS=1``), from ``CRUIJFF_PLUGINS`` (comma-separated module
names, handy for development) and, always, the built-in local scheduler.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import attrs
import pluggy

from cruijff import hookspecs
from cruijff.errors import PluginError, UserError
from cruijff.records import (
    Experiment,
    Generated,
    JobHandle,
    JobSpec,
    JobState,
    JobStatus,
    Key,
    ParseReport,
    Plan,
    Problem,
    SchedulerInfo,
    Tool,
    Unit,
    Validation,
    Where,
)
from cruijff.suggest import did_you_mean

GROUP = "cruijff"
BUILTIN = {"local": "cruijff.local"}


class PluginWarning(UserWarning):
    """A plugin could not be loaded and was skipped."""


@attrs.frozen(kw_only=True)
class PluginInfo:
    """An installed plugin: its name, the distribution and version it comes from."""

    name: str
    dist: str
    version: str
    module: str


class PluginManager:
    """Loads plugins and calls their hooks, naming the plugin whenever one misbehaves."""

    def __init__(self, *, entry_points: bool = True, builtins: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self.broken: dict[str, str] = {}
        self._tools: dict[str, tuple[Tool, str]] | None = None
        self._schedulers: dict[str, tuple[SchedulerInfo, str]] | None = None
        self._impls: dict[str, list[Any]] = {}  # a hook's implementations, in calling order
        if builtins:
            for name, module in BUILTIN.items():
                self.register(importlib.import_module(module), name=name)
        if entry_points:
            self._load_entry_points()
        for module in os.environ.get("CRUIJFF_PLUGINS", "").split(","):
            if module.strip():
                self._load(module.strip(), partial(importlib.import_module, module.strip()))

    # --- loading ---------------------------------------------------------------------------

    def register(self, plugin: Any, *, name: str, dist: str = "", version: str = "") -> None:
        """Register a plugin object or module under ``name``; its hooks are checked first."""
        if name in self.info:
            other = self.info[name]
            raise UserError(
                f"two plugins are named {name!r}: {other.dist or other.module} and "
                f"{dist or getattr(plugin, '__name__', repr(plugin))}",
                hint="uninstall one of them",
            )
        from cruijff import __version__

        self.pm.register(plugin, name=name)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError:
            self.pm.unregister(name=name)
            raise
        module = getattr(plugin, "__name__", type(plugin).__name__)
        builtin = module.startswith("cruijff.")
        self.info[name] = PluginInfo(
            name=name,
            dist=dist or ("cruijff" if builtin else module),
            version=version or (__version__ if builtin else "?"),
            module=module,
        )
        self._tools = self._schedulers = None
        self._impls.clear()

    def _load_entry_points(self) -> None:
        for ep in sorted(entry_points(group=GROUP), key=lambda ep: ep.name):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            self._load(ep.name, ep.load, dist=dist, version=version)

    def _load(self, name: str, load: Callable[[], Any], dist: str = "", version: str = "") -> None:
        try:
            plugin = load()
            self.register(plugin, name=name, dist=dist, version=version)
        except UserError:
            raise
        except Exception as error:  # a broken plugin must not take cruijff down
            source = dist or name
            message = f"plugin {name!r} from {source} could not be loaded: {error}"
            if os.environ.get("CRUIJFF_STRICT_PLUGINS") == "1":
                raise UserError(
                    message, hint="fix or uninstall it, or unset CRUIJFF_STRICT_PLUGINS"
                ) from error
            self.broken[name] = message
            warnings.warn(message, PluginWarning, stacklevel=2)

    def plugins(self) -> list[PluginInfo]:
        """The registered plugins, by name."""
        return sorted(self.info.values(), key=lambda info: info.name)

    def hooks_of(self, name: str) -> list[str]:
        """The hook names plugin ``name`` implements."""
        plugin = self.pm.get_plugin(name)
        return sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or ())

    # --- calling ---------------------------------------------------------------------------

    def _each(
        self, hook: str, *, stage: str, run: str = "", only: str | None = "", **kwargs: Any
    ) -> list[tuple[str, Any]]:
        """Call every implementation of ``hook`` one by one (or only plugin ``only``'s, when
        it is not empty; None calls none): ``[(plugin name, result)]``.

        Calling them ourselves (rather than through ``pm.hook``) lets an exception name the
        plugin that raised it.
        """
        results = []
        impls = self._impls.get(hook)
        if impls is None:  # asked once per hook (a plan asks 20,000 times)
            impls = self._impls[hook] = list(reversed(getattr(self.pm.hook, hook).get_hookimpls()))
        for impl in impls:
            if only != "" and impl.plugin_name != only:
                continue
            try:
                result = impl.function(*[kwargs[arg] for arg in impl.argnames])
                if hook in ("cruijff_tools", "cruijff_schedulers") and result is not None:
                    result = list(result)
            except (UserError, KeyboardInterrupt):
                raise
            except Exception as error:
                info = self.info.get(impl.plugin_name)
                raise PluginError(
                    plugin=impl.plugin_name,
                    version=info.version if info else "?",
                    stage=stage,
                    run=run,
                    cause=error,
                ) from error
            results.append((impl.plugin_name, result))
        return results

    def _one(self, hook: str, *, stage: str, what: str, run: str = "", **kwargs: Any) -> Any:
        answers = [
            (name, result)
            for name, result in self._each(hook, stage=stage, run=run, **kwargs)
            if result is not None
        ]
        if len(answers) == 1:
            return answers[0][1]
        if not answers:
            raise UserError(
                f"no plugin answered {stage} for {what}",
                hint="is the plugin that provides its tool installed? see `cruijff plugins`",
            )
        names = ", ".join(name for name, _ in answers)
        raise UserError(
            f"several plugins answered {stage} for {what}: {names}",
            hint="each unit must belong to exactly one plugin; uninstall one of them",
        )

    # --- registration ----------------------------------------------------------------------

    def _collect(self, hook: str, kind: str) -> dict[str, tuple[Any, str]]:
        found: dict[str, tuple[Any, str]] = {}
        for plugin, records in self._each(hook, stage=f"{kind} registration"):
            for item in records or ():
                if item.name in found:
                    both = sorted({self.info[found[item.name][1]].dist, self.info[plugin].dist})
                    raise UserError(
                        f"two plugins provide the {kind} {item.name!r}: {' and '.join(both)}",
                        hint="uninstall one of them",
                    )
                found[item.name] = (item, plugin)
        return dict(sorted(found.items()))

    def tools(self) -> list[Tool]:
        """Every installed tool, by name."""
        if self._tools is None:
            self._tools = self._collect("cruijff_tools", "tool")
        return [tool for tool, _ in self._tools.values()]

    def tool(self, name: str) -> Tool:
        """The tool called ``name`` (or one of its aliases); UserError listing what exists."""
        self.tools()
        assert self._tools is not None
        for tool, _ in self._tools.values():
            if name == tool.name or name in tool.aliases:
                return tool
        installed = ", ".join(self._tools) or "none"
        hint = did_you_mean(name, self._tools) or f"`pip install cruijff-{name}` if it exists"
        raise UserError(f"unknown tool {name!r} (installed: {installed})", hint=hint)

    def provider(self, tool_or_scheduler: str) -> PluginInfo:
        """The plugin that provides a tool or scheduler."""
        self.tools()
        self.schedulers()
        assert self._tools is not None and self._schedulers is not None
        entry = self._tools.get(tool_or_scheduler) or self._schedulers.get(tool_or_scheduler)
        if entry is None:
            raise KeyError(tool_or_scheduler)
        return self.info[entry[1]]

    def schedulers(self) -> list[SchedulerInfo]:
        """Every installed scheduler, by name."""
        if self._schedulers is None:
            self._schedulers = self._collect("cruijff_schedulers", "scheduler")
        return [info for info, _ in self._schedulers.values()]

    def scheduler(self, name: str) -> SchedulerInfo:
        """The scheduler called ``name``; UserError listing the installed ones otherwise."""
        for info in self.schedulers():
            if info.name == name:
                return info
        installed = ", ".join(info.name for info in self.schedulers())
        hint = did_you_mean(name, [info.name for info in self.schedulers()])
        raise UserError(
            f"unknown scheduler {name!r} (installed: {installed})",
            hint=hint or f"`pip install cruijff-{name}` if it exists",
        )

    # --- the four stages -------------------------------------------------------------------

    def parse(self, experiment: Experiment, keys: tuple[Key, ...]) -> list[tuple[str, ParseReport]]:
        """Every plugin's ParseReport on the experiment's plugin-owned keys.

        A plugin that raises gets a report with one error naming it and the exception, rather
        than stopping the check: what it choked on is a value of the user's file, most likely
        one that the other problems point at.
        """
        reports = []
        for impl in reversed(self.pm.hook.cruijff_parse.get_hookimpls()):
            arguments = {"experiment": experiment, "keys": keys}
            try:
                report = impl.function(*(arguments[arg] for arg in impl.argnames))
            except (UserError, KeyboardInterrupt):
                raise
            except Exception as error:
                report = self._parse_failure(impl.plugin_name, experiment, keys, error)
            if report is not None:
                reports.append((impl.plugin_name, report))
        return reports

    def _parse_failure(
        self, plugin: str, experiment: Experiment, keys: tuple[Key, ...], error: Exception
    ) -> ParseReport:
        info = self.info.get(plugin)
        lines = str(error).strip().splitlines()
        brief = f"{type(error).__name__}: {lines[0][:120]}" if lines else type(error).__name__
        problem = Problem(
            where=Where(file=experiment.file),
            message=f"plugin {plugin} {info.version if info else '?'} could not check the "
            f"file ({brief})",
            hint="a value it does not expect, likely one the other errors point at; if none "
            "does, this is a bug in that plugin: report it to its authors",
            plugin=plugin,
        )
        # Which keys it would have claimed is unknown: claiming them all keeps its own keys
        # from being reported as unknown ones on top of this error.
        return ParseReport(claimed={key.path for key in keys}, problems=(problem,))

    def select(
        self, experiment: Experiment, tool: Tool, upstream: tuple[Unit, ...]
    ) -> tuple[Unit, ...]:
        """The units of ``tool`` in this experiment, from the one plugin that owns it."""
        units = self._one(
            "cruijff_select",
            stage="select",
            what=f"tool {tool.name!r}",
            experiment=experiment,
            tool=tool,
            upstream=upstream,
        )
        return tuple(units)

    def generate(self, experiment: Experiment, unit: Unit) -> Generated:
        """Files and job of a unit, from the plugin that owns its tool."""
        return self._one(
            "cruijff_generate",
            stage="generate",
            what=f"unit {unit.id!r}",
            run=unit.run,
            experiment=experiment,
            unit=unit,
        )

    def validate(self, experiment: Experiment, unit: Unit, status: JobStatus | None) -> Validation:
        """The verdict of the plugin that owns ``unit`` on what it left behind."""
        return self._one(
            "cruijff_validate",
            stage="validate",
            what=f"unit {unit.id!r}",
            run=unit.run,
            experiment=experiment,
            unit=unit,
            status=status,
        )

    # --- orchestration ---------------------------------------------------------------------

    def retry(self, experiment: Experiment, unit: Unit, job: JobSpec, status: JobStatus) -> JobSpec:
        """A failed job adjusted for its retry by the plugin that provides its unit's tool,
        else by the general policy (:func:`cruijff.retry.default_retry`)."""
        from cruijff.retry import default_retry

        owner = self._owner(unit.tool)
        for _, adjusted in self._each(
            "cruijff_retry",
            stage="retry",
            run=unit.run,
            only=owner,
            experiment=experiment,
            unit=unit,
            job=job,
            status=status,
        ):
            if adjusted is not None:
                return adjusted
        return default_retry(job, status)

    def observe(self, experiment: Experiment, unit: Unit) -> Any:
        """``cruijff_observe``: the Observations of a unit, from the plugin that provides its
        tool (None when it has nothing to analyse)."""
        for _, observed in self._each(
            "cruijff_observe",
            stage="analyze",
            run=unit.run,
            only=self._owner(unit.tool),
            experiment=experiment,
            unit=unit,
        ):
            if observed is not None:
                return observed
        return None

    def report(self, analysis: Any, experiment: Experiment) -> list[Any]:
        """``cruijff_report``: every plugin's report sections, in plugin order, each marked
        with the plugin that added it."""
        import attrs

        sections = []
        for plugin, found in self._each(
            "cruijff_report", stage="report", analysis=analysis, experiment=experiment
        ):
            sections += [attrs.evolve(section, plugin=plugin) for section in found or ()]
        return sections

    def estimate(
        self, experiment: Experiment, unit: Unit, job: JobSpec, hardware: Any, measurements: Any
    ) -> Any:
        """``cruijff_estimate``: the Estimate of a unit's job from the plugin that provides its
        tool (None when it cannot say)."""
        return self._first(
            "cruijff_estimate",
            stage="estimate",
            unit=unit,
            experiment=experiment,
            job=job,
            hardware=hardware,
            measurements=measurements,
        )

    def review(self, plan: Plan) -> list[tuple[str, Any]]:
        """``cruijff_review``: every plugin's Review of a plan, as (plugin, review)."""
        return [
            (plugin, found)
            for plugin, found in self._each("cruijff_review", stage="review", plan=plan)
            if found is not None
        ]

    def measure(self, experiment: Experiment, unit: Unit, status: JobStatus) -> Any:
        """``cruijff_measure``: what a finished unit's job used, from its tool's plugin."""
        return self._first(
            "cruijff_measure", stage="measure", unit=unit, experiment=experiment, status=status
        )

    def calibration(self, experiment: Experiment, unit: Unit, directory: Path) -> Any:
        """``cruijff_calibration``: a short version of a unit, from its tool's plugin (None: its
        tool cannot calibrate)."""
        return self._first(
            "cruijff_calibration",
            stage="calibrate",
            unit=unit,
            experiment=experiment,
            directory=directory,
        )

    def _first(self, hook: str, *, stage: str, unit: Unit, **kwargs: Any) -> Any:
        """The first answer of the plugin that provides ``unit``'s tool (None: no answer)."""
        for _, answer in self._each(
            hook, stage=stage, run=unit.run, only=self._owner(unit.tool), unit=unit, **kwargs
        ):
            if answer is not None:
                return answer
        return None

    def _owner(self, tool: str) -> str | None:
        """The name of the plugin that provides ``tool`` (None when no installed one does)."""
        self.tools()
        assert self._tools is not None
        entry = self._tools.get(tool)
        return entry[1] if entry else None

    # The lifecycle observers: one typed method per hook, called on every plugin.

    def after_design(self, plan: Plan) -> None:
        """Tell every plugin the plan is made (``cruijff_after_design``)."""
        self._each("cruijff_after_design", stage="after design", plan=plan)

    def before_scaffold(self, plan: Plan) -> None:
        """``cruijff_before_scaffold``: files are about to be written."""
        self._each("cruijff_before_scaffold", stage="before scaffold", plan=plan)

    def after_scaffold(self, plan: Plan, written: tuple[Path, ...]) -> None:
        """``cruijff_after_scaffold``: these files were written."""
        self._each("cruijff_after_scaffold", stage="after scaffold", plan=plan, written=written)

    def on_scaffold_error(self, plan: Plan, error: BaseException) -> None:
        """``cruijff_on_scaffold_error``: scaffolding stopped with ``error``."""
        self._each("cruijff_on_scaffold_error", stage="scaffold error", plan=plan, error=error)

    def before_run(self, plan: Plan, jobs: tuple[JobSpec, ...]) -> None:
        """``cruijff_before_run``: these jobs are about to be submitted."""
        self._each("cruijff_before_run", stage="before run", plan=plan, jobs=jobs)

    def after_submit(
        self, plan: Plan, jobs: tuple[JobSpec, ...], handles: tuple[JobHandle, ...]
    ) -> None:
        """``cruijff_after_submit``: the scheduler took these jobs."""
        self._each(
            "cruijff_after_submit", stage="after submit", plan=plan, jobs=jobs, handles=handles
        )

    def on_job_error(
        self, plan: Plan, job: JobSpec, status: JobStatus, validation: Validation | None
    ) -> None:
        """``cruijff_on_job_error``: a job failed."""
        self._each(
            "cruijff_on_job_error",
            stage="job error",
            run=job.unit_id,
            plan=plan,
            job=job,
            status=status,
            validation=validation,
        )

    def after_run(self, plan: Plan, states: Mapping[str, JobState | None]) -> None:
        """``cruijff_after_run``: every job of the run has finished."""
        self._each("cruijff_after_run", stage="after run", plan=plan, states=dict(states))

    def on_run_error(self, plan: Plan, error: BaseException) -> None:
        """``cruijff_on_run_error``: ``cruijff run`` stopped with ``error``."""
        self._each("cruijff_on_run_error", stage="run error", plan=plan, error=error)

    def add_commands(self, cli: Any) -> None:
        """Let plugins add their commands to the CLI group."""
        self._each("cruijff_commands", stage="commands", cli=cli)


def requirements_status(requires: Iterable[str]) -> Mapping[str, bool]:
    """Whether each module a tool's jobs need can be found, without importing it."""
    from importlib.util import find_spec

    status = {}
    for module in requires:
        try:
            status[module] = find_spec(module) is not None
        except (ImportError, ValueError):
            status[module] = False
    return status
