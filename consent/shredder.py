"""What the consent app holds of a programme, and how it is destroyed (phm_portal.shredders).

- The results of the programme's national data opt-out checks (one row per submitted
  patient, and their compiled, sealed file): deleted; each check's row stays with its
  dates and counts, marked purged.
- The cohort entries that only the programme's extracts taught the portal (a patient
  at a practice, RegistrationFromExtract): deleted, and every patient the portal then
  knows from nowhere (no practice, no Type 1 event, no check) with its encrypted number
  and blind index. Entries and patients learned elsewhere (Type 1 events, recorded
  requests, another programme's extracts) stay.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from consent.models import (
    NationalOptOutCheck,
    NationalOptOutEntry,
    Patient,
    Registration,
    RegistrationFromExtract,
    Type1Event,
)
from consent.register import national_check_results_delete, national_check_results_exist
from governance.models import Programme
from phm_portal.shredders import Renew, Shredder


def _checks(programme: Programme) -> QuerySet[NationalOptOutCheck]:
    return NationalOptOutCheck.objects.filter(programme=programme)


def _extract_only(programme: Programme) -> QuerySet[Registration]:
    """Registrations the programme's extracts taught and nothing else did."""
    others = RegistrationFromExtract.objects.filter(registration=OuterRef("pk")).exclude(
        programme=programme
    )
    return Registration.objects.filter(
        elsewhere=False, extract_sources__programme=programme
    ).exclude(Exists(others))


def _known_from_nowhere() -> QuerySet[Patient]:
    """Patients no practice, Type 1 event or national check entry names any more."""
    return (
        Patient.objects.exclude(Exists(Registration.objects.filter(patient=OuterRef("pk"))))
        .exclude(Exists(Type1Event.objects.filter(patient=OuterRef("pk"))))
        .exclude(Exists(NationalOptOutEntry.objects.filter(patient=OuterRef("pk"))))
    )


def manifest(programme: Programme, renew: Renew) -> dict:
    """Return the programme's checks and the cohort entries only its extracts taught."""
    checks = [
        {
            "id": c.pk,
            "local_id": c.local_id,
            "status": c.status,
            "entries": c.entries.count(),
        }
        for c in _checks(programme).order_by("created_at", "pk")
    ]
    entries = sum(c["entries"] for c in checks)
    sources = RegistrationFromExtract.objects.filter(programme=programme).count()
    only = _extract_only(programme).count()
    return {
        "national_checks": checks,
        "totals": {
            "national_checks": len(checks),
            "national_check_results": entries,
            "cohort_sources_from_extracts": sources,
            "cohort_entries_only_from_extracts": only,
        },
        "lines": [
            {
                "label": "National data opt-out results (one per submitted patient)",
                "count": entries,
            },
            {"label": "Cohort entries learned only from the programme's extracts", "count": only},
        ],
    }


def delete_rows(programme: Programme, part: dict) -> dict:
    """Delete the checks' results and the cohort entries only the extracts taught."""
    results, _ = NationalOptOutEntry.objects.filter(check_run__programme=programme).delete()
    compiled = national_check_results_delete(
        check_ids=_checks(programme).values_list("pk", flat=True)
    )
    purged = (
        _checks(programme)
        .exclude(status=NationalOptOutCheck.Status.PURGED)
        .update(status=NationalOptOutCheck.Status.PURGED, purged_at=timezone.now())
    )
    only = list(_extract_only(programme).values_list("pk", flat=True))
    sources, _ = RegistrationFromExtract.objects.filter(programme=programme).delete()
    entries, _ = Registration.objects.filter(pk__in=only).delete()
    patients, _ = _known_from_nowhere().delete()
    return {
        "national_check_results_deleted": results,
        "compiled_national_results_deleted": compiled,
        "national_checks_marked_purged": purged,
        "cohort_sources_deleted": sources,
        "cohort_entries_deleted": entries,
        "patients_deleted": patients,
        "kept": "Each check's row stays with its dates and counts (marked purged); patients "
        "and entries learned elsewhere (Type 1 events, requests, other programmes' "
        "extracts) stay.",
    }


def verify(programme: Programme, part: dict) -> list[dict]:
    """Check that no result, entry or patient the programme alone brought remains."""
    return [
        {
            "check": "no national data opt-out result of the programme remains",
            "passed": not NationalOptOutEntry.objects.filter(
                check_run__programme=programme
            ).exists()
            and not national_check_results_exist(
                check_ids=_checks(programme).values_list("pk", flat=True)
            ),
        },
        {
            "check": "no cohort entry learned from the programme's extracts remains",
            "passed": not RegistrationFromExtract.objects.filter(programme=programme).exists(),
        },
        {
            "check": "no patient is known to the portal from nowhere else",
            "passed": not _known_from_nowhere().exists(),
        },
    ]


def preview(programme: Programme) -> dict:
    return {
        "national_check_results": NationalOptOutEntry.objects.filter(
            check_run__programme=programme
        ).count(),
        "cohort_entries_only_from_extracts": _extract_only(programme).count(),
    }


SHREDDER = Shredder(
    app="consent",
    holds="The programme's national data opt-out check results, and the patients its "
    "extracts alone taught the portal: deleted (the check records stay, with counts).",
    manifest=manifest,
    delete_rows=delete_rows,
    verify=verify,
    preview=preview,
)
