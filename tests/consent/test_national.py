import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from consent import services
from consent.models import NationalOptOutCheck, NationalOptOutEntry
from consent.tasks import national_opt_out_checks_purge_expired
from governance.permissions import bind
from phm_portal.lib.crypto import blind_index
from phm_portal.models import AuditEvent
from tests.consent.conftest import dat
from tests.factories import PracticeFactory

URL = "/api/v1/national-opt-outs/checks/"


def files(submitted: bytes, returned: bytes, **extra):
    return {
        "programme": "testshire",
        "submitted": SimpleUploadedFile("cohort.dat", submitted),
        "returned": SimpleUploadedFile("returned.dat", returned),
        "checked_on": dt.date.today().isoformat(),
        **extra,
    }


def test_the_portal_builds_the_submission_file_of_the_programmes_cohort(
    api, admin, programme, record, numbers, charlie, practice_b
):
    a, b, c = numbers(3)
    record(a)
    record(b)
    record(c, practice=practice_b, by=charlie)
    response = api(admin).post(URL, {"programme": "testshire"}, format="json")
    assert response.status_code == 201, response.json()
    check = response.json()
    assert (check["status"], check["submitted"]) == ("awaiting_return", 3)
    submission = api(admin).get(f"{URL}{check['id']}/submission.dat")
    assert submission.status_code == 200
    # The national service's format: each number and a comma, LF ends, no header.
    assert submission.content.decode() == f"{a},\n{b},\n{c},\n"
    assert AuditEvent.objects.filter(action="national_opt_out.submission_exported").exists()


def test_practices_outside_the_programme_are_not_in_its_cohort(
    api, admin, programme, record, numbers, alice
):
    (a,) = numbers(1)
    elsewhere = PracticeFactory(ods_code="C83003")
    bind(alice, elsewhere)
    record(a, practice=elsewhere)
    response = api(admin).post(URL, {"programme": "testshire"}, format="json")
    assert response.status_code == 409  # nobody known at the programme's practices


def test_importing_the_returned_file_derives_who_opted_out(api, admin, programme, record, numbers):
    a, b, c = numbers(3)
    for n in (a, b, c):
        record(n)
    check = api(admin).post(URL, {"programme": "testshire"}, format="json").json()
    response = api(admin).post(
        f"{URL}{check['id']}/returned/",
        {"returned": SimpleUploadedFile("r.dat", dat([a, c], crlf=False)), "checked_on": dt.date.today().isoformat()},
        format="multipart",
    )  # fmt: skip
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["submitted"], body["returned"], body["opted_out"]) == (
        "complete", 3, 2, 1
    )  # fmt: skip
    assert body["expires_on"] == (dt.date.today() + dt.timedelta(days=30)).isoformat()
    opted = NationalOptOutEntry.objects.get(opted_out=True)
    assert opted.patient.nhs_index == blind_index(b)


def test_a_check_can_be_recorded_from_both_files_at_once(api, admin, programme, numbers):
    a, b = numbers(2)
    response = api(admin).post(URL, files(dat([a, b]), dat([a])), format="multipart")
    assert response.status_code == 201, response.json()
    assert {k: response.json()[k] for k in ("submitted", "returned", "opted_out")} == {
        "submitted": 2,
        "returned": 1,
        "opted_out": 1,
    }
    assert AuditEvent.objects.filter(action="national_opt_out.check_completed").exists()


def test_bad_lines_in_the_submitted_file_are_reported_by_line(api, admin, programme, numbers):
    a, b = numbers(2)
    submitted = f"{a}\n9434765918\n\n{b}\nabc\n".encode()
    response = api(admin).post(URL, files(submitted, dat([a])), format="multipart")
    assert response.status_code == 400
    assert [(d["file"], d["line"]) for d in response.json()["details"]] == [
        ("submitted", 2),
        ("submitted", 5),
    ]
    assert not NationalOptOutCheck.objects.exists()


def test_bad_lines_in_the_returned_file_are_reported_by_line(api, admin, programme, numbers):
    a, b, stranger = numbers(3)
    returned = f"{a}\r\n12345\r\n{stranger}\r\n".encode()
    response = api(admin).post(URL, files(dat([a, b]), returned), format="multipart")
    assert response.status_code == 400
    details = response.json()["details"]
    assert [(d["file"], d["line"]) for d in details] == [("returned", 2), ("returned", 3)]
    assert "not in the submitted file" in details[1]["error"]
    assert not NationalOptOutCheck.objects.exists()


@pytest.mark.parametrize(
    "checked_on",
    [
        (dt.date.today() + dt.timedelta(days=1)).isoformat(),
        (dt.date.today() - dt.timedelta(days=30)).isoformat(),
        "last week",
    ],
)
def test_a_future_expired_or_bad_check_date_is_refused(api, admin, programme, numbers, checked_on):
    (a,) = numbers(1)
    response = api(admin).post(
        URL, files(dat([a]), dat([a]), checked_on=checked_on), format="multipart"
    )
    assert response.status_code == 400
    assert "checked_on" in response.json()


def test_a_returned_file_for_a_completed_check_is_refused(
    api, admin, programme, national_check, numbers
):
    (a,) = numbers(1)
    check = national_check([a], [a])
    response = api(admin).post(
        f"{URL}{check.pk}/returned/",
        {"returned": SimpleUploadedFile("r.dat", dat([a]))},
        format="multipart",
    )
    assert response.status_code == 409


def test_only_a_csu_admin_runs_national_checks(api, alice, dpo_a, programme):
    for user in (alice, dpo_a):
        assert api(user).post(URL, {"programme": "testshire"}, format="json").status_code == 403
        assert api(user).get(URL).status_code == 403


def test_an_unknown_programme_is_named(api, admin):
    response = api(admin).post(URL, {"programme": "nowhere"}, format="json")
    assert response.status_code == 400
    assert "programme" in response.json()


def test_the_purge_deletes_expired_results_but_keeps_the_record(
    admin, programme, national_check, numbers
):
    a, b = numbers(2)
    old = national_check([a, b], [a], checked_on=dt.date.today() - dt.timedelta(days=29))
    fresh = national_check([a, b], [a, b])
    purged = services.national_checks_purge_expired(today=dt.date.today() + dt.timedelta(days=1))
    assert purged == [old.pk]
    old.refresh_from_db()
    assert (old.status, old.opted_out, old.submitted) == ("purged", 1, 2)
    assert not NationalOptOutEntry.objects.filter(check_run=old).exists()
    assert NationalOptOutEntry.objects.filter(check_run=fresh).count() == 2
    event = AuditEvent.objects.get(action="national_opt_out.check_purged")
    assert (event.actor, event.details["entries_deleted"]) == ("system", 2)


def test_the_purge_task_leaves_unexpired_checks_and_is_idempotent(
    admin, programme, national_check, numbers
):
    (a,) = numbers(1)
    national_check([a], [])
    assert national_opt_out_checks_purge_expired() == []
    assert services.national_checks_purge_expired(today=dt.date.today() + dt.timedelta(days=40))
    assert (
        services.national_checks_purge_expired(today=dt.date.today() + dt.timedelta(days=40)) == []
    )


def test_the_purge_is_scheduled(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["national-opt-outs-purge-expired"]
    assert entry["task"] == "consent.tasks.national_opt_out_checks_purge_expired"


def test_a_purged_check_has_no_submission_file(api, admin, programme, national_check, numbers):
    (a,) = numbers(1)
    check = national_check([a], [a])
    services.national_checks_purge_expired(today=dt.date.today() + dt.timedelta(days=31))
    assert api(admin).get(f"{URL}{check.pk}/submission.dat").status_code == 409


def test_a_check_never_returned_is_purged_after_the_same_period(admin, programme, record, numbers):
    (a,) = numbers(1)
    record(a)
    check = services.national_check_start(actor=admin, programme=programme)
    NationalOptOutCheck.objects.filter(pk=check.pk).update(
        created_at=check.created_at - dt.timedelta(days=31)
    )
    assert services.national_checks_purge_expired() == [check.pk]
    assert not NationalOptOutEntry.objects.exists()


def test_numbers_noted_from_an_extract_join_the_cohort(api, admin, programme, practice_a, numbers):
    a, b = numbers(2)
    assert (
        services.patients_note_at_practice(
            actor="system", practice=practice_a, nhs_numbers=[a, b, a]
        )
        == 2
    )
    check = api(admin).post(URL, {"programme": "testshire"}, format="json").json()
    assert check["submitted"] == 2
    with pytest.raises(services.InvalidInput):
        services.patients_note_at_practice(actor="system", practice=practice_a, nhs_numbers=["123"])
    assert AuditEvent.objects.get(action="consent.patients_noted").details == {"numbers": 2}
