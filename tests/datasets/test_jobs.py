"""Jobs driven through the services (the integration tests run them on real workers)."""

import csv
import hashlib
import hmac
import io
import os

import pytest
from django.core.files.storage import default_storage

from datasets import reidentification, services
from datasets.models import Job, JobChunk, ProgrammeKey
from datasets.pipeline.hashing import CODE_LENGTH
from governance.models import DataFlow
from phm_portal.models import AuditEvent
from tests.datasets.conftest import HEADER, MAPPING, csv_file, upload_extract

ROWS = [
    "9434765919,Ann,1960-03-01,CB1 2AB,A81001,XaZ89",
    "4010232137,Bob,1971-07-15,LS2 9JT,B82002,C10..",
    "9434765919,Ann,1960-03-01,CB1 2AB,A81001,H33..",
    "9434765918,Bad,1960-03-01,CB1 2AB,A81001,H33..",
]


@pytest.fixture
def no_national_check(programme):
    """The test programme is exempt from the national opt-out, so no check file is needed."""
    programme.national_opt_out_applies = False
    programme.national_opt_out_exemption = "Test exemption"
    programme.save()
    return programme


@pytest.fixture
def dataset(api, alice, flow, no_national_check):
    return upload_extract(api(alice), flow, ROWS)


def run_job(job: Job) -> Job:
    """Do what the worker does: start, run every chunk, finish."""
    for chunk_id in services.job_start(job_id=job.pk):
        services.job_chunk_run(chunk_id=chunk_id)
    return services.job_finish(job_id=job.pk)


def output_rows(job: Job) -> list[dict]:
    return list(csv.DictReader(io.StringIO(b"".join(services.job_output(job=job)).decode())))


def code_of(number: str, programme) -> str:
    key = services.programme_key(programme=programme)
    return hmac.new(key, number.encode(), hashlib.sha256).hexdigest()[:CODE_LENGTH]


def test_a_csu_admin_pseudonymises_and_the_report_says_what_happened(
    api, admin, dataset, programme
):
    response = api(admin).post(f"/api/v1/datasets/{dataset.pk}/pseudonymise/")
    assert response.status_code == 202
    job = run_job(Job.objects.get(pk=response.json()["job"]))
    body = api(admin).get(f"/api/v1/jobs/{job.pk}/").json()
    assert body["status"] == "succeeded" and body["progress"] == 1.0
    assert (body["rows_in"], body["rows_out"]) == (4, 3)
    assert body["excluded"] == {"type1": 0, "national": 0, "invalid": 1}
    assert body["invalid_rows"] == [{"line": 5, "error": "invalid NHS number"}]
    rows = output_rows(job)
    assert [r["pseudonym"] for r in rows] == [
        code_of("9434765919", programme),
        code_of("4010232137", programme),
        code_of("9434765919", programme),
    ]
    assert rows[0]["date_of_birth_year"] == "1960" and rows[0]["postcode_district"] == "CB1"
    assert "forename" not in rows[0]
    assert AuditEvent.objects.filter(action="job.succeeded").count() == 1


def test_asking_twice_returns_the_active_job(api, admin, dataset):
    first = api(admin).post(f"/api/v1/datasets/{dataset.pk}/pseudonymise/").json()["job"]
    second = api(admin).post(f"/api/v1/datasets/{dataset.pk}/pseudonymise/").json()["job"]
    assert first == second
    assert Job.objects.count() == 1


@pytest.mark.parametrize("who", ["alice", "dpo_a"])
def test_only_a_csu_admin_runs_pseudonymisation(api, dataset, who, request):
    assert (
        api(request.getfixturevalue(who))
        .post(f"/api/v1/datasets/{dataset.pk}/pseudonymise/")
        .status_code
        == 403
    )
    assert not Job.objects.exists()


def test_large_extracts_run_in_chunks_with_the_same_output(api, admin, dataset, settings):
    whole = run_job(services.dataset_pseudonymise(actor=admin, dataset=dataset))
    expected = b"".join(services.job_output(job=whole))
    settings.PHM_JOB_CHUNK_BYTES = 60
    chunked = run_job(services.dataset_pseudonymise(actor=admin, dataset=dataset))
    assert chunked.chunks.count() > 2
    assert b"".join(services.job_output(job=chunked)) == expected
    assert chunked.invalid_rows == whole.invalid_rows


MESSY = (
    "\ufeff"
    + HEADER.replace("\n", "\r\n")
    + "".join(
        [
            '9434765919,"Ann, ""the""\r\nsecond line",1960-03-01,CB1 2AB,A81001,XaZ89\r\n',
            "4010232137,Bob,1971-07-15,LS2 9JT,B82002,C10..\r\n",
            "\r\n",
            "9434765918,Bad,1960-03-01,CB1 2AB,A81001,H33..\r\n",
            "4010232137,Bob,1971-07-15,LS2 9JT,B82002\r\n",
            '9434765919,"A\nn\nn",1960-03-01,CB1 2AB,A81001,"=1+2"\r\n',
        ]
        * 7
    )
    + "\r\n\r\n"
)


@pytest.mark.parametrize("segment_bytes", [5, 64, 500])
def test_chunks_starting_in_any_segment_give_the_same_output_and_lines(
    api, alice, admin, flow, no_national_check, settings, monkeypatch, segment_bytes
):
    """The extract is stored in segments readable on their own; a chunk starts decrypting
    at the segment holding its first byte, with the line count and quote state of there."""
    from datasets import uploads
    from datasets.models import Dataset

    def upload() -> Dataset:
        response = api(alice).post(
            "/api/v1/datasets/",
            {"file": csv_file(MESSY), "data_flow": flow.pk, "mapping": MAPPING},
            format="multipart",
        )
        assert response.status_code == 201, response.json()
        return Dataset.objects.get(pk=response.json()["id"])

    whole = run_job(services.dataset_pseudonymise(actor=admin, dataset=upload()))
    monkeypatch.setattr(uploads, "SEGMENT_BYTES", segment_bytes)
    segmented = upload()
    assert len(segmented.segments) == -(-segmented.bytes // segment_bytes)
    settings.PHM_JOB_CHUNK_BYTES = 97
    chunked = run_job(services.dataset_pseudonymise(actor=admin, dataset=segmented))
    assert chunked.status == Job.Status.SUCCEEDED, chunked.error
    assert chunked.chunks.count() > 5
    assert b"".join(services.job_output(job=chunked)) == b"".join(services.job_output(job=whole))
    assert chunked.invalid_rows == whole.invalid_rows
    assert [r["line"] for r in whole.invalid_rows][:2] == [6, 7]
    assert (chunked.rows_in, chunked.rows_out) == (whole.rows_in, whole.rows_out) == (35, 21)


def test_the_upload_keeps_where_each_record_starts_and_the_job_cuts_its_chunks_there(
    dataset, admin, settings
):
    text = (HEADER + "\n".join(ROWS) + "\n").encode()
    lines = [0] + [i + 1 for i, byte in enumerate(text[:-1]) if byte == ord("\n")]
    assert dataset.record_starts == [[start, n] for n, start in enumerate(lines)]
    settings.PHM_JOB_CHUNK_BYTES = 60
    job = services.dataset_pseudonymise(actor=admin, dataset=dataset)
    chunks = list(job.chunks.order_by("index"))
    assert [c.start for c in chunks] == sorted({c.start for c in chunks})
    assert all(c.start in lines for c in chunks) and chunks[-1].end == len(text)
    assert [c.end for c in chunks[:-1]] == [c.start for c in chunks[1:]]


def test_an_extract_stored_before_record_starts_were_kept_has_them_found_by_its_first_job(
    dataset, admin, settings
):
    from datasets.models import Dataset

    kept = dataset.record_starts
    whole = run_job(services.dataset_pseudonymise(actor=admin, dataset=dataset))
    Dataset.objects.filter(pk=dataset.pk).update(record_starts=[])
    dataset.refresh_from_db()
    settings.PHM_JOB_CHUNK_BYTES = 60
    chunked = run_job(services.dataset_pseudonymise(actor=admin, dataset=dataset))
    assert Dataset.objects.get(pk=dataset.pk).record_starts == kept
    assert chunked.chunks.count() > 2
    assert b"".join(services.job_output(job=chunked)) == b"".join(services.job_output(job=whole))


def test_codes_are_stable_within_a_programme(api, admin, alice, flow, dataset):
    first = output_rows(run_job(services.dataset_pseudonymise(actor=admin, dataset=dataset)))
    text = HEADER + ROWS[0] + "\n"
    again = api(alice).post(
        "/api/v1/datasets/",
        {"file": csv_file(text), "data_flow": flow.pk, "mapping": MAPPING},
        format="multipart",
    )
    from datasets.models import Dataset

    second = output_rows(
        run_job(
            services.dataset_pseudonymise(
                actor=admin, dataset=Dataset.objects.get(pk=again.json()["id"])
            )
        )
    )
    assert first[0]["pseudonym"] == second[0]["pseudonym"]
    assert ProgrammeKey.objects.count() == 1


def test_each_part_is_on_disk_before_its_chunk_is_marked_done(
    admin, dataset, settings, monkeypatch
):
    """A part marked done survives a crash of the machine: its output, vault and index
    are flushed to disk (fdatasync) while the chunk is still running, then published."""
    settings.PHM_JOB_CHUNK_BYTES = 100  # several chunks
    synced = {}
    real_sync = getattr(os, "fdatasync", os.fsync)

    def sync(descriptor):
        running = set(
            JobChunk.objects.filter(status=JobChunk.Status.RUNNING).values_list("pk", flat=True)
        )
        synced[os.fstat(descriptor).st_ino] = running
        real_sync(descriptor)

    monkeypatch.setattr(os, "fdatasync", sync, raising=False)
    monkeypatch.setattr(os, "fsync", sync)
    job = run_job(services.dataset_pseudonymise(actor=admin, dataset=dataset))
    assert job.status == "succeeded"
    chunks = list(job.chunks.all())
    assert len(chunks) > 1
    for chunk in chunks:
        names = [
            chunk.output_file,
            chunk.vault_file,
            reidentification.index_name(job.pk, chunk.index),
        ]
        for name in names:
            inode = os.stat(default_storage.path(name)).st_ino
            assert inode in synced, f"{name} was published without being flushed to disk"
            assert chunk.pk in synced[inode], f"{name} was flushed after its chunk was done"


def test_no_partial_output_is_downloadable(api, admin, csu_analyst, dataset):
    job = services.dataset_pseudonymise(actor=admin, dataset=dataset)
    response = api(admin).get(f"/api/v1/jobs/{job.pk}/output/")
    assert response.status_code == 409
    assert "only when the job has succeeded" in response.json()["detail"]


def test_the_destination_downloads_and_the_source_cannot(
    api, admin, alice, csu_analyst, charlie, dataset
):
    job = run_job(services.dataset_pseudonymise(actor=admin, dataset=dataset))
    response = api(csu_analyst).get(f"/api/v1/jobs/{job.pk}/output/")
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert body.startswith('"pseudonym"')
    assert "9434765919" not in body and "Ann" not in body and "CB1 2AB" not in body
    assert api(alice).get(f"/api/v1/jobs/{job.pk}/output/").status_code == 404
    assert (
        api(alice).get(f"/api/v1/jobs/{job.pk}/").status_code == 200
    )  # the source sees the report
    assert api(charlie).get(f"/api/v1/jobs/{job.pk}/").status_code == 404


def test_a_cancelled_job_publishes_nothing(api, admin, dataset):
    job = services.dataset_pseudonymise(actor=admin, dataset=dataset)
    response = api(admin).post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    job = run_job(job)
    assert job.status == Job.Status.CANCELLED
    assert api(admin).get(f"/api/v1/jobs/{job.pk}/output/").status_code == 409
    assert api(admin).post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 409


def test_a_job_on_a_suspended_flow_is_refused(api, admin, dataset, flow):
    from governance.models import DataFlow

    DataFlow.objects.filter(pk=flow.pk).update(status=DataFlow.Status.SUSPENDED)
    response = api(admin).post(f"/api/v1/datasets/{dataset.pk}/pseudonymise/")
    assert response.status_code == 409


def test_a_damaged_extract_fails_the_job_in_plain_words(api, admin, dataset):
    from django.core.files.storage import default_storage

    with default_storage.open(dataset.file, "rb") as f:
        data = bytearray(f.read())
    data[60] ^= 0xFF
    default_storage.delete(dataset.file)
    from django.core.files.base import ContentFile

    default_storage.save(dataset.file, ContentFile(bytes(data)))
    job = run_job(services.dataset_pseudonymise(actor=admin, dataset=dataset))
    assert job.status == Job.Status.FAILED
    assert job.error == "The encrypted file is damaged or was changed."
    assert api(admin).get(f"/api/v1/jobs/{job.pk}/").json()["error"] == job.error


def test_a_chunk_whose_worker_died_is_taken_over_once_its_lease_expires(admin, dataset):
    job = services.dataset_pseudonymise(actor=admin, dataset=dataset)
    [chunk_id] = services.job_start(job_id=job.pk)
    from django.utils import timezone

    # A worker claimed it and died: running, lease in the past.
    JobChunk.objects.filter(pk=chunk_id).update(
        status="running", attempts=1, lease_until=timezone.now() - timezone.timedelta(seconds=1)
    )
    services.job_chunk_run(chunk_id=chunk_id)
    chunk = JobChunk.objects.get(pk=chunk_id)
    assert (chunk.status, chunk.attempts) == ("done", 2)
    assert services.job_finish(job_id=job.pk).status == Job.Status.SUCCEEDED


def test_a_chunk_another_worker_holds_is_not_run_twice(admin, dataset):
    job = services.dataset_pseudonymise(actor=admin, dataset=dataset)
    [chunk_id] = services.job_start(job_id=job.pk)
    from django.utils import timezone

    JobChunk.objects.filter(pk=chunk_id).update(
        status="running", attempts=1, lease_until=timezone.now() + timezone.timedelta(seconds=60)
    )
    with pytest.raises(services.ChunkBusy):
        services.job_chunk_run(chunk_id=chunk_id)
    assert JobChunk.objects.get(pk=chunk_id).attempts == 1


def test_reidentification_answers_only_the_practices_own_patients(
    api, admin, alice, charlie, dataset, programme
):
    run_job(services.dataset_pseudonymise(actor=admin, dataset=dataset))
    mine, theirs = code_of("9434765919", programme), code_of("4010232137", programme)
    body = {"programme": "testshire", "codes": [mine, theirs, "f" * 32]}
    response = api(alice).post("/api/v1/practices/A81001/reidentify/", body, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "results": [{"code": mine, "nhs_number": "9434765919"}],
        "not_found": [theirs, "f" * 32],
    }
    event = AuditEvent.objects.get(action="pseudonym.reidentified")
    assert event.details == {"programme": "testshire", "codes_asked": 3, "codes_answered": 1}
    assert "9434765919" not in str(event.details)
    # Practice B's manager gets B's patient, and nothing of A.
    other = api(charlie).post("/api/v1/practices/B82002/reidentify/", body, format="json").json()
    assert other["results"] == [{"code": theirs, "nhs_number": "4010232137"}]


def test_reidentification_for_another_practice_is_a_404(api, charlie, dataset):
    response = api(charlie).post(
        "/api/v1/practices/A81001/reidentify/",
        {"programme": "testshire", "codes": ["x"]},
        format="json",
    )
    assert response.status_code == 404


def test_only_practice_managers_reidentify(api, dpo_a, dataset):
    response = api(dpo_a).post(
        "/api/v1/practices/A81001/reidentify/",
        {"programme": "testshire", "codes": ["x"]},
        format="json",
    )
    assert response.status_code == 403


def test_nothing_is_read_once_the_programme_is_destroyed(api, admin, alice, dataset, programme):
    from governance.models import Programme

    job = run_job(services.dataset_pseudonymise(actor=admin, dataset=dataset))
    Programme.objects.filter(pk=programme.pk).update(status=Programme.Status.DESTROYED)
    response = api(admin).get(f"/api/v1/jobs/{job.pk}/output/")
    assert response.status_code == 409 and "destroyed" in response.json()["detail"]
    again = api(alice).post(
        "/api/v1/practices/A81001/reidentify/",
        {"programme": "testshire", "codes": ["x"]},
        format="json",
    )
    assert again.status_code == 409


def test_a_type1_opt_out_recorded_at_the_practice_keeps_the_patient_out(
    api, admin, alice, dataset, programme
):
    import datetime as dt

    from consent.services import type1_opt_out_record

    type1_opt_out_record(
        actor=alice,
        practice=alice_practice(alice),
        nhs_number="9434765919",
        event="dissent",
        method="letter",
        recorded_on=dt.date(2026, 11, 1),
    )
    job = run_job(services.dataset_pseudonymise(actor=admin, dataset=dataset))
    assert job.excluded == {"type1": 2, "national": 0, "invalid": 1}
    assert [r["pseudonym"] for r in output_rows(job)] == [code_of("4010232137", programme)]


def alice_practice(user):
    from governance.permissions import organisations_of

    return organisations_of(user).get()


def test_a_job_refused_for_want_of_a_national_check_says_what_to_do_and_its_code(
    api, admin, alice, flow, programme
):
    assert programme.national_opt_out_applies
    dataset = upload_extract(api(alice), flow, ROWS)
    response = api(admin).post(f"/api/v1/datasets/{dataset.pk}/pseudonymise/")
    assert response.status_code == 409
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == "national_check_missing"
    assert body["detail"].startswith(
        "The national data opt-out applies to Testshire PHM and it has no unexpired national check."
    )
    assert (
        'POST /api/v1/national-opt-outs/checks/ with {"programme": "testshire"}) and import the '
        "national service's reply: data flows once the check is complete."
    ) in body["detail"]
    assert not Job.objects.exists()


def test_a_refusal_without_a_code_keeps_its_answer(api, admin, dataset):
    DataFlow.objects.filter(pk=dataset.data_flow_id).update(status=DataFlow.Status.SUSPENDED)
    response = api(admin).post(f"/api/v1/datasets/{dataset.pk}/pseudonymise/")
    assert response.status_code == 409
    assert response.json() == {"detail": "The flow is suspended: no data moves on it now."}
