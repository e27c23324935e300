"""A programme complete enough to publish, built on the shared alice/bob/charlie fixtures.

Practice A (lead) and practice B are controllers, the CSU a processor; dpo_a is
the DPO of practice A. dpo_b is the DPO of practice B (also a controller), dpo_csu
the DPO of the processor, dpo_elsewhere the DPO of an organisation taking no part.
"""

from __future__ import annotations

import pytest

from governance.models import LegalBasis, Programme, User
from notices import services
from tests.factories import OrganisationFactory, UserFactory


@pytest.fixture
def complete(programme, practice_a, practice_b, csu) -> Programme:
    for org, email in ((practice_a, "dpo@practice-a.example.nhs.uk"), (practice_b, "")):
        org.dpo_name = f"{org.name} DPO" if email else ""
        org.dpo_email = email
        org.save()
    csu.short_name = "NECS"
    csu.part_of = "NHS England"
    csu.website = "https://www.necsu.nhs.uk/"
    csu.save()
    programme.purposes = ["planning services", "monitoring safety"]
    programme.overseas_transfer = Programme.OverseasTransfer.NONE
    programme.save()
    programme.legal_bases.set(
        LegalBasis.objects.filter(code__in=["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"])
    )
    programme.participations.filter(organisation=csu).update(
        responsibilities=["pseudonymise", "link"]
    )
    programme.participations.filter(organisation__in=[practice_a, practice_b]).update(
        responsibilities=["provide_data", "re_identify"]
    )
    return programme


@pytest.fixture
def dpo_b(practice_b):
    return UserFactory(username="dpo-b", role=User.Role.DPO, organisations=[practice_b])


@pytest.fixture
def dpo_csu(csu):
    return UserFactory(username="dpo-csu", role=User.Role.DPO, organisations=[csu])


@pytest.fixture
def dpo_elsewhere(db):
    other = OrganisationFactory(ods_code="X99", name="Elsewhere CCG", kind="ccg")
    return UserFactory(username="dpo-elsewhere", role=User.Role.DPO, organisations=[other])


@pytest.fixture
def draft(complete, dpo_a):
    version, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    return version


@pytest.fixture
def published(draft, dpo_a):
    return services.notice_version_publish(actor=dpo_a, version=draft)


def section(version, key: str) -> dict:
    return next(s for s in version.sections if s["key"] == key)


# Local wording that makes any notice harder to read: one long sentence of long words.
LEGALESE = (
    "Notwithstanding the foregoing, the processing of pseudonymised personal information "
    "undertaken by the aforementioned organisations shall additionally be subject to "
    "contractual obligations, organisational safeguards and technical protections "
    "commensurate with the identified residual risks of re-identification."
)


@pytest.fixture
def harder_draft(published, complete, dpo_a):
    """A second draft whose local wording reads harder than the published version 1."""
    draft, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    return services.notice_version_update(
        actor=dpo_a, version=draft, local_texts={"about": LEGALESE}
    )
