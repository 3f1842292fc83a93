"""Running SLURM's client commands: argv lists (never a shell), a time limit, and a count.

Every call goes through :class:`SlurmCommands`, so tests and the benchmark can count how many
commands a poll costs, and a fake can stand in for SLURM in unit tests.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence

import attrs

from cruijff.errors import UserError

TIMEOUT_S = 120.0
"""How long one command may take: slurmctld answers slowly when it is busy, but answers."""

READ_RETRIES = (1.0, 3.0)
"""Pauses before retrying a query that failed for a reason that passes (controller busy)."""

TRANSIENT = (
    "Socket timed out",
    "Unable to contact slurm controller",
    "Connection refused",
    "Transport endpoint is not connected",
    "slurm_receive_msg",
    "Zero Bytes were transmitted or received",
)
"""Parts of SLURM's messages that mean "try again in a moment", not "you are wrong"."""

QUERIES = frozenset({"squeue", "sacct", "scontrol"})
"""Commands that only read, so retrying them is safe. sbatch is never retried: a submission
that timed out may have gone through, and the runner looks it up by name instead."""


@attrs.frozen
class Result:
    """What a command printed and how it exited."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def message(self) -> str:
        """SLURM's own words about a failure (stderr, else stdout), on one line."""
        text = (self.stderr or self.stdout).strip()
        return " ".join(line.strip() for line in text.splitlines() if line.strip())


class SlurmCommands:
    """Runs ``sbatch``, ``squeue``, ``sacct``, ``scontrol`` and ``scancel``; ``calls`` lists
    every argv run, in order."""

    def __init__(self, *, timeout: float = TIMEOUT_S, retries: Sequence[float] = READ_RETRIES):
        self.timeout = timeout
        self.retries = tuple(retries)
        self.calls: list[tuple[str, ...]] = []

    def run(self, argv: Sequence[str]) -> Result:
        """Run one command; queries are retried when SLURM says it is briefly unreachable.

        Raises UserError when the command is missing or hangs; a non-zero exit is returned,
        for the caller to explain.
        """
        argv = tuple(argv)
        pauses = list(self.retries) if argv[0] in QUERIES else []
        while True:
            result = self._once(argv)
            if result.ok or not pauses or not any(t in result.message for t in TRANSIENT):
                return result
            time.sleep(pauses.pop(0))

    def _once(self, argv: tuple[str, ...]) -> Result:
        self.calls.append(argv)
        # Our parsers read SLURM's standard timestamps, whatever the user's shell prefers.
        env = {**os.environ, "SLURM_TIME_FORMAT": "standard"}
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=self.timeout,
                stdin=subprocess.DEVNULL,
                env=env,
                check=False,
            )
        except FileNotFoundError:
            raise UserError(
                f"{argv[0]} is not on PATH: SLURM's commands are needed for the slurm scheduler",
                hint="run on a cluster's login node (load its slurm module), or choose another "
                "scheduler with `--scheduler local`",
            ) from None
        except subprocess.TimeoutExpired:
            raise UserError(
                f"{argv[0]} did not answer within {self.timeout:.0f} s",
                hint="the SLURM controller may be overloaded or down; try again later",
            ) from None
        return Result(argv, done.returncode, done.stdout, done.stderr)
