"""The signal that a job runs again although it succeeded (``cruijff run --only X --force``).

The runner sets ``CRUIJFF_RERUN=1`` in that one attempt's environment (never in a retry of it:
a retry continues what the attempt left). A tool whose jobs resume from what an earlier attempt
left, or skip work whose results stand, starts over instead. Stdlib only: jobs import it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ENV = "CRUIJFF_RERUN"


def asked(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this job was asked to run again from the start."""
    return environ.get(ENV) == "1"
