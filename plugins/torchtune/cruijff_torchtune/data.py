"""The training file of a run, and what is known of its rows at plan time.

A run trains on the first of (cruijff_kit's order): the file of its ``training_condition``
(``{condition}_train_*.json`` in the training data's folder, as cruijff_kit's
convert-tabular-to-text skill names it), its ``parameters.dataset_path`` (cruijff_kit's retired
literal file), else ``data.training.path``. ``data.training.splits.train`` keeps only the first
rows of the train split (cruijff_kit's ``dataset.max_samples``), except in a condition's file,
where cruijff_kit's count is the file's own and cuts nothing.

Rows are counted from the file, or, where a generation job writes it, from the splits that
job's dataset artifact declares: the file does not exist before that job has run.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from cruijff import stamps
from cruijff.records import Artifact, Experiment, Run, Unit
from cruijff.upstream import condition_file as condition_files
from cruijff.upstream import dataset_maker
from cruijff_torchtune import resolve

CONDITION = "{condition}_train_*.json"
"""The name of a condition's training file (cruijff_kit adds a hash of its settings)."""


class DataError(ValueError):
    """A run's training file cannot be found; ``where`` is the dotted path that names it."""

    def __init__(self, where: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.where, self.message, self.hint = where, message, hint


@attrs.frozen(kw_only=True)
class TrainingFile:
    """The file a run trains on, where the experiment says so (``source``, a dotted path),
    the first train rows it keeps (None: all), and the upstream unit and dataset artifact
    that write it, if one does."""

    path: Path
    source: str
    max_samples: int | None = None
    maker: Unit | None = None
    artifact: Artifact | None = None

    def rows(self, split: str) -> int | None:
        """The rows of ``split`` as training reads them (None: unknown)."""
        if self.artifact is not None:
            count = self.artifact.splits.get(split)
        else:
            count = split_rows(self.path, split)
        if count is not None and split == "train" and self.max_samples is not None:
            return min(count, self.max_samples)
        return count

    def row_bytes(self, split: str) -> tuple[int, float] | None:
        """:func:`row_bytes` of the file (None: a job writes it, or it is unreadable)."""
        return None if self.artifact is not None else row_bytes(self.path, split)


def training_file(experiment: Experiment, run: Run, upstream: Iterable[Unit] = ()) -> TrainingFile:
    """The file ``run`` trains on; DataError when its condition names no single file or its
    ``dataset_path`` does not exist."""
    assert experiment.data is not None, "checked at parse time"
    data = experiment.data
    if run.training_condition is not None:
        path = condition_file(data.path.parent, run.training_condition, run)
        return TrainingFile(path=path, source=f"{run.yaml_path}.training_condition")
    max_samples = data.splits.get("train")
    literal, source = resolve.tool_value("dataset_path", experiment.controls, run.parameters, None)
    if literal is not None:
        path = experiment.resolve(literal)
        where = (
            f"{run.yaml_path}.parameters.dataset_path"
            if source == "run" and run.yaml_path
            else "controls.dataset_path"
        )
        made = dataset_maker(upstream, path)
        if made is None and not path.is_file():
            raise DataError(where, f"the training file {path} does not exist")
        return _made(TrainingFile(path=path, source=where, max_samples=max_samples), made)
    made = dataset_maker(upstream, data.path)
    file = TrainingFile(path=data.path, source=f"{data.yaml_path}.path", max_samples=max_samples)
    return _made(file, made)


def _made(file: TrainingFile, made: tuple[Unit, Artifact] | None) -> TrainingFile:
    return file if made is None else attrs.evolve(file, maker=made[0], artifact=made[1])


def condition_file(folder: Path, condition: str, run: Run) -> Path:
    """The one ``{condition}_train_*.json`` in ``folder``; DataError for none or several."""
    pattern = CONDITION.format(condition=condition)
    found = condition_files(folder, condition, "train")
    where = f"{run.yaml_path}.training_condition"
    if not found:
        raise DataError(
            where,
            f"no training file of condition {condition!r}: {folder} holds no {pattern}",
            "make it with cruijff_kit's convert-tabular-to-text skill (it writes "
            f"{condition}_train_<hash>.json beside the training data)",
        )
    if len(found) > 1:
        raise DataError(
            where,
            f"several training files of condition {condition!r} in {folder}: "
            + ", ".join(path.name for path in found),
            "keep one (cruijff_kit writes one per set of generation settings)",
        )
    return found[0]


def _split_sizes(path: Path) -> Mapping[str, int] | int | None:
    """Rows per split of a data file, the length of a bare list (every split is all of it),
    or None when it cannot be read; read once per version of the file."""
    try:
        stat = stamps.stat(path)
    except OSError:
        return None
    return _read_sizes(path, stat.st_mtime_ns, stat.st_size)


@functools.cache
def _read_sizes(path: Path, mtime_ns: int, size: int) -> Mapping[str, int] | int | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, list):
        return len(data)
    if not isinstance(data, dict):
        return None
    return {split: len(rows) for split, rows in data.items() if isinstance(rows, list)}


def row_bytes(path: Path, split: str) -> tuple[int, float] | None:
    """The UTF-8 bytes of the text (every string) of the longest row of ``split`` and their
    mean over its rows: a byte-level tokenizer makes at most one token a byte. None when the
    file cannot be read."""
    try:
        stat = stamps.stat(path)
    except OSError:
        return None
    found = _read_row_bytes(Path(path), stat.st_mtime_ns, stat.st_size)
    if isinstance(found, tuple) or found is None:
        return found
    return found.get(split)


@functools.cache
def _read_row_bytes(
    path: Path, mtime_ns: int, size: int
) -> Mapping[str, tuple[int, float]] | tuple[int, float] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, list):
        return _longest_and_mean(data)
    if not isinstance(data, dict):
        return None
    return {
        split: _longest_and_mean(rows)
        for split, rows in data.items()
        if isinstance(rows, list) and rows
    }


def _longest_and_mean(rows: list) -> tuple[int, float]:
    sizes = [_text_bytes(row) for row in rows] or [0]
    return max(sizes), sum(sizes) / len(sizes)


def _text_bytes(value: object) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, dict):
        return sum(_text_bytes(item) for item in value.values())
    if isinstance(value, list):
        return sum(_text_bytes(item) for item in value)
    return 0


def split_rows(path: Path, split: str) -> int | None:
    """The rows of ``split`` in the file at ``path``; None when it cannot be read or lacks
    that split."""
    sizes = _split_sizes(Path(path))
    if isinstance(sizes, int) or sizes is None:
        return sizes
    return sizes.get(split)


def file_splits(path: Path) -> Mapping[str, int] | int | None:
    """Rows per split of the file (an int: a bare list, the same rows for every split)."""
    return _split_sizes(Path(path))
