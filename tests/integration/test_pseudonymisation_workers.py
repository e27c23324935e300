"""A real job on real workers: Redis, PostgreSQL, a chord of chunks, and a worker killed mid-chunk."""

import base64
import signal
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage

from datasets import services
from datasets.models import Dataset, Job, JobChunk
from phm_portal.models import AuditEvent
from tests.datasets.conftest import make_flow
from tests.integration.conftest import stop_group

pytestmark = pytest.mark.integration

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
MAPPING = (
    '{"nhs_number": "nhs_number", "practice": "practice", "drop": ["forename", "surname"], '
    '"generalise": [{"column": "date_of_birth", "rule": "age_band_5"}, {"column": "postcode", "rule": "district"}]}'
)
# Shared storage: the workers run in other processes, so the files must be where they look.
FAST_TAKEOVER = {
    "PHM_BROKER_VISIBILITY_TIMEOUT": "4",
    "PHM_JOB_LEASE_SECONDS": "3",
    "PHM_JOB_CHUNK_BYTES": str(4 * 1024 * 1024),
}


@pytest.fixture
def shared_storage(settings, tmp_path, monkeypatch):
    folder = tmp_path / "var"
    monkeypatch.setenv("PHM_VAR_DIR", str(folder))
    settings.MEDIA_ROOT = str(folder / "files")
    settings.FILE_UPLOAD_TEMP_DIR = str(folder / "tmp")
    (folder / "tmp").mkdir(parents=True)
    # The workers must use the same keys as this process.
    monkeypatch.setenv(
        "PHM_KEY_ENCRYPTION_KEY", base64.b64encode(settings.KEY_ENCRYPTION_KEY).decode()
    )
    monkeypatch.setenv("PHM_BLIND_INDEX_KEY", settings.PHM_BLIND_INDEX_KEY)
    monkeypatch.setenv("PHM_FIELD_ENCRYPTION_KEY", settings.PHM_FIELD_ENCRYPTION_KEY)
    settings.PHM_JOB_CHUNK_BYTES = int(FAST_TAKEOVER["PHM_JOB_CHUNK_BYTES"])
    return folder


def upload_synthetic(client, programme, practice, csu, path: Path, rows: int) -> Dataset:
    """Upload a synthetic extract of `rows` rows on a new approved flow of the programme."""
    from synthetic_extract import write

    programme.national_opt_out_applies = False
    programme.national_opt_out_exemption = "Integration test"
    programme.save()
    flow = make_flow(programme, practice, csu)
    with open(write(path, rows), "rb") as f:
        response = client.post(
            "/api/v1/datasets/",
            {"file": f, "data_flow": flow.pk, "mapping": MAPPING},
            format="multipart",
        )
    assert response.status_code == 201, response.json()
    return Dataset.objects.get(pk=response.json()["id"])


@pytest.fixture
def big_dataset(api, admin, alice, programme, practice_a, csu, shared_storage, tmp_path):
    return upload_synthetic(
        api(alice), programme, practice_a, csu, tmp_path / "extract.csv", 300_000
    )


def output(job: Job) -> bytes:
    return b"".join(services.job_output(job=job))


def test_a_worker_killed_mid_chunk_is_replaced_and_the_output_is_as_if_nothing_happened(
    workers, admin, big_dataset
):
    first = workers.start("w1", **FAST_TAKEOVER)
    job = services.dataset_pseudonymise(actor=admin, dataset=big_dataset)
    assert job.chunks.count() >= 4

    # A chunk of 4 MiB runs in tens of milliseconds: the worker is stopped (SIGSTOP) while
    # the test looks, so the chunk it sees running is the one the kill interrupts.
    def caught_running() -> bool:
        stop_group(first.pid, signal.SIGSTOP)
        if JobChunk.objects.filter(job=job, status="running").exists():
            return True
        stop_group(first.pid, signal.SIGCONT)
        return False

    workers.wait_for(caught_running, what="a chunk to start", interval=0.005)
    workers.kill("w1")
    killed = JobChunk.objects.filter(job=job, status="running").first()
    assert killed is not None, (
        "the worker was killed after its chunk finished; the test proves nothing"
    )

    workers.start("w2", **FAST_TAKEOVER)
    workers.start("w3", **FAST_TAKEOVER)
    workers.wait_for(
        lambda: Job.objects.get(pk=job.pk).status not in ("queued", "running"),
        timeout=120,
        what="the job to finish",
    )
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    killed.refresh_from_db()
    assert killed.attempts >= 2  # taken over after its worker died
    assert job.rows_in == 300_000 and job.rows_out == 300_000

    again = services.dataset_pseudonymise(actor=admin, dataset=big_dataset)
    workers.wait_for(
        lambda: Job.objects.get(pk=again.pk).status == "succeeded",
        timeout=120,
        what="the uninterrupted run",
    )
    again.refresh_from_db()
    assert output(job) == output(again)
    assert AuditEvent.objects.filter(action="job.succeeded", details__job=str(job.pk)).count() == 1
    # Every part is in storage once; nothing of the dead attempt is left over.
    parts = default_storage.listdir(f"jobs/{job.pk}")[1]
    assert sorted(parts) == sorted(
        [f"part-{i:05d}.csv.enc" for i in range(job.chunks.count())]
        + [f"vault-{i:05d}.csv.enc" for i in range(job.chunks.count())]
        + [f"reidentify-{i:05d}.idx.enc" for i in range(job.chunks.count())]
    )
    assert not list(Path(settings.FILE_UPLOAD_TEMP_DIR).glob(f"{job.pk}-*"))
