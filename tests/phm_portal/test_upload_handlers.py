"""Every upload is held in memory up to PHM_MEMORY_UPLOAD_MAX_BYTES, never written in clear.

Past the limit the request is a 413 naming it, on the API and the pages alike (with the
CSRF check reading the body first, or the view), and nothing is stored or left behind.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from consent.models import NationalOptOutCheck, Type1Event
from tests.conftest import PASSWORD

TYPE1_API = "/api/v1/practices/A81001/type1-opt-outs/import/"
TYPE1_PAGE = "/practices/A81001/opt-outs/import/"
HEADER = b"nhs_number,event,recorded_on\n"
LINE = b"9434765919,dissent,2025-01-01\n"


def type1(size: int) -> SimpleUploadedFile:
    """A Type 1 file of exactly `size` bytes (the header, then lines, padded with blank lines)."""
    body = HEADER + LINE
    return SimpleUploadedFile("optouts.csv", body + b"\n" * (size - len(body)), "text/csv")


def test_the_only_upload_handler_keeps_files_in_memory():
    assert settings.FILE_UPLOAD_HANDLERS == [
        "phm_portal.lib.upload_handlers.MemoryOnlyUploadHandler"
    ]


def test_a_file_over_the_memory_limit_is_a_413_on_the_api_naming_it(api, alice, settings):
    settings.PHM_MEMORY_UPLOAD_MAX_BYTES = 10_000
    response = api(alice).post(TYPE1_API, {"file": type1(10_001)}, format="multipart")
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert "10000 bytes" in detail and "PHM_MEMORY_UPLOAD_MAX_BYTES" in detail
    assert not Type1Event.objects.exists()
    assert os.listdir(settings.FILE_UPLOAD_TEMP_DIR) == []


def test_a_file_at_the_memory_limit_is_accepted(api, alice, settings):
    settings.PHM_MEMORY_UPLOAD_MAX_BYTES = 10_000
    response = api(alice).post(TYPE1_API, {"file": type1(10_000)}, format="multipart")
    assert response.status_code == 201, response.content[:300]
    assert Type1Event.objects.count() == 1


def test_the_limit_counts_the_files_of_a_request_together(api, admin, programme, settings):
    settings.PHM_MEMORY_UPLOAD_MAX_BYTES = 10_000
    half = b"9434765919\r\n" + b"\r\n" * 3000  # 6,012 bytes each: 12,024 together
    response = api(admin).post(
        "/api/v1/national-opt-outs/checks/",
        {
            "programme": programme.slug,
            "submitted": SimpleUploadedFile("s.dat", half),
            "returned": SimpleUploadedFile("r.dat", half),
            "checked_on": "2020-01-01",
        },
        format="multipart",
    )
    assert response.status_code == 413
    assert "PHM_MEMORY_UPLOAD_MAX_BYTES" in response.json()["detail"]
    assert not NationalOptOutCheck.objects.exists()


def test_a_session_api_call_with_csrf_checked_gets_the_413_too(alice, settings):
    """DRF's CSRF check reads the body while it authenticates: the same answer comes out."""
    settings.PHM_MEMORY_UPLOAD_MAX_BYTES = 10_000
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="alice", password=PASSWORD)
    client.get(TYPE1_PAGE)
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    response = client.post(
        TYPE1_API, {"csrfmiddlewaretoken": token, "file": type1(20_000)}, format="multipart"
    )
    assert response.status_code == 413
    assert "PHM_MEMORY_UPLOAD_MAX_BYTES" in response.json()["detail"]
    assert not Type1Event.objects.exists()


def test_a_file_over_the_memory_limit_is_a_413_page_naming_it(client, alice, settings):
    settings.PHM_MEMORY_UPLOAD_MAX_BYTES = 10_000
    client.force_login(alice)
    response = client.post(TYPE1_PAGE, {"file": type1(10_001)})
    assert response.status_code == 413
    html = response.content.decode()
    assert "10000 bytes" in html and "PHM_MEMORY_UPLOAD_MAX_BYTES" in html
    assert not Type1Event.objects.exists()


def test_the_page_answers_413_when_the_csrf_check_reads_the_body_first(alice, settings):
    settings.PHM_MEMORY_UPLOAD_MAX_BYTES = 10_000
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get(TYPE1_PAGE)
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    response = client.post(TYPE1_PAGE, {"csrfmiddlewaretoken": token, "file": type1(50_000)})
    assert response.status_code == 413
    assert "PHM_MEMORY_UPLOAD_MAX_BYTES" in response.content.decode()
    assert not Type1Event.objects.exists()


def test_the_memory_limit_defaults_to_two_of_the_largest_files_and_fails_loudly(tmp_path):
    from tests.phm_portal.test_settings import run_manage

    probe = "from django.conf import settings; print(settings.PHM_MEMORY_UPLOAD_MAX_BYTES)"
    env = {"PHM_DEMO": "1", "PHM_OPT_OUT_FILE_MAX_BYTES": "30000000"}
    shown = run_manage(tmp_path, env, "shell", "-c", probe)
    assert shown.stdout.strip().splitlines()[-1] == "60000000", shown.stderr[-500:]
    refused = run_manage(tmp_path, {**env, "PHM_MEMORY_UPLOAD_MAX_BYTES": "0"}, "check")
    assert refused.returncode != 0
    assert "PHM_MEMORY_UPLOAD_MAX_BYTES must be at least 1" in refused.stderr
