"""DPIAs, sharing agreements, organisations' assurance, the approval gate and four-eyes
reinstatement (issue 17): every step, every refusal, and nothing stored when refused."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from governance import assurance, permissions, services
from governance.models import (
    DPIA,
    DataFlow,
    DPIASignOff,
    Organisation,
    SharingAgreement,
    User,
)
from phm_portal.errors import InvalidInput, NotAllowedNow
from phm_portal.models import AuditEvent
from tests.assurance import assure_flow, assure_organisation, pdf
from tests.factories import OrganisationFactory, ParticipationFactory, ProgrammeFactory

TODAY = timezone.localdate()


def _events(obj, action):
    return AuditEvent.objects.filter(object_type=obj._meta.label_lower, action=action)


RISK = {
    "description": "Re-identification of a patient from a small area.",
    "likelihood": "possible",
    "severity": "significant",
    "measure": "Suppress counts under 10.",
}


def _dpia(actor, programme, flows=(), **extra):
    fields = {
        "title": "Testshire PHM DPIA",
        "description": "Linking GP and hospital records to find people who need support.",
        "necessity": "Pseudonymised, only the fields listed.",
        "review_date": TODAY + dt.timedelta(days=365),
        "data_flow_ids": [f.pk for f in flows],
        "risks": [RISK],
    } | extra
    return services.dpia_create(actor=actor, programme=programme, **fields)


def _agreement(actor, programme, parties, flows=(), **extra):
    fields = {
        "title": "Testshire DSA",
        "purpose": "Population health management.",
        "start_date": TODAY - dt.timedelta(days=10),
        "review_date": TODAY + dt.timedelta(days=100),
        "expiry_date": TODAY + dt.timedelta(days=365),
        "party_ods_codes": parties,
        "legal_basis_codes": ["UK-GDPR-6-1-e"],
        "data_flow_ids": [f.pk for f in flows],
    } | extra
    return services.sharing_agreement_create(actor=actor, programme=programme, **fields)


def _condition(flow, name):
    return next(c for c in assurance.flow_conditions(flow) if c.condition == name)


# --- DPIAs ------------------------------------------------------------------------------------
def test_a_csu_admin_drafts_a_dpia_covering_a_flow(admin, programme, unassured_draft):
    dpia = _dpia(admin, programme, [unassured_draft], document=pdf(), document_name="dpia.pdf")
    dpia.refresh_from_db()
    assert (dpia.status, dpia.created_by, dpia.document_name) == ("draft", admin, "dpia.pdf")
    assert list(dpia.data_flows.all()) == [unassured_draft]
    assert [(r.likelihood, r.severity) for r in dpia.risks.all()] == [("possible", "significant")]
    assert len(dpia.document_sha256) == 64 and bytes(dpia.document).startswith(b"%PDF-")
    event = _events(dpia, "dpia.created").get()
    assert event.details["data_flows"] == [unassured_draft.pk]
    assert "not signed off" in _condition(unassured_draft, "dpia").detail


def test_a_controllers_dpo_drafts_a_dpia(dpo_a, programme):
    assert _dpia(dpo_a, programme).created_by == dpo_a


@pytest.mark.parametrize("who", ["dpo_csu", "alice", "signatory_a", "auditor"])
def test_others_may_not_draft_a_dpia(who, programme, request):
    with pytest.raises(PermissionDenied):
        _dpia(request.getfixturevalue(who), programme)
    assert not DPIA.objects.exists()


@pytest.mark.parametrize(
    "document",
    [
        b"<html><body>not a pdf</body></html>",
        b"%PDF-1.7\n<script>alert(1)</script>\n",  # begins like a PDF, ends like nothing
        pdf()[:-30],  # a PDF cut short
        b"",
    ],
)
def test_a_document_that_is_not_a_whole_pdf_is_refused_naming_document(admin, programme, document):
    with pytest.raises(InvalidInput) as exc:
        _dpia(admin, programme, document=document)
    assert exc.value.field == "document"
    assert not DPIA.objects.exists()


def test_a_document_name_not_ending_in_pdf_is_refused(admin, programme):
    with pytest.raises(InvalidInput) as exc:
        _dpia(admin, programme, document=pdf(), document_name="dpia.exe")
    assert exc.value.field == "document_name"
    assert not DPIA.objects.exists()


def test_a_flow_of_another_programme_is_refused_naming_data_flows(admin, programme, csu):
    other = ProgrammeFactory(slug="elsewhere")
    practice = OrganisationFactory(ods_code="C83003", kind="gp_practice")
    for organisation in (practice, csu):
        ParticipationFactory(programme=other, organisation=organisation)
    flow = services.data_flow_create(
        actor=admin,
        programme=other,
        source=practice,
        destination=csu,
        data_categories=["gp"],
        identifiability="identifiable",
    )
    with pytest.raises(InvalidInput, match=f"has the id {flow.pk}") as exc:
        _dpia(admin, programme, [flow])
    assert exc.value.field == "data_flows"
    with pytest.raises(InvalidInput) as exc:
        _dpia(admin, programme, data_flow_ids=["x"])
    assert exc.value.field == "data_flows"
    assert not DPIA.objects.exists()


@pytest.mark.parametrize(
    "extra",
    [
        {"ico_consulted_on": TODAY + dt.timedelta(days=1)},
        {"ico_consulted_on": TODAY, "review_date": TODAY - dt.timedelta(days=1)},
        {"ico_consultation_outcome": "Go ahead."},
    ],
)
def test_ico_consultation_out_of_order_is_refused_naming_it(admin, programme, extra):
    with pytest.raises(InvalidInput) as exc:
        _dpia(admin, programme, **extra)
    assert exc.value.field == "ico_consulted_on"
    assert not DPIA.objects.exists()


@pytest.mark.parametrize(
    "risks",
    [
        [RISK | {"likelihood": "certain"}],
        [RISK | {"measure": " "}],
        ["a risk"],
        "a risk",
    ],
)
def test_a_malformed_risk_is_refused_naming_risks(admin, programme, risks):
    with pytest.raises(InvalidInput) as exc:
        _dpia(admin, programme, risks=risks)
    assert exc.value.field == "risks"
    assert not DPIA.objects.exists()


@pytest.fixture
def advised(admin, dpo_a, programme, unassured_draft):
    dpia = _dpia(admin, programme, [unassured_draft])
    return services.dpia_record_dpo_advice(
        actor=dpo_a, dpia=dpia, advice="Suppress small numbers.", followed=True
    )


def test_the_dpo_records_advice(advised, dpo_a):
    advised.refresh_from_db()
    assert (advised.status, advised.dpo_advice_by, advised.dpo_advice_followed) == (
        "dpo_advice",
        dpo_a,
        True,
    )
    assert _events(advised, "dpia.dpo_advice_recorded").get().details["followed"] is True


def test_advice_not_followed_says_why(admin, dpo_a, programme):
    dpia = _dpia(admin, programme)
    with pytest.raises(InvalidInput) as exc:
        services.dpia_record_dpo_advice(actor=dpo_a, dpia=dpia, advice="Do not.", followed=False)
    assert exc.value.field == "not_followed_reason"
    dpia = services.dpia_record_dpo_advice(
        actor=dpo_a,
        dpia=dpia,
        advice="Do not.",
        followed=False,
        not_followed_reason="The benefit outweighs the risk.",
    )
    assert dpia.dpo_advice_not_followed_reason == "The benefit outweighs the risk."


@pytest.mark.parametrize("who", ["dpo_csu", "dpo_b_outside", "admin", "signatory_a", "alice"])
def test_only_a_controllers_dpo_advises(who, admin, programme, request, csu):
    if who == "dpo_b_outside":
        outside = OrganisationFactory(ods_code="X99999")
        user = User.objects.create(username="dpo-x", role=User.Role.DPO)
        permissions.bind(user, outside)
    else:
        user = request.getfixturevalue(who)
    dpia = _dpia(admin, programme)
    with pytest.raises(PermissionDenied):
        services.dpia_record_dpo_advice(actor=user, dpia=dpia, advice="x", followed=True)
    dpia.refresh_from_db()
    assert (dpia.status, dpia.dpo_advice) == ("draft", "")


def test_every_controller_signs_before_the_dpia_is_signed_off(
    advised, signatory_a, signatory_b, practice_a, practice_b, unassured_draft
):
    dpia = services.dpia_sign_off(actor=signatory_a, dpia=advised, organisation=practice_a)
    assert (dpia.status, dpia.signed_off_at) == ("dpo_advice", None)
    assert _events(dpia, "dpia.signed").get().details["waiting_for"] == ["B82002"]
    dpia = services.dpia_sign_off(actor=signatory_b, dpia=advised, organisation=practice_b)
    assert dpia.status == "signed_off" and dpia.signed_off_at is not None
    assert _events(dpia, "dpia.signed_off").exists()
    assert _condition(unassured_draft, "dpia").holds


def test_a_signatory_signing_for_another_organisation_is_refused_naming_it(
    advised, signatory_a, practice_b, csu
):
    for organisation in (practice_b, csu):  # another controller; not a controller at all
        with pytest.raises(InvalidInput) as exc:
            services.dpia_sign_off(actor=signatory_a, dpia=advised, organisation=organisation)
        assert exc.value.field == "organisation"
    assert not DPIASignOff.objects.exists()


@pytest.mark.parametrize("who", ["dpo_a", "admin", "alice"])
def test_only_a_signatory_signs_off(advised, who, practice_a, request):
    with pytest.raises(PermissionDenied):
        services.dpia_sign_off(
            actor=request.getfixturevalue(who), dpia=advised, organisation=practice_a
        )
    assert not DPIASignOff.objects.exists()


def test_a_dpia_is_not_signed_off_before_the_dpo_advises(admin, programme, signatory_a, practice_a):
    dpia = _dpia(admin, programme)
    with pytest.raises(NotAllowedNow) as exc:
        services.dpia_sign_off(actor=signatory_a, dpia=dpia, organisation=practice_a)
    assert exc.value.code == "dpia_not_ready_for_sign_off"


def test_signing_twice_is_a_409(advised, signatory_a, practice_a):
    services.dpia_sign_off(actor=signatory_a, dpia=advised, organisation=practice_a)
    with pytest.raises(NotAllowedNow, match="already signed off for Practice A"):
        services.dpia_sign_off(actor=signatory_a, dpia=advised, organisation=practice_a)
    assert DPIASignOff.objects.count() == 1


def test_a_high_residual_risk_needs_the_ico_consulted_before_sign_off(
    admin, dpo_a, programme, signatory_a, practice_a
):
    dpia = _dpia(admin, programme, residual_risk="high")
    services.dpia_record_dpo_advice(
        actor=dpo_a, dpia=dpia, advice="Consult the ICO.", followed=True
    )
    with pytest.raises(NotAllowedNow) as exc:
        services.dpia_sign_off(actor=signatory_a, dpia=dpia, organisation=practice_a)
    assert exc.value.code == "dpia_ico_not_consulted"
    assert not DPIASignOff.objects.exists()


@pytest.fixture
def signed_off(advised, signatory_a, signatory_b, practice_a, practice_b):
    services.dpia_sign_off(actor=signatory_a, dpia=advised, organisation=practice_a)
    return services.dpia_sign_off(actor=signatory_b, dpia=advised, organisation=practice_b)


def test_a_signed_off_dpia_does_not_change_until_reviewed(signed_off, admin):
    with pytest.raises(NotAllowedNow) as exc:
        services.dpia_update(actor=admin, dpia=signed_off, data={"title": "Changed"})
    assert exc.value.code == "dpia_not_editable"
    assert DPIA.objects.get(pk=signed_off.pk).title == "Testshire PHM DPIA"


def test_a_review_keeps_the_flow_standing_and_ends_in_a_new_sign_off(
    signed_off, admin, dpo_a, signatory_a, signatory_b, practice_a, practice_b, unassured_draft
):
    dpia = services.dpia_start_review(actor=admin, dpia=signed_off)
    assert (dpia.status, dpia.dpo_advice, dpia.sign_offs.count()) == ("under_review", "", 0)
    assert _condition(unassured_draft, "dpia").holds  # still standing on the last sign-off
    previous = _events(dpia, "dpia.review_started").get().details["previous"]
    assert previous["advice"] == "Suppress small numbers." and len(previous["sign_offs"]) == 2
    dpia = services.dpia_update(actor=admin, dpia=dpia, data={"version": "2.0"}, risks=[RISK, RISK])
    assert (dpia.version, dpia.risks.count()) == ("2.0", 2)
    with pytest.raises(NotAllowedNow):  # no advice yet in this round
        services.dpia_sign_off(actor=signatory_a, dpia=dpia, organisation=practice_a)
    services.dpia_record_dpo_advice(actor=dpo_a, dpia=dpia, advice="Fine.", followed=True)
    assert DPIA.objects.get(pk=dpia.pk).status == "under_review"
    services.dpia_sign_off(actor=signatory_a, dpia=dpia, organisation=practice_a)
    dpia = services.dpia_sign_off(actor=signatory_b, dpia=dpia, organisation=practice_b)
    assert dpia.status == "signed_off"


def test_only_a_signed_off_dpia_is_reviewed(admin, programme):
    with pytest.raises(NotAllowedNow):
        services.dpia_start_review(actor=admin, dpia=_dpia(admin, programme))


# --- sharing agreements ---------------------------------------------------------------------------
def test_an_agreement_is_recorded_and_signed_by_each_party(
    admin, programme, unassured_draft, signatory_a, signatory_csu, practice_a, csu
):
    agreement = _agreement(admin, programme, ["A81001", "0ar"], [unassured_draft], document=pdf())
    assert sorted(agreement.parties.values_list("organisation__ods_code", flat=True)) == [
        "0AR",
        "A81001",
    ]
    assert "is not signed for" in _condition(unassured_draft, "sharing_agreement").detail
    services.sharing_agreement_sign(actor=signatory_a, agreement=agreement, organisation=practice_a)
    services.sharing_agreement_sign(
        actor=signatory_csu,
        agreement=agreement,
        organisation=csu,
        signed_on=TODAY - dt.timedelta(days=2),
    )
    assert _condition(unassured_draft, "sharing_agreement").holds
    event = _events(agreement, "sharing_agreement.signed").last()
    assert event.details == {
        "organisation": "0AR",
        "signed_on": (TODAY - dt.timedelta(days=2)).isoformat(),
        "waiting_for": [],
    }


@pytest.mark.parametrize(
    "dates, field",
    [
        ({"review_date": TODAY - dt.timedelta(days=11)}, "review_date"),
        ({"expiry_date": TODAY + dt.timedelta(days=99)}, "expiry_date"),
    ],
)
def test_dates_out_of_order_are_refused_naming_the_date(admin, programme, dates, field):
    with pytest.raises(InvalidInput) as exc:
        _agreement(admin, programme, ["A81001", "0AR"], **dates)
    assert exc.value.field == field
    assert not SharingAgreement.objects.exists()


def test_a_party_outside_the_programme_is_refused_naming_parties(admin, programme):
    OrganisationFactory(ods_code="X99999")
    for parties in (["A81001", "X99999"], ["A81001", "NOPE1"], ["A81001"], "A81001"):
        with pytest.raises(InvalidInput) as exc:
            _agreement(admin, programme, parties)
        assert exc.value.field == "parties"
    assert not SharingAgreement.objects.exists()


def test_a_flow_between_non_parties_is_refused_naming_data_flows(admin, programme, unassured_draft):
    with pytest.raises(InvalidInput) as exc:
        _agreement(admin, programme, ["A81001", "B82002"], [unassured_draft])
    assert exc.value.field == "data_flows"
    assert not SharingAgreement.objects.exists()


def test_a_party_dpo_records_an_agreement_but_not_an_outsider(dpo_a, dpo_b, alice, programme):
    assert _agreement(dpo_a, programme, ["A81001", "0AR"]).created_by == dpo_a
    for user in (dpo_b, alice):
        with pytest.raises(PermissionDenied):
            _agreement(user, programme, ["A81001", "0AR"], title="Another")
    assert SharingAgreement.objects.count() == 1


@pytest.fixture
def agreement(admin, programme, unassured_draft):
    return _agreement(admin, programme, ["A81001", "0AR"], [unassured_draft])


def test_a_signatory_of_another_organisation_is_refused_naming_organisation(
    agreement, signatory_a, signatory_b, csu, practice_b
):
    with pytest.raises(InvalidInput) as exc:
        services.sharing_agreement_sign(actor=signatory_a, agreement=agreement, organisation=csu)
    assert exc.value.field == "organisation"
    with pytest.raises(InvalidInput) as exc:  # not a party at all
        services.sharing_agreement_sign(
            actor=signatory_b, agreement=agreement, organisation=practice_b
        )
    assert exc.value.field == "organisation"
    assert not agreement.parties.filter(signed_on__isnull=False).exists()


@pytest.mark.parametrize("days", [1, 400])
def test_a_signature_dated_in_the_future_or_after_expiry_is_refused(
    agreement, signatory_a, practice_a, days
):
    with pytest.raises(InvalidInput) as exc:
        services.sharing_agreement_sign(
            actor=signatory_a,
            agreement=agreement,
            organisation=practice_a,
            signed_on=TODAY + dt.timedelta(days=days),
        )
    assert exc.value.field == "signed_on"
    assert not agreement.parties.filter(signed_on__isnull=False).exists()


def test_a_party_signs_once(agreement, signatory_a, practice_a):
    services.sharing_agreement_sign(actor=signatory_a, agreement=agreement, organisation=practice_a)
    with pytest.raises(NotAllowedNow) as exc:
        services.sharing_agreement_sign(
            actor=signatory_a, agreement=agreement, organisation=practice_a
        )
    assert exc.value.code == "already_signed"


def test_an_agreement_changes_until_signed_and_then_no_more(
    agreement, admin, signatory_a, practice_a
):
    agreement = services.sharing_agreement_update(
        actor=admin,
        agreement=agreement,
        data={"expiry_date": TODAY + dt.timedelta(days=500)},
        party_ods_codes=["A81001", "0AR", "B82002"],
    )
    assert agreement.parties.count() == 3
    changed = _events(agreement, "sharing_agreement.updated").get().details["changed"]
    assert changed["parties"] == [["0AR", "A81001"], ["0AR", "A81001", "B82002"]]
    with pytest.raises(InvalidInput) as exc:
        services.sharing_agreement_update(
            actor=admin, agreement=agreement, data={"start_date": TODAY + dt.timedelta(days=600)}
        )
    assert exc.value.field == "review_date"
    assert SharingAgreement.objects.get(pk=agreement.pk).start_date == TODAY - dt.timedelta(days=10)
    services.sharing_agreement_sign(actor=signatory_a, agreement=agreement, organisation=practice_a)
    with pytest.raises(NotAllowedNow) as exc:
        services.sharing_agreement_update(actor=admin, agreement=agreement, data={"title": "New"})
    assert exc.value.code == "agreement_signed"


# --- organisations -------------------------------------------------------------------------------
def test_an_organisations_dspt_and_ico_are_recorded_and_audited(admin, practice_a):
    services.organisation_update(
        actor=admin,
        organisation=practice_a,
        data={
            "dspt_status": "exceeded",
            "dspt_year": "2025-26",
            "dspt_published_on": dt.date(2026, 6, 20),
            "ico_registration_number": "ZA123456",
            "ico_registration_expires_on": TODAY + dt.timedelta(days=30),
        },
    )
    practice_a.refresh_from_db()
    assert (practice_a.dspt_status, practice_a.dspt_year) == ("exceeded", "2025-26")
    changed = _events(practice_a, "organisation.updated").get().details["changed"]
    assert changed["dspt_published_on"] == [None, "2026-06-20"]


@pytest.mark.parametrize(
    "data, field",
    [
        ({"dspt_status": "met"}, "dspt_year"),
        ({"dspt_status": "met", "dspt_year": "2025-27"}, "dspt_year"),
        ({"dspt_status": "bogus"}, "dspt_status"),
        (
            {
                "dspt_status": "met",
                "dspt_year": "2025-26",
                "dspt_published_on": TODAY + dt.timedelta(days=1),
            },
            "dspt_published_on",
        ),
        (
            {
                "dspt_status": "met",
                "dspt_year": "2025-26",
                "dspt_published_on": dt.date(2025, 3, 31),
            },
            "dspt_published_on",
        ),
        ({"ico_registration_expires_on": TODAY}, "ico_registration_number"),
    ],
)
def test_an_impossible_assurance_record_is_refused_naming_the_field(admin, practice_a, data, field):
    with pytest.raises((InvalidInput, ValidationError)) as exc:
        services.organisation_update(actor=admin, organisation=practice_a, data=data)
    named = exc.value.field if isinstance(exc.value, InvalidInput) else exc.value.message_dict
    assert field in named
    stored = Organisation.objects.get(pk=practice_a.pk)
    assert (stored.dspt_status, stored.dspt_year, stored.ico_registration_expires_on) == (
        "not_published",
        "",
        None,
    )
    assert practice_a.dspt_status == "not_published"  # the caller's copy is what is stored


def test_a_signatory_is_bound_to_an_organisation(admin):
    with pytest.raises(InvalidInput) as exc:
        services.user_create(actor=admin, username="siro", email="", role="signatory")
    assert exc.value.field == "organisations"


def test_a_signatory_may_sign_and_nothing_else():
    assert permissions.ROLE_CAPABILITIES[User.Role.SIGNATORY] == {"sign_assurance"}


# --- the gate -------------------------------------------------------------------------------------
@pytest.fixture
def unassured_submitted(unassured_draft, admin):
    return services.data_flow_submit(actor=admin, flow=unassured_draft)


def test_a_flow_with_nothing_behind_it_is_not_approved_and_every_condition_is_named(
    unassured_submitted, admin2
):
    with pytest.raises(NotAllowedNow) as exc:
        services.data_flow_approve(actor=admin2, flow=unassured_submitted)
    assert exc.value.code == "assurance_conditions_fail"
    assert [d["condition"] for d in exc.value.details] == list(assurance.CONDITIONS)
    assert all(d["holds"] is False for d in exc.value.details)
    assert "6 of its assurance conditions fail" in exc.value.message
    assert "No DPIA covers this flow." in exc.value.message
    flow = DataFlow.objects.get(pk=unassured_submitted.pk)
    assert (flow.status, flow.decided_by) == ("submitted", None)
    assert not _events(flow, "data_flow.approved").exists()


def test_one_lapsed_condition_is_enough_to_refuse_and_only_it_is_named(submitted, admin2, csu):
    Organisation.objects.filter(pk=csu.pk).update(
        ico_registration_expires_on=TODAY - dt.timedelta(days=1)
    )
    with pytest.raises(NotAllowedNow, match="1 of its assurance conditions fails") as exc:
        services.data_flow_approve(actor=admin2, flow=submitted)
    assert exc.value.details == [
        {
            "condition": "destination_ico",
            "holds": False,
            "detail": _condition(DataFlow.objects.get(pk=submitted.pk), "destination_ico").detail,
        }
    ]
    assert DataFlow.objects.get(pk=submitted.pk).status == "submitted"


def test_a_dspt_of_a_past_year_or_below_standard_refuses(submitted, admin2, practice_a):
    Organisation.objects.filter(pk=practice_a.pk).update(dspt_status="approaching")
    with pytest.raises(NotAllowedNow) as exc:
        services.data_flow_approve(actor=admin2, flow=submitted)
    assert [d["condition"] for d in exc.value.details] == ["source_dspt"]
    Organisation.objects.filter(pk=practice_a.pk).update(dspt_status="met", dspt_year="2019-20")
    with pytest.raises(NotAllowedNow, match="no longer current"):
        services.data_flow_approve(actor=admin2, flow=submitted)


def test_permissions_are_checked_before_the_conditions(unassured_submitted, alice, admin):
    with pytest.raises(PermissionDenied):
        services.data_flow_approve(actor=alice, flow=unassured_submitted)
    with pytest.raises(PermissionDenied, match="four eyes"):
        services.data_flow_approve(actor=admin, flow=unassured_submitted)


def test_a_flow_assured_through_the_services_is_approved(
    unassured_submitted,
    admin,
    admin2,
    dpo_a,
    signatory_a,
    signatory_b,
    signatory_csu,
    programme,
    practice_a,
    practice_b,
    csu,
):
    dpia = _dpia(admin, programme, [unassured_submitted])
    services.dpia_record_dpo_advice(actor=dpo_a, dpia=dpia, advice="Go.", followed=True)
    services.dpia_sign_off(actor=signatory_a, dpia=dpia, organisation=practice_a)
    services.dpia_sign_off(actor=signatory_b, dpia=dpia, organisation=practice_b)
    agreement = _agreement(admin, programme, ["A81001", "0AR"], [unassured_submitted])
    services.sharing_agreement_sign(actor=signatory_a, agreement=agreement, organisation=practice_a)
    services.sharing_agreement_sign(actor=signatory_csu, agreement=agreement, organisation=csu)
    for organisation in (practice_a, csu):
        assure_organisation(organisation)
    flow = services.data_flow_approve(actor=admin2, flow=unassured_submitted)
    assert flow.status == "approved"


# --- four-eyes reinstatement --------------------------------------------------------------------------
def test_reinstatement_is_asked_for_then_decided_by_another_admin(suspended, admin, admin2):
    flow = services.data_flow_request_reinstatement(actor=admin2, flow=suspended, comment="OK now")
    assert (flow.status, flow.reinstatement_requested_by) == ("suspended", admin2)
    assert permissions.data_flow_actions_for(admin, flow) == ["reinstate", "close"]
    assert permissions.data_flow_actions_for(admin2, flow) == ["close"]
    with pytest.raises(PermissionDenied, match="four eyes"):
        services.data_flow_reinstate(actor=admin2, flow=flow)
    flow = services.data_flow_reinstate(actor=admin, flow=flow)
    flow.refresh_from_db()
    assert (flow.status, flow.reinstatement_requested_by, flow.suspension_reason) == (
        "approved",
        None,
        "",
    )


def test_a_suspended_flow_offers_to_ask_for_reinstatement(suspended, admin, alice):
    assert suspended.suspension_reason == "DSA under review."
    assert permissions.data_flow_actions_for(admin, suspended) == [
        "request_reinstatement",
        "close",
    ]
    assert permissions.data_flow_actions_for(alice, suspended) == []


def test_reinstating_without_a_request_is_a_409(suspended, admin):
    with pytest.raises(NotAllowedNow) as exc:
        services.data_flow_reinstate(actor=admin, flow=suspended)
    assert exc.value.code == "reinstatement_not_requested"
    assert DataFlow.objects.get(pk=suspended.pk).status == "suspended"


def test_reinstatement_is_not_asked_for_while_a_condition_fails(suspended, admin2):
    SharingAgreement.objects.filter(data_flows=suspended).update(
        start_date=TODAY - dt.timedelta(days=90),
        review_date=TODAY - dt.timedelta(days=60),
        expiry_date=TODAY - dt.timedelta(days=1),
    )
    with pytest.raises(NotAllowedNow, match="expired on") as exc:
        services.data_flow_request_reinstatement(actor=admin2, flow=suspended)
    assert exc.value.code == "assurance_conditions_fail"
    assert DataFlow.objects.get(pk=suspended.pk).reinstatement_requested_by is None


def test_a_condition_lapsing_after_the_request_stops_the_reinstatement(
    reinstatement_requested, admin, practice_a
):
    Organisation.objects.filter(pk=practice_a.pk).update(dspt_status="not_met")
    with pytest.raises(NotAllowedNow) as exc:
        services.data_flow_reinstate(actor=admin, flow=reinstatement_requested)
    assert [d["condition"] for d in exc.value.details] == ["source_dspt"]
    assert DataFlow.objects.get(pk=reinstatement_requested.pk).status == "suspended"


def test_reinstatement_is_asked_for_once(reinstatement_requested, admin):
    with pytest.raises(NotAllowedNow) as exc:
        services.data_flow_request_reinstatement(actor=admin, flow=reinstatement_requested)
    assert exc.value.code == "reinstatement_already_requested"


@pytest.mark.parametrize("who", ["dpo_a", "alice", "auditor", "signatory_a"])
def test_only_a_csu_admin_asks_for_reinstatement(suspended, who, request):
    with pytest.raises(PermissionDenied):
        services.data_flow_request_reinstatement(actor=request.getfixturevalue(who), flow=suspended)
    assert DataFlow.objects.get(pk=suspended.pk).reinstatement_requested_by is None


def test_an_approved_flow_is_not_asked_to_be_reinstated(approved, admin):
    with pytest.raises(NotAllowedNow, match="this one is approved"):
        services.data_flow_request_reinstatement(actor=admin, flow=approved)


def test_assure_flow_holds_on_the_day_given(draft):
    later = TODAY + dt.timedelta(days=400)
    assert not all(c.holds for c in assurance.flow_conditions(draft, today=later))
    assure_flow(draft, today=later)
    assert all(c.holds for c in assurance.flow_conditions(draft, today=later))


def test_a_signed_off_dpia_takes_its_first_document_but_no_replacement(signed_off, admin):
    dpia = services.dpia_update(
        actor=admin, dpia=signed_off, data={}, document=pdf(), document_name="signed.pdf"
    )
    assert (dpia.status, dpia.document_name) == ("signed_off", "signed.pdf")
    with pytest.raises(NotAllowedNow) as exc:
        services.dpia_update(actor=admin, dpia=dpia, data={}, document=pdf(), document_name="b.pdf")
    assert exc.value.code == "dpia_not_editable"
    assert DPIA.objects.get(pk=dpia.pk).document_name == "signed.pdf"
