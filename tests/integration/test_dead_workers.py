"""A whole worker (main and pool processes) killed with SIGKILL mid-job, on the embedded
broker (filesystem: a message is deleted as it is read) and on Redis: beat's recover round
finishes the job, byte-identical and published once; a cancel with no live worker ends it."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.storage import default_storage
from django.test import Client

from datasets import services
from datasets.models import Job, JobChunk
from phm_portal.celery import app
from phm_portal.lib import filesystem_broker
from phm_portal.models import AuditEvent
from tests.integration.conftest import stop_group
from tests.integration.test_nothing_lost import drop_broker_connections
from tests.integration.test_pseudonymisation_workers import (  # noqa: F401 - a fixture
    shared_storage,
    upload_synthetic,
)

pytestmark = pytest.mark.integration

EMBEDDED = "phm_portal.lib.filesystem_broker:Transport"  # as settings choose it
ROWS = 30_000  # about 2.5 MB: some forty chunks of 64 KiB
CHUNK_BYTES = 64 * 1024
# Short lease and beat interval; Redis would give a dead worker's messages back only after
# an hour: what comes back is beat's doing, on either broker.
RECOVERY = {
    "PHM_JOB_LEASE_SECONDS": "3",
    "PHM_JOB_RESEND_SECONDS": "1",
    "PHM_BROKER_VISIBILITY_TIMEOUT": "3600",
    "PHM_JOB_CHUNK_BYTES": str(CHUNK_BYTES),
}


@pytest.fixture(params=["filesystem", "redis"])
def broker(request, shared_storage, monkeypatch):  # noqa: F811 - the fixture
    """This process and the workers on one broker: the embedded default, or Redis."""
    if request.param == "redis":
        if not (django_settings.CELERY_BROKER_URL or "").startswith("redis"):
            pytest.skip("CELERY_BROKER_URL names no Redis server")
        yield request.param
        return
    # The embedded default: the folder under the test's own PHM_VAR_DIR, as the workers
    # (which inherit this environment) will compute it.
    folder = shared_storage / "broker"
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("CELERY_BROKER_URL", "filesystem://")
    previous = app.conf.broker_transport, app.conf.broker_transport_options
    app.conf.broker_transport = EMBEDDED
    app.conf.broker_transport_options = {
        "control_folder": str(folder / "control"),
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "store_processed": False,
    }
    drop_broker_connections()
    assert isinstance(app.connection_for_write().transport, filesystem_broker.Transport)
    yield request.param
    app.conf.broker_transport, app.conf.broker_transport_options = previous
    monkeypatch.undo()
    drop_broker_connections()


@pytest.fixture
def dataset(api, alice, programme, practice_a, csu, shared_storage, settings, tmp_path):  # noqa: F811
    settings.PHM_JOB_CHUNK_BYTES = CHUNK_BYTES
    settings.PHM_JOB_LEASE_SECONDS = int(RECOVERY["PHM_JOB_LEASE_SECONDS"])
    return upload_synthetic(api(alice), programme, practice_a, csu, tmp_path / "extract.csv", ROWS)


def temporary(job: Job) -> list[Path]:
    return sorted(Path(django_settings.FILE_UPLOAD_TEMP_DIR).glob(f"{job.pk}-*"))


def kill_mid_job(workers, job: Job) -> list[int]:
    """Run the job on a worker of two pool processes and SIGKILL the whole worker mid-way;
    return the chunks it held.

    A chunk of 64 KiB runs in tens of milliseconds, so the worker is stopped (SIGSTOP)
    while the test looks: what it sees (a chunk running with its temporary files) is what
    the kill leaves, not what was there a moment before.
    """
    process = workers.start("w1", processes=2, **RECOVERY)

    def caught_mid_way() -> bool:
        stop_group(process.pid, signal.SIGSTOP)
        running = job.chunks.filter(status="running").values_list("index", "attempts")
        if job.chunks.filter(status="done").count() >= 2 and any(
            (Path(django_settings.FILE_UPLOAD_TEMP_DIR) / f"{job.pk}-{i}-{a}.part.enc").exists()
            for i, a in running
        ):
            return True
        stop_group(process.pid, signal.SIGCONT)
        return False

    workers.wait_for(caught_mid_way, what="the job to be under way", interval=0.02)
    workers.kill("w1")
    held = list(job.chunks.filter(status="running").values_list("pk", flat=True))
    assert held, "the worker held no chunk when it was killed: the test proves nothing"
    assert job.chunks.filter(status="pending").exists(), "the job was nearly done"
    return held


def output(job: Job) -> bytes:
    return b"".join(services.job_output(job=job))


def test_a_worker_killed_whole_mid_job_is_recovered_by_beat_as_if_nothing_happened(
    workers, broker, admin, dataset
):
    job = services.dataset_pseudonymise(actor=admin, dataset=dataset)
    assert job.chunks.count() >= 20
    held = kill_mid_job(workers, job)

    workers.start("w2", beat=True, processes=2, **RECOVERY)
    workers.wait_for(
        lambda: Job.objects.get(pk=job.pk).status not in Job.ACTIVE,
        timeout=45,
        what="beat to recover the job",
    )
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.rows_in == ROWS and job.rows_out == ROWS
    assert all(c.attempts >= 2 for c in JobChunk.objects.filter(pk__in=held))

    again = services.dataset_pseudonymise(actor=admin, dataset=dataset)
    workers.wait_for(
        lambda: Job.objects.get(pk=again.pk).status == Job.Status.SUCCEEDED,
        timeout=45,
        what="the uninterrupted run",
    )
    recovered = output(job)
    assert recovered == output(Job.objects.get(pk=again.pk))
    assert recovered.count(b"\n") == job.rows_out + 1
    events = AuditEvent.objects.filter(action="job.succeeded", details__job=str(job.pk))
    assert events.count() == 1 and events.get().details["rows_out"] == ROWS
    parts = default_storage.listdir(f"jobs/{job.pk}")[1]
    # One output part, one vault part and one re-identification index per chunk.
    assert len(parts) == 3 * job.chunks.count()
    assert temporary(job) == []


def test_cancel_with_no_live_worker_ends_the_job_once_a_worker_with_beat_runs(
    workers, broker, admin, dataset
):
    job = services.dataset_pseudonymise(actor=admin, dataset=dataset)
    kill_mid_job(workers, job)
    assert temporary(job)  # ciphertext the killed worker left behind
    client = Client()
    client.force_login(admin)

    answer = client.post(f"/api/v1/jobs/{job.pk}/cancel/").json()
    assert answer["status"] == "running" and answer["cancel_requested"] is True
    assert not job.chunks.filter(status="pending").exists()  # stopped at once

    workers.start("w2", beat=True, **RECOVERY)
    workers.wait_for(
        lambda: Job.objects.get(pk=job.pk).status not in Job.ACTIVE,
        timeout=30,
        what="beat to end the cancelled job",
    )
    assert client.get(f"/api/v1/jobs/{job.pk}/").json()["status"] == "cancelled"
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "The job was cancelled. Nothing of it was published." in page
    assert set(job.chunks.values_list("status", flat=True)) <= {"done", "cancelled"}
    assert default_storage.listdir(f"jobs/{job.pk}")[1] == []
    assert temporary(job) == []
    assert AuditEvent.objects.filter(action="job.cancelled", details__job=str(job.pk)).count() == 1
    assert not AuditEvent.objects.filter(action="job.succeeded").exists()
