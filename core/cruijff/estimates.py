"""What the jobs of a plan will take, as the tools estimate them, and their totals.

Every figure is a :class:`Range` (low, expected, high): tools give bounds, never a single
guess. A tool answers ``cruijff_estimate`` for its own units with an :class:`Estimate`; the
core only adds them up (:func:`totals`) and shows them, so it names no tool and knows no
formula. ``gpu_hours`` is Σ hours × GPUs; a job no tool can estimate counts in ``unknown``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from cruijff.records import Problem, freeze

SOURCES = ("formula", "measured", "calibration")
"""Where an estimate came from, best last: a formula, earlier runs, a calibration job."""

DISK_KINDS = ("checkpoints", "adapters", "logs")


@attrs.frozen
class Range:
    """A low, an expected and a high value (low <= expected <= high)."""

    low: float
    expected: float
    high: float

    def __attrs_post_init__(self) -> None:
        if not self.low <= self.expected <= self.high:
            raise ValueError(f"a range must be ordered, not {self.low, self.expected, self.high}")

    @classmethod
    def of(cls, value: float) -> Range:
        return cls(value, value, value)

    def __iter__(self) -> Iterator[float]:
        return iter((self.low, self.expected, self.high))

    def __add__(self, other: Range) -> Range:
        return Range(self.low + other.low, self.expected + other.expected, self.high + other.high)

    def __mul__(self, factor: float) -> Range:
        return Range(self.low * factor, self.expected * factor, self.high * factor)

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int | float) and self.low <= value <= self.high

    def rounded(self, digits: int = 3) -> list[float]:
        """As ``plan --json`` writes it: ``[low, expected, high]``, to ``digits`` significant
        digits."""
        return [float(f"{value:.{digits}g}") for value in self]

    def text(self, unit: str) -> str:
        return f"{_short(self.expected)} {unit} ({_short(self.low)} to {_short(self.high)})"


ZERO = Range(0.0, 0.0, 0.0)


@attrs.frozen(kw_only=True)
class Estimate:
    """What one job is expected to take, from the tool that owns its unit.

    ``memory_gb`` is the peak memory per GPU in GiB (the host's for a CPU job), ``hours`` its
    wall time, ``disk_gb`` what it leaves on disk by kind (``checkpoints``, ``adapters``,
    ``logs``), ``samples`` the evaluation samples it scores. ``source`` is one of
    :data:`SOURCES`; ``facts`` the inputs (parameters, tokens, steps...) and, for a measured
    estimate, how far off past predictions were. ``key`` identifies what makes measurements
    comparable (model, GPU type, sequence length...): runs with the same key share the
    cross-experiment index's measurements (:mod:`cruijff.measurements`). Any figure may be
    None where the tool cannot say.
    """

    memory_gb: Range | None = None
    hours: Range | None = None
    disk_gb: Mapping[str, Range] = attrs.field(factory=dict, converter=freeze)
    samples: int | None = None
    source: str = attrs.field(default="formula", validator=attrs.validators.in_(SOURCES))
    facts: Mapping[str, Any] = attrs.field(factory=dict, converter=freeze)
    key: Mapping[str, Any] = attrs.field(factory=dict, converter=freeze)

    def to_json(self) -> dict[str, Any]:
        return {
            "memory_gb": self.memory_gb.rounded() if self.memory_gb else None,
            "hours": self.hours.rounded() if self.hours else None,
            "disk_gb": {kind: value.rounded() for kind, value in self.disk_gb.items()},
            "samples": self.samples,
            "source": self.source,
            "facts": _plain(self.facts),
        }


@attrs.frozen(kw_only=True)
class Review:
    """What a plugin finds looking at a whole plan (``cruijff_review``): warnings, each naming
    the run and its fix, and ``notes``: named, JSON-able additions to ``plan --json`` (a list
    of mappings is shown as a table by ``cruijff plan``)."""

    problems: tuple[Problem, ...] = attrs.field(default=(), converter=tuple)
    notes: Mapping[str, Any] = attrs.field(factory=dict, converter=freeze)


def totals(jobs: Iterable[tuple[int, Estimate | None]], runs: int) -> dict[str, Any]:
    """The plan's totals from each job's (GPUs, estimate): runs, jobs, evaluation samples,
    GPU-hours, job-hours (Σ hours, whatever runs them) and disk by kind, ranges as
    ``[low, expected, high]``; a job no tool could
    estimate is counted in ``unknown``, never as zero."""
    count = samples = 0
    gpu_hours = job_hours = ZERO
    disk = dict.fromkeys(DISK_KINDS, ZERO)
    unknown = {"hours": 0, "memory": 0}
    for gpus, estimate in jobs:
        count += 1
        if estimate is None:
            unknown["hours"] += 1
            unknown["memory"] += 1
            continue
        samples += estimate.samples or 0
        if estimate.hours is None:
            unknown["hours"] += 1
        else:
            job_hours += estimate.hours
            gpu_hours += estimate.hours * gpus
        unknown["memory"] += estimate.memory_gb is None
        for kind, value in estimate.disk_gb.items():
            disk[kind] = disk.get(kind, ZERO) + value
    total_disk = sum(disk.values(), ZERO)
    return {
        "runs": runs,
        "jobs": count,
        "eval_samples": samples,
        "gpu_hours": gpu_hours.rounded(),
        "job_hours": job_hours.rounded(),
        "disk_gb": {**{k: v.rounded() for k, v in disk.items()}, "total": total_disk.rounded()},
        "unknown": unknown,
    }


def _short(value: float) -> str:
    return f"{value:.2g}" if abs(value) < 10 else f"{value:,.0f}"


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Range):
        return value.rounded()
    if isinstance(value, float):
        return float(f"{value:.4g}")
    return value
