"""Files' stats, and what tools make from the experiment and its files, taken once per design.

Tools keep what they read from a file (a model's ``config.json``, a task file's functions, a
data file's splits) per version of the file, its stat. A plan asks for the same few files once
per run: 170,000 stats for a plan of 10,000 runs. Inside :func:`steady` (the core checks and
plans in it) a path's stat, or the error of taking it, is taken once and answered again, and
:func:`once` makes what a key names once (a task's data file, the same for every run that sets
none of its own); outside, every call takes the stat or makes it again. Nothing writes the
files a plan reads while it plans, and nothing kept outlives the block.
"""

from __future__ import annotations

import contextlib
import operator
import os
from collections.abc import Callable, Hashable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_taken: dict[str, os.stat_result | OSError] | None = None
_made: dict[Hashable, tuple[tuple[Any, ...], Any]] = {}


def stat(path: str | os.PathLike[str]) -> os.stat_result:
    """``os.stat(path)``, taken once per path inside :func:`steady`; OSError as it would."""
    if _taken is None:
        return os.stat(path)
    key = os.fspath(path)
    found = _taken.get(key)
    if found is None:
        try:
            found = os.stat(key)
        except OSError as error:
            found = error
        _taken[key] = found
    if isinstance(found, OSError):
        raise found.with_traceback(None)  # not the traces of the earlier raises
    return found


def once(key: Hashable, make: Callable[[], T], *owners: Any) -> T:
    """``make()``, once per ``key`` inside :func:`steady`. ``owners`` are the objects the key
    names by ``id()`` (the experiment, a task): kept beside the value, so that no other
    object takes their ids while it is kept, and checked, so that a new one is not answered
    with an old one's value."""
    if _taken is None:
        return make()
    known = _made.get(key)
    if (
        known is None
        or len(known[0]) != len(owners)
        or not all(map(operator.is_, known[0], owners))
    ):
        known = _made[key] = (owners, make())
    return known[1]


@contextlib.contextmanager
def steady() -> Iterator[None]:
    """Take each file's stat, and make what :func:`once` is asked for, once inside the block
    (nested blocks share the outermost's)."""
    global _taken
    if _taken is not None:
        yield
        return
    _taken = {}
    try:
        yield
    finally:
        _taken = None
        _made.clear()
