"""The Content Security Policy and the other security headers, on the portal's key pages."""

import re

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db

PUBLIC = ["/accounts/login/", "/notices/", "/practices/A81001/", "/api/docs/"]
SIGNED_IN = [
    "/",
    "/programmes/",
    "/programmes/testshire/",
    "/organisations/",
    "/organisations/A81001/",
    "/data-flows/",
    "/data-flows/new/",
    "/datasets/",
    "/datasets/upload/",
    "/audit/",
    "/people/",
    "/accounts/password/",
]
PRACTICE_MANAGER = ["/practices/A81001/opt-outs/", "/practices/A81001/opt-outs/record/"]


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def assert_no_inline_code(path: str, html: str) -> None:
    for tag in re.findall(r"<script\b[^>]*>", html, re.I):
        assert "src=" in tag or 'type="application/json"' in tag, f"{path}: inline script {tag}"
    handlers = re.findall(r"<[^>]*\son[a-z]+\s*=", html, re.I)
    assert not handlers, f"{path}: inline event handler in {handlers[0]}"
    styles = re.findall(r"<[^>]*\sstyle\s*=", html, re.I)
    assert not styles, f"{path}: inline style attribute in {styles[0]}"
    assert not re.search(r"<style\b", html, re.I), f"{path}: inline <style> element"


def check(response, path: str) -> None:
    assert response.status_code == 200, path
    directives = policy(response)
    assert directives["script-src"] == ["'self'"], path
    assert directives["style-src"] == ["'self'"], path
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert_no_inline_code(path, response.content.decode())


@pytest.mark.parametrize("path", PUBLIC)
def test_public_pages_carry_a_policy_without_inline_script(client, programme, path):
    check(client.get(path), path)


def test_signed_in_pages_carry_a_policy_without_inline_script(client, admin, programme):
    client.force_login(admin)
    for path in SIGNED_IN:
        check(client.get(path), path)


def test_a_practice_managers_pages_carry_the_policy_too(client, alice, programme):
    client.force_login(alice)
    for path in PRACTICE_MANAGER:
        check(client.get(path), path)


def test_the_api_docs_start_up_script_is_a_file(client):
    page = client.get("/api/docs/").content.decode()
    script = re.search(r'<script src="([^"]*script=[^"]*)"', page)
    assert script is not None
    response = client.get(script.group(1).replace("&amp;", "&"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in response.content.decode()


@override_settings(PHM_REQUIRE_2FA=True)
def test_the_two_factor_pages_carry_the_policy_and_the_qr_code_is_plain_svg(client, admin):
    client.post("/accounts/login/", {"username": "csu-admin", "password": "correct-horse-battery"})
    for path in ("/accounts/two-factor/", "/accounts/two-factor/verify/"):
        response = client.get(path, follow=True)
        check(response, path)
    assert '<svg class="portal-qr"' in client.get("/accounts/two-factor/").content.decode()
