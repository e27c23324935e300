"""Pages of the audit log."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from phm_portal.audit import audit_action_label, audit_verify
from phm_portal.models import AuditEvent


def _require_audit_reader(request: HttpRequest) -> None:
    if not request.user.can("read_audit"):
        raise PermissionDenied("Only auditors and CSU admins may read the audit log.")


@login_required
def audit_list(request: HttpRequest) -> HttpResponse:
    _require_audit_reader(request)
    qs = AuditEvent.objects.order_by("-seq")
    action = request.GET.get("action", "").strip()
    actor = request.GET.get("actor", "").strip()
    if action:
        qs = qs.filter(action=action)
    if actor:
        qs = qs.filter(actor=actor)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    for event in page.object_list:
        event.action_label = audit_action_label(event.action)
    actions = [
        (code, audit_action_label(code))
        for code in AuditEvent.objects.order_by("action")
        .values_list("action", flat=True)
        .distinct()
    ]
    report = audit_verify() if request.GET.get("verify") else None
    return render(
        request,
        "phm_portal/audit_list.html",
        {"page": page, "action": action, "actor": actor, "actions": actions, "report": report},
    )
