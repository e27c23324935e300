"""Append to and verify the hash-chained audit log (every sensitive action calls audit_log)."""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from phm_portal import audit_checkpoints
from phm_portal.errors import NotAllowedNow
from phm_portal.models import AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64
SYSTEM_ACTOR = "system"
CHECKPOINT_ACTION = "audit.checkpoint_taken"
# The migration that makes the append-only trigger owns its SQL and the triggers' names.
_GUARD = importlib.import_module("phm_portal.migrations.0003_audit_events_append_only")


# What an audit action code is about, in words; the codes themselves stay as they are.
_ACTION_SUBJECTS = {
    "audit": "Audit log",
    "auth": "Sign-in",
    "consent": "Consent",
    "data_flow": "Data flow",
    "dataset": "Extract",
    "destruction": "Destruction",
    "job": "Pseudonymisation job",
    "national_opt_out": "National data opt-out",
    "notice": "Privacy notice",
    "opt_out_register": "Opt-out register",
    "organisation": "Organisation",
    "programme": "Programme",
    "pseudonym": "Pseudonym",
    "signing_key": "Signing key",
    "type1": "Type 1 opt-out",
    "user": "Person",
}
_ACTION_WORDS = {"api": "API", "dpo": "DPO", "csv": "CSV", "fhir": "FHIR", "pdf": "PDF"}


def audit_action_label(action: str) -> str:
    """Return the action code in words, e.g. 'data_flow.approved' -> 'Data flow: approved'."""
    subject, _, verb = action.partition(".")
    if not verb:
        subject, verb = "", subject
    words = " ".join(_ACTION_WORDS.get(w, w) for w in verb.split("_"))
    if not subject:
        return words[:1].upper() + words[1:]
    named = _ACTION_SUBJECTS.get(subject) or subject.replace("_", " ").capitalize()
    return f"{named}: {words}"


def _actor_name(actor: Any) -> str:
    if actor is None:
        return SYSTEM_ACTOR
    if isinstance(actor, str):
        return actor
    return actor.get_username()


def event_hash(
    *,
    prev_hash: str,
    seq: int,
    at: str,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    object_repr: str,
    details: dict,
) -> str:
    """Return the SHA-256 of the event's canonical JSON, chained to the previous hash."""
    body = json.dumps(
        {
            "prev": prev_hash,
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "object_repr": object_repr,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def stored_event_hash(event: AuditEvent, *, prev_hash: str) -> str:
    """Return the hash a stored event must carry when it follows prev_hash."""
    return event_hash(
        prev_hash=prev_hash,
        seq=event.seq,
        at=event.at.isoformat(),
        actor=event.actor,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        object_repr=event.object_repr,
        details=event.details,
    )


def audit_log(
    *,
    actor: Any,
    action: str,
    obj: models.Model | None = None,
    details: dict | None = None,
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction.

    1. Lock the chain head (the row lock serialises appenders on PostgreSQL; SQLite's
       IMMEDIATE transactions do the same).
    2. Compute the event's hash over its content and the previous hash.
    3. Insert the event and move the head.
    """
    # Round-trip details through JSON so the stored value hashes the same on every database.
    details = json.loads(json.dumps(details or {}, default=str))
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().filter(singleton=1).first()
        if head is None:
            # The migration makes the head; a flushed database has none. Two first
            # appenders may both get here: the insert that loses is ignored.
            AuditChainHead.objects.bulk_create([AuditChainHead(singleton=1)], ignore_conflicts=True)
            head = AuditChainHead.objects.select_for_update().get(singleton=1)
        seq = head.last_seq + 1
        at = timezone.now()
        fields = {
            "seq": seq,
            "at": at.isoformat(),
            "actor": _actor_name(actor),
            "action": action,
            "object_type": obj._meta.label_lower if obj is not None else "",
            "object_id": str(_object_key(obj)) if obj is not None else "",
            "object_repr": str(obj)[:300] if obj is not None else "",
            "details": details,
        }
        digest = event_hash(prev_hash=head.last_hash, **fields)
        event = AuditEvent.objects.create(
            seq=seq,
            at=at,
            actor=fields["actor"],
            action=action,
            object_type=fields["object_type"],
            object_id=fields["object_id"],
            object_repr=fields["object_repr"],
            details=details,
            prev_hash=head.last_hash,
            hash=digest,
        )
        AuditChainHead.objects.filter(singleton=1).update(last_seq=seq, last_hash=digest)
    return event


def _object_key(obj: models.Model) -> Any:
    """Return the key people use for the object: ODS code, slug, or primary key."""
    for attr in ("ods_code", "slug"):
        value = getattr(obj, attr, None)
        if value:
            return value
    return obj.pk


@dataclass(frozen=True)
class ChainReport:
    valid: bool
    events: int
    first_bad_seq: int | None
    reason: str = ""
    append_only: bool = True
    checkpoints: int = 0
    checkpoint: dict | None = None
    checkpoint_problems: tuple[dict, ...] = ()


def audit_verify() -> ChainReport:
    """Check the audit log: its chain, its append-only guard, and every signed checkpoint.

    1. Recompute every link (catches an event changed without hashing the chain again).
    2. Check the database still refuses UPDATE and DELETE of events.
    3. Check each checkpoint file is signed by the portal and that every event it signed
       still has the hash it signed (catches a rewrite hashed again, and events removed),
       and that no checkpoint the log records taking has gone.
    The first event that differs, by either check, is named.
    """
    chain = audit_chain_verify()
    differences: list[tuple[int, str]] = []
    if chain.first_bad_seq is not None:
        differences.append((chain.first_bad_seq, chain.reason))
    problems: list[dict] = []
    usable = 0
    latest: audit_checkpoints.Checkpoint | None = None
    names = audit_checkpoints.checkpoint_names()
    trusted = audit_checkpoints.trusted_certificates() if names else {}
    for name in names:
        try:
            checkpoint = audit_checkpoints.checkpoint_read(name)
            audit_checkpoints.checkpoint_check(checkpoint, trusted)
        except audit_checkpoints.CheckpointUnusable as exc:
            problems.append({"checkpoint": name, "problem": str(exc)})
            continue
        usable += 1
        if latest is None or checkpoint.seq >= latest.seq:
            latest = checkpoint
        difference = audit_checkpoints.checkpoint_first_difference(checkpoint)
        if difference is not None:
            differences.append(difference)
    present = set(names)
    for event in AuditEvent.objects.filter(action=CHECKPOINT_ACTION).only("seq", "details"):
        name = event.details.get("checkpoint") if isinstance(event.details, dict) else None
        if name not in present:
            problems.append(
                {
                    "checkpoint": name,
                    "problem": f"it is missing from the checkpoint folder (event {event.seq} "
                    "records taking it)",
                }
            )
    append_only = audit_guard_in_place()
    first_bad_seq, reason = min(differences) if differences else (None, "")
    if not reason and problems:
        reason = f"checkpoint {problems[0]['checkpoint']}: {problems[0]['problem']}"
    if not reason and not append_only:
        reason = "the database no longer refuses changes to audit events (its trigger is gone)"
    return ChainReport(
        valid=not differences and not problems and append_only,
        events=chain.events,
        first_bad_seq=first_bad_seq,
        reason=reason,
        append_only=append_only,
        checkpoints=usable,
        checkpoint=(
            {"name": latest.name, "seq": latest.seq, "at": latest.statement["at"]}
            if latest
            else None
        ),
        checkpoint_problems=tuple(problems),
    )


def audit_chain_verify() -> ChainReport:
    """Recompute every link; report the first event whose hash or order is wrong."""
    prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=2000):
        count += 1
        if event.seq != expected_seq:
            return ChainReport(False, count, expected_seq, f"event {expected_seq} is missing")
        if event.prev_hash != prev:
            return ChainReport(False, count, event.seq, "it does not link to the previous event")
        digest = stored_event_hash(event, prev_hash=prev)
        if digest != event.hash:
            return ChainReport(False, count, event.seq, "its content does not match its hash")
        prev = event.hash
        expected_seq += 1
    head = AuditChainHead.objects.filter(singleton=1).first()
    if head is not None and (head.last_seq != count or head.last_hash != prev):
        return ChainReport(False, count, count + 1, "events after the last one were removed")
    return ChainReport(True, count, None)


def audit_guard_in_place() -> bool:
    """Return whether the migration's append-only triggers on audit events are there and on."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name = 'phm_portal_auditevent' AND name IN (%s, %s)",
                _GUARD.SQLITE_TRIGGERS,
            )
            return sorted(row[0] for row in cursor.fetchall()) == sorted(_GUARD.SQLITE_CREATE)
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(*) FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
                "WHERE t.tgrelid = 'phm_portal_auditevent'::regclass AND t.tgname IN (%s, %s) "
                "AND t.tgenabled <> 'D' AND p.prosrc LIKE %s",
                [*_GUARD.POSTGRESQL_TRIGGERS, f"%{_GUARD.MESSAGE}%"],
            )
            return cursor.fetchone()[0] == len(_GUARD.POSTGRESQL_TRIGGERS)
    return False


def audit_checkpoint_take(*, reason: str) -> str:
    """Sign the chain as it is now into a new checkpoint file outside the database; return its name.

    1. Read the chain head, and the hash of every event since the newest checkpoint file.
    2. Refuse if those events do not reach the head: a broken chain is never signed.
    3. Sign with the portal's key and write the file (atomically, never replacing one).
    4. Record the checkpoint in the log, so a checkpoint file removed later is noticed.
    """
    # Imported here: the destruction app owns the signing key, and imports this module.
    from destruction.services.keys import signing_identity

    head = AuditChainHead.objects.filter(singleton=1).first() or AuditChainHead(singleton=1)
    earlier = [
        audit_checkpoints.name_seq(name)
        for name in audit_checkpoints.checkpoint_names()
        if audit_checkpoints.name_seq(name) <= head.last_seq
    ]
    from_seq = max(earlier, default=0)
    rows = list(
        AuditEvent.objects.filter(seq__gt=from_seq, seq__lte=head.last_seq)
        .order_by("seq")
        .values_list("seq", "hash")
    )
    if [seq for seq, _ in rows] != list(range(from_seq + 1, head.last_seq + 1)) or (
        rows and rows[-1][1] != head.last_hash
    ):
        raise NotAllowedNow(
            "The audit chain does not reach its head: no checkpoint is signed over a broken "
            "chain. Run `python manage.py verify_audit` to see where it breaks."
        )
    identity = signing_identity()
    document = audit_checkpoints.checkpoint_document(
        seq=head.last_seq,
        head_hash=head.last_hash,
        from_seq=from_seq,
        hashes=[digest for _, digest in rows],
        reason=reason,
        at=timezone.now(),
        identity=identity,
    )
    name = audit_checkpoints.checkpoint_write(document)
    audit_log(
        actor=None,
        action=CHECKPOINT_ACTION,
        details={
            "checkpoint": name,
            "seq": head.last_seq,
            "hash": head.last_hash,
            "reason": reason,
            "certificate": identity.fingerprint,
        },
    )
    return name
