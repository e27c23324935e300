import threading

import pytest
from django.db import IntegrityError, connection, connections

from governance import services
from governance.models import Organisation, Programme
from phm_portal.audit import audit_log, audit_verify

pytestmark = pytest.mark.integration


def test_the_database_is_postgresql(db):
    assert connection.vendor == "postgresql"


def test_a_programme_round_trips_with_its_participants_and_legal_bases(db):
    org = services.organisation_create(
        actor=None, data={"ods_code": "0AR", "name": "NECS", "kind": "csu"}
    )
    programme = services.programme_create(
        actor=None,
        data={
            "slug": "pg",
            "name": "PG",
            "region": "R",
            "purposes": ["planning services"],
            "length_weeks": 20,
        },
        legal_basis_codes=["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"],
    )
    services.participation_add(
        actor=None,
        programme=programme,
        organisation=org,
        role="processor",
        responsibilities=["link"],
    )
    again = Programme.objects.get(slug="pg")
    assert again.purposes == ["planning services"]
    assert sorted(again.legal_bases.values_list("code", flat=True)) == [
        "UK-GDPR-6-1-e",
        "UK-GDPR-9-2-h",
    ]
    assert again.participations.get().responsibilities == ["link"]


def test_postgresql_enforces_the_ods_code_constraint(db):
    with pytest.raises(IntegrityError):
        Organisation.objects.create(ods_code="bad-code", name="X", kind="ccg")


def test_concurrent_audit_appends_keep_one_valid_chain(transactional_db):
    errors: list[Exception] = []

    def append(n: int) -> None:
        try:
            for i in range(10):
                audit_log(actor=f"thread-{n}", action="test.concurrent", details={"i": i})
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=append, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    report = audit_verify()
    assert (report.valid, report.events) == (True, 40)
