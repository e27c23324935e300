from __future__ import annotations

from celery import shared_task

from consent import national_exchange, services


@shared_task(acks_late=True)
def national_opt_out_checks_purge_expired() -> list[int]:
    """Purge the per-patient results of expired national opt-out checks (periodic; idempotent)."""
    return services.national_checks_purge_expired()


@shared_task(acks_late=True)
def national_check_send(check_id: int) -> str:
    """Send a check's file over MESH as soon as it is started (beat retries what fails)."""
    return national_exchange.national_check_send(check_id=check_id).status


@shared_task(acks_late=True)
def national_checks_mesh_exchange() -> dict:
    """Send the files due, import the national service's replies, flag the late (periodic)."""
    return national_exchange.national_checks_exchange()
