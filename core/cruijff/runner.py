"""Run: hand a plan's jobs to a scheduler, watch them, validate what finished; and the
``status`` and ``cancel`` that work from any shell.

Resuming is the normal path: every ``cruijff run`` rebuilds the picture from the job records
and one scheduler query, skips what succeeded, watches what is still in flight, and submits the
rest. Each record is written before and after its submission, so a run killed in between looks
the job up by name instead of submitting it twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from cruijff import clean, measurements, rerun, selection
from cruijff.errors import PluginError, UserError
from cruijff.manager import PluginManager
from cruijff.records import JobSpec, JobState, JobStatus, Plan, Unit
from cruijff.state import ExperimentState, JobRecord

Observer = Callable[[str, "JobRecord | None"], None]
"""Told of every change, ``("submitted" | "state" | "done", record)``, and of every poll while
watching, ``("tick", None)``."""


@attrs.frozen(kw_only=True)
class RunOptions:
    """How ``cruijff run`` behaves: concurrency for the local scheduler (None: the
    experiment's setting), whether to wait, what to rerun, how often to poll. ``only`` (unit
    ids, from :func:`cruijff.selection.select`) runs those units and the unfinished ones they
    depend on, nothing else; ``force`` reruns them even where they succeeded."""

    jobs: int | None = None
    detach: bool = False
    retry_failed: bool = False
    only: frozenset[str] | None = None
    force: bool = False
    poll_interval: float = 0.5
    max_interval: float = 5.0


@attrs.frozen(kw_only=True)
class Resumed:
    """What a run found of earlier ones (Nextflow's cached/submitted counts): the jobs it
    skipped (succeeded, standing), those it watched (in flight: attached to, never submitted
    again) and those it submitted."""

    skipped: int
    watched: int
    submitted: int

    def __str__(self) -> str:
        return f"{self.skipped} skipped, {self.watched} watched, {self.submitted} submitted"


def open_scheduler(plan: Plan, manager: PluginManager, options: Mapping[str, Any]) -> Any:
    """Build the experiment's scheduler with its options and the command line's."""
    experiment = plan.experiment
    info = manager.scheduler(experiment.scheduler.name or "local")
    return info.factory(experiment, {**experiment.scheduler.options, **options})


class Runner:
    """Drives one experiment's jobs through a scheduler."""

    def __init__(
        self,
        manager: PluginManager,
        plan: Plan,
        scheduler: Any,
        *,
        observer: Observer | None = None,
        state: ExperimentState | None = None,
    ) -> None:
        self.manager, self.plan, self.scheduler = manager, plan, scheduler
        # The driver's state holds the run lock, checked before every submission.
        self.state = state or ExperimentState(plan.experiment.state_dir)
        self.units: dict[str, Unit] = {unit.id: unit for unit in plan.units}
        self.jobs: dict[str, JobSpec] = {job.unit_id: job for job in plan.jobs}
        self.observer = observer or (lambda event, record: None)
        self.resumed: Resumed | None = None
        """After :meth:`run` of an experiment with earlier records: what it found of them."""

    # --- the picture -----------------------------------------------------------------------

    def refresh(self, records: dict[str, JobRecord], *, write: bool) -> dict[str, JobRecord]:
        """Bring in-flight records up to date with one scheduler query (and look up jobs whose
        submission is uncertain). With ``write``, changes are saved, logged and validated."""
        uncertain = [r for r in records.values() if r.submitting and r.handle is None]
        if uncertain:
            try:
                found = self.scheduler.find([r.job.name for r in uncertain])
            except UserError:
                if write:
                    raise  # submitting nothing until the scheduler has answered
                found, uncertain = {}, []  # status shows them as still being submitted
            for record in uncertain:
                handle = found.get(record.job.name)
                updated = attrs.evolve(
                    record,
                    handle=handle,
                    submitting=False,
                    state=JobState.PENDING if handle else None,
                )
                records[record.unit_id] = self._save(updated, "recovered") if write else updated
        flying = [r for r in records.values() if r.handle is not None and not r.finished]
        if not flying:
            return records
        statuses = self.scheduler.poll([r.handle for r in flying])
        for record in flying:
            status = statuses.get(record.handle, JobStatus(state=JobState.UNKNOWN))
            if status.state is record.state:
                if not write and status.cause != record.cause:  # what status shows of it
                    records[record.unit_id] = attrs.evolve(record, cause=status.cause)
                continue
            updated = attrs.evolve(
                record, state=status.state, exit_code=status.exit_code, cause=status.cause
            )
            if write:
                updated = self._finish(updated, status) if status.state.finished else updated
                updated = self._save(updated, "state")
                self.observer("done" if updated.finished else "state", updated)
            records[record.unit_id] = updated
        return records

    def _finish(self, record: JobRecord, status: JobStatus) -> JobRecord:
        """Validate a finished job: a job that exited 0 but left no output has failed."""
        unit = self.units.get(record.unit_id)
        validation = None
        if unit is not None and status.lost:
            # Its processes vanished without a word on how it ended: if its outputs are
            # complete (killed after its command exited 0), it succeeded and must not rerun.
            validation = self.manager.validate(self.plan.experiment, unit, None)
            if validation.ok:
                cause = f"{status.cause}, but its outputs are complete"
                return attrs.evolve(
                    record,
                    state=JobState.SUCCEEDED,
                    cause=cause,
                    metrics=dict(validation.metrics),
                    summary=validation.summary,
                )
        if unit is not None:
            validation = self.manager.validate(self.plan.experiment, unit, status)
            record = attrs.evolve(
                record, metrics=dict(validation.metrics), summary=validation.summary
            )
            if status.state is JobState.SUCCEEDED and validation.ok:
                self._learn(unit, status)
            if status.state is JobState.SUCCEEDED and not validation.ok:
                record = attrs.evolve(record, state=JobState.FAILED, cause=validation.cause)
                status = JobStatus(
                    state=JobState.FAILED, exit_code=status.exit_code, cause=validation.cause
                )
            elif status.state is JobState.FAILED and validation.cause:
                # a plain failure: the tool reads its own log better than the scheduler can
                # (a time limit, a cancel or a lost node keep the scheduler's own words)
                record = attrs.evolve(record, cause=validation.cause)
                status = attrs.evolve(status, cause=validation.cause)
        if record.state is not None and record.state.failed:
            self.manager.on_job_error(self.plan, record.job, status, validation)
        return record

    def _learn(self, unit: Unit, status: JobStatus) -> None:
        """Keep what a finished job used next to what was predicted, in the index that the
        next plans' estimates read; an index that cannot be written costs a log line only."""
        try:
            found = measurements.of_job(
                self.manager,
                self.plan.experiment,
                unit,
                status,
                self.plan.estimates.get(unit.id),
                gpus=job.resources.gpus if (job := self.jobs.get(unit.id)) else 0,
            )
            if found is not None:
                measurements.Index().record(found)
        except (OSError, PluginError) as error:
            self.state.log("measurement-lost", unit=unit.id, cause=str(error))

    def _save(self, record: JobRecord, event: str) -> JobRecord:
        saved = self.state.save(record)
        self.state.log(
            event,
            unit=record.unit_id,
            state=record.state.value if record.state else None,
            handle=record.handle,
            attempt=record.attempt,
            cause=record.cause,
        )
        return saved

    # --- run -------------------------------------------------------------------------------

    def _resume(self, records: dict[str, JobRecord]) -> None:
        """Have the scheduler serve the jobs in flight (a killed local executor is restarted
        by the driver, never by ``status``)."""
        handles = [r.handle for r in records.values() if r.handle is not None and not r.finished]
        if handles:
            self.scheduler.resume(handles)

    def to_submit(
        self,
        records: dict[str, JobRecord],
        retry_failed: bool,
        only: frozenset[str] | None = None,
        force: bool = False,
    ) -> list[JobSpec]:
        """The jobs this run hands over: never one in flight, nor one that succeeded unless its
        files changed since (or ``force`` chose it); with ``retry_failed`` only failed ones
        (adjusted for how they failed), else every other; with ``only``, only those units. A
        chosen job's dependencies that are not done come too; without ``only``, so does every
        job downstream of a chosen one (its inputs will change)."""

        def settled(unit_id: str) -> bool:
            record = records.get(unit_id)
            return record is not None and (record.in_flight or record.done)

        def wanted(unit_id: str) -> bool:
            record = records.get(unit_id)
            if only is not None and unit_id not in only:
                return False
            if force and not (record is not None and record.in_flight):
                return True
            if settled(unit_id):
                return False
            if retry_failed:
                return record is not None and record.state is not None and record.state.failed
            return True

        chosen = {unit_id for unit_id in self.jobs if wanted(unit_id)}
        for unit_id in reversed(list(self.jobs)):  # dependents come after their dependencies
            if unit_id in chosen:
                chosen |= {
                    d for d in self.jobs[unit_id].depends_on if d in self.jobs and not settled(d)
                }
        for unit_id, job in self.jobs.items():  # what a rerun job produces changes downstream
            record = records.get(unit_id)
            in_flight = record is not None and record.in_flight
            if only is None and not in_flight and any(d in chosen for d in job.depends_on):
                chosen.add(unit_id)
        batch = []
        for unit_id, job in self.jobs.items():
            if unit_id not in chosen:
                continue
            record = records.get(unit_id)
            if force and record is not None and record.done:
                job = attrs.evolve(job, env={**job.env, rerun.ENV: "1"})
            if retry_failed and record is not None and record.state and record.state.failed:
                status = JobStatus(
                    state=record.state, exit_code=record.exit_code, cause=record.cause
                )
                unit = self.units[unit_id]
                # a retry continues what the failed attempt left, even one that started over
                earlier = attrs.evolve(
                    record.job, env={k: v for k, v in record.job.env.items() if k != rerun.ENV}
                )
                job = self.manager.retry(self.plan.experiment, unit, earlier, status)
            batch.append(job)
        return batch

    def outdate(self, records: dict[str, JobRecord], rerun: Sequence[str]) -> None:
        """Mark the successes downstream of jobs run again alone (``--only``) as outdated: their
        inputs are about to change, and the next run reruns them."""
        depends_on = {unit_id: job.depends_on for unit_id, job in self.jobs.items()}
        for unit_id in sorted(selection.downstream(rerun, depends_on) - set(rerun)):
            record = records.get(unit_id)
            if record is not None and record.done:
                cause = "outdated: a job it depends on runs again"
                records[unit_id] = self._save(
                    attrs.evolve(record, outdated=True, cause=cause), "outdated"
                )

    def recognise_done(self, records: dict[str, JobRecord]) -> dict[str, JobRecord]:
        """Units without a record whose outputs are already complete count as succeeded."""
        for unit_id, job in self.jobs.items():
            if unit_id in records:
                continue
            validation = self.manager.validate(self.plan.experiment, self.units[unit_id], None)
            if validation.ok:
                record = JobRecord(
                    unit_id=unit_id,
                    job=job,
                    state=JobState.SUCCEEDED,
                    cause="found complete",
                    metrics=dict(validation.metrics),
                    summary=validation.summary,
                )
                records[unit_id] = self._save(record, "found-complete")
        return records

    def submit(self, jobs: Sequence[JobSpec], records: dict[str, JobRecord]) -> list[JobSpec]:
        """Submit a batch: records are written before (``submitting``) and after (handle).

        A scheduler whose queue is full may take only the first jobs of the batch; the rest
        are returned, their records as they were, to be offered again as room frees up.
        """
        if not jobs:
            return []
        self.state.check_driving()
        before = {job.unit_id: records.get(job.unit_id) for job in jobs}
        for job in jobs:
            previous = before[job.unit_id]
            attempt = (previous.attempt if previous else 0) + 1
            records[job.unit_id] = self._save(
                JobRecord(unit_id=job.unit_id, job=job, attempt=attempt, submitting=True),
                "submitting",
            )
        earlier = {
            unit_id: record.handle
            for unit_id, record in records.items()
            if record.handle is not None and not record.finished
        }
        handles = self.scheduler.submit(list(jobs), earlier)
        taken, waiting = list(jobs[: len(handles)]), list(jobs[len(handles) :])
        for job, handle in zip(taken, handles, strict=True):
            record = attrs.evolve(
                records[job.unit_id], handle=handle, submitting=False, state=JobState.PENDING
            )
            records[job.unit_id] = self._save(record, "submitted")
            self.observer("submitted", records[job.unit_id])
        for job in waiting:
            previous = before[job.unit_id]
            if previous is None:
                self.state.forget(job.unit_id)
                records.pop(job.unit_id)
            else:
                records[job.unit_id] = self.state.save(previous)
        if waiting:
            self.state.log("queue-full", waiting=[job.unit_id for job in waiting])
        if taken:
            self.manager.after_submit(self.plan, tuple(taken), tuple(handles))
        return waiting

    def run(self, options: RunOptions) -> dict[str, JobRecord]:
        """Submit what needs running and, unless detached, watch until everything finished."""
        try:
            records = self._adopt(self.refresh(self.state.records(), write=True))
            self._resume(records)
            if not options.retry_failed:
                records = self.recognise_done(records)
            batch = self.to_submit(records, options.retry_failed, options.only, options.force)
            if records:  # a run before this one left records: say what became of them
                self._resumed(records, batch)
            clean.check_needed(self.plan, [job.unit_id for job in batch])
            if options.only is not None:
                self.outdate(records, [job.unit_id for job in batch])
            self.manager.before_run(self.plan, tuple(batch))
            waiting = self.submit(batch, records)
            if options.detach:
                return records
            records = self.watch(records, options, waiting)
            self.manager.after_run(
                self.plan, {u: r.state for u, r in records.items() if u in self.jobs}
            )
            return records
        except KeyboardInterrupt:
            raise
        except BaseException as error:
            self.manager.on_run_error(self.plan, error)
            raise

    def _adopt(self, records: dict[str, JobRecord]) -> dict[str, JobRecord]:
        """Jobs without a record that the scheduler still has queued or running (their record
        was lost or removed): recorded again and watched, never submitted a second time."""
        lost = [job for unit_id, job in self.jobs.items() if unit_id not in records]
        found = self.scheduler.find([job.name for job in lost]) if lost else {}
        if not found:
            return records
        statuses = self.scheduler.poll(list(found.values()))
        for job in lost:
            handle = found.get(job.name)
            status = statuses.get(handle) if handle is not None else None
            if status is None or status.state.finished or status.state is JobState.UNKNOWN:
                continue  # ended (its outputs tell) or never submitted: submitted as usual
            record = JobRecord(
                unit_id=job.unit_id, job=job, attempt=1, handle=handle, state=status.state
            )
            records[job.unit_id] = self._save(record, "adopted")
        return records

    def _resumed(self, records: dict[str, JobRecord], batch: Sequence[JobSpec]) -> None:
        chosen = {job.unit_id for job in batch}
        found = [records[u] for u in self.jobs if u in records and u not in chosen]
        self.resumed = Resumed(
            skipped=sum(1 for r in found if r.done),
            watched=sum(1 for r in found if r.in_flight),
            submitted=len(batch),
        )
        self.state.log("resumed", **attrs.asdict(self.resumed))

    def watch(
        self, records: dict[str, JobRecord], options: RunOptions, waiting: list[JobSpec]
    ) -> dict[str, JobRecord]:
        """Poll until no job of this plan is in flight or waiting for room in the queue,
        backing off while nothing changes."""
        interval = options.poll_interval
        while waiting or any(records[u].in_flight for u in self.jobs if u in records):
            time.sleep(interval)
            self.observer("tick", None)
            self.state.check_driving()
            before = {u: r.state for u, r in records.items()}
            records = self.refresh(records, write=True)
            self._resume(records)
            changed = before != {u: r.state for u, r in records.items()}
            if waiting and changed:
                waiting = self.submit(waiting, records)
                if waiting and not any(r.in_flight for r in records.values()):
                    raise UserError(
                        f"the scheduler takes none of the {len(waiting)} jobs left although "
                        "none of this experiment's jobs is queued",
                        hint="check the queue limit of your scheduler profile",
                    )
            interval = (
                options.poll_interval if changed else min(interval * 1.5, options.max_interval)
            )
        return records

    # --- status and cancel -----------------------------------------------------------------

    def status(self) -> dict[str, JobRecord | None]:
        """Every job of the plan with its latest state (None: never submitted). Read-only."""
        records = self.refresh(self.state.records(), write=False)
        return {unit_id: records.get(unit_id) for unit_id in self.jobs}

    def cancel(self, only: frozenset[str] | None = None) -> list[JobRecord]:
        """Cancel every job of the experiment that is in flight (with ``only``, of those
        units); returns them, updated."""
        records = self.refresh(self.state.records(), write=True)
        flying = [
            r
            for r in records.values()
            if r.handle is not None and not r.finished and (only is None or r.unit_id in only)
        ]
        if flying:
            self.scheduler.cancel([r.handle for r in flying])
            self.state.log("cancelled", units=[r.unit_id for r in flying])
        records = self.refresh(records, write=True)
        return [records[r.unit_id] for r in flying]
