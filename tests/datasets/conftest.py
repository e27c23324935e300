from __future__ import annotations

import io

import pytest

from governance.models import DataFlow, LegalBasis, Organisation, Participation
from tests.factories import OrganisationFactory, ParticipationFactory, UserFactory

HEADER = "nhs_number,forename,date_of_birth,postcode,practice,event_code\n"
MAPPING = (
    '{"nhs_number": "nhs_number", "practice": "practice", "drop": ["forename"], '
    '"generalise": [{"column": "date_of_birth", "rule": "year"}, {"column": "postcode", "rule": "district"}]}'
)


@pytest.fixture
def optum(programme):
    org = OrganisationFactory(
        ods_code="OPTUMUK", name="Optum", kind=Organisation.Kind.COMMERCIAL_PROCESSOR
    )
    ParticipationFactory(programme=programme, organisation=org, role=Participation.Role.PROCESSOR)
    return org


def make_flow(
    programme, source, destination, status=DataFlow.Status.APPROVED, identifiability="identifiable"
):
    from tests.factories import DataFlowFactory

    flow = DataFlowFactory(
        programme=programme,
        source=source,
        destination=destination,
        data_categories=["gp"],
        identifiability=identifiability,
        status=status,
    )
    flow.legal_bases.set(LegalBasis.objects.filter(code__in=["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"]))
    return flow


@pytest.fixture
def flow(programme, practice_a, csu):
    """Practice A sends identifiable GP data to the CSU, approved."""
    return make_flow(programme, practice_a, csu)


@pytest.fixture
def csu_analyst(csu):
    """A DPO bound to the CSU: a person of the flow's destination."""
    return UserFactory(username="csu-dpo", role="dpo", organisations=[csu])


def csv_file(text: str, name: str = "extract.csv") -> io.BytesIO:
    f = io.BytesIO(text.encode())
    f.name = name
    return f


def upload_extract(client, flow, rows: list[str]):
    """POST an extract of these rows (under HEADER) on the flow; return the stored dataset."""
    from datasets.models import Dataset

    response = client.post(
        "/api/v1/datasets/",
        {
            "file": csv_file(HEADER + "\n".join(rows) + "\n"),
            "data_flow": flow.pk,
            "mapping": MAPPING,
        },
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    return Dataset.objects.get(pk=response.json()["id"])
