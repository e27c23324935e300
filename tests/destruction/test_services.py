"""The destruction run, step by step, through the services (the worker calls the same)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.storage import FileSystemStorage, default_storage
from django.utils import timezone

from datasets import services as dataset_services
from datasets.models import Dataset, Job, JobChunk, ProgrammeKey
from datasets.shredder import key_id
from destruction import services
from destruction.models import Certificate, DestructionReminder, DestructionRun, DestructionStep
from governance.models import Programme
from phm_portal.audit import audit_verify
from phm_portal.errors import InvalidInput, NotAllowedNow
from phm_portal.models import AuditEvent
from tests.destruction.conftest import end, run_all


def steps(run: DestructionRun) -> dict[str, DestructionStep]:
    return {s.name: s for s in run.steps.all()}


def test_the_manifest_names_every_file_and_key_with_sizes_and_hashes(data, admin, job):
    chunk = job.chunks.get()
    dataset = job.dataset
    manifest = services.manifest_build(programme=data)["apps"]["datasets"]
    assert manifest["totals"]["extracts"] == 1 and manifest["totals"]["outputs"] == 1
    assert manifest["totals"]["vault_parts"] == 1 and manifest["totals"]["programme_keys"] == 1
    extract = manifest["extracts"][0]
    assert extract["id"] == str(dataset.id) and extract["file"] == dataset.file
    assert extract["bytes"] == default_storage.size(dataset.file)
    assert len(extract["sha256"]) == 64 and extract["plaintext_sha256"] == dataset.sha256
    assert manifest["outputs"][0]["file"] == chunk.output_file
    assert manifest["vault_parts"][0]["file"] == chunk.vault_file
    assert {k["id"] for k in manifest["data_keys"]} == {
        key_id(dataset.wrapped_key),
        key_id(chunk.output_key),
        key_id(chunk.vault_key),
    }
    assert manifest["programme_keys"][0]["id"] == str(ProgrammeKey.objects.get().key_id)


def test_a_whole_run_destroys_files_rows_and_keys_and_records_evidence(data, admin, job):
    chunk = job.chunks.get()
    files = [job.dataset.file, chunk.output_file, chunk.vault_file]
    programme_key_id = str(ProgrammeKey.objects.get().key_id)
    run = run_all(services.programme_destroy(actor=admin, programme=data))

    assert run.status == "succeeded" and run.destroyed_at is not None
    assert [s.status for s in run.steps.order_by("index")] == ["done"] * 7
    assert run.manifest_sha256 == services.manifest_hash(run.manifest)
    assert not any(default_storage.exists(name) for name in files)
    assert not ProgrammeKey.objects.exists() and not JobChunk.objects.exists()
    dataset = Dataset.objects.get()
    assert dataset.status == "destroyed" and bytes(dataset.wrapped_key) == b""
    assert dataset.file == ""
    data.refresh_from_db()
    assert data.status == Programme.Status.DESTROYED
    evidence = steps(run)
    assert evidence["manifest"].evidence["manifest_sha256"] == run.manifest_sha256
    erased = evidence["erase_keys"].evidence["apps"]["datasets"]
    assert erased["programme_keys_erased"] == [programme_key_id]
    assert len(erased["data_keys_erased"]) == 3
    # The extract, the output part, the vault part and its re-identification index.
    assert evidence["delete_files"].evidence["apps"]["datasets"]["files"] == 4
    assert all(c["passed"] for c in evidence["verify"].evidence["checks"])
    assert evidence["certificate"].evidence["serial"] == run.certificate.serial
    # Each step is an audit event; the chain still verifies.
    actions = list(
        AuditEvent.objects.filter(action__startswith="destruction.").values_list(
            "action", flat=True
        )
    )
    for name in DestructionStep.ORDER:
        assert actions.count(f"destruction.{name}") == 1
    assert "destruction.succeeded" in actions and audit_verify().valid


def test_audit_events_of_the_programme_survive_destruction(data, admin, job):
    before = AuditEvent.objects.count()
    uploaded = AuditEvent.objects.filter(action="dataset.uploaded").count()
    run_all(services.programme_destroy(actor=admin, programme=data))
    assert AuditEvent.objects.count() > before
    assert AuditEvent.objects.filter(action="dataset.uploaded").count() == uploaded == 1


def test_the_certificate_is_emailed_to_every_controllers_dpo(data, admin, mailoutbox):
    run = run_all(services.programme_destroy(actor=admin, programme=data))
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert sorted(message.to) == [
        "dpo@practice-a.example.nhs.uk",
        "dpo@practice-b.example.nhs.uk",
    ]
    assert run.certificate.serial in message.subject
    assert (
        "check that the certificate is genuine and unmodified at http://127.0.0.1:8000/verify/"
        in (" ".join(message.body.split()))
    )
    name, content, mimetype = message.attachments[0]
    assert name == f"{run.certificate.serial}.pdf" and mimetype == "application/pdf"
    assert content == bytes(run.certificate.pdf)


def test_destruction_before_the_end_is_refused(ended, admin, job):
    with pytest.raises(NotAllowedNow, match="has not ended"):
        services.programme_destroy(actor=admin, programme=ended)
    assert not DestructionRun.objects.exists()


def test_early_destruction_needs_a_reason(ended, admin, job):
    with pytest.raises(InvalidInput) as refused:
        services.programme_destroy(actor=admin, programme=ended, early=True, reason="  ")
    assert refused.value.field == "reason"


def test_early_destruction_with_a_reason_ends_the_programme_and_says_why(ended, admin, job):
    run = services.programme_destroy(
        actor=admin, programme=ended, early=True, reason="The partnership was dissolved."
    )
    ended.refresh_from_db()
    assert ended.status == Programme.Status.ENDED and run.early
    assert AuditEvent.objects.filter(action="programme.ended_early").exists()
    run = run_all(run)
    assert run.status == "succeeded" and run.reason == "The partnership was dissolved."


def test_destruction_is_refused_while_a_job_of_the_programme_runs(ended, admin, dataset):
    job = dataset_services.dataset_pseudonymise(actor=admin, dataset=dataset)
    end(ended)
    with pytest.raises(NotAllowedNow, match="still queued"):
        services.programme_destroy(actor=admin, programme=ended)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)
    with pytest.raises(NotAllowedNow, match="still running"):
        services.programme_destroy(actor=admin, programme=ended)


def test_asking_twice_returns_the_active_run(data, admin, admin2):
    first = services.programme_destroy(actor=admin, programme=data)
    again = services.programme_destroy(actor=admin2, programme=data)
    assert again.pk == first.pk and DestructionRun.objects.count() == 1


def test_a_destroyed_programme_cannot_be_destroyed_again(destroyed, admin):
    with pytest.raises(NotAllowedNow, match="already destroyed"):
        services.programme_destroy(actor=admin, programme=destroyed.programme)


def test_no_new_job_starts_once_the_programme_has_ended(data, admin, job):
    with pytest.raises(NotAllowedNow, match="has ended"):
        dataset_services.dataset_pseudonymise(actor=admin, dataset=job.dataset)


class Killed(BaseException):
    """What a killed worker looks like from inside: the step stops, nothing is recorded."""


def test_a_run_killed_mid_step_is_resumed_without_repeating_finished_steps(
    data, admin, job, monkeypatch
):
    run = services.programme_destroy(actor=admin, programme=data)
    real_delete = FileSystemStorage.delete
    calls = []

    def dies_after_one_file(storage, name):
        calls.append(name)
        if len(calls) == 2:
            raise Killed
        real_delete(storage, name)

    monkeypatch.setattr(FileSystemStorage, "delete", dies_after_one_file)
    with pytest.raises(Killed):
        services.destruction_run_execute(run_id=run.pk)
    monkeypatch.setattr(FileSystemStorage, "delete", real_delete)

    before = steps(run)
    assert before["manifest"].status == "done" and before["erase_keys"].status == "done"
    assert before["delete_files"].status == "running"  # its worker died holding it
    manifest_done_at = before["manifest"].finished_at

    # Another worker while the lease still runs: it waits rather than doing it twice.
    with pytest.raises(services.StepBusy):
        services.destruction_run_execute(run_id=run.pk)
    # The lease expires; the next attempt takes the step over and finishes the run.
    DestructionStep.objects.filter(pk=before["delete_files"].pk).update(
        lease_until=timezone.now() - dt.timedelta(seconds=1)
    )
    assert services.destruction_runs_resume() == [run.pk]
    run = services.destruction_run_execute(run_id=run.pk)

    assert run.status == "succeeded"
    after = steps(run)
    assert after["manifest"].finished_at == manifest_done_at
    assert after["manifest"].attempts == 1 and after["erase_keys"].attempts == 1
    assert after["delete_files"].attempts == 2
    assert after["delete_files"].evidence["apps"]["datasets"]["already_gone"] == 1
    assert AuditEvent.objects.filter(action="destruction.manifest").count() == 1
    assert AuditEvent.objects.filter(action="destruction.delete_files").count() == 1
    assert all(c["passed"] for c in after["verify"].evidence["checks"])


def test_a_failed_step_stops_the_run_and_asking_again_resumes_it(data, admin, settings):
    settings.PHM_SIGNING_KEY_ON_FIRST_NEED = False  # as in production before `signing_key init`
    run = run_all(services.programme_destroy(actor=admin, programme=data))
    assert run.status == "failed" and "signing_key init" in run.error
    assert steps(run)["verify"].status == "done"
    assert steps(run)["certificate"].status == "failed"

    services.signing_key_init()
    again = services.programme_destroy(actor=admin, programme=data)
    assert again.pk == run.pk
    run = run_all(again)
    assert run.status == "succeeded"
    assert steps(run)["manifest"].attempts == 1
    assert AuditEvent.objects.filter(action="destruction.resumed").count() == 1


def test_verification_fails_when_a_file_of_the_manifest_is_still_there(
    data, admin, job, monkeypatch
):
    kept = job.dataset.file
    real_delete = FileSystemStorage.delete
    monkeypatch.setattr(
        FileSystemStorage,
        "delete",
        lambda storage, name: None if name == kept else real_delete(storage, name),
    )
    run = run_all(services.programme_destroy(actor=admin, programme=data))
    assert run.status == "failed"
    assert "none of the 4 files of the manifest is in storage" in run.error
    assert steps(run)["certificate"].status == "pending"
    assert not Certificate.objects.exists()


def test_ended_programmes_are_reminded_to_the_csu_admins_once_a_week(
    data, admin, admin2, mailoutbox
):
    assert services.destruction_reminders_send() == ["testshire"]
    assert len(mailoutbox) == 1
    assert sorted(mailoutbox[0].to) == sorted([admin.email, admin2.email])
    assert "/programmes/testshire/destruction/" in mailoutbox[0].body
    assert services.destruction_reminders_send() == []
    later = timezone.now() + dt.timedelta(days=8)
    assert services.destruction_reminders_send(now=later) == ["testshire"]
    assert DestructionReminder.objects.count() == 2


def test_the_beat_task_marks_ended_programmes_and_reminds(ended, admin, mailoutbox):
    from governance.tasks import programmes_mark_ended

    Programme.objects.filter(pk=ended.pk).update(end_date=dt.date(2026, 1, 1))
    assert programmes_mark_ended() == ["testshire"]
    assert [m.subject for m in mailoutbox] == [
        "Destroy the data of Testshire PHM: the programme has ended"
    ]


def test_a_destroyed_programme_is_not_reminded(destroyed, mailoutbox):
    mailoutbox.clear()
    assert services.destruction_reminders_send() == []
