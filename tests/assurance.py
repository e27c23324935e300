"""A test helper: give a data flow everything it must stand on, so it can be approved.

`assure_flow(flow)` writes, straight to the tables (no audit events, so the tests that
count a flow's history are unchanged), a signed-off DPIA and a signed, in-date data sharing
agreement covering the flow, and sets both organisations' DSPT (Standards Met, for the
assessment year current `today`) and an ICO registration in date. Afterwards
governance.assurance.flow_conditions(flow, today=today) all hold.
"""

from __future__ import annotations

import datetime as dt
import io

from django.utils import timezone
from pypdf import PdfWriter

from governance import permissions
from governance.models import (
    DPIA,
    DataFlow,
    DPIASignOff,
    DSPTStatus,
    Organisation,
    Participation,
    SharingAgreement,
    SharingAgreementParty,
    User,
)


def current_dspt_year(today: dt.date) -> tuple[str, dt.date]:
    """Return an assessment year current on `today` and a publication day already past.

    The year Y-(Y+1) is published by 30 June Y+1 and counts until 30 June Y+2.
    """
    start = today.year - 1 if today >= dt.date(today.year, 7, 1) else today.year - 2
    return f"{start}-{(start + 1) % 100:02d}", dt.date(start + 1, 6, 30)


def signatory_of(organisation: Organisation) -> User:
    """Return the organisation's test signatory (the SIRO), bound to it."""
    user, created = User.objects.get_or_create(
        username=f"signatory-{organisation.ods_code.lower()}",
        defaults={"role": User.Role.SIGNATORY, "email": "siro@example.nhs.uk"},
    )
    if created:
        permissions.bind(user, organisation)
    return user


def assure_organisation(organisation: Organisation, *, today: dt.date | None = None) -> None:
    """Set the organisation's DSPT at Standards Met for the current year and its ICO in date."""
    today = today or timezone.localdate()
    year, published = current_dspt_year(today)
    organisation.dspt_status = DSPTStatus.MET
    organisation.dspt_year = year
    organisation.dspt_published_on = published
    if not organisation.ico_registration_number:
        organisation.ico_registration_number = f"ZA{organisation.pk % 1_000_000:06d}"
    organisation.ico_registration_expires_on = today + dt.timedelta(days=365)
    organisation.save(
        update_fields=[
            "dspt_status",
            "dspt_year",
            "dspt_published_on",
            "ico_registration_number",
            "ico_registration_expires_on",
        ]
    )


def assure_flow(flow: DataFlow, *, today: dt.date | None = None) -> tuple[DPIA, SharingAgreement]:
    """Make every assurance condition of the flow hold on `today` (default: today).

    Return the signed-off DPIA and the signed agreement that now cover it.
    """
    today = today or timezone.localdate()
    given = flow
    flow = DataFlow.objects.select_related("programme", "source", "destination").get(pk=flow.pk)
    programme = flow.programme
    now = timezone.now()
    dpia = DPIA.objects.create(
        programme=programme,
        title=f"DPIA for flow #{flow.pk}",
        status=DPIA.Status.SIGNED_OFF,
        description="Population health management: linking records to offer care.",
        necessity="Only the fields needed, pseudonymised before analysis.",
        review_date=today + dt.timedelta(days=365),
        dpo_advice="Proceed with the measures listed.",
        dpo_advice_followed=True,
        dpo_advice_at=now,
        signed_off_at=now,
    )
    dpia.data_flows.add(flow)
    controllers = Organisation.objects.filter(
        participations__programme=programme,
        participations__role__in=Participation.CONTROLLER_ROLES,
    ).distinct()
    for organisation in controllers:
        DPIASignOff.objects.create(
            dpia=dpia,
            organisation=organisation,
            signatory=signatory_of(organisation),
            signed_at=now,
        )
    agreement = SharingAgreement.objects.create(
        programme=programme,
        title=f"Agreement for flow #{flow.pk}",
        purpose="Population health management.",
        start_date=today - dt.timedelta(days=30),
        review_date=today + dt.timedelta(days=180),
        expiry_date=today + dt.timedelta(days=365),
    )
    agreement.data_flows.add(flow)
    for organisation in (flow.source, flow.destination):
        SharingAgreementParty.objects.create(
            agreement=agreement,
            organisation=organisation,
            signatory=signatory_of(organisation),
            signed_on=today - dt.timedelta(days=30),
        )
        assure_organisation(organisation, today=today)
    # The caller's copy of the flow sees its organisations as they now are.
    for field in ("source", "destination"):
        if DataFlow._meta.get_field(field).is_cached(given):
            getattr(given, field).refresh_from_db()
    return dpia, agreement


def pdf() -> bytes:
    """A one-page blank PDF: the document of a DPIA or an agreement."""
    writer = PdfWriter()
    writer.add_blank_page(100, 100)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
