"""The destruction API: who may start and follow a run, certificates, and checking one."""

from __future__ import annotations

import io

import pytest

from destruction.models import DestructionRun
from governance.models import Programme
from tests.destruction.conftest import run_all
from tests.destruction.test_certificate import flip_signed_byte


def pdf_upload(data: bytes, name: str = "certificate.pdf") -> io.BytesIO:
    f = io.BytesIO(data)
    f.name = name
    return f


def test_a_csu_admin_starts_destruction_and_follows_the_run(
    api, admin, data, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = api(admin).post("/api/v1/programmes/testshire/destruction/", {}, format="json")
    assert response.status_code == 202
    run = DestructionRun.objects.get(pk=response.json()["run"])
    assert callbacks, "the task is queued once the run is committed"
    body = api(admin).get(f"/api/v1/destruction-runs/{run.pk}/").json()
    assert body["status"] == "queued" and body["certificate"] is None
    assert [s["name"] for s in body["steps"]] == [
        "manifest",
        "erase_keys",
        "delete_files",
        "delete_rows",
        "verify",
        "certificate",
        "deliver",
    ]
    run_all(run)
    body = api(admin).get(f"/api/v1/destruction-runs/{run.pk}/").json()
    assert body["status"] == "succeeded"
    assert {s["status"] for s in body["steps"]} == {"done"}
    assert body["steps"][0]["evidence"]["manifest_sha256"] == body["manifest_sha256"]
    assert body["certificate"].startswith("PHM-DC-")


def test_before_the_end_it_is_a_409_and_early_needs_a_reason(api, admin, ended, job):
    url = "/api/v1/programmes/testshire/destruction/"
    response = api(admin).post(url, {}, format="json")
    assert response.status_code == 409 and "has not ended" in response.json()["detail"]
    response = api(admin).post(url, {"early": True}, format="json")
    assert response.status_code == 400 and "reason" in response.json()
    response = api(admin).post(url, {"early": True, "reason": "Contract ended"}, format="json")
    assert response.status_code == 202


def test_a_running_job_makes_it_a_409(api, admin, data, job):
    from datasets.models import Job

    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)
    response = api(admin).post("/api/v1/programmes/testshire/destruction/", {}, format="json")
    assert response.status_code == 409 and "still running" in response.json()["detail"]


@pytest.mark.parametrize("who", ["dpo_a", "alice", "auditor"])
def test_other_roles_may_not_start_destruction(api, data, who, request):
    response = api(request.getfixturevalue(who)).post(
        "/api/v1/programmes/testshire/destruction/", {}, format="json"
    )
    assert response.status_code in (403, 404)
    assert not DestructionRun.objects.exists()


def test_a_dpo_of_a_controller_gets_a_403(api, data, dpo_a):
    response = api(dpo_a).post("/api/v1/programmes/testshire/destruction/", {}, format="json")
    assert response.status_code == 403


def test_an_outsider_gets_a_404(api, data, outsider):
    response = api(outsider).post("/api/v1/programmes/testshire/destruction/", {}, format="json")
    assert response.status_code == 404


def test_anonymous_is_refused(api, data):
    response = api().post("/api/v1/programmes/testshire/destruction/", {}, format="json")
    assert response.status_code in (401, 403)


def test_controllers_follow_the_run_others_get_a_404(
    api, destroyed, dpo_a, charlie, outsider, processor_person
):
    url = f"/api/v1/destruction-runs/{destroyed.pk}/"
    assert api(dpo_a).get(url).status_code == 200
    assert api(charlie).get(url).status_code == 200  # practice B is a controller too
    assert api(outsider).get(url).status_code == 404
    assert api(processor_person).get(url).status_code == 404
    assert api(dpo_a).get("/api/v1/destruction-runs/999999/").status_code == 404


def test_controllers_processors_and_admins_read_the_certificate(
    api, destroyed, admin, dpo_a, processor_person, outsider
):
    serial = destroyed.certificate.serial
    for user in (admin, dpo_a, processor_person):
        body = api(user).get(f"/api/v1/certificates/{serial}/").json()
        assert body["serial"] == serial and body["programme"] == "testshire"
        pdf = api(user).get(f"/api/v1/certificates/{serial}/pdf/")
        assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
        assert pdf.content == bytes(destroyed.certificate.pdf)
    assert api(outsider).get(f"/api/v1/certificates/{serial}/").status_code == 404
    assert api(outsider).get(f"/api/v1/certificates/{serial}/pdf/").status_code == 404
    assert api().get(f"/api/v1/certificates/{serial}/pdf/").status_code in (401, 403)


def test_anyone_checks_a_certificate_through_the_api(api, destroyed):
    pdf = bytes(destroyed.certificate.pdf)
    body = (
        api()
        .post("/api/v1/certificates/verify/", {"file": pdf_upload(pdf)}, format="multipart")
        .json()
    )
    assert body["valid"] and body["serial"] == destroyed.certificate.serial
    assert body["programme"] == "testshire" and body["run"] == destroyed.pk
    assert body["signed_by"] and body["signed_at"] and body["reasons"] == []
    body = (
        api()
        .post(
            "/api/v1/certificates/verify/",
            {"file": pdf_upload(flip_signed_byte(pdf))},
            format="multipart",
        )
        .json()
    )
    assert body["valid"] is False and body["unmodified"] is False and body["reasons"]


def test_checking_without_a_file_names_the_field(api, db):
    response = api().post("/api/v1/certificates/verify/", {}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()


def test_checking_a_too_large_file_is_a_413(api, db, settings):
    settings.PHM_CERTIFICATE_MAX_BYTES = 10
    response = api().post(
        "/api/v1/certificates/verify/",
        {"file": pdf_upload(b"%PDF-" + b"x" * 20)},
        format="multipart",
    )
    assert response.status_code == 413


def test_after_destruction_reading_or_reidentifying_is_a_clear_409(api, destroyed, admin, alice):
    job_id = destroyed.manifest["apps"]["datasets"]["jobs"][0]
    response = api(admin).get(f"/api/v1/jobs/{job_id}/output/")
    assert response.status_code == 409 and "destroyed" in response.json()["detail"]
    response = api(alice).post(
        "/api/v1/practices/A81001/reidentify/",
        {"programme": "testshire", "codes": ["0" * 32]},
        format="json",
    )
    assert response.status_code == 409 and "destroyed" in response.json()["detail"]
    dataset_id = destroyed.manifest["apps"]["datasets"]["extracts"][0]["id"]
    response = api(admin).post(f"/api/v1/datasets/{dataset_id}/pseudonymise/")
    assert response.status_code == 409 and "destroyed" in response.json()["detail"]
    assert api(admin).get(f"/api/v1/datasets/{dataset_id}/").json()["status"] == "destroyed"
    assert (
        api(admin).get("/api/v1/programmes/testshire/").json()["status"]
        == Programme.Status.DESTROYED
    )
