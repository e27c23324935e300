"""PostgreSQL refuses to change, remove or truncate audit events; checkpoints catch an owner."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from phm_portal.audit import (
    audit_chain_verify,
    audit_checkpoint_take,
    audit_guard_in_place,
    audit_log,
    audit_verify,
)
from phm_portal.lib import signing
from phm_portal.models import AuditEvent
from tests.phm_portal.audit_guard import rewrite_and_rehash

pytestmark = pytest.mark.integration


@pytest.fixture
def three_events(db):
    for action in ("one.done", "two.done", "three.done"):
        audit_log(actor="tester", action=action)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE phm_portal_auditevent SET actor = 'mallory' WHERE seq = 2",
        "DELETE FROM phm_portal_auditevent WHERE seq = 3",
        "TRUNCATE phm_portal_auditevent",
    ],
)
def test_postgresql_refuses_to_change_or_remove_audit_events(three_events, sql):
    assert connection.vendor == "postgresql"
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
    assert audit_guard_in_place() and audit_verify().valid


def test_a_disabled_trigger_is_reported(three_events):
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE phm_portal_auditevent DISABLE TRIGGER phm_audit_event_no_truncate"
        )
    report = audit_verify()
    assert (report.valid, report.append_only) == (False, False)


def test_a_rewrite_by_the_database_owner_is_caught_by_the_checkpoint(
    three_events, settings, tmp_path
):
    settings.PHM_SIGNING_P12_FILE = tmp_path / "portal-signing.p12"
    settings.PHM_SIGNING_KEY_ON_FIRST_NEED = False
    from destruction.services import signing_password

    signing.save_identity(signing.new_identity(), settings.PHM_SIGNING_P12_FILE, signing_password())
    audit_checkpoint_take(reason="daily")  # signs 1..3
    rewrite_and_rehash(2, actor="someone-else")
    assert audit_guard_in_place()
    assert audit_chain_verify().valid
    report = audit_verify()
    assert (report.valid, report.first_bad_seq) == (False, 2)


def test_the_test_suites_flush_truncates_the_log_and_restores_the_guard(transactional_db):
    audit_log(actor="tester", action="one.done")
    call_command("flush", interactive=False)
    assert not AuditEvent.objects.exists()
    assert audit_guard_in_place()
    audit_log(actor="tester", action="after.flush")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        AuditEvent.objects.all().delete()
