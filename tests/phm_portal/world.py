"""Two organisations, each with one of everything, for the access-control tests.

Side "A" is the acting people's own organisation (practice A81001: alice is its
practice manager, dpo-a its DPO); side "B" is another organisation (practice
B82002, with charlie, dpo-b and signatory-b). Each side has its own programme
(with the CSU as processor), an approved flow to the CSU, an uploaded extract and
its job, a notice draft, a Type 1 opt-out and a patient's request, a national
check, and a draft DPIA and an unsigned data sharing agreement (practice and CSU)
covering the flow, each with its PDF. The names of B's objects carry markers
("B82002", "Otherscape", "DPIA-B", "DSA-B") so that a response can be searched for
anything of B.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from dataclasses import dataclass, field

from rest_framework.test import APIClient

from consent import services as consent_services
from datasets import services as dataset_services
from datasets.models import Dataset
from destruction import services as destruction_services
from destruction.models import DestructionRun
from governance import services as governance_services
from governance.models import (
    DPIA,
    DataFlow,
    LegalBasis,
    Participation,
    Programme,
    SharingAgreement,
    User,
)
from notices import services as notice_services
from tests.assurance import pdf
from tests.factories import (
    DataFlowFactory,
    OrganisationFactory,
    ParticipationFactory,
    PracticeFactory,
    ProgrammeFactory,
    UserFactory,
)

# The acting people are signed in by force_authenticate: no slow Argon2 hashing needed.
UNUSABLE = "!"
BASES = ["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"]
EXTRACT = (
    "nhs_number,forename,date_of_birth,postcode,practice,event_code\n"
    "9434765919,Ann,1960-03-01,CB1 2AB,{ods},XaZ89\n"
)
MAPPING = '{"nhs_number": "nhs_number", "practice": "practice", "drop": ["forename"]}'
# Synthetic numbers with a valid check digit (phm_portal/lib/nhs_number.py).
NUMBERS = {"A": "9434765919", "B": "4010232137"}


@dataclass
class Side:
    practice: object
    programme: Programme
    flow: DataFlow
    dataset: Dataset
    job: object
    notice: object
    event: object
    request: object
    check: object
    member: User  # a person of this side who is not one of the acting roles
    dpia: DPIA
    agreement: SharingAgreement
    extra: dict = field(default_factory=dict)


@dataclass
class World:
    csu: object
    people: dict[str, User | None]
    a: Side
    b: Side

    def side(self, scope: str) -> Side:
        return self.a if scope == "own" else self.b


def _programme(slug: str, name: str, practice, csu) -> Programme:
    programme = ProgrammeFactory(slug=slug, name=name)
    programme.purposes = ["planning services"]
    programme.overseas_transfer = Programme.OverseasTransfer.NONE
    programme.national_opt_out_applies = False
    programme.national_opt_out_exemption = "Test exemption"
    programme.save()
    programme.legal_bases.set(LegalBasis.objects.filter(code__in=BASES))
    ParticipationFactory(
        programme=programme,
        organisation=practice,
        role=Participation.Role.CONTROLLER,
        is_lead=True,
        responsibilities=["provide_data", "re_identify"],
    )
    ParticipationFactory(
        programme=programme,
        organisation=csu,
        role=Participation.Role.PROCESSOR,
        responsibilities=["pseudonymise"],
    )
    return programme


def _side(
    key: str, *, practice, slug: str, title: str, csu, pm: User, dpo: User, admin: User
) -> Side:
    ods, name = practice.ods_code, practice.name
    programme = _programme(slug, title, practice, csu)
    flow = DataFlowFactory(
        programme=programme,
        source=practice,
        destination=csu,
        data_categories=["gp"],
        identifiability="identifiable",
        status=DataFlow.Status.APPROVED,
        dpia_reference=f"DPIA-{key}",
        dsa_reference=f"DSA-{key}",
    )
    flow.legal_bases.set(LegalBasis.objects.filter(code__in=BASES))
    client = APIClient()
    client.force_authenticate(pm)
    upload = io.BytesIO(EXTRACT.format(ods=ods).encode())
    upload.name = f"{key.lower()}-extract.csv"
    response = client.post(
        "/api/v1/datasets/",
        {"file": upload, "data_flow": flow.pk, "mapping": MAPPING},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    dataset = Dataset.objects.get(pk=response.json()["id"])
    job = dataset_services.dataset_pseudonymise(actor=admin, dataset=dataset)
    notice, _ = notice_services.notice_draft_generate(actor=dpo, programme=programme)
    event = consent_services.type1_opt_out_record(
        actor=pm,
        practice=practice,
        nhs_number=NUMBERS[key],
        event="dissent",
        method="phone",
        recorded_on=dt.date.today() - dt.timedelta(days=1),
    )
    request = consent_services.type1_request_submit(
        practice=practice,
        name=f"Patient of {name}",
        date_of_birth=dt.date(1970, 3, 31),
        contact="patient@example.com",
    )
    check = consent_services.national_check_start(actor=admin, programme=programme)
    # Assurance (issue 17): a draft DPIA by the practice's DPO and an agreement no one has
    # signed, between the practice and the CSU, both covering the flow.
    today = dt.date.today()
    dpia = governance_services.dpia_create(
        actor=dpo,
        programme=programme,
        title=f"DPIA-{key} of {title}",
        description="Linking records to offer support.",
        necessity="Pseudonymised, the fields listed only.",
        review_date=today + dt.timedelta(days=365),
        data_flow_ids=[flow.pk],
        document=pdf(),
        document_name=f"dpia-{key.lower()}.pdf",
    )
    agreement = governance_services.sharing_agreement_create(
        actor=dpo,
        programme=programme,
        title=f"Data sharing agreement of {title}",
        reference=f"DSA-{key}",
        purpose="Population health management.",
        start_date=today - dt.timedelta(days=1),
        review_date=today + dt.timedelta(days=100),
        expiry_date=today + dt.timedelta(days=365),
        party_ods_codes=[ods, csu.ods_code],
        legal_basis_codes=BASES,
        data_flow_ids=[flow.pk],
        document=pdf(),
        document_name=f"dsa-{key.lower()}.pdf",
    )
    # A second programme of the practice, whose data was destroyed early: a run and its
    # certificate (issue 7).
    ended = _programme(f"{slug}-ended", f"{title} (ended)", practice, csu)
    run = destruction_services.programme_destroy(
        actor=admin, programme=ended, early=True, reason="The programme stopped."
    )
    run = destruction_services.destruction_run_execute(run_id=run.pk)
    assert run.status == DestructionRun.Status.SUCCEEDED, run.error
    member = UserFactory(
        password=UNUSABLE,
        username=f"colleague-{key.lower()}",
        role=User.Role.PRACTICE_MANAGER,
        organisations=[practice],
    )
    return Side(
        practice=practice,
        programme=programme,
        flow=flow,
        dataset=dataset,
        job=job,
        notice=notice,
        event=event,
        request=request,
        check=check,
        member=member,
        dpia=dpia,
        agreement=agreement,
        extra={"run": run, "certificate": run.certificate},
    )


def build_world() -> World:
    """Create both sides; the acting people are the own side's (or the CSU's, or nobody's)."""
    csu = OrganisationFactory(ods_code="0AR", name="North of England Commissioning Support Unit")
    practice_a = PracticeFactory(ods_code="A81001", name="Practice A Surgery", postcode="TS1 1AA")
    practice_b = PracticeFactory(ods_code="B82002", name="Otherscape Surgery", postcode="LS2 9JT")
    alice = UserFactory(
        password=UNUSABLE,
        username="alice",
        role=User.Role.PRACTICE_MANAGER,
        organisations=[practice_a],
    )
    charlie = UserFactory(
        password=UNUSABLE,
        username="charlie",
        role=User.Role.PRACTICE_MANAGER,
        organisations=[practice_b],
    )
    dpo_a = UserFactory(
        password=UNUSABLE, username="dpo-a", role=User.Role.DPO, organisations=[practice_a]
    )
    dpo_b = UserFactory(
        password=UNUSABLE, username="dpo-b", role=User.Role.DPO, organisations=[practice_b]
    )
    # The SIRO of each practice: signs DPIAs and agreements for it, and nothing else.
    signatory_a = UserFactory(
        password=UNUSABLE,
        username="signatory-a",
        role=User.Role.SIGNATORY,
        organisations=[practice_a],
    )
    UserFactory(
        password=UNUSABLE,
        username="signatory-b",
        role=User.Role.SIGNATORY,
        organisations=[practice_b],
    )
    admin = UserFactory(
        password=UNUSABLE, username="csu-admin", role=User.Role.CSU_ADMIN, organisations=[csu]
    )
    auditor = UserFactory(password=UNUSABLE, username="auditor", role=User.Role.AUDITOR)
    common = {"csu": csu, "admin": admin}
    a = _side(
        "A",
        practice=practice_a,
        slug="testshire",
        title="Testshire PHM",
        pm=alice,
        dpo=dpo_a,
        **common,
    )
    b = _side(
        "B",
        practice=practice_b,
        slug="otherscape",
        title="Otherscape PHM",
        pm=charlie,
        dpo=dpo_b,
        **common,
    )
    people = {
        "practice_manager": alice,
        "dpo": dpo_a,
        "csu_admin": admin,
        "auditor": auditor,
        "signatory": signatory_a,
        "anonymous": None,
    }
    return World(csu=csu, people=people, a=a, b=b)


def url_values(world: World, scope: str, name: str) -> dict[str, str]:
    """Real values for every path converter a route may have, for the given side."""
    side = world.side(scope)
    by_route = {
        # The same keyword names different objects on different routes.
        "pk": {
            "api-user-detail": side.member.pk,
            "api-dataset-detail": side.dataset.pk,
            "api-dataset-pseudonymise": side.dataset.pk,
            "api-job-detail": side.job.pk,
            "api-job-cancel": side.job.pk,
            "api-job-output": side.job.pk,
            "api-notice-detail": side.notice.pk,
            "api-notice-completeness": side.notice.pk,
            "api-notice-publish": side.notice.pk,
            "api-notice-withdraw": side.notice.pk,
            "api-national-check": side.check.pk,
            "api-national-check-submission": side.check.pk,
            "api-national-check-returned": side.check.pk,
            "national-check": side.check.pk,
            "notice-manage": side.notice.pk,
            "notice-publish": side.notice.pk,
            "notice-withdraw": side.notice.pk,
            "api-destruction-run": side.extra["run"].pk,
            "destruction-run": side.extra["run"].pk,
            "api-dpia-detail": side.dpia.pk,
            "api-dpia-dpo-advice": side.dpia.pk,
            "api-dpia-sign-off": side.dpia.pk,
            "api-dpia-start-review": side.dpia.pk,
            "api-dpia-document": side.dpia.pk,
            "dpia-detail": side.dpia.pk,
            "dpia-edit": side.dpia.pk,
            "dpia-dpo-advice": side.dpia.pk,
            "dpia-sign-off": side.dpia.pk,
            "dpia-start-review": side.dpia.pk,
            "dpia-document": side.dpia.pk,
            "api-sharing-agreement-detail": side.agreement.pk,
            "api-sharing-agreement-sign": side.agreement.pk,
            "api-sharing-agreement-document": side.agreement.pk,
            "sharing-agreement-detail": side.agreement.pk,
            "sharing-agreement-edit": side.agreement.pk,
            "sharing-agreement-sign": side.agreement.pk,
            "sharing-agreement-document": side.agreement.pk,
        },
    }
    values = {
        "ods_code": side.practice.ods_code,
        "slug": side.programme.slug,
        "programme_slug": side.programme.slug,
        "pk": side.flow.pk,
        "flow_id": side.flow.pk,
        "dataset_id": side.dataset.pk,
        "job_id": side.job.pk,
        "patient_id": side.event.patient_id,
        "reference": side.request.reference,
        "number": 1,
        "code": BASES[0],
        "action": "approve",
        "fmt": "csv",
        "format": "json",
        "uidb64": "MQ",
        "token": "set-password-token",
        "app_label": "governance",
        "object_id": side.programme.pk,
        "content_type_id": 1,
        "url": "x",
        "id": side.member.pk,
        "serial": side.extra["certificate"].serial,
    }
    for key, routes in by_route.items():
        if name in routes:
            values[key] = routes[name]
    return {k: str(v) for k, v in values.items()}


def new_uuid() -> str:
    return str(uuid.uuid4())
