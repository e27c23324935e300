"""The notice says that a DPIA was carried out, and when: the programme's latest signed-off
DPIA (issue 17). A programme with none says nothing of it."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from governance.models import DPIA
from notices import services
from tests.assurance import assure_flow
from tests.factories import DataFlowFactory

from .conftest import section

SENTENCE = "A data protection impact assessment (DPIA) checked the risks to your privacy."


def _signed_off(programme, practice_a, csu, on: dt.datetime) -> DPIA:
    dpia, _ = assure_flow(DataFlowFactory(programme=programme, source=practice_a, destination=csu))
    DPIA.objects.filter(pk=dpia.pk).update(signed_off_at=on)
    return dpia


def test_a_programme_without_a_signed_off_dpia_says_nothing_of_one(complete, dpo_a):
    version, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    assert "DPIA" not in section(version, "about")["generated_text"]
    assert version.facts["dpia"] is None


def test_the_notice_says_when_the_latest_signed_off_dpia_was_carried_out(
    complete, dpo_a, practice_a, csu
):
    tz = timezone.get_current_timezone()
    _signed_off(complete, practice_a, csu, dt.datetime(2026, 3, 3, 10, tzinfo=tz))
    latest = _signed_off(complete, practice_a, csu, dt.datetime(2026, 5, 14, 10, tzinfo=tz))
    draft = DPIA.objects.create(
        programme=complete,
        title="Not yet signed",
        description="x",
        necessity="x",
        review_date=dt.date(2027, 1, 1),
    )
    version, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    about = section(version, "about")["generated_text"]
    assert SENTENCE in about
    assert "It was signed off on 14 May 2026." in about
    assert version.facts["dpia"] == {"signed_off_on": "2026-05-14"}
    assert latest.pk != draft.pk


def test_a_new_sign_off_is_a_change_the_next_version_names(complete, dpo_a, practice_a, csu):
    published = services.notice_version_publish(
        actor=dpo_a, version=services.notice_draft_generate(actor=dpo_a, programme=complete)[0]
    )
    tz = timezone.get_current_timezone()
    _signed_off(complete, practice_a, csu, dt.datetime(2026, 6, 1, 9, tzinfo=tz))
    version, created = services.notice_draft_generate(actor=dpo_a, programme=complete)
    assert created and version.number == published.number + 1
    assert "A data protection impact assessment was signed off on 1 June 2026." in version.changes
    services.notice_version_publish(actor=dpo_a, version=version)
