"""Who may start destruction, follow a run, and read certificates. Never guardian directly."""

from __future__ import annotations

from django.http import Http404

from destruction.models import Certificate, DestructionRun
from governance import permissions as governance_perms
from governance.models import Participation, Programme, User


def _roles_in(user: User, programme: Programme) -> set[str]:
    """Return the roles the person's organisations play in the programme."""
    return set(
        Participation.objects.filter(
            programme=programme, organisation__in=governance_perms.organisations_of(user)
        ).values_list("role", flat=True)
    )


def get_programme_for_destruction(user: User, slug: str) -> Programme:
    """Return the programme a CSU admin may destroy: 404 if the person cannot see it, else 403."""
    programme = governance_perms.programmes_of(user).filter(slug=slug).first()
    if programme is None:
        raise Http404("No such programme.")
    governance_perms.require(user, "run_destruction")
    return programme


def may_follow_runs(user: User, programme: Programme) -> bool:
    """CSU admins and the people of the programme's controllers follow its destruction."""
    if user.can("run_destruction"):
        return True
    return bool(_roles_in(user, programme) & set(Participation.CONTROLLER_ROLES))


def may_read_certificates(user: User, programme: Programme) -> bool:
    """CSU admins and the people of its controllers and processors read its certificates."""
    if user.can("run_destruction"):
        return True
    wanted = {*Participation.CONTROLLER_ROLES, *Participation.PROCESSOR_ROLES}
    return bool(_roles_in(user, programme) & wanted)


def get_run_for_user(user: User, run_id: object) -> DestructionRun:
    """Return the run for a CSU admin or a controller's person; 404 for anyone else."""
    try:
        pk = int(str(run_id))
    except ValueError:
        raise Http404("No such destruction run.") from None
    run = DestructionRun.objects.select_related("programme", "requested_by").filter(pk=pk).first()
    if run is None or not (user.is_authenticated and may_follow_runs(user, run.programme)):
        raise Http404("No such destruction run.")
    return run


def get_certificate_for_user(user: User, serial: str) -> Certificate:
    """Return the certificate for a CSU admin or a controller's or processor's person; else 404."""
    certificate = (
        Certificate.objects.select_related("programme", "run").filter(serial=serial).first()
    )
    if certificate is None or not (
        user.is_authenticated and may_read_certificates(user, certificate.programme)
    ):
        raise Http404("No such certificate.")
    return certificate
