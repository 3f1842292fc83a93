"""Generate: a training unit's ``trl_config.yaml``, ``provenance.json`` and job, from its
:class:`~cruijff_trl.units.TrainingPlan`.

The job is ``python -m cruijff_trl.launch trl_config.yaml --processes N``: the launcher (which
imports no torch) starts the training (:mod:`cruijff_trl.train`), one process, or N under
``torchrun`` for N GPUs, then checks every epoch's weights and writes ``metrics.csv``.
``provenance.json`` holds every setting with its source.
"""

from __future__ import annotations

import sys

from cruijff.dumps import json_sourced, yaml_block
from cruijff.records import Experiment, FileSpec, Generated, JobSpec, Setting, Unit
from cruijff_trl import outputs
from cruijff_trl.units import TrainingPlan

LAUNCH = "cruijff_trl.launch"
CONFIG = "trl_config.yaml"
ENV = {
    "HF_HUB_OFFLINE": "1",  # jobs never reach the Hub: models are local folders
    "HF_DATASETS_OFFLINE": "1",
    "PYTHONUNBUFFERED": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def generate(experiment: Experiment, unit: Unit) -> Generated:
    """The files and the job of one training unit."""
    plan: TrainingPlan = unit.payload
    config_path = unit.directory / CONFIG
    env = {**ENV, "HF_HOME": str(experiment.directory / ".cache" / "huggingface")}
    project = plan.config["train"].get("wandb_project")
    if project:  # clusters' nodes rarely reach the internet: W&B logs offline, synced later
        env.update(WANDB_PROJECT=project, WANDB_MODE="offline", WANDB_DIR=str(unit.directory))
    job = JobSpec(
        unit_id=unit.id,
        name=f"{experiment.name}.{unit.id}",
        argv=(sys.executable, "-m", LAUNCH, str(config_path), "--processes", str(plan.processes)),
        workdir=unit.directory,
        log=unit.directory / outputs.LOG,
        env=env,  # library caches stay inside the experiment (HF_HOME)
        resources=plan.resources,
        depends_on=unit.depends_on,  # the job that writes the training file, if one does
        produces=unit.produces,
    )
    header = (
        f"# TRL config of run {unit.run} of experiment {experiment.name}, written by cruijff.\n"
        f"# Run it as it stands: python -m {LAUNCH} {CONFIG}\n"
    )

    def provenance() -> str:
        return json_sourced(plan.sourced) + "\n"

    def settings() -> tuple[Setting, ...]:
        return tuple(Setting(path=p, value=v, source=s) for p, v, s in plan.sourced)

    files = (
        FileSpec(path=config_path, content=lambda: header + yaml_block(plan.config)),
        FileSpec(path=unit.directory / "provenance.json", content=provenance),
    )
    return Generated(files=files, job=job, settings=settings)
