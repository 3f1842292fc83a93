"""A fake training tool and a fake evaluation tool, complete enough to drive every phase.

``fake`` trains one unit per fine-tuned run (writing a ``model.json`` per epoch); ``fake-eval``
evaluates each run's last epoch and each base model once, depending on the training unit. Their
jobs are :mod:`cruijff.testing.fake_job`. ``fake`` also estimates its jobs (from the index of
measurements once it has some), measures them, and gives ``cruijff calibrate`` a one-epoch
version of a run. Third-party plugin authors can read this as the
smallest complete tool plugin.
"""

from __future__ import annotations

import json
import sys

import attrs

from cruijff import hookimpl
from cruijff.analysis.model import Observations, Scores
from cruijff.estimates import Estimate, Range
from cruijff.records import (
    Artifact,
    ArtifactKind,
    FileSpec,
    Generated,
    JobSpec,
    JobState,
    ParseReport,
    Problem,
    Resources,
    Role,
    RunType,
    Tool,
    Unit,
    Validation,
)
from cruijff.yamlfile import yaml_text

TRAIN, EVAL = "fake", "fake-eval"
PARAMETERS = {
    "lora_rank": int,
    "lr": float,
    "epochs": int,
    "batch_size": int,
    "seed": int,
    "prompt": str,
    "system_prompt": str,
    "dataset_type": str,
    "sleep": float,
    "fail": bool,
    "lie": bool,
    # the rest of cruijff_kit's training keys, so its files drive the fake tools too
    "gradient_accumulation_steps": int,
    "weight_decay": float,
    "lora_dropout": float,
    "num_warmup_steps": int,
    "max_seq_len": int,
    "validation_during_training": bool,
    "checkpoint_path": str,
    "dataset_path": str,
}
EVALUATION = {
    "temperature": float,
    "max_tokens": int,
    "seed": int,
    "system_prompt": str,
    "do_sample": bool,
    "max_connections": int,
    "assistant_prefix": str,
}
OUTPUT = {"wandb_project": str}
TASK = {
    "dataset": str,
    "prompt": str,
    "system_prompt": str,
    "description": str,
    "assistant_prefix": str,
}


@hookimpl
def cruijff_tools():
    yield Tool(
        name=TRAIN,
        role=Role.PREPARATION,
        description="fake trainer for tests",
        labels={"lora_rank": "rank", "batch_size": "bs"},
        produces=(ArtifactKind.HF_MODEL,),
    )
    yield Tool(
        name=EVAL,
        role=Role.EVALUATION,
        description="fake evaluator for tests",
        aliases=("fake-evaluator",),
        consumes=(ArtifactKind.HF_MODEL,),
        produces=("eval-results",),
    )


def _check(experiment, keys, section, known):
    claimed, problems = set(), []
    for key in keys:
        if key.section != section or key.name not in known:
            continue
        claimed.add(key.path)
        values = key.value if key.path.startswith("variables.") else (key.value,)
        wanted = known[key.name]
        for value in values if isinstance(values, tuple) else (values,):
            ok = isinstance(value, wanted) and not (wanted is not bool and isinstance(value, bool))
            if wanted is float and isinstance(value, int) and not isinstance(value, bool):
                ok = True
            if not ok:
                problems.append(
                    Problem(
                        where=experiment.locate(key.path),
                        plugin=TRAIN,
                        message=f"{key.name} must be {wanted.__name__}, not {yaml_text(value)}",
                    )
                )
    return claimed, problems


@hookimpl
def cruijff_parse(experiment, keys):
    tools = set(experiment.tools.values())
    if not tools & {TRAIN, EVAL, "fake-evaluator"}:
        return None
    claimed, problems = _check(experiment, keys, "parameters", PARAMETERS)
    more, found = _check(experiment, keys, "output", OUTPUT)
    claimed |= more
    problems += found
    vocabulary = {"parameters": tuple(PARAMETERS), "output": tuple(OUTPUT)}
    if tools & {EVAL, "fake-evaluator"}:
        for section, known in (("evaluation", EVALUATION), ("task", TASK)):
            more, found = _check(experiment, keys, section, known)
            claimed |= more
            problems += found
            vocabulary[section] = tuple(known)
    return ParseReport(claimed=claimed, vocabulary=vocabulary, problems=problems)


def _epochs(experiment, run) -> int:
    return int(run.parameters.get("epochs", experiment.controls.get("epochs", 1)))


@hookimpl
def cruijff_select(experiment, tool, upstream):
    if tool.name == TRAIN:
        return tuple(
            Unit(
                id=f"{run.name}.train",
                tool=TRAIN,
                kind="train",
                run=run.name,
                directory=run.directory / "train",
                params={**experiment.controls, **run.parameters},
                produces=[
                    *(
                        Artifact(
                            kind=ArtifactKind.HF_MODEL,
                            run=run.name,
                            epoch=epoch,
                            path=run.directory / "train" / f"epoch_{epoch}",
                        )
                        for epoch in range(_epochs(experiment, run))
                    ),
                    Artifact(
                        kind=ArtifactKind.TRAIN_METRICS,
                        run=run.name,
                        path=run.directory / "train" / "metrics.csv",
                    ),
                ],
            )
            for run in experiment.runs
            if run.type is RunType.FINE_TUNED
        )
    if tool.name != EVAL:
        return None
    models = {
        (a.run, a.epoch): (unit.id, a)
        for unit in upstream
        for a in unit.produces
        if a.kind == ArtifactKind.HF_MODEL
    }
    tasks = [task.name for task in experiment.evaluation.tasks] if experiment.evaluation else []
    units = []
    for run in experiment.runs:
        for task in tasks or ["default"]:
            if run.type is RunType.FINE_TUNED:
                epoch = _epochs(experiment, run) - 1
                producer, artifact = models[(run.name, epoch)]
                units.append(
                    Unit(
                        id=f"{run.name}.eval.{task}.e{epoch}",
                        tool=EVAL,
                        kind="eval",
                        run=run.name,
                        directory=run.directory / "eval" / f"{task}_e{epoch}",
                        params={"task": task, "epoch": epoch},
                        depends_on=[producer],
                        consumes=[artifact],
                    )
                )
            else:
                units.append(
                    Unit(
                        id=f"{run.name}.eval.{task}",
                        tool=EVAL,
                        kind="eval",
                        run=run.name,
                        directory=run.directory / "eval" / task,
                        params={"task": task},
                    )
                )
    return tuple(units)


@hookimpl
def cruijff_generate(experiment, unit):
    if unit.tool not in (TRAIN, EVAL):
        return None
    config_path = unit.directory / "config.json"
    resources = Resources(cpus=1, mem_mb=100, time_s=600)
    if unit.tool == TRAIN:
        resources = experiment.run(unit.run).compute.over(resources)
    elif experiment.evaluation is not None:
        resources = experiment.evaluation.compute.over(resources)
    if unit.tool == TRAIN:
        config = {
            "unit": unit.id,
            "output_dir": str(unit.directory),
            "params": dict(unit.params),
            "epochs": int(unit.params.get("epochs", 1)),
            "sleep": unit.params.get("sleep", 0),
            "fail": unit.params.get("fail", False),
            "lie": unit.params.get("lie", False),
        }
        kind = "train"
    else:
        model = unit.consumes[0].path / "model.json" if unit.consumes else None
        config = {
            "unit": unit.id,
            "task": unit.params["task"],
            "model": str(model or ""),
            "output": str(unit.directory / "results.json"),
        }
        kind = "eval"
    job = JobSpec(
        unit_id=unit.id,
        name=f"{experiment.name}.{unit.id}",
        argv=(sys.executable, "-m", "cruijff.testing.fake_job", kind, str(config_path)),
        workdir=unit.directory,
        log=unit.directory / "job.log",
        resources=resources,
        depends_on=unit.depends_on,
        produces=unit.produces,
    )
    content = json.dumps(config, indent=2, sort_keys=True) + "\n"
    return Generated(files=[FileSpec(path=config_path, content=content)], job=job)


@hookimpl
def cruijff_validate(experiment, unit, status):
    if unit.tool == TRAIN:
        models = [a for a in unit.produces if a.kind == ArtifactKind.HF_MODEL]
        missing = [a.path for a in models if not (a.path / "model.json").exists()]
        return Validation(
            unit_id=unit.id,
            ok=not missing,
            cause=f"no checkpoint in {missing[0]}" if missing else "",
            artifacts=unit.produces,
        )
    if unit.tool == EVAL:
        results = unit.directory / "results.json"
        if not results.exists():
            return Validation(unit_id=unit.id, ok=False, cause=f"no {results.name}")
        metrics = json.loads(results.read_text())["metrics"]
        return Validation(unit_id=unit.id, ok=True, metrics=metrics, summary=("accuracy",))
    return None


@hookimpl
def cruijff_observe(experiment, unit):
    """The fake evaluator's per-sample scores (``fake/accuracy``, binary): how a tool
    contributes to the analysis."""
    if unit.tool != EVAL:
        return None
    results = unit.directory / "results.json"
    try:
        data = json.loads(results.read_text())
    except (OSError, ValueError):
        return Observations(missing=f"no readable {results}")
    scores = {key: float(value) for key, value in data.get("scores", {}).items()}
    return Observations(
        scores=[
            Scores(
                unit=unit.id,
                run=unit.run,
                task=unit.params["task"],
                epoch=unit.params.get("epoch"),
                metric="fake/accuracy",
                value=float(data["metrics"]["accuracy"]),
                samples=scores,
                binary=True,
                log=str(results.relative_to(experiment.directory)),
            )
        ],
        environment={"cruijff-fake": "1"},
    )


@hookimpl
def cruijff_retry(experiment, unit, job, status):
    """A failed fake training gets twice the time: how a tool adjusts its own jobs."""
    if unit.tool != TRAIN or status.state is not JobState.FAILED or not job.resources.time_s:
        return None
    more = attrs.evolve(job.resources, time_s=job.resources.time_s * 2)
    return attrs.evolve(job, resources=more)


@hookimpl
def cruijff_estimate(experiment, unit, job, hardware, measurements):
    """A fake training takes its ``sleep`` (plus a second), or what runs like it measured:
    how a tool prefers measurements to its formula."""
    if unit.tool != TRAIN:
        return None
    epochs = int(unit.params.get("epochs", 1))
    key = {"tool": TRAIN, "hardware": hardware.name, "batch_size": unit.params.get("batch_size")}
    found = [m for m in measurements.find(key) if m.measured.get("wall_s")]
    if found:
        per_epoch = sorted(m.measured["wall_s"] / m.measured["epochs"] for m in found)
        seconds = Range(per_epoch[0], per_epoch[len(per_epoch) // 2], per_epoch[-1]) * epochs
        source = "calibration" if all(m.source == "calibration" for m in found) else "measured"
    else:
        sleep = float(unit.params.get("sleep", 0))
        seconds, source = Range(sleep + 0.1, sleep + 1, sleep + 5), "formula"
    return Estimate(
        memory_gb=Range(0.01, 0.02, 0.05),
        hours=seconds * (1 / 3600),
        disk_gb={"checkpoints": Range.of(1e-6 * epochs)},
        source=source,
        facts={"epochs": epochs, "measurements": len(found)},
        key=key,
    )


@hookimpl
def cruijff_measure(experiment, unit, status):
    if unit.tool != TRAIN:
        return None
    return {"epochs": int(unit.params.get("epochs", 1))}


@hookimpl
def cruijff_calibration(experiment, unit, directory):
    """One epoch of the run, written under ``directory``."""
    if unit.tool != TRAIN:
        return None
    produces = [
        Artifact(kind=ArtifactKind.HF_MODEL, run=unit.run, epoch=0, path=directory / "epoch_0")
    ]
    params = {**unit.params, "epochs": 1}
    return attrs.evolve(unit, directory=directory, params=params, produces=produces)
