"""The generation job: ``python -m cruijff_model_organism.job SPEC.json OUTPUT.json``.

Reads the block from SPEC.json, generates its dataset and writes OUTPUT.json atomically (a
crash leaves the old file or the new one, never half of one) as ``json.dumps(data, indent=2)``
and a newline, the layout of cruijff_kit's files. The block's own ``output_path`` is not read:
OUTPUT names the file. Prints one line of rows per split. Warnings go to stderr; a block with
errors, or a SPEC that cannot be read, exits 1 with a message and no traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from cruijff.fsutil import write_atomic
from cruijff_model_organism.generate import generate
from cruijff_model_organism.spec import InvalidSpec, require_valid

USAGE = "usage: python -m cruijff_model_organism.job SPEC.json OUTPUT.json"


def summary(data: dict, output: Path) -> str:
    """``wrote 80 train, 20 validation rows to OUTPUT``, every split in file order."""
    splits = (split for split in data if split != "metadata")
    counts = ", ".join(f"{len(data[split])} {split}" for split in splits)
    return f"wrote {counts} rows to {output}"


def run(spec_path: Path, output: Path) -> int:
    """Generate the dataset of ``spec_path`` into ``output``; the exit code."""
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        print(f"error: cannot read the spec {spec_path}: {error}", file=sys.stderr)
        return 1
    try:
        for warning in require_valid(spec):
            print(warning, file=sys.stderr)
    except InvalidSpec as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    data = generate(spec)
    try:
        write_atomic(output, json.dumps(data, indent=2) + "\n")
    except OSError as error:
        print(f"error: cannot write {output}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(summary(data, output))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: two paths, the spec and the output."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print(USAGE, file=sys.stderr)
        return 2
    return run(Path(args[0]), Path(args[1]))


if __name__ == "__main__":
    sys.exit(main())
