"""When a programme may be destroyed, and the run of its steps: claimed, leased, resumable."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from datasets import selectors as dataset_selectors
from destruction.models import (
    DestructionRun,
    DestructionStep,
)
from destruction.services.steps import STEPS, StepFailed
from governance.models import Programme, User
from phm_portal.audit import audit_checkpoint_take, audit_log
from phm_portal.errors import InvalidInput, NotAllowedNow
from phm_portal.lib import signing

log = logging.getLogger(__name__)


# --- when ----------------------------------------------------------------------------
def programme_destruction_blocker(
    *, programme: Programme, early: bool = False, today: dt.date | None = None
) -> str | None:
    """Return why the programme's data may not be destroyed now, or None if it may."""
    today = today or timezone.localdate()
    if programme.status == Programme.Status.DESTROYED:
        return "The programme's data was already destroyed."
    ended = programme.status == Programme.Status.ENDED or (
        programme.end_date is not None and programme.end_date <= today
    )
    if not ended and not early:
        when = (
            f"on {programme.end_date:%-d %B %Y}"
            if programme.end_date
            else "on a date not yet recorded"
        )
        return (
            f"The programme has not ended (it ends {when}). To destroy its data before the "
            "end, ask for early destruction and give the reason."
        )
    jobs = dataset_selectors.programme_active_jobs(programme)
    if jobs:
        return _jobs_blocker(jobs)
    return None


def _jobs_blocker(jobs: list) -> str:
    """Name the programme's active jobs and say what ends them."""
    many = len(jobs) > 1
    named = "; ".join(
        f"job {job.pk} of {job.dataset.original_name} is still {job.get_status_display().lower()}"
        + (" and being cancelled" if job.cancel_requested else "")
        for job in jobs
    )
    if all(job.cancel_requested for job in jobs):
        return (
            f"Pseudonymisation is being cancelled: {named}. Destruction may start once "
            f"{'they have' if many else 'it has'} stopped, within a minute or two."
        )
    return (
        f"{'Pseudonymisation jobs' if many else 'A pseudonymisation job'} of the programme "
        f"{'are' if many else 'is'} still active: {named}. Cancel {'them' if many else 'it'} "
        f"first, or wait for {'them' if many else 'it'} to finish."
    )


def programme_destroy(
    *, actor: User, programme: Programme, early: bool = False, reason: str = ""
) -> DestructionRun:
    """Start (or resume) the destruction of everything the programme holds.

    1. A run already queued or running is returned as it is (asking twice is harmless).
    2. A failed run is resumed: its failed step starts again, finished steps are kept.
    3. Otherwise the blocker decides; early destruction needs a reason and ends the
       programme now, so that no new data arrives while it runs.
    """
    reason = (reason or "").strip()
    active = programme.destruction_runs.filter(status__in=DestructionRun.ACTIVE).first()
    if active is not None:
        transaction.on_commit(lambda: _send(active.pk))
        return active
    failed = programme.destruction_runs.filter(status=DestructionRun.Status.FAILED).first()
    if failed is not None and programme.status == Programme.Status.DESTROYED:
        return _resume(actor=actor, run=failed)
    if early and not reason:
        raise InvalidInput("Say why the data must be destroyed before the end.", field="reason")
    blocker = programme_destruction_blocker(programme=programme, early=early)
    if blocker:
        raise NotAllowedNow(blocker)
    if failed is not None:
        return _resume(actor=actor, run=failed)
    is_early = programme.status != Programme.Status.ENDED and early
    was_live = programme.status != Programme.Status.ENDED
    try:
        with transaction.atomic():
            run = DestructionRun.objects.create(
                programme=programme,
                requested_by=actor,
                early=is_early,
                reason=reason if is_early else "",
            )
            DestructionStep.objects.bulk_create(
                DestructionStep(run=run, index=i, name=name)
                for i, name in enumerate(DestructionStep.ORDER)
            )
            if was_live:
                # No new data may arrive while the run goes on.
                Programme.objects.filter(pk=programme.pk).exclude(
                    status=Programme.Status.DESTROYED
                ).update(status=Programme.Status.ENDED, updated_at=timezone.now())
                audit_log(
                    actor=actor,
                    action="programme.ended_early" if is_early else "programme.ended",
                    obj=programme,
                    details={"reason": reason, "run": run.pk} if is_early else {"run": run.pk},
                )
            audit_log(
                actor=actor,
                action="destruction.requested",
                obj=programme,
                details={"run": run.pk, "early": is_early, "reason": reason if is_early else ""},
            )
            transaction.on_commit(lambda: _send(run.pk))
    except IntegrityError:  # two clicks at once: the other made the run
        return programme.destruction_runs.get(status__in=DestructionRun.ACTIVE)
    programme.refresh_from_db()
    return run


def _resume(*, actor: User, run: DestructionRun) -> DestructionRun:
    with transaction.atomic():
        reopened = DestructionRun.objects.filter(
            pk=run.pk, status=DestructionRun.Status.FAILED
        ).update(status=DestructionRun.Status.QUEUED, error="", finished_at=None)
        if reopened:
            run.steps.filter(status=DestructionStep.Status.FAILED).update(
                status=DestructionStep.Status.PENDING, lease_until=None
            )
            audit_log(
                actor=actor,
                action="destruction.resumed",
                obj=run.programme,
                details={"run": run.pk},
            )
            transaction.on_commit(lambda: _send(run.pk))
    run.refresh_from_db()
    return run


def _send(run_id: int) -> None:
    from destruction.tasks import destruction_run

    destruction_run.delay(run_id)


# --- the run ----------------------------------------------------------------------------
class StepBusy(Exception):
    """Another worker holds the step's lease; try again when it may have expired."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"step leased for {seconds:.0f}s more")
        self.seconds = seconds


class _LostLease(Exception):
    """Another attempt took the step over: this one stops without recording anything."""


def destruction_run_execute(*, run_id: int) -> DestructionRun:
    """Run the steps of a run that are not done yet, in order; return the run.

    1. Claim the run (queued -> running); a finished run returns at once.
    2. For each step not done: claim it with a lease (pending, or running with an
       expired lease: its worker died), do it, and record its evidence and an audit
       event in one transaction. A step done is never done again.
    3. When every step is done, the run has succeeded.
    """
    DestructionRun.objects.filter(pk=run_id, status=DestructionRun.Status.QUEUED).update(
        status=DestructionRun.Status.RUNNING, started_at=timezone.now()
    )
    run = DestructionRun.objects.select_related("programme", "requested_by").get(pk=run_id)
    if run.status != DestructionRun.Status.RUNNING:
        return run
    for step in run.steps.order_by("index"):
        if step.status == DestructionStep.Status.DONE:
            continue
        if step.status == DestructionStep.Status.FAILED:
            return run
        attempt = _claim(step)
        try:
            _do_step(run, step, attempt)
        except _LostLease:
            return run
        except (StepFailed, NotAllowedNow, signing.SigningKeyMissing) as exc:
            _fail(run, step, attempt, str(exc))
            run.refresh_from_db()
            return run
        except Exception:
            log.exception("step %s of destruction run %s failed", step.name, run.pk)
            _fail(
                run,
                step,
                attempt,
                "An unexpected error stopped this step; the technical team has the details in "
                "the log. Start the destruction again to resume from this step.",
            )
            run.refresh_from_db()
            return run
        run.refresh_from_db()
    with transaction.atomic():
        if DestructionRun.objects.filter(pk=run.pk, status=DestructionRun.Status.RUNNING).update(
            status=DestructionRun.Status.SUCCEEDED, finished_at=timezone.now()
        ):
            audit_log(
                actor=None,
                action="destruction.succeeded",
                obj=run.programme,
                details={"run": run.pk, "certificate": run.certificate.serial},
            )
            # A signed checkpoint of the audit log, outside the database, at every
            # destruction; should it fail, the run stands and the daily one follows.
            transaction.on_commit(
                lambda: audit_checkpoint_take(reason=f"destruction run {run.pk}"), robust=True
            )
    run.refresh_from_db()
    return run


def _claim(step: DestructionStep) -> int:
    now = timezone.now()
    lease = dt.timedelta(seconds=settings.PHM_DESTRUCTION_LEASE_SECONDS)
    claimed = DestructionStep.objects.filter(
        pk=step.pk, status=DestructionStep.Status.PENDING
    ).update(
        status=DestructionStep.Status.RUNNING,
        lease_until=now + lease,
        started_at=now,
        attempts=F("attempts") + 1,
    ) or DestructionStep.objects.filter(
        pk=step.pk, status=DestructionStep.Status.RUNNING, lease_until__lt=now
    ).update(lease_until=now + lease, attempts=F("attempts") + 1)
    step.refresh_from_db()
    if not claimed:
        if step.status == DestructionStep.Status.RUNNING and step.lease_until:
            raise StepBusy(max(1.0, (step.lease_until - now).total_seconds()))
        raise _LostLease
    return step.attempts


def _renewer(step: DestructionStep, attempt: int) -> Callable[[], None]:
    """Return a function that renews the step's lease; it raises _LostLease if taken over."""

    def renew() -> None:
        lease = dt.timedelta(seconds=settings.PHM_DESTRUCTION_LEASE_SECONDS)
        if not DestructionStep.objects.filter(
            pk=step.pk, status=DestructionStep.Status.RUNNING, attempts=attempt
        ).update(lease_until=timezone.now() + lease):
            raise _LostLease

    return renew


def _do_step(run: DestructionRun, step: DestructionStep, attempt: int) -> None:
    action, in_transaction = STEPS[step.name]
    renew = _renewer(step, attempt)

    def record(evidence: dict) -> None:
        won = DestructionStep.objects.filter(
            pk=step.pk, status=DestructionStep.Status.RUNNING, attempts=attempt
        ).update(
            status=DestructionStep.Status.DONE,
            evidence=evidence,
            finished_at=timezone.now(),
            lease_until=None,
        )
        if not won:
            raise _LostLease
        audit_log(
            actor=None,
            action=f"destruction.{step.name}",
            obj=run.programme,
            details={"run": run.pk, "step": step.name, "attempt": attempt, "evidence": evidence},
        )

    if in_transaction:
        with transaction.atomic():
            record(action(run, renew))
    else:
        evidence = action(run, renew)
        with transaction.atomic():
            record(evidence)


def _fail(run: DestructionRun, step: DestructionStep, attempt: int, message: str) -> None:
    with transaction.atomic():
        if DestructionStep.objects.filter(pk=step.pk, attempts=attempt).update(
            status=DestructionStep.Status.FAILED,
            lease_until=None,
            evidence={"error": message},
            finished_at=timezone.now(),
        ):
            DestructionRun.objects.filter(pk=run.pk, status=DestructionRun.Status.RUNNING).update(
                status=DestructionRun.Status.FAILED, error=message, finished_at=timezone.now()
            )
            audit_log(
                actor=None,
                action="destruction.failed",
                obj=run.programme,
                details={"run": run.pk, "step": step.name, "error": message},
            )


def destruction_runs_resume() -> list[int]:
    """Send again the runs whose worker died (a step's lease expired, or queued too long)."""
    now = timezone.now()
    stale = set(
        DestructionStep.objects.filter(
            status=DestructionStep.Status.RUNNING,
            lease_until__lt=now,
            run__status=DestructionRun.Status.RUNNING,
        ).values_list("run_id", flat=True)
    )
    lease = dt.timedelta(seconds=settings.PHM_DESTRUCTION_LEASE_SECONDS)
    stale |= set(
        DestructionRun.objects.filter(
            status=DestructionRun.Status.QUEUED, requested_at__lt=now - lease
        ).values_list("pk", flat=True)
    )
    for run_id in sorted(stale):
        _send(run_id)
    return sorted(stale)
