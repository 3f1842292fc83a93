"""The statistics of ``cruijff analyze`` (:mod:`cruijff.analysis.stats`, :mod:`.compare`),
checked against small cases computed by hand."""

from __future__ import annotations

import math
import random
from pathlib import Path
from statistics import NormalDist

import attrs
import numpy as np
import pytest
import scipy.stats

from cruijff.analysis import stats
from cruijff.analysis.compare import analyse, primary_metrics, seed_groups
from cruijff.analysis.model import Scores
from cruijff.records import Run, RunType

Z = NormalDist().inv_cdf(0.975)  # 1.959964..., the 95% two-sided normal quantile
Z_POWER = NormalDist().inv_cdf(0.8)  # 0.841621...


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return centre - half, centre + half


def two_proportions_by_hand(p1: float, p2: float) -> int:
    p = (p1 + p2) / 2
    spread = Z * math.sqrt(2 * p * (1 - p)) + Z_POWER * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil((spread / (p1 - p2)) ** 2)


def run(name: str, kind: RunType = RunType.FINE_TUNED, model: str = "m", **parameters) -> Run:
    return Run(name=name, type=kind, model=model, parameters=parameters, directory=Path(name))


def scores(
    run: str,
    samples: dict[str, float] | list[float],
    *,
    task: str = "t",
    epoch: int | None = 0,
    metric: str = "match/accuracy",
    binary: bool = True,
) -> Scores:
    if isinstance(samples, list):
        samples = {f"s{i:02d}": value for i, value in enumerate(samples)}
    value = sum(samples.values()) / len(samples) if samples else 0.0
    return Scores(
        unit=f"{run}-{task}",
        run=run,
        task=task,
        epoch=epoch,
        metric=metric,
        value=value,
        samples=samples,
        binary=binary,
        log=f"{run}/{task}.eval",
    )


# --- intervals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(7, 10), (0, 5), (5, 5)])
def test_wilson_matches_the_closed_form(k, n):
    assert stats.wilson(k, n) == pytest.approx(wilson_by_hand(k, n), abs=1e-12)


def test_wilson_at_the_edges_stays_in_bounds():
    assert stats.wilson(0, 5)[0] == 0.0
    assert stats.wilson(5, 5)[1] == 1.0
    assert stats.wilson(0, 0) == (None, None)


def test_t_interval_by_hand():
    # [1, 2, 3, 4]: mean 2.5, sd sqrt(5/3), sem sqrt(5/3)/2; t(0.975, 3) = 3.182446305284263.
    half = 3.182446305284263 * math.sqrt(5 / 3) / 2
    assert stats.t_interval([1, 2, 3, 4]) == pytest.approx((2.5 - half, 2.5 + half), abs=1e-12)
    assert stats.t_interval([0.5, 0.5]) == (0.5, 0.5)
    assert stats.t_interval([0.5]) == (None, None)


# --- tests of paired scores ---------------------------------------------------------------------


def test_mcnemar_exact_by_hand():
    # One pair right -> wrong, six wrong -> right: p = 2 (C(7,0) + C(7,1)) / 2^7 = 0.125.
    run_ = [1] * 6 + [0] + [1, 1, 0]
    control = [0] * 6 + [1] + [1, 1, 0]
    expected = 2 * (math.comb(7, 0) + math.comb(7, 1)) / 2**7
    assert expected == 0.125
    assert stats.mcnemar_exact(run_, control) == pytest.approx(expected)
    assert stats.mcnemar_exact(control, run_) == pytest.approx(expected)


def test_mcnemar_without_discordant_pairs_is_one():
    assert stats.mcnemar_exact([1, 0, 1], [1, 0, 1]) == 1.0
    assert stats.mcnemar_exact([], []) == 1.0


def test_flips_name_the_samples():
    up, down = stats.flips([1, 0, 1, 1], [0, 1, 1, 0], ["a", "b", "c", "d"])
    assert (up, down) == (("a", "d"), ("b",))


def test_wilcoxon_by_hand_and_undefined():
    # Five positive differences, no ties: exact two-sided p = 2 / 2^5.
    assert stats.wilcoxon([1, 2, 3, 4, 5], [0, 0, 0, 0, 0]) == pytest.approx(2 / 32)
    assert stats.wilcoxon([0.5, 0.2], [0.5, 0.2]) is None


def test_holm_by_hand():
    # Sorted 0.01, 0.03, 0.04 times 3, 2, 1: 0.03, 0.06, 0.04 -> monotone 0.03, 0.06, 0.06.
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adjusted = stats.holm([0.01, None, 0.04, 0.03])
    assert adjusted[1] is None
    assert [adjusted[0], adjusted[2], adjusted[3]] == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([None]) == [None]


# --- bootstraps --------------------------------------------------------------------------------


def test_paired_bootstrap_repeats_and_contains_the_delta():
    rng = random.Random(1)
    a = [rng.random() for _ in range(30)]
    b = [rng.random() for _ in range(30)]
    delta = float(np.mean(np.subtract(a, b)))
    first = stats.paired_bootstrap(a, b, seed=0)
    assert first == stats.paired_bootstrap(a, b, seed=0)
    assert first[0] < delta < first[1]
    assert stats.paired_bootstrap(a, b, seed=1) != first


@pytest.mark.parametrize("binary", [True, False])
def test_paired_bootstrap_is_scipys(binary):
    rng = np.random.default_rng(7)
    a = rng.integers(0, 2, 25) if binary else rng.random(25)
    b = rng.integers(0, 2, 25) if binary else rng.random(25)
    resamples = 2_000  # the equivalence holds for any count; 10,000 is analyse's
    ci = scipy.stats.bootstrap(
        (a.astype(float), b.astype(float)),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        paired=True,
        method="percentile",
        n_resamples=resamples,
        rng=3,
    ).confidence_interval
    ours = stats.paired_bootstrap(a, b, seed=3, resamples=resamples)
    assert ours == pytest.approx((ci.low, ci.high), rel=1e-12, abs=1e-15)


def test_paired_bootstrap_degenerate_cases_collapse_quietly(recwarn):
    assert stats.paired_bootstrap([1.0], [0.0]) == (1.0, 1.0)
    assert stats.paired_bootstrap([1, 1, 0], [0, 0, -1]) == (1.0, 1.0)
    assert stats.paired_bootstrap([], []) == (None, None)
    assert not recwarn.list


def test_seed_pooled_by_hand():
    # Seed means 0.75 and 0.5: mean 0.625, sd |0.75 - 0.5| / sqrt(2).
    per_seed = [[1, 0, 1, 1], [0, 0, 1, 1]]
    mean, sd, low, high = stats.seed_pooled(per_seed, seed=0, resamples=2_000)
    assert mean == pytest.approx(0.625)
    assert sd == pytest.approx(0.25 / math.sqrt(2))
    assert 0 <= low < mean < high <= 1
    assert stats.seed_pooled(per_seed, seed=0, resamples=2_000) == (mean, sd, low, high)


def test_seed_pooled_draws_seeds_then_samples():
    # The two-level bootstrap spelled out: each resample draws k seeds, then n samples, and
    # averages the drawn seeds on the drawn samples.
    x = np.random.default_rng(5).random((3, 8))
    k, n, resamples = 3, 8, 500
    samples = np.random.default_rng(0).integers(0, n, (resamples, n))
    seeds = np.random.default_rng([0, k]).integers(0, k, (resamples, k))
    pooled = [np.mean([x[j, samples[r]].mean() for j in seeds[r]]) for r in range(resamples)]
    expected = np.quantile(pooled, [0.025, 0.975])
    _, _, low, high = stats.seed_pooled(x, seed=0, resamples=resamples)
    assert (low, high) == pytest.approx(tuple(expected), rel=1e-9)


def test_seed_pooled_is_wider_than_one_seed_when_seeds_disagree():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2, 50).astype(float)
    shifted = np.where(rng.random(50) < 0.4, 1.0, base)
    _, _, low, high = stats.seed_pooled([base, shifted, base], resamples=2_000)
    _, sd, one_low, one_high = stats.seed_pooled([base], resamples=2_000)
    assert sd is None
    assert high - low > one_high - one_low


def test_seed_pooled_degenerate():
    assert stats.seed_pooled([[1, 1], [1, 1]]) == (1.0, 0.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        stats.seed_pooled([[1, 0], [1]])


def test_samples_for_power_by_hand():
    assert stats.samples_for_power(0.7, 0.6) == two_proportions_by_hand(0.7, 0.6) == 356
    assert stats.samples_for_power(0.6, 0.7) == 356
    assert stats.samples_for_power(0.5, 0.5) is None
    # Mean-like metrics: ((z_0.975 + z_0.8) sd / delta)^2 = (2.801585 * 5)^2 = 196.2 -> 197.
    assert stats.samples_for_power_paired(0.1, 0.5) == math.ceil(((Z + Z_POWER) * 5) ** 2) == 197
    assert stats.samples_for_power_paired(0.0, 0.5) is None


def test_detectable_difference_by_hand():
    # p = 0.5 against 0.6: p-bar 0.55, so (1.959964 * sqrt(2 * 0.55 * 0.45) + 0.841621 *
    # sqrt(0.25 + 0.24))^2 / 0.1^2 = (1.378945 + 0.589135)^2 / 0.01 = 387.3 samples: 388 detect
    # ten points, 387 do not.
    assert stats.detectable_difference(388) <= 0.1 < stats.detectable_difference(387)
    assert stats.detectable_difference(388) > 0.099  # the step is just below ten points
    # p = 0.2 against 0.4: (1.959964 * sqrt(2 * 0.3 * 0.7) + 0.841621 * sqrt(0.16 + 0.24))^2
    # / 0.2^2 = (1.270202 + 0.532290)^2 / 0.04 = 81.2: 82 samples detect twenty points.
    assert stats.detectable_difference(82, 0.2) <= 0.2 < stats.detectable_difference(81, 0.2)
    # the smallest such difference: the function the analysis uses agrees at it, and not just
    # below it
    d = stats.detectable_difference(150, 0.3)
    assert (
        stats.samples_for_power(0.3, 0.3 + d) <= 150 < stats.samples_for_power(0.3, 0.3 + d - 1e-6)
    )
    # toward higher accuracy only: from 0.9, even a perfect score needs
    # (1.959964 * sqrt(2 * 0.95 * 0.05) + 0.841621 * sqrt(0.09))^2 / 0.01 = 73.4 samples
    assert stats.detectable_difference(73, 0.9) == math.inf
    assert stats.detectable_difference(74, 0.9) <= 0.1
    with pytest.raises(ValueError):
        stats.detectable_difference(0)


def test_method_names():
    assert stats.RESAMPLES == 10_000
    assert stats.PAIRED_BOOTSTRAP == "paired bootstrap (percentile, 10000, seed 0)"
    assert (stats.WILSON, stats.T, stats.MCNEMAR, stats.WILCOXON) == (
        "wilson",
        "t",
        "mcnemar exact",
        "wilcoxon",
    )


# --- analyse -----------------------------------------------------------------------------------


def test_cells_carry_intervals_flags_and_labels():
    cells, *_ = analyse(
        [
            scores("base", [1, 0, 1, 1, 1, 1, 0, 1, 0, 1], epoch=None),
            scores("ft", [0] * 5),
            scores("ft", [1] * 5, task="u"),
            scores("ft", [0.5, 0.25], metric="score/mean", binary=False),
        ],
        [run("base", RunType.CONTROL), run("ft")],
        labels={"ft": "rank 8"},
    )
    base, floor, mean_cell, ceiling = cells  # run, then task (t before u), then metric
    assert (base.value, base.n, base.ci_method) == (0.7, 10, "wilson")
    assert (base.ci_low, base.ci_high) == pytest.approx(wilson_by_hand(7, 10))
    assert (base.label, floor.label) == ("", "rank 8")
    assert floor.floor and not floor.ceiling
    assert ceiling.ceiling and not ceiling.floor and ceiling.task == "u"
    assert mean_cell.ci_method == "t" and not mean_cell.floor and not mean_cell.ceiling
    assert base.log == "base/t.eval"


def test_comparison_pairs_only_common_samples():
    control = scores("base", {"a": 0, "b": 0, "c": 1, "d": 1, "x": 0}, epoch=None)
    tuned = scores("ft", {"a": 1, "b": 0, "c": 0, "d": 1, "y": 1})
    _, (comparison,), _, _ = analyse([control, tuned], [run("base", RunType.CONTROL), run("ft")])
    assert (comparison.run, comparison.control, comparison.n) == ("ft", "base", 4)
    assert comparison.delta == 0.0  # a up, c down on a, b, c, d
    assert (comparison.flips_up_ids, comparison.flips_down_ids) == (("a",), ("c",))
    assert (comparison.flips_up, comparison.flips_down) == (1, 1)
    assert comparison.test == "mcnemar exact"
    assert comparison.p_value == 1.0  # 1 of 2 discordant pairs: p = 2 * 3/4, capped at 1
    a, b = [1, 0, 0, 1], [0, 0, 1, 1]
    assert (comparison.ci_low, comparison.ci_high) == stats.paired_bootstrap(a, b)


def test_eval_only_runs_compare_with_their_models_control_and_no_control_no_comparison():
    runs = [
        run("base", RunType.CONTROL),
        run("ckpt", RunType.EVAL_ONLY),
        run("other", model="m2"),  # m2 has no control
    ]
    data = [
        scores("base", [0, 0, 1, 1], epoch=None),
        scores("ckpt", [1, 1, 1, 1], epoch=None),
        scores("other", [1, 1, 1, 1]),
    ]
    _, comparisons, _, _ = analyse(data, runs)
    assert [(c.run, c.control, c.epoch) for c in comparisons] == [("ckpt", "base", None)]


def test_non_binary_comparisons_use_wilcoxon_and_holm_spans_the_experiment():
    runs = [run("base", RunType.CONTROL), run("a"), run("b")]
    data = [
        scores("base", [0.0] * 5, epoch=None, binary=False, metric="f/mean"),
        scores("base", [0] * 7 + [1], epoch=None),
        scores("a", [1, 2, 3, 4, 5], binary=False, metric="f/mean"),
        scores("a", [1] * 6 + [0, 1]),
        scores("b", [0] * 7 + [1]),
    ]
    _, comparisons, _, _ = analyse(data, runs)
    keyed = {(c.run, c.metric): c for c in comparisons}
    assert keyed["a", "f/mean"].test == "wilcoxon"
    assert keyed["a", "f/mean"].p_value == pytest.approx(2 / 32)
    assert keyed["a", "match/accuracy"].p_value == pytest.approx(2 / 2**6)  # 6 up, 0 down
    assert keyed["b", "match/accuracy"].p_value == 1.0
    expected = stats.holm([c.p_value for c in comparisons])
    assert [c.p_adjusted for c in comparisons] == expected


def test_seed_groups_pool_runs_that_differ_only_in_seed():
    runs = [
        run("base", RunType.CONTROL),
        run("s1", lr=0.1, seed=1),
        run("s2", lr=0.1, seed=2),
        run("fast", lr=0.3, seed=1),
        run("plain", lr=0.1),
    ]
    assert [[r.name for r in group] for group in seed_groups(runs)] == [["s1", "s2"]]
    data = [scores("s1", [1, 0, 1, 1]), scores("s2", [0, 0, 1, 1])]
    _, _, (group,), _ = analyse(data, runs)
    assert group.runs == ("s1", "s2")
    assert group.mean == pytest.approx(0.625)
    assert group.sd_between_seeds == pytest.approx(0.25 / math.sqrt(2))
    expected = stats.seed_pooled([[1, 0, 1, 1], [0, 0, 1, 1]])
    assert (group.ci_low, group.ci_high) == expected[2:]


def test_runs_that_cannot_be_told_apart_name_no_best():
    ids = [f"s{i}" for i in range(10)]
    a = dict(zip(ids, [1] * 6 + [0] * 4, strict=True))  # 0.6
    b = dict(zip(ids, [1] * 5 + [0] * 5, strict=True))  # 0.5
    runs = [run("a"), run("b")]
    _, _, _, (verdict,) = analyse([scores("b", b), scores("a", a)], runs)
    assert verdict.best is None
    assert verdict.runner_up == "b"
    assert verdict.delta == pytest.approx(0.1)
    assert verdict.ci_low <= 0 <= verdict.ci_high
    assert verdict.samples_needed == two_proportions_by_hand(0.6, 0.5) == 388
    assert "two-proportion normal approximation" in verdict.method


def test_mean_like_verdicts_size_samples_by_the_paired_spread():
    a = [0.5, 0.7, 0.2, 0.9]
    b = [0.6, 0.4, 0.3, 0.6]
    _, _, _, (verdict,) = analyse(
        [scores("a", a, binary=False), scores("b", b, binary=False)], [run("a"), run("b")]
    )
    # Differences -0.1, 0.3, -0.1, 0.3: mean 0.1, sd sqrt(4 * 0.2^2 / 3) = 0.4 / sqrt(3).
    assert verdict.best is None and verdict.delta == pytest.approx(0.1)
    sd = 0.4 / math.sqrt(3)
    assert verdict.samples_needed == math.ceil(((Z + Z_POWER) * sd / 0.1) ** 2)
    assert "paired normal approximation" in verdict.method


def test_a_clearly_better_run_is_named():
    right = [1] * 30 + [0] * 10
    wrong = [1] * 5 + [0] * 35
    runs = [run("base", RunType.CONTROL), run("weak"), run("strong")]
    data = [scores("weak", wrong), scores("strong", right), scores("base", wrong, epoch=None)]
    *_, (verdict,) = analyse(data, runs)
    assert (verdict.best, verdict.runner_up) == ("strong", "weak")
    assert verdict.ci_low > 0
    assert verdict.samples_needed is None


def test_verdicts_pool_seed_groups_on_their_common_samples():
    runs = [run("s1", seed=1), run("s2", seed=2), run("other", lr=1)]
    data = [
        scores("s1", {"a": 1, "b": 1, "c": 1}),
        scores("s2", {"a": 1, "b": 0}),
        scores("other", {"a": 0, "b": 0, "c": 0}),
    ]
    *_, (verdict,) = analyse(data, runs)
    # Pooled: a 1, b 0.5 (c is not in s2); against other's 0 and 0: delta 0.75.
    assert verdict.delta == pytest.approx(0.75)
    assert verdict.best == "s1+s2"


def test_order_is_runs_then_task_epoch_metric_and_input_order_does_not_matter():
    runs = [run("base", RunType.CONTROL), run("z"), run("a")]
    data = [
        scores(name, [1, 0, 1, 0, 1], task=task, epoch=epoch, metric=metric)
        for name, epoch in (("base", None), ("z", 0), ("z", 1), ("a", 0))
        for task in ("t", "u")
        for metric in ("match/accuracy", "includes/accuracy")
    ]
    cells, comparisons, groups, verdicts = analyse(data, runs)
    assert [(c.run, c.task, c.epoch, c.metric) for c in cells[:5]] == [
        ("base", "t", None, "match/accuracy"),
        ("base", "t", None, "includes/accuracy"),
        ("base", "u", None, "match/accuracy"),
        ("base", "u", None, "includes/accuracy"),
        ("z", "t", 0, "match/accuracy"),
    ]
    assert [c.run for c in comparisons] == ["z"] * 8 + ["a"] * 4
    assert [(v.task, v.epoch, v.metric) for v in verdicts] == [
        ("t", 0, "match/accuracy"),
        ("t", 0, "includes/accuracy"),
        ("u", 0, "match/accuracy"),
        ("u", 0, "includes/accuracy"),
    ]
    assert primary_metrics(data) == {"t": "match/accuracy", "u": "match/accuracy"}
    # The same scores in another order give the same analysis, as long as each task's first
    # metric (its primary) stays first.
    shuffled = list(data)
    random.Random(0).shuffle(shuffled)
    shuffled.sort(key=lambda s: (s.task, s.metric != "match/accuracy"))
    assert analyse(shuffled, runs) == (cells, comparisons, groups, verdicts)


# --- what the review asked for ------------------------------------------------------------------


def test_a_metric_without_samples_keeps_its_value_with_no_interval_and_no_comparison():
    runs = [run("base", RunType.CONTROL), run("ft")]
    data = [
        scores("base", [0, 1], epoch=None),
        scores("ft", [1, 1]),
        Scores(unit="b", run="base", task="t", metric="match/median", value=0.5, log="b.eval"),
        Scores(unit="f", run="ft", task="t", epoch=0, metric="match/median", value=0.9, log="f"),
    ]
    cells, comparisons, _, _ = analyse(data, runs)
    median = [c for c in cells if c.metric == "match/median"]
    assert [(c.value, c.n, c.ci_low, c.ci_high) for c in median] == [
        (0.5, 0, None, None),
        (0.9, 0, None, None),
    ]
    assert {c.ci_method for c in median} == {stats.NONE} and "not a mean" in stats.NONE
    assert [c.metric for c in comparisons] == ["match/accuracy"]


def test_cells_on_different_data_are_not_compared_and_a_note_says_why():
    from cruijff.analysis.compare import analysis

    runs = [run("base", RunType.CONTROL), run("ft"), run("same")]
    control = attrs.evolve(scores("base", [0, 0, 1], epoch=None), dataset="test.json, 3")
    other = attrs.evolve(scores("ft", [1, 1, 1]), dataset="cond_test.json, 3")
    same = attrs.evolve(scores("same", [1, 1, 1]), dataset="test.json, 3")
    found = analysis("x", [control, other, same], runs)
    assert [c.run for c in found.comparisons] == ["same"]
    (note,) = found.notes
    assert note.startswith("ft on t (epoch 0) is not compared with base: they were evaluated on")
    assert "cond_test.json, 3" in note and "base: test.json, 3" in note


def test_a_runs_own_base_cell_is_its_control_only_without_a_control_run_and_never_competes():
    ft = [scores(name, [1, 1, 1, 0]) for name in ("a", "b")]
    own = [
        attrs.evolve(scores(name, [0, 0, 1, 0], epoch=None), baseline=True) for name in ("a", "b")
    ]
    # no control run: each run against its own base cell; the base cells are in no verdict
    cells, comparisons, _, verdicts = analyse([*own, *ft], [run("a"), run("b")])
    assert [(c.run, c.control, c.epoch, c.flips_up) for c in comparisons] == [
        ("a", "a", 0, 2),
        ("b", "b", 0, 2),
    ]
    assert [(v.epoch, v.leader) for v in verdicts] == [(0, "a")]
    assert {(c.run, c.epoch) for c in cells} == {("a", None), ("a", 0), ("b", None), ("b", 0)}
    # with a control run, it is the control; a base cell is never compared itself
    control = scores("base", [1, 0, 0, 0], epoch=None)
    runs = [run("base", RunType.CONTROL), run("a"), run("b")]
    _, comparisons, _, verdicts = analyse([control, *own, *ft], runs)
    assert [(c.run, c.control, c.epoch) for c in comparisons] == [
        ("a", "base", 0),
        ("b", "base", 0),
    ]
    assert [v.epoch for v in verdicts] == [0]


def test_a_run_without_control_or_base_cell_gets_a_note():
    from cruijff.analysis.compare import analysis

    runs = [run("base", RunType.CONTROL), run("ft"), run("other", model="m2")]
    found = analysis(
        "x",
        [scores("base", [0, 1], epoch=None), scores("ft", [1, 1]), scores("other", [1, 0])],
        runs,
    )
    assert [c.run for c in found.comparisons] == ["ft"]
    assert found.notes == ("no control for model m2: nothing to compare with (other)",)


def test_binary_is_decided_once_per_task_and_metric_and_checked_against_the_values():
    runs = [run("base", RunType.CONTROL), run("ft")]
    # the control's tool says 0/1 but a score is 0.5: no cell of the metric is a proportion
    cells, (comparison,), _, _ = analyse(
        [scores("base", [0, 0.5, 1], epoch=None), scores("ft", [1, 1, 1])], runs
    )
    assert {c.ci_method for c in cells} == {"t"} and comparison.test == "wilcoxon"
    assert not any(c.floor or c.ceiling for c in cells)
    # one cell's tool says "not binary": the metric is not, in every cell alike
    cells, (comparison,), _, _ = analyse(
        [scores("base", [0, 0, 1], epoch=None), scores("ft", [1, 1, 1], binary=False)], runs
    )
    assert {c.ci_method for c in cells} == {"t"} and comparison.flips_up == 0
    # all say so and all are 0/1: a proportion
    cells, (comparison,), _, _ = analyse(
        [scores("base", [0, 0, 1], epoch=None), scores("ft", [1, 1, 1])], runs
    )
    assert {c.ci_method for c in cells} == {"wilson"} and comparison.flips_up == 2
    # a cell without samples (all unscored) has no say
    empty = Scores(unit="e", run="ft", task="t", epoch=1, metric="match/accuracy", value=None)
    cells, *_ = analyse(
        [scores("base", [0, 0, 1], epoch=None), scores("ft", [1, 1, 1]), empty], runs
    )
    assert [c.ci_method for c in cells] == ["wilson", "wilson", stats.NONE]


def test_labels_are_per_cell():
    cells, *_ = analyse(
        [scores("ft", [1, 0]), scores("ft", [1, 1], task="u")],
        [run("ft")],
        labels={("ft", "t", 0): "rank 8 (t)", ("ft", "u", 0): "rank 8 (u)"},
    )
    assert [c.label for c in cells] == ["rank 8 (t)", "rank 8 (u)"]


def test_non_finite_scores_are_dropped_and_a_non_finite_value_is_none():
    from cruijff.analysis.collect import finite

    cleaned = finite(scores("ft", {"a": 1.0, "b": math.nan, "c": math.inf}))
    assert dict(cleaned.samples) == {"a": 1.0}
    assert finite(attrs.evolve(cleaned, value=math.nan, samples={})).value is None
    kept = scores("ft", [1, 0])
    assert finite(kept) is kept


def test_the_plugin_authors_builders_analyse_as_the_core_does():
    from cruijff.testing.analysis import analysis_of
    from cruijff.testing.analysis import scores as build

    runs = [run("base", RunType.CONTROL), run("ft")]
    found = analysis_of(
        [
            build("base", "t", "match/accuracy", {"a": 0, "b": 0, "c": 1}),
            build("ft", "t", "match/accuracy", {"a": 1, "b": 0, "c": math.nan}, epoch=0),
        ],
        runs,
        experiment="demo",
    )
    assert found.experiment == "demo" and found.notes == ()
    (comparison,) = found.comparisons
    assert (comparison.n, comparison.flips_up_ids, comparison.test) == (2, ("a",), "mcnemar exact")
    assert [(c.run, c.value, c.ci_method) for c in found.cells] == [
        ("base", pytest.approx(1 / 3), "wilson"),
        ("ft", 0.5, "wilson"),
    ]


# --- resampling in blocks ----------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3, 7, 100, 101])
def test_integers_drawn_in_row_blocks_are_the_one_shot_draw(n):
    """numpy's Generator continues one stream across calls of ``integers`` with the same bounds
    and dtype (the bit generator keeps a spare 32-bit half in its state), so consecutive row
    blocks are the rows of one draw: what makes :func:`stats._row_blocks` exact."""
    whole = np.random.default_rng(0).integers(0, n, (1000, n))
    for step in (1, 3, 7, 250, 333):
        rng = np.random.default_rng(0)
        blocks = [rng.integers(0, n, (min(step, 1000 - i), n)) for i in range(0, 1000, step)]
        assert np.array_equal(np.concatenate(blocks), whole)


def test_bootstraps_in_blocks_give_the_numbers_of_one_matrix(monkeypatch):
    rng = np.random.default_rng(7)
    a = rng.integers(0, 2, 57).astype(float)
    b = rng.integers(0, 2, 57).astype(float)
    x = rng.random((3, 57))
    whole = stats.paired_bootstrap(a, b), stats.seed_pooled(x)
    rows = next(stats._row_blocks(0, stats.RESAMPLES, 57))  # small: one cached matrix
    assert rows.shape == (stats.RESAMPLES, 57)
    monkeypatch.setattr(stats, "_CACHED_INDICES", 0)  # draw every matrix in blocks...
    monkeypatch.setattr(stats, "_BLOCK", 57 * 333)  # ...of 333 rows
    blocks = list(stats._row_blocks(0, stats.RESAMPLES, 57))
    assert [len(block) for block in blocks[:2]] == [333, 333] and len(blocks) == 31
    assert np.array_equal(np.concatenate(blocks), rows)
    assert stats.paired_bootstrap(a, b) == whole[0]
    assert stats.seed_pooled(x) == pytest.approx(whole[1], abs=1e-12)
