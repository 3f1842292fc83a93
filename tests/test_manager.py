"""Plugin loading and the typed facade: broken, duplicate and strict plugins, wrapped errors."""

from __future__ import annotations

import importlib
import sys
import textwrap
import types
from pathlib import Path

import pytest

from cruijff import hookimpl
from cruijff.errors import PluginError, UserError
from cruijff.manager import PluginManager, PluginWarning
from cruijff.records import Role, SchedulerInfo, Tool


def install_dist(site: Path, dist: str, entry: str, module: str, code: str) -> None:
    """A real installed distribution: a dist-info with an entry point, and its module."""
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[cruijff]\n{entry} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    importlib.invalidate_caches()


@pytest.fixture
def site(tmp_path, monkeypatch):
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for name in list(sys.modules):
        if name.startswith("plug_"):
            del sys.modules[name]


GOOD = """
from cruijff import hookimpl
from cruijff.records import Role, Tool

@hookimpl
def cruijff_tools():
    yield Tool(name="{tool}", role=Role.PREPARATION)
"""


def test_entry_point_plugin_is_loaded_with_its_distribution(site):
    install_dist(site, "cruijff-good", "good", "plug_good", GOOD.format(tool="goodtool"))
    manager = PluginManager()
    info = {p.name: p for p in manager.plugins()}["good"]
    assert (info.dist, info.version) == ("cruijff-good", "1.2.3")
    assert manager.tool("goodtool").role is Role.PREPARATION
    assert manager.hooks_of("good") == ["cruijff_tools"]


def test_broken_plugin_is_skipped_with_a_warning_naming_its_distribution(site):
    install_dist(site, "cruijff-broken", "broken", "plug_broken", "raise ImportError('no gpu')")
    install_dist(site, "cruijff-good", "good", "plug_good", GOOD.format(tool="goodtool"))
    with pytest.warns(PluginWarning, match=r"cruijff-broken.*no gpu"):
        manager = PluginManager()
    assert "broken" in manager.broken
    assert manager.tool("goodtool")  # the others still work


def test_misspelled_hook_makes_a_plugin_broken(site):
    code = "from cruijff import hookimpl\n@hookimpl\ndef cruijff_tolls():\n    return []\n"
    install_dist(site, "cruijff-typo", "typo", "plug_typo", code)
    with pytest.warns(PluginWarning, match="cruijff-typo"):
        manager = PluginManager()
    assert "typo" not in {p.name for p in manager.plugins()}


def test_strict_mode_makes_a_broken_plugin_fatal(site, monkeypatch):
    install_dist(site, "cruijff-broken", "broken", "plug_broken", "raise ImportError('no gpu')")
    monkeypatch.setenv("CRUIJFF_STRICT_PLUGINS", "1")
    with pytest.raises(UserError, match=r"cruijff-broken.*no gpu"):
        PluginManager()


def test_duplicate_tool_names_name_both_providers(site):
    install_dist(site, "cruijff-one", "one", "plug_one", GOOD.format(tool="same"))
    install_dist(site, "cruijff-two", "two", "plug_two", GOOD.format(tool="same"))
    manager = PluginManager()
    with pytest.raises(UserError, match=r"cruijff-one and cruijff-two"):
        manager.tools()


def test_duplicate_plugin_names_are_an_error(plugin_manager):
    plugin_manager.register(types.SimpleNamespace(), name="x")
    with pytest.raises(UserError, match="two plugins are named 'x'"):
        plugin_manager.register(types.SimpleNamespace(), name="x")


def test_unknown_tool_lists_installed_and_suggests(plugin_manager, fake_tools):
    with pytest.raises(UserError) as caught:
        plugin_manager.tool("fak")
    assert "installed: fake, fake-eval" in caught.value.message
    assert "did you mean fake" in caught.value.hint
    assert plugin_manager.tool("fake-evaluator").name == "fake-eval"  # alias


def test_unknown_scheduler_says_what_to_install(plugin_manager):
    with pytest.raises(UserError) as caught:
        plugin_manager.scheduler("pbs")
    assert "installed: local" in caught.value.message
    assert "pip install cruijff-pbs" in caught.value.hint


class Exploding:
    @hookimpl
    def cruijff_tools(self):
        yield Tool(name="boom", role=Role.PREPARATION)

    @hookimpl
    def cruijff_generate(self, experiment, unit):
        raise ValueError("bad template")


def test_exception_in_plugin_names_plugin_version_stage_and_run(plugin_manager):
    plugin_manager.register(Exploding(), name="exploding", dist="cruijff-exploding", version="9.9")
    unit = types.SimpleNamespace(id="r1.train", run="r1")
    with pytest.raises(PluginError) as caught:
        plugin_manager.generate(experiment=None, unit=unit)
    message = caught.value.message
    for part in ("exploding", "9.9", "generate", "r1", "ValueError", "bad template"):
        assert part in message


def test_zero_or_several_answers_are_errors(plugin_manager):
    unit = types.SimpleNamespace(id="u", run="r")
    with pytest.raises(UserError, match="no plugin answered generate"):
        plugin_manager.generate(experiment=None, unit=unit)

    class Answers:
        @hookimpl
        def cruijff_generate(self, experiment, unit):
            return "mine"

    plugin_manager.register(Answers(), name="a1")
    plugin_manager.register(Answers(), name="a2")
    with pytest.raises(UserError, match="several plugins answered generate for unit 'u': a2, a1"):
        plugin_manager.generate(experiment=None, unit=unit)


def test_local_scheduler_is_built_in(plugin_manager):
    assert [info.name for info in plugin_manager.schedulers()] == ["local"]
    assert isinstance(plugin_manager.scheduler("local"), SchedulerInfo)
