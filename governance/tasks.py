from __future__ import annotations

from celery import shared_task

from governance import services


@shared_task(acks_late=True)
def programmes_mark_ended() -> list[str]:
    """Mark live programmes past their end date as ended (periodic; idempotent)."""
    return services.programmes_mark_ended()
