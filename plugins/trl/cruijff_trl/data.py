"""The training file of a run, and what is known of its rows at plan time: the same file the
torchtune tool would train on (cruijff_kit's order).

A run trains on the file of its ``training_condition`` (``{condition}_train_*.json`` beside the
training data), else its ``parameters.dataset_path`` (cruijff_kit's retired literal file), else
``data.training.path``. ``data.training.splits.train`` keeps only the first rows of the train
split, except in a condition's file. Rows are counted from the file, or, where a generation job
writes it, from the splits that job declares.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from cruijff.records import Artifact, Experiment, Run, Unit
from cruijff.upstream import condition_file, dataset_maker
from cruijff_trl.config import tool_value


class DataError(ValueError):
    """A run's training file cannot be found; ``where`` is the dotted path that names it."""

    def __init__(self, where: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.where, self.message, self.hint = where, message, hint


@attrs.frozen(kw_only=True)
class TrainingFile:
    """The file a run trains on, where the experiment names it (``source``), the first train
    rows it keeps (None: all), and the unit and dataset artifact that write it, if one does."""

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
            sizes = file_splits(self.path)
            count = sizes if isinstance(sizes, int) or sizes is None else sizes.get(split)
        if count is not None and split == "train" and self.max_samples is not None:
            return min(count, self.max_samples)
        return count


def training_file(experiment: Experiment, run: Run, upstream: Iterable[Unit] = ()) -> TrainingFile:
    """The file ``run`` trains on; DataError when its condition names no single file or its
    ``dataset_path`` does not exist."""
    assert experiment.data is not None, "checked at parse time"
    data = experiment.data
    if run.training_condition is not None:
        where = f"{run.yaml_path}.training_condition"
        found = condition_file(data.path.parent, run.training_condition, "train")
        if len(found) != 1:
            names = ", ".join(path.name for path in found) or "none"
            raise DataError(
                where,
                f"condition {run.training_condition!r} needs one training file "
                f"{run.training_condition}_train_*.json in {data.path.parent} (found: {names})",
                "make it with cruijff_kit's convert-tabular-to-text skill",
            )
        return TrainingFile(path=found[0], source=where)
    max_samples = data.splits.get("train")
    literal, source = tool_value("dataset_path", experiment.controls, run.parameters, None)
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


def file_splits(path: Path) -> Mapping[str, int] | int | None:
    """Rows per split of a data file (an int: a bare list, every split is all of it), or None
    when it cannot be read; read once per version of the file."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return _read_sizes(Path(path), stat.st_mtime_ns, stat.st_size)


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
