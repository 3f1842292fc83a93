"""What the scores of an experiment say: each cell with its interval, each fine-tuned (or
eval-only) cell against the control of its base model, runs that differ only in their seed
pooled, and which run is best where the data can tell.

Everything is in a deterministic order: runs in the experiment's order (scores of runs it does
not list after them, as first seen), then tasks as first seen, epochs ascending (None first),
metrics as first seen within their task. Sample ids are paired and resampled in sorted order,
so the same scores give the same numbers whatever order they arrive in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from cruijff.analysis import stats
from cruijff.analysis.model import Analysis, Cell, Comparison, Group, Scores, Verdict
from cruijff.records import Run, RunType, thaw

Key = tuple[str, int | None, str]  # task, epoch, metric
COMPARED = (RunType.FINE_TUNED, RunType.EVAL_ONLY)
POWER = 0.8
ALPHA = 0.05


def analyse(
    scores: Sequence[Scores],
    runs: Sequence[Run],
    *,
    labels: Mapping[Any, str] | None = None,
) -> tuple[tuple[Cell, ...], tuple[Comparison, ...], tuple[Group, ...], tuple[Verdict, ...]]:
    """The cells, comparisons, seed groups and verdicts of an experiment's scores.

    Args:
        scores: every cell's scores on every metric, as the tools read them (a repeated
            (run, task, epoch, metric) keeps its first).
        runs: the experiment's runs, in its order.
        labels: a display label (``vis_label``) by cell, ``(run, task, epoch)``, or by run
            name, copied to the cells (a cell's own label first).

    Returns:
        ``(cells, comparisons, groups, verdicts)``. A metric is binary (a proportion: Wilson,
        McNemar, flips) where every cell of its task says so and every sample scores 0 or 1
        (:func:`binary_metrics`); a cell without samples shows its tool's value with no
        interval (:data:`~.stats.NONE`). A comparison pairs a fine-tuned or eval-only cell with
        the cell of its control (:func:`control_of`) on the same task and metric, or, where
        that has none, with the run's own base-model cell (``Scores.baseline``), provided both
        were evaluated on the same data (``Scores.dataset``), over the sample ids both have
        (none: no comparison; :func:`analysis` says why in its notes); Holm's adjustment runs
        over every p-value of the experiment. Base-model cells are never compared themselves
        and take no part in groups or verdicts. Groups are :func:`seed_groups` on each task,
        epoch and metric where at least two members have the cell. A verdict compares the
        fine-tuned and eval-only runs of a task, epoch and metric (at least two, on the
        samples they all have) after pooling each seed group into one contender, whose score
        on a sample is the mean over its seeds and whose name is its runs joined by ``+``.
        Higher is better. The first metric of a task (the first scorer's) is its primary
        metric (:func:`primary_metrics`); its verdicts come first within each epoch.
    """
    return _analyse(scores, runs, labels)[:4]


def analysis(
    experiment: str,
    scores: Sequence[Scores],
    runs: Sequence[Run],
    *,
    labels: Mapping[Any, str] | None = None,
) -> Analysis:
    """:func:`analyse` as an :class:`~.model.Analysis` of the experiment called
    ``experiment``, with notes on the comparisons that could not be made (no control for a
    model, a control without the cell, a control evaluated on other data)."""
    cells, comparisons, groups, verdicts, notes = _analyse(scores, runs, labels)
    return Analysis(
        experiment=experiment,
        cells=cells,
        comparisons=comparisons,
        groups=groups,
        verdicts=verdicts,
        notes=notes,
    )


Found = tuple[
    tuple[Cell, ...],
    tuple[Comparison, ...],
    tuple[Group, ...],
    tuple[Verdict, ...],
    tuple[str, ...],
]


def _analyse(
    scores: Sequence[Scores], runs: Sequence[Run], labels: Mapping[Any, str] | None
) -> Found:
    ordered, ranks = _ordered(scores, runs)
    binary = binary_metrics(ordered)
    ordered = [
        s if s.binary == binary[(s.task, s.metric)] else attrs.evolve(s, binary=not s.binary)
        for s in ordered
    ]
    labels = labels or {}
    cells = tuple(
        _cell(s, labels.get((s.run, s.task, s.epoch)) or labels.get(s.run) or "") for s in ordered
    )
    pairs, notes = _pairs(ordered, runs)
    comparisons = _comparisons(pairs)
    groups = seed_groups(runs)
    by_key = _by_key(ordered, ranks)
    return cells, comparisons, _groups(by_key, groups), _verdicts(by_key, runs, groups), notes


def binary_metrics(scores: Iterable[Scores]) -> dict[tuple[str, str], bool]:
    """Whether each (task, metric) is a proportion: every cell's tool says its scores are 0 or
    1 (``Scores.binary``) and every sample's score is 0 or 1 (a cell without samples has no
    say). Decided once for the metric, so that its cells and comparisons are all analysed
    alike."""
    found: dict[tuple[str, str], bool] = {}
    for s in scores:
        key = (s.task, s.metric)
        ones = not s.samples or (s.binary and all(v == 0 or v == 1 for v in s.samples.values()))
        found[key] = found.get(key, True) and ones
    return found


def control_of(run: Run, runs: Sequence[Run]) -> Run | None:
    """The control of ``run``: the first control run of the same base model (None if none)."""
    return next((r for r in runs if r.type is RunType.CONTROL and r.model == run.model), None)


def seed_groups(runs: Sequence[Run]) -> tuple[tuple[Run, ...], ...]:
    """The fine-tuned runs that differ only in their ``seed`` parameter (same model, training
    condition and other parameters), in groups of two or more, in the experiment's order. A run
    without a ``seed`` parameter is in no group."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        if run.type is RunType.FINE_TUNED and "seed" in run.parameters:
            rest = {k: v for k, v in thaw(run.parameters).items() if k != "seed"}
            key = json.dumps([run.model, run.training_condition, rest], sort_keys=True, default=str)
            groups.setdefault(key, []).append(run)
    return tuple(tuple(group) for group in groups.values() if len(group) > 1)


def primary_metrics(scores: Iterable[Scores]) -> dict[str, str]:
    """The primary metric of each task: the first one its scores name (the first scorer's)."""
    primary: dict[str, str] = {}
    for s in scores:
        primary.setdefault(s.task, s.metric)
    return primary


# --- cells ----------------------------------------------------------------------------------


def _ordered(
    scores: Sequence[Scores], runs: Sequence[Run]
) -> tuple[list[Scores], dict[Key, tuple]]:
    """The scores in the analysis's order, one per (run, task, epoch, metric), and the place
    of each task, epoch and metric."""
    run_rank = {run.name: i for i, run in enumerate(runs)}
    for s in scores:
        run_rank.setdefault(s.run, len(run_rank))
    rank = _key_ranks(scores)
    unique: dict[tuple[str, str, int | None, str], Scores] = {}
    for s in scores:
        unique.setdefault((s.run, s.task, s.epoch, s.metric), s)
    return sorted(unique.values(), key=lambda s: (run_rank[s.run], rank[_key(s)])), rank


def _key(s: Scores) -> Key:
    return s.task, s.epoch, s.metric


def _key_ranks(scores: Iterable[Scores]) -> dict[Key, tuple]:
    """The place of each task, epoch and metric: tasks and metrics as first seen, epochs up."""
    task_rank: dict[str, int] = {}
    metric_rank: dict[tuple[str, str], int] = {}
    ranks = {}
    for s in scores:
        task_rank.setdefault(s.task, len(task_rank))
        metric_rank.setdefault((s.task, s.metric), len(metric_rank))
        epoch = (0, 0) if s.epoch is None else (1, s.epoch)
        ranks[_key(s)] = task_rank[s.task], epoch, metric_rank[(s.task, s.metric)]
    return ranks


def _values(s: Scores, ids: Sequence[str]) -> np.ndarray:
    return np.array([s.samples[i] for i in ids], dtype=float)


def _cell(s: Scores, label: str) -> Cell:
    x = _values(s, sorted(s.samples))
    n = int(x.size)
    where = {"run": s.run, "task": s.task, "epoch": s.epoch, "metric": s.metric, "log": s.log}
    if not n:  # not a mean of per-sample scores: the tool's own value, no interval
        none = {"ci_low": None, "ci_high": None, "ci_method": stats.NONE}
        return Cell(**where, value=s.value, n=0, **none, label=label)
    if s.binary:
        low, high = stats.wilson(round(float(x.sum())), n)
        method = stats.WILSON
    else:
        low, high = stats.t_interval(x)
        method = stats.T
    return Cell(
        **where,
        # The mean of the samples the interval is about (the metric itself: tools give samples
        # only where it is their mean).
        value=float(x.mean()),
        n=n,
        ci_low=low,
        ci_high=high,
        ci_method=method,
        label=label,
        floor=bool(s.binary and np.all(x == 0)),
        ceiling=bool(s.binary and np.all(x == 1)),
    )


# --- comparisons with the control -----------------------------------------------------------


def _pairs(
    ordered: Sequence[Scores], runs: Sequence[Run]
) -> tuple[list[tuple[Scores, Scores]], tuple[str, ...]]:
    """Each fine-tuned or eval-only cell with the cell it is compared with, and notes on the
    cells that have none. The control is the first cell (epoch None comes first) of the
    run's control run on the same task and metric, else the run's own base-model cell; of
    these, the first evaluated on the same data."""
    controls = {run.name: control_of(run, runs) for run in runs if run.type in COMPARED}
    models = {run.name: run.model for run in runs}
    first: dict[tuple[str, str, str], Scores] = {}
    own_base: dict[tuple[str, str, str], Scores] = {}
    for s in ordered:
        first.setdefault((s.run, s.task, s.metric), s)
        if s.baseline:
            own_base.setdefault((s.run, s.task, s.metric), s)
    pairs: list[tuple[Scores, Scores]] = []
    uncontrolled: dict[str, dict[str, None]] = {}  # model -> its runs with nothing to compare
    lacking: dict[tuple[str, str], dict[str, None]] = {}  # (control, task) -> runs
    other_data: dict[tuple[str, str, int | None], str] = {}
    for s in ordered:
        if s.run not in controls or s.baseline:
            continue
        control = controls[s.run]
        candidates = [
            found
            for found in (
                first.get((control.name, s.task, s.metric)) if control else None,
                own_base.get((s.run, s.task, s.metric)),
            )
            if found is not None
        ]
        if not candidates:
            if control is None:
                uncontrolled.setdefault(models[s.run], {})[s.run] = None
            else:
                lacking.setdefault((control.name, s.task), {})[s.run] = None
            continue
        base = next((c for c in candidates if c.dataset == s.dataset), None)
        if base is not None:
            pairs.append((s, base))
        else:
            other = candidates[0]
            other_data.setdefault(
                (s.run, s.task, s.epoch),
                f"{s.run} on {s.task} ({_at(s.epoch)}) is not compared with {other.run}: they "
                f"were evaluated on different data ({s.dataset or 'unknown'}; "
                f"{other.run}: {other.dataset or 'unknown'})",
            )
    notes = [
        f"no control for model {model}: nothing to compare with ({', '.join(names)})"
        for model, names in uncontrolled.items()
    ]
    notes += [
        f"the control {control} has no cell on {task}: nothing to compare "
        f"{', '.join(names)} with there"
        for (control, task), names in lacking.items()
    ]
    notes += list(other_data.values())
    return pairs, tuple(notes)


def _at(epoch: int | None) -> str:
    return "not fine-tuned" if epoch is None else f"epoch {epoch}"


def _comparisons(pairs: Sequence[tuple[Scores, Scores]]) -> tuple[Comparison, ...]:
    found = [c for s, base in pairs if (c := _compare(s, base)) is not None]
    adjusted = stats.holm([c.p_value for c in found])
    return tuple(attrs.evolve(c, p_adjusted=p) for c, p in zip(found, adjusted, strict=True))


def _compare(s: Scores, base: Scores) -> Comparison | None:
    ids = sorted(set(s.samples) & set(base.samples))
    if not ids:
        return None
    a, b = _values(s, ids), _values(base, ids)
    low, high = stats.paired_bootstrap(a, b)
    binary = s.binary and base.binary
    up, down = stats.flips(a, b, ids) if binary else ((), ())
    return Comparison(
        run=s.run,
        control=base.run,
        task=s.task,
        epoch=s.epoch,
        metric=s.metric,
        n=len(ids),
        delta=float(np.mean(a - b)),
        ci_low=low,
        ci_high=high,
        p_value=stats.mcnemar_exact(a, b) if binary else stats.wilcoxon(a, b),
        flips_up=len(up),
        flips_down=len(down),
        flips_up_ids=up,
        flips_down_ids=down,
        test=stats.MCNEMAR if binary else stats.WILCOXON,
    )


# --- seeds ------------------------------------------------------------------------------------


def _by_key(ordered: Sequence[Scores], ranks: Mapping[Key, tuple]) -> dict[Key, dict[str, Scores]]:
    """Each task, epoch and metric, in order, with its scores by run (base-model cells left
    out: they are controls, not contenders)."""
    cells: dict[Key, dict[str, Scores]] = {key: {} for key in sorted(ranks, key=ranks.get)}
    for s in ordered:
        if not s.baseline:
            cells[_key(s)][s.run] = s
    return cells


def _pool(members: Sequence[Scores]) -> tuple[list[str], np.ndarray]:
    """The sample ids every member has, and the members' scores on them (one row each)."""
    ids = sorted(set.intersection(*(set(s.samples) for s in members)))
    return ids, np.array([_values(s, ids) for s in members]).reshape(len(members), len(ids))


def _groups(
    cells: Mapping[Key, Mapping[str, Scores]], groups: Sequence[Sequence[Run]]
) -> tuple[Group, ...]:
    found = []
    for group in groups:
        for (task, epoch, metric), by_run in cells.items():
            members = [by_run[run.name] for run in group if run.name in by_run]
            if len(members) < 2:
                continue
            ids, x = _pool(members)
            if not ids:
                continue
            mean, sd, low, high = stats.seed_pooled(x)
            found.append(
                Group(
                    runs=tuple(s.run for s in members),
                    task=task,
                    epoch=epoch,
                    metric=metric,
                    mean=mean,
                    sd_between_seeds=sd,
                    ci_low=low,
                    ci_high=high,
                )
            )
    return tuple(found)


# --- verdicts ---------------------------------------------------------------------------------


def _contenders(
    by_run: Mapping[str, Scores], runs: Sequence[Run], group_of: Mapping[str, Sequence[Run]]
) -> list[tuple[str, dict[str, float], bool]]:
    """The fine-tuned and eval-only runs with a cell here, a seed group as one: its name, its
    score by sample id (a group's: the mean over its seeds) and whether the scores are 0/1."""
    contenders, seen = [], set()
    for run in runs:
        if run.type not in COMPARED or run.name in seen:
            continue
        group = group_of.get(run.name, (run,))
        seen.update(r.name for r in group)
        members = [by_run[r.name] for r in group if r.name in by_run]
        if not members:
            continue
        ids, x = _pool(members)
        name = "+".join(s.run for s in members)
        contenders.append(
            (name, dict(zip(ids, x.mean(axis=0), strict=True)), all(s.binary for s in members))
        )
    return contenders


def _verdicts(
    cells: Mapping[Key, Mapping[str, Scores]],
    runs: Sequence[Run],
    groups: Sequence[Sequence[Run]],
) -> tuple[Verdict, ...]:
    group_of = {run.name: group for group in groups for run in group}
    found = []
    for key, by_run in cells.items():
        contenders = _contenders(by_run, runs, group_of)
        if len(contenders) < 2:
            continue
        ids = sorted(set.intersection(*(set(scores) for _, scores, _ in contenders)))
        if ids:
            found.append(_verdict(key, contenders, ids))
    return tuple(found)


def _verdict(
    key: Key, contenders: Sequence[tuple[str, dict[str, float], bool]], ids: Sequence[str]
) -> Verdict:
    """Best against runner-up on the samples all contenders have; a tie goes to the earlier."""
    series = [
        (name, np.array([scores[i] for i in ids]), binary) for name, scores, binary in contenders
    ]
    ranked = sorted(series, key=lambda item: -item[1].mean())
    (leader, a, _), (runner_up, b, _) = ranked[:2]
    binary = all(item[2] for item in series)
    delta = float(np.mean(a - b))
    low, high = stats.paired_bootstrap(a, b)
    # One pair collapses the interval to the difference: no evidence either way.
    separated = len(ids) > 1 and (low > 0 or high < 0)
    if separated:
        needed = None
    elif binary:
        needed = stats.samples_for_power(float(a.mean()), float(b.mean()), power=POWER, alpha=ALPHA)
    elif len(ids) > 1:
        sd = float(np.std(a - b, ddof=1))
        needed = stats.samples_for_power_paired(delta, sd, power=POWER, alpha=ALPHA)
    else:
        needed = None  # no spread to size a sample by
    power = stats.TWO_PROPORTIONS if binary else stats.PAIRED_NORMAL
    task, epoch, metric = key
    return Verdict(
        task=task,
        epoch=epoch,
        metric=metric,
        best=leader if separated else None,
        leader=leader,
        runner_up=runner_up,
        delta=delta,
        ci_low=low,
        ci_high=high,
        samples_needed=needed,
        method=(
            f"{stats.PAIRED_BOOTSTRAP} of best - runner-up on {len(ids)} common samples; "
            f"samples needed: {power} ({POWER:.0%} power, alpha {ALPHA})"
        ),
    )
