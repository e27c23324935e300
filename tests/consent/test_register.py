import datetime as dt

import pytest

from consent import services
from consent.register import opt_out_register_check
from governance.models import DataFlow, Programme
from governance.permissions import bind
from phm_portal.errors import InvalidInput, NotAllowedNow
from phm_portal.models import AuditEvent
from tests.factories import OrganisationFactory, PracticeFactory

URL = "/api/v1/opt-outs/check/"


@pytest.fixture
def type1_only(programme):
    """The programme under an exemption from the national data opt-out."""
    Programme.objects.filter(pk=programme.pk).update(
        national_opt_out_applies=False,
        national_opt_out_exemption="Section 251 support (CAG reference 99/CAG/0000).",
    )
    programme.refresh_from_db()
    return programme


def ask(api, user, flow, numbers):
    return api(user).post(URL, {"data_flow": flow.pk, "nhs_numbers": numbers}, format="json")


def test_a_current_dissent_at_a_practice_of_the_programme_leaves_the_patient_out(
    api, admin, flow, type1_only, record, numbers
):
    a, b, c = numbers(3)
    record(a)
    response = ask(api, admin, flow, [a, b, c])
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["excluded"] == [{"nhs_number": a, "reasons": ["type1"]}]
    assert body["allowed"] == 2
    assert body["national_opt_out_applies"] is False
    assert body["national_opt_out_exemption"].startswith("Section 251")


def test_a_dissent_at_another_practice_of_the_programme_applies_to_every_flow_of_it(
    admin, flow, type1_only, record, numbers, charlie, practice_b
):
    (a,) = numbers(1)
    record(a, practice=practice_b, by=charlie)
    result = opt_out_register_check(data_flow=flow, nhs_numbers=[a])
    assert result.excluded == [(a, ["type1"])]


def test_a_dissent_at_a_practice_outside_the_programme_does_not_apply(
    flow, type1_only, numbers, alice
):
    (a,) = numbers(1)
    elsewhere = PracticeFactory(ods_code="C83003")
    bind(alice, elsewhere)
    services.type1_opt_out_record(
        actor=alice, practice=elsewhere, nhs_number=a, event="dissent", method="phone",
        recorded_on=dt.date.today(),
    )  # fmt: skip
    assert opt_out_register_check(data_flow=flow, nhs_numbers=[a]).excluded == []


def test_a_withdrawn_dissent_no_longer_leaves_the_patient_out(flow, type1_only, record, numbers):
    (a,) = numbers(1)
    record(a, on=dt.date.today() - dt.timedelta(days=5))
    record(a, "withdrawal", on=dt.date.today() - dt.timedelta(days=1))
    result = opt_out_register_check(data_flow=flow, nhs_numbers=[a, a])
    assert (result.excluded, result.allowed) == ([], 2)


def test_type1_is_not_applied_where_the_programme_says_so(flow, type1_only, record, numbers):
    (a,) = numbers(1)
    record(a)
    Programme.objects.filter(pk=type1_only.pk).update(type1_opt_out_applies=False)
    flow.programme.refresh_from_db()
    result = opt_out_register_check(data_flow=flow, nhs_numbers=[a])
    assert (result.excluded, result.type1_applies) == ([], False)


def test_the_national_check_leaves_out_the_opted_out_and_the_unchecked(
    api, admin, flow, national_check, record, numbers
):
    a, b, c, d = numbers(4)
    record(a)
    national_check([a, b, c], [a, c])
    body = ask(api, admin, flow, [a, b, c, d]).json()
    assert body["excluded"] == [
        {"nhs_number": a, "reasons": ["type1"]},
        {"nhs_number": b, "reasons": ["national"]},
        {"nhs_number": d, "reasons": ["national_unchecked"]},
    ]
    assert body["allowed"] == 1
    assert body["counts"] == {"type1": 1, "national": 1, "national_unchecked": 1}
    assert (
        body["national_check"]["expires_on"]
        == (dt.date.today() + dt.timedelta(days=30)).isoformat()
    )


def test_the_newest_check_decides(flow, national_check, numbers):
    a, b = numbers(2)
    national_check([a, b], [a], checked_on=dt.date.today() - dt.timedelta(days=5))
    national_check([b], [b])  # b withdrew the national opt-out since
    result = opt_out_register_check(data_flow=flow, nhs_numbers=[a, b])
    assert result.excluded == []


def test_a_flow_without_an_unexpired_national_check_is_refused(api, admin, flow, numbers):
    (a,) = numbers(1)
    response = ask(api, admin, flow, [a])
    assert response.status_code == 409
    assert "no unexpired national check" in response.json()["detail"]


def test_a_flow_whose_check_has_expired_is_refused_until_a_new_one(
    api, admin, flow, national_check, numbers
):
    (a,) = numbers(1)
    national_check([a], [a], checked_on=dt.date.today() - dt.timedelta(days=29))
    assert ask(api, admin, flow, [a]).status_code == 200
    # the day after, the periodic purge ran
    services.national_checks_purge_expired(today=dt.date.today() + dt.timedelta(days=1))
    assert ask(api, admin, flow, [a]).status_code == 409
    national_check([a], [a])
    assert ask(api, admin, flow, [a]).status_code == 200


@pytest.mark.parametrize("status", ["draft", "submitted", "rejected", "suspended", "closed"])
def test_a_flow_that_is_not_approved_is_refused(api, admin, flow, type1_only, status, numbers):
    DataFlow.objects.filter(pk=flow.pk).update(status=status, decision_comment="A reason.")
    assert ask(api, admin, flow, numbers(1)).status_code == 409


def test_invalid_numbers_are_a_400_naming_each_item(api, admin, flow, type1_only, numbers):
    (a,) = numbers(1)
    response = ask(api, admin, flow, [a, "9434765918", 12, "943 476 5919"])
    assert response.status_code == 400
    body = response.json()
    assert "nhs_numbers" in body
    assert [d["index"] for d in body["details"]] == [1, 2]


@pytest.mark.parametrize(
    "payload",
    [{"data_flow": "x", "nhs_numbers": ["9434765919"]}, {"nhs_numbers": ["9434765919"]}],
)
def test_a_missing_or_malformed_flow_id_is_a_400(api, admin, payload, flow):
    response = api(admin).post(URL, payload, format="json")
    assert response.status_code == 400
    assert "data_flow" in response.json()


def test_an_unknown_flow_is_a_404(api, admin, flow):
    payload = {"data_flow": flow.pk + 1000, "nhs_numbers": ["9434765919"]}
    assert api(admin).post(URL, payload, format="json").status_code == 404


@pytest.mark.parametrize("numbers_value", [[], "9434765919", None])
def test_the_numbers_must_be_a_non_empty_list(api, admin, flow, numbers_value):
    response = api(admin).post(
        URL, {"data_flow": flow.pk, "nhs_numbers": numbers_value}, format="json"
    )
    assert response.status_code == 400
    assert "nhs_numbers" in response.json()


def test_a_party_to_the_flow_may_ask(api, alice, flow, type1_only, numbers):
    assert ask(api, alice, flow, numbers(1)).status_code == 200


def test_someone_who_is_not_a_party_gets_a_404(api, charlie, dpo_a, flow, type1_only, numbers):
    other = OrganisationFactory(ods_code="RX1")
    DataFlow.objects.filter(pk=flow.pk).update(destination=other)
    # charlie's practice takes part in the programme but is no party to this flow
    assert ask(api, charlie, flow, numbers(1)).status_code == 404


def test_the_question_is_audited_with_counts_only(api, admin, flow, type1_only, record, numbers):
    a, b = numbers(2)
    record(a)
    ask(api, admin, flow, [a, b])
    event = AuditEvent.objects.get(action="opt_out_register.checked")
    assert event.details["numbers"] == 2
    assert event.details["excluded"]["type1"] == 1
    assert event.details["national_opt_out_exemption"].startswith("Section 251")
    assert a not in str(event.details)


def test_the_selector_raises_domain_errors_for_the_pseudonymisation_job(flow, numbers):
    with pytest.raises(NotAllowedNow):
        opt_out_register_check(data_flow=flow, nhs_numbers=numbers(1))
    Programme.objects.filter(pk=flow.programme_id).update(
        national_opt_out_applies=False, national_opt_out_exemption="COPI notice"
    )
    flow.programme.refresh_from_db()
    with pytest.raises(InvalidInput):
        opt_out_register_check(data_flow=flow, nhs_numbers=["0000000000x"])


def _by_number(flow, numbers):
    import numpy as np

    from consent.register import opt_out_register_for

    register = opt_out_register_for(data_flow=flow)
    return register.reasons_by_number(np.array(sorted(int(n) for n in numbers), dtype=np.int64))


def test_a_job_asking_by_integer_gets_the_same_answers_under_type1_only(
    flow, type1_only, record, numbers
):
    a, b = numbers(2)
    record(a)
    assert _by_number(flow, [a, b]) == {int(a): ["type1"]}


def test_a_job_asking_by_integer_gets_the_same_answers_with_the_national_check(
    flow, national_check, record, numbers
):
    a, b, c, d = numbers(4)
    record(a)
    national_check([a, b, c], [a, c])
    assert _by_number(flow, [a, b, c, d]) == {
        int(a): ["type1"],
        int(b): ["national"],
        int(d): ["national_unchecked"],
    }


def test_a_worker_reads_the_dissents_again_whenever_an_event_was_recorded(
    flow, type1_only, record, numbers, monkeypatch, alice, practice_a
):
    """The dissents a process decrypted are used again only while the practices' events
    are the same: a dissent, a withdrawal, or an event committed late with a lower id is
    seen by the very next look-up; with nothing new, nothing is decrypted again."""
    from consent import selectors
    from consent.models import Type1Event

    a, b, c = numbers(3)
    decrypted = []
    decrypt = selectors.decrypt_field
    monkeypatch.setattr(
        selectors, "decrypt_field", lambda *args, **kw: decrypted.append(1) or decrypt(*args, **kw)
    )

    def excluded():
        return opt_out_register_check(data_flow=flow, nhs_numbers=[a, b, c]).excluded

    record(a)
    assert excluded() == [(a, ["type1"])]
    read = len(decrypted)
    assert excluded() == [(a, ["type1"])]
    assert len(decrypted) == read  # nothing recorded since: not decrypted again
    record(b)
    assert excluded() == [(a, ["type1"]), (b, ["type1"])]
    record(a, "withdrawal", on=dt.date.today())
    assert excluded() == [(b, ["type1"])]
    # An event whose transaction took its id before the newest one's and committed after
    # it: the newest id is the same, the count is not.
    late = record(c)  # c's dissent, moved below a newer event's id
    newer = Type1Event.objects.get(pk=late.pk - 1)  # a's withdrawal, again, with a higher id
    newer.pk, newer._state.adding = late.pk + 10, True
    newer.save(force_insert=True)
    lower = Type1Event.objects.get(pk=late.pk)
    assert excluded() == [(b, ["type1"]), (c, ["type1"])]
    lower.pk, lower._state.adding = late.pk + 5, True  # committed late, below the newest id
    lower.patient = Type1Event.objects.get(pk=newer.pk).patient  # for a: a dissents anew
    lower.recorded_on = dt.date.today() + dt.timedelta(days=1)
    lower.save(force_insert=True)
    assert Type1Event.objects.latest("pk").pk == newer.pk  # the newest id did not change
    assert excluded() == [(a, ["type1"]), (b, ["type1"]), (c, ["type1"])]
