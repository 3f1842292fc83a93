"""Benchmark: the corpus of malformed experiment files (tests/corpus.py) through `cruijff
validate`, `plan` and `scaffold`, in-process, with the real plugins.

Run: .venv/bin/python bench/bench_corpus.py [--cases N] [--show K]
Draws N generated cases (derandomized: the same on every machine; default 500) and adds the
hand-written ones; each goes through the three commands. Prints the case runs, clear errors,
accepted, unclear errors, wrongly accepted, tracebacks, hangs (over corpus.LIMIT_S) and the
slowest, then up to K of each kind that is not clear or accepted.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import corpus  # tests/corpus.py
from hypothesis import HealthCheck, Phase, given, settings


def drawn(count: int) -> list[corpus.Case]:
    """``count`` generated cases, as test_corpus draws them."""
    cases: list[corpus.Case] = []

    @settings(
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=count,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
    )
    @given(corpus.generated())
    def keep(case: corpus.Case) -> None:
        cases.append(case)

    keep()
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--show", type=int, default=3)
    args = parser.parse_args()
    os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="bench-corpus-config-")
    os.environ["CRUIJFF_DATA_DIR"] = tempfile.mkdtemp(prefix="bench-corpus-data-")
    os.environ.pop("CRUIJFF_PLUGINS", None)

    began = time.perf_counter()
    cases = drawn(args.cases)
    drawing = time.perf_counter() - began
    cases += [case for case in corpus.HAND_WRITTEN if not case.known]
    outcomes = []
    began = time.perf_counter()
    for case in cases:
        for command in corpus.COMMANDS:
            outcomes.append(corpus.run_case(case, command))
    took = time.perf_counter() - began
    kinds = collections.Counter(outcome.kind for outcome in outcomes)
    slowest = max(outcomes, key=lambda outcome: outcome.seconds)
    print(f"cases            {len(cases):6,} ({args.cases:,} generated, drawn in {drawing:.1f} s)")
    print(f"case runs        {len(outcomes):6,} (validate, plan, scaffold) in {took:.1f} s")
    for kind in corpus.Kind:
        print(f"{kind.value:<22} {kinds[kind]:6,}")
    print(
        f"slowest          {slowest.seconds:6.2f} s  ({slowest.command}: {slowest.case.label[:70]})"
    )
    for kind in corpus.Kind:
        if kind in corpus.GOOD:
            continue
        for outcome in [outcome for outcome in outcomes if outcome.kind is kind][: args.show]:
            print(f"\n--- {kind.value}: {outcome.command}: {outcome.case.label[:100]}")
            print(outcome.output[-1500:])
    bad = sum(kinds[kind] for kind in corpus.Kind if kind not in corpus.GOOD)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
