"""The consent upload pages name the file limit they refuse a file over (a 413)."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile

from consent import services

TYPE1_PAGE = "/practices/A81001/opt-outs/import/"


def type1(size: int) -> SimpleUploadedFile:
    body = b"nhs_number,event,recorded_on\n9434765919,dissent,2025-01-01\n"
    return SimpleUploadedFile("optouts.csv", body + b"\n" * (size - len(body)), "text/csv")


def test_a_page_upload_under_the_memory_limit_but_over_the_file_limit_names_the_file_limit(
    client, alice, settings
):
    settings.PHM_OPT_OUT_FILE_MAX_BYTES = 1_000
    client.force_login(alice)
    response = client.post(TYPE1_PAGE, {"file": type1(2_000)})
    assert response.status_code == 413
    assert "the limit is 1000 bytes" in response.content.decode()


def test_the_national_check_page_names_the_file_limit(client, admin, programme, record, settings):
    record("9434765919")
    check = services.national_check_start(actor=admin, programme=programme)
    settings.PHM_OPT_OUT_FILE_MAX_BYTES = 100
    client.force_login(admin)
    response = client.post(
        f"/national-opt-outs/{check.pk}/",
        {"returned": SimpleUploadedFile("r.dat", b"9434765919\n" * 20), "checked_on": "2020-01-01"},
    )
    assert response.status_code == 413
    assert "the limit is 100 bytes" in response.content.decode()
