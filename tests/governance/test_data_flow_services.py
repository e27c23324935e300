"""The data flow workflow: every transition, every refusal, and the claimed row."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404

from governance import permissions, selectors, services
from governance.models import DataFlow, Programme
from phm_portal.audit import audit_verify
from phm_portal.errors import InvalidInput, NotAllowedNow
from phm_portal.models import AuditEvent
from tests.factories import OrganisationFactory, UserFactory
from tests.governance.conftest import BASES


def _events(flow, action):
    return AuditEvent.objects.filter(
        object_type="governance.dataflow", object_id=str(flow.pk), action=action
    )


def _create(actor, programme, source, destination, **extra):
    fields = {
        "data_categories": ["gp"],
        "identifiability": "identifiable",
        "legal_basis_codes": BASES,
        "dpia_reference": "DPIA-1",
        "dsa_reference": "DSA-1",
    } | extra
    return services.data_flow_create(
        actor=actor, programme=programme, source=source, destination=destination, **fields
    )


# --- drafting ------------------------------------------------------------------------
def test_a_csu_admin_drafts_a_flow_between_two_participants(draft, admin):
    flow = DataFlow.objects.get(pk=draft.pk)
    assert flow.status == DataFlow.Status.DRAFT
    assert flow.created_by == admin
    assert sorted(flow.legal_bases.values_list("code", flat=True)) == BASES
    assert not flow.is_approved
    event = _events(flow, "data_flow.created").get()
    assert event.actor == "csu-admin"
    assert event.details["source"] == "A81001"
    assert event.details["destination"] == "0AR"
    assert event.details["data_categories"] == ["gp"]


def test_a_dpo_drafts_a_flow_from_their_own_organisation(dpo_a, programme, practice_a, csu):
    flow = _create(dpo_a, programme, practice_a, csu)
    assert (flow.status, flow.created_by) == (DataFlow.Status.DRAFT, dpo_a)


def test_a_dpo_of_another_organisation_cannot_draft_from_it(dpo_b, programme, practice_a, csu):
    with pytest.raises(PermissionDenied, match="only from your own organisation"):
        _create(dpo_b, programme, practice_a, csu)
    assert not DataFlow.objects.exists()


def test_a_practice_manager_cannot_draft_a_flow(alice, programme, practice_a, csu):
    with pytest.raises(PermissionDenied, match="Practice manager"):
        _create(alice, programme, practice_a, csu)
    assert not DataFlow.objects.exists()


def test_an_auditor_cannot_draft_a_flow(auditor, programme, practice_a, csu):
    with pytest.raises(PermissionDenied):
        _create(auditor, programme, practice_a, csu)


def test_both_ends_must_take_part_in_the_programme(admin, programme, practice_a):
    outsider = OrganisationFactory(ods_code="RXX", name="Elsewhere Trust", kind="nhs_trust")
    with pytest.raises(InvalidInput, match="Elsewhere Trust does not take part") as exc:
        _create(admin, programme, practice_a, outsider)
    assert exc.value.field == "destination"
    with pytest.raises(InvalidInput) as exc:
        _create(admin, programme, outsider, practice_a)
    assert exc.value.field == "source"
    assert not DataFlow.objects.exists()


def test_unknown_data_categories_are_refused_naming_the_field(admin, programme, practice_a, csu):
    with pytest.raises(InvalidInput, match="Unknown data category: genome") as exc:
        _create(admin, programme, practice_a, csu, data_categories=["gp", "genome"])
    assert exc.value.field == "data_categories"


def test_a_flow_carries_at_least_one_category(admin, programme, practice_a, csu):
    with pytest.raises(InvalidInput, match="at least one category") as exc:
        _create(admin, programme, practice_a, csu, data_categories=[])
    assert exc.value.field == "data_categories"


def test_categories_are_stored_once_in_catalogue_order(admin, programme, practice_a, csu):
    flow = _create(
        admin, programme, practice_a, csu, data_categories=["national", "gp", "national"]
    )
    assert flow.data_categories == ["gp", "national"]


def test_an_unknown_identifiability_is_refused_naming_the_field(admin, programme, practice_a, csu):
    with pytest.raises(ValidationError) as exc:
        _create(admin, programme, practice_a, csu, identifiability="sort-of")
    assert "identifiability" in exc.value.message_dict


def test_an_unknown_legal_basis_is_refused(admin, programme, practice_a, csu):
    with pytest.raises(InvalidInput, match="Unknown legal basis: GDPR-99") as exc:
        _create(admin, programme, practice_a, csu, legal_basis_codes=["GDPR-99"])
    assert exc.value.field == "legal_bases"


def test_a_flow_to_itself_is_refused(admin, programme, practice_a):
    with pytest.raises(InvalidInput, match="not to itself"):
        _create(admin, programme, practice_a, practice_a)


def test_a_flow_repeating_a_standing_one_is_refused(draft, admin, programme, practice_a, csu):
    with pytest.raises(InvalidInput, match=f"Data flow #{draft.pk} \\(draft\\) already carries"):
        _create(admin, programme, practice_a, csu, data_categories=["gp", "hospital"])


def test_the_same_data_may_be_proposed_again_after_a_rejection(
    submitted, admin, admin2, programme, practice_a, csu
):
    services.data_flow_reject(actor=admin2, flow=submitted, reason="Wrong DSA.")
    again = _create(admin, programme, practice_a, csu)
    assert again.status == DataFlow.Status.DRAFT


def test_no_flow_is_drafted_in_an_ended_programme(admin, programme, practice_a, csu):
    Programme.objects.filter(pk=programme.pk).update(status=Programme.Status.ENDED)
    programme.refresh_from_db()
    with pytest.raises(NotAllowedNow, match="is over"):
        _create(admin, programme, practice_a, csu)


# --- changing a draft ------------------------------------------------------------------
def test_a_draft_changes_and_the_change_is_audited(draft, admin):
    flow = services.data_flow_update(
        actor=admin,
        flow=draft,
        data={"data_categories": ["gp", "hospital"], "dpia_reference": " DPIA-2 "},
        legal_basis_codes=["UK-GDPR-6-1-e"],
    )
    flow.refresh_from_db()
    assert flow.data_categories == ["gp", "hospital"]
    assert flow.dpia_reference == "DPIA-2"
    assert list(flow.legal_bases.values_list("code", flat=True)) == ["UK-GDPR-6-1-e"]
    changed = _events(flow, "data_flow.updated").get().details["changed"]
    assert changed["data_categories"] == [["gp"], ["gp", "hospital"]]
    assert changed["legal_bases"] == [BASES, ["UK-GDPR-6-1-e"]]


def test_a_submitted_flow_no_longer_changes(submitted, admin):
    with pytest.raises(NotAllowedNow, match="Only a draft flow can change; this one is awaiting"):
        services.data_flow_update(actor=admin, flow=submitted, data={"purpose": "Other"})
    submitted.refresh_from_db()
    assert submitted.purpose.startswith("Send the practice's GP records")


def test_a_practice_manager_cannot_change_a_draft(draft, alice):
    with pytest.raises(PermissionDenied):
        services.data_flow_update(actor=alice, flow=draft, data={"purpose": "Other"})


# --- submitting ----------------------------------------------------------------------------
def test_its_author_submits_a_draft(submitted, admin):
    flow = DataFlow.objects.get(pk=submitted.pk)
    assert flow.status == DataFlow.Status.SUBMITTED
    assert flow.submitted_by == admin
    assert flow.submitted_at is not None
    event = _events(flow, "data_flow.submitted").get()
    assert (event.actor, event.details["from"], event.details["to"]) == (
        "csu-admin",
        "draft",
        "submitted",
    )


def test_only_its_author_submits_a_draft(draft, admin2):
    with pytest.raises(
        PermissionDenied, match=r"Only the person who drafted this flow \(csu-admin\)"
    ):
        services.data_flow_submit(actor=admin2, flow=draft)
    draft.refresh_from_db()
    assert draft.status == DataFlow.Status.DRAFT


def test_a_draft_without_its_dpia_reference_cannot_be_submitted(draft, admin):
    DataFlow.objects.filter(pk=draft.pk).update(dpia_reference="")
    with pytest.raises(InvalidInput, match="DPIA reference") as exc:
        services.data_flow_submit(actor=admin, flow=draft)
    assert exc.value.field == "dpia_reference"


def test_a_draft_without_a_legal_basis_cannot_be_submitted(draft, admin):
    draft.legal_bases.clear()
    with pytest.raises(InvalidInput, match="legal basis") as exc:
        services.data_flow_submit(actor=admin, flow=draft)
    assert exc.value.field == "legal_bases"


def test_a_submitted_flow_is_not_submitted_again(submitted, admin):
    with pytest.raises(
        NotAllowedNow,
        match="This flow cannot be submitted now: it is awaiting decision. Only a flow that is draft",
    ):
        services.data_flow_submit(actor=admin, flow=submitted)


# --- deciding: four eyes ----------------------------------------------------------------
def test_another_csu_admin_approves_a_submitted_flow(approved, admin2):
    flow = DataFlow.objects.get(pk=approved.pk)
    assert flow.status == DataFlow.Status.APPROVED
    assert flow.is_approved
    assert (flow.decided_by, flow.decision_comment) == (admin2, "DPIA and DSA checked.")
    event = _events(flow, "data_flow.approved").get()
    assert event.actor == "csu-admin-2"
    assert event.details == {
        "from": "submitted",
        "to": "approved",
        "comment": "DPIA and DSA checked.",
    }


def test_the_submitter_cannot_approve_even_as_a_csu_admin(submitted, admin):
    with pytest.raises(PermissionDenied, match="four eyes"):
        services.data_flow_approve(actor=admin, flow=submitted)
    submitted.refresh_from_db()
    assert submitted.status == DataFlow.Status.SUBMITTED
    assert not _events(submitted, "data_flow.approved").exists()


def test_the_submitter_cannot_reject_either(submitted, admin):
    with pytest.raises(PermissionDenied, match="four eyes"):
        services.data_flow_reject(actor=admin, flow=submitted, reason="Changed my mind.")
    submitted.refresh_from_db()
    assert submitted.status == DataFlow.Status.SUBMITTED


@pytest.mark.parametrize("who", ["dpo_a", "alice", "auditor"])
def test_only_a_csu_admin_approves(submitted, who, request):
    with pytest.raises(PermissionDenied, match="may not approve"):
        services.data_flow_approve(actor=request.getfixturevalue(who), flow=submitted)


def test_a_draft_cannot_be_approved(draft, admin2):
    with pytest.raises(NotAllowedNow, match="cannot be approved now: it is draft"):
        services.data_flow_approve(actor=admin2, flow=draft)


def test_an_approved_flow_is_not_approved_twice(approved, admin2):
    with pytest.raises(NotAllowedNow, match="cannot be approved now: it is approved"):
        services.data_flow_approve(actor=admin2, flow=approved)
    assert _events(approved, "data_flow.approved").count() == 1


def test_a_stale_copy_cannot_decide_what_is_already_decided(submitted, admin2, csu):
    """Two admins open the same submitted flow; the second click finds it decided."""
    third = UserFactory(username="csu-admin-3", role="csu_admin", organisations=[csu])
    first_copy = DataFlow.objects.get(pk=submitted.pk)
    second_copy = DataFlow.objects.get(pk=submitted.pk)
    services.data_flow_approve(actor=admin2, flow=first_copy, comment="first")
    assert second_copy.status == DataFlow.Status.SUBMITTED  # what the second admin saw
    with pytest.raises(NotAllowedNow, match="it is approved"):
        services.data_flow_reject(actor=third, flow=second_copy, reason="second")
    flow = DataFlow.objects.get(pk=submitted.pk)
    assert (flow.status, flow.decided_by, flow.decision_comment) == ("approved", admin2, "first")
    assert _events(flow, "data_flow.approved").count() == 1
    assert not _events(flow, "data_flow.rejected").exists()


def test_the_claim_updates_only_a_row_still_in_the_expected_state(submitted, admin2):
    """The service's UPDATE ... WHERE status=submitted wins once, whatever the caller holds."""
    DataFlow.objects.filter(pk=submitted.pk).update(
        status=DataFlow.Status.REJECTED, decision_comment="x", decided_at=submitted.submitted_at
    )
    with pytest.raises(NotAllowedNow, match="it is rejected"):
        services.data_flow_approve(actor=admin2, flow=submitted)
    assert DataFlow.objects.get(pk=submitted.pk).status == DataFlow.Status.REJECTED


def test_a_rejection_records_its_reason(submitted, admin2):
    flow = services.data_flow_reject(actor=admin2, flow=submitted, reason="  DSA has expired. ")
    flow.refresh_from_db()
    assert (flow.status, flow.decision_comment, flow.decided_by) == (
        "rejected",
        "DSA has expired.",
        admin2,
    )
    assert _events(flow, "data_flow.rejected").get().details["reason"] == "DSA has expired."


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_rejection_without_a_reason_is_refused_naming_reason(submitted, admin2, reason):
    with pytest.raises(InvalidInput, match="Say why") as exc:
        services.data_flow_reject(actor=admin2, flow=submitted, reason=reason)
    assert exc.value.field == "reason"
    submitted.refresh_from_db()
    assert submitted.status == DataFlow.Status.SUBMITTED


def test_a_rejected_flow_cannot_be_approved(submitted, admin2):
    services.data_flow_reject(actor=admin2, flow=submitted, reason="No DSA.")
    with pytest.raises(NotAllowedNow, match="it is rejected"):
        services.data_flow_approve(actor=admin2, flow=submitted)


# --- suspending, reinstating, closing ------------------------------------------------------
def test_a_suspended_flow_carries_no_data(suspended, admin2):
    flow = DataFlow.objects.get(pk=suspended.pk)
    assert (flow.status, flow.is_approved, flow.suspended_by) == ("suspended", False, admin2)
    assert _events(flow, "data_flow.suspended").get().details["reason"] == "DSA under review."


def test_a_suspended_flow_is_reinstated(reinstatement_requested, admin):
    flow = services.data_flow_reinstate(
        actor=admin, flow=reinstatement_requested, comment="DSA renewed."
    )
    flow.refresh_from_db()
    assert (flow.status, flow.is_approved, flow.suspended_by, flow.suspended_at) == (
        "approved",
        True,
        None,
        None,
    )
    event = _events(flow, "data_flow.reinstated").get()
    assert (event.details["from"], event.details["comment"]) == ("suspended", "DSA renewed.")


@pytest.mark.parametrize("start", ["approved", "suspended"])
def test_an_approved_or_suspended_flow_is_closed(start, admin, request):
    flow = request.getfixturevalue(start)
    flow = services.data_flow_close(actor=admin, flow=flow, comment="Programme finished.")
    flow.refresh_from_db()
    assert (flow.status, flow.closed_by) == ("closed", admin)
    assert _events(flow, "data_flow.closed").get().details["from"] == start


def test_a_closed_flow_is_not_reinstated(approved, admin):
    services.data_flow_close(actor=admin, flow=approved)
    with pytest.raises(
        NotAllowedNow, match="cannot be reinstated now: it is closed. Only a flow that is suspended"
    ):
        services.data_flow_reinstate(actor=admin, flow=approved)


def test_a_flow_awaiting_decision_cannot_be_suspended(submitted, admin2):
    with pytest.raises(NotAllowedNow, match="Only a flow that is approved can be suspended"):
        services.data_flow_suspend(actor=admin2, flow=submitted)


def test_a_draft_cannot_be_closed(draft, admin):
    with pytest.raises(
        NotAllowedNow, match="Only a flow that is approved or suspended can be closed"
    ):
        services.data_flow_close(actor=admin, flow=draft)


@pytest.mark.parametrize("service", ["data_flow_suspend", "data_flow_close"])
def test_a_dpo_party_cannot_suspend_or_close(approved, dpo_a, service):
    with pytest.raises(PermissionDenied):
        getattr(services, service)(actor=dpo_a, flow=approved)
    approved.refresh_from_db()
    assert approved.status == DataFlow.Status.APPROVED


def test_the_history_is_every_transition_with_who_and_why(reinstatement_requested, admin):
    suspended = reinstatement_requested
    services.data_flow_reinstate(actor=admin, flow=suspended, comment="Back on.")
    services.data_flow_close(actor=admin, flow=suspended, comment="Done.")
    history = [
        (e.action, e.actor, e.details.get("comment") or e.details.get("reason") or "")
        for e in selectors.data_flow_history(suspended)
    ]
    assert history == [
        ("data_flow.created", "csu-admin", ""),
        ("data_flow.submitted", "csu-admin", ""),
        ("data_flow.approved", "csu-admin-2", "DPIA and DSA checked."),
        ("data_flow.suspended", "csu-admin-2", "DSA under review."),
        ("data_flow.reinstatement_requested", "csu-admin-2", "The DSA was renewed."),
        ("data_flow.reinstated", "csu-admin", "Back on."),
        ("data_flow.closed", "csu-admin", "Done."),
    ]
    assert audit_verify().valid


# --- the database keeps the rules too ------------------------------------------------------
def test_the_database_refuses_a_decision_by_the_submitter(submitted, admin):
    with pytest.raises(IntegrityError), transaction.atomic():
        DataFlow.objects.filter(pk=submitted.pk).update(
            status="approved", decided_by=admin, decided_at=submitted.submitted_at
        )


def test_the_database_refuses_a_rejection_without_a_reason(submitted, admin2):
    with pytest.raises(IntegrityError), transaction.atomic():
        DataFlow.objects.filter(pk=submitted.pk).update(
            status="rejected", decided_by=admin2, decided_at=submitted.submitted_at
        )


# --- who sees a flow -------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["admin", "admin2", "alice", "bob", "dpo_a"])
def test_admins_and_the_parties_see_a_flow(draft, who, request):
    user = request.getfixturevalue(who)
    assert permissions.get_data_flow_for_user(user, draft.pk) == draft
    assert draft in permissions.data_flows_visible_to(user)


@pytest.mark.parametrize("who", ["charlie", "dpo_b", "auditor"])
def test_outsiders_do_not_see_a_flow(draft, who, request):
    user = request.getfixturevalue(who)
    with pytest.raises(Http404):
        permissions.get_data_flow_for_user(user, draft.pk)
    assert draft not in permissions.data_flows_visible_to(user)
