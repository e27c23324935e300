import datetime as dt

import pytest
from django.db import DatabaseError, connection, transaction

from consent.models import OptOutCode, Patient, Type1Event
from phm_portal.lib.crypto import blind_index
from phm_portal.models import AuditEvent
from tests.consent.conftest import TEST_NUMBER

URL = "/api/v1/practices/A81001/type1-opt-outs/"


def body(**overrides):
    return {
        "nhs_number": "943 476 5919",
        "event": "dissent",
        "method": "letter",
        "recorded_on": (dt.date.today() - dt.timedelta(days=2)).isoformat(),
        **overrides,
    }


def test_a_practice_manager_records_a_dissent_with_its_code(api, alice):
    response = api(alice).post(URL, body(), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["nhs_number"] == TEST_NUMBER
    assert data["status"] == "opted_out"
    assert data["code"] == "827241000000103"
    assert data["recorded_by"] == "alice"
    event = Type1Event.objects.get()
    assert (event.method, event.practice.ods_code) == ("letter", "A81001")


def test_recording_is_audited_without_the_nhs_number(api, alice):
    api(alice).post(URL, body(), format="json")
    audit = AuditEvent.objects.get(action="type1.dissent_recorded")
    assert audit.actor == "alice"
    assert audit.details["patient"] == blind_index(TEST_NUMBER)[:12]
    assert TEST_NUMBER not in str(audit.details) + audit.object_repr


def test_a_withdrawal_after_a_dissent_makes_the_patient_withdrawn(api, alice, record):
    record(TEST_NUMBER, on=dt.date.today() - dt.timedelta(days=10))
    response = api(alice).post(URL, body(event="withdrawal"), format="json")
    assert response.status_code == 201
    assert response.json()["code"] == "827261000000102"
    listed = api(alice).get(URL + "?status=withdrawn").json()["results"]
    assert [(r["nhs_number"], r["status"], len(r["history"])) for r in listed] == [
        (TEST_NUMBER, "withdrawn", 2)
    ]


def test_withdrawal_without_dissent_is_refused(api, alice):
    response = api(alice).post(URL, body(event="withdrawal"), format="json")
    assert response.status_code == 409
    assert "no current opt-out" in response.json()["detail"]
    assert not Type1Event.objects.exists()


def test_a_second_dissent_while_opted_out_is_refused(api, alice, record):
    record(TEST_NUMBER)
    response = api(alice).post(URL, body(), format="json")
    assert response.status_code == 409
    assert "opted out since" in response.json()["detail"]
    assert Type1Event.objects.count() == 1


def test_an_event_dated_before_the_last_one_is_refused(api, alice, record):
    record(TEST_NUMBER, on=dt.date.today() - dt.timedelta(days=1))
    response = api(alice).post(
        URL,
        body(event="withdrawal", recorded_on=(dt.date.today() - dt.timedelta(days=5)).isoformat()),
        format="json",
    )
    assert response.status_code == 400
    assert "recorded_on" in response.json()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nhs_number", "9434765918"),  # wrong check digit
        ("nhs_number", "94347659"),  # too short
        ("nhs_number", "94347A5919"),
        ("nhs_number", ""),
        ("event", "maybe"),
        ("method", "carrier pigeon"),
        ("method", "not_recorded"),  # only imports may leave it unrecorded
        ("recorded_on", "yesterday"),
        ("recorded_on", (dt.date.today() + dt.timedelta(days=1)).isoformat()),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, alice, field, value):
    response = api(alice).post(URL, body(**{field: value}), format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not Type1Event.objects.exists()


def test_the_nhs_number_is_accepted_with_spaces_and_returned_as_ten_digits(api, alice):
    assert api(alice).post(URL, body(nhs_number=" 943 476 5919 "), format="json").status_code == 201
    assert api(alice).get(URL).json()["results"][0]["nhs_number"] == TEST_NUMBER


def test_the_list_shows_each_patients_current_state_and_history(api, alice, record, numbers):
    a, b = numbers(2)
    record(a, on=dt.date.today() - dt.timedelta(days=9))
    record(a, "withdrawal", on=dt.date.today() - dt.timedelta(days=5))
    record(a, on=dt.date.today() - dt.timedelta(days=2))
    record(b, on=dt.date.today() - dt.timedelta(days=4))
    body_ = api(alice).get(URL).json()
    assert body_["count"] == 2
    by_number = {r["nhs_number"]: r for r in body_["results"]}
    assert by_number[a]["status"] == "opted_out"
    assert [h["event"] for h in by_number[a]["history"]] == ["dissent", "withdrawal", "dissent"]
    assert by_number[a]["since"] == (dt.date.today() - dt.timedelta(days=2)).isoformat()


def test_the_list_is_paginated_and_filters_by_nhs_number(api, alice, record, numbers):
    many = numbers(3)
    for n in many:
        record(n)
    page = api(alice).get(URL + "?page_size=2").json()
    assert (page["count"], len(page["results"]), page["next"] is not None) == (3, 2, True)
    one = api(alice).get(URL + f"?nhs_number={many[1][:3]}%20{many[1][3:]}").json()
    assert [r["nhs_number"] for r in one["results"]] == [many[1]]
    assert api(alice).get(URL + "?nhs_number=123").status_code == 400


def test_a_practice_manager_of_another_practice_sees_none_of_it(api, alice, charlie, record):
    record(TEST_NUMBER)
    assert api(charlie).get(URL).status_code == 404
    assert api(charlie).post(URL, body(event="withdrawal"), format="json").status_code == 404
    assert api(charlie).get(URL + "fhir/").status_code == 404
    assert api(charlie).get(URL + "export/").status_code == 404
    assert Type1Event.objects.count() == 1


def test_a_colleague_at_the_same_practice_sees_the_same_opt_outs(api, bob, record):
    record(TEST_NUMBER)
    assert api(bob).get(URL).json()["count"] == 1


def test_a_dpo_of_the_practice_may_not_record(api, dpo_a):
    assert api(dpo_a).post(URL, body(), format="json").status_code == 403


def test_a_csu_admin_does_not_see_a_practices_opt_outs(api, admin, practice_a):
    assert api(admin).get(URL).status_code == 404


def test_anonymous_callers_are_refused(api, practice_a):
    assert api().get(URL).status_code in (401, 403)


def test_a_non_practice_organisation_has_no_opt_outs(api, admin, csu):
    assert api(admin).get("/api/v1/practices/0AR/type1-opt-outs/").status_code == 404


def test_the_codes_come_from_the_reference_table(db):
    dissent = OptOutCode.objects.get(kind="dissent", preferred=True)
    assert (dissent.snomed_ct, dissent.read_v2, dissent.ctv3) == (
        "827241000000103",
        "9Nu0.",
        "XaZ89",
    )
    assert OptOutCode.objects.get(kind="withdrawal").snomed_ct == "827261000000102"


def test_the_raw_tables_hold_no_nhs_number(record, numbers):
    stored = numbers(3)
    for n in stored:
        record(n)
    with connection.cursor() as cursor:
        dump = []
        for table in connection.introspection.table_names():
            if table.startswith("consent_"):
                cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names from introspection
                dump.extend(str(value) for row in cursor.fetchall() for value in row)
    text = "\n".join(dump)
    assert Patient.objects.count() == 3
    for n in stored:
        assert n not in text


def test_events_cannot_be_changed_or_deleted_through_the_orm(record):
    event = record(TEST_NUMBER)
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        Type1Event.objects.update(method="phone")
    with pytest.raises(TypeError):
        Type1Event.objects.all().delete()


def test_the_database_refuses_to_update_an_event(record):
    record(TEST_NUMBER)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE consent_type1event SET method = 'phone'")
    assert Type1Event.objects.get().method == "letter"
