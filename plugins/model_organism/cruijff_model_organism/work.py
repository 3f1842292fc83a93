"""Select, generate and validate: one unit per experiment, ``data.generate``, whose job writes
the dataset before anything that reads it runs (training and evaluation depend on it through
the ``dataset`` artifact it produces, which carries the split sizes the spec gives)."""

from __future__ import annotations

import json
import sys

from cruijff.fsutil import UnreadableFile, read_json
from cruijff.records import (
    Artifact,
    ArtifactKind,
    Experiment,
    FileSpec,
    Generated,
    JobSpec,
    JobStatus,
    Resources,
    Unit,
    Validation,
    thaw,
)
from cruijff_model_organism.parse import block, output_path
from cruijff_model_organism.spec import TOOL, split_sizes

UNIT = "data.generate"
"""The generation unit's id (one per experiment)."""
JOB = "cruijff_model_organism.job"


def select(experiment: Experiment) -> tuple[Unit, ...]:
    """The generation unit, producing the training file with its split sizes."""
    spec = block(experiment)
    directory = experiment.directory / "data_generation"
    dataset = Artifact(
        kind=ArtifactKind.DATASET, path=output_path(experiment, spec), splits=split_sizes(spec)
    )
    params = {key: value for key, value in spec.items() if key != "tool"}
    return (
        Unit(
            id=UNIT,
            tool=TOOL,
            kind="generate",
            run="",
            directory=directory,
            params=params,
            produces=(dataset,),
        ),
    )


def generate(experiment: Experiment, unit: Unit) -> Generated:
    """The spec as JSON beside the job that turns it into the dataset."""
    spec_path = unit.directory / "spec.json"
    (dataset,) = unit.produces
    job = JobSpec(
        unit_id=unit.id,
        name=f"{experiment.name}.{unit.id}",
        argv=(sys.executable, "-m", JOB, str(spec_path), str(dataset.path)),
        workdir=unit.directory,
        log=unit.directory / "generate.log",
        resources=Resources(cpus=1, mem_mb=2048, time_s=30 * 60),
        produces=unit.produces,
    )
    content = json.dumps(thaw(unit.params), indent=2, sort_keys=True) + "\n"
    return Generated(files=(FileSpec(path=spec_path, content=content),), job=job)


def validate(unit: Unit, status: JobStatus | None) -> Validation:
    """Done when the file holds every split with the rows the spec gives."""
    (dataset,) = unit.produces
    try:
        data = read_json(dataset.path)
    except UnreadableFile as error:
        return Validation(unit_id=unit.id, ok=False, cause=error.message)
    if not isinstance(data, dict):
        return Validation(unit_id=unit.id, ok=False, cause=f"no dataset in {dataset.path}")
    wrong = [
        f"{split}: {len(data.get(split) or [])} rows, not {count}"
        for split, count in dataset.splits.items()
        if len(data.get(split) or []) != count
    ]
    if wrong:
        return Validation(
            unit_id=unit.id, ok=False, cause=f"{dataset.path} is not whole ({'; '.join(wrong)})"
        )
    return Validation(unit_id=unit.id, ok=True, artifacts=unit.produces)
