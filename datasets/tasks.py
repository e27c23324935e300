"""Celery tasks of the datasets app: thin callers of datasets.services."""

from __future__ import annotations

from celery import chord, shared_task

from datasets import held_uploads, services


@shared_task(acks_late=True, reject_on_worker_lost=True)
def job_start(job_id: str) -> None:
    """Run a job's chunks in parallel (a chord); the task ending the last chunk publishes
    the job, and the chord's callback makes sure of it.

    Should the chord die with a worker, beat's jobs_recover sends the chunks again on
    their own and publishes the job.
    """
    chunk_ids = services.job_start(job_id=job_id)
    if not chunk_ids:
        services.job_finish(job_id=job_id)
        return
    chord(job_chunk_run.s(chunk_id) for chunk_id in chunk_ids)(job_finish.si(job_id))


@shared_task(
    bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=False, max_retries=None
)
def job_chunk_run(self, chunk_id: int) -> int:
    """Process one chunk; if another worker holds its lease, come back when it may expire.

    The task that ends a job's last chunk publishes the job.
    """
    try:
        services.job_chunk_run(chunk_id=chunk_id)
    except services.ChunkBusy as busy:
        raise self.retry(countdown=busy.seconds) from None
    services.job_chunk_ended(chunk_id=chunk_id)
    return chunk_id


@shared_task(acks_late=True, reject_on_worker_lost=True)
def job_finish(job_id: str) -> None:
    services.job_finish(job_id=job_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def dataset_note_patients(dataset_id: str) -> int:
    """Add an extract's patients to its practices' cohorts (national data opt-out checks)."""
    return services.dataset_note_patients(dataset_id=dataset_id)


@shared_task
def jobs_recover() -> dict[str, int]:
    """Beat: send again what lost messages and dead workers left unfinished, end cancelled
    jobs no worker stops, and publish jobs whose chord's callback never came."""
    return services.jobs_recover()


@shared_task
def held_uploads_sweep() -> int:
    """Beat: delete the uploads kept for a corrected mapping once their hour is over."""
    return held_uploads.held_uploads_sweep()
