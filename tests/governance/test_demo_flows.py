"""The demo regions' data flows, from their notices (load_demo)."""

import pytest
from django.core.management import call_command

from governance.demo import NECS, NHS_DIGITAL, OPTUM, PRACTICES
from governance.models import DataFlow, Organisation
from phm_portal.audit import audit_verify


@pytest.fixture
def demo(db, settings):
    settings.DEMO_PASSWORD = "a-demo-password"
    call_command("load_demo")


def _pairs(slug, status=None):
    qs = DataFlow.objects.filter(programme__slug=slug)
    if status:
        qs = qs.filter(status=status)
    return {
        (f.source.ods_code, f.destination.ods_code, f.identifiability, tuple(f.data_categories))
        for f in qs.select_related("source", "destination")
    }


def test_every_demo_practice_has_an_approved_flow_of_its_gp_data(demo):
    for slug, practices in PRACTICES.items():
        for practice in practices:
            flows = DataFlow.objects.filter(
                programme__slug=slug, source__ods_code=practice["ods_code"], status="approved"
            )
            assert any("gp" in f.data_categories for f in flows), (slug, practice["ods_code"])


def test_every_demo_approval_respects_four_eyes(demo):
    decided = DataFlow.objects.filter(status__in=["approved", "rejected"])
    assert decided.exists()
    for flow in decided.select_related("submitted_by", "decided_by"):
        assert flow.submitted_by.username == "csu-admin"
        assert flow.decided_by.username == "csu-admin-2"


def test_the_queue_is_not_empty_and_a_rejection_says_why(demo):
    assert DataFlow.objects.filter(status="submitted").count() >= 1
    rejected = DataFlow.objects.get(status="rejected")
    assert "pseudonymised data only" in rejected.decision_comment


def test_cambridgeshire_flows_follow_its_notice(demo):
    approved = _pairs("cambridgeshire-peterborough", "approved")
    assert (NHS_DIGITAL, NECS, "identifiable", ("national",)) in approved
    assert (NECS, OPTUM, "pseudonymised", ("gp", "social_care", "national")) in approved
    for practice in PRACTICES["cambridgeshire-peterborough"]:
        ods = practice["ods_code"]
        assert (ods, NECS, "identifiable", ("gp",)) in approved
        assert (OPTUM, ods, "pseudonymised", ("gp", "social_care", "national")) in approved
    assert ("E10000003", NECS, "identifiable", ("social_care",)) in _pairs(
        "cambridgeshire-peterborough", "submitted"
    )


def test_devon_sends_to_its_ccg_and_has_no_commercial_processor(demo):
    flows = _pairs("devon")
    assert {(p["ods_code"], "15N", "identifiable", ("gp",)) for p in PRACTICES["devon"]} <= flows
    optum = Organisation.objects.get(ods_code=OPTUM)
    assert not DataFlow.objects.filter(programme__slug="devon", destination=optum).exists()


def test_north_east_lincolnshire_sends_back_to_the_practices(demo):
    approved = _pairs("north-east-lincolnshire", "approved")
    assert (NECS, OPTUM, "pseudonymised", ("gp",)) in approved
    for practice in PRACTICES["north-east-lincolnshire"]:
        assert (OPTUM, practice["ods_code"], "pseudonymised", ("gp",)) in approved


def test_demo_flows_have_legal_bases_and_dpia_and_dsa_references(demo):
    for flow in DataFlow.objects.prefetch_related("legal_bases"):
        assert sorted(b.code for b in flow.legal_bases.all()) == ["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"]
        assert flow.dpia_reference.startswith("DPIA-PHM-")
        assert flow.dsa_reference.startswith("DSA-")


def test_loading_the_demo_again_adds_no_flow(demo):
    count = DataFlow.objects.count()
    call_command("load_demo")
    assert DataFlow.objects.count() == count
    assert audit_verify().valid
