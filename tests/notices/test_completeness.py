import pytest

from governance.models import Participation, Programme
from notices import services
from notices.completeness import missing_items


def test_a_complete_programme_has_nothing_missing(draft):
    assert services.notice_version_missing(draft) == []


def _remove_lead_dpo(p):
    lead = p.participations.get(is_lead=True).organisation
    lead.dpo_email = ""
    lead.save()


def _no_purposes(p):
    p.purposes = []
    p.save()


def _no_processor(p):
    p.participations.filter(role=Participation.Role.PROCESSOR).delete()


def _overseas_not_recorded(p):
    p.overseas_transfer = Programme.OverseasTransfer.NOT_RECORDED
    p.save()


def _transfer_without_safeguard_detail(p):
    p.overseas_transfer = Programme.OverseasTransfer.IDTA
    p.save()


def _no_length_nor_start(p):
    p.length_weeks = None
    p.start_date = None
    p.end_date = None
    p.save()


def _no_article_9_condition(p):
    p.legal_bases.remove(*p.legal_bases.filter(regime="uk_gdpr_9"))


def _no_sources(p):
    p.participations.filter(role__in=["controller", "joint_controller"]).update(responsibilities=[])
    from governance.models import Organisation

    Organisation.objects.filter(kind="gp_practice").update(kind="ccg")


@pytest.mark.parametrize(
    "change,expected",
    [
        (_remove_lead_dpo, "13(1)(b) contact details of the DPO"),
        (_no_purposes, "13(1)(c) purposes and legal basis: the purposes of the processing"),
        (
            _no_article_9_condition,
            "13(1)(c) purposes and legal basis: a condition under Article 9(2) for health data",
        ),
        (_no_processor, "13(1)(e) recipients or categories of recipients"),
        (
            _overseas_not_recorded,
            "13(1)(f) overseas transfers (whether data leaves the UK, and under which safeguard)",
        ),
        (
            _transfer_without_safeguard_detail,
            "13(1)(f) overseas transfers (whether data leaves the UK, and under which safeguard)",
        ),
        (_no_length_nor_start, "13(2)(a) retention period (or the criteria that set it)"),
        (_no_sources, "14(2)(f) source of the data"),
    ],
)
def test_each_missing_fact_is_named_with_its_article(complete, dpo_a, change, expected):
    change(complete)
    version, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    items = [m["item"] for m in services.notice_version_missing(version)]
    assert expected in items
    article = expected.split(" ")[0]
    assert {"item": expected, "article": article} in services.notice_version_missing(version)


def test_a_programme_without_a_stated_length_still_states_its_retention_criteria(complete, dpo_a):
    complete.length_weeks = None
    complete.end_date = None
    complete.save()
    version, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    assert services.notice_version_missing(version) == []
    retention = next(s for s in version.sections if s["key"] == "retention")["generated_text"]
    assert "The length of the programme has not been stated" in retention


@pytest.mark.parametrize(
    "key,article", [("rights", "13(2)(b)"), ("complaints", "13(2)(d)"), ("controllers", "13(1)(a)")]
)
def test_a_version_without_a_required_section_is_incomplete(draft, key, article):
    sections = [s for s in draft.sections if s["key"] != key]
    missing = missing_items(facts=draft.facts, sections=sections)
    assert article in {m["article"] for m in missing}
