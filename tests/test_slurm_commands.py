"""SLURM's client commands failing as clusters make them fail: a query that fails for a
reason that passes is asked again, one that hangs is a clear error, and sbatch is never run
twice (a submission that failed oddly may have gone through)."""

from __future__ import annotations

import os

import pytest

from cruijff.errors import UserError
from cruijff_slurm.commands import SlurmCommands


@pytest.fixture
def shim(tmp_path, monkeypatch):
    """Write a stand-in for a SLURM command, first on PATH; it counts its calls."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")

    def write(name: str, body: str) -> None:
        count = tmp_path / f"{name}.calls"
        script = f"#!/bin/bash\necho x >> {count}\nn=$(wc -l < {count})\n{body}\n"
        (folder / name).write_text(script)
        (folder / name).chmod(0o755)

    def calls(name: str) -> int:
        count = tmp_path / f"{name}.calls"
        return len(count.read_text().split()) if count.exists() else 0

    write.calls = calls  # type: ignore[attr-defined]
    return write


def test_a_query_that_fails_for_a_passing_reason_is_asked_again(shim):
    shim(
        "squeue",
        '[ "$n" -lt 3 ] && { echo "squeue: error: Socket timed out on send/recv" >&2; exit 1; }\n'
        'echo "123|/tmp/x"',
    )
    result = SlurmCommands(retries=(0.01, 0.01)).run(["squeue", "-h"])
    assert result.ok and result.stdout.strip() == "123|/tmp/x"
    assert shim.calls("squeue") == 3


def test_a_query_that_keeps_failing_is_returned_for_its_caller_to_explain(shim):
    shim("squeue", 'echo "squeue: error: Unable to contact slurm controller" >&2; exit 1')
    result = SlurmCommands(retries=(0.01, 0.01)).run(["squeue", "-h"])
    assert not result.ok and "Unable to contact slurm controller" in result.message
    assert shim.calls("squeue") == 3  # the first try and two retries, no more


def test_a_real_error_is_not_retried(shim):
    shim("squeue", 'echo "squeue: error: Invalid user: nobody2" >&2; exit 1')
    result = SlurmCommands(retries=(0.01, 0.01)).run(["squeue", "-u", "nobody2"])
    assert not result.ok and shim.calls("squeue") == 1


def test_sbatch_is_never_run_twice_even_for_a_passing_reason(shim):
    shim("sbatch", 'echo "sbatch: error: Socket timed out on send/recv" >&2; exit 1')
    result = SlurmCommands(retries=(0.01, 0.01)).run(["sbatch", "job.sh"])
    assert not result.ok and shim.calls("sbatch") == 1


def test_a_command_that_hangs_is_a_clear_error(shim):
    shim("sacct", "sleep 30")
    with pytest.raises(UserError, match="sacct did not answer within 1 s") as raised:
        SlurmCommands(timeout=1).run(["sacct", "-X"])
    assert "overloaded or down" in raised.value.hint
    assert shim.calls("sacct") == 1


def test_a_missing_command_says_where_to_run(shim, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(UserError, match="squeue is not on PATH"):
        SlurmCommands().run(["squeue"])
