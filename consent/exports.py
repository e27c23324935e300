"""A practice's Type 1 opt-outs as a CSV file (the FHIR form is in consent/fhir.py)."""

from __future__ import annotations

import io

from consent import selectors
from consent.models import Type1Event
from phm_portal.lib import csv_safe


def type1_csv(practice) -> tuple[str, int]:
    """Return the practice's current Type 1 states as CSV text, and the number of patients."""
    current = list(selectors.type1_current(practice))
    numbers = selectors.nhs_numbers_of(e.patient_id for e in current)
    out = io.StringIO()
    writer = csv_safe.writer(out)
    writer.writerow(
        ["nhs_number", "status", "since", "code", "method", "recorded_at", "recorded_by"]
    )
    for e in current:
        writer.writerow(
            [
                numbers[e.patient_id],
                "opted_out" if e.event == Type1Event.Event.DISSENT else "withdrawn",
                e.recorded_on.isoformat(),
                e.code.snomed_ct,
                e.method,
                e.recorded_at.isoformat(),
                e.recorded_by.username,
            ]
        )
    return out.getvalue(), len(current)
