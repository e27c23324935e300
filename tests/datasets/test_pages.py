"""The datasets pages: upload, extract, job, cancel, download, re-identification."""

import datetime as dt
from unittest import mock

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError

from datasets import services
from datasets.models import Dataset, Job
from governance.models import DataFlow
from tests.datasets.conftest import HEADER, csv_file, make_flow

ROW = "9434765919,Ann,1960-03-01,CB1 2AB,A81001,XaZ89\n"
FORM = {
    "nhs_number": "nhs_number",
    "practice": "practice",
    "drop": "forename",
    "date_of_birth": "date_of_birth",
    "date_rule": "year",
    "postcode": "postcode",
}


@pytest.fixture
def exempt(programme):
    programme.national_opt_out_applies = False
    programme.national_opt_out_exemption = "Test exemption"
    programme.save()
    return programme


def upload(client, flow, text=HEADER + ROW, **extra):
    return client.post(
        "/datasets/upload/", {"file": csv_file(text), "data_flow": flow.pk, **FORM, **extra}
    )


def test_the_source_uploads_through_the_page_and_sees_the_extract(client, alice, flow):
    client.force_login(alice)
    response = upload(client, flow)
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "extract.csv is stored, encrypted." in page
    assert "nhs_number, forename, date_of_birth, postcode, practice, event_code" in page


def test_the_upload_page_names_a_missing_column(client, alice, flow):
    client.force_login(alice)
    page = upload(client, flow, postcode="post_code").content.decode()
    assert "There is a problem" in page
    assert "no column named &#x27;post_code&#x27;" in page
    assert not Dataset.objects.exists()


def test_a_missing_column_is_shown_at_its_field_with_the_files_columns(client, alice, flow):
    client.force_login(alice)
    page = upload(client, flow, nhs_number="nhs_no").content.decode()
    field = page.split('id="id_nhs_number-error"', 1)[1].split("</span>", 2)[1]
    assert "The file has no column named &#x27;nhs_no&#x27;." in field
    assert "Its columns are: nhs_number, forename, date_of_birth, postcode, practice" in field
    assert '<p id="file-columns-list">nhs_number, forename, date_of_birth, postcode' in page
    assert "Your file extract.csv (" in page
    assert "is kept, encrypted: correct the column names and upload again" in page
    assert 'value="nhs_no"' in page  # the person's mapping is kept to correct
    assert not Dataset.objects.exists()


def test_the_upload_page_tells_two_flows_between_the_same_organisations_apart(
    client, alice, flow, programme, practice_a, csu
):
    other = make_flow(programme, practice_a, csu, identifiability="pseudonymised")
    other.data_categories = ["gp", "hospital"]
    other.save()
    client.force_login(alice)
    page = client.get("/datasets/upload/").content.decode()
    assert f"Data flow #{flow.pk}: Practice A Surgery" in page
    assert f"Data flow #{other.pk}: Practice A Surgery" in page
    assert "(testshire) – GP records; identifiable</option>" in page
    assert "(testshire) – GP records, Hospital records; pseudonymised</option>" in page


def test_the_upload_page_offers_only_the_persons_approved_flows(client, charlie, flow):
    client.force_login(charlie)
    page = client.get("/datasets/upload/").content.decode()
    assert f'value="{flow.pk}"' not in page


def test_the_upload_page_leaves_out_an_approved_flow_of_an_ended_programme(
    client, alice, flow, programme
):
    client.force_login(alice)
    assert f'value="{flow.pk}"' in client.get("/datasets/upload/").content.decode()
    programme.status = "ended"
    programme.save(update_fields=["status"])
    page = client.get("/datasets/upload/").content.decode()
    assert f'value="{flow.pk}"' not in page
    # A crafted POST of the flow is refused at the field; nothing is stored.
    response = upload(client, flow)
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Dataset.objects.exists()


def test_an_outsider_cannot_upload_through_the_page(client, charlie, flow):
    client.force_login(charlie)
    response = upload(client, flow)
    assert response.status_code == 200  # the form refuses the flow it does not offer
    assert "Select a valid choice" in response.content.decode()
    assert not Dataset.objects.exists()


def test_a_file_over_the_limit_is_refused_on_the_page(client, alice, flow, settings):
    settings.PHM_UPLOAD_MAX_BYTES = 50
    client.force_login(alice)
    response = upload(client, flow, text=HEADER + ROW * 3)
    assert response.status_code == 413
    assert "larger than the limit" in response.content.decode()


@pytest.fixture
def dataset(client, alice, flow, exempt):
    client.force_login(alice)
    upload(client, flow)
    client.logout()
    return Dataset.objects.get()


def run(job):
    for chunk_id in services.job_start(job_id=job.pk):
        services.job_chunk_run(chunk_id=chunk_id)
    return services.job_finish(job_id=job.pk)


def test_a_csu_admin_starts_a_job_and_sees_its_progress_then_its_report(
    client, admin, dataset, django_capture_on_commit_callbacks
):
    client.force_login(admin)
    # The start message goes to the task queue once the job is committed (kept here).
    with (
        mock.patch("datasets.tasks.job_start.delay") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(f"/datasets/{dataset.pk}/pseudonymise/")
    job = Job.objects.get()
    send.assert_called_once_with(str(job.pk))
    assert response["Location"] == f"/jobs/{job.pk}/"
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert '<progress id="job-progress" max="100" value="0">' in page
    assert "The job is waiting for a worker" in page
    assert "Refresh to see progress" in page
    run(job)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Rows out" in page and "Download the pseudonymised extract" in page


def test_with_the_task_queue_unreachable_the_job_waits_and_is_sent_again_later(
    client, admin, dataset, django_capture_on_commit_callbacks
):
    """The broker refusing the start message fails neither the request nor the job."""
    client.force_login(admin)
    refused = OperationalError("Error 111 connecting to 127.0.0.1:6390. Connection refused.")
    with (
        mock.patch("datasets.tasks.job_start.delay", side_effect=refused),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(f"/datasets/{dataset.pk}/pseudonymise/")
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.status == Job.Status.QUEUED and job.start_sent_at is None
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Waiting for the task queue" in page and "Nothing has failed" in page
    assert "The job failed" not in page
    body = client.get(f"/api/v1/jobs/{job.pk}/").json()
    assert body["status"] == "queued" and body["waiting_for_queue"] is True
    assert body["note"].startswith("Waiting for the task queue")

    # Too soon after queueing, the look-out leaves it (the request may still be sending).
    with mock.patch("datasets.tasks.job_start.delay") as send:
        assert services.jobs_resend_queued() == 0
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - dt.timedelta(minutes=1))
    # Still unreachable: nothing is sent, the job still waits.
    with mock.patch("datasets.tasks.job_start.delay", side_effect=refused):
        assert services.jobs_resend_queued() == 0
    # The queue is back: the periodic look-out sends it, once.
    with mock.patch("datasets.tasks.job_start.delay") as send:
        assert services.jobs_resend_queued() == 1
        assert services.jobs_resend_queued() == 0
    send.assert_called_once_with(str(job.pk))
    job.refresh_from_db()
    assert job.start_sent_at is not None and not job.waiting_for_queue
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "The job is waiting for a worker" in page
    run(job)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED


def test_a_job_sent_long_ago_and_never_claimed_is_sent_again(admin, dataset, settings):
    job = services.dataset_pseudonymise(actor=admin, dataset=dataset)
    sent = timezone.now() - dt.timedelta(seconds=settings.PHM_JOB_RESEND_AFTER_SECONDS + 5)
    Job.objects.filter(pk=job.pk).update(start_sent_at=sent)
    other = services.dataset_pseudonymise(actor=admin, dataset=dataset)
    assert other == job  # one active job per extract
    with mock.patch("datasets.tasks.job_start.delay") as send:
        assert services.jobs_resend_queued() == 1
    send.assert_called_once_with(str(job.pk))
    # A running, finished or cancelled job is never sent again.
    run(job)
    Job.objects.filter(pk=job.pk).update(start_sent_at=sent)
    with mock.patch("datasets.tasks.job_start.delay") as send:
        assert services.jobs_resend_queued() == 0
    send.assert_not_called()


def test_only_a_csu_admin_starts_a_job_from_the_page(client, alice, dataset):
    client.force_login(alice)
    assert client.post(f"/datasets/{dataset.pk}/pseudonymise/").status_code == 403
    assert not Job.objects.exists()


def test_an_outsider_sees_no_extract_or_job(client, admin, charlie, dataset):
    job = services.dataset_pseudonymise(actor=admin, dataset=dataset)
    client.force_login(charlie)
    assert client.get(f"/datasets/{dataset.pk}/").status_code == 404
    assert client.get(f"/jobs/{job.pk}/").status_code == 404
    assert client.get(f"/jobs/{job.pk}/output.csv").status_code == 404


def test_cancelling_asks_for_confirmation_first(client, admin, dataset):
    job = services.dataset_pseudonymise(actor=admin, dataset=dataset)
    client.force_login(admin)
    page = client.get(f"/jobs/{job.pk}/cancel/").content.decode()
    assert "Cancel this pseudonymisation job?" in page
    assert Job.objects.get().status == "queued"
    client.post(f"/jobs/{job.pk}/cancel/")
    assert Job.objects.get().status == "cancelled"


def test_a_job_being_cancelled_says_so_and_offers_no_second_cancel(client, admin, dataset):
    job = services.dataset_pseudonymise(actor=admin, dataset=dataset)
    Job.objects.filter(pk=job.pk).update(status="running", cancel_requested=True)
    client.force_login(admin)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Cancelling: the job stops as soon as its worker next reports" in page
    assert "Cancel this job" not in page
    Job.objects.filter(pk=job.pk).update(cancel_requested=False)
    assert "Cancel this job" in client.get(f"/jobs/{job.pk}/").content.decode()


def test_a_party_cannot_cancel(client, admin, alice, dataset):
    job = services.dataset_pseudonymise(actor=admin, dataset=dataset)
    client.force_login(alice)
    assert client.post(f"/jobs/{job.pk}/cancel/").status_code == 403
    assert Job.objects.get().status == "queued"


def test_the_destination_downloads_the_output_from_the_page(client, admin, csu_analyst, dataset):
    job = run(services.dataset_pseudonymise(actor=admin, dataset=dataset))
    client.force_login(csu_analyst)
    response = client.get(f"/jobs/{job.pk}/output.csv")
    body = b"".join(response.streaming_content).decode()
    assert (
        body.splitlines()[0]
        == '"pseudonym","date_of_birth_year","postcode_district","practice","event_code"'
    )
    assert "9434765919" not in body


def test_a_practice_manager_reidentifies_their_patient_on_the_page(
    client, admin, alice, charlie, dataset, programme
):
    run(services.dataset_pseudonymise(actor=admin, dataset=dataset))
    job = Job.objects.get()
    pseudonym = (
        b"".join(services.job_output(job=job)).decode().splitlines()[1].split(",")[0].strip('"')
    )
    client.force_login(alice)
    page = client.post(
        "/practices/A81001/reidentify/", {"programme": "testshire", "codes": pseudonym}
    ).content.decode()
    assert "9434765919" in page
    client.force_login(charlie)
    other = client.post(
        "/practices/B82002/reidentify/", {"programme": "testshire", "codes": pseudonym}
    ).content.decode()
    assert (
        "9434765919" not in other and "None of these codes is a patient of your practice" in other
    )
    assert client.get("/practices/A81001/reidentify/").status_code == 404


def test_re_identification_does_not_offer_a_destroyed_programme(client, alice, programme):
    from governance.models import Programme

    client.force_login(alice)
    page = client.get("/practices/A81001/reidentify/").content.decode()
    assert f'<option value="{programme.slug}"' in page
    Programme.objects.filter(pk=programme.pk).update(status=Programme.Status.DESTROYED)
    page = client.get("/practices/A81001/reidentify/").content.decode()
    assert f'<option value="{programme.slug}"' not in page


# --- a job refused for want of a national check (issue 15) ---------------------------------
@pytest.fixture
def unchecked_dataset(client, alice, flow, programme):
    """An extract of a programme that applies the national opt-out and has no check yet."""
    assert programme.national_opt_out_applies
    client.force_login(alice)
    upload(client, flow)
    client.logout()
    return Dataset.objects.get()


def error_summary(page: str) -> str:
    """Return the HTML of the page's error summary of messages."""
    start = page.index('<div class="nhsuk-error-summary"')
    return page[start : page.index("</main>", start)]


def test_a_job_refused_for_want_of_a_national_check_is_an_error_with_a_link_to_start_one(
    client, admin, unchecked_dataset
):
    client.force_login(admin)
    response = client.post(f"/datasets/{unchecked_dataset.pk}/pseudonymise/", follow=True)
    assert response.redirect_chain == [(f"/datasets/{unchecked_dataset.pk}/", 302)]
    assert not Job.objects.exists()
    page = response.content.decode()
    summary = error_summary(page)
    assert 'role="alert"' in summary.split(">", 1)[0]
    assert 'aria-labelledby="message-error-summary-title"' in summary.split(">", 1)[0]
    assert '<h2 class="nhsuk-error-summary__title" id="message-error-summary-title">' in summary
    assert "There is a problem" in summary
    assert (
        "The national data opt-out applies to Testshire PHM and it has no unexpired national "
        "check. Start a national data opt-out check of the programme"
    ) in summary
    assert (
        '<a href="/national-opt-outs/?programme=testshire">'
        "Start a national data opt-out check of Testshire PHM</a>"
    ) in summary
    assert "Information: " not in page  # no longer shown as information

    # The link leads to the national checks page with the programme chosen.
    response = client.get("/national-opt-outs/?programme=testshire")
    assert response.status_code == 200
    assert response.context["form"]["programme"].value() == "testshire"
    assert '<option value="testshire" selected>Testshire PHM' in response.content.decode()


def test_other_refusals_are_errors_without_the_link(client, admin, unchecked_dataset):
    DataFlow.objects.filter(pk=unchecked_dataset.data_flow_id).update(
        status=DataFlow.Status.SUSPENDED
    )
    client.force_login(admin)
    page = client.post(
        f"/datasets/{unchecked_dataset.pk}/pseudonymise/", follow=True
    ).content.decode()
    summary = error_summary(page)
    assert "The flow is suspended: no data moves on it now." in summary
    assert "/national-opt-outs/" not in summary


def test_a_success_is_shown_as_a_success_banner_not_as_information(client, alice, flow):
    client.force_login(alice)
    page = client.get(upload(client, flow)["Location"]).content.decode()
    banner = page.split('<div class="nhsuk-notification-banner nhsuk-notification-banner--success"')
    assert len(banner) == 2
    assert ">Success</h2>" in banner[1]
    assert "extract.csv is stored, encrypted." in banner[1].split("</div>\n        </div>")[0]
    assert "Information: " not in page and "nhsuk-error-summary" not in page


def test_a_suspended_flow_is_named_on_the_upload_page_with_its_lapse_and_refused(
    client, alice, flow, charlie
):
    DataFlow.objects.filter(pk=flow.pk).update(
        status=DataFlow.Status.SUSPENDED,
        suspension_reason="Agreement “GP data” v1.0 expired on 1 November 2026.",
    )
    client.force_login(alice)
    page = client.get("/datasets/upload/").content.decode()
    box = page.split('id="suspended-flows"', 1)[1].split("</div>", 1)[0]
    assert "This data flow is suspended: no extract can be uploaded on it" in box
    assert f"Data flow #{flow.pk}" in box and "expired on 1 November 2026" in box
    # A crafted POST of the suspended flow gets the lapse at the field; nothing is stored.
    page = upload(client, flow).content.decode()
    assert "There is a problem" in page
    field = page.split('for="id_data_flow"', 1)[1].split("</select>", 1)[0]
    assert f"Data flow #{flow.pk} is suspended" in field
    assert "expired on 1 November 2026" in field
    assert not Dataset.objects.exists()
    # Someone of another organisation does not see the flow at all.
    client.force_login(charlie)
    assert f"Data flow #{flow.pk}" not in client.get("/datasets/upload/").content.decode()
