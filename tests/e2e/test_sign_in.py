import pytest

pytestmark = pytest.mark.e2e


def test_a_practice_manager_signs_in_and_sees_their_practice(page, screenshot, alice, programme):
    page.goto("/")
    assert page.title() == "Sign in – PHM governance portal"
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
    assert page.get_by_role("heading", level=1).inner_text() == "Hello, alice"
    assert "Practice A Surgery (A81001)" in page.locator("main").inner_text()
    assert page.get_by_role("link", name="Testshire PHM").is_visible()
    # The NHS.UK stylesheet is served and applied: the header is NHS blue.
    colour = page.eval_on_selector(".nhsuk-header", "el => getComputedStyle(el).backgroundColor")
    assert colour == "rgb(0, 94, 184)"
    assert screenshot().stat().st_size > 0


def test_sign_in_works_without_javascript(browser, live_server, alice):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "wrong-password")
    page.click("button[type=submit]")
    assert "There is a problem" in page.locator("main").inner_text()
    context.close()
