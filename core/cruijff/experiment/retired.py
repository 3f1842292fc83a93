"""Keys cruijff_kit 0.3.4 retired, and what it gives them: an error where it fails or forbids
the key, a warning where it ignores it (``../shared/CRUIJFF_KIT.md``, "Retired and
non-template keys"). A retired key is never read as something else, and never silently."""

from __future__ import annotations

from typing import Any

from cruijff.experiment.reader import Reader
from cruijff.records import Severity

RETIRED: dict[tuple[str, str], tuple[Severity, str, str]] = {
    # (section path, key): (severity, message, hint)
    ("experiment", "directory"): (
        Severity.ERROR,
        "experiment.directory was renamed to dir (cruijff_kit fails on the old name)",
        "write dir: instead",
    ),
    ("experiment", "type"): (
        Severity.WARNING,
        "experiment.type is not read (removed from the format; cruijff_kit's schema test "
        "forbids it)",
        "delete it: each run's type says what it is",
    ),
    ("experiment", "seed"): (
        Severity.WARNING,
        "experiment.seed is not read (removed from the format)",
        "controls.seed seeds training, evaluation.seed the evaluation (both default to 14)",
    ),
    ("output", "base_directory"): (
        Severity.WARNING,
        "output.base_directory is not read (removed from the format)",
        "outputs go to experiment.dir",
    ),
    ("output", "checkpoint_pattern"): (
        Severity.WARNING,
        "output.checkpoint_pattern is not read (removed from the format)",
        "checkpoints are <run>/epoch_N, 0-based",
    ),
    ("data.training", "label"): (
        Severity.ERROR,
        "data.training.label was renamed to dataset_label",
        "write dataset_label: (the data file's name without .json)",
    ),
}


def retire(reader: Reader, section: dict[str, Any], path: str) -> dict[str, Any]:
    """``section`` without its retired keys, each reported as cruijff_kit treats it."""
    kept = {}
    for key, value in section.items():
        found = RETIRED.get((path, key))
        if found is None:
            kept[key] = value
            continue
        severity, message, hint = found
        report = reader.error if severity is Severity.ERROR else reader.warning
        report(f"{path}.{key}", message, hint)
    return kept
