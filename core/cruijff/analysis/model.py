"""The records of an analysis: what tool plugins contribute (:class:`Scores`, :class:`Section`),
what the core reads itself (:class:`Curve`, from ``train-metrics`` artifacts), and what the
analysis finds (:class:`Cell`, :class:`Comparison`, :class:`Group`, :class:`Verdict`,
:class:`Missing`), gathered in :class:`Analysis`.

Every number carries where it came from: a cell its log (relative to the experiment
directory) and sample ids, a comparison the ids of the samples that flipped. Fractions are in
[0, 1]; intervals are 95%.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from cruijff.records import freeze

record = attrs.frozen(kw_only=True)


def _mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return freeze(dict(value or {}))


def _tuple(value: Any) -> tuple:
    return tuple(value or ())


# --- what tools contribute ------------------------------------------------------------------


@record
class Scores:
    """One evaluation cell's scores on one metric, as the tool that owns the cell read them.

    ``metric`` is ``<scorer>/<metric>`` (``match/accuracy``); ``value`` the tool's own
    aggregate (None where it is not a finite number); ``samples`` every sample's score by
    sample id (a string; epochs of a task, if the tool repeats samples, are folded into one
    value per sample by the tool). Give samples only where their mean *is* the metric (an
    accuracy, a mean): the analysis reports their mean with its interval and compares cells
    sample by sample. A metric that is not the mean of its samples (a median, a precision, a
    grouped metric) comes without samples: its value is shown as the tool computed it, with no
    interval and no comparison. ``binary`` says each score is 0 or 1 (accuracy of match,
    includes, choice): a proportion, analysed with Wilson intervals and McNemar's test;
    otherwise a mean. The analysis checks it: a metric is binary only where every cell of its
    task says so and every sample scores 0 or 1. ``log`` is the file the scores come from,
    relative to the experiment directory.

    ``dataset`` identifies the data the cell was evaluated on (any string that differs when
    the data differ: a file and split, a sample count, a hash of the sample ids); cells are
    compared sample by sample only where it is the same. ``baseline`` marks a cell that
    evaluates a run's base model as it is (a fine-tuned run's ``base`` cell): it serves as the
    run's control where the experiment has no control run for its model, is never compared
    itself and takes no part in the verdicts.
    """

    unit: str
    run: str
    task: str
    epoch: int | None = None
    metric: str
    value: float | None
    samples: Mapping[str, float] = attrs.field(factory=dict, converter=_mapping)
    binary: bool = False
    log: str = ""
    dataset: str = ""
    baseline: bool = False


@record
class Section:
    """A part of the report a plugin adds: a title, text (Markdown paragraphs), an optional
    table (``columns`` and ``rows`` of plain values) and optional PNG images (name -> bytes,
    written beside the report and embedded in it)."""

    title: str
    text: str = ""
    columns: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    rows: tuple[tuple[Any, ...], ...] = attrs.field(default=(), converter=_tuple)
    images: Mapping[str, bytes] = attrs.field(factory=dict, converter=_mapping)
    plugin: str = ""


@record
class Observations:
    """What a tool contributes for one of its units (``cruijff_observe``): scores, the cause
    when the unit's files cannot be read (it is then listed as missing), and the package
    versions its job ran with (name -> version), where the tool's files record them."""

    scores: tuple[Scores, ...] = attrs.field(default=(), converter=_tuple)
    missing: str = ""
    environment: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)


# --- what the core reads itself ---------------------------------------------------------------

CURVE_COLUMNS = ("step", "epoch", "loss", "val_loss", "lr")
"""The columns of a ``train-metrics`` CSV the analysis reads (any trainer's file with them
plots without code of its own): ``step`` (1-based optimizer step, counting across epochs),
``epoch`` (0-based), ``loss`` (training loss of that step), ``val_loss`` (validation loss,
empty where none was computed) and ``lr``. Other columns are kept but not plotted."""


@record
class Curve:
    """A run's training curve, from its ``train-metrics`` artifact."""

    run: str
    path: str
    steps: tuple[int, ...] = attrs.field(default=(), converter=_tuple)
    epochs: tuple[int, ...] = attrs.field(default=(), converter=_tuple)
    loss: tuple[float | None, ...] = attrs.field(default=(), converter=_tuple)
    val_loss: tuple[float | None, ...] = attrs.field(default=(), converter=_tuple)


# --- what the analysis finds ------------------------------------------------------------------


@record
class Cell:
    """A metric of one evaluation cell with its interval: Wilson for a proportion, t for a
    mean, none for a metric that is not a mean of per-sample scores (``ci_method`` says
    which; ``n`` is then 0 and ``value`` the tool's own, None where it was not a finite
    number). ``epoch`` is None for controls and eval-only runs."""

    run: str
    task: str
    epoch: int | None
    metric: str
    value: float | None
    n: int
    ci_low: float | None
    ci_high: float | None
    ci_method: str
    log: str
    label: str = ""
    floor: bool = False
    ceiling: bool = False


@record
class Comparison:
    """A fine-tuned (or eval-only) cell against the control of its base model, on the same task,
    data and samples: ``delta`` = run - control over the paired samples, its paired bootstrap
    interval, the exact McNemar p-value (binary) or Wilcoxon's (otherwise; None where it is
    undefined), Holm's adjustment over the experiment, and the samples that flipped.
    ``control`` is the control run, or the run itself where its own base-model cell serves as
    its control (the experiment has no control run for its model)."""

    run: str
    control: str
    task: str
    epoch: int | None
    metric: str
    n: int
    delta: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_adjusted: float | None = None
    flips_up: int = 0
    flips_down: int = 0
    flips_up_ids: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    flips_down_ids: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    test: str = ""


@record
class Group:
    """Runs that differ only in ``seed``, pooled on one task, epoch and metric: the mean over
    seeds, the standard deviation between them, and a two-level bootstrap interval (seeds,
    then samples)."""

    runs: tuple[str, ...] = attrs.field(converter=_tuple)
    task: str
    epoch: int | None
    metric: str
    mean: float
    sd_between_seeds: float | None
    ci_low: float | None
    ci_high: float | None


@record
class Verdict:
    """Which run is best on one task, epoch and metric, only where the paired interval of best
    - runner-up excludes 0; otherwise ``best`` is None and ``samples_needed`` says roughly how
    many samples would detect the observed difference at 80% power. ``leader`` is the run
    ahead either way (``best`` when it is separated)."""

    task: str
    epoch: int | None
    metric: str
    best: str | None
    runner_up: str | None
    leader: str | None = None
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    samples_needed: int | None
    method: str = ""


@record
class Missing:
    """An evaluation cell (or a run's curve: ``task`` and ``epoch`` None) that is not
    analysed, and why."""

    run: str
    task: str | None
    epoch: int | None
    cause: str


@record
class Analysis:
    """Everything ``cruijff analyze`` found, in a deterministic order. ``notes`` say why
    comparisons one might expect are not there (no control for a model, a control evaluated
    on other data)."""

    experiment: str
    cells: tuple[Cell, ...] = attrs.field(default=(), converter=_tuple)
    comparisons: tuple[Comparison, ...] = attrs.field(default=(), converter=_tuple)
    groups: tuple[Group, ...] = attrs.field(default=(), converter=_tuple)
    verdicts: tuple[Verdict, ...] = attrs.field(default=(), converter=_tuple)
    missing: tuple[Missing, ...] = attrs.field(default=(), converter=_tuple)
    curves: tuple[Curve, ...] = attrs.field(default=(), converter=_tuple)
    sections: tuple[Section, ...] = attrs.field(default=(), converter=_tuple)
    notes: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
