from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from phm_portal.audit import audit_guard_in_place, audit_log, audit_verify
from phm_portal.models import AuditChainHead, AuditEvent
from tests.phm_portal.audit_guard import database_owner


def tamper(sql: str) -> None:
    """Change the audit table as its owner can: lift the trigger, run the SQL, restore it."""
    with database_owner(), connection.cursor() as cursor:
        cursor.execute(sql)


@pytest.fixture
def three_events(db, practice_a):
    for action in ("one.done", "two.done", "three.done"):
        audit_log(actor="tester", action=action, obj=practice_a, details={"n": action})


def test_each_event_links_to_the_one_before(three_events):
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].prev_hash == "0" * 64
    assert events[1].prev_hash == events[0].hash
    assert events[2].prev_hash == events[1].hash
    assert events[0].object_id == "A81001"
    assert audit_verify().valid


def test_a_changed_event_is_reported_at_its_sequence_number(three_events):
    tamper("UPDATE phm_portal_auditevent SET actor = 'mallory' WHERE seq = 2")
    report = audit_verify()
    assert not report.valid
    assert report.first_bad_seq == 2


def test_a_deleted_event_is_reported(three_events):
    tamper("DELETE FROM phm_portal_auditevent WHERE seq = 2")
    report = audit_verify()
    assert (report.valid, report.first_bad_seq) == (False, 2)


def test_removing_the_newest_events_is_reported(three_events):
    tamper("DELETE FROM phm_portal_auditevent WHERE seq = 3")
    report = audit_verify()
    assert (report.valid, report.first_bad_seq) == (False, 3)


def test_verify_audit_command_says_valid(three_events, capsys):
    call_command("verify_audit")
    assert "Audit chain valid: 3 events" in capsys.readouterr().out


def test_verify_audit_command_fails_naming_the_first_broken_link(three_events):
    tamper('UPDATE phm_portal_auditevent SET details = \'{"n": "forged"}\' WHERE seq = 1')
    with pytest.raises(CommandError, match="BROKEN at event 1"):
        call_command("verify_audit")


@pytest.mark.parametrize("who", ["auditor", "admin"])
def test_auditors_and_csu_admins_read_the_log(api, three_events, who, request):
    response = api(request.getfixturevalue(who)).get("/api/v1/audit/?action=two.done")
    assert response.status_code == 200
    assert [e["action"] for e in response.json()["results"]] == ["two.done"]
    assert response.json()["results"][0]["object"] == "governance.organisation:A81001"


@pytest.mark.parametrize("who", ["alice", "dpo_a"])
def test_others_cannot_read_the_log(api, three_events, who, request):
    assert api(request.getfixturevalue(who)).get("/api/v1/audit/").status_code == 403
    assert api(request.getfixturevalue(who)).get("/api/v1/audit/verify/").status_code == 403


def test_anonymous_cannot_read_the_log(api, three_events):
    assert api().get("/api/v1/audit/").status_code == 401


def test_audit_verify_endpoint_reports_the_break(api, auditor, three_events):
    assert api(auditor).get("/api/v1/audit/verify/").json() == {
        "valid": True,
        "events": 3,
        "first_bad_seq": None,
        "reason": "",
        "append_only": True,
        "checkpoints": 0,
        "checkpoint": None,
        "checkpoint_problems": [],
    }
    tamper("UPDATE phm_portal_auditevent SET action = 'x' WHERE seq = 3")
    body = api(auditor).get("/api/v1/audit/verify/").json()
    assert (body["valid"], body["first_bad_seq"]) == (False, 3)


def test_audit_page_verifies_the_chain(client, auditor, three_events):
    client.force_login(auditor)
    page = client.get("/audit/?verify=1").content.decode()
    assert "The chain is intact" in page
    assert "three.done" in page


def test_an_audit_filter_with_an_offset_postgresql_refuses_is_compared_in_utc(api, auditor):
    # ISO 8601 allows +17:09; PostgreSQL does not (found by tests/test_api_fuzz.py).
    response = api(auditor).get("/api/v1/audit/", {"until": "9426-06-25T03:26:03+17:09"})
    assert response.status_code == 200
    response = api(auditor).get("/api/v1/audit/", {"since": "0001-01-01T00:10:00+17:09"})
    assert response.status_code == 400
    assert response.json() == {"since": ["The date is out of range."]}


# --- the database refuses to change or remove an event ---------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE phm_portal_auditevent SET actor = 'mallory' WHERE seq = 2",
        "UPDATE phm_portal_auditevent SET hash = prev_hash",
        "DELETE FROM phm_portal_auditevent WHERE seq = 3",
        "DELETE FROM phm_portal_auditevent",
    ],
)
def test_the_database_refuses_to_change_or_remove_audit_events(three_events, sql):
    with (
        pytest.raises(IntegrityError, match="audit events are append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert list(AuditEvent.objects.values_list("seq", "actor")) == [
        (1, "tester"),
        (2, "tester"),
        (3, "tester"),
    ]
    assert audit_verify().valid


def test_the_orm_cannot_change_or_remove_an_event_either(three_events):
    event = AuditEvent.objects.get(seq=2)
    event.actor = "mallory"
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        event.save()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=3).delete()
    assert AuditEvent.objects.get(seq=2).actor == "tester"
    assert AuditEvent.objects.count() == 3


def test_the_chain_head_still_moves_and_events_are_still_appended(three_events):
    audit_log(actor="tester", action="four.done")
    assert AuditChainHead.objects.get().last_seq == 4
    assert audit_verify().valid


def test_a_dropped_trigger_is_reported(three_events):
    assert audit_guard_in_place()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DROP TRIGGER phm_audit_event_no_delete")
        else:
            cursor.execute(
                "ALTER TABLE phm_portal_auditevent DISABLE TRIGGER phm_audit_event_append_only"
            )
    assert not audit_guard_in_place()
    report = audit_verify()
    assert (report.valid, report.append_only, report.first_bad_seq) == (False, False, None)
    assert "no longer refuses changes" in report.reason
    with pytest.raises(CommandError, match="no longer refuses changes to audit events"):
        call_command("verify_audit")


def test_a_trigger_replaced_by_one_that_allows_changes_is_reported(three_events):
    with connection.cursor() as cursor:
        if connection.vendor != "sqlite":
            pytest.skip("SQLite's triggers; tests/integration/test_audit_postgres.py")
        cursor.execute("DROP TRIGGER phm_audit_event_no_update")
        cursor.execute(
            "CREATE TRIGGER phm_audit_event_no_update BEFORE UPDATE ON phm_portal_auditevent "
            "BEGIN SELECT 1; END"
        )
    assert not audit_guard_in_place()
    assert not audit_verify().valid


def test_the_test_suites_flush_empties_the_log_and_restores_the_guard(transactional_db):
    audit_log(actor="tester", action="one.done")
    call_command("flush", interactive=False)
    assert not AuditEvent.objects.exists()
    assert audit_guard_in_place()
    audit_log(actor="tester", action="after.flush")
    assert audit_verify().valid
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        AuditEvent.objects.all().delete()
