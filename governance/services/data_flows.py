"""Data flows and their approval workflow (four eyes): validate, claim the row, audit.

Every transition claims the row with a conditional update on its current state, so
two admins deciding at once produce one decision; the loser gets NotAllowedNow (409).
Who may act is checked here too (PermissionDenied, 403), whoever the caller is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from governance import assurance, permissions
from governance.models import DataFlow, Organisation, Participation, Programme, User
from governance.services.core import _changes, _legal_bases
from phm_portal.audit import audit_log
from phm_portal.errors import InvalidInput, NotAllowedNow

DATA_FLOW_FIELDS = (
    "programme",
    "source",
    "destination",
    "data_categories",
    "identifiability",
    "purpose",
    "dpia_reference",
    "dsa_reference",
)
TEXT_FIELDS = ("purpose", "dpia_reference", "dsa_reference")

# A new flow may not repeat one of these (rejected and closed flows are history).
STANDING_STATUSES = (
    DataFlow.Status.DRAFT,
    DataFlow.Status.SUBMITTED,
    DataFlow.Status.APPROVED,
    DataFlow.Status.SUSPENDED,
)
PAST_TENSE = {
    "submit": "submitted",
    "approve": "approved",
    "reject": "rejected",
    "suspend": "suspended",
    "reinstate": "reinstated",
    "close": "closed",
}
ASSURANCE_REFUSAL = "assurance_conditions_fail"


def _status_label(status: str | None) -> str:
    return dict(DataFlow.Status.choices).get(status, str(status)).lower()


def _clean_categories(categories: Any) -> list[str]:
    """Return the categories in the catalogue's order, or refuse naming data_categories."""
    if isinstance(categories, str) or not isinstance(categories, list | tuple):
        raise InvalidInput('Data categories are a list, e.g. ["gp"].', field="data_categories")
    known = list(DataFlow.Category.values)
    unknown = [str(c) for c in categories if c not in known]
    if unknown:
        raise InvalidInput(
            f"Unknown data category: {', '.join(unknown)}. Known: {', '.join(known)}.",
            field="data_categories",
        )
    if not categories:
        raise InvalidInput("Name at least one category of data.", field="data_categories")
    return [c for c in known if c in categories]


def _check_parties(programme: Programme, source: Organisation, destination: Organisation) -> None:
    if source.pk == destination.pk:
        raise InvalidInput(
            "A flow goes from one organisation to another, not to itself.", field="destination"
        )
    taking_part = set(
        Participation.objects.filter(
            programme=programme, organisation__in=[source, destination]
        ).values_list("organisation_id", flat=True)
    )
    for field, organisation in (("source", source), ("destination", destination)):
        if organisation.pk not in taking_part:
            raise InvalidInput(
                f"{organisation.name} does not take part in {programme.name}.", field=field
            )


def _check_programme_open(programme: Programme, doing: str) -> None:
    if not programme.is_open:
        raise NotAllowedNow(
            f"{programme.name} is over ({programme.get_status_display().lower()}): "
            f"no data flow can be {doing} in it now."
        )


def _check_not_repeated(flow: DataFlow) -> None:
    """Refuse a flow that repeats the data of a standing flow between the same two organisations."""
    others = (
        DataFlow.objects.filter(
            programme=flow.programme,
            source=flow.source,
            destination=flow.destination,
            identifiability=flow.identifiability,
            status__in=STANDING_STATUSES,
        )
        .exclude(pk=flow.pk)
        .order_by("pk")
    )
    for other in others:
        overlap = [c for c in flow.data_categories if c in other.data_categories]
        if overlap:
            labels = dict(DataFlow.Category.choices)
            raise InvalidInput(
                f"Data flow #{other.pk} ({_status_label(other.status)}) already carries "
                f"{', '.join(labels[c].lower() for c in overlap)} from {flow.source.name} to "
                f"{flow.destination.name} ({flow.get_identifiability_display().lower()}).",
                field="data_categories",
            )


def _summary(flow: DataFlow) -> dict:
    return {
        "programme": flow.programme.slug,
        "source": flow.source.ods_code,
        "destination": flow.destination.ods_code,
        "data_categories": flow.data_categories,
        "identifiability": flow.identifiability,
        "legal_bases": sorted(flow.legal_bases.values_list("code", flat=True)),
        "dpia_reference": flow.dpia_reference,
        "dsa_reference": flow.dsa_reference,
    }


def data_flow_create(
    *,
    actor: User,
    programme: Programme,
    source: Organisation,
    destination: Organisation,
    data_categories: list[str],
    identifiability: str,
    legal_basis_codes: Iterable[str] = (),
    purpose: str = "",
    dpia_reference: str = "",
    dsa_reference: str = "",
) -> DataFlow:
    """Draft a data flow between two organisations that take part in the programme.

    A CSU admin may draft any flow; a DPO only one from their own organisation.
    """
    permissions.require_may_draft_data_flow(actor, source)
    _check_programme_open(programme, "proposed")
    flow = DataFlow(
        programme=programme,
        source=source,
        destination=destination,
        data_categories=_clean_categories(data_categories),
        identifiability=identifiability,
        purpose=(purpose or "").strip(),
        dpia_reference=(dpia_reference or "").strip(),
        dsa_reference=(dsa_reference or "").strip(),
        created_by=actor,
    )
    _check_parties(programme, source, destination)
    bases = _legal_bases(legal_basis_codes)
    flow.full_clean()
    _check_not_repeated(flow)
    with transaction.atomic():
        flow.save()
        flow.legal_bases.set(bases)
        audit_log(actor=actor, action="data_flow.created", obj=flow, details=_summary(flow))
    return flow


def data_flow_update(
    *,
    actor: User,
    flow: DataFlow,
    data: dict,
    legal_basis_codes: Iterable[str] | None = None,
) -> DataFlow:
    """Change a draft flow; once submitted it no longer changes (409)."""
    flow = DataFlow.objects.select_related("programme", "source", "destination").get(pk=flow.pk)
    permissions.require_data_flow_action(actor, flow, "edit")
    if flow.status != DataFlow.Status.DRAFT:
        raise NotAllowedNow(
            f"Only a draft flow can change; this one is {_status_label(flow.status)}."
        )
    data = {k: v for k, v in data.items() if k in DATA_FLOW_FIELDS}
    if "data_categories" in data:
        data["data_categories"] = _clean_categories(data["data_categories"])
    for field in TEXT_FIELDS:
        if field in data:
            data[field] = (data[field] or "").strip()
    if "source" in data and data["source"] != flow.source:
        permissions.require_may_draft_data_flow(actor, data["source"])
    changed = _changes(flow, data, DATA_FLOW_FIELDS)
    bases = None
    if legal_basis_codes is not None:
        bases = _legal_bases(legal_basis_codes)
        old = sorted(flow.legal_bases.values_list("code", flat=True))
        new = sorted(b.code for b in bases)
        if old != new:
            changed["legal_bases"] = [old, new]
    if not changed:
        return flow
    _check_programme_open(flow.programme, "changed")
    _check_parties(flow.programme, flow.source, flow.destination)
    flow.full_clean()
    _check_not_repeated(flow)
    with transaction.atomic():
        fields = {f: getattr(flow, f) for f in changed if f != "legal_bases"}
        claimed = DataFlow.objects.filter(pk=flow.pk, status=DataFlow.Status.DRAFT).update(
            updated_at=timezone.now(), **fields
        )
        if claimed != 1:
            raise NotAllowedNow("The flow was submitted meanwhile: only a draft flow can change.")
        if bases is not None:
            flow.legal_bases.set(bases)
        flow.refresh_from_db()
        audit_log(actor=actor, action="data_flow.updated", obj=flow, details={"changed": changed})
    return flow


def _not_now(action: str, current: str | None) -> NotAllowedNow:
    sources, _ = DataFlow.TRANSITIONS[action]
    allowed = " or ".join(_status_label(s) for s in sources)
    return NotAllowedNow(
        f"This flow cannot be {PAST_TENSE[action]} now: it is {_status_label(current)}. "
        f"Only a flow that is {allowed} can be {PAST_TENSE[action]}."
    )


def _transition(
    *,
    actor: User,
    flow: DataFlow,
    action: str,
    now: dt.datetime,
    fields: dict | None = None,
    details: dict | None = None,
    needs_open_programme: bool = False,
    gate: Callable[[DataFlow], None] | None = None,
    claim_filter: dict | None = None,
) -> DataFlow:
    """Move the flow along `action` if its state in the database allows, and audit it.

    1. Read the flow afresh and check who may act (403), and the programme (409).
    2. Ask the gate, if any (the assurance conditions: 409 naming each that fails).
    3. Claim the row: UPDATE ... WHERE status = <a state the action starts from>
       (and `claim_filter`); exactly one of two concurrent callers updates a row.
    4. Write the audit event in the same transaction.
    """
    current = DataFlow.objects.select_related(
        "programme", "created_by", "source", "destination"
    ).get(pk=flow.pk)
    permissions.require_data_flow_action(actor, current, action)
    sources, target = DataFlow.TRANSITIONS[action]
    if current.status not in sources:
        raise _not_now(action, current.status)
    if needs_open_programme:
        _check_programme_open(current.programme, PAST_TENSE[action])
    if gate is not None:
        gate(current)
    with transaction.atomic():
        left = None
        for source in sources:
            claimed = DataFlow.objects.filter(
                pk=flow.pk, status=source, **(claim_filter or {})
            ).update(status=target, updated_at=now, **(fields or {}))
            if claimed == 1:
                left = source
                break
        if left is None:
            status = DataFlow.objects.filter(pk=flow.pk).values_list("status", flat=True).first()
            raise _not_now(action, status)
        flow.refresh_from_db()
        audit_log(
            actor=actor,
            action=f"data_flow.{PAST_TENSE[action]}",
            obj=flow,
            details={"from": left, "to": target, **(details or {})},
        )
    return flow


def data_flow_submit(*, actor: User, flow: DataFlow) -> DataFlow:
    """Send a draft for a decision (its author only); it needs its DPIA, DSA and legal bases."""
    current = DataFlow.objects.get(pk=flow.pk)
    permissions.require_data_flow_action(actor, current, "submit")
    if current.status == DataFlow.Status.DRAFT:
        for field, what in (
            ("dpia_reference", "the DPIA reference"),
            ("dsa_reference", "the data sharing agreement reference"),
        ):
            if not getattr(current, field):
                raise InvalidInput(f"Add {what} before submitting the flow.", field=field)
        if not current.legal_bases.exists():
            raise InvalidInput(
                "Add at least one legal basis before submitting the flow.", field="legal_bases"
            )
    now = timezone.now()
    return _transition(
        actor=actor,
        flow=flow,
        action="submit",
        now=now,
        fields={"submitted_by": actor, "submitted_at": now},
        needs_open_programme=True,
    )


def require_assured(flow: DataFlow, doing: str, *, today: dt.date | None = None) -> None:
    """Refuse (409) unless every assurance condition of the flow holds, naming each that fails.

    The error's `code` is "assurance_conditions_fail"; its details list the failing
    conditions as {"condition", "holds", "detail"} (governance.assurance owns them).
    """
    failing = assurance.failing(assurance.flow_conditions(flow, today=today))
    if failing:
        raise NotAllowedNow(
            f"This flow cannot be {doing}: {len(failing)} of its assurance conditions "
            f"{'fails' if len(failing) == 1 else 'fail'}. "
            + " ".join(f"{c.label}: {c.detail}" for c in failing),
            code=ASSURANCE_REFUSAL,
            details=[c.as_dict() for c in failing],
        )


def data_flow_approve(*, actor: User, flow: DataFlow, comment: str = "") -> DataFlow:
    """Approve a submitted flow: a CSU admin who did not submit it (four eyes), and only
    while every assurance condition holds (a signed-off DPIA, an in-date agreement, both
    organisations' DSPT and ICO registration); 409 naming each that fails."""
    comment = (comment or "").strip()
    now = timezone.now()
    return _transition(
        actor=actor,
        flow=flow,
        action="approve",
        now=now,
        fields={"decided_by": actor, "decided_at": now, "decision_comment": comment},
        details={"comment": comment},
        needs_open_programme=True,
        gate=lambda current: require_assured(current, "approved"),
    )


def data_flow_reject(*, actor: User, flow: DataFlow, reason: str) -> DataFlow:
    """Reject a submitted flow, saying why: a CSU admin who did not submit it (four eyes)."""
    current = DataFlow.objects.select_related("created_by").get(pk=flow.pk)
    permissions.require_data_flow_action(actor, current, "reject")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why the flow is rejected.", field="reason")
    now = timezone.now()
    return _transition(
        actor=actor,
        flow=flow,
        action="reject",
        now=now,
        fields={"decided_by": actor, "decided_at": now, "decision_comment": reason},
        details={"reason": reason},
    )


def data_flow_suspend(*, actor: User, flow: DataFlow, reason: str = "") -> DataFlow:
    """Stop data moving on an approved flow until it is reinstated or closed."""
    now = timezone.now()
    reason = (reason or "").strip()
    return _transition(
        actor=actor,
        flow=flow,
        action="suspend",
        now=now,
        fields={
            "suspended_by": actor,
            "suspended_at": now,
            "suspension_reason": reason,
            "reinstatement_requested_by": None,
            "reinstatement_requested_at": None,
        },
        details={"reason": reason},
    )


def data_flow_request_reinstatement(*, actor: User, flow: DataFlow, comment: str = "") -> DataFlow:
    """Ask for a suspended flow to carry data again: a CSU admin, once every assurance
    condition holds again; another CSU admin decides (data_flow_reinstate)."""
    current = DataFlow.objects.select_related("programme", "source", "destination").get(pk=flow.pk)
    permissions.require_data_flow_action(actor, current, "request_reinstatement")
    if current.status != DataFlow.Status.SUSPENDED:
        raise NotAllowedNow(
            f"Reinstatement is asked for a suspended flow; this one is "
            f"{_status_label(current.status)}."
        )
    if current.reinstatement_requested_by_id is not None:
        raise NotAllowedNow(
            "Reinstatement of this flow was already asked for "
            f"by {current.reinstatement_requested_by.get_username()}: another CSU admin "
            "decides it now.",
            code="reinstatement_already_requested",
        )
    _check_programme_open(current.programme, "reinstated")
    require_assured(current, "reinstated")
    comment = (comment or "").strip()
    now = timezone.now()
    with transaction.atomic():
        claimed = DataFlow.objects.filter(
            pk=flow.pk,
            status=DataFlow.Status.SUSPENDED,
            reinstatement_requested_by__isnull=True,
        ).update(reinstatement_requested_by=actor, reinstatement_requested_at=now, updated_at=now)
        if claimed != 1:
            raise NotAllowedNow(
                "The flow changed meanwhile (reinstatement asked for, or no longer suspended): "
                "look again."
            )
        flow.refresh_from_db()
        audit_log(
            actor=actor,
            action="data_flow.reinstatement_requested",
            obj=flow,
            details={"comment": comment},
        )
    return flow


def data_flow_reinstate(*, actor: User, flow: DataFlow, comment: str = "") -> DataFlow:
    """Let data move again on a suspended flow (four eyes): a CSU admin other than the one
    who asked for it, while every assurance condition holds."""
    current = DataFlow.objects.get(pk=flow.pk)
    permissions.require_data_flow_action(actor, current, "reinstate")
    if (
        current.status == DataFlow.Status.SUSPENDED
        and current.reinstatement_requested_by_id is None
    ):
        raise NotAllowedNow(
            "Reinstatement of this flow has not been asked for: a CSU admin asks for it "
            "once its conditions hold again, and another decides.",
            code="reinstatement_not_requested",
        )
    return _transition(
        actor=actor,
        flow=flow,
        action="reinstate",
        now=timezone.now(),
        fields={
            "suspended_by": None,
            "suspended_at": None,
            "suspension_reason": "",
            "reinstatement_requested_by": None,
            "reinstatement_requested_at": None,
        },
        details={"comment": (comment or "").strip()},
        needs_open_programme=True,
        gate=lambda current: require_assured(current, "reinstated"),
        claim_filter={"reinstatement_requested_by__isnull": False},
    )


def data_flow_close(*, actor: User, flow: DataFlow, comment: str = "") -> DataFlow:
    """End an approved or suspended flow for good."""
    now = timezone.now()
    return _transition(
        actor=actor,
        flow=flow,
        action="close",
        now=now,
        fields={"closed_by": actor, "closed_at": now},
        details={"comment": (comment or "").strip()},
    )
