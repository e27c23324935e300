"""No NHS number of an upload touches the disk in clear while it streams in.

Each test sends a file larger than Django's in-memory size (2.5 MB) through the API or the
page, watching the upload temporary folder and the system's temporary folder (DiskWatch:
every file written there, read before it is removed). Django's default handlers would
leave the file in a plain temporary file; the portal keeps it in memory up to a hard limit.
"""

from __future__ import annotations

import datetime as dt
import tempfile

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from consent import services
from consent.models import NationalOptOutCheck, Type1Event
from tests.consent.conftest import dat
from tests.phm_portal.disk_watch import DiskWatch

DAY = (dt.date.today() - dt.timedelta(days=30)).isoformat()
TODAY = dt.date.today().isoformat()
DJANGO_DEFAULT_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]


def watch() -> DiskWatch:
    return DiskWatch([settings.FILE_UPLOAD_TEMP_DIR, tempfile.gettempdir()])


def type1_file(numbers: list[str]) -> bytes:
    body = "".join(f"{n},dissent,{DAY}\n" for n in numbers)
    return ("nhs_number,event,recorded_on\n" + body).encode()


@pytest.fixture
def large_type1(numbers):
    """A Type 1 file of 100,000 patients: 3 MB, past FILE_UPLOAD_MAX_MEMORY_SIZE."""
    many = numbers(100_000)
    content = type1_file(many)
    assert len(content) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    return many, content


@pytest.fixture
def awaiting_check(admin, programme, practice_a, numbers):
    """A check of 20,000 patients awaiting its returned file, and a 3.6 MB returned file."""
    cohort = numbers(20_000)
    services.patients_note_at_practice(actor="system", practice=practice_a, nhs_numbers=cohort)
    check = services.national_check_start(actor=admin, programme=programme)
    returned = dat(cohort[1:] * 15)  # the service may repeat lines; the set is what counts
    assert len(returned) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    return check, cohort, returned


def test_the_watch_sees_an_nhs_number_djangos_default_handlers_write_to_disk(
    api, alice, large_type1, settings
):
    """The test below tests something: with Django's handlers the file lands in a temp file."""
    settings.FILE_UPLOAD_HANDLERS = DJANGO_DEFAULT_HANDLERS
    settings.PHM_OPT_OUT_FILE_MAX_BYTES = 1000  # refused after the upload: no import to wait for
    many, content = large_type1
    with watch() as seen:
        response = api(alice).post(
            "/api/v1/practices/A81001/type1-opt-outs/import/",
            {"file": SimpleUploadedFile("optouts.csv", content, "text/csv")},
            format="multipart",
        )
    assert response.status_code == 413
    leaks = seen.leaks(many)
    assert len(leaks) == 1 and "held 100000 NHS numbers" in leaks[0], leaks


def test_a_large_type1_import_through_the_api_writes_no_nhs_number_to_disk(api, alice, large_type1):
    many, content = large_type1
    with watch() as seen:
        response = api(alice).post(
            "/api/v1/practices/A81001/type1-opt-outs/import/",
            {"file": SimpleUploadedFile("optouts.csv", content, "text/csv")},
            format="multipart",
        )
    assert response.status_code == 201, response.content[:300]
    assert response.json()["accepted"] == 100_000
    assert seen.leaks(many) == []
    assert seen.written == set() and seen.unnamed == []


def test_a_large_type1_import_through_the_page_writes_no_nhs_number_to_disk(
    alice, practice_a, large_type1
):
    """The page's form, with CSRF enforced: the CSRF check reads the body first."""
    many, content = large_type1
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    url = "/practices/A81001/opt-outs/import/"
    assert client.get(url).status_code == 200
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    with watch() as seen:
        response = client.post(
            url,
            {
                "csrfmiddlewaretoken": token,
                "file": SimpleUploadedFile("optouts.csv", content, "text/csv"),
            },
        )
    assert response.status_code == 200, response.content[:300]
    assert Type1Event.objects.count() == 100_000
    assert seen.leaks(many) == []
    assert seen.written == set() and seen.unnamed == []


def test_a_large_returned_file_through_the_api_writes_no_nhs_number_to_disk(
    api, admin, awaiting_check
):
    check, cohort, returned = awaiting_check
    with watch() as seen:
        response = api(admin).post(
            f"/api/v1/national-opt-outs/checks/{check.pk}/returned/",
            {"returned": SimpleUploadedFile("r.dat", returned), "checked_on": TODAY},
            format="multipart",
        )
    assert response.status_code == 200, response.content[:300]
    assert (response.json()["returned"], response.json()["opted_out"]) == (19_999, 1)
    assert seen.leaks(cohort) == []
    assert seen.written == set() and seen.unnamed == []


def test_a_large_returned_file_through_the_page_writes_no_nhs_number_to_disk(admin, awaiting_check):
    check, cohort, returned = awaiting_check
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    url = f"/national-opt-outs/{check.pk}/"
    assert client.get(url).status_code == 200
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    with watch() as seen:
        response = client.post(
            url,
            {
                "csrfmiddlewaretoken": token,
                "returned": SimpleUploadedFile("r.dat", returned),
                "checked_on": TODAY,
            },
        )
    assert response.status_code == 302, response.content[:300]
    check.refresh_from_db()
    assert (check.status, check.opted_out) == (NationalOptOutCheck.Status.COMPLETE, 1)
    assert seen.leaks(cohort) == []
    assert seen.written == set() and seen.unnamed == []


def test_both_files_of_a_check_recorded_at_once_stay_off_disk(api, admin, programme, numbers):
    cohort = numbers(20_000)
    submitted, returned = dat(cohort * 12), dat(cohort[1:] * 12)
    assert len(submitted) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    with watch() as seen:
        response = api(admin).post(
            "/api/v1/national-opt-outs/checks/",
            {
                "programme": programme.slug,
                "submitted": SimpleUploadedFile("s.dat", submitted),
                "returned": SimpleUploadedFile("r.dat", returned),
                "checked_on": TODAY,
            },
            format="multipart",
        )
    assert response.status_code == 201, response.content[:300]
    assert response.json()["opted_out"] == 1
    assert seen.leaks(cohort) == []
    assert seen.written == set() and seen.unnamed == []
