"""Benchmark: the local kill loop (tests/killloop.py) as figures: SIGKILL the driver, the
local executor or a job's wrapper at a random moment of an experiment of five fake jobs, run
again until it succeeds, and check every trial (no job twice or early, nothing lost, exact
resume counts, no corrupt state file).

Run: .venv/bin/python bench/bench_reliability.py [--trials N] [--first SEED]
Prints the trials, kills that landed (on a live process) per target, job starts, duplicates
(starts beyond the attempts recorded: must be 0), losses (trials whose checks failed: must be
0), restarts (jobs started twice after their own wrapper died, each a recorded attempt) and the
reruns it took. Exits 1 if any trial failed. The SLURM loop is tests/test_slurm_kill_loop.py.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import killloop  # tests/killloop.py


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--first", type=int, default=0, help="the first trial's seed")
    args = parser.parse_args()
    landed: collections.Counter = collections.Counter()
    tried: collections.Counter = collections.Counter()
    starts = duplicates = restarts = reruns = 0
    failures: list[str] = []
    began = time.monotonic()
    for seed in range(args.first, args.first + args.trials):
        with tempfile.TemporaryDirectory() as folder:
            try:
                outcome = killloop.trial(Path(folder), seed)
            except AssertionError as error:
                failures.append(f"seed {seed}: {str(error)[:300]}")
                continue
        tried[outcome.target] += 1
        landed[outcome.target] += outcome.killed
        starts += sum(outcome.starts.values())
        restarts += sum(n - 1 for n in outcome.starts.values())
        duplicates += outcome.duplicates
        reruns += outcome.reruns
    took = time.monotonic() - began
    print(f"{'trials':<40} {args.trials:>8}")
    for target in killloop.TARGETS:
        print(f"{'kills landed: ' + target:<40} {landed[target]:>4} of {tried[target]:<3}")
    print(f"{'job starts':<40} {starts:>8}")
    print(f"{'duplicates (starts without an attempt)':<40} {duplicates:>8}")
    print(f"{'losses (trials whose checks failed)':<40} {len(failures):>8}")
    print(f"{'restarts after a wrapper died':<40} {restarts:>8}")
    print(f"{'reruns of cruijff run':<40} {reruns:>8}")
    print(f"{'seconds':<40} {took:>8.0f}")
    for failure in failures:
        print(f"  FAILED {failure}")
    return 1 if failures or duplicates else 0


if __name__ == "__main__":
    sys.exit(main())
