"""The real SLURM clusters the tests run against (../shared/slurm/start-local-slurm): the
local one (started once a session with 8 CPUs if it is not up, stopped again if the session
started it) and a second one without accounting; and what tests read of them. Without a
cluster the tests skip, unless CRUIJFF_REQUIRE_SLURM=1 (CI), where they fail."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "slurm"
CLUSTER_DIR = Path(os.environ.get("LOCAL_SLURM_DIR", "/tmp/local-slurm"))
BARE_DIR, BARE_PORT = Path("/tmp/cruijff-slurm-bare"), "6917"  # a second cluster, no accounting
REQUIRE = os.environ.get("CRUIJFF_REQUIRE_SLURM") == "1"
USER = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()


def unavailable(reason: str):
    if REQUIRE:
        pytest.fail(f"the SLURM cluster is required (CRUIJFF_REQUIRE_SLURM=1): {reason}")
    pytest.skip(reason)


def conf_if_up(folder: Path) -> str | None:
    """The cluster's SLURM_CONF if the cluster in ``folder`` answers."""
    env_file = folder / "env"
    if not env_file.exists() or shutil.which("sinfo") is None:
        return None
    text = env_file.read_text()
    conf = next(
        (
            line.split("=", 1)[1].strip().strip("'\"")
            for line in text.splitlines()
            if "SLURM_CONF=" in line
        ),
        None,
    )
    if conf is None:
        return None
    probe = subprocess.run(
        ["sinfo", "-h", "-o", "%a"],
        env={**os.environ, "SLURM_CONF": conf},
        capture_output=True,
        timeout=30,
    )
    return conf if probe.returncode == 0 else None


def start(folder: Path, *options: str) -> tuple[str, bool]:
    """Make sure a cluster runs in ``folder``: (its SLURM_CONF, whether we started it)."""
    conf = conf_if_up(folder)
    if conf:
        return conf, False
    script = SHARED / "start-local-slurm"
    if not script.exists():
        unavailable(f"{script} is missing")
    if os.geteuid() != 0:
        unavailable("start-local-slurm needs root")
    done = subprocess.run(
        [str(script), "--dir", str(folder), *options],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    conf = conf_if_up(folder)
    if done.returncode != 0 or conf is None:
        unavailable(f"start-local-slurm failed: {(done.stdout + done.stderr)[-2000:]}")
    return conf, True


def stop(folder: Path) -> None:
    # --purge: a folder left behind would make the next session probe a dead cluster (slow)
    subprocess.run(
        [str(SHARED / "stop-local-slurm"), "--dir", str(folder), "--quiet", "--purge"], timeout=120
    )


@pytest.fixture(scope="session")
def slurm_cluster():
    """The local cluster (started with 8 CPUs if it is not up); SLURM_CONF points at it."""
    conf, started = start(CLUSTER_DIR, "--cpus", "8")
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    yield conf
    if before is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = before
    if started:
        stop(CLUSTER_DIR)


@pytest.fixture(scope="session")
def bare_cluster(slurm_cluster):
    """A second cluster, without accounting: sacct does not work there."""
    conf, started = start(BARE_DIR, "--port", BARE_PORT, "--no-accounting", "--cpus", "4")
    yield conf
    if started:
        stop(BARE_DIR)


def slurm(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout


def our_jobs(folder: Path) -> list[tuple[str, str]]:
    """(job id, WorkDir) of every job in the queue that runs under ``folder``."""
    rows = [
        line.split("|", 1)
        for line in slurm("squeue", "-h", "-r", "-u", USER, "-o", "%i|%Z").splitlines()
    ]
    return [(job_id, workdir) for job_id, workdir in rows if workdir.startswith(str(folder))]


def cancel_leftovers(folder: Path) -> None:
    ids = [job_id for job_id, _ in our_jobs(folder)]
    if ids:
        subprocess.run(["scancel", *ids], timeout=60)


def accounted(folder: Path, count: int) -> list[dict[str, str]]:
    """sacct's rows for the jobs that ran under ``folder``, each with the unit it ran, once
    sacct has ``count`` of them in a final state (it lags; give it 30 s)."""
    deadline = time.monotonic() + 30
    while True:
        rows = _accounted(folder)
        final = [row for row in rows if row["state"] not in ("PENDING", "RUNNING")]
        if len(final) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def _accounted(folder: Path) -> list[dict[str, str]]:
    out = slurm(
        "sacct", "-X", "-P", "-n", "-u", USER, "-S", "now-2hours", "-E", "now",
        "-s", "PD,R,CD,CA,F,TO,OOM,NF,PR,DL", "-o", "JobID,State,ExitCode,Timelimit,WorkDir",
    )  # fmt: skip
    rows = []
    for line in out.splitlines():
        job_id, state, exit_code, limit, workdir = line.split("|", 4)
        if not workdir.startswith(str(folder)):
            continue
        tasks = json.loads((Path(workdir) / "tasks.json").read_text())["tasks"]
        _, _, index = job_id.partition("_")
        unit = next(t["unit"] for t in tasks if t["index"] == (int(index) if index else None))
        rows.append({"id": job_id, "state": state, "exit": exit_code, "limit": limit, "unit": unit})
    return rows
