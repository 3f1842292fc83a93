"""Parse: the ``data.data_generation`` block of a ``model_organism`` experiment, checked by
:func:`cruijff_model_organism.spec.check` and against the rest of the file.

The generated file is the training data: ``output_path`` (relative to ``experiment.dir``, as in
cruijff_kit) must be ``data.training.path``, and the ``splits`` the file declares are compared
with the sizes the spec gives, since the file does not exist before the generation job.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cruijff.records import Experiment, Key, ParseReport, Problem, Severity, resolve_path
from cruijff.yamlfile import yaml_text
from cruijff_model_organism.spec import ERROR, TOOL, check, split_sizes

BLOCK = "data.data_generation"


def block(experiment: Experiment) -> dict[str, Any]:
    """The block as written (its ``tool`` included)."""
    assert experiment.data is not None and experiment.data.generation is not None
    return dict(experiment.data.generation)


def output_path(experiment: Experiment, spec: dict[str, Any]) -> Path:
    """Where the generator writes: ``output_path`` against the experiment directory."""
    return resolve_path(experiment.directory, str(spec["output_path"]))


def parse(experiment: Experiment, keys: Iterable[Key]) -> ParseReport:
    """Claim the block's keys; every problem of the spec, placed at its key."""
    claimed = {key.path for key in keys if key.section == "generation"}
    problems: list[Problem] = []

    def report(path: str, message: str, hint: str = "", severity=Severity.ERROR) -> None:
        where = experiment.locate(f"{BLOCK}.{path}" if path else BLOCK)
        problems.append(
            Problem(severity=severity, where=where, message=message, hint=hint, plugin=TOOL)
        )

    if experiment.data is None or experiment.data.generation is None:
        return ParseReport(claimed=claimed)
    spec = block(experiment)
    found = check(spec)
    for problem in found:
        severity = Severity.ERROR if problem.severity == ERROR else Severity.WARNING
        report(problem.key, problem.message, problem.hint, severity)
    if not any(problem.severity == ERROR for problem in found):
        _check_against_data(experiment, spec, report)
    return ParseReport(claimed=claimed, problems=problems)


def _check_against_data(experiment: Experiment, spec: dict[str, Any], report: Any) -> None:
    """The file the spec makes is the training file, with the splits the file declares."""
    data = experiment.data
    assert data is not None
    written = output_path(experiment, spec)
    if written != data.path:
        report(
            "output_path",
            f"the generator writes {written}, but data.training.path is {data.path}",
            "data.training.path must name the generated file (output_path is relative to "
            "experiment.dir)",
        )
    sizes = split_sizes(spec)
    for split, count in data.splits.items():
        made = sizes.get(split, 0)  # OOD splits are not counted there, as in cruijff_kit
        if made != count:
            report(
                "",
                f"data.training.splits.{split} says {yaml_text(count)} rows, but the spec "
                f"makes {made}" + ("" if split in sizes else f" (its splits: {', '.join(sizes)})"),
                f"write {split}: {made}",
                Severity.WARNING,
            )
