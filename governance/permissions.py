"""Who may act on what. Views and API views call these helpers, never guardian directly."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from guardian.shortcuts import assign_perm, get_objects_for_user, remove_perm

from governance.models import Organisation, Programme, User

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
        }
    ),
    User.Role.DPO: frozenset({"create_data_flows", "publish_notices", "read_record_of_processing"}),
    User.Role.PRACTICE_MANAGER: frozenset({"record_type1_opt_outs", "reidentify"}),
    User.Role.AUDITOR: frozenset({"read_audit"}),
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
    "record_type1_opt_outs": "Record and withdraw Type 1 opt-outs",
    "reidentify": "Re-identify your own patients flagged by the programme",
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
