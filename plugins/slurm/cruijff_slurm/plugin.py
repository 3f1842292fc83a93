"""The SLURM scheduler's registration and its check of the experiment's ``scheduler`` section.

Kept light: this module is imported whenever plugins load, so the scheduler, jinja2 and every
SLURM command wait until a SLURM job is really planned, submitted or checked.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from cruijff import hookimpl

if TYPE_CHECKING:
    from cruijff.estimates import Review
    from cruijff.hardware import Hardware
    from cruijff.records import Experiment, Key, ParseReport, Plan, SchedulerInfo

NAME = "slurm"


def available() -> bool:
    """Slurm is the default scheduler where ``sbatch`` is on PATH and a cluster profile exists."""
    from cruijff_slurm.profile import any_profile

    return shutil.which("sbatch") is not None and any_profile()


def factory(experiment: Experiment, options: Mapping[str, Any]) -> Any:
    """Build the experiment's scheduler (UserError when its profile has problems)."""
    from cruijff_slurm.scheduler import SlurmScheduler

    return SlurmScheduler(
        options, experiment.state_dir, paths=experiment.resolve, file=experiment.file
    )


@hookimpl
def cruijff_schedulers() -> Iterator[SchedulerInfo]:
    """Register the ``slurm`` scheduler."""
    from cruijff.records import SchedulerInfo

    yield SchedulerInfo(
        name=NAME,
        factory=factory,
        description="submits jobs to a SLURM cluster with sbatch (job arrays, dependencies)",
        available=available,
        gpus=gpus,
        hardware=hardware,
        together=together,
    )


def gpus(experiment: Experiment) -> bool:
    """Whether jobs get GPUs: the profile's (or the experiment's) ``gpus``, true unless a
    profile says the cluster has none. A profile with problems answers true: those problems
    are reported by validation, not here."""
    from cruijff.errors import UserError
    from cruijff_slurm.profile import resolve

    options = experiment.scheduler.options
    if "gpus" in options and isinstance(options["gpus"], bool):
        return options["gpus"]
    try:
        return resolve(options, experiment.resolve).gpus
    except UserError:
        return True


def together(experiment: Experiment) -> bool:
    """Whether tools may give one job the work of several: the profile's ``together`` (off
    by default: on a cluster the cells of a model run side by side, each in a job of its
    own). Never raises: a bad profile is reported by validation."""
    from cruijff_slurm.profile import lenient

    return lenient(experiment.scheduler.options, experiment.resolve).together


def hardware(experiment: Experiment) -> Hardware:
    """What the jobs run on, for estimates: the profile's (or the experiment's) ``gpu``, None
    where it names none or the jobs get no GPUs. The host's memory and cores are the cluster's
    nodes', which no profile says. Never raises: a bad profile is reported by validation."""
    from cruijff.hardware import Hardware
    from cruijff_slurm.profile import lenient

    profile = lenient(experiment.scheduler.options, experiment.resolve)
    return Hardware(gpu=profile.gpu if profile.gpus else None)


@hookimpl
def cruijff_review(plan: Plan) -> Review | None:
    """How SLURM will take the plan: its ``sbatch`` calls (a note), time limits shorter than
    the estimates, and queue limits that make the jobs wait (warnings)."""
    if plan.experiment.scheduler.name != NAME:
        return None
    from cruijff_slurm.review import review

    return review(plan)


@hookimpl
def cruijff_parse(experiment: Experiment, keys: tuple[Key, ...]) -> ParseReport | None:
    """Claim and check the ``scheduler`` keys when the experiment runs on slurm, and check the
    cluster profile it uses (problems there name the profile's file and line) and the
    experiment directory, where the jobs' logs go."""
    if experiment.scheduler.name != NAME:
        return None
    from cruijff.records import ParseReport, Problem
    from cruijff.yamlfile import yaml_text
    from cruijff_slurm.profile import EXPERIMENT_KEYS, KEYS, PLUGIN, profile_problems

    known = (*EXPERIMENT_KEYS, *KEYS)
    mine = {key.name: key for key in keys if key.section == "scheduler" and key.name in known}

    def locate(name: str) -> Any:
        return experiment.locate(mine[name].path if name in mine else "scheduler")

    problems, _ = profile_problems(
        {name: key.value for name, key in mine.items()}, experiment.resolve, locate
    )
    directory = str(experiment.directory)
    if any(char in directory for char in "\n\r"):
        problems.append(
            Problem(
                where=experiment.locate("experiment.dir"),
                message=f"the experiment directory {yaml_text(directory)} has a line break, "
                "which the #SBATCH lines naming the jobs' logs cannot carry",
                hint="choose a folder whose path has none",
                plugin=PLUGIN,
            )
        )
    return ParseReport(
        claimed={key.path for key in mine.values()},
        vocabulary={"scheduler": known},
        problems=problems,
    )
