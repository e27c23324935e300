"""The Celery application: configured from Django settings (CELERY_*)."""

from __future__ import annotations

import ctypes
import gc
import os

from celery import Celery
from celery.signals import task_postrun, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "phm_portal.settings")

app = Celery("phm_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _freeze_what_is_loaded(**_) -> None:
    """A pool process keeps what it has loaded (Django, the apps, the tasks) for its whole
    life: the garbage collector's full passes, which a job's allocations set off, need
    not walk all of it again each time (gc.freeze)."""
    gc.freeze()


def _malloc_trim():
    """Return glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


_trim = _malloc_trim()


@task_postrun.connect
def _give_back_freed_memory(**_) -> None:
    """After each task, hand the memory it freed back to the system.

    Both allocators of a worker keep the pages a task freed, for reuse: pyarrow's pool
    (its unused pages) and glibc's heap (free chunks below the top, which it never
    trims by itself). A worker that ran one large task (the patients of a 5M-row extract
    noted, a chunk of a job) held that task's high-water mark for the rest of its life,
    and the next job's chunks started from it: 296 MiB held as a 5M-row job started,
    207 MiB with this (bench/pseudonymise.py, see README).
    """
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    if _trim is not None:
        _trim(0)
