"""Generate: a training unit's ``finetune.yaml``, ``provenance.json`` and job, from its
:class:`~cruijff_torchtune.units.TrainingPlan`.

The config runs as it stands (``tune run RECIPE --config finetune.yaml``); the job wraps that
in :mod:`cruijff_torchtune.launch`, which resumes, checks the checkpoints and writes metrics.
``provenance.json`` holds every setting with its source: the config's values, the job's
``resources.*`` and what is known of the data (``data.file``, ``data.label``, ``data.size_kb``).
"""

from __future__ import annotations

import sys

from cruijff.dumps import json_sourced
from cruijff.records import Experiment, FileSpec, Generated, JobSpec, Unit
from cruijff_torchtune import outputs
from cruijff_torchtune.config import dump_yaml
from cruijff_torchtune.units import TrainingPlan

LAUNCH = "cruijff_torchtune.launch"
CONFIG = "finetune.yaml"
ENV = {"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}


def generate(experiment: Experiment, unit: Unit) -> Generated:
    """The files and the job of one training unit."""
    plan: TrainingPlan = unit.payload
    config_path = unit.directory / CONFIG
    job = JobSpec(
        unit_id=unit.id,
        name=f"{experiment.name}.{unit.id}",
        argv=(
            sys.executable,
            "-m",
            LAUNCH,
            str(config_path),
            "--recipe",
            plan.recipe,
            "--nproc",
            str(plan.nproc),
            "--finetune",
            "lora" if plan.lora else "full",
        ),
        workdir=unit.directory,
        log=unit.directory / outputs.LOG,
        env=ENV,
        resources=plan.resources,
        depends_on=unit.depends_on,  # the job that writes the training file, if one does
        produces=unit.produces,
    )
    header = (
        f"# torchtune config of run {unit.run} of experiment {experiment.name}, written "
        f"by cruijff.\n# Run it as it stands: tune run {plan.recipe} --config {CONFIG}\n"
    )

    def provenance() -> str:
        return json_sourced(plan.sourced) + "\n"

    # rendered when written or previewed, never to plan
    files = (
        FileSpec(path=config_path, content=lambda: header + dump_yaml(plan.config)),
        FileSpec(path=unit.directory / "provenance.json", content=provenance),
    )
    return Generated(files=files, job=job, settings=lambda: plan.settings)
