"""GET/POST /api/v1/data-flows/ and its workflow actions (API.md "governance")."""

import pytest

from governance.models import DataFlow
from phm_portal.models import AuditEvent
from tests.assurance import assure_flow
from tests.governance.conftest import BASES

URL = "/api/v1/data-flows/"


def _body(**extra):
    return {
        "programme": "testshire",
        "source": "A81001",
        "destination": "0AR",
        "data_categories": ["gp"],
        "identifiability": "identifiable",
        "legal_bases": BASES,
        "purpose": "Send GP records to the CSU.",
        "dpia_reference": "DPIA-T-1",
        "dsa_reference": "DSA-T-1",
    } | extra


# --- creating ------------------------------------------------------------------------
def test_a_csu_admin_creates_a_draft_flow(api, admin, programme):
    response = api(admin).post(URL, _body(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in ("programme", "source", "destination", "status")} == {
        "programme": "testshire",
        "source": "A81001",
        "destination": "0AR",
        "status": "draft",
    }
    assert body["data_categories"] == ["gp"]
    assert body["legal_bases"] == BASES
    assert body["created_by"] == "csu-admin"
    assert body["is_approved"] is False
    assert [e["action"] for e in body["history"]] == ["data_flow.created"]
    assert DataFlow.objects.get(pk=body["id"]).dsa_reference == "DSA-T-1"


def test_a_dpo_creates_a_flow_from_their_own_organisation(api, dpo_a, programme):
    response = api(dpo_a).post(URL, _body(), format="json")
    assert response.status_code == 201
    assert response.json()["created_by"] == "dpo-a"


def test_a_dpo_of_another_organisation_is_refused(api, dpo_b, programme):
    response = api(dpo_b).post(URL, _body(), format="json")
    assert response.status_code == 403
    assert "only from your own organisation" in response.json()["detail"]
    assert not DataFlow.objects.exists()


def test_a_practice_manager_cannot_create_a_flow(api, alice, programme):
    response = api(alice).post(URL, _body(), format="json")
    assert response.status_code == 403
    assert not DataFlow.objects.exists()


def test_creating_needs_sign_in(api, programme):
    assert api().post(URL, _body(), format="json").status_code == 401


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"data_categories": ["genome"]}, "data_categories"),
        ({"data_categories": []}, "data_categories"),
        ({"identifiability": "sort-of"}, "identifiability"),
        ({"legal_bases": ["GDPR-99"]}, "legal_bases"),
        ({"destination": "NOPE1"}, "destination"),
        ({"programme": "nowhere"}, "programme"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, admin, programme, change, field):
    response = api(admin).post(URL, _body(**change), format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not DataFlow.objects.exists()


def test_an_organisation_outside_the_programme_is_a_400_naming_it(api, admin, programme):
    from tests.factories import OrganisationFactory

    OrganisationFactory(ods_code="RXX", name="Elsewhere Trust", kind="nhs_trust")
    response = api(admin).post(URL, _body(destination="RXX"), format="json")
    assert response.status_code == 400
    assert response.json() == {
        "destination": ["Elsewhere Trust does not take part in Testshire PHM."]
    }


# --- reading ------------------------------------------------------------------------------
def test_the_list_shows_only_the_flows_the_caller_may_see(api, draft, charlie, alice, admin):
    assert api(charlie).get(URL).json()["count"] == 0
    assert [f["id"] for f in api(alice).get(URL).json()["results"]] == [draft.pk]
    assert api(admin).get(URL).json()["count"] == 1


@pytest.mark.parametrize("who", ["charlie", "dpo_b", "auditor"])
def test_an_outsider_reading_a_flow_gets_404(api, draft, who, request):
    response = api(request.getfixturevalue(who)).get(f"{URL}{draft.pk}/")
    assert response.status_code == 404


def test_a_party_reads_a_flow_with_its_history(api, approved, bob):
    body = api(bob).get(f"{URL}{approved.pk}/").json()
    assert body["status"] == "approved"
    assert body["decided_by"] == "csu-admin-2"
    assert [(e["action"], e["actor"]) for e in body["history"]] == [
        ("data_flow.created", "csu-admin"),
        ("data_flow.submitted", "csu-admin"),
        ("data_flow.approved", "csu-admin-2"),
    ]
    assert body["history"][2]["details"]["comment"] == "DPIA and DSA checked."


def test_an_unknown_flow_is_a_404(api, admin):
    assert api(admin).get(f"{URL}999999/").status_code == 404


def test_the_list_filters_on_programme_status_source_and_destination(
    api, admin, approved, practice_b, csu, programme
):
    from governance import services

    other = services.data_flow_create(
        actor=admin,
        programme=programme,
        source=practice_b,
        destination=csu,
        data_categories=["gp"],
        identifiability="identifiable",
    )
    client = api(admin)

    def ids(query):
        response = client.get(URL + query)
        assert response.status_code == 200
        return [f["id"] for f in response.json()["results"]]

    assert ids("?programme=testshire") == [approved.pk, other.pk]
    assert ids("?programme=elsewhere") == []
    assert ids("?status=approved") == [approved.pk]
    assert ids("?status=draft") == [other.pk]
    assert ids("?source=b82002") == [other.pk]
    assert ids("?destination=0AR&status=approved") == [approved.pk]
    assert ids("?organisation=A81001") == [approved.pk]
    assert client.get(URL + "?status=bogus").status_code == 400


def test_the_list_is_paginated(api, admin, draft):
    body = api(admin).get(URL + "?page_size=1").json()
    assert set(body) == {"count", "next", "previous", "results"}


# --- changing a draft -------------------------------------------------------------------------
def test_patch_changes_a_draft(api, admin, draft):
    response = api(admin).patch(
        f"{URL}{draft.pk}/",
        {"data_categories": ["gp", "community"], "legal_bases": ["UK-GDPR-6-1-e"]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["data_categories"] == ["gp", "community"]
    assert response.json()["legal_bases"] == ["UK-GDPR-6-1-e"]


def test_patch_on_a_submitted_flow_is_a_409(api, admin, submitted):
    response = api(admin).patch(f"{URL}{submitted.pk}/", {"purpose": "x"}, format="json")
    assert response.status_code == 409
    assert "Only a draft flow can change" in response.json()["detail"]


def test_patch_by_an_outsider_is_a_404(api, charlie, draft):
    response = api(charlie).patch(f"{URL}{draft.pk}/", {"purpose": "x"}, format="json")
    assert response.status_code == 404


def test_patch_by_a_practice_manager_party_is_a_403(api, alice, draft):
    response = api(alice).patch(f"{URL}{draft.pk}/", {"purpose": "x"}, format="json")
    assert response.status_code == 403


# --- the workflow -------------------------------------------------------------------------------
def test_the_whole_workflow_through_the_api(api, admin, admin2, programme):
    drafter, decider = api(admin), api(admin2)
    flow_id = drafter.post(URL, _body(), format="json").json()["id"]
    assure_flow(DataFlow.objects.get(pk=flow_id))
    steps = [
        (drafter, "submit", {}, "submitted"),
        (decider, "approve", {"comment": "Checked."}, "approved"),
        (decider, "suspend", {"reason": "DSA review."}, "suspended"),
        (decider, "request-reinstatement", {"comment": "DSA renewed."}, "suspended"),
        (drafter, "reinstate", {"comment": "DSA renewed."}, "approved"),
        (drafter, "close", {}, "closed"),
    ]
    for client, action, body, status in steps:
        response = client.post(f"{URL}{flow_id}/{action}/", body, format="json")
        assert response.status_code == 200, (action, response.content)
        assert response.json()["status"] == status
    events = AuditEvent.objects.filter(object_type="governance.dataflow", object_id=str(flow_id))
    assert list(events.values_list("action", flat=True)) == [
        "data_flow.created",
        "data_flow.submitted",
        "data_flow.approved",
        "data_flow.suspended",
        "data_flow.reinstatement_requested",
        "data_flow.reinstated",
        "data_flow.closed",
    ]


def test_reject_records_the_reason(api, admin2, submitted):
    response = api(admin2).post(
        f"{URL}{submitted.pk}/reject/", {"reason": "DSA expired."}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["decision_comment"]) == (
        "rejected",
        "DSA expired.",
    )


def test_reject_without_a_reason_is_a_400_naming_reason(api, admin2, submitted):
    response = api(admin2).post(f"{URL}{submitted.pk}/reject/", {}, format="json")
    assert response.status_code == 400
    assert response.json() == {"reason": ["Say why the flow is rejected."]}
    submitted.refresh_from_db()
    assert submitted.status == "submitted"


def test_the_submitter_approving_is_a_403(api, admin, submitted):
    response = api(admin).post(f"{URL}{submitted.pk}/approve/", {}, format="json")
    assert response.status_code == 403
    assert "four eyes" in response.json()["detail"]


def test_a_dpo_party_approving_is_a_403(api, dpo_a, submitted):
    assert api(dpo_a).post(f"{URL}{submitted.pk}/approve/", {}).status_code == 403


def test_an_outsider_approving_is_a_404(api, charlie, submitted):
    assert api(charlie).post(f"{URL}{submitted.pk}/approve/", {}).status_code == 404


def test_submit_by_someone_other_than_the_author_is_a_403(api, admin2, draft):
    assert api(admin2).post(f"{URL}{draft.pk}/submit/").status_code == 403


def test_an_impossible_transition_is_a_409_saying_the_state(api, admin2, approved):
    response = api(admin2).post(f"{URL}{approved.pk}/approve/", {}, format="json")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "This flow cannot be approved now: it is approved. "
        "Only a flow that is awaiting decision can be approved."
    )


@pytest.mark.parametrize("action", ["suspend", "reinstate", "close"])
def test_a_practice_manager_party_cannot_suspend_reinstate_or_close(api, alice, approved, action):
    assert api(alice).post(f"{URL}{approved.pk}/{action}/").status_code == 403


# --- the schema ---------------------------------------------------------------------------------
def test_the_schema_describes_the_data_flow_endpoints(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    for path in [
        "/api/v1/data-flows/",
        "/api/v1/data-flows/{id}/",
        "/api/v1/data-flows/{id}/submit/",
        "/api/v1/data-flows/{id}/approve/",
        "/api/v1/data-flows/{id}/reject/",
        "/api/v1/data-flows/{id}/suspend/",
        "/api/v1/data-flows/{id}/reinstate/",
        "/api/v1/data-flows/{id}/close/",
        "/api/v1/organisations/{ods_code}/record-of-processing/",
    ]:
        assert path in paths, path
    assert set(paths["/api/v1/data-flows/"]) >= {"get", "post"}
    assert "patch" in paths["/api/v1/data-flows/{id}/"]
    list_params = {p["name"] for p in paths["/api/v1/data-flows/"]["get"]["parameters"]}
    assert {"programme", "status", "source", "destination", "page_size"} <= list_params
    reject = paths["/api/v1/data-flows/{id}/reject/"]["post"]["requestBody"]["content"]
    ref = reject["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "reason" in schema["components"]["schemas"][ref]["properties"]
