"""``tabular_to_text_gen``: cruijff_kit's text made from tables, by a skill that needs the
source table and its schema, which this project cannot ship. Its files are used as they exist,
never regenerated: the training file (and each condition's, found by the tools that read
them) must be there; the conditions runs and tasks name must be in the block.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cruijff.records import Experiment, Key, ParseReport, Problem, Severity
from cruijff.suggest import did_you_mean, one_of
from cruijff.yamlfile import yaml_text

TOOL = "tabular_to_text_gen"
HOW = (
    "make it with cruijff_kit's convert-tabular-to-text skill "
    "(src/tabular_to_text_gen/convert.py), then validate again"
)


def parse(experiment: Experiment, keys: Iterable[Key]) -> ParseReport:
    """Claim the block (its keys are the skill's); say that nothing is regenerated, or that
    the data is missing; check the condition names."""
    claimed = {key.path for key in keys if key.section == "generation"}
    problems: list[Problem] = []

    def report(path: str, message: str, hint: str = "", severity=Severity.ERROR) -> None:
        problems.append(
            Problem(
                severity=severity,
                where=experiment.locate(path),
                message=message,
                hint=hint,
                plugin=TOOL,
            )
        )

    data = experiment.data
    assert data is not None and data.generation is not None
    if data.path.exists():
        report(
            "data.data_generation.tool",
            f"{TOOL} data is used as it is, not regenerated: {data.path}",
            "to change it, rerun cruijff_kit's convert-tabular-to-text skill",
            Severity.WARNING,
        )
    else:
        report(f"{data.yaml_path}.path", f"the {TOOL} data {data.path} does not exist", HOW)
    conditions = data.generation.get("conditions")
    names = list(conditions) if isinstance(conditions, dict) else []
    for run in experiment.runs:
        if run.training_condition is not None:
            _check_condition(
                report, f"{run.yaml_path}.training_condition", run.training_condition, names
            )
    if experiment.evaluation is not None:
        for task in experiment.evaluation.tasks:
            condition = task.settings.get("eval_condition")
            if condition is not None:
                _check_condition(report, f"{task.yaml_path}.eval_condition", condition, names)
    return ParseReport(claimed=claimed, problems=problems)


def _check_condition(report: Any, path: str, condition: Any, names: list[str]) -> None:
    if condition not in names:
        report(
            path,
            f"{yaml_text(condition)} is not a condition of data.data_generation",
            did_you_mean(str(condition), names) or one_of(names) or "add it under conditions",
        )
