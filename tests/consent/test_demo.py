import datetime as dt
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from consent.demo import cohort_numbers
from consent.models import NationalOptOutCheck, Patient, Registration, Type1Event
from consent.selectors import (
    national_check_submission,
    national_usable_checks,
    nhs_numbers_of,
    programme_practice_ids,
    type1_current,
)
from governance.models import Organisation, Programme


def test_the_demo_records_synthetic_opt_outs_at_each_demo_practice_once(db, settings, client):
    settings.DEMO_PASSWORD = "a-demo-password"
    call_command("load_demo", stdout=StringIO())
    count = Type1Event.objects.count()
    assert count > 0
    numbers = nhs_numbers_of(Type1Event.objects.values_list("patient_id", flat=True))
    assert all(n.startswith("999") for n in numbers.values())
    call_command("load_demo", stdout=StringIO())
    assert Type1Event.objects.count() == count
    practice = Type1Event.objects.first().practice
    assert type1_current(practice, status="opted_out").exists()
    client.login(username="pm-devon", password="a-demo-password")
    assert "999" in client.get("/practices/L83901/opt-outs/").content.decode()


# --- the demo's cohorts and national checks (issue 15) ------------------------------------
def load_demo() -> str:
    out = StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def demo_checks():
    return NationalOptOutCheck.objects.filter(demo=True)


def test_the_demo_records_a_complete_unexpired_national_check_of_each_programme(db, settings):
    settings.DEMO_PASSWORD = "a-demo-password"
    said = load_demo()
    applying = Programme.objects.filter(national_opt_out_applies=True)
    assert applying.count() == 5  # every demo programme applies the national opt-out
    for programme in applying:
        (check,) = national_usable_checks(programme)
        assert check.demo and check.status == "complete"
        assert check.transport == "manual" and not check.mesh_message_id  # never sent
        assert check.expires_on > timezone.localdate()
        # It covers the demo cohort of every practice of the programme.
        submitted = set(national_check_submission(check))
        for practice in Organisation.objects.filter(pk__in=programme_practice_ids(programme)):
            cohort = cohort_numbers(practice.ods_code)
            assert len(cohort) == 150 and set(cohort) <= submitted
        # About 3% opted out, the others' data may flow.
        assert 0 < check.opted_out < check.submitted * 0.06
        assert check.returned == check.submitted - check.opted_out
        assert f"a national data opt-out check of {programme.name} recorded (demo data)" in said


def test_the_demo_cohorts_are_synthetic_and_only_of_demo_practices(db):
    cohort = cohort_numbers("L83901")
    assert cohort == cohort_numbers("l83901")  # the same every time
    assert all(n.startswith("999") for n in cohort)
    assert cohort != cohort_numbers("L83902")
    assert cohort_numbers("A81001") == []


def test_loading_the_demo_twice_adds_no_check_and_no_patient(db, settings):
    settings.DEMO_PASSWORD = "a-demo-password"
    load_demo()
    counts = (demo_checks().count(), Patient.objects.count(), Registration.objects.count())
    said = load_demo()
    assert (demo_checks().count(), Patient.objects.count(), Registration.objects.count()) == counts
    assert "has an unexpired check; none recorded" in said


def test_after_its_check_expires_loading_the_demo_records_a_new_one(db, settings):
    settings.DEMO_PASSWORD = "a-demo-password"
    load_demo()
    devon = Programme.objects.get(slug="devon")
    (old,) = national_usable_checks(devon)
    NationalOptOutCheck.objects.filter(pk=old.pk).update(
        checked_on=timezone.localdate() - dt.timedelta(days=31),
        expires_on=timezone.localdate() - dt.timedelta(days=1),
    )
    assert not national_usable_checks(devon).exists()
    said = load_demo()
    (new,) = national_usable_checks(devon)
    assert new.pk != old.pk and new.demo and new.checked_on == timezone.localdate()
    assert demo_checks().count() == 6  # the other four still had theirs
    assert "a national data opt-out check of Devon" in said
