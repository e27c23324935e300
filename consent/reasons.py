"""Why a patient's data may not flow: the one list of the opt-out register's reasons.

A module of its own, free of models, so that the pseudonymisation pipeline (which runs
without Django's apps) counts its rows by the same names.
"""

from __future__ import annotations

from django.db.models import TextChoices


class OptOutReason(TextChoices):
    """The register answers with them, the API names them, a job's report counts by them.

    A job's report counts a patient no unexpired check covers (national_unchecked) as
    national: `REPORTED_AS` says under which reason each is counted there.
    """

    TYPE1 = "type1", "Type 1 opt-out"
    NATIONAL = "national", "National data opt-out"
    NATIONAL_UNCHECKED = "national_unchecked", "No unexpired national check covers the patient"


# A job's report: the reason under which rows left out for each reason are counted.
REPORTED_AS = {
    OptOutReason.TYPE1: OptOutReason.TYPE1,
    OptOutReason.NATIONAL: OptOutReason.NATIONAL,
    OptOutReason.NATIONAL_UNCHECKED: OptOutReason.NATIONAL,
}
