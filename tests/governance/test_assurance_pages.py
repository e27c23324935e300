"""The assurance pages (issue 17): the approval checklist, a programme's conditions at a
glance, an organisation's DSPT and ICO, DPIAs and sharing agreements, reinstatement.

The trio: the CSU admins and the parties read; a person of an organisation outside the
programme (the outsider) is refused; bad input is shown by field and nothing is stored.
"""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from governance import services
from governance.models import (
    DPIA,
    DataFlow,
    DPIASignOff,
    DSPTStatus,
    Organisation,
    SharingAgreement,
    User,
)
from governance.services import assurance as assurance_services
from tests.assurance import current_dspt_year, pdf
from tests.factories import PracticeFactory, ProgrammeFactory, UserFactory

TODAY = timezone.localdate()


def _html(response) -> str:
    return response.content.decode()


def _text(response) -> str:
    """The page's words, without tags and with spaces squeezed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", _html(response))))


@pytest.fixture
def outsider(db):
    """A DPO of a practice that takes no part in the programme."""
    other = PracticeFactory(ods_code="C83003", name="Practice C Surgery")
    return UserFactory(username="dpo-c", role=User.Role.DPO, organisations=[other])


@pytest.fixture
def signatory_a(practice_a):
    return UserFactory(username="siro-a", role=User.Role.SIGNATORY, organisations=[practice_a])


@pytest.fixture
def signatory_b(practice_b):
    return UserFactory(username="siro-b", role=User.Role.SIGNATORY, organisations=[practice_b])


@pytest.fixture
def dpia(programme, admin, unassured_draft) -> DPIA:
    return assurance_services.dpia_create(
        actor=admin,
        programme=programme,
        title="Testshire linked data",
        description="Linking GP records to offer care.",
        necessity="Only the fields needed.",
        review_date=TODAY + dt.timedelta(days=365),
        data_flow_ids=[unassured_draft.pk],
        risks=[
            {
                "description": "Re-identification of a patient",
                "likelihood": "remote",
                "severity": "severe",
                "measure": "Pseudonymise before analysis",
            }
        ],
        document=pdf(),
        document_name="dpia-v1.pdf",
    )


@pytest.fixture
def advised(dpia, dpo_a) -> DPIA:
    return assurance_services.dpia_record_dpo_advice(
        actor=dpo_a, dpia=dpia, advice="Proceed with the measures.", followed=True
    )


@pytest.fixture
def agreement(programme, admin, unassured_draft) -> SharingAgreement:
    return assurance_services.sharing_agreement_create(
        actor=admin,
        programme=programme,
        title="Testshire data sharing",
        purpose="Population health management.",
        start_date=TODAY - dt.timedelta(days=10),
        review_date=TODAY + dt.timedelta(days=100),
        expiry_date=TODAY + dt.timedelta(days=300),
        party_ods_codes=["A81001", "0AR"],
        data_flow_ids=[unassured_draft.pk],
        document=pdf(),
        document_name="dsa.pdf",
    )


# --- the approval page's checklist --------------------------------------------------------------
def test_the_approval_page_lists_each_condition_in_words_and_offers_no_approval_while_one_fails(
    client, admin2, unassured_draft, admin
):
    flow = services.data_flow_submit(actor=admin, flow=unassured_draft)
    client.force_login(admin2)
    response = client.get(f"/data-flows/{flow.pk}/approve/")
    text = _text(response)
    assert response.status_code == 200
    for label in (
        "A signed-off DPIA covers the flow",
        "An in-date data sharing agreement, signed by both, covers the flow",
        "The sender meets the Data Security and Protection Toolkit's standards",
        "The recipient's ICO registration is in date",
    ):
        assert label in text
    assert text.count("Does not hold") == 6 and "Holds " not in text
    assert "No DPIA covers this flow." in text
    assert "This flow cannot be approved until every condition holds. 6 conditions do not hold" in (
        text
    )
    assert "Approve data flow" not in text  # no button that can only be refused


def test_the_approval_page_offers_approval_once_every_condition_holds(client, admin2, submitted):
    client.force_login(admin2)
    response = client.get(f"/data-flows/{submitted.pk}/approve/")
    text = _text(response)
    assert _html(response).count('nhsuk-tag--green">Holds<') == 6 and "Does not hold" not in text
    assert "Approve data flow" in text
    response = client.post(f"/data-flows/{submitted.pk}/approve/", {"confirm": "on"})
    assert response.status_code == 302
    submitted.refresh_from_db()
    assert submitted.status == DataFlow.Status.APPROVED


def test_an_approval_posted_while_conditions_fail_is_refused_naming_them_not_a_500(
    client, admin2, admin, unassured_draft
):
    flow = services.data_flow_submit(actor=admin, flow=unassured_draft)
    client.force_login(admin2)
    response = client.post(f"/data-flows/{flow.pk}/approve/", {"confirm": "on"})
    assert response.status_code == 409
    text = _text(response)
    assert "There is a problem" in text
    assert "No DPIA covers this flow." in text
    assert "No data sharing agreement covers this flow." in text
    flow.refresh_from_db()
    assert flow.status == DataFlow.Status.SUBMITTED


# --- the flow page -----------------------------------------------------------------------------
def test_a_party_reads_the_flows_assurance_on_its_page(client, alice, approved):
    client.force_login(alice)
    response = client.get(f"/data-flows/{approved.pk}/")
    text = _text(response)
    assert "Assurance" in text
    assert "What this flow stands on: data moves only while every condition holds" in text
    assert _html(response).count('nhsuk-tag--green">Holds<') == 6
    assert "Practice A Surgery: ICO registration" in text


def test_reinstatement_takes_two_csu_admins_on_the_flow_page(client, admin, admin2, suspended):
    client.force_login(admin2)
    text = _text(client.get(f"/data-flows/{suspended.pk}/"))
    assert "Ask for reinstatement" in text and "Reinstate this flow" not in text
    assert "Suspended" in text and "DSA under review." in text
    response = client.post(
        f"/data-flows/{suspended.pk}/request_reinstatement/",
        {"comment": "The DSA was renewed.", "confirm": "on"},
    )
    assert response.status_code == 302
    text = _text(client.get(f"/data-flows/{suspended.pk}/"))
    assert "another CSU admin must reinstate it (four eyes)" in text
    assert "Reinstate this flow" not in text
    # The one who asked may not reinstate.
    assert client.post(f"/data-flows/{suspended.pk}/reinstate/", {"confirm": "on"}).status_code == (
        403
    )
    client.force_login(admin)
    assert "Reinstate this flow" in _text(client.get(f"/data-flows/{suspended.pk}/"))
    response = client.post(f"/data-flows/{suspended.pk}/reinstate/", {"confirm": "on"})
    assert response.status_code == 302
    suspended.refresh_from_db()
    assert suspended.status == DataFlow.Status.APPROVED


def test_reinstating_before_it_was_asked_for_says_so(client, admin, suspended):
    client.force_login(admin)
    response = client.get(f"/data-flows/{suspended.pk}/reinstate/")
    assert response.status_code == 409
    assert "Reinstatement of this flow has not been asked for yet" in _text(response)


# --- the programme's assurance ------------------------------------------------------------------
def test_the_programme_page_links_to_its_assurance(client, admin, programme):
    client.force_login(admin)
    assert 'href="/programmes/testshire/assurance/"' in _html(client.get("/programmes/testshire/"))


def test_the_programme_assurance_page_shows_every_flow_and_its_conditions(
    client, admin, admin2, approved, programme, practice_b, csu
):
    other = services.data_flow_submit(
        actor=admin,
        flow=services.data_flow_create(
            actor=admin,
            programme=programme,
            source=practice_b,
            destination=csu,
            data_categories=["gp"],
            identifiability="pseudonymised",
            legal_basis_codes=["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"],
            purpose="Practice B to the CSU.",
            dpia_reference="DPIA-B",
            dsa_reference="DSA-B",
        ),
    )
    client.force_login(admin2)
    response = client.get("/programmes/testshire/assurance/")
    assert response.status_code == 200
    html = _html(response)
    text = _text(response)
    assert "Every condition holds for 1 of 2 data flows in effect or proposed." in text
    row = html.split(f'data-flow="{approved.pk}"')[1].split("</tr>")[0]
    assert row.count(">Holds<") == 6 and "nhsuk-tag--green" in row
    row = html.split(f'data-flow="{other.pk}"')[1].split("</tr>")[0]
    assert "Does not hold" in row and "nhsuk-tag--red" in row
    assert f"Data flow #{other.pk}: Practice B Surgery to" in text
    assert "Practice B Surgery has no published DSPT assessment." in text
    assert "DPIA for flow" in text  # the DPIA assure_flow recorded, listed


def test_the_programme_assurance_page_says_when_there_is_no_flow(client, admin):
    ProgrammeFactory(slug="empty", name="Empty PHM")
    client.force_login(admin)
    text = _text(client.get("/programmes/empty/assurance/"))
    assert "No data flow has been proposed in this programme yet" in text
    assert "No DPIA has been recorded for this programme yet." in text
    assert "No data sharing agreement has been recorded for this programme yet." in text


def test_a_party_and_an_auditor_read_the_programme_assurance_the_outsider_is_refused(
    client, charlie, auditor, outsider, approved
):
    for user in (charlie, auditor):
        client.force_login(user)
        assert client.get("/programmes/testshire/assurance/").status_code == 200
    client.force_login(outsider)
    assert client.get("/programmes/testshire/assurance/").status_code == 403
    assert 'href="/programmes/testshire/assurance/"' not in _html(
        client.get("/programmes/testshire/")
    )


# --- an organisation's DSPT status and ICO registration ----------------------------------------
def _org_form(**extra) -> dict:
    year, published = current_dspt_year(TODAY)
    return {
        "dspt_status": "met",
        "dspt_year": year,
        "dspt_published_on": published.isoformat(),
        "ico_registration_number": "za123456",
        "ico_registration_expires_on": (TODAY + dt.timedelta(days=200)).isoformat(),
    } | extra


def test_a_csu_admin_records_an_organisations_dspt_status_and_ico_registration(
    client, admin, practice_a
):
    client.force_login(admin)
    page = _text(client.get("/organisations/A81001/"))
    assert "Data Security and Protection Toolkit Not Published" in page
    assert "Change the DSPT status" in page
    response = client.post("/organisations/A81001/assurance/", _org_form())
    assert response.status_code == 302
    practice_a.refresh_from_db()
    assert practice_a.dspt_status == DSPTStatus.MET
    assert practice_a.ico_registration_number == "ZA123456"
    page = _text(client.get("/organisations/A81001/"))
    assert f"Standards Met for {practice_a.dspt_year}" in page
    assert "ZA123456, in date until" in page


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("dspt_year", "2025-27", "A DSPT assessment year looks like 2025-26."),
        ("ico_registration_number", "123", "An ICO registration number looks like ZA123456."),
        ("ico_registration_expires_on", "2027-02-30", "must be a real date"),
        ("dspt_status", "brilliant", "Select a valid choice"),
    ],
)
def test_bad_dspt_or_ico_input_is_shown_by_field_and_nothing_is_stored(
    client, admin, practice_a, field, value, message
):
    client.force_login(admin)
    response = client.post("/organisations/A81001/assurance/", _org_form(**{field: value}))
    assert response.status_code == 400
    html = _html(response)
    assert "There is a problem" in html and message in html
    assert f'id="id_{field}' in html.split("There is a problem")[1]
    practice_a.refresh_from_db()
    assert (practice_a.dspt_status, practice_a.ico_registration_number) == ("not_published", "")


def test_only_a_csu_admin_changes_an_organisations_dspt_status(client, dpo_a, practice_a):
    client.force_login(dpo_a)
    assert client.get("/organisations/A81001/assurance/").status_code == 403
    assert client.post("/organisations/A81001/assurance/", _org_form()).status_code == 403
    practice_a.refresh_from_db()
    assert practice_a.dspt_status == DSPTStatus.NOT_PUBLISHED
    assert "Change the DSPT status" not in _text(client.get("/organisations/A81001/"))


# --- DPIAs -------------------------------------------------------------------------------------
RISKS_EMPTY = {
    "risks-TOTAL_FORMS": "2",
    "risks-INITIAL_FORMS": "0",
    "risks-MIN_NUM_FORMS": "0",
    "risks-MAX_NUM_FORMS": "50",
}


def _dpia_form(flow: DataFlow, **extra) -> dict:
    return {
        "title": "Testshire PHM",
        "version": "1.0",
        "description": "Link records to find people who need care.",
        "necessity": "No less would do.",
        "data_flows": [str(flow.pk)],
        "residual_risk": "low",
        "review_date": (TODAY + dt.timedelta(days=365)).isoformat(),
        **RISKS_EMPTY,
        "risks-0-description": "Re-identification",
        "risks-0-likelihood": "remote",
        "risks-0-severity": "severe",
        "risks-0-measure": "Pseudonymise at source",
    } | extra


def test_a_csu_admin_drafts_a_dpia_with_its_risks_and_pdf(client, admin, unassured_draft):
    client.force_login(admin)
    assert client.get("/programmes/testshire/dpias/new/").status_code == 200
    data = _dpia_form(unassured_draft)
    data["document"] = SimpleUploadedFile("dpia.pdf", pdf(), content_type="application/pdf")
    response = client.post("/programmes/testshire/dpias/new/", data)
    assert response.status_code == 302, _text(response)
    dpia = DPIA.objects.get()
    assert response["Location"] == f"/dpias/{dpia.pk}/"
    assert (dpia.status, dpia.title, dpia.document_name) == ("draft", "Testshire PHM", "dpia.pdf")
    assert [r.description for r in dpia.risks.all()] == ["Re-identification"]
    assert list(dpia.data_flows.all()) == [unassured_draft]
    text = _text(client.get(f"/dpias/{dpia.pk}/"))
    assert "Re-identification" in text and "Pseudonymise at source" in text
    assert "Download dpia.pdf (PDF)" in text
    document = client.get(f"/dpias/{dpia.pk}/document.pdf")
    assert document["Content-Type"] == "application/pdf"
    assert document.content == bytes(dpia.document)
    assert 'filename="dpia.pdf"' in document["Content-Disposition"]


@pytest.mark.parametrize(
    "extra, field, message",
    [
        ({"review_date": ""}, "review_date", "Enter review date"),
        ({"risks-0-measure": ""}, "risks-0-measure", "Risk 1: Enter measure against it"),
        (
            {"ico_consultation_outcome": "Go ahead."},
            "ico_consulted_on",
            "Say when the ICO was consulted, with its outcome.",
        ),
        ({"data_flows": ["999999"]}, "data_flows", "Select a valid choice"),
    ],
)
def test_bad_dpia_input_is_shown_by_field_and_nothing_is_stored(
    client, admin, unassured_draft, extra, field, message
):
    client.force_login(admin)
    response = client.post("/programmes/testshire/dpias/new/", _dpia_form(unassured_draft, **extra))
    assert response.status_code == 400
    summary = _html(response).split("There is a problem")[1].split("</ul>")[0]
    assert message in summary and f'href="#id_{field}' in summary
    assert not DPIA.objects.exists()


def test_a_document_that_is_not_a_pdf_is_refused_by_field(client, admin, unassured_draft):
    client.force_login(admin)
    data = _dpia_form(unassured_draft)
    data["document"] = SimpleUploadedFile("dpia.pdf", b"PK\x03\x04 a word file")
    response = client.post("/programmes/testshire/dpias/new/", data)
    assert response.status_code == 400
    summary = _html(response).split("There is a problem")[1].split("</ul>")[0]
    assert "The file is not a PDF" in summary and 'href="#id_document"' in summary
    assert not DPIA.objects.exists()


def test_a_practice_manager_reads_a_dpia_but_may_not_draft_one(client, alice, dpia):
    client.force_login(alice)
    assert client.get(f"/dpias/{dpia.pk}/").status_code == 200
    assert client.get("/programmes/testshire/dpias/").status_code == 200
    assert client.get("/programmes/testshire/dpias/new/").status_code == 403
    assert client.post(f"/dpias/{dpia.pk}/edit/", {}).status_code == 403
    assert "Change this DPIA" not in _text(client.get(f"/dpias/{dpia.pk}/"))


def test_the_outsider_never_sees_a_dpia_nor_its_document(client, outsider, dpia):
    client.force_login(outsider)
    assert client.get(f"/dpias/{dpia.pk}/").status_code == 404
    assert client.get(f"/dpias/{dpia.pk}/document.pdf").status_code == 404
    assert client.get("/programmes/testshire/dpias/").status_code == 403
    assert client.post(f"/dpias/{dpia.pk}/dpo-advice/", {"advice": "x"}).status_code == 404


def test_a_csu_admin_changes_a_draft_dpia_and_its_risks(client, admin, dpia, unassured_draft):
    client.force_login(admin)
    page = _html(client.get(f"/dpias/{dpia.pk}/edit/"))
    assert "Re-identification of a patient" in page  # the risk, as a row of the formset
    data = _dpia_form(unassured_draft, title="Testshire PHM v2", version="2.0")
    data |= {"risks-TOTAL_FORMS": "3", "risks-INITIAL_FORMS": "1"}
    data |= {
        "risks-1-description": "Data kept too long",
        "risks-1-likelihood": "possible",
        "risks-1-severity": "significant",
        "risks-1-measure": "Destroy at the end",
    }
    response = client.post(f"/dpias/{dpia.pk}/edit/", data)
    assert response.status_code == 302, _text(response)
    dpia.refresh_from_db()
    assert (dpia.title, dpia.version) == ("Testshire PHM v2", "2.0")
    assert [r.description for r in dpia.risks.all()] == ["Re-identification", "Data kept too long"]
    assert dpia.document_name == "dpia-v1.pdf"  # no new file: the old one stays


def test_the_dpo_of_a_controller_records_advice(client, dpo_a, dpia):
    client.force_login(dpo_a)
    assert "Record your advice as DPO" in _text(client.get(f"/dpias/{dpia.pk}/"))
    response = client.post(
        f"/dpias/{dpia.pk}/dpo-advice/", {"advice": "Proceed.", "followed": "no"}
    )
    assert response.status_code == 400
    summary = _html(response).split("There is a problem")[1].split("</ul>")[0]
    assert "Say why the DPO" in summary and 'href="#id_not_followed_reason"' in summary
    dpia.refresh_from_db()
    assert (dpia.status, dpia.dpo_advice) == ("draft", "")
    response = client.post(
        f"/dpias/{dpia.pk}/dpo-advice/",
        {"advice": "Proceed.", "followed": "no", "not_followed_reason": "Cost."},
    )
    assert response.status_code == 302
    dpia.refresh_from_db()
    assert (dpia.status, dpia.dpo_advice_followed, dpia.dpo_advice_by) == (
        "dpo_advice",
        False,
        dpo_a,
    )
    text = _text(client.get(f"/dpias/{dpia.pk}/"))
    assert "No: Cost." in text


def test_a_dpo_of_a_processor_may_not_advise_on_the_dpia(client, csu, dpia):
    dpo_csu = UserFactory(username="dpo-csu", role=User.Role.DPO, organisations=[csu])
    client.force_login(dpo_csu)
    response = client.post(
        f"/dpias/{dpia.pk}/dpo-advice/", {"advice": "Proceed.", "followed": "yes"}
    )
    assert response.status_code == 403
    dpia.refresh_from_db()
    assert dpia.dpo_advice == ""


def test_each_controllers_signatory_signs_the_dpia_off_with_a_confirmation(
    client, signatory_a, signatory_b, advised
):
    client.force_login(signatory_a)
    text = _text(client.get(f"/dpias/{advised.pk}/"))
    assert "Sign off for Practice A Surgery" in text
    assert "Sign off for Practice B Surgery" not in text
    url = f"/dpias/{advised.pk}/sign-off/A81001/"
    response = client.post(url, {})
    assert response.status_code == 400 and "There is a problem" in _html(response)
    assert not DPIASignOff.objects.exists()
    assert client.post(url, {"confirm": "on"}).status_code == 302
    advised.refresh_from_db()
    assert advised.status == "dpo_advice"  # practice B has not signed yet
    # Not for another organisation: bad input naming it, nothing stored.
    response = client.post(f"/dpias/{advised.pk}/sign-off/B82002/", {"confirm": "on"})
    assert response.status_code == 400
    assert "You do not act for Practice B Surgery" in _text(response)
    assert DPIASignOff.objects.count() == 1
    client.force_login(signatory_b)
    assert client.post(f"/dpias/{advised.pk}/sign-off/B82002/", {"confirm": "on"}).status_code == (
        302
    )
    advised.refresh_from_db()
    assert advised.status == "signed_off"
    text = _text(client.get(f"/dpias/{advised.pk}/"))
    assert "Signed off on" in text and "by siro-a" in text and "by siro-b" in text


def test_signing_a_dpia_awaiting_advice_is_refused_on_the_page(client, signatory_a, dpia):
    client.force_login(signatory_a)
    response = client.post(f"/dpias/{dpia.pk}/sign-off/A81001/", {"confirm": "on"})
    assert response.status_code == 409
    assert "once the DPO" in _text(response)
    assert not DPIASignOff.objects.exists()


# --- sharing agreements ----------------------------------------------------------------------
def _agreement_form(flow: DataFlow, **extra) -> dict:
    return {
        "title": "Testshire DSA",
        "reference": "DSA-T-1",
        "version": "1.0",
        "purpose": "Population health management.",
        "parties": ["A81001", "0AR"],
        "data_flows": [str(flow.pk)],
        "legal_bases": ["UK-GDPR-6-1-e"],
        "start_date": TODAY.isoformat(),
        "review_date": (TODAY + dt.timedelta(days=100)).isoformat(),
        "expiry_date": (TODAY + dt.timedelta(days=300)).isoformat(),
    } | extra


def test_a_csu_admin_records_an_agreement(client, admin, unassured_draft):
    client.force_login(admin)
    assert client.get("/programmes/testshire/sharing-agreements/new/").status_code == 200
    data = _agreement_form(unassured_draft)
    data["document"] = SimpleUploadedFile("dsa.pdf", pdf())
    response = client.post("/programmes/testshire/sharing-agreements/new/", data)
    assert response.status_code == 302, _text(response)
    agreement = SharingAgreement.objects.get()
    assert sorted(agreement.parties.values_list("organisation__ods_code", flat=True)) == [
        "0AR",
        "A81001",
    ]
    text = _text(client.get(f"/sharing-agreements/{agreement.pk}/"))
    assert "Testshire DSA" in text and "Download dsa.pdf (PDF)" in text
    assert "Practice A Surgery (A81001) Not yet" in text
    listing = _text(client.get("/programmes/testshire/sharing-agreements/"))
    assert "Testshire DSA" in listing


@pytest.mark.parametrize(
    "extra, field, message",
    [
        (
            {"expiry_date": (TODAY + dt.timedelta(days=50)).isoformat()},
            "expiry_date",
            "The expiry date comes after the review date.",
        ),
        (
            {"review_date": (TODAY - dt.timedelta(days=1)).isoformat()},
            "review_date",
            "The review date comes after the start date.",
        ),
        ({"parties": ["A81001"]}, "parties", "An agreement has at least two parties."),
        ({"parties": ["A81001", "B82002"]}, "data_flows", "who is not a party to the agreement"),
        ({"start_date": ""}, "start_date", "Enter start date"),
    ],
)
def test_bad_agreement_input_is_shown_by_field_and_nothing_is_stored(
    client, admin, unassured_draft, extra, field, message
):
    client.force_login(admin)
    response = client.post(
        "/programmes/testshire/sharing-agreements/new/", _agreement_form(unassured_draft, **extra)
    )
    assert response.status_code == 400
    summary = _html(response).split("There is a problem")[1].split("</ul>")[0]
    assert message in summary and f'href="#id_{field}' in summary
    assert not SharingAgreement.objects.exists()


def test_a_partys_signatory_signs_the_agreement_and_no_other(
    client, signatory_a, signatory_b, agreement
):
    client.force_login(signatory_b)  # practice B is no party to it
    assert "Sign for" not in _text(client.get(f"/sharing-agreements/{agreement.pk}/"))
    response = client.post(f"/sharing-agreements/{agreement.pk}/sign/B82002/", {"confirm": "on"})
    assert response.status_code == 400
    assert "not a party to this agreement" in _text(response)
    client.force_login(signatory_a)
    assert "Sign for Practice A Surgery" in _text(
        client.get(f"/sharing-agreements/{agreement.pk}/")
    )
    response = client.post(f"/sharing-agreements/{agreement.pk}/sign/A81001/", {"confirm": "on"})
    assert response.status_code == 302
    party = agreement.parties.get(organisation__ods_code="A81001")
    assert (party.signatory, party.signed_on) == (signatory_a, TODAY)
    # A signed agreement no longer changes: the page says so, not a 500.
    assert "Change this agreement" not in _text(client.get(f"/sharing-agreements/{agreement.pk}/"))


def test_a_signed_agreement_refuses_a_change_on_the_page(
    client, admin, signatory_a, agreement, unassured_draft
):
    assurance_services.sharing_agreement_sign(
        actor=signatory_a,
        agreement=agreement,
        organisation=Organisation.objects.get(ods_code="A81001"),
    )
    client.force_login(admin)
    response = client.post(
        f"/sharing-agreements/{agreement.pk}/edit/",
        _agreement_form(unassured_draft, title="Renamed"),
    )
    assert response.status_code == 409
    assert "record a new version" in _text(response)
    agreement.refresh_from_db()
    assert agreement.title == "Testshire data sharing"


def test_the_outsider_never_sees_an_agreement(client, outsider, agreement):
    client.force_login(outsider)
    assert client.get(f"/sharing-agreements/{agreement.pk}/").status_code == 404
    assert client.get(f"/sharing-agreements/{agreement.pk}/document.pdf").status_code == 404
    response = client.post(
        "/programmes/testshire/sharing-agreements/new/", {"title": "Mine", "parties": ["C83003"]}
    )
    assert response.status_code == 403
    assert not SharingAgreement.objects.exclude(pk=agreement.pk).exists()


def test_a_suspended_flow_that_lapsed_shows_why(client, admin, approved, practice_a):
    practice_a.ico_registration_expires_on = TODAY - dt.timedelta(days=1)
    practice_a.save(update_fields=["ico_registration_expires_on"])
    client.force_login(admin)
    text = _text(client.get(f"/data-flows/{approved.pk}/"))
    assert "Does not hold" in text
    assert "Practice A Surgery: ICO registration" in text and "expired on" in text


# --- what awaits a DPO's advice and a signatory's signature ------------------------------------
def test_a_dpo_finds_the_dpias_awaiting_advice_on_their_home_page(client, dpo_a, dpo_b, dpia):
    client.force_login(dpo_a)
    text = _text(client.get("/"))
    assert "Awaiting your advice" in text
    assert "Give your advice on the DPIA “Testshire linked data” v1.0 (Testshire PHM)" in text
    assurance_services.dpia_record_dpo_advice(
        actor=dpo_b, dpia=dpia, advice="Proceed.", followed=True
    )
    assert "Nothing awaits your advice now." in _text(client.get("/"))


def test_a_signatory_finds_what_awaits_their_signature_on_their_home_page(
    client, signatory_a, advised, agreement
):
    client.force_login(signatory_a)
    text = _text(client.get("/"))
    assert "Sign off the DPIA “Testshire linked data” v1.0 for Practice A Surgery" in text
    assert "Sign the agreement “Testshire data sharing” v1.0 for Practice A Surgery" in text
    assurance_services.sharing_agreement_sign(
        actor=signatory_a,
        agreement=agreement,
        organisation=Organisation.objects.get(ods_code="A81001"),
    )
    assert "Sign the agreement" not in _text(client.get("/"))


def test_a_dpo_of_a_controller_drafts_a_dpia_a_practice_manager_sees_no_link(
    client, dpo_a, alice, unassured_draft
):
    client.force_login(dpo_a)
    assert "Draft a DPIA" in _text(client.get("/programmes/testshire/dpias/"))
    response = client.post("/programmes/testshire/dpias/new/", _dpia_form(unassured_draft))
    assert response.status_code == 302
    assert DPIA.objects.get().created_by == dpo_a
    client.force_login(alice)
    assert "Draft a DPIA" not in _text(client.get("/programmes/testshire/dpias/"))


def test_a_person_who_is_no_signatory_may_not_sign(client, dpo_a, advised, agreement):
    client.force_login(dpo_a)
    assert client.post(f"/dpias/{advised.pk}/sign-off/A81001/", {"confirm": "on"}).status_code == (
        403
    )
    response = client.post(f"/sharing-agreements/{agreement.pk}/sign/A81001/", {"confirm": "on"})
    assert response.status_code == 403
    assert not DPIASignOff.objects.exists()
    assert not agreement.parties.filter(signed_on__isnull=False).exists()


def test_a_signed_off_dpia_is_reviewed_advised_and_signed_off_again(
    client, admin, dpo_a, signatory_a, signatory_b, advised
):
    for signatory, ods in ((signatory_a, "A81001"), (signatory_b, "B82002")):
        assurance_services.dpia_sign_off(
            actor=signatory, dpia=advised, organisation=Organisation.objects.get(ods_code=ods)
        )
    client.force_login(admin)
    assert "Start a review" in _text(client.get(f"/dpias/{advised.pk}/"))
    response = client.post(f"/dpias/{advised.pk}/start-review/", {})
    assert response.status_code == 400  # the box is not ticked
    assert client.post(f"/dpias/{advised.pk}/start-review/", {"confirm": "on"}).status_code == 302
    advised.refresh_from_db()
    assert advised.status == "under_review" and not advised.sign_offs.exists()
    text = _text(client.get(f"/dpias/{advised.pk}/"))
    assert "it still covers its flows while under review" in text
    client.force_login(dpo_a)
    response = client.post(
        f"/dpias/{advised.pk}/dpo-advice/", {"advice": "Still fine.", "followed": "yes"}
    )
    assert response.status_code == 302
    client.force_login(signatory_a)
    assert "Sign off for Practice A Surgery" in _text(client.get(f"/dpias/{advised.pk}/"))


def test_a_csu_admin_changes_an_unsigned_agreement(client, admin, agreement, unassured_draft):
    client.force_login(admin)
    page = _html(client.get(f"/sharing-agreements/{agreement.pk}/edit/"))
    assert 'value="Testshire data sharing"' in page
    response = client.post(
        f"/sharing-agreements/{agreement.pk}/edit/",
        _agreement_form(unassured_draft, title="Testshire DSA v2", version="2.0"),
    )
    assert response.status_code == 302, _text(response)
    agreement.refresh_from_db()
    assert (agreement.title, agreement.version, agreement.document_name) == (
        "Testshire DSA v2",
        "2.0",
        "dsa.pdf",
    )
    assert list(agreement.legal_bases.values_list("code", flat=True)) == ["UK-GDPR-6-1-e"]
