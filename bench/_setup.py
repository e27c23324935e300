"""Shared set-up of the consent benchmarks: Django on a throwaway database.

SQLite (the default): a fresh file under a temporary folder. With DATABASE_URL naming
PostgreSQL: Django's test_<name> database, created and dropped around the run.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "phm_portal.settings")
os.environ.setdefault("PHM_DEMO", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from phm_portal.lib.nhs_number import synthetic  # noqa: E402


def database() -> tuple[str, object]:
    """Create the throwaway database; return its description and a function that drops it."""
    setup_test_environment()
    # As in production: the demo's DEBUG cursor would log (and re-quote) every parameter.
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["testserver", *settings.ALLOWED_HOSTS]
    tmp = None
    if connection.vendor == "sqlite":
        tmp = tempfile.TemporaryDirectory()
        connection.settings_dict["TEST"]["NAME"] = str(Path(tmp.name) / "bench.sqlite3")
    old_name = connection.settings_dict["NAME"]
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True)

    def drop() -> None:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        if tmp is not None:
            tmp.cleanup()

    return f"{connection.vendor} ({name})", drop


def nhs_numbers(n: int, seed: int = 1) -> list[str]:
    """Return n distinct synthetic NHS numbers of the 999 test range."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data
    out: set[str] = set()
    while len(out) < n:
        out.add(synthetic(rng))
    return sorted(out)
