"""The record of processing activities (UK GDPR Article 30), in the ICO's template columns.

An organisation's record has two parts: what it does as a controller (Art 30(1), the ICO's
"documentation template for controllers") and what it does for controllers as a processor
(Art 30(2), the template for processors). Each activity carries the Article 9 condition and
the DPA 2018 Schedule 1 condition, the DPIA and the data sharing agreements it stands on,
retention, and security measures with the Data Security and Protection Toolkit's status.
JSON as built here; CSV (formula-safe) with one row per activity, lists joined by "; ".
"""

from __future__ import annotations

import io

from django.db.models import Prefetch
from django.utils import dateformat, timezone

from governance.models import (
    DPIA,
    DataFlow,
    LegalBasis,
    Organisation,
    Participation,
    Programme,
    SharingAgreement,
    SharingAgreementParty,
)
from phm_portal.lib import csv_safe

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
# Each column of the CSV and the heading of the ICO's template it answers (the controllers'
# template, Art 30(1); the processors' template, Art 30(2), where the heading differs).
ICO_HEADINGS: dict[str, str] = {
    "article_30": "Record (Article 30(1) controller / Article 30(2) processor)",
    "controller_name": "Name and contact details of the controller",
    "controller_ods_code": "Name and contact details of the controller (ODS code)",
    "controller_website": "Name and contact details of the controller (website)",
    "ico_registration_number": "Name and contact details of the controller (ICO registration)",
    "dpo_name": "Name and contact details of the data protection officer",
    "dpo_email": "Name and contact details of the data protection officer (email)",
    "processor_name": "Name and contact details of the processor",
    "processor_ods_code": "Name and contact details of the processor (ODS code)",
    "processor_dpo_email": "Name and contact details of the processor's data protection officer",
    "programme": "Programme",
    "programme_name": "Programme name",
    "business_function": "Business function",
    "role": "Role",
    "joint_controllers": "Name and contact details of joint controller (if applicable)",
    "purposes": "Purpose of processing",
    "legal_bases": "Lawful bases and conditions",
    "article_6_lawful_basis": "Article 6 lawful basis for processing personal data",
    "article_9_condition": "Article 9 condition for processing special category data",
    "schedule_1_condition": "Data Protection Act 2018 Schedule 1 Condition for processing",
    "categories_of_data_subjects": "Categories of individuals",
    "categories_of_personal_data": "Categories of personal data",
    "categories_of_processing": "Categories of processing",
    "identifiability": "Identifiability",
    "source_of_personal_data": "The source of the personal data (if applicable)",
    "recipients": "Categories of recipients",
    "sharing_agreements": "Link to contract with processor (data sharing agreements)",
    "overseas_transfers": (
        "Names of third countries or international organisations that personal data are "
        "transferred to (if applicable)"
    ),
    "overseas_safeguards": (
        "Safeguards for exceptional transfers of personal data to third countries or "
        "international organisations (if applicable)"
    ),
    "retention": "Retention schedule (if possible)",
    "erasure": "Retention and erasure policy",
    "security_measures": (
        "General description of technical and organisational security measures (if possible)"
    ),
    "dspt": "Data Security and Protection Toolkit status",
    "dpia_required": "Data Protection Impact Assessment required?",
    "dpia": "Data Protection Impact Assessment progress",
    "opt_outs": "Rights available to individuals (opt-outs)",
    "data_flows": "Data flows",
}
ROPA_CSV_COLUMNS = list(ICO_HEADINGS)
RECORD_KINDS = {"controller": "Article 30(1) controller", "processor": "Article 30(2) processor"}
# Article 9(2)(b), (h), (i) and (j) need a condition of Schedule 1 Part 1 (DPA 2018 s10).
NEEDS_SCHEDULE_1 = ("UK-GDPR-9-2-b", "UK-GDPR-9-2-h", "UK-GDPR-9-2-i", "UK-GDPR-9-2-j")


def _day(value) -> str | None:
    return value.isoformat() if value else None


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


def _dspt(organisation: Organisation) -> dict:
    return {
        "name": organisation.name,
        "ods_code": organisation.ods_code,
        "status": organisation.get_dspt_status_display(),
        "year": organisation.dspt_year,
        "published_on": _day(organisation.dspt_published_on),
    }


def _dspt_words(entry: dict) -> str:
    year = f" for {entry['year']}" if entry["year"] else ""
    published = f" (published {entry['published_on']})" if entry["published_on"] else ""
    return f"{entry['name']}: {entry['status']}{year}{published}"


def _assurance_measures(organisations: list[Organisation]) -> list[str]:
    """Return the security measures the assurance adds: the DSPT of each, and the daily watch."""
    return [
        "Data Security and Protection Toolkit: "
        + "; ".join(_dspt_words(_dspt(o)) for o in organisations)
        + ".",
        "Assurance: data moves on a flow only while a signed-off DPIA and a signed, in-date "
        "data sharing agreement cover it and both organisations meet the toolkit's standards "
        "and hold an ICO registration in date; a daily check suspends a flow when one lapses.",
    ]


def _bases(programme: Programme, agreements: list[SharingAgreement]) -> dict[str, list[dict]]:
    """Return the programme's and its agreements' legal bases, by regime."""
    found: dict[str, LegalBasis] = {}
    for basis in programme.legal_bases.all():
        found[basis.code] = basis
    for agreement in agreements:
        for basis in agreement.legal_bases.all():
            found.setdefault(basis.code, basis)
    by_regime: dict[str, list[dict]] = {}
    for basis in sorted(found.values(), key=lambda b: (b.regime, b.code)):
        by_regime.setdefault(basis.regime, []).append(
            {
                "code": basis.code,
                "article": str(basis),
                # As the ICO's column cites it: "Article 9(2)(h)", "Schedule 1 Part 1 paragraph 2".
                "cite": f"Article {basis.article}"
                if basis.regime in (LegalBasis.Regime.UK_GDPR_6, LegalBasis.Regime.UK_GDPR_9)
                else basis.article,
                "title": basis.title,
            }
        )
    return by_regime


def _schedule_1(by_regime: dict[str, list[dict]]) -> list[dict] | str:
    conditions = by_regime.get(LegalBasis.Regime.DPA_2018_SCH1, [])
    if conditions:
        return conditions
    needs = [
        b for b in by_regime.get(LegalBasis.Regime.UK_GDPR_9, []) if b["code"] in NEEDS_SCHEDULE_1
    ]
    if needs:
        return (
            f"Not recorded: {needs[0]['cite']} needs a condition of the Data Protection Act "
            "2018 Schedule 1 Part 1; record it on the programme or its data sharing agreement."
        )
    return []


def _dpias(programme: Programme, flows: list[DataFlow]) -> list[dict]:
    flow_ids = {f.pk for f in flows}
    out = []
    for dpia in programme.dpias.all():
        covers = sorted(f.pk for f in dpia.data_flows.all())
        if flow_ids and not flow_ids & set(covers):
            continue
        out.append(
            {
                "id": dpia.pk,
                "title": dpia.title,
                "version": dpia.version,
                "status": dpia.get_status_display(),
                "signed_off_on": _day(
                    timezone.localtime(dpia.signed_off_at).date() if dpia.signed_off_at else None
                ),
                "review_date": _day(dpia.review_date),
                "residual_risk": dpia.get_residual_risk_display(),
                "data_flows": covers,
            }
        )
    return out


def _agreements(organisation: Organisation, programme: Programme) -> list[SharingAgreement]:
    return [
        a
        for a in programme.sharing_agreements.all()
        if any(p.organisation_id == organisation.pk for p in a.parties.all())
    ]


def _agreement(agreement: SharingAgreement) -> dict:
    parties = list(agreement.parties.all())
    return {
        "id": agreement.pk,
        "title": agreement.title,
        "reference": agreement.reference,
        "version": agreement.version,
        "parties": [p.organisation.ods_code for p in parties],
        "signed_by_every_party": all(p.is_signed for p in parties),
        "start_date": _day(agreement.start_date),
        "review_date": _day(agreement.review_date),
        "expiry_date": _day(agreement.expiry_date),
        "data_flows": sorted(f.pk for f in agreement.data_flows.all()),
    }


def _assurance(organisation: Organisation, programme: Programme, flows: list[DataFlow]) -> dict:
    """Return what the activity stands on: legal bases by regime, its DPIA and agreements."""
    agreements = _agreements(organisation, programme)
    by_regime = _bases(programme, agreements)
    return {
        "article_6_lawful_basis": by_regime.get(LegalBasis.Regime.UK_GDPR_6, []),
        "article_9_condition": by_regime.get(LegalBasis.Regime.UK_GDPR_9, []),
        "schedule_1_condition": _schedule_1(by_regime),
        "dpia": {
            # Large-scale health data, linked across sources: a DPIA is required (Art 35(3)(b)).
            "required": True,
            "assessments": _dpias(programme, flows),
        },
        "sharing_agreements": [_agreement(a) for a in agreements],
    }


def _overseas(programme: Programme) -> dict:
    return {
        "transfer": programme.get_overseas_transfer_display(),
        "safeguards": programme.overseas_transfer_detail
        or (
            "None needed: data stays in the UK."
            if programme.overseas_transfer == Programme.OverseasTransfer.NONE
            else ""
        ),
    }


def _flow_rows(flows: list[DataFlow]) -> list[dict]:
    return [
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
    ]


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
    dspt_of = sorted(
        (roles[i][0].organisation for i in recipient_ids if roles.get(i)), key=lambda o: o.name
    )
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
        "business_function": f"Population health management ({programme.region})",
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
        "overseas_transfers": _overseas(programme),
        "retention": {
            "start_date": programme.start_date.isoformat() if programme.start_date else None,
            "length_weeks": programme.length_weeks,
            "end_date": programme.end_date.isoformat() if programme.end_date else None,
            "statement": _retention(programme),
        },
        "erasure": ERASURE,
        "security_measures": _security_measures(programme, flows)
        + _assurance_measures([organisation, *dspt_of]),
        "dspt": [_dspt(o) for o in [organisation, *dspt_of]],
        "source_of_personal_data": sorted(
            {f.source.name for f in flows if f.source_id != organisation.pk}
        ),
        **_assurance(organisation, programme, flows),
        "opt_outs": opt_outs,
        "data_flows": _flow_rows(flows),
    }


def _processing(organisation: Organisation, programme: Programme, own: list[Participation]) -> dict:
    """Return what the organisation does for the programme's controllers (Art 30(2))."""
    participations = list(programme.participations.all())
    flows = [
        f
        for f in programme.data_flows.all()
        if f.status in EFFECTIVE_FLOW_STATUSES
        and organisation.pk in (f.source_id, f.destination_id)
    ]
    labels = dict(DataFlow.Category.choices)
    controllers = sorted(
        {
            p.organisation.pk: p.organisation
            for p in participations
            if p.role in Participation.CONTROLLER_ROLES
        }.values(),
        key=lambda o: o.name,
    )
    received = sorted(
        {
            f"receives {labels[c].lower()} ({f.get_identifiability_display().lower()}) "
            f"from {f.source.name}"
            for f in flows
            if f.destination_id == organisation.pk
            for c in f.data_categories
        }
    )
    sent = sorted(
        {
            f"sends {labels[c].lower()} ({f.get_identifiability_display().lower()}) "
            f"to {f.destination.name}"
            for f in flows
            if f.source_id == organisation.pk
            for c in f.data_categories
        }
    )
    does = list(dict.fromkeys(label for p in own for label in p.responsibility_labels))
    return {
        "programme": programme.slug,
        "programme_name": programme.name,
        "region": programme.region,
        "business_function": f"Population health management ({programme.region})",
        "role": ", ".join(dict.fromkeys(p.get_role_display() for p in own)),
        "controllers": [
            {
                "name": c.name,
                "ods_code": c.ods_code,
                "website": c.website,
                "ico_registration_number": c.ico_registration_number,
                "dpo_name": c.dpo_name,
                "dpo_email": c.dpo_email,
            }
            for c in controllers
        ],
        "purposes": list(programme.purposes),
        "categories_of_processing": does + received + sent,
        "identifiability": sorted({f.get_identifiability_display() for f in flows}),
        "overseas_transfers": _overseas(programme),
        "retention": {
            "start_date": _day(programme.start_date),
            "length_weeks": programme.length_weeks,
            "end_date": _day(programme.end_date),
            "statement": _retention(programme),
        },
        "erasure": ERASURE,
        "security_measures": _security_measures(
            programme,
            [f for f in programme.data_flows.all() if f.status in EFFECTIVE_FLOW_STATUSES],
        )
        + _assurance_measures([organisation]),
        "dspt": [_dspt(organisation)],
        **_assurance(organisation, programme, flows),
        "data_flows": _flow_rows(flows),
    }


def _participations(organisation: Organisation, roles) -> list[Participation]:
    return list(
        Participation.objects.filter(organisation=organisation, role__in=roles)
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
            Prefetch(
                "programme__dpias",
                queryset=DPIA.objects.prefetch_related("data_flows").order_by("title", "pk"),
            ),
            Prefetch(
                "programme__sharing_agreements",
                queryset=SharingAgreement.objects.prefetch_related(
                    "legal_bases",
                    "data_flows",
                    Prefetch(
                        "parties",
                        queryset=SharingAgreementParty.objects.select_related("organisation"),
                    ),
                ).order_by("title", "pk"),
            ),
        )
        .order_by("programme__name", "role")
    )


def record_of_processing(organisation: Organisation) -> dict:
    """Return the organisation's record of processing: as a controller (UK GDPR Art 30(1))
    and, where it processes for controllers, as a processor (Art 30(2))."""
    as_processor: dict[int, list[Participation]] = {}
    for p in _participations(organisation, Participation.PROCESSOR_ROLES):
        as_processor.setdefault(p.programme_id, []).append(p)
    return {
        "record": "Record of processing activities (UK GDPR Article 30(1) and 30(2))",
        "generated_at": timezone.now().isoformat(),
        "controller": {
            "name": organisation.name,
            "ods_code": organisation.ods_code,
            "kind": organisation.get_kind_display(),
            "part_of": organisation.part_of,
            "postcode": organisation.postcode,
            "website": organisation.website,
            "ico_registration_number": organisation.ico_registration_number,
            "ico_registration_expires_on": _day(organisation.ico_registration_expires_on),
            "dspt": _dspt(organisation),
        },
        "data_protection_officer": {"name": organisation.dpo_name, "email": organisation.dpo_email},
        "activities": [
            _activity(organisation, p)
            for p in _participations(organisation, Participation.CONTROLLER_ROLES)
        ],
        "processing_for_controllers": [
            _processing(organisation, own[0].programme, own) for own in as_processor.values()
        ],
        "columns": [{"key": k, "heading": h} for k, h in ICO_HEADINGS.items()],
    }


def _names(items: list[dict] | str) -> str:
    if isinstance(items, str):
        return items
    return "; ".join(f"{b['cite']}: {b['title']}" for b in items)


def _assurance_cells(a: dict) -> dict:
    dpias = a["dpia"]["assessments"]
    return {
        "article_6_lawful_basis": _names(a["article_6_lawful_basis"]),
        "article_9_condition": _names(a["article_9_condition"]),
        "schedule_1_condition": _names(a["schedule_1_condition"]),
        "dpia_required": "Yes" if a["dpia"]["required"] else "No",
        "dpia": "; ".join(
            f"{d['title']} v{d['version']}: {d['status']}"
            + (f", signed off {d['signed_off_on']}" if d["signed_off_on"] else "")
            + f", review due {d['review_date']}"
            for d in dpias
        )
        or "None recorded",
        "sharing_agreements": "; ".join(
            f"{s['title']} v{s['version']}"
            + (f" ({s['reference']})" if s["reference"] else "")
            + f", {s['start_date']} to {s['expiry_date']}, review {s['review_date']}, "
            + (
                "signed by every party"
                if s["signed_by_every_party"]
                else "not signed by every party"
            )
            for s in a["sharing_agreements"]
        )
        or "None recorded",
        "dspt": "; ".join(_dspt_words(d) for d in a["dspt"]),
        "overseas_transfers": a["overseas_transfers"]["transfer"],
        "overseas_safeguards": a["overseas_transfers"]["safeguards"],
        "retention": a["retention"]["statement"],
        "erasure": a["erasure"],
        "security_measures": "; ".join(a["security_measures"]),
        "purposes": "; ".join(a["purposes"]),
        "business_function": a["business_function"],
        "programme": a["programme"],
        "programme_name": a["programme_name"],
        "identifiability": "; ".join(a["identifiability"]),
        "data_flows": "; ".join(
            f"#{f['id']} {f['source']} -> {f['destination']}: "
            f"{'+'.join(f['data_categories'])}, {f['identifiability']}, {f['status']}"
            for f in a["data_flows"]
        ),
    }


def record_of_processing_csv(record: dict) -> str:
    """Return the record as CSV: one row per activity, controller's (Art 30(1)) then processor's
    (Art 30(2)); lists joined by "; ". Formula-safe: a cell never starts a formula."""
    out = io.StringIO()
    writer = csv_safe.DictWriter(out, fieldnames=ROPA_CSV_COLUMNS)
    writer.writeheader()
    controller, dpo = record["controller"], record["data_protection_officer"]
    for a in record["activities"]:
        writer.writerow(
            {
                "article_30": RECORD_KINDS["controller"],
                "controller_name": controller["name"],
                "controller_ods_code": controller["ods_code"],
                "controller_website": controller["website"],
                "ico_registration_number": controller["ico_registration_number"],
                "dpo_name": dpo["name"],
                "dpo_email": dpo["email"],
                "role": a["role"] + (" (lead)" if a["is_lead"] else ""),
                "joint_controllers": "; ".join(a["joint_controllers"]),
                "legal_bases": "; ".join(f"{b['article']}: {b['title']}" for b in a["legal_bases"]),
                "categories_of_data_subjects": "; ".join(a["categories_of_data_subjects"]),
                "categories_of_personal_data": "; ".join(a["categories_of_personal_data"]),
                "source_of_personal_data": "; ".join(a["source_of_personal_data"]),
                "recipients": "; ".join(
                    f"{r['name']} ({', '.join(r['roles'])})" for r in a["recipients"]
                ),
                "opt_outs": "; ".join(a["opt_outs"]),
                **_assurance_cells(a),
            }
        )
    for a in record.get("processing_for_controllers", []):
        controllers = a["controllers"]
        writer.writerow(
            {
                "article_30": RECORD_KINDS["processor"],
                "controller_name": "; ".join(c["name"] for c in controllers),
                "controller_ods_code": "; ".join(c["ods_code"] for c in controllers),
                "controller_website": "; ".join(c["website"] for c in controllers if c["website"]),
                "ico_registration_number": "; ".join(
                    c["ico_registration_number"]
                    for c in controllers
                    if c["ico_registration_number"]
                ),
                "dpo_name": "; ".join(c["dpo_name"] for c in controllers if c["dpo_name"]),
                "dpo_email": "; ".join(c["dpo_email"] for c in controllers if c["dpo_email"]),
                "processor_name": controller["name"],
                "processor_ods_code": controller["ods_code"],
                "processor_dpo_email": dpo["email"],
                "role": a["role"],
                "categories_of_processing": "; ".join(a["categories_of_processing"]),
                **_assurance_cells(a),
            }
        )
    return out.getvalue()
