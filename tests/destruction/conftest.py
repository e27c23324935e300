"""A programme with an extract, a finished job (output and vault), and its key: data to destroy."""

from __future__ import annotations

import datetime as dt

import pytest

from datasets import services as dataset_services
from datasets.models import Job
from destruction import services
from destruction.models import DestructionRun
from governance.models import Programme
from tests.datasets.conftest import flow, upload_extract  # noqa: F401 - fixtures

ROWS = [
    "9434765919,Ann,1960-03-01,CB1 2AB,A81001,XaZ89",
    "4010232137,Bob,1971-07-15,LS2 9JT,B82002,C10..",
]


@pytest.fixture
def ended(programme, practice_a, practice_b):
    """The test programme, exempt from the national opt-out, its controllers with DPO emails."""
    programme.national_opt_out_applies = False
    programme.national_opt_out_exemption = "Test exemption"
    programme.save()
    practice_a.dpo_email = "dpo@practice-a.example.nhs.uk"
    practice_a.save()
    practice_b.dpo_email = "dpo@practice-b.example.nhs.uk"
    practice_b.save()
    return programme


def end(programme: Programme) -> Programme:
    Programme.objects.filter(pk=programme.pk).update(
        status=Programme.Status.ENDED, end_date=dt.date(2026, 1, 1)
    )
    programme.refresh_from_db()
    return programme


@pytest.fixture
def dataset(api, alice, flow, ended):  # noqa: F811 - the flow fixture
    return upload_extract(api(alice), flow, ROWS)


@pytest.fixture
def job(admin, dataset):
    job = dataset_services.dataset_pseudonymise(actor=admin, dataset=dataset)
    for chunk_id in dataset_services.job_start(job_id=job.pk):
        dataset_services.job_chunk_run(chunk_id=chunk_id)
    job = dataset_services.job_finish(job_id=job.pk)
    assert job.status == Job.Status.SUCCEEDED
    return job


@pytest.fixture
def data(job, ended):
    """Everything there is to destroy, in a programme that has ended."""
    return end(ended)


def run_all(run: DestructionRun) -> DestructionRun:
    """Do what the worker does."""
    return services.destruction_run_execute(run_id=run.pk)


@pytest.fixture(autouse=True)
def _own_signing_key(settings, tmp_path):
    """Each test's portal has its own signing key, made on first need."""
    settings.PHM_SIGNING_P12_FILE = tmp_path / "signing" / "portal-signing.p12"


@pytest.fixture
def outsider(db):
    """A DPO of an organisation that takes no part in the programme."""
    from tests.factories import OrganisationFactory, UserFactory

    elsewhere = OrganisationFactory(ods_code="RX1", name="Elsewhere NHS Trust")
    return UserFactory(username="outsider", role="dpo", organisations=[elsewhere])


@pytest.fixture
def processor_person(csu):
    """A DPO bound to the CSU, the programme's processor."""
    from tests.factories import UserFactory

    return UserFactory(username="csu-dpo", role="dpo", organisations=[csu])


@pytest.fixture
def destroyed(data, admin):
    """The programme after a whole destruction run."""
    run = run_all(services.programme_destroy(actor=admin, programme=data))
    assert run.status == DestructionRun.Status.SUCCEEDED, run.error
    return run
