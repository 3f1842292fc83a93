"""What a failed job gets when it is retried and no tool adjusted it: more of what it ran out of."""

from __future__ import annotations

import attrs

from cruijff.records import JobSpec, JobState, JobStatus

GROWTH = 2
"""A job that ran out of time or memory gets this many times as much."""


def default_retry(job: JobSpec, status: JobStatus) -> JobSpec:
    """Double the time limit after a TIMEOUT and the memory after OUT_OF_MEMORY (where the job
    had one); any other failure is retried unchanged."""
    resources = job.resources
    if status.state is JobState.TIMEOUT and resources.time_s:
        resources = attrs.evolve(resources, time_s=resources.time_s * GROWTH)
    elif status.state is JobState.OUT_OF_MEMORY and resources.mem_mb:
        resources = attrs.evolve(resources, mem_mb=resources.mem_mb * GROWTH)
    return attrs.evolve(job, resources=resources) if resources is not job.resources else job
