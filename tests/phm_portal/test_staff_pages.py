"""What staff see on shared pages: the header menu and the audit log's filter."""

from __future__ import annotations

from phm_portal.audit import audit_action_label, audit_log


def test_a_csu_admins_menu_has_extracts_and_national_checks(client, admin):
    client.force_login(admin)
    html = client.get("/").content.decode()
    assert 'class="nhsuk-header__navigation-link" href="/datasets/">Extracts</a>' in html
    assert (
        'class="nhsuk-header__navigation-link" href="/national-opt-outs/">National checks</a>'
        in html
    )


def test_other_roles_have_no_extracts_or_national_checks_in_the_menu(client, alice, auditor):
    for person in (alice, auditor):
        client.force_login(person)
        html = client.get("/").content.decode()
        assert ">Extracts</a>" not in html and ">National checks</a>" not in html


def test_the_audit_filter_shows_actions_in_words_and_keeps_their_codes(client, admin):
    audit_log(actor=admin, action="data_flow.approved", details={})
    audit_log(actor=admin, action="auth.api_token_issued", details={})
    client.force_login(admin)
    html = client.get("/audit/").content.decode()
    assert '<option value="data_flow.approved">Data flow: approved</option>' in html
    assert '<option value="auth.api_token_issued">Sign-in: API token issued</option>' in html
    filtered = client.get("/audit/?action=data_flow.approved").content.decode()
    assert '<option value="data_flow.approved" selected>Data flow: approved</option>' in filtered
    assert "1 event, newest first" in filtered


def test_an_action_code_without_a_known_subject_is_still_readable():
    assert audit_action_label("type1.dissent_recorded") == "Type 1 opt-out: dissent recorded"
    assert audit_action_label("widget.made") == "Widget: made"
    assert audit_action_label("approve") == "Approve"
