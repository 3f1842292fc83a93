"""The results of an experiment at a glance: one row per run, the metrics its tools chose as
their summary (accuracy, final loss...), from the job records. Plots and reports belong to
analysis; this is the table a person wants when the run ends."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cruijff.records import Experiment, JobState
from cruijff.state import JobRecord


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def summary_of(record: JobRecord) -> dict[str, Any]:
    """The metrics a record's tool chose to summarise it (every number when it chose none)."""
    names = record.summary or [k for k, v in record.metrics.items() if _numeric(v)]
    return {name: record.metrics[name] for name in names if name in record.metrics}


def results_table(
    experiment: Experiment, jobs: Iterable[Any], records: Mapping[str, JobRecord | None]
) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and one row per run that has results; ``jobs`` have a ``unit_id`` and a
    ``run`` (:class:`cruijff.jobindex.IndexedJob`). A metric that several units of one run
    report is told apart by the rest of their unit ids."""
    per_run: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for job in jobs:
        record = records.get(job.unit_id)
        if record is None or record.state is not JobState.SUCCEEDED:
            continue
        values = summary_of(record)
        if values:
            suffix = job.unit_id.removeprefix(f"{job.run}.")
            per_run.setdefault(job.run, []).append((suffix, values))
    columns: dict[str, None] = {}
    rows = []
    for run in experiment.runs:
        units = per_run.get(run.name)
        if not units:
            continue
        row: dict[str, Any] = {"run": run.name, "type": run.type.value}
        for suffix, values in units:
            for name, value in values.items():
                shared = sum(name in other for _, other in units) > 1
                column = f"{suffix} {name}" if shared else name
                columns[column] = None
                row[column] = value
        rows.append(row)
    return ["run", "type", *columns], rows


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return "" if value is None else str(value)
