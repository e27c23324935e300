"""Reads of the governance app that are more than one line."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from governance.models import Organisation, Participation, Programme


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
