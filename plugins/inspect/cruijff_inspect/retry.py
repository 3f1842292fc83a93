"""Retrying an evaluation that ran out of memory: the same cell with half the batch.

The batch (inspect's ``max_connections``, the hf provider's batch size) decides how much GPU
memory generation takes; halving it changes no answer, so the finished samples of the failed
attempt are reused as they are. The job takes ``--batch-size N`` over its config's setting.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import yaml

from cruijff.records import JobSpec, JobState, JobStatus
from cruijff_inspect.settings import DEFAULT_BATCH, JOB_MODULE

OPTION = "--batch-size"
OOM = re.compile(r"out of memory|OutOfMemoryError", re.IGNORECASE)


def current_batch(job: JobSpec) -> int:
    """The batch cap a job runs with: its ``--batch-size`` or its config's ``batch_size``."""
    argv = list(job.argv)
    if OPTION in argv[:-1]:
        return int(argv[argv.index(OPTION) + 1])
    config = Path(argv[argv.index(JOB_MODULE) + 1])
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        data = {}
    return int(data.get("batch_size") or DEFAULT_BATCH)


def smaller_batch(job: JobSpec, status: JobStatus) -> JobSpec | None:
    """``job`` with half its batch when it failed for memory; None otherwise (or at 1)."""
    if status.state is not JobState.OUT_OF_MEMORY and not OOM.search(status.cause or ""):
        return None
    batch = current_batch(job)
    if batch <= 1:
        return None
    argv = list(job.argv)
    if OPTION in argv[:-1]:
        at = argv.index(OPTION)
        del argv[at : at + 2]
    return attrs.evolve(job, argv=(*argv, OPTION, str(batch // 2)))
