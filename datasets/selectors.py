"""Reads of the datasets app that are more than one line."""

from __future__ import annotations

from django.db.models import Sum

from datasets.models import Job


def job_progress(job: Job) -> float:
    """Return the share of the extract processed so far, 0..1."""
    if job.status == Job.Status.SUCCEEDED:
        return 1.0
    total = job.dataset.bytes
    if not total:
        return 0.0
    done = job.chunks.aggregate(done=Sum("bytes_done"))["done"] or 0
    return round(min(1.0, done / total), 4)
