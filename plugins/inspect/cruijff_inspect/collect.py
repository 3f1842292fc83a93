"""Turn an inspect log (its header) into a cell's tidy results.

``rows`` has one row per scorer and metric, each carrying the run, task, epoch and model, so the
rows of every cell of an experiment concatenate into one table; ``metrics`` flattens them as
``scorer/metric``. Works on the attributes of an ``EvalLog``, importing nothing from inspect.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any


def _seconds(started: str | None, completed: str | None) -> float | None:
    if not started or not completed:
        return None
    try:
        delta = datetime.datetime.fromisoformat(completed) - datetime.datetime.fromisoformat(
            started
        )
    except (TypeError, ValueError):
        return None
    return round(delta.total_seconds(), 3)


def location(log: Any) -> Path:
    """A log's file (inspect may give it as a ``file://`` URL)."""
    return Path(str(log.location).removeprefix("file://"))


def cause(log: Any) -> str:
    """Why a log did not succeed, in one line."""
    if log.status == "success":
        return ""
    if log.error is not None and log.error.message:
        return f"inspect: {log.error.message.strip().splitlines()[-1]}"
    if log.status == "cancelled":
        return "cancelled: run again to continue from the finished samples"
    return f"the evaluation ended with status {log.status}"


def collect(log: Any, base: dict[str, Any], directory: Path) -> dict[str, Any]:
    """A cell's results from its log header: ``base`` (the cell's description) plus status,
    log path (relative to ``directory``), sample counts, duration, every scorer's metrics and
    ``summary``, the headline metric of each scorer."""
    results = log.results
    rows, metrics, summary = [], {}, []
    for score in results.scores if results is not None else ():
        for position, (name, metric) in enumerate(score.metrics.items()):
            if position == 0:  # a scorer's headline metric comes first (accuracy, mean...)
                summary.append(f"{score.name}/{name}")
            metrics[f"{score.name}/{name}"] = metric.value
            rows.append(
                {
                    "run": base.get("run"),
                    "task": base.get("task"),
                    "vis_label": base.get("vis_label"),
                    "epoch": base.get("epoch"),
                    "model": base.get("model"),
                    "scorer": score.name,
                    "metric": name,
                    "value": metric.value,
                }
            )
    stats = log.stats
    path = location(log)
    try:
        relative = str(path.relative_to(directory))
    except ValueError:
        relative = str(path)
    return {
        **base,
        "status": log.status,
        "cause": cause(log),
        "log": relative,
        "samples": results.completed_samples if results is not None else 0,
        "total_samples": results.total_samples if results is not None else None,
        "started_at": stats.started_at,
        "completed_at": stats.completed_at,
        "duration_s": _seconds(stats.started_at, stats.completed_at),
        "inspect_version": log.eval.packages.get("inspect_ai"),
        "metrics": metrics,
        "summary": summary,
        "rows": rows,
    }
