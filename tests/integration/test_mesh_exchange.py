"""National opt-out checks over MESH on real workers, PostgreSQL, Redis and mesh-sandbox.

A worker process killed (SIGKILL) before it imports a reply, or after it imports and
before it acknowledges, leaves the reply to be imported exactly once by the next worker
with beat that runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from consent import services
from consent.models import MeshInboxMessage, NationalOptOutCheck
from phm_portal.models import AuditEvent
from tests.consent.conftest import mesh, mesh_sandbox, national_service  # noqa: F401
from tests.consent.mesh import PORTAL_MAILBOX
from tests.integration.conftest import ROOT, wait_for, workers  # noqa: F401
from tests.integration.conftest import test_database_url as database_url

pytestmark = pytest.mark.integration

# A process that reads the inbox as the beat task does, and dies (SIGKILL) at one point.
DIE_AT = textwrap.dedent(
    """
    import os, signal, sys
    import django
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "phm_portal.settings")
    django.setup()
    from consent import mesh, national_exchange, services

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    if sys.argv[1] == "before-import":
        services.national_check_complete = die
    else:
        mesh.Mailbox.acknowledge = die
    national_exchange.national_inbox_read()
    """
)


def _env(sandbox, **extra: str) -> dict[str, str]:
    return {
        **{name: str(value) for name, value in sandbox.settings().items()},
        "PHM_MESH_POLL_SECONDS": "1",
        **extra,
    }


def _read_and_die(sandbox, where: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url(), **_env(sandbox)}
    return subprocess.run(
        [sys.executable, "-c", DIE_AT, where],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_killed_worker_leaves_the_reply_to_be_imported_exactly_once(
    workers,  # noqa: F811
    mesh,  # noqa: F811
    national_service,  # noqa: F811
    admin,
    programme,
    practice_a,
):
    cohort = ["9434765919", "4010232137", "9990000018"]
    services.patients_note_at_practice(actor=admin, practice=practice_a, nhs_numbers=cohort)
    national_service.opted_out = lambda number: number == "4010232137"

    # A worker sends the file as soon as the check starts.
    workers.start("sender", **_env(mesh))
    check = services.national_check_start(actor=admin, programme=programme)
    workers.wait_for(
        lambda: NationalOptOutCheck.objects.get(pk=check.pk).status == "sent",
        what="the worker to send the check's file over MESH",
    )
    workers.stop()
    assert [a.kind for a in national_service.answer_all()] == ["numbers"]

    # Killed after downloading, before importing: nothing is imported, nothing acknowledged.
    died = _read_and_die(mesh, "before-import")
    assert died.returncode == -signal.SIGKILL, died.stderr
    check.refresh_from_db()
    assert check.status == "sent" and not MeshInboxMessage.objects.exists()
    assert len(mesh.inbox(PORTAL_MAILBOX)) == 1

    # Killed after importing, before acknowledging: imported, still in the inbox.
    died = _read_and_die(mesh, "before-acknowledgement")
    assert died.returncode == -signal.SIGKILL, died.stderr
    check.refresh_from_db()
    assert (check.status, check.opted_out) == ("complete", 1)
    assert MeshInboxMessage.objects.get().acknowledged_at is None
    assert len(mesh.inbox(PORTAL_MAILBOX)) == 1

    # A worker with beat: the next round only acknowledges.
    workers.start("poller", beat=True, **_env(mesh))
    workers.wait_for(
        lambda: mesh.inbox(PORTAL_MAILBOX) == [], what="the beat round to acknowledge the reply"
    )
    assert MeshInboxMessage.objects.get().acknowledged_at is not None
    assert AuditEvent.objects.filter(action="national_opt_out.check_completed").count() == 1
    check.refresh_from_db()
    assert (check.status, check.returned, check.opted_out) == ("complete", 2, 1)


def test_a_check_started_with_workers_running_completes_by_itself(
    workers,  # noqa: F811
    mesh,  # noqa: F811
    national_service,  # noqa: F811
    admin,
    programme,
    practice_a,
):
    services.patients_note_at_practice(
        actor=admin, practice=practice_a, nhs_numbers=["9434765919", "4010232137"]
    )
    workers.start("w1", beat=True, **_env(mesh))
    check = services.national_check_start(actor=admin, programme=programme)

    def answered() -> bool:
        national_service.answer_all()
        return NationalOptOutCheck.objects.get(pk=check.pk).status == "complete"

    workers.wait_for(answered, what="the check to be sent, answered and imported")
    assert mesh.inbox(PORTAL_MAILBOX) == [] or wait_for(
        lambda: mesh.inbox(PORTAL_MAILBOX) == [], what="the reply to be acknowledged"
    )
