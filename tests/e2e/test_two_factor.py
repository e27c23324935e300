"""A CSU admin sets up and uses the second factor in a real browser, under the CSP."""

import time
from base64 import b32decode

import pytest
from django_otp.oath import TOTP

pytestmark = pytest.mark.e2e


def totp_now(key_text: str, *, steps_ahead: int = 0) -> str:
    totp = TOTP(b32decode(key_text.replace(" ", "")))
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def test_a_csu_admin_sets_up_the_second_factor_then_signs_in_with_it(
    page, screenshot, settings, admin, programme
):
    settings.PHM_REQUIRE_2FA = True
    refused = []
    page.on(
        "console",
        lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None,
    )

    page.goto("/programmes/")
    page.get_by_label("Username").fill("csu-admin")
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/accounts/two-factor/?next=*")
    assert page.get_by_role("heading", level=1).inner_text() == "Set up two-factor authentication"
    qr = page.get_by_role("img", name="QR code")
    assert qr.is_visible() and qr.bounding_box()["width"] >= 150
    key = page.locator("#otp-secret").inner_text()

    page.get_by_label("Code from the app").fill(totp_now(key))
    page.get_by_role("button", name="Confirm").click()
    assert "Two-factor authentication is set up" in page.locator("h1").inner_text()
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    page.get_by_role("link", name="Continue").click()
    page.wait_for_url("**/programmes/")
    assert page.get_by_role("link", name="Testshire PHM").is_visible()

    # Sign out and in again: the code is asked for after the password.
    page.get_by_role("button", name="Sign out").click()
    page.goto("/programmes/")
    page.get_by_label("Username").fill("csu-admin")
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/accounts/two-factor/verify/?next=*")
    page.get_by_label("Code").fill(totp_now(key, steps_ahead=1))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/programmes/")
    assert page.get_by_role("link", name="Testshire PHM").is_visible()
    assert screenshot().stat().st_size > 0
    assert refused == [], refused  # nothing on these pages breaks the Content Security Policy
