"""What ``cruijff analyze`` reads of an evaluation cell: every sample's score, from its log.

The cell's log is the one its ``results.json`` names (else the newest ``.eval`` file in its
``logs/``), read through ``inspect_ai.log``: ``.eval`` files are zip archives of zstd-compressed
JSON, which the standard library cannot read. One header read suffices: with
``header_only=True`` inspect still loads the log's *reductions*, the per-sample score of each
scorer after folding epochs with the task's reducer (the mean unless the task sets one), the
very values its metrics were computed from. Only a metric that has no reduction (an old log, a
scorer whose metric reads unreduced scores, epoch reduction turned off) reads the sample
summaries (``read_eval_log_sample_summaries``, never the full samples) and folds each sample's
epochs into their mean. Reading a 100-sample cell takes a few milliseconds.

Each scorer's metrics become :class:`~cruijff.analysis.model.Scores` named as inspect names them
in the log's results, ``<scorer>/<metric>`` (``match/accuracy``; ``match/accuracy[max]`` for a
second reducer of the same scorer), with inspect's aggregate as the value and every sample's
score, converted with inspect's own ``value_to_float`` (``C`` 1, ``I`` 0, ``P`` 0.5, ``N``
0). Samples inspect left unscored (NaN) are left out, as its metrics leave them out. Dispersion
metrics (``stderr``, ``std``, ``var``, ``bootstrap_stderr``) describe another metric's
uncertainty, not the samples, so they are not scores: the analysis computes its own intervals.
A score is binary when its metric is a proportion (``accuracy``, or the ``mean`` of scores)
and every sample's score is 0 or 1.

inspect_ai is imported when a cell is first read, never when the plugin loads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from cruijff.analysis.model import Observations, Scores
from cruijff.records import Experiment, Unit
from cruijff_inspect.matrix import KIND
from cruijff_inspect.results import LOGS, SUCCESS, read_results

DISPERSION = frozenset({"stderr", "std", "var", "bootstrap_stderr"})
"""Metrics of an aggregate's spread: not reported as scores."""
PROPORTIONS = frozenset({"accuracy", "mean"})
"""Metrics that are the fraction of ones when every sample scores 0 or 1."""


def relative(path: Path, experiment: Experiment) -> str:
    """``path`` relative to the experiment directory (as it is when outside it)."""
    try:
        return str(path.relative_to(experiment.directory))
    except ValueError:
        return str(path)


def find_log(directory: Path) -> tuple[Path | None, str]:
    """The cell's log and "", or None and why there is none."""
    results = read_results(directory)
    named = results.get("log") if results else None
    if named:
        path = directory / str(named)
        return (path, "") if path.is_file() else (None, f"its log {path} is gone")
    logs = sorted((directory / LOGS).glob("*.eval"))  # names start with their time
    if not logs:
        return None, f"no inspect log in {directory / LOGS}"
    return logs[-1], ""


def scalar(value: Any, key: str | None, to_float: Callable[[Any], float]) -> float | None:
    """A sample's score as a float (``key`` picks an entry of a dict-valued score); None when
    it has none, is not a scalar, or is NaN (inspect leaves such samples unscored)."""
    if key is not None:
        value = value.get(key) if isinstance(value, Mapping) else None
    if value is None or isinstance(value, (Mapping, list, tuple)):
        return None
    number = to_float(value)
    return None if math.isnan(number) else number


def fold(pairs: Iterable[tuple[str, float]]) -> dict[str, float]:
    """The mean score of each sample id over its epochs, in first-seen order."""
    sums: dict[str, list[float]] = {}
    for sample_id, value in pairs:
        sums.setdefault(sample_id, []).append(value)
    return {sample_id: math.fsum(values) / len(values) for sample_id, values in sums.items()}


class _Summaries:
    """The log's sample summaries, read once and only when a metric needs them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[Any] | None = None

    def samples(self, scorer: str, key: str | None, to_float: Callable) -> dict[str, float]:
        if self.rows is None:
            from inspect_ai.log import read_eval_log_sample_summaries

            self.rows = read_eval_log_sample_summaries(str(self.path))
        pairs = []
        for row in self.rows:
            score = (row.scores or {}).get(scorer)
            value = scalar(score.value, key, to_float) if score is not None else None
            if value is not None:
                pairs.append((str(row.id), value))
        return fold(pairs)


def metric_name(score: Any, name: str, reducers: Mapping[str, int]) -> str:
    """``<scorer>/<metric>``, with ``[reducer]`` when the scorer has several reducers."""
    suffix = f"[{score.reducer}]" if score.reducer and reducers.get(score.name, 0) > 1 else ""
    return f"{score.name}/{name}{suffix}"


def observe(experiment: Experiment, unit: Unit) -> Observations | None:
    """``cruijff_observe`` for an inspect cell: its scores, read from its log."""
    if unit.kind != KIND:
        return None
    path, why = find_log(unit.directory)
    if path is None:
        return Observations(missing=why)
    shown = relative(path, experiment)
    from inspect_ai.log import read_eval_log
    from inspect_ai.scorer import value_to_float

    try:
        header = read_eval_log(str(path), header_only=True)
    except Exception as error:  # a truncated zip, a foreign file, a newer schema...
        reason = f"{type(error).__name__}: {error}".strip().splitlines()[0]
        return Observations(missing=f"cannot read the inspect log {shown}: {reason}")
    if header.status != SUCCESS:
        cause = f"the inspect log {shown} has status {header.status}"
        if header.error is not None and header.error.message:
            cause += f": {header.error.message.strip().splitlines()[-1]}"
        return Observations(missing=cause)
    if header.results is None or not header.results.scores:
        return Observations(missing=f"the inspect log {shown} has no scores")

    to_float = value_to_float()
    reduced = {(r.scorer, r.reducer): r.samples for r in header.reductions or ()}
    summaries = _Summaries(path)
    views: dict[str, int] = {}
    for score in header.results.scores:
        views[score.name] = views.get(score.name, 0) + 1
    task = unit.params.get("task")
    epoch = unit.params.get("epoch")
    found = []
    for score in header.results.scores:
        scorer = score.scorer or score.name
        key = score.name if score.name != scorer else None  # an entry of a dict-valued score
        rows = reduced.get((scorer, score.reducer))
        if rows is not None:
            pairs = ((str(row.sample_id), scalar(row.value, key, to_float)) for row in rows)
            samples = fold((i, v) for i, v in pairs if v is not None)
        else:
            samples = summaries.samples(scorer, key, to_float)
        binary = bool(samples) and all(v in (0.0, 1.0) for v in samples.values())
        for name, metric in score.metrics.items():
            kind = metric.name.rsplit("/", 1)[-1]  # a package's metric: "pkg/name"
            if kind in DISPERSION:
                continue
            found.append(
                Scores(
                    unit=unit.id,
                    run=unit.run,
                    task=str(task if task is not None else header.eval.task),
                    epoch=epoch,
                    metric=metric_name(score, name, views),
                    value=float(metric.value),
                    samples=samples,
                    binary=binary and kind in PROPORTIONS,
                    log=shown,
                )
            )
    # the versions the evaluation ran with, as inspect recorded them, for the report
    packages = {
        name: str(version) for name, version in sorted((header.eval.packages or {}).items())
    }
    return Observations(scores=found, environment=packages)
