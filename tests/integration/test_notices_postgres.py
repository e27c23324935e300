"""Published notice versions are frozen by PostgreSQL itself, and publishing is claimed once."""

import threading

import pytest
from django.db import IntegrityError, connections, transaction

from notices import services
from notices.models import NoticeVersion
from phm_portal.errors import NotAllowedNow
from tests.notices.conftest import complete, draft, published  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration


def test_postgresql_refuses_to_change_a_published_version(published):  # noqa: F811
    with pytest.raises(IntegrityError, match="never changes"), transaction.atomic():
        NoticeVersion.objects.filter(pk=published.pk).update(sha256="0" * 64)
    with pytest.raises(IntegrityError), transaction.atomic():
        NoticeVersion.objects.filter(pk=published.pk).update(status="draft")
    assert NoticeVersion.objects.get(pk=published.pk).sha256 == published.sha256


def test_postgresql_refuses_to_delete_a_published_version(published):  # noqa: F811
    with pytest.raises(IntegrityError, match="cannot be deleted"), transaction.atomic():
        NoticeVersion.objects.filter(pk=published.pk).delete()
    assert NoticeVersion.objects.filter(pk=published.pk).exists()


def test_postgresql_lets_a_published_version_be_withdrawn(published, dpo_a):  # noqa: F811
    services.notice_version_withdraw(actor=dpo_a, version=published, reason="Wrong length")
    assert NoticeVersion.objects.get(pk=published.pk).status == "withdrawn"


@pytest.fixture
def catalogue(transactional_db):
    """Re-seed the legal bases: an earlier transactional test's flush removed them."""
    from governance.catalogue import legal_bases_sync
    from governance.models import LegalBasis

    legal_bases_sync(LegalBasis)


def test_two_simultaneous_publications_publish_once(catalogue, complete, dpo_a):  # noqa: F811
    version, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    outcomes: list[str] = []

    def publish() -> None:
        try:
            services.notice_version_publish(
                actor=dpo_a, version=NoticeVersion.objects.get(pk=version.pk)
            )
            outcomes.append("published")
        except NotAllowedNow:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=publish) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["published", "refused"]
    from phm_portal.models import AuditEvent

    assert AuditEvent.objects.filter(action="notice.published").count() == 1
