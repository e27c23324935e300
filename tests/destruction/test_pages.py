"""The pages: the CSU admin's destruction page with its confirmation, a run, /verify/, and after."""

from __future__ import annotations

import html
import re

from destruction import services
from destruction.models import DestructionRun
from tests.conftest import PASSWORD
from tests.destruction.conftest import run_all
from tests.destruction.test_certificate import flip_signed_byte
from tests.notices.conftest import complete, draft  # noqa: F401 - fixtures
from tests.notices.conftest import published as published  # noqa: F401 - a fixture


def words(response) -> str:
    text = re.sub(r"<[^>]+>", " ", response.content.decode())
    return html.unescape(" ".join(text.split()))


def signed_in(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_the_destruction_page_shows_what_will_go_and_asks_for_confirmation(client, admin, data):
    page = signed_in(client, admin).get("/programmes/testshire/destruction/")
    assert page.status_code == 200
    text = words(page)
    assert "Destruction of the programme's data" in text and "Extracts held 1" in text
    assert "National data opt-out results 0" in text
    assert "Patients known only from the programme's extracts 0" in text
    assert "/programmes/testshire/destruction/confirm/" in page.content.decode()

    confirm = client.get("/programmes/testshire/destruction/confirm/")
    assert "This cannot be undone" in words(confirm)
    refused = client.post("/programmes/testshire/destruction/confirm/", {})
    assert refused.status_code == 400
    assert "Tick the box to confirm that the data is to be destroyed." in words(refused)
    assert not DestructionRun.objects.exists()

    started = client.post("/programmes/testshire/destruction/confirm/", {"confirm": "on"})
    run = DestructionRun.objects.get()
    assert started.status_code == 302 and started["Location"] == f"/destruction-runs/{run.pk}/"
    assert "Queued" in words(client.get(started["Location"]))


def test_early_destruction_on_the_page_needs_a_reason(client, admin, ended, job):
    signed_in(client, admin)
    response = client.post(
        "/programmes/testshire/destruction/confirm/", {"confirm": "on", "early": "on"}
    )
    assert response.status_code == 400
    assert "Say why the data must be destroyed before the end." in words(response)
    response = client.post("/programmes/testshire/destruction/confirm/", {"confirm": "on"})
    assert response.status_code == 409 and "has not ended" in words(response)
    response = client.post(
        "/programmes/testshire/destruction/confirm/",
        {"confirm": "on", "early": "on", "reason": "The partnership was dissolved."},
    )
    assert response.status_code == 302


def test_the_run_page_shows_steps_evidence_and_the_certificate_download(client, admin, destroyed):
    page = signed_in(client, admin).get(f"/destruction-runs/{destroyed.pk}/")
    text = words(page)
    assert f"Run {destroyed.pk}: Succeeded" in text
    assert "Erase the keys (cryptographic erase) Done" in text
    assert destroyed.manifest_sha256 in text
    serial = destroyed.certificate.serial
    assert f"/certificates/{serial}.pdf" in page.content.decode()
    pdf = client.get(f"/certificates/{serial}.pdf")
    assert pdf.status_code == 200 and pdf.content == bytes(destroyed.certificate.pdf)


def test_other_roles_and_outsiders_are_refused_the_pages(client, data, dpo_a, outsider, destroyed):
    signed_in(client, dpo_a)
    assert client.get("/programmes/testshire/destruction/").status_code == 403
    assert (
        client.post("/programmes/testshire/destruction/confirm/", {"confirm": "on"}).status_code
        == 403
    )
    assert client.get(f"/destruction-runs/{destroyed.pk}/").status_code == 200  # a controller
    client.logout()
    signed_in(client, outsider)
    assert client.get("/programmes/testshire/destruction/").status_code == 404
    assert client.get(f"/destruction-runs/{destroyed.pk}/").status_code == 404
    assert client.get(f"/certificates/{destroyed.certificate.serial}.pdf").status_code == 404


def test_the_controllers_page_lists_the_certificate(client, dpo_a, destroyed):
    page = signed_in(client, dpo_a).get("/organisations/A81001/")
    assert "Data destruction certificates" in words(page)
    assert f"/certificates/{destroyed.certificate.serial}.pdf" in page.content.decode()
    programme_page = words(client.get("/programmes/testshire/"))
    assert "The programme's data and keys were destroyed on" in programme_page


def _check(client, pdf: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post("/verify/", {"file": SimpleUploadedFile("c.pdf", pdf, "application/pdf")})


def test_a_valid_certificate_gets_a_green_confirmation_with_whose_it_is(client, destroyed):
    page = _check(client, bytes(destroyed.certificate.pdf))
    text = words(page)
    assert page.status_code == 200
    assert '<div class="nhsuk-panel" id="verify-result">' in page.content.decode()
    assert "This certificate is valid It is genuine (signed with this portal's key)" in text
    assert destroyed.certificate.serial in text and "Testshire PHM" in text
    assert "Signed by" in text


def test_a_tampered_certificate_gets_a_warning_and_no_certificate_details(client, destroyed):
    page = _check(client, flip_signed_byte(bytes(destroyed.certificate.pdf)))
    text = words(page)
    assert 'class="nhsuk-warning-callout" id="verify-result"' in page.content.decode()
    assert "This certificate is not valid" in text
    assert "Do not rely on this document" in text
    assert "Signed by" not in text and "Genuine" not in text
    assert destroyed.certificate.serial not in text and "Serial number" not in text


def test_an_empty_check_shows_the_error_summary(client, db):
    missing = client.post("/verify/", {})
    text = words(missing)
    assert missing.status_code == 400
    assert "There is a problem Choose the certificate PDF to check." in text
    assert 'href="#file"' in missing.content.decode()


def test_the_verify_page_is_linked_from_the_public_pages(client, db):
    assert 'href="/verify/">Check a data destruction certificate' in (
        client.get("/notices/").content.decode()
    )


def test_after_destruction_the_pages_say_so_instead_of_failing(client, admin, alice, destroyed):
    job_id = destroyed.manifest["apps"]["datasets"]["jobs"][0]
    signed_in(client, admin)
    response = client.get(f"/jobs/{job_id}/output.csv", follow=True)
    assert response.status_code == 200
    assert "The programme's data was destroyed: its outputs can no longer be read." in words(
        response
    )
    job_page = words(client.get(f"/jobs/{job_id}/"))
    assert "The programme's data was destroyed" in job_page
    assert "Download the pseudonymised extract" not in job_page
    client.logout()
    signed_in(client, alice)
    response = client.post(
        "/practices/A81001/reidentify/", {"programme": "testshire", "codes": "abc"}
    )
    assert response.status_code == 200
    assert "its codes can no longer be re-identified" in words(response)


def test_the_notice_page_stays_up_and_says_when_the_data_was_destroyed(
    client,
    published,
    data,
    admin,
    django_capture_on_commit_callbacks,  # noqa: F811
):
    assert "was destroyed on" not in words(client.get("/notices/testshire/"))  # now cached
    with django_capture_on_commit_callbacks(execute=True):
        run = run_all(services.programme_destroy(actor=admin, programme=data))
    page = client.get("/notices/testshire/")
    assert page.status_code == 200
    text = words(page)
    assert "all the data held for it, with its keys, was destroyed on" in text
    assert run.certificate.serial in text
    version = client.get(f"/notices/testshire/v{published.number}/")
    assert "was destroyed on" in words(version)


def test_the_run_page_labels_evidence_in_words_and_counts_one_job_in_the_singular(
    client, admin, destroyed
):
    text = words(signed_in(client, admin).get(f"/destruction-runs/{destroyed.pk}/"))
    assert "PDF SHA-256 : " in text and "Pdf sha256" not in text
    assert "Controllers without a DPO email address : " in text
    assert "Controllers without dpo email" not in text
    assert "reading the output of the finished job is refused (passed)" in text
    # Evidence given app by app is a line per app, named as the certificate names its part.
    # (PostgreSQL's jsonb keeps its own order of keys: look for each part, not a sequence.)
    # Files: the extract, the output part, the vault part and its re-identification index.
    assert "Extracts and pseudonymisation : " in text and "files: 4," in text
    assert "Opt-outs and cohorts : " in text and "national check results deleted: 0" in text
    assert "{'" not in text  # no mapping printed raw
    assert "each of the 1 finished jobs" not in text
