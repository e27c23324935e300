"""Celery tasks of the portal's core: thin callers of phm_portal.audit."""

from __future__ import annotations

from celery import shared_task

from phm_portal.audit import audit_checkpoint_take


@shared_task(acks_late=True)
def audit_checkpoint(reason: str = "daily") -> str:
    """Sign a checkpoint of the audit chain into the checkpoint folder (periodic)."""
    return audit_checkpoint_take(reason=reason)
