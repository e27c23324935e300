import pytest
from django.db import IntegrityError, transaction

from governance import services as gov
from notices import services
from notices.models import NoticeVersion
from phm_portal.audit import audit_verify
from phm_portal.errors import InvalidInput, NotAllowedNow
from phm_portal.models import AuditEvent
from tests.notices.conftest import LEGALESE


def test_publishing_keeps_the_hash_publisher_and_time_and_audits(published, dpo_a):
    stored = NoticeVersion.objects.get(pk=published.pk)
    assert stored.status == "published"
    assert stored.published_by == dpo_a and stored.published_at is not None
    assert stored.sha256 == services.content_sha256(
        slug="testshire", number=1, sections=stored.sections
    )
    event = AuditEvent.objects.get(action="notice.published")
    assert event.actor == "dpo-a"
    assert event.details == {"programme": "testshire", "version": 1, "sha256": stored.sha256}
    assert audit_verify().valid


def test_the_service_refuses_to_change_a_published_version(published, dpo_a):
    with pytest.raises(NotAllowedNow, match="a published version never changes"):
        services.notice_version_update(
            actor=dpo_a, version=published, local_texts={"about": "New words"}
        )
    assert NoticeVersion.objects.get(pk=published.pk).sections == published.sections


def test_publishing_twice_is_refused(published, dpo_a):
    with pytest.raises(NotAllowedNow):
        services.notice_version_publish(actor=dpo_a, version=published)


def test_the_database_refuses_to_change_a_published_version(published):
    sections = [dict(s, local_text="Sneaked in") for s in published.sections]
    with pytest.raises(IntegrityError, match="never changes"), transaction.atomic():
        NoticeVersion.objects.filter(pk=published.pk).update(sections=sections)
    with pytest.raises(IntegrityError), transaction.atomic():
        NoticeVersion.objects.filter(pk=published.pk).update(status="draft")
    assert NoticeVersion.objects.get(pk=published.pk).sections == published.sections


def test_the_database_lets_a_published_version_be_withdrawn_only_once(published, dpo_a):
    services.notice_version_withdraw(actor=dpo_a, version=published, reason="Wrong length")
    with pytest.raises(IntegrityError), transaction.atomic():
        NoticeVersion.objects.filter(pk=published.pk).update(withdrawn_reason="Another reason")


def test_an_incomplete_draft_is_refused_with_the_missing_items(complete, dpo_a):
    complete.purposes = []
    complete.save()
    draft, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    with pytest.raises(services.NoticeIncomplete) as refused:
        services.notice_version_publish(actor=dpo_a, version=draft)
    assert {
        "item": "13(1)(c) purposes and legal basis: the purposes of the processing",
        "article": "13(1)(c)",
    } in refused.value.details
    assert NoticeVersion.objects.get(pk=draft.pk).status == "draft"
    assert not AuditEvent.objects.filter(action="notice.published").exists()


def test_a_draft_made_before_the_programme_changed_cannot_be_published(draft, complete, dpo_a):
    gov.programme_update(actor=None, programme=complete, data={"length_weeks": 22})
    with pytest.raises(NotAllowedNow, match="changed since this draft was generated"):
        services.notice_version_publish(actor=dpo_a, version=draft)


def test_generating_again_refreshes_the_open_draft_and_keeps_local_wording(draft, complete, dpo_a):
    services.notice_version_update(
        actor=dpo_a, version=draft, local_texts={"about": "Ask at reception."}
    )
    gov.programme_update(actor=None, programme=complete, data={"length_weeks": 22})
    again, created = services.notice_draft_generate(actor=dpo_a, programme=complete)
    assert not created and again.pk == draft.pk
    about = next(s for s in again.sections if s["key"] == "about")
    assert about["local_text"] == "Ask at reception."
    assert (
        "22 weeks" in next(s for s in again.sections if s["key"] == "retention")["generated_text"]
    )
    assert NoticeVersion.objects.filter(notice__programme=complete).count() == 1


def test_local_wording_changes_the_hash_and_is_audited(draft, dpo_a):
    before = draft.sha256
    updated = services.notice_version_update(
        actor=dpo_a, version=draft, local_texts={"opt_out": "Ring the practice on 01234 567890."}
    )
    assert updated.sha256 != before
    assert AuditEvent.objects.filter(action="notice.local_wording_changed").exists()


def test_local_wording_for_an_unknown_section_is_refused(draft, dpo_a):
    with pytest.raises(InvalidInput, match="no section"):
        services.notice_version_update(actor=dpo_a, version=draft, local_texts={"nope": "x"})


def test_withdrawal_needs_a_reason_and_is_audited(published, dpo_a):
    with pytest.raises(InvalidInput):
        services.notice_version_withdraw(actor=dpo_a, version=published, reason="  ")
    services.notice_version_withdraw(actor=dpo_a, version=published, reason="Wrong length")
    stored = NoticeVersion.objects.get(pk=published.pk)
    assert (stored.status, stored.withdrawn_reason) == ("withdrawn", "Wrong length")
    assert AuditEvent.objects.get(action="notice.withdrawn").details["reason"] == "Wrong length"


def test_a_draft_cannot_be_withdrawn(draft, dpo_a):
    with pytest.raises(NotAllowedNow):
        services.notice_version_withdraw(actor=dpo_a, version=draft, reason="x")


def test_a_draft_identical_to_the_published_notice_is_refused(published, complete, dpo_a):
    again, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    with pytest.raises(NotAllowedNow, match="there is nothing to publish"):
        services.notice_version_publish(actor=dpo_a, version=again)
    assert NoticeVersion.objects.get(pk=again.pk).status == "draft"


def test_a_draft_with_new_local_wording_can_be_published(published, complete, dpo_a):
    again, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    again = services.notice_version_update(
        actor=dpo_a, version=again, local_texts={"opt_out": "Ask at reception."}
    )
    assert services.notice_version_publish(actor=dpo_a, version=again).status == "published"


# --- a version harder to read than the one it replaces ------------------------------------
def test_a_draft_harder_to_read_is_refused_with_both_figures(harder_draft, dpo_a):
    with pytest.raises(services.NoticeHarderToRead, match="harder to read than version 1") as no:
        services.notice_version_publish(actor=dpo_a, version=harder_draft)
    drop = no.value.details
    assert drop["replaces"] == 1
    before, after = drop["before"], drop["after"]
    assert after["flesch_reading_ease"] < before["flesch_reading_ease"]
    assert after["flesch_kincaid_grade"] > before["flesch_kincaid_grade"]
    assert f"reading ease {after['flesch_reading_ease']} (was" in no.value.message
    assert NoticeVersion.objects.get(pk=harder_draft.pk).status == "draft"
    assert not AuditEvent.objects.filter(action="notice.published", details__version=2).exists()


def test_a_draft_harder_to_read_is_published_once_confirmed_and_the_figures_audited(
    harder_draft, dpo_a
):
    version = services.notice_version_publish(
        actor=dpo_a, version=harder_draft, harder_to_read_confirmed=True
    )
    assert version.status == "published"
    event = AuditEvent.objects.get(action="notice.published", details__version=2)
    drop = event.details["harder_to_read"]
    assert drop["replaces"] == 1
    assert drop["after"]["flesch_reading_ease"] < drop["before"]["flesch_reading_ease"]
    assert audit_verify().valid


def test_a_draft_as_plain_as_the_published_one_needs_no_confirmation(published, complete, dpo_a):
    draft, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    draft = services.notice_version_update(
        actor=dpo_a, version=draft, local_texts={"opt_out": "Ask at reception. It is quick."}
    )
    assert services.notice_version_readability_drop(draft) is None
    assert services.notice_version_publish(actor=dpo_a, version=draft).status == "published"


def test_the_first_version_replaces_nothing_so_it_is_never_harder(draft, dpo_a):
    draft = services.notice_version_update(
        actor=dpo_a, version=draft, local_texts={"about": LEGALESE}
    )
    assert services.notice_version_readability_drop(draft) is None
