"""Hints for near-miss names: "did you mean lora_rank?" and "valid: a, b, c"."""

from __future__ import annotations

import difflib
import functools
from collections import Counter
from collections.abc import Iterable

CUTOFF = 0.6
"""How similar (difflib ratio) a candidate must be to be considered at all."""

CLOSE = 0.75
"""How similar a candidate must be to be suggested, unless one name begins the other
(``size`` for ``size_gb``): a slip of a letter or two (``batch_sise``, ``lora_rnk``: 0.9 and
more), not another word that shares a prefix (``max_connections`` is not ``max_tokens``:
0.64)."""

SHOWN = 12
"""How many valid names :func:`one_of` lists before it stops with ``...``."""


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"did you mean X?"`` for the candidate closest to ``word``, or ``""`` if none is close.

    Ties go to the alphabetically first candidate, so the hint is the same on every run.
    """
    pool = sorted({str(candidate) for candidate in candidates} - {word})
    letters = Counter(word)
    scored = []
    for name in pool:
        # difflib's real_quick_ratio and quick_ratio, bounds of the ratio, rule most names out
        # before a SequenceMatcher is built: a file of many unknown keys takes seconds, not
        # minutes.
        total = len(word) + len(name)
        if 2.0 * min(len(word), len(name)) / total < CUTOFF:
            continue
        common = sum(min(count, letters.get(char, 0)) for char, count in _letters(name).items())
        if 2.0 * common / total < CUTOFF:
            continue
        scored.append((difflib.SequenceMatcher(None, word, name).ratio(), name))
    close = sorted(
        (
            (score, name)
            for score, name in scored
            if score >= CLOSE or name.startswith(word) or word.startswith(name)
        ),
        key=lambda item: -item[0],
    )
    if close:
        return f"did you mean {close[0][1]}?"
    # Case slips ("Lora_Rank") are near misses too, though difflib scores them low.
    same = [name for name in pool if name.lower() == word.lower()]
    return f"did you mean {same[0]}?" if same else ""


@functools.lru_cache(maxsize=4096)
def _letters(name: str) -> Counter[str]:
    return Counter(name)


def one_of(candidates: Iterable[str]) -> str:
    """``"valid: a, b, c"``, sorted, cut after :data:`SHOWN` names; ``""`` when there are none."""
    names = sorted({str(candidate) for candidate in candidates})
    if not names:
        return ""
    shown = ", ".join(names[:SHOWN])
    return f"valid: {shown}, ..." if len(names) > SHOWN else f"valid: {shown}"
