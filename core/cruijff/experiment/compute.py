"""``compute`` blocks: what a run's training (``runs[].compute``) or every evaluation cell
(``evaluation.compute``) asks of the machine, in cruijff_kit's keys, as a
:class:`~cruijff.records.Compute` the tools lay over their own choice of resources."""

from __future__ import annotations

from typing import Any

from cruijff import quantities
from cruijff.experiment.context import Context
from cruijff.experiment.reader import kind
from cruijff.records import Compute

KEYS = {
    # key in the file: (Compute field, reader, what a valid value is)
    "time": ("time_s", quantities.seconds),
    "mem": ("mem_mb", quantities.megabytes),
    "gpus": ("gpus", None),
    "cpus_per_task": ("cpus", None),
}
"""cruijff_kit's compute keys (SLURM's ``--time``, ``--mem``, ``--gpus``, ``--cpus-per-task``)."""


def compute(ctx: Context, value: Any, path: str) -> Compute:
    """The Compute a block asks for; an error per bad key or value (that key then asks
    nothing)."""
    if value is None:
        return Compute(yaml_path=path)
    block = ctx.mapping(value, path)
    ctx.known_keys(block, path, KEYS)
    fields: dict[str, int] = {}
    for key, (field, read) in KEYS.items():
        if key not in block:
            continue
        item = block[key]
        if read is None:
            least = 1 if key == "cpus_per_task" else 0
            if isinstance(item, bool) or not isinstance(item, int) or item < least:
                ctx.error(
                    f"{path}.{key}",
                    f"{key} must be a whole number of at least {least}, not {kind(item)}",
                )
                continue
            fields[field] = item
            continue
        try:
            fields[field] = read(item)
        except ValueError as error:
            ctx.error(f"{path}.{key}", f"{key} {error}")
    return Compute(yaml_path=path, **fields)
