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
second reducer of the same scorer), with inspect's aggregate as the value. Only a metric that
*is* the mean of the per-sample scores (``accuracy``, ``mean``: :data:`MEANS`) carries every
sample's score, converted with inspect's own ``value_to_float`` (``C`` 1, ``I`` 0, ``P`` 0.5,
``N`` 0): the analysis reports their mean with its interval and compares cells sample by
sample. Any other metric (``grouped(...)``'s groups, a median, a precision, a metric of one's
own) keeps inspect's value alone, without samples: no interval, no comparison. Samples inspect
left unscored (NaN) are left out, as its metrics leave them out. Dispersion metrics
(``stderr``, ``std``, ``var``, ``bootstrap_stderr``) describe another metric's uncertainty,
not the samples, so they are not scores: the analysis computes its own intervals. A score is
binary when its metric is a proportion (``accuracy``, or the ``mean`` of scores) and every
sample's score is 0 or 1.

Every score names the data it was evaluated on (:func:`dataset_of`: the task's ``data_path``
and ``split`` arguments, else the dataset's location or name, with the sample count and a hash
of the sample ids), so that the analysis compares only cells on the same data, and marks a
cell that evaluates the base model as it is (the matrix's ``base`` source) as a baseline.
Causes of missing cells name files relative to the experiment directory.

inspect_ai is imported when a cell is first read, never when the plugin loads.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from cruijff.analysis.model import Observations, Scores
from cruijff.records import Experiment, Unit
from cruijff_inspect.matrix import BASE, KIND
from cruijff_inspect.results import LOGS, SUCCESS, read_results

DISPERSION = frozenset({"stderr", "std", "var", "bootstrap_stderr"})
"""Metrics of an aggregate's spread: not reported as scores."""
MEANS = frozenset({"accuracy", "mean"})
"""Metrics that are the mean of the per-sample scores (the fraction of ones when every sample
scores 0 or 1): the only ones given samples."""


def relative(path: Path, experiment: Experiment) -> str:
    """``path`` relative to the experiment directory (as it is when outside it)."""
    try:
        return str(path.relative_to(experiment.directory))
    except ValueError:
        return str(path)


def find_log(directory: Path, experiment: Experiment) -> tuple[Path | None, str]:
    """The cell's log and "", or None and why there is none (naming files relative to the
    experiment directory)."""
    results = read_results(directory)
    named = results.get("log") if results else None
    if named:
        path = directory / str(named)
        if path.is_file():
            return path, ""
        return None, f"its log {relative(path, experiment)} is gone"
    logs = sorted((directory / LOGS).glob("*.eval"))  # names start with their time
    if not logs:
        return None, f"no inspect log in {relative(directory / LOGS, experiment)}"
    return logs[-1], ""


def dataset_of(spec: Any, experiment: Experiment) -> str:
    """What data an evaluation ran on, from its log's ``eval`` spec: the ``data_path`` and
    ``split`` the task was given (how cruijff passes a cell's data file), else the dataset's
    location or name; then its sample count and the first 8 hex digits of the sha256 of its
    sorted sample ids. Two cells on the same file, split and samples give the same string."""
    args = spec.task_args or {}
    data = spec.dataset
    path = args.get("data_path")
    if isinstance(path, str) and path:
        where = relative(Path(path), experiment)
        split = args.get("split")
        if split:
            where += f" (split {split})"
    else:
        where = str(data.location or data.name or "the task's own data")
    ids = "\n".join(sorted(str(i) for i in data.sample_ids or ()))
    digest = hashlib.sha256(ids.encode()).hexdigest()[:8]
    return f"{where}, {data.samples} samples (ids {digest})"


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
    path, why = find_log(unit.directory, experiment)
    if path is None:
        return Observations(missing=why)
    shown = relative(path, experiment)
    from inspect_ai.log import read_eval_log
    from inspect_ai.scorer import value_to_float

    try:
        header = read_eval_log(str(path), header_only=True)
    except Exception as error:  # a truncated zip, a foreign file, a newer schema...
        return Observations(
            missing=f"cannot read the inspect log {shown}: {_reason(error, path, shown)}"
        )
    if header.status != SUCCESS:
        cause = f"the inspect log {shown} has status {header.status}"
        lines = (header.error.message or "").strip().splitlines() if header.error else []
        if lines:
            cause += f": {lines[-1].strip()}"
        return Observations(missing=cause)
    if header.results is None or not header.results.scores:
        return Observations(missing=f"the inspect log {shown} has no scores")
    try:
        found = _scores(header, path, unit, shown, experiment, value_to_float())
    except Exception as error:  # damaged sample summaries, an unexpected score shape...
        reason = _reason(error, path, shown)
        return Observations(missing=f"cannot read the scores of the inspect log {shown}: {reason}")
    # the versions the evaluation ran with, as inspect recorded them, for the report
    packages = {
        name: str(version) for name, version in sorted((header.eval.packages or {}).items())
    }
    return Observations(scores=found, environment=packages)


def _reason(error: Exception, path: Path, shown: str) -> str:
    """An error's first line, naming the log as ``shown`` (relative) rather than in full."""
    return f"{type(error).__name__}: {error}".strip().splitlines()[0].replace(str(path), shown)


def _scores(
    header: Any, path: Path, unit: Unit, shown: str, experiment: Experiment, to_float: Callable
) -> list[Scores]:
    """Every scorer's metrics of a successful log's header, as Scores."""
    reduced = {(r.scorer, r.reducer): r.samples for r in header.reductions or ()}
    summaries = _Summaries(path)
    views: dict[str, int] = {}
    for score in header.results.scores:
        views[score.name] = views.get(score.name, 0) + 1
    task = unit.params.get("task")
    epoch = unit.params.get("epoch")
    dataset = dataset_of(header.eval, experiment)
    baseline = unit.params.get("source") == BASE
    found = []
    for score in header.results.scores:
        scorer = score.scorer or score.name
        key = score.name if score.name != scorer else None  # an entry of a dict-valued score
        samples: dict[str, float] | None = None  # read when a metric that is a mean needs them
        for name, metric in score.metrics.items():
            kind = metric.name.rsplit("/", 1)[-1]  # a package's metric: "pkg/name"
            if kind in DISPERSION:
                continue
            mean = kind in MEANS
            if mean and samples is None:
                samples = _samples(reduced, summaries, scorer, score.reducer, key, to_float)
            own = samples if mean and samples is not None else {}
            found.append(
                Scores(
                    unit=unit.id,
                    run=unit.run,
                    task=str(task if task is not None else header.eval.task),
                    epoch=epoch,
                    metric=metric_name(score, name, views),
                    value=float(metric.value),
                    samples=own,
                    binary=bool(own) and all(v in (0.0, 1.0) for v in own.values()),
                    log=shown,
                    dataset=dataset,
                    baseline=baseline,
                )
            )
    return found


def _samples(
    reduced: Mapping[tuple[str, str | None], Any],
    summaries: _Summaries,
    scorer: str,
    reducer: str | None,
    key: str | None,
    to_float: Callable,
) -> dict[str, float]:
    """Every sample's score of one scorer (and reducer): its reduction where the log has one,
    else its sample summaries' epochs folded into their mean."""
    rows = reduced.get((scorer, reducer))
    if rows is None:
        return summaries.samples(scorer, key, to_float)
    pairs = ((str(row.sample_id), scalar(row.value, key, to_float)) for row in rows)
    return fold((i, v) for i, v in pairs if v is not None)
