import datetime as dt

from django.db import connection

from consent.models import Type1Event, Type1Request
from phm_portal.models import AuditEvent
from tests.consent.conftest import TEST_NUMBER

PUBLIC = "/practices/A81001/"
FORM = {
    "name": "Jo Example",
    "date_of_birth": "1970-03-31",
    "nhs_number": "943 476 5919",
    "contact": "jo@example.com",
}


def submit(client, **overrides):
    return client.post(PUBLIC, {**FORM, **overrides})


def test_the_public_page_explains_both_opt_outs_without_sign_in(client, programme):
    response = client.get(PUBLIC)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>Practice A Surgery: opting out of sharing your data" in html
    assert "Type 1 opt-out" in html and "National Data Opt-out" in html
    assert 'href="https://www.nhs.uk/your-nhs-data-matters/"' in html
    assert "0300 3035678" in html
    assert "Testshire PHM" in html
    assert 'name="date_of_birth_day"' in html


def test_only_gp_practices_have_a_public_page(client, csu):
    assert client.get("/practices/0AR/").status_code == 404
    assert client.get("/practices/ZZZ999/").status_code == 404


def test_a_patient_gets_a_reference_and_the_request_waits_encrypted(client, practice_a):
    response = submit(client)
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    req = Type1Request.objects.get()
    assert req.reference in page and req.reference.startswith("T1-")
    assert req.status == "pending"
    assert not Type1Event.objects.exists()  # never applied automatically
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM consent_type1request")
        raw = str(cursor.fetchall())
    for secret in ("Jo Example", TEST_NUMBER, "jo@example.com", "1970-03-31"):
        assert secret not in raw
    event = AuditEvent.objects.get(action="type1.request_submitted")
    assert event.actor == "public" and TEST_NUMBER not in str(event.details)


def test_the_nhs_number_is_optional_but_checked_when_given(client, practice_a):
    assert submit(client, nhs_number="").status_code == 302
    response = submit(client, nhs_number="9434765918")
    assert response.status_code == 400
    assert "Check your NHS number: it has 10 digits" in response.content.decode()
    assert Type1Request.objects.count() == 1


def test_missing_name_or_contact_and_a_future_birth_date_are_refused(client, practice_a):
    future = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    for overrides in (
        {"name": ""},
        {"contact": ""},
        {"date_of_birth": future},
        {"date_of_birth": "31/31/1970"},
    ):
        assert submit(client, **overrides).status_code == 400
    assert not Type1Request.objects.exists()


def test_requests_are_rate_limited_per_client_with_a_clear_page(client, practice_a, settings):
    settings.PHM_OPT_OUT_REQUESTS_PER_HOUR = 2
    assert submit(client).status_code == 302
    assert submit(client).status_code == 302
    response = submit(client)
    assert response.status_code == 429
    assert "Too many requests" in response.content.decode()
    assert Type1Request.objects.count() == 2
    other = client.post(PUBLIC, FORM, REMOTE_ADDR="192.0.2.10")
    assert other.status_code == 302


def test_the_queue_shows_pending_requests_to_the_practice_only(client, alice, charlie, practice_b):
    submit(client)
    req = Type1Request.objects.get()
    client.force_login(alice)
    html = client.get("/practices/A81001/opt-outs/requests/").content.decode()
    assert req.reference in html and "Jo Example" in html
    client.force_login(charlie)
    assert client.get("/practices/A81001/opt-outs/requests/").status_code == 404
    assert client.get(f"/practices/A81001/opt-outs/requests/{req.reference}/").status_code == 404
    assert client.get(f"/practices/B82002/opt-outs/requests/{req.reference}/").status_code == 404


def test_the_practice_manager_records_a_verified_request_as_an_online_dissent(client, alice):
    submit(client)
    req = Type1Request.objects.get()
    client.force_login(alice)
    url = f"/practices/A81001/opt-outs/requests/{req.reference}/"
    response = client.post(
        url,
        {"action": "record", "nhs_number": TEST_NUMBER, "recorded_on": dt.date.today().isoformat()},
    )
    assert response.status_code == 302
    req.refresh_from_db()
    event = Type1Event.objects.get()
    assert (req.status, req.decided_by.username) == ("recorded", "alice")
    assert (event.method, event.event, event.source_request_id) == ("online", "dissent", req.pk)
    assert client.post(url, {"action": "decline", "reason": "again"}).status_code == 409


def test_recording_a_request_for_someone_already_opted_out_is_a_409_and_changes_nothing(
    client, alice, record
):
    record(TEST_NUMBER)
    submit(client)
    req = Type1Request.objects.get()
    client.force_login(alice)
    response = client.post(
        f"/practices/A81001/opt-outs/requests/{req.reference}/",
        {"action": "record", "nhs_number": TEST_NUMBER, "recorded_on": dt.date.today().isoformat()},
    )
    assert response.status_code == 409
    req.refresh_from_db()
    assert req.status == "pending"
    assert Type1Event.objects.count() == 1


def test_declining_needs_a_reason(client, alice):
    submit(client)
    req = Type1Request.objects.get()
    client.force_login(alice)
    url = f"/practices/A81001/opt-outs/requests/{req.reference}/"
    assert client.post(url, {"action": "decline", "reason": ""}).status_code == 400
    assert (
        client.post(
            url, {"action": "decline", "reason": "Could not confirm who asked."}
        ).status_code
        == 302
    )
    req.refresh_from_db()
    assert (req.status, req.decline_reason) == ("declined", "Could not confirm who asked.")
    assert AuditEvent.objects.filter(action="type1.request_declined").exists()
    assert not Type1Event.objects.exists()


def test_the_api_serves_the_queue_and_the_decisions(api, alice, charlie, client):
    submit(client)
    req = Type1Request.objects.get()
    base = "/api/v1/practices/A81001/type1-requests/"
    listed = api(alice).get(base).json()
    assert [(r["reference"], r["nhs_number"]) for r in listed["results"]] == [
        (req.reference, TEST_NUMBER)
    ]
    assert api(charlie).get(base).status_code == 404
    assert (
        api(charlie)
        .post(f"{base}{req.reference}/record/", {"nhs_number": TEST_NUMBER}, format="json")
        .status_code
        == 404
    )
    response = api(alice).post(
        f"{base}{req.reference}/record/", {"nhs_number": TEST_NUMBER}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["method"] == "online"
    again = api(alice).post(f"{base}{req.reference}/decline/", {"reason": "x"}, format="json")
    assert again.status_code == 409


def test_the_outsider_cannot_record_or_decline_a_request(client, charlie, practice_a):
    submit(client)
    req = Type1Request.objects.get()
    client.force_login(charlie)
    url = f"/practices/A81001/opt-outs/requests/{req.reference}/"
    assert (
        client.post(
            url, {"action": "record", "nhs_number": TEST_NUMBER, "recorded_on": "2026-01-05"}
        ).status_code
        == 404
    )
    assert client.post(url, {"action": "decline", "reason": "no"}).status_code == 404
    req.refresh_from_db()
    assert req.status == "pending" and not Type1Event.objects.exists()


def test_a_request_made_on_29_february_is_taken(client, practice_a, monkeypatch):
    from django.utils import timezone

    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: dt.date(2028, 2, 29))
    assert submit(client).status_code == 302
    assert submit(client, date_of_birth="1890-01-01").status_code == 400
    assert Type1Request.objects.count() == 1
