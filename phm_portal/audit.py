"""Append to and verify the hash-chained audit log (every sensitive action calls audit_log)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from phm_portal.models import AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64
SYSTEM_ACTOR = "system"


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


def audit_verify() -> ChainReport:
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
        digest = event_hash(
            prev_hash=prev,
            seq=event.seq,
            at=event.at.isoformat(),
            actor=event.actor,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            object_repr=event.object_repr,
            details=event.details,
        )
        if digest != event.hash:
            return ChainReport(False, count, event.seq, "its content does not match its hash")
        prev = event.hash
        expected_seq += 1
    head = AuditChainHead.objects.filter(singleton=1).first()
    if head is not None and (head.last_seq != count or head.last_hash != prev):
        return ChainReport(False, count, count + 1, "events after the last one were removed")
    return ChainReport(True, count, None)
