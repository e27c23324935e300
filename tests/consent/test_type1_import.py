import datetime as dt

from django.core.files.uploadedfile import SimpleUploadedFile

from consent.models import Patient, Registration, Type1Event, Type1Import
from phm_portal.models import AuditEvent

URL = "/api/v1/practices/A81001/type1-opt-outs/import/"
DAY = (dt.date.today() - dt.timedelta(days=30)).isoformat()
LATER = (dt.date.today() - dt.timedelta(days=3)).isoformat()


def upload(client, content: bytes, *, partial: bool = False, name: str = "optouts.csv"):
    url = URL + ("?partial=1" if partial else "")
    return client.post(
        url, {"file": SimpleUploadedFile(name, content, "text/csv")}, format="multipart"
    )


def csv_bytes(lines: list[str], *, bom: bool = False, crlf: bool = False) -> bytes:
    text = ("\r\n" if crlf else "\n").join(lines) + ("\r\n" if crlf else "\n")
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


def test_a_good_file_is_imported_whole(api, alice, numbers):
    a, b, c = numbers(3)
    content = csv_bytes(
        ["nhs_number,event,recorded_on", f"{a},dissent,{DAY}", f"{b},dissent,{DAY}",
         f"{c},dissent,{DAY}", f"{a},withdrawal,{LATER}"]
    )  # fmt: skip
    response = upload(api(alice), content)
    assert response.status_code == 201, response.json()
    assert response.json() | {"id": None} == {
        "id": None, "lines": 4, "accepted": 4, "rejected": [], "stored": True
    }  # fmt: skip
    assert Type1Event.objects.count() == 4
    assert Type1Event.objects.filter(method="not_recorded").count() == 4
    batch = Type1Import.objects.get()
    assert (batch.accepted, batch.uploaded_by.username) == (4, "alice")
    audit = AuditEvent.objects.get(action="type1.imported")
    assert audit.details["accepted"] == 4
    assert a not in str(audit.details)


def test_bom_crlf_quotes_codes_and_uk_dates_are_understood(api, alice, numbers):
    a, b, c = numbers(3)
    content = csv_bytes(
        ['"NHS_Number","Event","Recorded_On","Method"', f'"{a[:3]} {a[3:6]} {a[6:]}","9Nu0",{DAY},letter',
         f'"{b}","XaZ89","01/02/2025",phone', f"{c},827241000000103,{DAY},", f'{a},"9Nu1",{LATER},"online"'],
        bom=True, crlf=True,
    )  # fmt: skip
    response = upload(api(alice), content)
    assert response.status_code == 201, response.json()
    assert response.json()["accepted"] == 4
    assert sorted(Type1Event.objects.values_list("method", flat=True)) == [
        "letter", "not_recorded", "online", "phone"
    ]  # fmt: skip
    assert Type1Event.objects.filter(recorded_on=dt.date(2025, 2, 1)).count() == 1


def test_with_any_bad_line_nothing_is_stored_and_every_bad_line_is_reported(api, alice, numbers):
    a, b, c = numbers(3)
    content = csv_bytes(
        ["nhs_number,event,recorded_on", f"{a},dissent,{DAY}", "9434765918,dissent,2025-01-01",
         f"{b},opt-in,{DAY}", f"{c},dissent,31/31/2025", "", f"{c},withdrawal,{DAY}",
         f"{a},dissent,{LATER}", f"{b},dissent", f"{c},dissent,2999-01-01"]
    )  # fmt: skip
    response = upload(api(alice), content)
    assert response.status_code == 400
    report = response.json()
    assert report["stored"] is False and report["accepted"] == 0
    lines = {r["line"]: r["error"] for r in report["rejected"]}
    assert sorted(lines) == [3, 4, 5, 7, 8, 9, 10]
    assert "check digit" in lines[3]
    assert "event" in lines[4]
    assert "recorded_on" in lines[5]
    assert "no current opt-out" in lines[7]  # line 6 is blank and skipped
    assert "opted out since" in lines[8]
    assert "expected 3 fields" in lines[9]
    assert "future" in lines[10]
    assert not Type1Event.objects.exists()
    assert not Patient.objects.exists()
    assert AuditEvent.objects.filter(action="type1.import_refused").exists()


def test_partial_import_stores_the_good_lines_and_reports_the_bad(api, alice, numbers):
    a, b = numbers(2)
    content = csv_bytes(
        ["nhs_number,event,recorded_on", f"{a},dissent,{DAY}", "123,dissent,2025-01-01",
         f"{b},withdrawal,{DAY}"]
    )  # fmt: skip
    response = upload(api(alice), content, partial=True)
    assert response.status_code == 201
    assert response.json()["accepted"] == 1
    assert [r["line"] for r in response.json()["rejected"]] == [3, 4]
    assert Type1Event.objects.count() == 1
    assert Type1Import.objects.get().rejected[0]["line"] == 3


def test_a_line_that_follows_a_stored_event_is_checked_against_it(api, alice, record, numbers):
    (a,) = numbers(1)
    record(a, on=dt.date.today() - dt.timedelta(days=40))
    content = csv_bytes(["nhs_number,event,recorded_on", f"{a},dissent,{DAY}"])
    assert upload(api(alice), content).status_code == 400
    content = csv_bytes(["nhs_number,event,recorded_on", f"{a},withdrawal,{DAY}"])
    assert upload(api(alice), content).status_code == 201


def test_a_file_without_the_header_is_refused_naming_line_one(api, alice, numbers):
    (a,) = numbers(1)
    response = upload(api(alice), csv_bytes([f"{a},dissent,{DAY}"]))
    assert response.status_code == 400
    assert "Line 1" in response.json()["file"][0]


def test_an_empty_file_and_a_header_only_file_are_refused(api, alice):
    assert upload(api(alice), b"").status_code == 400
    assert upload(api(alice), b"nhs_number,event,recorded_on\r\n").status_code == 400


def test_a_file_that_is_not_utf8_is_refused_naming_the_line(api, alice, numbers):
    (a,) = numbers(1)
    content = f"nhs_number,event,recorded_on\n{a},dissent,{DAY}\n".encode() + b"\xff\xfe,x,y\n"
    response = upload(api(alice), content)
    assert response.status_code == 400
    assert "Line 3" in response.json()["file"][0]


def test_broken_quoting_is_refused(api, alice):
    response = upload(
        api(alice), b'nhs_number,event,recorded_on\n"943"4765919,dissent,2025-01-01\n'
    )
    assert response.status_code == 400
    assert "Line 2" in response.json()["file"][0]


def test_a_missing_file_is_named(api, alice, practice_a):
    response = api(alice).post(URL, {}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()


def test_a_file_over_the_limit_is_a_413(api, alice, settings):
    settings.PHM_OPT_OUT_FILE_MAX_BYTES = 100
    response = upload(
        api(alice), b"nhs_number,event,recorded_on\n" + b"9434765919,dissent,2025-01-01\n" * 5
    )
    assert response.status_code == 413
    assert not Type1Event.objects.exists()


def test_the_outsider_cannot_import(api, charlie, numbers):
    (a,) = numbers(1)
    content = csv_bytes(["nhs_number,event,recorded_on", f"{a},dissent,{DAY}"])
    assert upload(api(charlie), content).status_code == 404
    assert not Type1Event.objects.exists()


def test_a_number_known_elsewhere_is_not_stored_twice(
    api, alice, charlie, practice_b, numbers, record
):
    (a,) = numbers(1)
    record(a, practice=practice_b, by=charlie)
    content = csv_bytes(["nhs_number,event,recorded_on", f"{a},dissent,{DAY}"])
    assert upload(api(alice), content).status_code == 201
    assert Patient.objects.count() == 1
    assert Registration.objects.filter(patient=Patient.objects.get()).count() == 2
