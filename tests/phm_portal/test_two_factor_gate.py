"""The second factor cannot be skipped: a CSU admin or DPO session that has passed only the
password reaches no page or API endpoint, whatever headers the request carries.

Two layers, each tested on its own: SecondFactorMiddleware (which trusts a token only when it
works, never the mere presence of a header) and the API's own authentication (a session
without the code is refused; a header that is not `Token <key>` never falls back to it).
"""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authentication import SessionAuthentication, TokenAuthentication

from governance import services
from governance.models import ApiToken, User
from phm_portal.authentication import ApiTokenAuthentication, VerifiedSessionAuthentication

PASSWORD = "correct-horse-battery"  # tests/factories.py
GATE = "phm_portal.middleware.SecondFactorMiddleware"
NEW_PERSON = {"username": "mallory", "email": "m@example.nhs.uk", "role": "csu_admin"}

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _second_factor_on(settings):
    settings.PHM_REQUIRE_2FA = True


@pytest.fixture(params=["both", "api-only", "middleware-only"])
def layer(request, settings, monkeypatch):
    """Both layers; the API's authentication alone (the middleware left out); the middleware
    alone (DRF's stock classes: other schemes fall through to a session it takes as is).
    """
    if request.param == "api-only":
        settings.MIDDLEWARE = [m for m in django_settings.MIDDLEWARE if m != GATE]
    if request.param == "middleware-only":
        monkeypatch.setattr(
            VerifiedSessionAuthentication, "authenticate", SessionAuthentication.authenticate
        )
        monkeypatch.setattr(
            ApiTokenAuthentication, "authenticate", TokenAuthentication.authenticate
        )
    return request.param


@pytest.fixture
def keys(admin):
    """Keys of the admin's tokens in every state, issued after a second factor was set up."""
    TOTPDevice.objects.create(user=admin, name="Authenticator app", confirmed=True)
    _, valid = services.api_token_issue(user=admin, second_factor=True)
    _, without = services.api_token_issue(user=admin, second_factor=False)
    revoked_token, revoked = services.api_token_issue(user=admin, second_factor=True)
    services.api_token_revoke(actor=admin, token=revoked_token)
    expired_token, expired = services.api_token_issue(user=admin, second_factor=True)
    past = timezone.now() - dt.timedelta(hours=1)
    ApiToken.objects.filter(pk=expired_token.pk).update(
        created_at=past - dt.timedelta(hours=12), expires_at=past
    )
    assert ApiToken.objects.filter(user=admin).count() == 3  # valid, without, expired
    return {"valid": valid, "without": without, "expired": expired, "revoked": revoked}


@pytest.fixture
def half_signed_in(client, admin, keys):
    """The admin's browser after the password, before the one-time code."""
    client.force_login(admin)  # as the sign-in page leaves it (test_the_sign_in_page_...)
    return client


def test_the_sign_in_page_leaves_a_session_without_the_code(client, admin, keys):
    response = client.post("/accounts/login/", {"username": "csu-admin", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/programmes/")["Location"].startswith("/accounts/two-factor/verify/")
    assert write(client, {"HTTP_AUTHORIZATION": "Bearer x"}).status_code == 401
    assert write(client, {}).status_code == 403
    assert not User.objects.filter(username="mallory").exists()


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


FORWARDED = {
    "HTTP_X_FORWARDED_FOR": "127.0.0.1",
    "HTTP_X_FORWARDED_PROTO": "https",
    "HTTP_X_FORWARDED_HOST": "localhost",
    "HTTP_X_FORWARDED_USER": "csu-admin",
}

# (what the request carries, its headers; {valid} etc. are the keys above)
REFUSED = [
    ("no header", {}),
    ("Bearer, anything", {"HTTP_AUTHORIZATION": "Bearer x"}),
    ("Bearer with a valid key", {"HTTP_AUTHORIZATION": "Bearer {valid}"}),
    ("Basic with the right password", {"HTTP_AUTHORIZATION": basic(f"csu-admin:{PASSWORD}")}),
    ("Basic, anything", {"HTTP_AUTHORIZATION": "Basic eDp5"}),
    ("Digest", {"HTTP_AUTHORIZATION": 'Digest username="csu-admin"'}),
    ("an unknown scheme", {"HTTP_AUTHORIZATION": "Session x"}),
    ("Token, an invalid key", {"HTTP_AUTHORIZATION": "Token phm_" + "x" * 43}),
    ("Token, an expired key", {"HTTP_AUTHORIZATION": "Token {expired}"}),
    ("Token, a revoked key", {"HTTP_AUTHORIZATION": "Token {revoked}"}),
    ("Token issued without the code", {"HTTP_AUTHORIZATION": "Token {without}"}),
    ("Token of the old kind (DRF authtoken)", {"HTTP_AUTHORIZATION": "Token " + "a1" * 20}),
    ("an empty header", {"HTTP_AUTHORIZATION": ""}),
    ("a header of spaces", {"HTTP_AUTHORIZATION": "   "}),
    ("Token alone", {"HTTP_AUTHORIZATION": "Token"}),
    ("Token and a space", {"HTTP_AUTHORIZATION": "Token "}),
    ("Token a b", {"HTTP_AUTHORIZATION": "Token a b"}),
    ("Token, a valid key and more", {"HTTP_AUTHORIZATION": "Token {valid} x"}),
    ("Token, a valid key, then Bearer", {"HTTP_AUTHORIZATION": "Token {valid}, Bearer x"}),
    ("lower-case token, invalid key", {"HTTP_AUTHORIZATION": "token nope"}),
    ("lower-case token, key without the code", {"HTTP_AUTHORIZATION": "token {without}"}),
    ("two spaces", {"HTTP_AUTHORIZATION": "Token  {valid}"}),
    ("a tab", {"HTTP_AUTHORIZATION": "Token\t{valid}"}),
    ("a leading space", {"HTTP_AUTHORIZATION": " Token {valid}"}),
    ("a trailing newline", {"HTTP_AUTHORIZATION": "Token {valid}\n"}),
    ("a key with a quote", {"HTTP_AUTHORIZATION": 'Token "{valid}"'}),
    ("X-Forwarded-* alone", FORWARDED),
    ("X-Forwarded-* and Bearer", {**FORWARDED, "HTTP_AUTHORIZATION": "Bearer x"}),
    ("the key in X-Forwarded-Authorization", {"HTTP_X_FORWARDED_AUTHORIZATION": "Token {valid}"}),
    ("the key in X-Authorization", {"HTTP_X_AUTHORIZATION": "Token {valid}"}),
]
ALLOWED = [
    ("Token with a key issued with the code", {"HTTP_AUTHORIZATION": "Token {valid}"}),
    ("lower-case token (schemes ignore case)", {"HTTP_AUTHORIZATION": "token {valid}"}),
    ("that token with X-Forwarded-*", {**FORWARDED, "HTTP_AUTHORIZATION": "Token {valid}"}),
]


def headers(template: dict[str, str], keys: dict[str, str]) -> dict[str, str]:
    return {name: value.format(**keys) for name, value in template.items()}


def read(client, extra):
    return client.get("/api/v1/programmes/", **extra)


def write(client, extra):
    return client.post("/api/v1/users/", NEW_PERSON, content_type="application/json", **extra)


@pytest.mark.parametrize(("case", "template"), REFUSED, ids=[c for c, _ in REFUSED])
@pytest.mark.parametrize("call", [read, write], ids=["GET programmes", "POST users"])
def test_a_session_without_the_code_is_refused_whatever_it_carries(
    layer, half_signed_in, keys, case, template, call
):
    response = call(half_signed_in, headers(template, keys))
    assert response.status_code in (401, 403), (case, response.status_code, response.content)
    assert response.json()["detail"]
    assert not User.objects.filter(username="mallory").exists()


@pytest.mark.parametrize(("case", "template"), ALLOWED, ids=[c for c, _ in ALLOWED])
def test_a_token_issued_with_the_code_works_beside_such_a_session(
    layer, half_signed_in, keys, case, template
):
    extra = headers(template, keys)
    assert read(half_signed_in, extra).status_code == 200
    response = write(half_signed_in, extra)
    assert response.status_code == 201, response.content
    assert User.objects.filter(username="mallory").exists()


def test_a_bad_header_is_named_in_the_answer(half_signed_in, keys):
    response = read(half_signed_in, {"HTTP_AUTHORIZATION": "Bearer x"})
    assert response.status_code == 401
    assert "Authorization header is not understood" in response.json()["detail"]
    assert response["WWW-Authenticate"] == "Token"
    expired = read(half_signed_in, {"HTTP_AUTHORIZATION": f"Token {keys['expired']}"})
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    without = read(half_signed_in, {"HTTP_AUTHORIZATION": f"Token {keys['without']}"})
    assert without.status_code == 401
    assert "issued without a one-time code" in without.json()["detail"]


@pytest.mark.parametrize(
    "path", ["/programmes/", "/accounts/api-tokens/", "/api/docs/", "/api/schema/", "/admin/"]
)
def test_pages_ask_for_the_code_even_with_a_valid_token(half_signed_in, keys, path):
    response = half_signed_in.get(path, HTTP_AUTHORIZATION=f"Token {keys['valid']}")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/two-factor/verify/")


def test_the_code_and_sign_out_pages_stay_open(half_signed_in):
    assert half_signed_in.get("/accounts/two-factor/verify/").status_code == 200
    assert half_signed_in.post("/accounts/logout/").status_code == 302
    assert half_signed_in.get("/api/v1/me/").status_code in (401, 403)


@pytest.mark.parametrize("who", ["alice", "auditor"])
def test_a_header_that_is_not_a_token_never_falls_back_to_the_session(client, who, request):
    """Roles without a second factor too: the session is not used when a header is sent."""
    user = request.getfixturevalue(who)
    client.force_login(user)
    assert client.get("/api/v1/me/").status_code == 200
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION="Bearer x")
    assert response.status_code == 401
    assert "Authorization header is not understood" in response.json()["detail"]


def test_a_dpo_session_without_the_code_is_refused_by_the_api_alone(client, dpo_a, settings):
    settings.MIDDLEWARE = [m for m in django_settings.MIDDLEWARE if m != GATE]
    TOTPDevice.objects.create(user=dpo_a, name="Authenticator app", confirmed=True)
    client.post("/accounts/login/", {"username": "dpo-a", "password": PASSWORD})
    response = client.get("/api/v1/me/")
    assert response.status_code == 403
    assert "Two-factor authentication is required" in response.json()["detail"]
