import datetime as dt

import pytest

from governance.models import Programme
from phm_portal.models import AuditEvent

NEW = {
    "slug": "newshire",
    "name": "Newshire PHM",
    "region": "Newshire",
    "start_date": "2026-09-07",
    "length_weeks": 22,
    "purposes": ["planning services", "monitoring safety"],
    "legal_bases": ["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"],
    "overseas_transfer": "none",
}


def test_legal_bases_catalogue_is_seeded(api, alice):
    body = api(alice).get("/api/v1/legal-bases/?page_size=500").json()
    codes = {b["code"] for b in body["results"]}
    assert {f"UK-GDPR-6-1-{c}" for c in "abcdef"} <= codes
    assert {f"UK-GDPR-9-2-{c}" for c in "abcdefghij"} <= codes
    assert {"COPI-REG-3", "CLDC-S251", "DPA2018-SCH1-P1-2"} <= codes
    e = next(b for b in body["results"] if b["code"] == "UK-GDPR-6-1-e")
    assert e["article"] == "6(1)(e)"
    assert "performance of a task carried out in the public interest" in e["text"]


def test_a_csu_admin_sets_up_a_programme_with_derived_end_date(api, admin):
    response = api(admin).post("/api/v1/programmes/", NEW, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["end_date"] == "2027-02-08"
    assert body["status"] == "planned"
    assert body["legal_bases"] == ["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"]
    assert AuditEvent.objects.filter(action="programme.created", object_id="newshire").exists()


@pytest.mark.parametrize("who", ["alice", "dpo_a", "auditor"])
def test_only_a_csu_admin_sets_up_programmes(api, who, request):
    assert (
        api(request.getfixturevalue(who))
        .post("/api/v1/programmes/", NEW, format="json")
        .status_code
        == 403
    )
    assert not Programme.objects.filter(slug="newshire").exists()


def test_an_unknown_legal_basis_is_named(api, admin):
    response = api(admin).post(
        "/api/v1/programmes/", {**NEW, "legal_bases": ["GDPR-99"]}, format="json"
    )
    assert response.status_code == 400
    assert "legal_bases" in response.json()
    assert not Programme.objects.exists()


def test_a_bad_length_is_named(api, admin):
    response = api(admin).post("/api/v1/programmes/", {**NEW, "length_weeks": 0}, format="json")
    assert response.status_code == 400
    assert "length_weeks" in response.json()


def test_patching_the_length_moves_the_end_date(api, admin, programme):
    response = api(admin).patch(
        "/api/v1/programmes/testshire/", {"length_weeks": 22}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["end_date"] == "2027-02-08"


def test_status_is_not_patched_directly(api, admin, programme):
    api(admin).patch("/api/v1/programmes/testshire/", {"status": "destroyed"}, format="json")
    programme.refresh_from_db()
    assert programme.status == Programme.Status.LIVE


def test_an_ended_programme_is_a_409_on_change(api, admin, programme):
    Programme.objects.filter(pk=programme.pk).update(status=Programme.Status.ENDED)
    response = api(admin).patch(
        "/api/v1/programmes/testshire/", {"length_weeks": 30}, format="json"
    )
    assert response.status_code == 409
    assert "ended" in response.json()["detail"]


def test_programmes_filter_by_status(api, alice, programme):
    assert api(alice).get("/api/v1/programmes/?status=live").json()["count"] == 1
    assert api(alice).get("/api/v1/programmes/?status=ended").json()["count"] == 0


def test_participants_are_listed(api, alice, programme):
    body = api(alice).get("/api/v1/programmes/testshire/participants/").json()
    assert {(p["organisation"], p["role"]) for p in body["results"]} == {
        ("A81001", "controller"),
        ("B82002", "controller"),
        ("0AR", "processor"),
    }


def test_a_csu_admin_adds_a_participant(api, admin, programme):
    from tests.factories import OrganisationFactory

    OrganisationFactory(ods_code="OPTUMUK", name="Optum", kind="commercial_processor")
    response = api(admin).post(
        "/api/v1/programmes/testshire/participants/",
        {"organisation": "OPTUMUK", "role": "processor", "responsibilities": ["link", "analyse"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    event = AuditEvent.objects.get(action="programme.participant_added")
    assert event.details == {
        "organisation": "OPTUMUK",
        "role": "processor",
        "responsibilities": ["link", "analyse"],
    }


def test_a_participant_twice_in_one_role_is_a_400(api, admin, programme):
    response = api(admin).post(
        "/api/v1/programmes/testshire/participants/",
        {"organisation": "0AR", "role": "processor"},
        format="json",
    )
    assert response.status_code == 400
    assert "already takes part" in str(response.json())


def test_a_practice_manager_cannot_add_participants(api, alice, programme, csu):
    response = api(alice).post(
        "/api/v1/programmes/testshire/participants/",
        {"organisation": "0AR", "role": "recipient"},
        format="json",
    )
    assert response.status_code == 403


def test_participants_of_an_unknown_programme_are_a_404(api, admin, db):
    assert api(admin).get("/api/v1/programmes/nowhere/participants/").status_code == 404


# --- dates past the last one the portal can hold ---------------------------------------
def test_a_programme_ending_after_9999_is_a_400_naming_the_length(api, admin):
    response = api(admin).post(
        "/api/v1/programmes/", {**NEW, "start_date": "9999-12-31", "length_weeks": 1}, format="json"
    )
    assert response.status_code == 400
    assert "9999-12-31" in response.json()["length_weeks"][0]
    assert not Programme.objects.exists()
    assert not AuditEvent.objects.filter(action="programme.created").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start_date": "9999-12-31", "length_weeks": 22}, "length_weeks"),
        ({"start_date": "9999-12-01"}, "start_date"),  # with the stored length (22 weeks)
        ({"length_weeks": 520, "start_date": "9999-01-01"}, "length_weeks"),
    ],
)
def test_patching_a_programme_past_9999_is_a_400_and_changes_nothing(
    api, admin, programme, body, field
):
    Programme.objects.filter(pk=programme.pk).update(
        status=Programme.Status.PLANNED, length_weeks=22
    )
    before = Programme.objects.values().get(pk=programme.pk)
    response = api(admin).patch("/api/v1/programmes/testshire/", body, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert "cannot last" in response.json()[field][0]
    assert Programme.objects.values().get(pk=programme.pk) == before
    assert not AuditEvent.objects.filter(action="programme.updated").exists()


def test_a_programme_ending_on_the_last_day_is_accepted(api, admin):
    response = api(admin).post(
        "/api/v1/programmes/", {**NEW, "start_date": "9999-12-24", "length_weeks": 1}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["end_date"] == "9999-12-31"


def test_the_service_names_the_length_when_it_is_far_too_long(admin):
    from governance import services
    from phm_portal.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        services.programme_create(
            actor=admin,
            data={**NEW, "start_date": dt.date(2026, 1, 5), "length_weeks": 10**9},
            legal_basis_codes=[],
        )
    assert refused.value.field == "length_weeks"
    assert not Programme.objects.exists()
