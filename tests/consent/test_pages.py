import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from consent.models import PracticeListSize, Type1Event
from phm_portal.models import AuditEvent
from tests.consent.conftest import TEST_NUMBER

BASE = "/practices/A81001/opt-outs/"
PAGES = ["", "record/", "lookup/", "import/", "rate/", "requests/", "export.csv", "fhir.json"]


@pytest.mark.parametrize("page", PAGES)
def test_the_pages_need_sign_in(client, practice_a, page):
    response = client.get(BASE + page)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("page", PAGES)
def test_a_practice_manager_of_another_practice_gets_a_404(client, charlie, practice_a, page):
    client.force_login(charlie)
    assert client.get(BASE + page).status_code == 404


def test_the_outsider_cannot_record_through_the_page(client, charlie, practice_a):
    client.force_login(charlie)
    response = client.post(
        BASE + "record/",
        {
            "nhs_number": TEST_NUMBER,
            "event": "dissent",
            "method": "letter",
            "recorded_on": "2026-01-05",
        },
    )
    assert response.status_code == 404
    assert not Type1Event.objects.exists()


def test_the_outsider_cannot_import_or_record_a_list_size(client, charlie, practice_a):
    client.force_login(charlie)
    f = SimpleUploadedFile(
        "x.csv", b"nhs_number,event,recorded_on\n9434765919,dissent,2026-01-05\n"
    )
    assert client.post(BASE + "import/", {"file": f}).status_code == 404
    assert client.post(BASE + "rate/", {"as_of": "2026-01-05", "patients": 100}).status_code == 404
    assert not Type1Event.objects.exists() and not PracticeListSize.objects.exists()


def test_the_home_page_links_a_practice_manager_to_the_opt_out_pages(client, alice):
    client.force_login(alice)
    html = client.get("/").content.decode()
    for page in ["", "record/", "lookup/", "import/", "requests/", "rate/"]:
        assert f'href="{BASE}{page}"' in html
    assert 'href="/practices/A81001/"' in html


def test_recording_an_opt_out_on_the_page_leads_to_the_patients_history(client, alice):
    client.force_login(alice)
    response = client.post(
        BASE + "record/",
        {"nhs_number": "943 476 5919", "event": "dissent", "method": "in_person",
         "recorded_on": (dt.date.today() - dt.timedelta(days=1)).isoformat()},
        follow=True,
    )  # fmt: skip
    html = response.content.decode()
    assert response.status_code == 200
    assert "NHS number 943 476 5919" in html
    assert "Opted out" in html and "In person" in html
    assert "Record a withdrawal of the opt-out" in html


def test_a_bad_nhs_number_on_the_page_is_shown_on_its_field(client, alice):
    client.force_login(alice)
    response = client.post(
        BASE + "record/",
        {
            "nhs_number": "9434765918",
            "event": "dissent",
            "method": "letter",
            "recorded_on": "2026-01-05",
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "There is a problem" in html
    assert 'href="#id_nhs_number"' in html and "check digit" in html


def test_a_withdrawal_without_dissent_on_the_page_is_a_409_saying_why(client, alice):
    client.force_login(alice)
    response = client.post(
        BASE + "record/",
        {
            "nhs_number": TEST_NUMBER,
            "event": "withdrawal",
            "method": "letter",
            "recorded_on": "2026-01-05",
        },
    )
    assert response.status_code == 409
    assert "no current opt-out to withdraw" in response.content.decode()


def test_the_list_shows_current_opt_outs_paginated(client, alice, record, numbers):
    many = numbers(27)
    for n in many:
        record(n)
    client.force_login(alice)
    html = client.get(BASE).content.decode()
    assert "27 patients" in html
    assert "Page 2 of 2" in html
    withdrawn = client.get(BASE + "?status=withdrawn").content.decode()
    assert "No patient has withdrawn an opt-out." in withdrawn


def test_an_empty_list_says_what_to_do(client, alice):
    client.force_login(alice)
    html = client.get(BASE).content.decode()
    assert "No patient is opted out at this practice." in html
    assert "<h1>" in html and html.count("<h1") == 1


def test_lookup_by_nhs_number_finds_the_patient_without_putting_it_in_a_url(client, alice, record):
    event = record(TEST_NUMBER)
    client.force_login(alice)
    response = client.post(BASE + "lookup/", {"nhs_number": "943 476 5919"})
    assert response.status_code == 302
    assert response["Location"] == f"{BASE}patients/{event.patient_id}/"
    assert TEST_NUMBER not in response["Location"]


def test_lookup_of_an_unknown_number_says_so(client, alice, numbers):
    client.force_login(alice)
    (a,) = numbers(1)
    html = client.post(BASE + "lookup/", {"nhs_number": a}).content.decode()
    assert "No Type 1 event is recorded at this practice" in html


def test_lookup_of_an_invalid_number_is_a_400(client, alice):
    client.force_login(alice)
    assert client.post(BASE + "lookup/", {"nhs_number": "12345"}).status_code == 400


def test_a_patient_of_another_practice_is_a_404_on_the_history_page(
    client, alice, charlie, practice_b, record
):
    event = record(TEST_NUMBER, practice=practice_b, by=charlie)
    client.force_login(alice)
    assert client.get(f"{BASE}patients/{event.patient_id}/").status_code == 404


def test_the_csv_export_lists_every_patients_state(client, alice, record, numbers):
    a, b = numbers(2)
    record(a)
    client.force_login(alice)
    response = client.get(BASE + "export.csv")
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0] == "nhs_number,status,since,code,method,recorded_at,recorded_by"
    assert lines[1].startswith(f"{a},opted_out,")
    assert len(lines) == 2
    assert AuditEvent.objects.get(action="type1.exported").details == {
        "format": "csv",
        "patients": 1,
    }


def test_the_import_page_reports_bad_lines_and_stores_nothing(client, alice, numbers):
    (a,) = numbers(1)
    client.force_login(alice)
    content = (
        f"nhs_number,event,recorded_on\n{a},dissent,2026-01-05\n123,dissent,2026-01-05\n".encode()
    )
    response = client.post(BASE + "import/", {"file": SimpleUploadedFile("o.csv", content)})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was imported" in html and '<td class="nhsuk-table__cell">3</td>' in html
    assert not Type1Event.objects.exists()


def test_the_import_page_imports_a_good_file(client, alice, numbers):
    (a,) = numbers(1)
    client.force_login(alice)
    content = f"nhs_number,event,recorded_on\r\n{a},dissent,2026-01-05\r\n".encode()
    response = client.post(BASE + "import/", {"file": SimpleUploadedFile("o.csv", content)})
    assert response.status_code == 200
    assert "1 line imported" in response.content.decode()
    assert Type1Event.objects.count() == 1


def test_the_rate_page_draws_the_chart_on_the_server_with_a_table(client, alice, record, numbers):
    for n in numbers(3):
        record(n)
    client.force_login(alice)
    response = client.post(BASE + "rate/", {"as_of": "2025-01-01", "patients": 600}, follow=True)
    html = response.content.decode()
    assert "<svg" in html and "<rect" in html and "<script" not in html.split("</head>")[1]
    assert "0.50%" in html  # 3 of 600
    assert 'id="chart-table"' in html
    assert PracticeListSize.objects.get().patients == 600


def test_a_list_size_must_be_positive(client, alice):
    client.force_login(alice)
    response = client.post(BASE + "rate/", {"as_of": "2025-01-01", "patients": 0})
    assert response.status_code == 400
    assert not PracticeListSize.objects.exists()


def test_the_csu_admin_has_a_national_checks_page(client, admin, programme):
    client.force_login(admin)
    html = client.get("/national-opt-outs/").content.decode()
    assert "National data opt-out checks" in html and "Testshire PHM" in html
    assert 'href="/national-opt-outs/"' in client.get("/").content.decode()


def test_a_practice_manager_may_not_run_national_checks(client, alice, programme):
    client.force_login(alice)
    assert client.get("/national-opt-outs/").status_code == 403
    assert client.post("/national-opt-outs/", {"programme": "testshire"}).status_code == 403


def test_a_check_is_started_and_completed_through_the_pages(
    client, admin, programme, record, numbers
):
    a, b = numbers(2)
    record(a)
    record(b)
    client.force_login(admin)
    response = client.post("/national-opt-outs/", {"programme": "testshire"})
    assert response.status_code == 302
    detail = response["Location"]
    assert "Download the submission file" in client.get(detail).content.decode()
    bad = client.post(
        detail,
        {
            "returned": SimpleUploadedFile("r.dat", b"123\n"),
            "checked_on": dt.date.today().isoformat(),
        },
    )
    assert bad.status_code == 400 and "Line 1" in bad.content.decode()
    good = client.post(
        detail,
        {
            "returned": SimpleUploadedFile("r.dat", f"{a}\n".encode()),
            "checked_on": dt.date.today().isoformat(),
        },
        follow=True,
    )
    html = good.content.decode()
    assert "Complete" in html and "Opted out" in html
