import datetime as dt

import pytest

from governance.models import Programme
from governance.tasks import programmes_mark_ended
from phm_portal.models import AuditEvent
from tests.factories import ProgrammeFactory

pytestmark = pytest.mark.integration


def test_a_task_goes_through_redis_to_a_worker_process_and_its_result_is_stored(workers):
    past = ProgrammeFactory(slug="over", start_date=dt.date(2025, 1, 6), length_weeks=20)
    current = ProgrammeFactory(slug="current", start_date=dt.date.today(), length_weeks=20)
    workers.start()

    programmes_mark_ended.apply_async(queue=workers.queue)

    def ended():
        past.refresh_from_db()
        return past.status == Programme.Status.ENDED

    workers.wait_for(ended, what="the worker to end the programme")
    current.refresh_from_db()
    assert current.status == Programme.Status.LIVE
    event = AuditEvent.objects.get(action="programme.ended")
    assert (event.actor, event.object_id) == ("system", "over")
    assert "programmes_mark_ended" in workers.log()
