from __future__ import annotations

from celery import shared_task

from consent import services


@shared_task(acks_late=True)
def national_opt_out_checks_purge_expired() -> list[int]:
    """Purge the per-patient results of expired national opt-out checks (periodic; idempotent)."""
    return services.national_checks_purge_expired()
