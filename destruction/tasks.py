"""Celery tasks of the destruction app: thin callers of destruction.services."""

from __future__ import annotations

from celery import shared_task

from destruction import services


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def destruction_run(self, run_id: int) -> None:
    """Run the steps of a destruction run not done yet; a busy step is tried again later."""
    try:
        services.destruction_run_execute(run_id=run_id)
    except services.StepBusy as busy:
        raise self.retry(countdown=busy.seconds) from None


@shared_task(acks_late=True)
def destruction_runs_resume() -> list[int]:
    """Send again the runs whose worker died (periodic)."""
    return services.destruction_runs_resume()
