"""A person finds their API tokens from the account bar and revokes one, in a real browser."""

import pytest

from tests.e2e.axe import axe_violations

pytestmark = pytest.mark.e2e

PASSWORD = "correct-horse-battery"


def test_a_person_sees_their_token_and_revokes_it_after_confirming(page, screenshot, alice):
    issued = page.request.post(
        "/api/v1/auth/token/", data={"username": "alice", "password": PASSWORD, "name": "GP system"}
    )
    assert issued.status == 200
    key = issued.json()["token"]
    headers = {"Authorization": f"Token {key}"}
    assert page.request.get("/api/v1/auth/tokens/", headers=headers).status == 200

    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
    page.get_by_role("link", name="Your API tokens").click()
    main = page.locator("main")
    assert page.get_by_role("heading", level=1).inner_text() == "Your API tokens"
    assert "1 token that works now" in main.inner_text()
    assert "GP system" in main.inner_text()
    assert key not in page.content()  # only a fingerprint is kept: the key is never shown
    assert axe_violations(page) == []
    screenshot()

    page.get_by_role("link", name="Revoke").click()
    assert "Revoke the token" in page.get_by_role("heading", level=1).inner_text()
    assert axe_violations(page) == []
    # Going back keeps the token.
    page.get_by_role("link", name="Keep it and go back to your tokens").click()
    assert "GP system" in page.locator("main").inner_text()
    assert page.request.get("/api/v1/auth/tokens/", headers=headers).status == 200

    page.get_by_role("link", name="Revoke").click()
    page.get_by_role("button", name="Revoke this token").click()
    assert "You have no API tokens that work now." in page.locator("main").inner_text()
    refused = page.request.get("/api/v1/auth/tokens/", headers=headers)
    assert refused.status == 401
