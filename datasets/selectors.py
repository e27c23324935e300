"""Reads of the datasets app that are more than one line."""

from __future__ import annotations

from django.db.models import Sum

from datasets.models import Job
from governance.models import Programme


def job_progress(job: Job) -> float:
    """Return the share of the extract processed so far, 0..1."""
    if job.status == Job.Status.SUCCEEDED:
        return 1.0
    total = job.dataset.bytes
    if not total:
        return 0.0
    done = job.chunks.aggregate(done=Sum("bytes_done"))["done"] or 0
    return round(min(1.0, done / total), 4)


def programme_active_jobs(programme: Programme) -> list[Job]:
    """Return the programme's queued and running jobs, oldest first (they hold destruction)."""
    return list(
        Job.objects.filter(dataset__data_flow__programme=programme, status__in=Job.ACTIVE)
        .select_related("dataset")
        .order_by("created_at")
    )
