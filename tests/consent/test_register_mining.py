"""The opt-out register cannot be mined: who learns which reasons, the quota, the call size."""

from __future__ import annotations

import threading
import time

import pytest

from consent import register, register_quota
from consent.register_quota import RegisterQuotaExceeded, register_quota_take
from governance.models import DataFlow, Programme, User
from phm_portal.models import AuditEvent
from tests.factories import UserFactory

URL = "/api/v1/opt-outs/check/"


@pytest.fixture(autouse=True)
def _own_cache(settings, tmp_path):
    """A file-based cache of the test's own: the quota's counts are the test's alone."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    }


@pytest.fixture
def type1_only(programme):
    Programme.objects.filter(pk=programme.pk).update(
        national_opt_out_applies=False, national_opt_out_exemption="COPI notice"
    )
    programme.refresh_from_db()
    return programme


def ask(api, user, flow, numbers):
    return api(user).post(URL, {"data_flow": flow.pk, "nhs_numbers": numbers}, format="json")


def answer_about(api, user, flow, number: str) -> dict:
    """Return the answer for one number, with the number itself taken out."""
    response = ask(api, user, flow, [number])
    assert response.status_code == 200, response.json()
    body = response.json()
    for item in body["excluded"]:
        assert item.pop("nhs_number") == number
    return body


@pytest.fixture
def b_patient(numbers, record, charlie, practice_b):
    """A patient of practice B only, with a Type 1 dissent recorded there."""
    number = numbers(7)[-1]
    record(number, practice=practice_b, by=charlie)
    return number


@pytest.fixture
def never_seen():
    return "9434765919"  # valid, and known to no practice of these tests


# --- who learns which reasons -----------------------------------------------------------------
def test_a_practice_manager_learns_the_type1_reason_of_their_own_patient(
    api, alice, flow, type1_only, record, numbers
):
    a, b = numbers(2)
    record(a)
    body = ask(api, alice, flow, [a, b]).json()
    assert body["excluded"] == [{"nhs_number": a, "reasons": ["type1"]}]
    assert body["allowed"] == 1


def test_a_practice_manager_learns_every_reason_of_their_own_patient(
    api, alice, flow, national_check, record, numbers
):
    a, c = numbers(2)
    record(a)
    national_check([a, c], [c])
    body = ask(api, alice, flow, [a, c]).json()
    assert body["excluded"][0] == {"nhs_number": a, "reasons": ["type1", "national"]}


def test_another_practice_s_opted_out_patient_answers_as_a_never_seen_number(
    api, alice, admin, flow, national_check, b_patient, never_seen, numbers
):
    (other,) = numbers(1)
    national_check([b_patient, other], [other])  # b_patient opted out nationally too
    full = answer_about(api, admin, flow, b_patient)
    assert full["excluded"] == [{"reasons": ["type1", "national"]}]
    assert answer_about(api, alice, flow, b_patient) == answer_about(api, alice, flow, never_seen)


def test_another_practice_s_allowed_patient_answers_as_a_never_seen_number(
    api, alice, admin, flow, national_check, numbers, never_seen, charlie, practice_b
):
    from consent import services

    (b,) = numbers(1)
    services.patients_note_at_practice(actor=charlie, practice=practice_b, nhs_numbers=[b])
    national_check([b], [b])  # checked, and not opted out: in the programme's cohort
    assert answer_about(api, admin, flow, b)["allowed"] == 1
    mine = answer_about(api, alice, flow, b)
    assert mine == answer_about(api, alice, flow, never_seen)
    assert mine["excluded"] == [{"reasons": ["national_unchecked"]}]


def test_under_type1_only_another_practice_s_dissent_answers_as_a_never_seen_number(
    api, alice, admin, flow, type1_only, b_patient, never_seen
):
    assert answer_about(api, admin, flow, b_patient)["excluded"] == [{"reasons": ["type1"]}]
    mine = answer_about(api, alice, flow, b_patient)
    assert mine == answer_about(api, alice, flow, never_seen)
    assert (mine["excluded"], mine["allowed"]) == ([], 1)


def test_a_csu_admin_learns_every_patient_s_reasons(
    api, admin, flow, national_check, record, b_patient, never_seen, numbers
):
    a, c = numbers(2)
    record(a)
    national_check([a, b_patient, c], [a])
    body = ask(api, admin, flow, [a, b_patient, c, never_seen]).json()
    assert body["excluded"] == sorted(
        [
            {"nhs_number": a, "reasons": ["type1"]},
            {"nhs_number": b_patient, "reasons": ["type1", "national"]},
            {"nhs_number": c, "reasons": ["national"]},
            {"nhs_number": never_seen, "reasons": ["national_unchecked"]},
        ],
        key=lambda item: item["nhs_number"],
    )


def test_the_practice_s_dpo_learns_no_patient_s_reasons(
    api, dpo_a, flow, type1_only, record, numbers
):
    (a,) = numbers(1)
    record(a)  # a patient of the DPO's own practice: but the DPO does not keep its opt-outs
    body = ask(api, dpo_a, flow, [a]).json()
    assert (body["excluded"], body["allowed"]) == ([], 1)


def test_a_practice_manager_who_is_not_a_party_to_the_flow_gets_a_404(
    api, charlie, flow, type1_only, b_patient
):
    response = ask(api, charlie, flow, [b_patient])
    assert response.status_code == 404
    assert not AuditEvent.objects.filter(action="opt_out_register.checked").exists()


def test_someone_signed_out_is_refused(api, flow, type1_only, never_seen):
    assert ask(api, None, flow, [never_seen]).status_code in (401, 403)


def test_the_audit_says_the_answer_was_limited_to_the_own_practices(
    api, alice, admin, flow, type1_only, never_seen
):
    ask(api, alice, flow, [never_seen])
    ask(api, admin, flow, [never_seen])
    events = AuditEvent.objects.filter(action="opt_out_register.checked").order_by("seq")
    assert [e.details["only_patients_of_own_practices"] for e in events] == [True, False]


# --- the size of one call ---------------------------------------------------------------------
def test_a_call_of_100_000_numbers_is_answered(api, alice, flow, type1_only, record, numbers):
    many = numbers(100_000)
    record(many[0])
    response = ask(api, alice, flow, many)
    assert response.status_code == 200
    body = response.json()
    assert body["excluded"] == [{"nhs_number": many[0], "reasons": ["type1"]}]
    assert body["allowed"] == 99_999


def test_a_call_of_100_001_numbers_is_a_400_naming_the_limit(api, alice, flow, type1_only):
    response = ask(api, alice, flow, ["9434765919"] * 100_001)
    assert response.status_code == 400
    assert "100,000" in response.json()["nhs_numbers"][0]
    assert not AuditEvent.objects.filter(action__startswith="opt_out_register").exists()


# --- the hourly quota -------------------------------------------------------------------------
@pytest.fixture
def quota_of_five(settings):
    settings.PHM_REGISTER_CHECK_NUMBERS_PER_HOUR = 5
    settings.PHM_REGISTER_CHECK_ADMIN_NUMBERS_PER_HOUR = 8


def test_beyond_the_quota_the_call_is_a_429_with_retry_after(
    api, alice, flow, type1_only, quota_of_five, numbers
):
    first, second = numbers(6)[:3], numbers(6)[3:]
    assert ask(api, alice, flow, first).status_code == 200
    response = ask(api, alice, flow, second)
    assert response.status_code == 429
    assert 3500 < int(response["Retry-After"]) <= 3600
    assert "quota is 5 NHS numbers an hour" in response.json()["detail"]


def test_the_quota_may_be_used_to_the_last_number(
    api, alice, flow, type1_only, quota_of_five, numbers
):
    assert ask(api, alice, flow, numbers(5)[:3]).status_code == 200
    assert ask(api, alice, flow, numbers(5)[3:]).status_code == 200
    assert ask(api, alice, flow, numbers(1)).status_code == 429


def test_a_refused_call_is_audited_and_looks_nothing_up(
    api, alice, flow, type1_only, quota_of_five, numbers, monkeypatch
):
    assert ask(api, alice, flow, numbers(4)).status_code == 200

    def boom(**kwargs):
        raise AssertionError("the register was looked up for a refused call")

    monkeypatch.setattr(register, "opt_out_register_for", boom)
    assert ask(api, alice, flow, numbers(2)).status_code == 429
    event = AuditEvent.objects.get(action="opt_out_register.quota_exceeded")
    assert event.actor == "alice"
    assert event.details["numbers"] == 2
    assert event.details["used"] == 4
    assert event.details["quota"] == 5
    assert AuditEvent.objects.filter(action="opt_out_register.checked").count() == 1


def test_another_person_s_quota_is_their_own(
    api, alice, bob, flow, type1_only, quota_of_five, numbers
):
    assert ask(api, alice, flow, numbers(5)).status_code == 200
    assert ask(api, alice, flow, numbers(1)).status_code == 429
    assert ask(api, bob, flow, numbers(5)).status_code == 200


def test_a_csu_admin_has_the_larger_quota(api, admin, flow, type1_only, quota_of_five, numbers):
    assert ask(api, admin, flow, numbers(8)).status_code == 200
    response = ask(api, admin, flow, numbers(1))
    assert response.status_code == 429
    assert "quota is 8 NHS numbers" in response.json()["detail"]


def test_a_call_larger_than_the_whole_quota_says_so(
    api, alice, flow, type1_only, quota_of_five, numbers
):
    response = ask(api, alice, flow, numbers(6))
    assert response.status_code == 429
    assert "more than the quota on its own" in response.json()["detail"]


def test_invalid_numbers_cost_no_quota(api, alice, flow, type1_only, quota_of_five, numbers):
    assert ask(api, alice, flow, [*numbers(4), "9434765918"]).status_code == 400
    assert ask(api, alice, flow, numbers(5)).status_code == 200


def test_a_flow_refused_with_a_409_gives_the_numbers_back(
    api, alice, flow, type1_only, quota_of_five, numbers
):
    DataFlow.objects.filter(pk=flow.pk).update(status="suspended", decision_comment="A reason.")
    assert ask(api, alice, flow, numbers(5)).status_code == 409
    DataFlow.objects.filter(pk=flow.pk).update(status="approved")
    assert ask(api, alice, flow, numbers(5)).status_code == 200


def test_the_window_frees_after_an_hour(
    api, alice, flow, type1_only, quota_of_five, numbers, monkeypatch
):
    assert ask(api, alice, flow, numbers(5)).status_code == 200
    assert ask(api, alice, flow, numbers(1)).status_code == 429
    later = time.time() + 3601
    monkeypatch.setattr(time, "time", lambda: later)  # the cache's expiry reads it too
    assert ask(api, alice, flow, numbers(5)).status_code == 200


def test_two_calls_at_once_never_share_the_same_headroom(settings, db):
    """Eight callers at once, three numbers each, under a quota of ten: three get through."""
    settings.PHM_REGISTER_CHECK_NUMBERS_PER_HOUR = 10
    user = UserFactory(username="hasty", role=User.Role.PRACTICE_MANAGER)
    results: list[str] = []
    barrier = threading.Barrier(8)

    def call() -> None:
        barrier.wait()
        try:
            register_quota_take(user=user, count=3)
            results.append("taken")
        except RegisterQuotaExceeded:
            results.append("refused")

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["refused"] * 5 + ["taken"] * 3


def test_the_quota_setting_is_read_by_role(settings, admin, alice):
    settings.PHM_REGISTER_CHECK_NUMBERS_PER_HOUR = 7
    settings.PHM_REGISTER_CHECK_ADMIN_NUMBERS_PER_HOUR = 70
    assert register_quota.register_quota_of(alice) == 7
    assert register_quota.register_quota_of(admin) == 70
