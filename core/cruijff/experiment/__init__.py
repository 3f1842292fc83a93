"""Load an experiment file into an :class:`~cruijff.records.Experiment` and check its shape.

The core checks only what it owns: the sections, names, models, data, variables, runs and the
evaluation's cross-references. The keys that belong to plugins (``controls``, ``output``...)
are returned as :class:`~cruijff.records.Key` records for the plugins to claim and check (a
prompt's ``{input}``, a matrix epoch against the run's epochs). Every problem is reported at
once, each with file, line, column and dotted path; a mistake in the file never raises.
Without ``runs``, the runs are the grid of ``variables`` over the base models.

One module a job: :mod:`~cruijff.experiment.reader` reads values by their dotted paths,
:mod:`~cruijff.experiment.sections` (with :mod:`~cruijff.experiment.runs` and
:mod:`~cruijff.experiment.evaluation`) turns the sections into records, and
:mod:`~cruijff.experiment.grid` makes the grid and its run names.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import attrs

from cruijff.experiment.context import MAX_EPOCHS
from cruijff.experiment.grid import MAX_GENERATED_NAME, run_directory, short_value
from cruijff.experiment.reader import MAX_PATH_PART
from cruijff.experiment.runs import MAX_RUNS, parameter_path
from cruijff.experiment.sections import PLACEHOLDER_NAME, SECTIONS, read
from cruijff.records import Experiment, Key, Problem, Severity, Where
from cruijff.yamlfile import YamlError, load_yaml

__all__ = [
    "MAX_EPOCHS",
    "MAX_GENERATED_NAME",
    "MAX_PATH_PART",
    "MAX_RUNS",
    "PLACEHOLDER_NAME",
    "SECTIONS",
    "Loaded",
    "load_experiment",
    "parameter_path",
    "run_directory",
    "short_value",
]


@attrs.frozen(kw_only=True)
class Loaded:
    """What :func:`load_experiment` found: the experiment (None only when the YAML could not be
    read), the keys that belong to plugins, and every problem in the file."""

    experiment: Experiment | None
    keys: tuple[Key, ...] = ()
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        """True when there is an experiment and no problem is an error."""
        return self.experiment is not None and not any(
            problem.severity is Severity.ERROR for problem in self.problems
        )


def load_experiment(path: Path, *, labels: Mapping[str, str] | None = None) -> Loaded:
    """Load and check the experiment file at ``path``.

    ``labels`` gives short labels of parameters for generated run names (``lora_rank`` ->
    ``rank``), as the tool plugins declare them. Never raises for a mistake in the file.
    """
    try:
        file = Path(path).expanduser().resolve()
    except (OSError, RuntimeError) as error:  # an unknown ~user, a loop of links
        problem = Problem(where=Where(file=Path(path)), message=f"not a usable path: {error}")
        return Loaded(experiment=None, problems=(problem,))
    try:
        doc = load_yaml(file)
    except YamlError as error:
        return Loaded(experiment=None, problems=error.problems)
    experiment, keys, problems = read(doc, dict(labels or {}))
    return Loaded(experiment=experiment, keys=keys, problems=problems)
