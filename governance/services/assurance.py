"""DPIAs and data sharing agreements: draft, advise, sign, review; validate, save and audit.

What a flow stands on is decided in governance.assurance (the conditions); this module only
writes the documents those conditions read. Who may act is checked here too
(PermissionDenied, 403), whoever the caller is; a signatory naming an organisation they do
not act for is bad input naming `organisation` (400).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from governance import permissions
from governance.models import (
    DPIA,
    DataFlow,
    DPIARisk,
    DPIASignOff,
    Organisation,
    Programme,
    SharingAgreement,
    SharingAgreementParty,
    User,
)
from governance.services.core import _changes, _legal_bases
from phm_portal.audit import audit_log
from phm_portal.errors import InvalidInput, NotAllowedNow
from phm_portal.lib.pdf_inspect import _first_look as _pdf_first_look

DPIA_FIELDS = (
    "title",
    "version",
    "description",
    "necessity",
    "residual_risk",
    "ico_consulted_on",
    "ico_consultation_outcome",
    "review_date",
)
AGREEMENT_FIELDS = (
    "title",
    "reference",
    "version",
    "purpose",
    "start_date",
    "review_date",
    "expiry_date",
)
DPIA_EDITABLE = (DPIA.Status.DRAFT, DPIA.Status.UNDER_REVIEW)


# --- shared checks ---------------------------------------------------------------------------
def _clean_document(document: bytes | None, document_name: str) -> tuple[bytes, str, str] | None:
    """Return (bytes, name, sha256) of an uploaded PDF, None when there is none; else refuse."""
    if document is None:
        return None
    document = bytes(document)
    if len(document) > DPIA.MAX_BYTES:
        raise InvalidInput(
            f"The document is larger than {DPIA.MAX_BYTES // (1024 * 1024)} MB.", field="document"
        )
    refusal = _pdf_first_look(document)
    if refusal:
        raise InvalidInput(refusal, field="document")
    name = (document_name or "").strip().replace("/", "_").replace("\\", "_")[:200]
    if not name:
        name = "document.pdf"
    if not name.lower().endswith(".pdf"):
        raise InvalidInput("The document's name ends in .pdf.", field="document_name")
    return document, name, hashlib.sha256(document).hexdigest()


def _attach(obj: DPIA | SharingAgreement, cleaned: tuple[bytes, str, str] | None) -> dict:
    if cleaned is None:
        return {}
    obj.document, obj.document_name, obj.document_sha256 = cleaned
    return {"document": {"name": cleaned[1], "sha256": cleaned[2], "bytes": len(cleaned[0])}}


def _flows_of(programme: Programme, ids: Iterable[Any]) -> list[DataFlow]:
    """Return the programme's flows with these ids, or refuse naming data_flows."""
    try:
        wanted = list(dict.fromkeys(int(i) for i in ids))
    except (TypeError, ValueError):
        raise InvalidInput(
            "Data flows are named by their ids, e.g. [12, 13].", field="data_flows"
        ) from None
    found = {f.pk: f for f in DataFlow.objects.filter(programme=programme, pk__in=wanted)}
    unknown = [str(i) for i in wanted if i not in found]
    if unknown:
        raise InvalidInput(
            f"No data flow of {programme.name} has the id {', '.join(unknown)}.",
            field="data_flows",
        )
    return [found[i] for i in wanted]


def _controllers(programme: Programme) -> list[Organisation]:
    return list(permissions.controllers_of(programme).order_by("name"))


def _check_open(programme: Programme) -> None:
    if not programme.is_open:
        raise NotAllowedNow(
            f"{programme.name} is over ({programme.get_status_display().lower()}): its "
            "assurance documents no longer change."
        )


def _today() -> dt.date:
    return timezone.localdate()


# --- DPIAs -------------------------------------------------------------------------------------
def _clean_risks(risks: Any) -> list[DPIARisk]:
    """Return unsaved risks from a list of {description, likelihood, severity, measure}."""
    if isinstance(risks, str | bytes) or not isinstance(risks, list | tuple):
        raise InvalidInput(
            "Risks are a list of {description, likelihood, severity, measure}.", field="risks"
        )
    cleaned = []
    scales = {
        "likelihood": DPIARisk.Likelihood.values,
        "severity": DPIARisk.Severity.values,
    }
    for n, risk in enumerate(risks, start=1):
        if not isinstance(risk, dict):
            raise InvalidInput(f"Risk {n} is not an object.", field="risks")
        values = {k: str(risk.get(k) or "").strip() for k in ("description", "measure")}
        for key in ("description", "measure"):
            if not values[key]:
                raise InvalidInput(f"Risk {n} needs its {key}.", field="risks")
        for key, known in scales.items():
            if risk.get(key) not in known:
                raise InvalidInput(f"Risk {n}: {key} is one of {', '.join(known)}.", field="risks")
        cleaned.append(
            DPIARisk(
                description=values["description"],
                likelihood=risk["likelihood"],
                severity=risk["severity"],
                measure=values["measure"],
                position=n,
            )
        )
    return cleaned


def _risk_summary(risks: list[DPIARisk]) -> list[dict]:
    return [
        {"description": r.description, "likelihood": r.likelihood, "severity": r.severity}
        for r in risks
    ]


def _check_dpia_dates(dpia: DPIA) -> None:
    today = _today()
    if dpia.ico_consulted_on is not None:
        if dpia.ico_consulted_on > today:
            raise InvalidInput(
                "The ICO cannot have been consulted on a day still to come.",
                field="ico_consulted_on",
            )
        if dpia.review_date and dpia.ico_consulted_on > dpia.review_date:
            raise InvalidInput(
                "The ICO is consulted before the DPIA's review date, not after it.",
                field="ico_consulted_on",
            )
    if dpia.ico_consultation_outcome and dpia.ico_consulted_on is None:
        raise InvalidInput(
            "Say when the ICO was consulted, with its outcome.", field="ico_consulted_on"
        )


def _dpia_fresh(dpia: DPIA) -> DPIA:
    return DPIA.objects.select_related("programme").get(pk=dpia.pk)


def dpia_create(
    *,
    actor: User,
    programme: Programme,
    title: str,
    description: str,
    necessity: str,
    review_date: dt.date,
    version: str = "1.0",
    residual_risk: str = "low",
    data_flow_ids: Iterable[Any] = (),
    risks: Any = (),
    ico_consulted_on: dt.date | None = None,
    ico_consultation_outcome: str = "",
    document: bytes | None = None,
    document_name: str = "",
) -> DPIA:
    """Draft a DPIA of the programme covering named flows: a CSU admin or a controller's DPO."""
    permissions.require_may_draft_dpia(actor, programme)
    _check_open(programme)
    dpia = DPIA(
        programme=programme,
        title=(title or "").strip(),
        version=(version or "").strip(),
        description=(description or "").strip(),
        necessity=(necessity or "").strip(),
        review_date=review_date,
        residual_risk=residual_risk,
        ico_consulted_on=ico_consulted_on,
        ico_consultation_outcome=(ico_consultation_outcome or "").strip(),
        created_by=actor,
    )
    flows = _flows_of(programme, data_flow_ids)
    cleaned_risks = _clean_risks(list(risks))
    attached = _attach(dpia, _clean_document(document, document_name))
    dpia.full_clean(exclude=["document"])
    _check_dpia_dates(dpia)
    with transaction.atomic():
        dpia.save()
        dpia.data_flows.set(flows)
        for risk in cleaned_risks:
            risk.dpia = dpia
        DPIARisk.objects.bulk_create(cleaned_risks)
        audit_log(
            actor=actor,
            action="dpia.created",
            obj=dpia,
            details={
                "programme": programme.slug,
                "title": dpia.title,
                "version": dpia.version,
                "data_flows": [f.pk for f in flows],
                "risks": _risk_summary(cleaned_risks),
                "residual_risk": dpia.residual_risk,
                "review_date": dpia.review_date.isoformat(),
                **attached,
            },
        )
    return dpia


def dpia_update(
    *,
    actor: User,
    dpia: DPIA,
    data: dict,
    risks: Any = None,
    data_flow_ids: Iterable[Any] | None = None,
    document: bytes | None = None,
    document_name: str = "",
) -> DPIA:
    """Change a DPIA in draft or under review (409 otherwise); log what changed.

    Whatever its state, a DPIA without its document may have it attached (the signed PDF
    often comes last); a document once attached is replaced only in a review.
    """
    dpia = _dpia_fresh(dpia)
    permissions.require_may_draft_dpia(actor, dpia.programme)
    had_document = dpia.has_document
    _check_open(dpia.programme)
    data = {k: v for k, v in data.items() if k in DPIA_FIELDS}
    for field in ("title", "version", "description", "necessity", "ico_consultation_outcome"):
        if field in data:
            data[field] = (data[field] or "").strip()
    changed = _changes(dpia, data, DPIA_FIELDS)
    for field in ("review_date", "ico_consulted_on"):
        if field in changed:
            changed[field] = [v.isoformat() if v else None for v in changed[field]]
    flows = None
    if data_flow_ids is not None:
        flows = _flows_of(dpia.programme, data_flow_ids)
        old = sorted(dpia.data_flows.values_list("pk", flat=True))
        if old != sorted(f.pk for f in flows):
            changed["data_flows"] = [old, sorted(f.pk for f in flows)]
    cleaned_risks = None
    if risks is not None:
        cleaned_risks = _clean_risks(risks)
        changed["risks"] = _risk_summary(cleaned_risks)
    changed |= _attach(dpia, _clean_document(document, document_name))
    if dpia.status not in DPIA_EDITABLE and not (set(changed) == {"document"} and not had_document):
        raise NotAllowedNow(
            f"Only a draft DPIA or one under review can change; this one is "
            f"{dpia.get_status_display().lower()}. Start a review first.",
            code="dpia_not_editable",
        )
    if not changed:
        return dpia
    dpia.full_clean(exclude=["document"])
    _check_dpia_dates(dpia)
    with transaction.atomic():
        claimed = DPIA.objects.filter(pk=dpia.pk, status=dpia.status).update(
            updated_at=timezone.now()
        )
        if claimed != 1:
            raise NotAllowedNow("The DPIA changed state meanwhile: look again.")
        dpia.save()
        if flows is not None:
            dpia.data_flows.set(flows)
        if cleaned_risks is not None:
            dpia.risks.all().delete()
            for risk in cleaned_risks:
                risk.dpia = dpia
            DPIARisk.objects.bulk_create(cleaned_risks)
        audit_log(actor=actor, action="dpia.updated", obj=dpia, details={"changed": changed})
    return dpia


def dpia_record_dpo_advice(
    *, actor: User, dpia: DPIA, advice: str, followed: bool, not_followed_reason: str = ""
) -> DPIA:
    """Record a controller's DPO's advice and whether it was followed (and why not).

    A draft moves to "DPO advice recorded"; a DPIA under review stays under review, now
    ready to be signed off again.
    """
    dpia = _dpia_fresh(dpia)
    permissions.require_dpo_of_controller(actor, dpia.programme)
    advice = (advice or "").strip()
    not_followed_reason = (not_followed_reason or "").strip()
    if not advice:
        raise InvalidInput("Write the DPO's advice.", field="advice")
    if not isinstance(followed, bool):
        raise InvalidInput("Say whether the advice was followed (true or false).", field="followed")
    if not followed and not not_followed_reason:
        raise InvalidInput(
            "Say why the DPO's advice was not followed.", field="not_followed_reason"
        )
    if dpia.status not in DPIA_EDITABLE:
        raise NotAllowedNow(
            f"The DPO advises on a draft DPIA or one under review; this one is "
            f"{dpia.get_status_display().lower()}.",
            code="dpia_not_awaiting_advice",
        )
    _check_open(dpia.programme)
    now = timezone.now()
    target = DPIA.Status.DPO_ADVICE if dpia.status == DPIA.Status.DRAFT else dpia.status
    with transaction.atomic():
        claimed = DPIA.objects.filter(pk=dpia.pk, status=dpia.status).update(
            status=target,
            dpo_advice=advice,
            dpo_advice_followed=followed,
            dpo_advice_not_followed_reason="" if followed else not_followed_reason,
            dpo_advice_by=actor,
            dpo_advice_at=now,
            updated_at=now,
        )
        if claimed != 1:
            raise NotAllowedNow("The DPIA changed state meanwhile: look again.")
        dpia.refresh_from_db()
        audit_log(
            actor=actor,
            action="dpia.dpo_advice_recorded",
            obj=dpia,
            details={
                "advice": advice,
                "followed": followed,
                "not_followed_reason": dpia.dpo_advice_not_followed_reason,
                "status": target,
            },
        )
    return dpia


def dpia_sign_off(*, actor: User, dpia: DPIA, organisation: Organisation) -> DPIA:
    """Sign the DPIA off for one controller: its signatory. Signed off once every controller has.

    1. The DPO's advice must be recorded (this round) and, for a high residual risk, the
       ICO consulted (Art 36).
    2. Record the signature (one per controller; a second is a 409).
    3. When every controller of the programme has signed, claim the row -> signed off.
    """
    dpia = _dpia_fresh(dpia)
    permissions.require(actor, "sign_assurance")
    controllers = _controllers(dpia.programme)
    if organisation.pk not in {c.pk for c in controllers}:
        raise InvalidInput(
            f"{organisation.name} is not a controller of {dpia.programme.name}: only its "
            "controllers sign its DPIA off.",
            field="organisation",
        )
    if not permissions.is_member(actor, organisation):
        raise InvalidInput(
            f"You do not act for {organisation.name}: sign for your own organisation.",
            field="organisation",
        )
    ready = dpia.status == DPIA.Status.DPO_ADVICE or (
        dpia.status == DPIA.Status.UNDER_REVIEW and dpia.dpo_advice_at is not None
    )
    if not ready:
        raise NotAllowedNow(
            "The DPIA is signed off once the DPO's advice is recorded; it is "
            f"{dpia.get_status_display().lower()}"
            + (", with no advice yet for this review." if dpia.status in DPIA_EDITABLE else "."),
            code="dpia_not_ready_for_sign_off",
        )
    if dpia.residual_risk == DPIA.ResidualRisk.HIGH and (
        dpia.ico_consulted_on is None or not dpia.ico_consultation_outcome
    ):
        raise NotAllowedNow(
            "The residual risk is high: record when the ICO was consulted and its outcome "
            "before signing off (UK GDPR Article 36).",
            code="dpia_ico_not_consulted",
        )
    _check_open(dpia.programme)
    now = timezone.now()
    with transaction.atomic():
        # Lock the DPIA so two signatories finishing at once make one sign-off.
        locked = DPIA.objects.select_for_update().filter(pk=dpia.pk, status=dpia.status).first()
        if locked is None:
            raise NotAllowedNow("The DPIA changed state meanwhile: look again.")
        if DPIASignOff.objects.filter(dpia=dpia, organisation=organisation).exists():
            raise NotAllowedNow(
                f"The DPIA is already signed off for {organisation.name}.",
                code="already_signed",
            )
        DPIASignOff.objects.create(
            dpia=dpia, organisation=organisation, signatory=actor, signed_at=now
        )
        signed = set(
            DPIASignOff.objects.filter(dpia=dpia).values_list("organisation_id", flat=True)
        )
        complete = all(c.pk in signed for c in controllers)
        if complete:
            DPIA.objects.filter(pk=dpia.pk).update(
                status=DPIA.Status.SIGNED_OFF, signed_off_at=now, updated_at=now
            )
        dpia.refresh_from_db()
        audit_log(
            actor=actor,
            action="dpia.signed_off" if complete else "dpia.signed",
            obj=dpia,
            details={
                "organisation": organisation.ods_code,
                "waiting_for": [c.ods_code for c in controllers if c.pk not in signed],
                "status": dpia.status,
            },
        )
    return dpia


def dpia_start_review(*, actor: User, dpia: DPIA) -> DPIA:
    """Open a signed-off DPIA for review: it still covers its flows until its review date
    (and grace) passes; the DPO advises and the controllers sign it off again."""
    dpia = _dpia_fresh(dpia)
    permissions.require_may_draft_dpia(actor, dpia.programme)
    if dpia.status != DPIA.Status.SIGNED_OFF:
        raise NotAllowedNow(
            f"Only a signed-off DPIA can be reviewed; this one is "
            f"{dpia.get_status_display().lower()}.",
            code="dpia_not_signed_off",
        )
    _check_open(dpia.programme)
    now = timezone.now()
    with transaction.atomic():
        claimed = DPIA.objects.filter(pk=dpia.pk, status=DPIA.Status.SIGNED_OFF).update(
            status=DPIA.Status.UNDER_REVIEW,
            dpo_advice="",
            dpo_advice_followed=None,
            dpo_advice_not_followed_reason="",
            dpo_advice_by=None,
            dpo_advice_at=None,
            updated_at=now,
        )
        if claimed != 1:
            raise NotAllowedNow("The DPIA changed state meanwhile: look again.")
        previous = {
            "advice": dpia.dpo_advice,
            "advice_followed": dpia.dpo_advice_followed,
            "sign_offs": [
                {"organisation": s.organisation.ods_code, "signatory": s.signatory.username}
                for s in dpia.sign_offs.select_related("organisation", "signatory")
            ],
        }
        # The advice and signatures of the last round stay in the audit log; the new round
        # starts empty, while signed_off_at keeps the DPIA standing until it is signed again.
        dpia.sign_offs.all().delete()
        dpia.refresh_from_db()
        audit_log(
            actor=actor, action="dpia.review_started", obj=dpia, details={"previous": previous}
        )
    return dpia


# --- data sharing agreements ---------------------------------------------------------------------
def _parties(programme: Programme, ods_codes: Any) -> list[Organisation]:
    """Return the organisations named, each taking part in the programme; else refuse."""
    if isinstance(ods_codes, str) or not isinstance(ods_codes, list | tuple):
        raise InvalidInput(
            'Parties are a list of ODS codes, e.g. ["A81001", "0AR"].', field="parties"
        )
    codes = list(dict.fromkeys(str(c).strip().upper() for c in ods_codes))
    found = {
        o.ods_code: o
        for o in Organisation.objects.filter(
            ods_code__in=codes, participations__programme=programme
        ).distinct()
    }
    unknown = [c for c in codes if c not in found]
    if unknown:
        raise InvalidInput(
            f"{', '.join(unknown)} {'does' if len(unknown) == 1 else 'do'} not take part in "
            f"{programme.name}.",
            field="parties",
        )
    if len(codes) < 2:
        raise InvalidInput("An agreement has at least two parties.", field="parties")
    return [found[c] for c in codes]


def _check_agreement_dates(agreement: SharingAgreement) -> None:
    if agreement.review_date < agreement.start_date:
        raise InvalidInput("The review date comes after the start date.", field="review_date")
    if agreement.expiry_date < agreement.review_date:
        raise InvalidInput("The expiry date comes after the review date.", field="expiry_date")


def _check_flows_between_parties(flows: list[DataFlow], parties: list[Organisation]) -> None:
    names = {o.pk for o in parties}
    for flow in flows:
        missing = [o for o in (flow.source, flow.destination) if o.pk not in names]
        if missing:
            raise InvalidInput(
                f"Data flow #{flow.pk} involves {missing[0].name}, who is not a party to "
                "the agreement.",
                field="data_flows",
            )


def _agreement_summary(agreement: SharingAgreement, parties, bases, flows) -> dict:
    return {
        "programme": agreement.programme.slug,
        "title": agreement.title,
        "reference": agreement.reference,
        "version": agreement.version,
        "parties": [o.ods_code for o in parties],
        "legal_bases": [b.code for b in bases],
        "data_flows": [f.pk for f in flows],
        "start_date": agreement.start_date.isoformat(),
        "review_date": agreement.review_date.isoformat(),
        "expiry_date": agreement.expiry_date.isoformat(),
    }


def sharing_agreement_create(
    *,
    actor: User,
    programme: Programme,
    title: str,
    purpose: str,
    start_date: dt.date,
    review_date: dt.date,
    expiry_date: dt.date,
    party_ods_codes: Any,
    version: str = "1.0",
    reference: str = "",
    legal_basis_codes: Iterable[str] = (),
    data_flow_ids: Iterable[Any] = (),
    document: bytes | None = None,
    document_name: str = "",
) -> SharingAgreement:
    """Record a data sharing agreement between parties of the programme, covering named flows."""
    parties = _parties(programme, party_ods_codes)
    permissions.require_may_draft_agreement(actor, programme, parties)
    _check_open(programme)
    agreement = SharingAgreement(
        programme=programme,
        title=(title or "").strip(),
        reference=(reference or "").strip(),
        version=(version or "").strip(),
        purpose=(purpose or "").strip(),
        start_date=start_date,
        review_date=review_date,
        expiry_date=expiry_date,
        created_by=actor,
    )
    bases = _legal_bases(legal_basis_codes)
    flows = _flows_of(programme, data_flow_ids)
    _check_flows_between_parties(flows, parties)
    attached = _attach(agreement, _clean_document(document, document_name))
    _check_agreement_dates(agreement)
    agreement.full_clean(exclude=["document"])
    with transaction.atomic():
        agreement.save()
        agreement.legal_bases.set(bases)
        agreement.data_flows.set(flows)
        SharingAgreementParty.objects.bulk_create(
            SharingAgreementParty(agreement=agreement, organisation=o) for o in parties
        )
        audit_log(
            actor=actor,
            action="sharing_agreement.created",
            obj=agreement,
            details=_agreement_summary(agreement, parties, bases, flows) | attached,
        )
    return agreement


def sharing_agreement_update(
    *,
    actor: User,
    agreement: SharingAgreement,
    data: dict,
    party_ods_codes: Any = None,
    legal_basis_codes: Iterable[str] | None = None,
    data_flow_ids: Iterable[Any] | None = None,
    document: bytes | None = None,
    document_name: str = "",
) -> SharingAgreement:
    """Change an agreement no party has signed yet (409 after: record a new version).

    A signed agreement without its document may still have it attached (the signed PDF),
    once.
    """
    agreement = SharingAgreement.objects.select_related("programme").get(pk=agreement.pk)
    current_parties = [p.organisation for p in agreement.parties.select_related("organisation")]
    permissions.require_may_draft_agreement(actor, agreement.programme, current_parties)
    signed = agreement.parties.filter(signed_on__isnull=False).exists()
    had_document = agreement.has_document
    _check_open(agreement.programme)
    data = {k: v for k, v in data.items() if k in AGREEMENT_FIELDS}
    for field in ("title", "reference", "version", "purpose"):
        if field in data:
            data[field] = (data[field] or "").strip()
    changed = _changes(agreement, data, AGREEMENT_FIELDS)
    for field in ("start_date", "review_date", "expiry_date"):
        if field in changed:
            changed[field] = [v.isoformat() if v else None for v in changed[field]]
    parties = current_parties
    if party_ods_codes is not None:
        parties = _parties(agreement.programme, party_ods_codes)
        permissions.require_may_draft_agreement(actor, agreement.programme, parties)
        old = sorted(o.ods_code for o in current_parties)
        if old != sorted(o.ods_code for o in parties):
            changed["parties"] = [old, sorted(o.ods_code for o in parties)]
    bases = None
    if legal_basis_codes is not None:
        bases = _legal_bases(legal_basis_codes)
        old = sorted(agreement.legal_bases.values_list("code", flat=True))
        if old != sorted(b.code for b in bases):
            changed["legal_bases"] = [old, sorted(b.code for b in bases)]
    flows = (
        _flows_of(agreement.programme, data_flow_ids)
        if data_flow_ids is not None
        else list(agreement.data_flows.select_related("source", "destination"))
    )
    if data_flow_ids is not None:
        old = sorted(agreement.data_flows.values_list("pk", flat=True))
        if old != sorted(f.pk for f in flows):
            changed["data_flows"] = [old, sorted(f.pk for f in flows)]
    _check_flows_between_parties(flows, parties)
    changed |= _attach(agreement, _clean_document(document, document_name))
    first_document_only = set(changed) == {"document"} and not had_document
    if signed and not first_document_only:
        raise NotAllowedNow(
            "A party has signed this agreement, so it no longer changes: record a new version.",
            code="agreement_signed",
        )
    if not changed:
        return agreement
    _check_agreement_dates(agreement)
    agreement.full_clean(exclude=["document"])
    with transaction.atomic():
        if (
            not first_document_only
            and SharingAgreementParty.objects.filter(
                agreement=agreement, signed_on__isnull=False
            ).exists()
        ):
            raise NotAllowedNow(
                "A party signed the agreement meanwhile: record a new version.",
                code="agreement_signed",
            )
        agreement.save()
        if bases is not None:
            agreement.legal_bases.set(bases)
        if data_flow_ids is not None:
            agreement.data_flows.set(flows)
        if "parties" in changed:
            agreement.parties.exclude(organisation__in=parties).delete()
            have = set(agreement.parties.values_list("organisation_id", flat=True))
            SharingAgreementParty.objects.bulk_create(
                SharingAgreementParty(agreement=agreement, organisation=o)
                for o in parties
                if o.pk not in have
            )
        audit_log(
            actor=actor,
            action="sharing_agreement.updated",
            obj=agreement,
            details={"changed": changed},
        )
    return agreement


def sharing_agreement_sign(
    *,
    actor: User,
    agreement: SharingAgreement,
    organisation: Organisation,
    signed_on: dt.date | None = None,
) -> SharingAgreement:
    """Sign the agreement for one party: a signatory bound to that party, once."""
    agreement = SharingAgreement.objects.select_related("programme").get(pk=agreement.pk)
    permissions.require(actor, "sign_assurance")
    party = agreement.parties.filter(organisation=organisation).first()
    if party is None:
        raise InvalidInput(
            f"{organisation.name} is not a party to this agreement.", field="organisation"
        )
    if not permissions.is_member(actor, organisation):
        raise InvalidInput(
            f"You do not act for {organisation.name}: sign for your own organisation.",
            field="organisation",
        )
    today = _today()
    signed_on = signed_on or today
    if signed_on > today:
        raise InvalidInput("An agreement is not signed on a day still to come.", field="signed_on")
    if signed_on > agreement.expiry_date:
        raise InvalidInput(
            "The agreement had expired by that day: it cannot have been signed then.",
            field="signed_on",
        )
    _check_open(agreement.programme)
    with transaction.atomic():
        claimed = SharingAgreementParty.objects.filter(pk=party.pk, signed_on__isnull=True).update(
            signatory=actor, signed_on=signed_on
        )
        if claimed != 1:
            raise NotAllowedNow(
                f"The agreement is already signed for {organisation.name}.",
                code="already_signed",
            )
        SharingAgreement.objects.filter(pk=agreement.pk).update(updated_at=timezone.now())
        agreement.refresh_from_db()
        waiting = list(
            agreement.parties.filter(signed_on__isnull=True).values_list(
                "organisation__ods_code", flat=True
            )
        )
        audit_log(
            actor=actor,
            action="sharing_agreement.signed",
            obj=agreement,
            details={
                "organisation": organisation.ods_code,
                "signed_on": signed_on.isoformat(),
                "waiting_for": waiting,
            },
        )
    return agreement
