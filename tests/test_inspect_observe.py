"""``cruijff_observe`` for inspect cells: every sample's score, read from real ``.eval`` logs.

The logs are written by inspect itself, in one ``eval`` of four tiny tasks with the offline
``cruijff-mock`` provider (it answers each prompt's last word in capitals): one epoch with
binary, mean and dict-valued scorers; three epochs whose scores differ by epoch (folded into
the mean per sample); two epochs under two reducers; 100 samples (to time a read); metrics that
are no mean of the samples (``grouped``, one of its own).
Unsuccessful and reduction-less logs are those logs rewritten with ``write_eval_log``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import attrs
import pytest

from cruijff.records import Unit
from cruijff_inspect import plugin as inspect_plugin
from cruijff_inspect.observe import observe

WORDS = ["apple", "PEAR", "fig", "PLUM", "KIWI", "lime"]
"""The mock answers each word in capitals: a match where the target is the word in capitals."""


def _tasks():
    from inspect_ai import Epochs, Task
    from inspect_ai.dataset import MemoryDataset, Sample
    from inspect_ai.scorer import (
        CORRECT,
        INCORRECT,
        Score,
        accuracy,
        grouped,
        includes,
        match,
        mean,
        metric,
        scorer,
        value_to_float,
    )

    @metric
    def top():
        """A metric of one's own that is no mean of the samples: the best score."""

        def compute(scores):
            return max(value_to_float()(getattr(s, "score", s).value) for s in scores)

        return compute

    @scorer(metrics=[mean()])
    def length():
        async def score(state, target):
            return Score(value=len(state.output.completion) / 10)

        return score

    @scorer(metrics={"short": [mean()], "long": [mean()]})
    def sizes():
        async def score(state, target):
            size = len(state.output.completion)
            return Score(value={"short": float(size <= 4), "long": size / 10})

        return score

    @scorer(metrics=[mean()])
    def first_epoch():
        """Correct on the first epoch only: each sample's mean over three epochs is 1/3."""

        async def score(state, target):
            return Score(value=CORRECT if state.epoch == 1 else INCORRECT)

        return score

    def dataset(ids):
        return MemoryDataset(
            [
                Sample(id=ids(i), input=f"say {word}", target=word if word.isupper() else "X")
                for i, word in enumerate(WORDS)
            ]
        )

    plain = Task(
        name="plain",
        dataset=dataset(lambda i: i),  # integer ids: observed as strings
        scorer=[match(), includes(), length(), sizes()],
    )
    repeated = Task(
        name="repeated", dataset=dataset(lambda i: f"w{i}"), scorer=[first_epoch()], epochs=3
    )
    reducers = Task(
        name="reducers",
        dataset=dataset(lambda i: f"w{i}"),
        scorer=[first_epoch()],
        epochs=Epochs(2, ["mean", "max"]),
    )
    hundred = Task(
        name="hundred",
        dataset=MemoryDataset(
            [Sample(id=f"s{i}", input=f"say {WORDS[i % 6]}", target="PEAR") for i in range(100)]
        ),
        scorer=match(),
    )
    others = Task(
        name="others",
        dataset=MemoryDataset(
            [
                Sample(
                    id=f"w{i}",
                    input=f"say {word}",
                    target=word if word.isupper() else "X",
                    metadata={"kind": "upper" if i < 3 else "lower"},
                )
                for i, word in enumerate(WORDS)
            ]
        ),
        scorer=match(),
        metrics=[accuracy(), grouped(accuracy(), "kind"), top()],
    )
    return [plain, repeated, reducers, hundred, others]


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> dict[str, Path]:
    """One inspect log per task, by task name."""
    folder = tmp_path_factory.mktemp("inspect-logs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(folder / "xdg-data"))
        patch.setenv("XDG_CACHE_HOME", str(folder / "xdg-cache"))
        from inspect_ai import eval as inspect_eval

        from cruijff_inspect import mock  # noqa: F401 -- registers the offline provider

        done = inspect_eval(
            _tasks(),
            model="cruijff-mock/any",
            model_args={"reply": "upper"},
            log_dir=str(folder / "logs"),
            display="none",
            log_level="warning",
        )
    assert all(log.status == "success" for log in done), [log.error for log in done if log.error]
    return {log.eval.task: Path(str(log.location).removeprefix("file://")) for log in done}


@pytest.fixture
def experiment(tmp_path):
    return SimpleNamespace(directory=tmp_path / "exp")


def cell(experiment, task: str, log: Path | None = None, *, results: bool = True) -> Unit:
    """An evaluation cell of run ``r`` holding a copy of ``log`` (and a results.json naming it,
    as the job writes; without one the cell's newest log is read)."""
    directory = experiment.directory / "r" / "eval" / task / "epoch_1"
    (directory / "logs").mkdir(parents=True)
    if log is not None:
        shutil.copy(log, directory / "logs" / log.name)
        if results:
            named = {"status": "success", "log": f"logs/{log.name}"}
            (directory / "results.json").write_text(json.dumps(named))
    return Unit(
        id=f"r.eval.{task}.epoch_1",
        tool="inspect",
        kind="eval",
        run="r",
        directory=directory,
        params={"task": task, "epoch": 1, "source": "epoch"},
    )


def by_metric(observations) -> dict:
    assert not observations.missing, observations.missing
    return {scores.metric: scores for scores in observations.scores}


def rewrite(log: Path, target: Path, **changes) -> Path:
    """``log`` read in full and written again to ``target`` with ``changes``."""
    from inspect_ai.log import read_eval_log, write_eval_log

    whole = read_eval_log(str(log))
    for name, value in changes.items():
        setattr(whole, name, value)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_eval_log(whole, str(target))
    return target


def test_scores_per_sample_id_as_inspect_reports_them(logs, experiment):
    unit = cell(experiment, "plain", logs["plain"])
    scores = by_metric(observe(experiment, unit))
    assert set(scores) == {
        "match/accuracy",
        "includes/accuracy",
        "length/mean",
        "short/mean",
        "long/mean",
    }  # stderr describes the accuracy's spread: the analysis computes its own
    accuracy = scores["match/accuracy"]
    expected = {str(i): float(word.isupper()) for i, word in enumerate(WORDS)}
    assert dict(accuracy.samples) == expected
    assert accuracy.value == pytest.approx(3 / 6) and accuracy.binary
    assert dict(scores["includes/accuracy"].samples) == expected
    assert accuracy.unit == unit.id and accuracy.run == "r" and accuracy.task == "plain"
    assert accuracy.epoch == 1
    assert accuracy.log == f"r/eval/plain/epoch_1/logs/{logs['plain'].name}"
    assert (experiment.directory / accuracy.log).is_file()


def test_a_mean_of_non_binary_scores_and_a_dict_valued_scorer(logs, experiment):
    scores = by_metric(observe(experiment, cell(experiment, "plain", logs["plain"])))
    length = scores["length/mean"]
    assert dict(length.samples) == {
        str(i): pytest.approx(len(word) / 10) for i, word in enumerate(WORDS)
    }
    assert not length.binary
    assert length.value == pytest.approx(sum(len(w) for w in WORDS) / 60)
    short, long = scores["short/mean"], scores["long/mean"]
    assert short.binary and not long.binary  # 0/1 under a mean: a proportion
    assert dict(short.samples) == {str(i): float(len(w) <= 4) for i, w in enumerate(WORDS)}
    assert long.samples["0"] == pytest.approx(0.5)


def test_repeated_epochs_fold_into_the_mean_per_sample(logs, experiment):
    scores = by_metric(observe(experiment, cell(experiment, "repeated", logs["repeated"])))
    (only,) = scores.values()
    assert only.metric == "first_epoch/mean"
    assert dict(only.samples) == {f"w{i}": pytest.approx(1 / 3) for i in range(len(WORDS))}
    assert only.value == pytest.approx(1 / 3) and not only.binary


def test_a_log_without_reductions_folds_its_sample_summaries(logs, experiment, tmp_path):
    bare = rewrite(logs["repeated"], tmp_path / "bare" / logs["repeated"].name, reductions=None)
    scores = by_metric(observe(experiment, cell(experiment, "repeated", bare)))
    assert dict(scores["first_epoch/mean"].samples) == {
        f"w{i}": pytest.approx(1 / 3) for i in range(len(WORDS))
    }


def test_several_reducers_are_named_as_inspect_shows_them(logs, experiment):
    scores = by_metric(observe(experiment, cell(experiment, "reducers", logs["reducers"])))
    assert set(scores) == {"first_epoch/mean[mean]", "first_epoch/mean[max]"}
    assert set(scores["first_epoch/mean[mean]"].samples.values()) == {0.5}
    most = scores["first_epoch/mean[max]"]
    assert set(most.samples.values()) == {1.0} and most.binary and most.value == 1.0


def test_without_results_json_the_newest_log_is_read(logs, experiment):
    unit = cell(experiment, "plain", logs["plain"], results=False)
    assert by_metric(observe(experiment, unit))["match/accuracy"].value == pytest.approx(0.5)


def test_missing_gone_and_unreadable_logs_name_the_file(logs, experiment):
    """Relative to the experiment directory: the report names no path of this machine."""
    empty = cell(experiment, "plain")
    missing = observe(experiment, empty)
    assert not missing.scores and missing.missing == "no inspect log in r/eval/plain/epoch_1/logs"

    gone = cell(experiment, "repeated", logs["repeated"])
    (gone.directory / "logs" / logs["repeated"].name).unlink()
    assert observe(experiment, gone).missing == (
        f"its log r/eval/repeated/epoch_1/logs/{logs['repeated'].name} is gone"
    )

    broken = cell(experiment, "reducers")
    (broken.directory / "logs" / "2026-01-01_broken.eval").write_bytes(b"PK\x03\x04 not a zip")
    cause = observe(experiment, broken).missing
    assert cause.startswith("cannot read the inspect log r/eval/reducers/epoch_1/logs/")
    assert "2026-01-01_broken.eval" in cause


def test_an_unsuccessful_log_is_missing_with_its_cause(logs, experiment, tmp_path):
    from inspect_ai.log import EvalError

    error = EvalError(message="RuntimeError: boom", traceback="", traceback_ansi="")
    failed = rewrite(logs["plain"], tmp_path / "failed" / "a.eval", status="error", error=error)
    cause = observe(experiment, cell(experiment, "plain", failed)).missing
    assert cause == "the inspect log r/eval/plain/epoch_1/logs/a.eval has status error: " + (
        "RuntimeError: boom"
    )
    cancelled = rewrite(logs["plain"], tmp_path / "cancelled" / "b.eval", status="cancelled")
    unit = cell(experiment, "repeated", cancelled)
    assert observe(experiment, unit).missing.endswith("logs/b.eval has status cancelled")


def test_an_error_without_a_message_line_still_says_the_status(logs, experiment, tmp_path):
    from inspect_ai.log import EvalError

    error = EvalError(message=" \n\t ", traceback="", traceback_ansi="")
    failed = rewrite(logs["plain"], tmp_path / "blank" / "c.eval", status="error", error=error)
    cause = observe(experiment, cell(experiment, "plain", failed)).missing
    assert cause == "the inspect log r/eval/plain/epoch_1/logs/c.eval has status error"


def test_unreadable_sample_summaries_make_the_cell_missing(logs, experiment, tmp_path, monkeypatch):
    import inspect_ai.log

    def broken(path, *args, **kwargs):
        raise OSError(f"cannot read {path}")

    monkeypatch.setattr(inspect_ai.log, "read_eval_log_sample_summaries", broken)
    bare = rewrite(logs["repeated"], tmp_path / "bare" / "d.eval", reductions=None)
    found = observe(experiment, cell(experiment, "repeated", bare))
    assert not found.scores
    assert found.missing == (
        "cannot read the scores of the inspect log r/eval/repeated/epoch_1/logs/d.eval: "
        "OSError: cannot read r/eval/repeated/epoch_1/logs/d.eval"
    )


def test_only_means_of_the_samples_carry_samples(logs, experiment):
    """grouped(...)'s groups and a metric of one's own are no mean of the samples: inspect's
    value, no samples (so no interval and no comparison in the analysis)."""
    from cruijff.analysis import compare, stats

    scores = by_metric(observe(experiment, cell(experiment, "others", logs["others"])))
    assert set(scores) == {"match/accuracy", "match/upper", "match/lower", "match/all", "match/top"}
    assert len(scores["match/accuracy"].samples) == 6 and scores["match/accuracy"].binary
    for name in ("match/upper", "match/lower", "match/all", "match/top"):
        assert not scores[name].samples and not scores[name].binary, name
    assert scores["match/upper"].value == pytest.approx(1 / 3)  # w1 of w0, w1, w2
    assert scores["match/top"].value == 1.0
    cells, *_ = compare.analyse(list(scores.values()), [])
    shown = {c.metric: c for c in cells}
    assert shown["match/upper"].value == pytest.approx(1 / 3)
    assert (shown["match/upper"].n, shown["match/upper"].ci_method) == (0, stats.NONE)
    assert shown["match/accuracy"].ci_method == "wilson"


def test_scores_name_their_data_and_whether_they_are_a_base_model_cell(logs, experiment):
    first = observe(experiment, cell(experiment, "plain", logs["plain"])).scores[0]
    assert first.dataset.endswith(", 6 samples (ids " + first.dataset[-9:-1] + ")")
    assert not first.baseline
    other = observe(experiment, cell(experiment, "repeated", logs["repeated"])).scores[0]
    assert other.dataset != first.dataset  # other sample ids
    base = attrs.evolve(cell(experiment, "reducers", logs["plain"]), params={"source": "base"})
    again = observe(experiment, base).scores[0]
    assert again.baseline and again.dataset == first.dataset  # the same data


def test_the_data_path_and_split_the_task_was_given_name_its_data(experiment):
    from cruijff_inspect.observe import dataset_of

    def spec(**args):
        data = SimpleNamespace(name=None, location="x.json", samples=2, sample_ids=[2, 1])
        return SimpleNamespace(task_args=args, dataset=data)

    inside = str(experiment.directory / "data" / "test.json")
    named = dataset_of(spec(data_path=inside, split="test"), experiment)
    assert named.startswith("data/test.json (split test), 2 samples (ids ")
    assert named != dataset_of(spec(data_path=inside, split="validation"), experiment)
    assert dataset_of(spec(), experiment).startswith("x.json, 2 samples")


def test_only_evaluation_cells_of_inspect_are_observed(logs, experiment):
    unit = cell(experiment, "plain", logs["plain"])
    other = Unit(id="r.train", tool="inspect", kind="train", run="r", directory=unit.directory)
    assert observe(experiment, other) is None
    foreign = Unit(id="r.eval", tool="lm-eval", kind="eval", run="r", directory=unit.directory)
    assert inspect_plugin.cruijff_observe(experiment, foreign) is None
    assert inspect_plugin.cruijff_observe(experiment, unit).scores


def test_reading_a_cell_of_a_hundred_samples_takes_milliseconds(logs, experiment):
    """1,000 cells of 100 samples must analyse in seconds: one header read per cell."""
    unit = cell(experiment, "hundred", logs["hundred"])
    observe(experiment, unit)  # inspect's imports
    start = time.perf_counter()
    for _ in range(20):
        scores = by_metric(observe(experiment, unit))
    per_cell = (time.perf_counter() - start) / 20
    assert len(scores["match/accuracy"].samples) == 100
    assert per_cell < 0.02, f"{per_cell * 1000:.1f} ms per cell"  # measured: about 4 ms
