"""The audit log: an append-only, hash-chained record of every sensitive action."""

from __future__ import annotations

from django.db import models


class AuditChainHead(models.Model):
    """The last link of the chain; its row is locked while an event is appended."""

    singleton = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(singleton=1), name="audit_head_is_singleton"),
        ]

    def __str__(self) -> str:
        return f"audit chain head at {self.last_seq}"


class AuditEvent(models.Model):
    """One sensitive action; `hash` covers this event and the previous event's hash."""

    seq = models.BigIntegerField(unique=True)
    at = models.DateTimeField()
    actor = models.CharField(max_length=150, help_text="Username, or 'system' for tasks.")
    action = models.CharField(max_length=80)
    object_type = models.CharField(max_length=80, blank=True)
    object_id = models.CharField(max_length=120, blank=True)
    object_repr = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        indexes = [
            # GET /api/v1/audit/?action=...: filter by action, newest first
            models.Index(fields=["action", "seq"], name="audit_action_seq"),
            # GET /api/v1/audit/?object=governance.programme:devon: an object's history
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
            # GET /api/v1/audit/?actor=...
            models.Index(fields=["actor", "seq"], name="audit_actor_seq"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor}"

    @property
    def object_label(self) -> str:
        return f"{self.object_type}:{self.object_id}" if self.object_type else ""
