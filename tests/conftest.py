"""Shared test set-up: the testing kit, opted into as a plugin author would, under the short
names cruijff's own tests use; and every test gets an empty user configuration folder."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from slurmcluster import bare_cluster, slurm_cluster  # noqa: F401  (the real clusters)

pytest_plugins = ["cruijff.testing.fixtures"]


@pytest.fixture(autouse=True)
def _no_user_config(cruijff_isolated_config):
    """The machine's own cluster profiles must never leak into a test."""
    return cruijff_isolated_config


@pytest.fixture
def plugin_manager(cruijff_plugin_manager):
    return cruijff_plugin_manager


@pytest.fixture
def register_plugin(cruijff_register_plugin):
    return cruijff_register_plugin


@pytest.fixture
def fake_tools(cruijff_fake_tools):
    return cruijff_fake_tools


@pytest.fixture
def make_experiment(cruijff_make_experiment):
    return cruijff_make_experiment


@pytest.fixture
def cli(cruijff_cli):
    return cruijff_cli


@pytest.fixture
def isolated_config(cruijff_isolated_config):
    return cruijff_isolated_config


@pytest.fixture
def trace(tmp_path, monkeypatch):
    """The file the fake jobs append ``start``/``end`` lines to (``CRUIJFF_FAKE_TRACE``; sbatch
    hands it to SLURM jobs too)."""
    path = tmp_path / "trace.txt"
    monkeypatch.setenv("CRUIJFF_FAKE_TRACE", str(path))
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny random-weights Llama folder with a generated tokenizer (built once a session)."""
    pytest.importorskip("transformers")
    from tinymodel import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture
def gpu_scheduler_with(register_plugin):
    """Register the scheduler ``gpus``, whose jobs get GPUs (it runs nothing), on ``hardware``
    (default: what a scheduler says without knowing better); returns its name."""
    from cruijff.hookspecs import hookimpl
    from cruijff.records import SchedulerInfo

    def register(hardware=None) -> str:
        extra = {} if hardware is None else {"hardware": lambda experiment: hardware}

        class Plugin:
            @hookimpl
            def cruijff_schedulers(self):
                yield SchedulerInfo(
                    name="gpus",
                    factory=lambda e, o: None,
                    available=lambda: False,
                    gpus=lambda experiment: True,
                    **extra,
                )

        register_plugin(Plugin(), name=f"gpus-{id(Plugin)}")
        return "gpus"

    return register


@pytest.fixture
def mount(tmp_path):
    """Mount helpers for tests that need a real file system limit (root only)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a tmpfs or a read-only bind mount")
    mounted: list[Path] = []

    def do(*args: str, at: Path) -> Path:
        at.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", *args, str(at)], check=True)
        mounted.append(at)
        return at

    yield do
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], check=False)
