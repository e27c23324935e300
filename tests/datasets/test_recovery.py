"""Jobs after a dead worker or a lost message: beat's recover round, and cancel with no worker.

The integration tests (tests/integration/test_dead_workers.py) do the same on real
workers killed with SIGKILL, on the embedded broker and on Redis.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from datasets import services
from datasets.models import Job, JobChunk
from phm_portal.models import AuditEvent
from tests.datasets.test_jobs import ROWS, run_job
from tests.datasets.test_jobs import dataset as dataset  # noqa: F401 - a fixture
from tests.datasets.test_jobs import no_national_check as no_national_check  # noqa: F401


@pytest.fixture
def sent(monkeypatch) -> list:
    """What is handed to the task queue (no broker is reached): chunk ids and job ids."""
    calls: list = []
    monkeypatch.setattr("datasets.tasks.job_chunk_run.delay", calls.append)
    monkeypatch.setattr("datasets.tasks.job_start.delay", calls.append)
    return calls


@pytest.fixture
def later(monkeypatch):
    """Move the clock forward: later(seconds=11)."""
    real_now = timezone.now
    offset = {"by": dt.timedelta(0)}
    monkeypatch.setattr(timezone, "now", lambda: real_now() + offset["by"])

    def move(**delta: float) -> None:
        offset["by"] += dt.timedelta(**delta)

    return move


@pytest.fixture
def chunked(admin, dataset, settings):  # noqa: F811 - the dataset fixture
    """A job of five chunks or so, started (its chunks sent in a chord)."""
    settings.PHM_JOB_CHUNK_BYTES = 60
    job = services.dataset_pseudonymise(actor=admin, dataset=dataset)
    chunk_ids = services.job_start(job_id=job.pk)
    assert len(chunk_ids) >= 5
    return job, chunk_ids


def published(job: Job) -> int:
    return AuditEvent.objects.filter(action="job.succeeded", details__job=str(job.pk)).count()


def test_the_round_sends_again_every_chunk_no_live_worker_holds(chunked, sent, settings):
    job, (done, dead, alive, queued, lost, *_) = chunked
    now = timezone.now()
    lease = dt.timedelta(seconds=settings.PHM_JOB_LEASE_SECONDS)
    services.job_chunk_run(chunk_id=done)
    # Sent a while ago: a worker died holding one chunk (its lease expired), another works
    # on its chunk, one message read by the dead worker died with it; one chunk was sent
    # again just now and waits in the queue.
    JobChunk.objects.filter(job=job).update(sent_at=now - 3 * lease)
    JobChunk.objects.filter(pk=dead).update(status="running", attempts=1, lease_until=now - lease)
    JobChunk.objects.filter(pk=alive).update(status="running", attempts=1, lease_until=now + lease)
    JobChunk.objects.filter(pk=queued).update(sent_at=now)

    counts = services.jobs_recover()

    assert sent == [dead, lost]
    assert counts == {"queued_sent": 0, "cancelled": 0, "chunks_sent": 2, "finished": 0}
    # Sent again, they are not sent once more before another lease has passed.
    assert services.jobs_recover()["chunks_sent"] == 0
    assert sent == [dead, lost]
    assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING
    assert JobChunk.objects.get(pk=queued).status == "pending"


def test_chunks_sent_again_finish_the_job_published_once_as_if_nothing_happened(
    admin,
    chunked,
    sent,
    dataset,
    later,
    settings,  # noqa: F811 - the dataset fixture
):
    job, chunk_ids = chunked
    services.job_chunk_run(chunk_id=chunk_ids[0])
    JobChunk.objects.filter(pk=chunk_ids[1]).update(
        status="running", attempts=1, lease_until=timezone.now()
    )
    # The whole worker died: its chord is gone; a new worker with beat comes a lease later.
    later(seconds=settings.PHM_JOB_LEASE_SECONDS + 1)
    services.jobs_recover()
    assert sorted(sent) == sorted(chunk_ids[1:])
    for chunk_id in sent:
        services.job_chunk_run(chunk_id=chunk_id)
    assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING

    assert services.jobs_recover()["finished"] == 1
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.rows_in == len(ROWS)
    assert JobChunk.objects.get(pk=chunk_ids[1]).attempts == 2
    again = run_job(services.dataset_pseudonymise(actor=admin, dataset=dataset))
    assert b"".join(services.job_output(job=job)) == b"".join(services.job_output(job=again))
    # Another round, or the old chord's callback arriving late, publishes nothing more.
    assert services.jobs_recover()["finished"] == 0
    services.job_finish(job_id=job.pk)
    assert published(job) == 1


def test_a_job_whose_chords_callback_died_is_published_once_by_the_round(chunked, sent):
    job, chunk_ids = chunked
    for chunk_id in chunk_ids:
        services.job_chunk_run(chunk_id=chunk_id)
    assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING

    assert services.jobs_recover() == {
        "queued_sent": 0,
        "cancelled": 0,
        "chunks_sent": 0,
        "finished": 1,
    }
    assert Job.objects.get(pk=job.pk).status == Job.Status.SUCCEEDED
    assert published(job) == 1
    assert sent == []


def test_cancelling_a_queued_job_ends_it_at_once(api, admin, dataset):  # noqa: F811
    job = services.dataset_pseudonymise(actor=admin, dataset=dataset)
    body = api(admin).post(f"/api/v1/jobs/{job.pk}/cancel/").json()
    assert body["status"] == "cancelled"
    assert set(job.chunks.values_list("status", flat=True)) == {"cancelled"}
    assert AuditEvent.objects.filter(action="job.cancelled", details__job=str(job.pk)).exists()
    # A start message arriving afterwards runs nothing.
    assert services.job_start(job_id=job.pk) == []


def test_cancelling_a_job_whose_worker_died_ends_it_within_a_round(
    api, admin, chunked, sent, settings, later, client
):
    job, (done, dead, *pending) = chunked
    services.job_chunk_run(chunk_id=done)
    part = JobChunk.objects.get(pk=done).output_file
    assert default_storage.exists(part)
    # A worker claimed a chunk, wrote some ciphertext to the temporary folder and was killed.
    JobChunk.objects.filter(pk=dead).update(
        status="running",
        attempts=1,
        lease_until=timezone.now() + dt.timedelta(seconds=settings.PHM_JOB_LEASE_SECONDS),
    )
    tmp = Path(settings.FILE_UPLOAD_TEMP_DIR)
    for kind in ("part", "vault"):
        (tmp / f"{job.pk}-1-1.{kind}.enc").write_bytes(b"\x8f" * 700)

    body = api(admin).post(f"/api/v1/jobs/{job.pk}/cancel/").json()

    # Pending chunks stop at once; the running one may belong to a live worker, which
    # would stop at its next lease renewal: the job waits for it a short while.
    assert body["status"] == "running" and body["cancel_requested"] is True
    assert set(JobChunk.objects.filter(pk__in=pending).values_list("status", flat=True)) == {
        "cancelled"
    }
    services.jobs_recover()
    assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING
    # Nobody renewed the lease: the next round ends the job.
    later(seconds=services.CANCEL_GRACE.total_seconds() + 1)
    assert services.jobs_recover()["cancelled"] == 1

    assert api(admin).get(f"/api/v1/jobs/{job.pk}/").json()["status"] == "cancelled"
    client.force_login(admin)
    assert "The job was cancelled. Nothing of it was published." in (
        client.get(f"/jobs/{job.pk}/").content.decode()
    )
    assert not default_storage.exists(part)
    assert list(tmp.iterdir()) == []
    assert AuditEvent.objects.filter(action="job.cancelled", details__job=str(job.pk)).count() == 1
    assert published(job) == 0
    assert sent == []  # nothing of a cancelled job is sent again


def test_a_working_chunk_stops_at_its_next_lease_renewal_once_its_job_is_cancelled(
    admin,
    dataset,
    monkeypatch,
    later,
    settings,  # noqa: F811 - the dataset fixture
):
    job = services.dataset_pseudonymise(actor=admin, dataset=dataset)
    [chunk_id] = services.job_start(job_id=job.pk)

    def pseudonymise(*args, progress, **kwargs):
        answer = services.job_cancel(actor=admin, job=job)  # someone presses Cancel meanwhile
        assert answer.status == Job.Status.RUNNING  # the worker is alive: it stops by itself
        later(seconds=2)  # the next block
        progress(100)
        raise AssertionError("the chunk went on after its job was cancelled")

    monkeypatch.setattr(services.orchestration, "pseudonymise", pseudonymise)
    services.job_chunk_run(chunk_id=chunk_id)
    assert JobChunk.objects.get(pk=chunk_id).status == "cancelled"
    assert services.job_finish(job_id=job.pk).status == Job.Status.CANCELLED  # the chord
    assert list(Path(settings.FILE_UPLOAD_TEMP_DIR).iterdir()) == []
    assert AuditEvent.objects.filter(action="job.cancelled", details__job=str(job.pk)).count() == 1


def test_a_job_being_cancelled_ends_once_its_running_chunk_stops_and_asking_again_is_harmless(
    api, admin, chunked
):
    job, (first, *_) = chunked
    JobChunk.objects.filter(pk=first).update(
        status="running", attempts=1, lease_until=timezone.now() + dt.timedelta(minutes=2)
    )
    assert api(admin).post(f"/api/v1/jobs/{job.pk}/cancel/").json()["cancel_requested"] is True
    again = api(admin).post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert again.status_code == 200 and again.json()["status"] == "running"
    assert AuditEvent.objects.filter(action="job.cancel_requested").count() == 1
    # Nothing ends the job while its chunk runs (it could still write a part).
    assert services.job_finish(job_id=job.pk).status == Job.Status.RUNNING
    JobChunk.objects.filter(pk=first).update(status="cancelled", lease_until=None)
    assert services.job_finish(job_id=job.pk).status == Job.Status.CANCELLED
    refused = api(admin).post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert refused.status_code == 409 and "already cancelled" in refused.json()["detail"]


@pytest.mark.parametrize("who", ["alice", "dpo_a", "charlie"])
def test_only_a_csu_admin_cancels_through_the_api(api, admin, dataset, who, request):  # noqa: F811
    job = services.dataset_pseudonymise(actor=admin, dataset=dataset)
    response = api(request.getfixturevalue(who)).post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 403
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED and not job.cancel_requested


def test_beat_runs_the_recover_round_every_resend_interval(settings):
    from phm_portal.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["jobs-recover"]
    assert entry == {
        "task": "datasets.tasks.jobs_recover",
        "schedule": settings.PHM_JOB_RESEND_SECONDS,
    }
    assert "datasets.tasks.jobs_recover" in app.tasks


def test_the_task_ending_the_last_chunk_publishes_the_job_and_the_chords_callback_nothing_more(
    chunked, sent
):
    job, chunk_ids = chunked
    for chunk_id in chunk_ids[:-1]:
        services.job_chunk_run(chunk_id=chunk_id)
        services.job_chunk_ended(chunk_id=chunk_id)
        assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING
        assert job.pk in services._tables  # kept for the chunks still to come
    services.job_chunk_run(chunk_id=chunk_ids[-1])
    services.job_chunk_ended(chunk_id=chunk_ids[-1])
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.rows_in == len(ROWS)
    assert job.pk not in services._tables  # the worker's memory is let go
    # The chord's callback, and a second task ending the same chunk, publish nothing more.
    services.job_finish(job_id=job.pk)
    services.job_chunk_ended(chunk_id=chunk_ids[-1])
    assert published(job) == 1
