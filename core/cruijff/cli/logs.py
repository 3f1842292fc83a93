"""``cruijff logs``: print (or follow) one job's log, the latest attempt or another."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from cruijff.cli import App, json_option, scheduler_option

FOLLOW_POLL_S = 0.5
"""How often ``--follow`` reads what the log gained."""
STATE_POLL_S = 5.0
"""How often ``--follow`` asks the scheduler whether the job has ended."""


@click.command()
@click.argument("where", nargs=-1, required=True, metavar="[EXPERIMENT] JOB")
@click.option(
    "--attempt", type=click.IntRange(min=1), metavar="N", help="Attempt N (default: the latest)."
)
@click.option("--tail", "lines", type=click.IntRange(min=0), metavar="N", help="Last N lines only.")
@click.option(
    "-f", "--follow", is_flag=True, help="Keep printing what the job writes until it ends."
)
@scheduler_option
@json_option
@click.pass_obj
def command(
    app: App,
    where: tuple[str, ...],
    attempt: int | None,
    lines: int | None,
    follow: bool,
    scheduler: str | None,
    as_json: bool,
) -> None:
    """Print the log of JOB of EXPERIMENT (default: ./experiment.yaml): a unit id
    (rank8.train), or a run name or glob that names one job.

    The log holds every attempt; the latest is shown unless --attempt N. With --follow, what
    the job writes next is printed as it comes, until the job ends (Ctrl-C stops following;
    the job goes on). SLURM jobs' logs are the files their batch scripts write.
    """
    from cruijff import logs, orchestrator
    from cruijff.cli.render import print_json
    from cruijff.errors import UserError

    if len(where) > 2:
        raise click.UsageError("give the experiment file and one job")
    experiment, unit = (
        (Path("experiment.yaml"), where[0]) if len(where) == 1 else (Path(where[0]), where[1])
    )
    if follow and (attempt is not None or as_json):
        raise click.UsageError("--follow follows the latest attempt, as text")
    found = orchestrator.job_log(app.manager, experiment, unit, scheduler=scheduler)
    record = found.record
    if record is None:
        raise UserError(
            f"{found.unit} has not been submitted: it has no log yet",
            hint=f"`cruijff run {experiment} --only {found.unit}` runs it",
        )
    if attempt is not None and attempt > record.attempt:
        raise UserError(f"{found.unit} has had {record.attempt} attempts, not {attempt}")
    try:
        text = found.path.read_bytes()
    except FileNotFoundError:
        if record.in_flight and not follow:
            state = record.state.value.lower() if record.state else "being submitted"
            raise UserError(
                f"{found.unit} is {state}: its log {found.path} is not there yet",
                hint="--follow waits for it",
            ) from None
        if not record.in_flight:
            raise UserError(
                f"the log of {found.unit} ({found.path}) has been removed",
                hint=f"`cruijff status {experiment}` still shows how it ended",
            ) from None
        text = b""
    except OSError as error:
        raise UserError(f"cannot read the log of {found.unit}: {error}") from None
    if follow:
        _follow(found, record, text, lines)
        return
    section = logs.pick(logs.sections(text, found.attempts_by_job), attempt, found.unit, found.path)
    body = logs.tail(text[section.start : section.end], lines)
    if as_json:
        print_json(
            {
                "unit": found.unit,
                "log": str(found.path),
                "attempt": section.attempt,
                "attempts": record.attempt,
                "state": record.state.value if record.state else None,
                "text": body.decode("utf-8", errors="replace"),
            }
        )
        return
    sys.stdout.buffer.write(body)
    sys.stdout.flush()


def _follow(found, record, text: bytes, lines: int | None) -> None:  # type: ignore[no-untyped-def]
    """Print the latest attempt so far, then what the log gains, until the job has ended."""
    from cruijff import logs

    out = sys.stdout.buffer
    known = logs.sections(text, found.attempts_by_job)
    start = known[-1].start if known else 0
    out.write(logs.tail(text[start:], lines))
    out.flush()
    offset, checked = len(text), time.monotonic()
    try:
        while True:
            ended = not record.in_flight
            try:
                with open(found.path, "rb") as log:
                    log.seek(offset)
                    more = log.read()
            except FileNotFoundError:
                more = b""
            if more:
                out.write(more)
                out.flush()
                offset += len(more)
            if ended:
                return  # one last read after the job ended: nothing it wrote is missed
            time.sleep(FOLLOW_POLL_S)
            if time.monotonic() - checked >= STATE_POLL_S:
                record, checked = found.watch(record), time.monotonic()
    except KeyboardInterrupt:
        raise click.exceptions.Exit(130) from None
