"""Signed checkpoints of the audit chain outside the database catch a rewritten history."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from destruction import services as destruction_services
from phm_portal import audit_checkpoints
from phm_portal.audit import (
    audit_chain_verify,
    audit_checkpoint_take,
    audit_log,
    audit_verify,
)
from phm_portal.errors import NotAllowedNow
from phm_portal.lib import signing
from phm_portal.models import AuditChainHead, AuditEvent
from phm_portal.tasks import audit_checkpoint
from tests.datasets.conftest import flow  # noqa: F401 - fixture of the destruction fixtures
from tests.destruction.conftest import data, dataset, ended, job, run_all  # noqa: F401
from tests.phm_portal.audit_guard import database_owner
from tests.phm_portal.audit_guard import rewrite_and_rehash as rewrite


@pytest.fixture(scope="module")
def portal_identity() -> signing.Identity:
    return signing.new_identity()


@pytest.fixture(autouse=True)
def _own_signing_key(settings, tmp_path, portal_identity):
    """Each test's portal has its own key file (one key made per module: RSA is slow)."""
    settings.PHM_SIGNING_P12_FILE = tmp_path / "signing" / "portal-signing.p12"
    signing.save_identity(
        portal_identity, settings.PHM_SIGNING_P12_FILE, destruction_services.signing_password()
    )


def log(n: int, start: int = 1) -> None:
    for i in range(start, start + n):
        audit_log(actor="tester", action=f"event.{i}", details={"i": i})


def folder() -> Path:
    return Path(settings.PHM_AUDIT_CHECKPOINT_DIR)


def files() -> list[str]:
    return sorted(p.name for p in folder().glob("*.json"))


def read(name: str) -> dict:
    return json.loads((folder() / name).read_text())


def remove_from(seq: int) -> None:
    """Delete event seq and every later one as a database owner would; move the head back."""
    with database_owner():
        AuditEvent.objects.filter(seq__gte=seq).delete()
        last = AuditEvent.objects.get(seq=seq - 1)
        AuditChainHead.objects.update(last_seq=last.seq, last_hash=last.hash)


# --- taking a checkpoint ------------------------------------------------------------------
def test_the_daily_task_writes_a_checkpoint_signed_with_the_portals_key(db):
    log(3)
    head = AuditChainHead.objects.get()
    name = audit_checkpoint()  # what beat runs

    assert files() == [name]
    document = read(name)
    statement = document["statement"]
    assert (statement["seq"], statement["hash"]) == (3, head.last_hash)
    assert statement["reason"] == "daily" and statement["from_seq"] == 0
    assert document["hashes"] == list(
        AuditEvent.objects.filter(seq__lte=3).values_list("hash", flat=True)
    )
    # An auditor checks it with the certificate alone, outside the portal.
    identity = destruction_services.signing_identity()
    certificate = x509.load_pem_x509_certificate(document["signature"]["certificate"].encode())
    assert signing.fingerprint(certificate) == identity.fingerprint
    assert statement["certificate_fingerprint"] == identity.fingerprint
    certificate.public_key().verify(
        base64.b64decode(document["signature"]["value"]),
        json.dumps(statement, sort_keys=True, separators=(",", ":")).encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    taken = AuditEvent.objects.get(action="audit.checkpoint_taken")
    assert (taken.seq, taken.details["checkpoint"], taken.details["seq"]) == (4, name, 3)


def test_beat_takes_a_checkpoint_at_least_daily():
    from phm_portal.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]
    assert entry["schedule"] <= 24 * 3600
    assert entry["task"] in app.tasks


def test_a_checkpoint_holds_the_hashes_since_the_one_before(db):
    log(2)
    first = audit_checkpoint_take(reason="manual")
    log(2, start=3)
    second = audit_checkpoint_take(reason="manual")
    assert read(first)["statement"]["seq"] == 2
    statement = read(second)["statement"]
    # Events 3 (the first checkpoint's record), 4 and 5.
    assert (statement["from_seq"], statement["seq"]) == (2, 5)
    assert len(read(second)["hashes"]) == 3
    assert files() == [first, second]


def test_no_checkpoint_is_signed_over_a_broken_chain(db):
    log(3)
    remove_from(3)
    with database_owner(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM phm_portal_auditevent WHERE seq = 1")
    with pytest.raises(NotAllowedNow, match="does not reach its head"):
        audit_checkpoint_take(reason="manual")
    with pytest.raises(CommandError, match="does not reach its head"):
        call_command("audit_checkpoint")
    assert files() == []


def test_the_checkpoint_command_writes_one(db, capsys):
    log(1)
    call_command("audit_checkpoint", reason="before the audit visit")
    [name] = files()
    assert f"Audit checkpoint written: {name}" in capsys.readouterr().out
    assert read(name)["statement"]["reason"] == "before the audit visit"


def test_a_finished_destruction_writes_a_checkpoint(
    data,  # noqa: F811 - the destruction tests' fixture
    admin,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        run = run_all(destruction_services.programme_destroy(actor=admin, programme=data))
    assert run.status == "succeeded"
    [name] = files()
    statement = read(name)["statement"]
    succeeded = AuditEvent.objects.get(action="destruction.succeeded")
    assert statement["reason"] == f"destruction run {run.pk}"
    assert (statement["seq"], statement["hash"]) == (succeeded.seq, succeeded.hash)
    assert audit_verify().valid


# --- verifying against checkpoints --------------------------------------------------------
def test_a_rewritten_history_passes_the_chain_but_the_checkpoint_names_the_first_change(
    db, api, auditor
):
    log(5)
    audit_checkpoint_take(reason="daily")  # signs 1..5; event 6 records it
    log(2, start=7)
    rewrite(3, actor="someone-else", details={"i": "nothing to see"})

    assert audit_chain_verify().valid  # the chain alone is fooled
    report = audit_verify()
    assert (report.valid, report.first_bad_seq) == (False, 3)
    assert "not the one checkpoint" in report.reason
    with pytest.raises(CommandError, match="BROKEN at event 3"):
        call_command("verify_audit")
    body = api(auditor).get("/api/v1/audit/verify/").json()
    assert (body["valid"], body["first_bad_seq"], body["checkpoints"]) == (False, 3, 1)


def test_a_rewrite_after_the_last_checkpoint_is_named_by_the_next(db):
    log(3)
    audit_checkpoint_take(reason="daily")  # 1..3, record at 4
    log(3, start=5)
    audit_checkpoint_take(reason="daily")  # 5..7, record at 8
    rewrite(6, action="event.nothing")
    report = audit_verify()
    assert (report.valid, report.first_bad_seq) == (False, 6)


def test_removing_the_newest_events_after_a_checkpoint_is_caught(db):
    log(5)
    audit_checkpoint_take(reason="daily")  # 1..5
    remove_from(4)  # 4, 5 and the checkpoint's own record; the head moves back to 3
    assert audit_chain_verify().valid
    report = audit_verify()
    assert (report.valid, report.first_bad_seq) == (False, 4)
    assert "it is missing" in report.reason


def test_a_missing_later_checkpoint_leaves_earlier_ones_usable(db):
    log(3)
    first = audit_checkpoint_take(reason="daily")
    log(3, start=5)
    second = audit_checkpoint_take(reason="daily")
    (folder() / second).unlink()
    rewrite(2, actor="someone-else")

    report = audit_verify()
    assert (report.valid, report.first_bad_seq, report.checkpoints) == (False, 2, 1)
    assert report.checkpoint["name"] == first
    assert [p["checkpoint"] for p in report.checkpoint_problems] == [second]
    assert "missing from the checkpoint folder" in report.checkpoint_problems[0]["problem"]


def test_a_missing_checkpoint_alone_fails_verification_naming_it(db):
    log(2)
    name = audit_checkpoint_take(reason="daily")
    (folder() / name).unlink()
    report = audit_verify()
    assert (report.valid, report.first_bad_seq) == (False, None)
    assert report.reason.startswith(f"checkpoint {name}: it is missing")


def _forge_hash(document: dict) -> None:
    document["statement"]["hash"] = "f" * 64


def _forge_list(document: dict) -> None:
    document["hashes"][0] = "e" * 64


def _forge_with_another_key(document: dict) -> None:
    other = signing.new_identity("Mallory")
    forged = audit_checkpoints.checkpoint_document(
        seq=document["statement"]["seq"],
        head_hash=document["statement"]["hash"],
        from_seq=0,
        hashes=document["hashes"],
        reason="daily",
        at=dt.datetime.fromisoformat(document["statement"]["at"]),
        identity=other,
    )
    document.clear()
    document.update(forged)


@pytest.mark.parametrize(
    ("forge", "problem"),
    [
        (_forge_hash, "its signature does not match its content"),
        (_forge_list, "list of event hashes was changed after signing"),
        (_forge_with_another_key, "not signed with a certificate of this portal"),
        (lambda d: d.pop("signature"), "not a checkpoint in the portal's format"),
    ],
)
def test_a_forged_checkpoint_is_reported_as_forged(db, api, auditor, forge, problem):
    log(2)
    name = audit_checkpoint_take(reason="daily")
    document = read(name)
    forge(document)
    (folder() / name).write_text(json.dumps(document))

    report = audit_verify()
    assert (report.valid, report.first_bad_seq, report.checkpoints) == (False, None, 0)
    assert report.checkpoint_problems[0]["checkpoint"] == name
    assert problem in report.checkpoint_problems[0]["problem"]
    listed = api(auditor).get("/api/v1/audit/checkpoints/").json()["results"]
    assert (listed[0]["name"], listed[0]["usable"]) == (name, False)
    assert problem in listed[0]["problem"]


def test_a_file_that_is_not_json_is_reported_and_other_files_are_ignored(db):
    log(1)
    audit_checkpoint_take(reason="daily")
    (folder() / "README.txt").write_text("not a checkpoint")
    (folder() / "000000000001-20260101T000000000000Z.json").write_text("{nope")
    report = audit_verify()
    assert report.checkpoints == 1
    assert [p["checkpoint"] for p in report.checkpoint_problems] == [
        "000000000001-20260101T000000000000Z.json"
    ]
    assert "cannot be read as JSON" in report.checkpoint_problems[0]["problem"]


def test_verify_audit_names_the_latest_checkpoint(db, capsys):
    log(2)
    name = audit_checkpoint_take(reason="daily")
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "Audit chain valid: 3 events" in out
    assert f"the latest at event 2 ({name})" in out


# --- the API ----------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["auditor", "admin"])
def test_auditors_and_csu_admins_list_checkpoints_newest_first(db, api, who, request):
    log(1)
    first = audit_checkpoint_take(reason="daily")
    second = audit_checkpoint_take(reason="destruction run 7")
    client = api(request.getfixturevalue(who))
    body = client.get("/api/v1/audit/checkpoints/").json()
    assert body["count"] == 2
    assert [c["name"] for c in body["results"]] == [second, first]
    latest = body["results"][0]
    assert (latest["seq"], latest["reason"], latest["usable"]) == (2, "destruction run 7", True)
    assert latest["hash"] == AuditEvent.objects.get(seq=2).hash
    assert latest["signature"]["certificate_fingerprint"] == latest["certificate_fingerprint"]
    assert "hashes" not in latest
    page = client.get("/api/v1/audit/checkpoints/", {"page_size": 1, "page": 2}).json()
    assert [c["name"] for c in page["results"]] == [first]


def test_a_bad_page_number_is_a_404_not_a_server_error(db, api, auditor):
    response = api(auditor).get("/api/v1/audit/checkpoints/", {"page": "x"})
    assert response.status_code == 404


@pytest.mark.parametrize("who", ["alice", "dpo_a"])
def test_others_cannot_list_checkpoints(db, api, who, request):
    log(1)
    name = audit_checkpoint_take(reason="daily")
    response = api(request.getfixturevalue(who)).get("/api/v1/audit/checkpoints/")
    assert response.status_code == 403
    assert name not in response.content.decode()


def test_anonymous_cannot_list_checkpoints(db, api):
    assert api().get("/api/v1/audit/checkpoints/").status_code == 401
