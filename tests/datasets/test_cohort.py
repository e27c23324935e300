"""An extract's patients join their practices' cohorts, ready for a national data opt-out check."""

import pytest

from consent import selectors as consent_selectors
from consent import services as consent_services
from consent.models import Patient
from datasets import services
from phm_portal.lib.crypto import blind_index
from tests.datasets.conftest import upload_extract

ROWS = [
    "9434765919,Ann,1960-03-01,CB1 2AB,A81001,XaZ89",
    "9434765919,Ann,1960-03-01,CB1 2AB,a81001 ,H33..",  # the same patient, code as typed
    "4010232137,Bob,1971-07-15,LS2 9JT,B82002,C10..",
    "9434765918,Bad,1960-03-01,CB1 2AB,A81001,H33..",  # a bad check digit
    "9990000018,Cat,1980-01-01,CB1 2AB,Z99999,H33..",  # a practice outside the programme
    "too,few,columns",
]


def upload(api, user, flow, rows=ROWS):
    return upload_extract(api(user), flow, rows)


def cohort_numbers(programme, candidates=("9434765919", "4010232137", "9990000018")) -> set[str]:
    """Which of the extract's valid numbers are in the programme's cohort (by blind index)."""
    ids = set(consent_selectors.programme_cohort_patient_ids(programme))
    return {
        n
        for n in candidates
        if Patient.objects.filter(nhs_index=blind_index(n), pk__in=ids).exists()
    }


@pytest.fixture
def national_applies(programme):
    programme.national_opt_out_applies = True
    programme.save()
    return programme


def test_the_patients_of_an_extract_join_their_practices_cohorts(
    api, alice, admin, flow, national_applies, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(services, "_send_note_patients", sent.append)
    with django_capture_on_commit_callbacks(execute=True):
        dataset = upload(api, alice, flow)
    assert sent == [dataset.pk]  # queued for a worker once the upload is committed
    assert cohort_numbers(national_applies) == set()

    assert services.dataset_note_patients(dataset_id=dataset.pk) == 2
    assert cohort_numbers(national_applies) == {"9434765919", "4010232137"}
    # A check started now submits them: their national opt-out can be known.
    check = consent_services.national_check_start(actor=admin, programme=national_applies)
    assert check.submitted == 2


def test_noting_twice_adds_nobody_twice(api, alice, flow, national_applies):
    dataset = upload(api, alice, flow)
    services.dataset_note_patients(dataset_id=dataset.pk)
    services.dataset_note_patients(dataset_id=dataset.pk)
    assert len(consent_selectors.programme_cohort_patient_ids(national_applies)) == 2


def test_an_exempt_programme_notes_nobody_and_queues_nothing(
    api, alice, flow, programme, django_capture_on_commit_callbacks, monkeypatch
):
    programme.national_opt_out_applies = False
    programme.national_opt_out_exemption = "Test exemption"
    programme.save()
    sent = []
    monkeypatch.setattr(services, "_send_note_patients", sent.append)
    with django_capture_on_commit_callbacks(execute=True):
        dataset = upload(api, alice, flow)
    assert sent == []
    assert services.dataset_note_patients(dataset_id=dataset.pk) == 0
    assert cohort_numbers(programme) == set()


def test_an_extract_that_cannot_be_read_notes_nobody(api, alice, flow, national_applies):
    rows = ['9434765919,"Ann,1960-03-01,CB1 2AB,A81001,XaZ89']  # a quote never closed
    dataset = upload(api, alice, flow, rows)
    assert services.dataset_note_patients(dataset_id=dataset.pk) == 0
    assert cohort_numbers(national_applies) == set()
