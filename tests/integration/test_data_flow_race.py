"""Two CSU admins deciding one flow at once, on PostgreSQL with two connections: one decision."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from governance import services
from governance.catalogue import legal_bases_sync
from governance.models import DataFlow, LegalBasis, Participation
from phm_portal.audit import audit_verify
from phm_portal.errors import NotAllowedNow
from phm_portal.models import AuditEvent
from tests.assurance import assure_flow
from tests.factories import (
    OrganisationFactory,
    ParticipationFactory,
    PracticeFactory,
    ProgrammeFactory,
    UserFactory,
)
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def people_and_flow(transactional_db):
    # A transactional test starts from a flushed database: put the legal bases back.
    legal_bases_sync(LegalBasis)
    practice = PracticeFactory(ods_code="A81001")
    csu = OrganisationFactory(ods_code="0AR", kind="csu")
    programme = ProgrammeFactory(slug="race")
    ParticipationFactory(
        programme=programme, organisation=practice, role=Participation.Role.CONTROLLER
    )
    ParticipationFactory(programme=programme, organisation=csu, role=Participation.Role.PROCESSOR)
    submitter, first, second = (
        UserFactory(username=name, role="csu_admin", organisations=[csu])
        for name in ("submitter", "first-admin", "second-admin")
    )

    def new_submitted_flow(categories: list[str]) -> DataFlow:
        flow = services.data_flow_create(
            actor=submitter,
            programme=programme,
            source=practice,
            destination=csu,
            data_categories=categories,
            identifiability="identifiable",
            legal_basis_codes=["UK-GDPR-6-1-e"],
            dpia_reference="DPIA-R",
            dsa_reference="DSA-R",
        )
        assure_flow(flow)  # the flow stands on a DPIA, an agreement, DSPT and ICO
        return services.data_flow_submit(actor=submitter, flow=flow)

    return new_submitted_flow, first, second


def _decisions(flow: DataFlow) -> list[str]:
    return list(
        AuditEvent.objects.filter(
            object_type="governance.dataflow",
            object_id=str(flow.pk),
            action__in=["data_flow.approved", "data_flow.rejected"],
        ).values_list("actor", flat=True)
    )


def test_the_second_claim_waits_for_the_first_and_then_finds_the_flow_decided(people_and_flow):
    """The loser read "submitted" and passed every check; only the conditional UPDATE stops it."""
    new_submitted_flow, first, second = people_and_flow
    flow = new_submitted_flow(["gp"])
    first_claimed = threading.Event()
    release_first = threading.Event()
    outcome: dict[str, object] = {}

    def first_admin() -> None:
        try:
            with transaction.atomic():  # hold the row until the second admin is waiting on it
                services.data_flow_approve(actor=first, flow=DataFlow.objects.get(pk=flow.pk))
                first_claimed.set()
                release_first.wait(timeout=30)
            outcome["first"] = "approved"
        except Exception as exc:  # reported by the assertions below
            outcome["first"] = repr(exc)
            first_claimed.set()
        finally:
            connections.close_all()

    def second_admin() -> None:
        try:
            stale = DataFlow.objects.get(
                pk=flow.pk
            )  # still "submitted": the first has not committed
            outcome["second_saw"] = stale.status
            services.data_flow_reject(actor=second, flow=stale, reason="Too late")
            outcome["second"] = "rejected"
        except NotAllowedNow as exc:
            outcome["second"] = exc.message
        except Exception as exc:
            outcome["second"] = repr(exc)
        finally:
            connections.close_all()

    one = threading.Thread(target=first_admin)
    one.start()
    assert first_claimed.wait(timeout=30)
    two = threading.Thread(target=second_admin)
    two.start()

    def second_is_waiting_for_the_row() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            return cursor.fetchone()[0] > 0

    wait_for(
        second_is_waiting_for_the_row, timeout=30, what="the second UPDATE to wait on the row lock"
    )
    release_first.set()
    one.join(timeout=30)
    two.join(timeout=30)

    assert outcome["first"] == "approved"
    assert outcome["second_saw"] == "submitted"
    assert outcome["second"] == (
        "This flow cannot be rejected now: it is approved. "
        "Only a flow that is awaiting decision can be rejected."
    )
    flow.refresh_from_db()
    assert (flow.status, flow.decided_by) == ("approved", first)
    assert _decisions(flow) == ["first-admin"]
    assert audit_verify().valid


def test_two_admins_approving_at_the_same_moment_produce_one_approval(people_and_flow):
    new_submitted_flow, first, second = people_and_flow
    rounds = [["gp"], ["hospital"], ["community"], ["mental_health"], ["social_care"]]
    for categories in rounds:
        flow = new_submitted_flow(categories)
        start = threading.Barrier(2)
        results: dict[str, str] = {}

        def approve(user, flow_pk=flow.pk, start=start, results=results) -> None:
            try:
                copy = DataFlow.objects.get(pk=flow_pk)
                start.wait(timeout=30)
                services.data_flow_approve(actor=user, flow=copy, comment=user.username)
                results[user.username] = "approved"
            except NotAllowedNow:
                results[user.username] = "409"
            except Exception as exc:
                results[user.username] = repr(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=approve, args=(u,)) for u in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(results.values()) == ["409", "approved"], results
        flow.refresh_from_db()
        winner = next(name for name, r in results.items() if r == "approved")
        assert (flow.status, flow.decided_by.username, flow.decision_comment) == (
            "approved",
            winner,
            winner,
        )
        assert _decisions(flow) == [winner]
    assert audit_verify().valid
