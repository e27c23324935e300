"""National data opt-out checks over MESH, against NHS England's mesh-sandbox.

The sandbox is a real MESH server in a process of its own (tests/consent/mesh.py); the
stand-in national service reads its inbox there and answers in the service's format.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from consent import national_exchange, services, tasks
from consent import register as register_module
from consent.models import MeshInboxMessage, NationalOptOutCheck, NationalOptOutEntry
from phm_portal.lib.crypto import blind_index
from phm_portal.models import AuditEvent
from tests.consent.mesh import NDOP_MAILBOX, PORTAL_MAILBOX, WORKFLOW, free_port
from tests.factories import DataFlowFactory

URL = "/api/v1/national-opt-outs/checks/"
pytestmark = pytest.mark.django_db


@pytest.fixture
def cohort(programme, practice_a, admin, numbers):
    """Three patients known at the programme's practice A (from an extract, say)."""
    found = numbers(3)
    services.patients_note_at_practice(actor=admin, practice=practice_a, nhs_numbers=found)
    return found


@pytest.fixture
def start(api, admin, monkeypatch, django_capture_on_commit_callbacks):
    """Start a check through the API; the send task runs in this process, as a worker would."""
    monkeypatch.setattr(tasks.national_check_send, "delay", tasks.national_check_send)

    def make() -> NationalOptOutCheck:
        with django_capture_on_commit_callbacks(execute=True):
            response = api(admin).post(URL, {"programme": "testshire"}, format="json")
        assert response.status_code == 201, response.json()
        return NationalOptOutCheck.objects.get(pk=response.json()["id"])

    return make


def page_text(client, user, check) -> str:
    client.force_login(user)
    response = client.get(f"/national-opt-outs/{check.pk}/")
    assert response.status_code == 200
    return " ".join(response.content.decode().split())


def test_starting_a_check_sends_its_file_over_mesh_in_the_service_format(
    api, admin, client, cohort, mesh, start, today
):
    check = start()
    name = f"{PORTAL_MAILBOX}-{today:%d%m%y}-0001"
    body = api(admin).get(f"{URL}{check.pk}/").json()
    assert (body["status"], body["local_id"], body["transport"]) == ("sent", name, "mesh")
    assert body["mesh_message_id"] and body["sent_at"]
    with mesh.client(NDOP_MAILBOX) as ndop:
        (message_id,) = ndop.list_messages()
        message = ndop.retrieve_message(message_id)
        assert message.read() == "".join(f"{n},\n" for n in cohort).encode()
        assert (message.local_id, message.subject, message.filename, message.workflow_id) == (
            name, name, f"{name}.dat", WORKFLOW
        )  # fmt: skip
    assert message_id == body["mesh_message_id"]
    text = page_text(client, admin, check)
    assert "Sent over MESH, waiting for the national service since" in text
    assert AuditEvent.objects.filter(action="national_opt_out.check_sent").count() == 1


def test_files_are_numbered_within_the_month(cohort, mesh, start, today):
    first, second = start(), start()
    assert first.local_id == f"{PORTAL_MAILBOX}-{today:%d%m%y}-0001"
    assert second.local_id == f"{PORTAL_MAILBOX}-{today:%d%m%y}-0002"
    # Another month's numbers do not count.
    last_month = today.replace(day=1) - dt.timedelta(days=1)
    NationalOptOutCheck.objects.create(
        programme=first.programme,
        created_by=first.created_by,
        local_id=f"{PORTAL_MAILBOX}-{last_month:%d%m%y}-0007",
    )
    assert start().local_id == f"{PORTAL_MAILBOX}-{today:%d%m%y}-0003"


def test_the_reply_is_imported_then_acknowledged_and_the_register_uses_it(
    admin, client, cohort, mesh, start, national_service, flow
):
    a, b, c = cohort
    national_service.opted_out = lambda number: number == b
    check = start()
    assert [answer.kind for answer in national_service.answer_all()] == ["numbers"]
    result = national_exchange.national_checks_exchange()
    assert result["received"] == {"reply": 1}
    check.refresh_from_db()
    assert (check.status, check.submitted, check.returned, check.opted_out) == (
        "complete", 3, 2, 1
    )  # fmt: skip
    assert check.checked_on == timezone.localdate() and check.replied_at
    assert NationalOptOutEntry.objects.get(check_run=check, opted_out=True).patient.nhs_index == (
        blind_index(b)
    )
    assert mesh.inbox(PORTAL_MAILBOX) == []  # acknowledged
    assert MeshInboxMessage.objects.get().acknowledged_at is not None
    register = register_module.opt_out_register_check(data_flow=flow, nhs_numbers=[a, b, c])
    assert register.excluded == [(b, ["national"])]
    assert "Complete" in page_text(client, admin, check)
    # A second round finds nothing new and changes nothing.
    assert national_exchange.national_checks_exchange()["received"] == {}
    assert AuditEvent.objects.filter(action="national_opt_out.check_completed").count() == 1


def test_an_error_reply_fails_the_check_with_the_services_words_and_imports_nothing(
    admin, api, client, cohort, mesh, start, national_service, flow, national_check
):
    # The programme has an older complete check: it stays the one used.
    older = national_check(cohort, cohort[:2])
    check = start()
    national_service.refuse[check.local_id] = "ERROR: The file could not be processed.\n"
    national_service.answer_all()
    national_exchange.national_checks_exchange()
    check.refresh_from_db()
    assert check.status == "failed"
    assert check.failure == "ERROR: The file could not be processed."
    assert not NationalOptOutEntry.objects.filter(check_run=check).exists()
    assert mesh.inbox(PORTAL_MAILBOX) == []
    body = api(admin).get(f"{URL}{check.pk}/").json()
    assert (body["status"], body["failure"]) == ("failed", check.failure)
    text = page_text(client, admin, check)
    assert "The national service refused the file" in text
    assert '<q id="service-words">ERROR: The file could not be processed.</q>' in text
    # Never read as "everyone opted out": the older check still answers.
    register = register_module.opt_out_register_check(data_flow=flow, nhs_numbers=cohort)
    assert register.national_check_id == older.pk
    assert register.excluded == [(cohort[2], ["national"])]


def test_the_service_answers_an_invalid_number_with_an_error_which_fails_the_check(
    cohort, mesh, national_service, start
):
    # The portal never sends one (it checks every number first), so the file the service
    # receives under the check's name is replaced here by one holding a bad check digit.
    check = start()
    with mesh.client(NDOP_MAILBOX) as ndop:
        for message_id in ndop.list_messages():
            ndop.acknowledge_message(message_id)
    with mesh.client(PORTAL_MAILBOX) as portal:
        portal.send_message(
            NDOP_MAILBOX, b"9434765918,\n", workflow_id=WORKFLOW, local_id=check.local_id,
            subject=check.local_id, filename=f"{check.local_id}.dat",
        )  # fmt: skip
    assert [a.kind for a in national_service.answer_all()] == ["error"]
    national_exchange.national_checks_exchange()
    check.refresh_from_db()
    assert check.status == "failed"
    assert check.failure == "ERROR: Invalid NHS number on line 1."


def test_a_second_answer_to_an_answered_check_is_kept_aside(cohort, mesh, national_service, start):
    check = start()
    national_service.answer_all()
    with mesh.client(NDOP_MAILBOX) as ndop:
        ndop.send_message(
            PORTAL_MAILBOX, b"ERROR: something else\n", workflow_id=WORKFLOW,
            local_id=check.local_id, subject=check.local_id,
        )  # fmt: skip
    national_exchange.national_checks_exchange()
    check.refresh_from_db()
    assert check.status == "complete"
    kinds = sorted(MeshInboxMessage.objects.values_list("kind", flat=True))
    assert kinds == ["refused", "reply"]
    assert mesh.inbox(PORTAL_MAILBOX) == []


def test_a_note_from_the_service_is_kept_and_the_check_waits_for_its_reply(
    admin, client, cohort, mesh, national_service, start
):
    national_service.job_notes = True
    check = start()
    national_service.answer_all()
    result = national_exchange.national_checks_exchange()
    assert result["received"] == {"note": 1, "reply": 1}
    check.refresh_from_db()
    assert check.status == "complete"
    assert "A job has been created in POS" in check.service_notes
    assert "The national service also said" in page_text(client, admin, check)


def test_a_message_matching_no_check_is_recorded_once_and_left_in_the_inbox(mesh, cohort, start):
    with mesh.client(NDOP_MAILBOX) as ndop:
        ndop.send_message(
            PORTAL_MAILBOX, b"9434765919,\n", workflow_id=WORKFLOW, local_id="SOMEONE-ELSE-0001",
            subject="SOMEONE-ELSE-0001",
        )  # fmt: skip
    national_exchange.national_checks_exchange()
    national_exchange.national_checks_exchange()
    assert MeshInboxMessage.objects.get().kind == "unmatched"
    assert len(mesh.inbox(PORTAL_MAILBOX)) == 1
    assert AuditEvent.objects.filter(action="national_opt_out.mesh_message_unmatched").count() == 1


def test_a_worker_stopped_between_import_and_acknowledgement_imports_the_reply_once(
    cohort, mesh, national_service, start, monkeypatch
):
    check = start()
    national_service.answer_all()

    class Killed(BaseException):
        """What the worker's death looks like from here: nothing after it runs."""

    def die(self, message_id):
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(national_exchange.mesh.Mailbox, "acknowledge", die)
        with pytest.raises(Killed):
            national_exchange.national_checks_exchange()
    check.refresh_from_db()
    assert check.status == "complete"
    assert len(mesh.inbox(PORTAL_MAILBOX)) == 1  # downloaded and imported, not acknowledged
    result = national_exchange.national_checks_exchange()
    assert result["received"] == {"reply": 1}
    assert mesh.inbox(PORTAL_MAILBOX) == []
    assert AuditEvent.objects.filter(action="national_opt_out.check_completed").count() == 1


def test_mesh_errors_are_shown_on_the_check_and_retried_with_backoff(
    admin, client, cohort, mesh, start, settings
):
    settings.PHM_MESH_URL = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    check = start()
    check.refresh_from_db()
    assert (check.status, check.send_attempts) == ("awaiting_return", 1)
    assert "MESH could not be reached" in check.send_error
    first_retry = check.next_send_at - timezone.now()
    assert dt.timedelta(seconds=50) < first_retry <= dt.timedelta(minutes=1)
    text = page_text(client, admin, check)
    assert "The file could not be sent yet" in text and "MESH could not be reached" in text
    # Not before its time...
    assert national_exchange.national_checks_send_due() == []
    # ...then again, failing again: the wait doubles.
    later = check.next_send_at + dt.timedelta(seconds=1)
    national_exchange.national_checks_send_due(now=later)
    check.refresh_from_db()
    assert check.send_attempts == 2
    assert check.next_send_at - later == dt.timedelta(minutes=2)
    # MESH is back: the next due round sends it.
    settings.PHM_MESH_URL = mesh.url
    sent = national_exchange.national_checks_send_due(now=check.next_send_at)
    check.refresh_from_db()
    assert sent == [check.pk] and check.status == "sent" and check.send_error == ""
    assert AuditEvent.objects.filter(action="national_opt_out.mesh_send_failed").count() == 2


def test_a_check_unanswered_for_the_reply_hours_is_flagged_and_the_admins_emailed_once(
    admin, client, cohort, mesh, start, settings
):
    settings.PHM_NDOP_REPLY_HOURS = 24
    check = start()
    assert national_exchange.national_checks_flag_overdue() == []
    NationalOptOutCheck.objects.filter(pk=check.pk).update(
        sent_at=timezone.now() - dt.timedelta(hours=25)
    )
    assert national_exchange.national_checks_flag_overdue() == [check.pk]
    assert national_exchange.national_checks_flag_overdue() == []
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [admin.email]
    assert check.local_id in mail.outbox[0].subject
    assert "No reply yet" in page_text(client, admin, check)


def test_without_mesh_settings_checks_are_exchanged_by_hand(api, admin, cohort, settings):
    settings.PHM_MESH_URL = ""
    body = api(admin).post(URL, {"programme": "testshire"}, format="json").json()
    assert (body["status"], body["transport"]) == ("awaiting_return", "manual")
    assert "national-opt-outs-mesh-exchange" not in settings.CELERY_BEAT_SCHEDULE


def test_an_error_file_imported_by_hand_fails_the_check(api, admin, client, cohort, settings):
    settings.PHM_MESH_URL = ""
    check = api(admin).post(URL, {"programme": "testshire"}, format="json").json()
    response = api(admin).post(
        f"{URL}{check['id']}/returned/",
        {"returned": SimpleUploadedFile("r.dat", b"ERROR: Invalid NHS number on line 2\n")},
        format="multipart",
    )
    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["failure"]) == (
        "failed", "ERROR: Invalid NHS number on line 2"
    )  # fmt: skip
    assert not NationalOptOutEntry.objects.filter(check_run_id=check["id"]).exists()


def test_a_file_of_other_words_imported_by_hand_is_refused_naming_it(api, admin, cohort, settings):
    settings.PHM_MESH_URL = ""
    check = api(admin).post(URL, {"programme": "testshire"}, format="json").json()
    response = api(admin).post(
        f"{URL}{check['id']}/returned/",
        {"returned": SimpleUploadedFile("r.dat", b"Dear colleague, thank you.\n")},
        format="multipart",
    )
    assert response.status_code == 400
    assert "not a reply of NHS numbers" in response.json()["returned"][0]
    assert NationalOptOutCheck.objects.get(pk=check["id"]).status == "awaiting_return"


def test_only_a_csu_admin_sees_a_checks_mesh_details(api, alice, dpo_a, cohort, mesh, start):
    check = start()
    for user in (alice, dpo_a):
        assert api(user).get(f"{URL}{check.pk}/").status_code == 403


def test_a_demo_check_is_never_sent(admin, programme, cohort, mesh):
    check = services.national_check_start(actor=admin, programme=programme, demo=True)
    assert check.transport == "manual" and check.demo
    assert national_exchange.national_checks_send_due() == []
    assert mesh.inbox(NDOP_MAILBOX) == []


def test_the_exchange_is_scheduled_when_mesh_is_configured(tmp_path):
    from tests.phm_portal.test_settings import run_manage

    done = run_manage(
        tmp_path,
        {
            "PHM_DEMO": "1",
            "PHM_MESH_URL": "http://127.0.0.1:9",
            "PHM_MESH_MAILBOX": "PHMPORTAL01",
            "PHM_MESH_PASSWORD": "x",
            "PHM_MESH_SHARED_KEY": "y",
            "PHM_NDOP_MAILBOX": "NDOP01",
            "PHM_MESH_POLL_SECONDS": "120",
        },
        "shell",
        "-c",
        "from django.conf import settings; "
        "print(settings.CELERY_BEAT_SCHEDULE['national-opt-outs-mesh-exchange'])",
    )
    assert done.returncode == 0, done.stderr
    assert "'schedule': 120" in done.stdout


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"PHM_MESH_MAILBOX": "PHM:01"}, "letters and digits only"),
        ({"PHM_MESH_URL": "http://127.0.0.1:9"}, "PHM_MESH_MAILBOX, PHM_MESH_PASSWORD"),
        (
            {"PHM_MESH_URL": "http://127.0.0.1:9", "PHM_MESH_MAILBOX": "A1",
             "PHM_MESH_PASSWORD": "x", "PHM_MESH_SHARED_KEY": "y", "PHM_NDOP_MAILBOX": "B1",
             "PHM_MESH_CLIENT_CERT": "/nonexistent/cert.pem"},
            "Set PHM_MESH_CLIENT_CERT and PHM_MESH_CLIENT_KEY together",
        ),
    ],
)  # fmt: skip
def test_bad_mesh_settings_stop_the_start_naming_them(tmp_path, env, says):
    from tests.phm_portal.test_settings import run_manage

    done = run_manage(tmp_path, {"PHM_DEMO": "1", **env}, "check")
    assert done.returncode != 0
    assert says in done.stderr


def test_a_flow_of_the_programme_is_refused_while_only_a_failed_check_exists(
    cohort, mesh, start, national_service, programme, admin, csu, practice_a
):
    flow = DataFlowFactory(
        programme=programme, source=practice_a, destination=csu, status="approved",
        created_by=admin,
    )  # fmt: skip
    check = start()
    national_service.refuse[check.local_id] = "ERROR: rejected"
    national_service.answer_all()
    national_exchange.national_checks_exchange()
    from phm_portal.errors import NotAllowedNow

    with pytest.raises(NotAllowedNow):
        register_module.opt_out_register_check(data_flow=flow, nhs_numbers=cohort)


def test_a_demo_checks_page_says_it_is_demo_data(admin, client, programme, cohort):
    check = services.national_check_start(actor=admin, programme=programme, demo=True)
    text = page_text(client, admin, check)
    assert "Demo data" in text and "the national service never saw it" in text
    real = services.national_check_start(actor=admin, programme=programme)
    assert "Demo data" not in page_text(client, admin, real)
