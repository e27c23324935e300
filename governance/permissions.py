"""Who may act on what. Views and API views call these helpers, never guardian directly."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404
from guardian.shortcuts import assign_perm, get_objects_for_user, remove_perm

from governance.models import (
    DPIA,
    ApiToken,
    DataFlow,
    Organisation,
    Participation,
    Programme,
    SharingAgreement,
    User,
)

MEMBER_PERM = "governance.act_for_organisation"

# What each role may do; `User.can()` and `GET /api/v1/me/` read this table.
ROLE_CAPABILITIES: dict[str, frozenset[str]] = {
    User.Role.CSU_ADMIN: frozenset(
        {
            "read_all",
            "manage_organisations",
            "manage_programmes",
            "manage_users",
            "create_data_flows",
            "approve_data_flows",
            "run_pseudonymisation",
            "run_destruction",
            "read_audit",
            "read_every_record_of_processing",
            "draft_assurance",
            "read_every_assurance",
        }
    ),
    User.Role.DPO: frozenset(
        {
            "create_data_flows",
            "publish_notices",
            "read_record_of_processing",
            "draft_assurance",
            "advise_on_dpias",
        }
    ),
    User.Role.PRACTICE_MANAGER: frozenset({"record_type1_opt_outs", "reidentify"}),
    User.Role.AUDITOR: frozenset(
        {"read_audit", "read_every_record_of_processing", "read_every_assurance"}
    ),
    # The SIRO or Caldicott Guardian: signs for the organisations they are bound to.
    User.Role.SIGNATORY: frozenset({"sign_assurance"}),
}

CAPABILITY_LABELS = {
    "read_all": "See every organisation, programme and data flow",
    "manage_organisations": "Add and change organisations",
    "manage_programmes": "Set up programmes and who takes part",
    "manage_users": "Add people and bind them to organisations",
    "create_data_flows": "Propose data flows",
    "approve_data_flows": "Approve or reject data flows",
    "run_pseudonymisation": "Run pseudonymisation",
    "run_destruction": "Run destruction at the end of a programme",
    "read_audit": "Read and verify the audit log",
    "publish_notices": "Draft, check and publish privacy notices",
    "read_record_of_processing": "See the record of processing",
    "read_every_record_of_processing": "See every organisation's record of processing",
    "record_type1_opt_outs": "Record and withdraw Type 1 opt-outs",
    "reidentify": "Re-identify your own patients flagged by the programme",
    "draft_assurance": "Draft DPIAs and data sharing agreements",
    "advise_on_dpias": "Record the DPO's advice on a DPIA",
    "sign_assurance": "Sign DPIAs off and sign data sharing agreements",
    "read_every_assurance": "See every programme's DPIAs and data sharing agreements",
}


def capabilities_of(user: User) -> list[str]:
    """Return what the person may do, in a stable order."""
    if not user.is_authenticated or not user.is_active:
        return []
    return sorted(ROLE_CAPABILITIES.get(user.role, ()))


def require(user: User, capability: str) -> None:
    """Raise PermissionDenied unless the person's role allows the capability."""
    if not user.can(capability):
        label = CAPABILITY_LABELS.get(capability, capability).lower()
        raise PermissionDenied(f"Your role ({user.get_role_display()}) may not {label}.")


def get_api_token_for_user(user: User, token_id: object) -> ApiToken:
    """Return one of the person's own API tokens; anyone else's (any role) is a 404."""
    try:
        pk = int(str(token_id))
    except ValueError:
        raise Http404("No such token.") from None
    if not 0 < pk < 2**63:  # beyond what a database integer holds: no such row
        raise Http404("No such token.")
    token = ApiToken.objects.filter(pk=pk, user_id=user.pk).select_related("user").first()
    if token is None or not user.is_authenticated:
        raise Http404("No such token.")
    return token


def organisations_of(user: User) -> QuerySet[Organisation]:
    """Return the organisations the person is bound to."""
    if not user.is_authenticated:
        return Organisation.objects.none()
    return get_objects_for_user(
        user, MEMBER_PERM, klass=Organisation, accept_global_perms=False, with_superuser=False
    )


def is_member(user: User, organisation: Organisation) -> bool:
    return user.is_authenticated and organisations_of(user).filter(pk=organisation.pk).exists()


def get_organisation_for_user(
    user: User, ods_code: str, *, capability: str | None = None
) -> Organisation:
    """Return the organisation if the person may act for it.

    1. An organisation that does not exist, or that the person is not bound to (and
       they cannot see everything), is a 404: never leak existence across organisations.
    2. A bound person whose role does not allow the capability gets a 403.
    """
    organisation = Organisation.objects.filter(ods_code=ods_code.upper()).first()
    if organisation is None:
        raise Http404("No such organisation.")
    if not (user.can("read_all") or is_member(user, organisation)):
        raise Http404("No such organisation.")
    if capability is not None:
        require(user, capability)
    return organisation


def programmes_of(user: User) -> QuerySet[Programme]:
    """Return the programmes in which one of the person's organisations takes part."""
    if user.can("read_all"):
        return Programme.objects.all()
    return Programme.objects.filter(
        participations__organisation__in=organisations_of(user)
    ).distinct()


def bind(user: User, organisation: Organisation) -> None:
    assign_perm(MEMBER_PERM, user, organisation)


def unbind(user: User, organisation: Organisation) -> None:
    remove_perm(MEMBER_PERM, user, organisation)


# --- data flows ------------------------------------------------------------------
def data_flows_visible_to(user: User) -> QuerySet[DataFlow]:
    """Return the flows the person may see: all for a CSU admin, else those their organisations are party to."""
    if not user.is_authenticated:
        return DataFlow.objects.none()
    if user.can("read_all"):
        return DataFlow.objects.all()
    mine = organisations_of(user).values("pk")
    return DataFlow.objects.filter(Q(source__in=mine) | Q(destination__in=mine))


def is_party(user: User, flow: DataFlow) -> bool:
    """Return whether the person acts for the flow's source or destination."""
    return (
        user.is_authenticated
        and organisations_of(user).filter(pk__in=[flow.source_id, flow.destination_id]).exists()
    )


def get_data_flow_for_user(user: User, pk: int | str) -> DataFlow:
    """Return the flow if the person may see it; 404 otherwise (never leak that it exists).

    CSU admins see every flow; the parties are the people bound to its source or destination.
    """
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Http404("No such data flow.") from None
    flow = (
        DataFlow.objects.select_related(
            "programme", "source", "destination", "created_by", "submitted_by", "decided_by"
        )
        .filter(pk=pk)
        .first()
    )
    if flow is None or not (
        user.is_authenticated and (user.can("read_all") or is_party(user, flow))
    ):
        raise Http404("No such data flow.")
    return flow


# The four-eyes rule: whoever submitted a flow may not approve or reject it. Said once for
# one flow and once for a query, side by side.
def is_own_submission(user: User, flow: DataFlow) -> bool:
    """Return whether the person submitted the flow (so another CSU admin must decide it)."""
    return flow.submitted_by_id is not None and flow.submitted_by_id == user.pk


def own_submissions(user: User) -> Q:
    """Return the filter for flows the person submitted (the query form of `is_own_submission`)."""
    return Q(submitted_by_id=user.pk)


def data_flow_queue(user: User) -> tuple[QuerySet[DataFlow], QuerySet[DataFlow]]:
    """Return the flows awaiting the person's decision, and those they submitted awaiting another admin's."""
    submitted = data_flows_visible_to(user).filter(status=DataFlow.Status.SUBMITTED)
    if not user.can("approve_data_flows"):
        return DataFlow.objects.none(), submitted.filter(own_submissions(user))
    return submitted.exclude(own_submissions(user)), submitted.filter(own_submissions(user))


def require_may_draft_data_flow(user: User, source: Organisation) -> None:
    """Raise PermissionDenied unless the person may propose a flow from the source.

    A CSU admin may propose any flow; a DPO only from an organisation they act for.
    """
    require(user, "create_data_flows")
    if not user.can("read_all") and not is_member(user, source):
        raise PermissionDenied(
            f"You may propose data flows only from your own organisation, not from {source.name}."
        )


def data_flow_refusal(user: User, flow: DataFlow, action: str) -> str | None:
    """Return why the person's role may not take the action on the flow, or None if it may.

    The state of the flow is not looked at here (the services answer 409 for that).
    """
    if action == "submit":
        if flow.created_by_id != user.pk:
            who = flow.created_by.get_username() if flow.created_by else "its author"
            return f"Only the person who drafted this flow ({who}) can submit it."
        return None
    if action == "edit":
        try:
            require_may_draft_data_flow(user, flow.source)
        except PermissionDenied as exc:
            return str(exc)
        return None
    if not user.can("approve_data_flows"):
        return f"Your role ({user.get_role_display()}) may not approve, reject, suspend or close data flows."
    if action in ("approve", "reject") and is_own_submission(user, flow):
        return "You submitted this flow, so another CSU admin must decide it (four eyes)."
    if action == "reinstate" and is_own_reinstatement_request(user, flow):
        return (
            "You asked for this flow to be reinstated, so another CSU admin must decide it "
            "(four eyes)."
        )
    return None


def is_own_reinstatement_request(user: User, flow: DataFlow) -> bool:
    """Return whether the person asked for the flow's reinstatement (another must decide it)."""
    return (
        flow.reinstatement_requested_by_id is not None
        and flow.reinstatement_requested_by_id == user.pk
    )


def require_data_flow_action(user: User, flow: DataFlow, action: str) -> None:
    """Raise PermissionDenied unless the person's role allows the action on this flow."""
    reason = data_flow_refusal(user, flow, action)
    if reason:
        raise PermissionDenied(reason)


def data_flow_actions_for(user: User, flow: DataFlow) -> list[str]:
    """Return the actions the person may take on the flow now (its state and their role)."""
    actions = []
    if flow.status == DataFlow.Status.DRAFT and data_flow_refusal(user, flow, "edit") is None:
        actions.append("edit")
    requested = flow.reinstatement_requested_by_id is not None
    for action, (sources, _) in DataFlow.TRANSITIONS.items():
        if flow.status not in sources or data_flow_refusal(user, flow, action) is not None:
            continue
        if action == "reinstate" and not requested:
            # Four eyes: one CSU admin asks, another reinstates.
            if data_flow_refusal(user, flow, "request_reinstatement") is None:
                actions.append("request_reinstatement")
            continue
        actions.append(action)
    return actions


# --- records of processing ---------------------------------------------------------
def may_read_record_of_processing(user: User, organisation: Organisation) -> bool:
    """Return whether the person may read the organisation's record of processing."""
    if user.can("read_every_record_of_processing"):
        return True
    return user.can("read_record_of_processing") and is_member(user, organisation)


def get_organisation_for_record_of_processing(user: User, ods_code: str) -> Organisation:
    """Return the organisation whose record of processing the person may read.

    CSU admins and auditors read every record; a DPO reads their own organisation's;
    another person bound to it gets a 403; anyone else a 404.
    """
    if user.can("read_every_record_of_processing"):
        organisation = Organisation.objects.filter(ods_code=ods_code.upper()).first()
        if organisation is None:
            raise Http404("No such organisation.")
        return organisation
    return get_organisation_for_user(user, ods_code, capability="read_record_of_processing")


# --- assurance: DPIAs and data sharing agreements ---------------------------------------
def assurance_programmes_of(user: User) -> QuerySet[Programme]:
    """Return the programmes whose DPIAs and agreements the person may read.

    CSU admins and auditors read every programme's; anyone else those their
    organisations take part in.
    """
    if not user.is_authenticated:
        return Programme.objects.none()
    if user.can("read_every_assurance") or user.can("read_all"):
        return Programme.objects.all()
    return programmes_of(user)


def dpias_visible_to(user: User) -> QuerySet[DPIA]:
    return DPIA.objects.filter(programme__in=assurance_programmes_of(user).values("pk"))


def agreements_visible_to(user: User) -> QuerySet[SharingAgreement]:
    return SharingAgreement.objects.filter(programme__in=assurance_programmes_of(user).values("pk"))


def _pk(value: object, what: str) -> int:
    try:
        pk = int(str(value))
    except ValueError:
        raise Http404(f"No such {what}.") from None
    if not 0 < pk < 2**63:
        raise Http404(f"No such {what}.")
    return pk


def get_dpia_for_user(user: User, pk: object) -> DPIA:
    """Return the DPIA if the person may read it; 404 otherwise (never leak that it exists)."""
    dpia = dpias_visible_to(user).select_related("programme").filter(pk=_pk(pk, "DPIA")).first()
    if dpia is None:
        raise Http404("No such DPIA.")
    return dpia


def get_sharing_agreement_for_user(user: User, pk: object) -> SharingAgreement:
    """Return the agreement if the person may read it; 404 otherwise."""
    agreement = (
        agreements_visible_to(user)
        .select_related("programme")
        .filter(pk=_pk(pk, "data sharing agreement"))
        .first()
    )
    if agreement is None:
        raise Http404("No such data sharing agreement.")
    return agreement


def controllers_of(programme: Programme) -> QuerySet[Organisation]:
    return Organisation.objects.filter(
        participations__programme=programme,
        participations__role__in=Participation.CONTROLLER_ROLES,
    ).distinct()


def _acts_for_any(user: User, organisations) -> bool:
    ids = [o.pk for o in organisations] if not isinstance(organisations, QuerySet) else None
    mine = organisations_of(user)
    if ids is None:
        return mine.filter(pk__in=organisations.values("pk")).exists()
    return mine.filter(pk__in=ids).exists()


def require_may_draft_dpia(user: User, programme: Programme) -> None:
    """Raise PermissionDenied unless the person may draft or review the programme's DPIA.

    A CSU admin may; a DPO only of one of the programme's controllers.
    """
    require(user, "draft_assurance")
    if not user.can("read_all") and not _acts_for_any(user, controllers_of(programme)):
        raise PermissionDenied(
            f"Only a DPO of a controller of {programme.name} (or a CSU admin) drafts its DPIA."
        )


def require_dpo_of_controller(user: User, programme: Programme) -> None:
    """Raise PermissionDenied unless the person is a DPO of one of the programme's controllers."""
    require(user, "advise_on_dpias")
    if not _acts_for_any(user, controllers_of(programme)):
        raise PermissionDenied(
            f"Only the DPO of a controller of {programme.name} records advice on its DPIA."
        )


def require_may_draft_agreement(user: User, programme: Programme, parties) -> None:
    """Raise PermissionDenied unless the person may record the agreement.

    A CSU admin may; a DPO only of one of its parties.
    """
    require(user, "draft_assurance")
    if not user.can("read_all") and not _acts_for_any(user, parties):
        raise PermissionDenied(
            "Only a DPO of one of the agreement's parties (or a CSU admin) records it."
        )
