"""Reads of the governance app that are more than one line."""

from __future__ import annotations

import io

from django.db.models import Prefetch, Q, QuerySet
from django.utils import dateformat, timezone

from governance import permissions
from governance.models import ApiToken, DataFlow, Organisation, Participation, Programme, User
from phm_portal.lib import csv_safe
from phm_portal.models import AuditEvent


def csu_admin_emails() -> list[str]:
    """Return the e-mail addresses of the active CSU admins (who are told of what goes wrong)."""
    return sorted(
        User.objects.filter(role=User.Role.CSU_ADMIN, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )


def api_tokens_live(*, user: User) -> list[ApiToken]:
    """Return the person's API tokens that work now (ApiToken.refusal), newest first."""
    now = timezone.now()
    stamp = ApiToken.credentials_stamp_of(user)
    tokens = ApiToken.objects.filter(user=user, expires_at__gt=now).select_related("user")
    return [
        t for t in tokens.order_by("-created_at", "-pk") if t.refusal(now=now, stamp=stamp) is None
    ]


def organisation_search(query: str) -> QuerySet[Organisation]:
    """Return organisations whose name contains, ODS code equals, or postcode starts with the query."""
    query = query.strip()
    qs = Organisation.objects.order_by("name")
    if query:
        qs = qs.filter(
            Q(name__icontains=query) | Q(ods_code__iexact=query) | Q(postcode__istartswith=query)
        )
    return qs


def programme_with_participants(slug: str) -> Programme | None:
    """Return the programme with its participants and legal bases fetched in one go."""
    return (
        Programme.objects.filter(slug=slug)
        .prefetch_related(
            "legal_bases",
            Prefetch(
                "participations",
                queryset=Participation.objects.select_related("organisation").order_by(
                    "role", "organisation__name"
                ),
            ),
        )
        .first()
    )


def participants_by_role(programme: Programme) -> dict[str, list[Participation]]:
    """Return the programme's participations grouped by role label, in role order."""
    grouped: dict[str, list[Participation]] = {}
    order = list(Participation.Role.values)
    for p in sorted(
        programme.participations.all(), key=lambda p: (order.index(p.role), p.organisation.name)
    ):
        grouped.setdefault(p.get_role_display(), []).append(p)
    return grouped


# --- data flows ------------------------------------------------------------------
FLOW_RELATED = ("programme", "source", "destination", "created_by", "submitted_by", "decided_by")


def data_flow_list(
    user: User,
    *,
    programme: str = "",
    status: str = "",
    organisation: str = "",
    source: str = "",
    destination: str = "",
) -> QuerySet[DataFlow]:
    """Return the flows the person may see, filtered by programme slug, status and ODS codes.

    `organisation` matches either end of a flow; `source` and `destination` one end each.
    Flows awaiting decision come oldest first (the queue); the rest by programme and parties.
    """
    qs = (
        permissions.data_flows_visible_to(user)
        .select_related(*FLOW_RELATED)
        .prefetch_related("legal_bases")
    )
    if programme:
        qs = qs.filter(programme__slug=programme)
    if status:
        qs = qs.filter(status=status)
    if organisation:
        ods = organisation.strip().upper()
        qs = qs.filter(Q(source__ods_code=ods) | Q(destination__ods_code=ods))
    if source:
        qs = qs.filter(source__ods_code=source.strip().upper())
    if destination:
        qs = qs.filter(destination__ods_code=destination.strip().upper())
    if status == DataFlow.Status.SUBMITTED:
        return qs.order_by("submitted_at", "pk")
    return qs.order_by("programme__name", "source__name", "destination__name", "pk")


def data_flow_history(flow: DataFlow) -> QuerySet[AuditEvent]:
    """Return the flow's audit events, oldest first: its history has one source of truth."""
    return AuditEvent.objects.filter(
        object_type=DataFlow._meta.label_lower, object_id=str(flow.pk)
    ).order_by("seq")


def programme_flows_for_map(programme: Programme, user: User) -> list[DataFlow]:
    """Return the programme's flows for its picture: every proposed flow, and the drafts the person may see."""
    visible_drafts = permissions.data_flows_visible_to(user).filter(
        programme=programme, status=DataFlow.Status.DRAFT
    )
    return list(
        DataFlow.objects.filter(programme=programme)
        .filter(~Q(status=DataFlow.Status.DRAFT) | Q(pk__in=visible_drafts.values("pk")))
        .select_related("source", "destination")
        .order_by("source__name", "destination__name", "pk")
    )


# --- the record of processing (UK GDPR Article 30(1)) ---------------------------------
# Flows that are or were in effect: what the organisation processes, or processed.
EFFECTIVE_FLOW_STATUSES = (
    DataFlow.Status.APPROVED,
    DataFlow.Status.SUSPENDED,
    DataFlow.Status.CLOSED,
)
DATA_SUBJECTS = {
    DataFlow.Category.GP: "Patients registered with the GP practices taking part",
    DataFlow.Category.HOSPITAL: "People who received hospital care",
    DataFlow.Category.COMMUNITY: "People who received community health services",
    DataFlow.Category.MENTAL_HEALTH: "People who received mental health services",
    DataFlow.Category.SOCIAL_CARE: "People who received social care from the local authority",
    DataFlow.Category.NATIONAL: "People in the national data sets held by NHS Digital",
}
ERASURE = (
    "At the end of the programme every extract, pseudonymised output and encryption key held "
    "for it is destroyed (crypto-shredding: without the keys any missed copy is unreadable), "
    "and a data destruction certificate is sent to every controller."
)
ROPA_CSV_COLUMNS = [
    "controller_name",
    "controller_ods_code",
    "controller_website",
    "ico_registration_number",
    "dpo_name",
    "dpo_email",
    "programme",
    "programme_name",
    "role",
    "joint_controllers",
    "purposes",
    "legal_bases",
    "categories_of_data_subjects",
    "categories_of_personal_data",
    "identifiability",
    "recipients",
    "overseas_transfers",
    "overseas_safeguards",
    "retention",
    "erasure",
    "security_measures",
    "opt_outs",
    "data_flows",
]


def _retention(programme: Programme) -> str:
    if programme.length_weeks and programme.end_date:
        return (
            f"Kept for the {programme.length_weeks} weeks of the programme, from "
            f"{dateformat.format(programme.start_date, 'j F Y')} until "
            f"{dateformat.format(programme.end_date, 'j F Y')}, then destroyed."
        )
    if programme.length_weeks:
        return f"Kept for the {programme.length_weeks} weeks of the programme, then destroyed."
    return "Kept until the programme ends (its length is not stated), then destroyed."


def _security_measures(programme: Programme, flows: list[DataFlow]) -> list[str]:
    participations = list(programme.participations.all())
    processors = {
        p.organisation_id for p in participations if p.role in Participation.PROCESSOR_ROLES
    }
    # Who pseudonymises: named for it, or receiving identifiable data and passing on less.
    receives_identifiable = {f.destination_id for f in flows if f.identifiability == "identifiable"}
    passes_on_less = {f.source_id for f in flows if f.identifiability != "identifiable"}
    pseudonymisers = [
        p.organisation.display_name
        for p in participations
        if Participation.Responsibility.PSEUDONYMISE in p.responsibilities
        or (
            p.organisation_id in receives_identifiable & passes_on_less
            and p.organisation_id in processors
        )
    ]
    receivers = sorted(
        {
            f.destination.display_name
            for f in flows
            if f.identifiability != "identifiable" and f.destination_id in processors
        }
    )
    who = (
        " and ".join(dict.fromkeys(pseudonymisers))
        or "The processor that receives identifiable data"
    )
    measures = [
        f"Pseudonymisation: {who} removes direct identifiers and replaces the NHS number with "
        "a keyed pseudonym (HMAC-SHA256 under the programme's own key)"
        + (f" before the data reaches {', '.join(receivers)}." if receivers else "."),
        "Encryption at rest: every extract and output is encrypted (AES-256-GCM) under a fresh "
        "data key, itself wrapped by a key-encryption key held apart from the data.",
        "Access control: people act only for the organisations they are bound to, by role; data "
        "moves only on flows approved by a CSU admin other than the person who submitted them.",
        "Audit: every sensitive action (approvals, uploads, pseudonymisation, re-identification, "
        "destruction) is written to a hash-chained audit log that can be verified.",
    ]
    return measures


def _activity(organisation: Organisation, participation: Participation) -> dict:
    programme = participation.programme
    participations = list(programme.participations.all())
    flows = [f for f in programme.data_flows.all() if f.status in EFFECTIVE_FLOW_STATUSES]
    categories = [c for c in DataFlow.Category.values if any(c in f.data_categories for f in flows)]
    labels = dict(DataFlow.Category.choices)
    roles: dict[int, list[Participation]] = {}
    for p in participations:
        roles.setdefault(p.organisation_id, []).append(p)
    recipient_ids = {f.destination_id for f in flows} | {
        p.organisation_id
        for p in participations
        if p.role
        in (
            Participation.Role.PROCESSOR,
            Participation.Role.SUB_PROCESSOR,
            Participation.Role.RECIPIENT,
        )
    }
    # Controllers share under their joint arrangement (listed apart), so they are not recipients.
    recipient_ids -= {
        p.organisation_id for p in participations if p.role in Participation.CONTROLLER_ROLES
    }
    recipient_ids.discard(organisation.pk)
    recipients = []
    for org_id in recipient_ids:
        own = roles.get(org_id, [])
        if not own:
            continue
        org = own[0].organisation
        recipients.append(
            {
                "name": org.name,
                "ods_code": org.ods_code,
                "roles": [p.get_role_display() for p in own],
                "does": [label for p in own for label in p.responsibility_labels],
                "receives": sorted(
                    {
                        f"{labels[c]} ({f.get_identifiability_display().lower()})"
                        for f in flows
                        if f.destination_id == org_id
                        for c in f.data_categories
                    }
                ),
            }
        )
    recipients.sort(key=lambda r: r["name"])
    opt_outs = [
        "Type 1 opt-outs are applied"
        if programme.type1_opt_out_applies
        else "Type 1 opt-outs do not apply",
        "National data opt-outs are applied"
        if programme.national_opt_out_applies
        else f"The national data opt-out does not apply: {programme.national_opt_out_exemption}",
    ]
    return {
        "programme": programme.slug,
        "programme_name": programme.name,
        "region": programme.region,
        "role": participation.get_role_display(),
        "is_lead": participation.is_lead,
        "joint_controllers": sorted(
            {
                f"{p.organisation.name} ({p.organisation.ods_code})"
                for p in participations
                if p.role in Participation.CONTROLLER_ROLES and p.organisation_id != organisation.pk
            }
        ),
        "purposes": list(programme.purposes),
        "legal_bases": [
            {"code": b.code, "article": str(b), "title": b.title}
            for b in programme.legal_bases.all()
        ],
        "categories_of_data_subjects": [DATA_SUBJECTS[c] for c in categories],
        "categories_of_personal_data": [labels[c] for c in categories],
        "identifiability": sorted({f.get_identifiability_display() for f in flows}),
        "recipients": recipients,
        "overseas_transfers": {
            "transfer": programme.get_overseas_transfer_display(),
            "safeguards": programme.overseas_transfer_detail
            or (
                "None needed: data stays in the UK."
                if programme.overseas_transfer == Programme.OverseasTransfer.NONE
                else ""
            ),
        },
        "retention": {
            "start_date": programme.start_date.isoformat() if programme.start_date else None,
            "length_weeks": programme.length_weeks,
            "end_date": programme.end_date.isoformat() if programme.end_date else None,
            "statement": _retention(programme),
        },
        "erasure": ERASURE,
        "security_measures": _security_measures(programme, flows),
        "opt_outs": opt_outs,
        "data_flows": [
            {
                "id": f.pk,
                "source": f.source.ods_code,
                "destination": f.destination.ods_code,
                "data_categories": f.data_categories,
                "identifiability": f.identifiability,
                "status": f.status,
                "legal_bases": [b.code for b in f.legal_bases.all()],
                "dpia_reference": f.dpia_reference,
                "dsa_reference": f.dsa_reference,
            }
            for f in flows
        ],
    }


def record_of_processing(organisation: Organisation) -> dict:
    """Return the organisation's record of processing as a controller (UK GDPR Art 30(1))."""
    participations = (
        Participation.objects.filter(
            organisation=organisation, role__in=Participation.CONTROLLER_ROLES
        )
        .select_related("programme")
        .prefetch_related(
            "programme__legal_bases",
            Prefetch(
                "programme__participations",
                queryset=Participation.objects.select_related("organisation"),
            ),
            Prefetch(
                "programme__data_flows",
                queryset=DataFlow.objects.select_related("source", "destination")
                .prefetch_related("legal_bases")
                .order_by("pk"),
            ),
        )
        .order_by("programme__name")
    )
    return {
        "record": "Record of processing activities (UK GDPR Article 30(1))",
        "generated_at": timezone.now().isoformat(),
        "controller": {
            "name": organisation.name,
            "ods_code": organisation.ods_code,
            "kind": organisation.get_kind_display(),
            "part_of": organisation.part_of,
            "postcode": organisation.postcode,
            "website": organisation.website,
            "ico_registration_number": organisation.ico_registration_number,
        },
        "data_protection_officer": {"name": organisation.dpo_name, "email": organisation.dpo_email},
        "activities": [_activity(organisation, p) for p in participations],
    }


def record_of_processing_csv(record: dict) -> str:
    """Return the record as CSV: one row per processing activity, lists joined by "; "."""
    out = io.StringIO()
    writer = csv_safe.DictWriter(out, fieldnames=ROPA_CSV_COLUMNS)
    writer.writeheader()
    controller, dpo = record["controller"], record["data_protection_officer"]
    for a in record["activities"]:
        writer.writerow(
            {
                "controller_name": controller["name"],
                "controller_ods_code": controller["ods_code"],
                "controller_website": controller["website"],
                "ico_registration_number": controller["ico_registration_number"],
                "dpo_name": dpo["name"],
                "dpo_email": dpo["email"],
                "programme": a["programme"],
                "programme_name": a["programme_name"],
                "role": a["role"] + (" (lead)" if a["is_lead"] else ""),
                "joint_controllers": "; ".join(a["joint_controllers"]),
                "purposes": "; ".join(a["purposes"]),
                "legal_bases": "; ".join(f"{b['article']}: {b['title']}" for b in a["legal_bases"]),
                "categories_of_data_subjects": "; ".join(a["categories_of_data_subjects"]),
                "categories_of_personal_data": "; ".join(a["categories_of_personal_data"]),
                "identifiability": "; ".join(a["identifiability"]),
                "recipients": "; ".join(
                    f"{r['name']} ({', '.join(r['roles'])})" for r in a["recipients"]
                ),
                "overseas_transfers": a["overseas_transfers"]["transfer"],
                "overseas_safeguards": a["overseas_transfers"]["safeguards"],
                "retention": a["retention"]["statement"],
                "erasure": a["erasure"],
                "security_measures": "; ".join(a["security_measures"]),
                "opt_outs": "; ".join(a["opt_outs"]),
                "data_flows": "; ".join(
                    f"#{f['id']} {f['source']} -> {f['destination']}: "
                    f"{'+'.join(f['data_categories'])}, {f['identifiability']}, {f['status']}"
                    for f in a["data_flows"]
                ),
            }
        )
    return out.getvalue()
