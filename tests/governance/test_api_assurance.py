"""/api/v1/dpias/, /api/v1/sharing-agreements/, organisations' assurance fields, and a flow's
`assurance` and the gate, through the API (issue 17)."""

from __future__ import annotations

import base64
import datetime as dt
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from pypdf import PdfWriter

from governance import services
from governance.models import DPIA, DataFlow, Organisation, SharingAgreement, User
from tests.assurance import pdf
from tests.factories import OrganisationFactory, UserFactory

TODAY = timezone.localdate()
DPIAS = "/api/v1/dpias/"
AGREEMENTS = "/api/v1/sharing-agreements/"
FLOWS = "/api/v1/data-flows/"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _dpia_body(**extra):
    return {
        "programme": "testshire",
        "title": "Testshire DPIA",
        "version": "1.0",
        "description": "Linking records to offer support.",
        "necessity": "Pseudonymised, the fields listed only.",
        "review_date": (TODAY + dt.timedelta(days=365)).isoformat(),
        "risks": [
            {
                "description": "Small numbers identify people.",
                "likelihood": "possible",
                "severity": "significant",
                "measure": "Suppress counts under 10.",
            }
        ],
    } | extra


def _agreement_body(**extra):
    return {
        "programme": "testshire",
        "title": "Testshire DSA",
        "purpose": "Population health management.",
        "parties": ["A81001", "0AR"],
        "legal_bases": ["UK-GDPR-6-1-e"],
        "start_date": (TODAY - dt.timedelta(days=1)).isoformat(),
        "review_date": (TODAY + dt.timedelta(days=100)).isoformat(),
        "expiry_date": (TODAY + dt.timedelta(days=365)).isoformat(),
    } | extra


@pytest.fixture
def outsider_dpo(db):
    """A DPO of an organisation that takes no part in the programme."""
    return UserFactory(
        username="dpo-x",
        role=User.Role.DPO,
        organisations=[OrganisationFactory(ods_code="X99999", name="Elsewhere")],
    )


@pytest.fixture
def dpia(admin, programme, unassured_draft):
    return services.dpia_create(
        actor=admin,
        programme=programme,
        title="Testshire DPIA",
        description="d",
        necessity="n",
        review_date=TODAY + dt.timedelta(days=365),
        data_flow_ids=[unassured_draft.pk],
        document=pdf(),
        document_name="dpia.pdf",
    )


@pytest.fixture
def agreement(admin, programme, unassured_draft):
    return services.sharing_agreement_create(
        actor=admin,
        programme=programme,
        title="Testshire DSA",
        purpose="PHM",
        start_date=TODAY - dt.timedelta(days=1),
        review_date=TODAY + dt.timedelta(days=100),
        expiry_date=TODAY + dt.timedelta(days=365),
        party_ods_codes=["A81001", "0AR"],
        data_flow_ids=[unassured_draft.pk],
    )


# --- DPIAs -----------------------------------------------------------------------------------
def test_a_csu_admin_creates_a_dpia_with_its_pdf_and_downloads_it(api, admin, unassured_draft):
    document = pdf()
    body = _dpia_body(
        data_flows=[unassured_draft.pk], document=b64(document), document_name="dpia-v1.pdf"
    )
    response = api(admin).post(DPIAS, body, format="json")
    assert response.status_code == 201, response.content
    answer = response.json()
    assert {k: answer[k] for k in ("programme", "status", "data_flows", "has_document")} == {
        "programme": "testshire",
        "status": "draft",
        "data_flows": [unassured_draft.pk],
        "has_document": True,
    }
    assert "document" not in answer  # written only
    assert answer["risks"][0]["likelihood"] == "possible"
    assert answer["awaiting_sign_off"] == ["A81001", "B82002"]
    download = api(admin).get(f"{DPIAS}{answer['id']}/document/")
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    assert download.content == document
    assert 'filename="dpia-v1.pdf"' in download["Content-Disposition"]


@pytest.mark.parametrize(
    "document",
    [b64(b"MZ\x90\x00 not a pdf"), b64(b"%PDF-1.4\n<html>crafted</html>"), "not base64!", 12],
)
def test_a_document_that_is_not_a_pdf_is_a_400_naming_document(api, admin, programme, document):
    response = api(admin).post(DPIAS, _dpia_body(document=document), format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["document"]
    assert not DPIA.objects.exists()


def test_a_flow_of_another_programme_is_a_400_naming_data_flows(api, admin, programme):
    response = api(admin).post(DPIAS, _dpia_body(data_flows=[987654]), format="json")
    assert response.status_code == 400
    assert "data_flows" in response.json()
    assert not DPIA.objects.exists()


def test_a_bad_risk_is_a_400_naming_risks(api, admin, programme):
    body = _dpia_body()
    body["risks"][0]["severity"] = "catastrophic"
    response = api(admin).post(DPIAS, body, format="json")
    assert response.status_code == 400
    assert "risks" in response.json()
    assert not DPIA.objects.exists()


@pytest.mark.parametrize("who", ["alice", "auditor", "signatory_a", "dpo_csu", "outsider_dpo"])
def test_who_may_not_create_a_dpia_gets_a_403(api, who, programme, request):
    response = api(request.getfixturevalue(who)).post(DPIAS, _dpia_body(), format="json")
    assert response.status_code == 403
    assert not DPIA.objects.exists()


def test_the_programmes_people_and_auditors_read_dpias_and_outsiders_do_not(
    api, dpia, alice, auditor, outsider_dpo
):
    for user in (alice, auditor):
        assert [d["id"] for d in api(user).get(DPIAS).json()["results"]] == [dpia.pk]
        assert api(user).get(f"{DPIAS}{dpia.pk}/").status_code == 200
    assert api(outsider_dpo).get(DPIAS).json()["results"] == []
    assert api(outsider_dpo).get(f"{DPIAS}{dpia.pk}/").status_code == 404
    assert api(outsider_dpo).get(f"{DPIAS}{dpia.pk}/document/").status_code == 404
    assert api().get(DPIAS).status_code in (401, 403)


def test_dpias_are_filtered_by_programme(api, admin, dpia):
    assert len(api(admin).get(DPIAS, {"programme": "testshire"}).json()["results"]) == 1
    assert api(admin).get(DPIAS, {"programme": "nowhere"}).json()["results"] == []


def test_an_auditor_reads_but_does_not_change(api, auditor, dpia):
    response = api(auditor).patch(f"{DPIAS}{dpia.pk}/", {"title": "Mine"}, format="json")
    assert response.status_code == 403
    assert DPIA.objects.get(pk=dpia.pk).title == "Testshire DPIA"


def test_the_whole_dpia_through_the_api(
    api, dpia, admin, dpo_a, signatory_a, signatory_b, unassured_draft
):
    url = f"{DPIAS}{dpia.pk}/"
    response = api(admin).patch(url, {"version": "1.1", "risks": []}, format="json")
    assert (response.status_code, response.json()["version"]) == (200, "1.1")
    response = api(dpo_a).post(
        f"{url}dpo-advice/", {"advice": "Go ahead.", "followed": True}, format="json"
    )
    assert (response.status_code, response.json()["status"]) == (200, "dpo_advice")
    assert response.json()["dpo_advice_by"] == "dpo-a"
    response = api(signatory_a).post(f"{url}sign-off/", {"organisation": "A81001"}, format="json")
    assert response.json()["awaiting_sign_off"] == ["B82002"]
    response = api(signatory_b).post(f"{url}sign-off/", {"organisation": "B82002"}, format="json")
    assert (response.status_code, response.json()["status"]) == (200, "signed_off")
    assert [s["signatory"] for s in response.json()["sign_offs"]] == ["siro-a", "siro-b"]
    response = api(admin).patch(url, {"title": "Changed"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "dpia_not_editable"
    response = api(admin).post(f"{url}start-review/")
    assert (response.status_code, response.json()["status"]) == (200, "under_review")


def test_a_signatory_of_another_organisation_is_a_400_naming_organisation(
    api, dpia, dpo_a, signatory_a
):
    api(dpo_a).post(f"{DPIAS}{dpia.pk}/dpo-advice/", {"advice": "Go.", "followed": True})
    response = api(signatory_a).post(
        f"{DPIAS}{dpia.pk}/sign-off/", {"organisation": "B82002"}, format="json"
    )
    assert response.status_code == 400
    assert "organisation" in response.json()
    assert not DPIA.objects.get(pk=dpia.pk).sign_offs.exists()


@pytest.mark.parametrize("who", ["alice", "admin", "dpo_csu", "signatory_a", "auditor"])
def test_only_a_controllers_dpo_records_advice(api, dpia, who, request):
    response = api(request.getfixturevalue(who)).post(
        f"{DPIAS}{dpia.pk}/dpo-advice/", {"advice": "x", "followed": True}, format="json"
    )
    assert response.status_code == 403
    assert DPIA.objects.get(pk=dpia.pk).status == "draft"


def test_advice_not_followed_without_a_reason_is_a_400(api, dpia, dpo_a):
    response = api(dpo_a).post(
        f"{DPIAS}{dpia.pk}/dpo-advice/", {"advice": "No.", "followed": False}, format="json"
    )
    assert response.status_code == 400
    assert "not_followed_reason" in response.json()


@pytest.mark.parametrize("pk", ["0", "99999999999999999999", "12"])
def test_odd_ids_are_404(api, admin, pk, db):
    assert api(admin).get(f"{DPIAS}{pk}/").status_code == 404
    assert api(admin).get(f"{AGREEMENTS}{pk}/").status_code == 404


def test_a_dpia_without_a_document_has_none_to_download(api, admin, programme):
    dpia = services.dpia_create(
        actor=admin,
        programme=programme,
        title="t",
        description="d",
        necessity="n",
        review_date=TODAY,
    )
    assert api(admin).get(f"{DPIAS}{dpia.pk}/document/").status_code == 404


# --- agreements -----------------------------------------------------------------------------------
def test_an_agreement_is_created_signed_and_read(
    api, admin, signatory_a, signatory_csu, unassured_draft
):
    response = api(admin).post(
        AGREEMENTS,
        _agreement_body(data_flows=[unassured_draft.pk], document=b64(pdf())),
        format="json",
    )
    assert response.status_code == 201, response.content
    answer = response.json()
    assert [p["organisation"] for p in answer["parties"]] == ["A81001", "0AR"] or [
        p["organisation"] for p in answer["parties"]
    ] == ["0AR", "A81001"]
    assert answer["fully_signed"] is False
    url = f"{AGREEMENTS}{answer['id']}/"
    response = api(signatory_a).post(f"{url}sign/", {"organisation": "A81001"}, format="json")
    assert response.status_code == 200
    response = api(signatory_csu).post(
        f"{url}sign/",
        {"organisation": "0AR", "signed_on": TODAY.isoformat()},
        format="json",
    )
    assert response.json()["fully_signed"] is True
    signed = {p["organisation"]: p["signatory"] for p in response.json()["parties"]}
    assert signed == {"A81001": "siro-a", "0AR": "siro-csu"}
    assert api(admin).get(f"{url}document/").content.startswith(b"%PDF-")
    response = api(admin).patch(url, {"title": "Renamed"}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "agreement_signed")


@pytest.mark.parametrize(
    "dates, field",
    [
        ({"review_date": (TODAY - dt.timedelta(days=5)).isoformat()}, "review_date"),
        ({"expiry_date": (TODAY + dt.timedelta(days=50)).isoformat()}, "expiry_date"),
        ({"start_date": "2026-02-30"}, "start_date"),
    ],
)
def test_dates_out_of_order_are_a_400_naming_the_date(api, admin, programme, dates, field):
    response = api(admin).post(AGREEMENTS, _agreement_body(**dates), format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not SharingAgreement.objects.exists()


def test_a_party_outside_the_programme_is_a_400_naming_parties(api, admin, programme):
    OrganisationFactory(ods_code="X99999")
    response = api(admin).post(
        AGREEMENTS, _agreement_body(parties=["A81001", "X99999"]), format="json"
    )
    assert response.status_code == 400
    assert "X99999 does not take part" in response.json()["parties"][0]
    assert not SharingAgreement.objects.exists()


def test_a_non_pdf_agreement_document_is_a_400(api, admin, programme):
    response = api(admin).post(
        AGREEMENTS, _agreement_body(document=b64(b"PK\x03\x04 a zip")), format="json"
    )
    assert (response.status_code, list(response.json())) == (400, ["document"])
    assert not SharingAgreement.objects.exists()


def test_a_signatory_signing_for_another_party_is_a_400(api, agreement, signatory_a):
    response = api(signatory_a).post(
        f"{AGREEMENTS}{agreement.pk}/sign/", {"organisation": "0AR"}, format="json"
    )
    assert response.status_code == 400
    assert "organisation" in response.json()
    assert not agreement.parties.filter(signed_on__isnull=False).exists()


@pytest.mark.parametrize("who", ["alice", "dpo_a", "admin", "auditor"])
def test_only_a_signatory_signs_an_agreement(api, agreement, who, request):
    response = api(request.getfixturevalue(who)).post(
        f"{AGREEMENTS}{agreement.pk}/sign/", {"organisation": "A81001"}, format="json"
    )
    assert response.status_code == 403
    assert not agreement.parties.filter(signed_on__isnull=False).exists()


@pytest.mark.parametrize("who", ["alice", "auditor", "outsider_dpo", "signatory_a"])
def test_who_may_not_record_an_agreement_gets_a_403(api, who, programme, request):
    response = api(request.getfixturevalue(who)).post(AGREEMENTS, _agreement_body(), format="json")
    assert response.status_code == 403
    assert not SharingAgreement.objects.exists()


def test_an_outsider_does_not_see_an_agreement(api, agreement, outsider_dpo, charlie):
    assert api(outsider_dpo).get(f"{AGREEMENTS}{agreement.pk}/").status_code == 404
    assert api(outsider_dpo).get(AGREEMENTS).json()["results"] == []
    # charlie's practice B takes part in the programme: reads, cannot sign
    assert api(charlie).get(f"{AGREEMENTS}{agreement.pk}/").status_code == 200


# --- organisations ---------------------------------------------------------------------------------
def test_an_organisations_assurance_fields_are_read_and_written(api, admin, practice_a):
    url = "/api/v1/organisations/A81001/"
    body = {
        "dspt_status": "met",
        "dspt_year": "2025-26",
        "dspt_published_on": "2026-06-25",
        "ico_registration_number": "ZA765432",
        "ico_registration_expires_on": (TODAY + dt.timedelta(days=200)).isoformat(),
    }
    response = api(admin).patch(url, body, format="json")
    assert response.status_code == 200, response.content
    assert {k: response.json()[k] for k in body} == body
    assert Organisation.objects.get(pk=practice_a.pk).dspt_status == "met"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"dspt_status": "met", "dspt_year": "2025-2026"}, "dspt_year"),
        ({"dspt_status": "gold"}, "dspt_status"),
        ({"dspt_status": "met"}, "dspt_year"),
        (
            {"dspt_status": "met", "dspt_year": "2025-26", "dspt_published_on": "2099-01-01"},
            "dspt_published_on",
        ),
        ({"ico_registration_expires_on": "2027-01-01"}, "ico_registration_number"),
    ],
)
def test_bad_assurance_fields_are_a_400_naming_the_field(api, admin, practice_a, body, field):
    response = api(admin).patch("/api/v1/organisations/A81001/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    stored = Organisation.objects.get(pk=practice_a.pk)
    assert (stored.dspt_status, stored.dspt_year, stored.ico_registration_expires_on) == (
        "not_published",
        "",
        None,
    )


def test_a_dpo_does_not_change_an_organisations_assurance(api, dpo_a, practice_a):
    response = api(dpo_a).patch(
        "/api/v1/organisations/A81001/", {"dspt_status": "exceeded"}, format="json"
    )
    assert response.status_code == 403
    assert Organisation.objects.get(pk=practice_a.pk).dspt_status == "not_published"


# --- a flow's assurance and the gate ---------------------------------------------------------------
def test_a_flows_detail_carries_its_assurance(api, admin, draft):
    conditions = api(admin).get(f"{FLOWS}{draft.pk}/").json()["assurance"]
    assert [c["condition"] for c in conditions] == [
        "dpia",
        "sharing_agreement",
        "source_dspt",
        "destination_dspt",
        "source_ico",
        "destination_ico",
    ]
    assert all(c["holds"] for c in conditions)
    assert set(conditions[0]) == {"condition", "holds", "detail"}


def test_a_flow_with_nothing_behind_it_shows_every_condition_failing(api, admin, unassured_draft):
    bare = api(admin).get(f"{FLOWS}{unassured_draft.pk}/").json()["assurance"]
    assert len(bare) == 6 and not any(c["holds"] for c in bare)
    assert bare[0]["detail"] == "No DPIA covers this flow."


def test_approving_a_flow_with_nothing_behind_it_is_a_409_naming_every_condition(
    api, admin, admin2, unassured_draft
):
    services.data_flow_submit(actor=admin, flow=unassured_draft)
    response = api(admin2).post(f"{FLOWS}{unassured_draft.pk}/approve/", {}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "assurance_conditions_fail"
    assert [d["condition"] for d in body["details"]] == [
        "dpia",
        "sharing_agreement",
        "source_dspt",
        "destination_dspt",
        "source_ico",
        "destination_ico",
    ]
    assert "No data sharing agreement covers this flow." in body["detail"]
    assert DataFlow.objects.get(pk=unassured_draft.pk).status == "submitted"


def test_reinstatement_through_the_api_is_four_eyes(api, admin, admin2, suspended):
    url = f"{FLOWS}{suspended.pk}/"
    response = api(admin).post(f"{url}reinstate/", {}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "reinstatement_not_requested")
    response = api(admin2).post(f"{url}request-reinstatement/", {"comment": "ok"}, format="json")
    assert response.status_code == 200
    assert response.json()["reinstatement_requested_by"] == "csu-admin-2"
    assert response.json()["status"] == "suspended"
    response = api(admin2).post(f"{url}reinstate/", {}, format="json")
    assert response.status_code == 403
    assert "four eyes" in response.json()["detail"]
    response = api(admin).post(f"{url}reinstate/", {}, format="json")
    assert (response.status_code, response.json()["status"]) == (200, "approved")


@pytest.mark.parametrize("who", ["alice", "dpo_a"])
def test_a_party_cannot_ask_for_reinstatement(api, suspended, who, request):
    response = api(request.getfixturevalue(who)).post(
        f"{FLOWS}{suspended.pk}/request-reinstatement/", {}, format="json"
    )
    assert response.status_code == 403


def test_a_signatorys_capabilities(api, signatory_a):
    me = api(signatory_a).get("/api/v1/me/").json()
    assert (me["role"], me["capabilities"]) == ("signatory", ["sign_assurance"])
    assert [o["ods_code"] for o in me["organisations"]] == ["A81001"]


def test_the_schema_describes_the_assurance_endpoints(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    for path in [
        "/api/v1/dpias/",
        "/api/v1/dpias/{id}/",
        "/api/v1/dpias/{id}/dpo-advice/",
        "/api/v1/dpias/{id}/sign-off/",
        "/api/v1/dpias/{id}/start-review/",
        "/api/v1/dpias/{id}/document/",
        "/api/v1/sharing-agreements/",
        "/api/v1/sharing-agreements/{id}/",
        "/api/v1/sharing-agreements/{id}/sign/",
        "/api/v1/sharing-agreements/{id}/document/",
        "/api/v1/data-flows/{id}/request-reinstatement/",
    ]:
        assert path in paths, path
    assert (
        "application/pdf"
        in paths["/api/v1/dpias/{id}/document/"]["get"]["responses"]["200"]["content"]
    )


# --- documents as files of their own ----------------------------------------------------------------
def big_pdf() -> bytes:
    """A PDF of about 4 MB: more than a JSON body may carry."""
    writer = PdfWriter()
    writer.add_blank_page(100, 100)
    writer.add_attachment("annex.bin", bytes(range(256)) * 16_000)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_large_pdf_is_uploaded_as_a_file_and_downloaded_whole(api, admin, programme):
    dpia = services.dpia_create(
        actor=admin,
        programme=programme,
        title="t",
        description="d",
        necessity="n",
        review_date=TODAY,
    )
    document = big_pdf()
    upload = SimpleUploadedFile("dpia-signed.pdf", document, content_type="application/pdf")
    response = api(admin).post(f"{DPIAS}{dpia.pk}/document/", {"file": upload}, format="multipart")
    assert response.status_code == 200, response.content[:300]
    assert response.json()["has_document"] is True
    download = api(admin).get(f"{DPIAS}{dpia.pk}/document/")
    assert download.content == document
    assert 'filename="dpia-signed.pdf"' in download["Content-Disposition"]


def test_a_file_that_is_not_a_pdf_is_a_400_naming_document(api, admin, agreement):
    upload = SimpleUploadedFile("dsa.pdf", b"\x89PNG\r\n\x1a\n not a pdf")
    response = api(admin).post(
        f"{AGREEMENTS}{agreement.pk}/document/", {"file": upload}, format="multipart"
    )
    assert (response.status_code, list(response.json())) == (400, ["document"])
    assert not SharingAgreement.objects.get(pk=agreement.pk).has_document


def test_a_signed_agreement_takes_its_first_document_and_no_other(
    api, admin, agreement, signatory_a
):
    api(signatory_a).post(f"{AGREEMENTS}{agreement.pk}/sign/", {"organisation": "A81001"})
    url = f"{AGREEMENTS}{agreement.pk}/document/"
    first = SimpleUploadedFile("signed.pdf", pdf())
    assert api(admin).post(url, {"file": first}, format="multipart").status_code == 200
    stored = SharingAgreement.objects.get(pk=agreement.pk).document_sha256
    second = SimpleUploadedFile("other.pdf", big_pdf())
    response = api(admin).post(url, {"file": second}, format="multipart")
    assert (response.status_code, response.json()["code"]) == (409, "agreement_signed")
    assert SharingAgreement.objects.get(pk=agreement.pk).document_sha256 == stored


def test_an_outsider_cannot_upload_a_document(api, dpia, alice, outsider_dpo):
    for user, status_code in ((alice, 403), (outsider_dpo, 404)):
        upload = SimpleUploadedFile("x.pdf", pdf())
        response = api(user).post(
            f"{DPIAS}{dpia.pk}/document/", {"file": upload}, format="multipart"
        )
        assert response.status_code == status_code
    assert DPIA.objects.get(pk=dpia.pk).document_name == "dpia.pdf"


def test_a_signatory_is_created_bound_to_their_organisation(api, admin, practice_a):
    body = {"username": "siro-new", "email": "siro@example.nhs.uk", "role": "signatory"}
    response = api(admin).post("/api/v1/users/", body, format="json")
    assert response.status_code == 400
    assert "organisations" in response.json()
    assert not User.objects.filter(username="siro-new").exists()
    response = api(admin).post(
        "/api/v1/users/", body | {"organisations": ["A81001"]}, format="json"
    )
    assert response.status_code == 201
    assert (response.json()["role"], response.json()["organisations"]) == (
        "signatory",
        ["A81001"],
    )
