"""The cross-experiment index of what jobs really used and took, next to what was predicted.

Layout of ``<data_dir>/measurements`` (:func:`data_dir`: ``$CRUIJFF_DATA_DIR``, else
``$XDG_DATA_HOME/cruijff``, else ``~/.local/share/cruijff``)::

    v1/<digest>/<time>-<unit>-<random>.json    one measurement of one finished job

``digest`` is a hash of the estimate's ``key`` (the tool's say of what makes two jobs
comparable: model, GPU type, sequence length, micro-batch...), so a lookup reads one folder.
Every file is written once, under a name no other writer can pick, by a rename in its own
folder: no locks, nothing to merge, safe on NFS from many nodes at once. A file that cannot be
read (a half-copied one from elsewhere, a newer format) is skipped, never fatal. This is the
one place besides the experiment directory that cruijff writes to.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from cruijff.fsutil import write_atomic
from cruijff.records import SCALARS, freeze, thaw

VERSION = "v1"
KEEP = 50
"""Measurements read per key, newest first: enough for a median, bounded for speed."""


def data_dir() -> Path:
    """Where cruijff keeps what outlives one experiment."""
    if os.environ.get("CRUIJFF_DATA_DIR"):
        return Path(os.environ["CRUIJFF_DATA_DIR"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "cruijff"


@attrs.frozen(kw_only=True)
class Measurement:
    """What one finished job used and took (``measured``: ``wall_s``, ``peak_memory_gb``,
    ``tokens``, ``tokens_per_s``... as its tool and scheduler report them) and what was
    predicted for it (``predicted``: ``memory_gb`` and ``hours`` as ``[low, expected,
    high]``). ``source`` is ``run`` or ``calibration``."""

    key: Mapping[str, Any] = attrs.field(converter=freeze)
    tool: str
    source: str
    measured: Mapping[str, Any] = attrs.field(converter=freeze)
    predicted: Mapping[str, Any] = attrs.field(factory=dict, converter=freeze)
    experiment: str = ""
    unit: str = ""
    recorded_at: float = attrs.field(factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {field.name: thaw(getattr(self, field.name)) for field in attrs.fields(type(self))}


def digest(key: Mapping[str, Any]) -> str:
    text = json.dumps(thaw(key), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class Index:
    """Reads and adds measurements under ``root`` (default :func:`data_dir`)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or data_dir()) / "measurements" / VERSION
        self._cache: dict[str, tuple[Measurement, ...]] = {}
        self._names: dict[tuple, str] = {}

    def record(self, measurement: Measurement) -> Path:
        """Add one measurement; returns its file."""
        folder = self.root / digest(measurement.key)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(measurement.recorded_at))
        unit = "".join(c if c.isalnum() or c in "._-" else "_" for c in measurement.unit)[:80]
        path = folder / f"{stamp}-{unit or 'job'}-{secrets.token_hex(4)}.json"
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(measurement.to_json(), sort_keys=True, indent=1) + "\n")
        self._cache.pop(digest(measurement.key), None)
        return path

    def find(self, key: Mapping[str, Any], *, source: str | None = None) -> tuple[Measurement, ...]:
        """The measurements of ``key`` (of one ``source`` where given), newest first."""
        name = self._name(key)
        if name not in self._cache:
            self._cache[name] = self._read(self.root / name, thaw(key))
        found = self._cache[name]
        return tuple(m for m in found if source is None or m.source == source)

    def _name(self, key: Mapping[str, Any]) -> str:
        """:func:`digest` of ``key``, once per distinct key of scalars (a plan asks the same
        few keys for every unit)."""
        if not all(type(value) in SCALARS for value in key.values()):
            return digest(key)  # a list or a mapping in it: not worth keeping
        # typed, floats by their text: 1, 1.0, True and -0.0, 0.0 are equal keys of a dict,
        # not of the index (nor is a name 1 the name True)
        known = tuple(
            (type(name), name, type(value), repr(value) if type(value) is float else value)
            for name, value in key.items()
        )
        if known not in self._names:
            self._names[known] = digest(key)
        return self._names[known]

    def _read(self, folder: Path, key: Any) -> tuple[Measurement, ...]:
        try:
            names = sorted((p for p in folder.iterdir() if p.suffix == ".json"), reverse=True)
        except OSError:
            return ()
        found = []
        for path in names[:KEEP]:
            try:
                data = json.loads(path.read_text())
                measurement = Measurement(**data)
            except (OSError, ValueError, TypeError):
                continue
            # a hash collision or a hand-copied file must not pass for this key
            if json.dumps(thaw(measurement.key), sort_keys=True, default=str) == json.dumps(
                key, sort_keys=True, default=str
            ):
                found.append(measurement)
        return tuple(found)


def past_error(measurements: tuple[Measurement, ...], figure: str, measured: str) -> dict | None:
    """How far past predictions of ``figure`` (``memory_gb``, ``hours``) were from what was
    measured (``measured`` names the measured value, in the same unit): the ratios measured
    ÷ predicted (expected), their median and range, and how many measured values fell in the
    predicted bounds; None without any pair."""
    ratios, inside = [], 0
    for m in measurements:
        predicted, value = m.predicted.get(figure), m.measured.get(measured)
        if not predicted or value is None or not predicted[1]:
            continue
        ratios.append(float(value) / float(predicted[1]))
        inside += predicted[0] <= value <= predicted[2]
    if not ratios:
        return None
    ratios.sort()
    return {
        "runs": len(ratios),
        "ratio_median": ratios[len(ratios) // 2],
        "ratio_range": [ratios[0], ratios[-1]],
        "within_bounds": inside,
    }


def of_job(
    manager: Any,
    experiment: Any,
    unit: Any,
    status: Any,
    estimate: Any,
    *,
    gpus: int = 0,
    source: str = "run",
) -> Measurement | None:
    """The measurement of a job that succeeded: its tool's (``cruijff_measure``) with the
    scheduler's wall time and peak resident memory, next to the estimate made for it. None
    when the job had no estimate with a key (nothing to compare it with). ``gpus`` says where
    its memory was estimated: on GPUs only the tool's GPU peak compares with it."""
    if estimate is None or not estimate.key:
        return None
    measured = dict(manager.measure(experiment, unit, status) or {})
    if status.wall_s is not None:
        measured["wall_s"] = status.wall_s
        measured["hours"] = status.wall_s / 3600
    if status.peak_memory_mb is not None:
        measured["peak_rss_gb"] = status.peak_memory_mb / 1024
    # the figure estimates are made of: the GPU's peak where the tool logs it; the host's for a
    # job without GPUs (a GPU job's host memory says nothing of its GPU's)
    memory = measured.get("peak_memory_gb", None if gpus else measured.get("peak_rss_gb"))
    if memory is not None:
        measured["memory_gb"] = memory
    predicted = {
        "memory_gb": estimate.memory_gb.rounded() if estimate.memory_gb else None,
        "hours": estimate.hours.rounded() if estimate.hours else None,
        "source": estimate.source,
    }
    return Measurement(
        key=estimate.key,
        tool=unit.tool,
        source=source,
        measured=measured,
        predicted=predicted,
        experiment=experiment.name,
        unit=unit.id,
    )
