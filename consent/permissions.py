"""Who may act on opt-outs. Views and API views call these; never guardian directly."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from governance import permissions as perms
from governance.models import DataFlow, Organisation, Programme, User

RECORD_CAPABILITY = "record_type1_opt_outs"
# National data opt-out checks belong to setting a programme up for data to flow:
# the CSU admins who manage programmes run them.
NATIONAL_CHECK_CAPABILITY = "manage_programmes"


def get_practice_for_user(user: User, ods_code: str) -> Organisation:
    """Return the GP practice if the person is bound to it and may record Type 1 opt-outs.

    1. No such GP practice, or one the person is not bound to: 404, whoever they are
       (a practice's opt-outs are the practice's own: not even a CSU admin reads them).
    2. Bound, but the role may not record Type 1 opt-outs (e.g. the practice's DPO): 403.
    """
    practice = Organisation.objects.filter(
        ods_code=ods_code.upper(), kind=Organisation.Kind.GP_PRACTICE
    ).first()
    if practice is None or not perms.is_member(user, practice):
        raise Http404("No such practice.")
    perms.require(user, RECORD_CAPABILITY)
    return practice


def practices_of(user: User):
    """Return the GP practices whose opt-outs the person looks after."""
    if not user.is_authenticated or not user.can(RECORD_CAPABILITY):
        return Organisation.objects.none()
    return perms.organisations_of(user).filter(kind=Organisation.Kind.GP_PRACTICE)


def register_practice_ids_for(user: User) -> list[int] | None:
    """Return the GP practices whose patients' opt-out reasons the person may learn.

    None means every patient's: a CSU admin (who sees everything) gets the register's
    full answer. Anyone else learns reasons only for patients registered at the
    practices whose opt-outs they look after (`practices_of`); the register answers
    every other number exactly as it answers a number it has never seen, so asking
    about numbers in bulk tells nobody about other practices' patients.
    """
    if user.is_authenticated and user.can("read_all"):
        return None
    return list(practices_of(user).values_list("pk", flat=True))


def get_data_flow_for_user(user: User, pk: object) -> DataFlow:
    """Return the data flow if the person is a CSU admin or acts for one of its two parties.

    Anyone else gets a 404, as for a flow that does not exist.
    """
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Http404("No such data flow.") from None
    flow = DataFlow.objects.select_related("programme", "source", "destination").filter(pk=pk)
    flow = flow.first()
    if flow is None:
        raise Http404("No such data flow.")
    if user.can("read_all"):
        return flow
    mine = perms.organisations_of(user).filter(pk__in=[flow.source_id, flow.destination_id])
    if not mine.exists():
        raise Http404("No such data flow.")
    return flow


def require_national_checker(user: User) -> None:
    """Raise PermissionDenied unless the person may run national data opt-out checks."""
    if not user.is_authenticated:
        raise PermissionDenied("Sign in first.")
    if not user.can(NATIONAL_CHECK_CAPABILITY):
        raise PermissionDenied("Only a CSU admin runs national data opt-out checks.")


def get_programme_for_checker(user: User, slug: str) -> Programme:
    require_national_checker(user)
    programme = Programme.objects.filter(slug=slug).first()
    if programme is None:
        raise Http404("No such programme.")
    return programme
