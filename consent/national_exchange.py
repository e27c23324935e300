"""National data opt-out checks over MESH: send each file, import each reply, flag the late.

The writes are consent.services' (a check's start, completion and failure); this module
moves the files. Each step is safe to repeat and to run in two workers at once:

1. **Send**: a check started with MESH configured is claimed for a few minutes, its
   file built (consent.files.national_submission) and sent; a MESH error is recorded on
   the check and retried with backoff (1, 2, 4 ... minutes, at most an hour).
2. **Read the inbox**: each message is matched to its check by local id, subject or file
   name, imported (or its error recorded) together with a row naming the message, then
   acknowledged. A worker killed after the import and before the acknowledgement finds
   the row at the next poll and only acknowledges: a reply is imported exactly once.
3. **Flag the late**: a check sent PHM_NDOP_REPLY_HOURS ago without a reply is flagged
   on its page and the CSU admins are e-mailed, once.
"""

from __future__ import annotations

import datetime as dt
import logging
from smtplib import SMTPException

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from consent import mesh, services
from consent.files import national_reply_kind, national_submission
from consent.models import MeshInboxMessage, NationalOptOutCheck
from consent.selectors import national_check_submission
from governance.selectors import csu_admin_emails
from phm_portal.audit import audit_log
from phm_portal.errors import DomainError

log = logging.getLogger(__name__)

# A worker sending a file holds the check this long; one killed mid-send is retried after.
SEND_CLAIM = dt.timedelta(minutes=5)
MAX_BACKOFF = dt.timedelta(hours=1)
MESH = NationalOptOutCheck.Transport.MESH


def backoff(attempts: int) -> dt.timedelta:
    """Return how long to wait before the next try after this many failed ones."""
    return min(dt.timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_BACKOFF)


# --- 1. send -------------------------------------------------------------------------------
def national_check_send(*, check_id: int, now: dt.datetime | None = None) -> NationalOptOutCheck:
    """Send a check's file over MESH, once; on a MESH error record it and retry later."""
    now = now or timezone.now()
    due = NationalOptOutCheck.objects.filter(
        pk=check_id, transport=MESH, status=NationalOptOutCheck.Status.AWAITING_RETURN
    ).exclude(next_send_at__gt=now)
    # The claim: no other worker sends it while this one does (healthchecks' sendalerts).
    claimed = due.update(next_send_at=now + SEND_CLAIM)
    check = NationalOptOutCheck.objects.select_related("programme").get(pk=check_id)
    if not claimed:
        return check
    attempt = check.send_attempts + 1
    try:
        data = national_submission(national_check_submission(check))
        with mesh.mailbox() as box:
            message_id = box.send(
                recipient=settings.PHM_NDOP_MAILBOX,
                data=data,
                name=check.local_id,
                workflow_id=settings.PHM_NDOP_WORKFLOW_ID,
            )
    except (mesh.MeshUnavailable, DomainError, ValueError) as exc:
        words = exc.message if isinstance(exc, DomainError) else str(exc)
        retry_at = now + backoff(attempt)
        NationalOptOutCheck.objects.filter(pk=check.pk).update(
            send_attempts=attempt, send_error=words, next_send_at=retry_at
        )
        audit_log(
            actor=None,
            action="national_opt_out.mesh_send_failed",
            obj=check,
            details={"attempt": attempt, "error": words, "retry_at": retry_at.isoformat()},
        )
        log.warning("Sending national check %s over MESH failed: %s", check.pk, words)
        check.refresh_from_db()
        return check
    with transaction.atomic():
        NationalOptOutCheck.objects.filter(
            pk=check.pk, status=NationalOptOutCheck.Status.AWAITING_RETURN
        ).update(
            status=NationalOptOutCheck.Status.SENT,
            sent_at=timezone.now(),
            mesh_message_id=message_id,
            send_attempts=attempt,
            send_error="",
            next_send_at=None,
        )
        check.refresh_from_db()
        audit_log(
            actor=None,
            action="national_opt_out.check_sent",
            obj=check,
            details={
                "programme": check.programme.slug,
                "local_id": check.local_id,
                "mesh_message": message_id,
                "to": settings.PHM_NDOP_MAILBOX,
                "workflow": settings.PHM_NDOP_WORKFLOW_ID,
                "numbers": check.submitted,
                "attempt": attempt,
            },
        )
    return check


def national_checks_send_due(*, now: dt.datetime | None = None) -> list[int]:
    """Send every MESH check not sent yet whose next try is due; return their ids."""
    now = now or timezone.now()
    due = (
        NationalOptOutCheck.objects.filter(
            transport=MESH, status=NationalOptOutCheck.Status.AWAITING_RETURN
        )
        .exclude(next_send_at__gt=now)
        .values_list("pk", flat=True)
    )
    sent = []
    for pk in list(due):
        if national_check_send(check_id=pk, now=now).status == NationalOptOutCheck.Status.SENT:
            sent.append(pk)
    return sent


# --- 2. read the inbox ------------------------------------------------------------------------
def _check_for(received: mesh.Received) -> NationalOptOutCheck | None:
    names = received.names()
    if not names:
        return None
    return (
        NationalOptOutCheck.objects.select_related("programme")
        .filter(local_id__in=names, transport=MESH)
        .first()
    )


def _take(received: mesh.Received) -> str:
    """Import or record one message; return its kind. Raises nothing for a bad reply."""
    check = _check_for(received)
    if check is None:
        with transaction.atomic():
            services.mesh_message_record(received, check=None, kind=MeshInboxMessage.Kind.UNMATCHED)
            audit_log(
                actor=None,
                action="national_opt_out.mesh_message_unmatched",
                details={
                    "mesh_message": received.message_id,
                    "local_id": received.local_id,
                    "subject": received.subject,
                    "sender": received.sender,
                },
            )
        return MeshInboxMessage.Kind.UNMATCHED
    try:
        text = received.data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = None
    reply = national_reply_kind(text) if text is not None else None
    if reply is not None and reply.kind == "note":
        # Not an answer (the service may say it created a job for the file): keep it
        # on the check and keep waiting.
        with transaction.atomic():
            services.mesh_message_record(
                received, check=check, kind=MeshInboxMessage.Kind.NOTE, detail=reply.words
            )
            NationalOptOutCheck.objects.filter(pk=check.pk).update(
                service_notes=(check.service_notes + "\n" + reply.words).strip()
            )
            audit_log(
                actor=None,
                action="national_opt_out.mesh_note_received",
                obj=check,
                details={"mesh_message": received.message_id, "service_said": reply.words},
            )
        return MeshInboxMessage.Kind.NOTE
    if not check.waiting:
        # A second answer to a check already answered (a file sent twice): keep the first.
        with transaction.atomic():
            services.mesh_message_record(
                received,
                check=check,
                kind=MeshInboxMessage.Kind.REFUSED,
                detail=f"The check was already {check.get_status_display().lower()}.",
            )
        return MeshInboxMessage.Kind.REFUSED
    try:
        check = services.national_check_complete(
            actor=None, check=check, returned=received.data, received=received
        )
    except DomainError as exc:
        # A reply that cannot be imported (a number never submitted, not text): nothing
        # is imported and the check fails, saying why, so a new one can be started.
        services.national_check_fail(
            actor=None,
            check=check,
            words=f"The portal could not import the national service's reply: {exc.message}",
            received=received,
        )
        return MeshInboxMessage.Kind.REFUSED
    return (
        MeshInboxMessage.Kind.ERROR
        if check.status == NationalOptOutCheck.Status.FAILED
        else MeshInboxMessage.Kind.REPLY
    )


def national_inbox_read() -> dict[str, int]:
    """Import every waiting reply, then acknowledge it; return how many of each kind."""
    counts: dict[str, int] = {}
    with mesh.mailbox() as box:
        for message_id in box.message_ids():
            record = MeshInboxMessage.objects.filter(message_id=message_id).first()
            if record is None:
                kind = _take(box.read(message_id))
                record = MeshInboxMessage.objects.get(message_id=message_id)
            else:
                kind = record.kind
            counts[kind] = counts.get(kind, 0) + 1
            if record.kind == MeshInboxMessage.Kind.UNMATCHED or record.acknowledged_at:
                # Not ours to take away (another system may share the mailbox) / done.
                continue
            box.acknowledge(message_id)
            MeshInboxMessage.objects.filter(pk=record.pk).update(acknowledged_at=timezone.now())
    return counts


# --- 3. flag the late ------------------------------------------------------------------------
def national_checks_flag_overdue(*, now: dt.datetime | None = None) -> list[int]:
    """Flag checks sent PHM_NDOP_REPLY_HOURS ago with no reply; e-mail the CSU admins once."""
    now = now or timezone.now()
    since = now - dt.timedelta(hours=settings.PHM_NDOP_REPLY_HOURS)
    flagged = []
    late = NationalOptOutCheck.objects.filter(
        transport=MESH,
        status=NationalOptOutCheck.Status.SENT,
        sent_at__lte=since,
        overdue_notified_at__isnull=True,
    ).select_related("programme")
    admins = csu_admin_emails()
    for check in late:
        if not NationalOptOutCheck.objects.filter(
            pk=check.pk, overdue_notified_at__isnull=True
        ).update(overdue_notified_at=now):
            continue
        audit_log(
            actor=None,
            action="national_opt_out.reply_overdue",
            obj=check,
            details={
                "programme": check.programme.slug,
                "local_id": check.local_id,
                "sent_at": check.sent_at.isoformat(),
                "hours": settings.PHM_NDOP_REPLY_HOURS,
                "admins_emailed": len(admins),
            },
        )
        flagged.append(check.pk)
        if not admins:
            continue
        address = settings.PHM_PUBLIC_URL + reverse("national-check", args=[check.pk])
        try:
            send_mail(
                subject=f"PHM portal: no reply from the national opt-out service for {check.local_id}",
                message=(
                    f"The national data opt-out check {check.local_id} of {check.programme.name} "
                    f"was sent over MESH at {timezone.localtime(check.sent_at):%H:%M on %d %B %Y} "
                    f"and the national service has not answered in "
                    f"{settings.PHM_NDOP_REPLY_HOURS} hours (it usually answers within an hour).\n\n"
                    f"The check: {address}\n\n"
                    "Look for the message in the MESH mailbox "
                    f"{settings.PHM_MESH_MAILBOX}, or start a new check; until a check "
                    "completes, jobs of the programme use its last unexpired one.\n"
                ),
                from_email=None,
                recipient_list=admins,
            )
        except (OSError, SMTPException):
            log.exception("Could not email the CSU admins about the late check %s", check.pk)
    return flagged


# --- the beat task's round --------------------------------------------------------------------
def national_checks_exchange() -> dict:
    """Send what is due, read the inbox, flag the late; record a MESH failure on the checks."""
    result: dict = {"sent": national_checks_send_due()}
    try:
        result["received"] = national_inbox_read()
    except mesh.MeshUnavailable as exc:
        words = f"Reading the MESH inbox failed at {timezone.localtime():%H:%M on %d %B}: {exc}"
        NationalOptOutCheck.objects.filter(
            transport=MESH, status=NationalOptOutCheck.Status.SENT
        ).update(send_error=words)
        log.warning("%s", words)
        result["error"] = str(exc)
    else:
        NationalOptOutCheck.objects.filter(
            transport=MESH, status=NationalOptOutCheck.Status.SENT
        ).exclude(send_error="").update(send_error="")
    result["overdue"] = national_checks_flag_overdue()
    return result
