"""How a job killed by a signal is described: one vocabulary for every scheduler.

Stdlib only: the local job wrapper imports it on every start.
"""

from __future__ import annotations

import signal


def signal_name(number: int) -> str:
    """``9`` -> ``SIGKILL``; a number Python has no name for stays a number."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def killed_by(number: int) -> str:
    """The cause of a job that a signal ended: ``killed by signal 9 (SIGKILL)``."""
    return f"killed by signal {number} ({signal_name(number)})"
