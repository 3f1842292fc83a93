"""The corpus of malformed experiment files (``tests/corpus.py``) through ``validate``, ``plan``
and ``scaffold``: every case ends within corpus.LIMIT_S with exit 0, or exit 1 and a message
naming the file and a line; sizes beyond reason are errors naming their limit.

The default suite runs 500 generated cases (each through the three commands) and the
hand-written ones in-process, and a sample of 20 as real ``python -m cruijff`` processes; the
slow part runs 700 more and validates a 10,000-run sweep. Generation is derandomized (the same
cases on every machine) and writes no ``.hypothesis`` database.
"""

from __future__ import annotations

import corpus
import pytest
import yaml
from corpus import COMMANDS, HAND_WRITTEN, Case, Kind, run_case
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from cruijff.experiment import MAX_RUNS, load_experiment

GENERATED = 500
GENERATED_SLOW = 700
REPRODUCIBLE = settings(
    derandomize=True,
    database=None,
    deadline=None,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: a failure shows its case as drawn
    suppress_health_check=list(HealthCheck),
)


def check(case: Case, commands: tuple[str, ...] = COMMANDS, *, real: bool = False) -> None:
    for command in commands:
        outcome = run_case(case, command, real=real)
        assert outcome.ok, outcome.report()


def generated_cases(examples: int) -> int:
    """Run ``examples`` generated cases through every command; how many ran."""
    tried = []

    @settings(REPRODUCIBLE, max_examples=examples)
    @given(corpus.generated())
    def one(case: Case) -> None:
        tried.append(case)
        check(case)

    one()
    return len(tried)


def test_generated_cases_are_accepted_or_clear_errors():
    assert generated_cases(GENERATED) >= GENERATED


@pytest.mark.slow
def test_a_larger_generated_corpus():
    assert generated_cases(GENERATED_SLOW) >= GENERATED_SLOW


@pytest.mark.parametrize("case", HAND_WRITTEN, ids=[case.label for case in HAND_WRITTEN])
def test_hand_written_cases(case):
    if case.known:
        outcomes = [run_case(case, command) for command in COMMANDS]
        if all(outcome.ok for outcome in outcomes):
            pytest.fail(f"fixed: {case.known}; drop `known` from the case")
        pytest.xfail(case.known)
    check(case)


REAL = [
    "the base file",
    "empty",
    "unclosed flow",
    "duplicate key",
    "python tag",
    "billion laughs",
    "deep flow nesting",
    "10^7 epochs",
    "a grid of 10^9 runs",
    "a prompt of 10 MB",
    "too many values",
    "a name part too long",
    "NUL",
    "UTF-16",
    "BOM and CRLF",
    "batch size 10^9",
]


@pytest.mark.parametrize("label", REAL)
def test_hand_written_cases_as_real_processes(label):
    (case,) = [case for case in HAND_WRITTEN if case.label == label]
    check(case, (COMMANDS[REAL.index(label) % len(COMMANDS)],), real=True)


def test_generated_cases_as_real_processes():
    tried = []

    @settings(REPRODUCIBLE, max_examples=4)
    @given(corpus.generated(), st.sampled_from(COMMANDS))
    def one(case: Case, command: str) -> None:
        tried.append(case)
        check(case, (command,), real=True)

    one()
    assert len(tried) == 4


def test_a_case_that_runs_too_long_is_a_hang(monkeypatch):
    monkeypatch.setattr(corpus, "LIMIT_S", 0.001)
    assert run_case(HAND_WRITTEN[0], "plan").kind is Kind.HANG


def test_the_judge_tells_the_outcomes_apart(tmp_path):
    file = tmp_path / "experiment.yaml"
    case = Case(label="x", data=b"")
    assert corpus.judge(case, 0, "", file) is Kind.ACCEPTED
    assert corpus.judge(Case(label="x", data=b"", must_fail=True), 0, "", file) is (
        Kind.WRONGLY_ACCEPTED
    )
    assert corpus.judge(case, 1, f"error: {file}:3:1: a: bad\n", file) is Kind.CLEAR
    assert corpus.judge(case, 1, "Error: something\n", file) is Kind.UNCLEAR
    assert corpus.judge(case, 70, "Traceback (most recent call last):\n", file) is Kind.TRACEBACK
    assert corpus.judge(case, 2, "Usage: cruijff\n", file) is Kind.TRACEBACK


def sweep(seeds: int) -> dict:
    """bench/bench_scale.py's sweep: 10 ranks × 10 learning rates × ``seeds`` seeds, on the
    files of corpus.workspace."""
    return {
        "experiment": {"name": "scale", "dir": "runs"},
        "tools": {"preparation": "torchtune", "evaluation": "inspect"},
        "variables": {
            "lora_rank": list(range(1, 11)),
            "lr": [i * 1e-5 for i in range(1, 11)],
            "seed": list(range(seeds)),
        },
        "controls": {"epochs": 1, "batch_size": 4, "dataset_type": "chat_completion"},
        "models": {"base": [{"name": "smol", "path": "models/smol"}]},
        "data": {"training": {"path": "data/words.json"}},
        "evaluation": {"tasks": [{"name": "capitalization", "script": "tasks/capitalization.py"}]},
    }


def test_the_limits_admit_a_sweep_of_10000_runs(tmp_path):
    corpus.workspace(tmp_path)
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(sweep(MAX_RUNS // 100)))
    loaded = load_experiment(path)
    assert loaded.ok, [str(problem) for problem in loaded.problems]
    assert len(loaded.experiment.runs) == MAX_RUNS + 1  # and the control


@pytest.mark.slow
def test_a_sweep_of_10000_runs_is_valid(monkeypatch):
    monkeypatch.setattr(corpus, "LIMIT_S", 60.0)  # the plan of 20,001 jobs, on a busy machine
    case = Case(label="10,000 runs", data=yaml.safe_dump(sweep(MAX_RUNS // 100)).encode())
    outcome = run_case(case, "validate")
    assert outcome.kind is Kind.ACCEPTED, outcome.report()
    assert f"valid ({MAX_RUNS + 1} runs" in outcome.output, outcome.output[-500:]
