"""The consent app on real PostgreSQL, Redis and a Celery worker process."""

import datetime as dt
import random

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from consent import services
from consent.models import NationalOptOutCheck, NationalOptOutEntry, Registration, Type1Event
from consent.register import opt_out_register_check
from consent.tasks import national_opt_out_checks_purge_expired
from governance.models import DataFlow, Programme
from phm_portal.lib.nhs_number import synthetic
from phm_portal.models import AuditEvent
from tests.factories import DataFlowFactory

pytestmark = pytest.mark.integration


def _numbers(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        out.add(synthetic(rng))
    return sorted(out)


def _file(numbers: list[str]) -> bytes:
    return "".join(f"{n}\r\n" for n in numbers).encode()


@pytest.fixture
def approved_flow(programme, practice_a, csu, admin):
    return DataFlowFactory(
        programme=programme,
        source=practice_a,
        destination=csu,
        data_categories=["gp"],
        identifiability="identifiable",
        status=DataFlow.Status.APPROVED,
        created_by=admin,
    )


def test_the_register_answers_on_postgresql(api, admin, alice, charlie, practice_b, approved_flow):
    cohort = _numbers(2000)
    type1_here, type1_there, national = cohort[0], cohort[1], cohort[2:12]
    for number, practice, who in (
        (type1_here, approved_flow.source, alice),
        (type1_there, practice_b, charlie),
    ):
        services.type1_opt_out_record(
            actor=who, practice=practice, nhs_number=number, event="dissent", method="letter",
            recorded_on=timezone.localdate(),
        )  # fmt: skip
    services.national_check_import(
        actor=admin,
        programme=approved_flow.programme,
        submitted=_file(cohort),
        returned=_file([n for n in cohort if n not in national]),
        checked_on=timezone.localdate(),
    )
    unknown = _numbers(1, seed=99)
    response = api(admin).post(
        "/api/v1/opt-outs/check/",
        {"data_flow": approved_flow.pk, "nhs_numbers": [*cohort, *unknown]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    excluded = {e["nhs_number"]: e["reasons"] for e in body["excluded"]}
    assert excluded[type1_here] == ["type1"] and excluded[type1_there] == ["type1"]
    assert all(excluded[n] == ["national"] for n in national)
    assert excluded[unknown[0]] == ["national_unchecked"]
    assert body["allowed"] == len(cohort) - 12
    assert body["counts"] == {"type1": 2, "national": 10, "national_unchecked": 1}


def test_a_bulk_import_and_the_register_agree_on_postgresql(alice, approved_flow, programme):
    Programme.objects.filter(pk=programme.pk).update(
        national_opt_out_applies=False, national_opt_out_exemption="COPI notice"
    )
    approved_flow.programme.refresh_from_db()
    patients = _numbers(5000, seed=3)
    day = (timezone.localdate() - dt.timedelta(days=10)).isoformat()
    later = (timezone.localdate() - dt.timedelta(days=2)).isoformat()
    lines = ["nhs_number,event,recorded_on"] + [f"{n},dissent,{day}" for n in patients]
    lines += [f"{n},withdrawal,{later}" for n in patients[:100]]
    report = services.type1_import(
        actor=alice, practice=approved_flow.source, data="\n".join(lines).encode()
    )
    assert (report.stored, report.accepted, report.rejected) == (True, 5100, [])
    # A second file about the same patients: their registrations exist already, so
    # the COPY meets conflicts and goes through the staging table.
    today = timezone.localdate().isoformat()
    second = ["nhs_number,event,recorded_on"] + [
        f"{n},withdrawal,{today}" for n in patients[100:1600]
    ]
    report = services.type1_import(
        actor=alice, practice=approved_flow.source, data="\n".join(second).encode()
    )
    assert (report.stored, report.accepted) == (True, 1500)
    assert Registration.objects.filter(practice=approved_flow.source).count() == 5000
    result = opt_out_register_check(data_flow=approved_flow, nhs_numbers=patients)
    assert len(result.excluded) == 3400
    assert result.allowed == 1600
    assert not Type1Event.objects.filter(~Q(practice=approved_flow.source)).exists()


def test_postgresql_refuses_to_change_or_delete_a_type1_event(alice, practice_a):
    services.type1_opt_out_record(
        actor=alice, practice=practice_a, nhs_number="9434765919", event="dissent",
        method="phone", recorded_on=timezone.localdate(),
    )  # fmt: skip
    for statement in (
        "UPDATE consent_type1event SET method = 'letter'",
        "DELETE FROM consent_type1event",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    assert Type1Event.objects.get().method == "phone"


def test_the_purge_task_runs_on_a_real_worker(workers, admin, programme):
    numbers = _numbers(20, seed=11)
    check = services.national_check_import(
        actor=admin,
        programme=programme,
        submitted=_file(numbers),
        returned=_file(numbers[:15]),
        checked_on=timezone.localdate() - dt.timedelta(days=29),
    )
    # The check ran 29 days ago and is used until tomorrow; make it yesterday's news.
    NationalOptOutCheck.objects.filter(pk=check.pk).update(
        checked_on=timezone.localdate() - dt.timedelta(days=31),
        expires_on=timezone.localdate() - dt.timedelta(days=1),
    )
    workers.start()
    national_opt_out_checks_purge_expired.apply_async(queue=workers.queue)

    def purged():
        check.refresh_from_db()
        return check.status == NationalOptOutCheck.Status.PURGED

    workers.wait_for(purged, what="the worker to purge the check")
    assert not NationalOptOutEntry.objects.filter(check_run=check).exists()
    assert (check.submitted, check.opted_out) == (20, 5)
    assert AuditEvent.objects.get(action="national_opt_out.check_purged").actor == "system"
    assert "national_opt_out_checks_purge_expired" in workers.log()
