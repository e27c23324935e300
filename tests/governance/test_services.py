import datetime as dt

import pytest

from governance import services
from governance.models import Programme
from phm_portal.errors import InvalidInput, NotAllowedNow
from phm_portal.models import AuditEvent
from tests.factories import ProgrammeFactory


def test_programmes_past_their_end_are_marked_ended_once(db):
    due = ProgrammeFactory(slug="due", start_date=dt.date(2026, 1, 5), length_weeks=20)
    running = ProgrammeFactory(slug="running", start_date=dt.date(2026, 10, 5), length_weeks=20)
    assert services.programmes_mark_ended(today=dt.date(2026, 11, 22)) == ["due"]
    assert services.programmes_mark_ended(today=dt.date(2026, 11, 22)) == []
    due.refresh_from_db()
    running.refresh_from_db()
    assert (due.status, running.status) == (Programme.Status.ENDED, Programme.Status.LIVE)
    assert AuditEvent.objects.filter(action="programme.ended", object_id="due").count() == 1


def test_changing_the_length_moves_the_end_date_and_is_audited(programme, admin):
    services.programme_update(actor=admin, programme=programme, data={"length_weeks": 22})
    programme.refresh_from_db()
    assert programme.end_date == dt.date(2027, 2, 8)
    event = AuditEvent.objects.get(action="programme.updated")
    assert event.actor == "csu-admin"
    assert event.details["changed"]["length_weeks"] == [20, 22]


def test_an_ended_programme_does_not_change(programme, admin):
    Programme.objects.filter(pk=programme.pk).update(status=Programme.Status.ENDED)
    programme.refresh_from_db()
    with pytest.raises(NotAllowedNow):
        services.programme_update(actor=admin, programme=programme, data={"length_weeks": 30})


def test_only_a_planned_programme_goes_live(programme, admin):
    with pytest.raises(NotAllowedNow, match="this one is live"):
        services.programme_go_live(actor=admin, programme=programme)


def test_unknown_responsibilities_are_refused(programme, csu, admin):
    with pytest.raises(InvalidInput, match="Unknown responsibility: juggle"):
        services.participation_add(
            actor=admin,
            programme=programme,
            organisation=csu,
            role="recipient",
            responsibilities=["juggle"],
        )


def test_a_practice_manager_is_bound_to_practices_only(db, csu):
    with pytest.raises(InvalidInput, match="GP practices only"):
        services.user_create(
            actor=None, username="pm", email="", role="practice_manager", organisations=[csu]
        )
