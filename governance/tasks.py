from __future__ import annotations

from celery import shared_task

from governance import services


@shared_task(acks_late=True)
def programmes_mark_ended() -> list[str]:
    """Mark live programmes past their end date as ended, and remind the CSU admins (periodic)."""
    from destruction.services import destruction_reminders_send

    ended = services.programmes_mark_ended()
    destruction_reminders_send()
    return ended


@shared_task(acks_late=True)
def assurance_watch() -> dict:
    """Suspend approved flows whose assurance lapsed and send the reminders due (daily)."""
    from governance.services.watch import assurance_watch as watch

    return watch().as_dict()
