"""Fixtures every test folder shares: the owner / colleague / outsider pattern.

alice manages practice A, bob is her colleague at practice A, charlie manages
practice B and must never see or change anything of practice A.
"""

from __future__ import annotations

import os

import pytest
from rest_framework.test import APIClient

from governance.models import Participation, User
from tests.factories import (
    OrganisationFactory,
    ParticipationFactory,
    PracticeFactory,
    ProgrammeFactory,
    UserFactory,
)

PASSWORD = "correct-horse-battery"


def ensure_reference_data() -> None:
    """Re-seed the tables data migrations fill, if a transactional test's flush emptied them.

    Migrations seed them once per test database; tests that use live_server or worker
    processes truncate every table when they finish.
    """
    import importlib

    from django.apps import apps

    from consent.models import OptOutCode
    from governance.catalogue import LEGAL_BASES, legal_bases_sync
    from governance.models import LegalBasis

    if LegalBasis.objects.count() < len(LEGAL_BASES):
        legal_bases_sync(LegalBasis)
    if not OptOutCode.objects.exists():
        importlib.import_module("consent.migrations.0002_opt_out_codes").seed(apps, None)


@pytest.fixture(autouse=True)
def _reference_data(request):
    for name in ("transactional_db", "db"):
        if name in request.fixturenames:
            request.getfixturevalue(name)
            ensure_reference_data()
            return


@pytest.fixture(autouse=True)
def _empty_cache():
    """Start every test with an empty cache: rate limits and cached pages do not leak."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _no_dissents_read(monkeypatch):
    """Start every test as a new process would: no Type 1 dissents read before (a test
    database's rolled-back events may come back with the same ids)."""
    from consent import selectors

    monkeypatch.setattr(selectors, "_dissents_read", {})


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """Hash test passwords with a fast hasher: signing in works the same, and the demo's
    users (load_demo, in many tests) cost no Argon2 round each. The portal's own setting,
    Argon2, is tested in tests/phm_portal/test_passwords.py."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _own_files(settings, tmp_path, monkeypatch):
    """Give every test its own storage and temporary folders: files do not leak either."""
    settings.MEDIA_ROOT = str(tmp_path / "files")
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "tmp")
    # Worker processes too: a test's checkpoints never land among the demo's.
    settings.PHM_AUDIT_CHECKPOINT_DIR = tmp_path / "audit-checkpoints"
    monkeypatch.setenv("PHM_AUDIT_CHECKPOINT_DIR", str(settings.PHM_AUDIT_CHECKPOINT_DIR))
    (tmp_path / "tmp").mkdir()


@pytest.fixture(autouse=True, scope="session")
def _audit_log_flushable():
    """Let transactional tests' flush empty the append-only audit log (see audit_guard)."""
    from tests.phm_portal.audit_guard import allow_test_flush

    allow_test_flush()


@pytest.fixture
def practice_a(db):
    return PracticeFactory(ods_code="A81001", name="Practice A Surgery", postcode="TS1 1AA")


@pytest.fixture
def practice_b(db):
    return PracticeFactory(ods_code="B82002", name="Practice B Surgery", postcode="LS2 9JT")


@pytest.fixture
def csu(db):
    return OrganisationFactory(ods_code="0AR", name="North of England Commissioning Support Unit")


@pytest.fixture
def programme(practice_a, practice_b, csu):
    programme = ProgrammeFactory(slug="testshire", name="Testshire PHM")
    ParticipationFactory(
        programme=programme,
        organisation=practice_a,
        role=Participation.Role.CONTROLLER,
        is_lead=True,
    )
    ParticipationFactory(
        programme=programme, organisation=practice_b, role=Participation.Role.CONTROLLER
    )
    ParticipationFactory(programme=programme, organisation=csu, role=Participation.Role.PROCESSOR)
    return programme


@pytest.fixture
def alice(practice_a):
    return UserFactory(
        username="alice", role=User.Role.PRACTICE_MANAGER, organisations=[practice_a]
    )


@pytest.fixture
def bob(practice_a):
    return UserFactory(username="bob", role=User.Role.PRACTICE_MANAGER, organisations=[practice_a])


@pytest.fixture
def charlie(practice_b):
    return UserFactory(
        username="charlie", role=User.Role.PRACTICE_MANAGER, organisations=[practice_b]
    )


@pytest.fixture
def dpo_a(practice_a):
    return UserFactory(username="dpo-a", role=User.Role.DPO, organisations=[practice_a])


@pytest.fixture
def admin(csu):
    return UserFactory(username="csu-admin", role=User.Role.CSU_ADMIN, organisations=[csu])


@pytest.fixture
def admin2(csu):
    return UserFactory(username="csu-admin-2", role=User.Role.CSU_ADMIN, organisations=[csu])


@pytest.fixture
def auditor(db):
    return UserFactory(username="auditor", role=User.Role.AUDITOR)


@pytest.fixture
def api():
    """Return a function giving an API client signed in as the user (or anonymous)."""

    def make(user: User | None = None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


def _integration_skip_reason() -> str | None:
    database_url = os.environ.get("DATABASE_URL", "")
    broker_url = os.environ.get("CELERY_BROKER_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        return "integration: set DATABASE_URL to a PostgreSQL server (e.g. postgres://postgres@127.0.0.1:5432/test)"
    if not broker_url.startswith("redis://"):
        return (
            "integration: set CELERY_BROKER_URL to a Redis server (e.g. redis://127.0.0.1:6379/0)"
        )
    return None


def pytest_collection_modifyitems(config, items):
    reason = _integration_skip_reason()
    if reason is None:
        return
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))
