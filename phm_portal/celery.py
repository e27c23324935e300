"""The Celery application: configured from Django settings (CELERY_*)."""

from __future__ import annotations

import gc
import os

from celery import Celery
from celery.signals import worker_process_init

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
