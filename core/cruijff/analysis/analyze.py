"""``cruijff analyze``: collect, compare, report. The one entry point the CLI and ``cruijff
run`` call; :func:`to_json` is the ``--json`` schema (README, "cruijff analyze --json")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from cruijff.analysis import compare, report
from cruijff.analysis.collect import collect
from cruijff.analysis.model import Analysis, Section
from cruijff.convert import finite, to_plain
from cruijff.errors import CruijffError
from cruijff.manager import PluginManager
from cruijff.records import Plan

FOLDER = "analysis"
"""Where the report goes, inside the experiment directory."""


def analyze(manager: PluginManager, plan: Plan) -> tuple[Analysis, Path]:
    """The analysis of a planned experiment from its files, and the report it wrote to
    ``<experiment>/analysis/`` (unchanged inputs rewrite no byte)."""
    experiment = plan.experiment
    collected = collect(manager, plan)
    analysis = compare.analysis(
        experiment.name, collected.scores, experiment.runs, labels=collected.labels
    )
    analysis = attrs.evolve(analysis, missing=collected.missing, curves=collected.curves)
    try:
        sections = tuple(manager.report(analysis, experiment))
    except Exception as error:  # a plugin's section must not cost the whole report
        text = (
            error.message if isinstance(error, CruijffError) else f"{type(error).__name__}: {error}"
        )
        sections = (Section(title="A plugin's report section failed", text=text),)
    analysis = attrs.evolve(analysis, sections=sections)
    path = report.write(
        analysis,
        experiment,
        experiment.directory / FOLDER,
        environment=collected.environment,
    )
    return analysis, path


def to_json(analysis: Analysis, report_path: Path) -> dict[str, Any]:
    """The ``--json`` document: experiment, cells, comparisons, groups, verdicts, missing,
    notes (why expected comparisons are not there), report (field names as the records name
    them). Values that are not finite numbers are None (``null``)."""

    return finite(
        {
            "experiment": analysis.experiment,
            "cells": [to_plain(cell) for cell in analysis.cells],
            "comparisons": [to_plain(comparison) for comparison in analysis.comparisons],
            "groups": [to_plain(group) for group in analysis.groups],
            "verdicts": [to_plain(verdict) for verdict in analysis.verdicts],
            "missing": [to_plain(missing) for missing in analysis.missing],
            "notes": list(analysis.notes),
            "report": str(report_path),
        }
    )
