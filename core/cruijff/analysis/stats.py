"""The statistics of an analysis, as pure functions over plain sequences of numbers.

Intervals and tests come from scipy and statsmodels; the only numpy code of our own is the
resampling of the bootstraps, vectorised so that an experiment of a thousand cells is analysed
in seconds (:func:`paired_bootstrap` draws exactly what ``scipy.stats.bootstrap`` draws).
Every interval is 95%; a ``None`` bound means the interval is undefined (no samples).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import scipy.stats
from statsmodels.stats.multitest import multipletests

CONFIDENCE = 0.95
RESAMPLES = 10_000
SEED = 0

WILSON = "wilson"
T = "t"
NONE = "none (not a mean of samples)"
"""The interval method of a metric its tool gives without per-sample scores (a median, a
precision, a grouped metric): shown as the tool computed it, without interval or comparison."""
PAIRED_BOOTSTRAP = f"paired bootstrap (percentile, {RESAMPLES}, seed {SEED})"
SEED_BOOTSTRAP = f"two-level bootstrap over seeds, then samples ({RESAMPLES}, seed {SEED})"
MCNEMAR = "mcnemar exact"
WILCOXON = "wilcoxon"
# how many samples would detect a difference: plans ask it too, without importing scipy
from cruijff.analysis.power import (  # noqa: E402
    PAIRED_NORMAL,
    TWO_PROPORTIONS,
    detectable_difference,
    samples_for_power,
    samples_for_power_paired,
)

__all__ = [
    "PAIRED_NORMAL",
    "TWO_PROPORTIONS",
    "detectable_difference",
    "samples_for_power",
    "samples_for_power_paired",
]

Interval = tuple[float | None, float | None]

# scipy's own tail: (1 - 0.95) / 2 is 0.025000000000000022, not 0.025; the same float gives
# the same quantile to the last bit.
_ALPHA = (1 - CONFIDENCE) / 2
# Resampling matrices up to this many indices (64 MiB) are kept for the next call of the same
# size: an experiment's cells mostly share their sample count. Larger ones are drawn in blocks
# of about _BLOCK indices (32 MiB of indices, as much again of resampled values).
_CACHED_INDICES = 1 << 23
_BLOCK = 1 << 22


def wilson(successes: int, n: int) -> Interval:
    """The 95% Wilson score interval of ``successes`` out of ``n`` (no continuity correction);
    ``(None, None)`` when ``n`` is 0."""
    if n == 0:
        return None, None
    ci = scipy.stats.binomtest(successes, n).proportion_ci(CONFIDENCE, method="wilson")
    return float(ci.low), float(ci.high)


def t_interval(values: Sequence[float]) -> Interval:
    """The 95% Student t interval of the mean of ``values``: ``(None, None)`` with fewer than
    two values (no spread to estimate), the mean itself when they are all equal."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return None, None
    mean = float(x.mean())
    if np.all(x == x[0]):
        return mean, mean
    low, high = scipy.stats.t.interval(
        CONFIDENCE, df=x.size - 1, loc=mean, scale=scipy.stats.sem(x)
    )
    return float(low), float(high)


@functools.lru_cache(maxsize=4)
def _cached_rows(seed: int, resamples: int, n: int) -> np.ndarray:
    rows = np.random.default_rng(seed).integers(0, n, (resamples, n))
    rows.setflags(write=False)
    return rows


def _row_blocks(seed: int, resamples: int, n: int) -> Iterator[np.ndarray]:
    """The sample indices of ``resamples`` bootstrap resamples of ``n`` samples: the first draw
    of ``numpy.random.default_rng(seed)``, as in ``scipy.stats.bootstrap(..., rng=seed)``, in
    consecutive blocks of rows.

    A small matrix (up to :data:`_CACHED_INDICES` indices) comes whole and is kept for the next
    call of the same size. A larger one is drawn in blocks of about :data:`_BLOCK` indices
    from one generator, so that 10,000 resamples of 5,000 samples never hold 800 MB at once:
    ``Generator.integers`` with the same bounds and dtype continues one stream across calls
    (the bit generator keeps any unused half of a 64-bit word in its own state), so the blocks
    are, row for row, the one-shot draw (``tests/test_analysis_stats.py`` checks it).
    """
    if resamples * n <= _CACHED_INDICES:
        yield _cached_rows(seed, resamples, n)
        return
    rng = np.random.default_rng(seed)
    step = max(1, _BLOCK // n)
    for start in range(0, resamples, step):
        yield rng.integers(0, n, (min(step, resamples - start), n))


@functools.lru_cache(maxsize=4)
def _cached_counts(seed: int, resamples: int, n: int) -> np.ndarray:
    return _counts(_cached_rows(seed, resamples, n), n)


def _counts(rows: np.ndarray, n: int) -> np.ndarray:
    """How often each of ``n`` items is drawn in each row of ``rows`` (as floats, for BLAS)."""
    flat = (np.arange(rows.shape[0])[:, None] * n + rows).ravel()
    counts = np.bincount(flat, minlength=rows.size).reshape(rows.shape[0], n).astype(float)
    counts.setflags(write=False)
    return counts


def _count_blocks(seed: int, resamples: int, n: int) -> Iterator[np.ndarray]:
    """:func:`_row_blocks` as counts: row r says how often resample r draws each sample."""
    if resamples * n <= _CACHED_INDICES:
        yield _cached_counts(seed, resamples, n)
        return
    for rows in _row_blocks(seed, resamples, n):
        yield _counts(rows, n)


def _percentile(distribution: np.ndarray) -> tuple[float, float]:
    low, high = np.quantile(distribution, [_ALPHA, 1 - _ALPHA])
    return float(low), float(high)


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], *, seed: int = SEED, resamples: int = RESAMPLES
) -> Interval:
    """The 95% paired bootstrap interval of ``mean(a - b)`` (percentile method).

    Equivalent to ``scipy.stats.bootstrap((a, b), mean-of-differences, paired=True,
    method="percentile", n_resamples=resamples, rng=seed)``: the same resample indices (the
    first draw of ``numpy.random.default_rng(seed)``), the same statistic and the same
    quantiles, computed with numpy on an index matrix kept between calls (drawn in blocks of
    rows when it is large: :func:`_row_blocks`), because scipy's general machinery costs
    ~20 ms a call. With one pair, or differences that are all equal,
    the interval is the difference itself (scipy refuses one pair, and a mean of equal floats
    can miss their value by an ulp); with no pairs it is ``(None, None)``.
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size == 0:
        return None, None
    if d.size == 1 or np.all(d == d[0]):
        return float(d[0]), float(d[0])
    means = [d[rows].mean(axis=-1) for rows in _row_blocks(seed, resamples, d.size)]
    return _percentile(np.concatenate(means))


def _discordant(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired scores differ in length: {x.size} and {y.size}")
    return (x == 1) & (y == 0), (x == 0) & (y == 1)


def mcnemar_exact(a: Sequence[float], b: Sequence[float]) -> float:
    """McNemar's exact test of paired 0/1 scores: the two-sided exact binomial test (p = 1/2) of
    the discordant pairs; 1 when there are none."""
    up, down = _discordant(a, b)
    discordant = int(up.sum() + down.sum())
    if discordant == 0:
        return 1.0
    return float(scipy.stats.binomtest(int(up.sum()), discordant, 0.5).pvalue)


def flips(
    a: Sequence[float], b: Sequence[float], ids: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The ids of the samples that flipped between paired 0/1 scores ``b`` (before) and ``a``
    (after): wrong -> right, then right -> wrong."""
    up, down = _discordant(a, b)
    return (
        tuple(i for i, flag in zip(ids, up, strict=True) if flag),
        tuple(i for i, flag in zip(ids, down, strict=True) if flag),
    )


def wilcoxon(a: Sequence[float], b: Sequence[float]) -> float | None:
    """The two-sided Wilcoxon signed-rank p-value of the paired differences ``a - b`` (scipy's
    defaults: zero differences dropped, exact or normal by size); None where it is undefined
    (no non-zero difference)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if not np.any(d != 0):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(scipy.stats.wilcoxon(d).pvalue)
    return None if math.isnan(p) else p


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment over every non-None p-value; None stays None, in place."""
    present = [i for i, p in enumerate(pvalues) if p is not None]
    adjusted: list[float | None] = [None] * len(pvalues)
    if present:
        values = multipletests([pvalues[i] for i in present], method="holm")[1]
        for i, p in zip(present, values, strict=True):
            adjusted[i] = float(p)
    return adjusted


def seed_pooled(
    per_seed: Sequence[Sequence[float]], *, seed: int = SEED, resamples: int = RESAMPLES
) -> tuple[float, float | None, float | None, float | None]:
    """Pool the scores of runs that differ only in their seed, on the same samples (the i-th
    score of every seed is the same sample): ``(mean, sd_between, low, high)``.

    ``mean`` is the mean of the seeds' means, ``sd_between`` their standard deviation (n - 1;
    None with one seed), and ``low``-``high`` a 95% percentile interval from a two-level
    bootstrap: each resample draws the seeds with replacement, then the samples with
    replacement, and averages the drawn seeds on the drawn samples. Seeds and samples are
    crossed (every seed scores the same samples), so one draw of samples serves all the seeds
    of a resample: this is the bootstrap of a two-way layout (Owen 2007, "The pigeonhole
    bootstrap"), which carries the seed-to-seed spread and the sample-to-sample spread, and is
    mildly conservative (their interaction is counted twice). Drawing samples afresh for each
    seed instead, as for nested data, would shrink the shared sample variance by the number of
    seeds. The samples are drawn as in :func:`paired_bootstrap`, the seeds from
    ``numpy.random.default_rng([seed, number of seeds])``.
    """
    x = np.asarray(per_seed, dtype=float)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError("seed_pooled needs one equally long, non-empty sequence per seed")
    k, n = x.shape
    means = x.mean(axis=1)
    mean = float(means.mean())
    sd = float(means.std(ddof=1)) if k > 1 else None
    if np.all(x == x.flat[0]):
        return mean, sd, mean, mean
    picks = np.random.default_rng([seed, k]).integers(0, k, (resamples, k))
    # Resample r is sum_j seeds[r, j] * sum_t samples[r, t] * x[j, t] / (k n): how often it
    # draws seed j and sample t, as two count matrices and one matrix product.
    seeds = _counts(picks, k)
    drawn = np.concatenate([samples @ x.T for samples in _count_blocks(seed, resamples, n)])
    pooled = np.einsum("rj,rj->r", drawn, seeds) / (k * n)
    low, high = _percentile(pooled)
    return mean, sd, low, high
