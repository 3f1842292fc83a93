"""The ``model_organism`` generator: cruijff_kit's synthetic datasets (bits, digits, letters
under a rule), made by a job of their own before training and evaluation.

Thin hookimpls over one module per stage: :mod:`.parse` checks the ``data.data_generation``
block, :mod:`.work` selects the one unit, generates its job and validates its file; the rows
themselves come from :mod:`.generate`, as cruijff_kit 0.3.4 makes them. ``tabular_to_text_gen``
data, which needs source tables, is accepted where it already exists (:mod:`.tabular`).
"""

from __future__ import annotations

from collections.abc import Iterator

from cruijff import hookimpl
from cruijff.records import (
    ArtifactKind,
    Experiment,
    Generated,
    JobStatus,
    Key,
    ParseReport,
    Role,
    Tool,
    Unit,
    Validation,
)

TOOL = "model_organism"
TABULAR = "tabular_to_text_gen"
"""The tools' names (:data:`.spec.TOOL`, :data:`.tabular.TOOL`): the stages' modules are
imported when a hook first needs them, so loading the plugin (``cruijff --help``) is cheap."""

OURS = (TOOL, TABULAR)


def _generator(experiment: Experiment) -> str | None:
    return experiment.tools.get(Role.GENERATION.value)


@hookimpl
def cruijff_tools() -> Iterator[Tool]:
    """Register the generators."""
    yield Tool(
        name=TOOL,
        role=Role.GENERATION,
        description="cruijff_kit's model-organism datasets (a rule over bits, digits, letters)",
        produces=(ArtifactKind.DATASET,),
    )
    yield Tool(
        name=TABULAR,
        role=Role.GENERATION,
        description="cruijff_kit's tabular-to-text data, used as it exists (not regenerated)",
    )


@hookimpl
def cruijff_parse(experiment: Experiment, keys: tuple[Key, ...]) -> ParseReport | None:
    """Check the generation block of an experiment that names one of our tools."""
    generator = _generator(experiment)
    if generator == TOOL:
        from cruijff_model_organism import parse

        return parse.parse(experiment, keys)
    if generator == TABULAR:
        from cruijff_model_organism import tabular

        return tabular.parse(experiment, keys)
    return None


@hookimpl
def cruijff_select(
    experiment: Experiment, tool: Tool, upstream: tuple[Unit, ...]
) -> tuple[Unit, ...] | None:
    """One generation unit for model_organism; none for existing tabular data."""
    if tool.name == TOOL:
        from cruijff_model_organism import work

        return work.select(experiment)
    if tool.name == TABULAR:
        return ()
    return None


@hookimpl
def cruijff_generate(experiment: Experiment, unit: Unit) -> Generated | None:
    """The generation job."""
    if unit.tool != TOOL:
        return None
    from cruijff_model_organism import work

    return work.generate(experiment, unit)


@hookimpl
def cruijff_validate(
    experiment: Experiment, unit: Unit, status: JobStatus | None
) -> Validation | None:
    """Whether the dataset is whole."""
    if unit.tool != TOOL:
        return None
    from cruijff_model_organism import work

    return work.validate(unit, status)
