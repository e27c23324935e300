"""Reminders to the CSU admins of ended programmes whose data is not destroyed yet."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from destruction.models import (
    DestructionReminder,
    DestructionRun,
)
from governance.models import Programme
from governance.selectors import csu_admin_emails
from phm_portal.audit import audit_log

log = logging.getLogger(__name__)


# --- reminders ------------------------------------------------------------------------------
def destruction_reminders_send(*, now: dt.datetime | None = None) -> list[str]:
    """Email the CSU admins about ended programmes whose data is not destroyed yet.

    One reminder per programme every PHM_DESTRUCTION_REMINDER_DAYS days; return the slugs.
    """
    now = now or timezone.now()
    since = now - dt.timedelta(days=settings.PHM_DESTRUCTION_REMINDER_DAYS)
    admins = csu_admin_emails()
    reminded = []
    due = Programme.objects.filter(status=Programme.Status.ENDED).exclude(
        destruction_runs__status__in=DestructionRun.ACTIVE
    )
    for programme in due.order_by("slug"):
        if programme.destruction_reminders.filter(sent_at__gte=since).exists():
            continue
        if admins:
            send_mail(
                subject=f"Destroy the data of {programme.name}: the programme has ended",
                message=render_to_string(
                    "destruction/reminder_email.txt",
                    {
                        "programme": programme,
                        "destruction_address": settings.PHM_PUBLIC_URL
                        + reverse("destruction-programme", args=[programme.slug]),
                    },
                ),
                from_email=None,
                recipient_list=admins,
            )
        with transaction.atomic():
            DestructionReminder.objects.create(programme=programme, recipients=admins)
            audit_log(
                actor=None,
                action="destruction.reminder_sent",
                obj=programme,
                details={"recipients": len(admins)},
            )
        reminded.append(programme.slug)
    return reminded
