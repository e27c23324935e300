"""The record of processing (UK GDPR Article 30) of each controller, as JSON and CSV."""

import csv
import io
import json

import pytest

from governance import selectors
from governance.models import Programme
from tests.factories import OrganisationFactory, ParticipationFactory

API = "/api/v1/organisations/A81001/record-of-processing/"


@pytest.fixture
def record_setup(approved, draft_b, programme, csu):
    """Practice A's approved GP flow to the CSU; practice B's flow still a draft."""
    optum = OrganisationFactory(
        ods_code="OPT1", name="Optum Health Solutions UK", kind="commercial_processor"
    )
    ParticipationFactory(
        programme=programme, organisation=optum, role="processor", responsibilities=["analyse"]
    )
    Programme.objects.filter(pk=programme.pk).update(
        overseas_transfer="none", purposes=["planning services", "monitoring safety"]
    )
    programme.legal_bases.set(
        programme.legal_bases.model.objects.filter(code__in=["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"])
    )
    return approved


@pytest.fixture
def draft_b(programme, practice_b, csu, admin):
    from governance import services

    return services.data_flow_create(
        actor=admin,
        programme=programme,
        source=practice_b,
        destination=csu,
        data_categories=["gp", "mental_health"],
        identifiability="identifiable",
    )


def _record(practice):
    practice.dpo_name = "Dr Dee Peeo"
    practice.dpo_email = "dpo@practice-a.example.nhs.uk"
    practice.save()
    return selectors.record_of_processing(practice)


def test_the_record_names_the_controller_and_its_dpo(record_setup, practice_a):
    record = _record(practice_a)
    assert record["controller"]["name"] == "Practice A Surgery"
    assert record["controller"]["ods_code"] == "A81001"
    assert record["data_protection_officer"] == {
        "name": "Dr Dee Peeo",
        "email": "dpo@practice-a.example.nhs.uk",
    }
    assert [a["programme"] for a in record["activities"]] == ["testshire"]


def test_the_record_lists_purposes_legal_bases_people_and_data(record_setup, practice_a):
    activity = _record(practice_a)["activities"][0]
    assert activity["role"] == "Controller" and activity["is_lead"] is True
    assert activity["joint_controllers"] == ["Practice B Surgery (B82002)"]
    assert activity["purposes"] == ["planning services", "monitoring safety"]
    assert [b["code"] for b in activity["legal_bases"]] == ["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"]
    # Only flows in effect count: practice B's draft mental health data is not processed yet.
    assert activity["categories_of_personal_data"] == ["GP records"]
    assert activity["categories_of_data_subjects"] == [
        "Patients registered with the GP practices taking part"
    ]
    assert activity["identifiability"] == ["Identifiable"]


def test_the_record_lists_recipients_but_not_fellow_controllers(record_setup, practice_a):
    recipients = _record(practice_a)["activities"][0]["recipients"]
    assert [(r["ods_code"], r["roles"]) for r in recipients] == [
        ("0AR", ["Processor"]),
        ("OPT1", ["Processor"]),
    ]
    assert recipients[0]["receives"] == ["GP records (identifiable)"]


def test_the_record_states_transfers_retention_erasure_and_security(record_setup, practice_a):
    activity = _record(practice_a)["activities"][0]
    assert activity["overseas_transfers"] == {
        "transfer": "No transfer outside the UK",
        "safeguards": "None needed: data stays in the UK.",
    }
    assert activity["retention"]["length_weeks"] == 20
    assert activity["retention"]["end_date"] == "2027-01-25"
    assert activity["retention"]["statement"] == (
        "Kept for the 20 weeks of the programme, from 7 September 2026 until 25 January 2027, "
        "then destroyed."
    )
    assert "encryption key" in activity["erasure"] and "certificate" in activity["erasure"]
    measures = " ".join(activity["security_measures"])
    for words in ["Pseudonymisation", "Encryption at rest", "Access control", "Audit"]:
        assert words in measures
    assert [f["id"] for f in activity["data_flows"]] == [record_setup.pk]


def test_an_organisation_that_controls_nothing_has_an_empty_record(record_setup, csu):
    assert selectors.record_of_processing(csu)["activities"] == []


def test_the_csv_has_one_row_per_activity_with_every_article_30_item(record_setup, practice_a):
    text = selectors.record_of_processing_csv(_record(practice_a))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 1
    row = rows[0]
    assert list(row) == selectors.ROPA_CSV_COLUMNS
    assert row["controller_name"] == "Practice A Surgery"
    assert row["dpo_email"] == "dpo@practice-a.example.nhs.uk"
    assert row["purposes"] == "planning services; monitoring safety"
    assert row["role"] == "Controller (lead)"
    assert row["categories_of_personal_data"] == "GP records"
    assert row["recipients"] == (
        "North of England Commissioning Support Unit (Processor); "
        "Optum Health Solutions UK (Processor)"
    )
    assert row["overseas_transfers"] == "No transfer outside the UK"
    assert row["retention"].startswith("Kept for the 20 weeks")
    assert row["data_flows"] == f"#{record_setup.pk} A81001 -> 0AR: gp, identifiable, approved"


# --- who may read it ----------------------------------------------------------------------
@pytest.mark.parametrize("who", ["dpo_a", "admin", "auditor"])
def test_the_dpo_csu_admins_and_auditors_read_the_record_through_the_api(
    api, record_setup, who, request
):
    response = api(request.getfixturevalue(who)).get(API)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["controller"]["ods_code"] == "A81001"


def test_the_api_gives_csv_with_format_csv(api, record_setup, dpo_a):
    response = api(dpo_a).get(API + "?format=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert (
        response["Content-Disposition"] == 'attachment; filename="record-of-processing-A81001.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert rows[0]["controller_ods_code"] == "A81001"


def test_a_practice_manager_of_the_practice_is_refused_with_403(api, record_setup, alice):
    assert api(alice).get(API).status_code == 403
    assert api(alice).get(API + "?format=csv").status_code == 403


@pytest.mark.parametrize("who", ["dpo_b", "charlie"])
def test_people_of_other_organisations_get_404(api, record_setup, who, request):
    assert api(request.getfixturevalue(who)).get(API).status_code == 404


def test_an_unknown_organisation_is_a_404(api, admin, db):
    assert api(admin).get("/api/v1/organisations/NOPE1/record-of-processing/").status_code == 404


def test_the_record_needs_sign_in(api, record_setup):
    assert api().get(API).status_code == 401


# --- from the organisation's page -----------------------------------------------------------
def test_the_dpo_downloads_csv_and_json_from_the_organisation_page(client, record_setup, dpo_a):
    client.force_login(dpo_a)
    html = client.get("/organisations/A81001/").content.decode()
    assert 'href="/organisations/A81001/record-of-processing.csv"' in html
    assert 'href="/organisations/A81001/record-of-processing.json"' in html
    response = client.get("/organisations/A81001/record-of-processing.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    assert "Practice A Surgery" in response.content.decode()
    response = client.get("/organisations/A81001/record-of-processing.json")
    assert response["Content-Disposition"] == (
        'attachment; filename="record-of-processing-A81001.json"'
    )
    assert json.loads(response.content)["activities"][0]["programme"] == "testshire"


def test_the_page_offers_no_download_to_a_practice_manager(client, record_setup, alice):
    client.force_login(alice)
    html = client.get("/organisations/A81001/").content.decode()
    assert "record-of-processing" not in html
    assert client.get("/organisations/A81001/record-of-processing.csv").status_code == 403


def test_the_download_is_a_404_for_another_organisation(client, record_setup, charlie):
    client.force_login(charlie)
    assert client.get("/organisations/A81001/record-of-processing.json").status_code == 404


def test_a_non_controller_page_says_it_has_no_record(client, record_setup, admin):
    client.force_login(admin)
    html = client.get("/organisations/0AR/").content.decode()
    assert "is not a controller in any programme" in html


# --- the ICO's template: Article 9 and Schedule 1, DPIA, agreement, DSPT; processors ----------
@pytest.fixture
def assured(record_setup, practice_a, csu):
    """The approved flow stands on a signed-off DPIA and a signed agreement; DSPT recorded."""
    import datetime as dt

    from django.utils import timezone

    from governance.models import (
        DPIA,
        LegalBasis,
        Organisation,
        SharingAgreement,
        SharingAgreementParty,
    )
    from tests.factories import UserFactory

    # Whatever assurance let the flow be approved gives way to this one, with known values.
    DPIA.objects.filter(programme=record_setup.programme).delete()
    SharingAgreement.objects.filter(programme=record_setup.programme).delete()
    signatory = UserFactory(username="siro", role="signatory", organisations=[practice_a, csu])
    dpia = DPIA.objects.create(
        programme=record_setup.programme,
        title="Testshire PHM DPIA",
        version="1.2",
        description="Linking GP records.",
        necessity="Only what is needed.",
        review_date=dt.date(2027, 9, 1),
        status=DPIA.Status.SIGNED_OFF,
        signed_off_at=timezone.make_aware(dt.datetime(2026, 9, 1, 12)),
    )
    dpia.data_flows.add(record_setup)
    agreement = SharingAgreement.objects.create(
        programme=record_setup.programme,
        title="Testshire DSA",
        reference="DSA-T-1",
        version="2.0",
        purpose="PHM.",
        start_date=dt.date(2026, 9, 7),
        review_date=dt.date(2027, 3, 1),
        expiry_date=dt.date(2027, 9, 6),
    )
    agreement.data_flows.add(record_setup)
    agreement.legal_bases.set(LegalBasis.objects.filter(code="DPA2018-SCH1-P1-2"))
    for org in (practice_a, csu):
        SharingAgreementParty.objects.create(
            agreement=agreement,
            organisation=org,
            signatory=signatory,
            signed_on=dt.date(2026, 9, 1),
        )
        Organisation.objects.filter(pk=org.pk).update(
            dspt_status="met" if org == practice_a else "exceeded",
            dspt_year="2025-26",
            dspt_published_on=dt.date(2026, 6, 20),
        )
    practice_a.refresh_from_db()
    csu.refresh_from_db()
    return record_setup


def test_the_activity_names_its_article_9_and_schedule_1_conditions(assured, practice_a):
    activity = _record(practice_a)["activities"][0]
    assert [b["code"] for b in activity["article_6_lawful_basis"]] == ["UK-GDPR-6-1-e"]
    assert [b["code"] for b in activity["article_9_condition"]] == ["UK-GDPR-9-2-h"]
    assert [b["code"] for b in activity["schedule_1_condition"]] == ["DPA2018-SCH1-P1-2"]
    assert activity["schedule_1_condition"][0]["article"].endswith("Schedule 1 Part 1 paragraph 2")


def test_without_a_schedule_1_condition_the_record_says_it_is_missing(record_setup, practice_a):
    activity = _record(practice_a)["activities"][0]
    assert activity["schedule_1_condition"].startswith("Not recorded: ")
    assert "Schedule 1 Part 1" in activity["schedule_1_condition"]


def test_the_activity_names_its_dpia_and_agreement_with_versions_and_dates(assured, practice_a):
    activity = _record(practice_a)["activities"][0]
    assert activity["dpia"]["required"] is True
    assert activity["dpia"]["assessments"] == [
        {
            "id": activity["dpia"]["assessments"][0]["id"],
            "title": "Testshire PHM DPIA",
            "version": "1.2",
            "status": "Signed off",
            "signed_off_on": "2026-09-01",
            "review_date": "2027-09-01",
            "residual_risk": "Low",
            "data_flows": [assured.pk],
        }
    ]
    (agreement,) = activity["sharing_agreements"]
    assert agreement["title"] == "Testshire DSA" and agreement["version"] == "2.0"
    assert (agreement["start_date"], agreement["review_date"], agreement["expiry_date"]) == (
        "2026-09-07",
        "2027-03-01",
        "2027-09-06",
    )
    assert agreement["parties"] == ["0AR", "A81001"]  # by name
    assert agreement["signed_by_every_party"] is True


def test_security_measures_name_each_organisations_dspt_status_and_year(assured, practice_a):
    activity = _record(practice_a)["activities"][0]
    measures = " ".join(activity["security_measures"])
    assert "Practice A Surgery: Standards Met for 2025-26 (published 2026-06-20)" in measures
    assert "North of England Commissioning Support Unit: Standards Exceeded for 2025-26" in measures
    assert activity["dspt"][0] == {
        "name": "Practice A Surgery",
        "ods_code": "A81001",
        "status": "Standards Met",
        "year": "2025-26",
        "published_on": "2026-06-20",
    }


def test_a_processor_has_an_article_30_2_record_naming_its_controllers(assured, csu):
    record = selectors.record_of_processing(csu)
    assert record["activities"] == []
    (processing,) = record["processing_for_controllers"]
    assert processing["role"] == "Processor"
    assert [c["ods_code"] for c in processing["controllers"]] == ["A81001", "B82002"]
    assert (
        "receives gp records (identifiable) from Practice A Surgery"
        in processing["categories_of_processing"]
    )
    assert processing["overseas_transfers"]["transfer"] == "No transfer outside the UK"
    assert [s["title"] for s in processing["sharing_agreements"]] == ["Testshire DSA"]
    assert "Standards Exceeded for 2025-26" in " ".join(processing["security_measures"])


def test_the_csv_carries_the_new_columns_and_a_row_per_processing_for_controllers(assured, csu):
    text = selectors.record_of_processing_csv(selectors.record_of_processing(csu))
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["article_30"] == "Article 30(2) processor"
    assert row["controller_ods_code"] == "A81001; B82002"
    assert row["processor_name"] == "North of England Commissioning Support Unit"
    assert row["article_6_lawful_basis"] == "Article 6(1)(e): Public task"
    assert row["article_9_condition"] == "Article 9(2)(h): Health or social care"
    assert row["schedule_1_condition"] == (
        "Schedule 1 Part 1 paragraph 2: Health or social care purposes"
    )
    assert row["dpia"] == (
        "Testshire PHM DPIA v1.2: Signed off, signed off 2026-09-01, review due 2027-09-01"
    )
    assert row["sharing_agreements"] == (
        "Testshire DSA v2.0 (DSA-T-1), 2026-09-07 to 2027-09-06, review 2027-03-01, "
        "signed by every party"
    )
    assert "Standards Exceeded for 2025-26" in row["dspt"]


def test_the_controller_row_says_which_article_and_names_the_dpia(assured, practice_a):
    text = selectors.record_of_processing_csv(_record(practice_a))
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["article_30"] == "Article 30(1) controller"
    assert row["dpia_required"] == "Yes"
    assert row["dpia"].startswith("Testshire PHM DPIA v1.2: Signed off")
    assert row["source_of_personal_data"] == ""
    assert row["business_function"] == "Population health management (Testshire)"


def test_every_csv_column_has_its_ico_template_heading(assured, practice_a):
    record = _record(practice_a)
    headings = {c["key"]: c["heading"] for c in record["columns"]}
    assert list(headings) == selectors.ROPA_CSV_COLUMNS
    assert headings["categories_of_data_subjects"] == "Categories of individuals"
    assert headings["article_9_condition"] == (
        "Article 9 condition for processing special category data"
    )
    assert headings["retention"] == "Retention schedule (if possible)"


def test_a_title_that_would_run_as_a_formula_is_written_as_text(assured, practice_a):
    from governance.models import SharingAgreement

    SharingAgreement.objects.update(title='=HYPERLINK("http://evil.example","x")')
    text = selectors.record_of_processing_csv(_record(practice_a))
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["sharing_agreements"].startswith("'=HYPERLINK(")


def test_the_api_json_carries_the_processor_record(api, assured, admin):
    response = api(admin).get("/api/v1/organisations/0AR/record-of-processing/")
    assert response.status_code == 200
    body = response.json()
    assert body["processing_for_controllers"][0]["programme"] == "testshire"
    assert body["controller"]["dspt"]["status"] == "Standards Exceeded"
