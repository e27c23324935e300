"""What a data flow stands on: the one owner of the assurance conditions.

A flow may carry data only while every condition holds (UK GDPR Arts 26, 28, 35;
the Data Security and Protection Toolkit; the ICO's data protection fee):

- ``dpia``: a signed-off DPIA of its programme covers it, its review not overdue by more
  than the grace period (PHM_DPIA_REVIEW_GRACE_DAYS);
- ``sharing_agreement``: an agreement of its programme covers it, names both
  organisations, is signed by every party and is in date today;
- ``source_dspt`` / ``destination_dspt``: each organisation's DSPT is at Standards Met or
  Exceeded for an assessment year that is still current;
- ``source_ico`` / ``destination_ico``: each organisation's ICO registration is in date.

Approving a flow asks these (governance.services.data_flows), the daily watch asks them of
every approved flow (governance.services.watch), pages and the API show them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from django.utils.formats import date_format

from governance.models import DPIA, DataFlow, DSPTStatus, Organisation, SharingAgreement

CONDITIONS = {
    "dpia": "A signed-off DPIA covers the flow",
    "sharing_agreement": "An in-date data sharing agreement, signed by both, covers the flow",
    "source_dspt": "The sender meets the Data Security and Protection Toolkit's standards",
    "destination_dspt": "The recipient meets the Data Security and Protection Toolkit's standards",
    "source_ico": "The sender's ICO registration is in date",
    "destination_ico": "The recipient's ICO registration is in date",
}
DSPT_ASSURED = (DSPTStatus.MET, DSPTStatus.EXCEEDED)


@dataclass(frozen=True)
class Condition:
    condition: str
    holds: bool
    detail: str
    # The day it stops holding, when one is known (reminders count down to it).
    lapses_on: dt.date | None = None
    # What it stands on, e.g. "agreement:12" or "ico:7" (the watch reminds once per thing).
    about: str = ""

    @property
    def label(self) -> str:
        return CONDITIONS[self.condition]

    def as_dict(self) -> dict:
        return {"condition": self.condition, "holds": self.holds, "detail": self.detail}


def _day(value: dt.date) -> str:
    return date_format(value, "j F Y")


def _today(today: dt.date | None) -> dt.date:
    return today or timezone.localdate()


def dspt_year_current_until(year: str) -> dt.date | None:
    """Return the last day an assessment year's status counts: 30 June two years after it starts.

    The toolkit's year 2025-26 is published by 30 June 2026 and stands until the next
    year's deadline, 30 June 2027.
    """
    if not year or len(year) != 7 or not year[:4].isdigit():
        return None
    return dt.date(int(year[:4]) + 2, 6, 30)


def dpia_grace() -> dt.timedelta:
    return dt.timedelta(days=settings.DPIA_REVIEW_GRACE_DAYS)


def _dpia_condition(flow: DataFlow, today: dt.date) -> Condition:
    dpias = list(
        DPIA.objects.filter(programme_id=flow.programme_id, data_flows=flow)
        .exclude(signed_off_at__isnull=True)
        .filter(status__in=[DPIA.Status.SIGNED_OFF, DPIA.Status.UNDER_REVIEW])
        .order_by("-review_date", "-pk")
    )
    if not dpias:
        drafts = DPIA.objects.filter(programme_id=flow.programme_id, data_flows=flow).first()
        if drafts is not None:
            return Condition(
                "dpia",
                False,
                f"The DPIA “{drafts.title}” covering this flow is "
                f"{drafts.get_status_display().lower()}, not signed off.",
            )
        return Condition("dpia", False, "No DPIA covers this flow.")
    dpia = dpias[0]
    lapses_on = dpia.review_date + dpia_grace()
    signed = _day(timezone.localtime(dpia.signed_off_at).date())
    if today > lapses_on:
        return Condition(
            "dpia",
            False,
            f"The DPIA “{dpia.title}” v{dpia.version} was due for review on "
            f"{_day(dpia.review_date)}, more than {settings.DPIA_REVIEW_GRACE_DAYS} days ago.",
            lapses_on,
            f"dpia:{dpia.pk}",
        )
    overdue = " (overdue, within the grace period)" if today > dpia.review_date else ""
    return Condition(
        "dpia",
        True,
        f"DPIA “{dpia.title}” v{dpia.version}, signed off on {signed}; review due "
        f"{_day(dpia.review_date)}{overdue}.",
        lapses_on,
        f"dpia:{dpia.pk}",
    )


def _agreement_problems(agreement: SharingAgreement, flow: DataFlow, today: dt.date) -> list[str]:
    parties = {p.organisation_id: p for p in agreement.parties.all()}
    problems = []
    for organisation in (flow.source, flow.destination):
        party = parties.get(organisation.pk)
        if party is None:
            problems.append(f"does not name {organisation.display_name}")
        elif not party.is_signed:
            problems.append(f"is not signed for {organisation.display_name}")
    if today < agreement.start_date:
        problems.append(f"starts on {_day(agreement.start_date)}")
    if today > agreement.expiry_date:
        problems.append(f"expired on {_day(agreement.expiry_date)}")
    return problems


def _agreement_condition(flow: DataFlow, today: dt.date) -> Condition:
    agreements = list(
        SharingAgreement.objects.filter(programme_id=flow.programme_id, data_flows=flow)
        .prefetch_related("parties")
        .order_by("-expiry_date", "-pk")
    )
    if not agreements:
        return Condition("sharing_agreement", False, "No data sharing agreement covers this flow.")
    refusals = []
    for agreement in agreements:
        problems = _agreement_problems(agreement, flow, today)
        if not problems:
            return Condition(
                "sharing_agreement",
                True,
                f"Agreement “{agreement.title}” v{agreement.version}, in date from "
                f"{_day(agreement.start_date)} until {_day(agreement.expiry_date)}.",
                agreement.expiry_date + dt.timedelta(days=1),
                f"agreement:{agreement.pk}",
            )
        refusals.append(
            f"Agreement “{agreement.title}” v{agreement.version} {' and '.join(problems)}."
        )
    return Condition("sharing_agreement", False, " ".join(refusals))


def _dspt_condition(name: str, organisation: Organisation, today: dt.date) -> Condition:
    who = organisation.display_name
    status = organisation.get_dspt_status_display()
    until = dspt_year_current_until(organisation.dspt_year)
    if organisation.dspt_status == DSPTStatus.NOT_PUBLISHED or not organisation.dspt_year:
        return Condition(name, False, f"{who} has no published DSPT assessment.")
    year = f"{status} for {organisation.dspt_year}"
    if organisation.dspt_status not in DSPT_ASSURED:
        return Condition(name, False, f"{who}: {year}; Standards Met or Exceeded is needed.")
    if until is None or today > until:
        return Condition(
            name,
            False,
            f"{who}: {year}, no longer current (it counted until {_day(until)}).",
            until + dt.timedelta(days=1) if until else None,
            f"dspt:{organisation.pk}",
        )
    published = (
        f", published {_day(organisation.dspt_published_on)}"
        if organisation.dspt_published_on
        else ""
    )
    return Condition(
        name,
        True,
        f"{who}: {year}{published}.",
        until + dt.timedelta(days=1),
        f"dspt:{organisation.pk}",
    )


def _ico_condition(name: str, organisation: Organisation, today: dt.date) -> Condition:
    who = organisation.display_name
    expires = organisation.ico_registration_expires_on
    if not organisation.ico_registration_number:
        return Condition(name, False, f"{who} has no ICO registration number recorded.")
    number = organisation.ico_registration_number
    if expires is None:
        return Condition(name, False, f"{who}: ICO registration {number} has no expiry recorded.")
    if today > expires:
        return Condition(
            name,
            False,
            f"{who}: ICO registration {number} expired on {_day(expires)}.",
            expires + dt.timedelta(days=1),
            f"ico:{organisation.pk}",
        )
    return Condition(
        name,
        True,
        f"{who}: ICO registration {number}, in date until {_day(expires)}.",
        expires + dt.timedelta(days=1),
        f"ico:{organisation.pk}",
    )


def flow_conditions(flow: DataFlow, *, today: dt.date | None = None) -> list[Condition]:
    """Return every assurance condition of the flow, in the order CONDITIONS names them."""
    today = _today(today)
    return [
        _dpia_condition(flow, today),
        _agreement_condition(flow, today),
        _dspt_condition("source_dspt", flow.source, today),
        _dspt_condition("destination_dspt", flow.destination, today),
        _ico_condition("source_ico", flow.source, today),
        _ico_condition("destination_ico", flow.destination, today),
    ]


def failing(conditions: list[Condition]) -> list[Condition]:
    return [c for c in conditions if not c.holds]


def failing_words(conditions: list[Condition]) -> str:
    """Return the details of the conditions that fail, as one sentence list."""
    return " ".join(c.detail for c in failing(conditions))
