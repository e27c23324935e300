"""Hostile files on every upload of the API: each gets a clear 4xx and leaves nothing behind.

The uploads: an extract (POST /api/v1/datasets/), a practice's Type 1 opt-out file
(POST /api/v1/practices/{ods}/type1-opt-outs/import/) and the two files of a national
data opt-out check (POST /api/v1/national-opt-outs/checks/). Nothing behind means no
row, no file under MEDIA_ROOT and nothing in the upload temporary folder.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from consent.models import NationalOptOutCheck, Type1Event
from datasets.models import Dataset
from tests.datasets.conftest import MAPPING, make_flow

GOOD_EXTRACT = b"nhs_number,forename,date_of_birth,postcode,practice,event_code\n9434765919,Ann,1960-03-01,CB1 2AB,A81001,XaZ89\n"
GOOD_TYPE1 = b"nhs_number,event,recorded_on\n9434765919,dissent,2025-01-01\n"
GOOD_DAT = b"9434765919\r\n"
YESTERDAY = (dt.date.today() - dt.timedelta(days=1)).isoformat()
ONE_HUGE_LINE = b"9" * (3 * 1024 * 1024)  # 3 MiB, no newline: past the in-memory limit too

# case: (file name, content, expected status, words the answer must contain)
CASES = {
    "a PNG image": ("x.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 400, "PNG image"),
    "a zip": ("x.zip", b"PK\x03\x04\x14\x00\x00\x00\x08\x00", 400, "ZIP archive"),
    "an empty file": ("x.csv", b"", 400, "empty|no NHS number"),
    "over the limit": ("x.csv", b"x" * 5000, 413, "limit"),
    "one enormous line": ("x.csv", ONE_HUGE_LINE, 400, "ine 1"),
}


def _file(name: str, content: bytes) -> io.BytesIO:
    f = io.BytesIO(content)
    f.name = name
    return f


@pytest.fixture
def endpoints(programme, practice_a, csu, alice, admin, settings):
    settings.PHM_UPLOAD_MAX_BYTES = 8 * 1024 * 1024
    settings.PHM_OPT_OUT_FILE_MAX_BYTES = 8 * 1024 * 1024
    flow = make_flow(programme, practice_a, csu)

    def extract(api, name, content):
        return api(alice).post(
            "/api/v1/datasets/",
            {"file": _file(name, content), "data_flow": flow.pk, "mapping": MAPPING},
            format="multipart",
        )

    def type1(api, name, content):
        return api(alice).post(
            "/api/v1/practices/A81001/type1-opt-outs/import/",
            {"file": _file(name, content)},
            format="multipart",
        )

    def national_submitted(api, name, content):
        return api(admin).post(
            "/api/v1/national-opt-outs/checks/",
            {
                "programme": programme.slug,
                "submitted": _file(name, content),
                "returned": _file("returned.dat", GOOD_DAT),
                "checked_on": YESTERDAY,
            },
            format="multipart",
        )

    def national_returned(api, name, content):
        return api(admin).post(
            "/api/v1/national-opt-outs/checks/",
            {
                "programme": programme.slug,
                "submitted": _file("submitted.dat", GOOD_DAT),
                "returned": _file(name, content),
                "checked_on": YESTERDAY,
            },
            format="multipart",
        )

    return {
        "extract": (extract, GOOD_EXTRACT),
        "type1": (type1, GOOD_TYPE1),
        "national submitted": (national_submitted, GOOD_DAT),
        "national returned": (national_returned, GOOD_DAT),
    }


def files_under(folder: str) -> list[str]:
    root = Path(folder)
    return [str(p) for p in root.rglob("*") if p.is_file()] if root.exists() else []


def message_of(response) -> str:
    body = response.json()
    return " ".join(str(v) for v in body.values())


@pytest.mark.parametrize(
    "endpoint", ["extract", "type1", "national submitted", "national returned"]
)
@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_file_gets_a_clear_4xx_and_leaves_nothing(
    api, endpoints, endpoint, case, settings
):
    send, good = endpoints[endpoint]
    name, content, status, words = CASES[case]
    if case == "over the limit":
        settings.PHM_UPLOAD_MAX_BYTES = settings.PHM_OPT_OUT_FILE_MAX_BYTES = 1000
    response = send(api, name, good if content is None else content)
    assert response.status_code == status, response.content[:300]
    assert any(w in message_of(response) for w in words.split("|")), message_of(response)[:300]
    assert len(response.content) < 2000  # the file's content is not echoed back
    assert not Dataset.objects.exists()
    assert not Type1Event.objects.exists()
    assert not NationalOptOutCheck.objects.exists()
    assert files_under(settings.MEDIA_ROOT) == []
    assert os.listdir(settings.FILE_UPLOAD_TEMP_DIR) == []


@pytest.mark.parametrize("endpoint", ["extract", "type1"])
def test_the_good_file_of_each_endpoint_is_accepted(api, endpoints, endpoint):
    """The hostile cases fail for their own reason: the same request with a good file passes."""
    send, good = endpoints[endpoint]
    response = send(api, "x.csv", good)
    assert response.status_code in (200, 201), response.content[:300]


BOUNDARY = "phm-test-boundary"


def raw_multipart(fields: dict) -> bytes:
    """The body a hostile client sends: Django's test client would trim a path from the name."""
    out = b""
    for key, value in fields.items():
        if isinstance(value, io.BytesIO):
            head = f'name="{key}"; filename="{value.name}"\r\nContent-Type: text/csv'
            content = value.getvalue()
        else:
            head, content = f'name="{key}"', str(value).encode()
        out += f"--{BOUNDARY}\r\nContent-Disposition: form-data; {head}\r\n\r\n".encode()
        out += content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def test_the_raw_body_carries_the_name_as_given():
    """The helper really sends the path (unlike the test client), so the tests below test something."""
    body = raw_multipart({"file": _file("../../x.csv", b"a\n")})
    assert b'filename="../../x.csv"' in body


@pytest.fixture
def raw_posts(monkeypatch):
    """The endpoints' API clients post hand-built bodies, names as given."""

    def post_raw(client, url, data, format):  # noqa: A002 - the test client's own word
        return client.generic(
            "POST", url, raw_multipart(data), f"multipart/form-data; boundary={BOUNDARY}"
        )

    monkeypatch.setattr(APIClient, "post", post_raw)


PATH_NAMES = [
    "../../x.csv",
    "..\\..\\x.csv",
    "/etc/x.csv",
    "C:\\data\\x.csv",
    "&#47;etc&#47;x.csv",
    "..",
]


@pytest.mark.parametrize(
    "endpoint", ["extract", "type1", "national submitted", "national returned"]
)
@pytest.mark.parametrize("name", PATH_NAMES)
def test_a_path_in_the_file_name_is_refused_and_leaves_nothing(
    api, endpoints, endpoint, name, raw_posts
):
    """The name is refused with a 400 naming it, before the file is written anywhere."""
    send, good = endpoints[endpoint]

    response = send(api, name, good)
    assert response.status_code == 400, response.content[:300]
    assert "includes a folder path" in message_of(response)
    assert "own name only" in message_of(response)
    assert not Dataset.objects.exists()
    assert not Type1Event.objects.exists()
    assert not NationalOptOutCheck.objects.exists()
    assert files_under(settings.MEDIA_ROOT) == []
    assert os.listdir(settings.FILE_UPLOAD_TEMP_DIR) == []


def test_a_plain_name_through_the_same_raw_body_is_accepted(api, endpoints, raw_posts):
    """The refusal above is for the path: the same hand-built request with a plain name passes."""
    send, good = endpoints["extract"]

    response = send(api, "x.csv", good)
    assert response.status_code == 201, response.content[:300]
    dataset = Dataset.objects.get()
    assert dataset.original_name == "x.csv"
    assert files_under(settings.MEDIA_ROOT) == [
        str(Path(settings.MEDIA_ROOT) / "datasets" / f"{dataset.pk}.csv.enc")
    ]


def test_the_import_page_refuses_a_path_in_the_name_with_a_plain_page(client, alice, practice_a):
    client.force_login(alice)
    response = client.generic(
        "POST",
        "/practices/A81001/opt-outs/import/",
        raw_multipart({"file": _file("../../x.csv", GOOD_TYPE1)}),
        f"multipart/form-data; boundary={BOUNDARY}",
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "The request could not be read" in page
    assert "includes a folder path; send the file under its own name only" in page
    assert not Type1Event.objects.exists()
    assert os.listdir(settings.FILE_UPLOAD_TEMP_DIR) == []


def test_the_import_page_names_an_image_too(client, alice, practice_a):
    client.force_login(alice)
    response = client.post(
        "/practices/A81001/opt-outs/import/",
        {"file": _file("x.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")},
    )
    assert response.status_code == 400
    assert "The file is a PNG image, not a CSV text file." in response.content.decode()
    assert not Type1Event.objects.exists()
