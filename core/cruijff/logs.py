"""A job's log, attempt by attempt: what ``cruijff logs`` reads.

A job's log (its ``JobSpec.log``, in its run's folder) holds every attempt, each begun by a
line the job's wrapper writes before the command runs::

    --- cruijff: rank8.train attempt 2 started 2026-12-03T10:00:00+00:00 ---       (local)
    --- cruijff: rank8.train started 2026-12-03T10:00:00+00:00 (SLURM job 4242_3) ---

The local scheduler numbers its attempts; a SLURM batch script knows its job id instead, which
the event log's ``submitted`` events tie to the attempt. Text before the first such line (a log
written by an older cruijff, or by hand) counts as one attempt of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from cruijff.errors import UserError

BANNER = re.compile(
    rb"^--- cruijff: (?P<unit>\S+) (?:attempt (?P<attempt>\d+) )?started\b[^\n]*---$", re.MULTILINE
)
SLURM_JOB = re.compile(rb"\(SLURM job (?P<job>[0-9_]+)\)")


@attrs.frozen
class Section:
    """One attempt's part of a log: its byte range, and the attempt it is where known."""

    start: int
    end: int
    attempt: int | None = None


def sections(text: bytes, attempts_by_job: Mapping[str, int] | None = None) -> list[Section]:
    """The attempts in a log's bytes, in order; ``attempts_by_job`` maps scheduler job ids to
    attempt numbers (for banners that name a job id, not an attempt)."""
    known = attempts_by_job or {}
    starts = [(m.start(), _attempt(m, known)) for m in BANNER.finditer(text)]
    if not starts or starts[0][0] > 0:
        starts.insert(0, (0, None))
    ends = [start for start, _ in starts[1:]] + [len(text)]
    found = [Section(start, end, n) for (start, n), end in zip(starts, ends, strict=True)]
    return [s for s in found if s.end > s.start]


def _attempt(match: re.Match[bytes], known: Mapping[str, int]) -> int | None:
    if match["attempt"] is not None:
        return int(match["attempt"])
    job = SLURM_JOB.search(match[0])
    return known.get(job["job"].decode()) if job else None


def attempts_by_job(events: Iterable[Mapping[str, Any]], unit: str) -> dict[str, int]:
    """Scheduler job id -> attempt, from the ``submitted`` events of ``unit``."""
    found = {}
    for event in events:
        if event.get("event") == "submitted" and event.get("unit") == unit:
            handle = event.get("handle")
            if isinstance(handle, Mapping) and isinstance(event.get("attempt"), int):
                found[str(handle.get("id"))] = event["attempt"]
    return found


def pick(found: Sequence[Section], attempt: int | None, unit: str, path: Path) -> Section:
    """The section of ``attempt`` (None: the latest); UserError naming those there are."""
    if not found:
        raise UserError(f"the log of {unit} is empty so far ({path})")
    if attempt is None:
        return found[-1]
    for section in found:
        if section.attempt == attempt:
            return section
    there = sorted({s.attempt for s in found if s.attempt is not None})
    listed = ", ".join(map(str, there)) or "none numbered"
    raise UserError(
        f"attempt {attempt} of {unit} left nothing in its log {path} (attempts there: {listed})",
        hint="an attempt cancelled while it waited never started; --attempt N picks another",
    )


def tail(text: bytes, lines: int | None) -> bytes:
    """The last ``lines`` lines of ``text`` (all of it for None)."""
    if lines is None:
        return text
    if lines <= 0:
        return b""
    parts = text.splitlines(keepends=True)
    return b"".join(parts[-lines:])
