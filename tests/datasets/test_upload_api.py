import pytest
from django.core.files.storage import default_storage

from datasets.models import Dataset
from governance.models import DataFlow
from phm_portal.models import AuditEvent
from tests.datasets.conftest import HEADER, MAPPING, csv_file, make_flow

GOOD = HEADER + "9434765919,Ann,1960-03-01,CB1 2AB,A81001,XaZ89\n"


def upload(client, flow_id, text=GOOD, mapping=MAPPING, name="extract.csv"):
    return client.post(
        "/api/v1/datasets/",
        {"file": csv_file(text, name), "data_flow": flow_id, "mapping": mapping},
        format="multipart",
    )


def stored_files() -> list[str]:
    return default_storage.listdir("datasets")[1] if default_storage.exists("datasets") else []


def test_the_source_uploads_on_an_approved_flow_and_it_is_stored_encrypted(api, alice, flow):
    response = upload(api(alice), flow.pk)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["bytes"] == len(GOOD.encode())
    dataset = Dataset.objects.get(pk=body["id"])
    assert dataset.columns == [
        "nhs_number",
        "forename",
        "date_of_birth",
        "postcode",
        "practice",
        "event_code",
    ]
    with default_storage.open(dataset.file, "rb") as f:
        ciphertext = f.read()
    assert b"9434765919" not in ciphertext and b"Ann" not in ciphertext
    assert AuditEvent.objects.filter(action="dataset.uploaded", object_id=str(dataset.pk)).exists()


def test_a_csu_admin_may_upload_too(api, admin, flow):
    assert upload(api(admin), flow.pk).status_code == 201


@pytest.mark.parametrize("status", ["draft", "submitted", "rejected", "suspended", "closed"])
def test_an_upload_on_a_flow_that_is_not_approved_is_a_409_and_leaves_nothing(
    api, alice, flow, status
):
    DataFlow.objects.filter(pk=flow.pk).update(status=status, decision_comment="A reason.")
    response = upload(api(alice), flow.pk)
    assert response.status_code == 409
    assert "approved" in response.json()["detail"]
    assert not Dataset.objects.exists() and stored_files() == []


def test_the_destination_cannot_upload(api, csu_analyst, flow):
    assert upload(api(csu_analyst), flow.pk).status_code == 403


def test_an_outsider_gets_a_404(api, charlie, flow):
    assert upload(api(charlie), flow.pk).status_code == 404
    assert not Dataset.objects.exists()


def test_a_mapping_naming_a_missing_column_is_refused_naming_it(api, alice, flow):
    mapping = '{"nhs_number": "nhs", "practice": "practice"}'
    response = upload(api(alice), flow.pk, mapping=mapping)
    assert response.status_code == 400
    assert "column 'nhs'" in response.json()["mapping"][0]
    assert stored_files() == []


def test_a_mapping_that_is_not_json_is_named(api, alice, flow):
    response = upload(api(alice), flow.pk, mapping="{nhs_number:")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["mapping"][0]


def test_a_bad_header_is_refused(api, alice, flow):
    response = upload(api(alice), flow.pk, text="nhs_number,,practice\n1,2,3\n")
    assert response.status_code == 400
    assert "Line 1: Column 2 of the header has no name" in response.json()["file"][0]


def test_an_empty_file_is_refused(api, alice, flow):
    response = upload(api(alice), flow.pk, text="")
    assert response.status_code == 400
    assert "empty" in str(response.json())


def test_a_file_that_is_not_text_is_refused(api, alice, flow):
    response = api(alice).post(
        "/api/v1/datasets/",
        {"file": csv_file("x"), "data_flow": flow.pk, "mapping": MAPPING},
        format="multipart",
    )
    assert response.status_code == 400
    bad = api(alice).post(
        "/api/v1/datasets/",
        {"file": _binary(), "data_flow": flow.pk, "mapping": MAPPING},
        format="multipart",
    )
    assert bad.status_code == 400
    assert "PNG image" in bad.json()["file"][0]


def _binary():
    import io

    f = io.BytesIO(b"\x89PNG\r\n\x1a\n\xff\xfe\x00binary")
    f.name = "picture.png"
    return f


def test_a_file_over_the_limit_is_a_413_and_leaves_nothing(api, alice, flow, settings, tmp_path):
    settings.PHM_UPLOAD_MAX_BYTES = 100
    response = upload(api(alice), flow.pk, text=GOOD * 5)
    assert response.status_code == 413
    assert not Dataset.objects.exists() and stored_files() == []
    import os

    assert not [n for n in os.listdir(settings.FILE_UPLOAD_TEMP_DIR) if n.startswith("upload-")]


def test_a_path_in_the_file_name_is_kept_only_as_a_label(api, alice, flow):
    response = upload(api(alice), flow.pk, name="../../etc/passwd.csv")
    assert response.status_code == 201
    dataset = Dataset.objects.get(pk=response.json()["id"])
    assert dataset.original_name == "passwd.csv"
    assert dataset.file.startswith("datasets/")


def test_missing_fields_are_named(api, alice, flow):
    response = api(alice).post("/api/v1/datasets/", {"file": csv_file(GOOD)}, format="multipart")
    assert response.status_code == 400
    assert set(response.json()) == {"data_flow", "mapping"}


def test_parties_list_their_datasets_and_outsiders_see_none(
    api, alice, charlie, csu_analyst, flow, programme, practice_b, csu
):
    upload(api(alice), flow.pk)
    other = make_flow(programme, practice_b, csu)
    upload(api(charlie), other.pk)
    assert api(alice).get("/api/v1/datasets/").json()["count"] == 1
    assert api(charlie).get("/api/v1/datasets/").json()["count"] == 1
    assert api(csu_analyst).get("/api/v1/datasets/").json()["count"] == 2
    mine = Dataset.objects.get(data_flow=flow)
    assert api(charlie).get(f"/api/v1/datasets/{mine.pk}/").status_code == 404
