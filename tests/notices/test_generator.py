import pytest

from governance import services as gov
from governance.models import DataFlow, LegalBasis, Organisation, Programme
from notices import services
from notices.render import to_plain
from tests.factories import DataFlowFactory, OrganisationFactory
from tests.notices.conftest import section


def text(version, key: str) -> str:
    return " ".join(to_plain(section(version, key)["generated_text"]).split())


def test_a_draft_names_the_controllers_and_processors_and_what_each_does(draft):
    controllers = text(draft, "controllers")
    assert "Practice A Surgery" in controllers and "Practice B Surgery" in controllers
    assert "dpo@practice-a.example.nhs.uk" in controllers
    recipients = text(draft, "recipients")
    assert (
        "North of England Commissioning Support Unit (NECS), part of NHS England (processor): "
        "will de-identify (pseudonymise) the data and link the information together." in recipients
    )
    assert "https://www.necsu.nhs.uk/" in recipients


def test_a_draft_quotes_the_official_wording_of_each_legal_basis(draft):
    # The section names each basis in plain words; its annex quotes the law in full.
    law = text(draft, "legal_basis") + " " + text(draft, "law")
    for code in ("UK-GDPR-6-1-e", "UK-GDPR-9-2-h"):
        basis = LegalBasis.objects.get(code=code)
        assert f"UK GDPR Article {basis.article}" in law
        assert basis.text.rstrip(";.") in law


def test_the_verbatim_law_is_in_the_annex_each_article_after_a_plain_sentence(draft):
    plain, annex = text(draft, "legal_basis"), text(draft, "law")
    assert (
        "UK GDPR Article 6(1)(e) (Public task). It lets public bodies, like the NHS, use "
        "information for their public tasks." in plain
    )
    assert (
        "UK GDPR Article 9(2)(h) (Health or social care). It lets health information be used "
        "to give and manage health and social care. Its words are: “processing is necessary "
        "for the purposes of preventive or occupational medicine" in annex
    )
    for code in ("UK-GDPR-6-1-e", "UK-GDPR-9-2-h"):
        words = LegalBasis.objects.get(code=code).text.rstrip(";.")
        assert words in annex and words not in plain


def test_a_draft_says_names_and_nhs_numbers_are_replaced_and_who_can_reidentify(draft):
    words = text(draft, "pseudonymisation")
    assert "like your name or NHS number, is removed and replaced with a code by NECS" in words
    assert "Only your GP practice can use the code to find out who you are" in words


def test_a_draft_states_the_length_and_the_destruction_certificate(draft):
    words = text(draft, "retention")
    assert "The programme runs for 20 weeks, from 7 September 2026 to 25 January 2027" in words
    assert "deleted together with the encryption keys" in words
    assert "A data destruction certificate" in words and "every data controller" in words


def test_a_draft_lists_the_rights_opt_outs_and_the_ico(draft):
    rights = text(draft, "rights")
    for right in (
        "informed",
        "access",
        "corrected",
        "erased",
        "restricted",
        "object",
        "automated",
        "data breach",
    ):
        assert right in rights
    opt_out = text(draft, "opt_out")
    assert "Type 1 opt-out" in opt_out and "Ask your GP practice" in opt_out
    assert "https://www.nhs.uk/your-nhs-data-matters/" in opt_out and "0300 3035678" in opt_out
    complaints = text(draft, "complaints")
    assert "https://ico.org.uk/make-a-complaint/" in complaints and "0303 123 1113" in complaints


def test_the_sources_come_from_the_participants_when_there_are_no_flows(draft):
    assert not DataFlow.objects.exists()
    assert "Your GP practice: GP records" in text(draft, "sources")


def test_approved_data_flows_add_their_sources_and_categories(complete, dpo_a, csu):
    trust = OrganisationFactory(ods_code="RH8", name="Royal Testshire Hospital", kind="nhs_trust")
    common = {"programme": complete, "destination": csu, "identifiability": "identifiable"}
    DataFlowFactory(
        source=trust, data_categories=["hospital", "mental_health"], status="approved", **common
    )
    council = OrganisationFactory(
        ods_code="E10000099", name="Testshire Council", kind="local_authority"
    )
    DataFlowFactory(source=council, data_categories=["social_care"], status="submitted", **common)
    version, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    sources = text(version, "sources")
    assert (
        "Royal Testshire Hospital, the NHS trust: hospital records and mental health records"
        in (sources)
    )
    assert "Testshire Council" not in sources  # not approved: no data moves on it


def test_an_unrecorded_overseas_transfer_says_nothing(complete, dpo_a):
    complete.overseas_transfer = Programme.OverseasTransfer.NOT_RECORDED
    complete.save()
    version, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    assert section(version, "overseas")["generated_text"] == ""
    assert "overseas" not in " ".join(s["generated_text"] for s in version.sections).lower()


def test_when_the_national_opt_out_does_not_apply_the_draft_says_why(complete, dpo_a):
    complete.national_opt_out_applies = False
    complete.national_opt_out_exemption = "The programme has section 251 support for this use"
    complete.save()
    version, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    opt_out = text(version, "opt_out")
    assert "The national data opt-out does not apply to this programme." in opt_out
    assert "The programme has section 251 support for this use." in opt_out
    assert "0300 3035678" not in opt_out


def test_a_type1_opt_out_through_the_practice_dpo_names_their_contacts(complete, dpo_a):
    complete.type1_opt_out_contact = Programme.Type1Contact.PRACTICE_DPO
    complete.save()
    version, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    opt_out = text(version, "opt_out")
    assert "contact your GP practice's Data Protection Officer in the first instance" in opt_out
    assert "Practice A Surgery: dpo@practice-a.example.nhs.uk" in opt_out


def test_a_new_processor_and_a_new_length_make_the_next_draft_say_so(published, complete, dpo_a):
    optum = Organisation.objects.create(
        ods_code="OPTUMUK",
        name="Optum Health Solutions UK",
        short_name="Optum",
        kind="commercial_processor",
    )
    gov.participation_add(
        actor=None,
        programme=complete,
        organisation=optum,
        role="processor",
        responsibilities=["analyse"],
    )
    gov.programme_update(actor=None, programme=complete, data={"length_weeks": 22})
    version, created = services.notice_draft_generate(actor=dpo_a, programme=complete)
    assert created and version.number == 2
    changes = text(version, "changes")
    assert "Since version 1 of this notice" in changes
    assert (
        "Optum Health Solutions UK now takes part as processor: it will analyse the data."
        in changes
    )
    assert "The programme now runs for 22 weeks, not 20 weeks." in changes
    assert "Optum" in text(version, "recipients")
    assert "The programme runs for 22 weeks" in text(version, "retention")


def test_text_from_the_database_cannot_inject_markup(complete, dpo_a, csu):
    csu.name = "Evil <script>alert(1)</script> [click](javascript:alert(1)) CSU"
    csu.save()
    version, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    from notices.render import to_html

    html = to_html(section(version, "recipients")["generated_text"])
    assert "<script>" not in html and "javascript:" not in html.replace("[click](javascript:", "")
    assert "&lt;script&gt;" in html


@pytest.mark.parametrize("population,words", [(1_200_000, "1.2 million"), (250_000, "250,000")])
def test_the_population_is_written_for_people(complete, dpo_a, population, words):
    complete.population = population
    complete.save()
    version, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    assert f"the {words} people who live in Testshire" in text(version, "about")
