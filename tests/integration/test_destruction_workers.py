"""A destruction run on a real worker killed mid-step: the next worker resumes it."""

from __future__ import annotations

import base64
import os
import signal

import pytest
from django.core.files.storage import default_storage

from datasets.models import Dataset, JobChunk, ProgrammeKey
from destruction import selectors, services
from destruction.models import Certificate, DestructionRun, DestructionStep
from phm_portal.models import AuditEvent
from tests.datasets.conftest import flow  # noqa: F401 - fixtures
from tests.destruction.conftest import dataset, end, ended, job  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

FAST_TAKEOVER = {"PHM_BROKER_VISIBILITY_TIMEOUT": "4", "PHM_DESTRUCTION_LEASE_SECONDS": "3"}


@pytest.fixture
def shared(settings, tmp_path, monkeypatch):
    """Files, keys and the signing key where the worker processes find them too."""
    folder = tmp_path / "var"
    monkeypatch.setenv("PHM_VAR_DIR", str(folder))
    settings.MEDIA_ROOT = str(folder / "files")
    settings.FILE_UPLOAD_TEMP_DIR = str(folder / "tmp")
    (folder / "tmp").mkdir(parents=True)
    signing_file = folder / "signing" / "portal-signing.p12"
    monkeypatch.setenv("PHM_SIGNING_P12_FILE", str(signing_file))
    settings.PHM_SIGNING_P12_FILE = signing_file
    monkeypatch.setenv(
        "PHM_KEY_ENCRYPTION_KEY", base64.b64encode(settings.KEY_ENCRYPTION_KEY).decode()
    )
    monkeypatch.setenv("PHM_BLIND_INDEX_KEY", settings.PHM_BLIND_INDEX_KEY)
    monkeypatch.setenv("PHM_FIELD_ENCRYPTION_KEY", settings.PHM_FIELD_ENCRYPTION_KEY)
    return folder


@pytest.fixture
def programme_with_data(shared, request):
    """An ended programme with an extract, a pseudonymised output, a vault and its key."""
    request.getfixturevalue("job")  # after `shared`: its files go to the shared folder
    return end(request.getfixturevalue("ended"))


def test_a_worker_killed_mid_run_is_resumed_without_repeating_finished_steps(
    workers, admin, programme_with_data, mailoutbox
):
    files = [Dataset.objects.get().file]
    chunk = JobChunk.objects.get()
    files += [chunk.output_file, chunk.vault_file]
    first = workers.start("w1", **FAST_TAKEOVER)
    run = services.programme_destroy(actor=admin, programme=programme_with_data)

    # The certificate step renders and signs a PDF: long enough to be killed in.
    workers.wait_for(
        lambda: DestructionStep.objects.filter(
            run=run, name="certificate", status="running"
        ).exists(),
        what="the certificate step to start",
    )
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    killed = DestructionStep.objects.get(run=run, name="certificate")
    assert killed.status == "running", "the worker finished its step; the test proves nothing"
    done_before = {
        s.name: s.finished_at for s in run.steps.filter(status=DestructionStep.Status.DONE)
    }
    assert set(done_before) == {"manifest", "erase_keys", "delete_files", "delete_rows", "verify"}

    workers.start("w2", **FAST_TAKEOVER)
    workers.wait_for(
        lambda: DestructionRun.objects.get(pk=run.pk).status not in ("queued", "running"),
        timeout=180,
        what="the run to finish",
    )
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    steps = {s.name: s for s in run.steps.all()}
    for name, finished_at in done_before.items():
        assert steps[name].attempts == 1 and steps[name].finished_at == finished_at
    assert steps["certificate"].attempts == 2 and steps["deliver"].status == "done"
    for name in DestructionStep.ORDER:
        assert AuditEvent.objects.filter(action=f"destruction.{name}").count() == 1
    assert not any(default_storage.exists(name) for name in files)
    assert not ProgrammeKey.objects.exists() and not JobChunk.objects.exists()
    certificate = Certificate.objects.get(run=run)
    assert selectors.certificate_verify(data=bytes(certificate.pdf)).valid
