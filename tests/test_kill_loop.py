"""SIGKILL `cruijff run`, the local executor or a job's wrapper at random moments, then run
again: every job succeeds exactly once (or restarts as a recorded attempt after its own
process died), no dependent starts early, the resumed run counts what it found exactly, and
no state file is corrupt (:mod:`killloop`). A short loop in every run of the suite; the long
one (50 trials in all, two at a time: each is mostly waiting on its own processes) is marked
slow. bench/bench_reliability.py prints the same loop as figures."""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from killloop import TARGETS, trial

SHORT = 6
LONG = 50


@pytest.mark.parametrize("seed", range(SHORT))
def test_a_kill_anywhere_loses_nothing_and_runs_nothing_twice(tmp_path, seed):
    outcome = trial(tmp_path, seed, TARGETS[seed % len(TARGETS)])
    assert outcome.duplicates == 0


def _trial(seed: int, root: Path) -> str | None:
    with tempfile.TemporaryDirectory(dir=root) as folder:
        try:
            trial(Path(folder), seed)
        except AssertionError as error:
            return f"seed {seed}: {str(error)[:2000]}"
    return None


@pytest.mark.slow
def test_the_long_kill_loop(tmp_path):
    with ThreadPoolExecutor(max_workers=2) as pool:
        failed = [f for f in pool.map(_trial, range(SHORT, LONG), [tmp_path] * LONG) if f]
    assert not failed, "\n".join(failed)
