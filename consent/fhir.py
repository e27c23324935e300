"""A practice's Type 1 opt-outs as a FHIR R4 Bundle of Consent resources.

One Consent per patient known at the practice: "active" while the patient's latest
event is a dissent, "inactive" once it was withdrawn. The provision denies the
secondary use of the patient's GP data from the day they asked.
"""

from __future__ import annotations

import uuid

from django.utils import timezone

from consent import selectors
from consent.models import Organisation, Type1Event

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
SNOMED = "http://snomed.info/sct"
_NAMESPACE = uuid.UUID("0f1c2b8e-5d7a-4c1e-9b7e-6a0d3c2f4e11")


def _consent(event: Type1Event, nhs_number: str, practice: Organisation) -> dict:
    active = event.event == Type1Event.Event.DISSENT
    history = event.history if hasattr(event, "history") else [event]
    dissent = next((e for e in reversed(history) if e.event == Type1Event.Event.DISSENT), event)
    period: dict = {"start": dissent.recorded_on.isoformat()}
    if not active:
        period["end"] = event.recorded_on.isoformat()
    return {
        "resourceType": "Consent",
        "id": str(uuid.uuid5(_NAMESPACE, f"{practice.ods_code}:{event.patient_id}")),
        "status": "active" if active else "inactive",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                    "display": "Privacy Consent",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": SNOMED,
                        "code": event.code.snomed_ct,
                        "display": event.code.display,
                    }
                ]
            }
        ],
        "patient": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": nhs_number}},
        "dateTime": timezone.localtime(event.recorded_at).isoformat(),
        "organization": [
            {
                "identifier": {"system": ODS_SYSTEM, "value": practice.ods_code},
                "display": practice.name,
            }
        ],
        "policyRule": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "OPTOUT",
                    "display": "opt-out",
                }
            ]
        },
        "provision": {"type": "deny", "period": period},
    }


def type1_bundle(practice: Organisation) -> tuple[dict, int]:
    """Return the practice's Type 1 opt-outs as a FHIR R4 collection Bundle, and its size."""
    current = list(selectors.type1_current(practice))
    numbers = selectors.nhs_numbers_of(e.patient_id for e in current)
    history = selectors.type1_history(practice, numbers)
    entries = []
    for event in current:
        event.history = history.get(event.patient_id, [event])
        resource = _consent(event, numbers[event.patient_id], practice)
        entries.append({"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource})
    bundle = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "collection",
        "timestamp": timezone.localtime(timezone.now()).isoformat(),
        "entry": entries,
    }
    return bundle, len(entries)
