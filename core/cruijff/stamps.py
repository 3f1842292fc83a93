"""Files' stats, taken once per design.

Tools keep what they read from a file (a model's ``config.json``, a task file's functions, a
data file's splits) per version of the file, its stat. A plan asks for the same few files once
per run: 170,000 stats for a plan of 10,000 runs. Inside :func:`steady` (the core plans in
it) a path's stat, or the error of taking it, is taken once and answered again; outside, every
call takes it. Nothing writes the files a plan reads while it plans.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

_taken: dict[str, os.stat_result | OSError] | None = None


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


@contextlib.contextmanager
def steady() -> Iterator[None]:
    """Take each file's stat once inside the block (nested blocks share the outermost's)."""
    global _taken
    if _taken is not None:
        yield
        return
    _taken = {}
    try:
        yield
    finally:
        _taken = None
