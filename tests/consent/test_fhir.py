import datetime as dt

from fhir.resources.R4B.bundle import Bundle

from phm_portal.models import AuditEvent

URL = "/api/v1/practices/A81001/type1-opt-outs/fhir/"


def test_the_export_is_a_valid_fhir_r4_bundle_of_consents(api, alice, record, numbers):
    a, b = numbers(2)
    record(a, on=dt.date.today() - dt.timedelta(days=9))
    record(b, on=dt.date.today() - dt.timedelta(days=8))
    record(b, "withdrawal", on=dt.date.today() - dt.timedelta(days=2))
    response = api(alice).get(URL)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(response.json())  # raises if it is not valid R4
    assert bundle.type == "collection"
    consents = {e.resource.patient.identifier.value: e.resource for e in bundle.entry}
    assert set(consents) == {a, b}
    active, inactive = consents[a], consents[b]
    assert active.status == "active" and inactive.status == "inactive"
    assert active.patient.identifier.system == "https://fhir.nhs.uk/Id/nhs-number"
    assert active.organization[0].identifier.value == "A81001"
    assert active.provision.type == "deny"
    assert active.scope.coding[0].code == "patient-privacy"
    assert active.category[0].coding[0].code == "827241000000103"
    assert active.dateTime is not None
    assert (
        str(inactive.provision.period.end) == (dt.date.today() - dt.timedelta(days=2)).isoformat()
    )


def test_an_empty_practice_exports_an_empty_valid_bundle(api, alice):
    bundle = Bundle.model_validate(api(alice).get(URL).json())
    assert not bundle.entry


def test_the_export_is_audited(api, alice, record, numbers):
    record(numbers(1)[0])
    api(alice).get(URL)
    event = AuditEvent.objects.get(action="type1.exported")
    assert event.details == {"format": "fhir", "patients": 1}
