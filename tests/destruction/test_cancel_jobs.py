"""Destruction facing a queued or running job offers to cancel it first (page and API), so a
job whose worker died never blocks destruction."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from datasets import services as dataset_services
from datasets.models import Job, JobChunk
from destruction.models import DestructionRun
from governance.models import Programme, User
from governance.permissions import ROLE_CAPABILITIES
from phm_portal.models import AuditEvent
from tests.datasets.test_recovery import later as later  # noqa: F401 - a fixture
from tests.destruction.conftest import end
from tests.destruction.test_pages import signed_in, words

URL = "/programmes/testshire/destruction/"


def stuck_job(admin, dataset, *, lease_left: float) -> Job:
    """A running job whose worker died holding a chunk, its lease `lease_left` seconds on."""
    job = dataset_services.dataset_pseudonymise(actor=admin, dataset=dataset)
    [chunk_id] = dataset_services.job_start(job_id=job.pk)
    JobChunk.objects.filter(pk=chunk_id).update(
        status="running",
        attempts=1,
        lease_until=timezone.now() + dt.timedelta(seconds=lease_left),
    )
    job.refresh_from_db()
    return job


def test_the_api_refusal_names_the_job_and_how_to_cancel_it(api, admin, ended, dataset, later):
    job = stuck_job(admin, dataset, lease_left=100)
    end(ended)

    refused = api(admin).post(f"/api/v1{URL}", {}, format="json")

    assert refused.status_code == 409
    body = refused.json()
    assert body["code"] == "pseudonymisation_jobs_active"
    cancel = f"/api/v1/jobs/{job.pk}/cancel/"
    assert f"job {job.pk} of extract.csv is still running" in body["detail"]
    assert f"To cancel: POST {cancel}." in body["detail"]
    assert body["details"] == {
        "jobs": [
            {
                "id": str(job.pk),
                "dataset": str(dataset.pk),
                "status": "running",
                "cancel_requested": False,
                "cancel": cancel,
            }
        ]
    }

    assert api(admin).post(cancel).json()["cancel_requested"] is True
    waiting = api(admin).post(f"/api/v1{URL}", {}, format="json").json()
    assert "being cancelled" in waiting["detail"] and "To cancel" not in waiting["detail"]
    assert waiting["code"] == "pseudonymisation_jobs_active"
    assert waiting["details"]["jobs"][0]["cancel_requested"] is True
    # Its worker is dead: beat's next round, once the grace has passed, ends the job.
    later(seconds=dataset_services.CANCEL_GRACE.total_seconds() + 1)
    dataset_services.jobs_recover()
    assert api(admin).get(f"/api/v1/jobs/{job.pk}/").json()["status"] == "cancelled"
    assert api(admin).post(f"/api/v1{URL}", {}, format="json").status_code == 202


def test_early_destruction_facing_a_dead_job_offers_to_cancel_it_first(
    client, admin, ended, dataset
):
    job = stuck_job(admin, dataset, lease_left=-1)
    signed_in(client, admin)

    page = client.get(URL)
    assert "Not now" in words(page)
    assert f"job {job.pk} of extract.csv is still running" in words(page)
    assert "Cancel the job first" in words(page)
    assert f"{URL}cancel-jobs/" in page.content.decode()
    refused = client.post(
        f"{URL}confirm/", {"confirm": "on", "early": "on", "reason": "The partnership ended."}
    )
    assert refused.status_code == 409 and "Cancel the job first" in words(refused)

    confirm = client.get(f"{URL}cancel-jobs/")
    assert "Cancel the pseudonymisation job first?" in words(confirm)
    assert str(job.pk) in words(confirm) and "Yes, cancel the job" in words(confirm)
    assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING  # not before the POST

    done = client.post(f"{URL}cancel-jobs/")
    assert done.status_code == 302 and done["Location"] == URL
    back = client.get(URL)
    assert "1 pseudonymisation job cancelled. Nothing of it was published." in words(back)
    assert "Not now" not in words(back) and f"{URL}confirm/" in back.content.decode()
    assert Job.objects.get(pk=job.pk).status == Job.Status.CANCELLED
    assert AuditEvent.objects.filter(action="job.cancelled", details__job=str(job.pk)).exists()

    started = client.post(
        f"{URL}confirm/", {"confirm": "on", "early": "on", "reason": "The partnership ended."}
    )
    run = DestructionRun.objects.get()
    assert started.status_code == 302 and started["Location"] == f"/destruction-runs/{run.pk}/"
    assert Programme.objects.get(pk=ended.pk).status == Programme.Status.ENDED


def test_a_job_with_a_live_worker_is_said_to_be_stopping(client, admin, ended, dataset):
    job = stuck_job(admin, dataset, lease_left=100)
    end(ended)
    signed_in(client, admin)
    client.post(f"{URL}cancel-jobs/")
    page = words(client.get(URL))
    assert "1 pseudonymisation job is being cancelled: it stops within a minute or two" in page
    assert "Pseudonymisation is being cancelled" in page
    assert "Cancel the job first" not in page
    assert Job.objects.get(pk=job.pk).cancel_requested


@pytest.mark.parametrize(("who", "status"), [("outsider", 404), ("dpo_a", 403), ("alice", 403)])
def test_only_a_csu_admin_cancels_jobs_from_the_destruction_page(
    client, admin, ended, dataset, who, status, request
):
    job = stuck_job(admin, dataset, lease_left=-1)
    signed_in(client, request.getfixturevalue(who))
    assert client.get(f"{URL}cancel-jobs/").status_code == status
    assert client.post(f"{URL}cancel-jobs/").status_code == status
    assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING


def test_a_csu_admin_who_may_not_run_pseudonymisation_may_not_cancel_its_jobs(
    client, admin, ended, dataset, monkeypatch
):
    job = stuck_job(admin, dataset, lease_left=-1)
    admin_may = ROLE_CAPABILITIES[User.Role.CSU_ADMIN] - {"run_pseudonymisation"}
    monkeypatch.setitem(ROLE_CAPABILITIES, User.Role.CSU_ADMIN, admin_may)
    signed_in(client, admin)
    assert "Cancel the job first" not in words(client.get(URL))
    assert client.post(f"{URL}cancel-jobs/").status_code == 403
    assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING
