"""The core never imports a plugin or anything heavy; `cruijff --help` stays light."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = (
    "torch",
    "torchtune",
    "torchao",
    "inspect_ai",
    "transformers",
    "cruijff_torchtune",
    "cruijff_inspect",
    "cruijff_slurm",
)

PROBE = """
import json, sys
{code}
print(json.dumps(sorted(m for m in sys.modules)))
"""


def loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code)], check=True, capture_output=True, text=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in FORBIDDEN)


def test_importing_cruijff_and_its_cli_imports_no_plugin():
    modules = loaded_after("import cruijff, cruijff.cli, cruijff.records, cruijff.hookspecs")
    assert heavy(modules) == []
    assert "rich" not in modules  # rendering is imported only when something is rendered


def test_core_modules_import_nothing_heavy():
    modules = loaded_after(
        "import cruijff.manager, cruijff.design, cruijff.orchestrator, cruijff.runner, "
        "cruijff.local, cruijff.testing"
    )
    assert heavy(modules) == []


def test_help_imports_nothing_heavy():
    modules = loaded_after(
        "from cruijff.cli import cli\n"
        "try:\n    cli(['--help'], prog_name='cruijff')\nexcept SystemExit:\n    pass"
    )
    assert not [
        m
        for m in heavy(modules)
        if m.split(".")[0] in ("torch", "torchtune", "torchao", "inspect_ai", "transformers")
    ]
