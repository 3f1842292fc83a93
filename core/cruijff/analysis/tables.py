"""The report's tables as plain text: each function gives a :class:`Table` (``columns`` and
``rows`` of strings) that the HTML and Markdown templates and the terminal print alike.

Tables are read without a legend: headers say what a column holds ("Δ vs control [95% CI]"),
values carry their interval (``0.70 [0.40, 0.89]``) and flags in words (``floor: all wrong``).
Rows follow the swept variables (:func:`swept_variables`); nothing here computes a statistic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from cruijff.analysis.model import Analysis, Cell, Verdict
from cruijff.experiment.grid import short_value
from cruijff.records import Axis, Experiment, Run, RunType, ZipGroup

NOTHING = "—"
"""What a table shows where there is no value (a control's swept parameter, a null p)."""


class Table(NamedTuple):
    """A table of strings: unpacks as ``columns, rows``."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def _table(columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> Table:
    return Table(tuple(columns), tuple(tuple(str(value) for value in row) for row in rows))


# --- formatting -----------------------------------------------------------------------------


def number(value: float | None, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals (no ``-0.00``), or :data:`NOTHING`."""
    if value is None:
        return NOTHING
    text = f"{value:.{digits}f}"
    return text.lstrip("-") if float(text) == 0 else text


def signed(value: float | None, digits: int = 2) -> str:
    """A difference with its sign (``+0.15``, ``-0.05``, ``0.00``)."""
    text = number(value, digits)
    return "+" + text if value is not None and float(text) > 0 else text


def interval(
    value: float | None, low: float | None, high: float | None, *, sign: bool = False
) -> str:
    """``0.70 [0.40, 0.89]``; the value alone where the interval is unknown."""
    shown = signed(value) if sign else number(value)
    if low is None or high is None:
        return shown
    bound = signed if sign else number
    return f"{shown} [{bound(low)}, {bound(high)}]"


def p_value(value: float | None) -> str:
    """A p-value in three decimals, ``<0.001`` below that, :data:`NOTHING` when undefined."""
    if value is None:
        return NOTHING
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def epoch(value: int | None) -> str:
    """A 0-based epoch as written, :data:`NOTHING` for a model evaluated as it is."""
    return NOTHING if value is None else str(value)


def value(parameter: Any) -> str:
    """A parameter's value as run names write it (``1e-4``, ``true``)."""
    return NOTHING if parameter is None else short_value(parameter)


def cell_value(cell: Cell) -> str:
    """A cell's value with its interval and, at the floor or ceiling, the flag in words."""
    text = interval(cell.value, cell.ci_low, cell.ci_high)
    if cell.floor:
        text += " · floor: all wrong"
    elif cell.ceiling:
        text += " · ceiling: all right"
    return text


# --- what varies ----------------------------------------------------------------------------

_ABSENT = object()


def parameter(run: Run, key: str) -> Any:
    """The run's own value of ``key`` (a dotted key walks into nested mappings); None when
    the run does not set it (a control)."""
    if key in run.parameters:
        return run.parameters[key]
    found: Any = run.parameters
    for part in key.split("."):
        if not isinstance(found, Mapping) or part not in found:
            return None
        found = found[part]
    return found


def swept_variables(experiment: Experiment) -> tuple[str, ...]:
    """The keys the experiment varies: its ``variables`` (zip groups' axes in order), or, when
    it lists its runs instead, the parameters whose values differ between its trained and
    eval-only runs (controls set none, so they would make every key look swept)."""
    keys: list[str] = []
    for variable in experiment.variables:
        axes = variable.axes if isinstance(variable, ZipGroup) else (variable,)
        keys += [axis.key for axis in axes if axis.key not in keys]
    if keys:
        return tuple(keys)
    runs = [run for run in experiment.runs if run.type is not RunType.CONTROL]
    for run in runs:
        keys += [key for key in run.parameters if key not in keys]
    return tuple(
        key for key in keys if len({repr(run.parameters.get(key, _ABSENT)) for run in runs}) > 1
    )


def axis_values(experiment: Experiment, key: str) -> tuple[Any, ...]:
    """The values of ``key`` in the order the experiment gives them (its axis, else the runs')."""
    for variable in experiment.variables:
        for axis in variable.axes if isinstance(variable, ZipGroup) else (variable,):
            if isinstance(axis, Axis) and axis.key == key:
                return tuple(axis.values)
    seen: list[Any] = []
    for run in experiment.runs:
        found = parameter(run, key)
        if found is not None and found not in seen:
            seen.append(found)
    return tuple(seen)


def partners(experiment: Experiment, key: str) -> tuple[str, ...]:
    """The keys that vary together with ``key`` (its zip group's other axes)."""
    for variable in experiment.variables:
        if isinstance(variable, ZipGroup) and key in (axis.key for axis in variable.axes):
            return tuple(axis.key for axis in variable.axes if axis.key != key)
    return ()


def metrics(analysis: Analysis) -> tuple[str, ...]:
    """The metrics analysed, the primary one (the first scorer's) first."""
    return tuple(dict.fromkeys(cell.metric for cell in analysis.cells))


def tasks(analysis: Analysis, experiment: Experiment) -> tuple[str, ...]:
    """The tasks with cells or missing cells, in the experiment's order."""
    found = dict.fromkeys(
        [cell.task for cell in analysis.cells]
        + [missing.task for missing in analysis.missing if missing.task is not None]
    )
    order = [task.name for task in experiment.evaluation.tasks] if experiment.evaluation else []
    return tuple(sorted(found, key=lambda task: (task not in order, _index(order, task))))


def _index(order: Sequence[str], item: str) -> int:
    return order.index(item) if item in order else 0


def _runs(analysis: Analysis, experiment: Experiment) -> list[Run | str]:
    """The runs in the experiment's order, then names the analysis has and the file lacks."""
    known = [run.name for run in experiment.runs]
    extra = [
        name
        for name in dict.fromkeys(
            [cell.run for cell in analysis.cells] + [missing.run for missing in analysis.missing]
        )
        if name not in known
    ]
    return [*experiment.runs, *extra]


def _swept(experiment: Experiment, run: Run | str, keys: Sequence[str]) -> list[str]:
    if isinstance(run, str):
        return [NOTHING] * len(keys)
    return [value(parameter(run, key)) for key in keys]


def _name(run: Run | str) -> str:
    return run if isinstance(run, str) else run.name


def _columns_of_cells(analysis: Analysis, experiment: Experiment) -> list[tuple[str, int | None]]:
    """(task, epoch) of every cell and missing cell: tasks in order, then untrained first."""
    found = {(cell.task, cell.epoch) for cell in analysis.cells}
    found |= {(m.task, m.epoch) for m in analysis.missing if m.task is not None}
    order = tasks(analysis, experiment)
    return sorted(found, key=lambda te: (order.index(te[0]), -1 if te[1] is None else te[1]))


def column_title(task: str, at: int | None) -> str:
    """A results column: ``capitals · epoch 1``, or ``capitals · not fine-tuned`` for models
    evaluated as they are (controls, eval-only checkpoints)."""
    return f"{task} · not fine-tuned" if at is None else f"{task} · epoch {at}"


# --- the tables -----------------------------------------------------------------------------


def runs(analysis: Analysis, experiment: Experiment) -> Table:
    """One row per run: its name, its labels (a label is per cell: every distinct one), type,
    model, and its value of every swept variable."""
    keys = swept_variables(experiment)
    distinct: dict[str, dict[str, None]] = {}
    for cell in analysis.cells:
        if cell.label:
            distinct.setdefault(cell.run, {})[cell.label] = None
    labels = {run: ", ".join(found) for run, found in distinct.items()}
    labelled = any(labels.get(run.name, run.name) != run.name for run in experiment.runs)
    conditions = any(run.training_condition for run in experiment.runs)
    columns = ["run", *(["label"] if labelled else []), "type", "model", *keys]
    if conditions:
        columns.append("training data")
    rows = []
    for run in experiment.runs:
        row = [run.name, *([labels.get(run.name, run.name)] if labelled else [])]
        row += [run.type.value, run.model, *_swept(experiment, run, keys)]
        if conditions:
            row.append(run.training_condition or NOTHING)
        rows.append(row)
    return _table(columns, rows)


def results(analysis: Analysis, experiment: Experiment, metric: str) -> Table:
    """``metric`` for every run (rows, by swept variables) on every task and epoch (columns):
    value [95% CI] with floor and ceiling flags, then its Δ against the control with the
    paired interval and Holm's p; ``missing: cause`` where a cell is missing, blank where the
    run is not evaluated."""
    keys = swept_variables(experiment)
    places = _columns_of_cells(analysis, experiment)
    cells = {(c.run, c.task, c.epoch): c for c in analysis.cells if c.metric == metric}
    against = {(c.run, c.task, c.epoch): c for c in analysis.comparisons if c.metric == metric}
    gone = {(m.run, m.task, m.epoch): m.cause for m in analysis.missing if m.task is not None}
    rows = []
    for run in _runs(analysis, experiment):
        name = _name(run)
        row = [name, *_swept(experiment, run, keys)]
        for task, at in places:
            cell = cells.get((name, task, at))
            cause = gone.get((name, task, at))
            text = cell_value(cell) if cell else f"missing: {cause}" if cause else ""
            versus = against.get((name, task, at))
            if cell and versus is not None:
                text += (
                    f" · Δ {interval(versus.delta, versus.ci_low, versus.ci_high, sign=True)}"
                    f" vs {versus.control}, p adj. {p_value(versus.p_adjusted)}"
                )
            row.append(text)
        if any(row[1 + len(keys) :]):
            rows.append(row)
    return _table(["run", *keys, *(column_title(task, at) for task, at in places)], rows)


def comparisons(analysis: Analysis, experiment: Experiment) -> Table:
    """Every cell against its control on the same samples: Δ (run - control) with its paired
    bootstrap interval, the p-value, Holm's adjustment, and the samples that flipped."""
    keys = swept_variables(experiment)
    values = {(c.run, c.task, c.epoch, c.metric): c for c in analysis.cells}
    columns = [
        "run",
        *keys,
        "task",
        "epoch",
        "metric",
        "control",
        "n paired",
        "run value",
        "control value",
        "Δ vs control [95% CI]",
        "p",
        "p adj. (Holm)",
        "test",
        "flips ↑ wrong→right",
        "flips ↓ right→wrong",
    ]
    rows = []
    for c in analysis.comparisons:
        run = _known(experiment, c.run)
        own = values.get((c.run, c.task, c.epoch, c.metric))
        base = values.get((c.control, c.task, None, c.metric))
        rows.append(
            [
                c.run,
                *_swept(experiment, run, keys),
                c.task,
                epoch(c.epoch),
                c.metric,
                c.control,
                c.n,
                number(own.value) if own else NOTHING,
                number(base.value) if base else NOTHING,
                interval(c.delta, c.ci_low, c.ci_high, sign=True),
                p_value(c.p_value),
                p_value(c.p_adjusted),
                c.test or NOTHING,
                c.flips_up,
                c.flips_down,
            ]
        )
    return _table(columns, rows)


def find_run(experiment: Experiment, name: str) -> Run | None:
    """The run called ``name``, or None where the analysis names one the file no longer has."""
    try:
        return experiment.run(name)
    except KeyError:
        return None


def _known(experiment: Experiment, name: str) -> Run | str:
    return find_run(experiment, name) or name


def groups(analysis: Analysis, experiment: Experiment) -> Table:
    """Runs that differ only in seed, pooled: mean [95% CI over seeds and samples] and the
    standard deviation between seeds."""
    keys = [key for key in swept_variables(experiment) if key != "seed"]
    rows = []
    for g in analysis.groups:
        first = _known(experiment, g.runs[0]) if g.runs else ""
        rows.append(
            [
                ", ".join(g.runs),
                *_swept(experiment, first, keys),
                g.task,
                epoch(g.epoch),
                g.metric,
                len(g.runs),
                interval(g.mean, g.ci_low, g.ci_high),
                number(g.sd_between_seeds),
            ]
        )
    columns = ["runs", *keys, "task", "epoch", "metric", "seeds"]
    return _table([*columns, "mean over seeds [95% CI]", "sd between seeds"], rows)


def verdict_text(verdict: Verdict) -> str:
    """The verdict in a sentence: the best run only where the interval of best - runner-up
    excludes 0; otherwise that they cannot be told apart, and the samples that would tell."""
    difference = interval(verdict.delta, verdict.ci_low, verdict.ci_high, sign=True)
    if verdict.best:
        text = f"{verdict.best} is best"
        if verdict.runner_up:
            text += f": ahead of the runner-up {verdict.runner_up} by {difference}"
        return text + (f". Method: {verdict.method}." if verdict.method else ".")
    if not verdict.runner_up:
        return "Only one run: nothing to compare it with."
    leader = verdict.leader or "the leader"
    text = (
        f"No run is best: {leader} and the runner-up {verdict.runner_up} cannot be told "
        f"apart at this sample size (difference {difference})."
    )
    if verdict.samples_needed:
        text += (
            f" About {verdict.samples_needed} samples would detect a difference this large "
            "at 80% power."
        )
    if verdict.method:
        text += f" Method: {verdict.method}."
    return text


def verdicts(analysis: Analysis, experiment: Experiment) -> Table:
    """Per task, epoch and metric: which run is best, or why none is named."""
    del experiment  # the same signature as the other tables
    rows = [
        [
            v.task,
            epoch(v.epoch),
            v.metric,
            verdict_text(v),
            v.samples_needed if v.samples_needed else NOTHING,
        ]
        for v in analysis.verdicts
    ]
    return _table(["task", "epoch", "metric", "verdict", "samples needed (80% power)"], rows)


def missing(analysis: Analysis, experiment: Experiment) -> Table:
    """Every cell (or curve) not analysed, and why."""
    del experiment
    rows = [
        [m.run, m.task or NOTHING, epoch(m.epoch), m.cause or "unknown"] for m in analysis.missing
    ]
    return _table(["run", "task", "epoch", "cause"], rows)


def sources(analysis: Analysis, experiment: Experiment) -> Table:
    """Where every value comes from: the cell's log (relative to the experiment directory),
    its sample count and how its interval was computed; then every training curve's file."""
    del experiment
    rows = [
        [c.run, c.task, epoch(c.epoch), c.metric, c.n, c.ci_method or NOTHING, c.log or NOTHING]
        for c in analysis.cells
    ]
    rows += [
        [curve.run, NOTHING, NOTHING, "training loss", len(curve.steps), NOTHING, curve.path]
        for curve in analysis.curves
    ]
    return _table(["run", "task", "epoch", "metric", "n", "interval", "file"], rows)


def flipped(analysis: Analysis, experiment: Experiment) -> Table:
    """The ids of the samples behind every flip count, per comparison that has any."""
    del experiment
    rows = [
        [
            c.run,
            c.task,
            epoch(c.epoch),
            c.metric,
            " ".join(c.flips_up_ids) or NOTHING,
            " ".join(c.flips_down_ids) or NOTHING,
        ]
        for c in analysis.comparisons
        if c.flips_up_ids or c.flips_down_ids
    ]
    columns = ["run", "task", "epoch", "metric", "wrong→right (sample ids)"]
    return _table([*columns, "right→wrong (sample ids)"], rows)


def environment(environment: Mapping[str, Any]) -> Table:
    """The environment the numbers come from: the project's commit, the data file and its
    sha256, then the package versions, one row per set of jobs that ran with the same ones."""
    rows: list[list[str]] = []
    for key, title in (
        ("git_commit", "git commit"),
        ("data_file", "data file"),
        ("data_sha256", "data sha256"),
    ):
        if environment.get(key):
            rows.append([title, str(environment[key])])
    shared: dict[str, list[str]] = {}
    for job, packages in (environment.get("packages") or {}).items():
        versions = ", ".join(f"{name} {packages[name]}" for name in sorted(packages))
        shared.setdefault(versions or NOTHING, []).append(str(job))
    for versions, jobs in shared.items():
        rows.append([f"packages of {', '.join(jobs)}", versions])
    rows += [
        [str(key), str(item)]
        for key, item in sorted(environment.items())
        if key not in ("git_commit", "data_file", "data_sha256", "packages") and item
    ]
    return _table(["what", "value"], rows)


def summary(analysis: Analysis, experiment: Experiment) -> list[tuple[str, Table]]:
    """The tables a terminal prints, titled, in the report's order; empty ones left out."""
    titled = [("Verdicts", verdicts(analysis, experiment))]
    titled += [
        (f"Results: {metric} (95% intervals)", results(analysis, experiment, metric))
        for metric in metrics(analysis)
    ]
    titled += [
        ("Against the control (paired)", comparisons(analysis, experiment)),
        ("Seeds pooled", groups(analysis, experiment)),
        ("Missing", missing(analysis, experiment)),
    ]
    return [(title, table) for title, table in titled if table.rows]
