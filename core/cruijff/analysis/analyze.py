"""``cruijff analyze``: collect, compare, report. The one entry point the CLI and ``cruijff
run`` call; :func:`to_json` is the ``--json`` schema (README, "cruijff analyze --json")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from cruijff.analysis import compare, report
from cruijff.analysis.collect import collect
from cruijff.analysis.model import Analysis
from cruijff.manager import PluginManager
from cruijff.records import Plan

FOLDER = "analysis"
"""Where the report goes, inside the experiment directory."""


def analyze(manager: PluginManager, plan: Plan) -> tuple[Analysis, Path]:
    """The analysis of a planned experiment from its files, and the report it wrote to
    ``<experiment>/analysis/`` (unchanged inputs rewrite no byte)."""
    experiment = plan.experiment
    collected = collect(manager, plan)
    cells, comparisons, groups, verdicts = compare.analyse(
        collected.scores, experiment.runs, labels=collected.labels
    )
    analysis = Analysis(
        experiment=experiment.name,
        cells=cells,
        comparisons=comparisons,
        groups=groups,
        verdicts=verdicts,
        missing=collected.missing,
        curves=collected.curves,
    )
    analysis = attrs.evolve(analysis, sections=manager.report(analysis, experiment))
    path = report.write(
        analysis,
        experiment,
        experiment.directory / FOLDER,
        environment=collected.environment,
    )
    return analysis, path


def to_json(analysis: Analysis, report_path: Path) -> dict[str, Any]:
    """The ``--json`` document: experiment, cells, comparisons, groups, verdicts, missing,
    report (field names as the records name them)."""

    def plain(record: Any, *drop: str) -> dict[str, Any]:
        data = attrs.asdict(record, recurse=True)
        for name in drop:
            data.pop(name, None)
        return data

    return {
        "experiment": analysis.experiment,
        "cells": [plain(cell) for cell in analysis.cells],
        "comparisons": [plain(comparison) for comparison in analysis.comparisons],
        "groups": [plain(group) for group in analysis.groups],
        "verdicts": [plain(verdict) for verdict in analysis.verdicts],
        "missing": [plain(missing) for missing in analysis.missing],
        "report": str(report_path),
    }
