"""An upload refused only for its column mapping is kept, encrypted, for the person to correct."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from django.conf import settings

from datasets import held_uploads, services, tasks
from datasets.models import Dataset
from datasets.views import HELD_UPLOAD_SESSION_KEY
from tests.datasets.conftest import HEADER, csv_file

NHS_NUMBER = "9434765919"
TEXT = HEADER + f"{NHS_NUMBER},Ann,1960-03-01,CB1 2AB,A81001,XaZ89\n"
FORM = {
    "nhs_number": "nhs_number",
    "practice": "practice",
    "drop": "forename",
    "date_of_birth": "date_of_birth",
    "date_rule": "year",
    "postcode": "postcode",
}


def post(client, flow, *, file: bool = True, name: str = "extract.csv", **extra):
    data = {"data_flow": flow.pk, **FORM, **extra}
    if file:
        data["file"] = csv_file(TEXT, name)
    return client.post("/datasets/upload/", data)


def held_id(page: str) -> str:
    return page.split('name="held_upload" value="', 1)[1].split('"', 1)[0]


def held_folder() -> Path:
    return Path(settings.FILE_UPLOAD_TEMP_DIR) / "held"


def stored_text(dataset: Dataset) -> str:
    plain, _ = services._open_dataset_at(dataset, 0)
    with plain:
        return plain.read().decode()


def test_a_refused_mapping_keeps_the_file_so_only_the_mapping_is_corrected(client, alice, flow):
    client.force_login(alice)
    page = post(client, flow, nhs_number="nhs_no").content.decode()
    assert "no column named &#x27;nhs_no&#x27;" in page
    assert "Your file extract.csv (" in page
    assert "is kept, encrypted: correct the column names and upload again" in page
    assert "The file was not kept" not in page
    response = post(client, flow, file=False, held_upload=held_id(page))
    assert response.status_code == 302
    dataset = Dataset.objects.get()
    assert dataset.original_name == "extract.csv"
    assert stored_text(dataset) == TEXT
    assert list(held_folder().iterdir()) == []  # used, so gone
    assert HELD_UPLOAD_SESSION_KEY not in client.session


def test_a_held_upload_in_many_segments_is_read_again_whole(client, alice, flow, monkeypatch):
    from datasets import uploads

    monkeypatch.setattr(uploads, "SEGMENT_BYTES", 7)
    client.force_login(alice)
    page = post(client, flow, nhs_number="nhs_no").content.decode()
    assert post(client, flow, file=False, held_upload=held_id(page)).status_code == 302
    dataset = Dataset.objects.get()
    assert len(dataset.segments) > 10
    assert stored_text(dataset) == TEXT


def test_the_held_file_and_the_session_hold_no_nhs_number_in_clear(client, alice, flow):
    client.force_login(alice)
    page = post(client, flow, nhs_number="nhs_no").content.decode()
    files = sorted(held_folder().iterdir())
    assert [f.suffix for f in files] == [".enc", ".json"]
    for f in files:
        assert NHS_NUMBER.encode() not in f.read_bytes()
        assert b"nhs_number,forename" not in f.read_bytes()
    manifest = json.loads(files[1].read_text())
    assert "head" not in manifest
    assert manifest["user"] == alice.pk
    assert dict(client.session.items())[HELD_UPLOAD_SESSION_KEY] == held_id(page)
    assert NHS_NUMBER not in json.dumps(dict(client.session.items()))


def test_another_person_posting_the_held_id_must_choose_a_file(client, alice, bob, flow):
    client.force_login(alice)
    hold = held_id(post(client, flow, nhs_number="nhs_no").content.decode())
    client.force_login(bob)  # a colleague at the same practice, on the same flow
    session = client.session
    session[HELD_UPLOAD_SESSION_KEY] = hold  # even with the id in their own session
    session.save()
    page = post(client, flow, file=False, held_upload=hold).content.decode()
    assert "Choose the extract file (CSV) to upload." in page
    assert not Dataset.objects.exists()
    assert len(list(held_folder().iterdir())) == 2  # still alice's


def test_a_forged_held_id_must_choose_a_file(client, alice, flow):
    client.force_login(alice)
    post(client, flow, nhs_number="nhs_no")
    page = post(client, flow, file=False, held_upload="../../etc/passwd").content.decode()
    assert "Choose the extract file (CSV) to upload." in page
    assert not Dataset.objects.exists()


def age(hold: str, seconds: int) -> None:
    """Move a hold's time back by this many seconds."""
    manifest = held_folder() / f"{hold}.json"
    record = json.loads(manifest.read_text())
    held_at = dt.datetime.fromisoformat(record["held_at"]) - dt.timedelta(seconds=seconds)
    manifest.write_text(json.dumps({**record, "held_at": held_at.isoformat()}))


def test_an_expired_held_upload_is_swept(client, alice, flow):
    client.force_login(alice)
    hold = held_id(post(client, flow, nhs_number="nhs_no").content.decode())
    age(hold, held_uploads.HOLD_SECONDS - 60)
    assert held_uploads.held_uploads_sweep() == 0
    age(hold, 61)
    entry = settings.CELERY_BEAT_SCHEDULE["held-uploads-sweep"]
    assert entry["task"] == "datasets.tasks.held_uploads_sweep"
    assert tasks.held_uploads_sweep() == 1
    assert list(held_folder().iterdir()) == []
    page = post(client, flow, file=False, held_upload=hold).content.decode()
    assert "Choose the extract file (CSV) to upload." in page


def test_an_expired_held_upload_is_refused_and_deleted_on_use(client, alice, flow):
    client.force_login(alice)
    hold = held_id(post(client, flow, nhs_number="nhs_no").content.decode())
    age(hold, held_uploads.HOLD_SECONDS + 1)
    page = post(client, flow, file=False, held_upload=hold).content.decode()
    assert "Choose the extract file (CSV) to upload." in page
    assert not Dataset.objects.exists()
    assert list(held_folder().iterdir()) == []


def test_a_new_file_replaces_the_held_one(client, alice, flow):
    client.force_login(alice)
    first = held_id(post(client, flow, nhs_number="nhs_no").content.decode())
    page = post(client, flow, name="again.csv", nhs_number="nhs_no").content.decode()
    second = held_id(page)
    assert second != first
    assert "Your file again.csv (" in page
    assert sorted(f.stem for f in held_folder().iterdir()) == [second, second]
    response = post(client, flow, file=False, held_upload=first)
    assert "Choose the extract file (CSV) to upload." in response.content.decode()
    assert post(client, flow, file=False, held_upload=second).status_code == 302
    assert Dataset.objects.get().original_name == "again.csv"


def test_a_refusal_of_the_file_itself_keeps_nothing(client, alice, flow):
    client.force_login(alice)
    page = client.post(
        "/datasets/upload/", {"file": csv_file(""), "data_flow": flow.pk, **FORM}
    ).content.decode()
    assert "The file is empty." in page
    assert 'name="held_upload"' not in page
    assert not held_folder().exists() or list(held_folder().iterdir()) == []
