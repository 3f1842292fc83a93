"""pytest fixtures for cruijff's tests and for plugin authors. Opt in, in a conftest.py::

    pytest_plugins = ["cruijff.testing.fixtures"]

- ``cruijff_plugin_manager``: a fresh manager without entry points (only the local scheduler).
- ``cruijff_register_plugin``: register a module or object in it.
- ``cruijff_fake_tools``: register the fake trainer and evaluator of :mod:`cruijff.testing.fake`.
- ``cruijff_inprocess``: register the in-process scheduler (:mod:`cruijff.testing.inprocess`),
  so the loop runs without the local executor: ``--scheduler inprocess``.
- ``cruijff_make_experiment``: write an experiment file (with a model folder and data).
- ``cruijff_cli``: run the ``cruijff`` command in-process with that manager.
- ``cruijff_isolated_config``: an empty user configuration folder (``XDG_CONFIG_HOME``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cruijff.hookspecs import hookimpl
from cruijff.testing import DEFAULT_EXPERIMENT, merge


@pytest.fixture
def cruijff_isolated_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
):
    """Point the user configuration folder at an empty one, so no real profile leaks in, and
    the index of measurements (``CRUIJFF_DATA_DIR``) at an empty one of the test's own, so
    no test's estimates learn from another's runs or from the machine's."""
    folder = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    monkeypatch.setenv("CRUIJFF_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    return folder


@pytest.fixture
def cruijff_plugin_manager(monkeypatch: pytest.MonkeyPatch):
    """A fresh plugin manager: the built-in local scheduler, no entry points."""
    from cruijff.manager import PluginManager

    monkeypatch.delenv("CRUIJFF_PLUGINS", raising=False)
    return PluginManager(entry_points=False)


@pytest.fixture
def cruijff_register_plugin(cruijff_plugin_manager) -> Callable[..., Any]:
    """Register a plugin (module or object) in ``plugin_manager``; returns the plugin."""

    def register(plugin: Any, name: str | None = None, **info: str) -> Any:
        cruijff_plugin_manager.register(
            plugin, name=name or getattr(plugin, "__name__", "plugin"), **info
        )
        return plugin

    return register


@pytest.fixture
def cruijff_fake_tools(cruijff_register_plugin):
    """The fake trainer and evaluator, registered."""
    from cruijff.testing import fake

    return cruijff_register_plugin(fake, name="fake")


@pytest.fixture
def cruijff_inprocess(cruijff_plugin_manager) -> str:
    """Register the in-process scheduler; returns its name, for ``--scheduler``."""
    from cruijff.records import SchedulerInfo
    from cruijff.testing.inprocess import NAME, InProcessScheduler

    class Plugin:
        @hookimpl
        def cruijff_schedulers(self):  # type: ignore[no-untyped-def]
            # never the default: a test asks for it by name
            yield SchedulerInfo(
                name=NAME,
                factory=lambda experiment, options: InProcessScheduler(
                    options, experiment.state_dir
                ),
                available=lambda: False,
            )

    cruijff_plugin_manager.register(Plugin(), name=NAME)
    return NAME


@pytest.fixture
def cruijff_make_experiment(tmp_path: Path) -> Callable[..., Path]:
    """Write an experiment file: the default one (fake tools, two runs and a control), with
    ``changes`` merged in (a None value removes a key), or ``text`` as it is."""

    def make(
        changes: dict[str, Any] | None = None,
        *,
        text: str | None = None,
        folder: Path | None = None,
        name: str = "experiment.yaml",
    ) -> Path:
        root = folder or tmp_path
        model = root / "models" / "tiny"
        model.mkdir(parents=True, exist_ok=True)
        (model / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
        data = root / "data" / "words.json"
        data.parent.mkdir(parents=True, exist_ok=True)
        words = ("apple", "pear", "fig", "plum", "kiwi", "lime", "lemon", "mango")
        rows = [{"input": word, "output": word.upper()} for word in words]
        data.write_text(json.dumps({"train": rows, "validation": rows[:1], "test": rows[:1]}))
        path = root / name
        if text is None:
            text = yaml.safe_dump(merge(DEFAULT_EXPERIMENT, changes or {}), sort_keys=False)
        path.write_text(text)
        return path

    return make


@pytest.fixture
def cruijff_cli(cruijff_plugin_manager) -> Callable[..., Any]:
    """Run ``cruijff ARGS...`` in-process with ``plugin_manager``; returns click's Result."""
    from click.testing import CliRunner

    from cruijff.cli import App
    from cruijff.cli import cli as group

    def invoke(*args: Any, input: str | None = None) -> Any:
        app = App()
        app._manager = cruijff_plugin_manager
        return CliRunner().invoke(
            group,
            [str(a) for a in args],
            obj=app,
            input=input,
            prog_name="cruijff",
            catch_exceptions=False,
        )

    return invoke
