import pytest

from governance.models import Organisation
from phm_portal.models import AuditEvent

NEW = {
    "ods_code": "Q12345",
    "name": "New Trust",
    "kind": "nhs_trust",
    "dpo_email": "dpo@trust.example.nhs.uk",
}


def test_signed_in_people_list_organisations_paginated(api, alice, practice_b):
    body = api(alice).get("/api/v1/organisations/?page_size=1").json()
    assert body["count"] == 2
    assert len(body["results"]) == 1
    assert body["next"].endswith("page=2&page_size=1")


def test_organisations_filter_by_kind_and_search(api, alice, csu, practice_b):
    assert [
        o["ods_code"] for o in api(alice).get("/api/v1/organisations/?kind=csu").json()["results"]
    ] == ["0AR"]
    assert [
        o["ods_code"] for o in api(alice).get("/api/v1/organisations/?q=LS2").json()["results"]
    ] == ["B82002"]


def test_anonymous_cannot_list_organisations(api, db):
    assert api().get("/api/v1/organisations/").status_code == 401


def test_a_csu_admin_adds_an_organisation_and_it_is_audited(api, admin):
    response = api(admin).post("/api/v1/organisations/", NEW, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["ods_code"] == "Q12345"
    assert Organisation.objects.filter(ods_code="Q12345", name="New Trust").exists()
    event = AuditEvent.objects.get(action="organisation.created")
    assert (event.actor, event.object_id) == ("csu-admin", "Q12345")


@pytest.mark.parametrize("who", ["alice", "dpo_a", "auditor"])
def test_only_a_csu_admin_adds_organisations(api, who, request):
    response = api(request.getfixturevalue(who)).post("/api/v1/organisations/", NEW, format="json")
    assert response.status_code == 403
    assert not Organisation.objects.filter(ods_code="Q12345").exists()


def test_a_duplicate_ods_code_is_a_400_naming_the_field(api, admin, practice_a):
    response = api(admin).post(
        "/api/v1/organisations/", {**NEW, "ods_code": "A81001"}, format="json"
    )
    assert response.status_code == 400
    assert "ods_code" in response.json()


def test_a_malformed_ods_code_is_a_400_naming_the_field(api, admin):
    response = api(admin).post("/api/v1/organisations/", {**NEW, "ods_code": "Q1-2"}, format="json")
    assert response.status_code == 400
    assert "3 to 9 capital letters" in response.json()["ods_code"][0]


def test_a_csu_admin_changes_an_organisation(api, admin, practice_a):
    response = api(admin).patch(
        "/api/v1/organisations/a81001/", {"dpo_name": "Dee Poe"}, format="json"
    )
    assert response.status_code == 200
    practice_a.refresh_from_db()
    assert practice_a.dpo_name == "Dee Poe"
    assert AuditEvent.objects.get(action="organisation.updated").details["changed"]["dpo_name"] == [
        "",
        "Dee Poe",
    ]


def test_a_practice_manager_cannot_change_even_their_own_practice(api, alice, practice_a):
    response = api(alice).patch(
        "/api/v1/organisations/A81001/", {"name": "Hijacked"}, format="json"
    )
    assert response.status_code == 403
    practice_a.refresh_from_db()
    assert practice_a.name == "Practice A Surgery"


def test_an_ods_code_cannot_change(api, admin, practice_a):
    response = api(admin).patch(
        "/api/v1/organisations/A81001/", {"ods_code": "A81009"}, format="json"
    )
    assert response.status_code == 400
    assert "ods_code" in response.json()


def test_an_unknown_organisation_is_a_404(api, admin):
    assert api(admin).get("/api/v1/organisations/NOPE1/").status_code == 404
