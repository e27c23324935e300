"""Who may act on notices. Built on governance.permissions; never asks django-guardian itself.

- Reading a published (or withdrawn) version: anyone signed in (the public pages show it anyway).
- Reading a draft: a DPO of a controller of the programme, or a CSU admin; another
  member of an organisation that takes part gets 403; anyone else 404.
- Generating, editing, publishing, withdrawing: a DPO (role) bound to a controller or
  joint controller of the programme. Taking part in another role, or holding another
  role, is a 403; not taking part at all is a 404 (never leak existence).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from governance import permissions as gov
from governance.models import Participation, Programme, User
from notices.models import NoticeVersion

CAPABILITY = "publish_notices"


def _roles_in(user: User, programme: Programme) -> set[str]:
    """Return the roles in which the person's organisations take part in the programme."""
    return set(
        programme.participations.filter(organisation__in=gov.organisations_of(user)).values_list(
            "role", flat=True
        )
    )


def can_edit(user: User, programme: Programme) -> bool:
    return (
        user.is_authenticated
        and user.can(CAPABILITY)
        and bool(_roles_in(user, programme) & set(Participation.CONTROLLER_ROLES))
    )


def require_editor(user: User, programme: Programme) -> None:
    """Raise 404 for an outsider, 403 for a participant who is not a controller's DPO."""
    roles = _roles_in(user, programme) if user.is_authenticated else set()
    if not roles and not user.can("read_all"):
        raise Http404("No such programme.")
    gov.require(user, CAPABILITY)
    if not roles & set(Participation.CONTROLLER_ROLES):
        raise PermissionDenied(
            "Only the Data Protection Officer of a controller of the programme may change its notice."
        )


def get_programme_for_editor(user: User, slug: str) -> Programme:
    programme = Programme.objects.filter(slug=slug).first()
    if programme is None:
        raise Http404("No such programme.")
    require_editor(user, programme)
    return programme


def get_version_for_user(user: User, pk: int, *, edit: bool = False) -> NoticeVersion:
    """Return the version if the person may read it (or, with edit, change it)."""
    version = (
        NoticeVersion.objects.select_related("notice__programme", "published_by")
        .filter(pk=pk)
        .first()
    )
    if version is None or not user.is_authenticated:
        raise Http404("No such notice.")
    programme = version.notice.programme
    if edit:
        require_editor(user, programme)
        return version
    if version.is_public or user.can("read_all") or can_edit(user, programme):
        return version
    if _roles_in(user, programme):
        raise PermissionDenied("Only the DPO of a controller of the programme may read its drafts.")
    raise Http404("No such notice.")


def can_read_drafts(user: User, programme: Programme) -> bool:
    return user.can("read_all") or can_edit(user, programme)
