"""Durations and memory sizes as clusters write them (``4:00:00``, ``1-12``, ``80G``), read
once for every place a file gives them: an experiment's ``compute`` blocks and a cluster
profile's defaults. Each parser raises ValueError with what would be valid."""

from __future__ import annotations

import re
from typing import Any

_TIME = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?")
_MEM = re.compile(r"(\d+)\s*([KMGT]?)B?", re.IGNORECASE)
_MB = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}


def seconds(value: Any) -> int:
    """A SLURM time limit in seconds: whole minutes, or ``MM:SS``, ``HH:MM:SS``, ``D-HH``,
    ``D-HH:MM``, ``D-HH:MM:SS`` as ``--time`` takes it."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value * 60
    match = _TIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(
            f"must be minutes or a SLURM time like '4:00:00' or '1-12:00:00', not {value!r}"
        )
    days, first, second, third = match.groups()
    numbers = [int(part) for part in (first, second, third) if part is not None]
    if days is not None:  # D-HH[:MM[:SS]]
        hours, minutes, secs = [*numbers, 0, 0][:3]
        total = ((int(days) * 24 + hours) * 60 + minutes) * 60 + secs
    elif len(numbers) == 1:  # MM
        total = numbers[0] * 60
    elif len(numbers) == 2:  # MM:SS
        total = numbers[0] * 60 + numbers[1]
    else:  # HH:MM:SS
        total = (numbers[0] * 60 + numbers[1]) * 60 + numbers[2]
    if total <= 0:
        raise ValueError(f"must be longer than zero, not {value!r}")
    return total


def megabytes(value: Any) -> int:
    """Memory in MB: a number (MB) or text such as ``16G``, ``500M``, ``64GB``."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _MEM.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"must be MB or a size like '16G' or '500M', not {value!r}")
    return max(1, round(int(match.group(1)) * _MB[match.group(2).upper()]))
