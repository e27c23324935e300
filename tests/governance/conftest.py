"""Data flows at each step of their workflow, between practice A and the CSU (issue 3)."""

from __future__ import annotations

import pytest

from governance import services
from governance.models import DataFlow, User
from tests.factories import UserFactory

BASES = ["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"]


@pytest.fixture
def dpo_b(practice_b):
    return UserFactory(username="dpo-b", role=User.Role.DPO, organisations=[practice_b])


@pytest.fixture
def draft(programme, practice_a, csu, admin) -> DataFlow:
    """Practice A's GP data to the CSU, drafted by the CSU admin."""
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
