"""Reads of the notices app that are more than one line."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from governance.models import Organisation, Programme
from notices.models import NoticeVersion

PUBLIC = [NoticeVersion.Status.PUBLISHED, NoticeVersion.Status.WITHDRAWN]


def current_version(slug: str) -> NoticeVersion | None:
    """Return the newest published (not withdrawn) version of the programme's notice."""
    return (
        NoticeVersion.objects.filter(
            notice__programme__slug=slug, status=NoticeVersion.Status.PUBLISHED
        )
        .select_related("notice__programme", "published_by")
        .order_by("-number")
        .first()
    )


def public_version(slug: str, number: int) -> NoticeVersion | None:
    """Return a version patients may read (published or withdrawn), or None."""
    return (
        NoticeVersion.objects.filter(notice__programme__slug=slug, number=number, status__in=PUBLIC)
        .select_related("notice__programme", "published_by", "withdrawn_by")
        .first()
    )


def previous_public_version(version: NoticeVersion) -> NoticeVersion | None:
    """Return the public version before this one, if any."""
    return (
        NoticeVersion.objects.filter(
            notice=version.notice, number__lt=version.number, status__in=PUBLIC
        )
        .order_by("-number")
        .first()
    )


def public_versions(slug: str) -> QuerySet[NoticeVersion]:
    return NoticeVersion.objects.filter(notice__programme__slug=slug, status__in=PUBLIC).order_by(
        "-number"
    )


def practice_search(query: str) -> QuerySet[Organisation]:
    """Return GP practices by name, ODS code, postcode district, or their programmes' area or name."""
    query = " ".join(query.split())
    if not query:
        return Organisation.objects.none()
    district = query.upper().split(" ")[0]
    condition = Q(name__icontains=query) | Q(ods_code__iexact=query)
    if district.isalnum() and any(c.isdigit() for c in district) and len(district) <= 4:
        condition |= Q(postcode__istartswith=district + " ") | Q(postcode__iexact=district)
    # "Devon" finds Devon's practices: people know their county better than their practice's code.
    in_programme = Programme.objects.filter(
        Q(region__icontains=query) | Q(partnership__icontains=query) | Q(name__icontains=query),
        participations__organisation=OuterRef("pk"),
    )
    condition |= Exists(in_programme)
    return Organisation.objects.filter(condition, kind=Organisation.Kind.GP_PRACTICE).order_by(
        "name"
    )


def programmes_with_notice(practice: Organisation | None = None) -> QuerySet[Programme]:
    """Return programmes (of the practice, if given) with whether a notice is published."""
    qs = Programme.objects.annotate(
        has_notice=Exists(
            NoticeVersion.objects.filter(
                notice__programme=OuterRef("pk"), status=NoticeVersion.Status.PUBLISHED
            )
        )
    )
    if practice is not None:
        qs = qs.filter(participations__organisation=practice).distinct()
    return qs.order_by("name")


def programme_practice_names(programmes: list[Programme]) -> dict[int, list[str]]:
    """Return the names of each programme's GP practices (by name), keyed by programme id."""
    names: dict[int, list[str]] = {p.pk: [] for p in programmes}
    rows = (
        Organisation.objects.filter(
            kind=Organisation.Kind.GP_PRACTICE, participations__programme__in=programmes
        )
        .values_list("participations__programme", "name")
        .order_by("name")
        .distinct()
    )
    for programme_id, name in rows:
        names[programme_id].append(name)
    return names
