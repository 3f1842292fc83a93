"""``cruijff_observe`` for inspect cells: every sample's score, read from real ``.eval`` logs.

The logs are written by inspect itself, in one ``eval`` of four tiny tasks with the offline
``cruijff-mock`` provider (it answers each prompt's last word in capitals): one epoch with
binary, mean and dict-valued scorers; three epochs whose scores differ by epoch (folded into
the mean per sample); two epochs under two reducers; 100 samples (to time a read).
Unsuccessful and reduction-less logs are those logs rewritten with ``write_eval_log``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from cruijff.records import Unit
from cruijff_inspect import plugin as inspect_plugin
from cruijff_inspect.observe import observe

WORDS = ["apple", "PEAR", "fig", "PLUM", "KIWI", "lime"]
"""The mock answers each word in capitals: a match where the target is the word in capitals."""


def _tasks():
    from inspect_ai import Epochs, Task
    from inspect_ai.dataset import MemoryDataset, Sample
    from inspect_ai.scorer import CORRECT, INCORRECT, Score, includes, match, mean, scorer

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
    return [plain, repeated, reducers, hundred]


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
    assert all(log.status == "success" for log in done)
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
    empty = cell(experiment, "plain")
    missing = observe(experiment, empty)
    assert not missing.scores and str(empty.directory / "logs") in missing.missing

    gone = cell(experiment, "repeated", logs["repeated"])
    (gone.directory / "logs" / logs["repeated"].name).unlink()
    assert f"logs/{logs['repeated'].name} is gone" in observe(experiment, gone).missing

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
