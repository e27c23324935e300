"""The daily watch over approved flows: stop data when assurance lapses, remind before it does.

Run by the beat task governance.tasks.assurance_watch and by `python manage.py
check_assurance`. It asks governance.assurance, the one owner of the conditions, and:

1. suspends every approved flow of an open programme whose conditions no longer all hold,
   claiming the row (UPDATE ... WHERE status = approved) so two watchers suspend it once,
   with the lapse in words in `suspension_reason`, audited (actor: the system), and
   e-mails the CSU admins and the DPOs of both organisations;
2. sends a reminder 90 and 30 days before each thing a flow stands on stops holding
   (an agreement's expiry, a DPIA's review date plus the grace period, the end of a DSPT
   assessment year's currency, an ICO registration's expiry): each once, claimed by its
   AssuranceReminder row, to the same people.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from guardian.shortcuts import get_users_with_perms

from governance.assurance import Condition, failing, failing_words, flow_conditions
from governance.models import (
    DPIA,
    AssuranceReminder,
    DataFlow,
    Organisation,
    SharingAgreement,
    User,
)
from governance.selectors import csu_admin_emails
from phm_portal.audit import audit_log

REMINDER_DAYS = (90, 30)
WATCH = "assurance watch"
log = logging.getLogger(__name__)


@dataclass
class Suspension:
    flow: DataFlow
    reason: str
    conditions: list[str]
    recipients: list[str]


@dataclass
class Reminder:
    about: str
    days_before: int
    lapses_on: dt.date
    what: str
    flows: list[DataFlow]
    recipients: list[str]


@dataclass
class WatchReport:
    """What one round of the watch did."""

    today: dt.date
    checked: int = 0
    suspended: list[Suspension] = field(default_factory=list)
    reminders: list[Reminder] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Return what the watch did, one sentence a line (the command prints them)."""
        out = [
            f"Assurance checked on {_day(self.today)}: {self.checked} approved "
            f"flow{'s' if self.checked != 1 else ''}, {len(self.suspended)} suspended, "
            f"{len(self.reminders)} reminder{'s' if len(self.reminders) != 1 else ''} sent."
        ]
        for s in self.suspended:
            out.append(f"Suspended data flow #{s.flow.pk} ({s.flow}): {s.reason}")
        for r in self.reminders:
            flows = ", ".join(f"#{f.pk}" for f in r.flows)
            which = f"data flows {flows} stop" if len(r.flows) > 1 else f"data flow {flows} stops"
            out.append(
                f"Reminder ({r.days_before} days): {r.what}; from {_day(r.lapses_on)} "
                f"{which} unless it is renewed."
            )
        return out

    def as_dict(self) -> dict:
        return {
            "today": self.today.isoformat(),
            "checked": self.checked,
            "suspended": [
                {"flow": s.flow.pk, "reason": s.reason, "conditions": s.conditions}
                for s in self.suspended
            ],
            "reminders": [
                {
                    "about": r.about,
                    "days_before": r.days_before,
                    "lapses_on": r.lapses_on.isoformat(),
                    "flows": [f.pk for f in r.flows],
                }
                for r in self.reminders
            ],
        }


def _day(value: dt.date) -> str:
    return date_format(value, "j F Y")


def _flow_address(flow: DataFlow) -> str:
    return settings.PHM_PUBLIC_URL + reverse("data-flow-detail", args=[flow.pk])


def organisation_dpo_emails(organisation: Organisation) -> set[str]:
    """Return the organisation's DPO address and those of the DPOs bound to it."""
    bound = get_users_with_perms(
        organisation,
        only_with_perms_in=["act_for_organisation"],
        with_superusers=False,
        with_group_users=False,
    )
    emails = {
        u.email
        for u in bound
        if isinstance(u, User) and u.role == User.Role.DPO and u.is_active and u.email
    }
    if organisation.dpo_email:
        emails.add(organisation.dpo_email)
    return emails


def _send(subject: str, message: str, recipients: list[str]) -> None:
    """Send the e-mail; a mail server that fails is logged, and the watch goes on stopping data."""
    if not recipients:
        return
    try:
        send_mail(subject=subject, message=message, from_email=None, recipient_list=recipients)
    except Exception:
        log.exception("The assurance watch could not send %r to %s", subject, recipients)


def _recipients(flows: list[DataFlow]) -> list[str]:
    """Return the CSU admins and the DPOs of both ends of each flow."""
    emails = set(csu_admin_emails())
    for organisation in {o.pk: o for f in flows for o in (f.source, f.destination)}.values():
        emails |= organisation_dpo_emails(organisation)
    return sorted(emails)


def _watched_flows() -> list[DataFlow]:
    return list(
        DataFlow.objects.carrying_data()
        .select_related("programme", "source", "destination")
        .order_by("pk")
    )


def suspension_reason(lapsed: list[Condition]) -> str:
    """Return why the watch stopped the flow, in words: every condition that lapsed."""
    return failing_words(lapsed)


def data_flow_suspend_lapsed(
    *, flow: DataFlow, lapsed: list[Condition], today: dt.date
) -> Suspension | None:
    """Suspend an approved flow whose conditions lapsed; None if it was no longer approved.

    1. Claim the row: UPDATE ... WHERE status = approved; of two watchers one updates it.
    2. Write the audit event (actor: the system) in the same transaction.
    3. E-mail the CSU admins and both organisations' DPOs.
    """
    reason = suspension_reason(lapsed)
    now = timezone.now()
    with transaction.atomic():
        claimed = DataFlow.objects.filter(pk=flow.pk, status=DataFlow.Status.APPROVED).update(
            status=DataFlow.Status.SUSPENDED,
            suspended_by=None,
            suspended_at=now,
            suspension_reason=reason,
            reinstatement_requested_by=None,
            reinstatement_requested_at=None,
            updated_at=now,
        )
        if claimed != 1:
            return None
        flow.refresh_from_db()
        audit_log(
            actor=None,
            action="data_flow.suspended",
            obj=flow,
            details={
                "from": DataFlow.Status.APPROVED,
                "to": DataFlow.Status.SUSPENDED,
                "by": WATCH,
                "reason": reason,
                "conditions": [c.condition for c in lapsed],
            },
        )
    recipients = _recipients([flow])
    _send(
        f"Data flow #{flow.pk} suspended: its assurance lapsed",
        f"The assurance watch suspended data flow #{flow.pk}, {flow}, on {_day(today)}. "
        "No data moves on it until a CSU admin reinstates it, which needs every "
        "condition to hold again and a second CSU admin to agree.\n\n"
        "What lapsed:\n"
        + "".join(f"- {c.label}: {c.detail}\n" for c in lapsed)
        + f"\nThe flow: {_flow_address(flow)}\n",
        recipients,
    )
    return Suspension(flow, reason, [c.condition for c in lapsed], recipients)


_WHAT = {
    "dpia": "the DPIA's review falls overdue past its grace period",
    "sharing_agreement": "the data sharing agreement expires",
    "source_dspt": "the DSPT assessment stops counting",
    "destination_dspt": "the DSPT assessment stops counting",
    "source_ico": "the ICO registration expires",
    "destination_ico": "the ICO registration expires",
}


_ABOUT_MODELS = {
    "dpia": DPIA,
    "agreement": SharingAgreement,
    "dspt": Organisation,
    "ico": Organisation,
}


def _about_object(about: str):
    """Return the thing a reminder is about (e.g. "agreement:12" -> that agreement), or None."""
    kind, _, pk = about.partition(":")
    model = _ABOUT_MODELS.get(kind)
    return model.objects.filter(pk=pk).first() if model and pk.isdigit() else None


def _reminder_due(days_left: int) -> int | None:
    """Return the reminder due with days_left to go (the nearest threshold reached), or None."""
    reached = [d for d in REMINDER_DAYS if 0 < days_left <= d]
    return min(reached) if reached else None


def assurance_reminders_send(*, flows: list[DataFlow], today: dt.date) -> list[Reminder]:
    """Remind the CSU admins and DPOs 90 and 30 days before what the flows stand on lapses.

    One reminder per thing (an agreement, a DPIA, an organisation's DSPT or ICO
    registration) and threshold, claimed by its AssuranceReminder row before it is sent.
    """
    due: dict[tuple[str, dt.date], tuple[Condition, list[DataFlow]]] = {}
    for flow in flows:
        for condition in flow_conditions(flow, today=today):
            if not condition.holds or condition.lapses_on is None or not condition.about:
                continue
            key = (condition.about, condition.lapses_on)
            due.setdefault(key, (condition, []))[1].append(flow)
    sent = []
    for (about, lapses_on), (condition, covered) in sorted(due.items()):
        days = _reminder_due((lapses_on - today).days)
        if days is None:
            continue
        subject = f"{about}:{lapses_on.isoformat()}"
        try:
            with transaction.atomic():
                AssuranceReminder.objects.create(
                    subject=subject, days_before=days, sent_at=timezone.now()
                )
                audit_log(
                    actor=None,
                    action="assurance.reminder_sent",
                    obj=_about_object(about) or covered[0],
                    details={
                        "about": about,
                        "condition": condition.condition,
                        "lapses_on": lapses_on.isoformat(),
                        "days_before": days,
                        "flows": [f.pk for f in covered],
                    },
                )
        except IntegrityError:
            continue  # sent already, by an earlier round or by another watcher
        what = _WHAT[condition.condition]
        recipients = _recipients(covered)
        flows_words = f"{len(covered)} data flow{'s' if len(covered) != 1 else ''}"
        _send(
            f"In {(lapses_on - today).days} days {what}: {flows_words} will stop",
            f"Soon {what}: from {_day(lapses_on)} the assurance watch will suspend "
            "the data flows that stand on it, unless it is renewed first.\n\n"
            f"{condition.label}: {condition.detail}\n\n"
            "The data flows:\n" + "".join(f"- #{f.pk} {f}: {_flow_address(f)}\n" for f in covered),
            recipients,
        )
        sent.append(Reminder(about, days, lapses_on, what, covered, recipients))
    return sent


def assurance_watch(*, today: dt.date | None = None) -> WatchReport:
    """Suspend the approved flows whose assurance lapsed, then send the reminders due."""
    today = today or timezone.localdate()
    flows = _watched_flows()
    report = WatchReport(today=today, checked=len(flows))
    still_approved = []
    for flow in flows:
        lapsed = failing(flow_conditions(flow, today=today))
        if not lapsed:
            still_approved.append(flow)
            continue
        suspension = data_flow_suspend_lapsed(flow=flow, lapsed=lapsed, today=today)
        if suspension is not None:
            report.suspended.append(suspension)
    report.reminders = assurance_reminders_send(flows=still_approved, today=today)
    return report
