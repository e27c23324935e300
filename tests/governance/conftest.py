"""Data flows at each step of their workflow, between practice A and the CSU (issue 3)."""

from __future__ import annotations

import pytest

from governance import services
from governance.models import DataFlow, User
from tests.assurance import assure_flow
from tests.factories import UserFactory

BASES = ["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"]


@pytest.fixture
def dpo_b(practice_b):
    return UserFactory(username="dpo-b", role=User.Role.DPO, organisations=[practice_b])


@pytest.fixture
def signatory_a(practice_a):
    """Practice A's SIRO: signs for practice A only."""
    return UserFactory(username="siro-a", role=User.Role.SIGNATORY, organisations=[practice_a])


@pytest.fixture
def signatory_b(practice_b):
    return UserFactory(username="siro-b", role=User.Role.SIGNATORY, organisations=[practice_b])


@pytest.fixture
def signatory_csu(csu):
    return UserFactory(username="siro-csu", role=User.Role.SIGNATORY, organisations=[csu])


@pytest.fixture
def dpo_csu(csu):
    """A DPO of the CSU, the programme's processor (not a controller)."""
    return UserFactory(username="dpo-csu", role=User.Role.DPO, organisations=[csu])


@pytest.fixture
def draft(programme, practice_a, csu, admin) -> DataFlow:
    """Practice A's GP data to the CSU, drafted by the CSU admin, standing on a signed-off
    DPIA and an in-date agreement between assured organisations (so it can be approved)."""
    flow = unassured_draft_of(programme, practice_a, csu, admin)
    assure_flow(flow)
    return flow


@pytest.fixture
def unassured_draft(programme, practice_a, csu, admin) -> DataFlow:
    """The same flow with nothing behind it: no DPIA, no agreement, no DSPT, no ICO expiry."""
    return unassured_draft_of(programme, practice_a, csu, admin)


def unassured_draft_of(programme, practice_a, csu, admin) -> DataFlow:
    return services.data_flow_create(
        actor=admin,
        programme=programme,
        source=practice_a,
        destination=csu,
        data_categories=["gp"],
        identifiability="identifiable",
        legal_basis_codes=BASES,
        purpose="Send the practice's GP records to the CSU to pseudonymise.",
        dpia_reference="DPIA-TEST-2026-01",
        dsa_reference="DSA-TEST-A81001-0AR",
    )


@pytest.fixture
def submitted(draft, admin) -> DataFlow:
    return services.data_flow_submit(actor=admin, flow=draft)


@pytest.fixture
def approved(submitted, admin2) -> DataFlow:
    return services.data_flow_approve(actor=admin2, flow=submitted, comment="DPIA and DSA checked.")


@pytest.fixture
def suspended(approved, admin2) -> DataFlow:
    return services.data_flow_suspend(actor=admin2, flow=approved, reason="DSA under review.")


@pytest.fixture
def reinstatement_requested(suspended, admin2) -> DataFlow:
    """The suspended flow, its conditions holding, whose reinstatement admin2 asked for;
    another CSU admin (admin) decides it."""
    return services.data_flow_request_reinstatement(
        actor=admin2, flow=suspended, comment="The DSA was renewed."
    )
