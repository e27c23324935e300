"""Reads of the governance app that are more than one line."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from governance import permissions
from governance.models import ApiToken, DataFlow, Organisation, Participation, Programme, User

# The record of processing (UK GDPR Article 30) has its own module; pages and API read it here.
from governance.record_of_processing import (  # noqa: F401
    EFFECTIVE_FLOW_STATUSES,
    ICO_HEADINGS,
    ROPA_CSV_COLUMNS,
    record_of_processing,
    record_of_processing_csv,
)
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
