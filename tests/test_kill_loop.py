"""SIGKILL `cruijff run`, the local executor or a job's wrapper at random moments, then run
again: every job succeeds exactly once (or restarts as a recorded attempt after its own
process died), no dependent starts early, the resumed run counts what it found exactly, and
no state file is corrupt (:mod:`killloop`). A short loop in every run of the suite; the long
one (50 trials in all) is marked slow."""

from __future__ import annotations

import pytest
from killloop import TARGETS, trial

SHORT = 6
LONG = 50


@pytest.mark.parametrize("seed", range(SHORT))
def test_a_kill_anywhere_loses_nothing_and_runs_nothing_twice(tmp_path, seed):
    outcome = trial(tmp_path, seed, TARGETS[seed % len(TARGETS)])
    assert outcome.duplicates == 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(SHORT, LONG))
def test_the_long_kill_loop(tmp_path, seed):
    outcome = trial(tmp_path, seed)
    assert outcome.duplicates == 0
